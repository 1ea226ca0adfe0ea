"""A test double of HBase's Thrift 1 gateway (not HBase).

A thriftpy2 server built from happybase's own ``Hbase.thrift`` IDL, with an
in-memory sorted store, implementing the calls happybase makes: table
administration, ``mutateRows``/``mutateRowsTs``, ``getRow*``/``getRows*``,
``scannerOpenWithScan``/``scannerGetList``/``scannerClose``,
``deleteAllRow`` and ``atomicIncrement``.  Family names come back with a
trailing ``:``; errors are the IDL's ``IOError``.  It serves buffered or
framed transports with the binary or compact protocol on a loopback port.

It models the stock defaults of HBase 1.x/2.x's Thrift 1 server, never kinder:

- a cell is refused when row key + family + qualifier + value + the
  KeyValue's 20 bytes of lengths, timestamp and type exceed 10,485,760 bytes
  (``hbase.client.keyvalue.maxsize``, checked on the key-inclusive size);
- framed mode refuses frames over 2 MB
  (``hbase.regionserver.thrift.framed.max_frame_size_in_mb = 2``);
- a connection idle for ``idle_timeout`` seconds is closed by the server
  (``hbase.thrift.server.socket.read.timeout``, default 60 s);
- ``stop()`` closes the listening socket and every open connection, as a
  restarted Thrift server does; ``start()`` again serves the same tables on
  the same port (the data live in HBase, not in the Thrift server);
- ``createTable`` keeps the column descriptors it was given (block cache,
  bloom filter, versions) and ``getColumnDescriptors`` returns them.
"""

from __future__ import annotations

import bisect
import contextlib
import io
import itertools
import os
import socket
import struct
import threading
import time
from typing import Any

import happybase
import thriftpy2
from thriftpy2.protocol import TBinaryProtocolFactory, TCompactProtocolFactory
from thriftpy2.protocol.binary import TBinaryProtocolFactory as PyBinaryProtocolFactory
from thriftpy2.server import TThreadedServer
from thriftpy2.thrift import TProcessor
from thriftpy2.transport import TBufferedTransportFactory, TServerSocket
from thriftpy2.transport.base import readall
from thriftpy2.transport.framed import TFramedTransport, TFramedTransportFactory

Hbase = thriftpy2.load(os.path.join(os.path.dirname(happybase.__file__), "Hbase.thrift"),
                       module_name="Hbase_thrift")

MAX_CELL = 10 * 1024 * 1024  # hbase.client.keyvalue.maxsize
MAX_FRAME = 2 * 1024 * 1024
#: a KeyValue's fixed part: key and value lengths, row length, family length, timestamp, type
KEYVALUE_OVERHEAD = 4 + 4 + 2 + 1 + 8 + 1
IDLE_TIMEOUT = 60.0  # hbase.thrift.server.socket.read.timeout (60,000 ms)


def cell_size(row: bytes, column: bytes, value: bytes) -> int:
    """The size HBase counts for a cell: key (row, family, qualifier) and value."""
    family, _, qualifier = column.partition(b":")
    return len(row) + len(family) + len(qualifier) + len(value) + KEYVALUE_OVERHEAD


def _b(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


class _Table:
    def __init__(self, descriptors: list[Any]) -> None:
        self.descriptors = {_b(cf.name).rstrip(b":") + b":": cf for cf in descriptors}
        for name, cf in self.descriptors.items():
            cf.name = name
        self.families = list(self.descriptors)
        self.keys: list[bytes] = []
        self.rows: dict[bytes, dict[bytes, tuple[bytes, int]]] = {}
        self.enabled = True

    def row(self, key: bytes) -> dict[bytes, tuple[bytes, int]]:
        if key not in self.rows:
            bisect.insort(self.keys, key)
            self.rows[key] = {}
        return self.rows[key]

    def drop_if_empty(self, key: bytes) -> None:
        if key in self.rows and not self.rows[key]:
            del self.rows[key]
            self.keys.remove(key)


class Handler:
    """The Hbase service, in memory."""

    def __init__(self) -> None:
        self.tables: dict[bytes, _Table] = {}
        self.scanners: dict[int, list[Any]] = {}
        self.ids = itertools.count(1)
        self.lock = threading.RLock()

    def _table(self, name: Any) -> _Table:
        table = self.tables.get(_b(name))
        if table is None:
            raise Hbase.IOError(message=f"table {name!r} does not exist")
        return table

    # administration ----------------------------------------------------

    def getTableNames(self) -> list[bytes]:  # noqa: N802
        return sorted(self.tables)

    def createTable(self, tableName: Any, columnFamilies: list[Any]) -> None:  # noqa: N802, N803
        with self.lock:
            if _b(tableName) in self.tables:
                raise Hbase.AlreadyExists(message=f"table {tableName!r} exists")
            self.tables[_b(tableName)] = _Table(columnFamilies)

    def deleteTable(self, tableName: Any) -> None:  # noqa: N802, N803
        with self.lock:
            self._table(tableName)
            del self.tables[_b(tableName)]

    def enableTable(self, tableName: Any) -> None:  # noqa: N802, N803
        self._table(tableName).enabled = True

    def disableTable(self, tableName: Any) -> None:  # noqa: N802, N803
        self._table(tableName).enabled = False

    def isTableEnabled(self, tableName: Any) -> bool:  # noqa: N802, N803
        return self._table(tableName).enabled

    def getColumnDescriptors(self, tableName: Any) -> dict[bytes, Any]:  # noqa: N802, N803
        return dict(self._table(tableName).descriptors)

    # writes --------------------------------------------------------------

    def _mutate(self, table: _Table, row: bytes, mutations: list[Any], ts: int) -> None:
        for m in mutations:
            column = _b(m.column)
            family = column.split(b":")[0] + b":"
            if family not in table.families:
                raise Hbase.IOError(message=f"no column family {family!r}")
            if m.isDelete:
                cells = table.row(row)
                if column in (family, family[:-1]):  # a whole family, as happybase sends it
                    for c in [c for c in cells if c.startswith(family)]:
                        del cells[c]
                else:
                    cells.pop(column, None)
                table.drop_if_empty(row)
                continue
            value = _b(m.value)
            size = cell_size(row, column, value)
            if size > MAX_CELL:
                raise Hbase.IOError(message=f"KeyValue size too large ({size} bytes, "
                                            f"hbase.client.keyvalue.maxsize = {MAX_CELL})")
            table.row(row)[column] = (value, ts)

    def mutateRows(self, tableName: Any, rowBatches: list[Any], attributes: Any  # noqa: N802, N803
                   ) -> None:
        self.mutateRowsTs(tableName, rowBatches, int(time.time() * 1000), attributes)

    def mutateRowsTs(self, tableName: Any, rowBatches: list[Any], timestamp: int,  # noqa: N802, N803
                     attributes: Any) -> None:
        with self.lock:
            table = self._table(tableName)
            for batch in rowBatches:
                self._mutate(table, _b(batch.row), batch.mutations, timestamp)

    def mutateRow(self, tableName: Any, row: Any, mutations: list[Any],  # noqa: N802, N803
                  attributes: Any) -> None:
        with self.lock:
            self._mutate(self._table(tableName), _b(row), mutations, int(time.time() * 1000))

    def deleteAllRow(self, tableName: Any, row: Any, attributes: Any) -> None:  # noqa: N802, N803
        with self.lock:
            table = self._table(tableName)
            if _b(row) in table.rows:
                table.rows[_b(row)].clear()
                table.drop_if_empty(_b(row))

    def atomicIncrement(self, tableName: Any, row: Any, column: Any, value: int  # noqa: N802, N803
                        ) -> int:
        with self.lock:
            cells = self._table(tableName).row(_b(row))
            current = int.from_bytes(cells.get(_b(column), (b"\0" * 8, 0))[0], "big",
                                     signed=True)
            current += value
            cells[_b(column)] = (current.to_bytes(8, "big", signed=True),
                                 int(time.time() * 1000))
            return current

    # reads ---------------------------------------------------------------

    def _result(self, table: _Table, key: bytes, columns: list[Any] | None) -> Any:
        cells = table.rows.get(key, {})
        wanted = [_b(c) for c in columns or []]

        def keep(column: bytes) -> bool:
            return not wanted or any(column == w or (w.endswith(b":") and column.startswith(w))
                                     or (b":" not in w and column.startswith(w + b":"))
                                     for w in wanted)

        return Hbase.TRowResult(row=key, columns={
            c: Hbase.TCell(value=v, timestamp=ts) for c, (v, ts) in sorted(cells.items())
            if keep(c)})

    def getRowWithColumns(self, tableName: Any, row: Any, columns: list[Any],  # noqa: N802, N803
                          attributes: Any) -> list[Any]:
        table = self._table(tableName)
        if _b(row) not in table.rows:
            return []
        return [self._result(table, _b(row), columns)]

    def getRow(self, tableName: Any, row: Any, attributes: Any) -> list[Any]:  # noqa: N802, N803
        return self.getRowWithColumns(tableName, row, [], attributes)

    def getRowsWithColumns(self, tableName: Any, rows: list[Any], columns: list[Any],  # noqa: N802, N803
                           attributes: Any) -> list[Any]:
        table = self._table(tableName)
        return [self._result(table, _b(r), columns) for r in rows if _b(r) in table.rows]

    def getRows(self, tableName: Any, rows: list[Any], attributes: Any) -> list[Any]:  # noqa: N802, N803
        return self.getRowsWithColumns(tableName, rows, [], attributes)

    def scannerOpenWithScan(self, tableName: Any, scan: Any, attributes: Any) -> int:  # noqa: N802, N803
        with self.lock:
            table = self._table(tableName)
            start = _b(scan.startRow) if scan.startRow else b""
            stop = _b(scan.stopRow) if scan.stopRow else None
            keys = [k for k in table.keys if k >= start and (stop is None or k < stop)]
            if scan.reversed:
                keys.reverse()
            results = [self._result(table, k, scan.columns) for k in keys]
            scan_id = next(self.ids)
            self.scanners[scan_id] = results
            return scan_id

    def scannerGetList(self, id: int, nbRows: int) -> list[Any]:  # noqa: N802, N803, A002
        with self.lock:
            pending = self.scanners.get(id)
            if pending is None:
                raise Hbase.IllegalArgument(message=f"no scanner {id}")
            out, self.scanners[id] = pending[:nbRows], pending[nbRows:]
            return out

    def scannerGet(self, id: int) -> list[Any]:  # noqa: N802, A002
        return self.scannerGetList(id, 1)

    def scannerClose(self, id: int) -> None:  # noqa: N802, A002
        with self.lock:
            self.scanners.pop(id, None)


class _LimitedFramedTransport(TFramedTransport):
    """Framed transport that refuses frames over HBase's default 2 MB."""

    def read_frame(self) -> None:
        (length,) = struct.unpack("!i", readall(self._trans.read, 4))
        if length > MAX_FRAME:
            self._trans.close()
            raise OSError(f"frame of {length} bytes exceeds {MAX_FRAME}")
        self._rbuf = io.BytesIO(readall(self._trans.read, length))


class _LimitedFramedFactory(TFramedTransportFactory):
    def get_transport(self, trans: Any) -> Any:
        return _LimitedFramedTransport(trans)


def free_port() -> int:
    """A free loopback port (thriftpy2 refuses port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Server(TThreadedServer):
    """A threaded Thrift server whose close() also closes every client connection."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clients: set[Any] = set()
        self.clients_lock = threading.Lock()

    def serve(self) -> None:
        self.trans.listen()
        while not self.closed:
            try:
                client = self.trans.accept()
            except Exception:  # the listening socket was closed by close()
                return
            if self.closed:
                client.close()
                return
            with self.clients_lock:
                self.clients.add(client)
            threading.Thread(target=self.handle, args=(client,), daemon=True).start()

    def handle(self, client: Any) -> None:
        itrans = self.itrans_factory.get_transport(client)
        otrans = self.otrans_factory.get_transport(client)
        iprot = self.iprot_factory.get_protocol(itrans)
        oprot = self.oprot_factory.get_protocol(otrans)
        try:
            while not self.closed:
                self.processor.process(iprot, oprot)
        except Exception:  # idle timeout, client gone, server stopped: drop the connection
            pass
        finally:
            with self.clients_lock:
                self.clients.discard(client)
            with contextlib.suppress(Exception):
                itrans.close()

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(Exception):
            self.trans.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(Exception):
            self.trans.close()
        with self.clients_lock:
            clients = list(self.clients)
        for client in clients:
            with contextlib.suppress(Exception):
                client.sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(Exception):
                client.close()


class FakeHBase:
    """The double: ``start()``, ``host``/``port``, ``stop()``, ``restart()``."""

    def __init__(self, transport: str = "buffered", protocol: str = "binary",
                 idle_timeout: float | None = IDLE_TIMEOUT) -> None:
        self.transport = transport
        self.protocol = protocol
        self.idle_timeout = idle_timeout
        self.host = "127.0.0.1"
        self.port = free_port()
        self.handler = Handler()
        self.server: _Server | None = None

    def start(self) -> FakeHBase:
        """Serve in a daemon thread until stop()."""
        trans_factory = (_LimitedFramedFactory() if self.transport == "framed"
                         else TBufferedTransportFactory())
        if self.protocol == "compact":
            proto_factory: Any = TCompactProtocolFactory()
        elif self.transport == "framed":  # the size-checking framed transport is pure Python
            proto_factory = PyBinaryProtocolFactory()
        else:
            proto_factory = TBinaryProtocolFactory()
        timeout_ms = int(self.idle_timeout * 1000) if self.idle_timeout else None
        socket_ = TServerSocket(host=self.host, port=self.port, client_timeout=timeout_ms)
        self.server = _Server(TProcessor(Hbase.Hbase, self.handler), socket_,
                              itrans_factory=trans_factory, iprot_factory=proto_factory,
                              daemon=True)
        threading.Thread(target=self.server.serve, daemon=True).start()
        for _ in range(250):
            with socket.socket() as sock:
                if sock.connect_ex((self.host, self.port)) == 0:
                    return self
            time.sleep(0.02)
        raise RuntimeError("the HBase double did not start")

    def stop(self) -> None:
        """Stop serving: close the listening socket and every open connection."""
        if self.server is not None:
            self.server.close()
            self.server = None

    def open_connections(self) -> int:
        """Client connections the server holds open right now."""
        if self.server is None:
            return 0
        with self.server.clients_lock:
            return len(self.server.clients)

    def restart(self) -> None:
        """Stop and start again on the same port with the same tables."""
        self.stop()
        self.start()
