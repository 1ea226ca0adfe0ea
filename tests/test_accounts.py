"""Accounts under attack and change: login throttling, equal work, immediate revocation.

In-process tests count the PBKDF2 computations of :mod:`voservice.access`;
the live tests run ``skvo serve`` (two worker processes) on a deployment of
their own with small throttle thresholds, on SQLite and on MariaDB.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from conftest import Deployment, LiveServer, demo_sources, deploy, mariadb_database

from voservice import access, users
from voservice.access import LoginPolicy, Throttled, authenticate
from voservice.cli import main
from voservice.model import login_failure
from voservice.stores.metadata import initdb, make_engine

#: thresholds of the live deployments ([server] login_*)
NAME_FAILURES = 3
ADDRESS_FAILURES = 8
#: fresh connections per check: enough to reach each of the two worker processes
REPEAT = 12
COUNT_QUERY = "SELECT COUNT(*) AS n FROM ivoa.obscore"


def basic(name: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()


# --------------------------------------------------------------------------
# In process: what the code does per request


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    eng = make_engine(f"sqlite:///{tmp_path / 'meta.sqlite'}")
    initdb(eng)
    return eng


@pytest.fixture
def pbkdf2_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The rounds of every PBKDF2 computation from now on."""
    calls: list[int] = []
    real = access._pbkdf2

    def counted(password: str, salt: str, rounds: int) -> bytes:
        calls.append(rounds)
        return real(password, salt, rounds)

    monkeypatch.setattr(access, "_pbkdf2", counted)
    access._VERIFIED.clear()
    return calls


def test_unknown_name_costs_the_same_pbkdf2_as_a_wrong_password(
        engine: sa.Engine, pbkdf2_calls: list[int]) -> None:
    users.add_user(engine, "alice", password="wonderland")
    users.add_user(engine, "tokenonly")  # an account without a password
    access.prepare_authentication(engine)  # the dummy hash is made before any login
    outcomes = {}
    for label, header in (("known", basic("alice", "wrong")),
                          ("unknown", basic("nobody", "wrong")),
                          ("no password", basic("tokenonly", "wrong"))):
        pbkdf2_calls.clear()
        outcomes[label] = (authenticate(engine, header), list(pbkdf2_calls))
    assert outcomes == {label: (None, [access._PBKDF2_ROUNDS]) for label in outcomes}


def test_throttled_logins_are_refused_before_hashing(engine: sa.Engine,
                                                     pbkdf2_calls: list[int]) -> None:
    users.add_user(engine, "alice", password="wonderland")
    access.prepare_authentication(engine)
    policy = LoginPolicy(name_failures=2, address_failures=0, backoff_max=60)
    assert authenticate(engine, basic("alice", "wonderland"), policy=policy) is not None
    for _ in range(2):
        assert authenticate(engine, basic("alice", "guess"), policy=policy) is None
    pbkdf2_calls.clear()
    # refused although this right header is verified and cached: a blocked guesser
    # must not learn that a guess matched
    for header in (basic("alice", "guess"), basic("alice", "wonderland")):
        with pytest.raises(Throttled) as caught:
            authenticate(engine, header, policy=policy)
        assert caught.value.retry_after == 1
    assert pbkdf2_calls == []
    other = authenticate(engine, basic("bob", "x"), policy=policy)  # another name is free
    assert other is None and pbkdf2_calls == [access._PBKDF2_ROUNDS]


def test_backoff_doubles_up_to_the_maximum() -> None:
    policy = LoginPolicy(name_failures=5, address_failures=50, backoff_max=300)
    assert [policy.backoff(n, 5) for n in (1, 4, 5, 6, 7, 12, 14, 40)] == [
        0, 0, 1, 2, 4, 128, 300, 300]
    assert policy.backoff(1000, 0) == 0  # threshold 0: throttle off


def test_verified_login_is_checked_against_the_database_every_time(
        engine: sa.Engine, pbkdf2_calls: list[int]) -> None:
    users.add_user(engine, "alice", password="wonderland")
    users.grant(engine, "alice", "upjs")
    header = basic("alice", "wonderland")
    pbkdf2_calls.clear()
    first = authenticate(engine, header)
    assert first is not None and first.sources == {"upjs"} and len(pbkdf2_calls) == 1
    assert authenticate(engine, header) == first and len(pbkdf2_calls) == 1  # no new hash
    users.revoke(engine, "alice", "upjs")
    assert authenticate(engine, header).sources == frozenset()
    users.grant(engine, "alice", "vhao")
    assert authenticate(engine, header).sources == {"vhao"}
    assert len(pbkdf2_calls) == 1  # grants changed, the hash was not recomputed
    users.set_password(engine, "alice", "looking-glass")
    pbkdf2_calls.clear()
    assert authenticate(engine, header) is None and len(pbkdf2_calls) == 1  # checked anew
    assert authenticate(engine, basic("alice", "looking-glass")).sources == {"vhao"}
    users.remove_user(engine, "alice")
    assert authenticate(engine, basic("alice", "looking-glass")) is None
    users.add_user(engine, "alice", password="looking-glass")
    again = authenticate(engine, basic("alice", "looking-glass"))
    assert again is not None and again.sources == frozenset()
    assert again.user_id != first.user_id


def test_an_ipv6_client_is_counted_by_its_64(engine: sa.Engine) -> None:
    policy = LoginPolicy(name_failures=0, address_failures=2, backoff_max=60)
    for host in ("2001:db8:1:2::10", "2001:db8:1:2:aaaa::1"):
        assert authenticate(engine, basic("nobody", "x"), host, policy=policy) is None
    with pytest.raises(Throttled):
        authenticate(engine, basic("nobody", "x"), "2001:db8:1:2::99", policy=policy)
    assert authenticate(engine, basic("nobody", "x"), "2001:db8:1:3::10", policy=policy) is None


def test_successful_login_clears_the_name_counter(engine: sa.Engine) -> None:
    users.add_user(engine, "alice", password="wonderland")
    policy = LoginPolicy(name_failures=2, address_failures=0, backoff_max=60)
    assert authenticate(engine, basic("alice", "guess"), policy=policy) is None
    assert authenticate(engine, basic("alice", "wonderland"), policy=policy) is not None
    assert authenticate(engine, basic("alice", "guess"), policy=policy) is None  # 1st again
    with engine.connect() as conn:
        assert conn.execute(sa.select(login_failure.c.failures)).scalars().all() == [1]


def test_server_start_adds_the_failure_table_to_an_older_database(tmp_path: Path) -> None:
    from voservice.app import create_app
    from voservice.config import load_config

    ini = tmp_path / "skvo.ini"
    ini.write_text("[metadata]\nurl = sqlite:///meta.sqlite\n[server]\njobs_path = jobs\n")
    engine = make_engine(f"sqlite:///{tmp_path / 'meta.sqlite'}")
    initdb(engine)
    login_failure.drop(engine)
    users.add_user(engine, "alice", password="wonderland")
    client = create_app(load_config(ini)).test_client()
    response = client.get("/", headers={"Authorization": basic("alice", "guess")})
    assert response.status_code == 401
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(login_failure)).scalar() == 2


def test_user_passwd_command(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ini = tmp_path / "skvo.ini"
    ini.write_text("[metadata]\nurl = sqlite:///meta.sqlite\n")
    cfg = ["--config", str(ini)]
    assert main(["user", "add", "alice", "--password", "old", *cfg]) == 0
    assert main(["user", "passwd", "alice", "--password", "new", *cfg]) == 0
    assert "alice has a new password" in capsys.readouterr().out
    engine = make_engine(f"sqlite:///{tmp_path / 'meta.sqlite'}")
    assert authenticate(engine, basic("alice", "old")) is None
    assert authenticate(engine, basic("alice", "new")).name == "alice"
    assert main(["user", "passwd", "carol", "--password", "x", *cfg]) == 2
    assert "no user named 'carol'" in capsys.readouterr().err


# --------------------------------------------------------------------------
# Live: ``skvo serve`` with two workers


@pytest.fixture(scope="module", params=["sqlite", "mariadb"])
def accounts_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                    demo_tree: Path) -> Iterator[LiveServer]:
    """A server of its own (its failure counters are the tests' business)."""
    root = tmp_path_factory.mktemp(f"accounts-{request.param}")
    url = ("sqlite:///skvo.sqlite" if request.param == "sqlite"
           else mariadb_database("skvo_accounts_test"))
    dep = deploy(root, demo_tree, url, server={
        "login_failures_per_name": str(NAME_FAILURES),
        "login_failures_per_address": str(ADDRESS_FAILURES),
        "login_backoff_max": "4",
    })
    server = LiveServer(dep)
    server.start()
    yield server
    server.stop()


def forget_failures(dep: Deployment) -> None:
    """Empty the failure counters (each test starts unthrottled)."""
    engine = make_engine(dep.settings().metadata_url)
    with engine.begin() as conn:
        conn.execute(login_failure.delete())
    engine.dispose()


@pytest.fixture
def live(accounts_server: LiveServer) -> LiveServer:
    forget_failures(accounts_server.dep)
    return accounts_server


def tap_get(server: LiveServer, auth: tuple[str, str] | None) -> requests.Response:
    """A sync TAP query on a fresh connection."""
    return requests.get(f"{server.url}/tap/sync", timeout=60, auth=auth, params={
        "REQUEST": "doQuery", "LANG": "ADQL", "QUERY": COUNT_QUERY, "RESPONSEFORMAT": "csv"})


def visible(server: LiveServer, auth: tuple[str, str] | None) -> int:
    response = tap_get(server, auth)
    assert response.status_code == 200, response.text[:500]
    return int(response.text.split()[-1])


def refused(server: LiveServer, auth: tuple[str, str]) -> list[int]:
    """Statuses of REPEAT queries with credentials that must not work any more."""
    return [tap_get(server, auth).status_code for _ in range(REPEAT)]


def wait_out(response: requests.Response) -> None:
    assert response.status_code == 429
    time.sleep(int(response.headers["Retry-After"]) + 0.2)


def test_failed_logins_of_a_name_are_throttled(live: LiveServer) -> None:
    live.dep.skvo("user", "add", "carol", "--password", "right")
    statuses = [tap_get(live, ("carol", f"guess{i}")).status_code
                for i in range(NAME_FAILURES)]
    assert statuses == [401] * NAME_FAILURES
    blocked = tap_get(live, ("carol", "right"))  # even the right password waits
    assert blocked.status_code == 429
    assert 1 <= int(blocked.headers["Retry-After"]) <= 4
    assert blocked.headers["Content-Type"].startswith("application/x-votable+xml")
    assert b"RateLimited" in blocked.content
    page = requests.get(f"{live.url}/", auth=("carol", "guess"), timeout=30)
    assert page.status_code == 429 and page.headers["Content-Type"].startswith("text/plain")
    assert visible(live, ("alice", "wonderland")) > 0  # another name is not affected
    wait_out(blocked)
    assert tap_get(live, ("carol", "right")).status_code == 200
    # the success forgot the name's failures: the next wrong password is a 401 again
    assert tap_get(live, ("carol", "guess")).status_code == 401


def test_failed_logins_from_an_address_are_throttled(live: LiveServer) -> None:
    statuses = [tap_get(live, (f"nobody{i}", "guess")).status_code
                for i in range(ADDRESS_FAILURES)]
    assert statuses == [401] * ADDRESS_FAILURES  # each name failed once only
    blocked = tap_get(live, ("alice", "wonderland"))
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) >= 1
    assert requests.get(f"{live.url}/tap/sync", timeout=30,
                        headers={"Authorization": "Bearer guessed"}).status_code == 429
    assert visible(live, None) > 0  # anonymous requests are not throttled
    wait_out(blocked)
    assert visible(live, ("alice", "wonderland")) > 0


def test_changes_of_an_account_apply_to_the_next_request(live: LiveServer,
                                                         demo_tree: Path) -> None:
    dep = live.dep
    dave = ("dave", "first-pw")
    dep.skvo("user", "add", dave[0], "--password", dave[1])
    dep.skvo("user", "grant", dave[0], *demo_sources(demo_tree))
    anonymous, everything = visible(live, None), visible(live, ("alice", "wonderland"))
    assert everything > anonymous
    assert {visible(live, dave) for _ in range(REPEAT)} == {everything}  # cached everywhere

    dep.skvo("user", "revoke", dave[0], *demo_sources(demo_tree))
    assert {visible(live, dave) for _ in range(REPEAT)} == {anonymous}
    dep.skvo("user", "grant", dave[0], *demo_sources(demo_tree))
    assert {visible(live, dave) for _ in range(REPEAT)} == {everything}

    dep.skvo("user", "passwd", dave[0], "--password", "second-pw")
    statuses = refused(live, dave)
    assert statuses[0] == 401 and 200 not in statuses, statuses
    forget_failures(dep)
    dave = ("dave", "second-pw")
    assert {visible(live, dave) for _ in range(REPEAT)} == {everything}

    token = dep.skvo("user", "token", dave[0]).stdout.strip()
    bearer = {"Authorization": f"Bearer {token}"}
    assert requests.get(f"{live.url}/", headers=bearer, timeout=30).status_code == 200
    dep.skvo("user", "token", dave[0])  # a new token replaces the old one
    assert requests.get(f"{live.url}/", headers=bearer, timeout=30).status_code == 401

    dep.skvo("user", "remove", dave[0])
    statuses = refused(live, dave)
    assert statuses[0] == 401 and 200 not in statuses, statuses
    forget_failures(dep)
    dep.skvo("user", "add", dave[0], "--password", dave[1])  # same name, same password
    assert {visible(live, dave) for _ in range(REPEAT)} == {anonymous}  # a new principal
