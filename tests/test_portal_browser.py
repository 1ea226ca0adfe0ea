"""The portal in a real browser (headless Chromium): a newcomer's path through it.

Search ``beta Lyr`` -> the star page -> the plot holds the star curve's points -> fold at
the stored period -> the periodogram's best peak is 12.94 d -> the CSV download is the
VOTable's curve -> a click on a point with a frame shows the frame; an anonymous visitor
sees locks and no restricted star; a granted user sees the data; the pages fit a phone.
Every state is saved as a screenshot (tests/screenshots/).
"""

from __future__ import annotations

import base64
import csv
import io
from pathlib import Path
from urllib.parse import urljoin

import numpy as np
import pytest
import requests
from astropy.io.votable import parse

from tests.conftest import ALICE, BrowserPage, LiveServer

#: the period of beta Lyrae (GCVS), which the periodogram must find within 1 %
BETA_LYR_PERIOD = 12.94


def _tables(server: LiveServer, path: str, auth: tuple[str, str] | None = None,
            **params: str) -> list:
    r = requests.get(server.url + path, params=params, auth=auth, timeout=120)
    assert r.status_code == 200, r.text[:300]
    return list(parse(io.BytesIO(r.content)).iter_tables())


def _wait_plot(page: BrowserPage, selector: str = "#curve") -> int:
    page.page.wait_for_selector(f"{selector}[data-ready='1']", timeout=60_000)
    return int(page.page.get_attribute(selector, "data-points"))


@pytest.fixture(scope="module")
def server(sqlite_server: LiveServer) -> LiveServer:
    return sqlite_server


def test_find_fold_periodogram_download_and_frame(page: BrowserPage, server: LiveServer,
                                                  tmp_path: Path) -> None:
    p = page.page
    p.goto(server.url + "/")
    p.wait_for_selector("#sky[data-count]")
    page.shoot("home")
    p.fill("#q", "beta Lyr")
    p.press("#q", "Enter")
    p.wait_for_url("**/star/*")
    target = int(p.url.rstrip("/").rsplit("/", 1)[1])
    shown = _wait_plot(page)
    page.shoot("star")
    # the plot holds every point of the star curve the visitor may fetch, all bands
    tables = _tables(server, f"/lightcurve/star/{target}")
    assert shown == sum(len(t.array) for t in tables) > 1000
    # magnitudes grow downwards: the axis runs from the faintest (bottom) to the brightest
    low, high = p.evaluate("document.getElementById('curve')._fullLayout.yaxis.range")
    assert low > high
    assert "HELIOCENTER" in p.inner_text("#curve-panel").upper()  # the time system is named

    # fold at the stored period: every shown point, phases 0-2
    stored = float(p.input_value("#period"))
    p.click("#fold-stored")
    p.wait_for_function("document.getElementById('folded').dataset.period")
    assert int(p.get_attribute("#folded", "data-points")) == shown
    assert float(p.get_attribute("#folded", "data-period")) == stored
    assert p.evaluate("document.getElementById('folded').layout.xaxis.range") == [0, 2]
    p.check("#bin-on")
    p.wait_for_function("document.getElementById('folded').data.some("
                        "t => t.name.endsWith('binned'))")
    page.shoot("folded")

    # the periodogram finds the period, and folds at it
    p.select_option("#pg-band", "johnson.v")
    p.click("#pg-run")
    p.wait_for_selector("#peaks:not([hidden])", timeout=120_000)
    best = float(p.get_attribute("#pgram", "data-best"))
    assert abs(best - BETA_LYR_PERIOD) / BETA_LYR_PERIOD < 0.01
    page.shoot("periodogram")
    p.click("#peaks tbody tr:first-child button.fold-peak")
    p.wait_for_function(f"Math.abs(document.getElementById('folded').dataset.period - {best})"
                        " < 1e-9")

    # the CSV download is the star curve the VOTable serves, folded as shown
    link = p.locator("#downloads li", has_text="johnson.v").locator("a.dl-csv")
    with p.expect_download() as info:
        link.click()
    saved = tmp_path / "curve.csv"
    info.value.save_as(saved)
    rows = list(csv.DictReader(io.StringIO(saved.read_text())))
    href = link.get_attribute("href")
    query = dict(x.split("=", 1) for x in href.split("?", 1)[1].split("&"))
    vo = _tables(server, href.split("?")[0], PERIOD=query["PERIOD"], EPOCH=query["EPOCH"])[0]
    assert len(rows) == len(vo.array) > 100
    np.testing.assert_array_equal([float(r["time"]) for r in rows], vo.array["time"])
    np.testing.assert_array_equal([float(r["magnitude"]) for r in rows], vo.array["magnitude"])
    period, epoch = float(query["PERIOD"]), float(query["EPOCH"])
    np.testing.assert_allclose([float(r["phase"]) for r in rows],
                               np.mod((vo.array["time"] - epoch) / period, 1.0), atol=1e-9)

    # a click on a point with a frame shows that frame
    box = p.evaluate("""() => {
        const gd = document.getElementById('curve');
        const i = gd.data.findIndex(t => t.name.endsWith(' frames'));
        return i < 0 ? null : {i, j: 0, x: gd.data[i].x[0], y: gd.data[i].y[0]};
      }""")
    assert box is not None, "no point of beta Lyr has a frame"
    p.evaluate("([x]) => Plotly.relayout('curve', {'xaxis.range': [x - 0.004, x + 0.004]})",
               [box["x"]])
    p.locator("#curve").scroll_into_view_if_needed()
    p.wait_for_timeout(500)
    xy = p.evaluate("""([i, j]) => {
        const gd = document.getElementById('curve'), L = gd._fullLayout;
        return [L._size.l + L.xaxis.l2p(gd.data[i].x[j]),
                L._size.t + L.yaxis.l2p(gd.data[i].y[j])];
      }""", [box["i"], box["j"]])
    bounds = p.locator("#curve").bounding_box()
    p.mouse.move(bounds["x"] + xy[0], bounds["y"] + xy[1])
    p.wait_for_timeout(300)
    p.mouse.click(bounds["x"] + xy[0], bounds["y"] + xy[1])
    p.wait_for_selector("#frame-view:not([hidden])")
    p.wait_for_function("document.getElementById('frame-img').complete && "
                        "document.getElementById('frame-img').naturalWidth > 0")
    assert "has a frame" in p.inner_text("#hover-info")
    src = p.get_attribute("#frame-img", "src")
    png = requests.get(urljoin(server.url, src), timeout=30)
    assert png.headers["Content-Type"] == "image/png" and png.content[:4] == b"\x89PNG"
    page.shoot("frame", full_page=False)

    # the night's gallery holds that frame, with its point; a click shows it at full size
    p.click("text=Frames of every night")
    p.wait_for_selector(".gallery")
    thumb = p.locator(f"a.frame-link[href='/frame/{src.rsplit('/', 1)[1]}']")
    assert thumb.count() == 1
    caption = thumb.locator("xpath=..").inner_text()
    assert "point" in caption and "mag" in caption
    thumb.click()
    p.wait_for_selector("#lightbox[open]")
    p.wait_for_function("document.getElementById('lightbox-img').naturalWidth > 0")
    page.shoot("gallery", full_page=False)


def test_anonymous_sees_locks_and_no_restricted_star(page: BrowserPage,
                                                     server: LiveServer) -> None:
    p = page.page
    p.goto(server.url + "/")
    p.wait_for_selector("#sky[data-count]")
    names = p.evaluate("document.getElementById('sky').data[0].text")
    assert "bet_Lyr" in names and "l_Car" not in names
    assert "l_Car" not in p.content()
    granted = requests.get(server.url + "/portal/api/sky", auth=ALICE, timeout=30).json()
    assert "l_Car" in {t["name"] for t in granted["targets"]}
    # a star whose nights are all on demand or restricted: locks, no point
    p.fill("#q", "W UMa")
    p.press("#q", "Enter")
    p.wait_for_url("**/star/*")
    assert "locked" in p.inner_text("#locked-note")
    assert p.locator("#curve").count() == 0 and p.locator("#downloads").count() == 0
    assert p.locator("#nights tr.locked").count() >= 1
    assert p.locator("#nights tr.fetch").count() == 0
    page.shoot("locked-star")
    p.goto(server.url + "/search?q=l_Car")
    assert p.locator("#no-match").is_visible()
    assert "l_Car" not in p.inner_text("main").replace("“l_Car”", "")
    page.shoot("no-match")


def test_granted_user_sees_the_data(browser: object, server: LiveServer,
                                    request: pytest.FixtureRequest) -> None:
    # HTTP Basic on every request (the session login is the login pages' business)
    token = base64.b64encode(f"{ALICE[0]}:{ALICE[1]}".encode()).decode()
    context = browser.new_context(viewport={"width": 1280, "height": 800},
                                  extra_http_headers={"Authorization": f"Basic {token}"})
    page = BrowserPage(context.new_page(), request.node.name)
    try:
        p = page.page
        p.goto(server.url + "/")
        p.wait_for_selector("#sky[data-count]")
        assert "l_Car" in p.evaluate("document.getElementById('sky').data[0].text")
        p.fill("#q", "bet Lyr")
        p.press("#q", "Enter")
        p.wait_for_url("**/star/*")
        target = int(p.url.rsplit("/", 1)[1])
        shown = _wait_plot(page)
        tables = _tables(server, f"/lightcurve/star/{target}", auth=ALICE)
        assert shown == sum(len(t.array) for t in tables)
        assert p.locator("#nights tr.locked").count() == 0
        page.shoot("granted-star")
    finally:
        context.close()
    assert not page.errors, page.errors


def test_pages_fit_a_phone(phone_page: BrowserPage, server: LiveServer) -> None:
    p = phone_page.page
    for path, ready in (("/", "#sky[data-count]"), ("/search?q=beta+Lyr", "#curve[data-ready]"),
                        ("/search?q=282.52+33.36&radius=600", "#results")):
        p.goto(server.url + path)
        p.wait_for_selector(ready, timeout=60_000)
        width = p.evaluate("document.documentElement.scrollWidth")
        assert width <= 390 + 1, f"{path} is {width} px wide on a 390 px phone"
        phone_page.shoot("phone-" + ("home" if path == "/" else "star" if "Lyr" in path
                                     else "results"))


class _Hub:
    """A stand-in SAMP Web Profile hub on localhost:21012 that records what it is sent."""

    PORT = 21012

    def __init__(self) -> None:
        import threading
        import xmlrpc.client
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.calls: list[tuple[str, tuple]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _cors(self) -> None:
                self.send_header("Access-Control-Allow-Origin", self.headers.get("Origin", "*"))
                self.send_header("Access-Control-Allow-Headers", "Content-Type")
                self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")

            def do_OPTIONS(self) -> None:  # noqa: N802 - http.server's name
                self.send_response(200)
                self._cors()
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                params, method = xmlrpc.client.loads(body)
                hub.calls.append((method, params))
                answer = {"samp.webhub.register": ({"samp.private-key": "k1",
                                                    "samp.hub-id": "hub",
                                                    "samp.self-id": "c1"},),
                          "samp.webhub.notifyAll": (["topcat"],)}.get(method, ("",))
                data = xmlrpc.client.dumps(answer, methodresponse=True).encode()
                self.send_response(200)
                self._cors()
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.PORT), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_send_to_topcat_over_samp(page: BrowserPage, server: LiveServer) -> None:
    hub = _Hub()
    try:
        p = page.page
        p.goto(server.url + "/star/beta%20Lyr")
        shown = _wait_plot(page)
        p.click("#samp-send")
        p.wait_for_function("document.getElementById('samp-status').textContent"
                            ".startsWith('Sent')")
        page.shoot("samp-sent", full_page=False)
    finally:
        hub.close()
    methods = [m for m, _ in hub.calls]
    assert methods == ["samp.webhub.register", "samp.webhub.declareMetadata",
                       "samp.webhub.notifyAll", "samp.webhub.unregister"]
    key, message = dict(hub.calls)["samp.webhub.notifyAll"]
    assert key == "k1" and message["samp.mtype"] == "table.load.votable"
    url = message["samp.params"]["url"]
    assert url.startswith(server.url + "/lightcurve/star/")
    # what TOPCAT loads is what the page shows
    tables = list(parse(io.BytesIO(requests.get(url, timeout=120).content)).iter_tables())
    assert sum(len(t.array) for t in tables) == shown
