"""Schema migrations: an archive made by the 2026-11 release, upgraded on SQLite and MariaDB.

The fixtures (``tests/fixtures/archive-2026-11.*``, made by
``tests/fixtures/make_archive_2026_11.py`` with that release's code) are
loaded as they are; ``skvo upgrade`` must keep their data, give the new
tables their rows, arrive at exactly the schema a new archive gets, do
nothing the second time, and ``skvo serve`` must refuse an archive that is
behind until then.
"""

from __future__ import annotations

import io
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import requests
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from astropy.io.votable import parse as parse_votable
from conftest import Deployment, LiveServer, free_port, mariadb_database, write_ini

from voservice import migrations, tables
from voservice.catalog import refresh_public_flags

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ALICE = ("alice", "wonderland")  # the fixture's accounts: alice has skalnate and saao
BOB = ("bob", "builder")
UPGRADE_HINT = "run `skvo upgrade`"


def load_dump(backend: str, name: str, root: Path) -> str:
    """A new database holding the fixture dump of ``backend``; its URL for skvo.ini."""
    dump = (FIXTURES / f"archive-2026-11.{backend}.sql").read_text()
    if backend == "sqlite":
        with sqlite3.connect(root / "skvo.sqlite") as conn:
            conn.executescript(dump)
        return "sqlite:///skvo.sqlite"
    url = mariadb_database(name)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in dump.split(";\n"):
            lines = [x for x in statement.splitlines() if not x.startswith("/*M!999999")]
            if "\n".join(lines).strip():
                conn.exec_driver_sql("\n".join(lines).replace("%", "%%"))
    engine.dispose()
    return url


def old_archive(root: Path, backend: str, name: str) -> Deployment:
    """A deployment on a fresh copy of the 2026-11 archive (and its frame files)."""
    root.mkdir(parents=True)
    url = load_dump(backend, name, root)
    shutil.copytree(FIXTURES / "archive-2026-11-media", root / "media")
    port = free_port()
    return Deployment(root=root, config=write_ini(root, url, port), port=port)


def engine_of(dep: Deployment) -> sa.Engine:
    from voservice.stores.metadata import make_engine

    return make_engine(dep.settings().metadata_url)


def serve_refusal(dep: Deployment) -> subprocess.CompletedProcess[str]:
    """``skvo serve`` on the deployment, which must stop at once."""
    return subprocess.run([sys.executable, "-m", "voservice.cli", "serve", "--config",
                           str(dep.config)], capture_output=True, text=True, timeout=60)


@dataclass
class Upgraded:
    """The archive before and after ``skvo upgrade``, and what the commands said."""

    dep: Deployment
    backend: str
    before: dict[str, int]  # row counts of the old tables
    old_points: dict[int, np.ndarray]  # series id -> (time_us, magnitude) of ts_point
    refused_serve: subprocess.CompletedProcess[str]
    refused_user: subprocess.CompletedProcess[str]
    upgrade: subprocess.CompletedProcess[str]


KEPT = ("organisation", "dataid", "facility", "instrument", "bandpass", "target",
        "observation", "photometry", "frame", "skvo_user", "access_grant")


def counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar() for t in KEPT}


@pytest.fixture(scope="module", params=["sqlite", pytest.param("mariadb",
                                                                marks=pytest.mark.mariadb)])
def upgraded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Upgraded]:
    dep = old_archive(tmp_path_factory.mktemp(f"old-{request.param}") / "dep", request.param,
                      "skvo_migrate_old")
    engine = engine_of(dep)
    before = counts(engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT series_id, time_us, magnitude FROM ts_point "
                                    "ORDER BY series_id, time_us")).all()
    old_points: dict[int, list] = {}
    for r in rows:
        old_points.setdefault(int(r.series_id), []).append((int(r.time_us), float(r.magnitude)))
    refused_serve = serve_refusal(dep)
    refused_user = dep.skvo("user", "list", check=False)
    result = dep.skvo("upgrade", check=False)
    engine.dispose()
    yield Upgraded(dep, request.param, before, {k: np.array(v) for k, v in old_points.items()},
                   refused_serve, refused_user, result)


@pytest.fixture(scope="module")
def served(upgraded: Upgraded) -> Iterator[LiveServer]:
    server = LiveServer(upgraded.dep)
    server.start()
    yield server
    server.stop()


def tap(server: LiveServer, query: str, account: tuple[str, str] | None = None) -> list[dict]:
    """Rows of a TAP sync query (fails on any error)."""
    response = requests.post(f"{server.url}/tap/sync", auth=account, timeout=60, data={
        "REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query})
    assert response.status_code == 200, response.text[-2000:]
    table = parse_votable(io.BytesIO(response.content)).get_first_table().to_table()
    return [{c: row[c] for c in table.colnames} for row in table]


# --------------------------------------------------------------------------


def test_an_old_archive_is_refused_with_the_upgrade_hint(upgraded: Upgraded) -> None:
    for result in (upgraded.refused_serve, upgraded.refused_user):
        assert result.returncode == 2, result.stderr[-2000:]
        assert UPGRADE_HINT in result.stderr
        assert "Traceback" not in result.stderr
        assert "reload" not in result.stderr and "new, empty database" not in result.stderr


def test_upgrade_reports_what_it_did(upgraded: Upgraded) -> None:
    assert upgraded.upgrade.returncode == 0, upgraded.upgrade.stderr[-3000:]
    out = upgraded.upgrade.stdout
    assert f"upgraded from schema revision {migrations.BASELINE}" in out
    assert f"to {migrations.head()}" in out
    n_points = sum(len(v) for v in upgraded.old_points.values())
    assert f"upgrade task points: {n_points} rows" in out


def test_the_data_are_kept(upgraded: Upgraded) -> None:
    engine = engine_of(upgraded.dep)
    try:
        assert counts(engine) == upgraded.before
        assert all(upgraded.before[t] > 0 for t in ("observation", "frame", "skvo_user"))
        with engine.connect() as conn:
            assert not sa.inspect(conn).has_table("ts_point")
            n_point_rows = conn.execute(sa.text("SELECT COUNT(*) FROM point")).scalar()
            aliased = conn.execute(sa.text(
                "SELECT COUNT(DISTINCT target_id) FROM target_alias")).scalar()
    finally:
        engine.dispose()
    assert n_point_rows == sum(len(v) for v in upgraded.old_points.values())
    assert aliased == upgraded.before["target"]


def test_public_flags_follow_the_access_rights(upgraded: Upgraded) -> None:
    engine = engine_of(upgraded.dep)
    flagged = [d.qualified_name for d in tables.all_tables() if d.table_type == "table"
               and d.visibility.startswith(("via:", "data:"))]
    try:
        with engine.connect() as conn:
            def flags(name: str) -> list[int]:
                t = tables.sa_table(name)
                return conn.execute(sa.select(t.c.public).order_by(*t.primary_key.columns or
                                                                   t.columns)).scalars().all()

            kept = {name: flags(name) for name in flagged}
            for name in flagged:  # the uploader's rule, in a transaction rolled back
                refresh_public_flags(conn, name)
                assert flags(name) == kept[name], name
            conn.rollback()
    finally:
        engine.dispose()
    assert 0 < sum(kept["skvo.target"]) < len(kept["skvo.target"])  # open and not open


def schema_of(engine: sa.Engine) -> dict[str, dict]:
    """Tables, columns (by name), keys, indexes and, on MariaDB, engine and collation."""
    insp = sa.inspect(engine)
    out = {}
    for name in insp.get_table_names():
        out[name] = {
            "columns": {c["name"]: (str(c["type"]), c["nullable"], str(c.get("default")),
                                    c.get("collation")) for c in insp.get_columns(name)},
            "pk": insp.get_pk_constraint(name)["constrained_columns"],
            "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                              for i in insp.get_indexes(name)),
            "unique": sorted((str(u["name"]), tuple(u["column_names"]))
                             for u in insp.get_unique_constraints(name)),
            "fks": sorted((tuple(f["constrained_columns"]), f["referred_table"],
                           tuple(f["referred_columns"])) for f in insp.get_foreign_keys(name)),
            "options": {k: v for k, v in insp.get_table_options(name).items()
                        if k in ("mysql_engine", "mysql_collate", "mysql_default charset")},
        }
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            for name, sql in conn.execute(sa.text(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'table'")):
                if name in out:
                    sql = (sql or "").upper()
                    out[name]["sqlite"] = ("WITHOUT ROWID" in sql, "AUTOINCREMENT" in sql)
    return out


@pytest.fixture(scope="module")
def fresh(upgraded: Upgraded, tmp_path_factory: pytest.TempPathFactory) -> Iterator[sa.Engine]:
    """A new archive made by ``skvo initdb`` on the same database kind."""
    root = tmp_path_factory.mktemp(f"fresh-{upgraded.backend}")
    url = "sqlite:///skvo.sqlite" if upgraded.backend == "sqlite" else mariadb_database(
        "skvo_migrate_fresh")
    dep = Deployment(root=root, config=write_ini(root, url, free_port()), port=0)
    dep.skvo("initdb")
    engine = engine_of(dep)
    yield engine
    engine.dispose()


def metadata_differences(engine: sa.Engine) -> list[str]:
    """What Alembic finds between the database and every table ``skvo initdb`` makes."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True,
                                                     "compare_server_default": True})
        return sorted(repr(d) for d in compare_metadata(ctx, migrations.target_metadata()))


def test_the_upgraded_schema_is_a_new_archive_s(upgraded: Upgraded, fresh: sa.Engine) -> None:
    engine = engine_of(upgraded.dep)
    try:
        got, want = schema_of(engine), schema_of(fresh)
        assert set(got) == set(want)
        differ = {(t, k): (got[t][k], want[t][k]) for t in want for k in want[t]
                  if got[t][k] != want[t][k]}
        assert differ == {}
        # Alembic's own comparison with the table descriptions; on MariaDB it reports
        # sized TEXT columns (LONGTEXT, ...) of a new archive too, so it is compared with
        # the new archive's, and is empty on SQLite
        assert metadata_differences(engine) == metadata_differences(fresh)
        if engine.dialect.name == "sqlite":
            assert metadata_differences(engine) == []
        with engine.connect() as conn:
            assert migrations.current(conn) == migrations.head()
    finally:
        engine.dispose()


def test_every_described_table_has_a_migration(upgraded: Upgraded) -> None:
    """A table or column added to resources/tables without a revision fails here."""
    engine = engine_of(upgraded.dep)
    try:
        have = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert set(migrations.target_metadata().tables) <= have


def test_the_upgraded_archive_is_served(upgraded: Upgraded, served: LiveServer) -> None:
    engine = engine_of(upgraded.dep)
    try:
        with engine.connect() as conn:
            series = conn.execute(sa.text(
                "SELECT p.photometry_id, o.observation_uuid, b.bandpass_uid, o.access "
                "FROM photometry p JOIN observation o ON o.observation_id = p.observation_id "
                "JOIN bandpass b ON b.bandpass_id = p.bandpass_id ORDER BY p.photometry_id"
            )).all()
    finally:
        engine.dispose()
    for access in ("open", "on_demand"):
        s = next(r for r in series if r.access == access)
        url = f"{served.url}/lightcurve/{s.observation_uuid}/{s.bandpass_uid}"
        if access == "on_demand":
            assert requests.get(url, timeout=60).status_code == 401
        response = requests.get(url, auth=ALICE, timeout=60)
        assert response.status_code == 200, response.text[-2000:]
        table = parse_votable(io.BytesIO(response.content)).get_first_table().to_table()
        mag = next(c for c in table.colnames if c.lower() in ("magnitude", "mag"))
        old = upgraded.old_points[int(s.photometry_id)]
        assert np.array_equal(np.asarray(table[mag], float), old[:, 1])
    total = sum(len(v) for v in upgraded.old_points.values())
    open_ids = {int(r.photometry_id) for r in series if r.access == "open"}
    n_open = sum(len(upgraded.old_points[i]) for i in open_ids)
    assert tap(served, "SELECT COUNT(*) AS n FROM skvo.point", ALICE)[0]["n"] == total
    assert tap(served, "SELECT COUNT(*) AS n FROM skvo.point")[0]["n"] == n_open
    named = tap(served, "SELECT t.target FROM skvo.target_alias AS a JOIN skvo.target AS t "
                "ON t.target_id = a.target_id WHERE a.alias = 'HD 174638'")
    assert {str(r["target"]) for r in named} == {"bet_Lyr"}
    assert tap(served, "SELECT COUNT(*) AS n FROM ivoa.obscore WHERE calib_level = 2",
               BOB)[0]["n"] == sum(1 for r in series if r.access != "restricted")


def test_a_second_upgrade_changes_nothing(upgraded: Upgraded, served: LiveServer) -> None:
    engine = engine_of(upgraded.dep)
    try:
        schema = schema_of(engine)
        again = upgraded.dep.skvo("upgrade", check=False)
        assert again.returncode == 0, again.stderr[-2000:]
        assert "upgraded from" not in again.stdout and "upgrade task" not in again.stdout
        assert schema_of(engine) == schema
        assert counts(engine) == upgraded.before
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT COUNT(*) FROM point")).scalar() == sum(
                len(v) for v in upgraded.old_points.values())
    finally:
        engine.dispose()


def test_a_schema_behind_is_refused_then_upgraded(upgraded: Upgraded, served: LiveServer
                                                  ) -> None:
    """An archive stamped at an older revision (e.g. restored from a backup)."""
    served.stop()
    engine = engine_of(upgraded.dep)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '2026_12_h_"
                                 "facility_location'"))
        refused = serve_refusal(upgraded.dep)
        assert refused.returncode == 2
        assert "revision 2026_12_h_facility_location" in refused.stderr
        assert UPGRADE_HINT in refused.stderr and "Traceback" not in refused.stderr
        ingest = upgraded.dep.skvo("ingest", str(upgraded.dep.root / "nothing"), check=False)
        assert ingest.returncode == 2 and UPGRADE_HINT in ingest.stderr
        result = upgraded.dep.skvo("upgrade", check=False)
        assert result.returncode == 0, result.stderr[-2000:]
        assert "upgrade task points: 0 rows" in result.stdout  # the rows were there already
        with engine.connect() as conn:
            assert migrations.current(conn) == migrations.head()
        assert counts(engine) == upgraded.before
    finally:
        engine.dispose()
    served.start()
    assert tap(served, "SELECT COUNT(*) AS n FROM skvo.target")[0]["n"] > 0


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    port = free_port()
    dep = Deployment(root=tmp_path, config=write_ini(tmp_path, "sqlite:///skvo.sqlite", port),
                     port=port)
    dep.skvo("initdb")
    engine = engine_of(dep)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '2099_01_future'"))
    engine.dispose()
    refused = serve_refusal(dep)
    assert refused.returncode == 2 and "newer SKVO" in refused.stderr


def test_upgrade_needs_an_archive(tmp_path: Path) -> None:
    port = free_port()
    dep = Deployment(root=tmp_path, config=write_ini(tmp_path, "sqlite:///skvo.sqlite", port),
                     port=port)
    result = dep.skvo("upgrade", check=False)
    assert result.returncode == 2 and "skvo initdb" in result.stderr
