"""Service configuration, read once from the environment.

Every `escape-vo` command and the server read the same variables, so `DATA_DIR=x escape-vo ingest`
talks to the same archive that `make demo` serves from `x`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    # Inside the repository when run from a checkout (git-ignored), else the working directory.
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "Makefile").exists() and (parent / "schema").is_dir():
            return parent / "data"
    return Path.cwd() / "data"


class Settings(BaseSettings):
    """All knobs of the service; environment variables use the field name in upper case."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    data_dir: Path = Field(default_factory=_default_data_dir)
    database_url: str | None = None  # external PostgreSQL >= 16 with pgvector; else embedded
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = None  # base URL clients see, e.g. behind a proxy
    ivo_authority: str = "escape.example"  # ivo://<authority>/... for publisher DIDs
    file_store_url: str | None = None  # fsspec URL; default <data_dir>/files
    pg_start_timeout: float = 60.0  # seconds to wait for the embedded server

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"http://{self.host}:{self.port}"

    @property
    def files_url(self) -> str:
        return self.file_store_url or str(self.data_dir / "files")


@lru_cache
def get_settings() -> Settings:
    return Settings()
