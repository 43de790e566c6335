"""How a pgvector HNSW index scan is set up so that its answer is whole.

By default an HNSW scan collects hnsw.ef_search (40) candidates and stops: ORDER BY distance
LIMIT 60 gets 40 rows, and any condition the index cannot see (an instrument, a region, an
older model version being replaced) is applied to those 40 afterwards, so LIMIT 10 may get 2.
Nothing marks such an answer as short. Iterative scans (pgvector 0.8) go on until enough rows
pass, in strict distance order, but stop at hnsw.max_scan_tuples (20,000) visited rows or at
hnsw.scan_mem_multiplier times work_mem; both are raised so that only the statement timeout
ends a scan. The similarity endpoint and ADQL's ivo_embedding_distance use the same settings,
so they give the same neighbours.
"""

from __future__ import annotations

MAX_BREADTH = 1000  # pgvector's ceiling for hnsw.ef_search


def breadth(rows: int | None) -> int:
    """ef_search for a scan that must yield `rows` rows: 4x that, at least 64 (recall@10 of
    0.99 on 1,000,000 demo vectors, bench/embeddings_search.py), at most MAX_BREADTH."""
    return min(max(64, 4 * (rows or 0)), MAX_BREADTH)


def scan_settings(rows: int | None, local: bool) -> str:
    """One statement (one round trip) setting up the scan: for the current transaction only
    (`local`) or for the session (an autocommit connection, where a transaction is one
    statement)."""
    values = {
        "hnsw.ef_search": breadth(rows),
        "hnsw.iterative_scan": "strict_order",
        "hnsw.max_scan_tuples": 2**31 - 1,
        "hnsw.scan_mem_multiplier": 1000,
    }
    flag = "true" if local else "false"
    return "SELECT " + ", ".join(f"set_config('{k}', '{v}', {flag})" for k, v in values.items())
