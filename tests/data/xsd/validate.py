"""Offline XSD validation of registry documents against the IVOA and OAI schemas in this folder.

One schema set holds every namespace (OAI-PMH's <metadata> and <description> take any foreign
element with strict processing, so the VOResource schemas must be in the same set). The
`schemaLocation`s inside the schemas point at ivoa.net, dublincore.org and w3.org; a resolver
maps every one of them to the copy here and refuses anything else, so validation never needs
the network.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from lxml import etree

HERE = Path(__file__).resolve().parent

# namespace -> file, in import order (VOResource first: the others build on it)
SCHEMAS = {
    "http://www.w3.org/XML/1998/namespace": "xml.xsd",
    "http://www.w3.org/1999/xlink": "xlink.xsd",
    "http://www.ivoa.net/xml/VOResource/v1.0": "VOResource-v1.1.xsd",
    "http://www.ivoa.net/xml/STC/stc-v1.30.xsd": "stc-v1.30.xsd",
    "http://www.ivoa.net/xml/VODataService/v1.1": "VODataService-v1.2.xsd",
    "http://www.ivoa.net/xml/TAPRegExt/v1.0": "TAPRegExt-v1.0.xsd",
    "http://www.ivoa.net/xml/SSA/v1.1": "SSA-v1.2.xsd",
    "http://www.ivoa.net/xml/VORegistry/v1.0": "VORegistry-v1.1.xsd",
    "http://www.ivoa.net/xml/RegistryInterface/v1.0": "RegistryInterface-v1.0.xsd",
    "http://www.ivoa.net/xml/VOSICapabilities/v1.0": "VOSICapabilities-v1.0.xsd",
    "http://purl.org/dc/elements/1.1/": "simpledc20021212.xsd",
    "http://www.openarchives.org/OAI/2.0/oai_dc/": "oai_dc.xsd",
    "http://www.openarchives.org/OAI/2.0/": "OAI-PMH.xsd",
}

# schemaLocations written inside the schemas (and their usual variants) -> local file
_LOCATIONS = {
    "http://www.ivoa.net/xml/VOResource/v1.0": "VOResource-v1.1.xsd",
    "http://www.ivoa.net/xml/VOResource/VOResource-v1.0.xsd": "VOResource-v1.1.xsd",
    "http://www.ivoa.net/xml/VOResource/VOResource-v1.1.xsd": "VOResource-v1.1.xsd",
    "http://www.ivoa.net/xml/VODataService/v1.1": "VODataService-v1.2.xsd",
    "http://www.ivoa.net/xml/STC/stc-v1.30.xsd": "stc-v1.30.xsd",
    "http://www.ivoa.net/xml/Xlink/xlink.xsd": "xlink.xsd",
    "http://www.w3.org/2001/xml.xsd": "xml.xsd",
    "http://dublincore.org/schemas/xmls/simpledc20021212.xsd": "simpledc20021212.xsd",
}


class _LocalOnly(etree.Resolver):
    def resolve(self, url, pubid, context):
        name = _LOCATIONS.get(url) or SCHEMAS.get(url)
        if name is None and url.startswith("file:"):
            return None  # our own files
        if name is None:
            raise OSError(f"schema {url} is not available offline; add it to tests/data/xsd")
        return self.resolve_filename(str(HERE / name), context)


@cache
def schema() -> etree.XMLSchema:
    imports = "\n".join(
        f'  <xs:import namespace="{ns}" schemaLocation="{(HERE / name).as_uri()}"/>'
        for ns, name in SCHEMAS.items()
    )
    bundle = (
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" '
        'targetNamespace="urn:escape-vo:test-bundle">\n' + imports + "\n</xs:schema>"
    )
    parser = etree.XMLParser(no_network=True)
    parser.resolvers.add(_LocalOnly())
    doc = etree.fromstring(bundle.encode(), parser, base_url=(HERE / "bundle.xsd").as_uri())
    return etree.XMLSchema(doc)


def errors(document: bytes | etree._Element) -> list[str]:
    """The schema violations of a document (an empty list when it is valid)."""
    tree = etree.fromstring(document) if isinstance(document, bytes) else document
    xsd = schema()
    if xsd.validate(tree):
        return []
    return [f"line {e.line}: {e.message}" for e in xsd.error_log]


def assert_valid(document: bytes | etree._Element) -> None:
    problems = errors(document)
    assert not problems, "XSD validation failed:\n" + "\n".join(problems[:20])
