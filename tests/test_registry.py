"""SKVO as a VO publishing registry: ``/oai`` (OAI-PMH 2.0) and the coverage MOCs.

Every answer is validated with lxml against the schema documents shipped in
``resources/xsd`` (no network); the capabilities in the records are compared
with what the services publish at ``/<svc>/capabilities``; the MOCs are
checked against the targets and series TAP lists (as the administrator, who
sees the restricted ones too).
"""

from __future__ import annotations

import copy
import io
import math
import shutil
import warnings
from collections.abc import Callable

import astropy.units as u
import numpy as np
import pytest
import pyvo
import requests
from astropy.time import Time
from conftest import ADMIN, LiveServer, demo_sources, deploy
from lxml import etree
from mocpy import MOC, TimeMOC

from voservice.protocols.registry import schema

OAI = "{http://www.openarchives.org/OAI/2.0/}"
RI = "{http://www.ivoa.net/xml/RegistryInterface/v1.0}"
DC = "{http://purl.org/dc/elements/1.1/}"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
AUTHORITY = "skvo.test.example"  # [vo] authority of the test deployments (conftest)
SERVICES = ("tap", "scs", "ssa", "sia", "datalink")
EXPECTED_IDS = {f"ivo://{AUTHORITY}", f"ivo://{AUTHORITY}/registry", f"ivo://{AUTHORITY}/skvo",
                *(f"ivo://{AUTHORITY}/skvo/{s}" for s in SERVICES)}


def oai(server: LiveServer, method: str = "GET", **params: str) -> etree._Element:
    """An /oai answer: HTTP 200, XML, valid against the shipped schemas."""
    url = f"{server.url}/oai"
    r = (requests.get(url, params=params, timeout=60) if method == "GET"
         else requests.post(url, data=params, timeout=60))
    assert r.status_code == 200, r.text[:500]
    assert r.headers["Content-Type"].startswith("text/xml")
    assert b"Traceback" not in r.content
    doc = etree.fromstring(r.content)
    validator = schema()
    assert validator.validate(doc), (params, validator.error_log)
    return doc


def error_code(doc: etree._Element) -> str | None:
    error = doc.find(f"{OAI}error")
    return None if error is None else error.get("code")


def admin_tap(server: LiveServer, query: str) -> list[dict]:
    s = requests.Session()
    s.auth = ADMIN
    table = pyvo.dal.TAPService(f"{server.url}/tap", session=s).run_sync(query).to_table()
    return [{k: (v.item() if hasattr(v, "item") else str(v)) for k, v in
             zip(table.colnames, row, strict=True)} for row in table]


def test_every_verb_validates_and_lists_all_records(server: LiveServer) -> None:
    for method in ("GET", "POST"):
        ident = oai(server, method, verb="Identify").find(f"{OAI}Identify")
        assert ident.findtext(f"{OAI}baseURL") == f"{server.url}/oai"
        assert ident.findtext(f"{OAI}protocolVersion") == "2.0"
        registry = ident.find(f"{OAI}description/{RI}Resource")
        assert registry.get(XSI_TYPE) == "vg:Registry"
        assert registry.findtext("managedAuthority") == AUTHORITY
        harvest = registry.find("capability")
        assert harvest.get("standardID") == "ivo://ivoa.net/std/Registry"
        assert harvest.findtext("interface/accessURL") == f"{server.url}/oai"

        formats = oai(server, method, verb="ListMetadataFormats")
        assert {f.text for f in formats.iter(f"{OAI}metadataPrefix")} == {"ivo_vor", "oai_dc"}
        sets = oai(server, method, verb="ListSets")
        assert [s.text for s in sets.iter(f"{OAI}setSpec")] == ["ivo_managed"]

        for kwargs in ({}, {"set": "ivo_managed"}, {"from": "2000-01-01"},
                       {"until": "2999-12-31T23:59:59Z"}):
            ids = oai(server, method, verb="ListIdentifiers", metadataPrefix="ivo_vor",
                      **kwargs)
            assert {h.text for h in ids.iter(f"{OAI}identifier")} == EXPECTED_IDS
            vor = oai(server, method, verb="ListRecords", metadataPrefix="ivo_vor", **kwargs)
            resources = list(vor.iter(f"{RI}Resource"))
            assert {r.findtext("identifier") for r in resources} == EXPECTED_IDS
            assert all(h.findtext(f"{OAI}setSpec") == "ivo_managed"
                       for h in vor.iter(f"{OAI}header"))
        dc = oai(server, method, verb="ListRecords", metadataPrefix="oai_dc")
        assert {e.text for e in dc.iter(f"{DC}identifier")} == EXPECTED_IDS
        one = oai(server, method, verb="GetRecord", metadataPrefix="oai_dc",
                  identifier=f"ivo://{AUTHORITY}/skvo/ssa")
        assert one.findtext(f".//{DC}identifier") == f"ivo://{AUTHORITY}/skvo/ssa"

    # the records a datestamp range excludes are left out
    stamps = [h.findtext(f"{OAI}datestamp") for h in
              oai(server, verb="ListIdentifiers", metadataPrefix="ivo_vor").iter(f"{OAI}header")]
    newest = max(stamps)
    later = oai(server, verb="ListIdentifiers", metadataPrefix="ivo_vor", **{"from": newest})
    assert {h.findtext(f"{OAI}datestamp") for h in later.iter(f"{OAI}header")} == {newest}


def test_the_schemas_are_strict() -> None:
    """The validation above can fail: a record with its elements out of order does."""
    resource = etree.fromstring(
        b'<ri:Resource xmlns:ri="http://www.ivoa.net/xml/RegistryInterface/v1.0" '
        b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        b'xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1" xsi:type="vs:CatalogService" '
        b'created="2026-01-01T00:00:00Z" updated="2026-01-01T00:00:00Z" status="active">'
        b'<title>t</title><identifier>ivo://x.y/z</identifier><curation><publisher>p'
        b'</publisher><contact><name>n</name></contact></curation><content><subject>s'
        b'</subject><description>d</description><referenceURL>http://x.y/</referenceURL>'
        b'</content><productTypeServed>timeseries</productTypeServed></ri:Resource>')
    validator = schema()
    assert validator.validate(resource), validator.error_log
    broken = copy.deepcopy(resource)
    broken.insert(0, broken.find("identifier"))  # identifier before title
    assert not validator.validate(broken)
    unknown = copy.deepcopy(resource)
    unknown.set(XSI_TYPE, "vs:NoSuchService")
    assert not validator.validate(unknown)


def _canonical(capability: etree._Element) -> bytes:
    return etree.tostring(capability, method="c14n", exclusive=True)


def test_records_carry_the_published_capabilities(server: LiveServer) -> None:
    for svc in SERVICES:
        r = requests.get(f"{server.url}/{svc}/capabilities", timeout=60)
        assert r.status_code == 200
        published = etree.fromstring(r.content, etree.XMLParser(remove_blank_text=True))
        assert schema().validate(published), (svc, schema().error_log)
        doc = oai(server, verb="GetRecord", metadataPrefix="ivo_vor",
                  identifier=f"ivo://{AUTHORITY}/skvo/{svc}")
        resource = doc.find(f".//{RI}Resource")
        assert resource.get(XSI_TYPE) == "vs:CatalogService"
        in_record = resource.findall("capability")
        assert [_canonical(c) for c in in_record] == \
            [_canonical(c) for c in published.findall("capability")]
        products = [p.text for p in resource.findall("productTypeServed")]
        assert products == (["image"] if svc == "sia" else
                            ["timeseries", "image"] if svc == "datalink" else ["timeseries"])
        assert [s.text for s in resource.findall("content/subject")] == \
            ["light-curves", "variable-stars"]
        footprint = resource.find("coverage/footprint")
        assert footprint.text == f"{server.url}/coverage/moc.fits"
        # pyvo reads the record's capabilities as it reads a VOSI document
        wrapper = etree.Element("{http://www.ivoa.net/xml/VOSICapabilities/v1.0}capabilities",
                                nsmap=resource.nsmap)
        for capability in in_record:
            wrapper.append(copy.deepcopy(capability))
        with warnings.catch_warnings():  # pyvo does not model every ParamHTTP child
            warnings.simplefilter("ignore")
            parsed = pyvo.io.vosi.parse_capabilities(io.BytesIO(etree.tostring(wrapper)))
        assert [c.standardid for c in parsed] == [c.get("standardID") for c in in_record]
        assert parsed[0].interfaces[0].accessurls[0].content.startswith(f"{server.url}/{svc}")
    tap_record = oai(server, verb="GetRecord", metadataPrefix="ivo_vor",
                     identifier=f"ivo://{AUTHORITY}/skvo/tap")
    names = {t.findtext("name") for t in tap_record.iter("table")}
    assert {"ivoa.obscore", "skvo.target", "skvo.observation"} <= names


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_bad_requests_are_oai_errors(sqlite_server: LiveServer, method: str) -> None:
    known = f"ivo://{AUTHORITY}/skvo/tap"
    cases = [
        ({}, "badVerb"),
        ({"verb": "ListEverything"}, "badVerb"),
        ({"verb": "Identify", "color": "blue"}, "badArgument"),
        ({"verb": "ListRecords"}, "badArgument"),
        ({"verb": "GetRecord", "identifier": known}, "badArgument"),
        ({"verb": "ListRecords", "metadataPrefix": "ivo_vor", "from": "yesterday"},
         "badArgument"),
        ({"verb": "ListRecords", "metadataPrefix": "ivo_vor", "from": "2020-02-30"},
         "badArgument"),
        ({"verb": "ListRecords", "metadataPrefix": "ivo_vor", "from": "2020-01-01",
          "until": "2021-01-01T00:00:00Z"}, "badArgument"),
        ({"verb": "ListRecords", "metadataPrefix": "ivo_vor", "from": "2021-01-01",
          "until": "2020-01-01"}, "badArgument"),
        ({"verb": "ListRecords", "metadataPrefix": "ivo_vor", "resumptionToken": "x"},
         "badArgument"),
        ({"verb": "ListRecords", "resumptionToken": "x"}, "badResumptionToken"),
        ({"verb": "ListRecords", "metadataPrefix": "marc21"}, "cannotDisseminateFormat"),
        ({"verb": "GetRecord", "identifier": known, "metadataPrefix": "marc21"},
         "cannotDisseminateFormat"),
        ({"verb": "GetRecord", "identifier": f"ivo://{AUTHORITY}/nothing",
          "metadataPrefix": "ivo_vor"}, "idDoesNotExist"),
        ({"verb": "ListMetadataFormats", "identifier": "ivo://elsewhere/x"}, "idDoesNotExist"),
        ({"verb": "ListIdentifiers", "metadataPrefix": "ivo_vor", "set": "ivo_other"},
         "noRecordsMatch"),
        ({"verb": "ListIdentifiers", "metadataPrefix": "oai_dc", "until": "1999-12-31"},
         "noRecordsMatch"),
    ]
    for params, code in cases:
        doc = oai(sqlite_server, method, **params)
        assert error_code(doc) == code, (params, etree.tostring(doc)[:600])
        request = doc.find(f"{OAI}request")
        if code in ("badVerb", "badArgument"):
            assert not request.attrib  # OAI-PMH 3.6: no attributes for these
    # a repeated argument (only a query string can repeat one)
    r = requests.get(f"{sqlite_server.url}/oai?verb=Identify&verb=Identify", timeout=60)
    assert error_code(etree.fromstring(r.content)) == "badVerb"
    r = requests.get(f"{sqlite_server.url}/oai?verb=ListRecords&metadataPrefix=ivo_vor"
                     "&metadataPrefix=oai_dc", timeout=60)
    doc = etree.fromstring(r.content)
    assert schema().validate(doc) and error_code(doc) == "badArgument"


def _sky(ra: float, dec: float) -> np.ndarray:
    ra, dec = math.radians(ra), math.radians(dec)
    return np.array([math.cos(dec) * math.cos(ra), math.cos(dec) * math.sin(ra), math.sin(dec)])


def test_coverage_has_the_published_targets_and_nights(server: LiveServer, tmp_path) -> None:
    rows = admin_tap(server, "SELECT t.target_id, t.right_ascension, t.declination, o.access "
                     "FROM skvo.target AS t JOIN skvo.observation AS o "
                     "ON o.target_id = t.target_id")
    access: dict[int, set[str]] = {}
    position: dict[int, tuple[float, float]] = {}
    for row in rows:
        access.setdefault(row["target_id"], set()).add(row["access"])
        position[row["target_id"]] = (row["right_ascension"], row["declination"])
    published = [t for t, a in access.items() if a - {"restricted"}]
    hidden = [t for t, a in access.items() if a == {"restricted"}]
    assert published and hidden, "the demo tree needs open and restricted-only targets"

    r = requests.get(f"{server.url}/coverage/moc.fits", timeout=60)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/fits"
    (tmp_path / "moc.fits").write_bytes(r.content)
    moc = MOC.from_fits(tmp_path / "moc.fits")
    ra = np.array([position[t][0] for t in published])
    dec = np.array([position[t][1] for t in published])
    assert moc.contains_lonlat(ra * u.deg, dec * u.deg).all()
    # a restricted-only target far (> 1 deg) from every published one is outside
    far = [t for t in hidden if all(
        np.dot(_sky(*position[t]), _sky(*position[p])) < math.cos(math.radians(1.0))
        for p in published)]
    assert far, "no restricted-only target lies away from the published ones"
    far_ra = np.array([position[t][0] for t in far])
    far_dec = np.array([position[t][1] for t in far])
    assert not moc.contains_lonlat(far_ra * u.deg, far_dec * u.deg).any()
    # the ASCII form is the same MOC; the record's <spatial> is a coarser one around it
    text = requests.get(f"{server.url}/coverage/moc.txt", timeout=60).text
    assert MOC.from_string(text, format="ascii") == moc
    record = oai(server, verb="GetRecord", metadataPrefix="ivo_vor",
                 identifier=f"ivo://{AUTHORITY}/skvo")
    spatial = MOC.from_string(record.findtext(f".//{RI}Resource/coverage/spatial"),
                              format="ascii")
    assert spatial.contains_lonlat(ra * u.deg, dec * u.deg).all()

    series = admin_tap(server, "SELECT p.mjd_start, p.mjd_end, o.access FROM "
                       "skvo.photometry AS p JOIN skvo.observation AS o "
                       "ON o.observation_id = p.observation_id")
    shown = [(s["mjd_start"], s["mjd_end"]) for s in series if s["access"] != "restricted"]
    r = requests.get(f"{server.url}/coverage/tmoc.fits", timeout=60)
    assert r.status_code == 200
    (tmp_path / "tmoc.fits").write_bytes(r.content)
    tmoc = TimeMOC.from_fits(tmp_path / "tmoc.fits")
    middle = Time([(a + b) / 2 for a, b in shown], format="mjd", scale="utc")
    assert tmoc.contains(middle).all()
    intervals = [tuple(map(float, t.text.split())) for t in
                 record.findall(f".//{RI}Resource/coverage/temporal")]
    assert intervals and all(any(lo <= a and b <= hi for lo, hi in intervals)
                             for a, b in shown)
    assert requests.get(f"{server.url}/coverage/smoc.fits", timeout=60).status_code == 404


NASTY = ("", " ", "'", "\"", "<x/>", "&amp;", "%00", "\x00", "\x01", "\ufffe", "é", "ivo://",
         "ivo://a b", "9999-99-99", "2020-01-01T00:00:00", "2020-01-01T25:00:00Z",
         "../../etc/passwd", "x" * 5000, "ivo_vor ", "oai_dc\n", "ivo_managed:x")


def test_nasty_values_get_valid_oai_answers(sqlite_server: LiveServer) -> None:
    """Any value of any argument of any verb gets a valid OAI-PMH document, never a 500."""
    from voservice.protocols.registry import ARGUMENTS

    known = {"identifier": f"ivo://{AUTHORITY}/skvo/tap", "metadataPrefix": "ivo_vor"}
    url = f"{sqlite_server.url}/oai"
    s = requests.Session()
    n = 0
    for verb in (*ARGUMENTS, "listrecords", ""):
        required = ARGUMENTS.get(verb, (frozenset(), frozenset()))[0]
        base = {"verb": verb, **{k: known[k] for k in required}}
        for name in ("verb", "identifier", "metadataPrefix", "from", "until", "set",
                     "resumptionToken"):
            for value in NASTY:
                params = {**base, name: value}
                n += 1
                if n % 2:
                    r = s.get(url, params=params, timeout=60)
                else:
                    r = s.post(url, data=params, timeout=60)
                assert r.status_code == 200, (params, r.text[:300])
                doc = etree.fromstring(r.content)
                assert schema().validate(doc), (params, schema().error_log)
    for query in ("verb=%ff", "verb=GetRecord&metadataPrefix=ivo_vor&identifier=ivo://%ff%fe",
                  "verb=ListRecords&metadataPrefix=%c3"):
        r = s.get(f"{url}?{query}", timeout=60)
        assert r.status_code == 200, (query, r.text[:300])
        assert schema().validate(etree.fromstring(r.content)), query


def test_an_ingest_refreshes_the_coverage(tmp_path, demo_tree) -> None:
    """The MOC follows the archive: a source loaded while the server runs joins it."""
    from voservice.demo import SOURCES

    late = next(src.name for src in SOURCES if "open" in src.access)
    assert late in demo_sources(demo_tree)
    partial = tmp_path / "partial"
    shutil.copytree(demo_tree, partial)
    shutil.rmtree(partial / late)
    dep = deploy(tmp_path / "dep", partial, "sqlite:///skvo.sqlite")
    server = LiveServer(dep)
    server.start()
    try:
        def moc() -> MOC:
            r = requests.get(f"{server.url}/coverage/moc.txt", timeout=60)
            assert r.status_code == 200
            return MOC.from_string(r.text, format="ascii")

        def stamp() -> str:
            doc = oai(server, verb="GetRecord", metadataPrefix="ivo_vor",
                      identifier=f"ivo://{AUTHORITY}/skvo")
            return doc.findtext(f".//{OAI}datestamp")

        before, stamp_before = moc(), stamp()
        result = dep.skvo("ingest", str(demo_tree), check=False)
        assert result.returncode == 0, result.stderr[-2000:]
        rows = admin_tap(server, "SELECT t.right_ascension, t.declination, o.access, o.source "
                         "FROM skvo.target AS t JOIN skvo.observation AS o "
                         "ON o.target_id = t.target_id")
        def published(keep: Callable[[str], bool]) -> set[tuple[float, float]]:
            return {(r["right_ascension"], r["declination"]) for r in rows
                    if keep(r["source"]) and r["access"] != "restricted"}

        new = sorted(published(lambda source: source == late)
                     - published(lambda source: source != late))
        assert new, f"source {late} has no target published by it alone"
        ra = np.array([p[0] for p in new]) * u.deg
        dec = np.array([p[1] for p in new]) * u.deg
        after = moc()
        assert after.contains_lonlat(ra, dec).all()
        assert not before.contains_lonlat(ra, dec).all()
        assert stamp() > stamp_before
    finally:
        server.stop()
