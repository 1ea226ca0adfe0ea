"""Read and validate the meta and data CSV files of a series.

Both readers return a typed record, or None when the file cannot be used, and
add every problem they find to a :class:`~voservice.ingest.problems.Problems`.
The data reader is columnar: numpy parses whole columns and only a column that
fails is gone through row by row to name the bad lines.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import math
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

import numpy as np

from voservice import tables
from voservice.ephemeris import CSV_COLUMNS, EphemerisSpec, parse_ephemeris
from voservice.ingest.problems import Problems
from voservice.stores.timeseries.base import off_resolution, resolution_unit, same_instant

SPECTRAL_BAND_TYPES = (
    "radio", "millimeter", "infrared", "optical", "ultraviolet", "xray", "gammaray",
)
ACCESS_RIGHTS = ("open", "on_demand", "restricted")
FLUX_CALIBRATIONS = ("abs", "dif")
REFPOSITIONS = ("topocenter", "geocenter", "heliocenter", "barycenter")

#: meta column -> required?
META_COLUMNS: dict[str, bool] = {
    "target.target": True,
    "target.catalogue": True,
    "target.catalogue_value": True,
    "target.description": False,
    "target.right_ascension": True,
    "target.declination": True,
    "target.equinox": False,
    "target.target_class": False,
    "bandpass.bandpass": True,
    "bandpass.bandpass_uid": True,
    "bandpass.spectral_band_type": True,
    "bandpass.photometric_system": True,
    "instrument.instrument": True,
    "instrument.instrument_uid": True,
    "instrument.telescope": True,
    "instrument.camera": False,
    "instrument.spectroscope": False,
    "instrument.field_of_view": False,
    "instrument.description": False,
    "facility.facility": True,
    "facility.facility_uid": True,
    "facility.description": False,
    # where the facility is (WGS84; east longitudes positive): barycentric times need it
    "facility.longitude": False,
    "facility.latitude": False,
    "facility.height": False,
    "organisation.organisation": True,
    "organisation.organisation_did": True,
    "organisation.email": False,
    "dataid.title": True,
    "dataid.publisher": True,
    "dataid.publisher_did": True,
    "access.access": True,
}
#: optional meta columns of an ephemeris of the target (voservice.ephemeris; period
#: and epoch required together), checked as one
EPHEMERIS_COLUMNS: dict[str, bool] = dict.fromkeys(CSV_COLUMNS.values(), False)

DATA_COLUMNS = (
    "ts.timestamp",
    "ts.magnitude",
    "ts.magnitude_error",
    "ts.flux_calibration",
    "ts.flux_calibration_level",
    "ts.exposure",
    "ts.timeframe_reference_position",
)

#: longest span of one observation after the date its folder names, days
MAX_SPAN_DAYS = 31
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$")
_EPOCH = np.datetime64("1970-01-01T00:00:00", "us")


def md5_hex(data: bytes) -> str:
    """md5 of bytes as 32 hex digits."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def observation_hash(night: str, values: dict[str, str]) -> str:
    """The original SKVO observation hash: md5 of yyyymmdd and the values by sorted column."""
    parts = [night] + [values[name] for name in sorted(values)]
    return md5_hex("___".join(parts).encode("utf-8"))


def instrument_hash(instrument: str, telescope: str, camera: str, spectroscope: str,
                    field_of_view: str) -> str:
    """The original SKVO instrument hash: md5 of the five instrument fields joined by ___."""
    parts = [instrument, telescope, camera, spectroscope, field_of_view]
    return md5_hex("___".join(parts).encode("utf-8"))


# --------------------------------------------------------------------------
# Reading a CSV file into header + rows with their line numbers


@dataclass
class _Table:
    header: list[str]
    columns: list[list[str]]  # column-major
    lines: np.ndarray  # file line number of every row (1 = header)


def _read_table(raw: bytes, probs: Problems) -> _Table | None:
    """Split a CSV file into columns; rows with a wrong number of fields are reported."""
    if not raw.strip():
        probs.add(0, "-", "file is empty")
        return None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        probs.add(line, "-", "not UTF-8 text")
        return None
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    header_at = next(i for i, line in enumerate(lines) if line.strip())
    quoted = '"' in text
    header = next(csv.reader([lines[header_at]])) if quoted else lines[header_at].split(",")
    header = [h.strip() for h in header]
    n = len(header)
    body = lines[header_at + 1 :]
    numbers = np.arange(header_at + 2, header_at + 2 + len(body), dtype=np.int64)
    if quoted:
        rows = list(csv.reader(body))
        counts = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        blank = np.fromiter((not any(f.strip() for f in r) for r in rows), dtype=bool,
                            count=len(rows))
    else:
        rows = None
        counts = np.fromiter(map(str.count, body, repeat(",")), dtype=np.int64,
                             count=len(body)) + 1
        blank = np.fromiter(map(str.isspace, body), dtype=bool, count=len(body)) | (
            np.fromiter(map(len, body), dtype=np.int64, count=len(body)) == 0
        )
    bad = np.flatnonzero((counts != n) & ~blank)
    probs.add_rows("-", [
        (int(numbers[i]), f"{counts[i]} fields where the header has {n}") for i in bad
    ])
    keep = np.flatnonzero((counts == n) & ~blank)
    if len(keep) != len(body):
        body = [body[i] for i in keep] if rows is None else None
        rows = [rows[i] for i in keep] if rows is not None else None
        numbers = numbers[keep]
    if rows is not None:
        columns = [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in header]
    else:
        flat = ",".join(body).split(",") if body else []
        columns = [flat[j::n] for j in range(n)]
    return _Table(header, columns, numbers)


def _check_header(header: list[str], known: dict[str, bool] | tuple[str, ...],
                  probs: Problems) -> bool:
    """Duplicate and missing required columns are errors; unknown ones are ignored."""
    ok = True
    seen: set[str] = set()
    for name in header:
        if name in seen:
            probs.add(1, name, "column appears twice in the header")
            ok = False
        seen.add(name)
        if name not in known:
            if not name:
                probs.add(1, "-", "a column has no name")
                ok = False
            else:
                probs.notice(1, name, "unknown column, ignored")
    required = [k for k, req in known.items() if req] if isinstance(known, dict) else known
    for name in required:
        if name not in seen:
            probs.add(1, name, "required column missing from the header")
            ok = False
    return ok


# --------------------------------------------------------------------------
# Meta CSV


@dataclass
class Meta:
    """The one metadata row of a series, as loaded into the metadata tables."""

    values: dict[str, str]  # column -> value as written (the observation hash input)
    md5: str
    hash: str
    instrument_hash: str
    right_ascension: float
    declination: float
    field_of_view: float | None
    ephemeris: EphemerisSpec | None = None  # from the ephemeris.* columns

    def get(self, column: str) -> str | None:
        """A stripped value, None when absent or empty."""
        value = self.values.get(column, "").strip()
        return value or None

    def choice(self, column: str) -> str | None:
        """The value of a column with fixed choices (access, band type), lowercased."""
        value = self.get(column)
        return value.lower() if value else None


def _column_lengths() -> dict[str, int]:
    """Longest string each meta column may hold in the database."""
    limits: dict[str, int] = {}
    for qualified in META_COLUMNS:
        table_name, column = qualified.split(".")
        if table_name == "access":
            table_name = "observation"
        col = tables.sa_table(f"skvo.{table_name}").c[column]
        length = getattr(col.type, "length", None)
        if length:
            limits[qualified] = length
    return limits


_LIMITS = _column_lengths()


def read_meta(path: Path | bytes, rel: str, bandpass_folder: str, night: str,
              probs: Problems) -> Meta | None:
    """Read and validate a meta CSV (one header line and one data line).

    ``path`` may be the file's bytes, read by the caller (the uploader reads
    them through :mod:`voservice.ingest.safefs`).
    """
    raw = path if isinstance(path, bytes) else path.read_bytes()
    before = len(probs)
    table = _read_table(raw, probs)
    if table is None:
        return None
    header_ok = _check_header(table.header, {**META_COLUMNS, **EPHEMERIS_COLUMNS}, probs)
    n_rows = len(table.lines)
    if n_rows != 1:
        line = int(table.lines[1]) if n_rows > 1 else 2
        probs.add(line, "-", f"expected exactly one data line, found {n_rows}")
        return None
    if not header_ok:
        return None
    values = {name: col[0] for name, col in zip(table.header, table.columns, strict=True)}
    line = int(table.lines[0])
    for name, required in META_COLUMNS.items():
        value = values.get(name, "").strip()
        if required and not value:
            probs.add(line, name, "required value is empty")
        limit = _LIMITS.get(name)
        if limit and len(value) > limit:
            probs.add(line, name, f"longer than {limit} characters")

    def number(name: str, check: Callable[[float], bool], what: str) -> float | None:
        text = values.get(name, "").strip()
        if not text:
            return None
        try:
            value = float(text)
        except ValueError:
            probs.add(line, name, f"not a number: {text!r}")
            return None
        if not math.isfinite(value) or not check(value):
            probs.add(line, name, f"{text} is out of range: {what}")
            return None
        return value

    ra = number("target.right_ascension", lambda v: 0 <= v < 360, "must be in [0, 360)")
    dec = number("target.declination", lambda v: -90 <= v <= 90, "must be in [-90, 90]")
    fov = number("instrument.field_of_view", lambda v: 0 < v <= 360, "must be in (0, 360]")
    lon = number("facility.longitude", lambda v: -180 <= v <= 360,
                 "must be in [-180, 360] degrees, east positive")
    lat = number("facility.latitude", lambda v: -90 <= v <= 90, "must be in [-90, 90] degrees")
    number("facility.height", lambda v: -500 <= v <= 10_000, "must be in [-500, 10000] m")
    if (lon is None) != (lat is None) and len(probs) == before:
        given, missing = (("facility.longitude", "facility.latitude") if lat is None
                          else ("facility.latitude", "facility.longitude"))
        probs.add(line, missing, f"{given} is given: give {missing} too (or neither)")
    for name, allowed in (
        ("bandpass.spectral_band_type", SPECTRAL_BAND_TYPES),
        ("access.access", ACCESS_RIGHTS),
    ):
        value = values.get(name, "").strip()
        if value and value.lower() not in allowed:
            probs.add(line, name, f"{value!r} is not one of {', '.join(allowed)}")
    for name in ("organisation.organisation_did", "dataid.publisher_did"):
        value = values.get(name, "").strip()
        if value and not _URI.match(value):
            probs.add(line, name, f"{value!r} is not a URI (e.g. ivo://... or http://...)")
    email = values.get("organisation.email", "").strip()
    if email and "@" not in email:
        probs.add(line, "organisation.email", f"{email!r} is not an e-mail address")
    uid = values.get("bandpass.bandpass_uid", "").strip()
    if uid and uid != bandpass_folder:
        probs.add(line, "bandpass.bandpass_uid",
                  f"{uid!r} differs from the bandpass folder {bandpass_folder!r}")
    ephemeris, wrong = parse_ephemeris(
        {field: values.get(column) for field, column in CSV_COLUMNS.items()}, CSV_COLUMNS)
    for column, message in wrong:
        probs.add(line, column, message)
    if len(probs) > before or ra is None or dec is None:
        return None
    ins = instrument_hash(*(values.get(f"instrument.{k}", "") for k in (
        "instrument", "telescope", "camera", "spectroscope", "field_of_view")))
    return Meta(values, md5_hex(raw), observation_hash(night, values), ins, ra, dec, fov,
                ephemeris)


# --------------------------------------------------------------------------
# Data CSV


@dataclass
class Data:
    """The points of a series in time order, with the file line of every point."""

    time_us: np.ndarray  # int64, unix µs UTC
    magnitude: np.ndarray
    magnitude_error: np.ndarray
    exposure: np.ndarray
    flux_calibration: np.ndarray  # str
    flux_calibration_level: np.ndarray  # int64
    timeframe_reference_position: np.ndarray  # str
    lines: np.ndarray
    md5: str

    def __len__(self) -> int:
        return len(self.time_us)


def _floats(col: list[str], name: str, lines: np.ndarray, probs: Problems) -> np.ndarray:
    try:
        values = np.array(col, dtype=np.float64)
    except ValueError:
        values = np.full(len(col), np.nan)
        bad = []
        for i, text in enumerate(col):
            try:
                values[i] = float(text)
            except ValueError:
                bad.append((int(lines[i]), f"not a number: {text!r}"))
        probs.add_rows(name, bad)
        return values
    nonfinite = np.flatnonzero(~np.isfinite(values))
    probs.add_rows(name, [(int(lines[i]), f"not a finite number: {col[i]!r}") for i in nonfinite])
    return values


def _int(text: str) -> int:
    """An integer, also when written as an integral float (``2.0``)."""
    try:
        return int(text)
    except ValueError:
        value = float(text)
        if not value.is_integer():
            raise
        return int(value)


def _ints(col: list[str], name: str, lines: np.ndarray, probs: Problems) -> np.ndarray:
    try:
        return np.array(col, dtype=np.int64)
    except (ValueError, OverflowError):
        values = np.zeros(len(col), dtype=np.int64)
        bad = []
        for i, text in enumerate(col):
            try:
                values[i] = _int(text)
            except (ValueError, OverflowError):
                bad.append((int(lines[i]), f"not an integer: {text!r}"))
        probs.add_rows(name, bad)
        return values


def _enum(col: list[str], name: str, allowed: tuple[str, ...], lines: np.ndarray,
          probs: Problems) -> np.ndarray:
    """Values of a fixed set, taken case-insensitively and without surrounding blanks."""
    if not set(col) <= set(allowed):
        col = [text.strip().lower() for text in col]
    if not set(col) <= set(allowed):
        ok = set(allowed)
        probs.add_rows(name, [
            (int(lines[i]), f"{text!r} is not one of {', '.join(allowed)}")
            for i, text in enumerate(col) if text not in ok
        ])
    return np.array(col, dtype=f"<U{max(map(len, allowed))}")


#: a time of day followed by a UTC offset (+01:00, -0500) at the end of a line
_OFFSET = re.compile(r"\d\d:\d\d:\d\d(\.\d*)?[+-]\d\d:?\d\d$", re.MULTILINE)


def _timestamps(col: list[str], lines: np.ndarray, probs: Problems) -> np.ndarray:
    """UTC times ``YYYY-MM-DD HH:MM:SS[.ffffff]``, ``T`` and a final ``Z`` allowed.

    Times with an offset from UTC are refused (numpy would shift some of them
    silently): the contract is UTC.
    """
    name = "ts.timestamp"
    col = [t.strip() for t in col]
    joined = "\n".join(col)
    if "Z" in joined:
        col = [t[:-1] if t.endswith("Z") else t for t in col]
        joined = "\n".join(col)
    bad: list[tuple[int, str]] = []
    if "+" in joined or "Z" in joined or "\n\n" in f"\n{joined}\n" or _OFFSET.search(joined):
        bad = [(int(lines[i]), f"not a UTC timestamp YYYY-MM-DD HH:MM:SS[.ffffff]: {t!r}")
               for i, t in enumerate(col) if "+" in t or "Z" in t or not t or _OFFSET.search(t)]
    short = np.flatnonzero(np.fromiter(map(len, col), dtype=np.int64, count=len(col)) < 19)
    bad += [(int(lines[i]), f"not a timestamp YYYY-MM-DD HH:MM:SS[.ffffff]: {col[i]!r}")
            for i in short if col[i]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            stamps = np.array(col, dtype="datetime64[us]")
        except ValueError:
            stamps = np.full(len(col), np.datetime64("NaT"), dtype="datetime64[us]")
            for i, text in enumerate(col):
                try:
                    stamps[i] = np.datetime64(text, "us")
                except ValueError:
                    bad.append((int(lines[i]), f"not a timestamp: {text!r}"))
    if bad:
        probs.add_rows(name, sorted(set(bad)))
    return stamps


@dataclass(frozen=True)
class TimeResolution:
    """The finest time step the time-series store keeps, and how messages name the store."""

    step_us: int = 1
    store: str = "the time-series store"


#: every microsecond kept (the upload format's finest times): nothing to check
MICROSECONDS = TimeResolution()


def _check_resolution(time_us: np.ndarray, stamps: np.ndarray, lines: np.ndarray,
                      resolution: TimeResolution, probs: Problems) -> None:
    """Report times finer than the store keeps, and points sharing one storage instant."""
    step = resolution.step_us
    if step <= 1:
        return
    unit = resolution_unit(step)
    probs.add_rows("ts.timestamp", [
        (int(lines[i]), f"{stamps[i]} has sub-{unit} digits; {resolution.store} keeps {unit}s")
        for i in off_resolution(time_us, step)
    ])
    probs.add_rows("ts.timestamp", sorted(
        (int(lines[later]), f"{stamps[later]} falls into the same {unit} as line "
         f"{lines[first]} ({stamps[first]}); {resolution.store} keeps one point per {unit}")
        for first, later in same_instant(time_us, step)
    ))


#: magnitudes outside this range are no measurement (the Sun is -26.7, the faintest
#: objects ever measured are about 31; differential magnitudes lie near 0)
MAGNITUDE_RANGE = (-30.0, 40.0)
#: largest plausible 1-sigma magnitude error
MAX_MAGNITUDE_ERROR = 1.0


def _check_plausible(magnitude: np.ndarray, error: np.ndarray, calibration: np.ndarray,
                     lines: np.ndarray, probs: Problems) -> None:
    """Report magnitudes and errors no photometry yields (a unit or column mix-up).

    A magnitude outside :data:`MAGNITUDE_RANGE`, an error above
    :data:`MAX_MAGNITUDE_ERROR` and, for absolute (``abs``) magnitudes, an
    error larger than the magnitude itself are problems of their line.
    Differential (``dif``) magnitudes lie around 0 and may be negative, so
    only the 1 mag limit applies to their errors.
    """
    lo, hi = MAGNITUDE_RANGE
    with np.errstate(invalid="ignore"):
        outside = np.flatnonzero((magnitude < lo) | (magnitude > hi))
        too_large = error > MAX_MAGNITUDE_ERROR
        above_mag = (~too_large) & (calibration == "abs") & (error > np.abs(magnitude))
    probs.add_rows("ts.magnitude", [
        (int(lines[i]), f"{magnitude[i]:g} is not a plausible magnitude "
         f"(must lie in [{lo:g}, {hi:g}])") for i in outside])
    errors = [(int(lines[i]), f"error {error[i]:g} mag is above {MAX_MAGNITUDE_ERROR:g} mag: "
               "not a plausible measurement") for i in np.flatnonzero(too_large)]
    errors += [(int(lines[i]), f"error {error[i]:g} is larger than the magnitude "
                f"{magnitude[i]:g} itself") for i in np.flatnonzero(above_mag)]
    probs.add_rows("ts.magnitude_error", sorted(errors))


def read_data(path: Path | bytes, rel: str, night: dt.date, probs: Problems,
              resolution: TimeResolution = MICROSECONDS) -> Data | None:
    """Read and validate a data CSV; the points come back sorted by time.

    ``path`` may be the file's bytes, read by the caller.  Times with digits
    below ``resolution`` and distinct times the store would keep as one
    instant are problems (the store would truncate or refuse them).
    """
    raw = path if isinstance(path, bytes) else path.read_bytes()
    before = len(probs)
    table = _read_table(raw, probs)
    if table is None:
        return None
    if not _check_header(table.header, DATA_COLUMNS, probs):
        return None
    lines = table.lines
    if len(lines) == 0:
        probs.add(2, "-", "no data lines")
        return None
    cols = dict(zip(table.header, table.columns, strict=True))
    stamps = _timestamps(cols["ts.timestamp"], lines, probs)
    magnitude = _floats(cols["ts.magnitude"], "ts.magnitude", lines, probs)
    error = _floats(cols["ts.magnitude_error"], "ts.magnitude_error", lines, probs)
    exposure = _floats(cols["ts.exposure"], "ts.exposure", lines, probs)
    level = _ints(cols["ts.flux_calibration_level"], "ts.flux_calibration_level", lines, probs)
    calibration = _enum(cols["ts.flux_calibration"], "ts.flux_calibration", FLUX_CALIBRATIONS,
                        lines, probs)
    refpos = _enum(cols["ts.timeframe_reference_position"], "ts.timeframe_reference_position",
                   REFPOSITIONS, lines, probs)
    for values, name in ((error, "ts.magnitude_error"), (exposure, "ts.exposure")):
        negative = np.flatnonzero(values < 0)
        probs.add_rows(name, [(int(lines[i]), f"must be >= 0, not {values[i]:g}")
                              for i in negative])
    _check_plausible(magnitude, error, calibration, lines, probs)
    # the folder names the UTC date the observation starts (a day's slack for
    # providers who name it by local date); a campaign may run for weeks
    lo = np.datetime64(night - dt.timedelta(days=1), "us")
    hi = np.datetime64(night + dt.timedelta(days=1 + MAX_SPAN_DAYS), "us")
    valid = ~np.isnat(stamps)
    outside = np.flatnonzero(valid & ((stamps < lo) | (stamps >= hi)))
    probs.add_rows("ts.timestamp", [
        (int(lines[i]), f"{stamps[i]} does not fit the folder's date {night}: points must lie "
         f"from the day before to {MAX_SPAN_DAYS} days after it") for i in outside
    ])
    time_us = (stamps - _EPOCH).astype(np.int64)
    order = np.argsort(time_us, kind="stable")
    if np.all(valid):
        sorted_t = time_us[order]
        dup = np.flatnonzero(sorted_t[1:] == sorted_t[:-1])
        probs.add_rows("ts.timestamp", [
            (int(lines[order[i + 1]]),
             f"duplicate timestamp {stamps[order[i + 1]]} (also on line {lines[order[i]]})")
            for i in dup
        ])
        _check_resolution(time_us, stamps, lines, resolution, probs)
    if len(probs) > before:
        return None
    if not np.all(order[1:] > order[:-1]):
        time_us, magnitude, error, exposure = (
            a[order] for a in (time_us, magnitude, error, exposure)
        )
        calibration, level, refpos, lines = (a[order] for a in (calibration, level, refpos, lines))
    return Data(time_us, magnitude, error, exposure, calibration, level, refpos, lines,
                md5_hex(raw))
