"""oai_dc: the simple Dublin Core view of a VOResource record, which OAI-PMH requires."""

from __future__ import annotations

from datetime import datetime

from lxml import etree
from pydantic_xml import BaseXmlModel

from escape_vo.registry.oai import DC_NS, OAI_DC_NS, XSI_NS

# xsi:type of the record -> DCMI type (https://www.dublincore.org/specifications/dublin-core/dcmi-type-vocabulary/)
_DCMI_TYPES = {
    "vs:CatalogService": "Service",
    "vs:DataService": "Service",
    "vg:Registry": "Service",
}


def dublin_core(record: BaseXmlModel, updated: datetime) -> etree._Element:
    root = etree.Element(
        f"{{{OAI_DC_NS}}}dc", nsmap={"oai_dc": OAI_DC_NS, "dc": DC_NS, "xsi": XSI_NS}
    )
    root.set(
        f"{{{XSI_NS}}}schemaLocation", f"{OAI_DC_NS} http://www.openarchives.org/OAI/2.0/oai_dc.xsd"
    )

    def add(tag: str, text: object) -> None:
        if text:
            etree.SubElement(root, f"{{{DC_NS}}}{tag}").text = str(text)

    curation, content = record.curation, record.content
    add("title", record.title)
    for creator in curation.creator or []:
        add("creator", creator.name.value)
    for subject in content.subject:
        add("subject", subject)
    add("description", content.description)
    add("publisher", curation.publisher.value)
    add("date", updated.strftime("%Y-%m-%d"))
    add("type", _DCMI_TYPES.get(getattr(record, "type", ""), "Text"))
    add("identifier", record.identifier)
    add("identifier", content.reference_url)
    for rights in getattr(record, "rights", None) or []:
        add("rights", rights.value)
    return root
