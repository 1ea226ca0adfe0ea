"""UPLOAD=name,http(s)://...: the service fetches public hosts only, within limits.

A test HTTP server on 127.0.0.1 plays both the target an attacker wants to
reach (loopback) and, through the operator allow-list, a permitted host
whose redirects, sizes and speed are hostile.  It records every request.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from voservice.errors import UsageError
from voservice.netfetch import FetchError, FetchPolicy, fetch
from voservice.upload import load_uploads

TABLE = (b'<?xml version="1.0"?><VOTABLE version="1.4"><RESOURCE><TABLE>'
         b'<FIELD name="id" datatype="int"/><DATA><TABLEDATA><TR><TD>7</TD></TR>'
         b"</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>")


@dataclass
class Recorder:
    """The test server's address and the requests it got (path, headers)."""

    port: int
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def url(self, path: str, host: str = "localhost") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture(scope="module")
def target() -> Iterator[Recorder]:
    recorder = Recorder(port=0)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            recorder.requests.append((self.path, dict(self.headers.items())))
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if parts.path == "/table":
                self.reply(200, TABLE)
            elif parts.path == "/redirect":
                self.send_response(int(query.get("code", "302")))
                self.send_header("Location", query["to"])
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif parts.path == "/loop":
                self.send_response(302)
                self.send_header("Location", "/loop")
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif parts.path == "/big-declared":
                self.send_response(200)
                self.send_header("Content-Length", str(10**9))
                self.end_headers()
                self.wfile.write(b"x" * 1000)
            elif parts.path == "/big-chunked":
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b"x" * 65536
                for _ in range(40):  # 2.6 MB, more than the limit of the tests
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
            elif parts.path == "/slow":
                self.send_response(200)
                self.send_header("Content-Length", "100")
                self.end_headers()
                for _ in range(100):  # one byte every 0.1 s: 10 s in all
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.1)
            elif parts.path == "/slow-headers":
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                for i in range(100):
                    self.wfile.write(b"X-%d: y\r\n" % i)
                    self.wfile.flush()
                    time.sleep(0.1)
            else:
                self.reply(404, b"no")

        def reply(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    recorder.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield recorder
    server.shutdown()


def policy(**kw: object) -> FetchPolicy:
    return FetchPolicy(**{"max_bytes": 1_000_000, "timeout": 2.0,
                          "allow_hosts": ("localhost",), **kw})  # type: ignore[arg-type]


def fetch_error(url: str, **kw: object) -> str:
    with pytest.raises(FetchError) as info:
        fetch(url, policy(**kw))
    return str(info.value)


def test_loopback_and_private_addresses_in_every_spelling_are_refused(target: Recorder) -> None:
    before = len(target.requests)
    spellings = ["127.0.0.1", "127.1", "2130706433", "0x7f000001", "0177.0.0.1", "[::1]",
                 "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "localhost", "LocalHost", "0.0.0.0",
                 "0", "10.0.0.1", "192.168.1.1", "172.16.0.1", "169.254.169.254",
                 "100.64.0.1", "224.0.0.1", "239.255.255.250", "[ff02::1]", "[fe80::1]",
                 "[fd00::1]", "255.255.255.255", "[::]", "[64:ff9b::7f00:1]"]
    for host in spellings:
        message = fetch_error(f"http://{host}:{target.port}/table", allow_hosts=())
        assert "not a public address" in message, (host, message)
    assert len(target.requests) == before  # nothing reached the server


def test_the_allow_list_admits_a_named_host_and_nothing_else(target: Recorder) -> None:
    assert fetch(target.url("/table"), policy()) == TABLE
    # the name is allowed, not its addresses under another spelling
    assert "not a public address" in fetch_error(target.url("/table", "127.0.0.1"))
    assert fetch(target.url("/table", "127.0.0.1"),
                 policy(allow_hosts=("127.0.0.1/32",))) == TABLE


def test_redirects_are_checked_again(target: Recorder) -> None:
    for to in (f"http://127.0.0.2:{target.port}/table", f"http://[::1]:{target.port}/table",
               f"http://127.0.0.1:{target.port}/table", "http://169.254.169.254/latest/"):
        for code in ("301", "302", "303", "307", "308"):
            message = fetch_error(target.url(f"/redirect?code={code}&to={to}"))
            assert "not a public address" in message, (to, code, message)
    for to, scheme in (("file:///etc/passwd", "file"), ("ftp://127.0.0.1/x", "ftp"),
                       ("data:text/plain,hello", "data"), ("gopher://127.0.0.1:70/", "gopher")):
        message = fetch_error(target.url(f"/redirect?to={to}"))
        assert f"redirect to a {scheme}:" in message, message
    # a redirect to the allowed host itself is followed, a loop is cut
    assert fetch(target.url(f"/redirect?to={target.url('/table')}"), policy()) == TABLE
    assert "more than 5 redirects" in fetch_error(target.url("/loop"))


def test_no_credentials_proxies_or_cookies_are_sent(target: Recorder, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine localhost login alice password wonderland\n")
    monkeypatch.setenv("NETRC", str(netrc))
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9/")  # nothing listens: used = fails
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    before = len(target.requests)
    assert fetch(target.url("/table"), policy()) == TABLE
    [(path, headers)] = target.requests[before:]
    assert path == "/table"
    sent = {k.lower() for k in headers}
    assert not sent & {"authorization", "cookie", "proxy-authorization"}, headers
    assert headers["Host"] == f"localhost:{target.port}"
    assert "credentials" in fetch_error(f"http://alice:wonderland@localhost:{target.port}/table")
    assert "credentials" in fetch_error(f"http://alice@localhost:{target.port}/table")


def test_sizes_are_limited(target: Recorder) -> None:
    assert "1000000000 bytes" in fetch_error(target.url("/big-declared"))
    assert "larger than the limit" in fetch_error(target.url("/big-chunked"))
    assert fetch(target.url("/big-chunked"), policy(max_bytes=3_000_000)) == b"x" * 65536 * 40


def test_slow_answers_are_cut_at_the_total_timeout(target: Recorder) -> None:
    for path in ("/slow", "/slow-headers"):
        started = time.monotonic()
        message = fetch_error(target.url(path), timeout=1.0)
        assert "longer than 1 s" in message, (path, message)
        assert time.monotonic() - started < 5  # cut at 1 s, not after the 10 s trickle


def test_schemes_other_than_http_are_refused(target: Recorder) -> None:
    assert "scheme" in fetch_error("file:///etc/passwd")
    assert "scheme" in fetch_error("ftp://127.0.0.1/")
    assert "does not resolve" in fetch_error("http://no-such-host.invalid/table")


def test_load_uploads_names_the_upload_in_every_refusal(target: Recorder) -> None:
    def load(url: str, hosts: str) -> list:
        return load_uploads([f"mine,{url}"], {}, max_rows=10, max_bytes=1_000_000,
                            allow_hosts=hosts, fetch_timeout=2.0)

    [upload] = load(target.url("/table"), "localhost")
    assert upload.rows == [(7,)]
    for url, hosts, words in (
        (target.url("/table"), "", "not a public address"),
        (target.url("/table", "2130706433"), "localhost", "not a public address"),
        (target.url(f"/redirect?to=http://127.0.0.2:{target.port}/table"), "localhost",
         "not a public address"),
        (target.url("/redirect?to=file:///etc/passwd"), "localhost", "redirect to a file:"),
        (target.url("/big-declared"), "localhost", "limit"),
        (target.url("/nothing"), "localhost", "HTTP 404"),
    ):
        with pytest.raises(UsageError) as info:
            load(url, hosts)
        assert str(info.value).startswith("UPLOAD mine: ") and words in str(info.value), url
