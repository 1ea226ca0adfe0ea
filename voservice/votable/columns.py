"""Input normalisation: turn a chunk (row tuples or column arrays) into typed columns.

A chunk is one of

* a sequence of row tuples (``cursor.fetchmany(n)``), ``None`` meaning NULL;
* a :class:`Columns` object (one array or list per field, optional NULL masks);
* a mapping ``{field name: array}`` or a numpy structured array (by field name).

A plain list of numpy arrays is taken as *rows*; wrap column arrays in
:class:`Columns`.  Every chunk becomes a list of :class:`Col`, one per field,
whose ``values`` depend on the field kind (see ``FieldSpec``):

* ``num``  -> numpy array of the field dtype, shape (n,) or (n, count)
* ``bool`` -> numpy bool array, shape (n,) or (n, count)
* ``var``  -> list of 1-D numpy arrays (empty for NULL)
* ``str``  -> list of str, or numpy ``U``/``S`` array (NULL -> "")

``mask`` is a bool array (True = NULL) or None when the chunk has no NULL.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import math
from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

import numpy as np

from .fields import FieldSpec
from .timefmt import iso_from_datetime64, iso_one, iso_strings

__all__ = ["Columns", "Col", "normalize_chunk"]


class Columns:
    """A column-oriented chunk.

    ``arrays``: one array (numpy array, masked array or list) per field, in field
    order, or a mapping by field name.  ``masks``: optional matching bool arrays
    (True = NULL), a sequence (entries may be None) or a mapping by name.
    Float NaN and masked-array masks also count as NULL.
    """

    __slots__ = ("arrays", "masks")

    def __init__(
        self,
        arrays: Sequence[Any] | Mapping[str, Any],
        masks: Sequence[Any] | Mapping[str, Any] | None = None,
    ) -> None:
        self.arrays = arrays
        self.masks = masks

    def __len__(self) -> int:
        arrays = self.arrays.values() if isinstance(self.arrays, Mapping) else self.arrays
        return len(next(iter(arrays)))

    def resolve(self, specs: Sequence[FieldSpec]) -> tuple[list[Any], list[Any]]:
        """Arrays and masks in field order."""
        if isinstance(self.arrays, Mapping):
            arrays = [self.arrays[s.name] for s in specs]
        else:
            arrays = list(self.arrays)
        if len(arrays) != len(specs):
            raise ValueError(f"Columns has {len(arrays)} arrays for {len(specs)} fields")
        if self.masks is None:
            masks: list[Any] = [None] * len(specs)
        elif isinstance(self.masks, Mapping):
            masks = [self.masks.get(s.name) for s in specs]
        else:
            masks = list(self.masks)
        return arrays, masks


class Col:
    """One normalised column of a chunk."""

    __slots__ = ("values", "mask", "lens")

    def __init__(self, values: Any, mask: np.ndarray | None) -> None:
        self.values = values
        self.mask = mask
        self.lens: np.ndarray | None = None  # cached item lengths of list values

    def item_lens(self) -> np.ndarray:
        """len() of every value (for list values of variable-length fields)."""
        if self.lens is None:
            self.lens = np.fromiter(map(len, self.values), np.int64, len(self.values))
        return self.lens

    def slice(self, a: int, b: int) -> Col:
        c = Col(self.values[a:b], None if self.mask is None else self.mask[a:b])
        if self.lens is not None:
            c.lens = self.lens[a:b]
        return c


# --------------------------------------------------------------------------- helpers

_NULL_FLOATS = (float, np.floating)


def _none_mask(seq: Sequence[Any]) -> np.ndarray | None:
    try:
        if None not in seq:  # C-level scan; identity is tested first
            return None
    except ValueError:  # elements are numpy arrays: == is elementwise
        pass
    mask = np.fromiter([v is None for v in seq], np.bool_, len(seq))
    return mask if mask.any() else None


def _or(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return b if (b is None or b.any()) else None
    if b is None:
        return a if a.any() else None
    m = a | b
    return m if m.any() else None


def _to_float(v: Any) -> float:
    if v is None:
        return math.nan
    if isinstance(v, bytes | str):
        v = v.strip()
        return float(v) if v else math.nan
    return float(v)


def _to_int(v: Any) -> int | None:
    if v is None:
        return None
    if isinstance(v, _NULL_FLOATS) and not math.isfinite(v):
        return None
    if isinstance(v, decimal.Decimal):
        if not v.is_finite():
            return None
        return int(v)
    if isinstance(v, bytes | str):
        v = v.strip()
        return int(v) if v else None
    return int(v)


_TRUE = frozenset({"t", "true", "1", "y", "yes"})
_FALSE = frozenset({"f", "false", "0", "n", "no"})


def _to_bool(v: Any) -> bool | None:
    if v is None:
        return None
    if isinstance(v, bytes):
        v = v.decode("ascii", "replace")
    if isinstance(v, str):
        s = v.strip().lower()
        if s in _TRUE:
            return True
        if s in _FALSE:
            return False
        if s in ("", "?"):
            return None
        raise ValueError(f"not a boolean: {v!r}")
    if isinstance(v, _NULL_FLOATS) and math.isnan(v):
        return None
    return bool(v)


def _to_str(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, bytes | bytearray | memoryview):
        return bytes(v).decode("utf-8", "replace")
    if isinstance(v, _dt.date | np.datetime64):
        return iso_one(v)
    if isinstance(v, float) and math.isnan(v):
        return ""
    return str(v)


def _check_int_range(arr: np.ndarray, spec: FieldSpec) -> None:
    info = np.iinfo(spec.dtype)
    if arr.size and (arr.min() < info.min or arr.max() > info.max):
        raise ValueError(f"value out of range for {spec.datatype} field {spec.name!r}")


# --------------------------------------------------------------------------- per kind


def _num_from_seq(seq: Sequence[Any], spec: FieldSpec) -> Col:
    n = len(seq)
    if spec.count == 1 and not spec.dims:
        if spec.is_float:
            try:
                arr = np.array(seq, dtype=spec.dtype)
            except (TypeError, ValueError):
                arr = np.fromiter(map(_to_float, seq), spec.dtype, n)
            if arr.ndim != 1:
                raise ValueError(f"field {spec.name!r}: expected scalars")
            nan = np.isnan(arr)
            return Col(arr, nan if nan.any() else None)
        mask = _none_mask(seq)
        if mask is not None:
            seq = [0 if v is None else v for v in seq]
        try:
            arr = np.fromiter(seq, spec.dtype, n)
        except (TypeError, ValueError, OverflowError):
            vals = list(map(_to_int, seq))
            extra = _none_mask(vals)
            if extra is not None:
                vals = [0 if v is None else v for v in vals]
                mask = _or(mask, extra)
            big = np.array(vals, dtype=object)
            try:
                wide = big.astype(np.int64)
            except OverflowError:
                raise ValueError(
                    f"value out of range for {spec.datatype} field {spec.name!r}"
                ) from None
            _check_int_range(wide, spec)
            arr = wide.astype(spec.dtype)
        return Col(arr, mask)
    # fixed-size arrays
    mask = _none_mask(seq)
    fill = np.full(spec.count, np.nan if spec.is_float else 0, dtype=spec.dtype)
    if mask is not None:
        seq = [fill if v is None else v for v in seq]
    try:
        arr = np.array(seq, dtype=spec.dtype)
    except (TypeError, ValueError):
        conv = _to_float if spec.is_float else (lambda v: 0 if _to_int(v) is None else _to_int(v))
        arr = np.array(
            [[conv(x) for x in np.ravel(np.asarray(v, dtype=object))] for v in seq],
            dtype=spec.dtype,
        )
    return Col(_shape_fixed(arr, n, spec), mask)


def _shape_fixed(arr: np.ndarray, n: int, spec: FieldSpec) -> np.ndarray:
    if arr.size != n * spec.count:
        raise ValueError(
            f"field {spec.name!r}: arraysize {spec.field.arraysize} expects {spec.count} "
            f"items per value"
        )
    return arr.reshape(n, spec.count)


def _num_from_array(a: np.ndarray, mask: np.ndarray | None, spec: FieldSpec) -> Col:
    if a.dtype == object:
        col = _num_from_seq(a.tolist(), spec)
        return Col(col.values, _or(col.mask, mask))
    n = len(a)
    if a.dtype.kind in "US":
        col = _num_from_seq(a.tolist(), spec)
        return Col(col.values, _or(col.mask, mask))
    if a.dtype.kind == "f" and not spec.is_float:
        nan = np.isnan(a) if a.ndim == 1 else np.isnan(a).reshape(n, -1).any(axis=1)
        mask = _or(mask, nan)
        a = np.where(np.isnan(a), 0, a)
    if spec.is_integer and a.dtype.kind in "iu" and not np.can_cast(a.dtype, spec.dtype):
        _check_int_range(a, spec)
    arr = a.astype(spec.dtype, copy=False)
    if spec.count != 1 or spec.dims:
        arr = _shape_fixed(arr, n, spec)
    elif arr.ndim != 1:
        raise ValueError(f"field {spec.name!r}: expected a 1-D array")
    if spec.is_float:
        nan = np.isnan(arr)
        if nan.ndim > 1:
            nan = nan.all(axis=1)
        mask = _or(mask, nan)
    return Col(arr, mask)


def _bool_from_seq(seq: Sequence[Any], spec: FieldSpec) -> Col:
    n = len(seq)
    mask = _none_mask(seq)
    if spec.count == 1 and not spec.dims:
        types = set(map(type, seq))
        if types <= {bool, np.bool_, type(None), int}:
            vals = (
                np.fromiter((bool(v) for v in seq), np.bool_, n)
                if mask is not None
                else np.fromiter(seq, np.bool_, n)
            )
            return Col(vals, mask)
        vals_l = list(map(_to_bool, seq))
        mask = _none_mask(vals_l)
        return Col(np.fromiter((bool(v) for v in vals_l), np.bool_, n), mask)
    fill = np.zeros(spec.count, np.bool_)
    rows = [fill if v is None else [bool(_to_bool(x)) for x in np.ravel(v)] for v in seq]
    return Col(_shape_fixed(np.array(rows, dtype=np.bool_), n, spec), mask)


def _bool_from_array(a: np.ndarray, mask: np.ndarray | None, spec: FieldSpec) -> Col:
    if a.dtype.kind in "biuf":
        if a.dtype.kind == "f":
            nan = np.isnan(a)
            mask = _or(mask, nan if nan.ndim == 1 else nan.reshape(len(a), -1).all(axis=1))
            a = np.where(np.isnan(a), 0, a)
        arr = a.astype(np.bool_)
        if spec.count != 1 or spec.dims:
            arr = _shape_fixed(arr, len(a), spec)
        return Col(arr, mask)
    col = _bool_from_seq(a.tolist(), spec)
    return Col(col.values, _or(col.mask, mask))


def _var_from_seq(seq: Sequence[Any], spec: FieldSpec) -> Col:
    mask = _none_mask(seq)
    empty = np.zeros(0, spec.dtype)
    out = []
    for v in seq:
        if v is None:
            out.append(empty)
            continue
        if isinstance(v, np.ndarray) and v.dtype.kind in "biuf":
            arr = v.astype(spec.dtype, copy=False).ravel()
        else:
            try:
                arr = np.asarray(v, dtype=spec.dtype).ravel()
            except (TypeError, ValueError):
                conv = _to_float if spec.is_float else _to_int
                arr = np.asarray(
                    [conv(x) for x in np.ravel(np.asarray(v, dtype=object))], dtype=spec.dtype
                )
        out.append(arr)
    return Col(out, mask)


def _str_from_seq(seq: Sequence[Any], spec: FieldSpec) -> Col:
    n = len(seq)
    mask = _none_mask(seq)
    if spec.is_timestamp:
        if mask is None:
            return Col(iso_strings(seq), None)
        keep = ~mask
        good = iso_strings([v for v in seq if v is not None])
        if isinstance(good, np.ndarray):
            full = np.zeros(n, dtype=good.dtype)
            full[keep] = good
            return Col(full, mask)
        it = iter(good)
        return Col(["" if v is None else next(it) for v in seq], mask)
    types = set(map(type, seq))
    types.discard(type(None))
    if types <= {str, np.str_}:
        vals = list(seq) if mask is None else ["" if v is None else v for v in seq]
    else:
        vals = ["" if v is None else _to_str(v) for v in seq]
    return Col(vals, mask)


def _str_from_array(a: np.ndarray, mask: np.ndarray | None, spec: FieldSpec) -> Col:
    if a.dtype.kind == "M":
        s, nat = iso_from_datetime64(a)
        return Col(s, _or(mask, nat))
    if a.dtype.kind in "US":
        return Col(a, mask)
    if a.dtype.kind == "O":
        col = _str_from_seq(a.tolist(), spec)
        return Col(col.values, _or(col.mask, mask))
    if a.dtype.kind == "f":
        nan = np.isnan(a)
        mask = _or(mask, nan)
    return Col([_to_str(v) for v in a.tolist()], mask)


_FROM_SEQ = {
    "num": _num_from_seq,
    "bool": _bool_from_seq,
    "var": _var_from_seq,
    "str": _str_from_seq,
}


def _from_array(a: Any, mask: Any, spec: FieldSpec) -> Col:
    m = None if mask is None else np.asarray(mask, dtype=np.bool_)
    if isinstance(a, np.ma.MaskedArray):
        mm = np.ma.getmaskarray(a)
        if mm.ndim > 1:
            mm = mm.reshape(len(a), -1).all(axis=1)
        m = _or(m, mm)
        a = a.data
    if not isinstance(a, np.ndarray):
        col = _FROM_SEQ[spec.kind](a if isinstance(a, list | tuple) else list(a), spec)
        return Col(col.values, _or(col.mask, m))
    if spec.kind == "num":
        return _num_from_array(a, m, spec)
    if spec.kind == "bool":
        return _bool_from_array(a, m, spec)
    if spec.kind == "str":
        return _str_from_array(a, m, spec)
    col = _var_from_seq(list(a) if a.dtype != object else a.tolist(), spec)
    return Col(col.values, _or(col.mask, m))


def normalize_chunk(chunk: Any, specs: Sequence[FieldSpec]) -> tuple[int, list[Col]]:
    """Normalise one chunk; returns (row count, columns in field order)."""
    k = len(specs)
    if isinstance(chunk, Columns | Mapping):
        if isinstance(chunk, Mapping):
            chunk = Columns(chunk)
        arrays, masks = chunk.resolve(specs)
        cols = [_from_array(a, m, s) for a, m, s in zip(arrays, masks, specs, strict=True)]
    elif isinstance(chunk, np.ndarray) and chunk.dtype.names:
        cols = [_from_array(chunk[s.name], None, s) for s in specs]
    elif isinstance(chunk, np.ndarray) and chunk.ndim == 2 and chunk.dtype != object:
        if chunk.shape[1] != k:
            raise ValueError(f"chunk has {chunk.shape[1]} columns for {k} fields")
        cols = [_from_array(chunk[:, j], None, s) for j, s in enumerate(specs)]
    else:
        if len(chunk) == 0:
            return 0, []
        lens = set(map(len, chunk))
        if lens != {k}:
            raise ValueError(f"row length {sorted(lens)} does not match {k} fields")
        # one C-level pass per column: faster than zip(*rows) for wide chunks
        cols = [_FROM_SEQ[s.kind](list(map(itemgetter(j), chunk)), s) for j, s in enumerate(specs)]
    n = _col_len(cols[0]) if cols else 0
    for c, s in zip(cols, specs, strict=True):
        if _col_len(c) != n:
            raise ValueError(f"column {s.name!r} has {_col_len(c)} values, expected {n}")
    return n, cols


def _col_len(c: Col) -> int:
    return len(c.values)
