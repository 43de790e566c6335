"""The VOResource records of this archive, built from the settings and what the archive holds.

Records (identifiers under ivo://<IVO_AUTHORITY>):
  ivo://AUTH              vg:Authority     the claim on the authority, managed by the org
  ivo://AUTH/org          vr:Organisation  who runs the archive, facilities and instruments
  ivo://AUTH/registry     vg:Registry      this publishing registry (OAI-PMH at /oai)
  ivo://AUTH/tap, /ssa    vs:CatalogService  with their tables (VODataService 1.2 tableset)
  ivo://AUTH/datalink, /soda  vs:DataService
Every service record carries the archive's coverage (VODataService 1.2): a MOC of the sky
(degraded until it fits RECORD_MOC_BYTES, the full-resolution one at /coverage declared as
its footprint), the time and energy intervals and the wavebands.

Records are built with placeholder dates; `fingerprint` hashes that form (with the base URL
neutralised), and escape_vo.registry.store turns fingerprints into datestamps.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree
from pydantic_xml import BaseXmlModel
from vo_models.vodataservice.models import TableSet
from vo_models.voregistry.models import OAIHTTP, Harvest
from vo_models.voresource.models import (
    AccessURL,
    Contact,
    Content,
    Creator,
    Curation,
    ResourceName,
    Rights,
)

from escape_vo.coverage.store import Coverage
from escape_vo.registry.models import (
    AuthorityRecord,
    CatalogServiceRecord,
    DataServiceRecord,
    OrganisationRecord,
    RegistryRecord,
    ServiceReference,
)
from escape_vo.registry.models import Coverage as CoverageElement
from escape_vo.registry.services import SERVICES, RegisteredService
from escape_vo.schema.model import find_table, load_schemas
from escape_vo.settings import Settings
from escape_vo.vosi.tables import tableset

PLACEHOLDER_DATE = datetime(2000, 1, 1, tzinfo=UTC)
RECORD_MOC_BYTES = 32_000  # VODataService 1.2: "smaller than a few dozens of kB"
_PLANCK_C = 6.62607015e-34 * 299792458.0  # h c in J m: photon energy = hc / wavelength
# Messenger vocabulary (http://www.ivoa.net/rdf/messenger) by wavelength in metres
_WAVEBANDS = (
    ("Gamma-ray", 0.0, 1e-11),
    ("X-ray", 1e-11, 1e-8),
    ("EUV", 1e-8, 1e-7),
    ("UV", 1e-7, 3e-7),
    ("Optical", 3e-7, 1e-6),
    ("Infrared", 1e-6, 1e-4),
    ("Millimeter", 1e-4, 1e-2),
    ("Radio", 1e-2, float("inf")),
)


@dataclass(frozen=True)
class Built:
    """A record with placeholder dates, its XML, and the fingerprint of its content."""

    identifier: str
    record: BaseXmlModel
    xml: bytes
    fingerprint: str

    def tree(self, created: datetime, updated: datetime) -> etree._Element:
        """The record's XML with its real dates (UTC, written with a Z as VOResource asks)."""
        root = etree.fromstring(self.xml)
        root.set("created", created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        root.set("updated", updated.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        return root


def split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def wavebands(wave_min: float | None, wave_max: float | None) -> list[str]:
    """Messenger terms overlapping [wave_min, wave_max] (metres)."""
    if wave_min is None or wave_max is None:
        return []
    return [name for name, lo, hi in _WAVEBANDS if wave_min < hi and wave_max > lo]


def record_moc(coverage: Coverage) -> tuple[str, int] | None:
    """The ASCII MOC of the sky coverage at the finest order that fits RECORD_MOC_BYTES."""
    if coverage.summary.positioned == 0:
        return None
    moc = coverage.moc("space")
    for order in range(moc.max_order, -1, -1):
        text = (moc if order == moc.max_order else moc.degrade_to_order(order)).to_string("ascii")
        if len(text) <= RECORD_MOC_BYTES:
            return text, order
    return text, 0


class RecordBuilder:
    """Builds every record for one base URL (PUBLIC_URL or the URL the client called)."""

    def __init__(
        self,
        settings: Settings,
        base_url: str,
        coverage: Coverage,
        nrows: dict[str, int],
        oai_page_size: int,
    ) -> None:
        self.settings = settings
        self.base = base_url.rstrip("/")
        self.auth = settings.ivo_authority
        self.coverage = coverage
        self.nrows = nrows
        self.page_size = oai_page_size
        self._moc = record_moc(coverage)

    # ---- identifiers -------------------------------------------------------------------------

    @property
    def authority_id(self) -> str:
        return f"ivo://{self.auth}"

    @property
    def org_id(self) -> str:
        return f"ivo://{self.auth}/org"

    @property
    def registry_id(self) -> str:
        return f"ivo://{self.auth}/registry"

    def service_id(self, service: RegisteredService) -> str:
        return f"ivo://{self.auth}/{service.key}"

    # ---- shared parts ------------------------------------------------------------------------

    def _common(self, title: str, short: str, identifier: str, description: str, types: list):
        s = self.settings
        return {
            "created": PLACEHOLDER_DATE,
            "updated": PLACEHOLDER_DATE,
            "status": "active",
            "version": "1.1",
            "title": title,
            "short_name": f"{s.registry_short_name} {short}".strip()[:16],
            "identifier": identifier,
            "curation": Curation(
                publisher=ResourceName(value=s.registry_publisher, ivo_id=self.org_id),
                creator=[Creator(name=s.registry_creator)],
                contact=[Contact(name=s.registry_contact_name, email=s.registry_contact_email)],
            ),
            "content": Content(
                subject=split(s.registry_subjects),
                description=description,
                reference_url=s.registry_reference_url or f"{self.base}/",
                type=types,
                content_level=split(s.registry_content_level),
            ),
        }

    def _coverage(self) -> CoverageElement:
        summary = self.coverage.summary
        temporal, spectral = [], []
        if summary.t_min is not None and summary.t_max is not None:
            temporal.append(f"{summary.t_min!r} {summary.t_max!r}")
        if summary.wave_min and summary.wave_max:
            spectral.append(
                f"{_PLANCK_C / summary.wave_max:.6g} {_PLANCK_C / summary.wave_min:.6g}"
            )
        configured = split(self.settings.registry_waveband)
        return CoverageElement(
            spatial=self._moc[0] if self._moc else None,
            temporal=temporal,
            spectral=spectral,
            footprint=ServiceReference(
                value=f"{self.base}/coverage", ivo_id="ivo://ivoa.net/std/moc"
            ),
            waveband=configured or wavebands(summary.wave_min, summary.wave_max),
        )

    def _names(self, values: list[str]) -> list[ResourceName]:
        return [ResourceName(value=v) for v in values]

    def _tableset(self, names: tuple[str, ...]) -> TableSet | None:
        schemas = load_schemas()
        if names:
            wanted = {find_table(n).qualified_name for n in names}
            schemas = tuple(
                dataclasses.replace(
                    s, tables=tuple(t for t in s.tables if t.qualified_name in wanted)
                )
                for s in schemas
            )
        vosi = tableset(schemas, self.nrows, detail=True)
        return TableSet(tableset_schema=vosi.tableset_schema) if vosi.tableset_schema else None

    # ---- the records -------------------------------------------------------------------------

    def authority(self) -> AuthorityRecord:
        s = self.settings
        return AuthorityRecord(
            **self._common(
                f"The {self.auth} naming authority",
                "",
                self.authority_id,
                f"The authority of the identifiers ivo://{self.auth}/... of the resources and "
                f"the data sets (publisher DIDs) of {s.registry_title}, run by "
                f"{s.registry_publisher}.",
                [],
            ),
            managing_org=ResourceName(value=s.registry_publisher, ivo_id=self.org_id),
        )

    def organisation(self) -> OrganisationRecord:
        s = self.settings
        summary = self.coverage.summary
        return OrganisationRecord(
            **self._common(
                s.registry_publisher,
                "org",
                self.org_id,
                f"{s.registry_publisher} runs {s.registry_title}. {s.registry_description}",
                [],
            ),
            facility=self._names(summary.facilities),
            instrument=self._names(summary.instruments),
        )

    def registry(self) -> RegistryRecord:
        s = self.settings
        return RegistryRecord(
            **self._common(
                f"{s.registry_title} publishing registry",
                "OAI",
                self.registry_id,
                f"The OAI-PMH publishing registry of {s.registry_title}: the VOResource records "
                f"of its services and of the authority {self.auth}.",
                [],
            ),
            capability=[
                Harvest(
                    max_records=self.page_size,
                    interface=[
                        OAIHTTP(
                            role="std",
                            version="1.0",
                            access_url=[AccessURL(value=f"{self.base}/oai", use="base")],
                        )
                    ],
                )
            ],
            full=False,
            managed_authority=[self.auth],
        )

    def service(self, service: RegisteredService) -> DataServiceRecord:
        s = self.settings
        summary = self.coverage.summary
        fields = self._common(
            f"{s.registry_title} {service.title}",
            service.short,
            self.service_id(service),
            f"{s.registry_description} {service.description}",
            ["Archive"],
        )
        rights = [Rights(value=s.registry_rights, rights_uri=s.registry_rights_uri)]
        common = {
            **fields,
            "rights": rights,
            "capability": service.capabilities(self.base),
            "facility": self._names(summary.facilities),
            "instrument": self._names(summary.instruments),
            "coverage": self._coverage(),
        }
        if service.tables is None:
            return DataServiceRecord(**common)
        return CatalogServiceRecord(**common, tableset=self._tableset(service.tables))

    def all(self) -> list[Built]:
        records = [self.authority(), self.organisation(), self.registry()]
        records += [self.service(svc) for svc in SERVICES]
        out = []
        for record in records:
            xml = record.to_xml(skip_empty=True)
            neutral = xml.decode().replace(self.base, "{base}")  # the same from any host name
            fingerprint = hashlib.sha256(neutral.encode()).hexdigest()
            out.append(Built(str(record.identifier), record, xml, fingerprint))
        return out
