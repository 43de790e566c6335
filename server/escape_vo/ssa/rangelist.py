"""SSA 1.1 range-lists (section 8.7.2): values and ranges separated by commas.

    BAND=4e-7/5e-7,6.5e-7        a closed range and a single value
    BAND=/5e-7                   open below
    BAND=4e-7/5e-7;source        a qualifier after the list (here: rest frame)

Some clients separate list elements with ';' as well (BAND=4e-7/5e-7;6.5e-7); a ';' part that
parses as values is read as more elements, anything else as the qualifier.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


class RangeListError(ValueError):
    """A malformed value; the message names the parameter and shows the syntax."""


@dataclass(frozen=True)
class Range(Generic[T]):
    """lo/hi None means open; a single value has lo == hi."""

    lo: T | None
    hi: T | None

    @property
    def single(self) -> bool:
        return self.lo is not None and self.lo == self.hi


def _element(text: str, convert: Callable[[str], T], name: str) -> Range[T]:
    if "/" in text:
        lo_text, _, hi_text = text.partition("/")
        lo = convert(lo_text.strip()) if lo_text.strip() else None
        hi = convert(hi_text.strip()) if hi_text.strip() else None
        if lo is not None and hi is not None and lo > hi:  # type: ignore[operator]
            raise RangeListError(f"{name}: range {text!r} has its lower limit above its upper")
        return Range(lo, hi)
    value = convert(text.strip())
    return Range(value, value)


def parse_range_list(
    text: str, name: str, convert: Callable[[str], T], syntax: str
) -> tuple[list[Range[T]], str | None]:
    """The ranges of a range-list value and its qualifier (or None)."""
    ranges: list[Range[T]] = []
    qualifier: str | None = None
    parts = text.split(";")
    for index, part in enumerate(parts):
        items = [i for i in part.split(",") if i.strip()]
        try:
            ranges.extend(_element(i, convert, name) for i in items)
        except RangeListError:
            raise
        except ValueError:
            if index == 0 or index != len(parts) - 1 or len(items) != 1:
                raise RangeListError(
                    f"{name}={text!r} is not a valid range-list; write {syntax}"
                ) from None
            qualifier = items[0].strip()
    if not ranges:
        raise RangeListError(f"{name}={text!r} gives no value; write {syntax}")
    return ranges, qualifier
