"""TAP_SCHEMA 1.1 rows generated from the declarations: pure data, no database."""

from __future__ import annotations

from typing import Any

from escape_vo.schema.model import Schema, Table, load_schemas


def _size(arraysize: str | None) -> int | None:
    """TAP 1.0 'size': the integer length of a 1-D array, when there is one."""
    if not arraysize:
        return None
    digits = arraysize.rstrip("*")
    return int(digits) if digits.isdigit() and "x" not in arraysize else None


def tap_schema_rows(schemas: tuple[Schema, ...] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Rows for tap_schema.{schemas,tables,columns,keys,key_columns}, published tables only."""
    schemas = schemas or load_schemas()
    rows: dict[str, list[dict[str, Any]]] = {
        "schemas": [], "tables": [], "columns": [], "keys": [], "key_columns": [],
    }  # fmt: skip
    table_index = 0
    for s_index, schema in enumerate(schemas):
        published = [t for t in schema.tables if t.published]
        if not published:
            continue
        rows["schemas"].append(
            {
                "schema_name": schema.name,
                "utype": schema.utype,
                "description": schema.description,
                "schema_index": s_index,
            }
        )
        for table in published:
            table_index += 1
            rows["tables"].append(
                {
                    "schema_name": schema.name,
                    "table_name": table.qualified_name,
                    "table_type": table.type,
                    "utype": table.utype,
                    "description": table.description,
                    "table_index": table_index,
                    "nrows": None,
                }
            )
            rows["columns"].extend(_column_rows(table))
            rows["keys"].extend(_key_rows(table)[0])
            rows["key_columns"].extend(_key_rows(table)[1])
    return rows


def _column_rows(table: Table) -> list[dict[str, Any]]:
    return [
        {
            "table_name": table.qualified_name,
            "column_name": col.adql_name,
            "datatype": col.datatype,
            "arraysize": col.arraysize,
            "size": _size(col.arraysize),
            "xtype": col.xtype,
            "unit": col.unit,
            "ucd": col.ucd,
            "utype": col.utype,
            "description": col.description,
            "principal": int(col.principal),
            "indexed": int(col.indexed),
            "std": int(col.std),
            "column_index": index,
        }
        for index, col in enumerate(table.columns, start=1)
    ]


def _key_rows(table: Table) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    keys, key_columns = [], []
    for n, fk in enumerate(table.foreign_keys, start=1):
        key_id = f"{table.qualified_name}-fk{n}"
        keys.append(
            {
                "key_id": key_id,
                "from_table": table.qualified_name,
                "target_table": fk.target,
                "utype": None,
                "description": fk.description or None,
            }
        )
        for src, dst in zip(fk.columns, fk.target_columns, strict=True):
            key_columns.append({"key_id": key_id, "from_column": src, "target_column": dst})
    return keys, key_columns
