"""Benchmark of voservice.analysis against astropy's own calls (the anchor).

Usage::

    python bench/bench_analysis.py              # 5 rounds
    python bench/bench_analysis.py --rounds 3

Figures, each the median over the rounds, the service and its anchor run
in the same round one after the other (the order alternating round by round):

* Lomb-Scargle, 100,000 points, ~1e5 frequencies: ``lomb_scargle`` (input
  cleaning, grid, astropy power, distinct peaks, refinement of 5 peaks,
  Baluev false-alarm probabilities) against ``LombScargle(t, y, dy).power(f)``
  on the same grid;
* BLS, 20,000 points, 3 durations: ``box_least_squares`` (the same plus peak
  refinement and per-peak statistics) against
  ``BoxLeastSquares(t, y, dy).power(periods, durations)`` on the same grid;
* BJD_TDB of 20,000 times (nightly blocks over 1000 days): ``convert_times``
  (exact light travel times at 30-min nodes, interpolated) against
  ``t.tdb + t.light_travel_time(target)`` for every time.

The machine is shared, so the figures move with its load; the ratio
service/astropy, measured in the same rounds, is the figure to read.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from astropy import units as u  # noqa: E402
from astropy.coordinates import EarthLocation, SkyCoord  # noqa: E402
from astropy.time import Time  # noqa: E402
from astropy.timeseries import BoxLeastSquares, LombScargle  # noqa: E402

from voservice.analysis import (  # noqa: E402
    box_least_squares,
    convert_times,
    estimate_seconds,
    lomb_scargle,
    plan_periodogram,
)

NOT_MEASURED = [
    "NTERMS > 1 at 100k points",
    "the HTTP endpoints, VOTable/PNG serialisation (not written yet)",
    "minima (KvW) and ephemeris fits (milliseconds per night; not benchmarked)",
]


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(1)

    # Lomb-Scargle: 100k points over 1000 days, a 0.7312-day sinusoid
    n_ls = 100_000
    t_ls = 58000 + np.sort(rng.uniform(0, 1000, n_ls))
    e_ls = rng.uniform(0.005, 0.05, n_ls)
    y_ls = 12 + 0.1 * np.sin(2 * np.pi * t_ls / 0.7312) + rng.normal(0, 1, n_ls) * e_ls
    ls_kw = {"min_period": 0.05, "max_period": 100.0, "oversample": 5.0}
    plan = plan_periodogram("lombscargle", t_ls, **ls_kw)
    freq_ls = plan.grid.frequencies()
    t_rel = t_ls - np.floor(t_ls[0])

    # BLS: 20k points over 60 days, an eclipse every 2.8673 days
    n_bls = 20_000
    t_bls = 58000 + np.sort(rng.uniform(0, 60, n_bls))
    e_bls = rng.uniform(0.005, 0.03, n_bls)
    ph = ((t_bls - 58000.3) / 2.8673 + 0.5) % 1 - 0.5
    y_bls = 10 + 0.8 * (np.abs(ph) < 0.03) + rng.normal(0, 1, n_bls) * e_bls
    durations = [0.05, 0.1, 0.2]
    bls_kw = {"min_period": 0.5, "max_period": 10.0, "oversample": 5.0, "durations": durations}
    plan_b = plan_periodogram("bls", t_bls, **bls_kw)
    freq_bls = plan_b.grid.frequencies()
    tb_rel = t_bls - np.floor(t_bls[0])

    # BJD: 20k times of a star on the ecliptic from Stara Lesna, 100 a night
    n_bjd = 20_000
    t_bjd = np.concatenate([58000.8 + k * 5 + np.sort(rng.uniform(0, 0.35, 100))
                            for k in range(n_bjd // 100)])
    site = EarthLocation.from_geodetic(20.29 * u.deg, 49.15 * u.deg, 810 * u.m)
    star = SkyCoord(0 * u.deg, 0 * u.deg)

    def astropy_bjd() -> np.ndarray:
        t = Time(t_bjd, format="mjd", scale="utc", location=site)
        return (t.tdb + t.light_travel_time(star, "barycentric")).mjd

    cases: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
        (f"Lomb-Scargle {n_ls:,} points x {plan.grid.n:,} frequencies",
         lambda: lomb_scargle(t_ls, y_ls, e_ls, **ls_kw),
         lambda: LombScargle(t_rel, y_ls, e_ls).power(freq_ls, assume_regular_frequency=True)),
        (f"BLS {n_bls:,} points x {plan_b.grid.n:,} periods x {len(durations)} durations",
         lambda: box_least_squares(t_bls, y_bls, e_bls, **bls_kw),
         lambda: BoxLeastSquares(tb_rel, -y_bls, e_bls).power(1 / freq_bls, durations)),
        (f"BJD_TDB of {n_bjd:,} times",
         lambda: convert_times(t_bjd, ra=0.0, dec=0.0, location=site, to="BJD_TDB"),
         astropy_bjd),
    ]
    print(f"rounds: {args.rounds} (service and anchor interleaved, order alternating)")
    for name, service, anchor in cases:
        s_times: list[float] = []
        a_times: list[float] = []
        for r in range(args.rounds):
            if r % 2 == 0:
                s_times.append(timed(service))
                a_times.append(timed(anchor))
            else:
                a_times.append(timed(anchor))
                s_times.append(timed(service))
        s_med, a_med = statistics.median(s_times), statistics.median(a_times)
        print(f"{name}:")
        print(f"  service  median {s_med:8.3f} s   (min {min(s_times):.3f})")
        print(f"  astropy  median {a_med:8.3f} s   (min {min(a_times):.3f})")
        print(f"  ratio service/astropy {s_med / a_med:.3f}")
    mb = estimate_seconds("lombscargle", n_ls, plan.grid, n_bands=3, band_method="multiband")
    pdm = estimate_seconds("pdm", n_ls, plan.grid)
    print("not measured:")
    for item in [
        f"LombScargleMultiband at the LS size (estimated {mb:,.0f} s, above MAX_SECONDS: "
        "refused; astropy's flexible method loops over frequencies in Python)",
        f"PDM at the LS size (estimated {pdm:,.0f} s, above MAX_SECONDS: refused)",
        *NOT_MEASURED,
    ]:
        print(f"  - {item}")


if __name__ == "__main__":
    main()
