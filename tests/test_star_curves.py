"""A star's light curve over all its nights, in every protocol, against the live servers.

The demo tree has stars observed by several sources in several bands, with
open, on_demand and restricted nights, absolute and differential magnitudes
and heliocentric, topocentric and barycentric times.  Every check derives its
expectation from the per-night curves and TAP, never from numbers written here.
"""

from __future__ import annotations

import io
import subprocess
from urllib.parse import quote

import numpy as np
import pytest
import pyvo
import requests
from astropy.io.votable import parse as parse_votable
from conftest import ALICE, BOB, LiveServer
from lxml import etree

VOT = "{http://www.ivoa.net/xml/VOTable/v1.3}"
ANONYMOUS = None


def session(account: tuple[str, str] | None) -> requests.Session:
    s = requests.Session()
    if account is not None:
        s.auth = account
    return s


def tap(server: LiveServer, account: tuple[str, str] | None, query: str) -> list[dict]:
    service = pyvo.dal.TAPService(f"{server.url}/tap", session=session(account))
    table = service.run_sync(query).to_table()
    return [{k: (v.item() if hasattr(v, "item") else str(v)) for k, v in
             zip(table.colnames, row, strict=True)} for row in table]


def nights(server: LiveServer, account: tuple[str, str] | None, target: str, band: str
           ) -> list[dict]:
    """The per-night ObsCore records of a star in a band."""
    return tap(server, account,
               "SELECT obs_id, access_rights, t_xel FROM ivoa.obscore WHERE calib_level = 2 "
               f"AND target_name = '{target}' AND bandpass_uid = '{band}'")


def stars(server: LiveServer, account: tuple[str, str] | None) -> list[dict]:
    """The star records of ObsCore, with the target id taken from obs_id."""
    rows = tap(server, account,
               "SELECT obs_id, obs_publisher_did, target_name, bandpass_uid, t_min, t_max, "
               "t_xel, access_url, preview, dataproduct_subtype FROM ivoa.obscore "
               "WHERE calib_level = 3 ORDER BY obs_id")
    for r in rows:
        r["target_id"] = int(r["obs_id"].split("/")[1])
    return rows


def votable_tables(body: bytes) -> list:
    return [t for r in parse_votable(io.BytesIO(body)).resources for t in r.tables]


def night_points(server: LiveServer, account: tuple[str, str] | None, obs_id: str, band: str
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(times, magnitudes, calibrations, refposition) of a night's curve."""
    r = session(account).get(f"{server.url}/lightcurve/{obs_id}/{quote(band, safe='')}",
                             timeout=60)
    assert r.status_code == 200, r.text
    root = etree.fromstring(r.content)
    ref = root.find(f"{VOT}TIMESYS").get("refposition")
    table = votable_tables(r.content)[0].array
    return (np.asarray(table["time"]), np.asarray(table["magnitude"]),
            np.asarray(table["flux_calibration"]).astype(str), ref)


def star_curve(server: LiveServer, account: tuple[str, str] | None, target_id: int,
               band: str | None = None, **params: str) -> requests.Response:
    path = f"/lightcurve/star/{target_id}" + (f"/{quote(band, safe='')}" if band else "")
    return session(account).get(server.url + path, params=params, timeout=60)


@pytest.mark.parametrize("account", [ANONYMOUS, ALICE], ids=["anonymous", "alice"])
def test_star_curve_joins_exactly_the_fetchable_nights(server: LiveServer, account) -> None:
    """Every star record's curve holds the points of the nights the user may fetch, in
    time order, in one calibration, each point naming its night."""
    records = stars(server, account)
    assert records
    checked = 0
    for rec in records:
        r = star_curve(server, account, rec["target_id"], rec["bandpass_uid"])
        assert r.status_code == 200, (rec, r.text)
        tables = votable_tables(r.content)
        calib = {str(next(p.value for p in t.params if p.name == "flux_calibration"))
                 for t in tables}
        assert len(calib) == 1
        calib = calib.pop()
        fetchable = [n for n in nights(server, account, rec["target_name"], rec["bandpass_uid"])
                     if account is not None or n["access_rights"] == "open"]
        expected_t, expected_m, expected_obs, refs = [], [], [], set()
        for n in fetchable:
            t, m, c, ref = night_points(server, account, n["obs_id"], rec["bandpass_uid"])
            keep = c == calib
            if keep.any():
                refs.add(ref)
            expected_t.append(t[keep])
            expected_m.append(m[keep])
            expected_obs += [n["obs_id"]] * int(keep.sum())
        got = [t.array for t in tables]
        assert {t.get_field_by_id_or_name("time").ref for t in tables} and len(tables) == len(refs)
        for table in got:
            assert np.all(np.diff(np.asarray(table["time"])) >= 0), "not in time order"
        t_all = np.concatenate([np.asarray(a["time"]) for a in got])
        m_all = np.concatenate([np.asarray(a["magnitude"]) for a in got])
        o_all = np.concatenate([np.asarray(a["obs_id"]).astype(str) for a in got])
        order = np.lexsort((m_all, t_all))
        exp_t, exp_m = np.concatenate(expected_t), np.concatenate(expected_m)
        exp_o = np.asarray(expected_obs)
        exp_order = np.lexsort((exp_m, exp_t))
        assert np.array_equal(t_all[order], exp_t[exp_order])
        assert np.array_equal(m_all[order], exp_m[exp_order])
        assert sorted(o_all) == sorted(exp_o)
        assert rec["t_xel"] >= len(t_all)
        assert rec["t_min"] <= t_all.min() and t_all.max() <= rec["t_max"]
        assert rec["dataproduct_subtype"] == "lightcurve"
        checked += 1
    assert checked == len(records)


def test_granted_users_get_more_nights_and_never_mixed_calibrations(server: LiveServer) -> None:
    anonymous = {(r["target_id"], r["bandpass_uid"]): r for r in stars(server, ANONYMOUS)}
    alice = {(r["target_id"], r["bandpass_uid"]): r for r in stars(server, ALICE)}
    assert set(anonymous) < set(alice)  # restricted-only stars exist for the granted only
    assert any(alice[k]["t_xel"] > anonymous[k]["t_xel"] for k in anonymous)
    # a band with both calibrations: the default is abs, CALIB=dif gives the rest
    for (target_id, band), rec in alice.items():  # noqa: B007 - used after the loop
        rows = nights(server, ALICE, rec["target_name"], band)
        calibs = set()
        for n in rows:
            calibs |= set(night_points(server, ALICE, n["obs_id"], band)[2])
        if calibs == {"abs", "dif"}:
            break
    else:
        pytest.fail("the demo tree has no band with both calibrations")
    for calib in ("abs", "dif"):
        r = star_curve(server, ALICE, target_id, band, CALIB=calib, RESPONSEFORMAT="votable")
        assert r.status_code == 200, r.text
        for table in votable_tables(r.content):
            assert set(np.asarray(table.array["flux_calibration"]).astype(str)) == {calib}
    default = star_curve(server, ALICE, target_id, band, RESPONSEFORMAT="votable")
    for table in votable_tables(default.content):
        params = {p.name: str(p.value) for p in table.params}
        assert params["flux_calibration"] == "abs"
        assert set(np.asarray(table.array["flux_calibration"]).astype(str)) == {"abs"}
    bad = star_curve(server, ALICE, target_id, band, CALIB="both")
    assert bad.status_code == 400 and b"CALIB" in bad.content


def test_restricted_stars_do_not_exist_for_others(server: LiveServer) -> None:
    granted = {r["target_id"]: r for r in stars(server, ALICE)}
    public = {r["target_id"] for r in stars(server, ANONYMOUS)}
    hidden = []
    for target_id, rec in granted.items():
        if target_id in public:
            continue
        rows = tap(server, ANONYMOUS, "SELECT COUNT(*) AS n FROM ivoa.obscore WHERE "
                   f"target_name = '{rec['target_name']}'")
        if rows[0]["n"] == 0:
            hidden.append(rec)
    assert hidden, "the demo tree has no star whose every night is restricted"
    for rec in hidden:
        for account in (ANONYMOUS, BOB):
            r = star_curve(server, account, rec["target_id"], rec["bandpass_uid"])
            assert r.status_code == 404
            assert star_curve(server, account, rec["target_id"]).status_code == 404
            preview = session(account).get(rec["preview"], timeout=30)
            assert preview.status_code == 404
            links = session(account).get(f"{server.url}/datalink",
                                         params={"ID": rec["obs_publisher_did"]}, timeout=30)
            assert b"NotFoundFault" in links.content
            assert rec["target_name"].encode() not in links.content
            ssa = session(account).get(f"{server.url}/ssa", timeout=30, params={
                "REQUEST": "queryData", "PUBDID": rec["obs_publisher_did"]})
            assert rec["target_name"].encode() not in ssa.content


def test_on_demand_only_star_is_refused_not_hidden(server: LiveServer) -> None:
    """A star the anonymous user may see only on_demand nights of: 401, 403 for Bob."""
    alice = stars(server, ALICE)
    public = {(r["target_id"], r["bandpass_uid"]) for r in stars(server, ANONYMOUS)}
    for rec in alice:
        if (rec["target_id"], rec["bandpass_uid"]) in public:
            continue
        rows = nights(server, ANONYMOUS, rec["target_name"], rec["bandpass_uid"])
        if rows and all(n["access_rights"] == "on_demand" for n in rows):
            break
    else:
        pytest.fail("the demo tree has no star band with on_demand nights only")
    assert star_curve(server, ANONYMOUS, rec["target_id"], rec["bandpass_uid"]).status_code == 401
    assert star_curve(server, BOB, rec["target_id"], rec["bandpass_uid"]).status_code == 403
    assert star_curve(server, ALICE, rec["target_id"], rec["bandpass_uid"]).status_code == 200


def test_times_at_different_positions_are_kept_apart(server: LiveServer) -> None:
    """Nights with different time reference positions: a TABLE and a TIMESYS each; one
    table formats (CSV) must choose with TIMEREF."""
    for rec in stars(server, ALICE):
        r = star_curve(server, ALICE, rec["target_id"], rec["bandpass_uid"])
        root = etree.fromstring(r.content)
        refs = [t.get("refposition") for t in root.findall(f"{VOT}TIMESYS")]
        if len(set(refs)) > 1:
            break
    else:
        pytest.fail("the demo tree has no star band with two time reference positions")
    tables = root.findall(f".//{VOT}TABLE")
    assert len(tables) == len(refs)
    by_id = {t.get("ID"): t.get("refposition") for t in root.findall(f"{VOT}TIMESYS")}
    assert sorted(by_id[t.find(f"{VOT}FIELD").get("ref")] for t in tables) == sorted(refs)
    csv = star_curve(server, ALICE, rec["target_id"], rec["bandpass_uid"], RESPONSEFORMAT="csv")
    assert csv.status_code == 400 and b"TIMEREF" in csv.content
    one = star_curve(server, ALICE, rec["target_id"], rec["bandpass_uid"],
                     RESPONSEFORMAT="csv", TIMEREF=refs[0].lower())
    assert one.status_code == 200
    assert one.text.splitlines()[0].startswith("time,magnitude,")
    result = subprocess.run(["stilts", "votlint", "-"], input=r.content, capture_output=True,
                            timeout=120)
    assert b"ERROR" not in result.stdout + result.stderr, result.stdout


def test_multiband_star_is_one_resource_with_a_table_per_band(server: LiveServer) -> None:
    records = stars(server, ANONYMOUS)
    by_target: dict[int, set[str]] = {}
    for rec in records:
        by_target.setdefault(rec["target_id"], set()).add(rec["bandpass_uid"])
    target_id, bands = max(by_target.items(), key=lambda kv: len(kv[1]))
    assert len(bands) > 1
    r = star_curve(server, ANONYMOUS, target_id, RESPONSEFORMAT="votable/binary2")
    assert r.status_code == 200
    root = etree.fromstring(r.content)
    assert len(root.findall(f"{VOT}RESOURCE")) == 1
    names = {t.get("name") for t in root.findall(f".//{VOT}TABLE")}
    assert {f"lightcurve_{b}" for b in bands} <= names
    for table in root.findall(f".//{VOT}TABLE"):
        assert table.find(f"{VOT}GROUP[@name='photcal']") is not None
    picked = star_curve(server, ANONYMOUS, target_id, BAND=sorted(bands)[0])
    assert {t.get("name") for t in etree.fromstring(picked.content).findall(f".//{VOT}TABLE")
            } <= {f"lightcurve_{sorted(bands)[0]}"}
    unknown = star_curve(server, ANONYMOUS, target_id, BAND="nosuch.band")
    assert unknown.status_code == 400 and b"BAND" in unknown.content


def test_fold_on_the_stored_ephemeris(server: LiveServer) -> None:
    ephemerides = tap(server, ANONYMOUS, "SELECT target_id, period, epoch FROM skvo.ephemeris "
                      "WHERE is_default = 1")
    records = {r["target_id"]: r for r in stars(server, ANONYMOUS)}
    eph = next(e for e in ephemerides if e["target_id"] in records)
    rec = records[eph["target_id"]]
    r = star_curve(server, ANONYMOUS, rec["target_id"], rec["bandpass_uid"], PERIOD="catalog",
                   RESPONSEFORMAT="votable")
    assert r.status_code == 200, r.text
    table = votable_tables(r.content)[0]
    t, phase = np.asarray(table.array["time"]), np.asarray(table.array["phase"])
    assert np.allclose(phase, np.mod((t - eph["epoch"]) / eph["period"], 1.0), atol=1e-9)
    params = {p.name: p.value for p in table.params}
    assert params["period"] == pytest.approx(eph["period"])
    folded = session(None).get(rec["preview"].replace("preview.png", "preview-folded.png"))
    assert folded.status_code == 200 and folded.content[:8] == b"\x89PNG\r\n\x1a\n"
    # a star without an ephemeris: PERIOD=catalog is a usage error, #preview-plot a fault
    without = [r for r in records.values() if r["target_id"] not in
               {e["target_id"] for e in ephemerides}]
    for rec in without[:1]:
        bad = star_curve(server, ANONYMOUS, rec["target_id"], rec["bandpass_uid"],
                         PERIOD="catalog")
        assert bad.status_code == 400 and b"ephemeris" in bad.content


def test_datalink_of_a_star_curve(server: LiveServer) -> None:
    rec = max(stars(server, ALICE), key=lambda r: r["t_xel"])
    links = pyvo.dal.adhoc.DatalinkResults.from_result_url(rec["access_url"],
                                                           session=session(ALICE))
    semantics = [row.semantics for row in links]
    assert semantics.count("#this") == 2 and "#preview" in semantics
    assert "#preview-plot" in semantics
    progenitors = [row for row in links if row.semantics == "#progenitor"]
    expected = nights(server, ALICE, rec["target_name"], rec["bandpass_uid"])
    assert len(progenitors) == len(expected)
    for row in progenitors:
        assert session(ALICE).head(row.access_url, timeout=30).status_code in (200, 405)
    this = next(row for row in links if row.semantics == "#this" and
                row.content_type.startswith("application/x-votable"))
    assert this.access_url.endswith(f"/lightcurve/star/{rec['target_id']}/"
                                    f"{quote(rec['bandpass_uid'], safe='')}")
    # a point's obs_id leads DataLink to its night
    r = star_curve(server, ALICE, rec["target_id"], rec["bandpass_uid"], MAXREC="1",
                   RESPONSEFORMAT="csv", TIMEREF="")
    if r.status_code == 200:
        obs_id = r.text.splitlines()[1].split(",")[7]
        night = session(ALICE).get(f"{server.url}/datalink", params={"ID": obs_id})
        assert b"NotFoundFault" not in night.content and b"#this" in night.content


def test_ssa_lists_star_curves_and_gets_them(server: LiveServer) -> None:
    rec = max(stars(server, ANONYMOUS), key=lambda r: r["t_xel"])
    ssa = pyvo.dal.SSAService(f"{server.url}/ssa")
    table = ssa.search(targetname=rec["target_name"]).to_table()
    levels = set(np.asarray(table["calib_level"]).tolist())
    assert levels == {2, 3}
    dids = [str(x) for x in table["ssa_pubDID"]]
    assert rec["obs_publisher_did"] in dids
    got = requests.get(f"{server.url}/ssa", params={
        "REQUEST": "getData", "PUBDID": rec["obs_publisher_did"]}, allow_redirects=False)
    assert got.status_code == 303
    assert f"/lightcurve/star/{rec['target_id']}/" in got.headers["Location"]


def _times(body: bytes) -> list[tuple[str, np.ndarray]]:
    root = etree.fromstring(body)
    refs = {t.get("ID"): (t.get("timescale"), t.get("refposition"))
            for t in root.findall(f"{VOT}TIMESYS")}
    out = []
    for table, parsed in zip(root.findall(f".//{VOT}TABLE"), votable_tables(body), strict=True):
        out.append((refs[table.find(f"{VOT}FIELD").get("ref")],
                    np.asarray(parsed.array["time"]),
                    np.asarray(parsed.array["obs_id"]).astype(str)))
    return out


def test_times_converted_to_one_system(server: LiveServer) -> None:
    """TIMESYS=BJD_TDB joins every position in one TABLE; topocentric times get
    astropy's barycentric correction at the facility; times already in the asked system
    come back unchanged (never corrected twice)."""
    from astropy import units as u
    from astropy.coordinates import EarthLocation, SkyCoord
    from astropy.time import Time

    targets = tap(server, ALICE, "SELECT target_id, right_ascension, declination FROM "
                  "skvo.target")
    position = {r["target_id"]: (r["right_ascension"], r["declination"]) for r in targets}
    facilities = tap(server, ALICE, "SELECT o.observation_uuid, p.time_refposition, "
                     "f.longitude, f.latitude, f.height FROM skvo.observation AS o "
                     "JOIN skvo.photometry AS p ON p.observation_id = o.observation_id "
                     "JOIN skvo.facility AS f ON f.facility_id = o.facility_id")
    where = {r["observation_uuid"]: r for r in facilities}
    checked = {"topocenter": 0, "heliocenter": 0}
    for rec in stars(server, ALICE):
        for calib in ("abs", "dif"):
            plain = star_curve(server, ALICE, rec["target_id"], rec["bandpass_uid"],
                               CALIB=calib, RESPONSEFORMAT="votable")
            if plain.status_code != 200:
                continue
            bary = star_curve(server, ALICE, rec["target_id"], rec["bandpass_uid"],
                              CALIB=calib, TIMESYS="BJD_TDB", RESPONSEFORMAT="votable")
            helio = star_curve(server, ALICE, rec["target_id"], rec["bandpass_uid"],
                               CALIB=calib, TIMESYS="HJD_UTC", RESPONSEFORMAT="votable")
            assert bary.status_code == helio.status_code == 200, bary.text
            [(sys_b, t_b, obs_b)] = _times(bary.content)
            [(sys_h, t_h, obs_h)] = _times(helio.content)
            assert sys_b == ("TDB", "BARYCENTER") and sys_h == ("UTC", "HELIOCENTER")
            assert np.all(np.diff(t_b) >= 0)
            delivered = {}
            for _system, t, obs in _times(plain.content):
                for time, o in zip(t, obs, strict=True):
                    delivered.setdefault(o, []).append(time)
            ra, dec = position[rec["target_id"]]
            for o in sorted(set(obs_b)):
                night = where[o]
                original = np.sort(np.asarray(delivered[o]))
                if night["time_refposition"] == "heliocenter":
                    assert np.allclose(np.sort(t_h[obs_h == o]), original, rtol=0,
                                       atol=1e-6 / 86400)
                    checked["heliocenter"] += 1
                if night["time_refposition"] == "topocenter" and night["longitude"] is not None:
                    site = EarthLocation.from_geodetic(night["longitude"] * u.deg,
                                                       night["latitude"] * u.deg,
                                                       night["height"] * u.m)
                    t = Time(original, format="mjd", scale="utc", location=site)
                    star = SkyCoord(ra * u.deg, dec * u.deg)
                    expected = (t.tdb + t.light_travel_time(star, "barycentric")).mjd
                    assert np.allclose(np.sort(t_b[obs_b == o]), expected, rtol=0,
                                       atol=1e-3 / 86400), o
                    checked["topocenter"] += 1
    assert checked["topocenter"] and checked["heliocenter"], checked
    rec = stars(server, ALICE)[0]
    bad = star_curve(server, ALICE, rec["target_id"], rec["bandpass_uid"], TIMESYS="JD")
    assert bad.status_code == 400 and b"TIMESYS" in bad.content
