"""`Archive(url)`: search, browse and bulk-download spectra from a VO archive.

Only public IVOA protocols are used (TAP + ObsCore, SSA, DataLink, SODA, VOSI), through pyvo
where pyvo does the job, so everything but the conventions below works against any VO service:

- the TAP service is `url` itself when it ends in /tap, else `url/tap` (or `tap_url=`);
- SSA, DataLink and SODA endpoints come from `*_url=` overrides, else from the TAP service's
  VOSI capabilities, else from the conventional `url/ssa`, `url/datalink/links` (checked by
  their own VOSI capabilities before use);
- the files of spectra are reached through the ObsCore access_url of each ID (DataLink
  resolved to its `#this` link), so downloads by ID work on any ObsCore service.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Iterable, Sequence
from functools import cached_property
from pathlib import Path
from urllib.parse import quote

import astropy.units as u
import numpy as np
import pyvo
from astropy.coordinates import SkyCoord
from astropy.io import votable
from astropy.table import Table
from astropy.time import Time

from escape_vo_client.datalink import Link, Product, is_datalink, parse_links, this_product
from escape_vo_client.download import DownloadReport, Item, download_items, run_coroutine
from escape_vo_client.identity import Identity
from escape_vo_client.spectrum import parse_spectrum
from escape_vo_client.transfer import (
    Answer,
    Downloader,
    PermanentError,
    TransientError,
    fits_check,
)

SSA_STD = "ivo://ivoa.net/std/ssa"
DATALINK_STD = "ivo://ivoa.net/std/datalink"
SODA_STD = "ivo://ivoa.net/std/soda"
_VOTABLE_TYPES = ("application/x-votable+xml", "text/xml", "application/xml")
_ID_CHUNK = 200


def adql_string(value: str) -> str:
    """An ADQL string literal (single quotes doubled)."""
    return "'" + str(value).replace("'", "''") + "'"


def _degrees(value: object, name: str) -> float:
    if isinstance(value, u.Quantity):
        return float(value.to_value(u.deg))
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a number of degrees or an angle Quantity") from exc


def _band_metres(band: object) -> tuple[float, float]:
    """(lo, hi) in metres from a spectral Quantity pair (any unit) or two floats in metres."""
    if isinstance(band, u.Quantity):
        values = band.to_value(u.m, equivalencies=u.spectral())
    else:
        values = [
            (
                _q.to_value(u.m, equivalencies=u.spectral())
                if isinstance(_q, u.Quantity)
                else float(_q)
            )
            for _q in band
        ]  # type: ignore[union-attr]
    if len(values) != 2:
        raise ValueError("band needs two values: (low, high)")
    lo, hi = sorted(float(v) for v in values)
    return lo, hi


def _mjd(value: object) -> float:
    if isinstance(value, Time):
        return float(value.mjd)
    if isinstance(value, str):
        return float(Time(value).mjd)
    return float(value)  # type: ignore[arg-type]


def _column(table: Table, *names: str, utype: str | None = None) -> str | None:
    lower = {c.lower(): c for c in table.colnames}
    for name in names:
        if name in lower:
            return lower[name]
    if utype:
        for c in table.colnames:
            col_utype = getattr(table[c].meta, "get", lambda *_: None)("utype") or ""
            if str(col_utype).lower().endswith(utype):
                return c
    return None


def _table(result) -> Table:
    """The rows as an astropy Table; meta["overflow"] says whether the service truncated them."""
    table = result.to_table()
    table.meta["overflow"] = result.query_status == "OVERFLOW"
    return table


def _value(value: object) -> str | None:
    if value is None or value is np.ma.masked:
        return None
    if isinstance(value, bytes):
        value = value.decode()
    text = str(value).strip()
    return text or None


class Archive:
    """A VO archive of spectra. `url` is its base URL (or its TAP URL)."""

    def __init__(
        self,
        url: str,
        *,
        tap_url: str | None = None,
        ssa_url: str | None = None,
        datalink_url: str | None = None,
        timeout: float = 60.0,
        session=None,
    ) -> None:
        url = url.rstrip("/")
        self.root = url[: -len("/tap")] if url.endswith("/tap") else url
        self.tap_url = (tap_url or (url if url.endswith("/tap") else f"{url}/tap")).rstrip("/")
        self._ssa_url = ssa_url
        self._datalink_url = datalink_url
        self.timeout = timeout
        self.session = session

    def __repr__(self) -> str:
        return f"Archive({self.root!r})"

    @property
    def _identity(self) -> Identity | None:
        """The session's headers, cookies and basic auth, for the requests pyvo does not make
        (downloads, DataLink batches, cutouts, similar spectra); read at each call, so that a
        login after the Archive was made counts."""
        return Identity.of(self.session)

    # -- services ------------------------------------------------------------------------------

    @cached_property
    def tap(self) -> pyvo.dal.TAPService:
        """The pyvo TAP service."""
        return pyvo.dal.TAPService(self.tap_url, session=self.session)

    @cached_property
    def ssa(self) -> pyvo.dal.SSAService:
        """The pyvo SSA service (found as the module docstring says)."""
        return pyvo.dal.SSAService(self.ssa_url, session=self.session)

    @cached_property
    def ssa_url(self) -> str:
        return self._ssa_url or self._find_service(SSA_STD, "ssa", "ssa")

    @cached_property
    def datalink_url(self) -> str:
        return self._datalink_url or self._find_service(DATALINK_STD, "datalink", "datalink/links")

    @cached_property
    def _tap_capabilities(self) -> list[tuple[str, str]]:
        """(standardID, access URL) of every capability the TAP service declares."""
        found = []
        try:
            for cap in self.tap.capabilities:
                for interface in cap.interfaces:
                    for access in interface.accessurls:
                        found.append(((cap.standardid or "").lower(), access.content))
        except Exception:  # a service without VOSI capabilities still answers queries
            return []
        return found

    def _find_service(self, standard: str, prefix: str, path: str) -> str:
        for std, url in self._tap_capabilities:
            if std.startswith(standard):
                return url
        probe = f"{self.root}/{prefix}/capabilities"
        try:
            body = run_coroutine(_get_bytes(probe, self.timeout, self._identity))
        except (PermanentError, TransientError) as exc:
            raise LookupError(
                f"no {standard} service found: not in {self.tap_url}/capabilities and "
                f"{probe} failed ({exc}); pass its URL to Archive(...)"
            ) from exc
        if standard.encode() not in body.lower():
            raise LookupError(f"{probe} does not declare {standard}; pass its URL to Archive(...)")
        return f"{self.root}/{path}"

    # -- queries -------------------------------------------------------------------------------

    def query(self, adql: str, *, maxrec: int | None = None, mode: str = "auto") -> Table:
        """Run ADQL and return an astropy Table.

        mode "auto" runs a sync query and, when the service truncated the result at its sync
        limit, runs the query again as an async job (falling back to the sync result, with a
        warning, on services without async); "sync" and "async" force one mode.
        """
        if mode not in ("auto", "sync", "async"):
            raise ValueError("mode must be 'auto', 'sync' or 'async'")
        if mode == "async":
            return _table(self.tap.run_async(adql, maxrec=maxrec))
        result = self.tap.run_sync(adql, maxrec=maxrec)
        if mode == "sync" or result.query_status != "OVERFLOW":
            return _table(result)
        if maxrec is not None and len(result) >= maxrec:
            return _table(result)  # the caller's own limit, not the service's
        try:
            return _table(self.tap.run_async(adql, maxrec=maxrec or self._hard_limit()))
        except Exception as exc:  # no async (404/405/501) or a failing job: keep sync rows
            warnings.warn(
                f"the result was truncated at {len(result)} rows and the async query failed "
                f"({exc}); narrow the query or pass maxrec",
                stacklevel=2,
            )
            return _table(result)

    def _hard_limit(self) -> int | None:
        try:
            return self.tap.hardlimit
        except Exception:
            return None

    def search_spectra(
        self,
        pos: SkyCoord | Sequence[float] | None = None,
        radius: u.Quantity | float | None = None,
        *,
        band: u.Quantity | Sequence | None = None,
        time: Sequence | None = None,
        target: str | None = None,
        instrument: str | None = None,
        collection: str | None = None,
        calib_level: int | None = None,
        where: str | None = None,
        columns: str = "*",
        maxrec: int | None = None,
    ) -> Table:
        """Spectra in ivoa.obscore matching all the given constraints, as an astropy Table.

        pos: SkyCoord or (ra, dec) in degrees (ICRS), with radius (degrees or an angle);
        band: (low, high) as a spectral Quantity in any unit or floats in metres; the spectrum
        must overlap it; time: (start, end) as astropy Time, ISO strings or MJD; target,
        instrument, collection: exact names (target case-insensitively); where: extra ADQL.
        """
        clauses = ["dataproduct_type = 'spectrum'"]
        if pos is not None:
            if radius is None:
                raise ValueError("pos needs a radius")
            if isinstance(pos, SkyCoord):
                icrs = pos.icrs
                ra, dec = float(icrs.ra.deg), float(icrs.dec.deg)
            else:
                ra, dec = (_degrees(v, "pos") for v in pos)
            r = _degrees(radius, "radius")
            clauses.append(
                f"1 = CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', {ra!r}, {dec!r}, {r!r}))"
            )
        if band is not None:
            lo, hi = _band_metres(band)
            clauses.append(f"em_min <= {hi!r} AND em_max >= {lo!r}")
        if time is not None:
            start, end = (_mjd(t) for t in time)
            clauses.append(f"t_min <= {end!r} AND t_max >= {start!r}")
        if target is not None:
            clauses.append(f"LOWER(target_name) = LOWER({adql_string(target)})")
        if instrument is not None:
            clauses.append(f"instrument_name = {adql_string(instrument)}")
        if collection is not None:
            clauses.append(f"obs_collection = {adql_string(collection)}")
        if calib_level is not None:
            clauses.append(f"calib_level = {int(calib_level)}")
        if where:
            clauses.append(f"({where})")
        adql = f"SELECT {columns} FROM ivoa.obscore WHERE " + " AND ".join(clauses)
        return self.query(adql, maxrec=maxrec)

    def search_ssa(
        self,
        pos: SkyCoord | Sequence[float] | None = None,
        diameter: u.Quantity | float | None = None,
        *,
        band: u.Quantity | Sequence | None = None,
        time: Sequence | None = None,
        target: str | None = None,
        maxrec: int | None = None,
        **params: object,
    ) -> Table:
        """SSA queryData (position, diameter, band, time, target), as an astropy Table."""
        if target is not None:
            params["TARGETNAME"] = target
        if maxrec is not None:
            params["MAXREC"] = maxrec
        result = self.ssa.search(
            pos=tuple(pos) if pos is not None and not isinstance(pos, SkyCoord) else pos,
            diameter=diameter,
            band=_band_metres(band) if band is not None else None,
            time=Time([_mjd(t) for t in time], format="mjd") if time is not None else None,
            **params,
        )
        return result.to_table()

    # -- schema browsing -----------------------------------------------------------------------

    def tables(self) -> Table:
        """Every table the TAP service publishes: name, type, description (VOSI tables)."""
        try:
            tableset = self.tap.tables
            rows = [
                (name, t.type or "table", (t.description or "").strip())
                for name, t in tableset.items()
            ]
        except Exception:  # services without VOSI tables: ask TAP_SCHEMA
            found = self.query("SELECT table_name, table_type, description FROM TAP_SCHEMA.tables")
            rows = [tuple(_value(v) or "" for v in row) for row in found]
        return Table(
            rows=rows or None, names=("name", "type", "description"), dtype=(str, str, str)
        )

    def describe(self, table: str) -> Table:
        """The columns of one table: name, datatype, unit, ucd, utype, description."""
        try:
            columns = self.tap.tables[table].columns
            rows = [
                (
                    c.name,
                    str(c.datatype.content) if c.datatype is not None else "",
                    c.unit or "",
                    c.ucd or "",
                    c.utype or "",
                    (c.description or "").strip(),
                )
                for c in columns
            ]
        except KeyError as exc:
            raise KeyError(f"no table {table!r}; see Archive.tables()") from exc
        except Exception:
            found = self.query(
                "SELECT column_name, datatype, unit, ucd, utype, description "
                f"FROM TAP_SCHEMA.columns WHERE table_name = {adql_string(table)}"
            )
            if not len(found):
                raise KeyError(f"no table {table!r}; see Archive.tables()") from None
            rows = [tuple(_value(v) or "" for v in row) for row in found]
        return Table(
            rows=rows or None,
            names=("name", "datatype", "unit", "ucd", "utype", "description"),
            dtype=(str,) * 6,
        )

    # -- access to the data --------------------------------------------------------------------

    def _items(self, table_or_ids: object) -> tuple[list[Item], list[tuple[str, str]]]:
        """Items to download from a table of results or from IDs; and IDs not found."""
        if isinstance(table_or_ids, str):
            table_or_ids = [table_or_ids]
        if hasattr(table_or_ids, "to_table"):  # pyvo results
            table_or_ids = table_or_ids.to_table()
        if isinstance(table_or_ids, Table):
            return self._items_from_table(table_or_ids)
        return self._items_from_ids([str(i) for i in table_or_ids])  # type: ignore[union-attr]

    def _items_from_table(self, table: Table) -> tuple[list[Item], list[tuple[str, str]]]:
        id_col = _column(
            table,
            "obs_publisher_did",
            "publisher_did",
            "ssa_pubdid",
            "pubdid",
            "ssa_creatordid",
            utype="curation.publisherdid",
        )
        url_col = _column(
            table, "access_url", "accref", "acref", "ssa_reference", utype="access.reference"
        )
        fmt_col = _column(table, "access_format", "ssa_format", "mime", utype="access.format")
        size_col = _column(table, "access_estsize")
        if id_col is None and url_col is None:
            raise ValueError(
                "the table has neither obs_publisher_did nor access_url columns; "
                f"its columns are {table.colnames}"
            )
        if url_col is None or (fmt_col is None and id_col is not None):
            # without access_format a DataLink URL cannot be told from a file: ask ObsCore
            return self._items_from_ids([_value(v) for v in table[id_col] if _value(v)])  # type: ignore[misc]
        items = []
        for row in table:
            url = _value(row[url_col])
            id_ = _value(row[id_col]) if id_col else None
            size = _value(row[size_col]) if size_col else None
            items.append(
                Item(
                    id=id_ or url or "",
                    access_url=url,
                    access_format=_value(row[fmt_col]) if fmt_col else None,
                    size_hint=int(float(size) * 1024) if size else None,
                )
            )
        return items, []

    def _items_from_ids(self, ids: list[str]) -> tuple[list[Item], list[tuple[str, str]]]:
        if self._datalink_url:  # the caller named the DataLink service: no ObsCore look-up
            return [
                Item(i, self._links_url(i), "application/x-votable+xml;content=datalink")
                for i in ids
            ], []
        found: dict[str, Item] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), _ID_CHUNK):
            chunk = unique[start : start + _ID_CHUNK]
            listed = ", ".join(adql_string(i) for i in chunk)
            rows = self.query(
                "SELECT obs_publisher_did, access_url, access_format, access_estsize "
                f"FROM ivoa.obscore WHERE obs_publisher_did IN ({listed})",
                maxrec=len(chunk) * 4,
            )
            items, _ = self._items_from_table(rows)
            for item in items:
                found.setdefault(item.id, item)
        missing = [
            (i, "not found in ivoa.obscore of this archive") for i in unique if i not in found
        ]
        return [found[i] for i in unique if i in found], missing

    def download(
        self,
        table_or_ids: object,
        dest: str | Path,
        *,
        parallel: int = 8,
        per_host: int | None = None,
        resume: bool = True,
        retries: int = 5,
        timeout: float | None = None,
        progress: bool = True,
        verify_fits: bool = True,
    ) -> DownloadReport:
        """Download the files of spectra into `dest`, in parallel, and report what happened.

        table_or_ids: an astropy Table or pyvo result with access_url (ObsCore or SSA) or
        obs_publisher_did columns, or publisher DIDs. Files already complete in dest are
        skipped, partial ones resumed (resume=False fetches everything again). Each file is
        checked against the size and checksums the service announces (DataLink columns, Digest
        or ETag headers) and, for FITS, against its own headers. Failures never interrupt the
        others: they are listed in the report (`report.failed`, `print(report)`).
        """
        items, missing = self._items(table_or_ids)
        return run_coroutine(
            download_items(
                items,
                Path(dest),
                parallel=parallel,
                per_host=per_host,
                resume=resume,
                retries=retries,
                timeout=timeout or self.timeout,
                progress=progress,
                verify=fits_check if verify_fits else None,
                failed=missing,
                identity=self._identity,
            )
        )

    def _links_url(self, id_: str) -> str:
        sep = "&" if "?" in self.datalink_url else "?"
        return f"{self.datalink_url}{sep}ID={quote(id_, safe='')}"

    def _access(self, id_: str) -> tuple[str, str | None]:
        """(access_url, access_format) of one ID."""
        items, missing = self._items_from_ids([id_])
        if missing or not items or not items[0].access_url:
            raise LookupError(f"{id_}: {missing[0][1] if missing else 'no access_url'}")
        return items[0].access_url, items[0].access_format  # type: ignore[return-value]

    def links(self, id_: str) -> list[Link]:
        """The DataLink rows of one spectrum (a direct access_url gives one `#this` row)."""
        url, fmt = self._access(id_)
        if not is_datalink(fmt):
            return [Link(id_, "#this", access_url=url, content_type=fmt)]
        return [
            x
            for x in parse_links(run_coroutine(_get_bytes(url, self.timeout, self._identity)))
            if x.id == id_ or not x.id
        ]

    def spectrum(self, id_: str, *, as_specutils: bool = False):
        """The spectrum as arrays with units (Spectrum), or a specutils object if asked.

        Prefers a Spectrum-DM VOTable the service offers (DataLink #this or #derivation),
        else reads the original FITS file.
        """
        links = self.links(id_)
        usable = [
            x
            for x in links
            if x.access_url and not x.error_message and x.semantics in ("#this", "#derivation")
        ]
        votables = [
            x
            for x in usable
            if (x.content_type or "").split(";")[0].strip() in _VOTABLE_TYPES
            and not is_datalink(x.content_type)
            and x.content_qualifier in (None, "#spectrum")
        ]
        chosen: Link | Product = votables[0] if votables else this_product(links, id_)
        url = chosen.access_url if isinstance(chosen, Link) else chosen.url
        data = run_coroutine(_get_bytes(url, self.timeout, self._identity))  # type: ignore[arg-type]
        spec = parse_spectrum(data, chosen.content_type, id_)
        return spec.to_specutils() if as_specutils else spec

    def cutout(
        self,
        id_: str,
        band: u.Quantity | Sequence,
        *,
        dest: str | Path | None = None,
        responseformat: str | None = None,
        as_specutils: bool = False,
    ):
        """Cut a wavelength range out of a spectrum through SODA (the DataLink #cutout service).

        band: (low, high) spectral Quantity in any unit, or floats in metres. Returns a Spectrum
        (or specutils object); with dest, the service's answer is also saved to that file.
        """
        from pyvo.dal.adhoc import DatalinkResults, SodaQuery

        url, fmt = self._access(id_)
        if not is_datalink(fmt):
            raise LookupError(f"{id_} has no DataLink document, hence no #cutout service")
        links = DatalinkResults.from_result_url(url, session=self.session)
        cutouts = [r for r in links if r.semantics == "#cutout" and r.service_def]
        if not cutouts:
            raise LookupError(f"the DataLink document of {id_} offers no #cutout service")
        resource = links.get_adhocservice_by_id(cutouts[0].service_def)
        lo, hi = _band_metres(band)
        query = SodaQuery.from_resource(
            cutouts[0], resource, band=[lo, hi] * u.m, session=self.session
        )
        params = {k: v for k, v in query.items() if v is not None and v != ""}
        if responseformat:
            params["RESPONSEFORMAT"] = responseformat
        data, content_type = run_coroutine(
            _soda(query.queryurl, params, self.timeout, self._identity)
        )
        if dest is not None:
            Path(dest).write_bytes(data)
        spec = parse_spectrum(data, content_type, id_)
        spec.meta["cutout_band_m"] = (lo, hi)
        return spec.to_specutils() if as_specutils else spec

    def similar(self, id_: str, k: int = 10, *, model: str | None = None) -> Table:
        """The k spectra most similar to one (nearest neighbours in an embedding model's latent
        space), through the "similar spectra" service its DataLink document declares; columns
        include publisher_did, distance, model and anomaly_score. model: e.g. "autoencoder"
        (default: the service's best applied model)."""
        from pyvo.dal.adhoc import DatalinkQuery, DatalinkResults

        if int(k) < 1:
            raise ValueError("k must be at least 1")
        url, fmt = self._access(id_)
        if not is_datalink(fmt):
            raise LookupError(f"{id_} has no DataLink document, hence no similar-spectra service")
        links = DatalinkResults.from_result_url(url, session=self.session)
        rows = [
            r
            for r in links
            if r.service_def and _text_field(r, "local_semantics") == SIMILAR_SEMANTICS
        ]
        if not rows:
            raise LookupError(f"the DataLink document of {id_} offers no similar-spectra service")
        resource = links.get_adhocservice_by_id(rows[0].service_def)
        options = {"k": int(k), **({"model": model} if model else {})}
        query = DatalinkQuery.from_resource(rows[0], resource, session=self.session, **options)
        params = {key: v for key, v in query.items() if v is not None and v != ""}
        response = run_coroutine(_answer(query.queryurl, params, self.timeout, self._identity))
        table = _votable_or_error(response.content, response.status_code)
        table.meta["similar_to"] = id_
        return table

    def similar_to(
        self,
        spectrum: str | Path | bytes,
        k: int = 10,
        *,
        model: str | None = None,
        redshift: float | None = None,
        index: int | None = None,
    ) -> Table:
        """The k archived spectra most similar to a spectrum of one's own (a 1-D spectrum FITS
        file, as a path or as bytes), which the archive embeds on the fly with its model.

        redshift: to compare in the rest frame (default: the file's own, if it has one);
        index: which spectrum of a multi-spectrum file. The table's meta["query"] says how the
        model sees the spectrum: its anomaly score on the archive's scale (0 typical, 3 rare),
        reconstruction error, latent-sky position (lon, lat), the model and version used, and
        "warnings" when the archive had to guess something about the file."""
        if int(k) < 1:
            raise ValueError("k must be at least 1")
        name, content = _upload(spectrum)
        fields = {"k": int(k), **_upload_fields(model, redshift, index)}
        url = f"{self.root}/embeddings/similar"
        response = run_coroutine(
            _post_file(url, fields, {"SPECTRUM": (name, content)}, self.timeout, self._identity)
        )
        if response.status_code in (404, 405):
            raise LookupError(f"{self.root} offers no similar-spectra search ({url}: HTTP "
                              f"{response.status_code})")  # fmt: skip
        table = _votable_or_error(response.content, response.status_code)
        infos = table.meta.pop("infos")
        table.meta["similar_to"] = name
        table.meta["query"] = {
            key[6:].lower() if key.startswith("QUERY_") else key.lower(): _number(value)
            for key, value in infos.items()
            if key != "QUERY_STATUS"
        }
        return table

    def embed(
        self,
        spectrum: str | Path | bytes,
        *,
        model: str | None = None,
        redshift: float | None = None,
        index: int | None = None,
    ) -> dict:
        """How the archive's model sees a spectrum of one's own (a 1-D spectrum FITS file, as
        a path or bytes): "vector" (its embedding), "lon"/"lat" on the latent sky,
        "anomaly_score", "reconstruction_error", "warnings" (what the archive had to guess
        about the file, a list), and on the model's grid "wave_nm", "flux"
        (resampled, normalised) and "model_flux" (the model's rebuild), as numpy arrays."""
        name, content = _upload(spectrum)
        fields = _upload_fields(model, redshift, index)
        url = f"{self.root}/embeddings/embed"
        response = run_coroutine(
            _post_file(url, fields, {"SPECTRUM": (name, content)}, self.timeout, self._identity)
        )
        try:
            answer = json.loads(response.content)
        except ValueError:
            raise LookupError(f"{self.root} offers no embedding of uploaded spectra ({url}: "
                              f"HTTP {response.status_code})") from None  # fmt: skip
        if response.status_code >= 400 or "error" in answer:
            raise ValueError(f"the service said: {answer.get('error', response.status_code)}")
        for key in ("vector", "wave_nm", "flux", "model_flux"):
            answer[key] = np.array(answer[key], dtype=float)  # JSON null -> NaN
        return answer


def _upload(spectrum: str | Path | bytes) -> tuple[str, bytes]:
    if isinstance(spectrum, bytes):
        return "spectrum.fits", spectrum
    return Path(spectrum).name, Path(spectrum).read_bytes()


def _upload_fields(model: str | None, redshift: float | None, index: int | None) -> dict:
    given = (("model", model), ("REDSHIFT", redshift), ("INDEX", index))
    return {key: value for key, value in given if value is not None}


def _number(text: str | None) -> object:
    """An INFO's value as a number when it is one (the query's scores and position)."""
    try:
        return int(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        pass
    try:
        return float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return text


SIMILAR_SEMANTICS = "similar-spectra"  # DataLink local_semantics of the service descriptor


def _text_field(row, name: str) -> str | None:
    try:
        return _value(row[name])
    except (KeyError, IndexError):
        return None


def _votable_or_error(data: bytes, status: int) -> Table:
    """The result table of a VOTable answer, or the service's error message as a ValueError;
    the answer's INFOs (name -> value) are in the table's meta["infos"]."""
    try:
        parsed = votable.parse(io.BytesIO(data))
    except Exception as exc:
        raise ValueError(f"the service answered {status} without a VOTable: {exc}") from None
    infos = parsed.resources[0].infos if parsed.resources else []
    for info in infos:
        if info.name == "QUERY_STATUS" and info.value == "ERROR":
            raise ValueError(f"the service said: {(info.content or '').strip()}")
    if status >= 400:
        raise ValueError(f"the service answered HTTP {status}")
    table = parsed.get_first_table().to_table()
    table.meta["infos"] = {info.name: info.value for info in infos}
    return table


async def _get_bytes(url: str, timeout: float, identity: Identity | None) -> bytes:
    async with Downloader(parallel=2, timeout=timeout, identity=identity) as d:
        return await d.request("GET", url)


async def _answer(url: str, params: dict, timeout: float, identity: Identity | None) -> Answer:
    """A GET retried like downloads (network errors, 429, 5xx), whatever status it ends with."""
    async with Downloader(parallel=1, timeout=timeout, identity=identity) as d:
        return await d.answer("GET", url, params=params)


async def _post_file(
    url: str,
    data: dict,
    files: dict[str, tuple[str, bytes]],
    timeout: float,
    identity: Identity | None,
) -> Answer:
    async with Downloader(parallel=1, timeout=timeout, identity=identity) as d:
        return await d.answer("POST", url, data=data, files=files)


async def _soda(
    url: str, params: dict, timeout: float, identity: Identity | None
) -> tuple[bytes, str | None]:
    response = await _answer(url, params, timeout, identity)
    if response.status_code == 204:
        raise ValueError("the cutout is empty: the band contains no pixel of this spectrum")
    if response.status_code >= 400:
        raise ValueError(f"SODA error {response.status_code}: {response.text.strip()[:300]}")
    return response.content, response.headers.get("content-type")


def ids_of(rows: Iterable) -> list[str]:
    """Publisher DIDs of result rows (obs_publisher_did), e.g. to pass them to download()."""
    table = rows.to_table() if hasattr(rows, "to_table") else rows
    col = _column(table, "obs_publisher_did", "publisher_did")
    if col is None:
        raise ValueError("no obs_publisher_did column")
    return [v for v in (_value(x) for x in table[col]) if v]
