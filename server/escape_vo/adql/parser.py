"""ADQL text to the tree of `ast` nodes, with syntax errors a person can act on.

The lark LALR(1) parser is built once per process (about 0.2 s, on first use);
the tree is built during parsing by an inline transformer, so no intermediate lark tree exists.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from . import ast
from .errors import AdqlError, error_at
from .keywords import ADQL_RESERVED, is_reserved


def parse(text: str) -> ast.Statement:
    """Parse one ADQL query; raises AdqlError with line and column on any syntax error."""
    if "\x00" in text:
        raise AdqlError("the query contains a NUL character")
    try:
        return _parser().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None


@lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = resources.files(__package__).joinpath("grammar.lark").read_text()
    return Lark(
        grammar,
        parser="lalr",
        lexer="contextual",
        transformer=_Builder(),
        maybe_placeholders=True,
        lexer_callbacks={"REGULAR_ID": _keyword_as_keyword},
        cache=False,  # a pickle in a shared temp dir is not worth 0.2 s once per process
    )


@lru_cache(maxsize=1)
def _keyword_types() -> dict[str, str]:
    """Keyword text (lower case) to terminal name, for every word the grammar uses."""
    out = {}
    for term in _parser().terminals:
        value = term.pattern.value
        if term.pattern.type == "str" and value.replace("_", "").isalnum() and value[0].isalpha():
            out[value.lower()] = term.name
    return out


def _keyword_as_keyword(token: Token) -> Token:
    """A grammar keyword stays a keyword where the grammar does not expect it.

    The contextual lexer would read FROM in "SELECT FROM t" as a name, since no keyword fits
    there; retyping it makes the parser report "unexpected 'FROM'" with what it expected.
    """
    kind = _keyword_types().get(token.value.lower())
    if kind is not None and is_reserved(token.value):
        token.type = kind
    return token


def _pos(token: Token) -> ast.Pos:
    return (token.line, token.column)


def _node_pos(node: object) -> ast.Pos:
    return getattr(node, "pos", None)


def _tokens_of(items: list) -> list[Token]:
    return [t for t in items if isinstance(t, Token)]


class _Builder(Transformer):
    """Callbacks named after the grammar's rules and aliases; each returns an ast node."""

    # ---- statement and queries ----
    def start(self, items):
        if len(items) == 2:
            return ast.Statement(query=_as_query(items[1]), ctes=tuple(items[0]))
        return ast.Statement(query=_as_query(items[0]))

    def with_clause(self, items):
        seen: set[str] = set()
        for cte in items:
            if cte.name.key in seen:
                raise error_at(f"the WITH clause defines {cte.name} twice", cte.name.pos)
            seen.add(cte.name.key)
        return items

    def cte(self, items):
        return ast.CommonTable(name=items[0], query=_as_query(items[1]))

    def paren_query(self, items):
        return _as_query(items[0])

    def query_expr(self, items):
        body, order, offset = items
        return ast.Query(body=body, order_by=tuple(order or ()), offset=offset, pos=_node_pos(body))

    def query_offset(self, items):
        body, offset = items
        return ast.Query(body=body, offset=offset, pos=_node_pos(body))

    def setop(self, items):
        left, (op, all_), right = items
        return ast.SetOp(op=op, left=left, right=right, all=all_, pos=_node_pos(left))

    def setop_ue(self, items):
        return (items[0].value.upper(), items[1] is not None)

    setop_i = setop_ue

    def select_core(self, items):
        quant, top, select_list, from_, where, group_by, having = items
        return ast.Select(
            items=tuple(select_list),
            from_=tuple(from_),
            distinct=quant == "DISTINCT",
            top=top,
            where=where,
            group_by=tuple(group_by or ()),
            having=having,
            pos=_node_pos(select_list[0]),
        )

    def set_quantifier(self, items):
        return items[0].value.upper()

    def top(self, items):
        return int(items[0])

    def select_list(self, items):
        return items

    def select_expr(self, items):
        expr, alias = items
        return ast.SelectExpr(expr=expr, alias=alias, pos=_node_pos(expr))

    def select_star(self, items):
        parts = items[0]
        return ast.SelectStar(qualifier=parts, pos=parts[0].pos)

    def select_all(self, items):
        return ast.SelectStar()

    def alias(self, items):
        return items[0]

    # ---- FROM ----
    def from_clause(self, items):
        return items

    def table(self, items):
        parts, alias = items
        if len(parts) > 3:
            raise error_at(
                f"'{ast.dotted_text(parts)}' has too many parts for a table name "
                "(at most catalog.schema.table)",
                parts[0].pos,
            )
        return ast.TableName(parts=parts, alias=alias, pos=parts[0].pos)

    def derived(self, items):
        query, alias = items
        return ast.Derived(query=_as_query(query), alias=alias, pos=alias.pos)

    def natural_join(self, items):
        left, kind, right = items
        return ast.Join(
            kind=kind or "INNER", left=left, right=right, natural=True, pos=_node_pos(left)
        )

    def join(self, items):
        left, kind, right, (spec_kind, spec) = items
        return ast.Join(
            kind=kind or "INNER",
            left=left,
            right=right,
            on=spec if spec_kind == "on" else None,
            using=spec if spec_kind == "using" else None,
            pos=_node_pos(left),
        )

    def cross_join(self, items):
        left, right = items
        return ast.Join(kind="CROSS", left=left, right=right, pos=_node_pos(left))

    def join_kind(self, items):
        return items[0].value.upper()

    def join_on(self, items):
        return ("on", items[0])

    def join_using(self, items):
        return ("using", tuple(items))

    # ---- clauses ----
    def where(self, items):
        return items[0]

    having = where

    def group_by(self, items):
        return items

    def order_by(self, items):
        return items

    def order_item(self, items):
        expr, direction = items
        return ast.OrderItem(expr=expr, desc=direction == "DESC", pos=_node_pos(expr))

    def direction(self, items):
        return items[0].value.upper()

    def offset(self, items):
        return int(items[0])

    # ---- conditions ----
    def or_(self, items):
        return ast.Binary("OR", items[0], items[1], pos=_node_pos(items[0]))

    def and_(self, items):
        return ast.Binary("AND", items[0], items[1], pos=_node_pos(items[0]))

    def not_(self, items):
        return ast.Unary("NOT", items[1], pos=_pos(items[0]))

    def compare(self, items):
        left, op, right = items
        return ast.Compare(op, left, right, pos=_node_pos(left))

    def comp_op(self, items):
        op = items[0].value
        return "<>" if op == "!=" else op

    def between(self, items):
        value, neg, low, high = items
        return ast.Between(value, low, high, negated=neg is not None, pos=_node_pos(value))

    def in_query(self, items):
        value, neg, query = items
        return ast.InQuery(value, _as_query(query), negated=neg is not None, pos=_node_pos(value))

    def in_list(self, items):
        value, neg, *values = items
        return ast.InList(value, tuple(values), negated=neg is not None, pos=_node_pos(value))

    def like(self, items):
        value, neg, op, pattern, escape = items
        return ast.Like(
            value,
            pattern,
            escape=escape,
            negated=neg is not None,
            ilike=op == "ILIKE",
            pos=_node_pos(value),
        )

    def like_op(self, items):
        return items[0].value.upper()

    def escape(self, items):
        return items[0]

    def is_null(self, items):
        value, neg, _null = items
        return ast.IsNull(value, negated=neg is not None, pos=_node_pos(value))

    def exists(self, items):
        query = _as_query(items[0])
        return ast.Exists(query, pos=query.pos)

    # ---- values ----
    def _binary(op):
        def build(self, items):
            return ast.Binary(op, items[0], items[1], pos=_node_pos(items[0]))

        return build

    bit_or = _binary("|")
    bit_xor = _binary("^")
    bit_and = _binary("&")
    concat = _binary("||")
    add = _binary("+")
    sub = _binary("-")
    mul = _binary("*")
    div = _binary("/")
    del _binary

    def neg(self, items):
        return ast.Unary("-", items[0], pos=_node_pos(items[0]))

    def pos(self, items):
        return ast.Unary("+", items[0], pos=_node_pos(items[0]))

    def bit_not(self, items):
        return ast.Unary("~", items[0], pos=_node_pos(items[0]))

    def int_lit(self, items):
        return ast.Literal("int", int(items[0]), pos=_pos(items[0]))

    def hex_lit(self, items):
        return ast.Literal("int", int(items[0].value[2:], 16), pos=_pos(items[0]))

    def float_lit(self, items):
        return ast.Literal("float", float(items[0]), pos=_pos(items[0]))

    def string_lit(self, items):
        value = "".join(t.value[1:-1].replace("''", "'") for t in items)
        return ast.Literal("string", value, pos=_pos(items[0]))

    def null_lit(self, items):
        return ast.Literal("null", None, pos=_pos(items[0]))

    def column_ref(self, items):
        parts = items[0]
        if len(parts) > 4:
            raise error_at(
                f"'{ast.dotted_text(parts)}' has too many parts for a column name "
                "(at most catalog.schema.table.column)",
                parts[0].pos,
            )
        return ast.ColumnRef(parts=parts, pos=parts[0].pos)

    def func_call(self, items):
        name, args = items
        udf = name.type == "REGULAR_ID"
        fname = name.value.lower() if udf else name.value.upper()
        return ast.FuncCall(fname, tuple(args or ()), udf=udf, pos=_pos(name))

    def args(self, items):
        return items

    def agg_call(self, items):
        name, quant, expr = items
        return ast.Aggregate(name.value.upper(), expr, distinct=quant == "DISTINCT", pos=_pos(name))

    def agg_star(self, items):
        name = items[0]
        if name.value.upper() != "COUNT":
            raise error_at(f"{name.value.upper()}(*) is not allowed; only COUNT(*)", _pos(name))
        return ast.Aggregate("COUNT", None, pos=_pos(name))

    def agg_name(self, items):
        return items[0]

    def func_name(self, items):
        return items[0]

    def cast(self, items):
        expr, (type_name, length, pos) = items
        return ast.Cast(expr, type_name, length, pos=_node_pos(expr) or pos)

    def cast_type(self, items):
        tokens, length = items
        name = " ".join(t.value.upper() for t in tokens)
        if length is not None:
            if name not in ("CHAR", "VARCHAR"):
                raise error_at(f"{name} takes no length", _pos(length))
            if int(length) < 1:
                raise error_at(f"{name} length must be at least 1", _pos(length))
        return (name, None if length is None else int(length), _pos(tokens[0]))

    def type_name(self, items):
        return items

    def searched_case(self, items):
        *whens, else_ = items
        return ast.Case(None, tuple(whens), else_, pos=_node_pos(whens[0][0]))

    def simple_case(self, items):
        operand, *whens, else_ = items
        return ast.Case(operand, tuple(whens), else_, pos=_node_pos(operand))

    def when(self, items):
        return (items[0], items[1])

    def else_(self, items):
        return items[0]

    def scalar_subquery(self, items):
        query = _as_query(items[0])
        return ast.ScalarSubquery(query, pos=query.pos)

    # ---- names ----
    def dotted(self, items):
        if len(items) == 1:
            return (items[0],)
        return (*items[0], items[1])

    def identifier(self, items):
        token = items[0]
        if token.type == "DELIMITED_ID":
            name = token.value[1:-1].replace('""', '"')
            return ast.Ident(name, True, _pos(token))
        if is_reserved(token.value):
            kind = (
                "an ADQL function name" if token.value.upper() in ADQL_RESERVED else "an SQL word"
            )
            raise error_at(
                f"'{token.value}' is a reserved word ({kind}) and cannot be used as a name; "
                f'if it is a column or table name, write it in double quotes: "{token.value}"',
                _pos(token),
            )
        return ast.Ident(token.value, False, _pos(token))


def _as_query(node) -> ast.Query:
    if isinstance(node, ast.Query):
        return node
    return ast.Query(body=node, pos=_node_pos(node))


# ---- syntax errors ---------------------------------------------------------------------

_FRIENDLY = {
    "REGULAR_ID": "a name",
    "DELIMITED_ID": "a name",
    "STRING": "a string",
    "INT": "a number",
    "FLOAT": "a number",
    "HEX": "a number",
    "NE": "'<>'",
    "$END": "end of query",
}
# Terminals that can start an expression; when many are expected we say "an expression".
_EXPR_START = {
    "REGULAR_ID", "DELIMITED_ID", "STRING", "INT", "FLOAT", "HEX", "NULL", "LPAR", "MINUS",
    "PLUS", "TILDE", "_CAST", "_CASE", "NOT", "_EXISTS", "COUNT", "AVG", "MIN", "MAX", "SUM",
}  # fmt: skip


def _terminal_text(name: str) -> str:
    if name in _FRIENDLY:
        return _FRIENDLY[name]
    try:
        term = _parser().get_terminal(name)
    except KeyError:
        return name
    pattern = term.pattern
    if pattern.type == "str":
        value = pattern.value
        return value.upper() if value.isalnum() or "_" in value else f"'{value}'"
    return name.lstrip("_")


def _expected_text(expected: set[str]) -> str:
    names = set(expected)
    funcs = {n for n in names if _is_function_keyword(n)}
    words: list[str] = []
    if len((names & _EXPR_START) | funcs) >= 5:
        names -= _EXPR_START | funcs
        words.append("an expression")
    concat = {n for n in names if _terminal_text(n) == "'||'"}
    if len(names & _OPERATORS) >= 4:
        names -= _OPERATORS | concat
        words.append("an operator")
    texts = sorted({_terminal_text(n) for n in names}, key=lambda s: (s.startswith("'"), s))
    words += [t for t in texts if t not in words]
    if len(words) > 8:
        words = [*words[:8], "..."]
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


_FUNCTION_KEYWORDS = set(ADQL_RESERVED - {"TOP", "OFFSET", "ILIKE", "BIGINT"}) | {
    "LOWER", "UPPER", "COALESCE", "NULLIF",
}  # fmt: skip
# Terminals that continue an expression; when many are expected we say "an operator".
_OPERATORS = {
    "EQ", "NE", "LT", "GT", "LE", "GE", "PLUS", "MINUS", "STAR", "SLASH", "VBAR", "CIRCUMFLEX",
    "AMPERSAND", "_AND", "_OR", "NOT", "_BETWEEN", "_IN", "_IS", "LIKE", "ILIKE", "DOT",
}  # fmt: skip


def _is_function_keyword(name: str) -> bool:
    return name in _FUNCTION_KEYWORDS


_PREV_WORD = re.compile(r"([A-Za-z][A-Za-z0-9_]*)\s*$")


def _syntax_error(text: str, exc: UnexpectedInput) -> AdqlError:
    line, column = exc.line, exc.column
    where = f"syntax error at line {line}, column {column}"
    if isinstance(exc, UnexpectedCharacters):
        char = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
        hint = {
            ";": "; ADQL takes exactly one query, without ';'",
            "'": "; a string literal is not closed",
            '"': "; a delimited name is not closed",
            "_": "; names start with a letter (write other names in double quotes)",
        }.get(char, "")
        return AdqlError(f"{where}: unexpected character {char!r}{hint}", line, column)
    if isinstance(exc, UnexpectedToken | UnexpectedEOF):
        token = getattr(exc, "token", None)
        at_end = token is None or token.type == "$END"
        found = "end of query" if at_end else repr(str(token.value))
        expected = set(_accepts(exc) or exc.expected or ())
        message = f"{where}: unexpected {found}"
        if expected:
            message += f"; expected {_expected_text(expected)}"
        if "LPAR" in expected and token is not None and token.start_pos is not None:
            prev = _PREV_WORD.search(_strip_comments(text[: token.start_pos]))
            if prev and prev.group(1).upper() in ADQL_RESERVED | {"LOWER", "UPPER", "COALESCE"}:
                word = prev.group(1)
                message += (
                    f" ('{word}' is a reserved word; if it is a column name, write it in double "
                    f'quotes: "{word}")'
                )
        return AdqlError(message, line, column)
    return AdqlError(f"{where}: {exc}", line, column)


def _accepts(exc: UnexpectedInput) -> set[str]:
    """What the parser would take after reducing what it can (more exact than `expected`)."""
    try:
        return set(exc.accepts or ())
    except Exception:  # the interactive parser cannot always replay; fall back to `expected`
        return set()


def _strip_comments(text: str) -> str:
    return re.sub(r"--[^\n]*", "", text)
