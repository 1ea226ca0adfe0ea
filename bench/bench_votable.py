"""Benchmark of voservice.votable.write_table against astropy.io.votable.

Usage::

    python bench/bench_votable.py                 # 1,000,000 rows, 10 M rows memory run
    python bench/bench_votable.py --rows 50000 --mem-rows 200000   # smoke run

Table: 10 columns typical of SKVO light-curve/source results (longs, an int
with NULLs, doubles with NULLs, a char* band, a timestamp).  Input comes
either as row tuples (what ``cursor.fetchmany`` returns; includes the
transpose cost and ``datetime`` objects) or as numpy columns (``Columns``).
Input chunks are pre-built and cycled so that generating them is not timed.
The memory run streams in a subprocess with chunks generated on the fly and
output discarded, and reports the child's peak RSS (ru_maxrss).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import itertools
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from voservice.votable import Columns, Field, write_table  # noqa: E402

FIELDS = [
    Field("source_id", "long", ucd="meta.id;meta.main"),
    Field("obs_id", "long", ucd="meta.id"),
    Field("band", "char", "*", ucd="instr.bandpass"),
    Field("ra", "double", unit="deg", ucd="pos.eq.ra"),
    Field("dec", "double", unit="deg", ucd="pos.eq.dec"),
    Field("mjd", "double", unit="d", ucd="time.epoch"),
    Field("mag", "double", unit="mag", ucd="phot.mag"),
    Field("mag_err", "double", unit="mag", ucd="stat.error;phot.mag"),
    Field("flags", "int", ucd="meta.code.qual"),
    Field("obs_time", "char", "*", xtype="timestamp", ucd="time.epoch"),
]
BANDS = np.array(["g", "r", "i", "z", "V", "B"])
EPOCH = np.datetime64("2019-01-01T00:00:00", "us")


def column_chunk(start: int, n: int, seed: int = 0) -> Columns:
    """A column-oriented chunk of n rows."""
    rng = np.random.default_rng(seed + start)
    idx = np.arange(start, start + n, dtype=np.int64)
    mag = rng.normal(15, 2, n)
    mag_null = rng.random(n) < 0.05
    flags = rng.integers(0, 1024, n).astype(np.int32)
    flags_null = rng.random(n) < 0.1
    t = EPOCH + (rng.integers(0, 3 * 365 * 86400, n) * 1_000_000).astype("timedelta64[us]")
    return Columns(
        [
            idx,
            idx // 10,
            BANDS[idx % len(BANDS)],
            rng.uniform(0, 360, n),
            rng.uniform(-90, 90, n),
            58484.0 + rng.uniform(0, 1000, n),
            np.where(mag_null, np.nan, mag),
            np.abs(rng.normal(0.02, 0.01, n)),
            flags,
            t,
        ],
        masks=[None] * 8 + [flags_null, None],
    )


def row_chunk(start: int, n: int, seed: int = 0) -> list[tuple]:
    """The same data as row tuples with None for NULL and datetime objects."""
    c = column_chunk(start, n, seed)
    a = c.arrays
    flags = [None if m else v for v, m in zip(a[8].tolist(), c.masks[8].tolist(), strict=True)]
    mag = [None if v != v else v for v in a[6].tolist()]
    times = a[9].astype(dt.datetime).tolist()  # datetime objects, as a DB driver returns
    cols = [a[0].tolist(), a[1].tolist(), a[2].tolist(), a[3].tolist(), a[4].tolist(),
            a[5].tolist(), mag, a[7].tolist(), flags, times]  # fmt: skip
    return list(zip(*cols, strict=True))


def cycled(pool: list, rows: int, chunk: int) -> Iterator:
    """Yield pre-built chunks round-robin until `rows` rows are produced."""
    it = itertools.cycle(pool)
    for _ in range(rows // chunk):
        yield next(it)


def run(fmt: str, chunks: Iterator) -> tuple[float, int]:
    t0 = time.perf_counter()
    size = 0
    for b in write_table(FIELDS, chunks, format=fmt):
        size += len(b)
    return time.perf_counter() - t0, size


def astropy_table(rows: int):
    from astropy.table import MaskedColumn, Table

    c = column_chunk(0, rows)
    a = c.arrays
    t = Table()
    for f, arr, m in zip(FIELDS, a, c.masks, strict=True):
        if f.name == "obs_time":
            arr = np.datetime_as_string(arr, unit="s").astype(object)
        elif f.name == "band":
            arr = arr.astype(object)
        mask = m if m is not None else (np.isnan(arr) if arr.dtype.kind == "f" else None)
        t[f.name] = MaskedColumn(arr, mask=mask) if mask is not None else arr
    return t


def run_astropy(table, fmt: str) -> tuple[float, int]:
    from astropy.io.votable.tree import VOTableFile

    t0 = time.perf_counter()
    vot = VOTableFile.from_table(table)
    vot.get_first_table().format = fmt
    buf = io.BytesIO()
    vot.to_xml(buf)
    return time.perf_counter() - t0, buf.tell()


def report(label: str, rows: int, seconds: float, size: int) -> float:
    rate = rows / seconds
    print(f"  {label:<34} {rate:>12,.0f} rows/s {size / seconds / 1e6:>8.1f} MB/s "
          f"{seconds:>7.2f} s  {size / 1e6:>8.1f} MB")  # fmt: skip
    return rate


def peak_rss_mb() -> float:
    """Peak RSS of this process (VmHWM; ru_maxrss would include the parent's
    peak on Linux, since it survives fork+exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_child(rows: int, chunk: int, mode: str, fmt: str) -> None:
    """Stream `rows` rows with chunks generated on the fly; print peak RSS in MB."""
    make = column_chunk if mode == "columns" else row_chunk
    base = peak_rss_mb()
    chunks = (make(s, min(chunk, rows - s)) for s in range(0, rows, chunk))
    size = 0
    t0 = time.perf_counter()
    for b in write_table(FIELDS, chunks, format=fmt):
        size += len(b)
    secs = time.perf_counter() - t0
    peak = peak_rss_mb()
    print(f"{peak:.1f} {base:.1f} {size} {secs:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--chunk", type=int, default=10_000)
    ap.add_argument("--astropy-rows", type=int, default=200_000,
                    help="rows for the (slow) astropy runs; rates are per row")  # fmt: skip
    ap.add_argument("--mem-rows", type=int, default=10_000_000)
    ap.add_argument("--no-astropy", action="store_true")
    ap.add_argument("--mem-child", nargs=3, metavar=("ROWS", "MODE", "FORMAT"),
                    help=argparse.SUPPRESS)  # fmt: skip
    args = ap.parse_args()
    if args.mem_child:
        memory_child(int(args.mem_child[0]), args.chunk, args.mem_child[1], args.mem_child[2])
        return

    rows, chunk = args.rows - args.rows % args.chunk, args.chunk
    npool = max(1, min(20, rows // chunk))
    print(f"building input pools ({npool} chunks of {chunk} rows, cycled to {rows:,} rows)")
    tuples = [row_chunk(i * chunk, chunk) for i in range(npool)]
    columns = [column_chunk(i * chunk, chunk) for i in range(npool)]

    rates: dict[str, float] = {}
    print(f"voservice.votable, {rows:,} rows x {len(FIELDS)} columns")
    for fmt in ("votable/binary2", "votable/binary", "votable/td", "csv", "json"):
        for mode, pool in (("tuples", tuples), ("columns", columns)):
            secs, size = run(fmt, cycled(pool, rows, chunk))
            rates[f"{fmt} {mode}"] = report(f"{fmt} ({mode})", rows, secs, size)

    if not args.no_astropy:
        arows = min(rows, args.astropy_rows)
        print(f"astropy.io.votable {__import__('astropy').__version__}, {arows:,} rows")
        table = astropy_table(arows)
        for fmt, ours in (("binary2", "votable/binary2"), ("tabledata", "votable/td")):
            secs, size = run_astropy(table, fmt)
            rate = report(f"astropy {fmt}", arows, secs, size)
            print(f"    ratio ours/astropy: tuples {rates[ours + ' tuples'] / rate:5.1f}x, "
                  f"columns {rates[ours + ' columns'] / rate:5.1f}x")  # fmt: skip

    if args.mem_rows:
        print(f"peak memory streaming {args.mem_rows:,} rows (subprocess, output discarded)")
        for mode in ("columns", "tuples"):
            cmd = [sys.executable, __file__, "--chunk", str(chunk), "--mem-child",
                   str(args.mem_rows), mode, "votable/binary2"]  # fmt: skip
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()
            peak, base, size, secs = float(out[0]), float(out[1]), int(out[2]), float(out[3])
            print(f"  binary2 ({mode}): peak RSS {peak:.0f} MB (after imports {base:.0f} MB), "
                  f"{size / 1e6:.0f} MB written in {secs:.1f} s "
                  f"({args.mem_rows / secs:,.0f} rows/s incl. generating input)")  # fmt: skip


if __name__ == "__main__":
    main()
