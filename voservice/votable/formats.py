"""RESPONSEFORMAT resolution (DALI shorthands and MIME types).

Canonical formats and the MIME type sent when the client used a shorthand:

======================  ===================================================
canonical               default MIME type
======================  ===================================================
votable/binary2         application/x-votable+xml
votable/binary          application/x-votable+xml;serialization=BINARY
votable/td              application/x-votable+xml;serialization=TABLEDATA
csv                     text/csv;header=present
tsv                     text/tab-separated-values
json                    application/json
fits                    application/fits
ecsv                    text/x-ecsv (astropy's ECSV 1.0: a YAML header, then CSV)
======================  ===================================================

Shorthands (case-insensitive; ``/``, ``_``, ``-`` or nothing between the parts):
``votable``, ``vot`` -> binary2; ``votable/b2``, ``votable/binary2``,
``binary2`` -> binary2; ``votable/b``, ``votable/binary``, ``binary`` -> binary;
``votable/td``, ``votable/tabledata``, ``tabledata`` -> td; ``csv``, ``tsv``,
``json``, ``fits``.

MIME types: ``application/x-votable+xml`` (optional ``serialization=TABLEDATA|
BINARY|BINARY2``, other parameters such as ``content=datalink`` kept),
``text/xml``, ``application/xml``, ``text/csv``, ``text/tab-separated-values``,
``application/json``, ``application/fits``, ``application/x-fits-bintable``.
When the client gives a MIME type it is echoed back unchanged (DALI).
"""

from __future__ import annotations

__all__ = ["FORMATS", "MIME_TYPES", "resolve_format"]

FORMATS: dict[str, str] = {
    "votable/binary2": "application/x-votable+xml",
    "votable/binary": "application/x-votable+xml;serialization=BINARY",
    "votable/td": "application/x-votable+xml;serialization=TABLEDATA",
    "csv": "text/csv;header=present",
    "tsv": "text/tab-separated-values",
    "json": "application/json",
    "fits": "application/fits",
    "ecsv": "text/x-ecsv",
}

_SHORT: dict[str, str] = {}


def _add(canonical: str, *names: str) -> None:
    for name in names:
        _SHORT[name] = canonical


_add("votable/binary2", "votable", "vot", "binary2")
_add("votable/binary", "binary")
_add("votable/td", "tabledata")
_add("csv", "csv")
_add("tsv", "tsv")
_add("json", "json")
_add("fits", "fits")
_add("ecsv", "ecsv")
for _prefix in ("votable", "vot"):
    for _sep in ("/", "_", "-", ""):
        _add("votable/binary2", f"{_prefix}{_sep}b2", f"{_prefix}{_sep}binary2")
        _add("votable/binary", f"{_prefix}{_sep}b", f"{_prefix}{_sep}binary")
        _add("votable/td", f"{_prefix}{_sep}td", f"{_prefix}{_sep}tabledata")

_SERIALIZATION = {
    "tabledata": "votable/td",
    "binary": "votable/binary",
    "binary2": "votable/binary2",
}

# MIME base type -> canonical format (VOTable ones may be refined by serialization=)
MIME_TYPES: dict[str, str] = {
    "application/x-votable+xml": "votable/binary2",
    "text/xml": "votable/binary2",
    "application/xml": "votable/binary2",
    "text/csv": "csv",
    "text/tab-separated-values": "tsv",
    "application/json": "json",
    "application/fits": "fits",
    "application/x-fits-bintable": "fits",
    "text/x-ecsv": "ecsv",
}


def resolve_format(responseformat: str | None) -> tuple[str, str]:
    """Map a RESPONSEFORMAT value to (canonical format, MIME type to send).

    None or "" gives BINARY2 VOTable.  Raises ValueError for unknown values.
    """
    if responseformat is None or not responseformat.strip():
        return "votable/binary2", FORMATS["votable/binary2"]
    given = responseformat.strip()
    low = given.lower()
    if low in _SHORT:
        canonical = _SHORT[low]
        return canonical, FORMATS[canonical]
    base, _, rest = low.partition(";")
    base = base.strip()
    if base in MIME_TYPES:
        canonical = MIME_TYPES[base]
        params: dict[str, str] = {}
        for item in rest.split(";"):
            key, sep, value = item.partition("=")
            if sep:
                params[key.strip()] = value.strip().strip('"')
        ser = params.get("serialization")
        if ser is not None:
            if not canonical.startswith("votable/") or ser not in _SERIALIZATION:
                raise ValueError(
                    f"unsupported serialization {ser!r} in RESPONSEFORMAT {given!r}; "
                    "use TABLEDATA, BINARY or BINARY2"
                )
            canonical = _SERIALIZATION[ser]
        return canonical, given
    known = sorted({*FORMATS, *MIME_TYPES})
    raise ValueError(
        f"unsupported RESPONSEFORMAT {given!r}; supported: {', '.join(known)} "
        "(shorthands: votable, votable/td, votable/b, votable/b2, csv, tsv, json, fits, "
        "ecsv)"
    )
