"""One contract for every media store: files, and HBase over real Thrift sockets.

HBase runs as the thriftpy2 double in ``tests/servers/hbase_thrift.py``
(buffered+binary and framed+compact) with the Thrift server's stock
defaults (60 s idle timeout, key-inclusive 10 MiB cells).  Set
``SKVO_TEST_HBASE=host:port`` (and ``SKVO_TEST_HBASE_TRANSPORT``,
``SKVO_TEST_HBASE_PROTOCOL``) to run the same contract against a real HBase
Thrift server; ``HBASE_THRIFT_HOST``/``HBASE_THRIFT_PORT`` are read too.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import happybase
import pytest
from servers.hbase_thrift import MAX_CELL, FakeHBase, cell_size

from voservice.stores.media import MediaError, open_media_store
from voservice.stores.media.files import FileMediaStore
from voservice.stores.media.hbase import HBaseMediaStore

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(255, -1, -1)) * 4


def real_hbase() -> tuple[str, int, str, str] | None:
    """(host, port, transport, protocol) of a real HBase Thrift server, if one is named."""
    named = os.environ.get("SKVO_TEST_HBASE")
    if named:
        host, _, port = named.rpartition(":")
    elif os.environ.get("HBASE_THRIFT_HOST"):
        host, port = os.environ["HBASE_THRIFT_HOST"], os.environ.get("HBASE_THRIFT_PORT", "9090")
    else:
        return None
    return (host, int(port),
            os.environ.get("SKVO_TEST_HBASE_TRANSPORT",
                           os.environ.get("HBASE_THRIFT_TRANSPORT", "buffered")),
            os.environ.get("SKVO_TEST_HBASE_PROTOCOL",
                           os.environ.get("HBASE_THRIFT_PROTOCOL", "binary")))


@pytest.fixture(params=["files", "hbase-buffered-binary", "hbase-framed-compact",
                        pytest.param("hbase-real", marks=pytest.mark.skipif(
                            real_hbase() is None,
                            reason="set SKVO_TEST_HBASE=host:port for a real HBase"))])
def media(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator:
    if request.param == "files":
        store = open_media_store("files", path=tmp_path / "media")
        store.create_schema()
        yield store
        return
    if request.param == "hbase-real":
        host, port, transport, protocol = real_hbase()  # type: ignore[misc]
        store = open_media_store("hbase", host=host, port=port, table="skvo_frames_test",
                                 transport=transport, protocol=protocol, timeout=30)
        store.create_schema()
        yield store
        store.close()
        return
    _, transport, protocol = request.param.split("-")
    double = FakeHBase(transport, protocol).start()
    store = open_media_store("hbase", host=double.host, port=double.port, table="frames",
                             transport=transport, protocol=protocol, timeout=10)
    store.create_schema()
    yield store
    store.close()
    double.stop()


def series_refs(media, series_key: str, refs: list[str]) -> list[str]:
    """The stored references of a series in frame order, as the backend lists them."""
    if isinstance(media, HBaseMediaStore):
        return media.scan_series(series_key)
    return [r for r in refs if media.exists(r)]


def test_round_trip(media) -> None:
    png = media.put("uuid-1/johnson.v", 0, PNG, "image/png")
    jpeg = media.put("uuid-1/johnson.v", 1, JPEG, "image/jpeg")
    assert media.get(png.ref) == (PNG, "image/png")
    assert media.get(jpeg.ref) == (JPEG, "image/jpeg")
    assert (png.md5, png.size) == (hashlib.md5(PNG).hexdigest(), len(PNG))
    assert png.ref != jpeg.ref


def test_frames_of_a_series_stay_in_order(media) -> None:
    refs = {i: media.put("uuid-2/johnson.b", i, PNG + bytes([i]), "image/png").ref
            for i in (3, 0, 11, 1)}
    media.put("uuid-3/johnson.b", 0, PNG, "image/png")  # another series
    listed = series_refs(media, "uuid-2/johnson.b", [refs[i] for i in sorted(refs)])
    assert listed == [refs[i] for i in sorted(refs)]


def test_delete_is_idempotent_and_missing_is_keyerror(media) -> None:
    stored = media.put("uuid-4/v", 0, PNG, "image/png")
    assert media.exists(stored.ref)
    media.delete(stored.ref)
    media.delete(stored.ref)
    assert not media.exists(stored.ref)
    with pytest.raises(KeyError):
        media.get(stored.ref)


def test_identical_bytes_in_two_series(media) -> None:
    a = media.put("uuid-5/v", 0, PNG, "image/png")
    b = media.put("uuid-6/v", 0, PNG, "image/png")
    media.delete(a.ref)
    assert media.get(b.ref) == (PNG, "image/png")


def test_unsupported_type_is_refused(media) -> None:
    with pytest.raises(MediaError, match="unsupported type"):
        media.put("uuid-7/v", 0, b"GIF89a", "image/gif")


def test_hbase_limits_count_the_key_as_hbase_does() -> None:
    for transport, limit_word in (("buffered", "hbase.client.keyvalue.maxsize"),
                                  ("framed", "framed")):
        double = FakeHBase(transport, "binary").start()
        try:
            store = HBaseMediaStore(double.host, double.port, "frames", transport, "binary", 10)
            store.create_schema()
            size = MAX_CELL - 40 if transport == "buffered" else 2 * 1024 * 1024 + 1
            with pytest.raises(MediaError, match=limit_word):
                store.put("uuid-8/v", 0, b"\x89PNG" + b"\0" * size, "image/png")
            big = store.put("uuid-8/v", 1, b"\x89PNG" + b"\0" * (1024 * 1024), "image/png")
            assert len(store.get(big.ref)[0]) == 1024 * 1024 + 4
        finally:
            double.stop()


def test_double_counts_key_and_value_like_hbase() -> None:
    """A value just under 10 MiB passes a value-only check but not HBase's."""
    double = FakeHBase("buffered", "binary").start()
    try:
        connection = happybase.Connection(double.host, double.port)
        connection.create_table("t", {"f": {}})
        row, value = b"uuid-9/johnson.v#00000000", b"\0" * (MAX_CELL - 30)
        assert len(value) < MAX_CELL < cell_size(row, b"f:data", value)
        with pytest.raises(Exception, match="too large"):
            connection.table("t").put(row, {b"f:data": value})
        connection.close()
    finally:
        double.stop()


def test_family_has_block_cache_and_bloom_filter_and_creation_may_race() -> None:
    double = FakeHBase("buffered", "binary").start()
    try:
        stores = [HBaseMediaStore(double.host, double.port, "frames") for _ in range(4)]
        errors: list[BaseException] = []

        def create(store: HBaseMediaStore) -> None:
            try:
                store.create_schema()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=create, args=(s,)) for s in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        # the race itself: the table appears between the check and the create
        late = HBaseMediaStore(double.host, double.port, "frames")
        connection = late._connect()
        connection.tables = lambda: []  # type: ignore[method-assign]  # saw no table yet
        late.create_schema()
        options = stores[0].family_options()
        assert options["block_cache_enabled"] is True
        assert options["bloom_filter_type"] in ("ROW", b"ROW")
        assert options["max_versions"] == 1
    finally:
        double.stop()


@pytest.mark.parametrize("transport,protocol", [("buffered", "binary"), ("framed", "compact")])
def test_frames_are_served_after_an_idle_timeout_and_a_restart(transport: str,
                                                              protocol: str) -> None:
    double = FakeHBase(transport, protocol, idle_timeout=0.5).start()
    try:
        store = HBaseMediaStore(double.host, double.port, "frames", transport, protocol, 10)
        store.create_schema()
        stored = store.put("uuid-10/v", 0, PNG, "image/png")
        time.sleep(1.5)  # longer than the server's idle timeout: it drops the connection
        assert double.open_connections() == 0
        assert store.get(stored.ref) == (PNG, "image/png")
        double.restart()  # closes every connection, serves the same table again
        assert store.get(stored.ref) == (PNG, "image/png")
        assert store.exists(stored.ref)
        double.stop()
        with pytest.raises(MediaError, match="does not answer"):
            store.get(stored.ref)
    finally:
        double.stop()


def test_double_stop_closes_open_connections() -> None:
    double = FakeHBase("buffered", "binary").start()
    connection = happybase.Connection(double.host, double.port)
    connection.create_table("t", {"f": {}})
    assert double.open_connections() >= 1
    double.stop()
    with pytest.raises(Exception):  # noqa: B017 - the transport's own error type
        connection.tables()
    connection.close()


def test_double_speaks_happybase() -> None:
    double = FakeHBase("buffered", "compact").start()
    try:
        connection = happybase.Connection(double.host, double.port, protocol="compact")
        connection.create_table("t", {"f": {}, "g": {}})
        assert set(connection.table("t").families()) == {b"f", b"g"}
        table = connection.table("t")
        table.put(b"a#1", {b"f:x": b"1", b"g:y": b"2"})
        table.put(b"a#2", {b"f:x": b"3"})
        table.put(b"b#1", {b"f:x": b"4"})
        assert [k for k, _ in table.scan(row_prefix=b"a#")] == [b"a#1", b"a#2"]
        assert table.row(b"a#1", columns=[b"g"]) == {b"g:y": b"2"}
        table.delete(b"a#1")
        assert table.row(b"a#1") == {}
        assert table.counter_inc(b"c", b"f:n", 5) == 5
        with pytest.raises(Exception, match="does not exist"):
            connection.table("missing").row(b"x")
        big = b"\0" * (MAX_CELL + 1)
        with pytest.raises(Exception, match="too large"):
            table.put(b"z", {b"f:x": big})
        connection.close()
    finally:
        double.stop()


def test_files_are_written_atomically_and_shared(tmp_path: Path) -> None:
    store = FileMediaStore(tmp_path)
    store.create_schema()
    a = store.put("s1/v", 0, PNG, "image/png")
    b = store.put("s2/v", 0, PNG, "image/png")
    objects = [p for p in (tmp_path / "objects").rglob("*") if p.is_file()]
    assert len(objects) == 1 and objects[0].stat().st_nlink == 3  # object + two frames
    assert not [p for p in tmp_path.rglob(".tmp-*")]
    store.delete(a.ref)
    store.delete(b.ref)
    assert not [p for p in (tmp_path / "objects").rglob("*") if p.is_file()]
