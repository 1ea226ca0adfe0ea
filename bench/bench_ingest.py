"""Benchmark of the uploader: sample tree scaled to N points -> SQL stores and OpenTSDB.

Usage::

    python bench/bench_ingest.py                       # 1,000,000 points, sqlite + mariadb
    python bench/bench_ingest.py --points 50000        # smoke run
    python bench/bench_ingest.py --backends sqlite     # embedded stores only
    python bench/bench_ingest.py --backends sqlite,opentsdb --points 100000

``opentsdb`` loads the points through the OpenTSDB adapter (metadata in
SQLite) into the OpenTSDB 2.4 test double of ``tests/servers`` with stock
settings: put bodies of at most 8,192 bytes, every put with ``sync``, so its
points/s stand beside the SQL store's of the same run.  The double keeps
points in Python dicts; a real TSD adds HBase's write path, so read the
figure as the adapter's and HTTP's cost, not OpenTSDB's throughput.

For each database it reports the end-to-end throughput (walk, read, validate,
metadata, points, frames), the time split between reading/validating and
storing, and the throughput of the time-series store's ``put`` alone, which
is compared with the target of 200,000 points/s into the SQL store.  A dry
run (read + validate only) is timed too.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from voservice.config import load_config  # noqa: E402
from voservice.demo import write_demo_tree  # noqa: E402
from voservice.ingest import ingest, open_stores  # noqa: E402

TARGET = 200_000  # points/s into the SQL store
MARIADB = "mysql+pymysql://root@127.0.0.1:3306"


class TimedPuts:
    """Wraps a time-series store and adds up the time spent in ``put``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.points = 0
        self.put = self._wrap(inner.put)

    def _wrap(self, put: Any) -> Any:
        import functools

        @functools.wraps(put)
        def timed(ref: Any, points: Any, *args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return put(ref, points, *args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0
                self.points += len(points.time_us)

        return timed

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _database(kind: str, root: Path, mariadb: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{root / 'skvo.sqlite'}"
    import sqlalchemy as sa

    engine = sa.create_engine(f"{mariadb}/mysql")
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP DATABASE IF EXISTS skvo_bench_ingest")
        conn.exec_driver_sql("CREATE DATABASE skvo_bench_ingest CHARACTER SET utf8mb4 "
                             "COLLATE utf8mb4_bin")
    engine.dispose()
    return f"{mariadb}/skvo_bench_ingest?charset=utf8mb4"


def run(kind: str, tree: Path, work: Path, mariadb: str) -> None:
    root = work / kind
    root.mkdir()
    url = _database("sqlite" if kind == "opentsdb" else kind, root, mariadb)
    ini = root / "skvo.ini"
    double = None
    timeseries = "backend = sql\n"
    if kind == "opentsdb":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from servers.opentsdb import FakeOpenTsdb

        double = FakeOpenTsdb(allow_delete=True).start()  # stock 2.4 + deletes allowed
        timeseries = f"backend = opentsdb\nurl = {double.url}\nassign_uids = true\n"
    ini.write_text(f"[metadata]\nurl = {url}\n[timeseries]\n{timeseries}"
                   "[media]\nbackend = files\npath = media\n")
    stores = open_stores(load_config(ini))
    timed = TimedPuts(stores.timeseries)
    stores.timeseries = timed
    try:
        report = ingest(stores, tree, progress=False)
    finally:
        stores.close()
        if double is not None:
            double.stop()
    assert report.ok, report.lines()[:20]
    put_rate = timed.points / timed.seconds if timed.seconds else float("inf")
    verdict = "meets" if put_rate >= TARGET else "BELOW"
    if kind == "opentsdb":
        verdict = "sync puts, 8 KiB bodies; not held to"
    print(f"{kind:8s} {len(report.loaded):6d} series {report.points:9,d} points "
          f"{report.frames:6d} frames in {report.seconds:7.2f} s = "
          f"{report.points / report.seconds:10,.0f} points/s end to end")
    print(f"{'':8s} read+validate {report.parse_seconds:6.2f} s, "
          f"store {report.store_seconds:6.2f} s"
          f" (of which time-series put {timed.seconds:6.2f} s = {put_rate:10,.0f} points/s, "
          f"{verdict} the {TARGET:,} points/s target; metadata+frames "
          f"{report.store_seconds - timed.seconds:6.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,mariadb",
                        help="comma-separated: sqlite, mariadb, opentsdb")
    parser.add_argument("--mariadb", default=MARIADB, help="server URL without database")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="skvo-bench-ingest-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        summary = write_demo_tree(work / "data", points=args.points)
        print(f"{summary} written in {time.perf_counter() - t0:.1f} s")
        dry = ingest(None, work / "data", dry_run=True, progress=False)
        print(f"dry run  read+validate {dry.points:,} points in {dry.seconds:.2f} s = "
              f"{dry.points / dry.seconds:,.0f} points/s")
        for kind in args.backends.split(","):
            run(kind.strip(), work / "data", work, args.mariadb)


if __name__ == "__main__":
    main()
