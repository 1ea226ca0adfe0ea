"""TABLEDATA serialisation of normalised chunks."""

from __future__ import annotations

from collections.abc import Sequence

from .columns import Col
from .fields import FieldSpec
from .text import str_cells
from .xmlutil import NEEDS_TEXT_ESCAPE, escape_text

__all__ = ["td_chunk"]


def _escaped(cells: list[str]) -> list[str]:
    if NEEDS_TEXT_ESCAPE.search("".join(cells)) is None:
        return cells
    return [escape_text(c) for c in cells]


def td_chunk(
    cols: Sequence[Col], specs: Sequence[FieldSpec], n: int, ascii_only: bool = True
) -> str:
    """``<TR>`` elements for one chunk; NULL is an empty ``<TD></TD>``."""
    if n == 0:
        return ""
    cells = []
    for c, s in zip(cols, specs, strict=True):
        cc = str_cells(c, s, n, ascii_only=ascii_only, fill_arrays=True)
        cells.append(_escaped(cc) if s.kind == "str" else cc)
    fmt = "<TR>" + "<TD>%s</TD>" * len(specs) + "</TR>\n"
    return "".join(map(fmt.__mod__, zip(*cells)))  # noqa: B905
