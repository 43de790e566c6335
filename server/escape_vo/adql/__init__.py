"""ADQL 2.1 to PostgreSQL: a pure translator from query text and table metadata to SQL.

    from escape_vo.adql import translate, Catalog
    t = translate("SELECT TOP 5 * FROM ivoa.obscore", Catalog.from_tables(published_tables()))
    t.sql, t.columns, t.tables

The grammar is the official ADQL 2.1 BNF made LALR(1) for lark (grammar.lark); parser.py builds
the tree of ast.py nodes; translate.py resolves names against catalog.py and writes SQL,
with expressions.py, functions.py, geometry.py (ICRS only, HEALPix index rewrite) and udf.py
(user-defined functions); features.py lists what TAPRegExt should declare.
"""

from .catalog import Catalog
from .errors import AdqlError
from .features import LANGUAGE_FEATURES
from .parser import parse
from .translate import Translation, translate
from .udf import UDFS, Udf

__all__ = [
    "LANGUAGE_FEATURES",
    "UDFS",
    "AdqlError",
    "Catalog",
    "Translation",
    "Udf",
    "parse",
    "translate",
]
