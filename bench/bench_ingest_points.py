"""What the skvo.point rows cost the uploader: the same tree loaded with and without them.

Usage::

    python bench/bench_ingest_points.py                      # 200,000 points, 3 rounds
    python bench/bench_ingest_points.py --points 50000 --rounds 2 --backends sqlite

Each round loads the scaled sample tree (``write_demo_tree(points=N)``, SQL
time-series store, files media store) into a fresh database twice: once as
``skvo ingest`` does (point rows written in the metadata transaction by
``voservice.ingest.points.insert_points``) and once with that call replaced
by a no-op (the anchor: the uploader before skvo.point).  The order of the
two alternates round by round.  It prints the store time of each load (the
time the uploader spends writing, without reading and validating, which the
rows do not change), the medians, their ratio, the time inside
``insert_points`` alone, and the database size with and without the rows.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402

import voservice.ingest.load as load  # noqa: E402
from voservice.config import load_config  # noqa: E402
from voservice.demo import write_demo_tree  # noqa: E402
from voservice.ingest import ingest, open_stores  # noqa: E402

MARIADB = "mysql+pymysql://root@127.0.0.1:3306"
DB_NAME = "pnt_bench_ingest_points"


def _database(kind: str, root: Path, mariadb: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{root / 'skvo.sqlite'}"
    driver = "mysqldb" if kind == "mariadb-mysqlclient" else "pymysql"
    server = f"mysql+{driver}://{mariadb.partition('://')[2]}"
    engine = sa.create_engine(f"{server}/mysql")
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {DB_NAME}")
        conn.exec_driver_sql(f"CREATE DATABASE {DB_NAME} CHARACTER SET utf8mb4 "
                             "COLLATE utf8mb4_bin")
    engine.dispose()
    return f"{server}/{DB_NAME}?charset=utf8mb4"


def _size(engine: sa.Engine) -> tuple[int, int]:
    """(bytes of the whole database, bytes of the point table with its indexes)."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            total = conn.exec_driver_sql(
                "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size"
            ).scalar()
            try:
                point = conn.exec_driver_sql(
                    "SELECT SUM(pgsize) FROM dbstat WHERE name = 'point' "
                    "OR name IN (SELECT name FROM sqlite_master WHERE tbl_name = 'point')"
                ).scalar()
            except sa.exc.OperationalError:  # no dbstat in this SQLite build
                point = None
            return int(total), int(point or 0)
        conn.exec_driver_sql("ANALYZE TABLE point")
        rows = conn.exec_driver_sql(
            "SELECT table_name, data_length + index_length FROM information_schema.tables "
            f"WHERE table_schema = '{DB_NAME}'").all()
        return sum(int(r[1]) for r in rows), sum(int(r[1]) for r in rows if r[0] == "point")


def load_once(kind: str, tree: Path, work: Path, mariadb: str, with_points: bool
              ) -> dict[str, Any]:
    """Load the tree into a fresh database; the times and sizes."""
    root = Path(tempfile.mkdtemp(dir=work, prefix=f"{kind}-"))
    url = _database(kind, root, mariadb)
    ini = root / "skvo.ini"
    ini.write_text(f"[metadata]\nurl = {url}\n[timeseries]\nbackend = sql\n"
                   "[media]\nbackend = files\npath = media\n")
    original = load.insert_points
    spent = [0.0]

    def timed(*args: Any, **kwargs: Any) -> int:
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - t0

    load.insert_points = timed if with_points else (lambda *a, **k: 0)
    stores = open_stores(load_config(ini))
    try:
        report = ingest(stores, tree, progress=False)
        assert report.ok, report.lines()[:20]
        size, point_size = _size(stores.engine)
        with stores.engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT COUNT(*) FROM point").scalar()
    finally:
        load.insert_points = original
        stores.close()
    assert rows == (report.points if with_points else 0)
    return {"store": report.store_seconds, "total": report.seconds, "points": report.points,
            "series": len(report.loaded), "insert_points": spent[0], "size": size,
            "point_size": point_size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,mariadb",
                        help="comma-separated: sqlite, mariadb (PyMySQL), mariadb-mysqlclient")
    parser.add_argument("--mariadb", default=MARIADB, help="server URL without database")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="skvo-bench-points-") as tmp:
        work = Path(tmp)
        summary = write_demo_tree(work / "data", points=args.points)
        print(f"tree: {summary}")
        for kind in args.backends.split(","):
            kind = kind.strip()
            runs: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
            for r in range(args.rounds):
                for with_points in ((True, False) if r % 2 == 0 else (False, True)):
                    res = load_once(kind, work / "data", work, args.mariadb, with_points)
                    runs[with_points].append(res)
                    print(f"{kind:20s} round {r + 1} {'with   ' if with_points else 'without'}"
                          f" point rows: store {res['store']:6.2f} s, end to end "
                          f"{res['total']:6.2f} s ({res['series']} series, "
                          f"{res['points']:,} points; insert_points "
                          f"{res['insert_points']:5.2f} s)", flush=True)
            w = statistics.median(x["store"] for x in runs[True])
            wo = statistics.median(x["store"] for x in runs[False])
            ins = statistics.median(x["insert_points"] for x in runs[True])
            n = runs[True][0]["points"]
            size_w, size_wo = runs[True][-1]["size"], runs[False][-1]["size"]
            point_size = runs[True][-1]["point_size"]
            print(f"{kind:20s} median store time with rows {w:.2f} s, without {wo:.2f} s: "
                  f"x{w / wo:.2f} ({(w - wo) / n * 1e6:+.1f} us per point); insert_points "
                  f"alone {ins:.2f} s = {n / ins:,.0f} rows/s")
            print(f"{kind:20s} database {size_w / 1e6:.1f} MB with rows, "
                  f"{size_wo / 1e6:.1f} MB without; point table + indexes "
                  f"{point_size / 1e6:.1f} MB = {point_size / n:.0f} bytes per point")


if __name__ == "__main__":
    main()
