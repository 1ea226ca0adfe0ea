"""The sample upload tree: real variable stars, synthetic light curves and frames.

``write_demo_tree(path)`` writes a tree in the layout of
``shared/spec/data-formats.md``: four sources (Slovak observatories and one
southern site), seven bright variable stars with their ICRS positions, HD
numbers, periods and amplitudes as published (SIMBAD / GCVS), several nights
of 2-4 bandpasses each, light curves computed from the stars' periods with
noise, small PNG star-field frames for some series, all three access rights.
Everything derives from one seeded ``numpy.random.Generator``: the same seed
gives a byte-identical tree.  ``points=`` scales the tree up (more nights) for
benchmarks.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# --------------------------------------------------------------------------
# The stars


@dataclass(frozen=True)
class Star:
    """A variable star: ICRS position, identifiers and light-curve parameters."""

    folder: str  # target uid in the tree
    name: str  # target.target
    hd: str
    hip: str
    ra: float  # deg, ICRS
    dec: float  # deg, ICRS
    target_class: str
    description: str
    period: float  # days
    epoch: float  # MJD of a minimum (eclipsing) or maximum (pulsating)
    mag: float  # V at maximum light
    amplitude: float  # V amplitude
    shape: str  # algol | betalyr | wuma | cepheid | rrab | mira
    colour: float  # B-V


STARS: tuple[Star, ...] = (
    Star("bet_Lyr", "bet_Lyr", "174638", "92420", 282.519975, 33.362667,
         "eclipsing binary", "beta Lyrae, prototype of the EB class", 12.9414, 58100.31,
         3.30, 1.05, "betalyr", 0.00),
    Star("bet_Per", "Algol", "19356", "14576", 47.042215, 40.955648,
         "eclipsing binary", "Algol (beta Persei), prototype of the EA class", 2.867315,
         58101.742, 2.09, 1.21, "algol", -0.05),
    Star("W_UMa", "W_UMa", "83950", "47727", 145.939458, 55.952528,
         "eclipsing binary", "W Ursae Majoris, contact binary (EW)", 0.333637, 58100.117,
         7.75, 0.73, "wuma", 0.62),
    Star("del_Cep", "del_Cep", "213306", "110991", 337.292771, 58.415197,
         "pulsating variable", "delta Cephei, classical Cepheid", 5.366249, 58102.44,
         3.48, 0.89, "cepheid", 0.66),
    Star("RR_Lyr", "RR_Lyr", "182989", "95497", 291.366292, 42.784361,
         "pulsating variable", "RR Lyrae, RRab pulsator", 0.566805, 58100.402,
         7.06, 1.06, "rrab", 0.24),
    Star("R_Cas", "R_Cas", "224490", "118188", 359.603625, 51.388806,
         "long-period variable", "R Cassiopeiae, Mira variable near RA 0h", 430.46, 58010.0,
         4.70, 8.8, "mira", 1.50),
    Star("l_Car", "l_Car", "84810", "47854", 146.311708, -62.507917,
         "pulsating variable", "l Carinae, long-period classical Cepheid", 35.557, 58080.6,
         3.28, 0.90, "cepheid", 1.30),
)


#: GCVS variability type of each light-curve shape
VAR_TYPES = {"algol": "EA", "betalyr": "EB", "wuma": "EW", "cepheid": "DCEP", "rrab": "RRAB",
             "mira": "M"}


def _shape(kind: str, phase: np.ndarray) -> np.ndarray:
    """Light-curve shape: 0 at maximum light, 1 at minimum light."""
    if kind == "algol":  # narrow primary, shallow secondary
        d = np.minimum(phase, 1 - phase)
        s = np.abs(phase - 0.5)
        return np.exp(-0.5 * (d / 0.035) ** 2) + 0.06 * np.exp(-0.5 * (s / 0.035) ** 2)
    if kind == "betalyr":  # continuous, unequal minima
        return 0.5 * (0.5 - 0.5 * np.cos(4 * np.pi * phase)) + 0.5 * (
            0.5 - 0.5 * np.cos(2 * np.pi * phase))
    if kind == "wuma":  # nearly equal minima
        return (0.5 + 0.5 * np.cos(4 * np.pi * phase)) ** 1.5 * 0.97 + 0.03 * (
            0.5 + 0.5 * np.cos(2 * np.pi * phase))
    if kind in ("cepheid", "rrab"):  # slow decline, fast rise
        rise = 0.30 if kind == "cepheid" else 0.15
        up = phase > 1 - rise
        return np.where(up, (1 - phase) / rise, phase / (1 - rise)) ** 1.2
    if kind == "mira":
        return 0.5 - 0.5 * np.cos(2 * np.pi * phase)
    raise ValueError(kind)


#: amplitude factor and colour factor (times B-V) of each band relative to V
BANDS: dict[str, tuple[float, float, str]] = {
    "johnson.u": (1.6, 1.9, "U"),
    "johnson.b": (1.35, 1.0, "B"),
    "johnson.v": (1.0, 0.0, "V"),
    "johnson.r": (0.8, -0.55, "R"),
    "cousins.r": (0.8, -0.55, "Rc"),
    "cousins.i": (0.6, -1.1, "Ic"),
    "sdss.g": (1.2, 0.6, "g'"),
    "sdss.r": (0.85, -0.4, "r'"),
}


def magnitudes(star: Star, band: str, mjd: np.ndarray) -> np.ndarray:
    """Model magnitude of a star in a band at some MJDs (no noise)."""
    amp, colour, _ = BANDS[band]
    if star.shape == "mira":
        amp = 1.0
    phase = np.mod((mjd - star.epoch) / star.period, 1.0)
    return star.mag + colour * star.colour + amp * star.amplitude * _shape(star.shape, phase)


# --------------------------------------------------------------------------
# The sources


@dataclass(frozen=True)
class Source:
    """A data provider: its organisation, facility, instrument and habits."""

    name: str
    organisation: str
    organisation_did: str
    email: str
    facility: str
    facility_uid: str
    facility_description: str
    instrument: str
    instrument_uid: str
    telescope: str
    camera: str
    field_of_view: float
    bands: tuple[str, ...]
    calibration: str  # abs | dif
    refposition: str
    access: tuple[str, ...]  # access rights used, by star
    stars: tuple[str, ...]
    images: str  # folder of the frames: imgs or media
    short_names: bool  # *_data.csv instead of *_data_id.csv
    utc_start: float  # hour the nights start (UTC)
    location: tuple[float, float, float] | None = None  # east lon deg, lat deg, height m


SOURCES: tuple[Source, ...] = (
    Source("upjs", "Pavol Jozef Safarik University in Kosice", "http://www.upjs.sk",
           "skvo@upjs.sk", "Kolonica Observatory", "kolonica",
           "Astronomical observatory on Kolonica saddle, Slovakia",
           "ZC600 with FLI ProLine", "upjs-zc600-fli", "Zeiss ZC600 0.6 m Cassegrain",
           "FLI ProLine PL1001E", 0.21, ("johnson.b", "johnson.v", "johnson.r", "cousins.i"),
           "abs", "heliocenter", ("open", "open", "on_demand"),
           ("bet_Lyr", "bet_Per", "W_UMa", "RR_Lyr", "R_Cas"), "imgs", False, 17.5,
           (22.2736, 48.9353, 460.0)),
    Source("vhao", "Vihorlat Observatory Humenne", "http://www.vihorlatobservatory.sk",
           "info@vihorlatobservatory.sk", "Vihorlat National Telescope", "vnt",
           "1 m telescope of the Vihorlat Observatory at Kolonica, Slovakia",
           "VNT with Moravian G4", "vhao-vnt-g4", "VNT 1 m Cassegrain",
           "Moravian Instruments G4-9000", 0.34, ("johnson.b", "johnson.v", "cousins.r"),
           "dif", "topocenter", ("restricted", "open"),
           ("bet_Per", "del_Cep", "W_UMa", "R_Cas"), "media", True, 18.0,
           (22.2736, 48.9353, 460.0)),
    Source("skalnate", "Astronomical Institute of the Slovak Academy of Sciences",
           "https://www.astro.sk", "astro@ta3.sk", "Skalnate Pleso Observatory", "skalnate",
           "High-mountain observatory in the High Tatras, Slovakia",
           "1.3 m Nasmyth-Cassegrain with FLI", "skalnate-g1-fli", "1.3 m Nasmyth-Cassegrain",
           "FLI ProLine PL1001E", 0.23, ("johnson.u", "johnson.b", "johnson.v", "sdss.g"),
           "abs", "heliocenter", ("on_demand", "open"),
           ("bet_Lyr", "del_Cep", "RR_Lyr"), "imgs", False, 18.5,
           (20.2342, 49.1894, 1786.0)),
    Source("saao", "South African Astronomical Observatory", "https://www.saao.ac.za",
           "data@saao.ac.za", "Sutherland", "sutherland",
           "SAAO observing station at Sutherland, South Africa",
           "1.0 m Elizabeth with SHOC", "saao-1m-shoc", "1.0 m Elizabeth telescope",
           "SHOC", 0.05, ("johnson.v", "sdss.g", "sdss.r"),
           "abs", "barycenter", ("restricted",),
           ("l_Car", "R_Cas"), "imgs", False, 18.0),
)

#: nights (UTC start dates) the sources observe in; one source-star pair takes a few
NIGHTS = tuple(dt.date(2017, 12, 4) + dt.timedelta(days=9 * i) for i in range(12))


# --------------------------------------------------------------------------
# Files


def png_bytes(image: np.ndarray) -> bytes:
    """A grey-scale 8-bit PNG of a 2-d uint8 array (deterministic bytes)."""
    height, width = image.shape
    raw = b"".join(b"\x00" + image[row].tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def star_field(rng: np.random.Generator, size: int, brightness: float) -> np.ndarray:
    """A small synthetic CCD frame: sky, noise and a few Gaussian stars."""
    yy, xx = np.mgrid[0:size, 0:size]
    image = rng.normal(30.0, 4.0, (size, size))
    centres = [(size / 2, size / 2, brightness)] + [
        (rng.uniform(4, size - 4), rng.uniform(4, size - 4), rng.uniform(20, 150))
        for _ in range(int(rng.integers(3, 9)))
    ]
    for cx, cy, peak in centres:
        image += peak * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 1.6 ** 2))
    return np.clip(image, 0, 255).astype(np.uint8)


def _csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode("utf-8")


def _stamp(t: np.datetime64) -> str:
    text = str(t.astype("datetime64[ms]"))  # 2018-02-17T19:03:04.123
    return text.replace("T", " ")


@dataclass
class DemoSummary:
    """What ``write_demo_tree`` wrote."""

    path: Path
    sources: int
    targets: int
    series: int
    points: int
    frames: int
    files: int

    def __str__(self) -> str:
        return (f"sample tree {self.path}: {self.sources} sources, {self.targets} targets, "
                f"{self.series} series, {self.points} points, {self.frames} frames "
                f"({self.files} files)")


@dataclass(frozen=True)
class _Plan:
    source: Source
    star: Star
    night: dt.date
    bands: tuple[str, ...]
    n: int  # points per band
    access: str
    exposure: tuple[float, ...]  # seconds, by band
    start_hour: float  # UTC
    with_frames: bool


def _plan(rng: np.random.Generator, points: int | None) -> list[_Plan]:
    stars = {s.folder: s for s in STARS}
    plans: list[_Plan] = []
    total = 0
    round_ = 0
    while True:
        for source in SOURCES:
            for k, folder in enumerate(source.stars):
                n_nights = 1 + int(rng.integers(0, 2)) if round_ == 0 else 1
                for _ in range(n_nights):
                    night = NIGHTS[int(rng.integers(0, len(NIGHTS)))] + dt.timedelta(
                        days=40 * round_)
                    if any(p.source is source and p.star.folder == folder and p.night == night
                           for p in plans):
                        continue
                    n_bands = int(rng.integers(2, min(4, len(source.bands)) + 1))
                    bands = tuple(sorted(rng.choice(source.bands, n_bands, replace=False)))
                    n = int(rng.integers(50, 700)) if points is None else int(
                        rng.integers(200, 2000))
                    access = source.access[k % len(source.access)]
                    exposure = tuple(float(rng.choice([5.0, 10.0, 20.0, 30.0, 60.0]))
                                     for _ in bands)
                    # filters are cycled: point i of band j is taken at cycle i, slot j
                    slot = sum(exposure) + 8.0 * len(bands)
                    n = max(20, min(n, int(8 * 3600 / slot)))  # at most an 8-hour night
                    plans.append(_Plan(source, stars[folder], night, bands, n, access, exposure,
                                       source.utc_start + float(rng.uniform(0, 2.5)),
                                       bool(rng.uniform() < 0.4)))
                    total += n * len(bands)
        round_ += 1
        if points is None or total >= points:
            return plans


def _meta_row(plan: _Plan, band: str) -> list[list[str]]:
    s, star = plan.source, plan.star
    filt = BANDS[band][2]
    system = band.split(".")[0]
    values = {
        "target.target": star.name,
        "target.catalogue": "HD",
        "target.catalogue_value": star.hd,
        "target.description": f"{star.description}; HIP {star.hip}",
        "target.right_ascension": f"{star.ra:.6f}",
        "target.declination": f"{star.dec:.6f}",
        "target.equinox": "J2000",
        "target.target_class": star.target_class,
        "bandpass.bandpass": filt,
        "bandpass.bandpass_uid": band,
        "bandpass.spectral_band_type": "optical",
        "bandpass.photometric_system": "sloan" if system == "sdss" else system,
        "instrument.instrument": s.instrument,
        "instrument.instrument_uid": s.instrument_uid,
        "instrument.telescope": s.telescope,
        "instrument.camera": s.camera,
        "instrument.spectroscope": "",
        "instrument.field_of_view": f"{s.field_of_view}",
        "instrument.description": f"{s.telescope}, {s.camera}",
        "facility.facility": s.facility,
        "facility.facility_uid": s.facility_uid,
        "facility.description": s.facility_description,
        **({"facility.longitude": f"{s.location[0]}", "facility.latitude": f"{s.location[1]}",
            "facility.height": f"{s.location[2]:g}"} if s.location else {}),
        "organisation.organisation": s.organisation,
        "organisation.organisation_did": s.organisation_did,
        "organisation.email": s.email,
        "dataid.title": f"{s.facility} photometry of variable stars",
        "dataid.publisher": s.organisation,
        "dataid.publisher_did": f"ivo://skvo.example.org/{s.name}",
        "access.access": plan.access,
        # the ephemeris the synthetic light curves were computed with (the periods are
        # the published ones; the epochs are the model's, so that folding phases them)
        "ephemeris.period": f"{star.period}",
        "ephemeris.epoch": f"{star.epoch + 2400000.5:.5f}",
        "ephemeris.epoch_timescale": "UTC",
        "ephemeris.epoch_refpos": "heliocenter",
        "ephemeris.var_type": VAR_TYPES[star.shape],
        "ephemeris.reference": "SKVO sample data: period as published (GCVS), model epoch",
    }
    return [list(values), list(values.values())]


def write_demo_tree(path: Path, seed: int = 2026, points: int | None = None) -> DemoSummary:
    """Write the sample tree under ``path``; ``points`` (about) sets its size."""
    path = Path(path)
    rng = np.random.default_rng(seed)
    plans = _plan(rng, points)
    n_series = n_points = n_frames = n_files = 0
    written: list[tuple[Path, bytes]] = []

    def put(file: Path, data: bytes) -> None:
        written.append((file, data))

    for plan in plans:
        s, star = plan.source, plan.star
        folder = f"{star.folder}_{plan.night:%Y%m%d}"
        month = f"{plan.night:%Y%m}"
        night0 = np.datetime64(plan.night, "ms")
        start = night0 + np.timedelta64(int(plan.start_hour * 3600e3), "ms")
        exposure = dict(zip(plan.bands, plan.exposure, strict=True))
        slot = sum(plan.exposure) + 8.0 * len(plan.bands)
        n = plan.n
        for j, band in enumerate(plan.bands):
            offsets = (np.arange(n) * slot + j * (slot / len(plan.bands))
                       + rng.uniform(0, 2.0, n)) * 1e3
            times = start + offsets.astype(np.int64).astype("timedelta64[ms]")
            mjd = 40587.0 + times.astype(np.int64) / 86400e3
            model = magnitudes(star, band, mjd)
            error = np.minimum(0.003 + 0.002 * 10 ** (0.4 * (model - 6.0)), 0.15) + rng.uniform(
                0, 0.004, n)
            mags = model + rng.normal(0, 1, n) * error
            if s.calibration == "dif":
                mags = mags - (star.mag + 1.2)  # differential against a comparison star
            level = int(rng.integers(1, 4))
            rows = [["ts.timestamp", "ts.magnitude", "ts.magnitude_error", "ts.flux_calibration",
                     "ts.flux_calibration_level", "ts.exposure", "ts.timeframe_reference_position"]]
            rows.extend(
                [_stamp(t), f"{m:.4f}", f"{e:.4f}", s.calibration, str(level),
                 f"{exposure[band]:g}", s.refposition]
                for t, m, e in zip(times, mags, error, strict=True)
            )
            suffix = "" if s.short_names else "_id"
            band_dir = path / s.name / "photometry" / "dtables" / month / folder / band
            put(band_dir / f"{folder}_data{suffix}.csv", _csv(rows))
            put(band_dir / f"{folder}_meta{suffix}.csv", _csv(_meta_row(plan, band)))
            n_series += 1
            n_points += n
            if plan.with_frames:
                img_dir = path / s.name / "photometry" / s.images / month / folder / band
                step = max(1, n // 12)
                for k in range(0, n, step):
                    peak = float(np.clip(255 * 10 ** (-0.4 * (mags[k] - mags.min())), 40, 230))
                    put(img_dir / f"{folder}_{k}.png", png_bytes(star_field(rng, 64, peak)))
                    n_frames += 1
    spectra = path / "skalnate" / "spectroscopy"
    put(spectra / "README.txt",
        b"Spectra of the 1.3 m telescope will be published here; SKVO does not load them yet.\n")
    for file, data in written:
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(data)
        n_files += 1
    targets = {p.star.folder for p in plans}
    return DemoSummary(path, len({p.source.name for p in plans}), len(targets), n_series,
                       n_points, n_frames, n_files)

