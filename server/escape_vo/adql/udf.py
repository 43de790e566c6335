"""User-defined functions this service offers, declared once for the translator and TAPRegExt.

Each entry gives the ADQL signature (the TAPRegExt `form`), a description, the SQL template the
translator fills with the translated arguments, and the type of the result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from escape_vo.db.hnsw import scan_settings


@dataclass(frozen=True, slots=True)
class Udf:
    name: str  # lower case, as written in ADQL
    params: tuple[tuple[str, str], ...]  # (name, ADQL type)
    returns: str  # ADQL type
    template: str  # SQL with {0}, {1}, ... for the translated arguments
    description: str
    datatype: str  # VOTable datatype of the result
    arraysize: str | None = None
    aggregate: bool = False
    ucd: str | None = None
    # a statement to run before a query that uses the function, given the most rows any
    # SELECT of the query may return (None: no TOP nor MAXREC); e.g. the index scan's settings
    setup: Callable[[int | None], str] | None = None

    @property
    def form(self) -> str:
        """The signature as TAPRegExt writes it: name(arg TYPE, ...) -> TYPE."""
        args = ", ".join(f"{n} {t}" for n, t in self.params)
        return f"{self.name}({args}) -> {self.returns}"


UDFS: dict[str, Udf] = {
    u.name: u
    for u in (
        Udf(
            name="ivo_healpix_index",
            params=(("hpxOrder", "INTEGER"), ("ra", "DOUBLE"), ("dec", "DOUBLE")),
            returns="BIGINT",
            template="escape.healpix_nest(CAST({0} AS integer), CAST({1} AS double precision), "
            "CAST({2} AS double precision))",
            description="Index of the HEALPix cell (NESTED scheme) of order hpxOrder (0..29) that "
            "contains the ICRS position (ra, dec) in degrees.",
            datatype="long",
            ucd="pos.healpix",
        ),
        Udf(
            name="ivo_interval_overlaps",
            params=(("l1", "DOUBLE"), ("h1", "DOUBLE"), ("l2", "DOUBLE"), ("h2", "DOUBLE")),
            returns="INTEGER",
            template="(CASE WHEN ({0}) <= ({3}) AND ({2}) <= ({1}) THEN 1 ELSE 0 END)",
            description="1 if the interval [l1, h1] overlaps [l2, h2], else 0 (e.g. a spectrum's "
            "em_min, em_max against a band).",
            datatype="int",
        ),
        Udf(
            name="ivo_embedding_distance",
            params=(("vector", "REAL[]"), ("model", "VARCHAR(*)"), ("did", "VARCHAR(*)")),
            returns="DOUBLE",
            # The shape pgvector's HNSW index serves (escape_vo/embeddings/search.py): the
            # column cast exactly as the index expression, the query vector an InitPlan.
            template="(CAST({0} AS public.vector(16)) OPERATOR(public.<=>) "
            "(SELECT CAST(emb_q__.vector AS public.vector(16)) "
            "FROM embeddings.spectrum_embeddings AS emb_q__ "
            "WHERE emb_q__.model = CAST({1} AS text) "
            "AND emb_q__.publisher_did = CAST({2} AS text)))",
            description="Cosine distance (0 to 2) between vector (the vector column of "
            "embeddings.spectrum_embeddings) and the vector that model gives the spectrum with "
            "publisher DID did; NULL if that spectrum has no vector. With WHERE model = '...' and "
            "ORDER BY this distance with TOP k, an HNSW index answers: the k most similar spectra, "
            "also when further conditions (an instrument, a region) narrow them down.",
            datatype="double",
            ucd="stat.value",
            setup=lambda rows: scan_settings(rows, local=False),
        ),
        Udf(
            name="ivo_string_agg",
            params=(("expr", "VARCHAR(*)"), ("delimiter", "VARCHAR(*)")),
            returns="VARCHAR(*)",
            template="string_agg(CAST({0} AS text), CAST({1} AS text))",
            description="Aggregate function: the values of expr in a group, joined by delimiter.",
            datatype="char",
            arraysize="*",
            aggregate=True,
        ),
    )
}
