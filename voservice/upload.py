"""TAP_UPLOAD: VOTables a client sends along with a query.

``UPLOAD=name,param:part`` takes the multipart file ``part`` of the same
request; ``UPLOAD=name,http(s)://...`` fetches the table.  Several uploads
may share one value separated by ``;`` (as pyvo sends them).  Each table is
parsed defensively (no DTDs, no entities, no network, size and row limits),
then created as a temporary table on the query's connection and published
to ADQL as ``TAP_UPLOAD.name``; it is dropped after the query.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import requests
from lxml import etree

import adql
from voservice.protocols.dali import UsageError

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_FETCH_TIMEOUT = 30

#: VOTable datatype -> (ADQL datatype, SQLite type, MySQL type)
_TYPES = {
    "boolean": ("boolean", "INTEGER", "BOOLEAN"),
    "unsignedByte": ("short", "INTEGER", "SMALLINT"),
    "short": ("short", "INTEGER", "SMALLINT"),
    "int": ("int", "INTEGER", "INT"),
    "long": ("long", "INTEGER", "BIGINT"),
    "float": ("float", "REAL", "FLOAT"),
    "double": ("double", "REAL", "DOUBLE"),
    "char": ("char", "TEXT", "TEXT"),
    "unicodeChar": ("char", "TEXT", "TEXT"),
}


@dataclass
class UploadedTable:
    """An uploaded table: its name, columns and rows."""

    name: str
    columns: list[adql.Column]
    sql_types: list[tuple[str, str]]  # (SQLite type, MySQL type) per column
    rows: list[tuple[Any, ...]]

    def sql_name(self, dialect: str) -> str:
        """The quoted name of the temporary table."""
        if dialect == "sqlite":
            return f'temp."tap_upload_{self.name.lower()}"'
        return f"`tap_upload_{self.name.lower()}`"

    def adql_table(self, dialect: str) -> adql.Table:
        """The table as ADQL sees it: ``TAP_UPLOAD.<name>``."""
        return adql.Table(name=f"TAP_UPLOAD.{self.name}", columns=tuple(self.columns),
                          sql=self.sql_name(dialect))

    def create(self, raw: Any, dialect: str) -> None:
        """Create and fill the temporary table on a DBAPI connection."""
        quote = (lambda n: '"' + n.replace('"', '""') + '"') if dialect == "sqlite" else (
            lambda n: "`" + n.replace("`", "``") + "`")
        index = 0 if dialect == "sqlite" else 1
        cols = ", ".join(f"{quote(c.name)} {t[index]}" for c, t in
                         zip(self.columns, self.sql_types, strict=True))
        keyword = "CREATE TEMP TABLE" if dialect == "sqlite" else "CREATE TEMPORARY TABLE"
        cursor = raw.cursor()
        try:
            cursor.execute(f"{keyword} {self.sql_name(dialect)} ({cols})")
            if self.rows:
                mark = "?" if dialect == "sqlite" else "%s"
                marks = ", ".join([mark] * len(self.columns))
                cursor.executemany(f"INSERT INTO {self.sql_name(dialect)} VALUES ({marks})",
                                   self.rows)
        finally:
            cursor.close()


def drop_uploads(raw: Any, uploads: Sequence[UploadedTable], dialect: str) -> None:
    """Drop the temporary tables of uploads (absent ones are fine)."""
    if not uploads:
        return
    keyword = "DROP TABLE IF EXISTS" if dialect == "sqlite" else "DROP TEMPORARY TABLE IF EXISTS"
    cursor = raw.cursor()
    try:
        for upload in uploads:
            cursor.execute(f"{keyword} {upload.sql_name(dialect)}")
    finally:
        cursor.close()


def parse_upload_values(values: Sequence[str]) -> list[tuple[str, str]]:
    """``name,uri`` pairs of UPLOAD values (each value may hold several, ``;``-separated)."""
    pairs: list[tuple[str, str]] = []
    for value in values:
        for item in value.split(";"):
            item = item.strip()
            if not item:
                continue
            name, sep, uri = item.partition(",")
            name, uri = name.strip(), uri.strip()
            if not sep or not uri:
                raise UsageError(f"UPLOAD={item!r}: expected name,URI")
            if not _NAME.match(name):
                raise UsageError(
                    f"UPLOAD name {name!r}: must start with a letter and contain only "
                    "letters, digits and underscores"
                )
            if any(n.lower() == name.lower() for n, _ in pairs):
                raise UsageError(f"UPLOAD name {name!r} is used twice")
            pairs.append((name, uri))
    return pairs


def _read_upload(name: str, uri: str, files: Mapping[str, bytes | Path], max_bytes: int) -> bytes:
    if uri.startswith("param:"):
        part = uri[len("param:"):]
        source = files.get(part)
        if source is None:
            raise UsageError(f"UPLOAD {name}: the request has no file part named {part!r}")
        data = source.read_bytes() if isinstance(source, Path) else source
    elif uri.startswith(("http://", "https://")):
        try:
            with requests.get(uri, stream=True, timeout=_FETCH_TIMEOUT) as response:
                response.raise_for_status()
                chunks, size = [], 0
                for chunk in response.iter_content(65536):
                    size += len(chunk)
                    if size > max_bytes:
                        raise UsageError(f"UPLOAD {name}: the table at {uri} is larger than "
                                         f"the limit of {max_bytes} bytes")
                    chunks.append(chunk)
                data = b"".join(chunks)
        except requests.RequestException as exc:
            raise UsageError(f"UPLOAD {name}: could not fetch {uri}: "
                             f"{type(exc).__name__}") from None
    else:
        raise UsageError(f"UPLOAD {name}: URI {uri!r} must be param:<part>, http:// or https://")
    if len(data) > max_bytes:
        raise UsageError(f"UPLOAD {name}: {len(data)} bytes exceed the limit of {max_bytes}")
    return data


def _check_xml(name: str, data: bytes) -> None:
    """Refuse DTDs and entities before any VOTable parser sees the bytes."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False, dtd_validation=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise UsageError(f"UPLOAD {name}: not well-formed XML: {exc.msg}") from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise UsageError(f"UPLOAD {name}: DOCTYPE declarations are not allowed in uploads")
    if etree.QName(root).localname != "VOTABLE":
        raise UsageError(f"UPLOAD {name}: not a VOTable (root element "
                         f"{etree.QName(root).localname})")


def _table(name: str, data: bytes, max_rows: int) -> UploadedTable:
    from astropy.io.votable import parse as parse_votable
    from astropy.io.votable.exceptions import VOWarning

    _check_xml(name, data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", VOWarning)
            votable = parse_votable(io.BytesIO(data), verify="ignore")
            table = votable.get_first_table()
    except Exception as exc:  # astropy raises many types for bad VOTables
        raise UsageError(f"UPLOAD {name}: not a readable VOTable: {type(exc).__name__}: "
                         f"{str(exc)[:200]}") from None
    if table.array.shape[0] > max_rows:
        raise UsageError(f"UPLOAD {name}: {table.array.shape[0]} rows exceed the limit of "
                         f"{max_rows}")
    columns: list[adql.Column] = []
    sql_types: list[tuple[str, str]] = []
    converters = []
    seen: set[str] = set()
    for field in table.fields:
        fname = field.name or field.ID
        if not fname or fname.lower() in seen:
            raise UsageError(f"UPLOAD {name}: column names must be present and unique")
        seen.add(fname.lower())
        datatype = field.datatype
        scalar = field.arraysize in (None, "1") or datatype in ("char", "unicodeChar")
        if datatype not in _TYPES or not scalar:
            # arrays (e.g. DALI points) travel as their text form
            adql_type, sql_t = "char", ("TEXT", "TEXT")
            converters.append(_as_text)
            arraysize = "*"
        else:
            adql_type, *types = _TYPES[datatype]
            sql_t = (types[0], types[1])
            converters.append(_as_python)
            arraysize = "*" if adql_type == "char" else None
        xtype = field.xtype if adql_type == "char" else None
        columns.append(adql.Column(name=fname, datatype=adql_type, arraysize=arraysize,
                                   xtype=xtype, unit=str(field.unit) if field.unit else None,
                                   ucd=field.ucd, description=None))
        sql_types.append(sql_t)
    rows = []
    array = table.array
    for record in array:
        rows.append(tuple(conv(record[i], _masked(record, i))
                          for i, conv in enumerate(converters)))
    return UploadedTable(name=name, columns=columns, sql_types=sql_types, rows=rows)


def _masked(record: Any, i: int) -> bool:
    mask = getattr(record, "mask", None)
    if mask is None:
        return False
    value = mask[i]
    return bool(np.all(value))


def _as_python(value: Any, masked: bool) -> Any:
    if masked or value is np.ma.masked:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _as_text(value: Any, masked: bool) -> Any:
    if masked or value is np.ma.masked:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return " ".join(str(v) for v in np.ravel(value).tolist())
    return str(value)


def load_uploads(values: Sequence[str], files: Mapping[str, bytes | Path], *, max_rows: int,
                 max_bytes: int) -> list[UploadedTable]:
    """Read and check every table named by the UPLOAD values."""
    return [_table(name, _read_upload(name, uri, files, max_bytes), max_rows)
            for name, uri in parse_upload_values(values)]
