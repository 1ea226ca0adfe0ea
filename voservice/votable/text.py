"""Text cell formatting shared by TABLEDATA, CSV, TSV and JSON encoders.

``str_cells`` turns a normalised column into one *unescaped* string per row
(NULL -> ""), each output format then applies its own quoting.  ``json_values``
gives JSON-ready Python values (NULL -> None).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import numpy as np

from .columns import Col
from .fields import FieldSpec

__all__ = [
    "str_cells",
    "json_values",
    "csv_header",
    "ecsv_header",
    "csv_chunk",
    "tsv_header",
    "tsv_chunk",
    "json_header",
    "json_chunk",
]


def _float_items(arr: np.ndarray, *, nan: str) -> list[str]:
    """Shortest round-trip text for float values; NaN -> nan, +-inf -> +Inf/-Inf."""
    # numpy gives the shortest float32 text; Python's repr is faster for doubles
    out = arr.astype("U").tolist() if arr.dtype == np.float32 else list(map(repr, arr.tolist()))
    flat = arr.ravel()
    bad = ~np.isfinite(flat)
    if bad.any():
        for i in np.flatnonzero(bad).tolist():
            v = flat[i]
            out[i] = nan if np.isnan(v) else ("+Inf" if v > 0 else "-Inf")
    return out


def _item_strings(
    arr: np.ndarray, spec: FieldSpec, *, nan: str, true: str, false: str
) -> list[str]:
    if spec.is_float:
        return _float_items(arr.ravel(), nan=nan)
    if arr.dtype == np.bool_:
        if spec.datatype == "bit":
            return ["1" if b else "0" for b in arr.ravel().tolist()]
        return [true if b else false for b in arr.ravel().tolist()]
    return list(map(str, arr.ravel().tolist()))


def _as_str_list(values: object, spec: FieldSpec, ascii_only: bool) -> list[str]:
    if isinstance(values, np.ndarray):
        if values.dtype.kind == "S":
            try:
                out = values.astype("U").tolist()
            except UnicodeDecodeError:
                out = [b.decode("utf-8", "replace") for b in values.tolist()]
        else:
            out = values.tolist()
    else:
        out = values if isinstance(values, list) else list(values)  # type: ignore[call-overload]
    if ascii_only and not spec.is_unicode and not "".join(out).isascii():
        out = [s.encode("ascii", "replace").decode("ascii") for s in out]
    limit = spec.max_items if spec.variable else spec.count
    if limit is not None and max(map(len, out), default=0) > limit:
        out = [s[:limit] for s in out]
    return out


def str_cells(
    col: Col,
    spec: FieldSpec,
    n: int,
    *,
    true: str = "T",
    false: str = "F",
    ascii_only: bool = True,
    fill_arrays: bool = False,
) -> list[str]:
    """One unescaped string per row; NULL -> ""; arrays space-separated.

    With ``fill_arrays`` a NULL fixed-size array is written as its NULL items
    (NaN, the integer sentinel, ``?``) since an empty cell is invalid there.
    """
    if spec.kind == "str":
        out = _as_str_list(col.values, spec, ascii_only)
        if col.mask is not None:
            out = list(out)
            for i in np.flatnonzero(col.mask).tolist():
                out[i] = ""
        return out
    if spec.kind == "var":
        out = []
        for a in col.values:
            if spec.max_items is not None:
                a = a[: spec.max_items]
            out.append(" ".join(_item_strings(a, spec, nan="NaN", true=true, false=false)))
    elif spec.is_array:
        values = col.values
        if fill_arrays and col.mask is not None and spec.kind == "num":
            values = values.copy()
            values[col.mask] = np.nan if spec.is_float else spec.null
        items = _item_strings(values, spec, nan="NaN", true=true, false=false)
        c = spec.count
        out = [" ".join(items[i : i + c]) for i in range(0, n * c, c)]
        if fill_arrays and col.mask is not None:
            if spec.kind == "bool":
                null = " ".join(["?" if spec.datatype == "boolean" else "0"] * c)
                for i in np.flatnonzero(col.mask).tolist():
                    out[i] = null
            return out
    else:
        out = _item_strings(col.values, spec, nan="", true=true, false=false)
    if col.mask is not None:
        for i in np.flatnonzero(col.mask).tolist():
            out[i] = ""
    return out


def _clean_floats(values: list, flat_arr: np.ndarray) -> None:
    bad = ~np.isfinite(flat_arr)
    if bad.any():
        for i in np.flatnonzero(bad).tolist():
            values[i] = None


def json_values(col: Col, spec: FieldSpec, n: int, ascii_only: bool = False) -> list:
    """JSON-ready Python values (NULL and non-finite floats -> None)."""
    if spec.kind == "str":
        out: list = list(_as_str_list(col.values, spec, ascii_only))
    elif spec.kind == "var":
        out = []
        for a in col.values:
            lst = a.tolist()
            if spec.is_float:
                _clean_floats(lst, a)
            out.append(lst)
    else:
        arr = col.values
        out = arr.tolist()
        if spec.is_float:
            if arr.ndim == 1:
                _clean_floats(out, arr)
            else:
                for row, a in zip(out, arr, strict=True):
                    _clean_floats(row, a)
    if col.mask is not None:
        for i in np.flatnonzero(col.mask).tolist():
            out[i] = None
    return out


# ------------------------------------------------------------------------- CSV

_CSV_SPECIAL = re.compile('[",\r\n]')


def _csv_quote(cells: list[str]) -> list[str]:
    if _CSV_SPECIAL.search("".join(cells)) is None:
        return cells
    return ['"' + c.replace('"', '""') + '"' if _CSV_SPECIAL.search(c) else c for c in cells]


def csv_header(specs: Sequence[FieldSpec]) -> str:
    """RFC 4180 header line."""
    return ",".join(_csv_quote([s.name for s in specs])) + "\r\n"


def csv_chunk(cols: Sequence[Col], specs: Sequence[FieldSpec], n: int) -> str:
    """RFC 4180 rows (CRLF line ends), NULL -> empty field."""
    cells = [
        _csv_quote(str_cells(c, s, n, true="true", false="false", ascii_only=False))
        for c, s in zip(cols, specs, strict=True)
    ]
    return "".join([",".join(r) + "\r\n" for r in zip(*cells)])  # noqa: B905


# ------------------------------------------------------------------------ ECSV

#: ECSV 1.0 datatype of each VOTable primitive (strings and timestamps: string)
_ECSV_TYPES = {"boolean": "bool", "bit": "bool", "unsignedByte": "uint8", "short": "int16",
               "int": "int32", "long": "int64", "float": "float32", "double": "float64"}


def _yaml_string(text: str) -> str:
    return "'" + " ".join(text.split()).replace("'", "''") + "'"


def ecsv_header(specs: Sequence[FieldSpec]) -> str:
    """The ECSV 1.0 YAML header (comma delimiter) and the CSV header line."""
    lines = ["# %ECSV 1.0", "# ---", "# delimiter: ','", "# datatype:"]
    for s in specs:
        item = [f"name: {_yaml_string(s.name)}"]
        unit = s.field.unit
        if unit:
            item.append(f"unit: {_yaml_string(unit)}")
        item.append(f"datatype: {_ECSV_TYPES.get(s.datatype, 'string')}" if not s.is_array
                    else "datatype: string")
        if s.field.description:
            item.append(f"description: {_yaml_string(s.field.description)}")
        lines.append("# - {" + ", ".join(item) + "}")
    return "\n".join(lines) + "\n" + csv_header(specs)


# ------------------------------------------------------------------------- TSV

_TSV_SPECIAL = re.compile("[\\\\\t\n\r]")
_TSV_TABLE = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _tsv_escape(cells: list[str]) -> list[str]:
    if _TSV_SPECIAL.search("".join(cells)) is None:
        return cells
    return [c.translate(_TSV_TABLE) for c in cells]


def tsv_header(specs: Sequence[FieldSpec]) -> str:
    """Header line of TSV output."""
    return "\t".join(_tsv_escape([s.name for s in specs])) + "\n"


def tsv_chunk(cols: Sequence[Col], specs: Sequence[FieldSpec], n: int) -> str:
    """Tab-separated rows; backslash, tab, CR and LF escaped as \\\\ \\t \\r \\n."""
    cells = [
        _tsv_escape(str_cells(c, s, n, true="true", false="false", ascii_only=False))
        for c, s in zip(cols, specs, strict=True)
    ]
    return "".join(["\t".join(r) + "\n" for r in zip(*cells)])  # noqa: B905


# ------------------------------------------------------------------------- JSON


def json_header(specs: Sequence[FieldSpec]) -> str:
    """Opening of the JSON document up to the start of the data array."""
    columns = []
    for s in specs:
        f = s.field
        d = {"name": f.name, "datatype": f.datatype}
        for key in ("arraysize", "xtype", "unit", "ucd", "utype", "description"):
            v = getattr(f, key)
            if v is not None:
                d[key] = v
        columns.append(d)
    return '{"columns":' + json.dumps(columns, ensure_ascii=False) + ',\n"data":['


def json_chunk(cols: Sequence[Col], specs: Sequence[FieldSpec], n: int, first: bool) -> str:
    """Rows of one chunk as JSON arrays (comma-prefixed unless first)."""
    values = [json_values(c, s, n) for c, s in zip(cols, specs, strict=True)]
    body = json.dumps(
        list(zip(*values)),  # noqa: B905
        ensure_ascii=False,
        allow_nan=False,
    )[1:-1]
    return ("\n" if first else ",\n") + body


def json_footer(infos: Sequence[tuple[str, str, str | None]]) -> str:
    """Close the data array; INFOs (name, value, content) go to an "infos" member."""
    if not infos:
        return "]}\n"
    lst = [{"name": n, "value": v} | ({"content": c} if c is not None else {}) for n, v, c in infos]
    return '],\n"infos":' + json.dumps(lst, ensure_ascii=False) + "}\n"
