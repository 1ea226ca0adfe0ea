"""Star-curve benchmark: one band of a star over 500 nights (250,000 points), BINARY2.

Writes one star with ``--nights`` nights of ``--points`` points each in one
band (an observation and a photometry row per night, inserted directly; the
points straight into the SQL time-series store; ``--second`` nights from a
second source; ``--frame-nights`` nights with a frame row per point, since
the frame URL of every point is part of the cost) into a fresh SQLite file
and a fresh MariaDB database, starts ``skvo serve`` and measures, interleaved
round by round:

(a) ``GET /lightcurve/star/<target_id>/<band>`` over HTTP (the star curve);
(b) the anchor a client has without it: the per-night
    ``GET /lightcurve/<uuid>/<band>`` of every night, one after the other on
    one keep-alive session;
(c) the lower bound: ``SqlTimeSeriesStore.read`` of all the series in this
    process (no HTTP, no VOTable).

Prints the medians, the ratio of (a) to each anchor and the verdict against
the target (under 300 ms for 250,000 points).  DaCHS's SSA getData is
measured only when DaCHS is installed here (``dachs`` on the PATH); else the
bench says it was not measured and why.

    python bench/bench_star_curve.py [--nights N] [--points M] [--rounds R]
        [--backends sqlite,mariadb,...] [--save-body DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

os.environ.setdefault("SKVO_TEST_DB_PREFIX", "bst_")  # our MariaDB databases: bst_*

import numpy as np  # noqa: E402
import requests  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from common import BACKENDS, database_url, live_server  # noqa: E402

from voservice import tables  # noqa: E402
from voservice.catalog import refresh_public_flags  # noqa: E402
from voservice.stores.metadata import initdb, make_engine  # noqa: E402
from voservice.stores.timeseries.base import MJD_UNIX_EPOCH, US_PER_DAY, Points, SeriesRef  # noqa: E402
from voservice.stores.timeseries.sql import SqlTimeSeriesStore  # noqa: E402

TARGET_MS = 300.0
TARGET_POINTS = 250_000
BAND = "johnson.v"
EPOCH = dt.datetime(1970, 1, 1)


def _t(name: str) -> sa.Table:
    return tables.sa_table(f"skvo.{name}")


def add_star(engine: sa.Engine, nights: int, points: int, second: int,
             frame_nights: int) -> tuple[int, list[str], list[SeriesRef], int]:
    """The star, its series and frames; returns (target_id, per-night paths, refs, frames)."""
    first_night = dt.date(2020, 1, 1)
    # the second source's nights are spread over the span (every k-th night)
    other = set(np.linspace(0, nights - 1, second, dtype=int).tolist()) if second else set()
    with_frames = set(np.linspace(1, nights - 2, frame_nights, dtype=int).tolist()) \
        if frame_nights else set()
    paths, refs, series = [], [], []
    n_frames = 0
    with engine.begin() as conn:
        ids: dict[str, int] = {}
        org = conn.execute(_t("organisation").insert().values(
            organisation="Bench", organisation_did="http://bench")).inserted_primary_key[0]
        for src in ("bench", "other"):
            ids[f"dataid.{src}"] = conn.execute(_t("dataid").insert().values(
                organisation_id=org, title=f"{src} survey", publisher=src,
                publisher_did=f"ivo://{src}")).inserted_primary_key[0]
            ids[f"facility.{src}"] = conn.execute(_t("facility").insert().values(
                facility=f"F-{src}", facility_uid=f"f-{src}")).inserted_primary_key[0]
            ids[f"instrument.{src}"] = conn.execute(_t("instrument").insert().values(
                instrument=f"CCD-{src}", instrument_uid=f"i-{src}",
                instrument_hash=src[0] * 32, telescope="T")).inserted_primary_key[0]
        band = conn.execute(_t("bandpass").insert().values(
            bandpass="V", bandpass_uid=BAND, spectral_band_type="optical",
            photometric_system="johnson")).inserted_primary_key[0]
        target = conn.execute(_t("target").insert().values(
            target="BenchStar", catalogue="B", catalogue_value="1", right_ascension=10.0,
            declination=20.0, equinox="J2000")).inserted_primary_key[0]
        for k in range(nights):
            src = "other" if k in other else "bench"
            night = first_night + dt.timedelta(days=k)
            start = dt.datetime.combine(night, dt.time(20, 0))
            start_us = int((start - EPOCH) / dt.timedelta(microseconds=1))
            times = start_us + np.arange(points, dtype=np.int64) * 30_000_000  # 30 s cadence
            end = start + dt.timedelta(microseconds=int(times[-1] - start_us))
            uid = str(uuid.uuid4())
            obs = conn.execute(_t("observation").insert().values(
                observation_uuid=uid, observation_hash=uid.replace("-", ""), source=src,
                night=night.isoformat(), target_folder="BenchStar", bandpass_folder=BAND,
                target_id=target, instrument_id=ids[f"instrument.{src}"],
                facility_id=ids[f"facility.{src}"], dataid_id=ids[f"dataid.{src}"],
                access="open", meta_md5="0" * 32, data_md5="0" * 32,
                ingested="2021-01-01T00:00:00")).inserted_primary_key[0]
            frames = points if k in with_frames else 0
            mjd = MJD_UNIX_EPOCH + times / US_PER_DAY
            phot = conn.execute(_t("photometry").insert().values(
                observation_id=obs, bandpass_id=band, start_date=start.isoformat(),
                end_date=end.isoformat(), mjd_start=float(mjd[0]), mjd_end=float(mjd[-1]),
                n_points=points, n_frames=frames, media=f"{uid}/v",
                flux_calibration="abs", time_refposition="heliocenter")).inserted_primary_key[0]
            if frames:
                conn.execute(_t("frame").insert(), [
                    {"photometry_id": phot, "frame_index": i,
                     "obs_time": dt.datetime.fromtimestamp(int(times[i]) / 1e6, dt.UTC)
                     .strftime("%Y-%m-%dT%H:%M:%S"), "mjd": float(mjd[i]), "exposure": 30.0,
                     "content_type": "image/fits", "file_size": 2880, "md5": "0" * 32,
                     "media_ref": f"bench/{phot}/{i}.fits"} for i in range(frames)])
                n_frames += frames
            ref = SeriesRef(phot, uid, "BenchStar", BAND, src, src[0] * 32, int(times[0]),
                            int(times[-1]))
            paths.append(f"{uid}/{BAND}")
            refs.append(ref)
            series.append((ref, times))
        for name in ("target", "photometry", "frame"):  # as the uploader does
            refresh_public_flags(conn, f"skvo.{name}")
    store = SqlTimeSeriesStore(engine)
    rng = np.random.default_rng(1)
    for ref, times in series:
        n = len(times)
        store.put(ref, Points(times, 10 + rng.normal(0, 0.1, n), np.full(n, 0.01),
                              np.full(n, 30.0), np.full(n, "abs", dtype=object), np.full(n, 2),
                              np.full(n, "heliocenter", dtype=object)))
    return int(target), paths, refs, n_frames


def dachs_status() -> str | None:
    """None when DaCHS's SSA can be measured here, else why not."""
    if shutil.which("dachs") is None:
        return ("DaCHS (gavodachs2-server) is not installed on this machine (no `dachs` on "
                "the PATH) and bench/dachs_anchor.py sets up only its TAP/SCS table, no "
                "SSA light-curve service")
    return ("bench/dachs_anchor.py publishes no SSA/getData light-curve resource (its RD "
            "holds the cone/TAP table only)")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nights", type=int, default=500)
    parser.add_argument("--points", type=int, default=500, help="points per night")
    parser.add_argument("--second", type=int, default=20, help="nights of a second source")
    parser.add_argument("--frame-nights", type=int, default=20,
                        help="nights with one frame per point")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backends", default="sqlite,mariadb")
    parser.add_argument("--save-body", type=Path, default=None,
                        help="write the star curve's response body here (one file per backend)")
    args = parser.parse_args()
    total = args.nights * args.points
    print(f"star curve: {args.nights} nights x {args.points} points = {total:,} points in "
          f"{BAND}; {args.second} nights from a second source; {args.frame_nights} nights "
          f"with frames; {args.rounds} interleaved rounds (a), (b), (c)")
    for backend in args.backends.split(","):
        if backend not in BACKENDS:
            raise SystemExit(f"unknown backend {backend!r}: use {', '.join(BACKENDS)}")
        with tempfile.TemporaryDirectory(prefix=f"skvo-bench-star-{backend}-") as tmp:
            root = Path(tmp)
            url = database_url(backend, root, "skvo_bench_star")
            engine = make_engine(url)
            initdb(engine)
            SqlTimeSeriesStore(engine).create_schema()
            start = time.perf_counter()
            target, paths, refs, n_frames = add_star(engine, args.nights, args.points,
                                                     args.second, args.frame_nights)
            print(f"{backend:8s} data written in {time.perf_counter() - start:.1f} s "
                  f"({n_frames:,} frame rows)")
            store = SqlTimeSeriesStore(engine)
            with live_server(root, url, workers=1) as server:
                star_url = f"{server.url}/lightcurve/star/{target}/{BAND}"
                session = requests.Session()
                first = session.get(star_url, timeout=120)
                first.raise_for_status()
                size = len(first.content)
                if args.save_body is not None:
                    args.save_body.mkdir(parents=True, exist_ok=True)
                    (args.save_body / f"{backend}.vot").write_bytes(first.content)
                night_urls = [f"{server.url}/lightcurve/{p}" for p in paths]
                session.get(night_urls[0], timeout=60).raise_for_status()
                star_t, nights_t, read_t = [], [], []
                night_bytes = 0
                for _ in range(args.rounds):
                    t0 = time.perf_counter()
                    r = session.get(star_url, timeout=120)
                    got = len(r.content)
                    star_t.append(time.perf_counter() - t0)
                    if r.status_code != 200 or got != size:
                        raise SystemExit(f"star curve answered {r.status_code}, {got} bytes")
                    t0 = time.perf_counter()
                    night_bytes = 0
                    for u in night_urls:
                        r = session.get(u, timeout=60)
                        r.raise_for_status()
                        night_bytes += len(r.content)
                    nights_t.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    read_points = sum(len(c) for ref in refs for c in store.read(ref))
                    read_t.append(time.perf_counter() - t0)
                    if read_points != total:
                        raise SystemExit(f"the store read {read_points} points, not {total}")
                session.close()
            engine.dispose()
            a, b, c = (statistics.median(x) for x in (star_t, nights_t, read_t))
            print(f"{backend:8s} (a) star curve, 1 GET ({size / 1e6:.1f} MB): median {_ms(a)} "
                  f"(rounds: {', '.join(f'{x * 1000:.0f}' for x in star_t)} ms)")
            print(f"{backend:8s} (b) {len(night_urls)} per-night GETs, one keep-alive session "
                  f"({night_bytes / 1e6:.1f} MB): median {_ms(b)} (rounds: "
                  f"{', '.join(f'{x * 1000:.0f}' for x in nights_t)} ms); (a) is "
                  f"{b / a:.1f}x faster")
            print(f"{backend:8s} (c) raw store read in process (lower bound): median {_ms(c)} "
                  f"(rounds: {', '.join(f'{x * 1000:.0f}' for x in read_t)} ms); (a) takes "
                  f"{a / c:.1f}x as long")
            if total == TARGET_POINTS:
                verdict = "meets" if a < TARGET_MS / 1000 else "MISSES"
                print(f"{backend:8s} verdict: {_ms(a)} for {total:,} points; {verdict} the "
                      f"{TARGET_MS:.0f} ms target (issue 10)")
            else:
                print(f"{backend:8s} verdict: none (the {TARGET_MS:.0f} ms target of issue 10 "
                      f"is for {TARGET_POINTS:,} points, this run has {total:,})")
    why = dachs_status()
    print(f"not measured: DaCHS SSA getData of the same curve: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
