"""VOSI 1.1: capabilities, availability and tables documents.

Every DAL service of SKVO (TAP, SCS, SSA, SIA, DataLink) answers
``/capabilities`` and ``/availability`` through this module; ``/tap/tables``
is built from the same table descriptions as TAP_SCHEMA.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, request
from lxml import etree

from voservice import tables
from voservice.context import services

NS = {
    "vosi": "http://www.ivoa.net/xml/VOSICapabilities/v1.0",
    "avail": "http://www.ivoa.net/xml/VOSIAvailability/v1.0",
    "tables": "http://www.ivoa.net/xml/VOSITables/v1.0",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
    "vr": "http://www.ivoa.net/xml/VOResource/v1.0",
    "vs": "http://www.ivoa.net/xml/VODataService/v1.1",
    "tr": "http://www.ivoa.net/xml/TAPRegExt/v1.0",
}
XSI_TYPE = f"{{{NS['xsi']}}}type"


#: the stylesheet that shows VOSI documents as pages in a browser (as DaCHS does)
STYLESHEET = "/static/xsl/vosi.xsl"


def _xml_response(root: etree._Element, last_modified: dt.datetime | None = None) -> Response:
    path = urlsplit(services().base_url).path.rstrip("/")
    root.addprevious(etree.ProcessingInstruction(
        "xml-stylesheet", f'href="{path}{STYLESHEET}" type="text/xsl"'))
    body = etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8",
                          pretty_print=True)
    response = Response(body, mimetype="text/xml")
    if last_modified is not None:
        response.last_modified = last_modified
    return response


def sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str
        ) -> etree._Element:
    """Append an unqualified child element (VOSI children carry no prefix)."""
    element = etree.SubElement(parent, tag, {k: v for k, v in attrs.items() if v is not None})
    if text is not None:
        element.text = text
    return element


def interface(parent: etree._Element, url: str, *, std: bool = False, use: str = "full",
              version: str | None = None, kind: str = "vs:ParamHTTP") -> etree._Element:
    """An ``interface`` element with one accessURL."""
    iface = sub(parent, "interface")
    iface.set(XSI_TYPE, kind)
    if std:
        iface.set("role", "std")
    if version:
        iface.set("version", version)
    sub(iface, "accessURL", url, use=use)
    return iface


def capabilities_root() -> etree._Element:
    """An empty ``vosi:capabilities`` document declaring every prefix used in xsi:type."""
    nsmap = {k: NS[k] for k in ("vosi", "xsi", "vr", "vs", "tr")}
    return etree.Element(f"{{{NS['vosi']}}}capabilities", nsmap=nsmap)


def add_vosi_capabilities(root: etree._Element, base: str, tables_url: bool = False) -> None:
    """The VOSI capability entries of a service rooted at ``base``."""
    entries = [("ivo://ivoa.net/std/VOSI#capabilities", "capabilities"),
               ("ivo://ivoa.net/std/VOSI#availability", "availability")]
    if tables_url:
        entries.append(("ivo://ivoa.net/std/VOSI#tables-1.1", "tables"))
    for standard, child in entries:
        cap = sub(root, "capability", standardID=standard)
        interface(cap, f"{base}/{child}", version="1.1" if child == "tables" else None)


def capabilities_response(root: etree._Element) -> Response:
    """A capabilities document (GET only; Last-Modified = service start)."""
    return _xml_response(root, services().started)


def availability_response() -> Response:
    """``<vosi:availability>``: up, and since when."""
    svc = services()
    root = etree.Element(f"{{{NS['avail']}}}availability", nsmap={"vosi": NS["avail"]})
    available = True
    note = "SKVO is accepting queries"
    try:
        with svc.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception:
        available, note = False, "the metadata database does not answer"
    etree.SubElement(root, f"{{{NS['avail']}}}available").text = "true" if available else "false"
    etree.SubElement(root, f"{{{NS['avail']}}}upSince").text = svc.started.strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    etree.SubElement(root, f"{{{NS['avail']}}}note").text = note
    return _xml_response(root)


# --------------------------------------------------------------------------
# Tables


def _column(parent: etree._Element, col: tables.ColumnDesc) -> None:
    element = sub(parent, "column", std="true" if col.std else None)
    sub(element, "name", col.tap_name)
    if col.description:
        sub(element, "description", col.description)
    if col.unit:
        sub(element, "unit", col.unit)
    if col.ucd:
        sub(element, "ucd", col.ucd)
    if col.utype:
        sub(element, "utype", col.utype)
    datatype = sub(element, "dataType", col.datatype)
    datatype.set(XSI_TYPE, "vs:VOTableType")
    if col.arraysize:
        datatype.set("arraysize", col.arraysize)
    if col.xtype:
        datatype.set("extendedType", col.xtype)
    if col.indexed or col.primary or col.unique:
        sub(element, "flag", "indexed")
    if col.primary:
        sub(element, "flag", "primary")
    if col.nullable and not col.primary:
        sub(element, "flag", "nullable")


def _table_body(element: etree._Element, desc: tables.TableDesc, detail: str) -> None:
    sub(element, "name", desc.qualified_name)
    sub(element, "description", desc.description)
    if desc.utype:
        sub(element, "utype", desc.utype)
    if detail != "max":
        return
    for col in desc.published_columns:
        _column(element, col)
    for col, target, target_col in desc.foreign_keys():
        fk = sub(element, "foreignKey")
        sub(fk, "targetTable", f"{desc.schema}.{target}")
        pair = sub(fk, "fkColumn")
        sub(pair, "fromColumn", col.name)
        sub(pair, "targetColumn", target_col)
        if col.description:
            sub(fk, "description", col.description)


def _tables_root(tag: str) -> etree._Element:
    nsmap = {"vosi": NS["tables"], "xsi": NS["xsi"], "vs": NS["vs"]}
    return etree.Element(f"{{{NS['tables']}}}{tag}", nsmap=nsmap)


def tableset_response(detail: str | None) -> Response:
    """The VOSI tableset; ``detail=min`` leaves out columns and keys."""
    detail = "min" if (detail or "").lower() == "min" else "max"
    root = _tables_root("tableset")
    for schema in tables.load_schemas():
        element = sub(root, "schema")
        sub(element, "name", schema.name)
        sub(element, "description", schema.description)
        for desc in schema.tables:
            _table_body(sub(element, "table", type=desc.table_type), desc, detail)
    return _xml_response(root, services().started)


def table_response(name: str) -> Response | None:
    """One ``vosi:table`` with its columns (None for an unknown table)."""
    try:
        desc = tables.table(name)
    except KeyError:
        return None
    root = _tables_root("table")
    root.set("type", desc.table_type)
    _table_body(root, desc, "max")
    return _xml_response(root, services().started)


def get_only() -> Response | None:
    """VOSI resources answer GET (and HEAD) only: 405 otherwise."""
    if request.method not in ("GET", "HEAD"):
        return Response("VOSI resources only answer GET\n", status=405, mimetype="text/plain",
                        headers={"Allow": "GET, HEAD"})
    return None


def features(kind: str, forms: Iterable[str | tuple[str, str]]) -> etree._Element:
    """A TAPRegExt ``languageFeatures`` element; a form may come with a description."""
    element = etree.Element("languageFeatures", type=f"ivo://ivoa.net/std/TAPRegExt#{kind}")
    for form in forms:
        form, description = (form, None) if isinstance(form, str) else form
        feature = sub(element, "feature")
        sub(feature, "form", form)
        if description:
            sub(feature, "description", description)
    return element


def dal_capability(root: etree._Element, standard_id: str, url: str, version: str,
                   xsi_type: str | None = None, namespace: tuple[str, str] | None = None,
                   params: Sequence[tuple[str, str, str | None, str]] = (),
                   result_type: str = "application/x-votable+xml") -> etree._Element:
    """Append a DAL ``<capability>`` with its std ParamHTTP interface to a VOSI root.

    ``namespace`` (prefix, URI) is declared on the capability for ``xsi_type``;
    ``params`` are (name, dataType, unit, description) of the interface, dataType
    a VODataService simple type (integer, real, char, string, boolean).
    """
    nsmap = {namespace[0]: namespace[1]} if namespace else None
    cap = etree.SubElement(root, "capability", nsmap=nsmap)
    cap.set("standardID", standard_id)
    if xsi_type:
        cap.set(XSI_TYPE, xsi_type)
    iface = interface(cap, url, std=True, use="base", version=version)
    sub(iface, "queryType", "GET")
    sub(iface, "resultType", result_type)
    for name, datatype, unit, description in params:
        param = sub(iface, "param", std="true")
        sub(param, "name", name)
        sub(param, "description", description)
        if unit:
            sub(param, "unit", unit)
        sub(param, "dataType", datatype)
    return cap


def capabilities_document(base: str, build: Callable[[etree._Element], None]) -> Response:
    """VOSI capabilities of a service at ``base``: ``build`` adds its own capability."""
    return capabilities_response(capabilities_element(base, build))


def capabilities_element(base: str, build: Callable[[etree._Element], None]
                         ) -> etree._Element:
    """The ``vosi:capabilities`` element of a service at ``base`` (``build`` adds its own)."""
    root = capabilities_root()
    build(root)
    add_vosi_capabilities(root, base)
    return root


#: a capability builder: (public base URL of SKVO, settings) -> the service's
#: ``vosi:capabilities`` element, the one its ``/capabilities`` answers
CapabilityBuilder = Callable[[str, Any], etree._Element]


def publish_capabilities(app: Flask, service: str, build: CapabilityBuilder) -> None:
    """Make a service's capability builder known to the registry records (``/oai``)."""
    app.extensions.setdefault("skvo_capabilities", {})[service] = build


def published_capabilities() -> dict[str, CapabilityBuilder]:
    """The capability builders the protocol modules published, by service name."""
    return dict(current_app.extensions.get("skvo_capabilities", {}))
