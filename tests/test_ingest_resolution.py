"""Point times finer than the time-series store keeps are refused before anything is loaded.

The upload format allows microseconds; OpenTSDB keeps milliseconds.  With
``[timeseries] backend = opentsdb`` (here on the OpenTSDB double) ``skvo
ingest`` and ``skvo ingest --dry-run`` report every such point as ``file:line:
column: what`` and load nothing of its series; the SQL store keeps the
microseconds of the same tree.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Deployment, free_port, write_ini
from servers.opentsdb import FakeOpenTsdb
from test_ingest import loaded_refs

from voservice.ingest import open_stores
from voservice.ingest.tree import SeriesKey, walk
from voservice.stores.timeseries.base import Points

N_SERIES = 3


def _set_stamp(data: Path, line: int, suffix: str, like: int | None = None) -> str:
    """Append ``suffix`` to the timestamp of data line ``line`` (1 = header), or to line
    ``like``'s timestamp; the timestamp written."""
    lines = data.read_text().splitlines()
    stamp, rest = lines[line - 1].split(",", 1)
    if like is not None:
        stamp = lines[like - 1].split(",", 1)[0]
    lines[line - 1] = f"{stamp}{suffix},{rest}"
    data.write_text("\n".join(lines) + "\n")
    return stamp + suffix


@pytest.fixture(scope="module")
def tree(demo_tree: Path, tmp_path_factory: pytest.TempPathFactory
         ) -> tuple[Path, SeriesKey, str, int]:
    """Three frameless sample series; the first has microsecond times.

    Returns the tree, the bad series, its data file (relative) and the
    microsecond time of its line 2.
    """
    base = tmp_path_factory.mktemp("resolution") / "tree"
    chosen = [s for s in walk(demo_tree).series if not s.frames][:N_SERIES]
    for files in chosen:
        band = files.data.parent
        shutil.copytree(band, base / band.relative_to(demo_tree))
    bad = walk(base).series[0]
    first = _set_stamp(bad.data, 2, "456")  # .946 -> .946456
    _set_stamp(bad.data, 4, "123", like=3)  # the millisecond of line 3, 123 us later
    us = (dt.datetime.fromisoformat(first) - dt.datetime(1970, 1, 1)) \
        // dt.timedelta(microseconds=1)
    return base, bad.key, bad.data.relative_to(base).as_posix(), us


def _deployment(root: Path, **timeseries: str) -> Deployment:
    root.mkdir(parents=True)
    port = free_port()
    config = write_ini(root, f"sqlite:///{root / 'skvo.sqlite'}", port, timeseries=timeseries)
    dep = Deployment(root=root, config=config, port=port)
    dep.skvo("initdb")
    return dep


@pytest.fixture
def tsdb() -> Iterator[FakeOpenTsdb]:
    double = FakeOpenTsdb(allow_delete=True).start()
    yield double
    double.stop()


def _expected(tree: tuple[Path, SeriesKey, str, int]) -> list[str]:
    base, _key, rel, _us = tree
    lines = (base / rel).read_text().splitlines()
    stamp = [line.split(",", 1)[0].replace(" ", "T") for line in lines]
    return [
        f"{rel}:2: ts.timestamp: {stamp[1]} has sub-millisecond digits; the OpenTSDB store "
        "keeps milliseconds",
        f"{rel}:4: ts.timestamp: {stamp[3]} has sub-millisecond digits; the OpenTSDB store "
        "keeps milliseconds",
        f"{rel}:4: ts.timestamp: {stamp[3]} falls into the same millisecond as line 3 "
        f"({stamp[2]}000); the OpenTSDB store keeps one point per millisecond",
    ]


def test_opentsdb_refuses_microseconds_before_loading(
        tree: tuple[Path, SeriesKey, str, int], tsdb: FakeOpenTsdb, tmp_path: Path) -> None:
    base, _key, rel, us = tree
    dep = _deployment(tmp_path / "tsdb", backend="opentsdb", url=tsdb.url,
                      assign_uids="true")
    dry = dep.skvo("ingest", "--dry-run", str(base), check=False)
    assert dry.returncode == 1
    problems = [line for line in dry.stderr.splitlines() if line.startswith(rel)]
    assert problems == sorted(_expected(tree)), dry.stderr
    assert f"would load {N_SERIES - 1} series" in dry.stderr
    assert not any(path.startswith("/api/put") for _method, path in tsdb.requests)

    run = dep.skvo("ingest", str(base), check=False)
    assert run.returncode == 1
    assert [line for line in run.stderr.splitlines() if line.startswith(rel)] == sorted(
        _expected(tree))
    assert f"loaded {N_SERIES - 1} series" in run.stderr and "failed 1;" in run.stderr
    stores = open_stores(dep.settings(), create=False)
    try:
        refs = loaded_refs(stores)
        assert len(refs) == N_SERIES - 1
        assert all(ref.start_us // 1000 != us // 1000 for ref, _n in refs)  # not the bad one
        stored_obs = {dict(tags)["obs"] for _metric, tags in tsdb.rows}
        assert stored_obs == {ref.observation_uuid.replace("-", "") for ref, _n in refs}
        for ref, n in refs:
            points = Points.concat(list(stores.timeseries.read(ref)))
            assert len(points) == n and not (points.time_us % 1000).any()
    finally:
        stores.close()


def test_sql_store_keeps_the_microseconds(tree: tuple[Path, SeriesKey, str, int],
                                          tmp_path: Path) -> None:
    base, _key, _rel, us = tree
    dep = _deployment(tmp_path / "sql", backend="sql")
    dry = dep.skvo("ingest", "--dry-run", str(base), check=False)
    assert dry.returncode == 0 and "; 0 problems;" in dry.stderr, dry.stderr
    run = dep.skvo("ingest", str(base), check=False)
    assert run.returncode == 0, run.stderr
    assert f"loaded {N_SERIES} series" in run.stderr
    stores = open_stores(dep.settings(), create=False)
    try:
        times = [t for ref, _n in loaded_refs(stores)
                 for t in Points.concat(list(stores.timeseries.read(ref))).time_us.tolist()]
    finally:
        stores.close()
    assert us in times and us % 1000 == 456
    assert sum(1 for t in times if t % 1000) == 2  # line 2 and line 4 of the bad series
