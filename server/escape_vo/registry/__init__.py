"""The VO Registry face of the archive: VOResource records published over OAI-PMH at /oai."""
