"""Attack test: every route and parameter, fuzzed over HTTP against the live servers.

Two layers, both against ``skvo serve`` on SQLite and on MariaDB:

- a fixed sweep: each parameter of each endpoint gets every value of
  :data:`NASTY` (huge and non-finite numbers, NUL, unicode, empty, very long
  values); the findings that were fixed stay fixed;
- hypothesis with a fixed budget (:data:`BUDGET`, smaller on MariaDB): random
  and grammar-ish values, repeated parameters, names in any case, GET and POST.

Invariants of every answer (:func:`check`): never a 5xx, never a stack trace,
a database message or a failure the server logged (``FatalFault``),
well-formed XML when the type says XML, DALI error VOTables
(``QUERY_STATUS=ERROR``) with a 4xx status where DALI applies (TAP sync, SIA,
light curves, DataLink) and with 200 where the older standards want it (SCS,
SSA), and a body that is read to its end (a stream that breaks off half-way
is a 500 the status line did not show).
"""

from __future__ import annotations

import os
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import pytest
import requests
import sqlalchemy as sa
from conftest import ALICE, LiveServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from voservice.catalog import publisher_did
from voservice.stores.metadata import make_engine

#: texts no answer may contain (a stack trace or a database driver's message)
TRACE_MARKERS = ("Traceback", 'File "', "sqlalchemy", "pymysql", "MySQLdb", "sqlite3.",
                 "OperationalError", "ProgrammingError", "IntegrityError",
                 # a bad value that reached the database (SSA and SCS say so with HTTP 200)
                 "FatalFault", "the error is logged", "internal error of the service")
#: examples per hypothesis test on SQLite; MariaDB gets a quarter
BUDGET = int(os.environ.get("SKVO_FUZZ_EXAMPLES", "60"))
#: longest value sent in a query string (longer ones are POSTed: gunicorn's request line
#: limit of 4094 bytes is not the service's)
GET_LIMIT = 1500
#: SKVO_FUZZ_RANDOM=1: new examples on every run (default: the same ones, reproducibly)
RANDOM = os.environ.get("SKVO_FUZZ_RANDOM", "") == "1"

NASTY_NUMBERS = ("1e309", "-1e309", "99999999999999999999999", "-99999999999999999999999",
                 "9223372036854775808", "-0", "nan", "-nan", "inf", "-inf", "+inf",
                 "Infinity", "1e-400", "0x10", "1_000", "1" * 400, "-1", "0", "1e308")
#: numbers, ranges and shapes: for the parameters in NUMERIC
NASTY_NUMERIC = NASTY_NUMBERS + (
    "1/", "/1", "1/0", "nan/nan", "inf/inf", "1e309/1e310", "-1e308/1e308", "1e20/1e21",
    "-inf/inf", "inf -inf", "-inf inf", "1e308 1e308", "nan 1", "inf,0", "10,1e309", "1,2;GALACTIC",
    "CIRCLE 1e309 0 1", "CIRCLE nan 0 1", "CIRCLE 10 20 inf", "RANGE -inf inf -inf inf",
    "RANGE 1e309 1e309 0 0", "RANGE nan 1 0 1", "POLYGON 0 0 0 0 0 0",
    "POLYGON 1e308 0 -1e308 0 0 90", "POLYGON 0 0 1 1 2 nan",
    "9999-12-31T23:59:59/10000-01-01", "0001-01-01/0001-01-02", "2018-13-45",
)
#: for every parameter
NASTY_TEXT = ("", " ", "\x00", "a\x00b", "é漢😀", "x" * 20000, "'; DROP TABLE observation;--",
              "%", ",", ";", "1e309")
NASTY = NASTY_NUMERIC + NASTY_TEXT
#: the parameters that take numbers, ranges or shapes
NUMERIC = frozenset({"MAXREC", "RA", "DEC", "SR", "VERB", "POS", "SIZE", "BAND", "TIME", "TOP",
                     "EXPTIME", "FOV", "CALIB", "SPATRES", "SPECRP", "TIMERES", "PERIOD",
                     "EPOCH", "BIN", "LAST", "ID"})


@dataclass(frozen=True)
class Ids:
    """Real identifiers of the deployment, so that fuzzing reaches past the lookups."""

    authority: str
    uuids: tuple[str, ...]  # open observations
    bands: tuple[str, ...]
    frames: tuple[int, ...]
    sources: tuple[str, ...]
    target: int = 0  # the target of the first open observation (a star curve)

    def star_did(self) -> str:
        """Publisher DID of the first open observation's star curve."""
        return f"ivo://{self.authority}/skvo?star/{self.target}/{self.bands[0]}"

    def dids(self) -> list[str]:
        """Publisher DIDs of the open observations."""
        return [publisher_did(self.authority, u) for u in self.uuids]


def deployment_ids(server: LiveServer) -> Ids:
    """Open observations, their bandpasses and frames, read from the metadata database."""
    settings_ = server.dep.settings()
    engine = make_engine(settings_.metadata_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT o.observation_uuid, b.bandpass_uid, o.target_id FROM observation o "
            "JOIN photometry p ON p.observation_id = o.observation_id "
            "JOIN bandpass b ON b.bandpass_id = p.bandpass_id "
            "WHERE o.access = 'open' ORDER BY o.observation_id")).all()
        frames = conn.execute(sa.text(
            "SELECT f.frame_id FROM frame f JOIN photometry p ON p.photometry_id = f.photometry_id "
            "JOIN observation o ON o.observation_id = p.observation_id "
            "WHERE o.access = 'open' ORDER BY f.frame_id")).scalars().all()
        sources = conn.execute(sa.text(
            "SELECT DISTINCT source FROM observation ORDER BY source")).scalars().all()
    engine.dispose()
    assert rows and frames, "the sample data must hold open series with frames"
    return Ids(settings_.get("vo", "authority"), tuple(r[0] for r in rows[:5]),
               tuple(r[1] for r in rows[:5]), tuple(frames[:3]), tuple(sources), rows[0][2])


@pytest.fixture(scope="module")
def sqlite_ids(sqlite_server: LiveServer) -> Ids:
    """Identifiers of the SQLite deployment."""
    return deployment_ids(sqlite_server)


@pytest.fixture(scope="module")
def mariadb_ids(mariadb_server: LiveServer) -> Ids:
    """Identifiers of the MariaDB deployment."""
    return deployment_ids(mariadb_server)


@pytest.fixture(params=["sqlite", "mariadb"])
def target(request: pytest.FixtureRequest) -> tuple[LiveServer, Ids, int]:
    """(server, its identifiers, hypothesis budget) for each database."""
    server = request.getfixturevalue(f"{request.param}_server")
    ids = request.getfixturevalue(f"{request.param}_ids")
    return server, ids, BUDGET if request.param == "sqlite" else max(10, BUDGET // 4)


# --------------------------------------------------------------------------
# Sending and checking


Pairs = Sequence[tuple[str, str | bytes]]


@dataclass(frozen=True)
class Kind:
    """What standard an endpoint's errors follow."""

    dali: bool = False  # 4xx with an error VOTable
    status_200: bool = False  # SCS 1.03 / SSA 1.1: errors are VOTables with HTTP 200
    plain_404: bool = False  # unknown resources: a plain-text 404 is fine


DALI = Kind(dali=True)
DALI_RESOURCE = Kind(dali=True, plain_404=True)
OLD_DAL = Kind(status_200=True)
OTHER = Kind()


def send(s: requests.Session, method: str, url: str, pairs: Pairs) -> requests.Response:
    """A request with the parameters in the query string (GET) or the form (POST)."""
    body = urlencode(list(pairs), quote_via=quote)
    if method == "GET" and len(body) > GET_LIMIT:
        method = "POST"
    if method == "POST":
        return s.post(url, data=body, allow_redirects=False, timeout=120,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    return s.request(method, url + ("?" + body if body else ""), allow_redirects=False,
                     timeout=120)


def query_status(body: bytes) -> str | None:
    """The QUERY_STATUS of a VOTable (None if it has none or is no VOTable)."""
    try:
        root = etree.fromstring(body)
    except etree.XMLSyntaxError:
        return None
    info = root.find(".//{*}INFO[@name='QUERY_STATUS']")
    return None if info is None else info.get("value")


def check(response: requests.Response, kind: Kind, sent: Pairs = ()) -> None:
    """The invariants every answer keeps (see the module docstring)."""
    what = f"{response.request.method} {response.url[:300]} -> {response.status_code}"
    body = response.content  # reads the whole stream: a broken stream raises here
    assert response.status_code < 500, f"{what}: {body[:500]!r}"
    echoed = " ".join(v if isinstance(v, str) else v.decode("utf-8", "replace")
                      for _, v in sent) + response.url
    text = body.decode("utf-8", "replace")
    for marker in TRACE_MARKERS:
        if marker not in echoed:
            assert marker not in text, f"{what}: {marker!r} in {text[:800]!r}"
    mime = response.headers.get("Content-Type", "")
    if "xml" in mime and body:
        try:
            etree.fromstring(body)
        except etree.XMLSyntaxError as exc:
            raise AssertionError(f"{what}: {mime} that is not XML ({exc}): {body[:500]!r}"
                                 ) from None
    status = response.status_code
    if kind.dali and 400 <= status < 500 and not (kind.plain_404 and status == 404):
        assert mime.startswith("application/x-votable+xml"), f"{what}: {mime}: {text[:300]}"
        assert query_status(body) == "ERROR", f"{what}: {text[:500]}"
    if kind.status_200:
        assert status in (200, 303), f"{what}: {text[:500]}"


# --------------------------------------------------------------------------
# The endpoints and their parameters


@dataclass(frozen=True)
class Endpoint:
    """A URL (built from the deployment's ids), its methods, parameters and error kind."""

    name: str
    url: Callable[[Ids], str]
    params: tuple[str, ...]
    kind: Kind
    methods: tuple[str, ...] = ("GET", "POST")
    base: tuple[tuple[str, str], ...] = ()


ENDPOINTS = (
    Endpoint("tap_sync", lambda i: "/tap/sync",
             ("LANG", "QUERY", "FORMAT", "RESPONSEFORMAT", "MAXREC", "RUNID", "UPLOAD",
              "REQUEST"), DALI,
             base=(("REQUEST", "doQuery"), ("LANG", "ADQL"),
                   ("QUERY", "SELECT TOP 3 obs_id, s_ra FROM ivoa.obscore"))),
    Endpoint("scs", lambda i: "/scs", ("RA", "DEC", "SR", "VERB", "MAXREC", "RESPONSEFORMAT"),
             OLD_DAL, base=(("RA", "47.04"), ("DEC", "40.96"), ("SR", "1"))),
    Endpoint("ssa", lambda i: "/ssa",
             ("POS", "SIZE", "BAND", "TIME", "FORMAT", "REQUEST", "MAXREC", "TOP", "TARGETNAME",
              "COLLECTION", "PUBDID", "RESPONSEFORMAT"), OLD_DAL,
             base=(("REQUEST", "queryData"), ("POS", "47.04,40.96"), ("SIZE", "2"))),
    Endpoint("sia", lambda i: "/sia/query",
             ("POS", "BAND", "TIME", "ID", "COLLECTION", "MAXREC", "EXPTIME", "FOV", "CALIB",
              "SPATRES", "SPECRP", "TIMERES", "FACILITY", "INSTRUMENT", "DPTYPE", "TARGET",
              "FORMAT", "POL", "RESPONSEFORMAT"), DALI),
    Endpoint("sia_short", lambda i: "/sia", ("POS", "MAXREC", "TIME"), DALI),
    Endpoint("datalink", lambda i: "/datalink", ("ID", "RESPONSEFORMAT"), DALI),
    Endpoint("lightcurve", lambda i: f"/lightcurve/{i.uuids[0]}/{quote(i.bands[0], safe='')}",
             ("TIME", "PERIOD", "EPOCH", "BIN", "MAXREC", "FORMAT", "RESPONSEFORMAT", "BAND"),
             DALI_RESOURCE),
    Endpoint("multiband", lambda i: f"/lightcurve/{i.uuids[0]}",
             ("TIME", "PERIOD", "EPOCH", "BIN", "MAXREC", "BAND", "RESPONSEFORMAT"),
             DALI_RESOURCE),
    Endpoint("preview", lambda i: f"/lightcurve/{i.uuids[0]}/{quote(i.bands[0], safe='')}"
             "/preview.png", ("TIME", "MAXREC"), DALI_RESOURCE),
    Endpoint("star", lambda i: f"/lightcurve/star/{i.target}/{quote(i.bands[0], safe='')}",
             ("TIME", "PERIOD", "EPOCH", "BIN", "MAXREC", "CALIB", "TIMEREF", "RESPONSEFORMAT"),
             DALI_RESOURCE),
    Endpoint("star_bands", lambda i: f"/lightcurve/star/{i.target}",
             ("TIME", "PERIOD", "BIN", "MAXREC", "BAND", "CALIB", "TIMEREF", "RESPONSEFORMAT"),
             DALI_RESOURCE),
    Endpoint("star_preview", lambda i: f"/lightcurve/star/{i.target}/"
             f"{quote(i.bands[0], safe='')}/preview-folded.png", ("PERIOD", "EPOCH"),
             DALI_RESOURCE),
    Endpoint("periodogram", lambda i: f"/analysis/periodogram?ID={quote(i.star_did(), safe='')}",
             ("ID", "METHOD", "MINPERIOD", "MAXPERIOD", "OVERSAMPLE", "NTERMS", "NPEAKS", "BAND",
              "TIME", "CALIB", "TIMEREF", "TABLE", "RESPONSEFORMAT"), DALI_RESOURCE,
             base=(("MAXPERIOD", "2"),)),
    Endpoint("oc", lambda i: f"/analysis/oc?ID={quote(i.star_did(), safe='')}",
             ("ID", "BAND", "TYPE", "RESPONSEFORMAT"), DALI_RESOURCE),
    Endpoint("coverage", lambda i: "/coverage/moc.json", ("X",), OTHER, ("GET", "HEAD")),
    Endpoint("frame", lambda i: f"/frame/{i.frames[0]}", ("X",), OTHER, ("GET", "HEAD")),
    Endpoint("resolve", lambda i: "/resolve", ("NAME", "RESPONSEFORMAT"), DALI_RESOURCE,
             base=(("NAME", "beta Lyr"),)),
    Endpoint("tap_tables", lambda i: "/tap/tables", ("DETAIL",), OTHER),
    Endpoint("tap_async_list", lambda i: "/tap/async", ("PHASE", "AFTER", "LAST"), OTHER,
             ("GET",)),
    Endpoint("home", lambda i: "/", ("X",), OTHER, ("GET", "HEAD")),
    Endpoint("tap_home", lambda i: "/tap", ("X",), OTHER, ("GET", "HEAD")),
    Endpoint("tap_examples", lambda i: "/tap/examples", ("X",), OTHER, ("GET", "HEAD")),
)
#: VOSI documents: GET answers, other methods are refused, never failed
VOSI = ("/tap/capabilities", "/tap/availability", "/tap/tables", "/datalink/capabilities",
        "/datalink/availability", "/scs/capabilities", "/scs/availability",
        "/ssa/capabilities", "/ssa/availability", "/sia/capabilities", "/sia/availability")

#: every route of the application, as Flask names it; test_every_route_is_fuzzed keeps
#: this list (and so the fuzzing) complete
ROUTES = {
    "/", "/tap", "/tap/sync", "/tap/capabilities", "/tap/availability", "/tap/tables",
    "/tap/tables/<path:name>", "/tap/examples", "/tap/async", "/tap/async/<job_id>",
    "/tap/async/<job_id>/phase", "/tap/async/<job_id>/executionduration",
    "/tap/async/<job_id>/destruction", "/tap/async/<job_id>/quote",
    "/tap/async/<job_id>/owner", "/tap/async/<job_id>/error", "/tap/async/<job_id>/parameters",
    "/tap/async/<job_id>/parameters/<path:name>", "/tap/async/<job_id>/results",
    "/tap/async/<job_id>/results/<result_id>", "/scs", "/scs/capabilities",
    "/scs/availability", "/ssa", "/ssa/capabilities", "/ssa/availability", "/sia",
    "/sia/query", "/sia/capabilities", "/sia/availability", "/datalink",
    "/datalink/capabilities", "/datalink/availability", "/lightcurve/<uuid>",
    "/lightcurve/<uuid>/<path:bandpass_uid>", "/frame/<int:frame_id>",
    "/static/<path:filename>", "/resolve", "/lightcurve/star/<int:target_id>",
    "/lightcurve/star/<int:target_id>/<path:bandpass_uid>", "/analysis/periodogram",
    "/analysis/oc", "/oai", "/coverage/<kind>.<ext>",  # /oai: fuzzed in test_registry.py
    # the portal's pages and JSON: fuzzed in test_portal_api.py
    "/favicon.ico", "/search", "/star/<int:target_id>", "/star/<path:name>",
    "/star/<int:target_id>/frames", "/portal/api/sky", "/portal/api/star/<int:target_id>/curve",
    "/portal/vendor/<name>",
    # the service pages and browser login: fuzzed in test_portal_service_fuzz.py
    "/adql", "/login", "/logout",
    # the original SKVO's JSON API: fuzzed in test_seed_api.py
    "/api/", "/api/photometry/lookup/", "/api/photometry/lookup/<path:rest>",
    "/api/photometry/aref/", "/api/photometry/metadata/", "/api/<path:rest>",
}


def test_every_route_is_fuzzed(sqlite_server: LiveServer) -> None:
    """A new route must join the fuzzing (add it to ROUTES and to a test here)."""
    from voservice.app import create_app

    app = create_app(sqlite_server.dep.settings())
    assert {rule.rule for rule in app.url_map.iter_rules()} == ROUTES


# --------------------------------------------------------------------------
# The fixed sweep


def test_every_parameter_survives_the_nasty_values(target: tuple[LiveServer, Ids, int]) -> None:
    server, ids, _budget = target
    s = requests.Session()
    failures: list[str] = []
    for endpoint in ENDPOINTS:
        url = server.url + endpoint.url(ids)
        for name in endpoint.params:
            for value in NASTY if name in NUMERIC else NASTY_TEXT:
                pairs = [*[(k, v) for k, v in endpoint.base if k != name], (name, value)]
                method = endpoint.methods[len(value) % len(endpoint.methods)]
                try:
                    check(send(s, method, url, pairs), endpoint.kind, pairs)
                except (AssertionError, requests.RequestException) as exc:
                    failures.append(f"{endpoint.name} {name}={value[:40]!r}: {str(exc)[:300]}")
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures)


def test_paths_survive_the_nasty_values(target: tuple[LiveServer, Ids, int]) -> None:
    """Identifiers in the path: unknown, huge, NUL, traversal, unicode."""
    server, ids, _budget = target
    s = requests.Session()
    uuid, band = ids.uuids[0], quote(ids.bands[0], safe="")
    pieces = ["x", "%00", "..%2F..%2Fetc%2Fpasswd", "%F0%9F%98%80", "%FF%FE", "a" * 3000,
              "99999999999999999999", "9223372036854775807", "9223372036854775808", "-1", "0",
              "1e309", "nan", "%20", "preview.png", "..", "."]
    for piece in pieces:
        for path, kind in (
            (f"/frame/{piece}", OTHER), (f"/lightcurve/{piece}", DALI_RESOURCE),
            (f"/lightcurve/{piece}/{band}", DALI_RESOURCE),
            (f"/lightcurve/{uuid}/{piece}", DALI_RESOURCE),
            (f"/lightcurve/{uuid}/{piece}/preview.png", DALI_RESOURCE),
            (f"/lightcurve/{piece}/{piece}/preview.png", DALI_RESOURCE),
            (f"/tap/tables/{piece}", OTHER), (f"/tap/async/{piece}", OTHER),
            (f"/tap/async/{piece}/phase", OTHER), (f"/tap/async/{piece}/results/{piece}", OTHER),
            (f"/tap/async/{piece}/parameters/{piece}", OTHER), (f"/static/{piece}", OTHER),
        ):
            check(s.get(server.url + path, allow_redirects=False, timeout=60), kind)
    for path in VOSI:
        for method in ("GET", "HEAD", "POST", "PUT", "DELETE"):
            check(s.request(method, server.url + path, params={"DETAIL": "\x00"},
                            allow_redirects=False, timeout=60), OTHER)


# --------------------------------------------------------------------------
# Hypothesis: values


def _fmt_float(x: float) -> str:
    return repr(x)


def numbers() -> st.SearchStrategy[str]:
    """Numbers as clients and attackers write them."""
    return st.one_of(
        st.sampled_from(NASTY_NUMBERS),
        st.floats(allow_nan=True, allow_infinity=True).map(_fmt_float),
        st.floats(-400, 400).map(lambda x: f"{x:.6g}"),
        st.integers(-(10**30), 10**30).map(str),
        st.integers(-5, 10).map(str),
    )


def texts() -> st.SearchStrategy[str]:
    """Any text (no lone surrogates: they cannot travel as UTF-8), NUL included."""
    return st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)


def long_values() -> st.SearchStrategy[str]:
    return st.builds(lambda c, n: c * n, st.sampled_from(["9", "x", "\x00", "é", ",", " "]),
                     st.integers(1000, 30000))


def raw_bytes() -> st.SearchStrategy[bytes]:
    """Bytes that are no UTF-8 (percent-encoded as they are)."""
    return st.binary(max_size=20)


def sep_join(items: st.SearchStrategy[str], sep: str, lo: int, hi: int
             ) -> st.SearchStrategy[str]:
    return st.lists(items, min_size=lo, max_size=hi).map(sep.join)


def positions() -> st.SearchStrategy[str]:
    """SIA 2.0 POS shapes (and broken ones)."""
    return st.one_of(
        st.builds(lambda a: "CIRCLE " + a, sep_join(numbers(), " ", 2, 4)),
        st.builds(lambda a: "RANGE " + a, sep_join(numbers(), " ", 3, 5)),
        st.builds(lambda a: "POLYGON " + a, sep_join(numbers(), " ", 4, 10)),
        st.builds(lambda s, a: f"{s} {a}", st.sampled_from(["circle", "BOX", "POINT", ""]),
                  sep_join(numbers(), " ", 0, 4)),
    )


ADQL_TABLES = ("ivoa.obscore", "skvo.target", "skvo.observation", "skvo.photometry",
               "skvo.frame", "skvo.bandpass", "TAP_SCHEMA.tables", "TAP_UPLOAD.t", "nowhere")
ADQL_COLUMNS = ("*", "s_ra", "obs_id", "target", "observation_id", "COUNT(*)", "t_min",
                "right_ascension", "1", "NULL", "declination", "MAX(observation_id)")


def adql() -> st.SearchStrategy[str]:
    """Grammar-ish ADQL: mostly well formed, with nasty literals and random tails."""
    literal = st.one_of(numbers(), texts().map(lambda t: "'" + t.replace("'", "''") + "'"))
    predicate = st.one_of(
        st.builds(lambda c, op, v: f"{c} {op} {v}", st.sampled_from(ADQL_COLUMNS[1:]),
                  st.sampled_from(["=", "<", ">=", "<>", "LIKE", "+", "/"]), literal),
        st.builds(lambda a, b, c: f"1 = CONTAINS(POINT('ICRS', s_ra, s_dec), "
                                  f"CIRCLE('ICRS', {a}, {b}, {c}))", numbers(), numbers(),
                  numbers()),
        st.builds(lambda a: f"DISTANCE(POINT('ICRS', 0, 0), POINT('ICRS', {a}, {a})) < 1",
                  numbers()),
        texts(),
    )
    query = st.builds(
        lambda top, cols, table, where, tail: (
            f"SELECT {top} {', '.join(cols)} FROM {table}"
            + (f" WHERE {where}" if where else "") + tail),
        st.one_of(st.just(""), numbers().map(lambda n: f"TOP {n}")),
        st.lists(st.sampled_from(ADQL_COLUMNS), min_size=1, max_size=3),
        st.sampled_from(ADQL_TABLES),
        st.one_of(st.none(), predicate),
        st.one_of(st.just(""), st.sampled_from([" ORDER BY 1", " OFFSET 99999999999999999999",
                                                " GROUP BY 1", " UNION SELECT 1", ";", " --"]),
                  texts()),
    )
    return st.one_of(query, texts(), long_values())


def uploads() -> st.SearchStrategy[str]:
    """UPLOAD values; URLs only to loopback (no traffic leaves the machine)."""
    name = st.text(string.ascii_letters + "_0" + "é\x00 ", min_size=0, max_size=8)
    uri = st.one_of(name.map(lambda n: "param:" + n),
                    st.sampled_from(["http://127.0.0.1:1/x.vot", "file:///etc/passwd",
                                     "ftp://127.0.0.1/x", "param:", "", "gopher://127.0.0.1/"]))
    return st.one_of(sep_join(st.builds(lambda n, u: f"{n},{u}", name, uri), ";", 1, 3),
                     texts().filter(lambda t: "://" not in t))


def values_for(name: str, ids: Ids) -> st.SearchStrategy[str | bytes]:
    """Values of one parameter: its own grammar-ish forms and anything at all."""
    dids = ids.dids()
    own: dict[str, st.SearchStrategy[str]] = {
        "LANG": st.sampled_from(["ADQL", "ADQL-2.0", "adql-2.1", "PQL", "SQL", ""]),
        "QUERY": adql(),
        "REQUEST": st.sampled_from(["doQuery", "queryData", "getData", "getCapabilities",
                                    "DOQUERY", ""]),
        "FORMAT": st.sampled_from(["votable", "csv", "all", "metadata", "fits", "graphic",
                                   "text/xml", "application/x-votable+xml", "native,metadata",
                                   "image/png", "*/*"]),
        "RESPONSEFORMAT": st.sampled_from(
            ["votable", "votable/td", "votable/b", "votable/b2", "csv", "tsv", "json", "fits",
             "text/csv;header=absent", "application/x-votable+xml;serialization=FOO",
             "application/x-votable+xml;serialization=TABLEDATA", "text/html", "x"]),
        "UPLOAD": uploads(),
        "POS": st.one_of(positions(), sep_join(numbers(), ",", 1, 3),
                         st.builds(lambda p, f: f"{p};{f}", sep_join(numbers(), ",", 2, 2),
                                   st.sampled_from(["ICRS", "GALACTIC", "", "fk5"]))),
        "BAND": st.one_of(sep_join(numbers(), "/", 1, 2), sep_join(numbers(), " ", 1, 3),
                          st.sampled_from(["V", "johnson.v", "sdss.g,johnson.b", "5e-7/6e-7"])),
        "TIME": st.one_of(sep_join(numbers(), "/", 1, 3), sep_join(numbers(), " ", 1, 3),
                          st.sampled_from(["2018-01-01/2018-02-01", "2018-01-01T00:00:00Z/",
                                           "9999-12-31/", "58100/58200", "58100 58200"])),
        "ID": st.one_of(st.sampled_from(dids),
                        st.builds(lambda d, n: f"{d}/frame/{n}", st.sampled_from(dids),
                                  numbers())),
        "PUBDID": st.sampled_from(dids),
        "COLLECTION": st.sampled_from(ids.sources),
        "TARGETNAME": st.sampled_from(["Algol", "bet_Lyr", "l_Car", "*", "%"]),
        "DETAIL": st.sampled_from(["min", "max", "MAX", ""]),
        "PHASE": st.sampled_from(["RUN", "ABORT", "PENDING", "COMPLETED", "ARCHIVED", "run"]),
        "AFTER": st.sampled_from(["2018-01-01T00:00:00Z", "9999-12-31T23:59:59",
                                  "0001-01-01", "2018-02-30T00:00:00"]),
        "DESTRUCTION": st.sampled_from(["2030-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z",
                                        "0001-01-01T00:00:00", "1970-01-01"]),
        "ACTION": st.sampled_from(["DELETE", "delete", "RUN"]),
    }
    anything: list[st.SearchStrategy[str | bytes]] = [
        numbers(), texts(), st.sampled_from(NASTY), raw_bytes()]
    if name in own:
        return st.one_of(own[name], own[name], *anything)
    return st.one_of(*anything)


def case_of(name: str) -> st.SearchStrategy[str]:
    """A parameter name in any case (DALI names are case-insensitive)."""
    return st.sampled_from([name, name.lower(), name.title()])


def request_pairs(names: Sequence[str], ids: Ids, base: Sequence[tuple[str, str]] = ()
                  ) -> st.SearchStrategy[list[tuple[str, str | bytes]]]:
    """Parameters of one request: the endpoint's own (repeated at times), some unknown."""
    one = st.sampled_from(list(names)).flatmap(
        lambda n: st.tuples(case_of(n), values_for(n, ids)))
    unknown = st.tuples(texts(), texts())
    pairs = st.lists(st.one_of(one, one, one, unknown), max_size=6)
    return st.builds(lambda keep, ps: [*(base if keep else ()), *ps], st.booleans(), pairs)


def fuzz(budget: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """hypothesis settings of these tests: a fixed budget, no deadline, no database."""
    return settings(max_examples=budget, deadline=None, database=None, derandomize=not RANDOM,
                    suppress_health_check=list(HealthCheck))


def run_endpoint(server: LiveServer, ids: Ids, endpoint: Endpoint, budget: int) -> None:
    s = requests.Session()
    url = server.url + endpoint.url(ids)

    @fuzz(budget)
    @given(st.sampled_from(endpoint.methods), request_pairs(endpoint.params, ids, endpoint.base))
    def one(method: str, pairs: list[tuple[str, str | bytes]]) -> None:
        check(send(s, method, url, pairs), endpoint.kind, pairs)

    one()


@pytest.mark.parametrize("name", [e.name for e in ENDPOINTS])
def test_fuzz_endpoint(target: tuple[LiveServer, Ids, int], name: str) -> None:
    server, ids, budget = target
    endpoint = next(e for e in ENDPOINTS if e.name == name)
    heavy = name in ("tap_sync", "scs", "ssa", "sia", "lightcurve", "multiband", "datalink")
    run_endpoint(server, ids, endpoint, budget if heavy else max(5, budget // 4))


# --------------------------------------------------------------------------
# Hypothesis: async jobs


UWS_PARAMS = ("LANG", "QUERY", "MAXREC", "RESPONSEFORMAT", "FORMAT", "RUNID", "UPLOAD",
              "REQUEST", "PHASE")


def finished_job(server: LiveServer, s: requests.Session) -> str:
    """A COMPLETED job of ALICE (WAIT on it returns at once)."""
    r = s.post(f"{server.url}/tap/async", data={
        "LANG": "ADQL", "QUERY": "SELECT TOP 2 target FROM skvo.target", "PHASE": "RUN"},
        allow_redirects=False, timeout=60)
    assert r.status_code == 303, r.text
    url = r.headers["Location"]
    for _ in range(20):  # WAIT returns at each change of phase
        doc = s.get(url, params={"WAIT": "10"}, timeout=60)
        if b"EXECUTING" not in doc.content and b"QUEUED" not in doc.content:
            break
    assert b"COMPLETED" in doc.content, doc.text
    return url


def test_fuzz_async_jobs(target: tuple[LiveServer, Ids, int]) -> None:
    """Create jobs with any parameters, then poke every job resource with any values."""
    server, ids, budget = target
    s = requests.Session()
    s.auth = ALICE
    done = finished_job(server, s)
    subresources = st.sampled_from([
        ("POST", "/phase", "PHASE"), ("POST", "/executionduration", "EXECUTIONDURATION"),
        ("POST", "/destruction", "DESTRUCTION"), ("POST", "/parameters", "QUERY"),
        ("POST", "/parameters", "MAXREC"), ("POST", "/parameters", "UPLOAD"),
        ("POST", "", "ACTION"), ("GET", "/parameters/QUERY", "X"), ("GET", "/error", "X"),
        ("GET", "/results", "X"), ("GET", "/results/result", "X"), ("GET", "/quote", "X"),
        ("GET", "/owner", "X"), ("GET", "/phase", "X"), ("GET", "", "PHASE"),
    ])

    def operation(sub: tuple[str, str, str]) -> st.SearchStrategy[tuple[str, str, list]]:
        method, path, name = sub
        return st.tuples(st.just(method), st.just(path),
                         st.lists(st.tuples(case_of(name), values_for(name, ids)), max_size=2))

    @fuzz(max(10, budget // 3))
    @given(request_pairs(UWS_PARAMS, ids), st.lists(subresources.flatmap(operation), max_size=5),
           values_for("WAIT", ids))
    def one(create: list, operations: list, wait: str | bytes) -> None:
        r = send(s, "POST", f"{server.url}/tap/async", create)
        check(r, OTHER, create)
        # WAIT blocks only on active jobs: ask it of finished ones
        check(send(s, "GET", done, [("WAIT", wait)]), OTHER, [("WAIT", wait)])
        if r.status_code != 303:
            return
        job = r.headers["Location"]
        for method, path, pairs in operations:
            check(send(s, method, job + path, pairs), OTHER, pairs)
        check(s.delete(job, allow_redirects=False, timeout=60), OTHER)

    one()


# --------------------------------------------------------------------------
# What the fixes of the findings mean


def _rows(response: requests.Response) -> int:
    assert response.status_code == 200, response.text[:500]
    assert query_status(response.content) != "ERROR", response.text[:500]
    return len(etree.fromstring(response.content).findall(".//{*}TABLEDATA/{*}TR"))


def test_infinite_bounds_are_open_ends(target: tuple[LiveServer, Ids, int]) -> None:
    """SIA and SSA ranges with infinities (which MySQL cannot bind) mean open ends, or
    nothing at all, on both databases."""
    server, _ids, _budget = target
    sia = f"{server.url}/sia/query"
    frames = _rows(requests.get(sia, params={"MAXREC": 100000}, timeout=60))
    assert frames > 0
    for name in ("TIME", "BAND", "EXPTIME", "FOV"):
        for value, expected in (("-inf +inf", frames), ("-Infinity 1e309", frames),
                                ("+inf +inf", 0), ("-inf -inf", 0), ("1e309", 0)):
            got = _rows(requests.get(sia, params={name: value, "MAXREC": 100000}, timeout=60))
            if expected == 0 or name in ("TIME", "BAND"):  # exposure and fov may be null
                assert got == expected, (name, value)
    ssa = f"{server.url}/ssa"
    series = _rows(requests.get(ssa, params={"REQUEST": "queryData", "MAXREC": 100000},
                                timeout=60))
    assert series > 0
    # TIME takes inf spelt out; BAND reads letters as bandpass names
    for name, infinite in (("TIME", "inf"), ("BAND", "1e309")):
        for value, expected in ((f"-{infinite}/{infinite}", series), (f"/{infinite}", series),
                                (f"-{infinite}/", series), (infinite, 0), (f"{infinite}/", 0),
                                (f"/-{infinite}", 0)):
            got = _rows(requests.get(ssa, params={"REQUEST": "queryData", name: value,
                                                  "MAXREC": 100000}, timeout=60))
            assert got == expected, (name, value)
    nan = requests.get(ssa, params={"REQUEST": "queryData", "TIME": "nan/1"}, timeout=60)
    assert query_status(nan.content) == "ERROR" and b"UsageFault" in nan.content


def test_ids_beyond_64_bits_are_unknown(target: tuple[LiveServer, Ids, int]) -> None:
    server, _ids, _budget = target
    for frame_id in (2**63, 10**30):
        r = requests.get(f"{server.url}/frame/{frame_id}", timeout=60)
        assert r.status_code == 404 and b"NotFoundFault" in r.content
