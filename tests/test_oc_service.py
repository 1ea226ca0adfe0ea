"""/analysis/oc on both databases: O-C of the synthetic eclipses' minima
(tests/eclipse_tree.py) against the stored ephemeris, linear and quadratic
fits that recover the model's ephemeris, the plot, access rights, DALI
errors naming the parameter, and the DataLink #derivation link to it."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
import requests
from astropy.io.votable import parse as parse_votable
from conftest import ALICE, BOB, LiveServer
from eclipse_tree import BAND, EPOCH_BJD, PERIOD, STAR, rows, serving, tap

AUTHORITY = "skvo.test.example"


@pytest.fixture(scope="module", params=["sqlite", "mariadb"])
def eclipses(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp(f"oc-{request.param}")
    with serving(root, request.param, "skvo_oc_service") as server:
        yield server


@pytest.fixture(scope="module")
def did(eclipses: LiveServer) -> str:
    target_id = int(tap(eclipses, f"SELECT target_id FROM skvo.target WHERE target = '{STAR}'"
                        )["target_id"][0])
    return f"ivo://{AUTHORITY}/skvo?star/{target_id}/{BAND}"


def oc(server: LiveServer, account: tuple[str, str] | None, **params: str
       ) -> requests.Response:
    return requests.get(f"{server.url}/analysis/oc", params=params, auth=account, timeout=60)


def votable(response: requests.Response):  # noqa: ANN201 - an astropy VOTableFile
    assert response.status_code == 200, response.text[-2000:]
    assert response.headers["Content-Type"].startswith("application/x-votable+xml")
    return parse_votable(io.BytesIO(response.content))


def test_oc_table_is_the_minima_against_the_ephemeris(eclipses: LiveServer, did: str) -> None:
    doc = votable(oc(eclipses, ALICE, ID=did))
    table = doc.get_first_table()
    params = {p.name: p.value for p in table.params}
    got = rows(table.to_table())
    expected = rows(tap(eclipses, "SELECT cycle, time_ephem, calculated, o_c, time_error, "
                        "min_type FROM skvo.minimum WHERE cycle IS NOT NULL ORDER BY time_bjd",
                        ALICE))
    assert len(got) == len(expected) == params["n_minima"] >= 5
    for g, e in zip(got, expected, strict=True):
        for name, value in e.items():
            assert g[name] == value
    assert params["period"] == pytest.approx(PERIOD) and params["epoch"] == pytest.approx(
        EPOCH_BJD)
    assert b'timescale="TDB" refposition="BARYCENTER"' in oc(eclipses, ALICE, ID=did).content
    fields = {f.name: f for f in table.fields}
    assert fields["o_c"].unit == "d" and fields["time_ephem"].ref == "timesys_ephem"


def test_fits_recover_the_models_ephemeris(eclipses: LiveServer, did: str) -> None:
    params = {p.name: p.value for p in votable(oc(eclipses, ALICE, ID=did)).get_first_table()
              .params}
    # the model's ephemeris is exact: each fit must find it within 3 of its sigmas
    for fit in ("linear", "quadratic"):
        assert abs(params[f"{fit}_period"] - PERIOD) < 3 * params[f"{fit}_period_error"]
        assert abs(params[f"{fit}_epoch"] - EPOCH_BJD) < 3 * params[f"{fit}_epoch_error"]
        assert 0 < params[f"{fit}_period_error"] < 1e-4
        assert params[f"{fit}_dof"] == params["n_minima"] - (2 if fit == "linear" else 3)
    assert abs(params["quadratic_quadratic"]) < 3 * params["quadratic_quadratic_error"]
    assert abs(params["quadratic_dpdt"]) < 3 * params["quadratic_dpdt_error"]


def test_types_and_access(eclipses: LiveServer, did: str) -> None:
    secondary = rows(votable(oc(eclipses, ALICE, ID=did, TYPE="secondary")).get_first_table()
                     .to_table())
    assert [r["min_type"] for r in secondary] == ["secondary"]
    assert secondary[0]["cycle"] % 1 == 0.5
    everyone = votable(oc(eclipses, None, ID=did)).get_first_table()
    granted = votable(oc(eclipses, ALICE, ID=did)).get_first_table()
    n_open = int(tap(eclipses, "SELECT COUNT(*) AS n FROM skvo.minimum WHERE cycle IS NOT NULL"
                     )["n"][0])
    n_all = int(tap(eclipses, "SELECT COUNT(*) AS n FROM skvo.minimum WHERE cycle IS NOT NULL",
                    ALICE)["n"][0])
    assert {p.name: p.value for p in everyone.params}["n_minima"] == n_open < n_all
    assert {p.name: p.value for p in granted.params}["n_minima"] == n_all
    assert len(votable(oc(eclipses, BOB, ID=did)).get_first_table().array) == n_open


def test_oc_plot(eclipses: LiveServer, did: str) -> None:
    response = oc(eclipses, None, ID=did, RESPONSEFORMAT="image/png")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/png"
    assert response.content.startswith(b"\x89PNG\r\n\x1a\n") and len(response.content) > 5000


@pytest.mark.parametrize(("params", "status", "named"), [
    ({}, 400, "ID"),
    ({"ID": "ivo://elsewhere/x"}, 404, "ID"),
    ({"ID": f"ivo://{AUTHORITY}/skvo?star/999999/{BAND}"}, 404, "ID"),
    ({"TYPE": "tertiary"}, 400, "TYPE"),
    ({"BAND": "nosuch.band"}, 400, "BAND"),
    ({"RESPONSEFORMAT": "application/nonsense"}, 400, "RESPONSEFORMAT"),
])
def test_bad_requests_name_the_parameter(eclipses: LiveServer, did: str, params: dict,
                                         status: int, named: str) -> None:
    request = params if "ID" in params or not params else {"ID": did, **params}
    response = oc(eclipses, ALICE, **request)
    assert response.status_code == status, response.text
    text = response.text
    assert 'QUERY_STATUS" value="ERROR"' in text and named in text
    assert "Traceback" not in text and "sqlalchemy" not in text.lower()


def test_datalink_links_the_star_to_its_oc(eclipses: LiveServer, did: str) -> None:
    response = requests.get(f"{eclipses.url}/datalink", params={"ID": did}, timeout=60)
    links = rows(votable(response).get_first_table().to_table())
    oc_links = {r["local_semantics"]: r for r in links if r["semantics"] == "#derivation"
                and r["local_semantics"] in ("oc", "oc-plot")}
    assert set(oc_links) == {"oc", "oc-plot"}
    assert oc_links["oc-plot"]["content_type"] == "image/png"
    followed = votable(requests.get(oc_links["oc"]["access_url"], timeout=60))
    direct = votable(oc(eclipses, None, ID=did))
    assert len(followed.get_first_table().array) == len(direct.get_first_table().array) > 0
