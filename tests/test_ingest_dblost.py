"""``skvo ingest`` when MariaDB goes away mid-run: a clear message, exit 1, nothing half-loaded.

The connections are killed for real (``KILL CONNECTION`` from another session
on the loopback server, only those of the test's own database); a rerun
completes the load.
"""

from __future__ import annotations

import csv
import functools
import io
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import DB_PREFIX, MARIADB_URL, free_port, mariadb_database
from test_ingest import assert_consistent, count, write_settings

import voservice.ingest as ingest_module
from voservice.ingest import open_stores, run_ingest
from voservice.ingest.tree import walk

pytestmark = pytest.mark.mariadb


def _kill_connections(database: str) -> list[int]:
    """Kill every connection using ``database`` (not our own); their ids."""
    engine = sa.create_engine(f"{MARIADB_URL}/test")
    try:
        with engine.connect() as conn:
            ids = conn.execute(sa.text(
                "SELECT id FROM information_schema.processlist "
                "WHERE db = :db AND id <> CONNECTION_ID()"), {"db": database}).scalars().all()
            for pid in ids:
                conn.exec_driver_sql(f"KILL CONNECTION {int(pid)}")
    finally:
        engine.dispose()
    return list(ids)


def _observations(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT COUNT(*) FROM observation")).scalar_one()
    except sa.exc.ProgrammingError:  # the uploader has not created the tables yet
        return 0
    finally:
        engine.dispose()


@pytest.fixture
def database(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A fresh MariaDB database of this test: (name, URL)."""
    name = "skvo_dblost_test"
    url = mariadb_database(name)
    yield DB_PREFIX + name, url


def _kill_lock_holder(database: str) -> list[int]:
    """Kill only the connection holding the uploader lock of ``database``."""
    engine = sa.create_engine(f"{MARIADB_URL}/test")
    try:
        with engine.connect() as conn:
            pid = conn.execute(sa.text("SELECT IS_USED_LOCK(:n)"),
                               {"n": f"skvo_ingest.{database}"[:64]}).scalar()
            if pid is not None:
                conn.exec_driver_sql(f"KILL CONNECTION {int(pid)}")
    finally:
        engine.dispose()
    return [] if pid is None else [int(pid)]


def _kill_at_fifth_series(monkeypatch: pytest.MonkeyPatch, kill: Any) -> None:
    """Make the uploader's stores call ``kill()`` inside the fifth series' transaction."""
    calls = {"n": 0}

    def opening(*args: Any, **kwargs: Any) -> Any:
        stores = open_stores(*args, **kwargs)
        put = stores.timeseries.put

        @functools.wraps(put)  # the uploader looks at put's parameters
        def killing_put(*a: Any, **k: Any) -> Any:
            calls["n"] += 1
            if calls["n"] == 5:
                assert kill()
            return put(*a, **k)

        stores.timeseries.put = killing_put
        return stores

    monkeypatch.setattr(ingest_module, "open_stores", opening)


def test_connection_killed_mid_series(demo_tree: Path, tmp_path: Path,
                                      database: tuple[str, str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    name, url = database
    settings = write_settings(tmp_path, url)
    _kill_at_fifth_series(monkeypatch, lambda: _kill_connections(name))
    out = io.StringIO()
    status = run_ingest(settings, demo_tree, stream=out)
    text = out.getvalue()
    assert status == 1
    assert "Traceback" not in text
    assert "skvo ingest: stopped: the database connection was lost while loading" in text
    assert "4 series were loaded before that and are complete" in text
    assert sum(line.startswith("  loaded: ") for line in text.splitlines()) == 4
    assert sum(line.startswith("  failed: ") for line in text.splitlines()) == 1
    assert "run `skvo ingest` again" in text
    n_series = len(walk(demo_tree).series)
    assert f"{n_series - 5} series were not attempted" in text

    monkeypatch.undo()
    stores = open_stores(settings)
    try:
        assert count(stores.engine, "observation") == 4  # nothing of the fifth
        assert count(stores.engine, "photometry") == 4
        assert_consistent(stores)
        out = io.StringIO()
        assert run_ingest(settings, demo_tree, stream=out) == 0, out.getvalue()
        assert count(stores.engine, "observation") == n_series
        assert_consistent(stores)
    finally:
        stores.close()


def test_lock_connection_killed(demo_tree: Path, tmp_path: Path, database: tuple[str, str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the lock's connection goes: every series loads, the run says what happened."""
    name, url = database
    settings = write_settings(tmp_path, url)
    _kill_at_fifth_series(monkeypatch, lambda: _kill_lock_holder(name))
    out = io.StringIO()
    status = run_ingest(settings, demo_tree, stream=out)
    text = out.getvalue()
    assert status == 1
    assert "Traceback" not in text
    assert "the database connection holding the uploader lock was lost" in text
    n_series = len(walk(demo_tree).series)
    assert f"loaded {n_series} series" in text
    monkeypatch.undo()
    stores = open_stores(settings)
    try:
        assert count(stores.engine, "observation") == n_series
        assert_consistent(stores)
    finally:
        stores.close()


def test_connection_killed_at_commit(demo_tree: Path, tmp_path: Path,
                                     database: tuple[str, str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The fifth series' COMMIT never gets an answer: the uploader asks, cleans up, stops."""
    name, url = database
    settings = write_settings(tmp_path, url)
    commits = {"n": 0}

    def opening(*args: Any, **kwargs: Any) -> Any:
        stores = open_stores(*args, **kwargs)

        @sa.event.listens_for(stores.engine, "commit")
        def kill_fifth(conn: sa.Connection) -> None:
            commits["n"] += 1
            if commits["n"] == 5:
                thread_id = conn.connection.dbapi_connection.thread_id()
                killer = sa.create_engine(f"{MARIADB_URL}/test")
                with killer.connect() as other:
                    other.exec_driver_sql(f"KILL CONNECTION {int(thread_id)}")
                killer.dispose()

        return stores

    monkeypatch.setattr(ingest_module, "open_stores", opening)
    out = io.StringIO()
    status = run_ingest(settings, demo_tree, stream=out)
    text = out.getvalue()
    assert status == 1
    assert "Traceback" not in text
    assert "skvo ingest: stopped: the database connection was lost while loading" in text
    assert "4 series were loaded before that and are complete" in text
    monkeypatch.undo()
    stores = open_stores(settings)
    try:
        assert count(stores.engine, "observation") == 4
        assert_consistent(stores)  # the fifth's frames were removed again
        assert run_ingest(settings, demo_tree, stream=io.StringIO()) == 0
        assert count(stores.engine, "observation") == len(walk(demo_tree).series)
        assert_consistent(stores)
    finally:
        stores.close()


def _big_tree(demo_tree: Path, base: Path, copies: int) -> int:
    """``copies`` renamed copies of every source of the sample tree; the number of series."""
    for i in range(copies):
        for source in demo_tree.iterdir():
            copy = base / f"{source.name}{i}"
            shutil.copytree(source, copy)
            for meta in copy.rglob("*_meta*.csv"):
                rows = list(csv.reader(io.StringIO(meta.read_text())))
                rows[1][rows[0].index("target.description")] = f"copy {i}"
                out = io.StringIO()
                csv.writer(out, lineterminator="\n").writerows(rows)
                meta.write_text(out.getvalue())
    return len(walk(base).series)


def test_skvo_ingest_killed_from_another_session(demo_tree: Path, tmp_path: Path,
                                                 database: tuple[str, str]) -> None:
    name, url = database
    write_settings(tmp_path, url)
    base = tmp_path / "big"
    n_series = _big_tree(demo_tree, base, 8)
    command = [sys.executable, "-m", "voservice.cli", "ingest", str(base),
               "--config", str(tmp_path / "skvo.ini")]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while _observations(url) < 3:  # some series are in, most are still to come
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.02)
        assert _kill_connections(name)
        _, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err[-3000:]
    assert "Traceback" not in err
    loaded = _observations(url)
    assert "run `skvo ingest` again" in err
    # the load's connection was killed in use (the run stops), or idle in the pool
    # (the next series reconnects): then only the lock's connection is missed
    if "skvo ingest: stopped: the database connection" in err:
        assert 3 <= loaded < n_series
    else:
        assert "the database connection holding the uploader lock was lost" in err, err[-3000:]
        assert loaded == n_series

    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"skipped {loaded} (already loaded)" in again.stderr
    settings = write_settings(tmp_path, url)
    stores = open_stores(settings)
    try:
        assert count(stores.engine, "observation") == n_series
        assert_consistent(stores)
    finally:
        stores.close()


def test_database_unreachable_at_the_start(demo_tree: Path, tmp_path: Path) -> None:
    url = f"mysql+pymysql://root@127.0.0.1:{free_port()}/nothing_here"
    write_settings(tmp_path, url)
    result = subprocess.run(
        [sys.executable, "-m", "voservice.cli", "ingest", str(demo_tree),
         "--config", str(tmp_path / "skvo.ini")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "skvo ingest: cannot use the metadata database" in result.stderr
    assert "nothing was loaded" in result.stderr
