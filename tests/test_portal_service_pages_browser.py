"""The service pages in headless Chromium (the ``page`` fixture fails on JS errors).

Each test saves screenshots under tests/screenshots/ for a reviewer.  What the pages
show is compared with what the VO endpoints answer a client (CSV through requests).
"""

from __future__ import annotations

import csv
import io

import requests
from conftest import ALICE, LiveServer
from test_portal_service_pages import one


def tap_csv(server: LiveServer, query: str) -> list[dict[str, str]]:
    """The rows a client gets for a query (anonymous)."""
    r = requests.post(f"{server.url}/tap/sync", data={"LANG": "ADQL", "QUERY": query,
                      "RESPONSEFORMAT": "csv"}, timeout=60)
    assert r.status_code == 200, r.text[:300]
    return list(csv.DictReader(io.StringIO(r.text)))


def test_vosi_capabilities_read_as_a_page(sqlite_server: LiveServer, page: object) -> None:
    p = page.page
    p.goto(f"{sqlite_server.url}/tap/capabilities")
    assert p.locator("h1").inner_text() == "Service capabilities (VOSI)"
    assert p.locator("section.capability h2").first.inner_text() == \
        "Table Access Protocol (TAP)"
    assert p.locator("table.formats tbody tr").count() >= 7
    assert p.locator("header.site .login").is_visible()  # the portal's header
    page.shoot("tap-capabilities")
    p.goto(f"{sqlite_server.url}/tap/tables")
    assert p.locator("section.table#ivoa\\.obscore table.columns tbody tr").count() > 20
    page.shoot("tap-tables", full_page=False)
    p.goto(f"{sqlite_server.url}/ssa/capabilities")
    assert p.locator("table.params tbody tr").count() == 5
    page.shoot("ssa-capabilities")


def test_adql_form_runs_a_query_and_shows_rows(sqlite_server: LiveServer, page: object
                                               ) -> None:
    p = page.page
    query = ("SELECT target, right_ascension, declination FROM skvo.target "
             "ORDER BY target")
    expected = tap_csv(sqlite_server, query)
    p.goto(f"{sqlite_server.url}/tap")
    page.shoot("tap-info")
    p.get_by_role("link", name="Open the ADQL query form").click()
    p.locator("textarea[name=QUERY]").fill(query)
    p.get_by_role("button", name="Run query").click()
    rows = p.locator(".result table.rows tbody tr")
    rows.first.wait_for()
    assert rows.count() == len(expected)
    assert [c.inner_text() for c in p.locator(".result thead th").all()][:2] == \
        ["target", "right_ascension [deg]"]
    shown = [r.locator("td").first.inner_text() for r in rows.all()]
    assert shown == [row["target"] for row in expected]
    page.shoot("adql-rows")
    # the download is the real /tap/sync answer, with a file name
    p.locator("select[name=RESPONSEFORMAT]").select_option("csv")
    with p.expect_download() as info:
        p.get_by_role("button", name="Download").click()
    download = info.value
    assert download.suggested_filename == "tap-result.csv"
    with open(download.path()) as fh:
        assert [r["target"] for r in csv.DictReader(fh)] == shown
    # an error is shown in words
    p.locator("textarea[name=QUERY]").fill("SELECT nosuchcolumn FROM skvo.target")
    p.get_by_role("button", name="Run query").click()
    error = p.locator(".result .error")
    error.wait_for()
    assert "nosuchcolumn" in error.inner_text() and "<" not in error.inner_text()
    # Chromium logs the 400 of the refused query; that one line is expected, no other
    assert len(page.errors) == 1 and "status of 400" in page.errors[0], page.errors
    assert page.errors[0].endswith("/tap/sync)")
    page.errors.clear()
    page.shoot("adql-error")


def test_tap_example_run_link(sqlite_server: LiveServer, page: object) -> None:
    p = page.page
    p.goto(f"{sqlite_server.url}/tap/examples")
    example = p.locator("div[typeof=example]").first
    query = example.locator("pre[property=query]").inner_text()
    expected = tap_csv(sqlite_server, query)
    example.get_by_role("link", name="Run this query").click()
    rows = p.locator(".result table.rows tbody tr")
    rows.first.wait_for()
    assert p.locator("textarea[name=QUERY]").input_value().strip() == query.strip()
    assert rows.count() == len(expected) > 0
    page.shoot("example-run")


def test_cone_search_info_page_runs(sqlite_server: LiveServer, page: object) -> None:
    p = page.page
    p.goto(f"{sqlite_server.url}/scs")
    p.get_by_role("button", name="Show the first rows").click()
    rows = p.locator(".result table.rows tbody tr")
    rows.first.wait_for()
    r = requests.get(f"{sqlite_server.url}/scs", params={"RA": 282.52, "DEC": 33.363,
                     "SR": 1, "RESPONSEFORMAT": "csv"}, timeout=60)
    assert rows.count() == len(r.text.strip().splitlines()) - 1
    page.shoot("scs-info")


def test_login_shows_on_demand_data_and_logout_removes_it(sqlite_server: LiveServer,
                                                          page: object) -> None:
    p = page.page
    curve = one(sqlite_server, "on_demand")
    url = f"{sqlite_server.url}/lightcurve/{curve.uuid}/{curve.band}"
    p.goto(url)
    assert p.locator(".locked").is_visible() and p.locator("img.preview").count() == 0
    page.shoot("anonymous-locked")
    p.locator(".locked").get_by_role("link", name="Log in").click()
    p.get_by_label("Account").fill(ALICE[0])
    p.get_by_label("Password").fill(ALICE[1])
    page.shoot("login-form")
    p.get_by_role("button", name="Log in").click()
    p.wait_for_url(url)  # back where she came from
    assert p.locator("header.site .who").inner_text() == ALICE[0]
    p.locator("img.preview").wait_for()
    assert p.locator("img.preview").evaluate("img => img.naturalWidth") > 100
    rows = p.locator(".result table.rows tbody tr")
    rows.first.wait_for()
    assert rows.count() == min(20, curve.n_points)
    page.shoot("alice-on-demand")
    p.get_by_role("link", name="DataLink: everything linked to it").click()
    assert p.locator("table.links tbody tr").count() >= 4
    assert p.locator("table.links .lock").count() == 0
    page.shoot("alice-datalink")
    p.get_by_role("button", name="Log out").click()
    p.wait_for_load_state()
    p.goto(url)
    assert p.locator(".locked").is_visible() and p.locator("header.site .who").count() == 0
    page.shoot("after-logout")


def test_service_pages_fit_a_phone(sqlite_server: LiveServer, phone_page: object) -> None:
    """At 390 px nothing of these pages needs sideways scrolling but wide tables."""
    p = phone_page.page
    for path, label in (("/adql?example=cone", "adql"), ("/tap/capabilities", "capabilities"),
                        ("/ssa", "ssa-info")):
        p.goto(sqlite_server.url + path)
        if label == "adql":
            p.locator(".result table.rows tbody tr").first.wait_for()
        width = p.evaluate("document.documentElement.scrollWidth")
        assert width <= 391, (path, width)
        phone_page.shoot(label)
