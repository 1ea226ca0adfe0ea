"""Clients that leave mid-request give every database connection back.

Raw sockets against the real ``skvo serve`` (SQLite and MariaDB): each
streaming route is requested by the hundred and the socket is reset
(SO_LINGER 0) at once, after 50 ms, or after a few bytes of the answer.
Then the service must still answer normal requests, as many at once as the
web workers have request threads: a connection leaked per aborted request
would have emptied the pools (answered 503 after the pool timeout).
"""

from __future__ import annotations

import io
import socket
import struct
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode, urlsplit

import pytest
import requests
from astropy.io.votable import parse as parse_votable
from conftest import LiveServer
from lxml import etree

#: aborted requests per route and way of leaving (x 3 ways x 9 routes per server)
ABORTS = 16


def _tap_csv(server: LiveServer, query: str) -> list[list[str]]:
    response = requests.get(f"{server.url}/tap/sync", params={
        "LANG": "ADQL", "QUERY": query, "RESPONSEFORMAT": "csv"}, timeout=60)
    response.raise_for_status()
    return [line.split(",") for line in response.text.splitlines()[1:]]


def _frame_path(server: LiveServer, dids: list[str]) -> str:
    for did in dids:
        body = requests.get(f"{server.url}/datalink", params={"ID": did}, timeout=30).content
        table = parse_votable(io.BytesIO(body)).get_first_table().to_table()
        for row in table:
            if str(row["local_semantics"]) == "frame":
                return urlsplit(str(row["access_url"])).path
    raise AssertionError("the sample data must hold frames of open series")


def _async_result_path(server: LiveServer) -> str:
    response = requests.post(f"{server.url}/tap/async", data={
        "LANG": "ADQL", "QUERY": "SELECT * FROM ivoa.obscore", "PHASE": "RUN"},
        allow_redirects=False, timeout=30)
    job = response.headers["Location"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        phase = requests.get(f"{job}/phase", timeout=30).text.strip()
        if phase == "COMPLETED":
            return urlsplit(f"{job}/results/result").path
        assert phase in ("PENDING", "QUEUED", "EXECUTING"), phase
        requests.get(job, params={"WAIT": "5", "PHASE": phase}, timeout=30)
    raise AssertionError("the async job did not complete in 120 s")


def _upload_request(path: str) -> tuple[str, bytes, dict[str, str]]:
    boundary = uuid.uuid4().hex
    table = (b'<?xml version="1.0"?><VOTABLE version="1.4" '
             b'xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE><TABLE>'
             b'<FIELD name="ra" datatype="double"/><FIELD name="dec" datatype="double"/>'
             b"<DATA><TABLEDATA><TR><TD>47.04</TD><TD>40.96</TD></TR></TABLEDATA></DATA>"
             b"</TABLE></RESOURCE></VOTABLE>")
    fields = {"LANG": "ADQL", "UPLOAD": "mine,param:mine",
              "QUERY": "SELECT u.ra, t.target FROM TAP_UPLOAD.mine AS u, skvo.target AS t"}
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
             .encode() for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="mine"; '
                 f'filename="mine.xml"\r\nContent-Type: application/x-votable+xml\r\n\r\n'
                 .encode() + table + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return path, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


@pytest.fixture(scope="module")
def routes(server: LiveServer) -> dict[str, tuple[str, bytes | None, dict[str, str]]]:
    """Every streaming route: name -> (path with query, POST body or None, headers)."""
    series = _tap_csv(server, "SELECT obs_id, bandpass_uid, obs_publisher_did, s_ra, s_dec "
                              "FROM ivoa.obscore WHERE access_rights = 'open'")
    obs, band, _did, ra, dec = series[0]
    tap_query = urlencode({"LANG": "ADQL", "QUERY": "SELECT * FROM ivoa.obscore"})
    return {
        "scs": (f"/scs?RA={ra}&DEC={dec}&SR=10&VERB=3", None, {}),
        "ssa": ("/ssa?REQUEST=queryData", None, {}),
        "sia": ("/sia?MAXREC=1000", None, {}),
        "datalink": ("/datalink?" + urlencode([("ID", s[2]) for s in series[:20]]), None, {}),
        "tap_sync": (f"/tap/sync?{tap_query}", None, {}),
        "tap_upload": _upload_request("/tap/sync"),
        "lightcurve": (f"/lightcurve/{obs}/{band}", None, {}),
        "multiband": (f"/lightcurve/{obs}", None, {}),
        "frame": (_frame_path(server, [s[2] for s in series]), None, {}),
        "async_result": (_async_result_path(server), None, {}),
    }


def _abort(server: LiveServer, path: str, body: bytes | None, headers: dict[str, str],
           how: str) -> None:
    """Send one request and reset the connection: ``now``, ``50ms`` or ``read``."""
    host = urlsplit(server.url)
    method = "POST" if body is not None else "GET"
    head = [f"{method} {path} HTTP/1.1", f"Host: {host.netloc}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    if body is not None:
        head.append(f"Content-Length: {len(body)}")
    data = ("\r\n".join(head) + "\r\n\r\n").encode() + (body or b"")
    sock = socket.create_connection((host.hostname, host.port), timeout=30)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.sendall(data)
        if how == "50ms":
            time.sleep(0.05)
        elif how == "read":
            sock.recv(64)
    finally:
        sock.close()  # SO_LINGER 0: a reset, not an orderly close


def _normal(server: LiveServer, path: str, body: bytes | None,
            headers: dict[str, str]) -> int:
    url = server.url + path
    if body is None:
        response = requests.get(url, timeout=60)
    else:
        response = requests.post(url, data=body, headers=headers, timeout=60)
    assert len(response.content) > 0
    return response.status_code


def _threads(server: LiveServer) -> int:
    settings = server.dep.settings()
    return settings.get("server", "threads") * settings.get("server", "workers")


@pytest.mark.parametrize("how", ["now", "50ms", "read"])
def test_aborted_requests_return_their_connections(
        server: LiveServer, routes: dict[str, tuple[str, bytes | None, dict[str, str]]],
        how: str) -> None:
    with ThreadPoolExecutor(max_workers=ABORTS) as pool:
        for name, (path, body, headers) in routes.items():
            list(pool.map(lambda _i, p=path, b=body, h=headers: _abort(server, p, b, h, how),
                          range(ABORTS)))
            assert _normal(server, path, body, headers) == 200, name
    # as many requests at once as there are request threads: each needs a connection
    n = _threads(server)
    path, body, headers = routes["tap_sync"]
    with ThreadPoolExecutor(max_workers=n) as pool:
        statuses = list(pool.map(lambda _i: _normal(server, path, body, headers), range(2 * n)))
    assert statuses == [200] * (2 * n)
    for name, (path, body, headers) in routes.items():
        assert _normal(server, path, body, headers) == 200, name


def test_a_full_pool_answers_503_with_retry_after(sqlite_deployment) -> None:
    """No free connection within [metadata] pool_timeout: a DALI error 503, not a hang."""
    from dataclasses import replace

    from voservice.app import create_app
    from voservice.context import open_services

    settings = sqlite_deployment.settings()
    values = {k: dict(v) for k, v in settings.values.items()}
    values["server"]["threads"] = 1
    values["metadata"]["pool_timeout"] = 0.5
    settings = replace(settings, values=values)
    svc = open_services(settings)
    client = create_app(settings, svc).test_client()
    held = [svc.engine.connect() for _ in range(1 + 4)]  # pool_size 1 + overflow 4
    try:
        response = client.get("/scs?RA=47.04&DEC=40.96&SR=1")
        assert response.status_code == 503
        assert response.headers["Retry-After"].isdigit()
        root = etree.fromstring(response.data)
        info = root.find(".//{*}INFO[@name='QUERY_STATUS']")
        assert info.get("value") == "ERROR" and "busy" in info.text
    finally:
        for conn in held:
            conn.close()
    response = client.get("/scs?RA=47.04&DEC=40.96&SR=1")
    assert response.status_code == 200
    svc.engine.dispose()
