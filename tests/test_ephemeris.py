"""Ephemerides: the meta CSV columns, `skvo target ephemeris`, skvo.ephemeris in TAP
with the target's visibility, and voservice.ephemeris' readers (SQLite and MariaDB)."""

from __future__ import annotations

import csv
import dataclasses
import io
import shutil
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
import test_ingest
from conftest import ADMIN, ALICE, BOB, LiveServer
from test_ingest import t

from voservice import ephemeris, tables
from voservice.access import ANONYMOUS, Principal
from voservice.demo import STARS
from voservice.ingest import Stores, ingest
from voservice.ingest.tree import SeriesFiles, walk

settings = test_ingest.settings  # the fixtures: each database in turn
stores = test_ingest.stores

MJD0 = 2400000.5


def parse(**values: str) -> tuple[Any, list[tuple[str, str]]]:
    return ephemeris.parse_ephemeris(values, ephemeris.CLI_PARAMETERS)


@pytest.mark.parametrize(("epoch", "mjd", "refpos", "timescale"), [
    ("2455434.8702", 55434.3702, "heliocenter", "UTC"),
    ("JD 2455434.8702", 55434.3702, "heliocenter", "UTC"),
    ("MJD 58100.31", 58100.31, "heliocenter", "UTC"),
    ("mjd58100.31", 58100.31, "heliocenter", "UTC"),
    ("RJD 58100.81", 58100.31, "heliocenter", "UTC"),
    ("HJD 2458100.81", 58100.31, "heliocenter", "UTC"),
    ("BJD 2458100.81", 58100.31, "barycenter", "TDB"),
])
def test_epoch_forms(epoch: str, mjd: float, refpos: str, timescale: str) -> None:
    spec, problems = parse(period="2.8673", epoch=epoch)
    assert problems == []
    assert spec.epoch == mjd  # exactly: the digits as written
    assert (spec.refpos, spec.timescale, spec.period) == (refpos, timescale, 2.8673)


@pytest.mark.parametrize(("values", "parameter", "words"), [
    ({"period": "0", "epoch": "2455434.87"}, "--period", "more than 0"),
    ({"period": "-2", "epoch": "2455434.87"}, "--period", "more than 0"),
    ({"period": "2 days", "epoch": "2455434.87"}, "--period", "not a number"),
    ({"period": "nan", "epoch": "2455434.87"}, "--period", "out of range"),
    ({"epoch": "2455434.87"}, "--period", "required"),
    ({"period": "2.5"}, "--epoch", "required"),
    ({"period": "2.5", "epoch": "55434.37"}, "--epoch", "no full Julian Date"),
    ({"period": "2.5", "epoch": "yesterday"}, "--epoch", "not an epoch"),
    ({"period": "2.5", "epoch": "MJD 9999999"}, "--epoch", "out of range"),
    ({"period": "2.5", "epoch": "2455434.87", "timescale": "GPS"}, "--timescale", "not one of"),
    ({"period": "2.5", "epoch": "2455434.87", "refpos": "earth"}, "--refpos", "not one of"),
    ({"period": "2.5", "epoch": "BJD 2455434.87", "refpos": "heliocenter"}, "--refpos",
     "contradicts"),
    ({"period": "2.5", "epoch": "2455434.87", "var_type": "E" * 33}, "--type", "longer"),
    ({"period": "2.5", "epoch": "2455434.87", "reference": "a\tb"}, "--ref", "control"),
])
def test_bad_input_names_the_parameter(values: dict[str, str], parameter: str,
                                       words: str) -> None:
    spec, problems = parse(**values)
    assert spec is None
    assert any(p == parameter and words in m for p, m in problems), problems


def test_no_ephemeris_is_none() -> None:
    assert parse() == (None, [])
    assert parse(period=" ", epoch="") == (None, [])


# --------------------------------------------------------------------------
# The meta CSV columns


def set_meta(files: SeriesFiles, **values: str) -> None:
    """Set (or add) columns of a meta CSV."""
    rows = list(csv.reader(io.StringIO(files.meta.read_text())))
    for column, value in values.items():
        if column not in rows[0]:
            rows[0].append(column)
            rows[1].append("")
        rows[1][rows[0].index(column)] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    files.meta.write_text(out.getvalue())


def rows_of(engine: sa.Engine, target: str) -> list[Any]:
    e, tg = t("ephemeris"), t("target")
    with engine.connect() as conn:
        return conn.execute(sa.select(e).join(tg, tg.c.target_id == e.c.target_id)
                            .where(tg.c.target == target).order_by(e.c.ephemeris_id)).all()


def target_id(engine: sa.Engine, name: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(t("target").c.target_id).where(
            t("target").c.target == name)).scalar_one()


def test_sample_tree_gives_each_star_its_ephemeris(demo_tree: Path, stores: Stores) -> None:
    assert ingest(stores, demo_tree, progress=False).ok
    for star in STARS:
        rows = rows_of(stores.engine, star.name)
        assert len(rows) == 1, star.name  # once per target, not once per night
        row = rows[0]
        assert (row.period, row.is_default, row.origin) == (star.period, 1, "provider")
        assert row.epoch == pytest.approx(star.epoch, abs=1e-9)
        assert (row.epoch_timescale, row.epoch_refpos) == ("UTC", "heliocenter")
        with stores.engine.connect() as conn:
            default = ephemeris.default_ephemeris(conn, row.target_id)
            assert ephemeris.ephemerides(conn, row.target_id) == [default]
        assert default.ephemeris_id == row.ephemeris_id and default.is_default
        assert default.epoch_jd == pytest.approx(star.epoch + MJD0, abs=1e-9)
        with pytest.raises(dataclasses.FrozenInstanceError):
            default.period = 1.0  # type: ignore[misc]
    # a target only restricted observations show is hidden with its ephemeris
    l_car = target_id(stores.engine, "l_Car")
    with stores.engine.connect() as conn:
        assert ephemeris.default_ephemeris(conn, l_car, principal=ANONYMOUS) is None
        assert ephemeris.ephemerides(conn, l_car, principal=Principal("bob")) == []
        granted = Principal("alice", frozenset({"saao"}))
        assert ephemeris.default_ephemeris(conn, l_car, principal=granted) is not None
        assert ephemeris.default_ephemeris(conn, 10**9) is None


def test_another_ephemeris_in_a_later_night_is_added_not_made_default(
        demo_tree: Path, tmp_path: Path, stores: Stores) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(demo_tree, tree)
    files = next(s for s in walk(tree).series if s.key.target == "bet_Lyr")
    set_meta(files, **{"ephemeris.period": "12.94062", "ephemeris.epoch": "HJD 2455434.8702",
                       "ephemeris.epoch_refpos": "", "ephemeris.var_type": "EB",
                       "ephemeris.reference": "2016MNRAS.456.3213K"})
    assert ingest(stores, tree, progress=False).ok
    rows = rows_of(stores.engine, "bet_Lyr")
    assert [(r.period, r.is_default) for r in rows] in (
        [(12.9414, 1), (12.94062, 0)], [(12.94062, 1), (12.9414, 0)])
    other = next(r for r in rows if r.period == 12.94062)
    assert (other.epoch, other.epoch_refpos, other.reference) == (
        55434.3702, "heliocenter", "2016MNRAS.456.3213K")
    assert sum(r.is_default for r in rows) == 1


def test_bad_ephemeris_columns_fail_the_series_with_file_line_column(
        demo_tree: Path, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(demo_tree, tree)
    series = walk(tree).series
    cases = {
        "ephemeris.period": ({"ephemeris.period": "-3"}, "more than 0"),
        "ephemeris.epoch": ({"ephemeris.epoch": "58100.31"}, "no full Julian Date"),
        "ephemeris.epoch_timescale": ({"ephemeris.epoch_timescale": "local"}, "not one of"),
        "ephemeris.epoch_refpos": ({"ephemeris.epoch_refpos": "moon"}, "not one of"),
        "ephemeris.var_type": ({"ephemeris.var_type": "X" * 40}, "longer than 32"),
    }
    expected = {}
    for files, (column, (values, words)) in zip(series, cases.items(), strict=False):
        set_meta(files, **values)
        expected[files.key] = (f"{files.meta.relative_to(tree).as_posix()}:2: {column}: ", words)
    missing_epoch = series[len(cases)]
    set_meta(missing_epoch, **{"ephemeris.epoch": ""})
    expected[missing_epoch.key] = (
        f"{missing_epoch.meta.relative_to(tree).as_posix()}:2: ephemeris.epoch: ", "required")
    report = ingest(None, tree, dry_run=True, progress=False)
    assert set(report.failed) == set(expected)
    lines = [str(p) for p in report.problems]
    for start, words in expected.values():
        assert any(p.startswith(start) and words in p for p in lines), (start, lines)


def test_flags_follow_the_targets_visibility(demo_tree: Path, tmp_path: Path,
                                             stores: Stores) -> None:
    """Replacing bet_Lyr's observations with restricted ones hides its ephemeris."""
    from voservice import catalog

    tree = tmp_path / "tree"
    shutil.copytree(demo_tree, tree)
    assert ingest(stores, tree, progress=False).ok
    desc, table = tables.table("skvo.ephemeris"), t("ephemeris")

    def visible(who: Principal, use_flag: bool = True) -> set[int]:
        with stores.engine.connect() as conn:
            return set(conn.execute(sa.select(table.c.target_id).where(
                catalog._visible_rows(desc, who, use_flag))).scalars())

    bet_lyr = target_id(stores.engine, "bet_Lyr")
    assert bet_lyr in visible(ANONYMOUS)
    assert target_id(stores.engine, "l_Car") not in visible(ANONYMOUS)
    for files in (s for s in walk(tree).series if s.key.target == "bet_Lyr"):
        set_meta(files, **{"access.access": "restricted"})
    assert ingest(stores, tree, replace=True, progress=False).ok
    assert bet_lyr not in visible(ANONYMOUS)
    granted = Principal("alice", frozenset({"upjs", "skalnate"}))
    assert bet_lyr in visible(granted)
    for who in (ANONYMOUS, granted):
        assert visible(who) == visible(who, use_flag=False)


# --------------------------------------------------------------------------
# TAP and the operator's command, on the live servers


def tap(url: str, query: str, auth: tuple[str, str] | None = None) -> list[tuple]:
    from astropy.io.votable import parse

    response = requests.post(f"{url}/tap/sync", data={"REQUEST": "doQuery", "LANG": "ADQL",
                                                       "QUERY": query}, auth=auth, timeout=60)
    assert response.status_code == 200, response.text[:500]
    table = parse(io.BytesIO(response.content)).get_first_table().to_table()
    return [tuple(v.item() if hasattr(v, "item") else v for v in row) for row in table]


JOINED = ("SELECT tg.target, e.period, e.epoch, e.is_default, e.origin FROM skvo.ephemeris "
          "AS e JOIN skvo.target AS tg ON tg.target_id = e.target_id")


def test_tap_serves_ephemerides_with_the_targets_visibility(server: LiveServer) -> None:
    for who in (None, BOB):
        rows = tap(server.url, JOINED, who)
        assert {r[0] for r in rows} == {s.name for s in STARS} - {"l_Car"}
        seen = {r[0] for r in tap(server.url, "SELECT target FROM skvo.target", who)}
        assert {r[0] for r in rows} == seen
    for who in (ALICE, ADMIN):
        assert {r[0] for r in tap(server.url, JOINED, who)} == {s.name for s in STARS}
    algol = tap(server.url, JOINED + " WHERE tg.target = 'Algol' AND e.is_default = 1")
    assert algol == [("Algol", 2.867315, pytest.approx(58101.742), 1, "provider")]
    columns = {r[0]: r[1:] for r in tap(
        server.url, "SELECT column_name, unit, ucd FROM TAP_SCHEMA.columns "
        "WHERE table_name = 'skvo.ephemeris'")}
    assert columns["period"] == ("d", "time.period")
    assert columns["epoch"] == ("d", "time.epoch")
    assert "public" not in columns and {"epoch_timescale", "epoch_refpos", "var_type",
                                        "reference", "is_default"} <= set(columns)


def test_operator_ephemerides(server: LiveServer) -> None:
    dep = server.dep
    query = JOINED + " WHERE tg.target = 'bet_Lyr' ORDER BY e.ephemeris_id"
    assert [r[1:] for r in tap(server.url, query)] == [
        (12.9414, pytest.approx(58100.31), 1, "provider")]
    out = dep.skvo("target", "ephemeris", "beta Lyrae", "--period", "12.94062",
                   "--epoch", "HJD 2455434.8702", "--type", "EB",
                   "--ref", "2016MNRAS.456.3213K", "--default")
    added = int(out.stdout.split("the ephemeris ")[1].split()[0])
    try:
        assert "(its default)" in out.stdout
        rows = [r[1:] for r in tap(server.url, query)]
        assert rows == [(12.9414, pytest.approx(58100.31), 0, "provider"),
                        (12.94062, pytest.approx(55434.3702), 1, "operator")]
        listed = dep.skvo("target", "ephemerides", "bet_Lyr").stdout.splitlines()
        assert listed[0].startswith(f"{added}\tdefault\tP=12.94062 d")
        assert "2016MNRAS.456.3213K" in listed[0] and "heliocenter" in listed[0]
        again = dep.skvo("target", "ephemeris", "bet_Lyr", "--period", "12.94062",
                         "--epoch", "MJD 55434.3702", "--type", "EB",
                         "--ref", "2016MNRAS.456.3213K")
        assert "already has this ephemeris" in again.stdout
        provider = int(listed[1].split("\t")[0])
        dep.skvo("target", "default-ephemeris", "bet_Lyr", str(provider))
        assert [r[3] for r in tap(server.url, query)] == [1, 0]
    finally:
        gone = dep.skvo("target", "unephemeris", "bet_Lyr", str(added))
    assert "no longer has the ephemeris" in gone.stdout
    assert [r[1:] for r in tap(server.url, query)] == [
        (12.9414, pytest.approx(58100.31), 1, "provider")]
    # errors name the parameter, never a traceback
    for args, words in (
            (["--period", "-1", "--epoch", "2455434.87"], "--period: "),
            (["--period", "1", "--epoch", "55434.37"], "--epoch: "),
            (["--period", "1", "--epoch", "2455434.87", "--timescale", "GPS"], "--timescale: "),
            ([], "--period: required")):
        refused = dep.skvo("target", "ephemeris", "bet_Lyr", *args, check=False)
        assert refused.returncode == 2 and words in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
    refused = dep.skvo("target", "unephemeris", "bet_Lyr", "999999", check=False)
    assert refused.returncode == 2 and "has no ephemeris 999999" in refused.stderr
    refused = dep.skvo("target", "ephemerides", "bet_Lyr", "--period", "2", check=False)
    assert refused.returncode == 2 and "takes no --period" in refused.stderr
