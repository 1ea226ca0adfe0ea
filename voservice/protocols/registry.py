"""SKVO in the VO Registry: an OAI-PMH 2.0 publishing registry and the coverage MOCs.

``/oai`` answers the six OAI-PMH verbs (GET and POST) as a publishing
registry does (IVOA Registry Interfaces 1.1): it disseminates the VOResource
records of SKVO in ``ivo_vor`` (``ri:Resource``) and ``oai_dc``, all in the set
``ivo_managed``:

- ``ivo://<authority>``: the naming authority (``vg:Authority``);
- ``ivo://<authority>/registry``: this registry (``vg:Registry``, the OAI interface);
- ``ivo://<authority>/skvo``: the archive (``vs:DataCollection``);
- ``ivo://<authority>/skvo/<svc>`` for tap, scs, ssa, sia and datalink
  (``vs:CatalogService``): the capabilities are the elements the services
  publish at ``/<svc>/capabilities``, built by the same functions (the protocol
  modules hand them over with :func:`voservice.protocols.vosi.publish_capabilities`).

Every record fits in one answer, so no resumptionToken is ever issued (a
resumptionToken argument is a ``badResumptionToken`` error).  The records are
built per request; their datestamp is the newest ingest or the settings file's
modification time, whichever is later.

``/coverage/moc.fits`` and ``/coverage/tmoc.fits`` (``.txt``: MOC ASCII,
``.json``: MOC JSON) serve the space and time MOCs of :mod:`voservice.coverage`,
which the data records reference in their ``coverage`` element.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from flask import Blueprint, Flask, Response, request
from lxml import etree

from voservice import coverage
from voservice.context import services
from voservice.protocols import vosi

log = logging.getLogger(__name__)

bp = Blueprint("registry", __name__)

OAI = "http://www.openarchives.org/OAI/2.0/"
OAI_XSD = "http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd"
OAI_DC = "http://www.openarchives.org/OAI/2.0/oai_dc/"
DC = "http://purl.org/dc/elements/1.1/"
RI = "http://www.ivoa.net/xml/RegistryInterface/v1.0"
VG = "http://www.ivoa.net/xml/VORegistry/v1.0"
NS = {"oai": OAI, "ri": RI, "vg": VG, "vr": vosi.NS["vr"], "vs": vosi.NS["vs"],
      "tr": vosi.NS["tr"], "xsi": vosi.NS["xsi"]}
XSI_TYPE = vosi.XSI_TYPE
#: metadataPrefix -> (schema, namespace)
FORMATS = {
    "ivo_vor": ("http://www.ivoa.net/xml/RegistryInterface/RegistryInterface-v1.0.xsd", RI),
    "oai_dc": ("http://www.openarchives.org/OAI/2.0/oai_dc.xsd", OAI_DC),
}
SET = "ivo_managed"
VERBS = ("Identify", "ListMetadataFormats", "ListSets", "GetRecord", "ListIdentifiers",
         "ListRecords")
#: verb -> (required arguments, optional arguments), besides verb and resumptionToken
ARGUMENTS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "Identify": (frozenset(), frozenset()),
    "ListMetadataFormats": (frozenset(), frozenset({"identifier"})),
    "ListSets": (frozenset(), frozenset()),
    "GetRecord": (frozenset({"identifier", "metadataPrefix"}), frozenset()),
    "ListIdentifiers": (frozenset({"metadataPrefix"}), frozenset({"from", "until", "set"})),
    "ListRecords": (frozenset({"metadataPrefix"}), frozenset({"from", "until", "set"})),
}
#: verbs that take a resumptionToken
RESUMABLE = frozenset({"ListSets", "ListIdentifiers", "ListRecords"})
#: the most records one ListRecords answer would carry (all of them fit)
MAX_RECORDS = 1000
SUBJECTS = ("light-curves", "variable-stars")  # UAT concepts
MOC_STANDARD = "ivo://ivoa.net/std/MOC"
XSD_DIR = Path(__file__).resolve().parent.parent.parent / "resources" / "xsd"

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_SECONDS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\Z")
_PREFIX = re.compile(r"[A-Za-z0-9\-_.!~*'()]+\Z")
_SETSPEC = re.compile(r"[A-Za-z0-9\-_.!~*'()]+(:[A-Za-z0-9\-_.!~*'()]+)*\Z")
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]*\Z")
_EMAIL = re.compile(r"\S+@(\S+\.)+\S+\Z")


@dataclass(frozen=True)
class Service:
    """A DAL service of SKVO as the registry describes it."""

    name: str  # key of its capability builder, path of its base URL
    short_name: str
    title: str
    description: str
    products: tuple[str, ...]  # productTypeServed (http://www.ivoa.net/rdf/product-type)


SERVICES = (
    Service("tap", "SKVO TAP", "TAP", "Table access (TAP 1.1, ADQL 2.1) to all metadata of "
            "the archive (targets, instruments, observations, series, frames), ObsCore and "
            "the light-curve points.", ("timeseries",)),
    Service("scs", "SKVO SCS", "cone search", "Simple Cone Search of the observed targets, "
            "with links to their light curves.", ("timeseries",)),
    Service("ssa", "SKVO SSA", "SSA", "Simple Spectral Access to the light curves (one per "
            "star and band, and one per night).", ("timeseries",)),
    Service("sia", "SKVO SIA", "SIA 2.0", "Simple Image Access 2.0 to the image frames the "
            "light curves were measured on.", ("image",)),
    Service("datalink", "SKVO DataLink", "DataLink", "DataLink 1.1 links of the light "
            "curves: the curves in other formats, previews, frames and ephemerides.",
            ("timeseries", "image")),
)


@dataclass(frozen=True)
class Record:
    """One OAI record: header values and the VOResource element."""

    identifier: str
    datestamp: dt.datetime
    resource: etree._Element  # ri:Resource


# --------------------------------------------------------------------------
# VOResource records


def _stamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _el(parent: etree._Element, tag: str, text: str | None = None, **attrs: str
        ) -> etree._Element:
    return vosi.sub(parent, tag, text, **attrs)


def _settings_time() -> dt.datetime:
    """Modification time of the settings file (service start without one)."""
    svc = services()
    path = svc.settings.config_path
    try:
        return dt.datetime.fromtimestamp(Path(path).stat().st_mtime, dt.UTC) if path else \
            svc.started
    except OSError:
        return svc.started


def _resource(xsi_type: str, identifier: str, title: str, created: dt.datetime,
              updated: dt.datetime, short_name: str | None = None) -> etree._Element:
    root = etree.Element(f"{{{RI}}}Resource", nsmap=NS)
    root.set(XSI_TYPE, xsi_type)
    root.set("created", _stamp(created))
    root.set("updated", _stamp(updated))
    root.set("status", "active")
    root.set("version", "1.1")
    _el(root, "title", title)
    if short_name:
        _el(root, "shortName", short_name)
    _el(root, "identifier", identifier)
    settings = services().settings
    curation = _el(root, "curation")
    _el(curation, "publisher", settings.get("vo", "publisher"))
    contact = _el(curation, "contact")
    _el(contact, "name", settings.get("vo", "publisher"))
    email = settings.get("vo", "contact")
    if _EMAIL.match(email or ""):
        _el(contact, "email", email)
    return root


def _content(root: etree._Element, description: str, subjects: Iterable[str],
             relations: Iterable[tuple[str, str, str]] = (), kind: str | None = None
             ) -> None:
    content = _el(root, "content")
    for subject in subjects:
        _el(content, "subject", subject)
    _el(content, "description", description)
    _el(content, "referenceURL", f"{services().base_url}/")
    if kind:
        _el(content, "type", kind)
    _el(content, "contentLevel", "Research")
    for relation, ivoid, name in relations:
        rel = _el(content, "relationship")
        _el(rel, "relationshipType", relation)
        _el(rel, "relatedResource", name, **{"ivo-id": ivoid})


def _coverage(root: etree._Element, cov: coverage.Coverage) -> None:
    base = services().base_url
    element = _el(root, "coverage")
    _el(element, "spatial", coverage.record_ascii(cov.space))
    for start, end in cov.temporal():
        _el(element, "temporal", f"{start!r} {end!r}")
    _el(element, "footprint", f"{base}/coverage/moc.fits", **{"ivo-id": MOC_STANDARD})
    _el(element, "waveband", "Optical")


def _tableset() -> etree._Element:
    """The VOSI tableset of /tap/tables as a VODataService ``tableset``."""
    response = vosi.tableset_response("max")
    document = etree.fromstring(response.get_data())
    tableset = etree.Element("tableset")
    for element in list(document):
        tableset.append(element)
    return tableset


def records() -> list[Record]:
    """The VOResource records of this SKVO installation, built now."""
    svc = services()
    settings = svc.settings
    authority = svc.authority
    title = settings.get("vo", "title")
    publisher = settings.get("vo", "publisher")
    cov = coverage.current(svc.engine, svc.extras)
    conf = _settings_time().replace(microsecond=0)
    updated = max(t for t in (cov.last_ingest, conf) if t is not None).replace(microsecond=0)
    created = min(t for t in (cov.first_ingest, updated) if t is not None).replace(
        microsecond=0)
    archive_id = f"ivo://{authority}/skvo"
    out: list[Record] = []

    auth = _resource("vg:Authority", f"ivo://{authority}", f"{publisher} naming authority",
                     conf, conf)
    _content(auth, f"The IVOA naming authority {authority} of {publisher}: identifiers "
             "of the resources of the SKVO photometry archive.", ("virtual-observatories",))
    _el(auth, "managingOrg", publisher)
    out.append(Record(f"ivo://{authority}", conf, auth))

    registry_id = f"ivo://{authority}/registry"
    reg = _resource("vg:Registry", registry_id, f"{title} publishing registry", conf, conf,
                    short_name="SKVO registry")
    _content(reg, f"The OAI-PMH publishing registry of {title}: the records of the "
             "archive and its services.", ("virtual-observatories",))
    harvest = _el(reg, "capability", standardID="ivo://ivoa.net/std/Registry")
    harvest.set(XSI_TYPE, "vg:Harvest")
    vosi.interface(harvest, f"{svc.base_url}/oai", std=True, use="base", version="1.0",
                   kind="vg:OAIHTTP")
    _el(harvest, "maxRecords", str(MAX_RECORDS))
    _el(reg, "full", "false")
    _el(reg, "managedAuthority", authority)
    out.append(Record(registry_id, conf, reg))

    collection = _resource("vs:DataCollection", archive_id, title, created, updated,
                           short_name="SKVO")
    _content(collection, f"{title}: processed photometry (light curves) of variable stars "
             "with the image frames they were measured on, as the observatories deliver "
             "them night by night.", SUBJECTS,
             [("IsServedBy", f"{archive_id}/{s.name}", f"{title} {s.title}")
              for s in SERVICES], kind="Archive")
    _coverage(collection, cov)
    out.append(Record(archive_id, updated, collection))

    builders = vosi.published_capabilities()
    for service in SERVICES:
        build = builders.get(service.name)
        if build is None:  # the protocol module is not registered in this application
            continue
        ivoid = f"{archive_id}/{service.name}"
        res = _resource("vs:CatalogService", ivoid, f"{title} {service.title}", created,
                        updated, short_name=service.short_name)
        _content(res, service.description, SUBJECTS,
                 [("IsServiceFor", archive_id, title)])
        for capability in list(build(svc.base_url, settings)):
            res.append(capability)
        _coverage(res, cov)
        for product in service.products:
            _el(res, "productTypeServed", product)
        if service.name == "tap":
            res.append(_tableset())
        out.append(Record(ivoid, updated, res))
    return out


def _dublin_core(resource: etree._Element) -> etree._Element:
    """The oai_dc rendering of a VOResource record."""
    dc = etree.Element(f"{{{OAI_DC}}}dc", nsmap={"oai_dc": OAI_DC, "dc": DC})

    def add(tag: str, text: str | None) -> None:
        if text:
            etree.SubElement(dc, f"{{{DC}}}{tag}").text = text

    add("title", resource.findtext("title"))
    add("identifier", resource.findtext("identifier"))
    for subject in resource.iterfind("content/subject"):
        add("subject", subject.text)
    add("description", resource.findtext("content/description"))
    add("publisher", resource.findtext("curation/publisher"))
    add("date", resource.get("updated"))
    add("type", resource.get(XSI_TYPE, "").partition(":")[2])
    for url in resource.iterfind("capability/interface/accessURL"):
        add("relation", url.text)
    return dc


# --------------------------------------------------------------------------
# OAI-PMH


class OAIError(Exception):
    """An OAI-PMH error condition (code, message)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _args() -> dict[str, str]:
    """The arguments of the request (query string and form), each at most once."""
    values = request.values
    verbs = values.getlist("verb")
    if len(verbs) != 1 or verbs[0] not in VERBS:
        shown = ", ".join(repr(v) for v in verbs) if verbs else "no verb"
        raise OAIError("badVerb", f"verb must be given once and be one of {', '.join(VERBS)} "
                       f"(got {shown})")
    verb = verbs[0]
    required, optional = ARGUMENTS[verb]
    allowed = required | optional | ({"resumptionToken"} if verb in RESUMABLE else set())
    args: dict[str, str] = {}
    for key in values:
        if key == "verb":
            continue
        got = values.getlist(key)
        if key not in allowed:
            raise OAIError("badArgument", f"{verb} takes no argument {key!r} (it takes "
                           f"{', '.join(sorted(allowed)) or 'none'})")
        if len(got) != 1:
            raise OAIError("badArgument", f"argument {key!r} is repeated")
        args[key] = got[0]
    if "resumptionToken" in args:
        if len(args) > 1:
            raise OAIError("badArgument", "resumptionToken is an exclusive argument")
        raise OAIError("badResumptionToken", "this registry issues no resumptionTokens: "
                       "every list fits in one answer")
    missing = sorted(required - set(args))
    if missing:
        raise OAIError("badArgument", f"{verb} needs the argument(s) {', '.join(missing)}")
    args["verb"] = verb
    return args


def _datestamp(value: str, name: str, end: bool) -> tuple[dt.datetime, str]:
    """A from/until argument as a UTC datetime and its granularity."""
    try:
        if _DAY.match(value):
            day = dt.datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=dt.UTC)
            return (day + dt.timedelta(days=1, microseconds=-1) if end else day), "day"
        if _SECONDS.match(value):
            return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(
                tzinfo=dt.UTC), "seconds"
    except ValueError:
        pass
    raise OAIError("badArgument", f"{name}={value!r} is not a UTC datestamp YYYY-MM-DD or "
                   "YYYY-MM-DDThh:mm:ssZ")


def _select(args: dict[str, str]) -> list[Record]:
    """The records a ListIdentifiers/ListRecords request asks for."""
    bounds = {}
    granularity = set()
    for name in ("from", "until"):
        if name in args:
            bounds[name], grain = _datestamp(args[name], name, end=name == "until")
            granularity.add(grain)
    if len(granularity) > 1:
        raise OAIError("badArgument", "from and until must have the same granularity")
    if "from" in bounds and "until" in bounds and bounds["from"] > bounds["until"]:
        raise OAIError("badArgument", "from is later than until")
    _format(args["metadataPrefix"])
    if "set" in args and args["set"] != SET:
        raise OAIError("noRecordsMatch", f"there is no set {args['set']!r} (the only set is "
                       f"{SET})")
    found = [r for r in records()
             if bounds.get("from", r.datestamp) <= r.datestamp <= bounds.get("until",
                                                                              r.datestamp)]
    if not found:
        raise OAIError("noRecordsMatch", "no record has a datestamp in the range given")
    return found


def _format(prefix: str) -> str:
    if prefix not in FORMATS:
        raise OAIError("cannotDisseminateFormat", f"metadataPrefix {prefix!r} is not "
                       f"supported (supported: {', '.join(FORMATS)})")
    return prefix


def _find(identifier: str) -> Record:
    for record in records():
        if record.identifier == identifier:
            return record
    raise OAIError("idDoesNotExist", f"there is no record {identifier!r} in this registry")


def _oai_root(args: dict[str, str], error: OAIError | None) -> etree._Element:
    root = etree.Element(f"{{{OAI}}}OAI-PMH", nsmap=NS)
    root.set(f"{{{NS['xsi']}}}schemaLocation", f"{OAI} {OAI_XSD}")
    etree.SubElement(root, f"{{{OAI}}}responseDate").text = _stamp(dt.datetime.now(dt.UTC))
    req = etree.SubElement(root, f"{{{OAI}}}request")
    req.text = f"{services().base_url}/oai"
    if error is None or error.code not in ("badVerb", "badArgument"):
        checks: dict[str, Callable[[str], bool]] = {
            "verb": lambda v: v in VERBS,
            "identifier": lambda v: v.isascii() and v.isprintable() and bool(
                _IDENTIFIER.match(v)),
            "metadataPrefix": lambda v: bool(_PREFIX.match(v)),
            "from": lambda v: bool(_DAY.match(v) or _SECONDS.match(v)),
            "until": lambda v: bool(_DAY.match(v) or _SECONDS.match(v)),
            "set": lambda v: bool(_SETSPEC.match(v)),
        }
        for key, value in args.items():
            if key in checks and checks[key](value):
                req.set(key, value)
    return root


def _header(parent: etree._Element, record: Record) -> None:
    header = etree.SubElement(parent, f"{{{OAI}}}header")
    etree.SubElement(header, f"{{{OAI}}}identifier").text = record.identifier
    etree.SubElement(header, f"{{{OAI}}}datestamp").text = _stamp(record.datestamp)
    etree.SubElement(header, f"{{{OAI}}}setSpec").text = SET


def _record(parent: etree._Element, record: Record, prefix: str) -> None:
    element = etree.SubElement(parent, f"{{{OAI}}}record")
    _header(element, record)
    metadata = etree.SubElement(element, f"{{{OAI}}}metadata")
    metadata.append(record.resource if prefix == "ivo_vor" else _dublin_core(record.resource))


def _answer(args: dict[str, str]) -> etree._Element:
    verb = args["verb"]
    root = _oai_root(args, None)
    body = etree.Element(f"{{{OAI}}}{verb}")
    if verb == "Identify":
        svc = services()
        settings = svc.settings
        all_records = records()
        contact = settings.get("vo", "contact") or ""
        admin = contact if _EMAIL.match(contact) else f"webmaster@{svc.authority}"
        for tag, text in (("repositoryName", f"{settings.get('vo', 'title')} registry"),
                          ("baseURL", f"{svc.base_url}/oai"), ("protocolVersion", "2.0"),
                          ("adminEmail", admin),
                          ("earliestDatestamp",
                           _stamp(min(r.datestamp for r in all_records))),
                          ("deletedRecord", "transient"),
                          ("granularity", "YYYY-MM-DDThh:mm:ssZ")):
            etree.SubElement(body, f"{{{OAI}}}{tag}").text = text
        description = etree.SubElement(body, f"{{{OAI}}}description")
        description.append(next(r.resource for r in all_records
                                if r.resource.get(XSI_TYPE) == "vg:Registry"))
    elif verb == "ListMetadataFormats":
        if "identifier" in args:
            _find(args["identifier"])
        for prefix, (schema, namespace) in FORMATS.items():
            fmt = etree.SubElement(body, f"{{{OAI}}}metadataFormat")
            etree.SubElement(fmt, f"{{{OAI}}}metadataPrefix").text = prefix
            etree.SubElement(fmt, f"{{{OAI}}}schema").text = schema
            etree.SubElement(fmt, f"{{{OAI}}}metadataNamespace").text = namespace
    elif verb == "ListSets":
        spec = etree.SubElement(body, f"{{{OAI}}}set")
        etree.SubElement(spec, f"{{{OAI}}}setSpec").text = SET
        etree.SubElement(spec, f"{{{OAI}}}setName").text = "Resources managed by this registry"
    elif verb == "GetRecord":
        prefix = _format(args["metadataPrefix"])
        _record(body, _find(args["identifier"]), prefix)
    elif verb == "ListIdentifiers":
        for record in _select(args):
            _header(body, record)
    else:  # ListRecords
        prefix = args["metadataPrefix"]
        for record in _select(args):
            _record(body, record, prefix)
    root.append(body)
    return root


def _xml(root: etree._Element) -> Response:
    body = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return Response(body, mimetype="text/xml")


@bp.route("/oai", methods=["GET", "POST"])
def oai() -> Response:
    """The OAI-PMH 2.0 endpoint; errors are OAI error elements (HTTP 200)."""
    args: dict[str, str] = {}
    try:
        args = _args()
        return _xml(_answer(args))
    except OAIError as exc:
        root = _oai_root(args, exc)
        etree.SubElement(root, f"{{{OAI}}}error", code=exc.code).text = str(exc)
        return _xml(root)


# --------------------------------------------------------------------------
# Coverage

_MOC_TYPES = {"fits": "application/fits", "txt": "text/plain", "json": "application/json"}


@bp.get("/coverage/<kind>.<ext>")
def coverage_moc(kind: str, ext: str) -> Response:
    """The space (``moc``) or time (``tmoc``) MOC of the published data."""
    if kind not in ("moc", "tmoc") or ext not in _MOC_TYPES:
        return Response("404 Not Found: the coverage is at /coverage/moc.{fits,txt,json} and "
                        "/coverage/tmoc.{fits,txt,json}\n", status=404, mimetype="text/plain")
    svc = services()
    cov = coverage.current(svc.engine, svc.extras)
    moc = cov.space if kind == "moc" else cov.time
    if ext == "fits":
        body: bytes | str = coverage.to_fits(moc)
    elif ext == "txt":
        body = coverage.to_ascii(moc) + "\n"
    else:
        body = json.dumps(moc.serialize(format="json"))
    response = Response(body, mimetype=_MOC_TYPES[ext])
    if cov.last_ingest is not None:
        response.last_modified = cov.last_ingest
    return response


# --------------------------------------------------------------------------
# Validation


@cache
def schema() -> etree.XMLSchema:
    """An XMLSchema of OAI-PMH, oai_dc and the VOResource family, from the local copies.

    The schema documents are in ``resources/xsd`` (see its README); a driver
    document imports each namespace from its local file first, so the remote
    ``schemaLocation`` of later imports of the same namespace are skipped and
    nothing is fetched from the network.
    """
    order = [
        ("http://www.w3.org/XML/1998/namespace", "xml.xsd"),
        ("http://www.w3.org/1999/xlink", "xlink.xsd"),
        (DC, "simpledc20021212.xsd"),
        (OAI_DC, "oai_dc.xsd"),
        (OAI, "OAI-PMH.xsd"),
        (vosi.NS["vr"], "VOResource-v1.1.xsd"),
        ("http://www.ivoa.net/xml/STC/stc-v1.30.xsd", "stc-v1.30.xsd"),
        (vosi.NS["vs"], "VODataService-v1.3.xsd"),
        (RI, "RegistryInterface-v1.0.xsd"),
        (VG, "VORegistry-v1.0.xsd"),
        (vosi.NS["tr"], "TAPRegExt-v1.0.xsd"),
        ("http://www.ivoa.net/xml/ConeSearch/v1.0", "ConeSearch-v1.1.xsd"),
        ("http://www.ivoa.net/xml/SIA/v1.1", "SIA-v1.2.xsd"),
        ("http://www.ivoa.net/xml/SSA/v1.1", "SSA-v1.1.xsd"),
        ("http://www.ivoa.net/xml/StandardsRegExt/v1.0", "StandardsRegExt-v1.0.xsd"),
        (vosi.NS["vosi"], "VOSICapabilities-v1.0.xsd"),
    ]
    xs = "http://www.w3.org/2001/XMLSchema"
    driver = etree.Element(f"{{{xs}}}schema", nsmap={"xs": xs})
    for namespace, name in order:
        etree.SubElement(driver, f"{{{xs}}}import", namespace=namespace,
                         schemaLocation=(XSD_DIR / name).as_uri())
    parser = etree.XMLParser(no_network=True)
    document = etree.fromstring(etree.tostring(driver), parser,
                                base_url=(XSD_DIR / "driver.xsd").as_uri())
    return etree.XMLSchema(document)


def register(app: Flask) -> None:
    """Add ``/oai`` and ``/coverage`` to the application."""
    app.register_blueprint(bp)

