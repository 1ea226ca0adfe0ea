"""Portal plot benchmark: a star page's 100,000 points fetched as JSON and plotted, in Chromium.

Writes one star with ``--nights`` nights of ``--points`` points (100,000 by default;
the writer of bench/bench_star_curve.py, a few nights with a frame per point) into a
fresh SQLite file (or MariaDB database), starts ``skvo serve``, opens the star page
``/star/<id>`` in headless Chromium (Debian's, driven by Playwright) and measures in
the page, interleaved round by round:

(a) the page's own path: ``fetch`` of ``/portal/api/star/<id>/curve`` (the compact
    JSON), ``JSON.parse`` and the plot (plotly.js ``scattergl`` with error bars, hover
    text and per-point symbols) until two animation frames have been painted;
(b) the anchor: ``fetch`` of the raw ``/lightcurve/star/<id>/<band>`` VOTable (BINARY2,
    the VO endpoint the JSON is built from) until its last byte is read, no parsing.

Prints the medians, the ratio (a)/(b) and the verdict against the target (under 1 s
for 100,000 points on loopback).

    python bench/bench_portal_plot.py [--nights N] [--points M] [--rounds R]
        [--backends sqlite,mariadb]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("SKVO_TEST_DB_PREFIX", "bpp_")  # our MariaDB databases: bpp_*

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_star_curve import BAND, add_star  # noqa: E402
from common import BACKENDS, database_url, live_server  # noqa: E402

from voservice.stores.metadata import initdb, make_engine  # noqa: E402
from voservice.stores.timeseries.sql import SqlTimeSeriesStore  # noqa: E402

CHROMIUM = os.environ.get("SKVO_CHROMIUM", "/usr/bin/chromium")
TARGET_S = 1.0

#: (a): the page reloads its points through its own code path (star.js), then waits for paint
PLOT_JS = """async () => {
  const t0 = performance.now();
  await window.skvoStar.reload();
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const el = document.getElementById('curve'), parts = window.skvoStar.timing();
  return [performance.now() - t0, Number(el.dataset.points), parts.fetch, parts.plot];
}"""
#: (b): the raw VOTable of the same points, read to its last byte
ANCHOR_JS = """async (url) => {
  const t0 = performance.now();
  const r = await fetch(url);
  const body = await r.arrayBuffer();
  return [performance.now() - t0, body.byteLength];
}"""


def _ms(values: list[float]) -> str:
    return ", ".join(f"{v:.0f}" for v in values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nights", type=int, default=200)
    parser.add_argument("--points", type=int, default=500, help="points per night")
    parser.add_argument("--frame-nights", type=int, default=4,
                        help="nights with one frame per point")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backends", default="sqlite")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    total = args.nights * args.points
    print(f"portal plot: {args.nights} nights x {args.points} points = {total:,} points in "
          f"{BAND}; {args.rounds} interleaved rounds of (a) JSON + plot, (b) raw VOTable")
    for backend in args.backends.split(","):
        if backend not in BACKENDS:
            raise SystemExit(f"unknown backend {backend!r}: use {', '.join(BACKENDS)}")
        with tempfile.TemporaryDirectory(prefix=f"skvo-bench-plot-{backend}-") as tmp:
            root = Path(tmp)
            url = database_url(backend, root, "skvo_bench_plot")
            engine = make_engine(url)
            initdb(engine)
            SqlTimeSeriesStore(engine).create_schema()
            target, _, _, _ = add_star(engine, args.nights, args.points, 0, args.frame_nights)
            engine.dispose()
            with live_server(root, url, workers=1) as server, sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(f"{server.url}/star/{target}")
                page.wait_for_selector("#curve[data-ready='1']", timeout=120_000)
                anchor_url = f"{server.url}/lightcurve/star/{target}/{BAND}"
                page.evaluate(ANCHOR_JS, anchor_url)  # warm both paths once
                plot_ms, anchor_ms, fetch_ms, draw_ms = [], [], [], []
                size = 0
                for _ in range(args.rounds):
                    took, shown, fetched, drawn = page.evaluate(PLOT_JS)
                    if shown != total:
                        raise SystemExit(f"the page plotted {shown} points, not {total}")
                    plot_ms.append(took)
                    fetch_ms.append(fetched)
                    draw_ms.append(drawn)
                    took, size = page.evaluate(ANCHOR_JS, anchor_url)
                    anchor_ms.append(took)
                browser.close()
            a, b = statistics.median(plot_ms), statistics.median(anchor_ms)
            print(f"{backend:8s} (a) JSON fetch + plot of {total:,} points: median {a:,.0f} ms "
                  f"(rounds: {_ms(plot_ms)} ms); of which JSON fetch + decode "
                  f"{statistics.median(fetch_ms):,.0f} ms, plot {statistics.median(draw_ms):,.0f}"
                  " ms (medians)")
            print(f"{backend:8s} (b) raw VOTable fetch ({size / 1e6:.1f} MB BINARY2): median "
                  f"{b:,.0f} ms (rounds: {_ms(anchor_ms)} ms); (a) takes {a / b:.2f}x as long")
            verdict = "meets" if a < TARGET_S * 1000 else "MISSES"
            print(f"{backend:8s} verdict: {verdict} the {TARGET_S * 1000:.0f} ms target for "
                  f"{total:,} points" + ("" if total == 100_000 else " (target: 100,000)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
