"""One contract for every time-series store: SQL (SQLite, MariaDB) and OpenTSDB.

MariaDB runs through both MySQL drivers SKVO supports (PyMySQL, mysqlclient).

OpenTSDB runs as the protocol double in ``tests/servers/opentsdb.py`` over a
real socket, with OpenTSDB 2.4's stock settings plus the one README asks for
(``tsd.http.query.allow_delete = true``) and ``[timeseries] assign_uids``;
set ``SKVO_TEST_OPENTSDB_URL`` (or ``OPENTSDB_URL``) to run the same contract
against a real OpenTSDB 2.4 set up as README says.
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
T1995 = 799_000_000_000_000  # 1995-04-27
T1920 = -1_570_000_000_000_000  # 1920-03-31
REAL_OPENTSDB = os.environ.get("SKVO_TEST_OPENTSDB_URL") or os.environ.get("OPENTSDB_URL")


def stock_opentsdb(**settings) -> FakeOpenTsdb:
    """The double with OpenTSDB 2.4's stock settings and the one SKVO needs (deletes)."""
    return FakeOpenTsdb(**{"allow_delete": True, **settings}).start()


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb),
                        pytest.param("mariadb-mysqlclient", marks=pytest.mark.mariadb),
                        "opentsdb",
                        pytest.param("opentsdb-real", marks=pytest.mark.skipif(
                            not REAL_OPENTSDB,
                            reason="set SKVO_TEST_OPENTSDB_URL for a real OpenTSDB"))])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator:
    if request.param.startswith("opentsdb"):
        double = stock_opentsdb() if request.param == "opentsdb" else None
        url = double.url if double else REAL_OPENTSDB
        ts = open_timeseries_store("opentsdb", url=url, batch_size=50, timeout=10,
                                   assign_uids=True)
        ts.double = double
        yield ts
        ts.close()
        if double:
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


def test_one_point_series(store) -> None:
    points = make_points(1, seed=11)
    ref = ref_for(points)
    store.put(ref, points)
    assert store.count(ref) == 1
    assert_same(read_all(store, ref), points)
    t = int(points.time_us[0])
    assert_same(read_all(store, ref, start_us=t, end_us=t), points)


@pytest.mark.parametrize("t0", [T1995, T1920, -2_300_000_000_000_000],
                         ids=["1995", "1920", "1897"])
def test_old_series_keep_their_times(store, t0: int) -> None:
    """Plates and photoelectric series before 2001 and before 1970 read back unchanged."""
    points = make_points(120, seed=12, t0=t0, step_us=3_600_000_000)  # hourly, 5 days
    ref = ref_for(points, target="delta_Cep")
    store.put(ref, points)
    assert_same(read_all(store, ref), points)
    lo, hi = int(points.time_us[10]), int(points.time_us[29])
    assert_same(read_all(store, ref, start_us=lo, end_us=hi), points[10:30])
    store.delete(ref)
    assert store.count(ref) == 0


def test_seed_escaping() -> None:
    assert escape("beta Lyr") == "beta-20Lyr"
    assert escape("johnson.u") == "johnson-2eu"
    assert escape("BD+30") == "BD-2b30"
    assert escape("∂") == "-e2-88-82"


def test_opentsdb_storage_failure_mid_put_leaves_nothing() -> None:
    double = stock_opentsdb()
    try:
        store = OpenTsdbTimeSeriesStore(double.url, assign_uids=True)
        points = make_points(100, seed=7)
        points.exposure[90] = float(points.exposure[90]) + 1e-3
        double.storage_failures.add(float(points.exposure[90]))  # HBase fails that write
        ref = ref_for(points)
        with pytest.raises(StoreError, match="refused 1 of .*RegionTooBusy"):
            store.put(ref, points)
        assert store.count(ref) == 0
        double.settle()
        assert store.count(ref) == 0
        assert ("POST", "/api/uid/assign") in double.requests  # names were assigned
    finally:
        double.stop()


def test_opentsdb_puts_fit_the_stock_body_limit_and_wait_for_storage() -> None:
    """50+ point series on stock settings: bodies <= 8,192 bytes, sync puts."""
    double = stock_opentsdb()
    sizes: list[int] = []
    try:
        store = OpenTsdbTimeSeriesStore(double.url, batch_size=200, assign_uids=True)
        send = store._send

        def spy(method, path, body=None, params=None):  # noqa: ANN001, ANN202
            if path.startswith("/api/put"):
                assert "sync" in path and "details" in path
                sizes.append(len(body))
            return send(method, path, body, params)

        store._send = spy
        points = make_points(300, seed=13)
        ref = ref_for(points, target="BD+30 3639 long name of a star")
        store.put(ref, points)
        assert_same(read_all(store, ref), points)  # stored before put returned
        assert max(sizes) <= 8192 and len(sizes) > 1
        too_big = OpenTsdbTimeSeriesStore(double.url, batch_size=1000, max_body=60_000,
                                          assign_uids=True)
        with pytest.raises(StoreError, match="Chunked request not supported.*max_body"):
            too_big.put(ref_for(points), points)
    finally:
        double.stop()


def test_opentsdb_replace_waits_for_the_asynchronous_delete() -> None:
    double = stock_opentsdb(delete_delay=0.4)
    try:
        store = OpenTsdbTimeSeriesStore(double.url, assign_uids=True)
        old = make_points(200, seed=14)
        ref = ref_for(old)
        store.put(ref, old)
        new = make_points(150, seed=15)
        ref_new = SeriesRef(**{**ref.__dict__, "end_us": int(new.time_us[-1])})
        store.put(ref_new, new)  # the old hour rows go 0.4 s after OpenTSDB answers
        double.settle()  # every delete has run: none may take the new points with it
        assert_same(read_all(store, ref_new), new)
        assert [m for m, p in double.requests if m == "DELETE"]  # the documented verb
        fresh = ref_for(make_points(10, seed=16))
        before = len(double.requests)
        store.put(fresh, make_points(10, seed=16))
        assert not [m for m, _ in double.requests[before:] if m == "DELETE"]  # no needless
    finally:
        double.stop()


def test_opentsdb_names_the_settings_it_needs() -> None:
    double = FakeOpenTsdb().start()  # stock: no auto-created metrics, no deletes
    try:
        points = make_points(60, seed=17)
        ref = ref_for(points)
        plain = OpenTsdbTimeSeriesStore(double.url)
        with pytest.raises(StoreError, match="auto_create_metrics.*assign_uids"):
            plain.put(ref, points)
        assert ("POST", "/api/uid/assign") not in double.requests  # nothing assigned silently
        store = OpenTsdbTimeSeriesStore(double.url, assign_uids=True)
        store.put(ref, points)  # a new series needs no delete
        assert_same(read_all(store, ref), points)
        with pytest.raises(StoreError, match="allow_delete"):
            store.delete(ref)
    finally:
        double.stop()


def test_opentsdb_assigns_tag_values_reported_as_unknown_metrics() -> None:
    double = stock_opentsdb(auto_create_tagvs=False)
    try:
        store = OpenTsdbTimeSeriesStore(double.url, assign_uids=True)
        points = make_points(60, seed=19)
        ref = ref_for(points)
        store.put(ref, points)
        assert_same(read_all(store, ref), points)
        assert ref.observation_uuid.replace("-", "") in double.uids["tagv"]
    finally:
        double.stop()


def test_opentsdb_tags_leave_headroom() -> None:
    double = stock_opentsdb(max_tags=7)  # a server whose operator keeps one tag spare
    try:
        store = OpenTsdbTimeSeriesStore(double.url, assign_uids=True)
        points = make_points(20, seed=18)
        ref = ref_for(points)
        store.put(ref, points)
        assert store.count(ref) == 20
        assert max(len(tags) for _, tags in double.rows) <= 6
    finally:
        double.stop()


def test_opentsdb_keeps_milliseconds() -> None:
    double = stock_opentsdb(auto_create_metrics=True)
    try:
        store = OpenTsdbTimeSeriesStore(double.url)
        same_ms = make_points(3, step_us=200)
        with pytest.raises(StoreError, match="millisecond"):
            store.put(ref_for(same_ms), same_ms)
        sub_ms = make_points(3, step_us=1_500)
        ref = ref_for(sub_ms)
        with pytest.raises(StoreError, match="sub-millisecond digits"):  # not truncated
            store.put(ref, sub_ms)
        assert store.count(ref) == 0 and not double.rows
        whole_ms = make_points(3, step_us=2_000)
        store.put(whole_ref := ref_for(whole_ms), whole_ms)
        assert_same(read_all(store, whole_ref), whole_ms)
        assert (store.time_resolution_us, SqlTimeSeriesStore.time_resolution_us) == (1000, 1)
    finally:
        double.stop()


def test_opentsdb_22_has_no_none_aggregator_and_23_keeps_float32() -> None:
    for version in ("2.2", "2.3"):
        double = stock_opentsdb(version=version, auto_create_metrics=True)
        try:
            store = OpenTsdbTimeSeriesStore(double.url)
            points = make_points(20, seed=8)
            points.magnitude[0] = 15.2
            ref = ref_for(points)
            if version == "2.2":
                with pytest.raises(StoreError, match="2.3 or later"):
                    store.put(ref, points)
                continue
            store.put(ref, points)
            got = read_all(store, ref)
            assert got.magnitude[0] == float(np.float32(15.2)) != 15.2
            assert np.allclose(got.magnitude, points.magnitude, rtol=1e-6)
        finally:
            double.stop()


def test_double_models_stock_opentsdb() -> None:
    import requests

    double = FakeOpenTsdb().start()
    try:
        url = double.url
        point = {"metric": "m.x", "timestamp": 1518897600, "value": 1.0, "tags": {"a": "b"}}
        r = requests.post(f"{url}/api/put?details", json=point, timeout=5)
        assert r.status_code == 400 and "Unknown metric" in r.json()["errors"][0]["error"]
        requests.post(f"{url}/api/uid/assign", json={"metric": ["m.x", "m.y"]}, timeout=5)
        unknown_tagv = FakeOpenTsdb(auto_create_tagvs=False)  # 2.4 says "Unknown metric" too
        unknown_tagv.uids["metric"].add("m.x")
        with pytest.raises(ValueError, match="Unknown metric"):
            unknown_tagv._check_point(point)
        # without sync: answered when queued, stored a second later, failures only logged
        double.storage_failures.add(2.5)
        bad = {**point, "value": 2.5, "timestamp": 1518897601}
        assert requests.post(f"{url}/api/put", json=[point, bad], timeout=5).status_code == 204
        query = {"start": 1518897500, "end": 1518897700, "msResolution": True,
                 "queries": [{"aggregator": "none", "metric": "m.x"}]}
        assert requests.post(f"{url}/api/query", json=query, timeout=5).json() == []
        double.settle()
        got = requests.post(f"{url}/api/query", json=query, timeout=5).json()
        assert got[0]["dps"] == {"1518897600000": 1.0} and "RegionTooBusy" in double.log[0]
        # query bounds: end > start; 10 digits or fewer are seconds
        one = {**query, "start": 1518897600, "end": 1518897600}
        r = requests.post(f"{url}/api/query", json=one, timeout=5)
        assert r.status_code == 400 and "greater than the start" in r.text
        as_ms = {**query, "start": 1518897599000, "end": 1518897601000}
        assert requests.post(f"{url}/api/query", json=as_ms, timeout=5).json() == got
        # put timestamps: milliseconds only above 2^32-1 (a 1970 ms time is read as seconds)
        early = {**point, "metric": "m.y", "timestamp": 4_000_000_000}
        requests.post(f"{url}/api/put?sync", json=early, timeout=5)
        r = requests.post(f"{url}/api/query", json={**query, "start": 3_999_999_999,
                          "end": 4_000_000_001, "queries": [{"aggregator": "none",
                                                              "metric": "m.y"}]}, timeout=5)
        assert r.json()[0]["dps"] == {"4000000000000": 1.0}  # seconds, year 2096
        # bodies over 8,192 bytes are chunked for Netty 3: refused on stock settings
        many = [{**point, "timestamp": 1518897600 + i} for i in range(200)]
        r = requests.post(f"{url}/api/put?details", json=many, timeout=5)
        assert r.status_code == 400 and r.json()["error"]["message"] == \
            "Chunked request not supported."
        r = requests.post(f"{url}/api/put", data=iter([b"[]"]), timeout=5)
        assert r.status_code == 400
        bad = requests.post(f"{url}/api/put", data=b'{"metric":"m.x","value":NaN}', timeout=5)
        assert bad.status_code == 400
        r = requests.post(f"{url}/api/query", json={
            "start": 0, "queries": [{"aggregator": "none", "metric": "nope"}]}, timeout=5)
        assert r.status_code == 400 and "No such name" in r.text
        r = requests.delete(f"{url}/api/query", params={"start": "1518897500",
                            "m": "none:m.x"}, timeout=5)
        assert r.status_code == 400 and "allow_delete" in r.text
        nine = {**point, "tags": {f"t{i}": "v" for i in range(9)}}
        r = requests.post(f"{url}/api/put?details", json=nine, timeout=5)
        assert "Too many tags" in r.json()["errors"][0]["error"]
    finally:
        double.stop()
    chunking = FakeOpenTsdb(enable_chunked=True).start()  # max_chunk stays 4,096
    try:
        r = requests.post(f"{chunking.url}/api/put?details", json=many, timeout=5)
        assert r.status_code == 400 and "4096" in r.text
    finally:
        chunking.stop()


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
