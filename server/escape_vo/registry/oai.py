"""OAI-PMH 2.0 for a publishing registry (IVOA Registry Interfaces 1.1), without HTTP or SQL.

`respond(arguments, repository)` turns the arguments of one request into the response document:
the six verbs, selective harvesting by datestamp (day or second granularity) and set,
resumption tokens, deleted records (persistent policy) and the error conditions of section 3.6
of the protocol, each with a message that says what to change. Tokens are stateless (the list
position and the original arguments, base64url-encoded JSON): records are ordered by identifier
and each page continues after the last identifier sent, so a harvest never skips or repeats a
record even when records change between pages.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from lxml import etree

OAI_NS = "http://www.openarchives.org/OAI/2.0/"
OAI_DC_NS = "http://www.openarchives.org/OAI/2.0/oai_dc/"
DC_NS = "http://purl.org/dc/elements/1.1/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
RI_NS = "http://www.ivoa.net/xml/RegistryInterface/v1.0"
FORMATS = {  # metadataPrefix -> (schema, namespace)
    "ivo_vor": ("http://www.ivoa.net/xml/RegistryInterface/RegistryInterface-v1.0.xsd", RI_NS),
    "oai_dc": ("http://www.openarchives.org/OAI/2.0/oai_dc.xsd", OAI_DC_NS),
}
MANAGED_SET = "ivo_managed"
_LISTS = {"from", "until", "set", "resumptionToken"}
VERBS: dict[str, tuple[set[str], set[str]]] = {  # verb -> (required, optional) arguments
    "Identify": (set(), set()),
    "ListMetadataFormats": (set(), {"identifier"}),
    "ListSets": (set(), {"resumptionToken"}),
    "GetRecord": ({"identifier", "metadataPrefix"}, set()),
    "ListIdentifiers": ({"metadataPrefix"}, _LISTS),
    "ListRecords": ({"metadataPrefix"}, _LISTS),
}
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SECOND = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


@dataclass(frozen=True)
class OaiError:
    code: str
    message: str


class _Failed(Exception):
    def __init__(self, *errors: OaiError) -> None:
        self.errors = errors


@dataclass(frozen=True)
class Item:
    """One record of the repository, as its header describes it."""

    identifier: str
    datestamp: datetime
    deleted: bool = False
    sets: tuple[str, ...] = (MANAGED_SET,)


@dataclass
class Repository:
    """What the registry holds; `metadata(identifier, prefix)` gives a record's metadata."""

    base_url: str  # of the OAI-PMH endpoint
    name: str
    admin_emails: Sequence[str]
    items: Sequence[Item]
    metadata: Callable[[str, str], etree._Element]
    identify_description: etree._Element | None = None
    page_size: int = 100
    sets: dict[str, str] = field(default_factory=lambda: {MANAGED_SET: "Managed resources"})


def stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _o(tag: str) -> str:
    return f"{{{OAI_NS}}}{tag}"


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs) -> etree._Element:
    el = etree.SubElement(parent, _o(tag), {k: v for k, v in attrs.items() if v is not None})
    if text is not None:
        el.text = text
    return el


# ---- arguments ------------------------------------------------------------------------------


def _check_arguments(pairs: Sequence[tuple[str, str]]) -> tuple[str, dict[str, str]]:
    """The verb and its arguments, or _Failed with badVerb / badArgument errors."""
    verbs = [v for k, v in pairs if k == "verb"]
    if not verbs:
        raise _Failed(OaiError("badVerb", "the verb argument is missing; use verb=Identify, "
                               "ListMetadataFormats, ListSets, ListIdentifiers, ListRecords or "
                               "GetRecord"))  # fmt: skip
    if len(verbs) > 1:
        raise _Failed(OaiError("badVerb", "verb is given more than once; give it once"))
    verb = verbs[0]
    if verb not in VERBS:
        raise _Failed(OaiError("badVerb", f"{verb!r} is not an OAI-PMH verb; use one of "
                               f"{', '.join(VERBS)} (the names are case-sensitive)"))  # fmt: skip
    required, optional = VERBS[verb]
    args: dict[str, str] = {}
    errors = []
    for key, value in pairs:
        if key == "verb":
            continue
        if key not in required | optional:
            allowed = ", ".join(sorted(required | optional)) or "no other argument"
            errors.append(OaiError("badArgument", f"{verb} does not take {key!r}; it takes "
                                   f"{allowed}"))  # fmt: skip
        elif key in args:
            errors.append(OaiError("badArgument", f"{key} is given more than once"))
        else:
            args[key] = value
    if "resumptionToken" in args:
        others = sorted(set(args) - {"resumptionToken"})
        if others:
            errors.append(OaiError("badArgument", "resumptionToken is an exclusive argument; "
                                   f"leave out {', '.join(others)}"))  # fmt: skip
    else:
        for key in sorted(required - set(args)):
            errors.append(OaiError("badArgument", f"{verb} needs the argument {key}"))
    if errors:
        raise _Failed(*errors)
    return verb, args


def _parse_date(name: str, value: str, end_of_day: bool) -> tuple[datetime, str]:
    if _SECOND.match(value):
        granularity = "second"
        fmt = "%Y-%m-%dT%H:%M:%SZ"
    elif _DAY.match(value):
        granularity = "day"
        fmt = "%Y-%m-%d"
    else:
        raise _Failed(OaiError("badArgument", f"{name}={value} is not a UTC datestamp; write "
                               "YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ"))  # fmt: skip
    try:
        parsed = datetime.strptime(value, fmt).replace(tzinfo=UTC)
    except ValueError:
        raise _Failed(OaiError("badArgument", f"{name}={value} is not a valid date")) from None
    if granularity == "day" and end_of_day:
        parsed += timedelta(days=1, seconds=-1)
    return parsed, granularity


@dataclass(frozen=True)
class _ListQuery:
    prefix: str
    start: str | None  # from, as given
    until: str | None
    set: str | None
    after: str | None = None  # identifier of the last record sent
    cursor: int = 0


def _encode(verb: str, q: _ListQuery) -> str:
    raw = json.dumps(
        {"v": verb, "m": q.prefix, "f": q.start, "u": q.until, "s": q.set, "a": q.after,
         "c": q.cursor}, separators=(",", ":"),
    )  # fmt: skip
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(verb: str, token: str) -> _ListQuery:
    bad = OaiError("badResumptionToken", f"the resumptionToken {token!r} is not one this "
                   "repository issued for this verb; start the list again without it")  # fmt: skip
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        query = _ListQuery(data["m"], data["f"], data["u"], data["s"], data["a"], int(data["c"]))
    except (ValueError, KeyError, TypeError):
        raise _Failed(bad) from None
    if data.get("v") != verb or query.prefix not in FORMATS or query.after is None:
        raise _Failed(bad)
    return query


# ---- verbs ----------------------------------------------------------------------------------


def _header(parent: etree._Element, item: Item) -> None:
    header = _sub(parent, "header", status="deleted" if item.deleted else None)
    _sub(header, "identifier", item.identifier)
    _sub(header, "datestamp", stamp(item.datestamp))
    for spec in item.sets:
        _sub(header, "setSpec", spec)


def _record(parent: etree._Element, item: Item, prefix: str, repo: Repository) -> None:
    record = _sub(parent, "record")
    _header(record, item)
    if not item.deleted:
        _sub(record, "metadata").append(repo.metadata(item.identifier, prefix))


def _find(repo: Repository, identifier: str) -> Item:
    for item in repo.items:
        if item.identifier == identifier:
            return item
    known = ", ".join(i.identifier for i in repo.items if not i.deleted)
    raise _Failed(OaiError("idDoesNotExist", f"no record {identifier!r} here; the records are "
                           f"{known}"))  # fmt: skip


def _check_prefix(prefix: str) -> None:
    if prefix not in FORMATS:
        raise _Failed(OaiError("cannotDisseminateFormat", f"metadataPrefix {prefix!r} is not "
                               f"supported; use {' or '.join(FORMATS)}"))  # fmt: skip


def _identify(out: etree._Element, repo: Repository) -> None:
    el = _sub(out, "Identify")
    _sub(el, "repositoryName", repo.name)
    _sub(el, "baseURL", repo.base_url)
    _sub(el, "protocolVersion", "2.0")
    for email in repo.admin_emails:
        _sub(el, "adminEmail", email)
    earliest = min((i.datestamp for i in repo.items), default=datetime.now(UTC))
    _sub(el, "earliestDatestamp", stamp(earliest))
    _sub(el, "deletedRecord", "persistent")
    _sub(el, "granularity", "YYYY-MM-DDThh:mm:ssZ")
    if repo.identify_description is not None:
        _sub(el, "description").append(repo.identify_description)


def _metadata_formats(out: etree._Element, repo: Repository, args: dict[str, str]) -> None:
    if "identifier" in args:
        _find(repo, args["identifier"])
    el = _sub(out, "ListMetadataFormats")
    for prefix, (schema, namespace) in FORMATS.items():
        fmt = _sub(el, "metadataFormat")
        _sub(fmt, "metadataPrefix", prefix)
        _sub(fmt, "schema", schema)
        _sub(fmt, "metadataNamespace", namespace)


def _list_sets(out: etree._Element, repo: Repository, args: dict[str, str]) -> None:
    if "resumptionToken" in args:
        raise _Failed(OaiError("badResumptionToken", "ListSets fits in one response here and "
                               "issues no resumptionToken; ask again without it"))  # fmt: skip
    el = _sub(out, "ListSets")
    for spec, name in repo.sets.items():
        s = _sub(el, "set")
        _sub(s, "setSpec", spec)
        _sub(s, "setName", name)


def _list(out: etree._Element, repo: Repository, verb: str, args: dict[str, str]) -> None:
    if "resumptionToken" in args:
        query = _decode(verb, args["resumptionToken"])
    else:
        query = _ListQuery(args["metadataPrefix"], args.get("from"), args.get("until"),
                           args.get("set"))  # fmt: skip
    start = until = None
    granularities = set()
    if query.start is not None:
        start, g = _parse_date("from", query.start, end_of_day=False)
        granularities.add(g)
    if query.until is not None:
        until, g = _parse_date("until", query.until, end_of_day=True)
        granularities.add(g)
    if len(granularities) > 1:
        raise _Failed(OaiError("badArgument", "from and until must have the same granularity "
                               "(both YYYY-MM-DD or both YYYY-MM-DDThh:mm:ssZ)"))  # fmt: skip
    if start and until and start > until:
        raise _Failed(OaiError("badArgument", f"from={query.start} is later than "
                               f"until={query.until}"))  # fmt: skip
    _check_prefix(query.prefix)
    matching = sorted(
        (
            i
            for i in repo.items
            if (start is None or i.datestamp >= start)
            and (until is None or i.datestamp <= until)
            and (query.set is None or query.set in i.sets)
        ),
        key=lambda i: i.identifier,
    )
    if query.set is not None and query.set not in repo.sets:
        raise _Failed(OaiError("noRecordsMatch", f"there is no set {query.set!r}; the sets are "
                               f"{', '.join(repo.sets)}"))  # fmt: skip
    if not matching:
        raise _Failed(OaiError("noRecordsMatch", "no record matches these arguments (from, "
                               "until, set); widen them or leave them out"))  # fmt: skip
    remaining = [i for i in matching if query.after is None or i.identifier > query.after]
    page, rest = remaining[: repo.page_size], remaining[repo.page_size :]
    el = _sub(out, verb)
    for item in page:
        if verb == "ListRecords":
            _record(el, item, query.prefix, repo)
        else:
            _header(el, item)
    if rest or query.after is not None:  # a list in several parts ends with an empty token
        cursor = len(matching) - len(remaining)
        token = _sub(el, "resumptionToken", completeListSize=str(len(matching)),
                     cursor=str(cursor))  # fmt: skip
        if rest:
            nxt = _ListQuery(query.prefix, query.start, query.until, query.set,
                             page[-1].identifier, cursor + len(page))  # fmt: skip
            token.text = _encode(verb, nxt)


def _get_record(out: etree._Element, repo: Repository, args: dict[str, str]) -> None:
    item = _find(repo, args["identifier"])
    _check_prefix(args["metadataPrefix"])
    _record(_sub(out, "GetRecord"), item, args["metadataPrefix"], repo)


# ---- the response ---------------------------------------------------------------------------


class OaiFailure(Exception):
    """The arguments are wrong (badVerb or badArgument): answer with `error_document`."""

    def __init__(self, errors: Sequence[OaiError]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = tuple(errors)


def parse_arguments(pairs: Sequence[tuple[str, str]]) -> tuple[str, dict[str, str]]:
    """The verb and its arguments from the request's (name, value) pairs, in the order given."""
    try:
        return _check_arguments(pairs)
    except _Failed as failed:
        raise OaiFailure(failed.errors) from None


def _envelope(base_url: str) -> tuple[etree._Element, etree._Element]:
    root = etree.Element(_o("OAI-PMH"), nsmap={None: OAI_NS, "xsi": XSI_NS})
    root.set(f"{{{XSI_NS}}}schemaLocation", f"{OAI_NS} {OAI_NS}OAI-PMH.xsd")
    _sub(root, "responseDate", stamp(datetime.now(UTC)))
    return root, _sub(root, "request", base_url)


def error_document(base_url: str, errors: Sequence[OaiError]) -> bytes:
    """badVerb/badArgument: the request element carries the base URL only (section 3.2)."""
    root, _ = _envelope(base_url)
    for err in errors:
        _sub(root, "error", err.message, code=err.code)
    return _serialize(root)


def respond(verb: str, args: dict[str, str], repo: Repository) -> bytes:
    """The response to a request whose arguments passed `parse_arguments`."""
    root, request = _envelope(repo.base_url)
    request.set("verb", verb)
    for key, value in args.items():
        request.set(key, value)
    try:
        if verb == "Identify":
            _identify(root, repo)
        elif verb == "ListMetadataFormats":
            _metadata_formats(root, repo, args)
        elif verb == "ListSets":
            _list_sets(root, repo, args)
        elif verb == "GetRecord":
            _get_record(root, repo, args)
        else:
            _list(root, repo, verb, args)
    except _Failed as failed:
        for child in list(root)[2:]:
            root.remove(child)
        if any(e.code in ("badVerb", "badArgument") for e in failed.errors):
            request.attrib.clear()  # section 3.2: then the request element has no attributes
        for err in failed.errors:
            _sub(root, "error", err.message, code=err.code)
    return _serialize(root)


def _serialize(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
