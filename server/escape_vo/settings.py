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
    # VO Registry records (served over OAI-PMH at /oai) and coverage MOCs (/coverage)
    registry_title: str = "escape-vo spectra archive"  # title of the records (+ " TAP service"...)
    registry_short_name: str = "escape-vo"  # shortName; services add " TAP" etc., cut to 16
    registry_description: str = (  # what the archive holds: the <description> of the records
        "An archive of 1-D astronomical spectra (ESO Phase 3, SDSS/BOSS and other instruments) "
        "with their original files, served through TAP (ObsCore 1.1), SSA 1.1, DataLink 1.1 and "
        "SODA 1.0, with embeddings to find similar spectra."
    )
    registry_publisher: str = "escape-vo operators"  # organisation running it (vr:Organisation)
    registry_creator: str = "escape-vo operators"  # creator of the data ("Last, F." for people)
    registry_contact_name: str = "Archive support"  # contact person or team of every record
    registry_contact_email: str = "archive@escape.example"  # contact e-mail; OAI-PMH adminEmail
    registry_subjects: str = "spectroscopy,astronomical-databases"  # UAT terms, comma-separated
    registry_content_level: str = "research"  # comma-separated: general, university, research
    registry_waveband: str = ""  # messenger terms, comma-separated; empty: from the spectra
    registry_reference_url: str | None = None  # page describing the archive; default: landing page
    registry_rights: str = (  # usage conditions of the data, in words
        "The spectra are public; cite the archives and papers they come from."
    )
    registry_rights_uri: str | None = None  # URI of a licence, e.g. a Creative Commons one
    registry_page_size: int = 100  # records per OAI-PMH response before a resumptionToken
    job_workers: int = 2  # async jobs each server process runs at once (0: `escape-vo worker` only)
    # Async jobs then belong to that user, who alone sees them; unset, every job is anonymous.
    # Only behind a proxy that sets this header on every request and drops it from clients'.
    trusted_user_header: str | None = None  # header naming the user, set by an auth proxy
    coverage_order: int = 9  # HEALPix order of the /coverage MOCs (9: cells of 6.9 arcmin)

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
