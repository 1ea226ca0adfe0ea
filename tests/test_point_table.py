"""skvo.point through TAP on the live servers: the light curves' points, row by row.

The rows must equal the points the light-curve routes serve, only for the
observations whose data the principal may fetch, and follow a ``--replace``
and a removal of the observation.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
from astropy.io.votable import parse as parse_votable
from astropy.table import Table
from conftest import ADMIN, ALICE, BOB, LiveServer, deploy, mariadb_database

from voservice.demo import write_demo_tree

POINT_COLUMNS = ("observation_id", "target_id", "bandpass_id", "point_index", "mjd",
                 "magnitude", "magnitude_error", "exposure", "flux_calibration",
                 "flux_calibration_level", "time_refposition", "frame_url")
#: light-curve column -> skvo.point column
SAME = {"time": "mjd", "magnitude": "magnitude", "magnitude_error": "magnitude_error",
        "exposure": "exposure", "flux_calibration": "flux_calibration",
        "flux_calibration_level": "flux_calibration_level"}


def tap(server: LiveServer, query: str, account: tuple[str, str] | None = None) -> Table:
    """A TAP sync query's result (BINARY2 VOTable); fails on any error."""
    response = requests.post(f"{server.url}/tap/sync", auth=account, timeout=120, data={
        "REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query, "MAXREC": "1000000"})
    assert response.status_code == 200, response.text[-2000:]
    votable = parse_votable(io.BytesIO(response.content))
    status = [i for i in votable.resources[0].infos if i.name == "QUERY_STATUS"]
    assert status and status[0].value == "OK", response.text[-2000:]
    return votable.get_first_table().to_table()


def values(column) -> list:  # noqa: ANN001 - an astropy column
    """A column as Python values, None for nulls."""
    mask = np.ma.getmaskarray(column)
    return [None if m else (v.item() if hasattr(v, "item") else v)
            for v, m in zip(np.asarray(column).tolist(), mask.tolist(), strict=True)]


def series(server: LiveServer) -> dict[int, dict]:
    """Every series (observation id -> uuid, bandpass, access, points, photometry id), as
    the administrator sees them."""
    table = tap(server, "SELECT o.observation_id, o.observation_uuid, o.access, o.source, "
                "o.night, o.target_id, b.bandpass_uid, p.bandpass_id, p.n_points, "
                "p.photometry_id FROM skvo.observation AS o "
                "JOIN skvo.photometry AS p ON p.observation_id = o.observation_id "
                "JOIN skvo.bandpass AS b ON b.bandpass_id = p.bandpass_id", ADMIN)
    rows = [dict(zip(table.colnames, r, strict=True)) for r in
            zip(*(values(table[c]) for c in table.colnames), strict=True)]
    return {r["observation_id"]: r for r in rows}


def points(server: LiveServer, account: tuple[str, str] | None, where: str = "") -> dict:
    """skvo.point rows as the account sees them: observation id -> {column: values}."""
    table = tap(server, f"SELECT {', '.join(POINT_COLUMNS)} FROM skvo.point {where} "
                "ORDER BY observation_id, point_index", account)
    out: dict[int, dict[str, list]] = {}
    obs = values(table["observation_id"])
    cols = {c: values(table[c]) for c in POINT_COLUMNS}
    for i, o in enumerate(obs):
        row = out.setdefault(o, {c: [] for c in POINT_COLUMNS})
        for c in POINT_COLUMNS:
            row[c].append(cols[c][i])
    return out


def light_curve(server: LiveServer, s: dict, account: tuple[str, str] | None) -> Table:
    url = f"{server.url}/lightcurve/{s['observation_uuid']}/{s['bandpass_uid']}"
    response = requests.get(url, auth=account, timeout=60)
    assert response.status_code == 200, (url, response.status_code)
    return parse_votable(io.BytesIO(response.content)).get_first_table().to_table()


def frames(server: LiveServer) -> dict[int, dict[int, int]]:
    """photometry id -> {frame_index: frame_id} (administrator)."""
    table = tap(server, "SELECT photometry_id, frame_index, frame_id FROM skvo.frame", ADMIN)
    out: dict[int, dict[int, int]] = {}
    for p, i, f in zip(values(table["photometry_id"]), values(table["frame_index"]),
                       values(table["frame_id"]), strict=True):
        out.setdefault(p, {})[i] = f
    return out


def assert_rows_are_the_light_curve(server: LiveServer, s: dict, rows: dict,
                                    account: tuple[str, str] | None,
                                    frame_ids: dict[int, int]) -> None:
    lc = light_curve(server, s, account)
    assert len(lc) == len(rows["mjd"]) == s["n_points"], s
    for lc_col, col in SAME.items():
        assert values(lc[lc_col]) == rows[col], (s["observation_uuid"], col)  # exactly
    assert rows["point_index"] == list(range(len(lc)))
    assert set(rows["target_id"]) == {s["target_id"]}
    assert set(rows["bandpass_id"]) == {s["bandpass_id"]}
    expected = [f"{server.url}/frame/{frame_ids[i]}" if i in frame_ids else None
                for i in range(len(lc))]
    # a null char cell reads as "" in astropy (VOTable has no null string on the wire)
    assert [u or None for u in rows["frame_url"]] == expected, s["observation_uuid"]


def test_points_are_the_served_light_curves_for_granted_users(server: LiveServer) -> None:
    all_series = series(server)
    frame_ids = frames(server)
    rows = points(server, ALICE)
    assert set(rows) == set(all_series)  # alice is granted every source
    assert {s["access"] for s in all_series.values()} == {"open", "on_demand", "restricted"}
    for obs_id, s in all_series.items():
        assert_rows_are_the_light_curve(server, s, rows[obs_id], ALICE,
                                        frame_ids.get(s["photometry_id"], {}))
    # at least one point has a frame, and its URL serves the frame's bytes
    framed = [u for r in rows.values() for u in r["frame_url"] if u]
    assert framed
    got = requests.get(framed[0], auth=ALICE, timeout=30)
    assert got.status_code == 200 and got.headers["Content-Type"].startswith("image/")


@pytest.mark.parametrize("account", [None, BOB], ids=["anonymous", "bob"])
def test_without_a_grant_only_open_points(server: LiveServer, account) -> None:  # noqa: ANN001
    all_series = series(server)
    granted = points(server, ALICE)
    rows = points(server, account)
    open_ids = {o for o, s in all_series.items() if s["access"] == "open"}
    assert open_ids and open_ids != set(all_series)
    assert set(rows) == open_ids  # no point of on_demand or restricted observations
    for obs_id in open_ids:
        assert rows[obs_id] == granted[obs_id]
    # the light-curve routes refuse them the same data
    hidden = next(s for s in all_series.values() if s["access"] == "on_demand")
    url = f"{server.url}/lightcurve/{hidden['observation_uuid']}/{hidden['bandpass_uid']}"
    assert requests.get(url, auth=account, timeout=30).status_code in (401, 403)
    # and no filter on the table's columns reaches them
    count = tap(server, "SELECT COUNT(*) AS n FROM skvo.point WHERE observation_id = "
                f"{hidden['observation_id']}", account)
    assert values(count["n"]) == [0]
    assert values(tap(server, "SELECT COUNT(*) AS n FROM skvo.point", account)["n"]) == [
        sum(all_series[o]["n_points"] for o in open_ids)]


def test_join_with_target_by_name_and_with_observation(server: LiveServer) -> None:
    all_series = series(server)
    target = tap(server, "SELECT target_id FROM skvo.target WHERE target = 'bet_Lyr'", ALICE)
    target_id = values(target["target_id"])[0]
    joined = tap(server, "SELECT p.observation_id, p.mjd, p.magnitude, t.target, o.source "
                 "FROM skvo.point AS p JOIN skvo.target AS t ON t.target_id = p.target_id "
                 "JOIN skvo.observation AS o ON o.observation_id = p.observation_id "
                 "WHERE t.target = 'bet_Lyr' ORDER BY p.mjd, p.observation_id", ALICE)
    direct = tap(server, "SELECT observation_id, mjd, magnitude FROM skvo.point "
                 f"WHERE target_id = {target_id} ORDER BY mjd, observation_id", ALICE)
    mine = [s for s in all_series.values() if s["target_id"] == target_id]
    assert len(joined) == sum(s["n_points"] for s in mine) > 0
    for col in ("observation_id", "mjd", "magnitude"):
        assert values(joined[col]) == values(direct[col])
    assert set(values(joined["target"])) == {"bet_Lyr"}
    assert set(values(joined["source"])) == {s["source"] for s in mine}
    mjd = values(joined["mjd"])
    assert mjd == sorted(mjd)
    # one band of the star: the index's (target_id, bandpass_id, mjd) order
    band = mine[0]["bandpass_id"]
    one = tap(server, "SELECT mjd FROM skvo.point WHERE target_id = "
              f"{target_id} AND bandpass_id = {band} AND mjd > 0 ORDER BY mjd", ALICE)
    assert len(one) == sum(s["n_points"] for s in mine if s["bandpass_id"] == band)


def test_point_columns_are_described_once(server: LiveServer) -> None:
    response = requests.post(f"{server.url}/tap/sync", timeout=60, data={
        "REQUEST": "doQuery", "LANG": "ADQL",
        "QUERY": "SELECT TOP 1 mjd, magnitude, frame_url FROM skvo.point"})
    table = parse_votable(io.BytesIO(response.content)).get_first_table()
    mjd = table.get_field_by_id("mjd")
    assert (mjd.datatype, str(mjd.unit), mjd.ucd) == ("double", "d", "time.epoch")
    assert table.get_field_by_id("magnitude").ucd == "phot.mag"
    schema = tap(server, "SELECT column_name, datatype, unit, ucd FROM TAP_SCHEMA.columns "
                 "WHERE table_name = 'skvo.point' ORDER BY column_index")
    assert values(schema["column_name"]) == list(POINT_COLUMNS)  # `public` stays internal
    tables_xml = requests.get(f"{server.url}/tap/tables", timeout=30).text
    assert "skvo.point" in tables_xml


# ---------------------------------------------------------------- --replace and removal


@pytest.fixture(scope="module", params=["sqlite", "mariadb"])
def changing(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[LiveServer]:
    """A deployment of its own (its tree is changed), served."""
    root = tmp_path_factory.mktemp(f"points-{request.param}")
    tree = root / "tree"
    write_demo_tree(tree)
    url = ("sqlite:///skvo.sqlite" if request.param == "sqlite"
           else mariadb_database("skvo_point_test"))
    dep = deploy(root / "dep", tree, url)
    server = LiveServer(dep)
    server.start()
    server.tree = tree  # type: ignore[attr-defined]
    yield server
    server.stop()
    shutil.rmtree(tree, ignore_errors=True)


def data_file(tree: Path, s: dict) -> Path:
    night = s["night"].replace("-", "")
    found = [p for p in tree.glob(f"{s['source']}/photometry/dtables/{night[:6]}/*_{night}/"
                                  f"{s['bandpass_uid']}/*_data_*.csv")]
    return found[0]


def test_rows_follow_replace_and_removal(changing: LiveServer) -> None:
    server = changing
    before = series(server)
    # an open series alone in its night folder and band (its data file is unambiguous)
    s = next(s for s in before.values() if s["access"] == "open" and s["n_points"] > 10
             and len(list(data_file(server.tree, s).parent.parent.parent.glob(
                 f"*/{s['bandpass_uid']}"))) == 1)
    path = data_file(server.tree, s)
    lines = path.read_text().splitlines()
    header, body = lines[0], lines[1:]
    first = body[0].split(",")
    first[1] = f"{float(first[1]) + 0.5:.4f}"  # a corrected magnitude
    path.write_text("\n".join([header, ",".join(first), *body[1:-1]]) + "\n")  # one less
    result = server.dep.skvo("ingest", str(server.tree), "--replace", check=False)
    assert result.returncode == 0, result.stderr[-3000:]

    after = series(server)
    now = next(a for a in after.values() if (a["source"], a["night"], a["target_id"],
                                              a["bandpass_uid"]) ==
               (s["source"], s["night"], s["target_id"], s["bandpass_uid"]))
    assert now["n_points"] == s["n_points"] - 1
    rows = points(server, None)
    assert_rows_are_the_light_curve(server, now, rows[now["observation_id"]], None,
                                    frames(server).get(now["photometry_id"], {}))
    assert rows[now["observation_id"]]["magnitude"][0] == pytest.approx(
        float(body[0].split(",")[1]) + 0.5, abs=1e-9)
    if now["observation_id"] != s["observation_id"]:
        assert s["observation_id"] not in rows  # nothing of the replaced rows is left
    total = values(tap(server, "SELECT COUNT(*) AS n FROM skvo.point", ADMIN)["n"])[0]
    assert total == sum(a["n_points"] for a in after.values())

    # removing the observation removes its points (in the uploader's transaction)
    from voservice.ingest.load import Loader
    from voservice.ingest.stores import open_stores

    stores = open_stores(server.dep.settings(), create=False)
    try:
        Loader(stores.engine, stores.timeseries, stores.media).delete(now["observation_id"])
    finally:
        stores.close()
    gone = tap(server, "SELECT COUNT(*) AS n FROM skvo.point WHERE observation_id = "
               f"{now['observation_id']}", ADMIN)
    assert values(gone["n"]) == [0]
    left = values(tap(server, "SELECT COUNT(*) AS n FROM skvo.point", ADMIN)["n"])[0]
    assert left == total - now["n_points"]
