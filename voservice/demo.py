"""The sample upload tree: real variable stars, synthetic light curves and frames.

``write_demo_tree(path)`` writes a tree in the layout of
``shared/spec/data-formats.md``.  Two parts:

- the *archive*: four sources (Slovak observatories and one southern site),
  seven bright variable stars with their ICRS positions, HD numbers, periods
  and amplitudes as published (SIMBAD / GCVS), a dozen scattered nights of
  2-4 bandpasses each, all three access rights;
- the *campaign*: an open-access monitoring season of beta Lyr, Algol,
  delta Cep and RR Lyr in B and V from one site (:data:`CAMPAIGN`), 20-40
  nights per star chosen by the site's weather (a Markov chain of clear and
  cloudy nights) and the star's visibility (sun below -12 deg, star above
  25 deg, computed for the site), a few hours per night, some Algol nights
  planned on a minimum; errors from photon and scintillation noise at the
  point's airmass, and noise drawn with those errors.  Enough nights for
  folding and periodograms (the published periods come out).

Light curves are computed from the stars' periods; frames are synthetic star
fields (:func:`star_field`: sky, noise, seeing, the target at the centre).
Everything derives from the seed (one ``numpy.random.Generator`` per part):
the same seed gives a byte-identical tree.  ``points=`` scales the archive up
(more nights) for benchmarks.
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


#: beta Lyrae shape ((cos 2 pi phase + k) / (1 + k))^2: equal maxima, the secondary
#: minimum ((1 - k) / (1 + k))^2 = 0.45 of the primary's depth
BETALYR_K = 0.197


def _shape(kind: str, phase: np.ndarray) -> np.ndarray:
    """Light-curve shape: 0 at maximum light, 1 at minimum light."""
    if kind == "algol":  # narrow primary, shallow secondary
        d = np.minimum(phase, 1 - phase)
        s = np.abs(phase - 0.5)
        return np.exp(-0.5 * (d / 0.035) ** 2) + 0.06 * np.exp(-0.5 * (s / 0.035) ** 2)
    if kind == "betalyr":  # continuous; primary minimum at phase 0, secondary at 0.5
        return ((np.cos(2 * np.pi * phase) + BETALYR_K) / (1 + BETALYR_K)) ** 2
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


ARCHIVE_SOURCES: tuple[Source, ...] = (
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

#: the monitoring campaign's source: a small telescope for bright stars, open access
CAMPAIGN_SOURCE = Source(
    "staralesna", "Astronomical Institute of the Slovak Academy of Sciences",
    "https://www.astro.sk", "astro@ta3.sk", "Stara Lesna Observatory", "staralesna",
    "Observatory of the Astronomical Institute at Stara Lesna, Slovakia",
    "0.15 m refractor with Moravian G2", "staralesna-r150-g2", "0.15 m apochromatic refractor",
    "Moravian Instruments G2-1600", 1.1, ("johnson.b", "johnson.v"),
    "abs", "heliocenter", ("open",), ("bet_Lyr", "bet_Per", "del_Cep", "RR_Lyr"), "imgs",
    False, 18.0, (20.2897, 49.1519, 810.0))

#: every source of the tree: the archive's, then the campaign's
SOURCES: tuple[Source, ...] = (*ARCHIVE_SOURCES, CAMPAIGN_SOURCE)

#: nights (UTC start dates) the sources observe in; one source-star pair takes a few
NIGHTS = tuple(dt.date(2017, 12, 4) + dt.timedelta(days=9 * i) for i in range(12))

# --------------------------------------------------------------------------
# The monitoring campaign


@dataclass(frozen=True)
class Season:
    """One star's share of the monitoring campaign (:data:`CAMPAIGN_SOURCE`)."""

    star: str  # folder of the star
    first: dt.date  # first evening of the season
    days: int  # length of the season
    nights: tuple[int, int]  # the observer takes this many usable clear nights (range)
    exposure: tuple[float, float]  # integration of one point (a stack of frames), s: B, V
    plan_minima: float = 0.0  # chance that a night's run is planned on a predicted minimum


#: the campaign: each star in its observing season (evening visibility from the site)
CAMPAIGN: tuple[Season, ...] = (
    Season("bet_Lyr", dt.date(2018, 5, 20), 130, (26, 34), (40.0, 30.0)),
    Season("RR_Lyr", dt.date(2018, 5, 25), 125, (26, 34), (90.0, 60.0)),
    Season("del_Cep", dt.date(2018, 7, 10), 130, (24, 32), (40.0, 30.0)),
    Season("bet_Per", dt.date(2018, 9, 1), 140, (26, 34), (30.0, 20.0), plan_minima=0.4),
)
#: weather of the site: chance that an evening is clear after a clear / a cloudy one
CLEAR_AFTER = (0.70, 0.30)
#: darkness and height the observer needs: sun and star altitude limits, degrees
SUN_LIMIT, STAR_LIMIT = -12.0, 25.0
#: a night's run: hours (range; at most the star's window, which must be this long)
RUN_HOURS = (2.0, 5.0)
#: minutes between two B+V cycles (range, per night)
CYCLE_MINUTES = (4.5, 7.0)
#: campaign nights with frames per star, and a frame every so many points
FRAME_NIGHTS, FRAME_STEP = 2, 5
#: frames of an archive series that has frames (spread evenly over its points)
ARCHIVE_FRAMES = 4
#: side of every frame, pixels; peak counts of a campaign target at maximum light
#: above the atmosphere (a bright star saturates: its size follows its brightness)
FRAME_SIZE, TARGET_PEAK = 200, 2500.0
#: telescope aperture (m) and the photometry's floor (flat field, calibration), mag
APERTURE, ERROR_FLOOR = 0.15, 0.0015
#: detected electrons per second per m^2 from a star of magnitude 0 above the
#: atmosphere, and the extinction coefficient (mag per airmass), by band
ZERO_POINT = {"johnson.b": 4.0e9, "johnson.v": 5.5e9}
EXTINCTION = {"johnson.b": 0.30, "johnson.v": 0.18}


def _sky_altitudes(mjd: np.ndarray, ra: float, dec: float, lon: float, lat: float
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Altitudes (deg) of the sun and of a star (ICRS ra, dec deg) seen from a site
    (east longitude, latitude deg) at some MJDs (UTC): the Astronomical Almanac's
    low-precision sun, good to a few arcminutes."""
    n = np.asarray(mjd, float) - 51544.5  # days from J2000.0
    g = np.radians(357.528 + 0.9856003 * n)
    ecl = np.radians(280.460 + 0.9856474 * n + 1.915 * np.sin(g) + 0.020 * np.sin(2 * g))
    eps = np.radians(23.439 - 4e-7 * n)
    sun_ra = np.arctan2(np.cos(eps) * np.sin(ecl), np.cos(ecl))
    sun_dec = np.arcsin(np.sin(eps) * np.sin(ecl))
    lst = np.radians(280.46061837 + 360.98564736629 * n + lon)
    phi = np.radians(lat)

    def altitude(r: np.ndarray | float, d: np.ndarray | float) -> np.ndarray:
        return np.degrees(np.arcsin(np.sin(phi) * np.sin(d)
                                    + np.cos(phi) * np.cos(d) * np.cos(lst - r)))

    return altitude(sun_ra, sun_dec), altitude(np.radians(ra), np.radians(dec))


def airmass(altitude: np.ndarray) -> np.ndarray:
    """Relative air mass at some altitudes (deg; Kasten & Young 1989)."""
    alt = np.asarray(altitude, float)
    return 1.0 / (np.sin(np.radians(alt)) + 0.50572 * (alt + 6.07995) ** -1.6364)


def photometric_error(mag: np.ndarray, band: str, x: np.ndarray, exposure: float,
                      height: float) -> np.ndarray:
    """1-sigma error (mag) of a point: photon noise of the star through the
    atmosphere, scintillation (Young 1967, with Osborn et al. 2015's factor
    1.5) at airmass ``x`` for a stack of ``exposure`` s, and a floor."""
    electrons = (ZERO_POINT[band] * np.pi * (APERTURE / 2) ** 2 * exposure
                 * 10 ** (-0.4 * (mag + EXTINCTION[band] * x)))
    scintillation = (1.5 * 0.09 * (100 * APERTURE) ** (-2 / 3) * x ** 1.75
                     * np.exp(-height / 8000.0) / np.sqrt(2 * exposure))
    relative = np.sqrt(1 / electrons + scintillation ** 2)
    return np.hypot(1.0857 * relative, ERROR_FLOOR)


def _weather(rng: np.random.Generator, first: dt.date, days: int) -> set[dt.date]:
    """The clear evenings of a stretch of days (a two-state Markov chain)."""
    clear, out = bool(rng.uniform() < 0.5), set()
    for k in range(days):
        clear = bool(rng.uniform() < CLEAR_AFTER[0 if clear else 1])
        if clear:
            out.add(first + dt.timedelta(days=k))
    return out


def _window(evening: dt.date, star: Star, site: tuple[float, float, float]
            ) -> tuple[float, float] | None:
    """The longest stretch (MJD from, to) of the night after ``evening`` with the
    sun below SUN_LIMIT and the star above STAR_LIMIT, or None."""
    noon = (evening - dt.date(1858, 11, 17)).days + 0.5
    mjd = noon + np.arange(0, 1, 5 / 1440)
    sun, alt = _sky_altitudes(mjd, star.ra, star.dec, site[0], site[1])
    ok = np.concatenate([[False], (sun < SUN_LIMIT) & (alt > STAR_LIMIT), [False]])
    edges = np.flatnonzero(np.diff(ok.astype(int)))
    if not edges.size:
        return None
    starts, stops = edges[::2], edges[1::2]
    k = int(np.argmax(stops - starts))
    return float(mjd[starts[k]]), float(mjd[stops[k] - 1])


@dataclass(frozen=True)
class _Night:
    """One campaign night of a star: when its B and V points were taken."""

    star: Star
    season: Season
    night: dt.date  # UTC date of the first point
    mjd: dict[str, np.ndarray]  # band -> mid-exposure MJDs (UTC)


def _run(rng: np.random.Generator, season: Season, star: Star, window: tuple[float, float]
         ) -> dict[str, np.ndarray]:
    """The B and V times of one night's run inside the star's window."""
    w0, w1 = window
    hours = min(float(rng.uniform(*RUN_HOURS)), (w1 - w0) * 24)
    length = hours / 24
    start = float(rng.uniform(w0, w1 - length))
    if rng.uniform() < season.plan_minima:  # the observer times the run on a minimum
        k = np.arange(np.ceil((w0 - star.epoch) / star.period),
                      np.floor((w1 - star.epoch) / star.period) + 1)
        minima = star.epoch + k * star.period
        if minima.size:
            centre = float(minima[0]) + float(rng.normal(0, 0.1 * length))
            start = min(max(centre - length / 2, w0), w1 - length)
    cycle = float(rng.uniform(*CYCLE_MINUTES)) / 1440
    cycles = start + np.arange(int(length / cycle)) * cycle + rng.uniform(0, 30, int(
        length / cycle)) / 86400
    if rng.uniform() < 0.25:  # passing clouds
        gap0 = float(rng.uniform(start, start + length))
        cut = (cycles > gap0) & (cycles < gap0 + float(rng.uniform(15, 45)) / 1440)
        if (~cut).sum() >= 15:
            cycles = cycles[~cut]
    b_exp, v_exp = season.exposure
    return {"johnson.b": cycles + b_exp / 2 / 86400,
            "johnson.v": cycles + (b_exp + 15 + v_exp / 2) / 86400}


def _campaign(rng: np.random.Generator) -> list[_Night]:
    """The nights of the campaign, star by star (weather, visibility, runs)."""
    stars = {s.folder: s for s in STARS}
    site = CAMPAIGN_SOURCE.location
    assert site is not None
    first = min(s.first for s in CAMPAIGN)
    last = max(s.first + dt.timedelta(days=s.days) for s in CAMPAIGN)
    clear = _weather(rng, first, (last - first).days)
    nights: list[_Night] = []
    for season in CAMPAIGN:
        star = stars[season.star]
        evenings = sorted(d for d in clear
                          if season.first <= d < season.first + dt.timedelta(days=season.days))
        wanted = int(rng.integers(season.nights[0], season.nights[1] + 1))
        taken: list[_Night] = []
        for i in rng.permutation(len(evenings)):
            window = _window(evenings[int(i)], star, site)
            if window is None or (window[1] - window[0]) * 24 < RUN_HOURS[0]:
                continue
            mjd = _run(rng, season, star, window)
            night = dt.date(1858, 11, 17) + dt.timedelta(days=int(mjd["johnson.b"][0]))
            if any(n.night == night for n in taken):
                continue
            taken.append(_Night(star, season, night, mjd))
            if len(taken) == wanted:
                break
        nights.extend(sorted(taken, key=lambda n: n.night))
    return nights


# --------------------------------------------------------------------------
# Files


def png_bytes(image: np.ndarray) -> bytes:
    """A grey-scale 8-bit PNG of a 2-d uint8 array (deterministic bytes; the fastest
    compression: a noisy frame hardly compresses better at higher levels)."""
    height, width = image.shape
    raw = b"".join(b"\x00" + image[row].tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))


def field_stars(rng: np.random.Generator, size: int) -> np.ndarray:
    """Stars around a target: rows (dx, dy, peak) in pixels from the frame's
    centre and counts; many faint ones, few bright (a power law), none as bright
    as a bright target."""
    n = max(3, int(size * size / 900))
    half = size / 2
    peak = 10.0 * (1 - rng.uniform(0, 1, n)) ** -0.8
    return np.column_stack([rng.uniform(-half, half, n), rng.uniform(-half, half, n),
                            np.minimum(peak, 140.0)])


def star_field(rng: np.random.Generator, size: int, brightness: float, *,
               stars: np.ndarray | None = None, fwhm: float | None = None,
               sky: float = 30.0) -> np.ndarray:
    """A synthetic CCD frame (``size`` x ``size`` uint8): sky with noise, the
    target of peak ``brightness`` counts (saturating above 255) near the centre
    (a pointing offset of a pixel or two), ``stars`` around it
    (:func:`field_stars`; random when None), all with a Moffat seeing profile of
    ``fwhm`` pixels, and a few hot pixels."""
    image = rng.normal(sky, np.sqrt(sky / 3.0), (size, size))
    width = fwhm if fwhm is not None else float(rng.uniform(2.2, 3.8))
    shift = rng.normal(0.0, 1.5, 2)
    field = field_stars(rng, size) if stars is None else stars
    cx, cy = size / 2 + shift[0], size / 2 + shift[1]
    for dx, dy, peak in [(0.0, 0.0, brightness), *field]:
        _add_star(image, cx + dx, cy + dy, peak, width)
    hot = rng.integers(0, size, (max(1, size // 40), 2))
    image[hot[:, 1], hot[:, 0]] = 255
    return np.clip(image, 0, 255).astype(np.uint8)


#: Moffat index of the seeing profile (wings of a real star image)
MOFFAT_BETA = 2.5


def _add_star(image: np.ndarray, x: float, y: float, peak: float, fwhm: float) -> None:
    """Add a star (Moffat profile) to the part of the image it is visible on."""
    alpha = fwhm / (2 * np.sqrt(2 ** (1 / MOFFAT_BETA) - 1))
    # out to where the profile falls to a count
    reach = alpha * np.sqrt(max(peak, 1.0) ** (1 / MOFFAT_BETA) - 1)
    r = int(min(reach, image.shape[0] / 3)) + 2
    x0, x1 = max(int(x) - r, 0), min(int(x) + r + 1, image.shape[1])
    y0, y1 = max(int(y) - r, 0), min(int(y) + r + 1, image.shape[0])
    if x0 >= x1 or y0 >= y1:
        return
    dx2 = ((np.arange(x0, x1) - x) / alpha) ** 2
    dy2 = ((np.arange(y0, y1) - y) / alpha) ** 2
    image[y0:y1, x0:x1] += peak * (1 + dy2[:, None] + dx2[None, :]) ** -MOFFAT_BETA


def _csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode("utf-8")


def _stamp(t: np.datetime64) -> str:
    text = str(t.astype("datetime64[ms]"))  # 2018-02-17T19:03:04.123
    return text.replace("T", " ")


def _times(mjd: np.ndarray) -> np.ndarray:
    """UTC datetime64[ms] of some MJDs."""
    ms = np.round((np.asarray(mjd) - 40587.0) * 86400e3).astype(np.int64)
    return ms.astype("datetime64[ms]")


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
        for source in ARCHIVE_SOURCES:
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


def _meta_row(s: Source, star: Star, access: str, band: str) -> list[list[str]]:
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
        "access.access": access,
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


@dataclass
class _Writer:
    """Collects the files of the tree and counts what they hold."""

    root: Path
    files: list[tuple[Path, bytes]]
    series: int = 0
    points: int = 0
    frames: int = 0

    def series_files(self, s: Source, star: Star, night: dt.date, band: str, access: str,
                     times: np.ndarray, mags: np.ndarray, errors: np.ndarray, exposure: float,
                     level: int, frames: dict[int, bytes]) -> None:
        """The data and meta CSV of one series and its frames (by point index)."""
        folder = f"{star.folder}_{night:%Y%m%d}"
        month = f"{night:%Y%m}"
        if s.calibration == "dif":
            mags = mags - (star.mag + 1.2)  # differential against a comparison star
        rows = [["ts.timestamp", "ts.magnitude", "ts.magnitude_error", "ts.flux_calibration",
                 "ts.flux_calibration_level", "ts.exposure", "ts.timeframe_reference_position"]]
        rows.extend(
            [_stamp(t), f"{m:.4f}", f"{e:.4f}", s.calibration, str(level), f"{exposure:g}",
             s.refposition]
            for t, m, e in zip(times, mags, errors, strict=True)
        )
        suffix = "" if s.short_names else "_id"
        band_dir = self.root / s.name / "photometry" / "dtables" / month / folder / band
        self.files.append((band_dir / f"{folder}_data{suffix}.csv", _csv(rows)))
        self.files.append((band_dir / f"{folder}_meta{suffix}.csv",
                           _csv(_meta_row(s, star, access, band))))
        img_dir = self.root / s.name / "photometry" / s.images / month / folder / band
        for k, png in frames.items():
            self.files.append((img_dir / f"{folder}_{k}.png", png))
        self.series += 1
        self.points += len(times)
        self.frames += len(frames)


def _write_archive(out: _Writer, rng: np.random.Generator, points: int | None) -> set[str]:
    """The archive's scattered nights; the targets they observe."""
    plans = _plan(rng, points)
    for plan in plans:
        night0 = np.datetime64(plan.night, "ms")
        start = night0 + np.timedelta64(int(plan.start_hour * 3600e3), "ms")
        slot = sum(plan.exposure) + 8.0 * len(plan.bands)
        n = plan.n
        for j, band in enumerate(plan.bands):
            offsets = (np.arange(n) * slot + j * (slot / len(plan.bands))
                       + rng.uniform(0, 2.0, n)) * 1e3
            times = start + offsets.astype(np.int64).astype("timedelta64[ms]")
            mjd = 40587.0 + times.astype(np.int64) / 86400e3
            model = magnitudes(plan.star, band, mjd)
            error = np.minimum(0.003 + 0.002 * 10 ** (0.4 * (model - 6.0)), 0.15) + rng.uniform(
                0, 0.004, n)
            mags = model + rng.normal(0, 1, n) * error
            level = int(rng.integers(1, 4))
            frames: dict[int, bytes] = {}
            if plan.with_frames:
                for k in range(0, n, max(1, n // ARCHIVE_FRAMES)):
                    peak = float(np.clip(255 * 10 ** (-0.4 * (mags[k] - mags.min())), 40, 230))
                    frames[k] = png_bytes(star_field(rng, FRAME_SIZE, peak))
            out.series_files(plan.source, plan.star, plan.night, band, plan.access, times,
                             mags, error, plan.exposure[j], level, frames)
    return {p.star.folder for p in plans}


def _write_campaign(out: _Writer, rng: np.random.Generator) -> set[str]:
    """The campaign's nights (all open) with their frames on a few nights; its targets."""
    s = CAMPAIGN_SOURCE
    assert s.location is not None
    nights = _campaign(rng)
    fields = {season.star: field_stars(rng, FRAME_SIZE) for season in CAMPAIGN}
    framed = {id(n) for season in CAMPAIGN for n in _pick(
        rng, [n for n in nights if n.season is season], FRAME_NIGHTS)}
    for night in nights:
        star, season = night.star, night.season
        fwhm = float(rng.uniform(2.2, 4.0))  # the night's seeing, pixels
        for band, exposure in zip(CAMPAIGN_SOURCE.bands, season.exposure, strict=True):
            mjd = night.mjd[band]
            _, alt = _sky_altitudes(mjd, star.ra, star.dec, s.location[0], s.location[1])
            x = airmass(alt)
            model = magnitudes(star, band, mjd)
            error = photometric_error(model, band, x, exposure, s.location[2])
            mags = model + rng.normal(0, 1, mjd.size) * error
            frames: dict[int, bytes] = {}
            if id(night) in framed:
                bright = float(magnitudes(star, band, star.epoch + np.linspace(
                    0, star.period, 400)).min())  # maximum light
                for k in range(0, mjd.size, FRAME_STEP):
                    peak = TARGET_PEAK * 10 ** (-0.4 * (
                        mags[k] - bright + EXTINCTION[band] * (x[k] - 1)))
                    frames[k] = png_bytes(star_field(
                        rng, FRAME_SIZE, peak, stars=fields[star.folder],
                        fwhm=fwhm * float(x[k]) ** 0.6, sky=22.0 + 8.0 * float(x[k])))
            out.series_files(s, star, night.night, band, "open", _times(mjd), mags, error,
                             exposure, 3, frames)
    return {n.star.folder for n in nights}


def _pick(rng: np.random.Generator, items: list[_Night], k: int) -> list[_Night]:
    """``k`` of the items (at random), in their order."""
    chosen = sorted(rng.choice(len(items), min(k, len(items)), replace=False))
    return [items[int(i)] for i in chosen]


def write_demo_tree(path: Path, seed: int = 2026, points: int | None = None) -> DemoSummary:
    """Write the sample tree under ``path``; ``points`` (about) sets the archive's size."""
    path = Path(path)
    out = _Writer(path, [])
    targets = _write_archive(out, np.random.default_rng(seed), points)
    targets |= _write_campaign(out, np.random.default_rng([seed, 1]))
    spectra = path / "skalnate" / "spectroscopy"
    out.files.append((spectra / "README.txt",
                      b"Spectra of the 1.3 m telescope will be published here; SKVO does not "
                      b"load them yet.\n"))
    for file, data in out.files:
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(data)
    sources = {f.relative_to(path).parts[0] for f, _ in out.files if "photometry" in f.parts}
    return DemoSummary(path, len(sources), len(targets), out.series, out.points, out.frames,
                       len(out.files))
