"""The whole service on MariaDB + OpenTSDB + HBase (the protocol doubles).

The sample data are loaded by the real uploader into MariaDB, the OpenTSDB
HTTP double and the HBase Thrift double; ``skvo serve`` then answers the VO
clients from them.  Light curves must come out exactly as from the embedded
stores: only the observation's random uuid differs between deployments.
This deployment reaches MariaDB through mysqlclient (the C driver); the
other MariaDB deployments use PyMySQL.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import pyvo
import requests
from astropy.io.votable import parse as parse_votable
from conftest import ADMIN, LiveServer, deploy, mariadb_database
from servers.hbase_thrift import FakeHBase
from servers.opentsdb import FakeOpenTsdb

pytestmark = pytest.mark.mariadb


@pytest.fixture(scope="module")
def backends_server(tmp_path_factory: pytest.TempPathFactory, demo_tree: Path
                    ) -> Iterator[LiveServer]:
    # OpenTSDB 2.4 and HBase's Thrift server with stock settings, plus what README asks
    # the operator for: deletes allowed; skvo.ini lets SKVO assign metric names
    tsdb = FakeOpenTsdb(allow_delete=True).start()
    hbase = FakeHBase("framed", "compact").start()
    try:
        dep = deploy(
            tmp_path_factory.mktemp("backends"), demo_tree,
            mariadb_database("skvo_backends_test", "mysqldb"),
            timeseries={"backend": "opentsdb", "url": tsdb.url, "batch_size": "200",
                        "assign_uids": "true"},
            media={"backend": "hbase", "host": hbase.host, "port": str(hbase.port),
                   "table": "skvo_frames", "transport": "framed", "protocol": "compact"},
        )
        server = LiveServer(dep)
        server.hbase = hbase  # type: ignore[attr-defined]
        server.start()
        yield server
        server.stop()
    finally:
        hbase.stop()
        tsdb.stop()


def series(server: LiveServer) -> dict[tuple[str, str, str], dict]:
    """Series by (target, bandpass, start) -> obscore row, read as admin."""
    session = requests.Session()
    session.auth = ADMIN
    table = pyvo.dal.TAPService(f"{server.url}/tap", session=session).run_sync(
        "SELECT obs_id, obs_publisher_did, target_name, bandpass_uid, t_min, t_xel "
        "FROM ivoa.obscore").to_table()
    return {(str(r["target_name"]), str(r["bandpass_uid"]), f"{float(r['t_min']):.9f}"):
            {"obs_id": str(r["obs_id"]), "did": str(r["obs_publisher_did"]),
             "bandpass_uid": str(r["bandpass_uid"]), "t_xel": int(r["t_xel"])}
            for r in table}


def same_curve(body: bytes, obs_id: str) -> bytes:
    """A light curve without what differs between deployments: the uuid and the request date."""
    return re.sub(rb'<INFO name="request_date" value="[^"]*"/>', b"REQUEST_DATE",
                  body.replace(obs_id.encode(), b"UUID"))


def test_light_curves_are_identical_to_the_embedded_stores(
        backends_server: LiveServer, sqlite_server: LiveServer) -> None:
    ours, theirs = series(backends_server), series(sqlite_server)
    assert ours.keys() == theirs.keys() and len(ours) > 10
    for key in sorted(ours)[:12]:
        a, b = ours[key], theirs[key]
        for query in ("", "?RESPONSEFORMAT=votable/td", "?RESPONSEFORMAT=csv"):
            body_a = requests.get(f"{backends_server.url}/lightcurve/{a['obs_id']}/"
                                  f"{a['bandpass_uid']}{query}", auth=ADMIN, timeout=60).content
            body_b = requests.get(f"{sqlite_server.url}/lightcurve/{b['obs_id']}/"
                                  f"{b['bandpass_uid']}{query}", auth=ADMIN, timeout=60).content
            assert same_curve(body_a, a["obs_id"]) == same_curve(body_b, b["obs_id"]), (
                key, query)


def test_vo_clients_on_the_production_stores(backends_server: LiveServer) -> None:
    url = backends_server.url
    rows = [r for r in series(backends_server).values()]
    assert rows
    tap = pyvo.dal.TAPService(f"{url}/tap")
    found = tap.run_sync("SELECT COUNT(*) AS n FROM ivoa.obscore").to_table()
    assert int(found["n"][0]) > 0
    ssa = pyvo.dal.SSAService(f"{url}/ssa")
    records = ssa.search(pos=(282.519975, 33.362667), diameter=0.1)
    assert len(records) > 0
    curve = parse_votable(io.BytesIO(requests.get(records[0].getdataurl(), timeout=60).content))
    times = np.asarray(curve.get_first_table().array["time"])
    assert len(times) > 0 and np.all(np.diff(times) > 0)
    frames_seen = 0
    for row in rows:
        links = parse_votable(io.BytesIO(requests.get(
            f"{url}/datalink", params={"ID": row["did"]}, auth=ADMIN, timeout=60).content))
        table = links.get_first_table().to_table()
        for link in table:
            if str(link["local_semantics"]) == "frame":
                response = requests.get(str(link["access_url"]), auth=ADMIN, timeout=60)
                assert response.status_code == 200 and response.content.startswith(b"\x89PNG")
                assert len(response.content) == int(link["content_length"])
                frames_seen += 1
        if frames_seen >= 3:
            break
    assert frames_seen >= 3, "frames must come back from the HBase store"
    sia = pyvo.dal.SIA2Service(f"{url}/sia")
    images = sia.search(pos=(282.519975, 33.362667, 1.0))
    assert all(str(r["access_url"]).startswith(f"{url}/frame/") for r in images)


def test_tap_through_mysqlclient(backends_server: LiveServer) -> None:
    """Uploads (temporary tables), MAXREC cuts and errors through the C driver."""
    from astropy.table import Table

    tap = pyvo.dal.TAPService(f"{backends_server.url}/tap")
    targets = tap.run_sync("SELECT target, right_ascension, declination FROM skvo.target"
                           ).to_table()
    assert len(targets) > 2
    mine = Table({"ra": [float(r) + 0.01 for r in targets["right_ascension"][:2]],
                  "dec": [float(d) for d in targets["declination"][:2]],
                  "label": ["first", "second"]})
    result = tap.run_sync(
        "SELECT u.label, t.target FROM TAP_UPLOAD.mine AS u JOIN skvo.target AS t "
        "ON 1 = CONTAINS(POINT('ICRS', t.right_ascension, t.declination), "
        "CIRCLE('ICRS', u.ra, u.dec, 0.05))", uploads={"mine": mine}).to_table()
    got = {(str(r["label"]), str(r["target"])) for r in result}
    assert ("first", str(targets["target"][0])) in got
    assert ("second", str(targets["target"][1])) in got
    cut = tap.run_sync("SELECT target FROM skvo.target", maxrec=2)
    assert len(cut) == 2 and cut.query_status == "OVERFLOW"
    with pytest.raises(pyvo.dal.DALQueryError) as failed:
        tap.run_sync("SELECT target FROM skvo.nosuch")
    assert "nosuch" in str(failed.value)


def test_lint_and_cone_clients_on_the_production_stores(backends_server: LiveServer,
                                                        tmp_path: Path) -> None:
    """votlint, datalinklint and pyvo's cone search against the OpenTSDB/HBase deployment."""
    import subprocess

    url = backends_server.url
    rows = sorted(series(backends_server).values(), key=lambda r: -r["t_xel"])
    open_rows = [r for r in rows if requests.get(
        f"{url}/lightcurve/{r['obs_id']}/{r['bandpass_uid']}", timeout=60).status_code == 200]
    assert open_rows, "an open series must be served anonymously"
    row = open_rows[0]
    curve = f"{url}/lightcurve/{row['obs_id']}/{row['bandpass_uid']}"
    for query in ("", "?RESPONSEFORMAT=votable/td", "?PERIOD=0.5&BIN=0.1"):
        lint = subprocess.run(["stilts", "votlint", f"votable={curve}{query}"],
                              capture_output=True, text=True, timeout=120)
        assert lint.returncode == 0 and lint.stdout.strip() == "", lint.stdout
    links = requests.get(f"{url}/datalink", params={"ID": row["did"]}, timeout=60).content
    path = tmp_path / "links.xml"
    path.write_bytes(links)
    lint = subprocess.run(["stilts", "datalinklint", f"votable={path}"], capture_output=True,
                          text=True, timeout=120)
    assert "Errors: 0; Warnings: 0" in lint.stdout, lint.stdout[-2000:]
    targets = pyvo.dal.SCSService(f"{url}/scs").search(pos=(282.519975, 33.362667), radius=0.1)
    assert len(targets) >= 1 and all(t.id for t in targets)


def test_frames_are_served_after_a_thrift_restart(backends_server: LiveServer) -> None:
    """A restarted HBase Thrift server breaks every open connection; frames still come."""
    url = backends_server.url
    frame_urls = []
    for row in series(backends_server).values():
        links = parse_votable(io.BytesIO(requests.get(
            f"{url}/datalink", params={"ID": row["did"]}, auth=ADMIN, timeout=60).content))
        frame_urls += [str(link["access_url"]) for link in links.get_first_table().to_table()
                       if str(link["local_semantics"]) == "frame"]
        if len(frame_urls) >= 4:
            break
    assert frame_urls
    for _ in range(2):  # warm every worker's connection, then break them all
        for frame in frame_urls:
            assert requests.get(frame, auth=ADMIN, timeout=60).status_code == 200
        backends_server.hbase.restart()  # type: ignore[attr-defined]
    for frame in frame_urls:
        response = requests.get(frame, auth=ADMIN, timeout=60)
        assert response.status_code == 200 and response.content.startswith(b"\x89PNG")
