"""write_table: stream a table as VOTable (TABLEDATA/BINARY/BINARY2), CSV, TSV, JSON or FITS."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from . import document as doc
from .binary import Base64Stream, encode_binary
from .columns import normalize_chunk
from .fields import CooSys, Field, FieldSpec, Group, Info, Param, Resource, TimeSys
from .fits import write_fits
from .formats import FORMATS, resolve_format
from .tabledata import td_chunk
from .text import csv_chunk, csv_header, json_chunk, json_footer, json_header, tsv_chunk, tsv_header

__all__ = ["TableStream", "UnwritableValue", "write_table"]

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
        head = (
            doc.votable_open(version, timesys, coosys)
            + doc.results_open(doc.with_status(infos), meta_resources_inside, resource_name)
            + doc.table_open(
                specs, params, table_name, table_description,
                declare_null=fmt == "votable/binary", groups=groups,
            )
        )
        tail = "".join(doc.resource_xml(r) for r in resources) + doc.votable_close()
        out = _votable(specs, chunks, fmt, head, tail, trailer, catch, value_errors,
                       ascii_only)
    elif fmt == "fits":
        out = _fits(specs, chunks, infos, trailer, value_errors)
    else:
        out = _text(specs, chunks, fmt, infos, trailer, catch, value_errors)
    return TableStream(out, chunks)


class TableStream(Iterator[bytes]):
    """The bytes of a table; ``close()`` closes the writer and its input chunks."""

    def __init__(self, out: Iterator[bytes], chunks: Iterable[Any]) -> None:
        self._out = out
        self._chunks = chunks

    def __iter__(self) -> TableStream:
        return self

    def __next__(self) -> bytes:
        return next(self._out)

    def close(self) -> None:
        """Stop writing and close the chunk iterator (idempotent)."""
        with contextlib.suppress(Exception):
            close_out = getattr(self._out, "close", None)
            if close_out is not None:
                close_out()
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


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

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts, self.size = [], 0
        return out


def _late_infos(errors: list[Info], trailer: Callable[[], Sequence[Info]] | None) -> list[Info]:
    out = list(errors)
    if trailer is not None:
        out += list(trailer())
    return out


def _votable(
    specs: list[FieldSpec],
    chunks: Iterable[Any],
    fmt: str,
    head: str,
    tail: str,
    trailer: Callable[[], Sequence[Info]] | None,
    catch: tuple[type[BaseException], ...],
    values: bool,
    ascii_only: bool,
) -> Iterator[bytes]:
    errors: list[Info] = []
    buf = _Buffer()
    if fmt == "votable/td":
        yield (head + "<DATA><TABLEDATA>\n").encode()

        def td(n: int, cols: list) -> bytes:
            return td_chunk(cols, specs, n, ascii_only).encode("utf-8", "replace")

        with contextlib.closing(_encoded(specs, chunks, catch, errors, values, td)) as encoded:
            for data in encoded:
                out = buf.add(data)
                if out:
                    yield out
        close = "</TABLEDATA></DATA>\n"
    else:
        binary2 = fmt == "votable/binary2"
        tag = "BINARY2" if binary2 else "BINARY"
        yield (head + f'<DATA><{tag}>\n<STREAM encoding="base64">\n').encode()
        b64 = Base64Stream()

        def binary(n: int, cols: list) -> bytes:
            return encode_binary(cols, specs, n, binary2, ascii_only)

        with contextlib.closing(_encoded(specs, chunks, catch, errors, values, binary)) as encoded:
            for data in encoded:  # a failed chunk is never fed: the stream stays whole rows
                out = buf.add(b64.feed(data))
                if out:
                    yield out
        buf.add(b64.finish())
        close = f"</STREAM>\n</{tag}></DATA>\n"
    late = _late_infos(errors, trailer)
    end = close + "</TABLE>\n" + "".join(doc.info_xml(i) for i in late) + "</RESOURCE>\n" + tail
    buf.add(end.encode("utf-8", "replace"))
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
        buf.add(json_footer([(i.name, i.value, i.content) for i in late]).encode())
        yield buf.take()
        return
    header, encode = (csv_header, csv_chunk) if fmt == "csv" else (tsv_header, tsv_chunk)
    buf.add(header(specs).encode("utf-8", "replace"))  # sent with the first rows
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
