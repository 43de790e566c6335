"""The declarations in schema/*.yaml, and what is generated from them (no database)."""

from __future__ import annotations

from pathlib import Path

import pytest

from escape_vo.db.metadata import build_metadata, declared_views, view_ddl
from escape_vo.schema.model import SchemaError, find_table, load_schemas, published_tables
from escape_vo.schema.tap_schema import tap_schema_rows

# ObsCore 1.1 mandatory columns with their UCDs and units (ObsCore 1.1, table 5/6).
OBSCORE_MANDATORY = {
    "dataproduct_type": ("meta.code.class", None),
    "calib_level": ("meta.code;obs.calib", None),
    "obs_collection": ("meta.id", None),
    "obs_id": ("meta.id", None),
    "obs_publisher_did": ("meta.ref.ivoid", None),
    "access_url": ("meta.ref.url", None),
    "access_format": ("meta.code.mime", None),
    "access_estsize": ("phys.size;meta.file", "kbyte"),
    "target_name": ("meta.id;src", None),
    "s_ra": ("pos.eq.ra", "deg"),
    "s_dec": ("pos.eq.dec", "deg"),
    "s_fov": ("phys.angSize;instr.fov", "deg"),
    "s_region": ("pos.outline;obs.field", None),
    "s_resolution": ("pos.angResolution", "arcsec"),
    "s_xel1": ("meta.number", None),
    "s_xel2": ("meta.number", None),
    "t_min": ("time.start;obs.exposure", "d"),
    "t_max": ("time.end;obs.exposure", "d"),
    "t_exptime": ("time.duration;obs.exposure", "s"),
    "t_resolution": ("time.resolution", "s"),
    "t_xel": ("meta.number", None),
    "em_min": ("em.wl;stat.min", "m"),
    "em_max": ("em.wl;stat.max", "m"),
    "em_res_power": ("spect.resolution", None),
    "em_xel": ("meta.number", None),
    "o_ucd": ("meta.ucd", None),
    "pol_states": ("meta.code;phys.polarization", None),
    "pol_xel": ("meta.number", None),
    "facility_name": ("meta.id;instr.tel", None),
    "instrument_name": ("meta.id;instr", None),
}


def test_every_published_column_is_described() -> None:
    for table in published_tables():
        assert table.description, table.qualified_name
        for col in table.columns:
            assert col.description, f"{table.qualified_name}.{col.name} has no description"


def test_obscore_has_all_mandatory_columns_with_standard_metadata() -> None:
    obscore = find_table("ivoa.obscore")
    for name, (ucd, unit) in OBSCORE_MANDATORY.items():
        col = obscore.column(name)
        assert col.ucd == ucd, name
        assert col.unit == unit, name
        assert col.std, name
        assert col.utype and col.utype.startswith("obscore:"), name


def test_spectra_table_has_the_foundation_columns() -> None:
    spectra = find_table("archive.spectra")
    needed = {
        "obs_id", "publisher_did", "target_name", "target_class", "ra", "dec", "healpix",
        "aperture", "wave_min", "wave_max", "resolving_power", "snr", "exptime", "t_min",
        "t_max", "instrument", "facility", "collection", "calib_level", "flux_unit", "n_pix",
        "file_sha256", "file_size", "file_path", "release_date", "origin_archive", "origin_id",
    }  # fmt: skip
    assert needed <= {c.name for c in spectra.columns}
    assert spectra.column("wave_min").unit == "m"
    assert ("healpix",) in spectra.indexes


def test_tap_schema_rows_follow_the_declarations() -> None:
    rows = tap_schema_rows()
    tables = {r["table_name"] for r in rows["tables"]}
    assert {"ivoa.obscore", "archive.spectra", "tap_schema.columns"} <= tables
    assert "escape.settings" not in tables  # published: false stays out of TAP
    cols = [r for r in rows["columns"] if r["table_name"] == "archive.spectra"]
    assert [r["column_index"] for r in cols] == list(range(1, len(cols) + 1))
    wave = next(r for r in cols if r["column_name"] == "wave_min")
    assert (wave["unit"], wave["datatype"], wave["indexed"]) == ("m", "double", 1)
    sha = next(r for r in cols if r["column_name"] == "file_sha256")
    assert (sha["arraysize"], sha["size"]) == ("64", 64)
    key_targets = {(k["from_table"], k["target_table"]) for k in rows["keys"]}
    assert ("tap_schema.columns", "tap_schema.tables") in key_targets
    assert len(rows["key_columns"]) == len(rows["keys"])


def test_metadata_and_views_are_generated() -> None:
    md = build_metadata()
    assert "archive.spectra" in md.tables and "tap_schema.columns" in md.tables
    spectra = md.tables["archive.spectra"]
    assert spectra.c.spectrum_id.identity is not None
    assert str(spectra.c.wave_min.type) == "DOUBLE PRECISION"
    obscore = next(v for v in declared_views() if v.name == "obscore")
    ddl = view_ddl(obscore)
    assert ddl.startswith('CREATE VIEW "ivoa"."obscore"')
    assert '"s_region"' in ddl and "FROM archive.spectra AS s" in ddl


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        (
            "schema: x\ntables:\n  - name: t\n    columns:\n      - {name: a, datatype: strng}\n",
            "datatype",
        ),
        ("schema: x\ntables:\n  - name: t\n    colour: red\n    columns: []\n", "unknown keys"),
        (
            "schema: x\ntables:\n  - name: t\n    indexes: [[b]]\n"
            "    columns:\n      - {name: a, datatype: int}\n",
            "unknown 'b'",
        ),
        (
            "schema: x\ntables:\n  - name: v\n    type: view\n"
            "    columns:\n      - {name: a, datatype: int}\n",
            "needs 'view'",
        ),
    ],
)
def test_bad_declarations_fail_loudly(tmp_path: Path, yaml_text: str, message: str) -> None:
    (tmp_path / "x.yaml").write_text(yaml_text)
    with pytest.raises(SchemaError, match=message):
        load_schemas(tmp_path)
