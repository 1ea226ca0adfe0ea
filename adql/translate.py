"""Checked ADQL AST -> SQL for MySQL/MariaDB or SQLite."""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field, replace

from . import geometry as geo
from . import nodes as n
from . import shapes, stcs
from . import units as un
from .errors import ADQLError, error_at
from .functions import DOMAINS, IMPLEMENTED_UDFS, TYPE_MAP
from .parser import Query, parse
from .schema import Column, Footprint, OutputColumn, Schema, Table

DIALECTS = ("sqlite", "mysql")
MYSQL_NO_LIMIT = "18446744073709551615"
NUMERIC = frozenset({"int", "float", "null", "any"})
GEOM = frozenset({"point", "circle", "polygon"})
INT_TYPES = frozenset({"boolean", "unsignedByte", "short", "int", "long"})
FLOAT_TYPES = frozenset({"float", "double"})


@dataclass
class Translation:
    """The SQL for a query and a description of its result columns."""

    sql: str
    columns: list[OutputColumn] = field(default_factory=list)
    #: what a MariaDB "Division by 0" warning (1365, MariaDB's answer to every domain
    #: error: x / 0, MOD(x, 0), SQRT(-1), LOG(0), ACOS(2)) running this SQL means: the
    #: problems its operations can have, for the error message (voservice.query)
    domain: tuple[str, ...] = ()
    #: whether the SQL casts a value of the user's to a number or a time (MySQL: then a
    #: "Truncated incorrect ... value" warning is the query's error, not the optimizer's
    #: own, which MariaDB leaves when it pushes a condition into a view)
    casts: bool = False


class V:
    """A translated value expression."""

    __slots__ = ("sql", "kind", "dtype", "meta", "const", "parts", "unit", "cone", "col", "foot",
                 "exact", "defined")

    def __init__(self, sql, kind, dtype=None, meta=None, const=None, parts=None, unit=None,
                 cone=None, col=False, foot=None, exact=False, defined=None):
        if sql is not None and len(sql) > MAX_SQL_CHARS:  # bounds memory and time too
            raise ADQLError(f"the query is too complex: its SQL translation would exceed "
                            f"{MAX_SQL_CHARS:,} characters")
        self.sql = sql
        self.kind = kind  # int float str ts null bool pred point circle polygon any stored
        self.dtype = dtype
        self.meta = meta  # source Column/OutputColumn for plain column references
        self.const = const  # python value of numeric constants
        self.parts = parts  # geometry: list[V] (ra, dec[, r] | ra1, dec1, ...)
        self.unit = unit
        self.cone = cone  # DISTANCE(point, const point): (point V, ra0, dec0)
        self.col = col  # a plain column reference
        # a footprint column (adql.schema.Footprint): SQL of (ra, dec, size, max size)
        self.foot = foot
        # an exact numeric value (SQL's DECIMAL, PostgreSQL's numeric): a decimal literal
        # and arithmetic on such and integers; ROUND(x) and CAST to an integer round it
        # half away from zero, a double precision value half to even (as PostgreSQL)
        self.exact = exact
        # a predicate (CONTAINS, INTERSECTS): the SQL condition under which it is not
        # NULL (its geometries have every value), None if always
        self.defined = defined


class Col:
    """A column visible in a FROM scope."""

    __slots__ = ("name", "meta", "kind", "_sql", "rng", "_lazy")

    def __init__(self, name, meta, kind, sql, rng, lazy=None):
        self.name = name
        self.meta = meta
        self.kind = kind
        self._sql = sql  # list of SQL expressions (width), or None: made from _lazy
        self.rng = rng
        self._lazy = lazy  # (prefix, quoted SQL names)

    @property
    def sql(self) -> list[str]:
        s = self._sql
        if s is None:
            prefix, names = self._lazy
            s = self._sql = [prefix + x for x in names]
        return s

    @sql.setter
    def sql(self, value: list[str]) -> None:
        self._sql = value


def _lookup(holder, cols: list[Col], ident: n.Ident) -> list[Col]:
    """The columns of ``cols`` that ``ident`` names, in order, through a by-name index
    kept on ``holder`` (a Scope or Range; rebuilt when its column list changes)."""
    idx = holder.index
    if idx is None or idx[0] is not cols or idx[1] != len(cols):
        d: dict[str, list[Col]] = {}
        for c in cols:
            d.setdefault(c.name.lower(), []).append(c)
        idx = holder.index = (cols, len(cols), d)
    hits = idx[2].get(ident.name.lower(), ())
    if ident.delimited:
        return [c for c in hits if c.name == ident.name]
    return list(hits)


#: the result column of a plain column reference, by (id(column), output name)
_OUTPUTS: dict[tuple[int, str], tuple[Column, OutputColumn]] = {}
#: per published table and quoting: (table, [(name, Column, kind, quoted SQL names)])
_TABLE_COLS: dict[tuple[int, bool], tuple[Table, list]] = {}


class Range:
    """One table or derived table in a FROM clause."""

    __slots__ = ("alias", "table", "label", "cols", "sql_alias", "index")

    def __init__(self, alias, table, label, sql_alias):
        self.alias = alias  # Ident or None
        self.table = table  # Table or None
        self.label = label  # name for messages
        self.sql_alias = sql_alias
        self.cols: list[Col] = []
        self.index = None

    def matches(self, parts) -> bool:
        if self.alias is not None:
            return len(parts) == 1 and _ident_eq(parts[0], self.alias)
        if self.table is None:
            return False
        names = self.table.name.split(".")
        if len(parts) > len(names):
            return False
        return all(p.matches(nm) for p, nm in zip(parts, names[-len(parts):], strict=True))


def _ident_eq(a: n.Ident, b: n.Ident) -> bool:
    if a.delimited and b.delimited:
        return a.name == b.name
    if a.delimited:
        return b.matches(a.name)
    return a.matches(b.name)


class Scope:
    __slots__ = ("ranges", "parent", "cols", "outputs", "index")

    def __init__(self, parent=None):
        self.ranges: list[Range] = []  # every table, for qualified names
        self.parent = parent
        # the columns of the FROM items as SQL joins expose them, for unqualified names
        # and SELECT *: a USING/NATURAL join shows each join column once (merged)
        self.cols: list[Col] = []
        self.outputs = None
        self.index = None


def _kind_of(col: Column | OutputColumn) -> str:
    if getattr(col, "footprint", None) is not None:
        return "polygon"
    if col.xtype in ("point", "circle", "polygon") and getattr(col, "sql_width", 1) > 1:
        return col.xtype
    if col.xtype in ("point", "circle", "polygon", "moc", "region", "multipolygon"):
        return "stored"
    if col.xtype == "timestamp":
        return "ts"
    if col.arraysize not in (None, "1") and col.datatype not in ("char", "unicodeChar"):
        return "stored"
    if col.datatype in INT_TYPES:
        return "int"
    if col.datatype in FLOAT_TYPES:
        return "float"
    if col.datatype in ("char", "unicodeChar"):
        return "str"
    return "any"


def _suggest(name: str, candidates) -> str:
    m = difflib.get_close_matches(name.lower(), sorted({c.lower(): c for c in candidates}),
                                  n=1, cutoff=0.5)
    if not m:
        return ""
    orig = {c.lower(): c for c in candidates}[m[0]]
    return f"; did you mean '{orig}'?"


class Translator:
    def __init__(self, query: Query, schema: Schema, dialect: str):
        self.q = query
        self.schema = schema
        self.dialect = dialect
        self.my = dialect == "mysql"
        self.alias_count: dict[str, int] = {}
        self.ctes: dict[str, tuple[n.Ident, list]] = {}
        self.cte_sql: list[str] = []
        self.sub_count = 0
        self.outer_refs: list[Scope] = []  # scopes outer column references resolved in
        # translating a derived table or CTE: a footprint column (s_region) is passed
        # on with its vertices and, hidden, its centre and size (see output())
        self.carry = False
        self.domain: dict[str, None] = {}  # Translation.domain, in order
        self.variables = 0  # MySQL user variables of once()
        self.casts = False  # Translation.casts
        self.outer_join = False  # a column may be NULL whatever its declaration

    # -- quoting -------------------------------------------------------------
    def qi(self, name: str) -> str:
        if self.my:
            return "`" + name.replace("`", "``") + "`"
        return '"' + name.replace('"', '""') + '"'

    def qs(self, s: str) -> str:
        if self.my:
            s = s.replace("\\", "\\\\").replace("'", "''").replace("\x00", "\\0")
            return "'" + s + "'"
        return "'" + s.replace("'", "''") + "'"

    def new_alias(self, base: str) -> str:
        key = base.lower()
        k = self.alias_count.get(key, 0) + 1
        self.alias_count[key] = k
        return base if k == 1 else f"{base}_{k}"

    # -- queries -------------------------------------------------------------
    def top(self, limit: int | None) -> Translation:
        root = self.q.root
        for cte in root.ctes or []:
            key = cte.name.name if cte.name.delimited else cte.name.name.lower()
            self.carry = True
            sql, outs = self.query_expr(cte.query, None)
            self.carry = False
            sql_name = self.new_alias(cte.name.name)
            self.ctes[key] = (cte.name, outs, sql_name)
            self.cte_sql.append(f"{self.qi(sql_name)} AS ({sql})")
        sql, outs = self.query_expr(root, None, limit=limit, top_level=True)
        if self.cte_sql:
            sql = "WITH " + ", ".join(self.cte_sql) + " " + sql
        return Translation(sql, [o[0] for o in outs], tuple(self.domain), self.casts)

    def limit_sql(self, limit, offset) -> str:
        if limit is None and not offset:
            return ""
        lim = (MYSQL_NO_LIMIT if self.my else "-1") if limit is None else str(limit)
        out = f" LIMIT {lim}"
        if offset:
            out += f" OFFSET {offset}"
        return out

    def query_expr(self, qe: n.QueryExpr, parent, limit=None, top_level=False):
        """-> (sql, outputs); outputs: list of (OutputColumn, kind, sql_names)."""
        body = qe.body
        if isinstance(body, n.Select):
            top = body.top
            if limit is not None:
                top = limit if top is None else min(top, limit)
            return self.select(body, parent, qe.order_by, top, qe.offset)
        if isinstance(body, n.QueryExpr):
            inner_sql, outs = self.query_expr(body, parent)
            if not (qe.order_by or qe.offset or limit is not None):
                return inner_sql, outs
            alias = self.qi(self.sub_alias())
            sql = f"SELECT * FROM ({inner_sql}) AS {alias}"
            order = self.order_positions(qe.order_by, outs, alias)
            return sql + order + self.limit_sql(limit, qe.offset), outs
        sql, outs = self.setop(body, parent)
        alias = None
        if qe.order_by and self.my:  # the NULL placement names the result's columns
            alias = self.qi(self.sub_alias())
            sql = f"SELECT * FROM ({sql}) AS {alias}"
        order = self.order_positions(qe.order_by, outs, alias)
        return sql + order + self.limit_sql(limit, qe.offset), outs

    def sub_alias(self) -> str:
        self.sub_count += 1
        return f"_s{self.sub_count}"

    def set_operand(self, b, parent, right: bool, op: str):
        if isinstance(b, n.Select):
            sql, outs = self.query_expr(
                n.QueryExpr(b.line, b.col, body=b, order_by=[], offset=None, ctes=[]), parent)
            if b.top is not None:
                sql = f"SELECT * FROM ({sql}) AS {self.qi(self.sub_alias())}"
            return sql, outs
        if isinstance(b, n.SetOp):
            sql, outs = self.setop(b, parent)
            if right or b.op != op:
                sql = f"SELECT * FROM ({sql}) AS {self.qi(self.sub_alias())}"
            return sql, outs
        sql, outs = self.query_expr(b, parent)
        return f"SELECT * FROM ({sql}) AS {self.qi(self.sub_alias())}", outs

    def setop(self, s: n.SetOp, parent):
        lsql, louts = self.set_operand(s.left, parent, False, s.op)
        rsql, routs = self.set_operand(s.right, parent, True, s.op)
        lw = sum(len(o[2]) for o in louts)
        rw = sum(len(o[2]) for o in routs)
        if len(louts) != len(routs) or lw != rw:
            raise error_at(s, f"the operands of {s.op} have different numbers of columns "
                           f"({len(louts)} and {len(routs)})")
        outs = _common_outputs(s, louts, routs)
        if s.all and s.op != "UNION" and not self.my:  # SQLite has no INTERSECT/EXCEPT ALL
            return self.bag_setop(s.op, lsql, louts, rsql, routs), outs
        op = s.op + (" ALL" if s.all else "")
        return f"{lsql} {op} {rsql}", outs

    def bag_setop(self, op, lsql, louts, rsql, routs) -> str:
        """INTERSECT/EXCEPT ALL with bag semantics: number the copies of each row on
        both sides, apply the plain set operation to (row, copy number), drop the number."""
        taken = {x.lower() for outs in (louts, routs) for o in outs for x in o[2]}
        rn = "_copy"
        while rn.lower() in taken:
            rn += "_"
        sides = []
        for sql, outs in ((lsql, louts), (rsql, routs)):
            cols = ", ".join(self.qi(x) for o in outs for x in o[2])
            sides.append(f"SELECT {cols}, ROW_NUMBER() OVER (PARTITION BY {cols}) AS "
                         f"{self.qi(rn)} FROM ({sql}) AS {self.qi(self.sub_alias())}")
        cols = ", ".join(self.qi(x) for o in louts for x in o[2])
        return (f"SELECT {cols} FROM ({sides[0]} {op} {sides[1]}) AS "
                f"{self.qi(self.sub_alias())}")

    def order_positions(self, items, outs, alias: str | None) -> str:
        """ORDER BY of a set operation's (or a parenthesised query's) result, by
        position; ``alias`` is the derived table holding the result on MySQL."""
        if not items:
            return ""
        terms = []
        for it in items:
            pos = self.output_position(it.expr, outs)
            if pos is None:
                raise error_at(it.expr, "ORDER BY of a UNION/INTERSECT/EXCEPT must name a "
                               "result column or give its position")
            name = self.qi(outs[self.output_index(it.expr, outs)][2][0])
            terms.append(self.order_term(str(pos), f"{alias}.{name}" if alias else name,
                                         it.desc))
        return " ORDER BY " + ", ".join(terms)

    def order_term(self, term: str, null_sql: str | None, desc: bool) -> str:
        """An ORDER BY term with NULL where PostgreSQL puts it (and so DaCHS): after
        every value, last ascending and first descending (SQLite and MariaDB put it
        first ascending).  ``null_sql`` is the value's SQL, None if it cannot be NULL."""
        d = " DESC" if desc else ""
        if null_sql is None:
            return term + d
        if self.my:  # no NULLS LAST there
            return f"({null_sql} IS NULL){d}, {term}{d}"
        return f"{term}{d} NULLS {'FIRST' if desc else 'LAST'}"

    def may_be_null(self, v: V) -> bool:
        """Whether a value may be NULL: not a number or string constant, nor a column
        declared NOT NULL (unless an outer join of the query may give it NULL)."""
        if v.const is not None:
            return False
        return not (v.col and v.meta is not None and not v.meta.nullable
                    and not self.outer_join)

    def output_index(self, e, outs) -> int | None:
        """Index in ``outs`` of the output that ORDER BY's ``e`` names or numbers."""
        pos = self.output_position(e, outs)
        if pos is None:
            return None
        widths = 0
        for i, o in enumerate(outs):
            if widths + 1 == pos:
                return i
            widths += len(o[2])
        return None  # pragma: no cover

    def output_position(self, e, outs):
        """SQL position (1-based, widths counted) of an output named/numbered by e."""
        idx = None
        if isinstance(e, n.Literal) and e.kind == "int":
            if not 1 <= e.value <= len(outs):
                raise error_at(e, f"ORDER BY position {e.value} is not between 1 and "
                               f"{len(outs)}")
            idx = e.value - 1
        elif isinstance(e, n.ColumnRef) and len(e.parts) == 1:
            hits = [i for i, o in enumerate(outs) if e.parts[0].matches(o[0].name)]
            if len(hits) == 1:
                idx = hits[0]
            elif len(hits) > 1:
                raise error_at(e, f"ambiguous column '{e.parts[0]}' in ORDER BY")
        if idx is None:
            return None
        return 1 + sum(len(o[2]) for o in outs[:idx])

    # -- FROM ----------------------------------------------------------------
    def from_item(self, t, scope: Scope) -> tuple[str, list[Range], list[Col]]:
        """-> (sql, the tables inside, the columns the item exposes)."""
        if isinstance(t, n.TableName):
            sql, rngs = self.table_ref(t, scope)
            return sql, rngs, list(rngs[0].cols)
        if isinstance(t, n.DerivedTable):
            save, self.carry = self.carry, True
            sql, outs = self.query_expr(t.query, scope.parent)
            self.carry = save
            alias = self.new_alias(t.alias.name)
            rng = Range(t.alias, None, t.alias.name, self.qi(alias))
            for oc, kind, names in outs:
                rng.cols.append(Col(oc.name, oc, kind,
                                    [f"{rng.sql_alias}.{self.qi(x)}" for x in names], rng))
            return f"({sql}) AS {rng.sql_alias}", [rng], list(rng.cols)
        return self.join(t, scope)

    def table_ref(self, t: n.TableName, scope: Scope):
        parts = t.parts
        if len(parts) == 1:
            key = parts[0].name if parts[0].delimited else parts[0].name.lower()
            cte = self.ctes.get(key)
            if cte is not None:
                label = t.alias.name if t.alias else cte[0].name
                rng = Range(t.alias or cte[0], None, label, self.qi(self.new_alias(label)))
                for oc, kind, names in cte[1]:
                    rng.cols.append(Col(oc.name, oc, kind,
                                        [f"{rng.sql_alias}.{self.qi(x)}" for x in names], rng))
                return f"{self.qi(cte[2])} AS {rng.sql_alias}", [rng]
        found = [] if len(parts) > 2 else self.schema.candidates(
            [(p.name, p.delimited) for p in parts])
        dotted = ".".join(p.name for p in parts)
        if not found:
            names = [tb.name for tb in self.schema] + [tb.table_name for tb in self.schema]
            raise error_at(t, f"unknown table '{dotted}'" + _suggest(dotted, names))
        if len(found) > 1:
            raise error_at(t, f"ambiguous table name '{dotted}' (matches "
                           + ", ".join(x.name for x in found) + ")")
        table: Table = found[0]
        label = t.alias.name if t.alias else table.table_name
        rng = Range(t.alias, table, label, self.qi(self.new_alias(label)))
        key = (id(table), self.my)
        entry = _TABLE_COLS.get(key)
        if entry is None or entry[0] is not table:
            data = []
            for c in table.columns:
                names = [c.name] + [f"{c.name}__{i}" for i in range(2, c.sql_width + 1)]
                data.append((c.name, c, _kind_of(c), [self.qi(x) for x in names]))
            if len(_TABLE_COLS) > 4096:
                _TABLE_COLS.clear()
            entry = _TABLE_COLS[key] = (table, data)
        prefix = rng.sql_alias + "."
        rng.cols = [Col(name, c, kind, None, rng, (prefix, q)) for name, c, kind, q in entry[1]]
        return f"{table.sql} AS {rng.sql_alias}", [rng]

    def join(self, j: n.Join, scope: Scope):
        lsql, lr, lcols = self.from_item(j.left, scope)
        rsql, rr, rcols = self.from_item(j.right, scope)
        if isinstance(j.right, n.Join):
            rsql = f"({rsql})"
        kind = j.kind
        self.outer_join = self.outer_join or kind in ("LEFT", "RIGHT", "FULL")
        emulate = kind == "FULL" and self.my  # MariaDB has no FULL JOIN
        kw = {"INNER": "JOIN", "LEFT": "LEFT OUTER JOIN", "RIGHT": "RIGHT OUTER JOIN",
              "FULL": "FULL OUTER JOIN", "CROSS": "CROSS JOIN"}[kind]
        ranges = lr + rr
        if kind == "CROSS":
            return f"{lsql} CROSS JOIN {rsql}", ranges, lcols + rcols
        using_names = None
        if j.natural:
            lnames = {c.name.lower() for c in lcols}
            using_names = []
            for c in rcols:
                if c.name.lower() in lnames and c.name.lower() not in \
                        [u.lower() for u in using_names]:
                    using_names.append(c.name)
            using_idents = [n.Ident(j.line, j.col, x, False) for x in using_names]
        elif j.using is not None:
            using_idents = j.using
        else:
            using_idents = None
        if using_idents is not None:
            # the join columns are those the two sides expose: after a USING join the
            # merged column, so that USING/NATURAL joins chain
            conds = []
            pairs = []
            for u in using_idents:
                lc = self.find_in(lcols, u, "left")
                rc = self.find_in(rcols, u, "right")
                if len(lc.sql) != 1 or len(rc.sql) != 1:
                    raise error_at(u, "cannot join on a geometry column")
                if any(lc is p[1] for p in pairs):
                    continue  # USING (k, k)
                conds.append(f"{lc.sql[0]} = {rc.sql[0]}")
                pairs.append((u, lc, rc))
            cond = " AND ".join(conds) if conds else "1 = 1"
            if emulate:
                sql = self.full_join(lsql, lr, lcols, rsql, rr, rcols, cond)
            else:
                sql = f"{lsql} {kw} {rsql} ON {cond}"
            merged = []
            for _u, lc, rc in pairs:
                if kind == "FULL":
                    merged_sql = f"COALESCE({lc.sql[0]}, {rc.sql[0]})"
                else:
                    merged_sql = (rc if kind == "RIGHT" else lc).sql[0]
                merged.append(Col(lc.name, lc.meta, lc.kind, [merged_sql], None))
            joined = {id(c) for _u, lc, rc in pairs for c in (lc, rc)}
            cols = merged + [c for c in lcols + rcols if id(c) not in joined]
            return sql, ranges, cols
        cond = "1 = 1"
        if j.on is not None:
            sub = Scope(scope.parent)
            sub.ranges = ranges
            sub.cols = lcols + rcols
            start = len(self.outer_refs)
            cond = self.cond(j.on, sub)
            if emulate and _ancestor_hit(self.outer_refs[start:], scope.parent):
                raise error_at(j.on, "the ON condition of a FULL OUTER JOIN cannot refer to "
                               "an enclosing query on this database")
        if emulate:
            return self.full_join(lsql, lr, lcols, rsql, rr, rcols, cond), ranges, \
                lcols + rcols
        return f"{lsql} {kw} {rsql} ON {cond}", ranges, lcols + rcols

    def full_join(self, lsql, lr, lcols, rsql, rr, rcols, cond) -> str:
        """FULL OUTER JOIN as a derived table: the LEFT JOIN UNION ALL the right rows
        without a match.  The Cols of both sides (every table's, and the merged USING
        columns the sides expose) are rewritten to the derived table's generated columns."""
        sides = (
            [c for r in lr for c in r.cols] + lcols,
            [c for r in rr for c in r.cols] + rcols,
        )
        alias = self.qi(self.new_alias("_full"))
        names: dict[tuple, str] = {}
        both, right_only, done = [], [], set()
        for side, cols in enumerate(sides):
            for c in cols:
                if id(c) in done:
                    continue
                done.add(id(c))
                new = []
                for x in c.sql:
                    if (side, x) not in names:
                        nm = names[side, x] = self.qi(f"c{len(names) + 1}")
                        both.append(f"{x} AS {nm}")
                        right_only.append(f"{x if side else 'NULL'} AS {nm}")
                    new.append(f"{alias}.{names[side, x]}")
                c.sql = new
        return (f"(SELECT {', '.join(both)} FROM {lsql} LEFT OUTER JOIN {rsql} ON {cond} "
                f"UNION ALL SELECT {', '.join(right_only)} FROM {rsql} WHERE NOT EXISTS "
                f"(SELECT 1 FROM {lsql} WHERE {cond})) AS {alias}")

    def find_in(self, cols, ident: n.Ident, side: str) -> Col:
        hits = [c for c in cols if ident.matches(c.name)]
        if not hits:
            raise error_at(ident, f"column '{ident}' of the join is not in the {side} table")
        if len(hits) > 1:
            raise error_at(ident, f"column '{ident}' is ambiguous in the {side} table")
        return hits[0]

    # -- SELECT --------------------------------------------------------------
    def select(self, s: n.Select, parent, order_by, top, offset):
        carry, self.carry = self.carry, False  # not into subqueries of this SELECT
        try:
            return self.select_body(s, parent, order_by, top, offset, carry)
        finally:
            self.carry = carry

    def select_body(self, s: n.Select, parent, order_by, top, offset, carry: bool):
        scope = Scope(parent)
        from_sql = []
        for t in s.from_:
            sql, rngs, cols = self.from_item(t, scope)
            if isinstance(t, n.Join) and len(s.from_) > 1:
                sql = f"({sql})"
            from_sql.append(sql)
            scope.ranges.extend(rngs)
            scope.cols.extend(cols)
        # select list
        items = []  # (name or None, V, is plain col, node)
        for it in s.items:
            if isinstance(it, n.QualifiedStar):
                for col in self.star(it, scope, s.from_):
                    items.append((col.name, self.col_value(col), it))
            else:
                v = self.value(it.expr, scope)
                if v.kind == "bool":
                    raise error_at(it.expr, "a condition cannot be a select item")
                if v.kind == "pred":
                    v = self.pred_int(v)
                name = it.alias.name if it.alias is not None else self.auto_name(it.expr, v)
                items.append((name, v, it))
        outs = []
        used: set[str] = set()
        sel_sql = []
        gen = 0
        named = []
        for name, v, _node in items:
            if name is None:
                gen += 1
                name = f"col_{gen}"
            base, k = name, 1
            while name.lower() in used:
                k += 1
                name = f"{base}_{k}"
            used.add(name.lower())
            named.append((name, v))
        # a geometry takes several SQL columns: the output name, then hidden ones
        # (name__2, ...) that must not collide with any output name or each other
        taken = set(used)
        for name, v in named:
            oc, sqls = self.output(name, v, carry)
            names = [name]
            for i in range(2, len(sqls) + 1):
                base = hidden = f"{name}__{i}" if i <= oc.sql_width else \
                    f"{name}__{('ra', 'dec', 'size')[i - oc.sql_width - 1]}"
                k = 1
                while hidden.lower() in taken:
                    k += 1
                    hidden = f"{base}_{k}"
                taken.add(hidden.lower())
                names.append(hidden)
            if len(names) > oc.sql_width:  # a carried footprint: its hidden columns
                oc = replace(oc, footprint=Footprint(*names[oc.sql_width:],
                                                     oc.footprint.max_size_sql))
            for x, nm in zip(sqls, names, strict=True):
                sel_sql.append(f"{x} AS {self.qi(nm)}")
            outs.append((oc, v.kind, names))
        scope.outputs = (items, outs)
        sql = "SELECT " + ("DISTINCT " if s.quantifier == "DISTINCT" else "")
        sql += ", ".join(sel_sql) + " FROM " + " JOIN ".join(from_sql)
        if s.where is not None:
            sql += " WHERE " + self.cond(s.where, scope)
        if s.group_by:
            terms = []
            for g in s.group_by:
                terms.extend(self.group_term(g, scope, items, outs))
            sql += " GROUP BY " + ", ".join(terms)
        if s.having is not None:
            sql += " HAVING " + self.cond(s.having, scope, allow_alias=True)
        if order_by:
            terms = []
            for o in order_by:
                pos = self.output_position(o.expr, outs)
                if pos is not None:
                    term = str(pos)
                    v = named[self.output_index(o.expr, outs)][1]
                    v = v.parts[0] if v.kind in GEOM else v
                else:
                    v = self.value(o.expr, scope, allow_alias=True)
                    if v.kind in GEOM or v.kind in ("bool",):
                        raise error_at(o.expr, "cannot ORDER BY a geometry or a condition")
                    if v.kind == "pred":
                        v = self.pred_int(v)
                    term = v.sql
                null_sql = v.sql if self.may_be_null(v) else None
                terms.append(self.order_term(term, null_sql, o.desc))
            sql += " ORDER BY " + ", ".join(terms)
        sql += self.limit_sql(top, offset)
        return sql, outs

    def star(self, it: n.QualifiedStar, scope: Scope, from_):
        if it.parts is None:
            return list(scope.cols)
        hits = [r for r in scope.ranges if r.matches(it.parts)]
        dotted = ".".join(p.name for p in it.parts)
        if not hits:
            raise error_at(it, f"unknown table '{dotted}' in {dotted}.*"
                           + _suggest(dotted, [r.label for r in scope.ranges]))
        if len(hits) > 1:
            raise error_at(it, f"ambiguous table '{dotted}' in {dotted}.*")
        return list(hits[0].cols)

    def auto_name(self, e, v: V) -> str | None:
        if isinstance(e, n.ColumnRef):
            return e.parts[-1].name if v.meta is None else v.meta.name
        if isinstance(e, n.FuncCall):
            return e.name.lower()
        if isinstance(e, n.Point | n.Circle | n.Polygon | n.Box):
            return type(e).__name__.lower()
        return None

    def col_value(self, col: Col) -> V:
        if col.kind in GEOM:
            parts = [V(x, "float", dtype="double") for x in col.sql]
            fp = getattr(col.meta, "footprint", None)
            foot = None
            if fp is not None and col.rng is not None:
                # the centre and size columns of its table, or the hidden columns a
                # derived table or CTE passes on with it
                foot = tuple(f"{col.rng.sql_alias}.{self.qi(x)}" for x in fp[:3])
                foot += (fp.max_size_sql,)
                parts = parts[:col.meta.sql_width]
            return V(None, col.kind, meta=col.meta, parts=parts, foot=foot)
        return V(col.sql[0], col.kind, dtype=col.meta.datatype, meta=col.meta,
                 unit=col.meta.unit, col=True)

    def output(self, name: str, v: V, carry: bool = False) -> tuple[OutputColumn, list[str]]:
        m = v.meta
        if v.foot is not None and m is not None and carry:
            # into a derived table or CTE: the vertices, then (hidden) centre and size
            sqls = [p.sql for p in v.parts]
            oc = OutputColumn(name, m.datatype, m.arraysize, m.xtype, m.unit, m.ucd, m.utype,
                              m.description, False, len(sqls),
                              Footprint("", "", "", v.foot[3]))
            return oc, sqls + list(v.foot[:3])
        if v.foot is not None and m is not None:
            # a footprint column (ObsCore's s_region, adql:REGION) as an STC-S string
            return OutputColumn(name, m.datatype, m.arraysize, m.xtype, m.unit, m.ucd, m.utype,
                                m.description, False, 1), [self.stcs_polygon(v.parts)]
        if v.kind in GEOM:
            sqls = [p.sql for p in v.parts]
            arr = {"point": "2", "circle": "3"}.get(v.kind, "*")
            if m is not None:
                return OutputColumn(name, "double", arr, v.kind, m.unit or "deg", m.ucd,
                                    m.utype, m.description, False, len(sqls)), sqls
            return OutputColumn(name, "double", arr, v.kind, "deg", sql_width=len(sqls)), sqls
        if m is not None:
            key = (id(m), name)
            hit = _OUTPUTS.get(key)
            if hit is None or hit[0] is not m:
                if len(_OUTPUTS) > 65536:
                    _OUTPUTS.clear()
                hit = _OUTPUTS[key] = (m, OutputColumn(
                    name, m.datatype, m.arraysize, m.xtype, m.unit, m.ucd, m.utype,
                    m.description, False, 1, nullable=m.nullable))
            return hit[1], [v.sql]
        kind = v.kind
        sql = v.sql
        if kind in ("int", "float") and not self.my and v.const is None and \
                v.dtype in (None, "long", "double"):
            # SQLite gives a REAL for an integer beyond 64 bits and Inf for a double
            # beyond its range, where SQL raises: checked where the value comes out
            # (not values of 32 bits or fewer: their sums and differences fit)
            sql = f"ADQL_OUT_{'INT' if kind == 'int' else 'FLOAT'}({sql})"
        if kind == "int":
            return OutputColumn(name, v.dtype if v.dtype in INT_TYPES else "long",
                                unit=un.output(v.unit)), [sql]
        if kind == "float":
            return OutputColumn(name, v.dtype if v.dtype in FLOAT_TYPES else "double",
                                unit=un.output(v.unit)), [sql]
        if kind == "ts":
            return OutputColumn(name, "char", "*", "timestamp"), [v.sql]
        return OutputColumn(name, "char", "*", unit=un.output(v.unit)), [v.sql]

    def group_term(self, g, scope, items, outs):
        if isinstance(g, n.Literal) and g.kind == "int":
            pos = self.output_position(g, outs)
            width = len(outs[g.value - 1][2])
            return [str(pos + i) for i in range(width)]
        if isinstance(g, n.ColumnRef) and len(g.parts) == 1:
            try:
                v = self.value(g, scope)
            except ADQLError:
                for name, v2, _ in items:
                    if g.parts[0].matches(name):
                        return [p.sql for p in v2.parts] if v2.kind in GEOM else [v2.sql]
                raise
        else:
            v = self.value(g, scope)
        if v.kind in GEOM:
            return [p.sql for p in v.parts]
        return [v.sql]

    # -- names ---------------------------------------------------------------
    def column(self, e: n.ColumnRef, scope: Scope, allow_alias=False) -> V:
        parts = e.parts
        name = parts[-1]
        s = scope
        while s is not None:
            if len(parts) == 1:
                # the columns the FROM items expose: one merged column for a USING join,
                # which wins over same-named columns of other tables
                hits = _lookup(s, s.cols, name)
                if len(hits) > 1 and sum(c.rng is None for c in hits) == 1:
                    hits = [c for c in hits if c.rng is None]
                if len(hits) > 1:
                    labels = (c.rng.label if c.rng is not None else "a USING/NATURAL join"
                              for c in hits)
                    raise error_at(e, f"ambiguous column '{name}' (in "
                                   + ", ".join(dict.fromkeys(labels))
                                   + "); qualify it with a table name")
            else:
                rngs = [r for r in s.ranges if r.matches(parts[:-1])]
                if len(rngs) > 1:
                    raise error_at(e, f"ambiguous table '{'.'.join(p.name for p in parts[:-1])}'")
                if rngs:
                    hits = _lookup(rngs[0], rngs[0].cols, name)
                    if not hits:
                        raise error_at(name, f"unknown column '{name}' in table "
                                       f"'{rngs[0].label}'"
                                       + _suggest(name.name, [c.name for c in rngs[0].cols]))
                    if len(hits) > 1:
                        raise error_at(e, f"ambiguous column '{name}' in '{rngs[0].label}'")
                else:
                    hits = []
            if hits:
                if s is not scope:
                    self.outer_refs.append(s)
                return self.col_value(hits[0])
            if allow_alias and s is scope and s.outputs is not None and len(parts) == 1:
                for nm, v, _ in s.outputs[0]:
                    if name.matches(nm):
                        return v
            s = s.parent
        if len(parts) > 1:
            q = ".".join(p.name for p in parts[:-1])
            labels = [r.label for r in scope.ranges]
            raise error_at(e, f"unknown table '{q}' in column reference '{q}.{name}'"
                           + _suggest(q, labels))
        cands = [c.name for r in scope.ranges for c in r.cols]
        where = ""
        if len(scope.ranges) == 1:
            rng = scope.ranges[0]
            where = f" in table '{rng.table.name if rng.table else rng.label}'"
        raise error_at(e, f"unknown column '{name}'{where}" + _suggest(name.name, cands))

    # -- conditions ----------------------------------------------------------
    def cond(self, e, scope, allow_alias=False) -> str:
        v = self.value(e, scope, allow_alias)
        if v.kind != "bool":
            raise error_at(e, "a condition is needed here, not a value")
        return v.sql

    # -- values --------------------------------------------------------------
    def value(self, e, scope: Scope, allow_alias=False) -> V:  # noqa: C901
        t = type(e)
        if t is n.Literal:
            return self.literal(e)
        if t is n.ColumnRef:
            return self.column(e, scope, allow_alias)
        if t is n.BinOp:
            return self.binop(e, scope, allow_alias)
        if t is n.Unary:
            v = self.value(e.operand, scope, allow_alias)
            if e.op == "~":
                self.need(v, ("int", "null", "any"), e.operand, "~")
                sql = f"CAST(~({v.sql}) AS SIGNED)" if self.my else f"(~{v.sql})"
                return V(sql, "int", dtype="long")
            self.need(v, NUMERIC, e.operand, "arithmetic")
            if v.const is not None:
                c = -v.const if e.op == "-" else v.const
                if isinstance(c, int) and not INT_RANGES["BIGINT"][0] <= c <= INT_RANGES[
                        "BIGINT"][1]:
                    raise error_at(e, "numeric value out of range: - overflows")
                return V(self.numlit(c), v.kind, dtype=v.dtype, const=c, exact=v.exact)
            return V(f"({e.op}{v.sql})", v.kind, dtype=v.dtype, unit=v.unit, exact=v.exact)
        if t is n.Compare:
            return self.compare(e, scope, allow_alias)
        if t is n.BoolOp:
            a = self.cond(e.left, scope, allow_alias)
            b = self.cond(e.right, scope, allow_alias)
            return V(f"({a} {e.op} {b})", "bool")
        if t is n.Not:
            return V(f"(NOT {self.cond(e.operand, scope, allow_alias)})", "bool")
        if t is n.Between:
            x, lo, hi = (self.scalar(a, scope, allow_alias) for a in (e.expr, e.low, e.high))
            self.comparable(x, lo, e)
            self.comparable(x, hi, e)
            neg = "NOT " if e.negated else ""
            return V(f"({x.sql} {neg}BETWEEN {lo.sql} AND {hi.sql})", "bool")
        if t is n.InList:
            x = self.scalar(e.expr, scope, allow_alias)
            vs = []
            for i in e.items:
                v = self.scalar(i, scope, allow_alias)
                self.comparable(x, v, i)
                vs.append(v)
            neg = "NOT " if e.negated else ""
            items = ", ".join(v.sql for v in vs)
            if self.my and "str" in {x.kind, *(v.kind for v in vs)}:
                # code points, trailing spaces count (MariaDB's collations pad, and a
                # literal has the connection's case-insensitive one); a column keeps
                # its index through a plain IN beside the exact one
                exact = (f"{self.exact_text(x.sql)} {neg}IN ("
                         + ", ".join(self.exact_text(v.sql) for v in vs) + ")")
                if x.col and not e.negated:
                    return V(f"({x.sql} IN ({items}) AND {exact})", "bool")
                return V(f"({exact})", "bool")
            return V(f"({x.sql} {neg}IN ({items}))", "bool")
        if t is n.InSub:
            x = self.scalar(e.expr, scope, allow_alias)
            sql = self.subquery(e.query, scope, e, in_pred=True)
            neg = "NOT " if e.negated else ""
            return V(f"({x.sql} {neg}IN ({sql}))", "bool")
        if t is n.Exists:
            sql, _ = self.query_expr(e.query, scope)
            return V(f"(EXISTS ({sql}))", "bool")
        if t is n.Subquery:
            sql, outs = self.query_expr(e.query, scope)
            if len(outs) != 1 or len(outs[0][2]) != 1:
                raise error_at(e, "a subquery used as a value must return one column")
            oc, kind, _ = outs[0]
            return V(f"({sql})", kind if kind in ("int", "float", "str", "ts") else "any",
                     dtype=oc.datatype, unit=oc.unit)
        if t is n.Like:
            return self.like(e, scope, allow_alias)
        if t is n.IsNull:
            v = self.value(e.expr, scope, allow_alias)
            neg = "NOT " if e.negated else ""
            if v.kind in GEOM:
                sql = f"({v.parts[0].sql} IS {neg}NULL)"
            elif v.kind in ("bool", "pred"):
                raise error_at(e.expr, "IS NULL needs a value, not a condition")
            else:
                sql = f"({v.sql} IS {neg}NULL)"
            return V(sql, "bool")
        if t is n.Cast:
            return self.cast(e, scope, allow_alias)
        if t is n.Case:
            return self.case(e, scope, allow_alias)
        if t is n.FuncCall:
            return self.func(e, scope, allow_alias)
        if t in (n.Point, n.Circle, n.Box, n.Polygon):
            return self.geometry(e, scope, allow_alias)
        if t is n.Region:
            return self.region(e)
        raise error_at(e, f"unsupported expression {t.__name__}")  # pragma: no cover

    def scalar(self, e, scope, allow_alias=False) -> V:
        v = self.value(e, scope, allow_alias)
        if v.kind in GEOM or v.kind == "stored":
            raise error_at(e, "a geometry cannot be used here")
        if v.kind == "bool":
            raise error_at(e, "a condition cannot be used as a value here")
        if v.kind == "pred":
            return self.pred_int(v)
        return v

    def pred_int(self, p: V) -> V:
        """CONTAINS / INTERSECTS as the value ADQL gives it: 1 or 0, NULL when one of
        its geometries lacks a value."""
        one = f"CASE WHEN {p.sql} THEN 1 ELSE 0 END"
        sql = one if p.defined is None else f"(CASE WHEN {p.defined} THEN {one} END)"
        return V(sql, "int", dtype="int")

    def need(self, v: V, kinds, node, what: str) -> None:
        if v.kind not in kinds:
            kindname = {"str": "a string", "ts": "a timestamp", "bool": "a condition",
                        "point": "a POINT", "circle": "a CIRCLE", "polygon": "a POLYGON",
                        "stored": "a geometry column", "int": "a number", "float": "a number",
                        "pred": "a geometric predicate"}.get(v.kind, v.kind)
            raise error_at(node, f"type error: {what} cannot take {kindname}")

    def comparable(self, a: V, b: V, node) -> None:
        num = ("int", "float")
        if (a.kind in num and b.kind in ("str", "ts")) or (b.kind in num and a.kind in
                                                            ("str", "ts")):
            raise error_at(node, "type error: cannot compare a number with a string")

    def numlit(self, c) -> str:
        if isinstance(c, bool):
            c = int(c)
        if isinstance(c, int):
            return str(c) if c >= 0 else f"({c})"
        if not math.isfinite(c):
            raise ADQLError("numeric overflow in a constant expression")
        s = geo.num(c)
        if self.my and "e" not in s:  # 1.5 is DECIMAL on MySQL, 1.5e0 DOUBLE as in ADQL
            s += "e0"
        return s if c >= 0 else f"({s})"

    def literal(self, e: n.Literal) -> V:
        k = e.kind
        if k == "int":
            return V(self.numlit(e.value), "int", dtype="long", const=e.value)
        if k == "float":
            if not math.isfinite(e.value):
                raise error_at(e, f"number out of range: {e.text}")
            return V(self.numlit(e.value), "float", dtype="double", const=e.value, exact=True)
        if k == "str":
            return V(self.qs(e.value), "str", dtype="char", const=e.value)
        return V("NULL", "null")

    def binop(self, e: n.BinOp, scope, allow_alias) -> V:
        a = self.scalar(e.left, scope, allow_alias)
        b = self.scalar(e.right, scope, allow_alias)
        op = e.op
        if op == "||":
            for v, node in ((a, e.left), (b, e.right)):
                self.need(v, ("str", "int", "float", "null", "any", "ts"), node, "||")
            if self.my:
                sql = f"CONCAT({a.sql}, {b.sql})"
            else:  # doubles written as MariaDB writes them
                sa, sb = (self.text_sql(v) if v.kind == "float" else v.sql for v in (a, b))
                sql = f"({sa} || {sb})"
            return V(sql, "str", dtype="char")
        if op in ("&", "|", "^"):
            for v, node in ((a, e.left), (b, e.right)):
                self.need(v, ("int", "null", "any"), node, f"bitwise {op}")
            if self.my:
                return V(f"CAST(({a.sql} {op} {b.sql}) AS SIGNED)", "int", dtype="long")
            if op == "^":  # SQLite has no XOR operator
                return V(f"ADQL_XOR({a.sql}, {b.sql})", "int", dtype="long")
            return V(f"({a.sql} {op} {b.sql})", "int", dtype="long")
        for v, node in ((a, e.left), (b, e.right)):
            self.need(v, NUMERIC, node, f"arithmetic ({op})")
        kind = "int" if a.kind == "int" and b.kind == "int" else "float"
        exact = kind == "float" and _exact(a) and _exact(b)
        if a.const is not None and b.const is not None and not (
                isinstance(a.const, str) or isinstance(b.const, str)):
            if op == "/" and b.const == 0:
                raise error_at(e, "division by zero")
            c = _fold(op, a.const, b.const)
            if c is None:
                raise error_at(e, f"numeric value out of range: {e.op} overflows")
            return V(self.numlit(c), "int" if isinstance(c, int) else "float",
                     dtype="long" if isinstance(c, int) else "double", const=c, exact=exact)
        bsql = b.sql
        if op == "/" and not (isinstance(b.const, int | float) and b.const != 0):
            if self.my:  # x / 0 is NULL and a warning there (voservice.query checks)
                self.domain["division by zero"] = None
            else:
                bsql = f"ADQL_NZ({b.sql})"
        dtype = "long" if kind == "int" else "double"
        if kind == "int" and a.dtype == b.dtype and a.dtype in INT_TYPES and op != "*":
            dtype = a.dtype if a.dtype != "boolean" else "long"
        ac, bc = a.const is not None, b.const is not None
        unit = (un.add if op in ("+", "-") else un.mul if op == "*" else un.div)(
            a.unit, b.unit, ac, bc)
        if kind == "int" and self.my and op == "/":
            sql = f"({a.sql} DIV {bsql})"
        else:
            sql = f"({a.sql} {op} {bsql})"
        return V(sql, kind, dtype=dtype, unit=unit, exact=exact)

    def compare(self, e: n.Compare, scope, allow_alias) -> V:
        a = self.value(e.left, scope, allow_alias)
        b = self.value(e.right, scope, allow_alias)
        op = e.op
        # CONTAINS(...) = 1 and friends
        for p, other in ((a, b), (b, a)):
            if p.kind == "pred" and other.const in (0, 1) and op in ("=", "<>"):
                truth = (other.const == 1) == (op == "=")
                if p.defined is None:
                    return V(p.sql if truth else f"(NOT {p.sql})", "bool")
                # NULL for a row without a position, never true (a cone keeps its
                # bounding box on the indexed columns: no CASE around it)
                if truth:
                    return V(f"({p.sql} AND {p.defined})", "bool")
                return V(f"(CASE WHEN {p.defined} THEN NOT {p.sql} END)", "bool")
        # DISTANCE(...) < r  -> cone
        for d, other, flip in ((a, b, False), (b, a, True)):
            if d.cone is not None and other.const is not None and not isinstance(
                    other.const, str):
                o = _flip(op) if flip else op
                if o in ("<", "<="):
                    pt, ra0, dec0 = d.cone
                    r = float(other.const)
                    if r <= 0 and o == "<":
                        return V("(1 = 0)", "bool")
                    if r < 0:
                        return V("(1 = 0)", "bool")
                    return V(self.cone(pt, ra0, dec0, r, strict=o == "<"), "bool")
        for v, node in ((a, e.left), (b, e.right)):
            if v.kind in GEOM or v.kind == "stored":
                raise error_at(node, "geometries cannot be compared")
            if v.kind == "bool":
                raise error_at(node, "a condition cannot be compared")
        a = self.scalar(e.left, scope, allow_alias) if a.kind == "pred" else a
        b = self.scalar(e.right, scope, allow_alias) if b.kind == "pred" else b
        self.comparable(a, b, e)
        if isinstance(a.const, str) and isinstance(b.const, str):  # binary, no padding
            truth = _STR_OPS[op](a.const, b.const)
            return V("(1 = 1)" if truth else "(1 = 0)", "bool")
        if self.my and "str" in (a.kind, b.kind) and {a.kind, b.kind} <= {"str", "any", "null"}:
            # compare code points ('a' < 'B', 'abc' <> 'ABC'): a binary collation on the
            # side that is not a column (a column of SKVO's tables has it already, and
            # keeps its index)
            if not b.col or a.col:
                b = V(f"(CONVERT({b.sql} USING utf8mb4) COLLATE utf8mb4_bin)", b.kind)
            else:
                a = V(f"(CONVERT({a.sql} USING utf8mb4) COLLATE utf8mb4_bin)", a.kind)
        if self.my and op in ("=", "<>") and "str" in (a.kind, b.kind) and \
                {a.kind, b.kind} <= {"str", "any", "null"}:
            # MariaDB's collations pad with spaces ('abc' = 'abc '): the lengths must
            # agree too (the = still uses an index); a long expression, which that would
            # repeat (and nested comparisons repeat again), gets a last character that
            # is no space instead
            if max(len(a.sql), len(b.sql)) > 200:
                return V(f"({self.exact_text(a.sql)} {op} {self.exact_text(b.sql)})",
                         "bool")
            if op == "=":
                return V(f"({a.sql} = {b.sql} AND CHAR_LENGTH({a.sql}) = "
                         f"CHAR_LENGTH({b.sql}))", "bool")
            return V(f"({a.sql} <> {b.sql} OR CHAR_LENGTH({a.sql}) <> "
                     f"CHAR_LENGTH({b.sql}))", "bool")
        return V(f"({a.sql} {op} {b.sql})", "bool")

    def like(self, e: n.Like, scope, allow_alias) -> V:
        x = self.scalar(e.expr, scope, allow_alias)
        p = self.scalar(e.pattern, scope, allow_alias)
        for v, node in ((x, e.expr), (p, e.pattern)):
            self.need(v, ("str", "null", "any", "ts"), node, "LIKE")
        neg = "NOT " if e.negated else ""
        if self.my:
            if isinstance(p.const, str):
                pat = self.qs(p.const.replace("\\", "\\\\"))
            else:
                pat = f"REPLACE({p.sql}, '\\\\', '\\\\\\\\')"
            # a binary collation, not binary strings: '_' is one character, not one byte
            # (string literals come with the connection's case- and accent-insensitive
            # collation, a column of SKVO's tables has utf8mb4_bin and keeps its index)
            if e.ci:
                return V(f"(LOWER(CONVERT({x.sql} USING utf8mb4)) COLLATE utf8mb4_bin "
                         f"{neg}LIKE LOWER(CONVERT({pat} USING utf8mb4)))", "bool")
            xs = x.sql if x.col else f"(CONVERT({x.sql} USING utf8mb4) COLLATE utf8mb4_bin)"
            return V(f"({xs} {neg}LIKE (CONVERT({pat} USING utf8mb4) COLLATE utf8mb4_bin))",
                     "bool")
        if e.ci:  # SQLite's LIKE folds ASCII letters only: both sides lowered as LOWER does
            return V(f"(ADQL_LOWER({x.sql}) {neg}LIKE ADQL_LOWER({p.sql}))", "bool")
        if isinstance(p.const, str):
            g = "".join({"%": "*", "_": "?", "*": "[*]", "?": "[?]", "[": "[[]"}.get(ch, ch)
                        for ch in p.const)
            return V(f"({x.sql} {neg}GLOB {self.qs(g)})", "bool")
        return V(f"({neg}ADQL_LIKE({x.sql}, {p.sql}))", "bool")

    def subquery(self, q, scope, node, in_pred=False) -> str:
        sql, outs = self.query_expr(q, scope)
        if len(outs) != 1 or len(outs[0][2]) != 1:
            raise error_at(node, "the subquery must return exactly one column")
        if in_pred and self.my and " LIMIT " in sql:
            sql = f"SELECT * FROM ({sql}) AS {self.qi(self.sub_alias())}"
        return sql

    def cast(self, e: n.Cast, scope, allow_alias) -> V:
        tname = e.type
        kind, dtype, arraysize, xtype = TYPE_MAP[tname]
        if kind in GEOM:
            if not (isinstance(e.expr, n.Literal) and e.expr.kind == "str"):
                raise error_at(e, f"only string literals can be cast to {tname}")
            try:
                nums = [float(x) for x in e.expr.value.replace(",", " ").split()]
            except ValueError:
                raise error_at(e.expr, f"cannot read {tname} from {e.expr.value!r}") from None
            want = {"point": 2, "circle": 3}.get(kind)
            if (want and len(nums) != want) or (kind == "polygon" and (
                    len(nums) < 6 or len(nums) % 2)):
                raise error_at(e.expr, f"wrong number of values for a {tname}")
            parts = [V(self.numlit(x), "float", dtype="double", const=x) for x in nums]
            return V(None, kind, parts=parts)
        v = self.scalar(e.expr, scope, allow_alias)
        self.casts = self.casts or kind != "str"
        if kind == "int":
            return self.cast_int(v, {"short": "SMALLINT", "int": "INTEGER"}.get(dtype, "BIGINT"),
                                 dtype)
        if kind == "float":
            target = "REAL" if dtype == "float" else "DOUBLE PRECISION"
            if not self.my:
                return V(f"ADQL_TO_FLOAT({v.sql}, '{target}')", "float", dtype=dtype)
            c = f"CAST({v.sql} AS DOUBLE)"  # text that is no number: a warning (an error)
            if target == "REAL":
                first, later = self.once(c)
                value = later if later == first else f"CAST({later} AS DOUBLE)"
                c = (f"(CASE WHEN ABS({first}) > {geo.num(REAL_MAX)} THEN "
                     f"{self.warn('value out of range for REAL', 'DOUBLE')} ELSE {value} END)")
            return V(c, "float", dtype=dtype)
        if kind == "str":
            if self.my:
                ln = f"({e.length})" if e.length else ""
                sql = f"CAST({v.sql} AS CHAR{ln})"
            else:
                sql = self.text_sql(v)
                if e.length:
                    sql = f"SUBSTR({sql}, 1, {e.length})"
            return V(sql, "str", dtype="char")
        # timestamp
        if self.my:
            return V(f"CAST({v.sql} AS DATETIME(6))", "ts")
        return V(f"CAST({v.sql} AS TEXT)", "ts")

    def text_sql(self, v: V) -> str:
        """SQLite: ``v`` as text, a double written as MariaDB writes it (shortest digits)."""
        if v.kind == "float":
            return f"ADQL_NUMTEXT({v.sql})"
        return f"CAST({v.sql} AS TEXT)"

    def exact_text(self, sql: str) -> str:
        """MySQL: text that compares by code point with trailing spaces counting (a
        binary collation and a last character that is no space)."""
        return f"CONCAT(CONVERT({sql} USING utf8mb4) COLLATE utf8mb4_bin, 'x')"

    def once(self, sql: str) -> tuple[str, str]:
        """MySQL: the SQL of the first use and of the later uses of a value that a check
        needs more than once.  A column or a literal stands as it is; anything else goes
        through a user variable (set at the first use, which the caller evaluates first;
        its type is known only when it runs, so a later use that is a result is cast),
        so that nested checks (SQRT(SQRT(...)), CAST(CAST(...) ...)) do not double the SQL
        at every level."""
        if "(" not in sql and len(sql) <= 200:
            return sql, sql
        self.variables += 1
        var = f"@adql_v{self.variables}"
        return f"({var} := {sql})", var

    def warn(self, message: str, sql_type: str) -> str:
        """MySQL: a value of ``sql_type`` (SIGNED, DOUBLE) whose evaluation leaves a
        warning carrying ``message`` (voservice.query makes it the query's error)."""
        return f"CAST({self.qs(ERROR_TAG + message)} AS {sql_type})"

    def cast_int(self, v: V, target: str, dtype: str) -> V:
        """CAST to SMALLINT, INTEGER or BIGINT: text must be an integer, a double rounds
        half to even and an exact decimal half away from zero (PostgreSQL's rint and
        numeric), and the value must fit the type; else the query fails."""
        if not self.my:
            return V(f"ADQL_TO_INT({v.sql}, '{target}', {int(v.exact)})", "int", dtype=dtype)
        x = v.sql
        if v.kind == "float" and v.exact:
            x = f"ROUND(CAST({x} AS DECIMAL(65,30)))"
        c = f"CAST({x} AS SIGNED)"  # text, and a double beyond BIGINT: warnings
        if target != "BIGINT":
            lo, hi = INT_RANGES[target]
            first, later = self.once(c)
            value = later if later == first else f"CAST({later} AS SIGNED)"
            c = (f"(CASE WHEN {first} BETWEEN {lo} AND {hi} THEN {value} WHEN {later} IS "
                 f"NULL THEN NULL ELSE "
                 f"{self.warn(f'value out of range for {target}', 'SIGNED')} END)")
        return V(c, "int", dtype=dtype)

    def round(self, e: n.FuncCall, name: str, vs: list[V]) -> V:
        """ROUND and TRUNCATE.  With digits, on the decimal value (a double's shortest
        representation), ROUND half away from zero, as PostgreSQL's round(numeric, int):
        ROUND(-1.005, 2) = -1.01, TRUNCATE(1.15, 2) = 1.15.  ROUND(x) of a double
        rounds half to even (PostgreSQL's round(double precision)), of an exact value
        half away from zero."""
        x = vs[0]
        if len(vs) > 1 and vs[1].kind not in ("int", "null", "any"):
            raise error_at(e.args[1], f"the digits argument of {name} must be an integer")
        digits = vs[1].sql if len(vs) > 1 else "0"
        out = {"kind": x.kind if x.kind in ("int", "float") else "float",
               "dtype": x.dtype if x.kind == "int" else "double", "unit": x.unit,
               "exact": x.exact}
        if name == "ROUND" and len(vs) == 1 and x.kind != "int" and not x.exact:
            return V(f"ROUND({x.sql})" if self.my else f"ADQL_RINT({x.sql})", **out)
        if not self.my:
            fn = "ADQL_ROUND" if name == "ROUND" else "ADQL_TRUNC"
            return V(f"{fn}({x.sql}, {digits})", **out)
        if x.kind == "int":
            return V(f"{name}({x.sql}, {digits})", **out)
        # MariaDB rounds a double in binary (ROUND(-1.005e0, 2) = -1): through DECIMAL,
        # which takes the double's shortest digits, for the values DECIMAL(65,30) holds
        first, later = self.once(x.sql)
        value = later if later == first else f"CAST({later} AS DOUBLE)"
        return V(f"(CASE WHEN ABS({first}) < 1e34 THEN CAST({name}(CAST({later} AS "
                 f"DECIMAL(65,30)), {digits}) AS DOUBLE) ELSE {value} END)", **out)

    def case(self, e: n.Case, scope, allow_alias) -> V:
        parts = ["CASE"]
        results = []
        exact = False  # MySQL: compare the text exactly (as exact_text)
        if e.operand is not None:
            op = self.scalar(e.operand, scope, allow_alias)
            exact = self.my and op.kind == "str"
            parts.append(self.exact_text(op.sql) if exact else op.sql)
        for c, r in e.whens:
            if e.operand is not None:
                cv = self.scalar(c, scope, allow_alias)
                csql = self.exact_text(cv.sql) if exact else cv.sql
            else:
                csql = self.cond(c, scope, allow_alias)
            rv = self.scalar(r, scope, allow_alias)
            results.append(rv)
            parts.append(f"WHEN {csql} THEN {rv.sql}")
        if e.else_ is not None:
            ev = self.scalar(e.else_, scope, allow_alias)
            results.append(ev)
            parts.append(f"ELSE {ev.sql}")
        parts.append("END")
        kind, dtype = _unify(results, e)
        return V("(" + " ".join(parts) + ")", kind, dtype=dtype)

    # -- functions -----------------------------------------------------------
    def func(self, e: n.FuncCall, scope, allow_alias) -> V:  # noqa: C901
        name = e.name
        my = self.my
        if name in ("COUNT", "AVG", "MAX", "MIN", "SUM"):
            q = f"{e.quantifier} " if e.quantifier == "DISTINCT" else ""
            if e.star:
                return V("COUNT(*)", "int", dtype="long")
            v = self.value(e.args[0], scope, allow_alias)
            if v.kind in GEOM or v.kind == "stored":
                if name == "COUNT":
                    v = v.parts[0] if v.kind in GEOM else v
                else:
                    raise error_at(e, f"{name} of a geometry is not possible")
            if v.kind in ("bool",):
                raise error_at(e, f"{name} needs a value, not a condition")
            if v.kind == "pred":
                v = self.scalar(e.args[0], scope, allow_alias)
            sql = f"{name}({q}{v.sql})"
            if name == "AVG" and my and not (v.kind == "float" and v.col):
                # MariaDB's AVG keeps 4 more decimals than its argument's (DECIMAL for
                # integers, rounded doubles for FLOOR(x) and the like)
                sql = f"AVG({q}CAST({v.sql} AS DOUBLE))"
            if name == "COUNT":
                return V(sql, "int", dtype="long")
            if name == "AVG":
                self.need(v, NUMERIC, e.args[0], "AVG")
                return V(sql, "float", dtype="double", unit=v.unit)
            if name == "SUM":
                self.need(v, NUMERIC, e.args[0], "SUM")
                return V(sql, v.kind if v.kind in ("int", "float") else "float",
                         dtype="long" if v.kind == "int" else "double", unit=v.unit)
            return V(sql, v.kind, dtype=v.dtype, unit=v.unit)
        if name in GEO_FUNCS:
            return self.geofunc(e, scope, allow_alias)
        if name == "COALESCE":
            vs = [self.scalar(a, scope, allow_alias) for a in e.args]
            kind, dtype = _unify(vs, e)
            return V(f"COALESCE({', '.join(v.sql for v in vs)})", kind, dtype=dtype)
        if name in ("LOWER", "UPPER"):
            v = self.scalar(e.args[0], scope, allow_alias)
            self.need(v, ("str", "null", "any"), e.args[0], name)
            return V(f"{name}({v.sql})" if my else f"ADQL_{name}({v.sql})", "str", dtype="char")
        if name == "IN_UNIT":
            return self.in_unit(e, scope, allow_alias)
        if name in UDFS:
            return self.udf(e, UDFS[name], scope, allow_alias)
        if name not in MATH:
            if name in self.q.udfs or name.startswith("IVO_"):
                raise error_at(e, f"function '{name.lower()}' is not available on this "
                               "service")
            raise error_at(e, f"unknown function '{name.lower()}'")
        vs = [self.scalar(a, scope, allow_alias) for a in e.args]
        for v, a in zip(vs, e.args, strict=True):
            self.need(v, NUMERIC, a, name)
        consts = [v.const for v in vs]
        sqls = [v.sql for v in vs]
        if name == "PI":
            return V(self.numlit(math.pi), "float", dtype="double", const=math.pi)
        if name == "RAND":
            fn = "RAND" if my else "ADQL_RAND"
            return V(f"{fn}({', '.join(sqls)})", "float", dtype="double")
        if name in ("ROUND", "TRUNCATE"):
            return self.round(e, name, vs)
        if name == "MOD":
            kind = "int" if vs[0].kind == "int" and vs[1].kind == "int" else "float"
            if _const_num(vs[1]) == 0:
                raise error_at(e, "division by zero (MOD)")
            checked = _const_num(vs[1]) is None
            if my and checked:
                self.domain["division by zero (MOD)"] = None
            fn = "MOD" if my else "ADQL_MOD_CHECKED" if checked else "ADQL_MOD"
            return V(f"{fn}({sqls[0]}, {sqls[1]})", kind,
                     dtype="long" if kind == "int" else "double",
                     exact=kind == "float" and _exact(vs[0]) and _exact(vs[1]))
        if name == "ABS":
            return V(f"ABS({sqls[0]})", vs[0].kind if vs[0].kind in ("int", "float")
                     else "float", dtype=vs[0].dtype, unit=vs[0].unit, exact=vs[0].exact)
        if name in ("CEILING", "FLOOR"):
            kind = "int" if vs[0].kind == "int" else "float"
            sql = f"{name}({sqls[0]})"
            if my and kind == "float":  # MariaDB: an integer type; 1 / FLOOR(x) has 4 digits
                sql = f"CAST({sql} AS DOUBLE)"
            return V(sql, kind, dtype="long" if kind == "int" else "double", unit=vs[0].unit,
                     exact=vs[0].exact)
        const = None
        if all(isinstance(c, int | float) and not isinstance(c, bool) for c in consts):
            const = _math_const(name, consts, e)
        if const is not None:
            sql = self.numlit(const)
        elif my and name in MY_GUARDS:  # NULL without a warning there: a tagged one
            first, later = self.once(sqls[0])
            sql = (f"(CASE WHEN {MY_GUARDS[name].format(first)} THEN "
                   f"{self.warn(DOMAINS[name][1], 'DOUBLE')} ELSE {MATH[name]}({later}) END)")
        elif my:
            if name in ("LOG", "LOG10"):  # NULL and "Division by 0" (COT, POWER: errors)
                self.domain[DOMAINS[name][1]] = None
            sql = f"{MATH[name]}({', '.join(sqls)})"
        else:  # the checked functions of sqlite_functions
            sql = f"ADQL_{MATH[name]}({', '.join(sqls)})"
        if name == "SQRT":
            unit = un.power(vs[0].unit, 0.5)
        elif name == "POWER":
            unit = un.power(vs[0].unit, consts[1])
        else:
            unit = {"DEGREES": "deg", "RADIANS": "rad"}.get(name)
        return V(sql, "float", dtype="double", const=const, unit=unit)

    def in_unit(self, e, scope, allow_alias) -> V:
        v = self.scalar(e.args[0], scope, allow_alias)
        self.need(v, NUMERIC, e.args[0], "IN_UNIT")
        target = e.args[1].value
        if not v.unit:
            raise error_at(e.args[0], "IN_UNIT needs a value with a known unit "
                           "(columns with units, combined by + - * / POWER SQRT)")
        try:
            factor = un.conversion_factor(v.unit, target)
        except ValueError:
            raise error_at(e, f"cannot convert unit '{_unit_text(v.unit)}' to '{target}'"
                           ) from None
        return V(f"({v.sql} * {self.numlit(factor)})", "float", dtype="double", unit=target)

    def udf(self, e: n.FuncCall, spec, scope, allow_alias) -> V:
        """The user-defined functions of functions.IMPLEMENTED_UDFS: SQL on MySQL, SQL
        and the functions of sqlite_functions on SQLite; NULL arguments give NULL."""
        name = spec.name.lower()
        want = len(spec.params)
        if len(e.args) != want:
            raise error_at(e, f"{name} takes {want} argument{'s' if want != 1 else ''}, "
                           f"not {len(e.args)}")
        vs = []
        for (pname, ptype), a in zip(spec.params, e.args, strict=True):
            v = self.scalar(a, scope, allow_alias)
            self.need(v, ("str", "null", "any") if ptype == "TEXT" else NUMERIC, a,
                      f"the {pname} argument of {name}")
            vs.append(v)
        sqls = [v.sql for v in vs]
        fn = spec.name
        if fn == "IVO_STRING_AGG":
            if not isinstance(vs[1].const, str):
                raise error_at(e.args[1], f"the delim argument of {name} must be a string "
                               "literal")
            sep = f" SEPARATOR {sqls[1]}" if self.my else f", {sqls[1]}"
            return V(f"GROUP_CONCAT({sqls[0]}{sep})", "str", dtype="char")
        if fn == "IVO_INTERVAL_OVERLAPS":
            l1, h1, l2, h2 = sqls
            nulls = " OR ".join(f"{v.sql} IS NULL" for v in vs if v.const is None)
            test = f"WHEN {nulls} THEN NULL " if nulls else ""
            return V(f"(CASE {test}WHEN {h1} >= {l2} AND {h2} >= {l1} THEN 1 ELSE 0 END)",
                     "int", dtype="int")
        if not self.my:  # sqlite_functions: Unicode case folding, NULL in -> NULL out
            return V(f"{fn}({', '.join(sqls)})", "int", dtype="int")
        # MySQL: compare lower-cased text under a binary collation (string literals
        # come with the connection's case- and accent-insensitive one)
        a, b = (f"LOWER(CONVERT({x} USING utf8mb4))" for x in sqls)
        if fn == "IVO_NOCASEMATCH":  # LIKE's escape character is a backslash: double it
            return V(f"({a} COLLATE utf8mb4_bin LIKE REPLACE({b}, {self.qs(BACKSLASH)}, "
                     f"{self.qs(BACKSLASH * 2)}))", "int", dtype="int")
        if fn == "IVO_HASHLIST_HAS":
            return V(f"(LOCATE(CONCAT('#', {b}, '#') COLLATE utf8mb4_bin, "
                     f"CONCAT('#', {a}, '#')) > 0)", "int", dtype="int")
        # IVO_HASWORD: REGEXP (PCRE) with the word quoted in \Q...\E (lower-cased, it
        # cannot contain the \E that would end the quote) between look-arounds refusing
        # word characters
        return V(f"(CASE WHEN {sqls[0]} IS NULL OR {sqls[1]} IS NULL THEN NULL "
                 f"WHEN CHAR_LENGTH({sqls[1]}) = 0 THEN 0 ELSE {a} COLLATE utf8mb4_bin "
                 f"REGEXP CONCAT({self.qs(WORD_BEFORE)}, {b}, {self.qs(WORD_AFTER)}) END)",
                 "int", dtype="int")

    # -- geometry ------------------------------------------------------------
    def coordsys(self, lit) -> None:
        if lit is None or lit.kind == "null":
            return
        s = lit.value.strip().upper()
        if s == "" or s == "ICRS" or s.startswith("ICRS "):
            return
        raise error_at(lit, f"coordinate system '{lit.value}' is not supported: "
                       "this service only has ICRS positions")

    def coord(self, e, scope, allow_alias, what) -> V:
        v = self.scalar(e, scope, allow_alias)
        self.need(v, NUMERIC, e, what)
        if v.kind == "null":
            return V("NULL", "float", dtype="double")
        return v

    def point_arg(self, e, scope, allow_alias, what) -> V:
        v = self.value(e, scope, allow_alias)
        if v.kind != "point":
            raise error_at(e, f"{what} needs a POINT here")
        return v

    def geometry(self, e, scope, allow_alias) -> V:
        self.coordsys(e.sys)
        if isinstance(e, n.Point):
            x = self.coord(e.x, scope, allow_alias, "POINT")
            y = self.coord(e.y, scope, allow_alias, "POINT")
            return V(None, "point", parts=[x, y])
        if isinstance(e, n.Circle):
            if e.center is not None:
                c = self.point_arg(e.center, scope, allow_alias, "CIRCLE")
                x, y = c.parts
            else:
                x = self.coord(e.x, scope, allow_alias, "CIRCLE")
                y = self.coord(e.y, scope, allow_alias, "CIRCLE")
            r = self.coord(e.r, scope, allow_alias, "CIRCLE")
            if r.const is not None and r.const < 0:
                raise error_at(e.r, "a CIRCLE radius cannot be negative")
            return V(None, "circle", parts=[x, y, r])
        if isinstance(e, n.Box):
            if e.center is not None:
                c = self.point_arg(e.center, scope, allow_alias, "BOX")
                x, y = c.parts
            else:
                x = self.coord(e.x, scope, allow_alias, "BOX")
                y = self.coord(e.y, scope, allow_alias, "BOX")
            w = self.coord(e.w, scope, allow_alias, "BOX")
            h = self.coord(e.h, scope, allow_alias, "BOX")
            vals = [x.const, y.const, w.const, h.const]
            if not all(isinstance(v, int | float) for v in vals):
                raise error_at(e, "BOX needs constant centre and size on this service")
            try:
                verts = geo.rec_box_vertices(*map(float, vals))
            except ValueError as exc:
                raise error_at(e, str(exc)) from None
            return self.const_polygon(verts)
        # polygon
        if e.points is not None:
            coords = []
            for p in e.points:
                pv = self.point_arg(p, scope, allow_alias, "POLYGON")
                coords.extend(pv.parts)
        else:
            coords = []
            for x, y in e.coords:
                coords.append(self.coord(x, scope, allow_alias, "POLYGON"))
                coords.append(self.coord(y, scope, allow_alias, "POLYGON"))
        return V(None, "polygon", parts=coords)

    def const_polygon(self, verts) -> V:
        parts = []
        for ra, dec in verts:
            parts.append(V(self.numlit(ra), "float", dtype="double", const=ra))
            parts.append(V(self.numlit(dec), "float", dtype="double", const=dec))
        return V(None, "polygon", parts=parts)

    def geo_value(self, e, scope, allow_alias, fname) -> V:
        v = self.value(e, scope, allow_alias)
        if v.kind == "region":  # a REGION Union, Intersection or Not
            if fname not in ("CONTAINS", "INTERSECTS", "COORDSYS"):
                raise error_at(e, f"{fname} of a REGION {v.what} is not supported by this "
                               "service")
            return v
        if v.kind == "stored":
            raise error_at(e, f"{fname} on the geometry column '{v.meta.name}' is not "
                           "supported by this service")
        if v.kind not in GEOM:
            raise error_at(e, f"type error: {fname} needs a geometry (POINT, CIRCLE, "
                           "POLYGON, BOX)")
        return v

    def geofunc(self, e: n.FuncCall, scope, allow_alias) -> V:  # noqa: C901
        name = e.name
        if name == "DISTANCE":
            if len(e.args) == 4:
                vs = [self.coord(a, scope, allow_alias, "DISTANCE") for a in e.args]
                p1 = V(None, "point", parts=vs[:2])
                p2 = V(None, "point", parts=vs[2:])
            else:
                p1, p2 = (self.geo_value(a, scope, allow_alias, name) for a in e.args)
                for p, a in ((p1, e.args[0]), (p2, e.args[1])):
                    if p.kind != "point":
                        raise error_at(a, "DISTANCE needs two POINTs")
            sql = geo.distance_sql(p1.parts[0].sql, p1.parts[1].sql, p2.parts[0].sql,
                                   p2.parts[1].sql, self.dialect)
            cone = None
            for a, b in ((p1, p2), (p2, p1)):
                c = _const_point(b)
                if c is not None and _const_point(a) is None:
                    cone = (a, c[0], c[1])
                    break
            c1, c2 = _const_point(p1), _const_point(p2)
            if c1 is not None and c2 is not None:
                d = _py_distance(c1, c2)
                return V(self.numlit(d), "float", dtype="double", const=d, unit="deg")
            return V(sql, "float", dtype="double", unit="deg", cone=cone)
        if name in ("CONTAINS", "INTERSECTS"):
            a, b = (self.geo_value(x, scope, allow_alias, name) for x in e.args)
            return V(self.geo_pred(name, a, b, e), "pred", defined=_defined(a, b))
        v = self.geo_value(e.args[0], scope, allow_alias, name)
        if name == "COORDSYS":
            return V(self.qs("ICRS"), "str", dtype="char", const="ICRS")
        if name in ("COORD1", "COORD2"):
            if v.kind != "point":
                raise error_at(e.args[0], f"{name} needs a POINT")
            p = v.parts[0 if name == "COORD1" else 1]
            return V(p.sql, "float", dtype="double", const=p.const, unit="deg")
        if v.foot is not None and name in ("CENTROID", "AREA"):
            cra, cdec, size, _ = v.foot
            if name == "AREA":
                return V(geo.fov_area_sql(size), "float", dtype="double", unit="deg**2")
            # the square is symmetric about its centre (null with the region)
            usable = geo.fov_usable_sql(size)
            return V(None, "point", parts=[
                V(f"(CASE WHEN {usable} THEN {c} END)", "float", dtype="double")
                for c in (cra, cdec)])
        if name == "CENTROID":
            if v.kind == "point":
                return v
            if v.kind == "circle":
                return V(None, "point", parts=v.parts[:2])
            verts = _const_vertices(v)
            if verts is None:  # column vertices: SQL of the same definition
                cs = [p.sql if (c := _const_num(p)) is None else c for p in v.parts]
                ra_sql, dec_sql = geo.polygon_centroid_sql(
                    list(zip(cs[::2], cs[1::2], strict=True)), self.dialect)
                return V(None, "point", parts=[V(ra_sql, "float", dtype="double"),
                                               V(dec_sql, "float", dtype="double")])
            ra, dec = geo.polygon_centroid(verts)
            return V(None, "point", parts=[V(self.numlit(ra), "float", const=ra),
                                           V(self.numlit(dec), "float", const=dec)])
        if name == "AREA":
            if v.kind == "point":
                return V("0.0", "float", dtype="double", const=0.0, unit="deg**2")
            if v.kind == "circle":
                r = v.parts[2]
                if r.const is not None:
                    a = geo.circle_area(float(r.const))
                    return V(self.numlit(a), "float", dtype="double", const=a, unit="deg**2")
                k = geo.num(2 * math.pi * (180 / math.pi) ** 2)
                return V(f"({k} * (1 - COS(RADIANS({r.sql}))))",
                         "float", dtype="double", unit="deg**2")
            verts = _const_vertices(v)
            if verts is None:  # column vertices: SQL of the same definition
                cs = [p.sql if (c := _const_num(p)) is None else c for p in v.parts]
                return V(geo.polygon_area_sql(list(zip(cs[::2], cs[1::2], strict=True)),
                                              self.dialect),
                         "float", dtype="double", unit="deg**2")
            a = geo.polygon_area(verts)
            return V(self.numlit(a), "float", dtype="double", const=a, unit="deg**2")
        raise error_at(e, f"{name} is not supported")  # pragma: no cover

    def geo_pred(self, name, a: V, b: V, node) -> str:  # noqa: C901
        if a.kind == "region" or b.kind == "region":
            return self.region_pred(name, a, b, node)
        types = f"{name}({a.kind.upper()}, {b.kind.upper()})"
        try:
            ca, cb = _const_shape(a), _const_shape(b)
            if ca is not None and cb is not None:
                test = shapes.contains if name == "CONTAINS" else shapes.intersects
                return "(1 = 1)" if test(ca, cb) else "(1 = 0)"
        except ValueError as exc:
            raise error_at(node, f"{types}: {exc}") from None
        if name == "INTERSECTS" and b.kind == "point" and a.kind != "point":
            a, b = b, a
        if name == "INTERSECTS" and a.kind == "polygon" and b.kind == "circle":
            a, b = b, a
        if a.kind == "point" and b.kind == "point":  # the same position (RA 0 = 360, poles)
            tol = math.degrees(shapes.TOL)
            near = V(geo.num(tol), "float", dtype="double", const=tol)
            return self.point_in_circle(a, V(None, "circle", parts=[*b.parts, near]))
        if a.kind == "point" and b.kind == "circle":
            return self.point_in_circle(a, b)
        if name == "INTERSECTS" and a.kind == "circle" and b.kind == "circle":
            d = geo.distance_sql(a.parts[0].sql, a.parts[1].sql, b.parts[0].sql,
                                 b.parts[1].sql, self.dialect)
            return f"({d} <= {a.parts[2].sql} + {b.parts[2].sql})"
        if name == "CONTAINS" and a.kind == "circle" and b.kind == "circle":
            d = geo.distance_sql(a.parts[0].sql, a.parts[1].sql, b.parts[0].sql,
                                 b.parts[1].sql, self.dialect)
            rb = b.parts[2].sql
            return f"({rb} >= 180 OR {d} + {a.parts[2].sql} <= {rb})"
        if a.foot is not None or b.foot is not None:
            return self.footprint_pred(name, a, b, node)
        if any(v.kind == "polygon" and _const_vertices(v) is None for v in (a, b)):
            raise error_at(node, f"{types} needs a POLYGON with constant vertices on this "
                           "service")
        try:
            if name == "CONTAINS" and b.kind == "point":
                return self.within_point(a, b)
            if a.kind == "point" and b.kind == "polygon":
                return geo.polygon_sql(a.parts[0].sql, a.parts[1].sql, _const_vertices(b),
                                       self.dialect)
            if a.kind == "circle" and b.kind == "polygon":
                relation = "intersects" if name == "INTERSECTS" else "circle_in_polygon"
                return self.circle_polygon(a, _const_vertices(b), relation)
            if a.kind == "polygon" and b.kind == "circle":
                return self.circle_polygon(b, _const_vertices(a), "polygon_in_circle")
        except ValueError as exc:
            raise error_at(node, f"{types}: {exc}") from None
        raise error_at(node, f"{types} is not supported by this service")

    def stcs_polygon(self, parts: list[V]) -> str:
        """SQL of 'POLYGON ICRS lon lat ...' from the vertex values (null if one is)."""
        if self.my:
            text = "CONCAT('POLYGON ICRS', " + ", ".join(f"' ', {p.sql}" for p in parts) + ")"
        else:
            text = "'POLYGON ICRS'" + "".join(f" || ' ' || ADQL_NUMTEXT({p.sql})"
                                              for p in parts)
        return f"(CASE WHEN {parts[0].sql} IS NOT NULL THEN {text} END)"

    def footprint_pred(self, name: str, a: V, b: V, node) -> str:
        """CONTAINS / INTERSECTS of a POINT, CIRCLE or constant POLYGON (BOX) with a
        footprint column (a field-of-view square, e.g. ivoa.obscore.s_region): exact
        SQL (see :func:`adql.geometry.circle_fov_sql`,
        :func:`adql.geometry.polygon_fov_sql`) behind a declination band."""
        foot, other = (a, b) if a.foot is not None else (b, a)
        if other.foot is not None:
            raise error_at(node, f"{name} of the region column '{foot.meta.name}' with "
                           "another region column is not supported by this service; use a "
                           "POINT, CIRCLE, POLYGON or BOX")
        cra, cdec, size, largest = foot.foot
        if other.kind == "polygon":
            verts = _const_vertices(other)
            if verts is None:
                raise error_at(node, f"{name} of the region column '{foot.meta.name}' with a "
                               "POLYGON needs constant vertices on this service")
            relation = ("intersects" if name == "INTERSECTS" else
                        "polygon_in_square" if other is a else "square_in_polygon")
            try:
                return geo.polygon_fov_sql(verts, cra, cdec, size, largest, relation,
                                           self.dialect)
            except ValueError as exc:
                raise error_at(node, f"{name}: {exc}") from None
        x, y = other.parts[0].sql, other.parts[1].sql
        if other.kind == "point":
            if name == "CONTAINS" and other is b:
                # a square with a side is never within a point
                return f"({geo.fov_usable_sql(size)} AND 1 = 0)"
            return geo.point_in_fov_sql(x, y, cra, cdec, size, largest)
        relation = ("intersects" if name == "INTERSECTS" else
                    "circle_in_square" if other is a else "square_in_circle")
        return geo.circle_fov_sql(x, y, f"({other.parts[2].sql})", cra, cdec, size, largest,
                                  relation, self.dialect)

    def circle_polygon(self, c: V, verts, relation: str) -> str:
        x, y, r = c.parts
        centre = _const_point(V(None, "point", parts=[x, y]))
        if centre is not None and not -90 <= centre[1] <= 90:
            raise ValueError(f"declination {centre[1]} is outside [-90, 90]")
        radius = _const_num(r)
        return geo.circle_polygon_sql(x.sql, y.sql, f"({r.sql})" if radius is None else radius,
                                      verts, relation, self.dialect)

    def within_point(self, a: V, p: V) -> str:
        """CONTAINS(circle or constant polygon, point): the shape shrunk to that point."""
        zero = V("0.0", "float", dtype="double", const=0.0)
        if a.kind == "circle":
            radius = _const_num(a.parts[2])
            if radius is not None and radius != 0:
                return "(1 = 0)"
            same = self.point_in_circle(p, V(None, "circle", parts=[*a.parts[:2], zero]))
            return same if radius is not None else f"({a.parts[2].sql} = 0 AND {same})"
        verts = _const_vertices(a)
        if any(_py_distance(v, verts[0]) > 0 for v in verts):
            return "(1 = 0)"
        ra, dec = verts[0]
        return self.point_in_circle(p, V(None, "circle", parts=[
            V(self.numlit(ra), "float", const=ra), V(self.numlit(dec), "float", const=dec), zero]))

    def point_in_circle(self, p: V, c: V) -> str:
        cp = V(None, "point", parts=c.parts[:2])
        r = c.parts[2]
        pc, cc = _const_point(p), _const_point(cp)
        if r.const is not None and not isinstance(r.const, str):
            if cc is not None and pc is None:
                return self.cone(p, cc[0], cc[1], float(r.const))
            if pc is not None and cc is None:
                return self.cone(cp, pc[0], pc[1], float(r.const))
            if pc is not None and cc is not None:
                return "(1 = 1)" if _py_distance(pc, cc) <= r.const else "(1 = 0)"
            lim = geo.num(math.sin(math.radians(min(float(r.const), 180.0)) / 2) ** 2)
        else:
            lim = f"POWER(SIN(RADIANS({r.sql}) / 2), 2)"
        hav = geo.hav_sql(p.parts[0].sql, p.parts[1].sql, cp.parts[0].sql, cp.parts[1].sql)
        return f"({hav} <= {lim})"

    def cone(self, p: V, ra0, dec0, r: float, strict=False) -> str:
        if not -90 <= dec0 <= 90:
            raise ADQLError(f"declination {dec0} is outside [-90, 90]")
        try:
            return geo.cone_sql(p.parts[0].sql, p.parts[1].sql, float(ra0), float(dec0),
                                float(r), self.dialect, strict=strict)
        except ValueError as exc:
            raise ADQLError(str(exc)) from None

    # -- REGION (adql.stcs) ---------------------------------------------------------
    def region(self, e: n.Region) -> V:
        """REGION('STC-S'): a Position, Circle, Box or Polygon as the equivalent ADQL
        constructor gives it (a Box is ADQL's BOX, section 4.2.9); a Union, Intersection
        or Not as a :class:`_Compound` for CONTAINS and INTERSECTS."""
        try:
            r = stcs.parse(e.text)
        except ADQLError as exc:
            raise error_at(e, exc.message) from None
        return self.region_value(r, e)

    def region_value(self, r, e: n.Region) -> V:
        if isinstance(r, stcs.Position | stcs.Circle):
            return V(None, "point" if isinstance(r, stcs.Position) else "circle",
                     parts=[V(self.numlit(x), "float", dtype="double", const=x) for x in r])
        if isinstance(r, stcs.Box):
            try:
                verts = geo.rec_box_vertices(*r)
            except ValueError as exc:
                raise error_at(e, f"REGION: a Box is ADQL's BOX here: {exc}") from None
            return self.const_polygon(verts)
        if isinstance(r, stcs.Polygon):
            return self.const_polygon(r.vertices)
        members = (r.region,) if isinstance(r, stcs.Not) else r.regions
        return _Compound(type(r).__name__, [self.region_value(m, e) for m in members], e)

    def region_pred(self, name: str, a: V, b: V, node) -> str:
        """CONTAINS / INTERSECTS with a REGION Union, Intersection or Not: the OR, AND or
        NOT of the member predicates where that is the same relation (any relation of a
        POINT; CONTAINS(x, Intersection); INTERSECTS(x, Union)), else refused."""
        if name == "INTERSECTS" and a.kind == "region" and b.kind != "region":
            a, b = b, a
        rel = "in" if name == "CONTAINS" else "and"
        if a.kind == "region":
            other = f"a REGION {b.what}" if b.kind == "region" else _shape_name(b)
            raise error_at(node, f"{name} of a REGION {a.what} {rel} {other} is not "
                           "supported by this service")
        what = b.what
        if a.kind == "point" or (what, name) in (("Intersection", "CONTAINS"),
                                                 ("Union", "INTERSECTS")):
            sqls = [self.geo_pred(name, a, m, node) for m in b.members]
            if what == "Union":
                return _any_of(sqls)
            if what == "Intersection":
                return _all_of(sqls)
            neg = _negated(sqls[0])
            if neg in (_TRUE, _FALSE) or _const_point(a) is not None:
                return neg
            # NULL, not true, for a point without a position
            x, y = (p.sql for p in a.parts)
            return f"(CASE WHEN {x} IS NOT NULL AND {y} IS NOT NULL THEN {neg} END)"
        raise error_at(node, f"{name} of {_shape_name(a)} {rel} a REGION {what} is not "
                       "supported by this service")


UDFS = {u.name: u for u in IMPLEMENTED_UDFS}
#: the longest SQL a value may translate to (MariaDB's default max_allowed_packet is 16 MB)
MAX_SQL_CHARS = 8_000_000
#: MySQL: the ADQL functions that answer NULL outside their domain without a warning,
#: and the SQL of that test
MY_GUARDS = {"SQRT": "{0} < 0", "ASIN": "ABS({0}) > 1", "ACOS": "ABS({0}) > 1"}
#: the start of a MySQL warning text that carries a query error (Translator.warn)
ERROR_TAG = "adql-error: "
#: CAST target -> (lowest, highest value)
INT_RANGES = {"SMALLINT": (-(2**15), 2**15 - 1), "INTEGER": (-(2**31), 2**31 - 1),
              "BIGINT": (-(2**63), 2**63 - 1)}
REAL_MAX = 3.4028234663852886e38
BACKSLASH = "\\"
# ivo_hasword on MySQL: no word character may touch the (quoted) word on either side
WORD_BEFORE = r"(?<![a-z0-9_])\Q"
WORD_AFTER = r"\E(?![a-z0-9_])"
GEO_FUNCS = frozenset({"DISTANCE", "CONTAINS", "INTERSECTS", "COORD1", "COORD2", "COORDSYS",
                       "CENTROID", "AREA"})
MATH = {
    "ACOS": "ACOS", "ASIN": "ASIN", "ATAN": "ATAN", "ATAN2": "ATAN2", "COS": "COS",
    "COT": "COT", "SIN": "SIN", "TAN": "TAN", "DEGREES": "DEGREES", "RADIANS": "RADIANS",
    "EXP": "EXP", "LOG": "LN", "LOG10": "LOG10", "POWER": "POWER", "SQRT": "SQRT",
    "PI": "PI", "RAND": "RAND", "ROUND": "ROUND", "TRUNCATE": "TRUNCATE", "MOD": "MOD",
    "ABS": "ABS", "CEILING": "CEILING", "FLOOR": "FLOOR",
}
PY_MATH = {
    "ACOS": math.acos, "ASIN": math.asin, "ATAN": math.atan, "ATAN2": math.atan2,
    "COS": math.cos, "COT": lambda x: 1 / math.tan(x), "SIN": math.sin, "TAN": math.tan,
    "DEGREES": math.degrees, "RADIANS": math.radians, "EXP": math.exp, "LOG": math.log,
    "LOG10": math.log10, "POWER": math.pow, "SQRT": math.sqrt,
}


_STR_OPS = {"=": str.__eq__, "<>": str.__ne__, "<": str.__lt__, "<=": str.__le__,
            ">": str.__gt__, ">=": str.__ge__}


def _unit_text(unit) -> str:
    """A derived unit (adql.units) for a message."""
    if not isinstance(unit, tuple):
        return str(unit)
    op, a, b = unit
    if op == "pow":
        return f"({_unit_text(a)})**{b}"
    return f"({_unit_text(a)}) {'*' if op == 'mul' else '/'} ({_unit_text(b)})"


def _flip(op: str) -> str:
    return {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op, op)


def _fold(op, a, b):
    """The value of a constant ``a op b``, None when the database should compute it
    (division by zero, overflow: the database's own rules then apply)."""
    if isinstance(a, str) or isinstance(b, str):
        return None
    try:
        if op == "+":
            r = a + b
        elif op == "-":
            r = a - b
        elif op == "*":
            r = a * b
        elif op == "/":
            if b == 0:
                return None
            if isinstance(a, int) and isinstance(b, int):
                q = abs(a) // abs(b)
                r = q if (a >= 0) == (b >= 0) else -q
            else:
                r = a / b
        else:
            return None
    except (OverflowError, ZeroDivisionError):
        return None
    if isinstance(r, int) and not -(2**63) <= r < 2**63:
        return None
    if isinstance(r, float) and not math.isfinite(r):
        return None
    return r


def _math_const(name: str, args: list, node) -> float:
    """The value of a mathematical function of constants; a domain error (SQRT(-1),
    LOG(0), ...) or an overflow is an error of the query, as in SQL."""
    domain = DOMAINS.get(name)
    if domain is not None and not domain[0](*args):
        raise error_at(node, domain[1])
    if name == "POWER" and args[0] < 0 and not float(args[1]).is_integer():
        raise error_at(node, "a negative number raised to a non-integer power")
    try:
        value = PY_MATH[name](*args)
    except (ValueError, OverflowError, ZeroDivisionError):
        value = math.inf
    if not math.isfinite(value):
        raise error_at(node, f"numeric value out of range: {name} overflows")
    return value


_INT_WIDTH = {"boolean": 0, "unsignedByte": 1, "short": 2, "int": 3, "long": 4}


def _common_outputs(node, louts, routs):
    """The result columns of a set operation: the names of the left operand's, the
    type common to both operands' (SQL-92 7.10: 1 UNION 2.5 is a double column)."""
    outs = []
    for i, (lo, rk_l, names), (ro, rk_r, _) in zip(range(1, len(louts) + 1), louts, routs,
                                                     strict=True):
        kinds = {rk_l, rk_r} - {"null", "any"}
        if len(kinds) < 2 and lo.datatype == ro.datatype and lo.arraysize == ro.arraysize:
            kind = rk_r if rk_l in ("null", "any") else rk_l
            outs.append((ro if rk_l == "null" else lo, kind, names))
            continue
        if kinds <= {"int"}:
            wide = max((lo.datatype, ro.datatype), key=lambda d: _INT_WIDTH.get(d, 4))
            outs.append((replace(lo, datatype=wide if wide in _INT_WIDTH else "long"),
                         "int", names))
        elif kinds <= {"int", "float"}:
            both = {lo.datatype, ro.datatype}
            outs.append((replace(lo, datatype="float" if both == {"float"} else "double"),
                         "float", names))
        elif kinds <= {"str"} or kinds <= {"ts"}:
            outs.append((replace(lo, arraysize="*"), kinds.pop(), names))
        elif len(kinds) == 1:  # geometries of one kind
            outs.append((lo, rk_l, names))
        else:
            raise error_at(node, f"type error: column {i} of the operands of {node.op} has "
                           "incompatible types (" + " and ".join(sorted(kinds)) + ")")
    return outs


def _exact(v: V) -> bool:
    """Whether ``v`` is an exact numeric value: an integer or an exact decimal."""
    return v.kind == "int" or v.exact


def _unify(vs, node):
    kinds = {v.kind for v in vs} - {"null", "any"}
    if not kinds:
        return "any", None
    if kinds <= {"int"}:
        return "int", "long"
    if kinds <= {"int", "float"}:
        return "float", "double"
    if len(kinds) == 1:
        k = kinds.pop()
        return k, "char" if k in ("str", "ts") else None
    raise error_at(node, "type error: the alternatives have incompatible types")


def _ancestor_hit(scopes, parent) -> bool:
    """Whether one of scopes is parent or one of its parents."""
    outer = set()
    while parent is not None:
        outer.add(id(parent))
        parent = parent.parent
    return any(id(s) in outer for s in scopes)


def _const_point(p: V):
    if p.kind != "point":
        return None
    a, b = p.parts
    if isinstance(a.const, int | float) and isinstance(b.const, int | float):
        return float(a.const), float(b.const)
    return None


def _const_vertices(v: V):
    if v.kind != "polygon":
        return None
    cs = [p.const for p in v.parts]
    if not all(isinstance(c, int | float) and not isinstance(c, bool) for c in cs):
        return None
    return [(float(cs[i]), float(cs[i + 1])) for i in range(0, len(cs), 2)]


def _const_num(v: V) -> float | None:
    c = v.const
    if isinstance(c, int | float) and not isinstance(c, bool):
        return float(c)
    return None


def _const_shape(v: V):
    """The shapes.* value of a constant geometry (None if any part is not constant)."""
    if v.kind == "point":
        p = _const_point(v)
        return None if p is None else shapes.Point(*p)
    if v.kind == "circle":
        cs = [_const_num(x) for x in v.parts]
        return None if None in cs else shapes.Circle(*cs)
    verts = _const_vertices(v)
    return None if verts is None else shapes.Polygon(verts)


def _py_distance(a, b) -> float:
    ra1, d1, ra2, d2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((d2 - d1) / 2) ** 2 + math.cos(d1) * math.cos(d2) * math.sin((ra2 - ra1) / 2) ** 2
    return math.degrees(2 * math.asin(math.sqrt(min(1.0, h))))


def translate(query: Query | str, schema: Schema, dialect: str,
              limit: int | None = None) -> Translation:
    """Translate ADQL (text or parsed :class:`Query`) to SQL for ``dialect``.

    ``dialect`` is "sqlite" or "mysql"; ``limit`` caps the number of rows
    returned (combined with TOP).  Raises :class:`ADQLError`.
    """
    if dialect not in DIALECTS:
        raise ADQLError(f"unknown SQL dialect {dialect!r}; use 'sqlite' or 'mysql'")
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise ADQLError("limit must be a non-negative integer")
    if isinstance(query, str):
        query = parse(query)
    if not isinstance(schema, Schema):
        schema = Schema(schema)
    try:
        return Translator(query, schema, dialect).top(limit)
    except RecursionError:
        raise ADQLError("the query is nested too deeply", 1, 1) from None


def _defined(*vs: V) -> str | None:
    """SQL true when none of the geometries ``vs`` has a NULL value (a column position,
    radius or vertex; a footprint without a usable field of view), None if all are
    constant."""
    conds: list[str] = []
    for v in vs:
        if isinstance(v, _Compound):
            c = _defined(*v.members)
            conds.extend([] if c is None else [c])
        elif v.foot is not None:
            cra, cdec, size, _ = v.foot
            conds.extend([f"{cra} IS NOT NULL", f"{cdec} IS NOT NULL",
                          geo.fov_usable_sql(size)])
        else:
            conds.extend(f"{p.sql} IS NOT NULL" for p in v.parts or () if p.const is None)
    conds = list(dict.fromkeys(conds))
    return f"({' AND '.join(conds)})" if conds else None


# -- REGION compounds (Translator.region_pred) ---------------------------------------
_TRUE, _FALSE = "(1 = 1)", "(1 = 0)"


class _Compound(V):
    """A REGION Union, Intersection or Not: its members' values, for CONTAINS and
    INTERSECTS only; anything else reading its SQL or parts is refused."""

    __slots__ = ("what", "members", "node")

    def __init__(self, what: str, members: list[V], node) -> None:
        self.kind, self.what, self.members, self.node = "region", what, members, node
        self.dtype = self.meta = self.const = self.unit = self.cone = self.foot = None
        self.col = self.exact = False

    def _refused(self) -> ADQLError:
        return error_at(self.node, f"a REGION {self.what} can only be used in CONTAINS and "
                        "INTERSECTS on this service")

    @property
    def sql(self):  # noqa: ANN201 - never returns
        raise self._refused()

    @property
    def parts(self):  # noqa: ANN201 - never returns
        raise self._refused()


def _joined(sqls: list[str], op: str) -> str:
    """The OR / AND of conditions, constant ones folded."""
    absorbing, neutral = (_TRUE, _FALSE) if op == "OR" else (_FALSE, _TRUE)
    if absorbing in sqls:
        return absorbing
    rest = [s for s in sqls if s != neutral]
    if not rest:
        return neutral
    return rest[0] if len(rest) == 1 else "(" + f" {op} ".join(rest) + ")"


def _any_of(sqls: list[str]) -> str:
    return _joined(sqls, "OR")


def _all_of(sqls: list[str]) -> str:
    return _joined(sqls, "AND")


def _negated(sql: str) -> str:
    return {_TRUE: _FALSE, _FALSE: _TRUE}.get(sql, f"(NOT {sql})")


def _shape_name(v: V) -> str:
    """A geometry value for a message: 'a CIRCLE', "the region column 's_region'"."""
    if v.foot is not None and v.meta is not None:
        return f"the region column '{v.meta.name}'"
    return {"point": "a POINT", "circle": "a CIRCLE", "polygon": "a POLYGON"}.get(
        v.kind, f"a {v.kind}")
