"""A star's light curve: one band over all the nights a principal may fetch.

The star (a target) is the unit astronomers work with: its curve in a band
joins the points of every night and every source, in time order, and each
point keeps where it came from (night, source, instrument, frame).  Rules:

- Only nights whose data the principal may fetch contribute (open ones, and
  on_demand or restricted ones of granted sources).  A star none of whose
  nights the principal may see does not exist; one whose visible nights are
  all withheld is refused as a per-night curve would be.
- Absolute and differential magnitudes are never mixed: ``CALIB`` selects
  one; by default ``abs`` when the band has any absolute photometry, else
  ``dif`` (the PARAM ``flux_calibration`` of the curve says which).
- Times keep the reference position the provider gave.  Nights with
  different positions (topocenter, heliocenter, ...) are never labelled as
  one system: each position gets a TABLE of its own with its own TIMESYS
  (``TIMEREF`` selects one) -- unless ``TIMESYS`` (BJD_TDB, HJD_UTC, MJD_UTC)
  asks for every time converted to one system (:mod:`voservice.analysis.timescales`,
  astropy, with the facility's location; the geocentre without one).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa

from voservice import tables, urls
from voservice.access import Principal, can_download, can_see
from voservice.archive import lightcurves
from voservice.archive.lightcurves import Options, Series
from voservice.stores.timeseries.base import Points, SeriesReader
from voservice.votable import Param

#: the flux calibrations a curve may hold (never mixed)
CALIBRATIONS = ("abs", "dif")


class StarError(ValueError):
    """A star-curve parameter is wrong; the message names it."""


@dataclass(frozen=True)
class Star:
    """A target and its series, as the principal may see and fetch them."""

    target_id: int
    target: str
    visible: list[Series]  # the series the principal may see, oldest first
    fetchable: list[Series]  # of those, the ones whose points they may fetch

    @property
    def bands(self) -> list[str]:
        """Bandpasses with fetchable series, bluest first."""
        seen: dict[str, float] = {}
        for s in self.fetchable:
            seen.setdefault(s.bandpass_uid, s.wavelength_eff or 0.0)
        return sorted(seen, key=lambda b: (seen[b], b))


@dataclass(frozen=True)
class Part:
    """One TABLE of a star's curve: a band at one time reference position."""

    bandpass_uid: str
    refposition: str  # TIMESYS refposition (TOPOCENTER, HELIOCENTER, ...)
    calibration: str  # abs or dif
    series: list[Series] = field(default_factory=list)
    convert: str | None = None  # the TIMESYS every time is converted to (BJD_TDB, ...)

    @property
    def first(self) -> Series:
        """The series whose band facts describe the part (all share them)."""
        return self.series[0]


def find_star(engine: sa.Engine, who: Principal, target_id: int,
              bandpass_uid: str | None = None) -> Star | None:
    """The star with the series ``who`` may see (None when there is none)."""
    found = lightcurves.target_series(engine, target_id, bandpass_uid)
    visible = [s for s in found if can_see(who, s.access, s.source)]
    if not visible:
        return None
    fetchable = [s for s in visible if can_download(who, s.access, s.source)]
    return Star(target_id, visible[0].target, visible, fetchable)


def refposition(series: Series) -> str:
    """The TIMESYS refposition of a series' times."""
    return lightcurves.timesys(series).refposition


def default_calibration(series: Sequence[Series]) -> str:
    """``abs`` when any of the series holds absolute magnitudes, else ``dif``."""
    if any((s.flux_calibration or "abs") in ("abs", "mixed") for s in series):
        return "abs"
    return "dif"


def parse_calibration(text: str | None) -> str | None:
    """The CALIB parameter (None: the default)."""
    if text in (None, ""):
        return None
    value = text.strip().lower()
    if value not in CALIBRATIONS:
        raise StarError(f"CALIB={text!r}: must be abs (absolute magnitudes) or dif "
                        "(differential magnitudes)")
    return value


def parse_timeref(text: str | None) -> str | None:
    """The TIMEREF parameter: a time reference position (None: every one)."""
    if text in (None, ""):
        return None
    value = text.strip().upper()
    known = sorted(set(lightcurves.REFPOSITIONS.values()))
    if value not in known:
        raise StarError(f"TIMEREF={text!r}: must be one of {', '.join(known)}")
    return value


#: the time systems a curve's times can be converted to: TIMESYS timescale, refposition
TIMESYSTEMS = {"BJD_TDB": ("TDB", "BARYCENTER"), "HJD_UTC": ("UTC", "HELIOCENTER"),
               "MJD_UTC": ("UTC", "TOPOCENTER")}


def parse_timesys(text: str | None) -> str | None:
    """The TIMESYS parameter (None: the times as the provider gave them)."""
    if text in (None, ""):
        return None
    value = text.strip().upper()
    if value not in TIMESYSTEMS:
        raise StarError(f"TIMESYS={text!r}: must be one of {', '.join(TIMESYSTEMS)} "
                        "(or absent: the times as delivered)")
    return value


def parts(star: Star, bands: Sequence[str], calibration: str | None,
          timeref: str | None, convert: str | None = None) -> list[Part]:
    """The tables of the curve: per band (in the order given), per reference position
    (one per band when every time is converted to ``convert``)."""
    out = []
    for band in bands:
        series = [s for s in star.fetchable if s.bandpass_uid == band]
        calib = calibration or default_calibration(series)
        series = [s for s in series if (s.flux_calibration or calib) in (calib, "mixed")]
        if convert is not None:
            series = [s for s in series if timeref is None or refposition(s) == timeref]
            if series:
                out.append(Part(band, TIMESYSTEMS[convert][1], calib, series, convert))
            continue
        by_ref: dict[str, list[Series]] = {}
        for s in series:
            by_ref.setdefault(refposition(s), []).append(s)
        for ref in sorted(by_ref):
            if timeref is None or ref == timeref:
                out.append(Part(band, ref, calib, by_ref[ref]))
    return out


# --------------------------------------------------------------------------
# The points


#: the columns of a star curve's unbinned chunks, after the per-night ones
PROVENANCE = ("obs_id", "night", "source", "instrument", "frame_url")


def _frame_urls(engine: sa.Engine, base_url: str, series: Series) -> np.ndarray | None:
    """Frame URL per point index of a series (None where no frame; None: no frames)."""
    if not series.n_frames:
        return None
    fr = tables.sa_table("skvo.frame")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(fr.c.frame_index, fr.c.frame_id)
                            .where(fr.c.photometry_id == series.photometry_id)).all()
    out = np.full(max(series.n_points, 1 + max((r.frame_index for r in rows), default=0)),
                  None, dtype=object)
    for r in rows:
        out[r.frame_index] = urls.frame_url(base_url, r.frame_id)
    return out


#: points of the SQL store's chunks read in one query (a batch of a star's series)
def _series_points(reader: SeriesReader, engine: sa.Engine, base_url: str, s: Series,
                   options: Options, calibration: str) -> Iterator[tuple[Points, np.ndarray]]:
    """The points of one series in the window and calibration, with their frame URLs."""
    frames = _frame_urls(engine, base_url, s)
    # a series with frames is read whole: frame k belongs to its k-th point
    start, end = (None, None) if frames is not None else lightcurves.window(options)
    offset = 0
    with contextlib.closing(reader.read(s.ref, start, end, lightcurves.READ_POINTS)) as chunks:
        for chunk in chunks:
            n = len(chunk)
            if not n:
                continue
            keep = chunk.flux_calibration == calibration
            if frames is not None:
                urls_ = frames[offset: offset + n]
                if len(urls_) < n:  # more points than frame slots: the rest have none
                    urls_ = np.concatenate([urls_, np.full(n - len(urls_), None, object)])
                offset += n
                mjd = chunk.mjd
                if options.mjd_min is not None:
                    keep &= mjd >= options.mjd_min
                if options.mjd_max is not None:
                    keep &= mjd <= options.mjd_max
            else:
                urls_ = _no_urls(n)
            if not keep.all():
                chunk, urls_ = chunk[keep], urls_[keep]
            if len(chunk):
                yield chunk, urls_


def _overlapping(series: Sequence[Series], margin: float = 0.0) -> list[list[Series]]:
    """Runs of series whose time spans overlap, or come within ``margin`` days (their
    points must be merged)."""
    runs: list[list[Series]] = []
    end = -np.inf
    for s in sorted(series, key=lambda x: (x.mjd_start or 0.0, x.photometry_id)):
        if runs and (s.mjd_start or 0.0) <= end + margin:
            runs[-1].append(s)
        else:
            runs.append([s])
        end = max(end, s.mjd_end or 0.0) if len(runs[-1]) > 1 else (s.mjd_end or 0.0)
    return runs


def _no_urls(n: int) -> np.ndarray:
    """The frame URLs of n points without frames: all NULL."""
    return np.ma.MaskedArray(np.zeros(n, "U1"), np.ones(n, bool))


def _same(n: int, value: str) -> np.ndarray:
    """A column of n times one text (a numpy string array: the writer takes it whole)."""
    if "\0" in value:  # numpy strings drop trailing NULs: keep the text as it is
        return np.full(n, value, dtype=object)
    return np.full(n, value)


def _cat(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """np.concatenate that keeps the NULL masks of masked arrays."""
    if any(isinstance(a, np.ma.MaskedArray) for a in arrays):
        if any(a.dtype.kind != "U" for a in arrays):  # frame URLs of several kinds
            return np.concatenate([np.ma.filled(a.astype(object), None)
                                   if isinstance(a, np.ma.MaskedArray) else a.astype(object)
                                   for a in arrays])
        return np.ma.concatenate(arrays)
    return np.concatenate(arrays)


def converted(mjd: np.ndarray, s: Series, to: str) -> Any:
    """A series' times converted to the time system ``to`` (a TimeConversion)."""
    from voservice.analysis.timescales import convert_times

    reference = (s.time_refposition or "topocenter").lower()
    location = None
    if s.longitude is not None and s.latitude is not None:
        location = (s.longitude, s.latitude, s.height or 0.0)
    if reference == "geocenter":  # observer times at the geocentre: no location applies
        reference, location = "topocenter", None
    scale = "tdb" if reference == "barycenter" else "utc"
    return convert_times(mjd, ra=s.right_ascension, dec=s.declination, to=to, scale=scale,
                         reference=reference, location=location)


def conversion_notes(part: Part) -> list[str]:
    """What converting the part's times implies (missing locations and their error)."""
    if part.convert is None:
        return []
    notes: dict[str, None] = {}
    for s in part.series:
        probe = converted(np.array([s.mjd_start or 51544.0]), s, part.convert)
        for note in probe.notes:
            notes[f"{s.night} ({s.source}): {note}"] = None
    return list(notes)


def _columns(chunk: Points, frame_urls: np.ndarray, s: Series, options: Options,
             convert: str | None = None) -> list[Any]:
    n = len(chunk)
    cols = lightcurves.point_columns(chunk, s.bandpass_uid, options, multiband=False)
    phase = cols.pop() if options.folded else None
    if convert is not None:
        cols[0] = converted(cols[0], s, convert).mjd
        if options.folded:
            phase = lightcurves.phase(cols[0], options)
    cols += [_same(n, s.observation_uuid), _same(n, s.night), _same(n, s.source),
             _same(n, s.instrument), frame_urls]
    if phase is not None:
        cols.append(phase)
    return cols


def _points(store: Any, engine: sa.Engine, base_url: str, part: Part, options: Options
            ) -> Iterator[list[Any]]:
    """Column chunks of the part's points in time order (ties: oldest series first)."""
    lo, hi = options.mjd_min, options.mjd_max
    wanted = [s for s in part.series
              if (lo is None or (s.mjd_end or 0.0) >= lo)
              and (hi is None or (s.mjd_start or 0.0) <= hi)]
    # converted times move by up to 8.3 min (light across the Earth's orbit): series
    # closer than that are merged as if they overlapped
    runs = _overlapping(wanted, 0.01 if part.convert else 0.0)
    order = [s for run in runs for s in run]
    reader = store.reader([s.ref for s in order], [s.n_points for s in order])
    for run in runs:
        if len(run) == 1:
            for chunk, frames in _series_points(reader, engine, base_url, run[0], options,
                                                part.calibration):
                yield _columns(chunk, frames, run[0], options, part.convert)
            continue
        held = [_columns(chunk, frames, s, options, part.convert) for s in run
                for chunk, frames in _series_points(reader, engine, base_url, s, options,
                                                    part.calibration)]
        if held:
            merged = [_cat([h[k] for h in held]) for k in range(len(held[0]))]
            order = np.argsort(merged[0], kind="stable")
            yield [c[order] for c in merged]


def _binned(store: Any, engine: sa.Engine, part: Part, options: Options
            ) -> Iterator[list[Any]]:
    """Bins over all the part's nights: in days from its first point, or in phase."""
    bins = lightcurves.Bins()
    origin = None
    for chunk in _points(store, engine, "", part, options):
        mjd, mag, err = chunk[0], chunk[1], chunk[2]
        if origin is None:
            origin = mjd[0]
        axis = lightcurves.phase(mjd, options) if options.folded else mjd - origin
        index = np.floor(axis / options.bin).astype(np.int64)
        weights = np.where(err > 0, 1.0 / np.where(err > 0, err, 1.0) ** 2, 0.0)
        bins.add(index, [weights, mjd, mag, weights * mag, err**2])
    if origin is None:
        return
    yield lightcurves.bin_columns(bins, options, None)


def rows(store: Any, engine: sa.Engine, base_url: str, part: Part, options: Options,
         state: dict[str, bool]) -> Iterator[lightcurves.Columns]:
    """The part's column chunks, at most ``options.maxrec`` rows (``state`` flags overflow)."""
    if options.bin is not None:
        chunks: Iterator[list[Any]] = _binned(store, engine, part, options)
    else:
        chunks = _points(store, engine, base_url, part, options)
    return lightcurves.limited(chunks, options.maxrec, state)


def field_names(options: Options) -> list[str]:
    """Names of the columns :func:`rows` yields."""
    names = ["time", "magnitude", "magnitude_error"]
    if options.bin is None:
        names += ["exposure", "flux_calibration", "flux_calibration_level", "timestamp",
                  *PROVENANCE]
    if options.folded:
        names.append("phase")
    if options.bin is not None:
        names.append("n_points")
    return names


def counts(parts_: Sequence[Part]) -> tuple[int, int]:
    """(nights, points) of the parts, before any TIME cut."""
    nights = {s.observation_uuid for p in parts_ for s in p.series}
    return len(nights), sum(s.n_points for p in parts_ for s in p.series)


def sequence(values: Sequence[str]) -> str:
    """A readable list: ``a, b and c``."""
    values = list(values)
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " and " + values[-1]


# --------------------------------------------------------------------------
# What the document says of the curve


#: PARAMs of a night's curve that a star's curve does not have (they vary per point)
_NIGHT_PARAMS = ("instrument", "facility", "source", "night", "access_rights")


def params(star: Star, part: Part, options: Options, did: str) -> list[Param]:
    """PARAMs of a star's curve: the target, the band, the calibration, the nights."""
    out = [x for x in lightcurves.params(part.first, options, did, False)
           if x.name not in _NIGHT_PARAMS]
    calib = tables.table("skvo.photometry").column("flux_calibration")
    nights, points = counts([part])
    out += [
        Param(name="flux_calibration", datatype="char", arraysize="*", ucd=calib.ucd,
              value=part.calibration,
              description="abs: absolute magnitudes; dif: differential magnitudes (CALIB "
                          "selects; the curve never mixes them)."),
        Param(name="n_nights", datatype="int", ucd="meta.number", value=nights,
              description="Nights (observations) whose points the curve joins."),
        Param(name="sources", datatype="char", arraysize="*", ucd="meta.id;meta.dataset",
              value=" ".join(sorted({s.source for s in part.series})),
              description="Data providers whose nights the curve joins."),
    ]
    withheld = len({s.observation_uuid for s in star.visible
                    if s.bandpass_uid == part.bandpass_uid}) - len(
        {s.observation_uuid for s in star.fetchable if s.bandpass_uid == part.bandpass_uid})
    if withheld:
        out.append(Param(name="n_nights_withheld", datatype="int", ucd="meta.number",
                         value=withheld,
                         description="Nights of this band whose data need a grant you do "
                                     "not have (not in the curve)."))
    return out


def description(star: Star, part: Part, options: Options) -> str:
    """The TABLE DESCRIPTION of a star's curve."""
    nights = sorted({s.night for s in part.series})
    sources = sorted({s.source for s in part.series})
    text = (f"Light curve (magnitudes against time) of {star.target} in band "
            f"{part.bandpass_uid} over {len(nights)} night{'s' * (len(nights) != 1)} "
            f"({nights[0]} to {nights[-1]}) from {sequence(sources)}; "
            f"{'absolute' if part.calibration == 'abs' else 'differential'} magnitudes, "
            + (f"times converted to {part.convert} by SKVO (astropy)." if part.convert else
               f"times at the {part.refposition.lower()} as delivered."))
    if options.folded:
        text += f" Phases for period {options.period!r} d, epoch MJD {options.epoch!r}."
    if options.bin is not None:
        text += f" Binned, {options.bin!r} {'in phase' if options.folded else 'd'} per bin."
    return text
