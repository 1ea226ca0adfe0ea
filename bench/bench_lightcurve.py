"""Light-curve benchmark: one series of N points as BINARY2, end to end at the server.

Writes a series of 100,000 points (``--points``) and one of 1,000,000
(``--big``) straight into the SQL time-series store of a fresh SQLite file and
a fresh MariaDB database, starts ``skvo serve`` and times
``GET /lightcurve/<uuid>/<band>`` over HTTP (target: under 150 ms for
100,000 points), then streams the big one and reports the server's peak RSS
growth (flat memory: it must not grow with the number of points).

    python bench/bench_lightcurve.py [--points N] [--big M] [--backends sqlite,mariadb,...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import requests
import sqlalchemy as sa
from common import BACKENDS, database_url, live_server

from voservice import tables  # noqa: E402
from voservice.catalog import refresh_public_flags  # noqa: E402
from voservice.stores.metadata import initdb, make_engine  # noqa: E402
from voservice.stores.timeseries.base import Points, SeriesRef  # noqa: E402
from voservice.stores.timeseries.sql import SqlTimeSeriesStore  # noqa: E402

TARGET_MS = 150.0


def add_series(engine: sa.Engine, n: int, index: int) -> str:
    """A series of n points with its metadata; returns the observation uuid."""
    def t(name: str) -> sa.Table:
        return tables.sa_table(f"skvo.{name}")

    uid = str(uuid.uuid4())
    start_us = 1_600_000_000_000_000
    times = start_us + np.arange(n, dtype=np.int64) * 1_000_000
    with engine.begin() as conn:
        ids = {}
        for name, values in (
            ("organisation", {"organisation": "B", "organisation_did": f"http://b{index}"}),
            ("facility", {"facility": "F", "facility_uid": f"f{index}"}),
            ("instrument", {"instrument": "I", "instrument_uid": f"i{index}",
                            "instrument_hash": "0" * 32, "telescope": "T"}),
            ("bandpass", {"bandpass": "V", "bandpass_uid": f"johnson.v{index}",
                          "spectral_band_type": "optical", "photometric_system": "johnson"}),
            ("target", {"target": f"star{index}", "catalogue": "B",
                        "catalogue_value": str(index), "right_ascension": 10.0,
                        "declination": 20.0, "equinox": "J2000"}),
        ):
            ids[name] = conn.execute(t(name).insert().values(**values)).inserted_primary_key[0]
        ids["dataid"] = conn.execute(t("dataid").insert().values(
            organisation_id=ids["organisation"], title="b", publisher="b",
            publisher_did="ivo://b")).inserted_primary_key[0]
        obs = conn.execute(t("observation").insert().values(
            observation_uuid=uid, observation_hash=uid.replace("-", ""), source="bench",
            night="2020-09-13", target_folder=f"star{index}", bandpass_folder=f"johnson.v{index}",
            target_id=ids["target"], instrument_id=ids["instrument"],
            facility_id=ids["facility"], dataid_id=ids["dataid"], access="open",
            meta_md5="0" * 32, data_md5="0" * 32, ingested="2020-09-14T00:00:00"),
        ).inserted_primary_key[0]
        phot = conn.execute(t("photometry").insert().values(
            observation_id=obs, bandpass_id=ids["bandpass"],
            start_date="2020-09-13T12:26:40", end_date="2020-09-14T00:00:00",
            mjd_start=59105.5, mjd_end=59106.5, n_points=n, n_frames=0,
            media=f"{uid}/v", time_refposition="heliocenter")).inserted_primary_key[0]
        for name in ("target", "photometry"):  # as the uploader does
            refresh_public_flags(conn, f"skvo.{name}")
    rng = np.random.default_rng(index)
    points = Points(times, 10 + rng.normal(0, 0.1, n), np.full(n, 0.01), np.full(n, 30.0),
                    np.full(n, "abs", dtype=object), np.full(n, 2),
                    np.full(n, "heliocenter", dtype=object))
    store = SqlTimeSeriesStore(engine)
    store.put(SeriesRef(phot, uid, f"star{index}", f"johnson.v{index}", "bench", "0" * 32,
                        int(times[0]), int(times[-1])), points)
    return f"{uid}/johnson.v{index}"


def rss_kb(pid: int) -> int:
    """Resident set size of a process and its children (gunicorn workers), kB."""
    import subprocess

    out = subprocess.run(["ps", "-o", "rss=", "--ppid", str(pid), "-p", str(pid)],
                         capture_output=True, text=True).stdout
    return sum(int(x) for x in out.split())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    args = parser.parse_args()
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory(prefix=f"skvo-bench-lc-{backend}-") as tmp:
            root = Path(tmp)
            url = database_url(backend, root, "skvo_bench_lc")
            engine = make_engine(url)
            initdb(engine)
            SqlTimeSeriesStore(engine).create_schema()
            small = add_series(engine, args.points, 1)
            big = add_series(engine, args.big, 2)
            engine.dispose()
            with live_server(root, url, workers=1) as server:
                lc = f"{server.url}/lightcurve/{small}"
                requests.get(lc, timeout=60).raise_for_status()
                times = []
                size = 0
                for _ in range(7):
                    start = time.perf_counter()
                    size = len(requests.get(lc, timeout=60).content)
                    times.append((time.perf_counter() - start) * 1000)
                median = statistics.median(times)
                verdict = "meets" if median < TARGET_MS else "MISSES"
                print(f"{backend:8s} {args.points:,} points BINARY2 ({size / 1e6:.1f} MB): median "
                      f"{median:.0f} ms, best {min(times):.0f} ms; {verdict} the "
                      f"{TARGET_MS:.0f} ms target")
                before = rss_kb(server.proc.pid)
                start = time.perf_counter()
                streamed = 0
                peak = before
                with requests.get(f"{server.url}/lightcurve/{big}", stream=True,
                                  timeout=600) as response:
                    for i, chunk in enumerate(response.iter_content(1 << 20)):
                        streamed += len(chunk)
                        if i % 8 == 0:
                            peak = max(peak, rss_kb(server.proc.pid))
                seconds = time.perf_counter() - start
                print(f"{backend:8s} {args.big:,} points streamed: {streamed / 1e6:.0f} MB in "
                      f"{seconds:.2f} s ({args.big / seconds:,.0f} points/s); server RSS "
                      f"{before / 1024:.0f} MB before, peak {peak / 1024:.0f} MB "
                      f"(+{(peak - before) / 1024:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
