"""What a visitor types into the portal's search box, parsed (pure: no Flask, no DB).

- :func:`parse_position`: ICRS coordinates, decimal degrees (``282.52 +33.36``,
  ``282.52, 33.36``) or sexagesimal (``18 30 04.8 +33 21 46``,
  ``18:30:04.8 +33:21:46``, ``18h30m04.8s +33d21m46s``); None when the text is
  not a position (then it is a name).
- :func:`parse_time_range`: ``lo/hi`` (either side may be empty) in MJD, JD
  (values above 2,400,000) or ISO dates (``2018-01-01``, ``2018-01-01T20:00``),
  to an MJD range.
"""

from __future__ import annotations

import datetime as dt
import math
import re

#: JD - MJD
MJD_OFFSET = 2_400_000.5
_MJD_UNIX = 40587.0

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)"
_DECIMAL = re.compile(rf"^\s*({_NUMBER})\s*(?:,|\s)\s*({_NUMBER})\s*$")
_SEXA = re.compile(
    r"^\s*(\d{1,2})[\sh:]+(\d{1,2})[\sm:]+(\d{1,2}(?:\.\d*)?)s?\s*,?\s*"
    r"([-+−]?)\s*(\d{1,2})[\sd°:]+(\d{1,2})[\s'm:]+(\d{1,2}(?:\.\d*)?)[\"s]?\s*$")


class SearchError(ValueError):
    """A search field that cannot be used; the message names it."""


def parse_position(text: str) -> tuple[float, float] | None:
    """(ra, dec) in degrees from decimal or sexagesimal ICRS text; None: not coordinates."""
    m = _DECIMAL.match(text)
    if m:
        ra, dec = float(m.group(1)), float(m.group(2))
        return _checked(ra, dec, text)
    m = _SEXA.match(text)
    if m:
        h, mi, s, sign, d, dm, ds = m.groups()
        if int(mi) >= 60 or float(s) >= 60 or int(dm) >= 60 or float(ds) >= 60:
            raise SearchError(f"q={text!r}: minutes and seconds must be below 60")
        ra = 15.0 * (int(h) + int(mi) / 60 + float(s) / 3600)
        dec = int(d) + int(dm) / 60 + float(ds) / 3600
        return _checked(ra, -dec if sign in ("-", "−") else dec, text)
    return None


def _checked(ra: float, dec: float, text: str) -> tuple[float, float]:
    if not (math.isfinite(ra) and math.isfinite(dec)):
        raise SearchError(f"q={text!r}: coordinates must be finite")
    if not 0.0 <= ra < 360.0:
        raise SearchError(f"q={text!r}: RA must be in [0, 360) degrees (or 0-24 h)")
    if not -90.0 <= dec <= 90.0:
        raise SearchError(f"q={text!r}: Dec must be in [-90, +90] degrees")
    return ra, dec


def parse_radius(text: str | None, default: float) -> float:
    """A search radius in arcmin (0 < r <= 600) from the form; returns degrees."""
    if text is None or not text.strip():
        return default / 60.0
    try:
        value = float(text)
    except ValueError:
        raise SearchError(f"radius={text!r}: not a number (arcmin)") from None
    if not (math.isfinite(value) and 0 < value <= 600):
        raise SearchError(f"radius={text!r}: must be above 0 and at most 600 arcmin")
    return value / 60.0


def to_mjd(text: str, name: str = "time") -> float:
    """One time as MJD: an MJD, a JD (above 2,400,000) or an ISO date/time (UTC)."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        try:
            when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise SearchError(f"{name}={text!r}: give an MJD, a JD or an ISO date "
                              "(2018-01-31 or 2018-01-31T20:00)") from None
        if when.tzinfo is not None:
            when = when.astimezone(dt.UTC).replace(tzinfo=None)
        return _MJD_UNIX + (when - dt.datetime(1970, 1, 1)).total_seconds() / 86400.0
    if not math.isfinite(value):
        raise SearchError(f"{name}={text!r}: must be finite")
    return value - MJD_OFFSET if value > 2_400_000 else value


def parse_time_range(text: str | None) -> tuple[float | None, float | None]:
    """An MJD range from ``lo/hi`` (or ``lo..hi``); (None, None) when empty."""
    if text is None or not text.strip():
        return None, None
    for sep in ("/", ".."):
        if sep in text:
            lo, _, hi = text.partition(sep)
            break
    else:
        raise SearchError(f"time={text!r}: give a range lo/hi (MJD, JD or ISO; either side "
                          "may be empty)")
    mjd_lo = to_mjd(lo) if lo.strip() else None
    mjd_hi = to_mjd(hi) if hi.strip() else None
    if mjd_lo is not None and mjd_hi is not None and mjd_lo > mjd_hi:
        raise SearchError(f"time={text!r}: the start is after the end")
    return mjd_lo, mjd_hi


def mjd_to_iso(mjd: float | None) -> str:
    """A calendar date (UTC, to the minute) of an MJD; '' for None."""
    if mjd is None:
        return ""
    when = dt.datetime(1970, 1, 1) + dt.timedelta(days=float(mjd) - _MJD_UNIX)
    return when.strftime("%Y-%m-%d %H:%M")
