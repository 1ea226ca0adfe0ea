"""Frames in HBase through happybase (Thrift 1).

One row per frame in the table ``[media] table``: the row key
``<series_key>#<index, 8 digits>`` keeps a series' frames together and in
order; columns ``f:data``, ``f:content_type``, ``f:md5``, ``f:size``.  The
reference of a frame is its row key.  HBase refuses cells over 10 MB
(``hbase.server.keyvalue.maxsize``) and, with the framed transport, frames
over 2 MB by default: larger frames are refused here with a clear error.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import happybase
from thriftpy2.transport import TTransportException

from voservice.stores.media.base import CONTENT_TYPES, MediaError, MediaStore, StoredMedia

FAMILY = "f"
MAX_CELL = 10 * 1024 * 1024  # hbase.client.keyvalue.maxsize
KEYVALUE_OVERHEAD = 20  # key/value lengths, row length, family length, timestamp, type
CELL_MARGIN = 1024  # headroom below the server's limit (cell tags, future KeyValue fields)
MAX_FRAMED = 2 * 1024 * 1024 - 64 * 1024  # leave room for the row key and the Thrift call
#: the column family: one version, block cache on, a bloom filter on the row key
FAMILY_OPTIONS = {"max_versions": 1, "block_cache_enabled": True, "bloom_filter_type": "ROW"}
#: what a dropped connection (idle timeout, server restart) raises
BROKEN = (OSError, EOFError, TTransportException)

T = TypeVar("T")


class HBaseMediaStore(MediaStore):
    """Frames in an HBase table."""

    def __init__(self, host: str, port: int, table: str, transport: str = "buffered",
                 protocol: str = "binary", timeout: float = 30.0) -> None:
        self.host, self.port, self.table_name = host, int(port), table
        self.transport, self.protocol = transport, protocol
        self.timeout_ms = int(timeout * 1000)
        self._connection: happybase.Connection | None = None
        self._lock = threading.Lock()  # gunicorn threads share one connection

    def _connect(self) -> happybase.Connection:
        if self._connection is None:
            self._connection = happybase.Connection(
                host=self.host, port=self.port, timeout=self.timeout_ms,
                transport=self.transport, protocol=self.protocol, autoconnect=True)
        return self._connection

    def _call(self, what: str, func: Callable[[happybase.Table], T]) -> T:
        """Run the idempotent ``func`` on the table; reconnect and retry once if the
        connection broke (idle timeout, Thrift server restart)."""
        with self._lock:
            for attempt in (1, 2):
                try:
                    return func(self._connect().table(self.table_name))
                except BROKEN as exc:
                    self._drop()
                    if attempt == 2:
                        raise MediaError(f"HBase at {self.host}:{self.port} does not answer "
                                         f"({what}): {type(exc).__name__}") from None
                except Exception as exc:  # the IDL's IOError, IllegalArgument, ...
                    self._drop()
                    raise MediaError(f"HBase {what} failed: {_message(exc)}") from None
        raise AssertionError("unreachable")

    def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):  # closing a broken connection
                self._connection.close()
            self._connection = None

    def create_schema(self) -> None:
        """Create the table with family ``f`` if it is missing (another host may race)."""
        with self._lock:
            for attempt in (1, 2):
                try:
                    connection = self._connect()
                    if self.table_name.encode() not in connection.tables():
                        connection.create_table(self.table_name, {FAMILY: FAMILY_OPTIONS})
                    return
                except BROKEN as exc:
                    self._drop()
                    if attempt == 2:
                        raise MediaError(f"cannot create HBase table {self.table_name}: "
                                         f"HBase at {self.host}:{self.port} does not answer "
                                         f"({type(exc).__name__})") from None
                except Exception as exc:
                    if type(exc).__name__ == "AlreadyExists":  # created meanwhile elsewhere
                        return
                    self._drop()
                    raise MediaError(f"cannot create HBase table {self.table_name}: "
                                     f"{_message(exc)}") from None

    def family_options(self) -> dict[str, Any]:
        """The stored descriptor of family ``f`` (versions, block cache, bloom filter)."""
        def describe(t: happybase.Table) -> dict[str, Any]:
            return t.families()[FAMILY.encode()]

        return self._call("describe", describe)

    @staticmethod
    def row_key(series_key: str, index: int) -> str:
        """The row key of frame ``index`` of a series."""
        return f"{series_key}#{index:08d}"

    def put(self, series_key: str, index: int, data: bytes, content_type: str) -> StoredMedia:
        """Store one frame as one row."""
        if content_type not in CONTENT_TYPES:
            raise MediaError(f"frame {index} of {series_key}: unsupported type {content_type}")
        key = self.row_key(series_key, index)
        cell = len(key.encode()) + len(FAMILY) + len(b"data") + len(data) + KEYVALUE_OVERHEAD
        if cell > MAX_CELL - CELL_MARGIN:
            raise MediaError(
                f"frame {index} of {series_key}: {len(data)} bytes make a cell of {cell} bytes "
                f"with its key; HBase's cell limit is {MAX_CELL} bytes "
                f"(hbase.client.keyvalue.maxsize; SKVO keeps {CELL_MARGIN} bytes of margin)")
        if self.transport == "framed" and len(data) > MAX_FRAMED:
            raise MediaError(
                f"frame {index} of {series_key}: {len(data)} bytes exceed the {MAX_FRAMED} bytes "
                "a framed transport carries (hbase.regionserver.thrift.framed."
                "max_frame_size_in_mb = 2)")
        md5 = hashlib.md5(data).hexdigest()
        self._call("put", lambda t: t.put(key.encode(), {
            b"f:data": data, b"f:content_type": content_type.encode(),
            b"f:md5": md5.encode(), b"f:size": str(len(data)).encode()}))
        return StoredMedia(ref=key, md5=md5, size=len(data), content_type=content_type)

    def get(self, ref: str) -> tuple[bytes, str]:
        """The bytes and type of a frame (KeyError if absent)."""
        row = self._call("get", lambda t: t.row(ref.encode(),
                                                  columns=[b"f:data", b"f:content_type"]))
        if not row:
            raise KeyError(ref)
        return row[b"f:data"], row[b"f:content_type"].decode()

    def exists(self, ref: str) -> bool:
        """Is the frame stored?"""
        return bool(self._call("exists", lambda t: t.row(ref.encode(), columns=[b"f:md5"])))

    def delete(self, ref: str) -> None:
        """Delete a frame's row (absent is fine)."""
        self._call("delete", lambda t: t.delete(ref.encode()))

    def scan_series(self, series_key: str) -> list[str]:
        """References of a series' frames, in frame order."""
        def scan(t: happybase.Table) -> list[str]:
            return [key.decode() for key, _ in t.scan(row_prefix=f"{series_key}#".encode(),
                                                      columns=[b"f:md5"])]

        return self._call("scan", scan)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._drop()

    def __getstate__(self) -> dict[str, Any]:  # connections do not cross processes
        state = dict(self.__dict__)
        state["_connection"] = None
        state["_lock"] = None
        return state


def _message(exc: BaseException) -> str:
    """The server's message of a Thrift exception (bytes in the IDL), else its type."""
    message = getattr(exc, "message", None) or type(exc).__name__
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    return str(message)
