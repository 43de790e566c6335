"""The parsed form of an ADQL query: small immutable nodes, each with its (line, column).

The parser builds these from the lark grammar; the translator walks them. Keeping a typed tree of
our own (instead of lark's generic one) makes the translator independent of grammar details.
"""

from __future__ import annotations

from dataclasses import dataclass

Pos = tuple[int, int] | None


@dataclass(frozen=True, slots=True)
class Ident:
    """A name as written: regular names compare case-insensitively, delimited ones exactly."""

    name: str
    quoted: bool
    pos: Pos = None

    @property
    def key(self) -> str:
        return self.name if self.quoted else self.name.lower()

    def matches(self, other: str) -> bool:
        return other == self.name if self.quoted else other.lower() == self.name.lower()

    def __str__(self) -> str:
        return '"' + self.name.replace('"', '""') + '"' if self.quoted else self.name


def dotted_text(parts: tuple[Ident, ...]) -> str:
    return ".".join(str(p) for p in parts)


# ---- expressions -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Literal:
    kind: str  # int, float, string, null
    value: object
    pos: Pos = None


@dataclass(frozen=True, slots=True)
class ColumnRef:
    parts: tuple[Ident, ...]
    pos: Pos = None


@dataclass(frozen=True, slots=True)
class FuncCall:
    name: str  # upper case for ADQL functions, lower case for user-defined ones
    args: tuple[Expr, ...]
    udf: bool = False
    pos: Pos = None


@dataclass(frozen=True, slots=True)
class Aggregate:
    name: str  # COUNT, SUM, AVG, MIN, MAX
    arg: Expr | None  # None for COUNT(*)
    distinct: bool = False
    pos: Pos = None


@dataclass(frozen=True, slots=True)
class Cast:
    expr: Expr
    type_name: str  # CHAR, VARCHAR, SMALLINT, INTEGER, BIGINT, REAL, DOUBLE PRECISION, ...
    length: int | None = None
    pos: Pos = None


@dataclass(frozen=True, slots=True)
class Case:
    operand: Expr | None  # None for a searched CASE
    whens: tuple[tuple[Expr, Expr], ...]
    else_: Expr | None = None
    pos: Pos = None


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # -, +, ~, NOT
    operand: Expr
    pos: Pos = None


@dataclass(frozen=True, slots=True)
class Binary:
    op: str  # + - * / || & | ^ AND OR
    left: Expr
    right: Expr
    pos: Pos = None


@dataclass(frozen=True, slots=True)
class Compare:
    op: str  # = <> < > <= >=
    left: Expr
    right: Expr
    pos: Pos = None


@dataclass(frozen=True, slots=True)
class Between:
    expr: Expr
    low: Expr
    high: Expr
    negated: bool = False
    pos: Pos = None


@dataclass(frozen=True, slots=True)
class InList:
    expr: Expr
    items: tuple[Expr, ...]
    negated: bool = False
    pos: Pos = None


@dataclass(frozen=True, slots=True)
class InQuery:
    expr: Expr
    query: QueryNode
    negated: bool = False
    pos: Pos = None


@dataclass(frozen=True, slots=True)
class Like:
    expr: Expr
    pattern: Expr
    escape: Expr | None = None
    negated: bool = False
    ilike: bool = False
    pos: Pos = None


@dataclass(frozen=True, slots=True)
class IsNull:
    expr: Expr
    negated: bool = False
    pos: Pos = None


@dataclass(frozen=True, slots=True)
class Exists:
    query: QueryNode
    pos: Pos = None


@dataclass(frozen=True, slots=True)
class ScalarSubquery:
    query: QueryNode
    pos: Pos = None


Expr = (
    Literal | ColumnRef | FuncCall | Aggregate | Cast | Case | Unary | Binary | Compare | Between
    | InList | InQuery | Like | IsNull | Exists | ScalarSubquery
)  # fmt: skip


# ---- select lists, FROM ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SelectExpr:
    expr: Expr
    alias: Ident | None = None
    pos: Pos = None


@dataclass(frozen=True, slots=True)
class SelectStar:
    qualifier: tuple[Ident, ...] | None = None  # None for a bare *
    pos: Pos = None


@dataclass(frozen=True, slots=True)
class TableName:
    parts: tuple[Ident, ...]
    alias: Ident | None = None
    pos: Pos = None


@dataclass(frozen=True, slots=True)
class Derived:
    query: QueryNode
    alias: Ident
    pos: Pos = None


@dataclass(frozen=True, slots=True)
class Join:
    kind: str  # INNER, LEFT, RIGHT, FULL, CROSS
    left: FromItem
    right: FromItem
    natural: bool = False
    on: Expr | None = None
    using: tuple[Ident, ...] | None = None
    pos: Pos = None


FromItem = TableName | Derived | Join


# ---- queries -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderItem:
    expr: Expr
    desc: bool = False
    pos: Pos = None


@dataclass(frozen=True, slots=True)
class Select:
    items: tuple[SelectExpr | SelectStar, ...]
    from_: tuple[FromItem, ...]
    distinct: bool = False
    top: int | None = None
    where: Expr | None = None
    group_by: tuple[Expr, ...] = ()
    having: Expr | None = None
    pos: Pos = None


@dataclass(frozen=True, slots=True)
class SetOp:
    op: str  # UNION, EXCEPT, INTERSECT
    left: QueryNode
    right: QueryNode
    all: bool = False
    pos: Pos = None


@dataclass(frozen=True, slots=True)
class Query:
    """A query with its own ORDER BY and OFFSET (a whole query or one in parentheses)."""

    body: Select | SetOp | Query
    order_by: tuple[OrderItem, ...] = ()
    offset: int | None = None
    pos: Pos = None


QueryNode = Select | SetOp | Query


@dataclass(frozen=True, slots=True)
class CommonTable:
    name: Ident
    query: Query


@dataclass(frozen=True, slots=True)
class Statement:
    query: Query
    ctes: tuple[CommonTable, ...] = ()
