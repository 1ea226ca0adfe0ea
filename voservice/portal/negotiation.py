"""Is this request from a person's browser?  And what should a download be called?

A browser navigating to a page sends ``Accept: text/html,application/xhtml+xml,...``
(Chromium, Firefox and Safari alike).  VO clients never do: pyvo (requests) sends
``*/*``, and Java clients (TOPCAT, STILTS, Aladin) send Java's default
``text/html, image/gif, image/jpeg, */*; q=0.2``, which puts text/html first but
names no XHTML.  So a request counts as a browser's only when text/html is its first
media type *and* it accepts application/xhtml+xml; everything else gets what the VO
endpoints always answered.
"""

from __future__ import annotations

import re

from flask import Request

#: browser-safe characters of a download's file name
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")

def media_types(accept: str) -> list[str]:
    """The media types of an Accept header, in the order given, lower case."""
    return [part.split(";")[0].strip().lower() for part in accept.split(",") if part.strip()]


def is_browser(request: Request) -> bool:
    """A browser's navigation: Accept starts with text/html and names XHTML."""
    types = media_types(request.headers.get("Accept", ""))
    return bool(types) and types[0] == "text/html" and "application/xhtml+xml" in types


def has_params(request: Request) -> bool:
    """Whether the request carries any parameter (query string or form)."""
    return bool(request.args) or (request.method == "POST" and bool(request.form))


def param(request: Request, name: str) -> str | None:
    """A parameter's first value, the name case-insensitive (DALI)."""
    for source in (request.args, request.form if request.method == "POST" else {}):
        for key, value in source.items():
            if key.upper() == name:
                return value
    return None


def extension(mime: str) -> str:
    """The file name extension of a response's MIME type."""
    base = mime.split(";")[0].strip().lower()
    if "votable" in base or base in ("text/xml", "application/xml"):
        return "vot"
    return {"text/csv": "csv", "text/tab-separated-values": "tsv", "application/json": "json",
            "application/fits": "fits", "image/png": "png", "image/jpeg": "jpg"
            }.get(base, "dat")


def filename(*parts: str | None, mime: str) -> str:
    """``part1-part2-....ext`` from the non-empty parts, safe for a header."""
    stem = "-".join(_UNSAFE.sub("_", p).strip("_") for p in parts if p)
    return f"{stem or 'skvo'}.{extension(mime)}"


def attachment(name: str) -> str:
    """A Content-Disposition value that saves the response as ``name``."""
    return f'attachment; filename="{name}"'
