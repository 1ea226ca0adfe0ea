"""Response columns of the services, from ``resources/services/<name>.toml``.

A column either names the table column it shows (``from = "skvo.target.target"``:
name, type, unit, UCD and description come from the one table description)
or states its own FIELD.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from voservice import tables
from voservice.tables import RESOURCES
from voservice.votable import Field

SERVICES_DIR = RESOURCES / "services"


@dataclass(frozen=True)
class ServiceColumn:
    """A response column of a service and the lowest VERB that shows it."""

    field: Field
    verb: int = 1


def _field_from_desc(desc: tables.ColumnDesc) -> dict[str, Any]:
    return {
        "name": desc.name,
        "datatype": desc.datatype,
        "arraysize": desc.arraysize,
        "xtype": desc.xtype,
        "unit": desc.unit,
        "ucd": desc.ucd,
        "utype": desc.utype,
        "description": desc.description,
    }


def field_of(desc: tables.ColumnDesc, **overrides: Any) -> Field:
    """A VOTable FIELD for a described column (keys given override it)."""
    values = _field_from_desc(desc)
    values.update(overrides)
    if values["datatype"] in ("char", "unicodeChar") and values.get("arraysize"):
        # declared lengths bound the database column, not the values we compute
        values["arraysize"] = "*" if values["arraysize"].endswith("*") else values["arraysize"]
    return Field(**values)


@cache
def _service_columns(name: str) -> tuple[ServiceColumn, ...]:
    path = SERVICES_DIR / f"{name}.toml"
    with path.open("rb") as fh:
        doc = tomllib.load(fh)
    out = []
    for entry in doc.get("column", []):
        entry = dict(entry)
        verb = int(entry.pop("verb", 1))
        source = entry.pop("from", None)
        if source:
            schema, table, column = source.split(".")
            values = _field_from_desc(tables.table(f"{schema}.{table}").column(column))
            values.update(entry)
            field = field_of(tables.ColumnDesc(**values))
        else:
            field = Field(**entry)
        out.append(ServiceColumn(field, verb))
    return tuple(out)


def service_columns(name: str, verb: int = 3) -> list[Field]:
    """Response FIELDs of a service (``resources/services/<name>.toml``) up to a VERB."""
    return [replace(c.field) for c in _service_columns(name) if c.verb <= verb]
