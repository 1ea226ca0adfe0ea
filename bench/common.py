"""What the HTTP benchmarks share: a database per backend and a live server."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import Deployment, LiveServer, free_port, mariadb_database, write_ini  # noqa: E402

#: the databases (and MySQL drivers) a benchmark can run on
BACKENDS = ("sqlite", "mariadb", "mariadb-mysqlclient")


def database_url(backend: str, root: Path, mariadb_name: str) -> str:
    """A fresh metadata database: an SQLite file under root, or a MariaDB database.

    ``mariadb`` goes through PyMySQL, ``mariadb-mysqlclient`` through the C driver.
    """
    if backend == "sqlite":
        return f"sqlite:///{root / 'bench.sqlite'}"
    if backend == "mariadb":
        return mariadb_database(mariadb_name, "pymysql")
    if backend == "mariadb-mysqlclient":
        return mariadb_database(mariadb_name, "mysqldb")
    raise SystemExit(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")


@contextmanager
def live_server(root: Path, url: str, workers: int = 2) -> Iterator[LiveServer]:
    """``skvo serve`` on a free loopback port for the database at url."""
    port = free_port()
    config = write_ini(root, url, port, server={"workers": str(workers)})
    server = LiveServer(Deployment(root=root, config=config, port=port))
    server.start()
    try:
        yield server
    finally:
        server.stop()
