"""adql.parse from many threads at once, as the server's request threads call it:
every thread gets the answer (AST or error) one thread alone gets, also while the
parser is being built and its caches filled."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

from test_adql_conformance import CASES
from test_adql_engine import _tree
from test_adql_grammar import ERRORS

import adql
from adql import parser as P


def _answer(text: str) -> tuple:
    try:
        return ("ok", _tree(adql.parse(text).root))
    except adql.ADQLError as exc:
        return ("error", exc.message, exc.line, exc.column)


def test_parse_from_threads_answers_as_one_thread(monkeypatch) -> None:
    texts = [c.values[0] for c in CASES] + [e[0] for e in ERRORS]
    alone = [_answer(t) for t in texts]
    assert {a[0] for a in alone} == {"ok", "error"}
    monkeypatch.setattr(P, "_engine", None)  # a new engine: empty caches, built by a thread
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        with ThreadPoolExecutor(8) as pool:
            for _ in range(2):
                assert list(pool.map(_answer, texts)) == alone
    finally:
        sys.setswitchinterval(switch)
