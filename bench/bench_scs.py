#!/usr/bin/env python3
"""Benchmark of the Simple Cone Search (a script, not a test; prints figures).

N synthetic targets (uniform on the sky), each with one open observation and
one photometry series, go into a SQLite file and the MariaDB database
``skvo_bench_scs``.  For SR = 0.1 deg at random positions it measures the
median latency

- at the query level: :func:`voservice.protocols.scs.cone_select` executed
  and fetched (the adql.geometry bbox + haversine predicate, indexed);
- at the HTTP level: ``GET /scs`` through the Flask test client, body read;
- at the HTTP level over loopback: ``GET /scs`` of ``skvo serve`` (two
  workers) with requests, as a client sees it;
- of a full-scan baseline in the same run: the same SELECT with the
  position columns wrapped (``ra + 0``) so no index can serve it.

The anchor is GAVO DaCHS 2.7 (PostgreSQL, q3c) measured in the same run:
its Simple Cone Search (``scsCore``) over the same targets, with the same
requests at the same centres over loopback (see dachs_anchor.py, which
installs and loads it if need be).  The like-for-like ratio is our loopback
HTTP figure to DaCHS's.  Without it (``--no-dachs``, or DaCHS cannot be
had) the ratios are to a 6 ms median from an earlier machine, labelled as
not measured in this run.

Usage:  python bench/bench_scs.py [--rows N] [--queries Q] [--skip-mariadb] [--no-dachs]
        (or SKVO_BENCH_ROWS=N; default 1,000,000).  SKVO_BENCH_MARIADB sets
        the server URL (default mysql+pymysql://root@127.0.0.1:3306).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import requests
import sqlalchemy as sa
from astropy.io.votable import parse_single_table
from dachs_anchor import SCS_PATH, anchor, targets

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voservice import tables  # noqa: E402
from voservice.access import ANONYMOUS  # noqa: E402
from voservice.config import load_config  # noqa: E402
from voservice.stores.metadata import dialect_name, initdb, make_engine  # noqa: E402

#: DaCHS on an earlier machine: the fallback when it is not measured in this run
DACHS_MEDIAN_MS = 6.0
SR = 0.1
BATCH = 50_000
MARIADB = os.environ.get("SKVO_BENCH_MARIADB", "mysql+pymysql://root@127.0.0.1:3306")
MARIADB_DB = "skvo_bench_scs"


def _t(name: str) -> sa.Table:
    return tables.sa_table(f"skvo.{name}")


def populate(engine: sa.Engine, n: int, seed: int = 1) -> None:
    """Fill an empty SKVO schema with n targets, observations and series."""
    ra, dec = targets(n, seed)  # the draws DaCHS gets too
    with engine.begin() as conn:
        conn.execute(_t("organisation").insert(), [dict(
            organisation_id=1, organisation="Bench", organisation_did="ivo://bench/org")])
        conn.execute(_t("dataid").insert(), [dict(
            dataid_id=1, organisation_id=1, title="bench", publisher="bench",
            publisher_did="ivo://bench")])
        conn.execute(_t("facility").insert(), [dict(
            facility_id=1, facility="Bench", facility_uid="bench")])
        conn.execute(_t("instrument").insert(), [dict(
            instrument_id=1, instrument="Bench", instrument_uid="bench",
            instrument_hash="0" * 32, telescope="bench", field_of_view=0.2)])
        conn.execute(_t("bandpass").insert(), [dict(
            bandpass_id=1, bandpass="V", bandpass_uid="johnson.v", spectral_band_type="optical",
            photometric_system="johnson", wavelength_eff=5.51e-7, wavelength_min=5.07e-7,
            wavelength_max=5.95e-7, mag_ucd="phot.mag;em.opt.V")])
    for start in range(0, n, BATCH):
        ids = range(start + 1, min(n, start + BATCH) + 1)
        with engine.begin() as conn:
            conn.execute(_t("target").insert(), [dict(
                target_id=i, target=f"T{i}", catalogue="BENCH", catalogue_value=str(i),
                right_ascension=float(ra[i - 1]), declination=float(dec[i - 1]),
                equinox="J2000") for i in ids])
            conn.execute(_t("observation").insert(), [dict(
                observation_id=i, observation_uuid=str(uuid.UUID(int=i)),
                observation_hash=f"{i:032x}", source="bench", night="2020-01-01",
                target_folder=f"T{i}", bandpass_folder="johnson.v", target_id=i,
                instrument_id=1, facility_id=1, dataid_id=1, access="open",
                meta_md5="0" * 32, data_md5="0" * 32, ingested="2020-01-02T00:00:00")
                for i in ids])
            conn.execute(_t("photometry").insert(), [dict(
                photometry_id=i, observation_id=i, bandpass_id=1,
                start_date="2020-01-01T20:00:00", end_date="2020-01-02T03:00:00",
                mjd_start=58849.8333, mjd_end=58850.125, n_points=100, n_frames=0,
                media=f"m{i}") for i in ids])
        print(f"  {min(n, start + BATCH):>9,} targets", end="\r", flush=True)
    print()


def positions(q: int, seed: int = 7) -> list[tuple[float, float]]:
    """Random cone centres, uniform on the sky."""
    rng = np.random.default_rng(seed)
    ra = rng.uniform(0.0, 360.0, q)
    dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, q)))
    return list(zip(ra.tolist(), dec.tolist(), strict=True))


def median_ms(run: Callable[[float, float], Any], centres: list[tuple[float, float]],
              count: Callable[[Any], int] = int) -> tuple[float, int]:
    """Median latency in ms over the centres and the total rows found.

    ``count`` turns what ``run`` returned into a number of rows, untimed.
    """
    times, found = [], 0
    run(*centres[0])  # warm-up
    for ra, dec in centres:
        t0 = time.perf_counter()
        answer = run(ra, dec)
        times.append((time.perf_counter() - t0) * 1000.0)
        found += count(answer)
    return statistics.median(times), found


def votable_rows(body: bytes) -> int:
    """Rows of a VOTable, whatever its serialization (DaCHS answers in BINARY)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return len(parse_single_table(io.BytesIO(body)).array)


def scs_over_http(base: str) -> Callable[[float, float], bytes]:
    """GET <base>?RA=..&DEC=..&SR=.. on one keep-alive session; the body."""
    session = requests.Session()

    def run(ra: float, dec: float) -> bytes:
        response = session.get(base, params={"RA": ra, "DEC": dec, "SR": SR}, timeout=60)
        response.raise_for_status()
        return response.content
    return run


def measure_dachs(enabled: bool, n: int, queries: int) -> tuple[float, int] | None:
    """DaCHS's SCS median (ms) and rows found at our centres, or None if not measured."""
    start = time.perf_counter()
    with anchor(enabled, n) as base:
        if base is None:
            print(f"\nDaCHS 2.7: not measured in this run; the ratios below are to "
                  f"{DACHS_MEDIAN_MS} ms from an earlier machine")
            return None
        ready = time.perf_counter() - start
        centres = positions(queries)
        ms, found = median_ms(scs_over_http(base + SCS_PATH), centres, votable_rows)
    print(f"\nDaCHS 2.7 ({base}{SCS_PATH}; {ready:.0f} s to set up and start): "
          f"{n:,} targets, SR={SR} deg, {queries} cones ({found / queries:.2f} targets per cone)")
    print(f"  HTTP level   (loopback)  median {ms:8.2f} ms  (measured in this run)")
    return ms, found


def bench(label: str, url: str, n: int, queries: int,
          dachs: tuple[float, int] | None = None) -> None:
    """Load (unless already loaded) and measure one database."""
    from common import live_server

    from voservice.app import create_app
    from voservice.archive.targets import Cone, cone_select

    engine = make_engine(url)
    initdb(engine)
    with engine.connect() as conn:
        have = conn.execute(sa.select(sa.func.count()).select_from(_t("target"))).scalar()
    if have != n:
        print(f"{label}: loading {n:,} targets (found {have:,})")
        tables.METADATA.drop_all(engine)
        initdb(engine)
        t0 = time.perf_counter()
        populate(engine, n)
        print(f"{label}: loaded in {time.perf_counter() - t0:.0f} s")
    dialect = dialect_name(engine)

    def compiled(col: sa.ColumnElement) -> str:
        return str(col.compile(dialect=engine.dialect))

    def unindexed(col: sa.ColumnElement) -> str:
        return f"({compiled(col)} + 0)"

    def query(compile_column: Callable[[sa.ColumnElement], str]) -> Callable[[float, float], int]:
        def run(ra: float, dec: float) -> int:
            select = cone_select(ANONYMOUS, Cone(ra, dec, SR, 2, 10_000), dialect,
                                 compile_column)
            with engine.connect() as conn:
                return len(conn.execute(select).fetchall())
        return run

    centres = positions(queries)
    q_ms, q_found = median_ms(query(compiled), centres)
    base_centres = centres[: max(3, queries // 40)]
    b_ms, b_found = median_ms(query(unindexed), base_centres)
    settings = load_config(None).with_overrides({
        "metadata": {"url": url},
        "media": {"path": tempfile.mkdtemp(prefix="skvo-bench-media-")},
    })
    client = create_app(settings).test_client()

    def http(ra: float, dec: float) -> int:
        response = client.get(f"/scs?RA={ra}&DEC={dec}&SR={SR}")
        return response.data.count(b"<TR>")

    h_ms, h_found = median_ms(http, centres)
    assert h_found == q_found, (h_found, q_found)
    with tempfile.TemporaryDirectory(prefix="skvo-bench-scs-") as tmp, \
            live_server(Path(tmp), url, workers=2) as server:
        l_ms, l_found = median_ms(scs_over_http(f"{server.url}/scs"), centres,
                                  lambda body: body.count(b"<TR>"))
    assert l_found == q_found, (l_found, q_found)
    print(f"\n{label}: {n:,} targets, SR={SR} deg, {queries} cones "
          f"({q_found / queries:.2f} targets per cone)")
    print(f"  query level  (indexed)   median {q_ms:8.2f} ms")
    print(f"  HTTP level   (/scs)      median {h_ms:8.2f} ms  (Flask test client, in process)")
    print(f"  HTTP level   (loopback)  median {l_ms:8.2f} ms  (skvo serve, 2 workers)")
    print(f"  full scan    (baseline)  median {b_ms:8.2f} ms over {len(base_centres)} cones "
          f"-> index speed-up x{b_ms / q_ms:.0f}")
    if dachs is None:
        ref, what = DACHS_MEDIAN_MS, "earlier machine, NOT measured in this run"
    else:
        ref, what = dachs[0], "measured in this run"
        same = "the same" if dachs[1] == q_found else f"NOT the same ({dachs[1]:,})"
        print(f"  DaCHS found {same} number of targets ({q_found:,} in all)")
    print(f"  DaCHS 2.7 SCS (loopback) median {ref:8.2f} ms  ({what}) "
          f"-> ours/DaCHS: loopback HTTP {l_ms / ref:.2f}, in-process HTTP {h_ms / ref:.2f}, "
          f"query {q_ms / ref:.2f}")
    engine.dispose()


def main() -> None:
    """Parse the arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int,
                        default=int(os.environ.get("SKVO_BENCH_ROWS", 1_000_000)))
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--sqlite", default=str(Path(tempfile.gettempdir()) / "skvo_bench.sqlite"),
                        help="SQLite file (kept between runs: reloaded when N changes)")
    parser.add_argument("--skip-mariadb", action="store_true")
    parser.add_argument("--no-dachs", action="store_true",
                        help="do not measure DaCHS: ratios to an earlier machine's figure")
    parser.add_argument("--only", choices=("sqlite", "mariadb"), help=argparse.SUPPRESS)
    parser.add_argument("--dachs", nargs=2, type=float, metavar=("MS", "FOUND"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only is None:
        dachs = measure_dachs(not args.no_dachs, args.rows, args.queries)
        passed = [] if dachs is None else ["--dachs", repr(dachs[0]), str(dachs[1])]
        sys.stdout.flush()  # before the children write theirs
        # one process per database: an application is created once per process
        for which in ("sqlite",) + (() if args.skip_mariadb else ("mariadb",)):
            subprocess.run([sys.executable, __file__, "--only", which, "--rows", str(args.rows),
                            "--queries", str(args.queries), "--sqlite", args.sqlite, *passed],
                           check=True)
        return
    dachs = None if args.dachs is None else (args.dachs[0], int(args.dachs[1]))
    if args.only == "sqlite":
        bench("SQLite", f"sqlite:///{args.sqlite}", args.rows, args.queries, dachs)
    else:
        admin = sa.create_engine(f"{MARIADB}/")
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE IF NOT EXISTS `{MARIADB_DB}` "
                                 "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        admin.dispose()
        bench("MariaDB", f"{MARIADB}/{MARIADB_DB}?charset=utf8mb4", args.rows, args.queries,
              dachs)


if __name__ == "__main__":
    main()
