"""Who the client's requests are from: the identity of the user's requests.Session, carried over.

pyvo sends TAP, SSA and DataLink queries through a requests.Session, which holds what an
archive with proprietary data asks for (a token header, a login cookie, a user and password).
The downloads, DataLink batches, cutouts and similar-spectra queries go through the Downloader's
aiohttp session instead, so this carries that identity over: the session's headers, its cookies
(each for the domain and path it was set for, as requests sends them) and its basic auth.
"""

from __future__ import annotations

import base64
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.cookiejar import Cookie
from http.cookies import Morsel

import aiohttp
from yarl import URL

# requests' defaults and headers about the connection: the Downloader sets its own.
_NOT_CARRIED = {"user-agent", "accept-encoding", "accept", "connection", "content-length", "host"}


@dataclass(frozen=True)
class Identity:
    """Headers, cookies and basic auth sent with every request of a Downloader."""

    headers: Mapping[str, str] = field(default_factory=dict)
    cookies: tuple[Cookie, ...] = ()
    auth: tuple[str, str] | None = None

    @classmethod
    def of(cls, session: object) -> Identity | None:
        """The identity of a requests.Session (None for none). An auth object other than a
        (user, password) pair or HTTPBasicAuth cannot be replayed by another HTTP library: it
        is left out, with a warning that says how to pass it instead."""
        if session is None:
            return None
        headers = {
            str(k): str(v)
            for k, v in getattr(session, "headers", {}).items()
            if str(k).lower() not in _NOT_CARRIED
        }
        cookies = tuple(getattr(session, "cookies", ()) or ())
        auth = getattr(session, "auth", None)
        if auth is not None and not (isinstance(auth, tuple) and len(auth) == 2):
            user, password = getattr(auth, "username", None), getattr(auth, "password", None)
            if isinstance(user, str | bytes) and isinstance(password, str | bytes):
                auth = (user, password)
            else:
                warnings.warn(
                    f"the session's auth ({type(auth).__name__}) is not used for downloads, "
                    "DataLink, cutouts and similar spectra; put what it sends in "
                    "session.headers (e.g. session.headers['Authorization'] = 'Bearer ...')",
                    stacklevel=3,
                )
                auth = None
        if not headers and not cookies and auth is None:
            return None
        return cls(headers, cookies, (_text(auth[0]), _text(auth[1])) if auth else None)

    def request_headers(self) -> dict[str, str]:
        """The headers to send, basic auth included (RFC 7617, UTF-8 as requests encodes it);
        aiohttp drops Authorization when a redirect leads to another host, as requests does."""
        headers = dict(self.headers)
        if self.auth:
            pair = f"{self.auth[0]}:{self.auth[1]}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        return headers

    def cookie_jar(self) -> aiohttp.CookieJar:
        """An aiohttp jar holding these cookies, each scoped as requests scoped it; it accepts
        cookies of archives on a bare IP address (a laptop, a test), as requests does."""
        jar = aiohttp.CookieJar(unsafe=True)
        for c in self.cookies:
            if c.value is None:
                continue
            if not c.domain:  # set by hand without a domain: requests sends it everywhere
                jar.update_cookies({c.name: c.value})
                continue
            morsel: Morsel = Morsel()
            morsel.set(c.name, c.value, c.value)
            if c.domain_specified:  # a Domain attribute: the domain and its subdomains
                morsel["domain"] = c.domain
            morsel["path"] = c.path or "/"
            morsel["secure"] = bool(c.secure)
            scheme = "https" if c.secure else "http"
            jar.update_cookies(
                [(c.name, morsel)], URL.build(scheme=scheme, host=c.domain.lstrip("."))
            )
        return jar


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
