"""ADQL text -> AST (:class:`Query`), with all schema-free checks."""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import lark
from lark import Token, Transformer

from . import nodes as n
from .errors import ADQLError, error_at
from .functions import (
    BUILTINS,
    CAST_TYPES,
    GEOMETRY_ARG_FUNCS,
    IMPLEMENTED_UDFS,
    RESERVED,
    TYPE_MAP,
    UDF,
    parse_udf,
)

SUPPORTED_VERSIONS = ("2.0", "2.1")
GEOM_KINDS = frozenset({"point", "circle", "polygon", "region", "geom"})
_INT_RE = re.compile(r"[0-9]+\Z")


@dataclass
class Query:
    """A parsed and checked ADQL query."""

    text: str
    root: n.QueryExpr
    version: str = "2.1"
    udfs: dict[str, UDF] = field(default_factory=dict)


def _pos(x: object) -> tuple[int, int]:
    if isinstance(x, Token):
        return x.line or 0, x.column or 0
    return getattr(x, "line", 0), getattr(x, "col", 0)


def _is_sys_literal(x: object) -> bool:
    return isinstance(x, n.Literal) and x.kind in ("str", "null")


def _int_literal(tok: Token, what: str) -> int:
    if not _INT_RE.match(tok):
        raise ADQLError(f"{what} needs an unsigned integer, not {tok!s}", tok.line, tok.column)
    return int(tok)


class _Builder(Transformer):
    """Builds AST nodes while lark reduces (inline transformer: no parse tree)."""

    # -- queries ----------------------------------------------------------
    def start(self, c):
        return c[0]

    def query_spec(self, c):
        ctes, body = c
        body.ctes = ctes or []
        return body

    def with_clause(self, c):
        return list(c[1:])

    def with_query(self, c):
        ident, _as, q = c
        plain_name(ident)
        return n.CTE(ident.line, ident.col, name=ident, query=q)

    def select_expr(self, c):
        body, order, offset = c
        line, col = _pos(body)
        return n.QueryExpr(line, col, body=body, order_by=order or [], offset=offset, ctes=[])

    sub_select_expr = select_expr

    def _setop(self, op, c):
        left, _tok, all_, right = c
        line, col = _pos(left)
        return n.SetOp(line, col, op=op, all=all_ is not None, left=left, right=right)

    def union(self, c):
        return self._setop("UNION", c)

    def except_(self, c):
        return self._setop("EXCEPT", c)

    def intersect(self, c):
        return self._setop("INTERSECT", c)

    def select_query(self, c):
        sel, quant, top, items, from_, where, group_by, having = c
        return n.Select(sel.line, sel.column, quantifier=quant, top=top, items=items,
                        from_=from_, where=where, group_by=group_by or [], having=having)

    def set_quantifier(self, c):
        return c[0].upper()

    def top(self, c):
        return _int_literal(c[1], "TOP")

    def star(self, c):
        return n.QualifiedStar(c[0].line, c[0].column, parts=None)

    def select_list(self, c):
        return list(c)

    def derived_column(self, c):
        expr = c[0]
        alias = c[-1] if len(c) > 1 and isinstance(c[-1], n.Ident) else None
        if alias is not None:
            plain_name(alias)
        line, col = _pos(expr)
        return n.SelectItem(line, col, expr=expr, alias=alias)

    def qualified_star(self, c):
        parts = c[0]
        if len(parts) > 3:
            raise error_at(parts[0], "a table name has at most three parts "
                           "(catalog.schema.table)")
        return n.QualifiedStar(parts[0].line, parts[0].col, parts=parts)

    def from_clause(self, c):
        return list(c[1:])

    def joined_table(self, c):
        left, natural, jtype, _join, right, spec = c
        kind, explicit = jtype or ("INNER", False)
        line, col = _pos(left)
        on = using = None
        if spec is not None:
            if natural is not None:
                raise error_at(spec[1] if spec[0] == "ON" else spec[1][0],
                               "a NATURAL join cannot have ON or USING")
            if spec[0] == "ON":
                on = spec[1]
            else:
                using = spec[1]
        elif explicit and natural is None and not isinstance(right, n.Join):
            raise ADQLError("INNER JOIN needs a join condition (ON ... or USING (...))",
                            _join.line, _join.column)
        return n.Join(line, col, left=left, right=right, kind=kind, natural=natural is not None,
                      on=on, using=using, explicit=explicit)

    def cross_join(self, c):
        left, _c, _j, right = c
        line, col = _pos(left)
        return n.Join(line, col, left=left, right=right, kind="CROSS", natural=False,
                      on=None, using=None, explicit=True)

    def join_type(self, c):
        kw = c[0].upper()
        return kw, kw == "INNER"

    def join_on(self, c):
        return ("ON", c[1])

    def join_using(self, c):
        return ("USING", [plain_name(x) for x in c[1:]])

    def table_name(self, c):
        parts = c[0]
        if len(parts) > 3:
            raise error_at(parts[0], "a table name has at most three parts "
                           "(catalog.schema.table)")
        alias = c[-1] if len(c) > 1 and isinstance(c[-1], n.Ident) else None
        if alias is not None:
            plain_name(alias)
        return n.TableName(parts[0].line, parts[0].col, parts=parts, alias=alias)

    def derived_table(self, c):
        q = c[0]
        return n.DerivedTable(q.line, q.col, query=q, alias=plain_name(c[-1]))

    def paren_join(self, c):
        return c[0]

    def where(self, c):
        return c[1]

    def group_by(self, c):
        return list(c[2:])

    def having(self, c):
        return c[1]

    def order_by(self, c):
        return list(c[2:])

    def order_item(self, c):
        expr, direction = c
        line, col = _pos(expr)
        return n.OrderItem(line, col, expr=expr,
                           desc=direction is not None and direction.upper() == "DESC")

    def offset(self, c):
        return _int_literal(c[1], "OFFSET")

    # -- conditions -------------------------------------------------------
    def or_(self, c):
        line, col = _pos(c[0])
        return n.BoolOp(line, col, op="OR", left=c[0], right=c[2])

    def and_(self, c):
        line, col = _pos(c[0])
        return n.BoolOp(line, col, op="AND", left=c[0], right=c[2])

    def not_(self, c):
        return n.Not(c[0].line, c[0].column, operand=c[1])

    def comparison(self, c):
        left, op, right = c
        line, col = _pos(left)
        op = "<>" if op == "!=" else str(op)
        return n.Compare(line, col, op=op, left=left, right=right)

    def between(self, c):
        e, neg, _b, lo, _a, hi = c
        line, col = _pos(e)
        return n.Between(line, col, expr=e, low=lo, high=hi, negated=neg is not None)

    def in_subquery(self, c):
        e, neg, _in, q = c
        line, col = _pos(e)
        return n.InSub(line, col, expr=e, query=q, negated=neg is not None)

    def in_list(self, c):
        e, neg, _in, *items = c
        line, col = _pos(e)
        return n.InList(line, col, expr=e, items=items, negated=neg is not None)

    def like(self, c, ci=False):
        e, neg, _l, p = c
        line, col = _pos(e)
        return n.Like(line, col, expr=e, pattern=p, negated=neg is not None, ci=ci)

    def ilike(self, c):
        return self.like(c, ci=True)

    def is_null(self, c):
        e, _is, neg, _null = c
        line, col = _pos(e)
        return n.IsNull(line, col, expr=e, negated=neg is not None)

    def exists(self, c):
        return n.Exists(c[0].line, c[0].column, query=c[1])

    # -- values -----------------------------------------------------------
    def _bin(self, op, c):
        left, right = c[0], c[-1]
        line, col = _pos(left)
        return n.BinOp(line, col, op=op, left=left, right=right)

    def bit_or(self, c):
        return self._bin("|", c)

    def bit_xor(self, c):
        return self._bin("^", c)

    def bit_and(self, c):
        return self._bin("&", c)

    def concat(self, c):
        return self._bin("||", c)

    def add(self, c):
        return self._bin(str(c[1]), c)

    mul = add

    def unary(self, c):
        op, x = c
        if op == "-" and isinstance(x, n.Literal) and x.kind in ("int", "float") \
                and not x.text.startswith("-"):
            return n.Literal(op.line, op.column, value=-x.value, kind=x.kind, text="-" + x.text)
        return n.Unary(op.line, op.column, op=str(op), operand=x)

    def number(self, c):
        t = c[0]
        if _INT_RE.match(t):
            return n.Literal(t.line, t.column, value=int(t), kind="int", text=str(t))
        return n.Literal(t.line, t.column, value=float(t), kind="float", text=str(t))

    def string(self, c):
        value = "".join(t[1:-1].replace("''", "'") for t in c)
        return n.Literal(c[0].line, c[0].column, value=value, kind="str", text=None)

    def null(self, c):
        return n.Literal(c[0].line, c[0].column, value=None, kind="null", text="NULL")

    def column_ref(self, c):
        parts = c[0]
        if len(parts) > 4:
            raise error_at(parts[0], "a column reference has at most four parts "
                           "(catalog.schema.table.column)")
        plain_name(parts[-1])
        return n.ColumnRef(parts[0].line, parts[0].col, parts=parts)

    def cast(self, c):
        tok, expr, _as, (tname, length, tpos) = c
        if tname not in CAST_TYPES:
            raise ADQLError(f"cannot CAST to {tname}; allowed types are "
                            + ", ".join(sorted(CAST_TYPES)), *tpos)
        return n.Cast(tok.line, tok.column, expr=expr, type=tname, length=length)

    def cast_type(self, c):
        name, length = c
        if length is not None:
            length = _int_literal(length, "a type length")
            if name.upper() not in ("CHAR", "VARCHAR"):
                raise ADQLError(f"type {name} takes no length", name.line, name.column)
        return name.upper(), length, (name.line, name.column)

    def cast_type2(self, c):
        return f"{c[0].upper()} {c[1].upper()}", None, (c[0].line, c[0].column)

    def case(self, c):
        tok = c[0]
        operand = c[1]
        whens = [x for x in c[2:] if isinstance(x, tuple)]
        else_ = None
        for i, x in enumerate(c):
            if isinstance(x, Token) and x.type == "ELSE":
                else_ = c[i + 1]
        return n.Case(tok.line, tok.column, operand=operand, whens=whens, else_=else_)

    def when_clause(self, c):
        return (c[1], c[3])

    def paren(self, c):
        return c[0]

    def scalar_subquery(self, c):
        return n.Subquery(c[0].line, c[0].col, query=c[0])

    def func(self, c):
        name = c[0]
        args = [a for a in c[1:] if a is not None]
        return _make_call(name, args)

    def func_star(self, c):
        name = c[0]
        if name.upper() != "COUNT":
            raise ADQLError(f"only COUNT accepts *, not {name}", name.line, name.column)
        return n.FuncCall(name.line, name.column, name="COUNT", args=[], quantifier=None,
                          star=True)

    def func_quant(self, c):
        name, quant, expr = c
        up = name.upper()
        if up not in ("COUNT", "AVG", "MAX", "MIN", "SUM"):
            raise ADQLError(f"{quant} is only allowed in aggregate functions, not in {name}",
                            name.line, name.column)
        return n.FuncCall(name.line, name.column, name=up, args=[expr], quantifier=quant,
                          star=False)

    def name_chain(self, c):
        if len(c) == 1:
            return [c[0]]
        return c[0] + [c[1]]

    def regular_ident(self, c):
        t = c[0]
        if t.upper() in RESERVED:  # refused by plain_name unless it names a table
            return n.ReservedIdent(t.line, t.column, str(t), False)
        return n.Ident(t.line, t.column, str(t), False)

    def delimited_ident(self, c):
        t = c[0]
        return n.Ident(t.line, t.column, t[1:-1].replace('""', '"'), True)


def plain_name(ident: n.Ident) -> n.Ident:
    """``ident``, refused if it is a reserved word: a column name, an alias, a CTE name.

    Reserved words are accepted unquoted only as the schema and table parts of a table
    name (``FROM public.hipparcos``, ``public.hipparcos.ra``, ``table.*``), where no
    keyword could stand; everywhere else they must be quoted.
    """
    if type(ident) is n.ReservedIdent:
        t = ident.name
        raise ADQLError(f"'{t}' is a reserved word; write \"{t}\" to use it as a name",
                        ident.line, ident.col)
    return ident


def _arity_error(tok: Token, name: str, nargs: int) -> ADQLError:
    lo, hi, _ = BUILTINS[name]
    if hi is None:
        want = f"at least {lo}"
    elif lo == hi:
        want = str(lo)
    else:
        want = f"{lo} to {hi}"
    plural = "" if want in ("1", "at least 1") else "s"
    return ADQLError(f"{name} takes {want} argument{plural}, not {nargs}", tok.line, tok.column)


def _make_call(tok: Token, args: list) -> n.Node:
    name = tok.upper()
    line, col = tok.line, tok.column
    spec = BUILTINS.get(name)
    if spec is None:
        # a UDF; checked against the declarations later
        return n.FuncCall(line, col, name=name, args=args, quantifier=None, star=False)
    lo, hi, _ = spec
    k = len(args)
    if k < lo or (hi is not None and k > hi):
        raise _arity_error(tok, name, k)

    def sys_arg(a):
        if not _is_sys_literal(a):
            raise error_at(a, f"the first argument of {name} here must be a coordinate "
                           "system string such as 'ICRS'")
        return a

    if name == "POINT":
        if k == 3:
            return n.Point(line, col, sys=sys_arg(args[0]), x=args[1], y=args[2])
        return n.Point(line, col, sys=None, x=args[0], y=args[1])
    if name == "CIRCLE":
        if k == 4:
            return n.Circle(line, col, sys=sys_arg(args[0]), center=None, x=args[1],
                            y=args[2], r=args[3])
        if k == 3 and _is_sys_literal(args[0]):
            return n.Circle(line, col, sys=args[0], center=_center(args[1], name), x=None,
                            y=None, r=args[2])
        if k == 3:
            return n.Circle(line, col, sys=None, center=None, x=args[0], y=args[1], r=args[2])
        return n.Circle(line, col, sys=None, center=_center(args[0], name), x=None, y=None,
                        r=args[1])
    if name == "BOX":
        if k == 5:
            return n.Box(line, col, sys=sys_arg(args[0]), center=None, x=args[1], y=args[2],
                         w=args[3], h=args[4])
        if k == 4 and _is_sys_literal(args[0]):
            return n.Box(line, col, sys=args[0], center=_center(args[1], name), x=None, y=None,
                         w=args[2], h=args[3])
        if k == 4:
            return n.Box(line, col, sys=None, center=None, x=args[0], y=args[1], w=args[2],
                         h=args[3])
        return n.Box(line, col, sys=None, center=_center(args[0], name), x=None, y=None,
                     w=args[1], h=args[2])
    if name == "POLYGON":
        sys = None
        rest = args
        if _is_sys_literal(args[0]):
            sys, rest = args[0], args[1:]
        if any(isinstance(a, n.Point) for a in rest) or (
            len(rest) >= 3 and len(rest) % 2 == 1
            and not any(isinstance(a, n.Literal) for a in rest)
        ):
            if len(rest) < 3:
                raise ADQLError("POLYGON needs at least three vertices", line, col)
            return n.Polygon(line, col, sys=sys, points=[_center(a, name) for a in rest],
                             coords=None)
        if len(rest) < 6 or len(rest) % 2:
            raise ADQLError("POLYGON needs at least three vertices: an even number of "
                            f"coordinates (at least 6), not {len(rest)}", line, col)
        return n.Polygon(line, col, sys=sys, points=None,
                         coords=[(rest[i], rest[i + 1]) for i in range(0, len(rest), 2)])
    if name == "REGION":
        if not (isinstance(args[0], n.Literal) and args[0].kind == "str"):
            raise error_at(args[0], "REGION needs a string literal")
        return n.Region(line, col, text=args[0].value)
    if name == "DISTANCE" and k == 3:
        raise _arity_error(tok, "DISTANCE", 3)
    if name == "IN_UNIT" and not (isinstance(args[1], n.Literal) and args[1].kind == "str"):
        raise error_at(args[1], "the second argument of IN_UNIT must be a unit string")
    return n.FuncCall(line, col, name=name, args=args, quantifier=None, star=False)


def _center(a, fname):
    if isinstance(a, n.Literal) and a.kind != "null":
        raise error_at(a, f"{fname} expects a point here, not a literal {a.value!r}")
    return a


# -- schema-free checks (second pass) ----------------------------------------

class _Checker:
    def __init__(self, udfs: dict[str, UDF]):
        self.udfs = udfs

    def query(self, q: n.QueryExpr, top_level: bool = False) -> None:
        for cte in q.ctes or []:
            self.query(cte.query)
        self.body(q.body)
        for o in q.order_by:
            self.value(o.expr)

    def body(self, b) -> None:
        if isinstance(b, n.SetOp):
            self.body(b.left)
            self.body(b.right)
        elif isinstance(b, n.QueryExpr):
            self.query(b)
        else:
            self.select(b)

    def select(self, s: n.Select) -> None:
        for t in s.from_:
            self.table(t)
        for it in s.items:
            if isinstance(it, n.SelectItem):
                self.value(it.expr)
        if s.where is not None:
            self.cond(s.where, "WHERE")
        for g in s.group_by:
            self.value(g)
        if s.having is not None:
            self.cond(s.having, "HAVING")

    def table(self, t) -> None:
        if isinstance(t, n.Join):
            self.table(t.left)
            self.table(t.right)
            if t.on is not None:
                self.cond(t.on, "ON")
        elif isinstance(t, n.DerivedTable):
            self.query(t.query)

    def cond(self, e, where: str) -> None:
        if self.kind(e) != "bool":
            raise error_at(e, f"{where} needs a condition such as x = 1, "
                           "not a value")

    def value(self, e) -> str:
        k = self.kind(e)
        if k == "bool":
            raise error_at(e, "a condition cannot be used as a value here")
        return k

    def scalar(self, e, what: str) -> str:
        k = self.value(e)
        if k in GEOM_KINDS:
            raise error_at(e, f"a geometry cannot be used in {what}")
        return k

    def kind(self, e) -> str:  # noqa: C901 - one dispatch
        t = type(e)
        if t is n.Literal:
            return {"int": "num", "float": "num"}.get(e.kind, e.kind)
        if t is n.ColumnRef:
            return "any"
        if t is n.BinOp:
            what = "string concatenation" if e.op == "||" else "arithmetic"
            self.scalar(e.left, what)
            self.scalar(e.right, what)
            return "str" if e.op == "||" else "num"
        if t is n.Unary:
            self.scalar(e.operand, "arithmetic")
            return "num"
        if t is n.Compare:
            self.value(e.left)
            self.value(e.right)
            return "bool"
        if t is n.Between:
            for x in (e.expr, e.low, e.high):
                self.scalar(x, "BETWEEN")
            return "bool"
        if t is n.InList:
            for x in [e.expr, *e.items]:
                self.scalar(x, "IN")
            return "bool"
        if t is n.InSub:
            self.scalar(e.expr, "IN")
            self.query(e.query)
            return "bool"
        if t is n.Like:
            self.scalar(e.expr, "LIKE")
            self.scalar(e.pattern, "LIKE")
            return "bool"
        if t is n.IsNull:
            self.value(e.expr)
            return "bool"
        if t is n.Exists:
            self.query(e.query)
            return "bool"
        if t is n.BoolOp:
            self.cond(e.left, e.op)
            self.cond(e.right, e.op)
            return "bool"
        if t is n.Not:
            self.cond(e.operand, "NOT")
            return "bool"
        if t is n.Subquery:
            self.query(e.query)
            return "any"
        if t is n.Cast:
            self.value(e.expr)
            return TYPE_MAP[e.type][0].replace("int", "num").replace("float", "num")
        if t is n.Case:
            if e.operand is not None:
                self.value(e.operand)
            ks = set()
            for c, r in e.whens:
                if e.operand is None:
                    self.cond(c, "WHEN")
                else:
                    self.value(c)
                ks.add(self.value(r))
            if e.else_ is not None:
                ks.add(self.value(e.else_))
            ks.discard("null")
            return ks.pop() if len(ks) == 1 else "any"
        if t is n.Point:
            self.scalar(e.x, "POINT coordinates")
            self.scalar(e.y, "POINT coordinates")
            return "point"
        if t is n.Circle:
            if e.center is not None:
                self.geom(e.center, "CIRCLE")
            else:
                self.scalar(e.x, "CIRCLE coordinates")
                self.scalar(e.y, "CIRCLE coordinates")
            self.scalar(e.r, "a CIRCLE radius")
            return "circle"
        if t is n.Box:
            if e.center is not None:
                self.geom(e.center, "BOX")
            else:
                self.scalar(e.x, "BOX coordinates")
                self.scalar(e.y, "BOX coordinates")
            self.scalar(e.w, "a BOX size")
            self.scalar(e.h, "a BOX size")
            return "polygon"
        if t is n.Polygon:
            if e.points is not None:
                for p in e.points:
                    self.geom(p, "POLYGON")
            else:
                for x, y in e.coords:
                    self.scalar(x, "POLYGON coordinates")
                    self.scalar(y, "POLYGON coordinates")
            return "polygon"
        if t is n.Region:
            return "region"
        if t is n.FuncCall:
            return self.func(e)
        raise error_at(e, f"unexpected {t.__name__}")  # pragma: no cover

    def geom(self, e, fname: str) -> str:
        k = self.value(e)
        if isinstance(e, n.BinOp | n.Unary):
            raise error_at(e, f"{fname} expects a geometry here, not an arithmetic expression")
        return k

    def func(self, e: n.FuncCall) -> str:
        name = e.name
        spec = BUILTINS.get(name)
        if spec is None:
            udf = self.udfs.get(name)
            if udf is None:
                if name.startswith("IVO_"):
                    for a in e.args:
                        self.value(a)
                    return "any"
                raise error_at(e, f"unknown function '{name.lower()}'"
                               + _suggest(name, list(BUILTINS) + list(self.udfs)))
            if len(e.args) != len(udf.params):
                raise error_at(e, f"{name.lower()} takes {len(udf.params)} argument"
                               f"{'s' if len(udf.params) != 1 else ''}, not {len(e.args)}")
            for a in e.args:
                self.value(a)
            return udf.kind
        if e.star:
            return "num"
        kinds = []
        for a in e.args:
            if name in GEOMETRY_ARG_FUNCS or name == "DISTANCE" and len(e.args) == 2:
                kinds.append(self.geom(a, name))
            elif name in ("MAX", "MIN", "COUNT", "COALESCE"):
                kinds.append(self.value(a))
            else:
                kinds.append(self.scalar(a, name))
        if name in ("MAX", "MIN"):
            return kinds[0]
        if name == "COALESCE":
            ks = set(kinds) - {"null"}
            return ks.pop() if len(ks) == 1 else "any"
        return spec[2]


def _suggest(name: str, candidates: Iterable[str]) -> str:
    import difflib

    m = difflib.get_close_matches(name.upper(), [c.upper() for c in candidates], n=1,
                                  cutoff=0.6)
    return f"; did you mean '{m[0].lower()}'?" if m else ""


# -- driver -------------------------------------------------------------------

_lock = threading.Lock()
_parser: lark.Lark | None = None


def _get_parser() -> lark.Lark:
    global _parser
    if _parser is None:
        with _lock:
            if _parser is None:
                grammar = (Path(__file__).with_name("adql.lark")).read_text()
                _parser = lark.Lark(grammar, parser="lalr", lexer="basic",
                                    maybe_placeholders=True, transformer=_Builder(),
                                    cache=False)
    return _parser


class _Unexpected(Exception):
    """A syntax error found by :class:`_Engine` (turned into an ADQLError)."""

    def __init__(self, pos: int, line: int, column: int, token: Token | None = None,
                 expected: Iterable[str] | None = None):
        super().__init__(pos)
        self.pos, self.line, self.column = pos, line, column
        self.token = token  # None at the end of the query
        self.expected = None if expected is None else set(expected)  # None: bad character


def _reducer(cb, size: int, name: str):
    """One function doing what lark's callback for a rule does (child filter,
    ``maybe_placeholders`` Nones, inlined ``_rules``, ``?rule`` single-child
    expansion, then the :class:`_Builder` method), on the value stack: it pops
    the rule's ``size`` values and returns the rule's value.  An inlined rule's
    value is a plain list (lark's is a Tree its parents expand)."""
    from functools import partial

    from lark.parse_tree_builder import (
        ChildFilterLALR,
        ChildFilterLALR_NoPlaceholders,
        ExpandSingleChild,
    )

    include, append_none, single = [(i, False, 0) for i in range(size)], 0, False
    if type(cb) is ChildFilterLALR:
        include, append_none, cb = list(cb.to_include), cb.append_none, cb.node_builder
    elif type(cb) is ChildFilterLALR_NoPlaceholders:
        include, cb = [(i, e, 0) for i, e in cb.to_include], cb.node_builder
    if type(cb) is ExpandSingleChild:
        single, cb = True, cb.node_builder
    if isinstance(getattr(cb, "__self__", None), _Builder):
        builder = cb
    elif isinstance(cb, partial) and cb.func.__name__ == "default_callback":
        builder = None  # lark would build a Tree
    else:
        raise RuntimeError(f"unexpected callback for {name}")  # pragma: no cover
    items: list[str] = []
    for i, expand, add_none in include:
        items += ["None"] * (add_none or 0)
        items.append(f"*v[{i - size}]" if expand else f"v[{i - size}]")
    items += ["None"] * (append_none or 0)
    dynamic = any(x.startswith("*") for x in items)
    pop = f"    del v[-{size}:]\n" if size else ""
    if single and not dynamic and len(items) == 1:
        src = f"def r(v):\n    x = {items[0]}\n{pop}    return x\n"
    elif builder is None and not (single and dynamic) and name.startswith("_"):
        src = f"def r(v):\n    c = [{', '.join(items)}]\n{pop}    return c\n"
    elif builder is None:
        raise RuntimeError(f"unexpected tree for {name}")  # pragma: no cover
    elif single and dynamic:
        src = (f"def r(v):\n    c = [{', '.join(items)}]\n{pop}"
               "    return c[0] if len(c) == 1 else b(c)\n")
    else:
        src = f"def r(v):\n    c = [{', '.join(items)}]\n{pop}    return b(c)\n"
    scope: dict = {"b": builder}
    exec(compile(src, f"<adql reducer {name}>", "exec"), scope)  # noqa: S102 - from the grammar
    return scope["r"]


class _State(dict):
    """An LALR state: its row of the parse table (terminal or rule name -> action).

    A shift or goto action is the next state, a reduction a tuple (number of
    values, reducer, rule name), the reduction of a unit rule a :class:`_Unit`.
    Hashed and compared by identity (the :class:`_Unit` caches are keyed by state).
    """

    __slots__ = ()
    __hash__ = object.__hash__
    __eq__ = object.__eq__


class _Unit(dict):
    """The reduction of a ``?a: b`` unit rule (its callback returns its only child)
    for one lookahead in one state: the value stays and only the top state changes,
    to the state reached after all unit reductions that follow; cached here by the
    state below the top (they depend on nothing else)."""

    __slots__ = ("origin",)

    def __init__(self, origin: str):
        super().__init__()
        self.origin = origin

    def climb(self, below: _State, typ: str) -> _State:
        """The top state after this and the following unit reductions on ``typ``."""
        top = below[self.origin]
        while True:
            a = top.get(typ)
            if a.__class__ is not _Unit:
                break
            top = below[a.origin]
        self[below] = top
        return top


class _Engine:
    """lark's LALR(1) tables and rule callbacks, run by a lean loop.

    lark builds the lexer's regular expression, the parse table and the
    callbacks (the :class:`_Builder` methods, with lark's placeholders and
    inlining) once; this loop does what ``lark.Lark.parse`` does with them,
    without its per-token and per-reduction overhead (Python-level ``__eq__``
    and ``__hash__`` of tokens and rules in every table lookup, a chain of
    wrappers per callback, a Tree per inlined rule), and skips the reductions
    of ``?rule: other`` chains (the precedence ladder), whose callbacks return
    their only child.  Tokens no rule keeps ("(", ",", ...) are not built
    (except for an error message); the tokens built have no end positions.
    The token stream and the reductions are lark's: tests/test_adql_engine.py
    compares both on the test corpora.
    """

    def __init__(self, lk: lark.Lark):
        from lark.grammar import NonTerminal, Terminal
        from lark.parsers.lalr_analysis import Shift

        lexer = lk.parser.lexer
        scanner = lexer.scanner
        if len(scanner._mres) != 1 or set(lexer.callback) - {"NAME"}:
            raise RuntimeError("unexpected lexer layout")  # pragma: no cover
        mre = scanner._mres[0]
        self.ignore = frozenset(lexer.ignore_types)
        if self.ignore != {"WS", "COMMENT"}:
            raise RuntimeError("unexpected ignored terminals")  # pragma: no cover
        self.newline = frozenset(lexer.newline_types)
        self.keywords: dict[str, str] = {}
        unless = lexer.callback.get("NAME")
        for t in unless.scanner.terminals if unless else ():
            if t.pattern.type != "str" or "i" not in t.pattern.flags:
                raise RuntimeError("unexpected keyword terminal")  # pragma: no cover
            self.keywords[t.pattern.value.lower()] = t.name
        # lark's regex (its terminals in its order) without the keywords: NAME comes
        # before them and matches every keyword (which the NAME callback then retypes,
        # as the loop does)
        names = [t.name for t in scanner.terminals]
        if names != list(mre.groupindex) or any(
                names.index(k) < names.index("NAME") for k in self.keywords.values()):
            raise RuntimeError("unexpected terminal order")  # pragma: no cover

        def alternatives(skip: Iterable[str]) -> str:
            return "|".join(f"(?P<{t.name}>{t.pattern.to_regexp()})"
                            for t in scanner.terminals if t.name not in skip)

        # blanks and comments before a token are skipped by the same match (lark's
        # WS and COMMENT terminals, an atomic group: never given back, so that no
        # token can be a blank or a comment); where no token follows them (an error,
        # the end) lark's own regex matches them as tokens of their own, ignored
        ws = lexer.terminals_by_name["WS"].pattern.to_regexp()
        comment = lexer.terminals_by_name["COMMENT"].pattern.to_regexp()
        tokens = alternatives({*self.keywords.values(), *self.ignore})
        self.match = re.compile(f"(?>(?:{ws}|{comment})*)(?:{tokens})", mre.flags).match
        self.match_one = re.compile(alternatives(self.keywords.values()), mre.flags).match
        lp = lk.parser.parser.parser
        table, callbacks = lp.parse_table, lp.callbacks
        if any(isinstance(k, str) for k in callbacks):
            raise RuntimeError("terminal callbacks are not supported")  # pragma: no cover
        reducers: dict = {}
        kept: set[str] = set()  # the terminals some rule keeps
        for rule, cb in callbacks.items():
            exp = rule.expansion
            if (rule.options.expand1 and rule.alias is None and len(exp) == 1
                    and isinstance(exp[0], NonTerminal)):
                reducers[rule] = None  # a unit rule
                continue
            reducers[rule] = _reducer(cb, len(exp), rule.origin.name)
            inc = getattr(cb, "to_include", [(i,) for i in range(len(exp))])
            kept.update(exp[x[0]].name for x in inc if isinstance(exp[x[0]], Terminal))
        self.kept = frozenset(kept)
        states = {i: _State() for i in table.states}
        for i, acts in table.states.items():
            row = states[i]
            for key, (action, arg) in acts.items():
                key = sys.intern(str(key))
                origin = sys.intern(str(arg.origin.name)) if action is not Shift else ""
                if action is Shift:
                    row[key] = states[arg]
                elif reducers[arg] is None:
                    row[key] = _Unit(origin)
                else:
                    row[key] = (len(arg.expansion), reducers[arg], origin)
        self.start = states[table.start_states["start"]]
        self.end = states[table.end_states["start"]]

    def token(self, typ: str, val: str, pos: int, line: int, column: int) -> Token:
        """A lark Token (``val`` of type ``typ`` at ``pos``, line and column)."""
        tok = str.__new__(Token, val)
        tok.type, tok.value, tok.start_pos = typ, val, pos
        tok.line, tok.column = line, column
        tok.end_line = tok.end_column = tok.end_pos = None
        return tok

    def parse(self, text: str):
        """The AST of ``text`` (raises :class:`_Unexpected` or the builder's errors)."""
        match, keywords, kept, end_state = self.match, self.keywords, self.kept, self.end
        newline, new, state_type, unit_type = self.newline, str.__new__, _State, _Unit
        cur = self.start  # the state on top of the stack; ``below`` holds the others
        below: list[_State] = []
        values: list = []
        pos, line, line_start, end = 0, 1, 0, len(text)
        multiline = "\n" in text
        at_end = False
        while True:
            if pos < end:
                m = match(text, pos)
                if m is None:
                    m = self.match_one(text, pos)
                    if m is None:
                        raise _Unexpected(pos, line, pos - line_start + 1)
                    if m.lastgroup in self.ignore:  # blanks or a comment, then no token
                        val = m.group()
                        if "\n" in val:
                            line += val.count("\n")
                            line_start = pos + val.rindex("\n") + 1
                        pos = m.end()
                        continue
                typ = m.lastgroup
                start, nxt = m.span(typ)
                if multiline and start != pos:  # blanks and comments skipped
                    k = text.count("\n", pos, start)
                    if k:
                        line += k
                        line_start = text.rindex("\n", pos, start) + 1
                pos = start
                if typ == "NAME":
                    val = m.group(typ)
                    typ = keywords.get(val.lower(), "NAME")
                    tok = new(Token, val)
                    tok.type, tok.value, tok.start_pos = typ, val, pos
                    tok.line, tok.column = line, pos - line_start + 1
                elif typ in kept:
                    val = m.group(typ)
                    tok = new(Token, val)
                    tok.type, tok.value, tok.start_pos = typ, val, pos
                    tok.line, tok.column = line, pos - line_start + 1
                    if multiline and typ in newline and "\n" in val:
                        line += val.count("\n")
                        line_start = pos + val.rindex("\n") + 1
                else:  # no rule keeps it: no token (one is made for an error message)
                    tok = None
                    where = start, line, pos - line_start + 1
                pos = nxt
            else:
                typ, tok, at_end = "$END", None, True
            while True:
                act = cur.get(typ)
                cls = act.__class__
                if cls is state_type:  # shift
                    below.append(cur)
                    cur = act
                    values.append(tok)
                    break
                if cls is unit_type:  # ?a: b chains: the value stays, the state changes
                    base = below[-1]
                    cur = act.get(base) or act.climb(base, typ)
                elif act is None:
                    if tok is None and not at_end:
                        tok = self.token(typ, text[where[0]:pos], *where)
                    expected = [s for s in cur if s.isupper()]
                    raise _Unexpected(pos, line, pos - line_start + 1, tok, expected)
                else:
                    size, cb, origin = act
                    values.append(cb(values))
                    if size:
                        base = below[-size]
                        if size > 1:
                            del below[1 - size:]
                    else:
                        base = cur
                        below.append(cur)
                    cur = base[origin]
                if at_end and cur is end_state:
                    return values[-1]


_engine: _Engine | None = None


def _get_engine() -> _Engine:
    global _engine
    if _engine is None:
        parser = _get_parser()
        with _lock:
            if _engine is None:
                _engine = _Engine(parser)
    return _engine


_TOKEN_NAMES = {
    "$END": "end of query", "COMP_OP": "comparison operator", "NAME": "name",
    "DELIMITED": "quoted name", "STRING": "string", "NUMBER": "number", "LPAR": "'('",
    "RPAR": "')'", "COMMA": "','", "DOT": "'.'", "STAR": "'*'", "CONCAT": "'||'",
    "PLUS": "'+'", "MINUS": "'-'", "SLASH": "'/'", "TILDE": "'~'", "VBAR": "'|'",
    "CIRCUMFLEX": "'^'", "AMPERSAND": "'&'", "SEMICOLON": "';'",
}


def _describe_expected(expected: Iterable[str]) -> str:
    names = sorted({_TOKEN_NAMES.get(x, x) for x in expected if not x.startswith("__")})
    if not names:
        return ""
    if len(names) > 8:
        names = names[:8] + ["..."]
    return "; expected " + ", ".join(names)


def _end_position(text: str) -> tuple[int, int]:
    lines = text.rstrip().split("\n")
    return len(lines), len(lines[-1]) + 1


def _syntax_error(text: str, exc: Exception) -> ADQLError:
    if isinstance(exc, _Unexpected):
        if exc.expected is not None and exc.token is not None:
            exc = lark.UnexpectedToken(exc.token, exc.expected)
        elif exc.expected is not None:
            line, col = _end_position(text)
            return ADQLError("unexpected end of query" + _describe_expected(exc.expected),
                             line, col)
        else:
            exc = lark.UnexpectedCharacters(text, exc.pos, exc.line, exc.column)
    if isinstance(exc, lark.UnexpectedCharacters):
        ch = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
        if ch == '"':
            msg = "unterminated or empty quoted name (delimited identifier)"
        elif ch == "'":
            msg = "unterminated string literal"
        elif ch.isdigit() or ch == ".":
            msg = ("malformed number: a number cannot be directly followed by a letter, "
                   "digit or '.' (write a space or AS before a name)")
        elif ch == "_":
            msg = "unexpected character '_': names must start with a letter (or be quoted)"
        else:
            msg = f"unexpected character {ch!r}"
        return ADQLError(msg, exc.line, exc.column)
    if isinstance(exc, lark.UnexpectedToken):
        tok = exc.token
        if tok.type == "$END":
            line, col = _end_position(text)
            return ADQLError("unexpected end of query" + _describe_expected(exc.expected),
                             line, col)
        return ADQLError(f"syntax error at '{tok}'" + _describe_expected(exc.expected),
                         tok.line, tok.column)
    if isinstance(exc, lark.UnexpectedEOF):
        line, col = _end_position(text)
        return ADQLError("unexpected end of query", line, col)
    return ADQLError(f"cannot parse query: {exc}", 1, 1)


def parse(text: str, version: str = "2.1", udfs: Iterable[str] = ()) -> Query:
    """Parse and check ADQL ``text``; raise :class:`ADQLError` if it is not valid.

    ``udfs`` are TAPRegExt signatures (``name(arg TYPE, ...) -> TYPE``) of the
    user-defined functions the service declares, besides the ones this package
    implements (:data:`adql.IMPLEMENTED_UDFS`, always known).
    """
    if not isinstance(text, str):
        raise ADQLError("the query must be a string", 0, 0)
    version = str(version).lower().removeprefix("adql-")
    if version not in SUPPORTED_VERSIONS:
        raise ADQLError(f"unsupported ADQL version {version!r}", 0, 0)
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise ADQLError("the query contains a NUL character", line, 1)
    declared: dict[str, UDF] = {u.name: u for u in IMPLEMENTED_UDFS}
    for form in udfs:
        u = parse_udf(form) if isinstance(form, str) else form
        declared[u.name] = u
    if not text.strip():
        raise ADQLError("the query is empty", 1, 1)
    try:
        root = _get_engine().parse(text)
    except ADQLError:
        raise
    except _Unexpected as exc:
        raise _syntax_error(text, exc) from None
    except lark.exceptions.VisitError as exc:  # pragma: no cover - defensive
        if isinstance(exc.orig_exc, ADQLError):
            raise exc.orig_exc from None
        raise ADQLError(f"cannot parse query: {exc.orig_exc}", 1, 1) from None
    except lark.LarkError as exc:
        raise _syntax_error(text, exc) from None
    except RecursionError:
        raise ADQLError("the query is nested too deeply", 1, 1) from None
    try:
        _Checker(declared).query(root, top_level=True)
    except RecursionError:
        raise ADQLError("the query is nested too deeply", 1, 1) from None
    return Query(text=text, root=root, version=version, udfs=declared)
