"""The optional ADQL 2.1 features this translator supports, as TAPRegExt declares them.

Written once here, next to the code that implements them, for the capabilities document.
"""

from __future__ import annotations

from .udf import UDFS

TAPREGEXT = "ivo://ivoa.net/std/TAPRegExt"
_GEOMETRY = (
    "AREA", "BOX", "CENTROID", "CIRCLE", "CONTAINS", "COORD1", "COORD2", "COORDSYS", "DISTANCE",
    "INTERSECTS", "POINT", "POLYGON", "REGION",
)  # fmt: skip

# feature type -> (form, description) of each supported feature
LANGUAGE_FEATURES: dict[str, tuple[tuple[str, str], ...]] = {
    f"{TAPREGEXT}#features-adqlgeo": tuple(
        (form, "ICRS only; a coordinate system argument must be empty or ICRS-compatible")
        for form in _GEOMETRY
    ),
    f"{TAPREGEXT}#features-adql-string": (
        ("LOWER", "Lower-case a string."),
        ("UPPER", "Upper-case a string."),
        ("ILIKE", "Case-insensitive LIKE."),
    ),
    f"{TAPREGEXT}#features-adql-sets": (
        ("UNION", "Rows of either query (ALL keeps duplicates)."),
        ("EXCEPT", "Rows of the first query not in the second."),
        ("INTERSECT", "Rows in both queries."),
    ),
    f"{TAPREGEXT}#features-adql-common-table": (("WITH", "Named subqueries before SELECT."),),
    f"{TAPREGEXT}#features-adql-type": (("CAST", "Convert a value to another ADQL type."),),
    f"{TAPREGEXT}#features-adql-unit": (
        ("IN_UNIT", "Convert a value of known unit to another VOUnit."),
    ),
    f"{TAPREGEXT}#features-adql-offset": (("OFFSET", "Skip the first rows of the result."),),
    # COALESCE is supported, but the ADQL 2.1 feature type #features-adql-conditional is unknown
    # to the STILTS taplint in Debian (3.4.7), which reports it as an error; not declared.
    f"{TAPREGEXT}#features-udf": tuple((u.form, u.description) for u in UDFS.values()),
}
