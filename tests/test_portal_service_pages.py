"""Service pages for browsers, the VO answers for clients (plain HTTP, both databases).

A browser navigating sends ``Accept: text/html,application/xhtml+xml,...``; pyvo sends
``*/*`` and Java clients (TOPCAT, STILTS) ``text/html, image/gif, image/jpeg, */*;
q=0.2``.  Clients must get exactly what they got before (the VOSI documents only gain
the ``<?xml-stylesheet?>`` instruction), browsers get pages and named downloads.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import pytest
import requests
import sqlalchemy as sa
from astropy.io.votable import parse_single_table
from conftest import ALICE, LiveServer
from lxml import etree

from voservice.protocols.registry import schema
from voservice.stores.metadata import make_engine

BROWSER = ("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
           "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7")
#: what STILTS 3.4 (and so TOPCAT) sends: Java's default, text/html first
JAVA = "text/html, image/gif, image/jpeg, */*; q=0.2"
CLIENTS = {"pyvo": "*/*", "java": JAVA, "none": None}
PI = b'<?xml-stylesheet href="/static/xsl/vosi.xsl" type="text/xsl"?>'
SERVICES = ("tap", "scs", "ssa", "sia", "datalink")


@dataclass(frozen=True)
class Curve:
    """One light curve of the sample, read from the database."""

    uuid: str
    band: str
    target: str
    target_id: int
    night: str
    access: str
    n_points: int


def curves(server: LiveServer) -> list[Curve]:
    """Every series of the deployment, straight from its metadata database."""
    engine = make_engine(server.dep.settings().metadata_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT o.observation_uuid, b.bandpass_uid, t.target, t.target_id, o.night, "
            "o.access, p.n_points FROM observation o JOIN target t ON t.target_id = "
            "o.target_id JOIN photometry p ON p.observation_id = o.observation_id "
            "JOIN bandpass b ON b.bandpass_id = p.bandpass_id ORDER BY o.observation_id, "
            "b.bandpass_uid")).all()
    engine.dispose()
    return [Curve(*row) for row in rows]


def one(server: LiveServer, access: str) -> Curve:
    return next(c for c in curves(server) if c.access == access)


def get(server: LiveServer, path: str, accept: str | None, **kwargs: object
        ) -> requests.Response:
    headers = {"Accept": accept} if accept else {}
    session = requests.Session()
    if accept is None:
        session.headers.pop("Accept", None)
    return session.get(server.url + path, headers=headers, timeout=60, **kwargs)


def _stable(body: bytes) -> bytes:
    """A VO answer without what changes between two requests (the request time)."""
    return re.sub(rb'<INFO name="request_date"[^>]*>(</INFO>)?', b"", body)


# --------------------------------------------------------------------------
# Clients


def test_clients_get_the_vo_answers_unchanged(server: LiveServer) -> None:
    curve = one(server, "open")
    paths = ["/tap/capabilities", "/tap/tables", "/scs/capabilities", "/ssa/capabilities",
             "/sia/capabilities", "/datalink/capabilities", "/scs", "/datalink",
             "/scs?RA=282.52&DEC=33.363&SR=1", "/ssa?REQUEST=queryData&POS=282.52,33.363"
             "&SIZE=0.1", f"/datalink?ID=ivo://skvo.test.example/skvo?{curve.uuid}",
             f"/lightcurve/{curve.uuid}/{curve.band}", f"/lightcurve/star/{curve.target_id}"
             f"/{curve.band}"]
    for path in paths:
        answers = {name: get(server, path, accept) for name, accept in CLIENTS.items()}
        for name, r in answers.items():
            assert r.status_code in (200, 400), (path, name, r.status_code)
            assert "html" not in r.headers["Content-Type"], (path, name)
            assert "Content-Disposition" not in r.headers, (path, name)
            assert b"<html" not in r.content.lower(), (path, name)
        bodies = {_stable(r.content) for r in answers.values()}
        assert len(bodies) == 1, path
    # the light curve is the VOTable it always was
    r = get(server, f"/lightcurve/{curve.uuid}/{curve.band}", JAVA)
    assert len(parse_single_table(io.BytesIO(r.content)).array) == curve.n_points
    # /tap stays the page it was for clients
    assert get(server, "/tap", "*/*").text.count("<li>") == 4


def test_vosi_documents_carry_the_stylesheet_and_stay_valid(server: LiveServer) -> None:
    validator = schema()
    for svc in SERVICES:
        r = get(server, f"/{svc}/capabilities", "*/*")
        assert r.headers["Content-Type"].startswith("text/xml")
        lines = r.content.splitlines()
        assert lines[0].startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
        assert lines[1] == PI, svc
        doc = etree.fromstring(r.content)
        assert validator.validate(doc), (svc, validator.error_log)
        assert doc.getprevious().target == "xml-stylesheet"
    for path in ("/tap/tables", "/tap/availability", "/tap/tables/ivoa.obscore"):
        r = get(server, path, "*/*")
        assert r.content.splitlines()[1] == PI, path
        etree.fromstring(r.content)  # well-formed
    xsl = get(server, "/static/xsl/vosi.xsl", "*/*")
    assert xsl.status_code == 200
    etree.XSLT(etree.fromstring(xsl.content))  # a stylesheet lxml compiles


# --------------------------------------------------------------------------
# Browsers


def test_browsers_get_info_pages(server: LiveServer) -> None:
    for svc in SERVICES:
        r = get(server, f"/{svc}", BROWSER)
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith("text/html")
        assert "Accept" in r.headers.get("Vary", "")
        page = r.text
        assert f'href="{server.url}/{svc}/capabilities"' in page, svc
        assert f'href="{server.url}/{svc}/availability"' in page, svc
    tap = get(server, "/tap", BROWSER).text
    assert 'href="/adql"' in tap and f'href="{server.url}/tap/examples"' in tap
    # a query with parameters is answered as before, also to a browser
    r = get(server, "/scs?RA=282.52&DEC=33.363&SR=1", BROWSER)
    assert "votable" in r.headers["Content-Type"]
    assert r.headers["Content-Disposition"] == 'attachment; filename="scs-result.vot"'


def test_browsers_read_vosi_through_the_stylesheet(server: LiveServer) -> None:
    caps = get(server, "/tap/capabilities", BROWSER)
    assert caps.headers["Content-Type"].startswith("text/html")
    assert "Table Access Protocol (TAP)" in caps.text
    assert "Output formats" in caps.text and "text/csv;header=present" in caps.text
    assert f'<a href="{server.url}/tap/tables">' in caps.text
    tables = get(server, "/tap/tables", BROWSER).text
    assert 'id="ivoa.obscore"' in tables and "<code>s_region</code>" in tables
    avail = get(server, "/tap/availability", BROWSER).text
    assert 'class="up">Available' in avail
    scs = get(server, "/scs/capabilities", BROWSER).text
    assert "Simple Cone Search" in scs and "<code>RA</code>" in scs


def test_tap_examples_have_run_links(server: LiveServer) -> None:
    page = get(server, "/tap/examples", "*/*").text
    ids = re.findall(r'typeof="example" id="([^"]+)"', page)
    assert ids and all(f'href="/adql?example={i}"' in page for i in ids)
    form = get(server, f"/adql?example={ids[0]}", BROWSER)
    assert form.status_code == 200 and 'data-autorun="1"' in form.text
    assert "CONTAINS(POINT(" in form.text  # the example's query in the box


def test_downloads_get_a_file_name(server: LiveServer) -> None:
    curve = one(server, "open")
    base = f"/lightcurve/{curve.uuid}/{curve.band}"
    stem = f"{curve.target}-{curve.band}-{curve.night}"
    for fmt, ext in (("votable", "vot"), ("csv", "csv"), ("json", "json"), ("fits", "fits")):
        r = get(server, f"{base}?RESPONSEFORMAT={fmt}", BROWSER)
        assert r.status_code == 200
        assert r.headers["Content-Disposition"] == f'attachment; filename="{stem}.{ext}"'
        # the same bytes as a client's (but the request time)
        client = get(server, f"{base}?RESPONSEFORMAT={fmt}", "*/*")
        if fmt in ("votable", "csv"):
            assert _stable(r.content) == _stable(client.content)
    star = get(server, f"/lightcurve/star/{curve.target_id}/{curve.band}?RESPONSEFORMAT="
               "votable", BROWSER)
    assert star.headers["Content-Disposition"] == \
        f'attachment; filename="{curve.target}-{curve.band}.vot"'
    sync = requests.post(f"{server.url}/tap/sync", headers={"Accept": BROWSER}, timeout=60,
                         data={"LANG": "ADQL", "QUERY": "SELECT TOP 3 target FROM skvo.target",
                               "RESPONSEFORMAT": "csv"})
    assert sync.headers["Content-Disposition"] == 'attachment; filename="tap-result.csv"'
    assert len(sync.text.splitlines()) == 4
    # previews and frames stay inline images
    png = get(server, f"{base}/preview.png", BROWSER)
    assert png.headers["Content-Type"] == "image/png" and "Content-Disposition" not in png.headers


def test_browsers_get_light_curve_and_datalink_pages(server: LiveServer) -> None:
    curve = one(server, "open")
    r = get(server, f"/lightcurve/{curve.uuid}/{curve.band}", BROWSER)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert f"{curve.target} on {curve.night} in {curve.band}" in r.text
    assert f"/lightcurve/{curve.uuid}/{curve.band}?RESPONSEFORMAT=csv" in r.text
    assert 'class="preview"' in r.text
    did = f"ivo://skvo.test.example/skvo?{curve.uuid}"
    links = get(server, f"/datalink?ID={did}", BROWSER)
    assert links.headers["Content-Type"].startswith("text/html")
    assert f'href="{server.url}/lightcurve/{curve.uuid}/{curve.band}"' in links.text
    # on_demand data: the page says why and offers the login, no plot, no points
    locked = one(server, "on_demand")
    r = get(server, f"/lightcurve/{locked.uuid}/{locked.band}", BROWSER)
    assert r.status_code == 200 and "log in" in r.text and 'class="preview"' not in r.text
    assert "RESPONSEFORMAT=json" not in r.text
    # restricted data do not exist for an anonymous visitor: nothing names the star
    hidden = one(server, "restricted")
    for path in (f"/lightcurve/{hidden.uuid}/{hidden.band}", f"/lightcurve/{hidden.uuid}"):
        r = get(server, path, BROWSER)
        assert r.status_code == 404 and hidden.target not in r.text, path
    r = get(server, f"/datalink?ID=ivo://skvo.test.example/skvo?{hidden.uuid}", BROWSER)
    assert "NotFoundFault" in r.text and hidden.target not in r.text
    # a logged-in ALICE (HTTP Basic here) gets the restricted page
    r = get(server, f"/lightcurve/{hidden.uuid}/{hidden.band}", BROWSER, auth=ALICE)
    assert r.status_code == 200 and hidden.target in r.text


@pytest.mark.parametrize("accept", [BROWSER, JAVA])
def test_dali_errors_stay_dali_errors(sqlite_server: LiveServer, accept: str) -> None:
    r = requests.get(f"{sqlite_server.url}/tap/sync", params={"LANG": "ADQL",
                     "QUERY": "SELECT nope FROM skvo.target"}, headers={"Accept": accept},
                     timeout=60)
    assert r.status_code == 400
    assert r.headers["Content-Type"].startswith("application/x-votable+xml")
    assert b'name="QUERY_STATUS" value="ERROR"' in r.content
