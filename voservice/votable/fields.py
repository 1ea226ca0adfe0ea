"""Metadata model: FIELD, PARAM, INFO, TIMESYS, GROUP and RESOURCE descriptions.

These dataclasses only describe metadata; serialisation lives in ``document.py``
(XML) and the per-format encoders.  ``FieldSpec`` is the compiled, format-neutral
view of a Field that the encoders use (numpy dtype, array shape, NULL sentinel).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Field",
    "Param",
    "Info",
    "TimeSys",
    "CooSys",
    "Group",
    "Resource",
    "FieldSpec",
    "DATATYPES",
    "parse_arraysize",
]


@dataclass
class Field:
    """One FIELD of a table (PARAM uses the same attributes, see :class:`Param`).

    ``datatype`` is a VOTable primitive (boolean, bit, unsignedByte, short, int,
    long, char, unicodeChar, float, double).  ``arraysize`` is None for scalars,
    ``"*"``/``"16*"`` for variable-length and ``"16"``/``"2x3"`` for fixed arrays.
    ``values_null`` forces a NULL sentinel (declared as ``<VALUES null=...>``).
    """

    name: str
    datatype: str
    arraysize: str | None = None
    xtype: str | None = None
    unit: str | None = None
    ucd: str | None = None
    utype: str | None = None
    description: str | None = None
    id: str | None = None
    ref: str | None = None
    width: int | None = None
    precision: str | None = None
    values_null: Any = None


@dataclass
class Param(Field):
    """A PARAM: a Field with a constant ``value`` (None -> empty value)."""

    value: Any = None


@dataclass
class Info:
    """An INFO element; ``content`` becomes the element text."""

    name: str
    value: str
    content: str | None = None
    id: str | None = None


@dataclass
class TimeSys:
    """A TIMESYS element (VOTable 1.4); FIELDs point at it with ``ref=id``."""

    id: str
    timescale: str
    refposition: str
    timeorigin: str | float | None = None


@dataclass
class CooSys:
    """A COOSYS element; FIELDs and PARAMs point at it with ``ref=id``."""

    id: str
    system: str = "ICRS"
    epoch: str | None = None
    equinox: str | None = None
    refposition: str | None = None


@dataclass
class Group:
    """A GROUP of PARAMs, PARAMrefs and FIELDrefs (e.g. DataLink ``inputParams``)."""

    name: str | None = None
    params: list[Param] = field(default_factory=list)
    param_refs: list[str] = field(default_factory=list)
    field_refs: list[str] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    description: str | None = None
    id: str | None = None
    ucd: str | None = None
    utype: str | None = None


@dataclass
class Resource:
    """An extra RESOURCE, e.g. a DataLink service descriptor or a MIVOT block.

    ``raw_xml`` is inserted verbatim at the end of the element; it must already
    be well-formed, escaped XML.
    """

    type: str = "meta"
    utype: str | None = None
    name: str | None = None
    id: str | None = None
    params: list[Param] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    infos: list[Info] = field(default_factory=list)
    description: str | None = None
    raw_xml: str | None = None


# datatype -> (numpy base dtype, default NULL sentinel for BINARY or None)
DATATYPES: dict[str, tuple[np.dtype, Any]] = {
    "boolean": (np.dtype(np.bool_), None),
    "bit": (np.dtype(np.bool_), None),
    "unsignedByte": (np.dtype(np.uint8), 255),
    "short": (np.dtype(np.int16), -(2**15)),
    "int": (np.dtype(np.int32), -(2**31)),
    "long": (np.dtype(np.int64), -(2**63)),
    "float": (np.dtype(np.float32), None),
    "double": (np.dtype(np.float64), None),
    "char": (np.dtype("S1"), None),
    "unicodeChar": (np.dtype("U1"), None),
}

INTEGER_TYPES = frozenset({"unsignedByte", "short", "int", "long"})
FLOAT_TYPES = frozenset({"float", "double"})
STRING_TYPES = frozenset({"char", "unicodeChar"})


def parse_arraysize(arraysize: str | None) -> tuple[tuple[int, ...], bool, int | None]:
    """Parse an arraysize: returns (fixed dims, variable?, max items or None).

    ``None`` -> ((), False, None); ``"2x3"`` -> ((2, 3), False, None);
    ``"*"`` -> ((), True, None); ``"16*"`` -> ((), True, 16);
    ``"3x*"`` -> ((3,), True, None).
    """
    if arraysize is None or arraysize == "":
        return (), False, None
    parts = arraysize.strip().split("x")
    dims: list[int] = []
    for p in parts[:-1]:
        if not p.isdigit():
            raise ValueError(f"bad arraysize {arraysize!r}")
        dims.append(int(p))
    last = parts[-1]
    if last.endswith("*"):
        head = last[:-1]
        if head and not head.isdigit():
            raise ValueError(f"bad arraysize {arraysize!r}")
        maxn = int(head) * math.prod(dims) if head else None
        return tuple(dims), True, maxn
    if not last.isdigit():
        raise ValueError(f"bad arraysize {arraysize!r}")
    dims.append(int(last))
    return tuple(dims), False, None


class FieldSpec:
    """Compiled view of a Field used by all encoders.

    kind is one of: ``"num"`` (numbers, fixed shape), ``"var"`` (variable-length
    number arrays), ``"bool"``, ``"str"`` (char/unicodeChar, timestamps).
    ``count`` is the number of items of a fixed array (1 for scalars).
    """

    __slots__ = (
        "field",
        "name",
        "datatype",
        "dtype",
        "be_dtype",
        "kind",
        "dims",
        "variable",
        "max_items",
        "count",
        "is_array",
        "null",
        "declared_null",
        "is_timestamp",
        "is_unicode",
    )

    def __init__(self, f: Field) -> None:
        if f.datatype not in DATATYPES:
            raise ValueError(f"unsupported datatype {f.datatype!r} for field {f.name!r}")
        self.field = f
        self.name = f.name
        self.datatype = f.datatype
        base, sentinel = DATATYPES[f.datatype]
        self.dtype = base
        self.be_dtype = base.newbyteorder(">") if base.kind in "iuf" else base
        self.dims, self.variable, self.max_items = parse_arraysize(f.arraysize)
        self.count = math.prod(self.dims) if self.dims else 1
        self.is_array = bool(self.dims) or self.variable
        self.is_timestamp = (f.xtype or "").lower() == "timestamp"
        self.is_unicode = f.datatype == "unicodeChar"
        if f.datatype in STRING_TYPES:
            self.kind = "str"
            if len(self.dims) > 1:
                raise ValueError(f"multi-dimensional char arrays unsupported ({f.name!r})")
        elif self.variable:
            self.kind = "var"
        elif f.datatype in ("boolean", "bit"):
            self.kind = "bool"
        else:
            self.kind = "num"
        self.declared_null = f.values_null
        if f.values_null is not None and f.datatype in INTEGER_TYPES:
            self.null = int(f.values_null)
        else:
            self.null = sentinel

    @property
    def is_integer(self) -> bool:
        return self.datatype in INTEGER_TYPES

    @property
    def is_float(self) -> bool:
        return self.datatype in FLOAT_TYPES

    def __repr__(self) -> str:
        return f"FieldSpec({self.name!r}, {self.datatype}, kind={self.kind})"
