"""Issue 17 end to end: an upload tree through `skvo ingest` into OpenTSDB and HBase.

The same tree -- the sample data plus nights written here in the upload
format (a one-point series, nights of 1897, 1920, 1970/71, 1988, 1995, 1999
and 2001, series crossing midnight and hour rows, mixed calibrations, frames)
-- is ingested by the real command twice: into SQLite with the SQL and file
stores, and into MariaDB with the OpenTSDB and HBase Thrift doubles at their
stock settings plus what README asks for (``allow_delete``, ``[timeseries]
assign_uids``).  Both are served by ``skvo serve`` and compared over HTTP:
every light curve in every deterministic format byte for byte (only the
observations' random uuids differ), every frame byte for byte, frames after
an idle pause longer than the Thrift server's idle timeout and after a
Thrift restart, and ``skvo ingest --replace`` leaves exactly the new points,
in OpenTSDB's storage and over HTTP.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import pyvo
import requests
from conftest import ADMIN, Deployment, LiveServer, deploy, mariadb_database
from servers.hbase_thrift import FakeHBase
from servers.opentsdb import FakeOpenTsdb

from voservice.demo import STARS, png_bytes, star_field, write_demo_tree
from voservice.stores.timeseries.opentsdb import SHIFT_MS, epoch_shift, escape

pytestmark = pytest.mark.mariadb

#: every output format of /lightcurve ("": BINARY2); all are deterministic
FORMATS = ("", "votable/binary", "votable/td", "csv", "tsv", "json", "fits")
IDLE_TIMEOUT = 1.0  # the HBase double's idle timeout (stock: 60 s)
DATA_HEADER = ["ts.timestamp", "ts.magnitude", "ts.magnitude_error", "ts.flux_calibration",
               "ts.flux_calibration_level", "ts.exposure", "ts.timeframe_reference_position"]


# ---------------------------------------------------------------- the extra nights


@dataclass(frozen=True)
class Night:
    """One series written here: star folder, UTC start date, bandpass, points, frames."""

    star: str
    date: dt.date
    band: str
    rows: tuple[tuple[str, ...], ...]
    frames: tuple[int, ...] = ()

    @property
    def folder(self) -> str:
        return f"{self.star}_{self.date:%Y%m%d}"


def stamp(t: dt.datetime) -> str:
    """``YYYY-MM-DD HH:MM:SS.fff`` (milliseconds, what OpenTSDB keeps)."""
    return f"{t:%Y-%m-%d %H:%M:%S}.{t.microsecond // 1000:03d}"


def rows_at(times: list[dt.datetime], rng: np.random.Generator, base: float,
            calibration: str = "abs") -> tuple[tuple[str, ...], ...]:
    """Data rows at ``times``: full-precision magnitudes, as a provider's script writes."""
    out = []
    for i, t in enumerate(times):
        mag = base + float(rng.normal(0, 0.3))
        cal = calibration if calibration != "mixed" else ("abs", "dif")[i % 2]
        refpos = ("heliocenter", "topocenter", "barycenter")[i % 3] if calibration == "mixed" \
            else "heliocenter"
        level = str(1 + i % 3) if calibration == "mixed" else "2"
        out.append((stamp(t), repr(mag if cal == "abs" else mag - base - 1.2),
                    repr(abs(float(rng.normal(0.01, 0.005)))), cal, level,
                    ("0.001", "30", "3600", "12.5")[i % 4], refpos))
    return tuple(out)


def every(start: dt.datetime, step: dt.timedelta, n: int) -> list[dt.datetime]:
    """``n`` times from ``start``, ``step`` apart."""
    return [start + k * step for k in range(n)]


def extra_nights() -> list[Night]:
    """The nights the sample tree lacks (source ``archive``, all open)."""
    rng = np.random.default_rng(17)
    d = dt.datetime
    ms, minute = dt.timedelta(milliseconds=1), dt.timedelta(minutes=1)
    hour_edges = []  # every hour row boundary of the night, from both sides
    for hour in range(19, 24):
        edge = d(1995, 10, 21, hour)
        hour_edges += [edge - ms, edge, edge + ms, edge + 17 * minute + 123 * ms]
    return [
        # plates: 1897, across midnight, frames; a one-point series the same night
        Night("del_Cep", dt.date(1897, 8, 14), "johnson.b",
              rows_at(every(d(1897, 8, 14, 21, 10, 0, 250_000), 7 * minute + 500 * ms, 40),
                      rng, 4.1), frames=(0, 13, 39)),
        Night("del_Cep", dt.date(1897, 8, 14), "johnson.v",
              rows_at([d(1897, 8, 14, 23, 59, 59, 999_000)], rng, 3.9), frames=(0,)),
        Night("del_Cep", dt.date(1920, 9, 3), "johnson.b",
              rows_at(every(d(1920, 9, 3, 19), 10 * minute + 7 * ms, 25), rng, 4.2)),
        # starts before 1971 (stored shifted), ends in 1971, across the new year
        Night("bet_Lyr", dt.date(1970, 12, 31), "johnson.v",
              rows_at(every(d(1970, 12, 31, 23), 4 * minute, 30) + [d(1971, 1, 1, 1, 59, 59,
                                                                      999_000)], rng, 3.5)),
        # a campaign of 20 nights in one folder
        Night("R_Cas", dt.date(1988, 3, 1), "johnson.v",
              rows_at(every(d(1988, 3, 1, 20, 30), dt.timedelta(hours=16, minutes=3), 30),
                      rng, 7.0), frames=(5, 29)),
        # points on both sides of every hour row; calibration, level, refposition vary
        Night("RR_Lyr", dt.date(1995, 10, 21), "johnson.v",
              rows_at(sorted(hour_edges), rng, 7.4, "mixed")),
        Night("RR_Lyr", dt.date(1999, 12, 31), "johnson.b",
              rows_at([d(1999, 12, 31, 23, 59, 59, 999_000)], rng, 7.6), frames=(0,)),
        # 2001-09-09 01:46:40 UTC: Unix seconds grow from 9 to 10 digits
        Night("W_UMa", dt.date(2001, 9, 9), "johnson.v",
              rows_at(every(d(2001, 9, 9, 1, 40), 20 * dt.timedelta(seconds=1), 40), rng, 7.9,
                      "dif")),
    ]


def meta_rows(star_folder: str, band: str) -> list[list[str]]:
    """The metadata CSV of an archive series (docs/uploading.md)."""
    star = next(s for s in STARS if s.folder == star_folder)
    values = {
        "target.target": star.name, "target.catalogue": "HD", "target.catalogue_value": star.hd,
        "target.description": star.description,
        "target.right_ascension": f"{star.ra:.6f}", "target.declination": f"{star.dec:.6f}",
        "target.equinox": "J2000", "target.target_class": star.target_class,
        "bandpass.bandpass": band[-1].upper(), "bandpass.bandpass_uid": band,
        "bandpass.spectral_band_type": "optical", "bandpass.photometric_system": "johnson",
        "instrument.instrument": "Plate archive scans", "instrument.instrument_uid": "arch-plates",
        "instrument.telescope": "various astrographs", "instrument.camera": "",
        "instrument.spectroscope": "", "instrument.field_of_view": "5.0",
        "instrument.description": "scanned photographic plates and later CCD frames",
        "facility.facility": "Plate archive", "facility.facility_uid": "archive",
        "facility.description": "historical observations, digitised",
        "organisation.organisation": "SKVO test archive",
        "organisation.organisation_did": "http://archive.example.org",
        "organisation.email": "archive@example.org",
        "dataid.title": "Historical photometry", "dataid.publisher": "SKVO test archive",
        "dataid.publisher_did": "ivo://skvo.example.org/archive",
        "access.access": "open",
    }
    return [list(values), list(values.values())]


def write_csv(path: Path, rows: list[list[str]] | list[tuple[str, ...]]) -> None:
    """A CSV file as providers write it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    path.write_text(out.getvalue())


def data_file(tree: Path, night: Night) -> Path:
    """Where a night's data CSV lives."""
    return (tree / "archive" / "photometry" / "dtables" / f"{night.date:%Y%m}" / night.folder
            / night.band / f"{night.folder}_data_id.csv")


def write_night(tree: Path, night: Night, rng: np.random.Generator) -> None:
    """Data, metadata and frames of one night in the upload layout."""
    data = data_file(tree, night)
    write_csv(data, [DATA_HEADER, *night.rows])
    write_csv(data.with_name(f"{night.folder}_meta_id.csv"), meta_rows(night.star, night.band))
    images = (tree / "archive" / "photometry" / "imgs" / f"{night.date:%Y%m}" / night.folder
              / night.band)
    for index in night.frames:
        images.mkdir(parents=True, exist_ok=True)
        (images / f"{night.folder}_{index}.png").write_bytes(
            png_bytes(star_field(rng, 48, 200.0)))


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample tree plus the archive nights."""
    path = tmp_path_factory.mktemp("ingest-tree") / "data"
    write_demo_tree(path)
    rng = np.random.default_rng(1897)
    for night in extra_nights():
        write_night(path, night, rng)
    return path


def tree_series(tree: Path) -> int:
    """Number of series (data CSVs) in a tree."""
    return len(list(tree.glob("*/photometry/dtables/*/*/*/*_data*.csv")))


# ---------------------------------------------------------------- the two deployments


@dataclass
class Side:
    """A deployment and its running server."""

    dep: Deployment
    server: LiveServer

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module")
def doubles() -> Iterator[tuple[FakeOpenTsdb, FakeHBase]]:
    """OpenTSDB 2.4.1 at stock settings with deletes allowed; HBase Thrift at stock
    (buffered, binary) with a 1 s idle timeout instead of 60 s."""
    tsdb = FakeOpenTsdb(allow_delete=True).start()
    hbase = FakeHBase("buffered", "binary", idle_timeout=IDLE_TIMEOUT).start()
    yield tsdb, hbase
    hbase.stop()
    tsdb.stop()


@pytest.fixture(scope="module")
def sql_side(tmp_path_factory: pytest.TempPathFactory, tree: Path) -> Iterator[Side]:
    """The tree in SQLite with the SQL time-series store and frame files."""
    dep = deploy(tmp_path_factory.mktemp("ingest-sql"), tree, "sqlite:///skvo.sqlite")
    server = LiveServer(dep)
    server.start()
    yield Side(dep, server)
    server.stop()


@pytest.fixture(scope="module")
def tsdb_side(tmp_path_factory: pytest.TempPathFactory, tree: Path,
              doubles: tuple[FakeOpenTsdb, FakeHBase]) -> Iterator[Side]:
    """The tree in MariaDB + the OpenTSDB double + the HBase double."""
    tsdb, hbase = doubles
    dep = deploy(
        tmp_path_factory.mktemp("ingest-tsdb"), tree, mariadb_database("skvo_ingest_e2e"),
        timeseries={"backend": "opentsdb", "url": tsdb.url, "assign_uids": "true"},
        media={"backend": "hbase", "host": hbase.host, "port": str(hbase.port),
               "table": "skvo_frames"},
    )
    server = LiveServer(dep)
    server.start()
    yield Side(dep, server)
    server.stop()


def obscore(side: Side) -> dict[tuple[str, str, str], dict]:
    """Every series by (target, bandpass, t_min) -> obs_id and t_xel, read as admin."""
    session = requests.Session()
    session.auth = ADMIN
    table = pyvo.dal.TAPService(f"{side.url}/tap", session=session).run_sync(
        "SELECT obs_id, target_name, bandpass_uid, t_min, t_xel FROM ivoa.obscore "
        "WHERE calib_level = 2", maxrec=100_000).to_table()
    return {(str(r["target_name"]), str(r["bandpass_uid"]), f"{float(r['t_min']):.9f}"):
            {"obs_id": str(r["obs_id"]), "bandpass_uid": str(r["bandpass_uid"]),
             "t_xel": int(r["t_xel"])} for r in table}


def frames(side: Side) -> dict[tuple[str, int], int]:
    """Frame ids by (observation uuid, frame index), read as admin."""
    session = requests.Session()
    session.auth = ADMIN
    table = pyvo.dal.TAPService(f"{side.url}/tap", session=session).run_sync(
        "SELECT f.frame_id, f.frame_index, o.observation_uuid FROM skvo.frame AS f "
        "JOIN skvo.photometry AS p ON p.photometry_id = f.photometry_id "
        "JOIN skvo.observation AS o ON o.observation_id = p.observation_id",
        maxrec=100_000).to_table()
    return {(str(r["observation_uuid"]), int(r["frame_index"])): int(r["frame_id"])
            for r in table}


def get(side: Side, path: str, session: requests.Session | None = None) -> bytes:
    """A 200 answer's body."""
    response = (session or requests).get(f"{side.url}{path}", auth=ADMIN, timeout=60)
    assert response.status_code == 200, (path, response.status_code, response.text[:500])
    return response.content


def same_uuids(ours: dict, theirs: dict) -> dict[bytes, bytes]:
    """Our observation uuids -> the SQL side's (what legitimately differs, beside the
    request date), with their prefixes (a long FITS string continues on CONTINUE cards)."""
    out = {}
    for key in ours:
        mine, sql = ours[key]["obs_id"].encode(), theirs[key]["obs_id"].encode()
        out.update({mine[:n]: sql[:n] for n in range(9, len(mine) + 1)})
    return out


def normalised(body: bytes, uuids: dict[bytes, bytes]) -> bytes:
    """``body`` with our uuids written as the SQL side's and the DataOrigin request
    date masked (same length: binary stays valid)."""
    body = re.sub(rb"(request_date[^0-9]{0,24})\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d",
                  lambda m: m.group(1) + b"0000-00-00T00:00:00", body)
    return re.sub(rb"[0-9a-f]{8}-[0-9a-f-]{0,27}",
                  lambda m: uuids.get(m.group(0), m.group(0)), body)


# ---------------------------------------------------------------- the tests


def test_the_whole_tree_is_ingested(tree: Path, sql_side: Side, tsdb_side: Side) -> None:
    n = tree_series(tree)
    ours, theirs = obscore(tsdb_side), obscore(sql_side)
    assert len(ours) == len(theirs) == n > 55
    assert {k: v["t_xel"] for k, v in ours.items()} == {k: v["t_xel"]
                                                        for k, v in theirs.items()}
    assert sorted(v["t_xel"] for v in ours.values())[:2] == [1, 1]  # the one-point series
    again = tsdb_side.dep.skvo("ingest", str(tree), check=False)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"loaded 0 series (0 points, 0 frames); skipped {n} (already loaded)" in (
        again.stdout + again.stderr)


def test_every_light_curve_is_byte_for_byte_the_sql_stores(sql_side: Side,
                                                           tsdb_side: Side) -> None:
    ours, theirs = obscore(tsdb_side), obscore(sql_side)
    uuids = same_uuids(ours, theirs)
    a, b = requests.Session(), requests.Session()
    old = [k for k in ours if float(k[2]) < 51_000]  # before 1998-07
    assert len(old) >= 6, old
    # every series in the default format (BINARY2: every value's exact bits), every
    # format for one series in eight and for the archive nights (the formats are
    # written from the same rows whatever the store)
    for k, key in enumerate(sorted(ours)):
        mine, sql = ours[key], theirs[key]
        for fmt in FORMATS if k % 8 == 0 or float(key[2]) < 52_200 else FORMATS[:1]:
            query = f"?RESPONSEFORMAT={fmt}" if fmt else ""
            path_a = f"/lightcurve/{mine['obs_id']}/{mine['bandpass_uid']}{query}"
            path_b = f"/lightcurve/{sql['obs_id']}/{sql['bandpass_uid']}{query}"
            body = get(tsdb_side, path_a, a)
            assert normalised(body, uuids) == normalised(get(sql_side, path_b, b), {}), (key, fmt)
        if float(key[2]) < 52_200:  # the archive nights: windows (shifted reads), folding
            t = float(key[2])
            for query in (f"TIME={t + 0.01!r}/{t + 0.08!r}", f"TIME=/{t + 0.02!r}",
                          f"TIME={t!r}/", "PERIOD=0.5&BIN=0.1", "BIN=0.01", "MAXREC=3"):
                body = get(tsdb_side, f"/lightcurve/{mine['obs_id']}/{mine['bandpass_uid']}"
                                      f"?RESPONSEFORMAT=votable/td&{query}", a)
                assert normalised(body, uuids) == normalised(get(
                    sql_side, f"/lightcurve/{sql['obs_id']}/{sql['bandpass_uid']}"
                              f"?RESPONSEFORMAT=votable/td&{query}", b), {}), (key, query)
        # the night's bands in one table
        body = get(tsdb_side, f"/lightcurve/{mine['obs_id']}?RESPONSEFORMAT=votable/td", a)
        assert normalised(body, uuids) == normalised(get(
            sql_side, f"/lightcurve/{sql['obs_id']}?RESPONSEFORMAT=votable/td", b), {}), key


def star_records(side: Side) -> dict[tuple[str, str], int]:
    """Target id of every star curve by (target, bandpass), read as admin."""
    session = requests.Session()
    session.auth = ADMIN
    table = pyvo.dal.TAPService(f"{side.url}/tap", session=session).run_sync(
        "SELECT obs_id, target_name, bandpass_uid FROM ivoa.obscore WHERE calib_level = 3",
        maxrec=100_000).to_table()
    return {(str(r["target_name"]), str(r["bandpass_uid"])): int(str(r["obs_id"]).split("/")[1])
            for r in table}


def test_every_star_curve_is_byte_for_byte_the_sql_stores(sql_side: Side,
                                                          tsdb_side: Side) -> None:
    """A star's curve over all its nights (frames, windows across nights, folding and
    binning over nights) is the same document from OpenTSDB/HBase as from the SQL store."""
    uuids = same_uuids(obscore(tsdb_side), obscore(sql_side))
    ours_frames, their_frames = frames(tsdb_side), frames(sql_side)
    sql_uuid = {k: v for k, v in uuids.items() if len(k) == 36}
    frame_ids = {}
    for (uuid, index), frame_id in ours_frames.items():
        theirs_id = their_frames[(sql_uuid[uuid.encode()].decode(), index)]
        frame_ids[f"/frame/{frame_id}".encode()] = f"/frame/{theirs_id}".encode()
    ours, theirs = star_records(tsdb_side), star_records(sql_side)
    assert set(ours) == set(theirs) and len(ours) >= 3
    with_frames = 0
    a, b = requests.Session(), requests.Session()
    for key in sorted(ours):
        band = key[1]
        mine = f"/lightcurve/star/{ours[key]}/{band}?RESPONSEFORMAT=votable/td"
        sql = f"/lightcurve/star/{theirs[key]}/{band}?RESPONSEFORMAT=votable/td"
        for query in ("", "&TIME=51000/55000", "&PERIOD=0.7&BIN=0.05", "&BIN=3", "&MAXREC=7"):
            body = normalised(get(tsdb_side, mine + query, a), uuids)
            body = re.sub(rb"/frame/\d+", lambda m: frame_ids.get(m.group(0), m.group(0)), body)
            body = body.replace(f"star/{ours[key]}/".encode(), f"star/{theirs[key]}/".encode())
            body = body.replace(tsdb_side.url.encode(), sql_side.url.encode())
            assert body == normalised(get(sql_side, sql + query, b), {}), (key, query)
            with_frames += b"/frame/" in body
    assert with_frames, "no star curve of the tree has frames"


def test_points_come_back_as_written(tree: Path, tsdb_side: Side,
                                    doubles: tuple[FakeOpenTsdb, FakeHBase]) -> None:
    """The archive nights, point for point, against their CSV files (not just the SQL side);
    in OpenTSDB's storage a series starting before 1971 lies whole centuries later."""
    tsdb, _ = doubles
    ours = obscore(tsdb_side)
    shifted = 0
    for night in extra_nights():
        written = _rows(data_file(tree, night).read_text())
        first = dt.datetime.fromisoformat(written[0][0])
        key = next(k for k in ours if k[1] == night.band
                   and abs(_mjd(first) - float(k[2])) < 1e-6)
        body = get(tsdb_side, f"/lightcurve/{ours[key]['obs_id']}/{night.band}"
                              "?RESPONSEFORMAT=csv")
        served = list(csv.DictReader(io.StringIO(body.decode())))
        assert len(served) == len(written), night.folder
        for row, line in zip(served, written, strict=True):
            assert float(row["magnitude"]) == float(line[1]), (night.folder, line)
            assert abs(float(row["time"]) - _mjd(dt.datetime.fromisoformat(line[0]))) < 1e-9
        centuries = epoch_shift(_unix_ms(first))
        shifted += centuries > 0
        obs = ours[key]["obs_id"].replace("-", "")
        assert _epochs(tsdb, night.star, night.band, obs) == {str(100 * centuries)}
        assert _stored(tsdb, night.star, night.band)[obs] == {
            _unix_ms(dt.datetime.fromisoformat(line[0])) + centuries * SHIFT_MS: float(line[1])
            for line in written}
    assert shifted == 4  # 1897 (two bands), 1920, 1970


def test_frames_byte_for_byte_after_idle_pause_and_thrift_restart(
        sql_side: Side, tsdb_side: Side, doubles: tuple[FakeOpenTsdb, FakeHBase]) -> None:
    _, hbase = doubles
    ours, theirs = obscore(tsdb_side), obscore(sql_side)
    by_uuid = {v["obs_id"]: theirs[k]["obs_id"] for k, v in ours.items()}
    mine, sql = frames(tsdb_side), frames(sql_side)
    assert len(mine) == len(sql) > 90
    pairs = [(frame_id, sql[(by_uuid[obs], index)]) for (obs, index), frame_id in mine.items()]

    def compare(subset: list[tuple[int, int]]) -> None:
        for a, b in subset:
            body = get(tsdb_side, f"/frame/{a}")
            assert body.startswith(b"\x89PNG") and body == get(sql_side, f"/frame/{b}"), a

    compare(pairs)
    assert hbase.open_connections() >= 1  # the server's workers hold connections
    _wait(lambda: hbase.open_connections() == 0)  # the Thrift server closed them, idle
    compare(pairs[:8] * 2)  # every worker meets its closed connection
    hbase.restart()
    compare(pairs[-8:] * 2)


def test_replace_leaves_exactly_the_new_points(tree: Path, sql_side: Side, tsdb_side: Side,
                                               doubles: tuple[FakeOpenTsdb, FakeHBase]
                                               ) -> None:
    tsdb, _ = doubles
    rng = np.random.default_rng(5)
    changed = [n for n in extra_nights() if n.date.year in (1920, 1995)]
    assert len(changed) == 2
    before = obscore(tsdb_side)
    new_rows = {}
    for night in changed:  # fewer points, other values, in other hour rows
        times = [dt.datetime.fromisoformat(r[0]) for r in night.rows[::3]]
        rows = rows_at(times, rng, 9.0)
        new_rows[night.folder] = rows
        write_csv(data_file(tree, night), [DATA_HEADER, *rows])
    for side in (sql_side, tsdb_side):
        plain = side.dep.skvo("ingest", str(tree), check=False)
        said = plain.stdout + plain.stderr
        assert plain.returncode == 1 and said.count("changed since it was loaded") == 2, said
        result = side.dep.skvo("ingest", str(tree), "--replace", check=False)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        assert "replaced 2" in result.stdout + result.stderr
    tsdb.settle()  # every asynchronous hour-row delete has run
    ours, theirs = obscore(tsdb_side), obscore(sql_side)
    uuids = same_uuids(ours, theirs)
    assert ours.keys() == theirs.keys() and len(ours) == len(before)
    for night in changed:
        rows = new_rows[night.folder]
        first = _mjd(dt.datetime.fromisoformat(rows[0][0]))
        key = next(k for k in ours if k[1] == night.band and abs(first - float(k[2])) < 1e-6)
        old = next(v["obs_id"] for k, v in before.items() if k == key)
        new = ours[key]["obs_id"]
        assert new == old  # a replaced observation keeps its identity (uuid, DID, URLs)
        # OpenTSDB's storage: the series holds exactly the new points
        stored = _stored(tsdb, night.star, night.band)
        shift = epoch_shift(int(_unix_ms(dt.datetime.fromisoformat(rows[0][0])))) * SHIFT_MS
        assert stored[new.replace("-", "")] == {
            _unix_ms(dt.datetime.fromisoformat(r[0])) + shift: float(r[1]) for r in rows}
        # over HTTP: exactly the new points, and the same bytes as the SQL side
        body = get(tsdb_side, f"/lightcurve/{new}/{night.band}?RESPONSEFORMAT=csv")
        served = list(csv.DictReader(io.StringIO(body.decode())))
        assert [float(r["magnitude"]) for r in served] == [float(r[1]) for r in rows]
        sql = theirs[key]["obs_id"]
        for fmt in FORMATS:
            query = f"?RESPONSEFORMAT={fmt}" if fmt else ""
            assert normalised(get(tsdb_side, f"/lightcurve/{new}/{night.band}{query}"),
                              uuids) == normalised(
                get(sql_side, f"/lightcurve/{sql}/{night.band}{query}"), {})


# ---------------------------------------------------------------- helpers


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))[1:]


def _unix_ms(t: dt.datetime) -> int:
    return (t - dt.datetime(1970, 1, 1)) // dt.timedelta(milliseconds=1)


def _mjd(t: dt.datetime) -> float:
    return 40587.0 + _unix_ms(t) / 86_400_000


def _stored(tsdb: FakeOpenTsdb, star: str, band: str) -> dict[str, dict[int, float]]:
    """Magnitudes in the double's storage by obs tag: {stored ms: value}."""
    metric = f"{escape(star)}.{escape(band)}.photometry.v0"
    out: dict[str, dict[int, float]] = {}
    with tsdb.lock:
        for (name, tags), rows in tsdb.rows.items():
            if name != metric:
                continue
            for cells in rows.values():
                for slot, values in cells.items():
                    out.setdefault(dict(tags)["obs"], {})[slot] = values[-1]
    return {obs: points for obs, points in out.items() if points}


def _epochs(tsdb: FakeOpenTsdb, star: str, band: str, obs: str) -> set[str]:
    """The ``epoch`` tags of every stored point of a series (all four metrics)."""
    names = {f"{escape(star)}.{escape(band)}.{kind}photometry.v0"
             for kind in ("", "error.", "exposure.", "oid.")}
    with tsdb.lock:
        return {dict(tags)["epoch"] for (name, tags), rows in tsdb.rows.items()
                if name in names and dict(tags)["obs"] == obs and any(rows.values())}


def _wait(condition: Callable[[], bool], limit: float = 30.0) -> None:
    """Until ``condition()`` holds (the server's own timers decide when)."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come true"
        time.sleep(0.1)
