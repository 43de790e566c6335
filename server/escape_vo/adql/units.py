"""VOUnit arithmetic for IN_UNIT and for the units of computed columns (astropy, lazily).

astropy takes a noticeable time to import, so it is loaded on the first query that needs a unit
conversion, and every conversion is cached.
"""

from __future__ import annotations

from functools import lru_cache


def _unit(text: str):
    import astropy.units as u

    try:
        return u.Unit(text, format="vounit")
    except ValueError:
        return u.Unit(text)  # a unit astropy knows outside VOUnit (raises ValueError if none)


@lru_cache(maxsize=512)
def conversion_factor(source: str, target: str) -> float:
    """Factor turning a value in `source` into `target`; ValueError naming both if impossible."""
    try:
        to = _unit(target)
    except ValueError:
        raise ValueError(f"IN_UNIT: '{target}' is not a valid VOUnit") from None
    try:
        frm = _unit(source)
    except ValueError:
        raise ValueError(f"IN_UNIT: the value's unit '{source}' is not a valid VOUnit") from None
    try:
        factor = float(frm.to(to))
    except Exception:
        raise ValueError(
            f"IN_UNIT cannot convert from '{source}' to '{target}': the units are not compatible"
        ) from None
    return float(f"{factor:.15g}")  # 1e9, not 999999999.9999999 from binary arithmetic


@lru_cache(maxsize=512)
def combine(left: str, right: str, op: str) -> str | None:
    """The VOUnit of left*right or left/right, or None if either is not a valid unit."""
    try:
        a, b = _unit(left), _unit(right)
        result = a * b if op == "*" else a / b
        return result.to_string("vounit") or None
    except Exception:
        return None


@lru_cache(maxsize=512)
def power(unit: str, exponent: float) -> str | None:
    """The VOUnit of unit**exponent, or None."""
    try:
        return (_unit(unit) ** exponent).to_string("vounit") or None
    except Exception:
        return None
