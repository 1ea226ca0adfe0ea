"""Client input that could become a path on the server: traversal attempts over HTTP.

Frame ids, light-curve uuids and bandpass names (and the preview beside
them), RESPONSEFORMAT/FORMAT values and TAP table names are tried with
``../``, encoded dots and slashes, absolute paths, NUL bytes, very long and
non-ASCII names: never a 5xx, never a traceback, never a byte of a file
outside the archive.  The requests are sent as raw bytes (http.client), so no
client library normalises the dot segments away.
"""

from __future__ import annotations

import http.client
from pathlib import Path

import pytest
import sqlalchemy as sa

from voservice import tables

SECRET = "root:x:0:0:TOP-SECRET-PATH-TEST"

#: path segments (already percent-encoded as they go on the wire)
NASTY = [
    "..", "../..", "../../../../../../etc/passwd", "..%2f..%2f..%2fetc%2fpasswd",
    "%2e%2e", "%2e%2e/%2e%2e/%2e%2e/etc/passwd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "%252e%252e%252f%252e%252e%252fetc%252fpasswd", "..%5c..%5cwindows%5cwin.ini",
    "/etc/passwd", "%2fetc%2fpasswd", "%00", "a%00b", "..%00/etc/passwd",
    "x" * 5000, "%e2%80%ae%c3%bc%c3%b1%c3%ae%c2%a9%c3%b8d%c3%a9", "%ff%fe%fd",
    "%c0%ae%c0%ae%c0%af", "SECRET_FILE", "../SECRET_FILE", "../../SECRET_FILE",
    "..%2fSECRET_FILE", "..%2f..%2fSECRET_FILE", "%2e%2e%2f%2e%2e%2fSECRET_FILE",
    "-1", "0", "1e3", "0x10",
    "99999999999999999999999999999999", "18446744073709551616", "%20", "~root",
]

#: how a path that names nothing is answered (308: a doubled slash merged, same host)
REFUSED = (308, 400, 404, 405)


def _get(url: str, path: str, method: str = "GET") -> tuple[int, bytes]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _assert_safe(status: int, body: bytes, what: str) -> None:
    assert status < 500, (what, status, body[:500])
    assert b"Traceback" not in body, what
    assert SECRET.encode() not in body and b"root:x:0:0" not in body, what


@pytest.fixture
def planted(server) -> None:  # noqa: ANN001 - LiveServer
    """Secrets where a traversal from the archive would find them."""
    dep = server.dep
    for folder in (dep.root, dep.root / "media", dep.root / "media" / "refs",
                   Path(dep.settings().get("server", "cache_path"))):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "SECRET_FILE").write_text(SECRET + "\n")


def _one_series(server) -> tuple[str, str]:  # noqa: ANN001 - LiveServer
    """(observation uuid, bandpass uid) of a loaded open series."""
    engine = sa.create_engine(server.dep.settings().metadata_url)
    o, b = tables.sa_table("skvo.observation"), tables.sa_table("skvo.bandpass")
    p = tables.sa_table("skvo.photometry")
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.select(o.c.observation_uuid, b.c.bandpass_uid)
                .select_from(p.join(o, o.c.observation_id == p.c.observation_id)
                             .join(b, b.c.bandpass_id == p.c.bandpass_id))
                .where(o.c.access == "open").limit(1)).one()
    finally:
        engine.dispose()
    return row.observation_uuid, row.bandpass_uid


@pytest.mark.parametrize("segment", NASTY)
def test_frame_ids(server, planted: None, segment: str) -> None:  # noqa: ANN001
    for path in (f"/frame/{segment}", f"/frame/1/{segment}", f"/frame/{segment}/1"):
        status, body = _get(server.url, path)
        _assert_safe(status, body, path)
        assert status in REFUSED, (path, status)


@pytest.mark.parametrize("segment", NASTY)
def test_light_curve_paths(server, planted: None, segment: str) -> None:  # noqa: ANN001
    uuid, band = _one_series(server)
    for path in (f"/lightcurve/{segment}", f"/lightcurve/{segment}/{band}",
                 f"/lightcurve/{uuid}/{segment}", f"/lightcurve/{uuid}/{segment}/preview.png",
                 f"/lightcurve/{uuid}/{band}/{segment}",
                 f"/lightcurve/{uuid}/{band}/{segment}/preview.png",
                 f"/lightcurve/{segment}/{band}/preview.png"):
        status, body = _get(server.url, path)
        _assert_safe(status, body, path)
        assert status in REFUSED, (path, status)


@pytest.mark.parametrize("segment", NASTY)
def test_format_values(server, planted: None, segment: str) -> None:  # noqa: ANN001
    uuid, band = _one_series(server)
    for path in (f"/lightcurve/{uuid}/{band}?RESPONSEFORMAT={segment}",
                 f"/sia?POS=CIRCLE+0+0+1&FORMAT={segment}",
                 f"/sia?FORMAT={segment}&RESPONSEFORMAT={segment}",
                 f"/scs?RA=0&DEC=0&SR=1&RESPONSEFORMAT={segment}",
                 f"/ssa?REQUEST=queryData&FORMAT={segment}",
                 f"/tap/sync?LANG=ADQL&QUERY=SELECT+1&RESPONSEFORMAT={segment}",
                 f"/tap/sync?LANG=ADQL&QUERY=SELECT+1&FORMAT={segment}"):
        status, body = _get(server.url, path)
        _assert_safe(status, body, path)


@pytest.mark.parametrize("segment", NASTY)
def test_table_names(sqlite_server, segment: str) -> None:  # noqa: ANN001
    status, body = _get(sqlite_server.url, f"/tap/tables/{segment}")
    _assert_safe(status, body, segment)


def test_good_paths_still_answer(server) -> None:  # noqa: ANN001
    """The checks refuse nothing real: the series, its preview and its frames are served."""
    uuid, band = _one_series(server)
    status, body = _get(server.url, f"/lightcurve/{uuid}/{band}")
    assert status == 200 and b"<VOTABLE" in body
    status, body = _get(server.url, f"/lightcurve/{uuid}/{band}/preview.png")
    assert status == 200 and body.startswith(b"\x89PNG")


def test_preview_cache_names_come_from_hashes(sqlite_server) -> None:  # noqa: ANN001
    """The preview cache holds only files named by a sha256, whatever the requests were."""
    uuid, band = _one_series(sqlite_server)
    for segment in ("..", "%2e%2e%2f%2e%2e%2fx", "a%00b"):
        _get(sqlite_server.url, f"/lightcurve/{uuid}/{band}/{segment}/preview.png")
    _get(sqlite_server.url, f"/lightcurve/{uuid}/{band}/preview.png")
    cache = Path(sqlite_server.dep.settings().get("server", "cache_path"))
    files = [p for p in cache.rglob("*") if p.is_file() and p.name != "SECRET_FILE"]
    assert files
    for path in files:
        rel = path.relative_to(cache)
        assert len(rel.parts) == 2 and rel.parts[0] == path.name[:2], rel
        assert len(path.stem) == 64 and set(path.stem) <= set("0123456789abcdef"), rel


@pytest.mark.parametrize("ref", ["../../SECRET_FILE", "..", "/etc/passwd", "a\x00b", "",
                                 "0" * 24 + "-" + "0" * 16 + ".png/../../x",
                                 "0" * 24 + "-" + "0" * 16 + ".exe", "x" * 5000,
                                 "0" * 24 + "-" + "0" * 16 + ".png\n"])
def test_media_refs_never_become_other_paths(tmp_path: Path, ref: str) -> None:
    """The files media store takes only the references it makes as file names."""
    from voservice.stores.media.files import FileMediaStore

    store = FileMediaStore(tmp_path / "media")
    store.create_schema()
    (tmp_path / "SECRET_FILE").write_text(SECRET)
    with pytest.raises(KeyError):
        store.get(ref)
    with pytest.raises(KeyError):
        store.path(ref)
    assert not store.exists(ref)
    store.delete(ref)  # nothing to delete, nothing deleted
    assert (tmp_path / "SECRET_FILE").read_text() == SECRET
    kept = store.put("series/band", 0, b"\x89PNG\r\n\x1a\nframe", "image/png")
    assert store.get(kept.ref)[0].startswith(b"\x89PNG")
