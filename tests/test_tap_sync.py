"""TAP 1.1 against the live server: pyvo, STILTS, access rights, errors, formats."""

from __future__ import annotations

import io
import re
import subprocess

import numpy as np
import pytest
import pyvo
import requests
from astropy.io.votable import parse as parse_votable
from astropy.table import Table
from conftest import ADMIN, ALICE, BOB, LiveServer, taplint_problems
from lxml import etree

import adql

TRACE_MARKERS = ("Traceback", 'File "', "sqlalchemy", "pymysql", "sqlite3", "SELECT `", "FROM (")


def tap(server: LiveServer, account: tuple[str, str] | None = None) -> pyvo.dal.TAPService:
    session = requests.Session()
    if account:
        session.auth = account
    return pyvo.dal.TAPService(f"{server.url}/tap", session=session)


def sync(server: LiveServer, query: str, account: tuple[str, str] | None = None,
         **params: str) -> requests.Response:
    data = {"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query, **params}
    return requests.post(f"{server.url}/tap/sync", data=data, auth=account, timeout=60)


def status(body: bytes) -> tuple[str, str]:
    """(value, text) of the QUERY_STATUS INFO of a VOTable."""
    root = etree.fromstring(body)
    info = root.find(".//{*}INFO[@name='QUERY_STATUS']")
    return info.get("value"), (info.text or "")


def test_taplint_reports_no_errors_and_no_warnings(server: LiveServer) -> None:
    result = subprocess.run(
        ["stilts", "taplint", f"tapurl={server.url}/tap", "report=EWF", "maxrepeat=3"],
        capture_output=True, text=True, timeout=600,
    )
    totals = re.search(r"Totals: Errors: (\d+); Warnings: (\d+); Failures: (\d+)", result.stdout)
    assert totals, result.stdout[-3000:] + result.stderr[-2000:]
    assert taplint_problems(result.stdout) == [], result.stdout[-3000:]


def test_pyvo_run_sync_and_metadata(server: LiveServer) -> None:
    service = tap(server)
    result = service.run_sync(
        "SELECT TOP 5 target_name, s_ra, s_dec, t_min, t_max, obs_publisher_did "
        "FROM ivoa.obscore ORDER BY t_min")
    table = result.to_table()
    assert len(table) == 5
    assert list(table.colnames) == ["target_name", "s_ra", "s_dec", "t_min", "t_max",
                                    "obs_publisher_did"]
    assert str(table["s_ra"].unit) == "deg"
    assert np.all(np.diff(np.asarray(table["t_min"])) >= 0)
    assert all(str(d).startswith("ivo://skvo.test.example/skvo?")
               for d in table["obs_publisher_did"])
    names = {t.name for t in service.tables}
    assert {"ivoa.obscore", "skvo.target", "TAP_SCHEMA.columns"} <= names
    columns = {c.name: c for c in service.tables["skvo.target"].columns}
    assert columns["right_ascension"].ucd == "pos.eq.ra;meta.main"
    assert service.maxrec == 10000 and service.hardlimit == 10000000
    methods = {m.ivo_id for m in service.upload_methods}
    assert "ivo://ivoa.net/std/tapregext#upload-inline" in {m.lower() for m in methods}


def test_maxrec_overflow_is_flagged(server: LiveServer) -> None:
    service = tap(server)
    result = service.run_sync("SELECT target_id FROM skvo.target", maxrec=2)
    assert len(result) == 2
    assert result.query_status == "OVERFLOW"
    body = sync(server, "SELECT target_id FROM skvo.target", MAXREC="0").content
    votable = parse_votable(io.BytesIO(body))
    assert len(votable.get_first_table().array) == 0
    assert body.rstrip().endswith(b"</VOTABLE>") and b'value="OVERFLOW"' in body


def test_upload_crossmatch(server: LiveServer) -> None:
    mine = Table({"ra": [282.52, 47.04, 10.0], "dec": [33.36, 40.96, -80.0],
                  "label": ["near beta Lyr", "near Algol", "nothing here"]})
    result = tap(server).run_sync(
        "SELECT u.label, t.target FROM TAP_UPLOAD.mine AS u JOIN skvo.target AS t "
        "ON 1 = CONTAINS(POINT('ICRS', t.right_ascension, t.declination), "
        "CIRCLE('ICRS', u.ra, u.dec, 0.05)) ORDER BY u.label",
        uploads={"mine": mine},
    ).to_table()
    assert [(str(r["label"]), str(r["target"])) for r in result] == [
        ("near Algol", "Algol"), ("near beta Lyr", "bet_Lyr")]


def test_hostile_upload_is_refused(server: LiveServer) -> None:
    bomb = (b'<?xml version="1.0"?><!DOCTYPE v [<!ENTITY a "aaaaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            b'<VOTABLE><RESOURCE><TABLE><FIELD name="x" datatype="char" arraysize="*"/>'
            b"<DATA><TABLEDATA><TR><TD>&b;</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE>"
            b"</VOTABLE>")
    response = requests.post(
        f"{server.url}/tap/sync",
        data={"LANG": "ADQL", "QUERY": "SELECT * FROM TAP_UPLOAD.t", "UPLOAD": "t,param:t"},
        files={"t": ("t.xml", bomb)}, timeout=30)
    assert response.status_code == 400
    value, text = status(response.content)
    assert value == "ERROR" and "DOCTYPE" in text


def test_stilts_tapquery_matches_pyvo(server: LiveServer, tmp_path) -> None:
    query = "SELECT target, right_ascension, declination FROM skvo.target ORDER BY target"
    out = tmp_path / "out.vot"
    subprocess.run(["stilts", "tapquery", f"tapurl={server.url}/tap", f"adql={query}",
                    f"out={out}", "ofmt=votable"], check=True, capture_output=True, timeout=120)
    stilts_table = Table.read(out, format="votable")
    pyvo_table = tap(server).run_sync(query).to_table()
    assert list(stilts_table["target"]) == list(pyvo_table["target"])
    assert np.array_equal(stilts_table["declination"], pyvo_table["declination"])


RESTRICTED_QUERIES = {
    "skvo.observation": "SELECT COUNT(*) AS n FROM skvo.observation WHERE access = 'restricted'",
    "skvo.photometry": "SELECT COUNT(*) AS n FROM skvo.photometry AS p JOIN skvo.observation "
                       "AS o ON o.observation_id = p.observation_id "
                       "WHERE o.access = 'restricted'",
    "ivoa.obscore": "SELECT COUNT(*) AS n FROM ivoa.obscore WHERE access_rights = 'restricted'",
}


def restricted_targets(server: LiveServer) -> set[str]:
    """Targets whose only observations are restricted (read with the admin account)."""
    admin = tap(server, ADMIN)
    all_targets = {str(r["target"]) for r in admin.run_sync(
        "SELECT target FROM skvo.target").to_table()}
    anon = {str(r["target"]) for r in tap(server).run_sync(
        "SELECT target FROM skvo.target").to_table()}
    return all_targets - anon


@pytest.mark.parametrize("table", sorted(RESTRICTED_QUERIES))
def test_restricted_rows_only_for_granted_users(server: LiveServer, table: str) -> None:
    query = RESTRICTED_QUERIES[table]
    counts = {}
    for who, account in (("anonymous", None), ("bob", BOB), ("alice", ALICE)):
        counts[who] = int(tap(server, account).run_sync(query).to_table()["n"][0])
    assert counts["anonymous"] == 0 and counts["bob"] == 0
    assert counts["alice"] > 0, "the sample data must hold restricted series"


@pytest.mark.parametrize("fmt", ["votable", "votable/td", "votable/b", "csv", "tsv", "json",
                                 "fits"])
def test_restricted_data_never_in_any_format(server: LiveServer, fmt: str) -> None:
    hidden = [str(r["obs_id"]) for r in tap(server, ALICE).run_sync(
        "SELECT obs_id FROM ivoa.obscore WHERE access_rights = 'restricted'").to_table()]
    assert hidden, "the sample data must hold restricted series"
    query = "SELECT obs_id, obs_publisher_did, access_url, access_rights FROM ivoa.obscore"
    for account in (None, BOB):
        response = sync(server, query, account, RESPONSEFORMAT=fmt)
        assert response.status_code == 200
        assert not any(uuid.encode() in response.content for uuid in hidden)
    granted = sync(server, query, ALICE, RESPONSEFORMAT=fmt)
    if fmt not in ("votable", "votable/b", "fits"):  # binary encodings hide the text
        assert all(uuid.encode() in granted.content for uuid in hidden)


def test_targets_of_restricted_series_are_hidden(server: LiveServer) -> None:
    hidden = restricted_targets(server)
    for target in hidden:
        for account in (None, BOB):
            r = tap(server, account).run_sync(
                f"SELECT COUNT(*) AS n FROM skvo.target WHERE target = '{target}'")
            assert int(r.to_table()["n"][0]) == 0


def test_wrong_password_is_refused(server: LiveServer) -> None:
    response = sync(server, "SELECT TOP 1 * FROM skvo.target", ("alice", "not-her-password"))
    assert response.status_code == 401


def test_adql_errors_name_line_and_column(server: LiveServer) -> None:
    response = sync(server, "SELECT rra\nFROM ivoa.obscore")
    assert response.status_code == 400
    value, text = status(response.content)
    assert value == "ERROR"
    assert "line 1, column 8" in text and "s_ra" in text
    assert not any(marker in response.text for marker in TRACE_MARKERS)


@pytest.mark.parametrize("query", [
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM sqlite_master",
    "SELECT * FROM mysql.user",
    "SELECT * FROM ts_chunk",
    "SELECT * FROM skvo_user",
    "DELETE FROM skvo.target",
    "SELECT 1; DROP TABLE target",
])
def test_unpublished_tables_and_changes_are_unreachable(server: LiveServer, query: str) -> None:
    response = sync(server, query)
    assert response.status_code == 400
    value, text = status(response.content)
    assert value == "ERROR" and text
    assert not any(marker in response.text for marker in TRACE_MARKERS)


def test_parameters_are_case_insensitive_and_get_works(server: LiveServer) -> None:
    response = requests.get(f"{server.url}/tap/sync", params={
        "lang": "ADQL-2.1", "query": "SELECT TOP 1 bandpass_uid FROM skvo.bandpass",
        "responseformat": "csv", "dummy": "ignore-me"}, timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert response.text.splitlines()[0] == "bandpass_uid"
    bad = requests.get(f"{server.url}/tap/sync", params={
        "LANG": "SQL", "QUERY": "SELECT 1"}, timeout=30)
    assert bad.status_code == 400 and "LANG" in status(bad.content)[1]


def test_every_example_runs(server: LiveServer) -> None:
    page = requests.get(f"{server.url}/tap/examples", timeout=30)
    assert page.status_code == 200
    root = etree.fromstring(page.content)
    examples = root.findall(".//*[@typeof='example']")
    assert len(examples) >= 8
    for example in examples:
        query = "".join(example.find(".//*[@property='query']").itertext())
        if "TAP_UPLOAD" in query:
            continue  # exercised by test_upload_crossmatch
        response = sync(server, query)
        assert response.status_code == 200, (example.get("id"), response.text[-500:])
        assert status(response.content)[0] == "OK", example.get("id")


def test_geometry_values_are_dali_arrays(server: LiveServer) -> None:
    result = tap(server).run_sync(
        "SELECT TOP 1 POINT('ICRS', right_ascension, declination) AS pos, right_ascension, "
        "declination FROM skvo.target ORDER BY target")
    field = result.fieldname_with_ucd  # noqa: F841 - the lookup itself must not fail
    table = result.to_table()
    pos = np.asarray(table["pos"][0], dtype=float)
    assert pos == pytest.approx([table["right_ascension"][0], table["declination"][0]])
    votable = result.votable
    assert votable.get_first_table().get_field_by_id_or_name("pos").xtype == "point"


UDF_FEATURES = "ivo://ivoa.net/std/TAPRegExt#features-udf"


def test_capabilities_declare_the_implemented_udfs(server: LiveServer) -> None:
    response = requests.get(f"{server.url}/tap/capabilities", timeout=30)
    assert response.status_code == 200
    root = etree.fromstring(response.content)
    groups = root.findall(f".//{{*}}languageFeatures[@type='{UDF_FEATURES}']")
    assert len(groups) == 1
    declared = [(f.findtext("form"), f.findtext("description"))
                for f in groups[0].findall("feature")]
    assert declared == [(u.form, u.description) for u in adql.IMPLEMENTED_UDFS]
    assert len({form for form, _ in declared}) == len(declared) and all(d for _, d in declared)
    # pyvo reads them as well
    language = tap(server).get_tap_capability().get_adql()
    assert [f.form for f in language.get_feature_list(UDF_FEATURES)] == [
        u.form for u in adql.IMPLEMENTED_UDFS]
    assert language.get_udf("IVO_HASWORD").form.startswith("ivo_hasword(")


def _has_word(text: str, word: str) -> int:
    """Whether word is in text, case-insensitively, touching no letter, digit or _."""
    text, word = text.lower(), word.lower()
    i = text.find(word)
    while i >= 0:
        around = text[i - 1:i] + text[i + len(word):i + len(word) + 1]
        if i == 0:
            around = "-" + around
        if not re.search(r"[a-z0-9_]", around):
            return 1
        i = text.find(word, i + 1)
    return 0


def test_udfs_through_pyvo(server: LiveServer) -> None:
    service = tap(server)
    rows = [(str(r["target"]), str(r["description"]), str(r["target_class"]),
             float(r["declination"])) for r in service.run_sync(
        "SELECT target, description, target_class, declination FROM skvo.target").to_table()]
    assert rows
    result = service.run_sync(
        "SELECT target, ivo_hasword(description, 'CLASS') AS cls, ivo_hasword(target_class, "
        "'period') AS per, ivo_nocasematch(target, '%L%') AS has_l, ivo_interval_overlaps("
        "declination, declination + 5, 40, 50) AS band FROM skvo.target ORDER BY target"
    ).to_table()
    got = [(str(r["target"]), int(r["cls"]), int(r["per"]), int(r["has_l"]), int(r["band"]))
           for r in result]
    want = sorted((t, _has_word(d, "class"), _has_word(c, "period"), int("l" in t.lower()),
                   int(dec + 5 >= 40 and dec <= 50)) for t, d, c, dec in rows)
    assert got == want
    assert all({0, 1} <= set(col) for col in list(zip(*want, strict=True))[1:])
    assert sum(_has_word(d, "class") for _, d, _, _ in rows) < sum(
        "class" in d.lower() for _, d, _, _ in rows)  # 'classical' is not the word 'class'
    picked = service.run_sync("SELECT target FROM skvo.target WHERE ivo_hasword(target_class, "
                              "'VARIABLE') = 1 AND 1 = ivo_hashlist_has('x#' || target || "
                              "'#y', target)").to_table()
    assert sorted(str(t) for t in picked["target"]) == sorted(
        t for t, _, c, _ in rows if _has_word(c, "variable"))
    table = service.run_sync("SELECT target_class, ivo_string_agg(target, '|') AS members "
                             "FROM skvo.target GROUP BY target_class").to_table()
    members = {str(r["target_class"]): sorted(str(r["members"]).split("|")) for r in table}
    assert members == {c: sorted(t for t, _, c2, _ in rows if c2 == c) for _, _, c, _ in rows}
    field = service.run_sync("SELECT TOP 1 ivo_hashlist_has(target, 'x') AS h FROM "
                             "skvo.target").votable.get_first_table().get_field_by_id_or_name("h")
    assert field.datatype == "int"
    response = sync(server, "SELECT ivo_hasword(target) FROM skvo.target")
    assert response.status_code == 400
    value, text = status(response.content)
    assert value == "ERROR" and "line 1, column 8" in text and "2 arguments" in text


def test_string_conditions_on_obscore_columns(server: LiveServer) -> None:
    """LIKE and = on ObsCore's computed columns answer on both databases (MariaDB leaves
    "Truncated incorrect DOUBLE value" warnings of its own when it pushes such a condition
    into the view: they are no error of the query's)."""
    service = tap(server)
    stars = service.run_sync("SELECT COUNT(*) AS n FROM ivoa.obscore WHERE calib_level = 3")
    n_stars = int(stars.to_table()["n"][0])
    assert n_stars > 0
    for cond in ("obs_id LIKE 'star/%'", "obs_id || '' LIKE 'star/%'",
                 "LOWER(obs_id) LIKE 'star/%' AND obs_id <> 'x'"):
        got = service.run_sync(f"SELECT COUNT(*) AS n FROM ivoa.obscore WHERE {cond}")
        assert int(got.to_table()["n"][0]) == n_stars, cond
    first = service.run_sync("SELECT TOP 1 obs_id FROM ivoa.obscore WHERE calib_level = 2 "
                             "ORDER BY obs_id").to_table()["obs_id"][0]
    same = service.run_sync(f"SELECT obs_id FROM ivoa.obscore WHERE obs_id = '{first}'")
    assert [str(v) for v in same.to_table()["obs_id"]] == [str(first)]
