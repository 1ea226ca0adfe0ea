"""TAP_UPLOAD: VOTables a client sends along with a query.

``UPLOAD=name,param:part`` takes the multipart file ``part`` of the same
request; ``UPLOAD=name,http(s)://...`` fetches the table.  Several uploads
may share one value separated by ``;`` (as pyvo sends them).  URLs are
fetched by :mod:`voservice.netfetch` (public hosts only).  Each table is
read from its bytes alone: a streaming lxml pre-scan refuses STREAM href,
FITS, DTDs and entities, XInclude, deep nesting, unknown datatypes and
checks rows, columns, declared sizes and a memory budget before astropy
parses the (checked) bytes.  The table is then created as a temporary table
on the query's connection and published to ADQL as ``TAP_UPLOAD.name``; it
is dropped after the query.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as _field
from pathlib import Path
from typing import Any

import numpy as np
from lxml import etree

import adql
from voservice import netfetch
from voservice.errors import UsageError

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

#: VOTable datatype -> (ADQL datatype, SQLite type, MySQL type)
_TYPES = {
    "boolean": ("boolean", "INTEGER", "BOOLEAN"),
    "bit": ("boolean", "INTEGER", "BOOLEAN"),  # astropy writes bool columns as bit
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


@dataclass(frozen=True)
class UploadLimits:
    """What one uploaded table may hold, and how a table given by URL is fetched."""

    max_rows: int
    max_bytes: int
    max_columns: int = 1000
    allow_hosts: tuple[str, ...] = ()
    fetch_timeout: float = 10.0

    @property
    def memory(self) -> int:
        """Bytes reading one table may take (arrays, rows and their Python values)."""
        return MEMORY_FACTOR * self.max_bytes

    @property
    def fetch_policy(self) -> netfetch.FetchPolicy:
        """How ``http(s)://`` uploads are fetched."""
        return netfetch.FetchPolicy(max_bytes=self.max_bytes, timeout=self.fetch_timeout,
                                    connect_timeout=min(5.0, self.fetch_timeout),
                                    allow_hosts=self.allow_hosts)


def _read_upload(name: str, uri: str, files: Mapping[str, bytes | Path],
                 limits: UploadLimits) -> bytes:
    max_bytes = limits.max_bytes
    if uri.startswith("param:"):
        part = uri[len("param:"):]
        source = files.get(part)
        if source is None:
            raise UsageError(f"UPLOAD {name}: the request has no file part named {part!r}")
        size = source.stat().st_size if isinstance(source, Path) else len(source)
        if size > max_bytes:
            raise UsageError(f"UPLOAD {name}: {size} bytes exceed the limit of {max_bytes}")
        data = source.read_bytes() if isinstance(source, Path) else source
    elif uri.lower().startswith(("http://", "https://")):
        try:
            data = netfetch.fetch(uri, limits.fetch_policy)
        except netfetch.FetchError as exc:
            raise UsageError(f"UPLOAD {name}: {uri[:200]} was not fetched: {exc}") from None
    else:
        raise UsageError(f"UPLOAD {name}: URI {uri[:200]!r} must be param:<part>, http:// or "
                         "https://")
    if len(data) > max_bytes:
        raise UsageError(f"UPLOAD {name}: {len(data)} bytes exceed the limit of {max_bytes}")
    return data


# --------------------------------------------------------------------------
# The pre-scan: every rule is checked on the bytes, streaming, before astropy
# (which would follow STREAM href and preallocate by nrows) sees them.

#: an upload may take this many times upload_max_bytes of memory while it is read
MEMORY_FACTOR = 8
MAX_DEPTH = 64
MAX_ATTRIBUTE = 65536  # characters of one attribute value
MAX_METADATA_TEXT = 1_000_000  # characters of the text of one element other than TD and STREAM
METADATA_PER_COLUMN = 20  # elements other than TR/TD per allowed column
_ENCODINGS = {"utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin-1", "latin1"}
_XINCLUDE = {"http://www.w3.org/2001/XInclude", "http://www.w3.org/2003/XInclude"}
_MAGIC = ((b"SIMPLE  =", "FITS"), (b"\x1f\x8b", "gzip-compressed"), (b"BZh", "bzip2-compressed"),
          (b"\xfd7zXZ\x00", "xz-compressed"), (b"PK\x03\x04", "zip"))
#: VOTable datatype -> (bytes per element in BINARY, bytes per element astropy allocates)
_WIDTH = {
    "boolean": (1, 1), "bit": (1, 1), "unsignedByte": (1, 1), "short": (2, 2), "int": (4, 4),
    "long": (8, 8), "char": (1, 4), "unicodeChar": (2, 4), "float": (4, 4), "double": (8, 8),
    "floatComplex": (8, 8), "doubleComplex": (16, 16),
}
_ARRAYSIZE = re.compile(r"^(?:[0-9]{1,12}x)*(?:[0-9]{1,12}\*?|\*)$")
_NROWS = re.compile(r"^\s*[0-9]{1,15}\s*$")
_TOKEN = re.compile(r"[^\s,]+")
#: astropy allocates 512 rows at the first row, grows by 1.5 and copies (old + new live at once)
_FIRST_ALLOC, _GROWTH = 512, 2.5
#: Python bytes of a row, of a cell and of a variable-length array's element
_ROW_COST, _CELL_COST, _VAR_COST = 64, 40, 100


class _Refused(ValueError):
    """The upload breaks a rule (the message says which)."""


@dataclass(frozen=True)
class _Shape:
    """A FIELD's or PARAM's datatype and arraysize, as they cost in memory and in BINARY."""

    label: str
    datatype: str
    count: int  # elements of the fixed part (char: the length bound)
    variable: bool

    @property
    def alloc(self) -> int:
        """Bytes astropy allocates per row for this column (values and mask)."""
        if self.variable and (self.datatype not in ("char", "unicodeChar") or self.count == 0):
            return 24
        return max(self.count, 1) * (_WIDTH[self.datatype][1] + 1)

    @property
    def python(self) -> int:
        """Bytes of the Python value of one cell (arrays become their text)."""
        if self.datatype in ("char", "unicodeChar"):
            return _CELL_COST + self.count
        return _CELL_COST + (32 * self.count if self.count > 1 else 0)

    @property
    def item_bytes(self) -> int:
        """Bytes in a BINARY stream of one fixed value (or one item of a variable array)."""
        size = _WIDTH[self.datatype][0]
        if self.datatype in ("char", "unicodeChar"):
            return size * max(self.count, 1)
        if self.datatype == "bit" and self.count > 1:
            return (self.count + 7) // 8
        return size * max(self.count, 1)

    def text_tokens(self, text: str) -> int:
        """Elements astropy makes of a TD's or value's text (0 for scalars and strings)."""
        if self.datatype in ("char", "unicodeChar") or (self.count <= 1 and not self.variable):
            return 0
        if self.datatype == "bit":
            return sum(1 for c in text if not c.isspace() and c != ",")
        tokens = 0
        limit = None if self.variable else 2 * self.count
        for _ in _TOKEN.finditer(text):
            tokens += 1
            if limit is not None and tokens > limit:
                raise _Refused(f"{self.label} has more values than its arraysize")
        return tokens


def _shape(label: str, attrs: Mapping[str, str], budget: int) -> _Shape:
    datatype = attrs.get("datatype")
    if datatype is None:
        raise _Refused(f"{label} has no datatype")
    if datatype not in _WIDTH:
        raise _Refused(f"{label} has the unknown datatype {datatype[:40]!r}")
    arraysize = attrs.get("arraysize", "").strip()
    if not arraysize:
        return _Shape(label, datatype, 1, False)
    if not _ARRAYSIZE.match(arraysize):
        raise _Refused(f"{label} has the invalid arraysize {arraysize[:40]!r}")
    dims = arraysize.split("x")
    variable = dims[-1].endswith("*")
    if datatype in ("char", "unicodeChar"):
        if len(dims) > 1:
            raise _Refused(f"{label}: multi-dimensional {datatype} arrays are not supported")
        fixed = [dims[0].rstrip("*")] if dims[0].rstrip("*") else []
    else:  # astropy drops the bound of a variable last dimension
        fixed = dims[:-1] if variable else dims
    count = 1
    for dim in fixed:
        count *= int(dim)
        if count == 0:
            raise _Refused(f"{label} has a zero dimension in arraysize {arraysize!r}")
        if count * (_WIDTH[datatype][1] + 1) > budget:
            raise _Refused(f"{label}: arraysize {arraysize!r} declares more than "
                           f"{budget} bytes per value")
    if datatype in ("char", "unicodeChar") and not fixed:
        count = 0
    return _Shape(label, datatype, count, variable)


@dataclass
class _TableScan:
    """What the scan learnt of one TABLE so far."""

    index: int
    limits: UploadLimits
    declared: int = 0
    shapes: list[_Shape] = _field(default_factory=list)
    rows: int = 0
    cells_in_row: int = 0
    var_cost: int = 0
    serialization: str | None = None

    def alloc_rows(self) -> int:
        """Rows astropy allocates at most for this table."""
        return int(_GROWTH * max(self.declared, self.rows, _FIRST_ALLOC))

    def check_memory(self) -> None:
        """Refuse once reading the table would take more than the memory budget."""
        numpy = self.alloc_rows() * sum(s.alloc for s in self.shapes)
        python = self.rows * (_ROW_COST + sum(s.python for s in self.shapes))
        if numpy + python + self.var_cost > self.limits.memory:
            raise _Refused(f"table {self.index + 1} would take more than "
                           f"{self.limits.memory // 1_000_000} MB to read "
                           f"({len(self.shapes)} columns, {max(self.rows, self.declared)} rows)")

    def add_row(self) -> None:
        """Count one row (refused beyond upload_max_rows)."""
        self.rows += 1
        if self.rows > self.limits.max_rows:
            raise _Refused(f"more than {self.limits.max_rows} rows (the limit)")
        if self.rows % 1024 == 0:
            self.check_memory()


def _scan(data: bytes, limits: UploadLimits) -> int:
    """Check every rule on the bytes; return the number of TABLEs."""
    head = data[:256].lstrip()
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            raise _Refused(f"{kind} uploads are not accepted; send the table as a VOTable "
                           "(TABLEDATA, BINARY or BINARY2 inline)")
    budget = limits.memory // _FIRST_ALLOC
    events = etree.iterparse(
        io.BytesIO(data), events=("start", "end"), resolve_entities=False, no_network=True,
        load_dtd=False, huge_tree=False, dtd_validation=False, remove_comments=True)
    tables: list[_TableScan] = []
    table: _TableScan | None = None
    depth = metadata = 0
    try:
        for event, el in events:
            tag = el.tag
            name = tag.rpartition("}")[2]
            if event == "start":
                depth += 1
                if depth == 1:
                    _check_document(el)
                if depth > MAX_DEPTH:
                    raise _Refused(f"elements are nested deeper than {MAX_DEPTH}")
                if tag[:1] == "{" and tag[1:tag.index("}")] in _XINCLUDE:
                    raise _Refused("XInclude elements are not allowed")
                attrs = _attributes(el) if el.attrib else {}
                if name == "TD" and table is not None:
                    table.cells_in_row += 1
                    continue
                if name != "TR":
                    metadata += 1
                    if metadata > METADATA_PER_COLUMN * limits.max_columns + 100:
                        raise _Refused("too many elements outside the table rows")
                table = _start(name, attrs, table, tables, limits)
                continue
            depth -= 1
            if name == "TD":
                if table is not None:
                    _end_td(el, table)
                continue
            if name == "TR" and table is not None:
                if table.cells_in_row > len(table.shapes):
                    raise _Refused(f"row {table.rows + 1} of table {table.index + 1} has "
                                   f"{table.cells_in_row} cells for {len(table.shapes)} columns")
                table.cells_in_row = 0
                table.add_row()
                el.clear()
                while el.getprevious() is not None:
                    del el.getparent()[0]
                continue
            elif name == "STREAM" and table is not None:
                _end_stream(el.text or "", table)
            elif name in ("FIELD", "PARAM"):
                _end_field(name, _attributes(el), el, table, limits, budget)
            elif name == "TABLE" and table is not None:
                table.check_memory()
                table = None
            if name not in ("TD", "STREAM") and len(el.text or "") > MAX_METADATA_TEXT:
                raise _Refused(f"the text of a {name} is longer than {MAX_METADATA_TEXT} "
                               "characters")
            el.clear(keep_tail=True)
    except etree.XMLSyntaxError as exc:
        raise _Refused(f"not well-formed XML: {exc.msg}") from None
    return len(tables)


def _check_document(root: Any) -> None:
    """Rules on the document as a whole, checked at its first element."""
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise _Refused("DOCTYPE declarations are not allowed in uploads")
    encoding = (docinfo.encoding or "UTF-8").lower()
    if encoding not in _ENCODINGS:
        raise _Refused(f"the encoding {encoding!r} is not accepted; use UTF-8")
    if etree.QName(root).localname != "VOTABLE":
        raise _Refused(f"not a VOTable (root element {etree.QName(root).localname[:40]})")


def _attributes(el: Any) -> dict[str, str]:
    """The attributes by local name (refused when two share a local name or one is huge)."""
    out: dict[str, str] = {}
    for key, value in el.attrib.items():
        local = etree.QName(key).localname
        if local in out:
            raise _Refused(f"attribute {local!r} given twice on {etree.QName(el).localname}")
        if len(value) > MAX_ATTRIBUTE:
            raise _Refused(f"attribute {local!r} is longer than {MAX_ATTRIBUTE} characters")
        out[local] = value
    return out


def _start(name: str, attrs: Mapping[str, str], table: _TableScan | None,
           tables: list[_TableScan], limits: UploadLimits) -> _TableScan | None:
    """Rules checked when an element starts; the TABLE being read afterwards."""
    if name == "STREAM":
        if "href" in attrs:
            raise _Refused("STREAM href is not allowed: the table must be inline "
                           "(<STREAM encoding=\"base64\">...</STREAM>)")
        if attrs.get("encoding", "base64") != "base64":
            raise _Refused(f"STREAM encoding {attrs['encoding'][:40]!r} is not accepted; "
                           "use base64")
    elif name == "FITS":
        raise _Refused("FITS data inside a VOTable is not accepted; use TABLEDATA, BINARY "
                       "or BINARY2")
    elif name == "TABLE":
        if table is not None:
            raise _Refused("a TABLE inside a TABLE")
        if "ref" in attrs:
            raise _Refused("TABLE ref is not supported in uploads")
        table = _TableScan(index=len(tables), limits=limits)
        tables.append(table)
        nrows = attrs.get("nrows")
        if nrows is not None:
            if not _NROWS.match(nrows):
                raise _Refused(f"TABLE nrows={nrows[:40]!r} is not a number of rows")
            if int(nrows) > limits.max_rows:
                raise _Refused(f"TABLE nrows={int(nrows)} exceeds the limit of "
                               f"{limits.max_rows} rows")
            table.declared = int(nrows)
    elif name in ("TABLEDATA", "BINARY", "BINARY2") and table is not None:
        if table.serialization is not None:
            raise _Refused(f"table {table.index + 1} has more than one DATA serialization")
        table.serialization = name
        if not table.shapes:
            raise _Refused(f"table {table.index + 1} has no FIELD")
        table.check_memory()
    return table


def _end_field(name: str, attrs: Mapping[str, str], el: Any, table: _TableScan | None,
               limits: UploadLimits, budget: int) -> None:
    label = f"{name} {(attrs.get('name') or attrs.get('ID') or '?')[:60]!r}"
    shape = _shape(label, attrs, budget if name == "FIELD" else limits.memory)
    if name == "PARAM":
        tokens = shape.text_tokens(attrs.get("value", ""))
        if table is not None:
            table.var_cost += _VAR_COST * tokens
        return
    if table is None or etree.QName(el.getparent()).localname != "TABLE":
        return  # FIELDs only count inside a TABLE (astropy ignores others)
    if table.serialization is not None:
        raise _Refused(f"FIELD after the DATA of table {table.index + 1}")
    table.shapes.append(shape)
    if len(table.shapes) > limits.max_columns:
        raise _Refused(f"table {table.index + 1} has more than {limits.max_columns} columns "
                       "(the limit)")
    table.check_memory()


def _end_td(el: Any, table: _TableScan) -> None:
    index = table.cells_in_row - 1
    if index >= len(table.shapes):
        return  # refused at the end of the row
    shape = table.shapes[index]
    if not shape.variable and shape.count <= 1:
        return
    text = el.text or ""
    tokens = shape.text_tokens(text)
    if tokens and shape.variable:
        table.var_cost += _VAR_COST * tokens
    elif shape.variable:
        table.var_cost += len(text) + 50


def _end_stream(text: str, table: _TableScan) -> None:
    """Decode a BINARY/BINARY2 stream and walk its rows (as astropy will)."""
    try:
        raw = base64.b64decode(text.encode("ascii"))
    except (UnicodeEncodeError, binascii.Error):
        raise _Refused(f"the STREAM of table {table.index + 1} is not base64") from None
    shapes = table.shapes
    mask = (len(shapes) + 7) // 8 if table.serialization == "BINARY2" else 0
    if not any(s.variable for s in shapes):
        width = mask + sum(s.item_bytes for s in shapes)
        rows, rest = divmod(len(raw), width)
        if rest:
            raise _Refused(f"the STREAM of table {table.index + 1} ends inside row {rows + 1}")
        if rows > table.limits.max_rows:
            raise _Refused(f"more than {table.limits.max_rows} rows (the limit)")
        table.rows = rows
        table.check_memory()
        return
    pos, end = 0, len(raw)
    while pos < end:
        pos += mask
        for shape in shapes:
            if shape.variable:
                if pos + 4 > end:
                    break
                count = int.from_bytes(raw[pos:pos + 4], "big")
                pos += 4
                item = (_WIDTH[shape.datatype][0] if shape.datatype in ("char", "unicodeChar")
                        else shape.item_bytes)
                pos += count * item
                table.var_cost += (count + 50 if shape.datatype in ("char", "unicodeChar")
                                   else _VAR_COST * count * max(shape.count, 1))
            else:
                pos += shape.item_bytes
        if pos > end:
            raise _Refused(f"the STREAM of table {table.index + 1} ends inside row "
                           f"{table.rows + 1}")
        table.add_row()
        if table.var_cost > table.limits.memory:
            table.check_memory()
    table.check_memory()


# --------------------------------------------------------------------------
# Reading the checked bytes


def _table(name: str, data: bytes, limits: UploadLimits) -> UploadedTable:
    from astropy.io.votable import parse as parse_votable
    from astropy.io.votable.exceptions import VOWarning

    try:
        if _scan(data, limits) == 0:
            raise _Refused("the VOTable has no TABLE")
    except _Refused as exc:
        raise UsageError(f"UPLOAD {name}: {exc}") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", VOWarning)
            votable = parse_votable(io.BytesIO(data), verify="ignore", table_number=0)
            table = votable.get_first_table()
    except Exception as exc:  # astropy raises many types for bad VOTables
        raise UsageError(f"UPLOAD {name}: not a readable VOTable: {type(exc).__name__}: "
                         f"{str(exc)[:200]}") from None
    max_rows = limits.max_rows
    if table.array.shape[0] > max_rows:
        raise UsageError(f"UPLOAD {name}: {table.array.shape[0]} rows exceed the limit of "
                         f"{max_rows}")
    columns: list[adql.Column] = []
    sql_types: list[tuple[str, str]] = []
    converters = []
    seen: set[str] = set()
    for fld in table.fields:
        fname = fld.name or fld.ID
        if not fname or fname.lower() in seen:
            raise UsageError(f"UPLOAD {name}: column names must be present and unique")
        seen.add(fname.lower())
        datatype = fld.datatype
        scalar = fld.arraysize in (None, "1") or datatype in ("char", "unicodeChar")
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
        xtype = fld.xtype if adql_type == "char" else None
        columns.append(adql.Column(name=fname, datatype=adql_type, arraysize=arraysize,
                                   xtype=xtype, unit=str(fld.unit) if fld.unit else None,
                                   ucd=fld.ucd, description=None))
        sql_types.append(sql_t)
    array = table.array
    values = [_column(array, i, conv) for i, conv in enumerate(converters)]
    rows = list(zip(*values, strict=True)) if values else []
    return UploadedTable(name=name, columns=columns, sql_types=sql_types, rows=rows)


def _column(array: Any, index: int, conv: Any) -> list[Any]:
    """The Python values of one column (None where masked or not finite)."""
    key = array.dtype.names[index]
    data = np.asarray(array.data[key])
    mask = np.ma.getmaskarray(array[key]) if array.mask is np.ma.nomask else array.mask[key]
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim > 1:
        mask = mask.reshape(len(mask), -1).all(axis=1)
    if conv is _as_python and data.ndim == 1 and data.dtype.kind in "biufU":
        bad = mask | ~np.isfinite(data) if data.dtype.kind == "f" else mask
        return [None if b else v for v, b in zip(data.tolist(), bad.tolist(), strict=True)]
    return [conv(v, m) for v, m in zip(data, mask.tolist(), strict=True)]


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
                 max_bytes: int, max_columns: int = 1000, allow_hosts: Sequence[str] | str = (),
                 fetch_timeout: float = 10.0) -> list[UploadedTable]:
    """Read and check every table named by the UPLOAD values.

    A table is read from the bytes the client sent (or that its http(s) URL
    returned under :mod:`voservice.netfetch`'s rules), nothing else; every
    limit is checked before memory is taken.  UsageError names the upload.
    """
    hosts = (netfetch.parse_allow_hosts(allow_hosts) if isinstance(allow_hosts, str)
             else tuple(h.strip().lower().rstrip(".") for h in allow_hosts if h.strip()))
    limits = UploadLimits(max_rows=max_rows, max_bytes=max_bytes, max_columns=max_columns,
                          allow_hosts=hosts, fetch_timeout=fetch_timeout)
    return [_table(name, _read_upload(name, uri, files, limits), limits)
            for name, uri in parse_upload_values(values)]
