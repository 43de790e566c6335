"""Request parameters of GET and POST (urlencoded or multipart), with uploaded files, bounded.

DALI parameters are case-insensitive: they are keyed by lower-case name. File parts (table
uploads) are kept apart, by part name. The body is counted while it streams, so a request larger
than the limit is refused as soon as it passes it, whatever Content-Length claims.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.datastructures import QueryParams, UploadFile
from starlette.requests import Request
from starlette.types import Message, Receive


class RequestTooLarge(ValueError):
    """The request body exceeds the limit; the message gives the limit."""


@dataclass
class Form:
    params: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, UploadFile] = field(default_factory=dict)

    async def close(self) -> None:
        for upload in self.files.values():
            await upload.close()

    def items(self) -> list[tuple[str, str]]:
        """(NAME, value) pairs in upper case, in the order given."""
        return [(k.upper(), v) for k, values in self.params.items() for v in values]


def _limit_message(limit: int) -> str:
    return (
        f"the request is larger than the {limit / 1e6:g} MB this service accepts; "
        "upload smaller tables, or give them as URLs"
    )


def _counting(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise RequestTooLarge(_limit_message(limit))
        return message

    return counted


async def read_form(request: Request, max_bytes: int) -> Form:
    """All parameters and file parts of the request (raises RequestTooLarge or ValueError,
    also for a file part named twice: which one was meant cannot be known)."""
    form = Form()
    items: list[tuple[str, str]] = list(QueryParams(request.url.query).multi_items())
    if request.method == "POST":
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_bytes:
            raise RequestTooLarge(_limit_message(max_bytes))
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            bounded = Request(request.scope, _counting(request.receive, max_bytes))
            data = await bounded.form(max_files=100, max_fields=1000, max_part_size=4_000_000)
            for key, value in data.multi_items():
                if isinstance(value, str):
                    items.append((key, value))
                elif key.lower() in {name.lower() for name in form.files}:
                    await data.close()  # every part's temporary file
                    raise ValueError(
                        f"the file part {key!r} is given twice; send each file part once"
                    )
                else:
                    form.files[key] = value
    for key, value in items:
        form.params.setdefault(key.lower(), []).append(value)
    return form
