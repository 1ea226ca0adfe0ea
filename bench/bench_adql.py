#!/usr/bin/env python3
"""Benchmark of the adql package (a script, not a test; prints figures).

1. Translation speed over a mixed corpus (the valid lyonetia queries that fit
   the schema below + typical cone searches), compared with
   queryparser-python3 (``pip install queryparser-python3``) on the same corpus.
2. Cone-search latency on SQLite and MariaDB over N random targets (indexed
   dec and ra) for radii 1", 1', 0.1 deg, 1 deg: the translated bbox+haversine
   predicate against a full-scan formulation of the same cone, and EXPLAIN.

Usage:  python bench/bench_adql.py [--rows N] [--skip-mariadb] [--skip-cones]
        (or ADQL_BENCH_ROWS=N).  Data are generated into a temporary SQLite
        file and the MariaDB database ``adql_bench``; nothing is committed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import adql  # noqa: E402
from adql import Column, Schema, Table  # noqa: E402
from adql.geometry import hav_sql, num  # noqa: E402
from adql.sqlite_functions import register  # noqa: E402

LYONETIA = ROOT.parent / "shared/conformance/lyonetia"
RADII = [("1 arcsec", 1 / 3600), ("1 arcmin", 1 / 60), ("0.1 deg", 0.1), ("1 deg", 1.0)]
MYSQL = dict(host="127.0.0.1", port=3306, user="root", password="")
MYSQL_DB = "adql_bench"


def _cols(spec: str) -> tuple[Column, ...]:
    out = []
    for item in spec.split():
        name, _, dtype = item.partition(":")
        dtype = {"i": "long", "d": "double", "s": "char"}[dtype or "d"]
        out.append(Column(name.replace("~", " "), dtype, "*" if dtype == "char" else None))
    return tuple(out)


def bench_schema(quote: str = "`") -> Schema:
    """Tables used by the lyonetia queries (a generous superset of columns)."""
    spec = {
        "stars": "id:i name:s ra dec type:s mag ra_error radius long des:s _weird_name "
                 "distance favorite_name:s star_name:s pm_ra pm_dec",
        "atable": "id:i ra dec",
        "t1": "id:i oid:i something x name:s z s y",
        "t2": "oid:i name:s",
        "spatial": "dist width height ra1 ra2 x y",
        "spatial2": "ra1 dec dist",
        "misc": "mass mag speed",
        "crazy": "ct wot version:s flag:s",
        "quoted": "left-right plAin inch\"ing alllower",
        "foo": "x y a:s bar quux",
        "bar": "a:s foo",
        "y": "x z u:s k v",
        "table1": "id:i ra dec",
        "table2": "id:i ra dec",
        "table3": "id:i ra dec",
        "atlassource": "ra dec raperMag3 cx cy cz",
        "atlasmergelog": "ra dec gmfID:i",
        "multiframe": "mjdObs multiframeID:i",
        "source": "ident:i ra dec",
        "ivoa.obscore": "dataproduct_type:s s_ra s_dec em_min em_max em_res_power "
                        "obs_collection:s target_name:s instrument_name:s t_min t_max "
                        "dp_id:s obs_id:s obs_publisher_did:s abmaglim s_resolution "
                        "dataproduct_subtype:s access_estsize:i snr facility_name:s "
                        "filter:s t_exptime gal_lat",
        "ppmx.data": "alphaFloat deltaFloat",
        "tap_schema.tables": "table_name:s description:s schema_name:s",
        "tap_schema.columns": "column_name:s datatype:s arraysize:s xtype:s unit:s ucd:s "
                              "utype:s description:s table_name:s",
    }
    tables = []
    for name, cols in spec.items():
        short = name.rsplit(".", 1)[-1]
        tables.append(Table(name, _cols(cols), f"{quote}{short}{quote}"))
    return Schema(tables)


def lyonetia_corpus(schema: Schema) -> tuple[list[str], int]:
    queries = []
    total = 0
    for path in sorted(LYONETIA.glob("*/*.xml")):
        for q in ET.parse(path).getroot().iter("query"):
            a = q.find("adql")
            if a.get("valid") != "true":
                continue
            total += 1
            text = a.text.strip()
            try:
                adql.translate(text, schema, "mysql")
            except adql.ADQLError:
                continue
            if text not in queries:
                queries.append(text)
    return queries, total


def cone_corpus(n: int, seed: int = 1) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    forms = [
        "SELECT TOP 100 * FROM ivoa.obscore WHERE 1 = CONTAINS(POINT('ICRS', s_ra, s_dec), "
        "CIRCLE('ICRS', {ra:.5f}, {dec:.5f}, {r:.6f})) ORDER BY em_min",
        "SELECT id, ra, dec, mag, DISTANCE(POINT('ICRS', ra, dec), POINT('ICRS', {ra:.5f}, "
        "{dec:.5f})) AS d FROM stars WHERE DISTANCE(POINT('ICRS', ra, dec), "
        "POINT('ICRS', {ra:.5f}, {dec:.5f})) < {r:.6f} AND mag < 18 ORDER BY d",
        "SELECT COUNT(*) FROM stars WHERE CONTAINS(POINT(ra, dec), CIRCLE({ra:.5f}, "
        "{dec:.5f}, {r:.6f})) = 1",
    ]
    for i in range(n):
        out.append(forms[i % len(forms)].format(ra=rng.uniform(0, 360),
                                                dec=rng.uniform(-89, 89),
                                                r=10 ** rng.uniform(-3.5, 0)))
    return out


#: the translation speed issue 13 asks for (per second, median over the rounds); in
#: CPU time and in wall clock, which on a shared machine measures its load as well
TARGET_PER_S = 3000


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def bench_translation(rounds: int) -> None:
    """adql and queryparser-python3 interleaved: each round times adql over the whole
    corpus, then queryparser over the next slice of it (it is ~500 times slower; over
    all rounds it sees the whole corpus once), so both see the same machine load.
    Medians over the rounds, in wall-clock and CPU (process) time: the machine is
    shared, and CPU time is what other processes disturb least."""
    schema = bench_schema()
    lyo, total = lyonetia_corpus(schema)
    corpus = lyo + cone_corpus(len(lyo) // 2)
    print(f"== translation speed: {len(corpus)} queries "
          f"({len(lyo)} of {total} valid lyonetia queries fit the schema, "
          f"{len(corpus) - len(lyo)} cone queries), {rounds} interleaved rounds")
    for q in corpus:  # warm up (grammar build)
        adql.translate(q, schema, "mysql")
    try:
        from queryparser.adql import ADQLQueryTranslator
    except ImportError:
        ADQLQueryTranslator = None
        print("queryparser-python3 not installed: pip install queryparser-python3")
    wall, cpu, parse_wall = [], [], []
    theirs_wall = theirs_cpu = 0.0
    theirs_n = failures = 0
    for k in range(rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        for q in corpus:
            adql.translate(q, schema, "mysql")
        wall.append(_rate(len(corpus), time.perf_counter() - t0))
        cpu.append(_rate(len(corpus), time.process_time() - c0))
        t0 = time.perf_counter()
        for q in corpus:
            adql.parse(q)
        parse_wall.append(time.perf_counter() - t0)
        if ADQLQueryTranslator is not None:
            part = corpus[k * len(corpus) // rounds:(k + 1) * len(corpus) // rounds]
            t0, c0 = time.perf_counter(), time.process_time()
            for q in part:
                try:
                    ADQLQueryTranslator(q).to_mysql()
                except Exception:  # noqa: BLE001 - count whatever it raises
                    failures += 1
            theirs_wall += time.perf_counter() - t0
            theirs_cpu += time.process_time() - c0
            theirs_n += len(part)
    ours, ours_cpu = statistics.median(wall), statistics.median(cpu)
    parse_ms = statistics.median(parse_wall) / len(corpus) * 1e3
    print(f"adql (parse+check+translate, mysql): median {ours:,.0f} translations/s wall "
          f"clock (rounds {min(wall):,.0f}-{max(wall):,.0f}/s; {1e3 / ours:.3f} ms each; "
          f"parse alone {parse_ms:.3f} ms), median {ours_cpu:,.0f}/s in CPU time")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"target {TARGET_PER_S:,}/s (medians): "
          + ", ".join(f"{what} {'met' if rate > TARGET_PER_S else 'MISSED'}"
                      for what, rate in (("CPU time", ours_cpu), ("wall clock", ours)))
          + f" (load average {load} on {os.cpu_count()} CPUs)")
    if ADQLQueryTranslator is None:
        return
    theirs, theirs_c = _rate(theirs_n, theirs_wall), _rate(theirs_n, theirs_cpu)
    print(f"queryparser-python3 to_mysql():      {theirs:,.1f} translations/s wall clock, "
          f"{theirs_c:,.1f}/s CPU ({1e3 / theirs:.2f} ms each; {failures} of {theirs_n} "
          "raised)")
    print(f"ratio adql / queryparser: {ours / theirs:,.0f}x wall clock, "
          f"{ours_cpu / theirs_c:,.0f}x CPU time")


# -- cone latency --------------------------------------------------------------

def _targets(n: int, seed: int = 7):
    rng = np.random.default_rng(seed)
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    mag = rng.uniform(8, 22, n)
    return ra, dec, mag


def _centres(k: int, seed: int = 11):
    rng = np.random.default_rng(seed)
    return [(float(rng.uniform(0, 360)), float(np.degrees(np.arcsin(rng.uniform(-0.95, 0.95)))))
            for _ in range(k)]


CONE_Q = ("SELECT id, ra, dec, mag FROM skvo.target WHERE 1 = CONTAINS("
          "POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra!r}, {dec!r}, {r!r}))")


def _target_schema(quote: str) -> Schema:
    return Schema([Table("skvo.target", (
        Column("id", "long"), Column("ra", "double", unit="deg", indexed=True),
        Column("dec", "double", unit="deg", indexed=True), Column("mag", "double")),
        f"{quote}target{quote}")])


def _fullscan_sql(quote: str, ra0: float, dec0: float, r: float) -> str:
    import math

    ra, dec = f"{quote}ra{quote}", f"{quote}dec{quote}"
    hav = hav_sql(ra, dec, num(ra0), num(dec0))
    lim = num(math.sin(math.radians(r) / 2) ** 2)
    return (f"SELECT id, {ra}, {dec}, mag FROM {quote}target{quote} "
            f"WHERE {hav} <= {lim}")


def _time(run, sql: str, repeat: int) -> tuple[float, int]:
    times, nrows = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        nrows = len(run(sql))
        times.append(time.perf_counter() - t0)
    return min(times), nrows


def _report(name: str, run, explain, quote: str, dialect: str, n: int,
            centres: int, scan_centres: int) -> None:
    schema = _target_schema(quote)
    print(f"== cone latency on {name}, {n:,} targets (median over {centres} centres "
          f"bbox / {scan_centres} full scan)")
    print(f"{'radius':>10} {'rows':>8} {'bbox ms':>10} {'scan ms':>10} {'speed-up':>9}")
    plan_shown = False
    for label, r in RADII:
        bbox_t, scan_t, rows = [], [], []
        for i, (ra0, dec0) in enumerate(_centres(centres)):
            sql = adql.translate(CONE_Q.format(ra=ra0, dec=dec0, r=r), schema, dialect).sql
            t, k = _time(run, sql, 3)
            bbox_t.append(t)
            rows.append(k)
            if i < scan_centres:
                t2, k2 = _time(run, _fullscan_sql(quote, ra0, dec0, r), 1)
                assert k2 == k, (k2, k)
                scan_t.append(t2)
            if not plan_shown:
                print("   EXPLAIN of the translated cone query:")
                for line in explain(sql):
                    print("     ", line)
                plan_shown = True
        b, s = statistics.median(bbox_t) * 1e3, statistics.median(scan_t) * 1e3
        print(f"{label:>10} {statistics.median(rows):>8.0f} {b:>10.2f} {s:>10.1f} "
              f"{s / b:>8.0f}x")


def bench_sqlite(n: int, centres: int, scan_centres: int) -> None:
    path = Path(tempfile.gettempdir()) / f"adql_bench_{n}.sqlite"
    conn = sqlite3.connect(path)
    register(conn)
    have = 0
    with contextlib.suppress(sqlite3.OperationalError):
        have = conn.execute("SELECT COUNT(*) FROM target").fetchone()[0]
    indexes = {r[1] for r in conn.execute("PRAGMA index_list(target)")} if have else set()
    if indexes != {"target_ra_dec", "target_dec_ra"}:
        have = 0  # not indexed as skvo.target is: rebuild
    if have != n:
        conn.execute("DROP TABLE IF EXISTS target")
        conn.execute("CREATE TABLE target (id INTEGER PRIMARY KEY, ra REAL, dec REAL, "
                     "mag REAL)")
        ra, dec, mag = _targets(n)
        conn.executemany("INSERT INTO target VALUES (?,?,?,?)",
                         zip(range(1, n + 1), ra.tolist(), dec.tolist(), mag.tolist(),
                             strict=True))
        # as skvo.target: (dec, ra) and (ra, dec) for the bounding box
        conn.execute("CREATE INDEX target_ra_dec ON target(ra, dec)")
        conn.execute("CREATE INDEX target_dec_ra ON target(dec, ra)")
        conn.execute("ANALYZE")
        conn.commit()

    def run(sql):
        return conn.execute(sql).fetchall()

    def explain(sql):
        return [" | ".join(str(x) for x in r) for r in conn.execute("EXPLAIN QUERY PLAN " + sql)]

    _report(f"SQLite {sqlite3.sqlite_version}", run, explain, '"', "sqlite", n, centres,
            scan_centres)
    conn.close()


def bench_mariadb(n: int, centres: int, scan_centres: int) -> None:
    import pymysql

    try:
        conn = pymysql.connect(**MYSQL, autocommit=True)
    except pymysql.err.OperationalError as exc:
        print(f"== MariaDB not reachable ({exc}); skipped")
        return
    cur = conn.cursor()
    cur.execute(f"CREATE DATABASE IF NOT EXISTS {MYSQL_DB}")
    cur.execute(f"USE {MYSQL_DB}")
    have = 0
    try:
        cur.execute("SELECT COUNT(*) FROM target")
        have = cur.fetchone()[0]
    except pymysql.err.ProgrammingError:
        pass
    if have:
        cur.execute("SHOW INDEX FROM target")
        names = {(r[2], r[4]) for r in cur.fetchall() if r[2] != "PRIMARY"}
        if names != {("ra_dec", "ra"), ("ra_dec", "dec"), ("dec_ra", "dec"), ("dec_ra", "ra")}:
            have = 0  # not indexed as skvo.target is: rebuild
    if have != n:
        cur.execute("DROP TABLE IF EXISTS target")
        # as skvo.target: (dec, ra) and (ra, dec) for the bounding box
        cur.execute("CREATE TABLE target (id BIGINT PRIMARY KEY, ra DOUBLE, `dec` DOUBLE, "
                    "mag DOUBLE, INDEX ra_dec (ra, `dec`), INDEX dec_ra (`dec`, ra)) "
                    "ENGINE=InnoDB")
        ra, dec, mag = _targets(n)
        rows = list(zip(range(1, n + 1), ra.tolist(), dec.tolist(), mag.tolist(), strict=True))
        for i in range(0, n, 20000):
            cur.executemany("INSERT INTO target VALUES (%s,%s,%s,%s)", rows[i:i + 20000])
        cur.execute("ANALYZE TABLE target")
        cur.fetchall()
    cur.execute("SELECT VERSION()")
    version = cur.fetchone()[0]

    def run(sql):
        cur.execute(sql)
        return cur.fetchall()

    def explain(sql):
        cur.execute("EXPLAIN " + sql)
        names = [d[0] for d in cur.description]
        return [", ".join(f"{k}={v}" for k, v in zip(names, r, strict=True) if v is not None)
                for r in cur.fetchall()]

    _report(f"MariaDB {version}", run, explain, "`", "mysql", n, centres, scan_centres)
    conn.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=int(os.environ.get("ADQL_BENCH_ROWS",
                                                                  1_000_000)))
    p.add_argument("--rounds", type=int, default=5, help="passes over the corpus")
    p.add_argument("--centres", type=int, default=9)
    p.add_argument("--scan-centres", type=int, default=3)
    p.add_argument("--skip-mariadb", action="store_true")
    p.add_argument("--skip-sqlite", action="store_true")
    p.add_argument("--skip-cones", action="store_true")
    p.add_argument("--skip-translation", action="store_true")
    a = p.parse_args(argv)
    if not a.skip_translation:
        bench_translation(a.rounds)
    if not a.skip_cones:
        if not a.skip_sqlite:
            bench_sqlite(a.rows, a.centres, a.scan_centres)
        if not a.skip_mariadb:
            bench_mariadb(a.rows, a.centres, a.scan_centres)


if __name__ == "__main__":
    main()
