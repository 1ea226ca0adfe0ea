"""AST node classes produced by :func:`adql.parse`.

Plain slotted classes (fast to build); every node carries the line and column
of its first token.
"""

from __future__ import annotations

from typing import Any


class Node:
    __slots__ = ("line", "col")
    _fields: tuple[str, ...] = ()

    def __init__(self, line: int, col: int, **kw: Any):
        self.line = line
        self.col = col
        for f in self._fields:
            setattr(self, f, kw.get(f))

    def __repr__(self) -> str:
        inner = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__name__}({inner})"

    def children(self):
        for f in self._fields:
            v = getattr(self, f)
            if isinstance(v, Node):
                yield v
            elif isinstance(v, list | tuple):
                for x in v:
                    if isinstance(x, Node):
                        yield x
                    elif isinstance(x, tuple):
                        yield from (y for y in x if isinstance(y, Node))


def _node(name: str, fields: str) -> type[Node]:
    fs = tuple(fields.split())
    # Node.__init__ spelled out for these fields (the parser builds many nodes)
    params = "".join(f", {f}=None" for f in fs)
    src = (f"def __init__(self, line, col{', *' if fs else ''}{params}, **_):\n"
           "    self.line = line\n    self.col = col\n"
           + "".join(f"    self.{f} = {f}\n" for f in fs))
    scope: dict = {}
    exec(src, scope)  # noqa: S102 - fixed field names
    return type(name, (Node,), {"__slots__": fs, "_fields": fs, "__init__": scope["__init__"]})


class Ident(Node):
    """An identifier; ``delimited`` ones match case-sensitively."""

    __slots__ = ("name", "delimited")
    _fields = ("name", "delimited")

    def __init__(self, line: int, col: int, name: str, delimited: bool):
        self.line = line
        self.col = col
        self.name = name
        self.delimited = delimited

    def matches(self, name: str) -> bool:
        if self.delimited:
            return self.name == name
        return self.name.lower() == name.lower()

    def __str__(self) -> str:
        return self.name


class ReservedIdent(Ident):
    """A regular identifier spelled like a reserved word: only allowed where it names a
    schema or table (see :func:`adql.parser.plain_name`)."""

    __slots__ = ()


# -- value expressions ------------------------------------------------------
Literal = _node("Literal", "value kind text")  # kind: int float str null
ColumnRef = _node("ColumnRef", "parts")  # list[Ident]
Unary = _node("Unary", "op operand")
BinOp = _node("BinOp", "op left right")  # + - * / || & | ^
Compare = _node("Compare", "op left right")
Between = _node("Between", "expr low high negated")
InList = _node("InList", "expr items negated")
InSub = _node("InSub", "expr query negated")
Like = _node("Like", "expr pattern negated ci")
IsNull = _node("IsNull", "expr negated")
Exists = _node("Exists", "query")
BoolOp = _node("BoolOp", "op left right")  # AND / OR
Not = _node("Not", "operand")
FuncCall = _node("FuncCall", "name args quantifier star")  # name upper-cased
Cast = _node("Cast", "expr type length")
Case = _node("Case", "operand whens else_")
Subquery = _node("Subquery", "query")
Paren = _node("Paren", "expr")
# geometry constructors (normalised by the parser)
Point = _node("Point", "sys x y")
Circle = _node("Circle", "sys center x y r")  # center (point expr) or x, y
Box = _node("Box", "sys center x y w h")
Polygon = _node("Polygon", "sys points coords")  # points: list of exprs or coords
Region = _node("Region", "text")

# -- query structure ----------------------------------------------------------
SelectItem = _node("SelectItem", "expr alias")
QualifiedStar = _node("QualifiedStar", "parts")
TableName = _node("TableName", "parts alias")
DerivedTable = _node("DerivedTable", "query alias")
Join = _node("Join", "left right kind natural on using explicit")
Select = _node("Select", "quantifier top items from_ where group_by having")
SetOp = _node("SetOp", "op all left right")
OrderItem = _node("OrderItem", "expr desc")
QueryExpr = _node("QueryExpr", "body order_by offset ctes")
CTE = _node("CTE", "name query")
