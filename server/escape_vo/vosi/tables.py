"""VOSI tables (VODataService 1.2 tableset) generated from the schema declarations."""

from __future__ import annotations

from pydantic_xml import attr
from vo_models.vodataservice.models import DataType, FKColumn, ForeignKey, TableParam, TableSchema
from vo_models.vosi.tables.models import VOSITable, VOSITableSet

from escape_vo.schema.model import Column, Schema, Table


class VSDataType(DataType):
    """vs:VOTableType with the extendedType attribute (where VODataService puts the xtype)."""

    extended_type: str | None = attr(name="extendedType", default=None)


def _column(col: Column, table: Table) -> TableParam:
    """VODataService flags: indexed, primary (part of the primary key), nullable."""
    flags = [
        flag
        for flag, on in (
            ("indexed", col.indexed),
            ("primary", col.name in table.primary_key),
            ("nullable", col.nullable),
        )
        if on
    ]
    return TableParam(
        column_name=col.adql_name,
        description=col.description or None,
        unit=col.unit,
        ucd=col.ucd,
        utype=col.utype,
        datatype=VSDataType(value=col.datatype, arraysize=col.arraysize, extended_type=col.xtype),
        flag=flags,
    )


def vosi_table(table: Table, nrows: int | None, detail: bool = True) -> VOSITable:
    return VOSITable(
        table_type="view" if table.type == "view" else "base_table",
        table_name=table.qualified_name,
        description=table.description,
        utype=table.utype,
        nrows=nrows,
        column=[_column(c, table) for c in table.columns] if detail else [],
        foreign_key=[
            ForeignKey(
                target_table=fk.target,
                fk_column=[
                    FKColumn(from_column=a, target_column=b)
                    for a, b in zip(fk.columns, fk.target_columns, strict=True)
                ],
                description=fk.description or None,
            )
            for fk in table.foreign_keys
        ]
        if detail
        else [],
    )


def tableset(
    schemas: tuple[Schema, ...], nrows: dict[str, int], detail: bool = True
) -> VOSITableSet:
    out = []
    for schema in schemas:
        tables = [t for t in schema.tables if t.published]
        if not tables:
            continue
        out.append(
            TableSchema(
                schema_name=schema.name,
                description=schema.description or None,
                utype=schema.utype,
                table=[vosi_table(t, nrows.get(t.qualified_name), detail) for t in tables],
            )
        )
    return VOSITableSet(tableset_schema=out)
