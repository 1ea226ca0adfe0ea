"""Light curves: find a series, read its points, cut, fold and bin them.

Pure of Flask: the protocol module parses the request into
:class:`Options`, this module turns a series and the time-series store into
the FIELDs, PARAMs, GROUPs, TIMESYS, COOSYS, INFOs and column chunks the
VOTable writer streams.  Whatever the store (SQL or OpenTSDB), the document
is built the same way.

The annotations are those of DaCHS's ``//timeseries#phot-0`` mixin, which
light-curve clients (e.g. skvo_veb) read: a ``photcal`` GROUP with the
filter's SVO Filter Profile Service id, zero-point flux, magnitude system and
effective wavelength (from :mod:`voservice.bandpasses`) and a FIELDref to the
magnitude, whose FIELD points back at the GROUP; ``dataproduct_type`` and
``dataproduct_subtype`` PARAMs; a COOSYS for the position PARAMs; and the
INFOs of the IVOA DataOrigin note.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import sqlalchemy as sa

from voservice import bandpasses, catalog, tables
from voservice.stores.timeseries.base import MJD_UNIX_EPOCH, US_PER_DAY, Points, SeriesRef
from voservice.votable import Columns, CooSys, Field, Group, Info, Param, TimeSys

TIMESYS_ID = "timesys"
COOSYS_ID = "coosys"
#: ID of the photcal GROUP of a single-band light curve (the magnitude FIELD's ``ref``)
PHOTCAL_ID = "photcal"
MAGNITUDE_ID = "magnitude"
REFPOSITIONS = {"topocenter": "TOPOCENTER", "geocenter": "GEOCENTER",
                 "heliocenter": "HELIOCENTER", "barycenter": "BARYCENTER"}
_EPOCH = dt.datetime(1970, 1, 1)


class OptionError(ValueError):
    """A light-curve parameter is wrong; the message names it."""


@dataclass(frozen=True)
class Options:
    """What the client asked of a light curve."""

    mjd_min: float | None = None
    mjd_max: float | None = None
    bands: frozenset[str] | None = None
    period: float | None = None
    epoch: float | None = None
    bin: float | None = None
    maxrec: int | None = None

    @property
    def folded(self) -> bool:
        """Is a phase column wanted?"""
        return self.period is not None


def _number(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise OptionError(f"{name}={text!r}: not a number") from None
    if not np.isfinite(value):
        raise OptionError(f"{name}={text!r}: must be finite")
    return value


def parse_options(get: Any, maxrec: int | None) -> Options:
    """Options from request parameters (``get(NAME)`` returns the value or None)."""
    mjd_min = mjd_max = None
    if (time := get("TIME")) not in (None, ""):
        lo, sep, hi = time.partition("/")
        if not sep:
            raise OptionError(f"TIME={time!r}: give an MJD range lo/hi (either side may be empty)")
        mjd_min = _number("TIME", lo) if lo.strip() else None
        mjd_max = _number("TIME", hi) if hi.strip() else None
        if mjd_min is not None and mjd_max is not None and mjd_min > mjd_max:
            raise OptionError(f"TIME={time!r}: the start is after the end")
    bands = None
    if (band := get("BAND")) not in (None, ""):
        bands = frozenset(b.strip() for b in band.split(",") if b.strip())
    period = epoch = None
    if (text := get("PERIOD")) not in (None, ""):
        period = _number("PERIOD", text)
        if period <= 0:
            raise OptionError(f"PERIOD={text!r}: must be positive (days)")
        epoch = 0.0
    if (text := get("EPOCH")) not in (None, ""):
        if period is None:
            raise OptionError("EPOCH needs PERIOD")
        epoch = _number("EPOCH", text)
    width = None
    if (text := get("BIN")) not in (None, ""):
        width = _number("BIN", text)
        if width <= 0 or (period is not None and width > 1):
            raise OptionError(f"BIN={text!r}: a positive width in days, or in phase (at most 1) "
                              "when PERIOD is given")
    return Options(mjd_min, mjd_max, bands, period, epoch, width, maxrec)


@dataclass(frozen=True)
class Series:
    """One photometry series with what its light curve describes."""

    photometry_id: int
    observation_uuid: str
    source: str
    night: str
    access: str
    target_folder: str
    bandpass_folder: str
    instrument_hash: str
    data_md5: str
    start_date: Any
    end_date: Any
    n_points: int
    time_refposition: str | None
    target: str
    right_ascension: float
    declination: float
    bandpass: str
    bandpass_uid: str
    photometric_system: str
    wavelength_eff: float | None
    mag_ucd: str | None
    instrument: str
    facility: str
    title: str
    target_id: int | None = None
    flux_calibration: str | None = None  # abs, dif or mixed (of the series)
    n_frames: int = 0
    mjd_start: float | None = None
    mjd_end: float | None = None
    longitude: float | None = None  # of the facility (deg, WGS84)
    latitude: float | None = None
    height: float | None = None

    @property
    def ref(self) -> SeriesRef:
        """How the time-series store knows the series."""
        return SeriesRef(
            series_id=self.photometry_id, observation_uuid=self.observation_uuid,
            target=self.target_folder, bandpass_uid=self.bandpass_folder, source=self.source,
            instrument_hash=self.instrument_hash, start_us=_us(self.start_date),
            end_us=_us(self.end_date))


def _us(value: Any) -> int:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return int((value - _EPOCH) / dt.timedelta(microseconds=1))


def _series_select() -> sa.Select:
    o, p, t, b = (tables.sa_table(f"skvo.{n}") for n in
                  ("observation", "photometry", "target", "bandpass"))
    i, f, d = (tables.sa_table(f"skvo.{n}") for n in ("instrument", "facility", "dataid"))
    return sa.select(
        p.c.photometry_id, o.c.observation_uuid, o.c.source, o.c.night, o.c.access,
        o.c.target_folder, o.c.bandpass_folder, i.c.instrument_hash, o.c.data_md5,
        p.c.start_date,
        p.c.end_date, p.c.n_points, p.c.time_refposition, t.c.target, t.c.right_ascension,
        t.c.declination, b.c.bandpass, b.c.bandpass_uid, b.c.photometric_system,
        b.c.wavelength_eff, b.c.mag_ucd, i.c.instrument, f.c.facility, d.c.title,
        o.c.target_id, p.c.flux_calibration, p.c.n_frames, p.c.mjd_start, p.c.mjd_end,
        f.c.longitude, f.c.latitude, f.c.height,
    ).select_from(catalog.series_join())


def find_series(engine: sa.Engine, observation_uuid: str,
                bandpass_uid: str | None = None) -> list[Series]:
    """The series of an observation (optionally of one bandpass)."""
    o = tables.sa_table("skvo.observation")
    b = tables.sa_table("skvo.bandpass")
    query = _series_select().where(o.c.observation_uuid == observation_uuid)
    if bandpass_uid is not None:
        query = query.where(b.c.bandpass_uid == bandpass_uid)
    with engine.connect() as conn:
        return [Series(**row._mapping) for row in conn.execute(query)]


def target_series(engine: sa.Engine, target_id: int,
                  bandpass_uid: str | None = None) -> list[Series]:
    """Every series of a target (optionally of one bandpass), oldest first."""
    o = tables.sa_table("skvo.observation")
    b = tables.sa_table("skvo.bandpass")
    p = tables.sa_table("skvo.photometry")
    query = _series_select().where(o.c.target_id == target_id)
    if bandpass_uid is not None:
        query = query.where(b.c.bandpass_uid == bandpass_uid)
    query = query.order_by(p.c.mjd_start, o.c.source, p.c.photometry_id)
    with engine.connect() as conn:
        return [Series(**row._mapping) for row in conn.execute(query)]


def night_series(engine: sa.Engine, series: Series) -> list[Series]:
    """Every series of the same source, target and night (all its bandpasses)."""
    o = tables.sa_table("skvo.observation")
    b = tables.sa_table("skvo.bandpass")
    query = _series_select().where(
        o.c.source == series.source, o.c.target_folder == series.target_folder,
        o.c.night == series.night).order_by(b.c.wavelength_eff, b.c.bandpass_uid)
    with engine.connect() as conn:
        return [Series(**row._mapping) for row in conn.execute(query)]


#: MJD bounds of a TIME window are clamped to +-this many days (about 270,000
#: years): no point lies beyond, and microseconds stay within 64 bits
MJD_WINDOW_LIMIT = 1e8


def window(options: Options) -> tuple[int | None, int | None]:
    def us(mjd: float | None) -> int | None:
        if mjd is None:
            return None
        mjd = min(max(mjd, -MJD_WINDOW_LIMIT), MJD_WINDOW_LIMIT)
        return int(round((mjd - MJD_UNIX_EPOCH) * US_PER_DAY))

    return us(options.mjd_min), us(options.mjd_max)


def timesys(series: Series) -> TimeSys:
    """The TIMESYS of a series: UTC (TDB for barycentric times), MJD origin."""
    refposition = REFPOSITIONS.get((series.time_refposition or "").lower(), "TOPOCENTER")
    timescale = "TDB" if refposition == "BARYCENTER" else "UTC"
    return TimeSys(id=TIMESYS_ID, timescale=timescale, refposition=refposition,
                   timeorigin=2400000.5)


def coosys() -> CooSys:
    """The COOSYS of the position PARAMs (ICRS)."""
    return CooSys(id=COOSYS_ID, system="ICRS")


def fields(series: Series, options: Options, multiband: bool,
           names: Sequence[str] | None = None) -> list[Field]:
    """FIELDs of the light curve, time first (TOPCAT plots it at once).

    The magnitude FIELD has ``ID="magnitude"``; in a single-band curve its
    ``ref`` is the photcal GROUP (a multi-band magnitude has one per band).
    """
    from voservice.archive.describe import service_columns

    by_name = {f.name: f for f in service_columns("lightcurve")}
    if names is None:
        names = ["time", "magnitude", "magnitude_error"]
        if options.bin is None:
            names += ["exposure", "flux_calibration", "flux_calibration_level", "timestamp"]
        if multiband:
            names.append("bandpass_uid")
        if options.folded:
            names.append("phase")
        if options.bin is not None:
            names.append("n_points")
    out = [replace(by_name[n]) for n in names]
    out[0].ref = TIMESYS_ID
    out[1].id = MAGNITUDE_ID
    if not multiband:
        out[1].ref = PHOTCAL_ID
    if series.mag_ucd and not multiband:
        out[1].ucd = series.mag_ucd
    if options.bin is not None:
        out[0].description = "Mean time of the points in the bin (MJD)."
        out[1].description = "Inverse-variance weighted mean magnitude of the bin."
        out[2].description = "Propagated 1-sigma error of the weighted mean."
    return out


def params(series: Series, options: Options, did: str, multiband: bool) -> list[Param]:
    """PARAMs: what the light curve is of, described by the table descriptions."""
    desc = tables.table
    target, band = desc("skvo.target"), desc("skvo.bandpass")
    inst, fac = desc("skvo.instrument"), desc("skvo.facility")
    obs, core = desc("skvo.observation"), desc("ivoa.obscore")

    def param(name: str, col: tables.ColumnDesc, value: Any) -> Param:
        arraysize = "*" if col.datatype == "char" else col.arraysize
        return Param(name=name, datatype=col.datatype, arraysize=arraysize, unit=col.unit,
                     ucd=col.ucd, description=col.description, value=value)

    product = core.column("dataproduct_type")
    out = [
        replace(param("dataproduct_type", product, "timeseries"), utype=product.utype),
        Param(name="dataproduct_subtype", datatype="char", arraysize="*", ucd="meta.code.class",
              utype="obscore:ObsDataset.dataProductSubtype", value="lightcurve",
              description="Data product subtype: a light curve (magnitudes against time)."),
        param("target_name", target.column("target"), series.target),
        replace(param("ra", target.column("right_ascension"), series.right_ascension),
                ref=COOSYS_ID),
        replace(param("dec", target.column("declination"), series.declination),
                ref=COOSYS_ID),
        param("instrument", inst.column("instrument"), series.instrument),
        param("facility", fac.column("facility"), series.facility),
        param("source", obs.column("source"), series.source),
        param("night", obs.column("night"), series.night),
        param("publisher_did", core.column("obs_publisher_did"), did),
        param("access_rights", obs.column("access"), series.access),
    ]
    if not multiband:
        out[5:5] = [
            # skvo.bandpass.bandpass says instr.filter, which is no UCD on its own
            replace(param("filter", band.column("bandpass"), series.bandpass),
                    ucd="meta.id;instr.filter"),
            param("bandpass_uid", band.column("bandpass_uid"), series.bandpass_uid),
            param("photometric_system", band.column("photometric_system"),
                  series.photometric_system),
            param("wavelength_eff", band.column("wavelength_eff"), series.wavelength_eff),
        ]
    if options.folded:
        out.append(Param(name="period", datatype="double", unit="d", ucd="time.period",
                         description="Period the phase is computed with.", value=options.period))
        out.append(Param(name="epoch", datatype="double", unit="d", ucd="time.epoch;phys",
                         description="MJD of phase 0.", value=options.epoch))
    return out


def _photcal(series: Series) -> list[Param]:
    """The PARAMs of a photcal GROUP (names, UCDs, utypes of DaCHS's phot-0)."""
    filt = bandpasses.lookup(series.bandpass_uid)
    out = [Param(name="filterIdentifier", datatype="char", arraysize="*",
                 ucd="meta.id;instr.filter", utype="photDM:PhotometryFilter.identifier",
                 value=filt.fps_id if filt else series.bandpass_uid,
                 description="Filter: its identifier in the SVO Filter Profile Service."
                 if filt else "Filter (not a known SVO Filter Profile Service filter).")]
    if filt is not None:
        out += [
            Param(name="zeroPointFlux", datatype="double", unit="Jy",
                  ucd="phot.flux.density;arith.zp", utype="photDM:PhotCal.zeroPoint.flux.value",
                  value=filt.zero_point, description="Flux density of magnitude 0 in the band."),
            Param(name="magnitudeSystem", datatype="char", arraysize="*", ucd="meta.code",
                  utype="photDM:PhotCal.magnitudeSystem.type", value=filt.mag_system,
                  description="Magnitude system (Vega or AB)."),
        ]
    wavelength = filt.wavelength_eff if filt else series.wavelength_eff
    if wavelength is not None:
        out.append(Param(name="effectiveWavelength", datatype="double", unit="m",
                         ucd="em.wl.effective",
                         utype="photDM:PhotometryFilter.spectralLocation.value",
                         value=wavelength, description="Effective wavelength of the filter."))
    return out


def groups(series: list[Series], multiband: bool) -> list[Group]:
    """The photcal GROUPs: one for the magnitude FIELD, or one per band of a multi-band curve.

    A multi-band magnitude column mixes bands: each GROUP is named
    ``photcal_<bandpass_uid>`` (names are unique in a TABLE), names its band
    in a ``bandpass_uid`` PARAM (the rows' ``bandpass_uid``) and has no
    FIELDref, so no reader applies one band's calibration to all rows.
    """
    if not multiband:
        return [Group(name="photcal", id=PHOTCAL_ID, field_refs=[MAGNITUDE_ID],
                      params=_photcal(series[0]),
                      description="Photometric calibration of the magnitude.")]
    band = tables.table("skvo.bandpass").column("bandpass_uid")
    out = []
    for i, s in enumerate(series):
        which = Param(name="bandpass_uid", datatype="char", arraysize="*", ucd=band.ucd,
                      value=s.bandpass_uid, description="Rows this calibration applies to.")
        out.append(Group(name=f"photcal_{s.bandpass_uid}", id=f"{PHOTCAL_ID}_{i}",
                         params=[which, *_photcal(s)],
                         description=f"Photometric calibration of the magnitudes of the rows "
                         f"with bandpass_uid {s.bandpass_uid}."))
    return out


def description(series: list[Series], options: Options, multiband: bool) -> str:
    """The TABLE DESCRIPTION: what was observed, when, with what, and what was done to it."""
    s = series[0]
    bands = ", ".join(x.bandpass_uid for x in series) if multiband else s.bandpass_uid
    text = (f"Light curve (magnitudes against time) of {s.target} in the night {s.night}, "
            f"{'bands' if multiband and len(series) > 1 else 'band'} {bands}, observed with "
            f"{s.instrument} at {s.facility} ({s.source}: {s.title}).")
    if options.folded:
        text += f" Phases for period {options.period!r} d, epoch MJD {options.epoch!r}."
    if options.bin is not None:
        text += f" Binned, {options.bin!r} {'in phase' if options.folded else 'd'} per bin."
    return text


def data_origin(*, publisher: str, ivoid: str, contact: str, citation: str,
                requested: dt.datetime) -> list[Info]:
    """The INFOs of the IVOA DataOrigin note (``requested`` in UTC)."""
    when = requested.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    out = [Info("publisher", publisher), Info("ivoid", ivoid)]
    if contact:
        out.append(Info("contact", contact))
    out += [Info("citation", citation), Info("request_date", when)]
    return out


def phase(mjd: np.ndarray, options: Options) -> np.ndarray:
    return np.mod((mjd - (options.epoch or 0.0)) / options.period, 1.0)


#: points read from the store at a time (the SQL store keeps chunks of 10,000)
READ_POINTS = 10_000


def _points(store: Any, series: list[Series], options: Options) -> Iterator[tuple[Points, str]]:
    start, end = window(options)
    for s in series:
        with contextlib.closing(read(store, s.ref, start, end)) as chunks:
            for chunk in chunks:
                if len(chunk):
                    yield chunk, s.bandpass_uid


def read(store: Any, ref: SeriesRef, start: int | None, end: int | None) -> Iterator[Points]:
    """The store's chunks of a series (as an iterator that can be closed)."""
    yield from store.read(ref, start_us=start, end_us=end, chunk_size=READ_POINTS)


def point_columns(chunk: Points, band: str, options: Options, multiband: bool) -> list[Any]:
    mjd = chunk.mjd
    cols: list[Any] = [mjd, chunk.magnitude, chunk.magnitude_error, chunk.exposure,
                       chunk.flux_calibration, chunk.flux_calibration_level.astype(np.int32),
                       chunk.time_us.astype("datetime64[us]")]
    if multiband:
        cols.append(np.full(len(chunk), band, dtype=object))
    if options.folded:
        cols.append(phase(mjd, options))
    return cols


def rows(store: Any, series: list[Series], options: Options, multiband: bool,
         state: dict[str, bool]) -> Iterator[Columns]:
    """Column chunks of the light curve, at most ``options.maxrec`` rows.

    The points are read and written a store chunk at a time: memory does not
    grow with the number of points (binning holds one accumulator per bin).
    Closing the iterator closes the store's reads.
    """
    if options.bin is not None:
        chunks: Iterator[list[Any]] = _binned(store, series, options, multiband)
    elif multiband and len(series) > 1:
        chunks = _merged(store, series, options)
    else:
        chunks = (point_columns(c, band, options, multiband)
                  for c, band in _points(store, series, options))
    return limited(chunks, options.maxrec, state)


def limited(chunks: Iterator[list[Any]], limit: int | None, state: dict[str, bool]
            ) -> Iterator[Columns]:
    """Column chunks cut at ``limit`` rows (``state["overflow"]`` set when cut).

    Closing the result closes ``chunks``.
    """
    with contextlib.closing(chunks):
        sent = 0
        for cols in chunks:
            n = len(cols[0])
            if limit is not None and sent + n > limit:
                state["overflow"] = True
                n = limit - sent
                cols = [c[:n] for c in cols]
            if n:
                sent += n
                yield Columns(cols)
            if state.get("overflow"):
                break
    if limit == 0:
        state["overflow"] = True  # DALI: MAXREC=0 answers metadata, flagged


def _merged(store: Any, series: list[Series], options: Options) -> Iterator[list[Any]]:
    """All bandpasses of a night in one time-ordered table, streamed.

    The same rows in the same order as sorting all points by time (stable:
    ties keep the series order): each series is read in time order, and every
    point earlier than the smallest last time held of a series still being
    read is final; those are emitted, sorted, one batch at a time.
    """
    start, end = window(options)
    readers = [read(store, s.ref, start, end) for s in series]
    try:
        held: list[list[Any] | None] = [None] * len(series)
        active = [True] * len(series)

        def pull(i: int) -> None:
            for chunk in readers[i]:
                if len(chunk):
                    cols = point_columns(chunk, series[i].bandpass_uid, options, True)
                    old = held[i]
                    held[i] = cols if old is None else [np.concatenate([a, b])
                                                        for a, b in zip(old, cols, strict=True)]
                    return
            active[i] = False

        for i in range(len(series)):
            pull(i)
        while True:
            live = [i for i in range(len(series)) if active[i]]
            bound = min((held[i][0][-1] for i in live), default=None)  # type: ignore[index]
            batch = []
            for i, cols in enumerate(held):
                if cols is None or not len(cols[0]):
                    continue
                cut = len(cols[0]) if bound is None else int(np.searchsorted(cols[0], bound))
                if cut:
                    batch.append([c[:cut] for c in cols])
                    held[i] = [c[cut:] for c in cols]
            if batch:
                merged = [np.concatenate([b[k] for b in batch]) for k in range(len(batch[0]))]
                order = np.argsort(merged[0], kind="stable")
                yield [c[order] for c in merged]
            if bound is None:
                return
            for i in live:
                if held[i][0][-1] == bound:  # type: ignore[index]
                    pull(i)
    finally:
        for reader in readers:
            reader.close()


class Bins:
    """Running per-bin sums of one series, in bin order.

    Every sum adds the points in the order they come, as one ``np.bincount``
    over all of them would: the result is the same to the last bit.
    """

    def __init__(self) -> None:
        self.keys = np.empty(0, np.int64)
        self.count = np.empty(0, np.int64)
        self.sums: list[np.ndarray] = [np.empty(0) for _ in range(5)]

    def add(self, index: np.ndarray, values: list[np.ndarray]) -> None:
        """Add points (``index`` = their bins) to the sums (one array per sum)."""
        keys = np.union1d(self.keys, index)
        old = np.searchsorted(keys, self.keys)
        new = np.searchsorted(keys, index)
        where = np.concatenate([old, new])
        self.count = np.bincount(where, np.concatenate([self.count, np.ones(len(index))]),
                                 minlength=len(keys)).astype(np.int64)
        self.sums = [np.bincount(where, np.concatenate([total, v]), minlength=len(keys))
                     for total, v in zip(self.sums, values, strict=True)]
        self.keys = keys


def _binned(store: Any, series: list[Series], options: Options, multiband: bool
            ) -> Iterator[list[Any]]:
    """Mean time, weighted mean magnitude, propagated error and count per bin (one chunk)."""
    out: list[list[Any]] = []
    for s in series:
        bins = Bins()
        origin = None
        for chunk, _ in _points(store, [s], options):
            mjd = chunk.mjd
            if origin is None:
                origin = mjd[0]
            axis = phase(mjd, options) if options.folded else mjd - origin
            index = np.floor(axis / options.bin).astype(np.int64)
            err = chunk.magnitude_error
            weights = np.where(err > 0, 1.0 / np.where(err > 0, err, 1.0) ** 2, 0.0)
            weights[err <= 0] = 0.0
            bins.add(index, [weights, mjd, chunk.magnitude, weights * chunk.magnitude, err**2])
        if origin is None:
            continue
        out.append(bin_columns(bins, options, s.bandpass_uid if multiband else None))
    if not out:
        return
    merged = [np.concatenate([o[i] for o in out]) for i in range(len(out[0]))]
    order = np.argsort(merged[0], kind="stable")
    yield [c[order] for c in merged]


def bin_columns(bins: Bins, options: Options, band: str | None) -> list[Any]:
    """Mean time, weighted mean magnitude, propagated error [, band] [, phase], count."""
    count = bins.count
    wsum, tsum, msum, wmag, err2 = bins.sums
    mean_time = tsum / count
    plain_mag = msum / count
    mag = np.where(wsum > 0, wmag / np.where(wsum > 0, wsum, 1.0), plain_mag)
    with np.errstate(divide="ignore", invalid="ignore"):
        error = np.where(wsum > 0, 1.0 / np.sqrt(wsum), np.sqrt(err2) / count)
    cols: list[Any] = [mean_time, mag, error]
    if band is not None:
        cols.append(np.full(len(bins.keys), band, dtype=object))
    if options.folded:
        cols.append((bins.keys + 0.5) * options.bin)
    cols.append(count)
    return cols
