"""Shared fixtures: the sample tree, loaded deployments and live servers.

A *deployment* is a folder with its own skvo.ini, a metadata database
(SQLite file or a MariaDB database on loopback), the stores, the sample data
loaded by the real uploader, and test accounts.  ``live_server`` runs
``skvo serve`` for it as a separate process on a free loopback port, so the
tests talk HTTP to the real server, as TOPCAT and pyvo do.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

MARIADB_URL = os.environ.get("SKVO_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306")
#: prefix of every MariaDB database the tests create (runs side by side need their own,
#: and so does each pytest-xdist worker)
DB_PREFIX = os.environ.get("SKVO_TEST_DB_PREFIX", "") + (
    f"{os.environ['PYTEST_XDIST_WORKER']}_" if os.environ.get("PYTEST_XDIST_WORKER") else "")

#: test accounts: name -> (password, whether granted every non-open source)
ALICE = ("alice", "wonderland")  # granted all sources
BOB = ("bob", "builder")  # no grants
ADMIN = ("root", "toor")


def free_port() -> int:
    """A TCP port on loopback nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pymysql_database(name: str):  # noqa: ANN201 - a pymysql connection
    """An autocommit PyMySQL connection to database ``DB_PREFIX + name`` (created if
    missing) on the test server; fails, never skips, when the server does not answer."""
    import pymysql
    from sqlalchemy.engine import make_url

    url = make_url(MARIADB_URL)
    conn = pymysql.connect(host=url.host or "127.0.0.1", port=url.port or 3306,
                           user=url.username or "root", password=url.password or "",
                           autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{DB_PREFIX}{name}`")
        cur.execute(f"USE `{DB_PREFIX}{name}`")
    return conn


def mariadb_database(name: str, driver: str = "") -> str:
    """(Re)create a MariaDB database and return its SQLAlchemy URL.

    ``driver`` names the DBAPI driver of the URL (``pymysql``, ``mysqldb``);
    default: the one of ``SKVO_TEST_MARIADB``.
    """
    name = DB_PREFIX + name
    engine = sa.create_engine(f"{MARIADB_URL}/test")
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        conn.exec_driver_sql(
            f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
        )
    engine.dispose()
    url = MARIADB_URL if not driver else f"mysql+{driver}://{MARIADB_URL.partition('://')[2]}"
    return f"{url}/{name}?charset=utf8mb4"


@dataclass
class Deployment:
    """One configured and loaded SKVO installation."""

    root: Path
    config: Path
    port: int
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """Base URL of the service."""
        return f"http://127.0.0.1:{self.port}"

    def settings(self):  # noqa: ANN201 - voservice.config.Settings
        from voservice.config import load_config

        return load_config(self.config)

    def skvo(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the ``skvo`` command on this deployment."""
        return subprocess.run(
            [sys.executable, "-m", "voservice.cli", *args, "--config", str(self.config)],
            capture_output=True,
            text=True,
            check=check,
            env={**os.environ, **self.extra_env},
        )


def write_ini(root: Path, metadata_url: str, port: int, **sections: dict[str, str]) -> Path:
    """Write a skvo.ini for a deployment."""
    values: dict[str, dict[str, str]] = {
        "general": {"base_path": "data"},
        "metadata": {"url": metadata_url},
        "timeseries": {"backend": "sql"},
        "media": {"backend": "files", "path": "media"},
        "server": {
            "host": "127.0.0.1",
            "port": str(port),
            "public_url": f"http://127.0.0.1:{port}",
            "workers": "2",
            "jobs_path": "jobs",
        },
        "vo": {"authority": "skvo.test.example"},
    }
    for name, keys in sections.items():
        values.setdefault(name, {}).update(keys)
    lines = []
    for name, keys in values.items():
        lines.append(f"[{name}]")
        lines.extend(f"{k} = {v}" for k, v in keys.items())
        lines.append("")
    path = root / "skvo.ini"
    path.write_text("\n".join(lines))
    return path


def deploy(root: Path, demo_tree: Path, metadata_url: str, **sections: dict[str, str]
           ) -> Deployment:
    """Configure, initialise and load a deployment with the sample data and accounts."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = write_ini(root, metadata_url, port, **sections)
    dep = Deployment(root=root, config=config, port=port)
    dep.skvo("initdb")
    result = dep.skvo("ingest", str(demo_tree), check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    add_demo_accounts(dep, demo_tree)
    return dep


def add_demo_accounts(dep: Deployment, demo_tree: Path) -> None:
    """ALICE (granted every source of the tree), BOB and ADMIN, through the accounts
    API in this process (``skvo user`` is tested in test_users; a process per account
    cost a second each, in every deployment)."""
    from voservice import users
    from voservice.stores.metadata import make_engine

    engine = make_engine(dep.settings().metadata_url)
    try:
        users.add_user(engine, ALICE[0], password=ALICE[1])
        users.add_user(engine, BOB[0], password=BOB[1])
        users.add_user(engine, ADMIN[0], password=ADMIN[1], admin=True)
        for source in demo_sources(demo_tree):
            users.grant(engine, ALICE[0], source)
    finally:
        engine.dispose()


def demo_sources(tree: Path) -> list[str]:
    """The sources (collections) of an upload tree."""
    return sorted(p.name for p in tree.iterdir() if p.is_dir())


#: taplint reports that are no fault of SKVO's: this is no ObsLocTAP (observation
#: planning) service; and the feature list of the STILTS that Debian ships (3.4.7) predates
#: ADQL 2.1 the REC: it knows a draft's features-adql-bitwise, not the REC's
#: features-adql-conditional (section 4.8, COALESCE), which newer STILTS knows
TAPLINT_NOT_OURS = (
    re.compile(r"F-LOC-NOTP-\d+ "),
    re.compile(r'E-CAP-KEYX-\d+ Unknown standard feature key '
               r'"ivo://ivoa\.net/std/TAPRegExt#features-adql-conditional" for language ADQL$'),
)


def taplint_problems(stdout: str) -> list[str]:
    """The errors, warnings and failures in taplint's report (``report=EWF``), but for
    those of :data:`TAPLINT_NOT_OURS`."""
    return [line for line in stdout.splitlines() if re.match(r"^[EWF]-", line)
            and not any(p.match(line) for p in TAPLINT_NOT_OURS)]


class LiveServer:
    """``skvo serve`` of a deployment, in its own process."""

    def __init__(self, dep: Deployment) -> None:
        self.dep = dep
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = dep.root / "server.log"

    @property
    def url(self) -> str:
        """Base URL of the running service."""
        return self.dep.url

    def start(self) -> None:
        """Start the server and wait until it answers."""
        log = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "voservice.cli", "serve", "--config", str(self.dep.config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.dep.extra_env},
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"skvo serve exited: {self.log.read_text()[-3000:]}")
            try:
                requests.get(self.url + "/", timeout=2)
                return
            except (requests.ConnectionError, requests.Timeout):  # workers still starting
                time.sleep(0.2)
        raise RuntimeError(f"skvo serve did not answer in 60 s: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL)."""
        if self.proc is None:
            return
        import signal

        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def restart(self) -> None:
        """Stop and start again on the same port."""
        self.stop()
        self.start()


@pytest.fixture(scope="session")
def demo_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample upload tree (``skvo demo-data``)."""
    from voservice.demo import write_demo_tree

    path = tmp_path_factory.mktemp("demo") / "data"
    write_demo_tree(path)
    return path


@pytest.fixture(scope="session")
def sqlite_deployment(tmp_path_factory: pytest.TempPathFactory, demo_tree: Path) -> Deployment:
    """The sample data loaded into the embedded stores (SQLite + files)."""
    root = tmp_path_factory.mktemp("sqlite-deployment")
    return deploy(root, demo_tree, "sqlite:///skvo.sqlite")


@pytest.fixture(scope="session")
def mariadb_deployment(tmp_path_factory: pytest.TempPathFactory, demo_tree: Path) -> Deployment:
    """The sample data loaded into MariaDB (loopback) + files."""
    root = tmp_path_factory.mktemp("mariadb-deployment")
    return deploy(root, demo_tree, mariadb_database("skvo_live_test"))


@pytest.fixture(scope="session")
def sqlite_server(sqlite_deployment: Deployment) -> Iterator[LiveServer]:
    """``skvo serve`` on the SQLite deployment."""
    server = LiveServer(sqlite_deployment)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mariadb_server(mariadb_deployment: Deployment) -> Iterator[LiveServer]:
    """``skvo serve`` on the MariaDB deployment."""
    server = LiveServer(mariadb_deployment)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session", params=["sqlite", "mariadb"])
def server(request: pytest.FixtureRequest) -> LiveServer:
    """Each live server in turn: the tests that use it run on both databases."""
    return request.getfixturevalue(f"{request.param}_server")


# --------------------------------------------------------------------------
# A real browser: Debian's headless Chromium driven by Playwright

#: where browser tests save their screenshots for a reviewer (one PNG per page state)
SCREENSHOTS = Path(os.environ.get("SKVO_SCREENSHOTS",
                                  Path(__file__).resolve().parent / "screenshots"))
CHROMIUM = os.environ.get("SKVO_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless Chromium (Debian's package, never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                      args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


class BrowserPage:
    """A Playwright page that records JS console errors and saves screenshots."""

    def __init__(self, page: object, name: str) -> None:
        self.page = page
        self.name = name
        self.errors: list[str] = []
        page.on("console", lambda msg: msg.type == "error" and self.errors.append(
            f"console: {msg.text} ({msg.location.get('url', '')})"))
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))

    def shoot(self, label: str, full_page: bool = True) -> Path:
        """Save a screenshot as ``screenshots/<test>-<label>.png`` and return its path."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.name}-{label}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


def _browser_page(browser: object, request: pytest.FixtureRequest,
                  viewport: dict[str, int]) -> Iterator[BrowserPage]:
    context = browser.new_context(viewport=viewport, accept_downloads=True)
    name = request.node.name.replace("[", "-").replace("]", "").replace("/", "_")
    page = BrowserPage(context.new_page(), name)
    page.page.set_default_timeout(20_000)
    yield page
    context.close()
    assert not page.errors, "JavaScript errors on the page:\n" + "\n".join(page.errors)


@pytest.fixture
def page(browser: object, request: pytest.FixtureRequest) -> Iterator[BrowserPage]:
    """A fresh browser tab at 1280x800; the test fails on any JS console error."""
    yield from _browser_page(browser, request, {"width": 1280, "height": 800})


@pytest.fixture
def phone_page(browser: object, request: pytest.FixtureRequest) -> Iterator[BrowserPage]:
    """A fresh browser tab at a phone's width (390x844)."""
    yield from _browser_page(browser, request, {"width": 390, "height": 844})
