"""TAP_UPLOAD attacks: an uploaded VOTable is read from the bytes sent, within limits.

A corpus of hostile uploads (STREAM href in every scheme, XXE, entity bombs,
XInclude, deep nesting, declared sizes that would allocate gigabytes, garbage)
is refused with a DALI error that names the upload, through /tap/sync and
async jobs, and never returns the bytes of a server file; the module is
checked in-process for memory (tracemalloc) on the size bombs; valid
TABLEDATA, BINARY and BINARY2 tables (100,000 rows too) load correctly.
"""

from __future__ import annotations

import base64
import http.server
import io
import struct
import subprocess
import sys
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
from astropy.table import Table
from conftest import LiveServer
from lxml import etree
from test_tap_async import NS, create_job, job_doc, wait_for

from voservice.errors import UsageError
from voservice.upload import load_uploads

SECRET = "skvo-upload-secret-7f3a9c"
VOTABLE_NS = "http://www.ivoa.net/xml/VOTable/v1.3"
LIMITS = {"max_rows": 100_000, "max_bytes": 20_000_000, "max_columns": 1000}


def votable(table: str, head: str = "", ns: str = f' xmlns="{VOTABLE_NS}"') -> bytes:
    """A VOTable document around one RESOURCE's content."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>{head}<VOTABLE version="1.4"{ns}>'
            f"<RESOURCE>{table}</RESOURCE></VOTABLE>").encode()


def stream_table(href: str, data: str = "BINARY") -> bytes:
    return votable(f'<TABLE><FIELD name="line" datatype="char" arraysize="*"/>'
                   f'<DATA><{data}><STREAM href="{href}" encoding="base64"/></{data}></DATA>'
                   "</TABLE>")


def load(data: bytes, **limits: int) -> list:
    return load_uploads(["t,param:t"], {"t": data}, **{**LIMITS, **limits})


def refused(data: bytes, **limits: int) -> str:
    """The message of the UsageError the upload is refused with."""
    with pytest.raises(UsageError) as info:
        load(data, **limits)
    message = str(info.value)
    assert "UPLOAD t: " in message, message
    assert SECRET not in message
    return message


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secret") / "secret.txt"
    path.write_text(f"{SECRET}\n{SECRET}\n")
    return path


@pytest.fixture(scope="module")
def leak_server(secret_file: Path) -> Iterator[str]:
    """A loopback HTTP server that would hand out the secret (it must never be asked)."""
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            asked.append(self.path)
            body = base64.b64encode(secret_file.read_bytes())
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    assert asked == [], f"the service fetched {asked}"


def hostile(secret_file: Path, leak_url: str) -> dict[str, tuple[bytes, str]]:
    """name -> (upload, words the refusal must contain: one of ``a|b``)."""
    secret = secret_file.as_uri()
    td = ('<TABLE><FIELD name="x" datatype="char" arraysize="*"/><DATA><TABLEDATA>'
          "<TR><TD>{}</TD></TR></TABLEDATA></DATA></TABLE>")
    laughs = ('<!DOCTYPE VOTABLE [<!ENTITY a "lollollollollol">'
              + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">'
                        for i in range(8)) + "]>")
    return {
        "href file": (stream_table(secret), "STREAM href"),
        "href file BINARY2": (stream_table(secret, "BINARY2"), "STREAM href"),
        "href etc passwd": (stream_table("file:///etc/passwd"), "STREAM href"),
        "href http loopback": (stream_table(f"{leak_url}/secret"), "STREAM href"),
        "href ftp": (stream_table("ftp://127.0.0.1/secret"), "STREAM href"),
        "href data": (stream_table("data:application/octet-stream;base64,QUJD"), "STREAM href"),
        "href relative": (stream_table(secret_file.name), "STREAM href"),
        "href prefixed": (votable(
            '<TABLE><FIELD name="x" datatype="char" arraysize="*"/><DATA><BINARY>'
            f'<v:STREAM xmlns:v="urn:x" v:href="{secret}"/></BINARY></DATA></TABLE>'),
            "STREAM href"),
        "FITS href": (votable(
            '<TABLE><FIELD name="x" datatype="int"/><DATA><FITS>'
            f'<STREAM href="{secret}"/></FITS></DATA></TABLE>'), "FITS"),
        "FITS inline": (votable(
            '<TABLE><FIELD name="x" datatype="int"/><DATA><FITS><STREAM encoding="base64">'
            "U0lNUExF</STREAM></FITS></DATA></TABLE>"), "FITS"),
        "FITS file": (b"SIMPLE  =                    T" + b" " * 2850, "FITS uploads"),
        "gzip": (b"\x1f\x8b\x08\x00" + b"\x00" * 40, "gzip"),
        "external entity": (votable(td.format("&x;"), f'<!DOCTYPE VOTABLE [<!ENTITY x SYSTEM '
                                                      f'"{secret}">]>'), "DOCTYPE"),
        "parameter entity": (votable(td.format("x"), f'<!DOCTYPE VOTABLE [<!ENTITY % p SYSTEM '
                                                     f'"{secret}"> %p;]>'), "DOCTYPE"),
        "external DTD": (votable(td.format("x"), f'<!DOCTYPE VOTABLE SYSTEM "{secret}">'),
                         "DOCTYPE"),
        "billion laughs": (votable(td.format("&i;"), laughs), "DOCTYPE|amplification"),
        "undeclared entity": (votable(td.format("&x;")), "not well-formed"),
        "xinclude": (votable(td.format(f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" '
                                       f'href="{secret}" parse="text"/>')), "XInclude"),
        "xinclude 2003": (votable(f'<xi:include xmlns:xi="http://www.w3.org/2003/XInclude" '
                                  f'href="{secret}"/>' + td.format("x")), "XInclude"),
        "deep nesting": (votable("<GROUP>" * 100_000 + "</GROUP>" * 100_000), "nested|depth"),
        "nrows 1e9": (votable('<TABLE nrows="1000000000"><FIELD name="x" datatype="double"/>'
                              "<DATA><TABLEDATA><TR><TD>1</TD></TR></TABLEDATA></DATA></TABLE>"),
                      "nrows"),
        "nrows garbage": (votable('<TABLE nrows="-5"><FIELD name="x" datatype="int"/>'
                                  "<DATA><TABLEDATA/></DATA></TABLE>"), "nrows"),
        "arraysize 1e9": (votable('<TABLE><FIELD name="x" datatype="char" '
                                  'arraysize="1000000000"/><DATA><TABLEDATA><TR><TD>a</TD></TR>'
                                  "</TABLEDATA></DATA></TABLE>"), "arraysize"),
        "arraysize 3d": (votable('<TABLE><FIELD name="x" datatype="int" '
                                 'arraysize="100x100x100000"/><DATA><TABLEDATA/></DATA></TABLE>'),
                         "arraysize"),
        "arraysize param": (votable('<PARAM name="p" datatype="double" value="1" '
                                    'arraysize="1000x1000x1000"/>' + td.format("x")),
                            "arraysize"),
        "arraysize bad": (votable('<TABLE><FIELD name="x" datatype="int" arraysize="1e9"/>'
                                  "<DATA><TABLEDATA/></DATA></TABLE>"), "arraysize"),
        "rows x arraysize": (votable('<TABLE nrows="100000"><FIELD name="x" datatype="double" '
                                     'arraysize="1000"/><DATA><TABLEDATA/></DATA></TABLE>'),
                             "MB"),
        "too many columns": (votable("<TABLE>" + "".join(
            f'<FIELD name="c{i}" datatype="short"/>' for i in range(1001))
            + "<DATA><TABLEDATA/></DATA></TABLE>"), "columns"),
        "too many rows": (votable('<TABLE><FIELD name="x" datatype="short"/><DATA><TABLEDATA>'
                                  + "<TR><TD>1</TD></TR>" * 100_001
                                  + "</TABLEDATA></DATA></TABLE>"), "rows"),
        "unknown datatype": (votable('<TABLE><FIELD name="x" datatype="quux"/><DATA>'
                                     "<TABLEDATA/></DATA></TABLE>"), "datatype"),
        "no datatype": (votable('<TABLE><FIELD name="x"/><DATA><TABLEDATA/></DATA></TABLE>'),
                        "datatype"),
        "wrong value": (votable('<TABLE><FIELD name="x" datatype="int"/><DATA><TABLEDATA>'
                                "<TR><TD>abc</TD></TR></TABLEDATA></DATA></TABLE>"),
                        "not a readable VOTable"),
        "too many cells": (votable('<TABLE><FIELD name="x" datatype="int"/><DATA><TABLEDATA>'
                                   "<TR><TD>1</TD><TD>2</TD></TR></TABLEDATA></DATA></TABLE>"),
                           "cells"),
        "binary garbage": (bytes(range(256)) * 40, "not well-formed"),
        "base64 garbage": (votable('<TABLE><FIELD name="x" datatype="int"/><DATA><BINARY>'
                                   '<STREAM encoding="base64">AAAAAQ=</STREAM></BINARY></DATA>'
                                   "</TABLE>"), "base64"),
        "truncated binary": (votable('<TABLE><FIELD name="x" datatype="int"/><DATA><BINARY>'
                                     '<STREAM encoding="base64">AAAAAQAA</STREAM></BINARY></DATA>'
                                     "</TABLE>"), "ends inside row"),
        "huge var length": (votable('<TABLE><FIELD name="x" datatype="double" arraysize="*"/>'
                                    '<DATA><BINARY><STREAM encoding="base64">'
                                    + base64.b64encode(b"\xff\xff\xff\xff" + b"\0" * 16).decode()
                                    + "</STREAM></BINARY></DATA></TABLE>"), "ends inside row"),
        "gzip stream": (votable('<TABLE><FIELD name="x" datatype="int"/><DATA><BINARY>'
                                '<STREAM encoding="gzip">AAAA</STREAM></BINARY></DATA></TABLE>'),
                        "encoding"),
        "not a votable": (b"<html><body>hello</body></html>", "not a VOTable"),
        "no table": (votable(""), "no TABLE"),
        "utf-7": (b'<?xml version="1.0" encoding="UTF-7"?><VOTABLE/>', ""),
    }


def test_every_hostile_upload_is_refused_by_the_module(secret_file: Path,
                                                       leak_server: str) -> None:
    wrong = {}
    for name, (data, words) in hostile(secret_file, leak_server).items():
        message = refused(data)
        if not any(w in message for w in words.split("|")):
            wrong[name] = message
    assert wrong == {}


def test_size_bombs_are_refused_before_memory_is_taken() -> None:
    bombs = [
        votable('<TABLE nrows="1000000000"><FIELD name="x" datatype="double"/>'
                "<DATA><TABLEDATA><TR><TD>1</TD></TR></TABLEDATA></DATA></TABLE>", ns=""),
        votable('<TABLE><FIELD name="x" datatype="char" arraysize="1000000000"/>'
                "<DATA><TABLEDATA><TR><TD>a</TD></TR></TABLEDATA></DATA></TABLE>", ns=""),
        votable('<TABLE><FIELD name="x" datatype="int" arraysize="100x100x100000"/>'
                "<DATA><TABLEDATA><TR><TD>1</TD></TR></TABLEDATA></DATA></TABLE>", ns=""),
        votable('<TABLE><FIELD name="x" datatype="double" arraysize="*"/><DATA><TABLEDATA>'
                "<TR><TD>" + "1 " * 400_000 + "</TD></TR>" * 10 + "</TABLEDATA></DATA></TABLE>",
                ns=""),
    ]
    assert len(bombs[0]) < 300
    for bomb in bombs:
        tracemalloc.start()
        try:
            refused(bomb, max_bytes=1_000_000)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 3 * max(len(bomb), 1_000_000), (bomb[:120], peak)


def astropy_votable(table: Table, fmt: str) -> bytes:
    out = io.BytesIO()
    table.write(out, format="votable", tabledata_format=fmt)
    return out.getvalue()


def test_tabledata_binary_and_binary2_load_correctly() -> None:
    table = Table({"id": np.arange(5, dtype=np.int32), "ra": [0.5, 1.5, np.nan, 3.5, 4.5],
                   "label": ["a", "bb", "", "dddd", "e"],
                   "flag": np.array([True, False, True, False, True])})
    for fmt in ("tabledata", "binary", "binary2"):
        [upload] = load(astropy_votable(table, fmt))
        assert [c.name for c in upload.columns] == ["id", "ra", "label", "flag"], fmt
        assert [r[0] for r in upload.rows] == [0, 1, 2, 3, 4], fmt
        assert [r[1] for r in upload.rows] == [0.5, 1.5, None, 3.5, 4.5], fmt
        assert [r[2] for r in upload.rows][:2] == ["a", "bb"], fmt
        assert [bool(r[3]) for r in upload.rows] == [True, False, True, False, True], fmt


def test_variable_arrays_in_binary_load() -> None:
    stream = b"".join(struct.pack(">i", n) + struct.pack(f">{n}d", *range(n))
                      + struct.pack(">i", 2) + b"hi" for n in (0, 1, 3))
    data = votable('<TABLE><FIELD name="v" datatype="double" arraysize="*"/>'
                   '<FIELD name="s" datatype="char" arraysize="*"/><DATA><BINARY>'
                   f'<STREAM encoding="base64">{base64.b64encode(stream).decode()}</STREAM>'
                   "</BINARY></DATA></TABLE>")
    [upload] = load(data)
    assert upload.rows == [("", "hi"), ("0.0", "hi"), ("0.0 1.0 2.0", "hi")]


CHILD = """
import sys
import numpy as np
from astropy.table import Table
from voservice.upload import load_uploads
if sys.argv[1] != "-":
    [upload] = load_uploads(["t,param:t"], {"t": open(sys.argv[1], "rb").read()},
                            max_rows=100_000, max_bytes=20_000_000)
    n = 100_000
    ra, dec = np.linspace(0, 360, n, endpoint=False), np.linspace(-90, 90, n)
    assert len(upload.rows) == n
    assert upload.rows == list(zip(range(n), ra.tolist(), dec.tolist())), "wrong values"
status = open("/proc/self/status").read()
print("ok", status.split("VmHWM:")[1].split()[0])
"""


def child_peak_rss(*args: str) -> int:
    """Peak resident bytes (VmHWM) of a Python process running CHILD with ``args``."""
    result = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.startswith("ok "), result.stderr[-2000:]
    return int(result.stdout.split()[1]) * 1024


def test_a_100k_row_table_loads_correctly_with_bounded_memory(tmp_path: Path) -> None:
    n = 100_000
    table = Table({"id": np.arange(n), "ra": np.linspace(0, 360, n, endpoint=False),
                   "dec": np.linspace(-90, 90, n)})
    path = tmp_path / "big.vot"
    path.write_bytes(astropy_votable(table, "tabledata"))
    baseline = child_peak_rss("-")
    loaded = child_peak_rss(str(path))
    # the bytes themselves, then at most the memory budget of 8 x upload_max_bytes
    assert loaded - baseline < path.stat().st_size + 8 * 20_000_000, (baseline, loaded)


# --------------------------------------------------------------------------
# Through the live service


def post_sync(server: LiveServer, data: bytes, query: str = "SELECT * FROM TAP_UPLOAD.t"
              ) -> requests.Response:
    return requests.post(
        f"{server.url}/tap/sync",
        data={"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query, "UPLOAD": "t,param:t"},
        files={"t": ("t.xml", data, "application/x-votable+xml")}, timeout=60)


def error_of(response: requests.Response) -> str:
    """The QUERY_STATUS=ERROR message of a DALI error VOTable (HTTP 400)."""
    assert response.status_code == 400, response.text[:500]
    info = etree.fromstring(response.content).find(".//{*}INFO[@name='QUERY_STATUS']")
    assert info.get("value") == "ERROR"
    return info.text or ""


def test_hostile_uploads_are_refused_by_tap_sync(sqlite_server: LiveServer, secret_file: Path,
                                                 leak_server: str) -> None:
    for name, (data, words) in hostile(secret_file, leak_server).items():
        response = post_sync(sqlite_server, data)
        assert SECRET.encode() not in response.content, name
        assert b"root:x:0:0" not in response.content, name
        message = error_of(response)
        assert "UPLOAD t: " in message, (name, message)
        assert any(w in message for w in words.split("|")), (name, message)


def test_url_upload_to_loopback_is_refused_by_tap_sync(sqlite_server: LiveServer,
                                                       leak_server: str) -> None:
    for url in (f"{leak_server}/secret", "http://2130706433/", "http://[::1]/",
                "file:///etc/passwd", "ftp://127.0.0.1/x"):
        response = requests.post(
            f"{sqlite_server.url}/tap/sync",
            data={"LANG": "ADQL", "QUERY": "SELECT * FROM TAP_UPLOAD.t", "UPLOAD": f"t,{url}"},
            timeout=60)
        message = error_of(response)
        assert "UPLOAD t: " in message, message
        assert SECRET.encode() not in response.content


def test_hostile_upload_ends_an_async_job_in_error(server: LiveServer, secret_file: Path,
                                                   leak_server: str) -> None:
    s = requests.Session()
    for data, words in (
        (stream_table(secret_file.as_uri()), "STREAM href"),
        (votable('<TABLE nrows="1000000000"><FIELD name="x" datatype="double"/>'
                 "<DATA><TABLEDATA><TR><TD>1</TD></TR></TABLEDATA></DATA></TABLE>"), "nrows"),
    ):
        url = create_job(server, s, "SELECT * FROM TAP_UPLOAD.t", PHASE="RUN",
                         UPLOAD="t,param:t", files={"t": ("t.xml", data)})
        assert wait_for(s, url, ["COMPLETED", "ERROR"]) == "ERROR"
        message = job_doc(s, url).findtext("uws:errorSummary/uws:message", namespaces=NS)
        assert "UPLOAD t: " in message and words in message, message
        error = s.get(f"{url}/error")
        assert words in error.text
        for body in (error.content, s.get(url).content, s.get(f"{url}/results/result").content):
            assert SECRET.encode() not in body


def test_a_100k_row_upload_is_queried(server: LiveServer) -> None:
    n = 100_000
    table = Table({"id": np.arange(n, dtype=np.int32), "x": np.arange(n) * 0.5})
    response = post_sync(server, astropy_votable(table, "binary2"),
                         "SELECT COUNT(*) AS n, SUM(id) AS s, MAX(x) AS m FROM TAP_UPLOAD.t")
    assert response.status_code == 200, response.text[:500]
    result = Table.read(io.BytesIO(response.content), format="votable")
    assert (int(result["n"][0]), int(result["s"][0]), float(result["m"][0])) == (
        n, n * (n - 1) // 2, (n - 1) * 0.5)
