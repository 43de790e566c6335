"""DataLink 1.1 for the spectra: a registry of link providers and the {links} endpoint.

A provider is a callable `(context, spectrum) -> iterable of Link`; register one with
`register(provider)` (or the `@link_provider` decorator) and every DataLink document lists its
links from then on. The built-in providers (#this, #derivation, #preview, #cutout,
#auxiliary) are in escape_vo.datalink.providers.
"""

from escape_vo.datalink.registry import (
    Link,
    LinkContext,
    link_provider,
    register,
    registered_providers,
)

__all__ = ["Link", "LinkContext", "link_provider", "register", "registered_providers"]
