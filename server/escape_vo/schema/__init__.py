"""The declarative metadata in `schema/*.yaml`, loaded once, and what is generated from it."""

from escape_vo.schema.model import Column, ForeignKey, Schema, Table, load_schemas, published_tables

__all__ = ["Column", "ForeignKey", "Schema", "Table", "load_schemas", "published_tables"]
