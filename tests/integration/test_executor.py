"""The query executor: read-only role, time limit, empty results, early close."""

from __future__ import annotations

import pytest

from escape_vo.schema.model import Column
from escape_vo.tap.executor import QueryError, QueryPool, ResultStream

X = [Column(name="x", datatype="long")]


def _rows(pool: QueryPool, sql: str, columns: list[Column] = X) -> list:
    return [v for b in ResultStream(pool, sql, columns) for v in b.column(0).to_pylist()]


def test_empty_and_multi_batch_results(db_url: str) -> None:
    pool = QueryPool(db_url, size=2)
    try:
        assert _rows(pool, "SELECT 1::bigint AS x WHERE false") == []
        assert len(_rows(pool, "SELECT g::bigint AS x FROM generate_series(1, 300000) g")) == 300000
    finally:
        pool.close()


def test_queries_cannot_write_or_read_unpublished_tables(db_url: str) -> None:
    pool = QueryPool(db_url, size=1)
    try:
        with pytest.raises(QueryError, match=r"(?i)read-only|permission denied"):
            _rows(pool, "DELETE FROM archive.spectra RETURNING spectrum_id AS x")
        with pytest.raises(QueryError, match=r"(?i)permission denied"):
            _rows(pool, "SELECT count(*) AS x FROM escape.settings")
        assert _rows(pool, "SELECT count(*) AS x FROM archive.spectra") == [0]
    finally:
        pool.close()


def test_time_limit_cancels_with_a_clear_message(db_url: str) -> None:
    pool = QueryPool(db_url, size=1, statement_timeout_s=1)
    try:
        with pytest.raises(QueryError, match="time limit"):
            _rows(pool, "SELECT count(*) AS x FROM generate_series(1, 1000000000)")
        assert _rows(pool, "SELECT 7::bigint AS x") == [7]  # the pool recovered
    finally:
        pool.close()


def test_closing_a_stream_early_frees_its_connection(db_url: str) -> None:
    pool = QueryPool(db_url, size=1)
    try:
        for _ in range(5):
            stream = iter(
                ResultStream(pool, "SELECT g::bigint AS x FROM generate_series(1, 2000000) g", X)
            )
            next(stream)
            stream.close()  # the client went away mid-stream
        assert _rows(pool, "SELECT 3::bigint AS x") == [3]
    finally:
        pool.close()
