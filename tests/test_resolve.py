"""Star names over HTTP: /resolve, SSA TARGETNAME, skvo.target_alias, `skvo target`, Sesame.

Runs on the SQLite and the MariaDB deployment.  Sesame is a local double on
loopback speaking Sesame's -oxp XML; a second `skvo serve` on the same
database has [names] sesame_url pointing at it.
"""

from __future__ import annotations

import io
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest
import requests
from astropy.io.votable import parse
from conftest import ADMIN, ALICE, BOB, Deployment, LiveServer, free_port, write_ini

from voservice.demo import SOURCES

VARIANTS = ["bet_Lyr", "beta Lyr", "β Lyr", "bet Lyr", "beta Lyrae", "V* bet Lyr",
            "HD 174638", "HD174638", "BETA LYRAE", "* bet Lyr"]


def resolve(url: str, name: str, auth: tuple[str, str] | None = None,
            **params: str) -> requests.Response:
    return requests.get(f"{url}/resolve", params={"name": name, **params}, auth=auth,
                        timeout=30)


def tap(url: str, query: str, auth: tuple[str, str] | None = None) -> list[tuple]:
    response = requests.post(f"{url}/tap/sync", data={"REQUEST": "doQuery", "LANG": "ADQL",
                                                       "QUERY": query}, auth=auth, timeout=60)
    assert response.status_code == 200, response.text[:500]
    table = parse(io.BytesIO(response.content)).get_first_table().to_table()
    return [tuple(row) for row in table]


def ssa_rows(url: str, auth: tuple[str, str] | None = None, **params: str):  # noqa: ANN201
    response = requests.get(f"{url}/ssa", params={"REQUEST": "queryData", **params},
                            auth=auth, timeout=60)
    assert response.status_code == 200
    return parse(io.BytesIO(response.content)).get_first_table().to_table()


@pytest.mark.parametrize("name", VARIANTS)
def test_variants_reach_bet_lyr(server: LiveServer, name: str) -> None:
    response = resolve(server.url, name)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    doc = response.json()
    assert doc["found"] and doc["resolver"] == "archive"
    assert [t["target"] for t in doc["targets"]] == ["bet_Lyr"]
    target = doc["targets"][0]
    assert doc["position"] == {"ra": pytest.approx(282.519975), "dec": pytest.approx(33.362667),
                               "frame": "ICRS"}
    aliases = {(a["alias"], a["origin"]) for a in target["aliases"]}
    assert ("bet_Lyr", "provider") in aliases and ("HD 174638", "catalogue") in aliases


def test_provider_folder_and_name_both_reach_the_target(server: LiveServer) -> None:
    for name in ("Algol", "algol", "bet_Per", "beta Persei", "β Per", "HD 19356"):
        doc = resolve(server.url, name).json()
        assert [t["target"] for t in doc["targets"]] == ["Algol"], name


def test_curves_are_listed_and_fetchable(server: LiveServer) -> None:
    doc = resolve(server.url, "beta Lyrae").json()
    curves = doc["targets"][0]["curves"]
    assert curves and {c["source"] for c in curves} == {
        s.name for s in SOURCES if "bet_Lyr" in s.stars}
    open_curve = next(c for c in curves if c["access"] == "open")
    assert open_curve["url"].startswith(server.url + "/lightcurve/")
    assert requests.get(open_curve["url"], timeout=60).status_code == 200
    listed = ssa_rows(server.url, TARGETNAME="bet_Lyr")
    assert len([r for r in listed if int(r["calib_level"]) == 2]) == len(curves)
    assert requests.get(doc["targets"][0]["lightcurves"], timeout=60).status_code == 200
    # the star's curve per band over the open nights (what an anonymous user may fetch)
    stars = doc["targets"][0]["star_curves"]
    open_bands = {c["bandpass"] for c in curves if c["access"] == "open"}
    assert {s["bandpass"] for s in stars} == open_bands
    for star in stars:
        assert star["nights"] == sum(1 for c in curves if c["access"] == "open"
                                     and c["bandpass"] == star["bandpass"])
        assert requests.get(star["url"], timeout=60).status_code == 200


def test_unknown_name_is_404_in_json_and_votable(server: LiveServer) -> None:
    response = resolve(server.url, "gamma Lyr")
    assert response.status_code == 404
    doc = response.json()
    assert doc["found"] is False and doc["targets"] == [] and doc["note"]
    response = resolve(server.url, "gamma Lyr", RESPONSEFORMAT="votable")
    assert response.status_code == 404
    assert b'value="ERROR"' in response.content and b"NotFoundFault" in response.content


def test_votable_and_csv(server: LiveServer) -> None:
    response = resolve(server.url, "β Lyr", RESPONSEFORMAT="votable")
    assert response.status_code == 200
    table = parse(io.BytesIO(response.content)).get_first_table().to_table()
    assert list(table["target"]) == ["bet_Lyr"]
    assert "HD 174638" in table["aliases"][0]
    assert table["n_curves"][0] > 0
    csv = resolve(server.url, "β Lyr", RESPONSEFORMAT="csv")
    assert csv.headers["Content-Type"].startswith("text/csv")
    assert csv.text.splitlines()[0].startswith("target,target_id")


def test_usage_errors_are_dali_errors(server: LiveServer) -> None:
    for params in ({}, {"name": "  "}, {"name": "x" * 300},
                   {"name": "bet Lyr", "RESPONSEFORMAT": "nonsense"}):
        response = requests.get(f"{server.url}/resolve", params=params, timeout=30)
        assert response.status_code == 400
        assert b'value="ERROR"' in response.content and b"Traceback" not in response.content


def test_restricted_only_target_exists_only_for_granted_users(server: LiveServer) -> None:
    # l_Car is observed only by saao, whose every observation is restricted
    for who in (None, BOB):
        assert resolve(server.url, "l Carinae", who).status_code == 404
        aliases = tap(server.url, "SELECT a.alias FROM skvo.target_alias AS a JOIN skvo.target "
                      "AS t ON t.target_id = a.target_id WHERE t.target = 'l_Car'", who)
        assert aliases == []
        assert len(ssa_rows(server.url, who, TARGETNAME="l Car")) == 0
    for who in (ALICE, ADMIN):
        doc = resolve(server.url, "l Carinae", who).json()
        assert [t["target"] for t in doc["targets"]] == ["l_Car"]
        assert tap(server.url, "SELECT a.alias FROM skvo.target_alias AS a JOIN skvo.target "
                   "AS t ON t.target_id = a.target_id WHERE t.target = 'l_Car'", who)
        assert len(ssa_rows(server.url, who, TARGETNAME="l Car")) > 0
    # the anonymous see aliases of the targets they see, and only those
    anonymous = {r[0] for r in tap(server.url, "SELECT DISTINCT t.target FROM "
                                   "skvo.target_alias AS a JOIN skvo.target AS t "
                                   "ON t.target_id = a.target_id")}
    assert "bet_Lyr" in anonymous and "l_Car" not in anonymous
    for who in (None, BOB, ALICE):  # aliases are visible exactly with their targets
        with_aliases = {r[0] for r in tap(server.url, "SELECT DISTINCT t.target FROM "
                                          "skvo.target_alias AS a JOIN skvo.target AS t "
                                          "ON t.target_id = a.target_id", who)}
        seen = {r[0] for r in tap(server.url, "SELECT target FROM skvo.target", who)}
        assert with_aliases == seen
        alias_targets = {r[0] for r in tap(server.url, "SELECT DISTINCT target_id FROM "
                                           "skvo.target_alias", who)}
        assert alias_targets == {r[0] for r in tap(server.url, "SELECT target_id FROM "
                                                   "skvo.target", who)}


def test_tap_publishes_the_aliases(server: LiveServer) -> None:
    rows = tap(server.url, "SELECT alias, alias_key, origin FROM skvo.target_alias AS a "
               "JOIN skvo.target AS t ON t.target_id = a.target_id WHERE t.target = 'Algol'")
    assert {(r[0], r[2]) for r in rows} >= {("Algol", "provider"), ("bet_Per", "provider"),
                                           ("HD 19356", "catalogue")}
    assert ("bet_Per", "bet per", "provider") in rows
    columns = {r[0] for r in tap(server.url, "SELECT column_name FROM TAP_SCHEMA.columns "
                                 "WHERE table_name = 'skvo.target_alias'")}
    assert columns == {"alias_id", "target_id", "alias", "alias_key", "origin"}


@pytest.mark.parametrize("name", ["beta Lyrae", "HD 174638", "V* bet Lyr", "bet_lyr"])
def test_ssa_targetname_uses_the_aliases(server: LiveServer, name: str) -> None:
    expected = ssa_rows(server.url, TARGETNAME="bet_Lyr")
    found = ssa_rows(server.url, TARGETNAME=name)
    assert len(found) == len(expected) > 0
    assert set(found["ssa_targname"]) == {"bet_Lyr"}
    both = ssa_rows(server.url, TARGETNAME=f"{name},Algol")
    assert set(both["ssa_targname"]) == {"bet_Lyr", "Algol"}


def test_operator_aliases(server: LiveServer) -> None:
    dep = server.dep
    assert resolve(server.url, "Sheliak").status_code == 404
    out = dep.skvo("target", "alias", "beta Lyr", "Sheliak")
    assert "bet_Lyr now has the alias Sheliak" in out.stdout
    try:
        doc = resolve(server.url, "sheliak").json()
        assert [t["target"] for t in doc["targets"]] == ["bet_Lyr"]
        assert {"alias": "Sheliak", "origin": "operator"} in doc["targets"][0]["aliases"]
        assert len(ssa_rows(server.url, TARGETNAME="Sheliak")) > 0
        listed = dep.skvo("target", "aliases", "HD 174638").stdout.splitlines()
        assert "Sheliak\toperator" in listed and "bet_Lyr\tprovider" in listed
        again = dep.skvo("target", "alias", "bet_Lyr", "SHELIAK")
        assert "already has" in again.stdout
    finally:
        dep.skvo("target", "unalias", "bet_Lyr", "Sheliak")
    assert resolve(server.url, "Sheliak").status_code == 404
    # provider aliases stay; unknown targets and missing arguments fail with a message
    refused = dep.skvo("target", "unalias", "bet_Lyr", "bet_Lyr", check=False)
    assert refused.returncode == 2 and "no operator's alias" in refused.stderr
    unknown = dep.skvo("target", "alias", "gamma Lyr", "x", check=False)
    assert unknown.returncode == 2 and "no target is named" in unknown.stderr
    assert "Traceback" not in unknown.stderr + refused.stderr


# --------------------------------------------------------------------------
# Sesame (a double on loopback)

def sesame_xml(name: str, ra: float | None = None, dec: float | None = None,
               oname: str = "", aliases: tuple[str, ...] = ()) -> bytes:
    if ra is None:
        return (f'<?xml version="1.0" encoding="UTF-8"?><Sesame><Target option="SNV">'
                f"<name>{name}</name><INFO>*** Nothing found ***</INFO>"
                f"</Target></Sesame>").encode()
    alias_xml = "".join(f"<alias>{a}</alias>" for a in aliases)
    return (f'<?xml version="1.0" encoding="UTF-8"?><Sesame><Target option="SNV">'
            f'<name>{name}</name><Resolver name="S=Simbad (via url)">'
            f"<INFO>from cache</INFO><otype>EB*</otype><jpos>18:50:04.79 +33:21:45.6</jpos>"
            f"<jradeg>{ra}</jradeg><jdedeg>{dec}</jdedeg><oname>{oname}</oname>{alias_xml}"
            f"</Resolver></Target></Sesame>").encode()


ANSWERS = {
    "Sheliak": sesame_xml("Sheliak", 282.51998, 33.36267, "* bet Lyr",
                          ("* bet Lyr", "HD 174638", "HIP 92420", "NAME Sheliak")),
    # no identifier the archive knows, but 3 arcsec from W_UMa
    "WUMa-ish": sesame_xml("WUMa-ish", 145.939458, 55.952528 + 3 / 3600, "Gaia DR3 1", ()),
    "Vega": sesame_xml("Vega", 279.23473479, 38.78368896, "* alf Lyr", ("* alf Lyr",)),
    "Mira": sesame_xml("Mira", 34.83663, -2.97764, "* omi Cet", ("* omi Cet",)),
}


class SesameDouble:
    """A tiny Sesame: /sesame/-oxp/SNV?<name>; `slow` answers after two seconds."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path, _, query = self.path.partition("?")
                name = unquote(query)
                double.hits[name] += 1
                if path != "/sesame/-oxp/SNV":
                    self.send_error(404)
                    return
                if name == "slow":
                    time.sleep(2)
                if name == "broken":
                    body = b"<Sesame><Target><Resolver><jradeg>1"
                else:
                    body = ANSWERS.get(name, sesame_xml(name))
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/sesame/-oxp/SNV"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module", params=["sqlite", "mariadb"])
def sesame(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[LiveServer, SesameDouble]]:
    """A second `skvo serve` on a loaded database, with Sesame pointing at a double."""
    loaded: Deployment = request.getfixturevalue(f"{request.param}_deployment")
    double = SesameDouble()
    root = tmp_path_factory.mktemp(f"sesame-{request.param}")
    url = loaded.settings().metadata_url
    port = free_port()
    config = write_ini(Path(root), url, port, names={
        "sesame_url": double.url, "sesame_timeout": "0.5", "cone_radius": "10"})
    live = LiveServer(Deployment(root=Path(root), config=config, port=port))
    live.start()
    yield live, double
    live.stop()
    double.stop()


def test_sesame_identifiers_reach_an_archive_target_and_are_cached(sesame) -> None:
    live, double = sesame
    doc = resolve(live.url, "Sheliak").json()
    assert doc["found"] and doc["resolver"] == "sesame" and doc["sesame_name"] == "* bet Lyr"
    assert [t["target"] for t in doc["targets"]] == ["bet_Lyr"]
    assert double.hits["Sheliak"] == 1
    for _ in range(2):  # positive answers come from the database cache
        assert resolve(live.url, "NAME Sheliak").json()["targets"][0]["target"] == "bet_Lyr"
        assert resolve(live.url, "Sheliak").status_code == 200
    assert double.hits["Sheliak"] == 1 and double.hits["NAME Sheliak"] == 0
    # names the archive knows never go to Sesame
    assert resolve(live.url, "beta Lyrae").json()["resolver"] == "archive"
    assert double.hits["beta Lyrae"] == 0
    # SSA TARGETNAME resolves through Sesame as well
    assert set(ssa_rows(live.url, TARGETNAME="Sheliak")["ssa_targname"]) == {"bet_Lyr"}


def test_sesame_position_gives_a_cone(sesame) -> None:
    live, _double = sesame
    doc = resolve(live.url, "WUMa-ish").json()
    assert [t["target"] for t in doc["targets"]] == ["W_UMa"]
    assert doc["position"]["dec"] == pytest.approx(55.952528 + 3 / 3600)
    assert set(ssa_rows(live.url, TARGETNAME="WUMa-ish")["ssa_targname"]) == {"W_UMa"}
    # a star Sesame knows but the archive has nothing near: the position, no target
    response = resolve(live.url, "Vega")
    assert response.status_code == 200
    vega = response.json()
    assert vega["targets"] == [] and vega["position"]["ra"] == pytest.approx(279.23473479)
    assert "10 arcsec" in vega["note"]
    assert len(ssa_rows(live.url, TARGETNAME="Vega")) == 0


def test_sesame_failures_mean_not_found_with_a_note(sesame) -> None:
    live, double = sesame
    for _ in range(2):  # negative answers are not cached: asked again
        response = resolve(live.url, "no such star")
        assert response.status_code == 404
        assert "neither the archive nor Sesame" in response.json()["note"]
    assert double.hits["no such star"] == 2
    slow = resolve(live.url, "slow")
    assert slow.status_code == 404 and "did not answer within 0.5 s" in slow.json()["note"]
    broken = resolve(live.url, "broken")
    assert broken.status_code == 404 and "not XML" in broken.json()["note"]
    assert len(ssa_rows(live.url, TARGETNAME="slow")) == 0  # SSA answers, without rows


def test_sesame_unreachable_and_access(sesame) -> None:
    live, double = sesame
    # Sesame places l Car, but l_Car is restricted: not there for the anonymous
    ANSWERS["l Car"] = sesame_xml("l Car", 146.311708, -62.507917, "* l Car", ("HD 84810",))
    try:
        anonymous = resolve(live.url, "l Car").json()
        assert anonymous["targets"] == []
        granted = resolve(live.url, "l Car", ALICE).json()
        assert [t["target"] for t in granted["targets"]] == ["l_Car"]
    finally:
        del ANSWERS["l Car"]
    assert resolve(live.url, "Mira").status_code == 200  # cached before Sesame goes away
    double.stop()
    response = resolve(live.url, "R Leonis")
    assert response.status_code == 404 and "could not be reached" in response.json()["note"]
    assert resolve(live.url, "Mira").json()["position"]["ra"] == pytest.approx(34.83663)


def test_initdb_gives_older_targets_their_aliases(tmp_path: Path) -> None:
    """Targets loaded before aliases existed get them from `skvo initdb`."""
    import sqlalchemy as sa
    from test_schema import load_three_observations

    from voservice import resolver, tables
    from voservice.access import ANONYMOUS, Principal
    from voservice.stores.metadata import make_engine

    config = write_ini(tmp_path, f"sqlite:///{tmp_path / 'old.sqlite'}", free_port())
    dep = Deployment(root=tmp_path, config=config, port=0)
    dep.skvo("initdb")
    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    load_three_observations(engine)  # rows written as an older uploader did: no aliases
    aliases = tables.sa_table("skvo.target_alias")
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(aliases)).scalar() == 0
    assert "target aliases added" in dep.skvo("initdb").stdout
    assert "target aliases added" not in dep.skvo("initdb").stdout  # once only
    cfg = resolver.ResolverConfig()
    found = resolver.resolve(engine, ANONYMOUS, "HD 0", cfg)
    assert [m.target for m in found.targets] == ["star0"]
    # star2's only observation is restricted (source s3)
    assert not resolver.resolve(engine, ANONYMOUS, "STAR2", cfg).found
    granted = resolver.resolve(engine, Principal("carol", frozenset({"s3"})), "Star 2", cfg)
    assert [m.target for m in granted.targets] == ["star2"]  # as HD174638 = HD 174638
    engine.dispose()


def test_sesame_xml_parsing() -> None:
    from voservice.resolver import SesameUnavailable, parse_sesame

    answer = parse_sesame(ANSWERS["Sheliak"])
    assert answer is not None and answer.oname == "* bet Lyr"
    assert answer.aliases[:2] == ("* bet Lyr", "HD 174638")
    assert parse_sesame(sesame_xml("nothing")) is None
    with pytest.raises(SesameUnavailable):
        parse_sesame(b"<Sesame><Target>")
    entity = (b'<?xml version="1.0"?><!DOCTYPE s [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
              b"<Sesame><Target><Resolver><jradeg>1</jradeg><jdedeg>2</jdedeg>"
              b"<oname>&x;</oname></Resolver></Target></Sesame>")
    leaked = parse_sesame(entity)
    assert leaked is not None and "root" not in (leaked.oname or "")
