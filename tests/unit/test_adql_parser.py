"""ADQL syntax: lexing rules, the tree the parser builds, and syntax errors a person can act on."""

from __future__ import annotations

import pytest

from escape_vo.adql import AdqlError, parse
from escape_vo.adql import ast as a


def select(text: str) -> a.Select:
    body = parse(text).query.body
    assert isinstance(body, a.Select)
    return body


def where(text: str) -> a.Expr:
    return select(f"SELECT x FROM t WHERE {text}").where


def error(text: str) -> AdqlError:
    with pytest.raises(AdqlError) as info:
        parse(text)
    return info.value


def test_keywords_are_case_insensitive_and_whitespace_free_where_unambiguous():
    s = select("seLect  DISTINCT\n\tTOP 10 x ,y FROM t")
    assert s.distinct and s.top == 10 and len(s.items) == 2
    s = select("select all(a+b)X from most")
    assert s.items[0].alias.name == "X"
    s = select("SELECT 89x FROM z")
    assert s.items[0].expr == a.Literal("int", 89, (1, 8)) and s.items[0].alias.name == "x"


def test_comments_and_string_continuation():
    s = select("-- intro\nSELECT x -- c1\nFROM t -- c2\nWHERE a = 'qua' -- cmt\n'tsch'")
    assert s.where.right.value == "quatsch"
    assert where("a = 'it''s'").right.value == "it's"
    assert where("a = '--not a comment'").right.value == "--not a comment"


def test_numeric_literals():
    items = select("SELECT 42, 3.14, 10e-5, 1E3, .5, 1., 0x1F FROM t").items
    values = [i.expr.value for i in items]
    assert values == [42, 3.14, 1e-4, 1000.0, 0.5, 1.0, 31]
    assert [i.expr.kind for i in items] == ["int", "float", "float", "float", "float", "float",
                                            "int"]  # fmt: skip


def test_delimited_identifiers_keep_case_and_quotes():
    s = select('SELECT "Inch""ing", "select" FROM "Murks Schema"."Murks Tabelle"')
    first = s.items[0].expr.parts[0]
    assert first == a.Ident('Inch"ing', True, (1, 8))
    assert s.from_[0].parts[1].name == "Murks Tabelle"


def test_operator_precedence():
    e = where("a = 1 OR b = 2 AND NOT c = 3")
    assert e.op == "OR" and e.right.op == "AND" and e.right.right.op == "NOT"
    e = select("SELECT 1 + 2 * 3 - 4, a || b || c, 1 | 2 ^ 3 & 4 FROM t").items
    assert e[0].expr.op == "-" and e[0].expr.left.right.op == "*"
    assert e[1].expr.op == "||" and e[1].expr.left.op == "||"
    assert e[2].expr.op == "|" and e[2].expr.right.op == "^" and e[2].expr.right.right.op == "&"
    e = where("x BETWEEN 1 AND 2 AND y NOT LIKE 'a%' ESCAPE '!'")
    assert isinstance(e.left, a.Between) and isinstance(e.right, a.Like) and e.right.negated


def test_set_operation_precedence_and_order_by_on_the_whole():
    q = parse("SELECT a FROM t UNION SELECT a FROM u INTERSECT SELECT a FROM v ORDER BY a").query
    assert q.order_by and isinstance(q.body, a.SetOp) and q.body.op == "UNION"
    assert isinstance(q.body.right, a.SetOp) and q.body.right.op == "INTERSECT"
    q = parse("(SELECT TOP 1 a FROM t ORDER BY a) UNION ALL (SELECT a FROM u) OFFSET 3").query
    assert q.offset == 3 and q.body.all and q.body.left.order_by


def test_nested_parentheses_around_queries():
    assert isinstance(parse("((SELECT a FROM t))").query.body, a.Select)
    e = where("x IN ((SELECT a FROM t))")
    assert isinstance(e, a.InQuery)
    e = where("x = ((SELECT a FROM t)) + 1")
    assert isinstance(e.right, a.Binary) and isinstance(e.right.left, a.ScalarSubquery)


def test_joins():
    s = select("SELECT x FROM a NATURAL LEFT OUTER JOIN b JOIN c USING (x, y), d CROSS JOIN e")
    j = s.from_[0]
    assert j.kind == "INNER" and [i.name for i in j.using] == ["x", "y"]
    assert j.left.natural and j.left.kind == "LEFT"
    assert s.from_[1].kind == "CROSS"


def test_with_clause_only_at_the_top():
    stmt = parse("WITH a AS (SELECT 1 FROM t), b AS (SELECT 2 FROM a) SELECT * FROM b")
    assert [c.name.name for c in stmt.ctes] == ["a", "b"]
    assert "unexpected 'WITH'" in str(error("SELECT * FROM (WITH a AS (SELECT 1 FROM t) "
                                            "SELECT * FROM a) AS q"))  # fmt: skip
    assert "twice" in str(error("WITH a AS (SELECT 1 FROM t), A AS (SELECT 2 FROM t) SELECT 1 "
                                "FROM a"))  # fmt: skip


def test_syntax_error_message_points_at_the_token():
    exc = error("SELEC * FROM x")
    assert str(exc) == (
        "syntax error at line 1, column 1: unexpected 'SELEC'; expected SELECT, WITH or '('"
    )
    assert (exc.line, exc.column) == (1, 1)
    exc = error("SELECT a\nFROM t\nWHERE a >")
    assert (exc.line, exc.column) == (3, 9)  # end of query: lark points at the last token
    assert "unexpected end of query; expected an expression" in str(exc)
    assert "expected FROM" in str(error("SELECT *"))
    assert "expected ON or USING" in str(error("SELECT * FROM a JOIN b"))
    assert "unexpected 'FROM'" in str(error("SELECT FROM t"))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("SELECT distance FROM stars", "'distance' is a reserved word"),
        ("SELECT size FROM t", '"size"'),
        ("SELECT x FROM t AS user", "'user' is a reserved word"),
        ("SELECT _x FROM t", "names start with a letter"),
        ("SELECT x FROM t; DROP TABLE t", "without ';'"),
        ("SELECT 'abc FROM t", "string literal is not closed"),
        ("SELECT x FROM t WHERE a = 1 /* c */", "unexpected '*'"),
        ("SELECT TOP -1 x FROM t", "expected a number"),
        ("SELECT x FROM t OFFSET 1.5", "unexpected '.5'"),
        ("SELECT x.y.z.a.b FROM t", "too many parts"),
        ("SELECT x FROM a.b.c.d", "too many parts"),
        ("SELECT SUM(*) FROM t", "only COUNT(*)"),
        ("SELECT CAST(x AS INTEGER(3)) FROM t", "takes no length"),
        ("SELECT x FROM t WHERE x = 'a\x00'", "NUL"),
    ],
)
def test_rejected_with_reason(text, fragment):
    assert fragment in str(error(text))


def test_escape_is_a_name_outside_like():
    s = select("SELECT escape.x FROM escape.spectra WHERE a LIKE 'b' ESCAPE 'c'")
    assert s.from_[0].parts[0].name == "escape"
    assert s.where.escape.value == "c"
