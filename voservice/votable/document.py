"""The VOTable XML skeleton: header, FIELD/PARAM/INFO/TIMESYS/GROUP/RESOURCE elements."""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .fields import CooSys, Field, FieldSpec, Group, Info, Param, Resource, TimeSys
from .timefmt import iso_one
from .xmlutil import attrs, escape_attr, escape_text

__all__ = [
    "VOTABLE_NS",
    "SUPPORTED_VERSIONS",
    "votable_open",
    "votable_close",
    "field_xml",
    "param_xml",
    "info_xml",
    "timesys_xml",
    "coosys_xml",
    "group_xml",
    "resource_xml",
    "error_document",
]

VOTABLE_NS = "http://www.ivoa.net/xml/VOTable/v1.3"
SUPPORTED_VERSIONS = ("1.3", "1.4", "1.5")


def votable_open(version: str, timesys: Sequence[TimeSys] = (),
                 coosys: Sequence[CooSys] = ()) -> str:
    """XML declaration, VOTABLE start tag and VOTABLE-level COOSYS and TIMESYS elements."""
    if version not in SUPPORTED_VERSIONS:
        raise ValueError(
            f"unsupported VOTable version {version!r}; use one of {SUPPORTED_VERSIONS}"
        )
    if timesys and version == "1.3":
        raise ValueError("TIMESYS needs VOTable version 1.4 or later")
    head = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<VOTABLE version="{version}" xmlns="{VOTABLE_NS}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xsi:schemaLocation="{VOTABLE_NS} {VOTABLE_NS}">\n'
    )
    return head + "".join(coosys_xml(c) for c in coosys) + "".join(
        timesys_xml(t) for t in timesys)


def votable_close() -> str:
    return "</VOTABLE>\n"


def _description(text: str | None) -> str:
    return "" if text is None else f"<DESCRIPTION>{escape_text(text)}</DESCRIPTION>"


def _field_attrs(f: Field, arraysize: str | None) -> list[tuple[str, object]]:
    return [
        ("name", f.name),
        ("ID", f.id),
        ("datatype", f.datatype),
        ("arraysize", arraysize),
        ("width", f.width),
        ("precision", f.precision),
        ("unit", f.unit),
        ("ucd", f.ucd),
        ("utype", f.utype),
        ("xtype", f.xtype),
        ("ref", f.ref),
    ]


def field_xml(spec: FieldSpec, declare_null: bool) -> str:
    """A FIELD element; ``declare_null`` adds ``<VALUES null=...>`` for integers."""
    f = spec.field
    inner = _description(f.description)
    null = None
    if spec.declared_null is not None:
        null = spec.declared_null
    elif spec.is_integer and (declare_null or (spec.is_array and not spec.variable)):
        null = spec.null
    if null is not None:
        inner += f'<VALUES null="{escape_attr(null)}"/>'
    start = "<FIELD" + attrs(_field_attrs(f, f.arraysize))
    return start + (f">{inner}</FIELD>\n" if inner else "/>\n")


def _scalar_text(v: Any, datatype: str) -> str:
    if v is None:
        return ""
    if isinstance(v, bool | np.bool_):
        return "T" if v else "F"
    if isinstance(v, float | np.floating):
        f = float(v)
        if math.isnan(f):
            return "NaN"
        if math.isinf(f):
            return "+Inf" if f > 0 else "-Inf"
        return repr(f) if datatype == "double" else str(np.float32(f))
    if isinstance(v, _dt.date | np.datetime64):
        return iso_one(v)
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return str(v)


def param_value(p: Param) -> str:
    """PARAM value attribute text (arrays space-separated)."""
    v = p.value
    if v is None:
        return ""
    if p.datatype in ("char", "unicodeChar"):
        return _scalar_text(v, p.datatype)
    if isinstance(v, np.ndarray | list | tuple):
        return " ".join(_scalar_text(x, p.datatype) for x in np.ravel(np.asarray(v, dtype=object)))
    return _scalar_text(v, p.datatype)


def param_xml(p: Param) -> str:
    """A PARAM element; a char PARAM without arraysize gets ``arraysize="*"``."""
    value = param_value(p)
    arraysize = p.arraysize
    if arraysize is None and p.datatype in ("char", "unicodeChar") and len(value) != 1:
        arraysize = "*"
    a = _field_attrs(p, arraysize) + [("value", value)]
    inner = _description(p.description)
    if p.values_null is not None:
        inner += f'<VALUES null="{escape_attr(p.values_null)}"/>'
    start = "<PARAM" + attrs(a)
    return start + (f">{inner}</PARAM>\n" if inner else "/>\n")


def info_xml(i: Info) -> str:
    """An INFO element (content as text)."""
    start = "<INFO" + attrs([("ID", i.id), ("name", i.name), ("value", i.value)])
    if i.content is None:
        return start + "/>\n"
    return f"{start}>{escape_text(i.content)}</INFO>\n"


def timesys_xml(t: TimeSys) -> str:
    """A TIMESYS element; a float ``timeorigin`` is written as a JD number."""
    origin = t.timeorigin
    if isinstance(origin, float | int) and not isinstance(origin, bool):
        origin = repr(float(origin))
    return (
        "<TIMESYS"
        + attrs(
            [
                ("ID", t.id),
                ("timeorigin", origin),
                ("timescale", t.timescale),
                ("refposition", t.refposition),
            ]
        )
        + "/>\n"
    )


def coosys_xml(c: CooSys) -> str:
    """A COOSYS element."""
    return "<COOSYS" + attrs([("ID", c.id), ("system", c.system), ("epoch", c.epoch),
                              ("equinox", c.equinox), ("refposition", c.refposition)]) + "/>\n"


def group_xml(g: Group) -> str:
    """A GROUP with its FIELDrefs, PARAMrefs, PARAMs and nested GROUPs."""
    a = attrs([("ID", g.id), ("name", g.name), ("ucd", g.ucd), ("utype", g.utype)])
    inner = _description(g.description)
    inner += "".join(f'<FIELDref ref="{escape_attr(r)}"/>\n' for r in g.field_refs)
    inner += "".join(f'<PARAMref ref="{escape_attr(r)}"/>\n' for r in g.param_refs)
    inner += "".join(param_xml(p) for p in g.params)
    inner += "".join(group_xml(x) for x in g.groups)
    return f"<GROUP{a}>\n{inner}</GROUP>\n" if inner else f"<GROUP{a}/>\n"


def resource_xml(r: Resource) -> str:
    """A complete RESOURCE element (DESCRIPTION, INFO, PARAM, GROUP, raw XML)."""
    a = attrs([("ID", r.id), ("name", r.name), ("type", r.type), ("utype", r.utype)])
    parts = [f"<RESOURCE{a}>\n", _description(r.description)]
    parts += [info_xml(i) for i in r.infos]
    parts += [param_xml(p) for p in r.params]
    parts += [group_xml(g) for g in r.groups]
    if r.raw_xml:
        parts.append(r.raw_xml.rstrip("\n") + "\n")
    parts.append("</RESOURCE>\n")
    return "".join(parts)


def results_open(
    infos: Iterable[Info],
    inner_resources: Sequence[Resource],
    resource_name: str | None,
) -> str:
    """``<RESOURCE type="results">`` start, its INFOs and nested meta RESOURCEs."""
    a = attrs([("name", resource_name), ("type", "results")])
    return (
        f"<RESOURCE{a}>\n"
        + "".join(info_xml(i) for i in infos)
        + "".join(resource_xml(r) for r in inner_resources)
    )


def table_open(
    specs: Sequence[FieldSpec],
    params: Sequence[Param],
    name: str | None,
    description: str | None,
    declare_null: bool,
    groups: Sequence[Group] = (),
) -> str:
    """``<TABLE>`` start with DESCRIPTION, PARAMs, FIELDs and GROUPs."""
    return (
        f"<TABLE{attrs([('name', name)])}>\n"
        + (_description(description) + "\n" if description else "")
        + "".join(param_xml(p) for p in params)
        + "".join(field_xml(s, declare_null) for s in specs)
        + "".join(group_xml(g) for g in groups)
    )


def with_status(infos: Sequence[Info]) -> list[Info]:
    """Prepend QUERY_STATUS=OK unless the caller supplied a QUERY_STATUS."""
    if any(i.name == "QUERY_STATUS" for i in infos):
        status = [i for i in infos if i.name == "QUERY_STATUS"]
        return status + [i for i in infos if i.name != "QUERY_STATUS"]
    return [Info("QUERY_STATUS", "OK"), *infos]


def error_document(
    message: str, *, status: str = "ERROR", infos: Sequence[Info] = (), version: str = "1.4"
) -> bytes:
    """DALI error VOTable: ``<INFO name="QUERY_STATUS" value="ERROR">message</INFO>``."""
    body = (
        votable_open(version)
        + '<RESOURCE type="results">\n'
        + info_xml(Info("QUERY_STATUS", status, message))
        + "".join(info_xml(i) for i in infos)
        + "</RESOURCE>\n"
        + votable_close()
    )
    return body.encode("utf-8", "replace")
