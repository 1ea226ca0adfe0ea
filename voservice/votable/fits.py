"""FITS BINTABLE output with flat memory.

A FITS header must state NAXIS2 (row count), string widths and the heap size
before any data, so rows cannot be streamed as they arrive.  Instead each
normalised chunk is converted to FITS-ready arrays and pickled into a
``SpooledTemporaryFile`` (RAM up to 32 MB, then disk); when the input is
exhausted the header is written and the spool is replayed (twice if there are
variable-length arrays: main table, then heap).  Memory stays at one chunk;
temporary disk use is about the size of the output.

Mapping: boolean->L, bit->X, unsignedByte->B, short->I, int->J, long->K,
float->E, double->D, char/unicodeChar/timestamps->A (UTF-8, width = longest
value), fixed arrays -> repeat count (+TDIM), variable arrays -> P descriptors.
NULL integers use TNULLn (the VOTable sentinel), floats NaN, strings empty,
booleans 0.
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from .binary import char_bytes
from .columns import Col
from .fields import FieldSpec, Info

__all__ = ["write_fits"]

_BLOCK = 2880
_CODES = {
    "boolean": "L",
    "bit": "X",
    "unsignedByte": "B",
    "short": "I",
    "int": "J",
    "long": "K",
    "float": "E",
    "double": "D",
    "char": "A",
    "unicodeChar": "A",
}
_SPOOL_RAM = 32 << 20
#: INFOs written as a string keyword, not a COMMENT (DS_IDPUB: the IVOA Spectrum DM FITS
#: keyword of Curation.PublisherDID)
_INFO_KEYWORDS = {"publisher_did": "DS_IDPUB"}
#: characters of a string value on one card (between the quotes)
_STRING_ROOM = 68
#: characters of commentary text on one COMMENT card (``COMMENT  text``, columns 10-80)
_COMMENT_ROOM = 71


def _card(key: str, value: object = None, comment: str | None = None) -> str:
    if value is None:
        text = f"{key:<8}" + ("" if comment is None else " " + comment)
        return text.encode("ascii", "replace").decode()[:80].ljust(80)
    if isinstance(value, bool):
        v = f"{'T' if value else 'F':>20}"
    elif isinstance(value, int):
        v = f"{value:>20}"
    else:
        s = str(value).encode("ascii", "replace").decode().replace("'", "''")[:68]
        v = f"'{s:<8}'"
    text = f"{key:<8}= {v}"
    if comment:
        text += " / " + comment
    return text.encode("ascii", "replace").decode()[:80].ljust(80)


def _string_cards(key: str, value: str, comment: str | None = None) -> list[str]:
    """A string keyword, whole: a long value goes on over CONTINUE cards.

    The FITS long-string convention (FITS 4.0, section 4.2.1.2): each part
    but the last ends in ``&`` and the next ``CONTINUE  '...'`` card goes on;
    a doubled quote is never split.  astropy reads the value in one piece.
    """
    text = value.encode("ascii", "replace").decode()
    quoted = len(text.replace("'", "''"))
    if quoted <= _STRING_ROOM:
        fits_in = comment and 10 + max(quoted, 8) + 2 + 3 + len(comment) <= 80
        return [_card(key, text, comment if fits_in else None)]
    parts, current = [], ""
    for char in text:
        escaped = "''" if char == "'" else char
        if len(current) + len(escaped) > _STRING_ROOM - 1:  # room for the '&'
            parts.append(current)
            current = ""
        current += escaped
    parts.append(current)
    lines = [f"{key:<8}= '{parts[0]}&'"] + [f"CONTINUE  '{part}&'" for part in parts[1:-1]]
    last = f"CONTINUE  '{parts[-1]}'"
    if comment and len(last) + 3 + len(comment) <= 80:
        last += " / " + comment
    return [line.ljust(80) for line in [*lines, last]]


def _comment_cards(text: str) -> list[str]:
    """Commentary text on as many COMMENT cards as it takes (none of it cut)."""
    text = text.encode("ascii", "replace").decode()
    return [_card("COMMENT", None, text[i : i + _COMMENT_ROOM])
            for i in range(0, max(len(text), 1), _COMMENT_ROOM)]


def _info_cards(info: Info) -> list[str]:
    """An INFO as its FITS string keyword when FITS has a name for it, else COMMENT cards."""
    keyword = _INFO_KEYWORDS.get(info.name)
    if keyword is not None:
        return _string_cards(keyword, str(info.value), info.name)
    text = f"{info.name}={info.value}" + (f": {info.content}" if info.content else "")
    return _comment_cards(text)


def _pad(data: bytes, fill: bytes = b"\0") -> bytes:
    rem = len(data) % _BLOCK
    return data + fill * ((_BLOCK - rem) % _BLOCK)


def _header(cards: list[str]) -> bytes:
    return _pad(("".join(cards) + "END".ljust(80)).encode("ascii"), b" ")


def _fits_col(col: Col, spec: FieldSpec, n: int) -> object:
    """FITS-ready payload of one column of one chunk."""
    if spec.kind == "str":
        s = char_bytes(col.values, ascii_only=False)
        if col.mask is not None:
            s = s.copy()
            s[col.mask] = b""
        limit = spec.max_items if spec.variable else spec.count
        if limit is not None and s.dtype.itemsize > limit:
            s = s.astype(f"S{limit}")
        return s
    if spec.kind == "var":
        vals = col.values
        if spec.max_items is not None:
            vals = [v[: spec.max_items] for v in vals]
        lens = np.fromiter(map(len, vals), np.int64, n)
        flat = np.concatenate(vals) if lens.sum() else np.zeros(0, spec.dtype)
        if spec.datatype == "boolean":
            flat = np.where(flat, ord("T"), ord("F")).astype(np.uint8)
        else:
            flat = flat.astype(spec.be_dtype)
        return lens, flat
    v = col.values.reshape(n, -1)
    if spec.kind == "bool":
        if spec.datatype == "bit":
            return np.packbits(v, axis=1)
        out = np.where(v, ord("T"), ord("F")).astype(np.uint8)
        if col.mask is not None:
            out[col.mask] = 0
        return out
    arr = v.astype(spec.be_dtype)
    if col.mask is not None:
        arr[col.mask] = np.nan if spec.is_float else spec.null
    return arr.view(np.uint8).reshape(n, -1)


def write_fits(
    specs: Sequence[FieldSpec],
    chunks: Iterable[tuple[int, list[Col]]],
    infos: Iterable[Info] | None = None,
    trailer: object = None,
) -> Iterator[bytes]:
    """Yield a FITS file (empty primary HDU + BINTABLE) for normalised chunks.

    ``trailer`` is a zero-argument callable returning INFOs; it is called after
    the chunks are consumed and its INFOs become COMMENT cards, like ``infos``
    (a long one over several).  The ``publisher_did`` INFO is the string
    keyword ``DS_IDPUB`` instead, whole (long-string CONTINUE cards if needed).
    """
    k = len(specs)
    nrows = 0
    str_width = [1] * k
    heap_size = 0
    max_var = [0] * k
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_RAM) as spool:
        for n, cols in chunks:
            if n == 0:
                continue
            payload = [_fits_col(c, s, n) for c, s in zip(cols, specs, strict=True)]
            for j, (p, s) in enumerate(zip(payload, specs, strict=True)):
                if s.kind == "str":
                    str_width[j] = max(str_width[j], p.dtype.itemsize)  # type: ignore[union-attr]
                elif s.kind == "var":
                    lens, flat = p  # type: ignore[misc]
                    heap_size += flat.nbytes
                    max_var[j] = max(max_var[j], int(lens.max()))
            pickle.dump((n, payload), spool, protocol=pickle.HIGHEST_PROTOCOL)
            nrows += n
        all_infos = list(infos or ())
        if trailer is not None:
            all_infos += list(trailer())  # type: ignore[operator]

        widths, cards = [], []
        for j, s in enumerate(specs):
            i = j + 1
            code = _CODES[s.datatype]
            if s.kind == "str":
                tform, w = f"{str_width[j]}A", str_width[j]
            elif s.kind == "var":
                tform, w = f"P{code}({max_var[j]})", 8
            elif s.datatype == "bit":
                tform, w = f"{s.count}X", (s.count + 7) // 8
            else:
                tform, w = f"{s.count}{code}", s.count * s.be_dtype.itemsize
            widths.append(w)
            cards.append(_card(f"TTYPE{i}", s.name))
            cards.append(_card(f"TFORM{i}", tform))
            if s.field.unit:
                cards.append(_card(f"TUNIT{i}", s.field.unit))
            if s.is_integer and s.kind == "num":
                cards.append(_card(f"TNULL{i}", int(s.null)))
            if len(s.dims) > 1:
                cards.append(_card(f"TDIM{i}", "(" + ",".join(map(str, s.dims)) + ")"))
        naxis1 = sum(widths)
        head = [
            _card("XTENSION", "BINTABLE", "binary table extension"),
            _card("BITPIX", 8),
            _card("NAXIS", 2),
            _card("NAXIS1", naxis1, "width of table in bytes"),
            _card("NAXIS2", nrows, "number of rows"),
            _card("PCOUNT", heap_size, "size of heap"),
            _card("GCOUNT", 1),
            _card("TFIELDS", k),
        ]
        tail = [card for info in all_infos for card in _info_cards(info)]
        primary = [
            _card("SIMPLE", True),
            _card("BITPIX", 8),
            _card("NAXIS", 0),
            _card("EXTEND", True),
        ]
        yield _header(primary)
        yield _header(head + cards + tail)

        written = 0
        heap_pos = 0  # heap = per chunk, per variable column, flat data in row order
        spool.seek(0)
        for n, payload in _replay(spool):
            mat = np.empty((n, naxis1), np.uint8)
            pos = 0
            for j, (p, s) in enumerate(zip(payload, specs, strict=True)):
                w = widths[j]
                if s.kind == "str":
                    mat[:, pos : pos + w] = p.astype(f"S{w}").view(np.uint8).reshape(n, w)
                elif s.kind == "var":
                    lens, flat = p
                    item = flat.dtype.itemsize
                    desc = np.empty((n, 2), ">i4")
                    desc[:, 0] = lens
                    desc[:, 1] = heap_pos + (np.cumsum(lens) - lens) * item
                    heap_pos += flat.nbytes
                    mat[:, pos : pos + w] = desc.view(np.uint8).reshape(n, 8)
                else:
                    mat[:, pos : pos + w] = p
                pos += w
            data = mat.tobytes()
            written += len(data)
            yield data
        if heap_size:
            spool.seek(0)
            for _n, payload in _replay(spool):
                for p, s in zip(payload, specs, strict=True):
                    if s.kind == "var":
                        data = p[1].tobytes()
                        written += len(data)
                        yield data
        rem = written % _BLOCK
        if rem:
            yield b"\0" * (_BLOCK - rem)


def _replay(spool: object) -> Iterator[tuple[int, list]]:
    while True:
        try:
            yield pickle.load(spool)  # type: ignore[arg-type]
        except EOFError:
            return
