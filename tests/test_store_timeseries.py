"""One contract for every time-series store: SQL (SQLite, MariaDB) and OpenTSDB.

MariaDB runs through both MySQL drivers SKVO supports (PyMySQL, mysqlclient).

OpenTSDB runs as the protocol double in ``tests/servers/opentsdb.py`` over a
real socket; set ``OPENTSDB_URL`` to run the same contract against a real
OpenTSDB (2.4+, auto-create or assignable metrics, deletes allowed).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import mariadb_database
from servers.opentsdb import FakeOpenTsdb

from voservice.stores.metadata import make_engine
from voservice.stores.timeseries import open_timeseries_store
from voservice.stores.timeseries.base import Points, SeriesRef, StoreError
from voservice.stores.timeseries.opentsdb import OpenTsdbTimeSeriesStore, escape
from voservice.stores.timeseries.sql import SqlTimeSeriesStore

T0 = 1_518_897_600_000_000  # 2018-02-17T20:00:00Z in unix microseconds


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb),
                        pytest.param("mariadb-mysqlclient", marks=pytest.mark.mariadb),
                        "opentsdb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator:
    if request.param == "opentsdb":
        double = FakeOpenTsdb().start()
        ts = open_timeseries_store("opentsdb", url=double.url, batch_size=50, timeout=10)
        ts.double = double
        yield ts
        ts.close()
        double.stop()
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ts.sqlite'}"
    else:  # both MySQL drivers: PyMySQL and mysqlclient
        url = mariadb_database("skvo_store_test",
                               "mysqldb" if request.param.endswith("mysqlclient") else "")
    engine = make_engine(url)
    ts = open_timeseries_store("sql", engine=engine)
    ts.create_schema()
    yield ts
    engine.dispose()


def make_points(n: int, seed: int = 0, step_us: int = 61_000, t0: int = T0) -> Points:
    rng = np.random.default_rng(seed)
    return Points(
        time_us=t0 + np.arange(n, dtype=np.int64) * step_us,
        magnitude=rng.normal(10, 0.3, n),
        magnitude_error=rng.uniform(0.001, 0.05, n),
        exposure=rng.choice([10.0, 30.0, 60.0], n),
        flux_calibration=rng.choice(["abs", "dif"], n).astype(object),
        flux_calibration_level=rng.integers(0, 4, n),
        timeframe_reference_position=rng.choice(["heliocenter", "topocenter"], n).astype(object),
    )


def ref_for(points: Points, series_id: int = 1, target: str = "bet_Lyr",
            band: str = "johnson.v") -> SeriesRef:
    return SeriesRef(series_id, str(uuid.uuid4()), target, band, "upjs", "a" * 32,
                     int(points.time_us[0]), int(points.time_us[-1]))


def read_all(store, ref: SeriesRef, **kw) -> Points:
    return Points.concat(list(store.read(ref, **kw)))


def assert_same(got: Points, want: Points) -> None:
    assert np.array_equal(got.time_us, want.time_us)
    for name in ("magnitude", "magnitude_error", "exposure"):
        assert np.array_equal(getattr(got, name), getattr(want, name)), name
    assert list(got.flux_calibration) == list(want.flux_calibration)
    assert list(got.flux_calibration_level) == list(want.flux_calibration_level)
    assert list(got.timeframe_reference_position) == list(want.timeframe_reference_position)


def test_round_trip_is_exact(store) -> None:
    points = make_points(500)
    ref = ref_for(points)
    store.put(ref, points)
    assert store.count(ref) == 500
    assert_same(read_all(store, ref), points)


def test_window_and_chunks_keep_order(store) -> None:
    points = make_points(1000, seed=1)
    ref = ref_for(points)
    store.put(ref, points)
    start, end = int(points.time_us[100]), int(points.time_us[399])
    assert_same(read_all(store, ref, start_us=start, end_us=end), points[100:400])
    chunks = list(store.read(ref, chunk_size=128))
    assert [len(c) for c in chunks[:-1]] == [128] * (len(chunks) - 1)
    assert_same(Points.concat(chunks), points)


def test_delete_and_reput(store) -> None:
    points = make_points(200, seed=2)
    ref = ref_for(points)
    store.put(ref, points)
    other = ref_for(points, series_id=2)
    store.put(other, make_points(200, seed=3))
    changed = make_points(200, seed=4)
    store.put(ref, changed)  # replaces, no duplicate timestamps
    assert store.count(ref) == 200
    assert_same(read_all(store, ref), changed)
    store.delete(ref)
    store.delete(ref)  # idempotent
    assert store.count(ref) == 0 and list(store.read(ref)) == []
    assert store.count(other) == 200  # the other series is untouched


def test_bad_values_leave_nothing(store) -> None:
    points = make_points(300, seed=5)
    points.magnitude[-1] = np.nan
    ref = ref_for(points)
    with pytest.raises(StoreError, match="finite"):
        store.put(ref, points)
    assert store.count(ref) == 0


def test_names_with_spaces_plus_and_unicode(store) -> None:
    points = make_points(50, seed=6)
    ref = ref_for(points, target="BD+30 3639 ∂", band="sdss.g'")
    store.put(ref, points)
    assert_same(read_all(store, ref), points)


def test_seed_escaping() -> None:
    assert escape("beta Lyr") == "beta-20Lyr"
    assert escape("johnson.u") == "johnson-2eu"
    assert escape("BD+30") == "BD-2b30"
    assert escape("∂") == "-e2-88-82"


def test_opentsdb_server_failure_mid_put_leaves_nothing() -> None:
    double = FakeOpenTsdb().start()
    try:
        store = OpenTsdbTimeSeriesStore(double.url, batch_size=20)
        points = make_points(100, seed=7)
        double.refuse_values.add(float(points.exposure[90]) + 1e-3)  # nothing refused yet
        points.exposure[90] = float(points.exposure[90]) + 1e-3
        ref = ref_for(points)
        with pytest.raises(StoreError, match="refused"):
            store.put(ref, points)
        assert store.count(ref) == 0
        assert "/api/uid/assign" in double.requests  # new metrics were assigned
    finally:
        double.stop()


def test_opentsdb_keeps_milliseconds_and_refuses_what_it_cannot_store() -> None:
    double = FakeOpenTsdb(auto_create_metrics=True).start()
    try:
        store = OpenTsdbTimeSeriesStore(double.url)
        same_ms = make_points(3, step_us=200)
        with pytest.raises(StoreError, match="millisecond"):
            store.put(ref_for(same_ms), same_ms)
        old = make_points(3, t0=-1_000_000_000)
        with pytest.raises(StoreError, match="1970"):
            store.put(ref_for(old), old)
        sub_ms = make_points(3, step_us=1_500)
        ref = ref_for(sub_ms)
        store.put(ref, sub_ms)
        assert list(read_all(store, ref).time_us) == [t // 1000 * 1000 for t in sub_ms.time_us]
    finally:
        double.stop()


def test_opentsdb_23_float32_loses_precision_as_documented() -> None:
    double = FakeOpenTsdb(float32=True, auto_create_metrics=True).start()
    try:
        store = OpenTsdbTimeSeriesStore(double.url)
        points = make_points(20, seed=8)
        points.magnitude[0] = 15.2
        ref = ref_for(points)
        store.put(ref, points)
        got = read_all(store, ref)
        assert got.magnitude[0] == float(np.float32(15.2)) != 15.2
        assert np.allclose(got.magnitude, points.magnitude, rtol=1e-6)
    finally:
        double.stop()


def test_double_refuses_nan_chunked_and_unknown_metrics() -> None:
    import requests

    double = FakeOpenTsdb().start()
    try:
        point = {"metric": "m.x", "timestamp": 1518897600, "value": 1.0, "tags": {"a": "b"}}
        r = requests.post(f"{double.url}/api/put?details", json=point, timeout=5)
        assert r.status_code == 400 and "Unknown metric" in r.json()["errors"][0]["error"]
        requests.post(f"{double.url}/api/uid/assign", json={"metric": ["m.x"]}, timeout=5)
        assert requests.post(f"{double.url}/api/put", json=point, timeout=5).status_code == 204
        bad = requests.post(f"{double.url}/api/put", data=b'{"metric":"m.x","value":NaN}',
                            timeout=5)
        assert bad.status_code == 400
        chunked = requests.post(f"{double.url}/api/put", data=iter([b"[]"]), timeout=5)
        assert chunked.status_code == 400
        r = requests.post(f"{double.url}/api/query", json={
            "start": 0, "queries": [{"aggregator": "none", "metric": "nope"}]}, timeout=5)
        assert r.status_code == 400 and "No such name" in r.text
    finally:
        double.stop()


@pytest.mark.skipif(not os.environ.get("OPENTSDB_URL"),
                    reason="set OPENTSDB_URL to check against a real OpenTSDB")
def test_real_opentsdb_round_trip() -> None:
    store = OpenTsdbTimeSeriesStore(os.environ["OPENTSDB_URL"])
    points = make_points(100, seed=9)
    ref = ref_for(points)
    try:
        store.put(ref, points)
        assert_same(read_all(store, ref), points)
    finally:
        store.delete(ref)


def test_sql_store_is_the_sql_backend(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.sqlite'}")
    assert isinstance(open_timeseries_store("sql", engine=engine), SqlTimeSeriesStore)
    with pytest.raises(ValueError, match="sql or opentsdb"):
        open_timeseries_store("influx", engine=engine)


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb),
                        pytest.param("mariadb-mysqlclient", marks=pytest.mark.mariadb)])
def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlTimeSeriesStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ts.sqlite'}"
    else:
        url = mariadb_database("skvo_store_test",
                               "mysqldb" if request.param.endswith("mysqlclient") else "")
    engine = make_engine(url)
    ts = SqlTimeSeriesStore(engine)
    ts.create_schema()
    yield ts
    engine.dispose()


def test_sql_store_chunks_windows_and_old_times(sql_store: SqlTimeSeriesStore) -> None:
    """Series longer than a stored chunk, windows across chunk edges, pre-1970 times."""
    from voservice.stores.timeseries.sql import CHUNK_POINTS

    n = 2 * CHUNK_POINTS + 1234
    points = make_points(n, seed=10, t0=-3_000_000_000_000_000)  # 1874
    shuffled = points[np.random.default_rng(1).permutation(n)]
    ref = ref_for(points)
    sql_store.put(ref, shuffled)
    assert sql_store.count(ref) == n
    assert_same(read_all(sql_store, ref), points)
    for lo, hi in ((CHUNK_POINTS - 5, CHUNK_POINTS + 5), (0, n - 1), (n - 3, n - 1),
                   (CHUNK_POINTS, 2 * CHUNK_POINTS)):
        window = read_all(sql_store, ref, start_us=int(points.time_us[lo]),
                          end_us=int(points.time_us[hi]))
        assert_same(window, points[lo:hi + 1])
    between = int(points.time_us[7]) + 1  # no point at that time
    assert_same(read_all(sql_store, ref, start_us=between, end_us=between + 10), Points.empty())
    chunks = list(sql_store.read(ref, chunk_size=7_000))
    assert [len(c) for c in chunks] == [7_000] * (n // 7_000) + [n % 7_000]


def test_sql_store_refuses_points_of_the_old_layout(tmp_path: Path) -> None:
    import sqlalchemy as sa

    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE ts_point (series_id INTEGER, time_us INTEGER)")
        conn.execute(sa.text("INSERT INTO ts_point VALUES (1, 2)"))
    with pytest.raises(StoreError, match="older SKVO"):
        SqlTimeSeriesStore(engine).create_schema()
    import subprocess
    import sys

    config = tmp_path / "skvo.ini"
    config.write_text(f"[metadata]\nurl = sqlite:///{tmp_path / 'old.sqlite'}\n")
    done = subprocess.run([sys.executable, "-m", "voservice.cli", "initdb", "--config",
                           str(config)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "older SKVO" in done.stderr
    assert "Traceback" not in done.stderr
