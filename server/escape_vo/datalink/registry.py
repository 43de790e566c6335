"""Link providers: small callables that add DataLink rows (and service descriptors) for an ID.

Other features plug in with one line, e.g. a "similar spectra" service:

    @link_provider
    def similar(ctx: LinkContext, spectrum: SpectrumRow) -> Iterable[Link]:
        yield Link("#counterpart", service=ServiceDescriptor(...), description="...")

Providers run in registration order; the rows of one ID stay consecutive (DataLink 1.1 3.2).
A provider that raises does not break the document: its failure becomes an error row
(TransientFault) for that ID, as DataLink allows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from escape_vo.spectra.lookup import SpectrumRow
from escape_vo.spectra.vodoc import ServiceDescriptor


@dataclass(frozen=True)
class LinkContext:
    """What providers may use: the public base URL and the service settings."""

    base_url: str
    settings: object
    preview_dir: object = None


@dataclass(frozen=True)
class Link:
    """One DataLink row: exactly one of access_url, service or error_message is set."""

    semantics: str
    access_url: str | None = None
    service: ServiceDescriptor | None = None
    error_message: str | None = None
    description: str | None = None
    content_type: str | None = None
    content_length: int | None = None
    content_qualifier: str | None = None
    local_semantics: str | None = None

    def __post_init__(self) -> None:
        given = [x is not None for x in (self.access_url, self.service, self.error_message)]
        if sum(given) != 1:
            raise ValueError("a Link needs exactly one of access_url, service, error_message")


LinkProvider = Callable[[LinkContext, SpectrumRow], Iterable[Link]]
_PROVIDERS: list[LinkProvider] = []


def register(provider: LinkProvider) -> LinkProvider:
    """Add a provider (once); returns it, so it also works as a decorator."""
    if provider not in _PROVIDERS:
        _PROVIDERS.append(provider)
    return provider


link_provider = register


def registered_providers() -> tuple[LinkProvider, ...]:
    return tuple(_PROVIDERS)
