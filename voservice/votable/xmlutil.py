"""XML 1.0 escaping helpers (text and attribute values)."""

from __future__ import annotations

import re

__all__ = ["clean", "escape_text", "escape_attr", "attrs", "NEEDS_TEXT_ESCAPE"]

# characters that are not allowed anywhere in an XML 1.0 document
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# anything that requires work when written as element text
NEEDS_TEXT_ESCAPE = re.compile("[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_TEXT_TABLE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_ATTR_TABLE = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "\t": "&#9;",
        "\n": "&#10;",
        "\r": "&#13;",
    }
)


def clean(s: str) -> str:
    """Remove characters that are illegal in XML 1.0."""
    return _ILLEGAL.sub("", s)


def escape_text(s: object) -> str:
    """Escape a value for use as element content."""
    s = str(s)
    if NEEDS_TEXT_ESCAPE.search(s) is None:
        return s
    return clean(s).translate(_TEXT_TABLE)


def escape_attr(s: object) -> str:
    """Escape a value for use inside a double-quoted attribute."""
    s = str(s)
    return clean(s).translate(_ATTR_TABLE)


def attrs(pairs: list[tuple[str, object]] | tuple[tuple[str, object], ...]) -> str:
    """Render ``[(name, value), ...]`` as ` name="value"` pairs, skipping None."""
    return "".join(f' {k}="{escape_attr(v)}"' for k, v in pairs if v is not None)
