"""Browser login: session cookie, CSRF, throttling, logout (plain HTTP, both databases).

The accounts are those of HTTP Basic (conftest: ALICE granted every source, BOB
none); what a session sees is compared with what the same account sees with HTTP
Basic, never with numbers written here.
"""

from __future__ import annotations

import re

import pytest
import requests
from conftest import ALICE, BOB, Deployment, LiveServer
from test_portal_service_pages import BROWSER, one

from voservice.app import create_app


def login_page(session: requests.Session, server: LiveServer) -> str:
    """GET /login and return its CSRF token."""
    r = session.get(f"{server.url}/login", headers={"Accept": BROWSER}, timeout=60)
    assert r.status_code == 200
    return re.search(r'name="_csrf_token" value="([^"]+)"', r.text).group(1)


def log_in(server: LiveServer, who: tuple[str, str]) -> requests.Session:
    """A requests session logged in through the form, as a browser does."""
    s = requests.Session()
    token = login_page(s, server)
    r = s.post(f"{server.url}/login", data={"_csrf_token": token, "name": who[0],
               "password": who[1], "next": "/tap"}, allow_redirects=False, timeout=60)
    assert r.status_code == 303 and r.headers["Location"] == "/tap", r.text[:300]
    return s


def page_token(session: requests.Session, server: LiveServer) -> str:
    """The CSRF token of the logged-in header's logout form."""
    r = session.get(f"{server.url}/adql", headers={"Accept": BROWSER}, timeout=60)
    return re.search(r'name="_csrf_token" value="([^"]+)"', r.text).group(1)


def points_query(session: requests.Session, server: LiveServer, **kwargs: object) -> int:
    """Rows of skvo.point the session's user may fetch (TAP sync, CSV)."""
    r = session.post(f"{server.url}/tap/sync", data={"LANG": "ADQL", "RESPONSEFORMAT": "csv",
                     "QUERY": "SELECT COUNT(*) AS n FROM skvo.point"}, timeout=60, **kwargs)
    assert r.status_code == 200, r.text[:300]
    return int(r.text.splitlines()[1])


def test_the_cookie_is_signed_httponly_and_samesite(server: LiveServer) -> None:
    s = requests.Session()
    r = s.get(f"{server.url}/login", timeout=60)
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("skvo_session=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http on loopback
    # a forged cookie is no session: the form shows no logged-in user
    forged = requests.get(f"{server.url}/login", cookies={"skvo_session": "eyJzaWQiOiJ4In0."
                          "Zz.forged"}, timeout=60)
    assert "You are logged in" not in forged.text


def test_secure_cookie_over_https(sqlite_deployment: Deployment) -> None:
    """Behind TLS (here the test client's https URL) the cookie is Secure."""
    app = create_app(sqlite_deployment.settings())
    client = app.test_client(use_cookies=False)
    r = client.get("/login", base_url="https://skvo.example.org")
    assert "Secure" in r.headers["Set-Cookie"] and "HttpOnly" in r.headers["Set-Cookie"]
    r = client.get("/login", base_url="http://skvo.example.org")
    assert "Secure" not in r.headers["Set-Cookie"]


def test_login_needs_the_csrf_token(server: LiveServer) -> None:
    s = requests.Session()
    login_page(s, server)
    r = s.post(f"{server.url}/login", data={"name": ALICE[0], "password": ALICE[1]},
               allow_redirects=False, timeout=60)
    assert r.status_code == 400 and "CSRF" in r.text
    r = s.post(f"{server.url}/login", data={"name": ALICE[0], "password": ALICE[1],
               "_csrf_token": "forged"}, allow_redirects=False, timeout=60)
    assert r.status_code == 400
    r = s.post(f"{server.url}/login", data={"name": ALICE[0], "password": "wrong",
               "_csrf_token": login_page(s, server)}, allow_redirects=False, timeout=60)
    assert r.status_code == 401 and "wrong password" in r.text


def test_a_session_sees_what_basic_sees(server: LiveServer) -> None:
    alice = log_in(server, ALICE)
    basic = points_query(requests.Session(), server, auth=ALICE)
    anonymous = points_query(requests.Session(), server)
    assert basic > anonymous
    # GET is safe: the session acts for alice
    r = alice.get(f"{server.url}/tap/sync", params={"LANG": "ADQL", "RESPONSEFORMAT": "csv",
                  "QUERY": "SELECT COUNT(*) AS n FROM skvo.point"}, timeout=60)
    assert int(r.text.splitlines()[1]) == basic
    # a POST without the CSRF token (a cross-site form) runs as anonymous ...
    assert points_query(alice, server) == anonymous
    # ... with it, as alice
    token = page_token(alice, server)
    assert points_query(alice, server, headers={"X-CSRF-Token": token}) == basic
    # the on_demand light curve: 401 anonymous, the VOTable for alice's session
    locked = one(server, "on_demand")
    url = f"{server.url}/lightcurve/{locked.uuid}/{locked.band}"
    assert requests.get(url, timeout=60).status_code == 401
    assert alice.get(url, timeout=60).status_code == 200
    # the header names her and offers the logout
    page = alice.get(f"{server.url}/tap", headers={"Accept": BROWSER}, timeout=60).text
    assert 'class="who"' in page and "alice" in page and "Log out" in page
    # bob's session is bob's: no grants
    bob = log_in(server, BOB)
    assert alice.cookies["skvo_session"] != bob.cookies["skvo_session"]
    assert bob.get(url, timeout=60).status_code == 403


def test_logout_needs_the_token_and_ends_the_session(server: LiveServer) -> None:
    alice = log_in(server, ALICE)
    locked = one(server, "on_demand")
    url = f"{server.url}/lightcurve/{locked.uuid}/{locked.band}"
    stolen = alice.cookies["skvo_session"]
    r = alice.post(f"{server.url}/logout", allow_redirects=False, timeout=60)
    assert r.status_code == 400
    assert alice.get(url, timeout=60).status_code == 200  # still logged in
    r = alice.post(f"{server.url}/logout", data={"_csrf_token": page_token(alice, server)},
                   allow_redirects=False, timeout=60)
    assert r.status_code == 303
    assert alice.get(url, timeout=60).status_code == 401
    # a copy of the old cookie is no key any more: the session is gone on the server
    assert requests.get(url, cookies={"skvo_session": stolen}, timeout=60).status_code == 401


@pytest.mark.parametrize("form", [True, False], ids=["form-then-basic", "basic-then-form"])
def test_login_throttling_applies_to_the_form(server: LiveServer, form: bool) -> None:
    """Failed form logins count as failed Basic logins of the name, and back off."""
    name = f"mallory-{server.dep.port}-{form}"
    s = requests.Session()

    def by_form() -> requests.Response:
        return s.post(f"{server.url}/login", data={"name": name, "password": "guess",
                      "_csrf_token": login_page(s, server)}, allow_redirects=False, timeout=60)

    def by_basic() -> requests.Response:
        return requests.get(f"{server.url}/tap/capabilities", auth=(name, "guess"), timeout=60)

    first, other = (by_form, by_basic) if form else (by_basic, by_form)
    statuses = [first().status_code for _ in range(5)]
    assert statuses == [401] * 5, statuses
    r = first()
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    r = other()  # the other door is shut for the name too
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
