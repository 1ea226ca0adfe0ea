"""write_table: stream a table as VOTable (TABLEDATA/BINARY/BINARY2), CSV, TSV, JSON or FITS.

write_tables: stream several tables (:class:`TablePart`) in one VOTable RESOURCE.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from . import document as doc
from .binary import Base64Stream, encode_binary
from .columns import normalize_chunk
from .fields import CooSys, Field, FieldSpec, Group, Info, Param, Resource, TimeSys
from .fits import write_fits
from .formats import FORMATS, resolve_format
from .tabledata import td_chunk
from .text import (
    csv_chunk,
    csv_header,
    ecsv_header,
    json_chunk,
    json_footer,
    json_header,
    tsv_chunk,
    tsv_header,
)

__all__ = ["TablePart", "TableStream", "UnwritableValue", "write_table", "write_tables"]

log = logging.getLogger(__name__)

_FLUSH = 256 << 10  # coalesce small chunks into ~256 kB writes


def _canonical(fmt: str) -> str:
    if fmt in FORMATS:
        return fmt
    return resolve_format(fmt)[0]


def write_table(
    fields: Sequence[Field],
    chunks: Iterable[Any],
    *,
    format: str = "votable/binary2",
    infos: Sequence[Info] = (),
    params: Sequence[Param] = (),
    timesys: Sequence[TimeSys] = (),
    coosys: Sequence[CooSys] = (),
    groups: Sequence[Group] = (),
    resources: Sequence[Resource] = (),
    table_name: str | None = None,
    table_description: str | None = None,
    resource_name: str | None = None,
    meta_resources_inside: Sequence[Resource] = (),
    trailer: Callable[[], Sequence[Info]] | None = None,
    version: str = "1.4",
    catch: tuple[type[BaseException], ...] = (),
    value_errors: bool = False,
) -> TableStream:
    """Stream a table as an iterator of ``bytes``.

    ``chunks`` yields row chunks (sequences of row tuples, None = NULL) or
    column chunks (:class:`Columns`, a mapping by field name, a numpy structured
    array); see ``columns.py``.  ``format`` is a canonical name of ``FORMATS``
    (or anything :func:`resolve_format` accepts).  Arguments are validated
    before the first byte; the returned iterator does the work lazily.

    ``trailer`` is called once the chunks are exhausted; its INFOs are placed
    after the TABLE (VOTable), in ``"infos"`` (JSON) or as COMMENT cards
    (FITS); CSV/TSV cannot carry them.

    Errors while streaming: if the chunk iterator raises one of the ``catch``
    exception types, or (``value_errors``) a value cannot be written (e.g. out
    of range for its FIELD's datatype; else the ValueError propagates), a
    VOTable is closed properly (open elements, BINARY2 stream included) with
    a late ``<INFO name="QUERY_STATUS" value="ERROR">`` and JSON gets it in
    ``"infos"``.  CSV/TSV and FITS cannot carry it: the exception propagates
    (an unwritable value as :class:`UnwritableValue`).  CSV/TSV hold their
    header back until the first chunk is encoded and FITS yields nothing
    before the last row, so a caller that takes the first block before sending
    the status line (as ``dali.stream`` does) answers those errors with an
    error document; a later CSV/TSV error cuts the transfer.

    The returned iterator's ``close()`` also closes ``chunks`` (even when no
    byte was taken), so what the chunks hold is released.
    """
    fmt = _canonical(format)
    specs = [FieldSpec(f) for f in fields]
    if not specs:
        raise ValueError("a table needs at least one field")
    ascii_only = version < "1.5"
    if fmt.startswith("votable/"):
        head = _votable_head(version, timesys, coosys, infos, meta_resources_inside,
                             resource_name)
        table = _table(fmt, specs, chunks, params, groups, table_name, table_description,
                       trailer)
        tail = "".join(doc.resource_xml(r) for r in resources) + doc.votable_close()
        out = _votable([table], fmt, head, tail, None, catch, value_errors, ascii_only)
    elif fmt == "fits":
        out = _fits(specs, chunks, infos, trailer, value_errors)
    else:
        out = _text(specs, chunks, fmt, infos, trailer, catch, value_errors)
    return TableStream(out, chunks)


@dataclass(frozen=True)
class TablePart:
    """One TABLE of :func:`write_tables`: its FIELDs, row chunks (as for
    :func:`write_table`), PARAMs, GROUPs, name, DESCRIPTION and a ``trailer``
    called once its chunks are exhausted (its INFOs follow the TABLE)."""

    fields: Sequence[Field]
    chunks: Iterable[Any]
    params: Sequence[Param] = ()
    groups: Sequence[Group] = ()
    name: str | None = None
    description: str | None = None
    trailer: Callable[[], Sequence[Info]] | None = None


def write_tables(
    parts: Sequence[TablePart],
    *,
    format: str = "votable/binary2",
    infos: Sequence[Info] = (),
    timesys: Sequence[TimeSys] = (),
    coosys: Sequence[CooSys] = (),
    resources: Sequence[Resource] = (),
    resource_name: str | None = None,
    trailer: Callable[[], Sequence[Info]] | None = None,
    version: str = "1.4",
    catch: tuple[type[BaseException], ...] = (),
    value_errors: bool = False,
) -> TableStream:
    """Stream several tables as one VOTable (an iterator of ``bytes``).

    The layout is case 2 of the IVOA time-series note: VOTABLE-level COOSYS and
    TIMESYS (FIELDs of any table point at them with ``ref``), one
    ``<RESOURCE type="results">`` with ``infos`` (QUERY_STATUS first), then each
    part's TABLE followed by the INFOs of its ``trailer``, the INFOs of
    ``trailer`` at the end of the RESOURCE, then ``resources``.  Tables are
    encoded exactly as :func:`write_table` encodes one, one after another: a
    part's chunks are only iterated after the previous part's chunks ended.

    Errors (``catch``, ``value_errors``) as in :func:`write_table`: the current
    TABLE is closed with whole rows, the late ``QUERY_STATUS=ERROR`` INFO follows
    it and no further TABLE is written (their chunks are closed unread).
    ``close()`` of the result closes every part's chunks.

    CSV, TSV, JSON and FITS hold one table: a single part is written by
    :func:`write_table` (its trailer's INFOs before the document ``trailer``'s);
    more than one raises ValueError.  Arguments are validated before the first byte.
    """
    parts = list(parts)
    if not parts:
        raise ValueError("write_tables needs at least one TablePart")
    fmt = _canonical(format)
    if not fmt.startswith("votable/"):
        if len(parts) > 1:
            raise ValueError(
                f"RESPONSEFORMAT {fmt} holds a single table but this result has "
                f"{len(parts)} tables; use a VOTable format")
        part = parts[0]
        return write_table(
            part.fields, part.chunks, format=fmt, infos=infos, params=part.params,
            timesys=timesys, coosys=coosys, groups=part.groups, resources=resources,
            table_name=part.name, table_description=part.description,
            resource_name=resource_name, trailer=_joined(part.trailer, trailer),
            version=version, catch=catch, value_errors=value_errors,
        )
    tables = []
    for k, part in enumerate(parts):
        specs = [FieldSpec(f) for f in part.fields]
        if not specs:
            raise ValueError(f"table {k + 1} ({part.name or 'unnamed'}) needs at least one field")
        tables.append(_table(fmt, specs, part.chunks, part.params, part.groups, part.name,
                             part.description, part.trailer))
    _check_unique_ids(parts, timesys, coosys)
    head = _votable_head(version, timesys, coosys, infos, (), resource_name)
    tail = "".join(doc.resource_xml(r) for r in resources) + doc.votable_close()
    out = _votable(tables, fmt, head, tail, trailer, catch, value_errors, version < "1.5")
    return TableStream(out, *(p.chunks for p in parts))


def _joined(
    first: Callable[[], Sequence[Info]] | None, second: Callable[[], Sequence[Info]] | None
) -> Callable[[], Sequence[Info]] | None:
    if first is None or second is None:
        return first or second
    return lambda: [*first(), *second()]


def _check_unique_ids(parts: Sequence[TablePart], timesys: Sequence[TimeSys],
                      coosys: Sequence[CooSys]) -> None:
    """XML IDs must be unique in the document (one FIELD list reused per table is a trap)."""
    seen: set[str] = set()
    ids = [t.id for t in timesys] + [c.id for c in coosys]
    for part in parts:
        ids += [f.id for f in part.fields] + [p.id for p in part.params]
    for i in ids:
        if i is None:
            continue
        if i in seen:
            raise ValueError(f"ID {i!r} is used more than once in the document")
        seen.add(i)


class TableStream(Iterator[bytes]):
    """The bytes of a table; ``close()`` closes the writer and its input chunks."""

    def __init__(self, out: Iterator[bytes], *chunks: Iterable[Any]) -> None:
        self._out = out
        self._chunks = chunks

    def __iter__(self) -> TableStream:
        return self

    def __next__(self) -> bytes:
        return next(self._out)

    def close(self) -> None:
        """Stop writing and close the chunk iterators (idempotent; all of them are
        closed, then the first error of a ``close()`` is raised)."""
        with contextlib.suppress(Exception):
            close_out = getattr(self._out, "close", None)
            if close_out is not None:
                close_out()
        _close_all(self._chunks)


def _close_all(chunks: Iterable[Iterable[Any]]) -> None:
    first: BaseException | None = None
    for c in chunks:
        close = getattr(c, "close", None)
        if close is None:
            continue
        try:
            close()
        except Exception as exc:  # noqa: BLE001, PERF203 - close the others first
            first = first or exc
    if first is not None:
        raise first


class UnwritableValue(ValueError):
    """A value of the result cannot be written (e.g. out of range for its datatype)."""


def _value_error(exc: Exception) -> Info:
    log.warning("a result could not be written: %s", exc)
    return Info("QUERY_STATUS", "ERROR", f"a value of the result could not be written: {exc}")


def _normalised(
    specs: list[FieldSpec],
    chunks: Iterable[Any],
    catch: tuple[type[BaseException], ...],
    errors: list[Info] | None,
    values: bool = False,
) -> Iterator[tuple[int, list]]:
    """Normalised chunks; with ``errors``, a ``catch`` error (or, with ``values``, a
    value that cannot be written) ends them with an ERROR INFO there."""
    it = iter(chunks)
    try:
        while True:
            try:
                chunk = next(it)
            except StopIteration:
                return
            except catch as exc:  # noqa: PERF203
                if errors is None:
                    raise
                errors.append(Info("QUERY_STATUS", "ERROR", str(exc) or type(exc).__name__))
                return
            try:
                n, cols = normalize_chunk(chunk, specs)
            except (ValueError, OverflowError) as exc:
                if not values:
                    raise
                if errors is None:
                    raise UnwritableValue(
                        f"a value of the result could not be written: {exc}") from exc
                errors.append(_value_error(exc))
                return
            if n:
                yield n, cols
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()


def _encoded(
    specs: list[FieldSpec],
    chunks: Iterable[Any],
    catch: tuple[type[BaseException], ...],
    errors: list[Info],
    values: bool,
    encode: Callable[[int, list], bytes],
) -> Iterator[bytes]:
    """Encoded chunks; an error (see :func:`_normalised`) or, with ``values``, a
    failing ``encode`` ends them with an ERROR INFO in ``errors``."""
    with contextlib.closing(_normalised(specs, chunks, catch, errors, values)) as normalised:
        for n, cols in normalised:
            try:
                data = encode(n, cols)
            except (ValueError, OverflowError) as exc:
                if not values:
                    raise
                errors.append(_value_error(exc))
                return
            yield data


class _Buffer:
    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, data: bytes) -> bytes | None:
        if not data:
            return None
        self.parts.append(data)
        self.size += len(data)
        if self.size >= _FLUSH:
            return self.take()
        return None

    def put(self, data: bytes) -> None:
        """Hold ``data`` without flushing (for callers that take() later)."""
        self.parts.append(data)
        self.size += len(data)

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts, self.size = [], 0
        return out


def _late_infos(errors: list[Info], trailer: Callable[[], Sequence[Info]] | None) -> list[Info]:
    out = list(errors)
    if trailer is not None:
        out += list(trailer())
    return out


def _votable_head(
    version: str,
    timesys: Sequence[TimeSys],
    coosys: Sequence[CooSys],
    infos: Sequence[Info],
    meta_resources_inside: Sequence[Resource],
    resource_name: str | None,
) -> bytes:
    """XML declaration to the INFOs (and inner RESOURCEs) of the results RESOURCE."""
    return (
        doc.votable_open(version, timesys, coosys)
        + doc.results_open(doc.with_status(infos), meta_resources_inside, resource_name)
    ).encode()


@dataclass(frozen=True)
class _Table:
    specs: list[FieldSpec]
    chunks: Iterable[Any]
    head: bytes  # <TABLE> start to <STREAM> / <TABLEDATA> start
    trailer: Callable[[], Sequence[Info]] | None


_DATA_TAGS = {
    "votable/td": ("<DATA><TABLEDATA>\n", "</TABLEDATA></DATA>\n"),
    "votable/binary": ('<DATA><BINARY>\n<STREAM encoding="base64">\n',
                       "</STREAM>\n</BINARY></DATA>\n"),
    "votable/binary2": ('<DATA><BINARY2>\n<STREAM encoding="base64">\n',
                        "</STREAM>\n</BINARY2></DATA>\n"),
}


def _table(
    fmt: str,
    specs: list[FieldSpec],
    chunks: Iterable[Any],
    params: Sequence[Param],
    groups: Sequence[Group],
    name: str | None,
    description: str | None,
    trailer: Callable[[], Sequence[Info]] | None,
) -> _Table:
    head = doc.table_open(specs, params, name, description,
                          declare_null=fmt == "votable/binary", groups=groups)
    return _Table(specs, chunks, (head + _DATA_TAGS[fmt][0]).encode(), trailer)


def _rows(
    table: _Table,
    fmt: str,
    buf: _Buffer,
    catch: tuple[type[BaseException], ...],
    errors: list[Info],
    values: bool,
    ascii_only: bool,
) -> Iterator[bytes]:
    """The rows of one TABLE's DATA through ``buf``: yields full blocks, leaves the
    rest in ``buf``; an error ends the rows (whole ones) with an INFO in ``errors``."""
    specs = table.specs
    b64 = None
    if fmt == "votable/td":

        def encode(n: int, cols: list) -> bytes:
            return td_chunk(cols, specs, n, ascii_only).encode("utf-8", "replace")
    else:
        binary2 = fmt == "votable/binary2"
        b64 = Base64Stream()

        def encode(n: int, cols: list) -> bytes:
            return encode_binary(cols, specs, n, binary2, ascii_only)

    with contextlib.closing(
        _encoded(specs, table.chunks, catch, errors, values, encode)
    ) as encoded:
        for data in encoded:  # a failed chunk is never fed: the stream stays whole rows
            out = buf.add(data if b64 is None else b64.feed(data))
            if out:
                yield out
    if b64 is not None:
        buf.put(b64.finish())


def _votable(
    tables: Sequence[_Table],
    fmt: str,
    head: bytes,
    tail: str,
    trailer: Callable[[], Sequence[Info]] | None,
    catch: tuple[type[BaseException], ...],
    values: bool,
    ascii_only: bool,
) -> Iterator[bytes]:
    """The VOTable: ``head``, the tables one after another (each closed by its
    trailer's INFOs; an error ends the last one written), ``trailer``'s INFOs,
    ``</RESOURCE>`` and ``tail``.  The first block is ``head`` and the first TABLE
    start, before any chunk is read."""
    errors: list[Info] = []
    buf = _Buffer()
    close = _DATA_TAGS[fmt][1] + "</TABLE>\n"
    pending = iter(tables)
    text = ""  # the end of the previous TABLE, sent with what follows
    try:
        for k, table in enumerate(pending):
            if k == 0:
                yield head + table.head
            else:
                out = buf.add(text.encode("utf-8", "replace") + table.head)
                if out:
                    yield out
            yield from _rows(table, fmt, buf, catch, errors, values, ascii_only)
            late = _late_infos(errors, table.trailer)
            text = close + "".join(doc.info_xml(i) for i in late)
            if errors:
                break  # no further table after an error
    finally:
        _close_all(t.chunks for t in pending)  # tables that will never be written
    text += "".join(doc.info_xml(i) for i in _late_infos([], trailer))
    buf.put((text + "</RESOURCE>\n" + tail).encode("utf-8", "replace"))
    yield buf.take()


def _text(
    specs: list[FieldSpec],
    chunks: Iterable[Any],
    fmt: str,
    infos: Sequence[Info],
    trailer: Callable[[], Sequence[Info]] | None,
    catch: tuple[type[BaseException], ...],
    values: bool,
) -> Iterator[bytes]:
    errors: list[Info] = []
    buf = _Buffer()
    if fmt == "json":
        yield json_header(specs).encode("utf-8", "replace")
        first = [True]

        def js(n: int, cols: list) -> bytes:
            data = json_chunk(cols, specs, n, first[0]).encode("utf-8", "replace")
            first[0] = False
            return data

        with contextlib.closing(_encoded(specs, chunks, catch, errors, values, js)) as encoded:
            for data in encoded:
                out = buf.add(data)
                if out:
                    yield out
        late = list(infos) + _late_infos(errors, trailer)
        buf.put(json_footer([(i.name, i.value, i.content) for i in late]).encode())
        yield buf.take()
        return
    header, encode = {"csv": (csv_header, csv_chunk), "ecsv": (ecsv_header, csv_chunk)}.get(
        fmt, (tsv_header, tsv_chunk))
    buf.put(header(specs).encode("utf-8", "replace"))  # sent with the first rows
    with contextlib.closing(_normalised(specs, chunks, (), None, values)) as normalised:
        for n, cols in normalised:
            out = buf.add(encode(cols, specs, n).encode("utf-8", "replace"))
            if out:
                yield out
    if trailer is not None:
        trailer()
    rest = buf.take()
    if rest:
        yield rest


def _fits(
    specs: list[FieldSpec],
    chunks: Iterable[Any],
    infos: Sequence[Info],
    trailer: Callable[[], Sequence[Info]] | None,
    values: bool,
) -> Iterator[bytes]:
    # FITS yields nothing before the last row: errors propagate before the first byte
    return write_fits(specs, _normalised(specs, chunks, (), None, values), infos=infos,
                      trailer=trailer)
