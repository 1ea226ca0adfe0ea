"""skvo.minimum through TAP on both databases: times of minimum found at ingest on
synthetic eclipses with known minima (tests/eclipse_tree.py), access rights, the
description in TAP_SCHEMA and VOSI, and O-C that follows the default ephemeris."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import requests
from astropy.time import Time
from conftest import ADMIN, ALICE, BOB, LiveServer
from eclipse_tree import (
    EPOCH_BJD,
    NIGHTS,
    PERIOD,
    STAR,
    bjd_tdb,
    hjd_utc,
    location,
    rows,
    serving,
    tap,
)

from voservice import tables

SELECT = ("SELECT night, bandpass_uid, time_bjd, time_error, time_hjd, time_utc, "
          "time_refposition, method, check_time, check_error, min_type, cycle, time_ephem, "
          "calculated, o_c, obs_publisher_did FROM skvo.minimum")


@pytest.fixture(scope="module", params=["sqlite", "mariadb"])
def eclipses(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp(f"minimum-{request.param}")
    with serving(root, request.param, "skvo_minimum_table") as server:
        yield server


def nights_of(server: LiveServer) -> dict[str, dict]:
    """The observations of the tree by night (admin view): access and source."""
    table = tap(server, "SELECT night, access, source FROM skvo.observation", ADMIN)
    return {r["night"]: r for r in rows(table)}


def minima(server: LiveServer, account: tuple[str, str] | None) -> list[dict]:
    return rows(tap(server, SELECT + " ORDER BY time_bjd", account))


def test_known_minima_are_found_within_their_errors(eclipses: LiveServer) -> None:
    found = minima(eclipses, ALICE)
    with_minimum = [n for n in NIGHTS if n.minimum is not None]
    assert len(found) == len(with_minimum)  # and none in the night at phase 0.25
    for night, row in zip(sorted(with_minimum, key=lambda n: n.cycle), found, strict=True):
        truth = night.minimum
        assert abs(row["time_bjd"] - truth) < 3 * row["time_error"], (night, row)
        assert 0 < row["time_error"] < 5e-3
        assert row["check_time"] is not None
        assert abs(row["check_time"] - truth) < 3 * row["check_error"] + 1e-5
        assert row["method"] == "kwee-van-woerden"
        assert row["time_refposition"] == night.refposition
        assert row["min_type"] == ("secondary" if night.cycle % 1 else "primary")
        assert row["cycle"] == night.cycle
        # the stored ephemeris is the model's own, in BJD_TDB: O-C is the timing error
        assert row["calculated"] == pytest.approx(truth, abs=1e-7)
        assert row["o_c"] == pytest.approx(row["time_bjd"] - truth, abs=1e-7)
        assert row["obs_publisher_did"].startswith("ivo://skvo.test.example/skvo?")
        # HJD and the UTC time as observed are astropy's for the same event
        t_obs = Time(row["time_utc"], format="mjd", scale="utc", location=location())
        assert row["time_hjd"] == pytest.approx(float(hjd_utc(t_obs)), abs=1e-3 / 86400)


def test_a_night_without_a_minimum_has_no_row(eclipses: LiveServer) -> None:
    quiet = [n for n in NIGHTS if n.minimum is None]
    assert quiet
    by_night = nights_of(eclipses)
    found = {r["night"] for r in minima(eclipses, ADMIN)}
    assert len(by_night) == len(NIGHTS)
    assert len(set(by_night) - found) == len(quiet)


@pytest.mark.parametrize("account", [None, BOB], ids=["anonymous", "bob"])
def test_minima_of_protected_nights_need_a_grant(eclipses: LiveServer, account) -> None:  # noqa: ANN001
    by_night = nights_of(eclipses)
    granted = {r["night"] for r in minima(eclipses, ALICE)}
    seen = {r["night"] for r in minima(eclipses, account)}
    assert {by_night[n]["access"] for n in granted} == {"open", "on_demand", "restricted"}
    assert seen == {n for n in granted if by_night[n]["access"] == "open"}
    hidden = sorted(n for n in granted if by_night[n]["access"] != "open")
    nights = ", ".join(f"'{n}'" for n in hidden)
    count = tap(eclipses, f"SELECT COUNT(*) AS n FROM skvo.minimum WHERE night IN ({nights})",
                account)
    assert int(count["n"][0]) == 0
    assert {r["night"] for r in minima(eclipses, ADMIN)} == granted


def test_the_table_is_described_in_tap_schema_and_vosi(eclipses: LiveServer) -> None:
    desc = tables.table("skvo.minimum")
    listed = rows(tap(eclipses, "SELECT column_name, unit, ucd, description FROM "
                                "TAP_SCHEMA.columns WHERE table_name = 'skvo.minimum'"))
    by_name = {r["column_name"]: r for r in listed}
    assert set(by_name) == {c.name for c in desc.published_columns}
    assert "tt_utc" not in by_name and "public" not in by_name
    for name in ("time_bjd", "time_error", "o_c", "cycle", "min_type"):
        col = desc.column(name)
        assert (by_name[name]["unit"] or None, by_name[name]["ucd"]) == (col.unit, col.ucd)
        assert by_name[name]["description"] == col.description
    assert "BJD_TDB" in by_name["time_bjd"]["description"]
    vosi = requests.get(f"{eclipses.url}/tap/tables/skvo.minimum", timeout=30)
    assert vosi.status_code == 200
    assert "<name>o_c</name>" in vosi.text and "BJD_TDB" in vosi.text


def _ephemeris_ids(server: LiveServer) -> list[dict]:
    return rows(tap(server, "SELECT e.ephemeris_id, e.is_default, e.period, e.var_type "
                            "FROM skvo.ephemeris AS e JOIN skvo.target AS t "
                            f"ON t.target_id = e.target_id WHERE t.target = '{STAR}' "
                            "ORDER BY e.ephemeris_id", ADMIN))


def test_o_c_follows_the_default_ephemeris_at_once(eclipses: LiveServer) -> None:
    """O-C is computed against whatever ephemeris is the default now: in its own time
    system (HJD UTC here), with its own period, and not at all for a pulsator's."""
    dep = eclipses.dep
    before = {r["night"]: r for r in minima(eclipses, ALICE)}
    original = [r for r in _ephemeris_ids(eclipses) if r["is_default"] == 1]
    assert len(original) == 1
    # the same ephemeris written as HJD UTC: the cycle-0 event seen from the heliocentre
    mjd = EPOCH_BJD
    for _ in range(4):  # the UTC time at the observatory whose BJD_TDB is the epoch
        mjd -= float(bjd_tdb(_observed(mjd))) - EPOCH_BJD
    epoch_hjd = float(hjd_utc(_observed(mjd)))
    changed = PERIOD + 1e-4
    try:
        dep.skvo("target", "ephemeris", STAR, "--period", repr(PERIOD), "--epoch",
                 f"HJD {epoch_hjd + 2400000.5:.8f}", "--timescale", "UTC", "--refpos",
                 "heliocenter", "--type", "EA", "--default")
        helio = {r["night"]: r for r in minima(eclipses, ALICE)}
        for night, row in helio.items():
            assert row["cycle"] == before[night]["cycle"]
            assert row["time_ephem"] == pytest.approx(row["time_hjd"], abs=1e-9)
            # BJD and HJD frames differ by the Sun's barycentric wobble: seconds, not minutes
            assert abs(row["o_c"] - before[night]["o_c"]) < 10 / 86400
        dep.skvo("target", "ephemeris", STAR, "--period", repr(changed), "--epoch",
                 f"HJD {epoch_hjd + 2400000.5:.8f}", "--type", "EA", "--default")
        slower = {r["night"]: r for r in minima(eclipses, ALICE)}
        for night, row in slower.items():
            expected = helio[night]["o_c"] - 1e-4 * row["cycle"]
            assert row["o_c"] == pytest.approx(expected, abs=1e-8)
        dep.skvo("target", "ephemeris", STAR, "--period", "0.5", "--epoch", "MJD 58100.1",
                 "--type", "RRAB", "--default")
        pulsator = minima(eclipses, ALICE)
        assert len(pulsator) == len(before)  # the times stay; nothing is phased on a maximum
        # (a null char reads as "" in astropy)
        assert all(r["o_c"] is None and not r["min_type"] and r["cycle"] is None
                   for r in pulsator)
    finally:
        dep.skvo("target", "default-ephemeris", STAR, str(original[0]["ephemeris_id"]))
    after = {r["night"]: r for r in minima(eclipses, ALICE)}
    assert {n: r["o_c"] for n, r in after.items()} == {n: r["o_c"] for n, r in before.items()}
    assert np.isfinite([r["o_c"] for r in after.values()]).all()


def _observed(mjd: float) -> Time:
    return Time(mjd, format="mjd", scale="utc", location=location())
