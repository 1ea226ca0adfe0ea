"""Nasty values against the service pages, the login and the browser views (SQLite).

The invariants are those of tests/test_fuzz_endpoints.py (:func:`check`: no 5xx, no
stack trace or database message, well-formed XML); the browser views are reached with
a browser's Accept header, so the HTML paths are the ones fuzzed.
"""

from __future__ import annotations

import re

import requests
from conftest import ALICE, LiveServer
from test_fuzz_endpoints import NASTY, NASTY_TEXT, Kind, check, send
from test_portal_service_pages import BROWSER, one

PAGE = Kind()


def test_service_pages_and_login_survive_nasty_values(sqlite_server: LiveServer) -> None:
    """Few wrong passwords are sent: the address throttle (50 failures) is shared by the
    tests of this session, all from loopback."""
    curve = one(sqlite_server, "open")
    s = requests.Session()
    s.headers["Accept"] = BROWSER
    token = re.search(r'name="_csrf_token" value="([^"]+)"',
                      s.get(f"{sqlite_server.url}/login", timeout=60).text).group(1)
    alice = (("name", ALICE[0]), ("password", ALICE[1]), ("_csrf_token", token))
    empty = (("name", ""), ("password", ""), ("_csrf_token", token))  # refused before the check
    cases = [  # method, path, parameter, values, the other parameters
        ("GET", "/adql", "example", NASTY, ()), ("GET", "/adql", "query", NASTY_TEXT, ()),
        ("GET", "/adql", "run", NASTY_TEXT, ()), ("GET", "/login", "next", NASTY, ()),
        ("POST", "/login", "name", NASTY_TEXT, (("password", "x"), ("_csrf_token", token))),
        ("POST", "/login", "password", NASTY, empty), ("POST", "/login", "_csrf_token", NASTY,
                                                        empty),
        ("POST", "/login", "next", NASTY, alice), ("POST", "/logout", "next", NASTY_TEXT, ()),
        ("POST", "/logout", "_csrf_token", NASTY_TEXT, ()),
        ("GET", "/datalink", "ID", NASTY, ()),
        ("GET", f"/lightcurve/{curve.uuid}/{curve.band}", "TIME", NASTY_TEXT, ()),
        ("GET", f"/lightcurve/star/{curve.target_id}", "BAND", NASTY_TEXT, ()),
    ]
    failures: list[str] = []
    for method, path, name, values, others in cases:
        for value in values:
            pairs = [(k, v) for k, v in others if k != name] + [(name, value)]
            try:
                r = send(s, method, sqlite_server.url + path, pairs)
                check(r, PAGE, pairs)
                if r.status_code in (301, 302, 303):  # never off this site
                    assert r.headers["Location"].startswith("/"), r.headers["Location"]
                    assert not r.headers["Location"].startswith("//")
            except (AssertionError, requests.RequestException) as exc:
                failures.append(f"{method} {path} {name}={value[:40]!r}: {str(exc)[:300]}")
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures)


def test_login_redirects_stay_on_this_site(sqlite_server: LiveServer) -> None:
    """``next`` may only be a local path: no open redirect after logging in."""
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example",
                   "javascript:alert(1)", "/tap/examples"):
        s = requests.Session()
        token = re.search(r'name="_csrf_token" value="([^"]+)"',
                          s.get(f"{sqlite_server.url}/login", timeout=60).text).group(1)
        r = s.post(f"{sqlite_server.url}/login", data={"_csrf_token": token, "name": ALICE[0],
                   "password": ALICE[1], "next": target}, allow_redirects=False, timeout=60)
        assert r.status_code == 303
        expected = target if target == "/tap/examples" else "/"
        assert r.headers["Location"] == expected, target
