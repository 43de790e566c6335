"""DALI 1.1 error documents (section 4.3, with the VOTable form of section 4.4.2).

A RESOURCE type="results" whose QUERY_STATUS INFO has value="ERROR" and the message as its
content; further INFOs (e.g. the QUERY) may follow. No TABLE: nothing was computed.
"""

from __future__ import annotations

from escape_vo.votable.votable import Infos, document_start, info


def error_votable(message: str, infos: Infos = ()) -> bytes:
    """The VOTable error document for `message`, a text a person can act on."""
    return (
        document_start()
        + '<RESOURCE type="results">\n'
        + info("QUERY_STATUS", "ERROR", message or "Unknown error")
        + "".join(info(name, value) for name, value in infos)
        + "</RESOURCE>\n</VOTABLE>\n"
    ).encode()
