"""Public URLs behind a reverse proxy: fixed, or from trusted forwarded headers only.

Three ``skvo serve`` processes over copies of the SQLite sample deployment, each
with its own [server] settings; requests come from loopback source addresses so that
127.0.0.1 can be a trusted proxy and 127.0.0.2 a stranger.
"""

from __future__ import annotations

import http.client
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import Deployment, LiveServer, free_port, write_ini
from lxml import etree

PROXY, STRANGER = "127.0.0.1", "127.0.0.2"
SPOOF = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https",
         "X-Forwarded-Port": "666", "X-Forwarded-Prefix": "/evil",
         "X-Forwarded-For": "6.6.6.6", "Forwarded": "for=6.6.6.6;host=evil.example;proto=https"}


def request(server: LiveServer, path: str, headers: dict[str, str] | None = None,
            source: str = PROXY, method: str = "GET", body: str | None = None
            ) -> tuple[int, dict[str, str], bytes]:
    """One request from a chosen loopback address; ``Host`` defaults to the server's."""
    conn = http.client.HTTPConnection("127.0.0.1", server.dep.port, timeout=60,
                                      source_address=(source, 0))
    try:
        conn.request(method, path, body=body,
                     headers={"Host": f"127.0.0.1:{server.dep.port}", **(headers or {})})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def access_urls(xml: bytes) -> list[str]:
    """Every accessURL of a VOSI capabilities document."""
    return [e.text or "" for e in etree.fromstring(xml).iter("accessURL")]


def logged_address(server: LiveServer, marker: str) -> str:
    """The client address of the access-log line whose target contains ``marker``."""
    for _ in range(30):
        for line in server.log.read_text(errors="replace").splitlines():
            if marker in line and " - - [" in line:
                return line.split(" ", 1)[0]
        time.sleep(0.1)
    raise AssertionError(f"no access-log line has {marker}")


@pytest.fixture(scope="module")
def variant(sqlite_deployment: Deployment, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Callable[..., LiveServer]]:
    """Start ``skvo serve`` on the sample database with other [server] settings."""
    started: list[LiveServer] = []
    src = sqlite_deployment.root

    def start(**server: str) -> LiveServer:
        root = tmp_path_factory.mktemp("proxy-variant")
        port = free_port()
        # a copy of the database: async jobs live in it, and any runner on it takes them
        db, copy = sqlite3.connect(src / "skvo.sqlite"), sqlite3.connect(root / "skvo.sqlite")
        try:
            db.backup(copy)
        finally:
            db.close()
            copy.close()
        config = write_ini(root, "sqlite:///skvo.sqlite", port,
                           general={"base_path": str(src / "data")},
                           media={"backend": "files", "path": str(src / "media")},
                           server={"workers": "1", "threads": "4", **server})
        live = LiveServer(Deployment(root=root, config=config, port=port))
        live.start()
        started.append(live)
        return live

    yield start
    for live in started:
        live.stop()


@pytest.fixture(scope="module")
def fixed(variant: Callable[..., LiveServer]) -> LiveServer:
    """public_url with a prefix; 127.0.0.1 is a trusted proxy (for the client address)."""
    return variant(public_url="https://vo.example.org/skvo", trusted_proxies="127.0.0.1")


@pytest.fixture(scope="module")
def forwarded(variant: Callable[..., LiveServer]) -> LiveServer:
    """No public_url; RFC 7239 Forwarded from the trusted proxy 127.0.0.1."""
    return variant(public_url="", trusted_proxies="127.0.0.1/32", proxy_headers="forwarded")


@pytest.fixture(scope="module")
def wildcard(variant: Callable[..., LiveServer]) -> LiveServer:
    """Every interface (0.0.0.0), no public_url, no trusted proxy (the defaults)."""
    return variant(host="0.0.0.0", public_url="")


# --------------------------------------------------------------------------
# A fixed public_url


@pytest.mark.parametrize("path", ["/tap/capabilities", "/skvo/tap/capabilities"])
def test_fixed_public_url_wins_over_forwarded_headers(fixed: LiveServer, path: str) -> None:
    """The proxy may strip the prefix or pass it; forwarded headers never change URLs."""
    status, _, body = request(fixed, path, SPOOF)
    assert status == 200
    urls = access_urls(body)
    assert urls and all(u.startswith("https://vo.example.org/skvo/tap") for u in urls), urls


def test_fixed_prefix_for_pages_static_files_and_jobs(fixed: LiveServer) -> None:
    status, _, page = request(fixed, "/skvo/")
    assert status == 200
    assert b'href="/skvo/static/' in page and b'href="/static/' not in page
    status, headers, _ = request(fixed, "/skvo/static/skvo.css")
    assert status == 200 and headers["content-type"].startswith("text/css")
    status, headers, _ = request(
        fixed, "/skvo/tap/async", method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body="LANG=ADQL&QUERY=SELECT+TOP+1+target+FROM+skvo.target")
    assert status == 303
    job = headers["location"]
    assert job.startswith("https://vo.example.org/skvo/tap/async/"), job
    status, _, _ = request(fixed, job.removeprefix("https://vo.example.org"), method="DELETE")
    assert status == 303


def test_client_address_from_the_trusted_proxy(fixed: LiveServer) -> None:
    """X-Forwarded-For: the rightmost address that is no trusted proxy is the client."""
    request(fixed, "/tap/availability?m=xff-trusted",
            {"X-Forwarded-For": "6.6.6.6, 203.0.113.5, 127.0.0.1"})
    assert logged_address(fixed, "m=xff-trusted") == "203.0.113.5"
    request(fixed, "/tap/availability?m=xff-stranger", {"X-Forwarded-For": "6.6.6.6"},
            source=STRANGER)
    assert logged_address(fixed, "m=xff-stranger") == STRANGER


# --------------------------------------------------------------------------
# URLs from the trusted proxy's RFC 7239 Forwarded header


def test_forwarded_header_of_a_trusted_proxy_builds_the_urls(forwarded: LiveServer) -> None:
    status, _, body = request(forwarded, "/ssa/capabilities?m=fwd", {
        "Forwarded": 'for=6.6.6.6, for="[2001:db8::7]:4711";proto=https;host=vo.example.net:8443',
        "X-Forwarded-Prefix": "/vo/", "X-Forwarded-Host": "evil.example"})
    assert status == 200
    urls = access_urls(body)
    assert urls and all(u.startswith("https://vo.example.net:8443/vo/ssa") for u in urls), urls
    assert logged_address(forwarded, "m=fwd") == "2001:db8::7"
    # the default port of the scheme is left out
    _, _, body = request(forwarded, "/scs/capabilities",
                         {"Forwarded": "proto=https;host=vo.example.net"})
    assert all(u.startswith("https://vo.example.net/scs") for u in access_urls(body))


@pytest.mark.parametrize("header", [
    'host="evil.example/x"', "host=\"a'b\"", "proto=gopher;host=a b",
])
def test_malformed_forwarded_values_are_ignored(forwarded: LiveServer, header: str) -> None:
    _, _, body = request(forwarded, "/tap/capabilities",
                         {"Forwarded": header, "X-Forwarded-Prefix": "/../x"})
    base = f"http://127.0.0.1:{forwarded.dep.port}/tap"
    urls = access_urls(body)
    assert urls and all(u.startswith(base) for u in urls), urls


def test_a_stranger_cannot_change_the_urls(forwarded: LiveServer) -> None:
    """Forwarded headers from an address that is no trusted proxy are dropped unread."""
    status, _, body = request(forwarded, "/sia/capabilities?m=stranger", SPOOF,
                              source=STRANGER)
    assert status == 200
    urls = access_urls(body)
    own = f"http://127.0.0.1:{forwarded.dep.port}/sia"
    assert urls and all(u.startswith(own) for u in urls), urls
    assert logged_address(forwarded, "m=stranger") == STRANGER


# --------------------------------------------------------------------------
# Every interface without public_url


def test_wildcard_host_warns_and_uses_the_request_host(wildcard: LiveServer) -> None:
    log = wildcard.log.read_text()
    assert "WARNING: listening on 0.0.0.0 without [server] public_url" in log
    assert "no proxy is trusted" in log
    status, _, body = request(wildcard, "/tap/capabilities", SPOOF)  # no proxy is trusted
    assert status == 200
    own = f"http://127.0.0.1:{wildcard.dep.port}/tap"
    assert all(u.startswith(own) for u in access_urls(body))
    query = "LANG=ADQL&RESPONSEFORMAT=csv&QUERY=SELECT+TOP+2+access_url+FROM+ivoa.obscore"
    status, _, body = request(wildcard, "/tap/sync?" + query,
                              {"Host": "archive.example:8080"})
    assert status == 200
    assert body.count(b"http://archive.example:8080/datalink?ID=") == 2
    assert b"0.0.0.0" not in body


@pytest.mark.parametrize("host", [None, "evil.example'/x", "a b"])
def test_without_a_usable_host_the_machine_name_is_used(wildcard: LiveServer,
                                                         host: str | None) -> None:
    """HTTP/1.0 without Host, or a malformed one: http://<host name>:<port>, never 0.0.0.0."""
    with socket.create_connection(("127.0.0.1", wildcard.dep.port), timeout=30) as sock:
        head = "GET /scs/capabilities HTTP/1.0\r\n"
        if host is not None:
            head += f"Host: {host}\r\n"
        sock.sendall((head + "\r\n").encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    assert b" 200 " in status_line, answer[:300]
    body = rest.partition(b"\r\n\r\n")[2]
    urls = access_urls(body)
    expected = f"http://{socket.gethostname()}:{wildcard.dep.port}/scs"
    assert urls and all(u.startswith(expected) for u in urls), urls
    assert b"0.0.0.0" not in body


def test_async_results_carry_the_url_the_client_used(wildcard: LiveServer,
                                                     tmp_path: Path) -> None:
    """URLs made outside a request (async results, by whichever host's runner) are those
    of the request that created the job, never 0.0.0.0."""
    status, headers, _ = request(
        wildcard, "/tap/async", method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body="LANG=ADQL&PHASE=RUN&RESPONSEFORMAT=csv&QUERY=SELECT+TOP+1+access_url+FROM+ivoa.obscore")
    assert status == 303
    job = headers["location"].split(f":{wildcard.dep.port}", 1)[1]
    for _ in range(100):
        _, _, phase = request(wildcard, job + "/phase")
        if phase.strip() in (b"COMPLETED", b"ERROR"):
            break
        time.sleep(0.1)
    assert phase.strip() == b"COMPLETED", request(wildcard, job + "/error")[2]
    _, _, result = request(wildcard, job + "/results/result")
    base = headers["location"].split("/tap/async", 1)[0]
    assert "0.0.0.0" not in base
    assert f"{base}/datalink".encode() in result
    assert b"0.0.0.0" not in result
    request(wildcard, job, method="DELETE")
