"""Streaming table writer for SKVO: VOTable (TABLEDATA/BINARY/BINARY2), CSV, TSV, JSON, FITS.

Pure module (numpy only).  Typical use::

    fields = [Field("id", "long"), Field("ra", "double", unit="deg")]
    fmt, mime = resolve_format(request.args.get("RESPONSEFORMAT"))
    body = write_table(fields, iter(lambda: cursor.fetchmany(10000), []), format=fmt)
    return Response(body, mimetype=mime)
"""

from .columns import Columns
from .document import error_document
from .fields import CooSys, Field, Group, Info, Param, Resource, TimeSys
from .formats import FORMATS, resolve_format
from .writer import TablePart, TableStream, UnwritableValue, write_table, write_tables

__all__ = [
    "Columns",
    "CooSys",
    "Field",
    "FORMATS",
    "Group",
    "Info",
    "Param",
    "Resource",
    "TablePart",
    "TableStream",
    "TimeSys",
    "UnwritableValue",
    "error_document",
    "resolve_format",
    "write_table",
    "write_tables",
]
