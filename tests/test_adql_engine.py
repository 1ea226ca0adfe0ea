"""adql.parser's lean LALR loop (``_Engine``) against lark's own ``Lark.parse`` on
the same tables and callbacks: the same AST for every query that parses, the same
error (message, line, column) for every one that does not.  Corpora: lyonetia,
the grammar tests' features and errors, the standard's examples, and token soups
and mutations from hypothesis."""

from __future__ import annotations

import lark
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_adql_conformance import CASES
from test_adql_fuzz import TOKENS
from test_adql_grammar import ERRORS, FEATURES, STANDARD_EXAMPLES

from adql import ADQLError
from adql import parser as P


def _tree(node) -> object:
    """A comparable form of an AST (nodes, their fields and positions)."""
    if isinstance(node, P.n.Node):
        fields = tuple((f, _tree(getattr(node, f))) for f in node._fields)
        return (type(node).__name__, node.line, node.col, fields)
    if isinstance(node, list | tuple):
        return tuple(_tree(x) for x in node)
    if isinstance(node, lark.Token):
        return ("token", node.type, str(node), node.line, node.column)
    return node


def _outcome(text: str, engine: bool) -> object:
    try:
        root = (P._get_engine() if engine else P._get_parser()).parse(text)
    except ADQLError as exc:
        return ("error", exc.message, exc.line, exc.column)
    except P._Unexpected as exc:
        e = P._syntax_error(text, exc)
        return ("error", e.message, e.line, e.column)
    except lark.LarkError as exc:
        if isinstance(exc, lark.exceptions.VisitError) and isinstance(exc.orig_exc, ADQLError):
            e = exc.orig_exc
        else:
            e = P._syntax_error(text, exc)
        return ("error", e.message, e.line, e.column)
    return ("ok", _tree(root))


def _same(text: str) -> None:
    assert _outcome(text, True) == _outcome(text, False), text


TEXTS = ([c.values[0] for c in CASES] + list(FEATURES) + [e[0] for e in ERRORS]
         + [x if isinstance(x, str) else x[0] for x in STANDARD_EXAMPLES]
         + ["", "   ", "SELECT", "SELECT 89x FROM t", "SELECT 'abc", 'SELECT "x FROM t',
            "SELECT a FROM t;", "SELECT a FROM t; SELECT b FROM t", "SELECT a\nFROM t\nWHERE",
            "SELECT a -- c\n, b FROM t WHERE x = 'a\nb'", "SELECT _a FROM t", "SELECT a FROM t #"])


def test_same_as_lark_on_the_corpora() -> None:
    oks = errors = 0
    for text in TEXTS:
        _same(text)
        if _outcome(text, True)[0] == "ok":
            oks += 1
        else:
            errors += 1
    assert oks > 400 and errors > 80


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS + ["\n", ";", "89x", "1desc"]), min_size=1,
                max_size=30))
def test_same_as_lark_on_token_soup(tokens) -> None:
    _same(" ".join(tokens))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FEATURES), st.integers(0, 400), st.sampled_from(TOKENS + ["", "\n"]))
def test_same_as_lark_on_mutations(q, pos, tok) -> None:
    pos = min(pos, len(q))
    _same(q[:pos] + " " + tok + " " + q[pos:])
    _same(q[:pos] + q[pos + 1:])


@pytest.mark.parametrize("text", ["SELECT a FROM t WHERE", "SELECT a FROM (SELECT"])
def test_end_of_query_errors_say_what_was_expected(text: str) -> None:
    kind, message, line, col = _outcome(text, True)
    assert kind == "error" and message.startswith("unexpected end of query; expected")
    assert (line, col) == (1, len(text) + 1)
