"""Database access: the embedded server or DATABASE_URL, and schema migration."""

from escape_vo.db.session import database, ensure_schema

__all__ = ["database", "ensure_schema"]
