"""A small upload tree of one synthetic eclipsing binary whose minima are known.

The light curve is computed on the barycentric (BJD_TDB) time of every point
(astropy, the facility's location), so its minima fall exactly at
``EPOCH_BJD + PERIOD * E``.  Nights (one band each):

- open, topocentric times: primaries at E = 20, 31, 45, a secondary at 57.5,
  and a night at phase 0.25 that covers no minimum;
- on_demand (source ``ecld``): a primary at E = 38;
- restricted (source ``eclr``): a primary at E = 50;
- open, heliocentric times (the provider gives HJD, source ``eclh``): a
  primary at E = 63.

Used by the minimum-table, O-C and night TIMESYS tests.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import requests
from astropy import units as u
from astropy.coordinates import EarthLocation, SkyCoord
from astropy.io.votable import parse as parse_votable
from astropy.table import Table
from astropy.time import Time
from conftest import LiveServer, deploy, mariadb_database

STAR = "TX_Ecl"
RA, DEC = 47.04, 40.96
PERIOD = 2.867315
#: MJD (BJD_TDB - 2400000.5) of the primary minimum of cycle 0
EPOCH_BJD = 58101.742
LOCATION = (22.2736, 48.9353, 460.0)
BAND = "johnson.v"
#: an ephemeris of the target's own: BJD_TDB, as the meta CSV gives it
EPHEMERIS_TEXT = f"BJD {EPOCH_BJD + 2400000.5:.6f}"
NOISE = 0.005


@dataclass(frozen=True)
class Night:
    """One night of the tree: its source, access, cycle at its middle, reference position."""

    source: str
    access: str
    cycle: float
    refposition: str = "topocenter"

    @property
    def minimum(self) -> float | None:
        """MJD (BJD_TDB) of the minimum the night covers (None: it covers none)."""
        frac = self.cycle % 1
        if frac not in (0.0, 0.5):
            return None
        return EPOCH_BJD + PERIOD * self.cycle


NIGHTS = (
    Night("eclo", "open", 20), Night("eclo", "open", 31), Night("eclo", "open", 45),
    Night("eclo", "open", 57.5), Night("eclo", "open", 26.25),
    Night("ecld", "on_demand", 38), Night("eclr", "restricted", 50),
    Night("eclh", "open", 63, "heliocenter"),
)


def magnitude(bjd: np.ndarray) -> np.ndarray:
    """An Algol-like curve: 1 mag primary, 0.15 mag secondary, Gaussian shapes."""
    phase = np.mod((bjd - EPOCH_BJD) / PERIOD, 1.0)
    d = np.minimum(phase, 1 - phase)
    s = np.abs(phase - 0.5)
    return 8.0 + 1.0 * np.exp(-0.5 * (d / 0.03) ** 2) + 0.15 * np.exp(-0.5 * (s / 0.03) ** 2)


def observed_times(night: Night, n: int = 160) -> Time:
    """UTC times at the observatory spread over 0.32 d around the night's cycle."""
    middle_bjd = EPOCH_BJD + PERIOD * night.cycle
    start = middle_bjd - 0.16 + np.arange(n) * (0.32 / n)
    start = np.round(start * 86400e3) / 86400e3  # whole milliseconds, as the files
    return Time(start, format="mjd", scale="utc", location=location())


def location() -> EarthLocation:
    lon, lat, height = LOCATION
    return EarthLocation.from_geodetic(lon * u.deg, lat * u.deg, height * u.m)


def target() -> SkyCoord:
    return SkyCoord(RA * u.deg, DEC * u.deg, frame="icrs")


def bjd_tdb(t: Time) -> np.ndarray:
    """astropy's BJD_TDB (as MJD) of observed UTC times."""
    return (t.tdb + t.light_travel_time(target(), "barycentric")).mjd


def hjd_utc(t: Time) -> np.ndarray:
    """astropy's HJD_UTC (as MJD) of observed UTC times."""
    return (t.utc + t.light_travel_time(target(), "heliocentric")).mjd


def _csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


def _stamp(mjd: float) -> str:
    t = Time(mjd, format="mjd", scale="utc")
    return t.datetime.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _meta(night: Night) -> list[list[str]]:
    values = {
        "target.target": STAR, "target.catalogue": "HD", "target.catalogue_value": "999001",
        "target.right_ascension": f"{RA}", "target.declination": f"{DEC}",
        "target.target_class": "eclipsing binary",
        "bandpass.bandpass": "V", "bandpass.bandpass_uid": BAND,
        "bandpass.spectral_band_type": "optical", "bandpass.photometric_system": "johnson",
        "instrument.instrument": "Test 0.6 m", "instrument.instrument_uid": "test-06",
        "instrument.telescope": "0.6 m reflector", "instrument.field_of_view": "0.2",
        "facility.facility": "Test Observatory", "facility.facility_uid": "testobs",
        "facility.longitude": f"{LOCATION[0]}", "facility.latitude": f"{LOCATION[1]}",
        "facility.height": f"{LOCATION[2]:g}",
        "organisation.organisation": f"Test {night.source}",
        "organisation.organisation_did": f"http://example.org/{night.source}",
        "dataid.title": "Synthetic eclipses", "dataid.publisher": "SKVO tests",
        "dataid.publisher_did": f"ivo://example.org/{night.source}",
        "access.access": night.access,
        "ephemeris.period": f"{PERIOD}", "ephemeris.epoch": EPHEMERIS_TEXT,
        "ephemeris.epoch_refpos": "barycenter", "ephemeris.epoch_timescale": "TDB",
        "ephemeris.var_type": "EA", "ephemeris.reference": "SKVO tests: the model's own",
    }
    return [list(values), list(values.values())]


def write_tree(path: Path, seed: int = 11) -> Path:
    """Write the tree under ``path`` (returned)."""
    rng = np.random.default_rng(seed)
    for night in NIGHTS:
        t = observed_times(night)
        mags = magnitude(bjd_tdb(t)) + rng.normal(0, NOISE, t.size)
        # what the provider writes: observed UTC, or HJD UTC for a heliocentric provider
        stamps = hjd_utc(t) if night.refposition == "heliocenter" else t.mjd
        day = Time(stamps[0], format="mjd").datetime
        folder = f"{STAR}_{day:%Y%m%d}"
        band_dir = path / night.source / "photometry" / "dtables" / f"{day:%Y%m}" / folder / BAND
        band_dir.mkdir(parents=True, exist_ok=True)
        rows = [["ts.timestamp", "ts.magnitude", "ts.magnitude_error", "ts.flux_calibration",
                 "ts.flux_calibration_level", "ts.exposure", "ts.timeframe_reference_position"]]
        rows += [[_stamp(s), f"{m:.4f}", f"{NOISE}", "abs", "2", "30", night.refposition]
                 for s, m in zip(stamps, mags, strict=True)]
        (band_dir / f"{folder}_data_id.csv").write_bytes(_csv(rows))
        (band_dir / f"{folder}_meta_id.csv").write_bytes(_csv(_meta(night)))
    return path


@contextlib.contextmanager
def serving(root: Path, backend: str, name: str) -> Iterator[LiveServer]:
    """The tree loaded into a deployment on ``backend`` (sqlite, or mariadb: database
    ``name``), served."""
    tree = write_tree(root / "tree")
    url = "sqlite:///skvo.sqlite" if backend == "sqlite" else mariadb_database(name)
    server = LiveServer(deploy(root / "deployment", tree, url))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def tap(server: LiveServer, query: str, account: tuple[str, str] | None = None) -> Table:
    """A TAP sync query's result as an astropy Table; fails on any error."""
    response = requests.post(f"{server.url}/tap/sync", auth=account, timeout=120, data={
        "REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query})
    assert response.status_code == 200, response.text[-2000:]
    votable = parse_votable(io.BytesIO(response.content))
    status = [i for i in votable.resources[0].infos if i.name == "QUERY_STATUS"]
    assert status and status[0].value == "OK", response.text[-2000:]
    return votable.get_first_table().to_table()


def rows(table: Table) -> list[dict]:
    """The rows of a table as dicts (None for nulls)."""
    out = []
    for row in table:
        out.append({c: (None if np.ma.is_masked(row[c]) else
                        (row[c].item() if hasattr(row[c], "item") else row[c]))
                    for c in table.colnames})
    return out
