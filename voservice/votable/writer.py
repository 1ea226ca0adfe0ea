"""write_table: stream a table as VOTable (TABLEDATA/BINARY/BINARY2), CSV, TSV, JSON or FITS."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from . import document as doc
from .binary import Base64Stream, encode_binary
from .columns import normalize_chunk
from .fields import Field, FieldSpec, Info, Param, Resource, TimeSys
from .fits import write_fits
from .formats import FORMATS, resolve_format
from .tabledata import td_chunk
from .text import csv_chunk, csv_header, json_chunk, json_footer, json_header, tsv_chunk, tsv_header

__all__ = ["write_table"]

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
    resources: Sequence[Resource] = (),
    table_name: str | None = None,
    table_description: str | None = None,
    resource_name: str | None = None,
    meta_resources_inside: Sequence[Resource] = (),
    trailer: Callable[[], Sequence[Info]] | None = None,
    version: str = "1.4",
    catch: tuple[type[BaseException], ...] = (),
) -> Iterator[bytes]:
    """Stream a table as an iterator of ``bytes``.

    ``chunks`` yields row chunks (sequences of row tuples, None = NULL) or
    column chunks (:class:`Columns`, a mapping by field name, a numpy structured
    array); see ``columns.py``.  ``format`` is a canonical name of ``FORMATS``
    (or anything :func:`resolve_format` accepts).  Arguments are validated
    before the first byte; the returned iterator does the work lazily.

    ``trailer`` is called once the chunks are exhausted; its INFOs are placed
    after the TABLE (VOTable), in ``"infos"`` (JSON) or as COMMENT cards
    (FITS); CSV/TSV cannot carry them.  If the chunk iterator raises one of
    the ``catch`` exception types, the document is closed properly with a
    late ``<INFO name="QUERY_STATUS" value="ERROR">`` (VOTable, JSON, FITS);
    for CSV/TSV the exception propagates so the truncation is visible.
    """
    fmt = _canonical(format)
    specs = [FieldSpec(f) for f in fields]
    if not specs:
        raise ValueError("a table needs at least one field")
    ascii_only = version < "1.5"
    if fmt.startswith("votable/"):
        head = (
            doc.votable_open(version, timesys)
            + doc.results_open(doc.with_status(infos), meta_resources_inside, resource_name)
            + doc.table_open(
                specs, params, table_name, table_description, declare_null=fmt == "votable/binary"
            )
        )
        tail = "".join(doc.resource_xml(r) for r in resources) + doc.votable_close()
        return _votable(specs, chunks, fmt, head, tail, trailer, catch, ascii_only)
    if fmt == "fits":
        return _fits(specs, chunks, infos, trailer, catch)
    return _text(specs, chunks, fmt, infos, trailer, catch)


def _normalised(
    specs: list[FieldSpec],
    chunks: Iterable[Any],
    catch: tuple[type[BaseException], ...],
    errors: list[Info],
) -> Iterator[tuple[int, list]]:
    it = iter(chunks)
    try:
        while True:
            try:
                chunk = next(it)
            except StopIteration:
                return
            except catch as exc:  # noqa: PERF203
                errors.append(Info("QUERY_STATUS", "ERROR", str(exc) or type(exc).__name__))
                return
            n, cols = normalize_chunk(chunk, specs)
            if n:
                yield n, cols
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()


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
    ascii_only: bool,
) -> Iterator[bytes]:
    errors: list[Info] = []
    buf = _Buffer()
    if fmt == "votable/td":
        yield (head + "<DATA><TABLEDATA>\n").encode()
        for n, cols in _normalised(specs, chunks, catch, errors):
            out = buf.add(td_chunk(cols, specs, n, ascii_only).encode("utf-8", "replace"))
            if out:
                yield out
        close = "</TABLEDATA></DATA>\n"
    else:
        binary2 = fmt == "votable/binary2"
        tag = "BINARY2" if binary2 else "BINARY"
        yield (head + f'<DATA><{tag}>\n<STREAM encoding="base64">\n').encode()
        b64 = Base64Stream()
        for n, cols in _normalised(specs, chunks, catch, errors):
            out = buf.add(b64.feed(encode_binary(cols, specs, n, binary2, ascii_only)))
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
) -> Iterator[bytes]:
    errors: list[Info] = []
    buf = _Buffer()
    if fmt == "json":
        yield json_header(specs).encode("utf-8", "replace")
        first = True
        for n, cols in _normalised(specs, chunks, catch, errors):
            out = buf.add(json_chunk(cols, specs, n, first).encode("utf-8", "replace"))
            first = False
            if out:
                yield out
        late = list(infos) + _late_infos(errors, trailer)
        buf.add(json_footer([(i.name, i.value, i.content) for i in late]).encode())
        yield buf.take()
        return
    header, encode = (csv_header, csv_chunk) if fmt == "csv" else (tsv_header, tsv_chunk)
    yield header(specs).encode("utf-8", "replace")
    for n, cols in _normalised(specs, chunks, (), errors):
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
    catch: tuple[type[BaseException], ...],
) -> Iterator[bytes]:
    errors: list[Info] = []
    return write_fits(
        specs,
        _normalised(specs, chunks, catch, errors),
        infos=infos,
        trailer=lambda: _late_infos(errors, trailer),
    )
