"""Streamed light curves give exactly the rows of reading every point at once.

A store of many small chunks (ties between bandpasses included) against the
whole-array computation the light curves used before they streamed: sort all
points by time (stable), and bin with one ``np.bincount`` over all points.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from voservice.archive import lightcurves
from voservice.archive.lightcurves import Options
from voservice.stores.timeseries.base import Points


class ChunkStore:
    """A time-series store that hands out its points 7 at a time, and counts closes."""

    def __init__(self, points: dict[int, Points]) -> None:
        self.points = points
        self.open = 0

    def read(self, ref, start_us=None, end_us=None, chunk_size=100_000):
        pts = self.points[ref.series_id]
        keep = np.ones(len(pts), bool)
        if start_us is not None:
            keep &= pts.time_us >= start_us
        if end_us is not None:
            keep &= pts.time_us <= end_us
        pts = pts[keep]
        self.open += 1
        try:
            for i in range(0, len(pts), 7):
                yield pts[i : i + 7]
        finally:
            self.open -= 1


class Ref:
    def __init__(self, series_id: int) -> None:
        self.series_id = series_id


class FakeSeries:
    def __init__(self, series_id: int, band: str) -> None:
        self.ref = Ref(series_id)
        self.bandpass_uid = band


def _points(rng: np.random.Generator, n: int, shared: np.ndarray) -> Points:
    times = np.unique(np.concatenate([rng.integers(0, 10**11, n), shared]))
    times = times + 1_500_000_000_000_000
    err = rng.uniform(0.0, 0.05, len(times))
    err[::11] = 0.0  # points without an error weigh nothing
    return Points(times, rng.normal(12, 0.3, len(times)), err, np.full(len(times), 30.0),
                  np.full(len(times), "abs", dtype=object), np.full(len(times), 1),
                  np.full(len(times), "heliocenter", dtype=object))


@pytest.fixture()
def store() -> tuple[ChunkStore, list[FakeSeries]]:
    rng = np.random.default_rng(7)
    shared = rng.integers(0, 10**11, 40)  # the same times in every band: ties
    pts = {i: _points(rng, 300 + 50 * i, shared) for i in range(3)}
    return ChunkStore(pts), [FakeSeries(i, f"band{i}") for i in range(3)]


def _table(chunks) -> list[np.ndarray]:
    parts = [c.arrays for c in chunks]
    return [np.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]


def _reference_merged(store: ChunkStore, series, options: Options) -> list[np.ndarray]:
    parts = [lightcurves.point_columns(store.points[s.ref.series_id], s.bandpass_uid, options, True)
             for s in series]
    cols = [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]
    order = np.argsort(cols[0], kind="stable")
    return [c[order] for c in cols]


def _reference_binned(store: ChunkStore, series, options: Options) -> list[np.ndarray]:
    out = []
    for s in series:
        pts = store.points[s.ref.series_id]
        mjd = pts.mjd
        axis = lightcurves.phase(mjd, options) if options.folded else mjd - mjd[0]
        index = np.floor(axis / options.bin).astype(np.int64)
        keys, inverse, counts = np.unique(index, return_inverse=True, return_counts=True)
        err = pts.magnitude_error
        w = np.where(err > 0, 1.0 / np.where(err > 0, err, 1.0) ** 2, 0.0)
        wsum = np.bincount(inverse, w)
        mag = np.where(wsum > 0, np.bincount(inverse, w * pts.magnitude)
                       / np.where(wsum > 0, wsum, 1.0),
                       np.bincount(inverse, pts.magnitude) / counts)
        with np.errstate(divide="ignore", invalid="ignore"):
            error = np.where(wsum > 0, 1.0 / np.sqrt(wsum),
                             np.sqrt(np.bincount(inverse, err**2)) / counts)
        cols = [np.bincount(inverse, mjd) / counts, mag, error,
                np.full(len(keys), s.bandpass_uid, dtype=object)]
        if options.folded:
            cols.append((keys + 0.5) * options.bin)
        cols.append(counts)
        out.append(cols)
    merged = [np.concatenate([o[i] for o in out]) for i in range(len(out[0]))]
    order = np.argsort(merged[0], kind="stable")
    return [c[order] for c in merged]


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.dtype == y.dtype or x.dtype.kind == y.dtype.kind
        assert np.array_equal(x, y)  # bit for bit, not approximately


@pytest.mark.parametrize("options", [Options(), Options(period=0.37, epoch=0.0),
                                     Options(mjd_min=57948.3, mjd_max=57948.9)])
def test_merged_night_streams_the_same_rows(store, options: Options) -> None:
    st, series = store
    state: dict[str, bool] = {}
    got = _table(lightcurves.rows(st, series, options, True, state))
    start, end = lightcurves.window(options)
    clipped = ChunkStore({k: next(iter([Points.concat(list(st.read(Ref(k), start, end)))]))
                          for k in st.points})
    _same(got, _reference_merged(clipped, series, options))
    assert st.open == 0


@pytest.mark.parametrize("options", [Options(bin=0.01), Options(bin=0.003),
                                     Options(period=0.37, epoch=57000.0, bin=0.05)])
def test_binned_light_curve_is_bit_identical(store, options: Options) -> None:
    st, series = store
    got = _table(lightcurves.rows(st, series, options, True, {}))
    _same(got, _reference_binned(st, series, options))
    assert st.open == 0


def test_closing_a_light_curve_midway_closes_every_read(store) -> None:
    st, series = store
    state: dict[str, bool] = {}
    for options in (Options(), replace(Options(), maxrec=5)):
        it = lightcurves.rows(st, series, options, True, state)
        next(it)
        assert st.open > 0 or options.maxrec == 5
        it.close()
        assert st.open == 0
