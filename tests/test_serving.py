"""``skvo serve`` under hostile clients, and request bodies (live server, SQLite).

The service keeps answering cone searches and TAP queries while hundreds of
connections trickle headers, send nothing, idle on keep-alive or sit in UWS
WAIT; oversized bodies are 413 and malformed multipart bodies 400, both as DALI
error VOTables; a chunked POST works.  How fast it stays is measured in
bench/bench_load.py, not here.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import re
import select
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest
import requests
from astropy.io.votable import parse
from conftest import LiveServer

#: generous: the normal requests must be answered, not answered fast
ANSWER_TIMEOUT = 10.0
ALGOL = {"RA": "47.04", "DEC": "40.96", "SR": "0.05"}
TAP_QUERY = "SELECT target FROM skvo.target WHERE target = 'bet_Lyr'"


def address(server: LiveServer) -> tuple[str, int]:
    """(host, port) of the live server."""
    parts = urlsplit(server.url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def scs_answered(url: str) -> None:
    """A cone search on Algol is answered with Algol."""
    response = requests.get(f"{url}/scs", params=ALGOL, timeout=ANSWER_TIMEOUT)
    assert response.status_code == 200
    rows = parse(io.BytesIO(response.content)).get_first_table().to_table()
    assert list(rows["target_name"]) == ["Algol"]


def tap_answered(url: str) -> None:
    """A TAP sync query is answered with its row."""
    response = requests.post(f"{url}/tap/sync", data={"LANG": "ADQL", "QUERY": TAP_QUERY,
                                                      "RESPONSEFORMAT": "csv"},
                             timeout=ANSWER_TIMEOUT)
    assert response.status_code == 200
    assert response.text.split() == ["target", "bet_Lyr"]


def normal_requests_answered(url: str, rounds: int = 4) -> None:
    """Concurrent SCS and TAP requests all get their correct answers."""
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(check, url) for _ in range(rounds)
                   for check in (scs_answered, tap_answered)]
        for future in futures:
            future.result()


def is_dali_error(body: bytes) -> bool:
    """Whether a body is a DALI error VOTable."""
    return b"QUERY_STATUS" in body and b'value="ERROR"' in body


@contextmanager
def sockets(server: LiveServer, n: int) -> Iterator[list[socket.socket]]:
    """n TCP connections to the server, closed at the end."""
    opened: list[socket.socket] = []
    try:
        for _ in range(n):
            opened.append(socket.create_connection(address(server), timeout=10))
        yield opened
    finally:
        for sock in opened:
            sock.close()


@pytest.fixture(scope="module")
def live(sqlite_server: LiveServer) -> LiveServer:
    """The SQLite live server, checked to answer before each hostile test."""
    scs_answered(sqlite_server.url)
    return sqlite_server


# --------------------------------------------------------------------------
# Hostile clients


def test_answers_while_200_clients_trickle_headers(live: LiveServer) -> None:
    stop = threading.Event()
    with sockets(live, 200) as slow:
        for sock in slow:
            sock.sendall(b"GET /tap/availability HTTP/1.1\r\nHost: x\r\n")

        def trickle() -> None:
            while not stop.is_set():
                for sock in slow:
                    with contextlib.suppress(OSError):
                        sock.send(b"a")  # one header byte per 0.5 s, never ending
                stop.wait(0.5)

        header = b"X-Slow: "
        for sock in slow:
            sock.sendall(header)
        thread = threading.Thread(target=trickle, daemon=True)
        thread.start()
        try:
            time.sleep(1.0)
            normal_requests_answered(live.url)
        finally:
            stop.set()
            thread.join()


def test_answers_while_500_connections_send_nothing(live: LiveServer) -> None:
    with sockets(live, 500):
        normal_requests_answered(live.url)


def test_answers_while_500_keepalive_connections_idle(live: LiveServer) -> None:
    host, port = address(live)
    idle: list[http.client.HTTPConnection] = []
    try:
        for _ in range(500):
            conn = http.client.HTTPConnection(host, port, timeout=ANSWER_TIMEOUT)
            conn.request("GET", "/tap/availability")
            response = conn.getresponse()
            response.read()
            assert response.status == 200
            assert response.getheader("Connection", "").lower() != "close"
            idle.append(conn)
        normal_requests_answered(live.url)
        # the idle connections are still usable (keep-alive)
        conn = idle[0]
        conn.request("GET", "/tap/availability")
        assert conn.getresponse().status == 200
    finally:
        for conn in idle:
            conn.close()


def pending_job(url: str) -> str:
    """A new PENDING async job; its URL."""
    response = requests.post(f"{url}/tap/async", data={"LANG": "ADQL", "QUERY": TAP_QUERY},
                             allow_redirects=False, timeout=ANSWER_TIMEOUT)
    assert response.status_code == 303
    return response.headers["Location"]


def wait_request(job_url: str, client: str, seconds: int) -> str:
    """GET the job with WAIT from a given loopback source address; the phase answered."""
    parts = urlsplit(job_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=seconds + 30,
                                      source_address=(client, 0))
    try:
        conn.request("GET", f"{parts.path}?WAIT={seconds}")
        response = conn.getresponse()
        body = response.read()
        assert response.status == 200
        match = re.search(rb"<uws:phase>(\w+)</uws:phase>", body)
        assert match, body[:300]
        return match.group(1).decode()
    finally:
        conn.close()


def test_answers_while_64_clients_wait_on_a_pending_job(live: LiveServer) -> None:
    job = pending_job(live.url)
    clients = [f"127.0.0.{2 + i // 2}" for i in range(64)]  # 32 addresses, 2 WAITs each
    with ThreadPoolExecutor(64) as pool:
        waits = [pool.submit(wait_request, job, client, 20) for client in clients]
        time.sleep(1.0)
        normal_requests_answered(live.url)
        phases = [w.result() for w in waits]
    assert phases == ["PENDING"] * 64
    requests.delete(job, timeout=ANSWER_TIMEOUT)


def test_wait_returns_when_the_phase_changes(live: LiveServer) -> None:
    job = pending_job(live.url)
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(wait_request, job, "127.0.0.200", 60)
        time.sleep(1.0)
        response = requests.post(f"{job}/phase", data={"PHASE": "ABORT"},
                                 allow_redirects=False, timeout=ANSWER_TIMEOUT)
        assert response.status_code == 303
        # the client's timeout (WAIT + 30 s) is not what ends it: the phase change is
        assert waiting.result() == "ABORTED"
    requests.delete(job, timeout=ANSWER_TIMEOUT)


# --------------------------------------------------------------------------
# Request bodies


def read_response(sock: socket.socket, timeout: float = ANSWER_TIMEOUT) -> bytes:
    """Everything the server sends until it closes or pauses for ``timeout``."""
    sock.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            return data
        if not chunk:
            return data
        data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = re.search(rb"(?i)content-length:\s*(\d+)", head)
        if length and len(body) >= int(length.group(1)):
            return data


@pytest.mark.parametrize("path", ["/tap/sync", "/tap/async", "/scs"])
def test_oversized_content_length_refused_before_the_body(live: LiveServer, path: str) -> None:
    with sockets(live, 1) as (sock,):
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\n"
                     "Content-Type: application/x-www-form-urlencoded\r\n"
                     f"Content-Length: {200 * 1024 * 1024}\r\n\r\n".encode())
        answer = read_response(sock)  # no byte of the body was sent
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert is_dali_error(answer)
    assert b"max_body_bytes" in answer


def test_oversized_content_length_plain_text_off_vo_paths(live: LiveServer) -> None:
    with sockets(live, 1) as (sock,):
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\n")
        answer = read_response(sock)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"text/plain" in answer


def test_oversized_chunked_body_refused(live: LiveServer) -> None:
    limit = 20_000_000 + (1 << 20)  # the default: upload_max_bytes + 1 MiB
    chunk = b"x" * (1 << 20)
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    answer = b""
    with sockets(live, 1) as (sock,):
        sock.sendall(b"POST /tap/sync HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\n\r\n")
        sent = 0
        while sent <= 2 * limit:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(frame)
            except OSError:
                break
            sent += len(chunk)
        answer = read_response(sock)
    assert sent < 2 * limit, "the server read twice the limit without refusing"
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert is_dali_error(answer)


def test_chunked_tap_query_works(live: LiveServer) -> None:
    def body() -> Iterator[bytes]:
        yield b"LANG=ADQL&RESPONSEFORMAT=csv&"
        yield b"QUERY=" + requests.utils.quote(TAP_QUERY).encode()

    response = requests.post(f"{live.url}/tap/sync", data=body(), timeout=ANSWER_TIMEOUT,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert response.status_code == 200
    assert response.text.split() == ["target", "bet_Lyr"]


def test_chunked_async_job_creation_works(live: LiveServer) -> None:
    def body() -> Iterator[bytes]:
        yield b"LANG=ADQL&QUERY=" + requests.utils.quote(TAP_QUERY).encode()

    response = requests.post(f"{live.url}/tap/async", data=body(), allow_redirects=False,
                             headers={"Content-Type": "application/x-www-form-urlencoded"},
                             timeout=ANSWER_TIMEOUT)
    assert response.status_code == 303
    job = response.headers["Location"]
    assert TAP_QUERY.encode() in requests.get(job, timeout=ANSWER_TIMEOUT).content
    requests.delete(job, timeout=ANSWER_TIMEOUT)


PART = (b'--abc\r\nContent-Disposition: form-data; name="QUERY"\r\n\r\n'
        + TAP_QUERY.encode() + b"\r\n")
MALFORMED: dict[str, tuple[str, bytes, str]] = {
    "missing boundary": ("multipart/form-data", PART + b"--abc--\r\n", "no boundary"),
    "wrong boundary": ("multipart/form-data; boundary=zzz", PART + b"--abc--\r\n", "--zzz"),
    "truncated": ("multipart/form-data; boundary=abc", PART[:-20], "truncated"),
    "garbage": ("multipart/form-data; boundary=abc", bytes(range(256)) * 8, "--abc"),
    "invalid boundary": ("multipart/form-data; boundary=" + "b" * 201,
                         b"--" + b"b" * 201 + b"\r\n", "not a valid boundary"),
    "control character in the boundary": ('multipart/form-data; boundary="a\x7fb"',
                                          b"--a\x7fb\r\n", "Bad Request"),
    "part without disposition": ("multipart/form-data; boundary=abc",
                                 b"--abc\r\nX: y\r\n\r\nz\r\n--abc--\r\n", "Content-Disposition"),
}


@pytest.mark.parametrize("path", ["/tap/sync", "/tap/async"])
@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_multipart_is_a_dali_400(live: LiveServer, path: str, case: str) -> None:
    content_type, body, named = MALFORMED[case]
    response = requests.post(f"{live.url}{path}", data=body, timeout=ANSWER_TIMEOUT,
                             headers={"Content-Type": content_type}, allow_redirects=False)
    assert response.status_code == 400
    assert is_dali_error(response.content)
    assert named.encode() in response.content


def test_multipart_upload_still_works(live: LiveServer) -> None:
    votable = (b'<?xml version="1.0"?><VOTABLE version="1.4" '
               b'xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE><TABLE>'
               b'<FIELD name="ra" datatype="double"/><FIELD name="dec" datatype="double"/>'
               b"<DATA><TABLEDATA><TR><TD>47.04</TD><TD>40.96</TD></TR></TABLEDATA></DATA>"
               b"</TABLE></RESOURCE></VOTABLE>")
    query = ("SELECT u.ra, t.target FROM TAP_UPLOAD.mine AS u JOIN skvo.target AS t ON "
             "1 = CONTAINS(POINT('ICRS', t.right_ascension, t.declination), "
             "CIRCLE('ICRS', u.ra, u.dec, 0.05))")
    response = requests.post(f"{live.url}/tap/sync", timeout=ANSWER_TIMEOUT,
                             data={"LANG": "ADQL", "QUERY": query, "UPLOAD": "mine,param:mine",
                                   "RESPONSEFORMAT": "csv"},
                             files={"mine": ("mine.xml", votable)})
    assert response.status_code == 200, response.text[:500]
    assert response.text.split() == ["ra,target", "47.04,Algol"]


def test_topcat_boundary_is_accepted(live: LiveServer) -> None:
    boundary = "<<<--------------MULTIPART-BOUNDARY------->>>"  # STIL's, outside RFC 2046
    fields = {"LANG": "ADQL", "QUERY": TAP_QUERY, "RESPONSEFORMAT": "csv"}
    body = b"".join(
        f'\r\n--{boundary}\r\nContent-Type: text/plain; charset=UTF-8\r\n'
        f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}'.encode()
        for name, value in fields.items()) + f"\r\n--{boundary}--\r\n".encode()
    content_type = f'multipart/form-data; boundary="{boundary}"'
    response = requests.post(f"{live.url}/tap/sync", data=body, timeout=ANSWER_TIMEOUT,
                             headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text[:500]
    assert response.text.split() == ["target", "bet_Lyr"]


def test_start_warns_about_basic_credentials_over_http(live: LiveServer) -> None:
    assert "is not https" in live.log.read_text()
