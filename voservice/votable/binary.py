"""BINARY / BINARY2 encoding of normalised chunks, vectorised with numpy.

Each field becomes one or two uint8 matrices of shape (n, width): fixed-width
fields directly (big-endian view), variable-length fields as a 4-byte count
prefix plus a matrix padded to the longest value of the chunk together with the
real byte lengths.  The row-major byte stream is then ``M[keep]`` where ``keep``
masks the padding: a single boolean compaction instead of per-row Python work.
Chunks whose padding would be wasteful (one huge value among short ones) are
split recursively.
"""

from __future__ import annotations

import binascii
from collections.abc import Sequence

import numpy as np

from .columns import Col
from .fields import FieldSpec

__all__ = ["encode_binary", "Base64Stream", "char_bytes"]

_U1 = np.uint8
_PAD_LIMIT = 4 << 20  # tolerate this much padding per chunk before splitting

Part = tuple[np.ndarray, np.ndarray | None]  # (n x w uint8 matrix, byte lengths or None)


def char_bytes(values: object, ascii_only: bool) -> np.ndarray:
    """Values of a char column as a numpy ``S`` array (ASCII or UTF-8 bytes)."""
    if isinstance(values, np.ndarray):
        if values.dtype.kind == "S":
            return values
        try:
            return values.astype("S")
        except UnicodeEncodeError:
            values = values.tolist()
    try:
        return np.array(values, dtype="S") if len(values) else np.zeros(0, "S1")  # type: ignore[arg-type]
    except UnicodeEncodeError:
        enc = ("ascii", "replace") if ascii_only else ("utf-8", "strict")
        return np.array([s.encode(*enc) for s in values], dtype="S")  # type: ignore[union-attr]


def _char_padded(col: Col, ascii_only: bool) -> tuple[np.ndarray, np.ndarray]:
    """Variable char values -> (n x L uint8 matrix padded with NUL, byte lengths)."""
    values = col.values
    if isinstance(values, np.ndarray) and values.dtype.kind == "U" and len(values):
        # ASCII text: the code points are the bytes (numpy's U -> S cast is slow)
        codes = np.ascontiguousarray(values).view(np.uint32).reshape(len(values), -1)
        if int(codes.max()) < 128:
            return codes.astype(_U1), np.char.str_len(values).astype(np.int64)
    if not isinstance(values, list):
        s = char_bytes(values, ascii_only)
        return s.view(_U1).reshape(len(s), s.dtype.itemsize), np.char.str_len(s).astype(np.int64)
    n = len(values)
    lens = col.item_lens()
    blob = "".join(values)
    try:
        raw = blob.encode("ascii")
    except UnicodeEncodeError:
        if not ascii_only:
            return _padded_bytes([v.encode("utf-8") for v in values])
        raw = blob.encode("ascii", "replace")  # one '?' per character: lengths unchanged
    width = max(int(lens.max()) if n else 0, 1)
    flat = np.frombuffer(raw, _U1)
    if n and int(lens.min()) == width:
        return flat.reshape(n, width), lens
    mat = np.zeros((n, width), _U1)
    mat[np.arange(width) < lens[:, None]] = flat
    return mat, lens


def _ucs2(values: object) -> tuple[np.ndarray, np.ndarray]:
    """unicodeChar values -> (n x 2L uint8 big-endian UTF-16 matrix, byte lengths)."""
    arr = values if isinstance(values, np.ndarray) and values.dtype.kind == "U" else None
    if arr is None:
        if isinstance(values, np.ndarray) and values.dtype.kind == "S":
            arr = np.char.decode(values, "utf-8", "replace")
        else:
            lst = list(values)  # type: ignore[call-overload]
            arr = np.array(lst, dtype="U") if lst else np.zeros(0, "U1")
    n = len(arr)
    width = arr.dtype.itemsize // 4
    codes = arr.view(np.uint32).reshape(n, width)
    if codes.size and codes.max() > 0xFFFF:  # astral plane: real UTF-16 with surrogates
        return _padded_bytes([s.encode("utf-16-be") for s in arr.tolist()])
    lens = np.char.str_len(arr).astype(np.int64) * 2
    mat = codes.astype(">u2").view(_U1).reshape(n, 2 * width)
    return mat, lens


def _padded_bytes(blist: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    n = len(blist)
    lens = np.fromiter(map(len, blist), np.int64, n)
    width = max(int(lens.max()) if n else 0, 1)
    mat = np.array(blist, dtype=f"S{width}").view(_U1).reshape(n, width)
    return mat, lens


def _prefix(lens_items: np.ndarray) -> np.ndarray:
    return lens_items.astype(">i4").view(_U1).reshape(len(lens_items), 4)


def _str_parts(col: Col, spec: FieldSpec, n: int, ascii_only: bool) -> list[Part]:
    if not spec.variable:
        width = spec.count
        if spec.is_unicode:
            mat, _ = _ucs2(col.values)
            w2 = 2 * width
            if mat.shape[1] >= w2:
                return [(mat[:, :w2], None)]
            out = np.zeros((n, w2), _U1)
            out[:, : mat.shape[1]] = mat
            return [(out, None)]
        s = char_bytes(col.values, ascii_only).astype(f"S{width}")
        return [(s.view(_U1).reshape(n, width), None)]
    if spec.is_unicode:
        mat, lens = _ucs2(col.values)
    else:
        mat, lens = _char_padded(col, ascii_only)
    if spec.max_items is not None:
        limit = spec.max_items * (2 if spec.is_unicode else 1)
        if mat.shape[1] > limit:
            mat = mat[:, :limit]
            lens = np.minimum(lens, limit)
    if col.mask is not None:
        lens = np.where(col.mask, 0, lens)
    items = lens // 2 if spec.is_unicode else lens
    return [(_prefix(items), None), (mat, lens)]


def _num_parts(col: Col, spec: FieldSpec, n: int) -> list[Part]:
    arr = col.values.astype(spec.be_dtype)
    if col.mask is not None:
        arr[col.mask] = np.nan if spec.is_float else (spec.null if spec.null is not None else 0)
    return [(arr.view(_U1).reshape(n, -1), None)]


def _bool_parts(col: Col, spec: FieldSpec, n: int) -> list[Part]:
    v = col.values.reshape(n, -1)
    if spec.datatype == "bit":
        if col.mask is not None:
            v = v & ~col.mask[:, None]
        return [(np.packbits(v, axis=1), None)]
    out = np.where(v, _U1(ord("T")), _U1(ord("F"))).astype(_U1)
    if col.mask is not None:
        out[col.mask] = ord("?")
    return [(out, None)]


def _var_parts(col: Col, spec: FieldSpec, n: int) -> list[Part]:
    values: list[np.ndarray] = col.values
    if spec.max_items is not None:
        values = [v[: spec.max_items] for v in values]
    lens = np.fromiter(map(len, values), np.int64, n)
    width = int(lens.max()) if n else 0
    size = spec.be_dtype.itemsize
    padded = np.zeros((n, max(width, 1)), spec.be_dtype)
    if lens.sum():
        flat = np.concatenate(values).astype(spec.be_dtype)
        padded[np.arange(padded.shape[1]) < lens[:, None]] = flat
    return [(_prefix(lens), None), (padded.view(_U1).reshape(n, -1), lens * size)]


def _parts(col: Col, spec: FieldSpec, n: int, ascii_only: bool) -> list[Part]:
    if spec.kind == "num":
        return _num_parts(col, spec, n)
    if spec.kind == "str":
        return _str_parts(col, spec, n, ascii_only)
    if spec.kind == "bool":
        return _bool_parts(col, spec, n)
    return _var_parts(col, spec, n)


def _too_ragged(cols: Sequence[Col], specs: Sequence[FieldSpec], n: int) -> bool:
    """Would padding variable-length values to the longest one waste too much memory?"""
    for col, spec in zip(cols, specs, strict=True):
        if spec.variable and isinstance(col.values, list):
            lens = col.item_lens()
            if n * int(lens.max()) > 4 * int(lens.sum()) + _PAD_LIMIT:
                return True
    return False


def encode_binary(
    cols: Sequence[Col], specs: Sequence[FieldSpec], n: int, binary2: bool, ascii_only: bool = True
) -> bytes:
    """Encode one normalised chunk as BINARY (``binary2=False``) or BINARY2 rows."""
    if n == 0:
        return b""
    if n > 1 and _too_ragged(cols, specs, n):
        h = n // 2
        return encode_binary(
            [c.slice(0, h) for c in cols], specs, h, binary2, ascii_only
        ) + encode_binary([c.slice(h, n) for c in cols], specs, n - h, binary2, ascii_only)
    parts: list[Part] = []
    if binary2:
        nulls = np.zeros((n, len(specs)), np.bool_)
        for j, col in enumerate(cols):
            if col.mask is not None:
                nulls[:, j] = col.mask
        parts.append((np.packbits(nulls, axis=1), None))
    for col, spec in zip(cols, specs, strict=True):
        parts.extend(_parts(col, spec, n, ascii_only))
    # a padded part whose values are all empty (e.g. a NULL column) writes no byte
    parts = [p for p in parts if p[1] is None or int(p[1].max()) > 0]
    widths = [m.shape[1] for m, _ in parts]
    total_w = sum(widths)
    mat = np.empty((n, total_w), _U1)
    keep = None
    pos = 0
    for (m, lens), w in zip(parts, widths, strict=True):
        mat[:, pos : pos + w] = m
        if lens is not None and (n == 0 or int(lens.min()) < w):  # some padding to drop
            if keep is None:
                keep = np.ones((n, total_w), np.bool_)
            keep[:, pos : pos + w] = np.arange(w) < lens[:, None]
        pos += w
    if keep is None:
        return mat.tobytes()
    return mat[keep].tobytes()


class Base64Stream:
    """Incremental base64: feed byte chunks, get valid base64 text back.

    Only whole 3-byte groups are encoded; the 0-2 leftover bytes are carried
    to the next chunk, so the concatenated output is one valid base64 stream.
    Each non-empty output ends with a newline.
    """

    def __init__(self) -> None:
        self._carry = b""

    def feed(self, data: bytes) -> bytes:
        pre = b""
        view = memoryview(data)
        if self._carry:
            j = 3 - len(self._carry)
            head = self._carry + bytes(view[:j])
            if len(head) < 3:
                self._carry = head
                return b""
            pre = binascii.b2a_base64(head, newline=False)
            view = view[j:]
        r = len(view) % 3
        end = len(view) - r
        self._carry = bytes(view[end:])
        if end == 0:
            return pre + b"\n" if pre else b""
        body = binascii.b2a_base64(view[:end])
        return pre + body if pre else body

    def finish(self) -> bytes:
        """Encode the leftover bytes (with padding)."""
        if not self._carry:
            return b""
        out = binascii.b2a_base64(self._carry)
        self._carry = b""
        return out
