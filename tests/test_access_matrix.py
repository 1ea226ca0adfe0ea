"""Attack test: every route x every kind of user, nothing restricted leaks.

The users: anonymous, BOB (an account without grants), CAROL (granted one
source only) and ALICE (granted every source); a job of ALICE's seen by the
others.  What each may see and fetch is derived from the metadata database
(each observation's access right and source) and the grants, never from
numbers written here:

- restricted rows exist only for users granted their source: no row, id,
  position, count or aggregate over them reaches anybody else, in any
  protocol (TAP tables and ObsCore, aggregates, uploads joined against the
  tables, SCS, SSA, SIA, DataLink, light curves, previews, frames, async jobs);
- on_demand metadata are public, their points, previews and frames are not:
  401 for anonymous users, 403 for users without a grant;
- the granted user gets everything.

The deployment is this module's own: the sample tree with one series of
frames made on_demand (the sample has frames only of open and restricted
series) and a user granted a single source.
"""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import requests
import sqlalchemy as sa
from astropy.io.votable import parse_single_table
from astropy.table import Table
from conftest import ALICE, BOB, Deployment, LiveServer, deploy, mariadb_database
from lxml import etree

from voservice.catalog import publisher_did
from voservice.demo import CAMPAIGN_SOURCE
from voservice.protocols.sia import frame_did
from voservice.stores.metadata import make_engine

CAROL = ("carol", "c4rol-pw")
#: the one source CAROL is granted (it has open and restricted observations)
CAROL_SOURCE = "vhao"
#: (source, night folder, bandpass, new access) of the sample tree changed here: frames
#: of an on_demand series (the sample has frames of open and restricted series only), and
#: nights that mix open with on_demand and open with restricted series
CHANGED_SERIES = (("skalnate", "del_Cep_20171204", "johnson.b", "on_demand"),
                  ("vhao", "R_Cas_20180127", "cousins.r", "restricted"))


@dataclass(frozen=True)
class User:
    """A kind of user: credentials (None: anonymous) and the sources granted."""

    name: str
    auth: tuple[str, str] | None
    grants: frozenset[str]

    def sees(self, access: str, source: str) -> bool:
        """The rule of the spec: restricted metadata only with a grant."""
        return access != "restricted" or source in self.grants

    def fetches(self, access: str, source: str) -> bool:
        """Points and frames: open ones, or with a grant."""
        return access == "open" or source in self.grants

    def denial(self) -> int:
        """The status of on_demand data without a grant."""
        return 401 if self.auth is None else 403


@dataclass(frozen=True)
class Obs:
    """One observation of the metadata database."""

    observation_id: int
    uuid: str
    access: str
    source: str
    target_id: int
    night: tuple[str, str, str]  # (source, night, target folder): one multiband table


@dataclass(frozen=True)
class Series:
    """One photometry series (a light curve)."""

    photometry_id: int
    obs: Obs
    bandpass_uid: str
    n_points: int


@dataclass(frozen=True)
class Frame:
    """One image frame."""

    frame_id: int
    series: Series
    frame_index: int


@dataclass
class Truth:
    """What the database holds, read directly (not through the service)."""

    authority: str
    observations: list[Obs]
    series: list[Series]
    frames: list[Frame]
    targets: dict[int, tuple[float, float]]  # target_id -> (ra, dec)

    def obs_for(self, user: User) -> list[Obs]:
        """The observations the user may see."""
        return [o for o in self.observations if user.sees(o.access, o.source)]

    def series_for(self, user: User) -> list[Series]:
        """The series the user may see."""
        return [s for s in self.series if user.sees(s.obs.access, s.obs.source)]

    def frames_for(self, user: User) -> list[Frame]:
        """The frames the user may see (as metadata)."""
        return [f for f in self.frames if user.sees(f.series.obs.access, f.series.obs.source)]

    def targets_for(self, user: User) -> set[int]:
        """Targets with at least one observation the user may see."""
        return {o.target_id for o in self.obs_for(user)}

    def stars_for(self, user: User) -> dict[tuple[int, str], int]:
        """Points of each star curve (target, band) the user may fetch: calib_level 3."""
        out: dict[tuple[int, str], int] = {}
        for s in self.series_for(user):
            if user.fetches(s.obs.access, s.obs.source):
                key = (s.obs.target_id, s.bandpass_uid)
                out[key] = out.get(key, 0) + s.n_points
        return out

    def star_did(self, key: tuple[int, str]) -> str:
        return f"ivo://{self.authority}/skvo?star/{key[0]}/{key[1]}"

    def did(self, obs: Obs) -> str:
        """The publisher DID of an observation."""
        return publisher_did(self.authority, obs.uuid)


def read_truth(dep: Deployment) -> Truth:
    """Observations, series, frames and targets straight from the metadata database."""
    settings = dep.settings()
    engine = make_engine(settings.metadata_url)
    with engine.connect() as conn:
        obs = {r.observation_id: Obs(r.observation_id, r.observation_uuid, r.access, r.source,
                                     r.target_id, (r.source, r.night, r.target_folder))
               for r in conn.execute(sa.text(
                   "SELECT observation_id, observation_uuid, access, source, target_id, night, "
                   "target_folder FROM observation"))}
        series = {r.photometry_id: Series(r.photometry_id, obs[r.observation_id],
                                          r.bandpass_uid, r.n_points)
                  for r in conn.execute(sa.text(
                      "SELECT p.photometry_id, p.observation_id, b.bandpass_uid, p.n_points "
                      "FROM photometry p JOIN bandpass b ON b.bandpass_id = p.bandpass_id"))}
        frames = [Frame(r.frame_id, series[r.photometry_id], r.frame_index)
                  for r in conn.execute(sa.text(
                      "SELECT frame_id, photometry_id, frame_index FROM frame"))]
        targets = {r.target_id: (r.right_ascension, r.declination) for r in conn.execute(
            sa.text("SELECT target_id, right_ascension, declination FROM target"))}
    engine.dispose()
    return Truth(settings.get("vo", "authority"), list(obs.values()), list(series.values()),
                 frames, targets)


def matrix_tree(demo_tree: Path, dest: Path) -> Path:
    """A copy of the sample tree with the access rights of CHANGED_SERIES and one night
    per star of the campaign (its other open nights only add requests)."""
    shutil.copytree(demo_tree, dest)
    kept: set[str] = set()
    for night in sorted((dest / CAMPAIGN_SOURCE.name).glob("photometry/dtables/*/*")):
        target = night.name.rpartition("_")[0]
        if target in kept:
            for folder in (dest / CAMPAIGN_SOURCE.name).glob(
                    f"photometry/*/{night.parent.name}/{night.name}"):
                shutil.rmtree(folder)
        kept.add(target)
    for source, folder, band, access in CHANGED_SERIES:
        metas = list((dest / source).glob(f"photometry/dtables/*/{folder}/{band}/*_meta*.csv"))
        assert len(metas) == 1, metas
        rows = list(csv.reader(metas[0].open(newline="")))
        column = rows[0].index("access.access")
        assert rows[1][column] == "open"
        for row in rows[1:]:
            row[column] = access
        with metas[0].open("w", newline="") as fh:
            csv.writer(fh).writerows(rows)
    return dest


@pytest.fixture(scope="module", params=["sqlite", "mariadb"])
def matrix(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           demo_tree: Path) -> Iterator[tuple[LiveServer, Truth]]:
    """This module's deployment on each database, served, with the truth of its data."""
    root = tmp_path_factory.mktemp(f"matrix-{request.param}")
    tree = matrix_tree(demo_tree, root / "tree")
    url = ("sqlite:///skvo.sqlite" if request.param == "sqlite"
           else mariadb_database("skvo_access_matrix"))
    dep = deploy(root / "dep", tree, url, vo={"scs_max_sr": "180"})
    dep.skvo("user", "add", CAROL[0], "--password", CAROL[1])
    dep.skvo("user", "grant", CAROL[0], CAROL_SOURCE)
    server = LiveServer(dep)
    server.start()
    truth = read_truth(dep)
    yield server, truth
    server.stop()


@pytest.fixture(scope="module")
def users(matrix: tuple[LiveServer, Truth]) -> list[User]:
    """Anonymous, BOB (no grant), CAROL (one source), ALICE (every source)."""
    _server, truth = matrix
    every = frozenset(o.source for o in truth.observations)
    return [User("anonymous", None, frozenset()), User("bob", BOB, frozenset()),
            User("carol", CAROL, frozenset({CAROL_SOURCE})), User("alice", ALICE, every)]


def test_the_data_hold_every_case(matrix: tuple[LiveServer, Truth], users: list[User]) -> None:
    """The matrix means something only if every access right has series and frames."""
    _server, truth = matrix
    assert {s.obs.access for s in truth.series} == {"open", "on_demand", "restricted"}
    assert {f.series.obs.access for f in truth.frames} == {"open", "on_demand", "restricted"}
    carol = users[2]
    restricted = {o.source for o in truth.observations if o.access == "restricted"}
    assert CAROL_SOURCE in restricted and restricted - carol.grants, \
        "CAROL must be granted some restricted sources and not others"
    assert truth.targets_for(users[0]) != set(truth.targets), "a target must be restricted-only"
    nights: dict[tuple[str, str, str], set[str]] = {}
    for o in truth.observations:
        nights.setdefault(o.night, set()).add(o.access)
    assert {"open", "on_demand"} in nights.values() and {"open", "restricted"} in nights.values()


# --------------------------------------------------------------------------
# TAP


def tap_csv(server: LiveServer, user: User, query: str, **extra: object) -> list[dict[str, str]]:
    """Rows of a TAP sync query (CSV) as the user."""
    files = extra.pop("files", None)
    data = {"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query, "RESPONSEFORMAT": "csv",
            "MAXREC": "1000000", **extra}
    r = requests.post(f"{server.url}/tap/sync", data=data, files=files, auth=user.auth,
                      timeout=120)
    assert r.status_code == 200, (user.name, query, r.text[:1000])
    return list(csv.DictReader(io.StringIO(r.text)))


def one_value(server: LiveServer, user: User, query: str) -> str:
    rows = tap_csv(server, user, query)
    assert len(rows) == 1, rows
    return next(iter(rows[0].values()))


def _int(text: str) -> int | None:
    return None if text == "" else int(float(text))


def test_tap_tables_show_exactly_the_visible_rows(matrix: tuple[LiveServer, Truth],
                                                  users: list[User]) -> None:
    server, truth = matrix
    for user in users:
        obs, series, frames = truth.obs_for(user), truth.series_for(user), truth.frames_for(user)
        got = {_int(r["observation_id"]) for r in tap_csv(
            server, user, "SELECT observation_id FROM skvo.observation")}
        assert got == {o.observation_id for o in obs}, user.name
        got = {_int(r["photometry_id"]) for r in tap_csv(
            server, user, "SELECT photometry_id FROM skvo.photometry")}
        assert got == {s.photometry_id for s in series}, user.name
        got = {_int(r["frame_id"]) for r in tap_csv(
            server, user, "SELECT frame_id FROM skvo.frame")}
        assert got == {f.frame_id for f in frames}, user.name
        got = {_int(r["target_id"]) for r in tap_csv(
            server, user, "SELECT target_id FROM skvo.target")}
        assert got == truth.targets_for(user), user.name
        rows = tap_csv(server, user, "SELECT obs_id, obs_publisher_did, access_rights, "
                                     "obs_collection, calib_level FROM ivoa.obscore")
        stars = {truth.star_did(k) for k in truth.stars_for(user)}
        assert {r["obs_publisher_did"] for r in rows if r["calib_level"] == "3"} == stars
        rows = [r for r in rows if r["calib_level"] == "2"]
        assert len(rows) == len(series), user.name
        assert {r["obs_id"] for r in rows} == {s.obs.uuid for s in series}, user.name
        assert {r["obs_publisher_did"] for r in rows} == {truth.did(s.obs) for s in series}
        if not user.grants:
            assert "restricted" not in {r["access_rights"] for r in rows}


#: (table, id column, function of the truth giving the visible ids)
AGGREGATED = (
    ("skvo.observation", "observation_id", lambda t, u: [o.observation_id for o in t.obs_for(u)]),
    ("skvo.photometry", "photometry_id", lambda t, u: [s.photometry_id for s in t.series_for(u)]),
    ("skvo.frame", "frame_id", lambda t, u: [f.frame_id for f in t.frames_for(u)]),
    ("skvo.target", "target_id", lambda t, u: sorted(t.targets_for(u))),
    ("ivoa.obscore", "t_xel", lambda t, u: [s.n_points for s in t.series_for(u)]
     + list(t.stars_for(u).values())),
)


@pytest.mark.parametrize("table,column", [(a[0], a[1]) for a in AGGREGATED])
def test_aggregates_count_only_visible_rows(matrix: tuple[LiveServer, Truth], users: list[User],
                                            table: str, column: str) -> None:
    server, truth = matrix
    visible = next(a[2] for a in AGGREGATED if a[0] == table)
    query = (f"SELECT COUNT(*) AS n, MAX({column}) AS hi, MIN({column}) AS lo, "
             f"SUM({column}) AS total, COUNT(DISTINCT {column}) AS nd FROM {table}")
    for user in users:
        ids = visible(truth, user)
        row = tap_csv(server, user, query)[0]
        assert _int(row["n"]) == len(ids), (user.name, row)
        assert _int(row["hi"]) == max(ids) and _int(row["lo"]) == min(ids), (user.name, row)
        assert _int(row["total"]) == sum(ids), (user.name, row)
        assert _int(row["nd"]) == len(set(ids)), (user.name, row)


def test_grouped_counts_and_subqueries_hide_restricted_sources(
        matrix: tuple[LiveServer, Truth], users: list[User]) -> None:
    server, truth = matrix
    for user in users:
        expected: dict[str, int] = {}
        for o in truth.obs_for(user):
            expected[o.source] = expected.get(o.source, 0) + 1
        rows = tap_csv(server, user, "SELECT source, COUNT(*) AS n FROM skvo.observation "
                                     "GROUP BY source")
        assert {r["source"]: int(r["n"]) for r in rows} == expected, user.name
        rows = tap_csv(server, user, "SELECT obs_collection, COUNT(*) AS n FROM ivoa.obscore "
                                     "GROUP BY obs_collection")
        series_expected: dict[str, int] = {}
        for s in truth.series_for(user):
            series_expected[s.obs.source] = series_expected.get(s.obs.source, 0) + 1
        for key in truth.stars_for(user):  # a star curve: its source, or skvo for several
            sources = {s.obs.source for s in truth.series_for(user)
                       if (s.obs.target_id, s.bandpass_uid) == key
                       and user.fetches(s.obs.access, s.obs.source)}
            name = sources.pop() if len(sources) == 1 else "skvo"
            series_expected[name] = series_expected.get(name, 0) + 1
        assert {r["obs_collection"]: int(r["n"]) for r in rows} == series_expected, user.name
        # the same counts through a subquery, a join and EXISTS
        n = one_value(server, user, "SELECT COUNT(*) FROM (SELECT o.observation_id FROM "
                                    "skvo.observation AS o JOIN skvo.photometry AS p "
                                    "ON p.observation_id = o.observation_id) AS x")
        assert int(n) == len(truth.series_for(user)), user.name
        n = one_value(server, user, "SELECT COUNT(*) FROM skvo.target AS t WHERE EXISTS "
                                    "(SELECT 1 FROM skvo.frame AS f)")
        assert int(n) == (len(truth.targets_for(user)) if truth.frames_for(user) else 0)


def id_upload(ids: range) -> bytes:
    """A VOTable with one column ``oid`` holding ``ids``."""
    out = io.BytesIO()
    Table({"oid": np.array(list(ids), dtype=np.int64)}).write(out, format="votable")
    return out.getvalue()


def test_uploads_joined_against_the_tables_find_only_visible_rows(
        matrix: tuple[LiveServer, Truth], users: list[User]) -> None:
    server, truth = matrix
    every = range(1, max(o.observation_id for o in truth.observations) + 10)
    for user in users:
        files = {"ids": ("ids.xml", id_upload(every), "application/x-votable+xml")}
        rows = tap_csv(server, user, "SELECT u.oid, o.access FROM TAP_UPLOAD.ids AS u "
                                     "LEFT OUTER JOIN skvo.observation AS o "
                                     "ON o.observation_id = u.oid", UPLOAD="ids,param:ids",
                       files=files)
        found = {int(r["oid"]) for r in rows if r["access"]}
        assert found == {o.observation_id for o in truth.obs_for(user)}, user.name
        assert len(rows) == len(every), "an outer join keeps every uploaded row"
        # positions: every target's own position, crossmatched against skvo.target
        out = io.BytesIO()
        ra, dec = zip(*truth.targets.values(), strict=True)
        Table({"ra": np.array(ra), "dec": np.array(dec)}).write(out, format="votable")
        files = {"pos": ("pos.xml", out.getvalue(), "application/x-votable+xml")}
        rows = tap_csv(server, user, "SELECT t.target_id FROM TAP_UPLOAD.pos AS u JOIN "
                                     "skvo.target AS t ON 1 = CONTAINS(POINT('ICRS', "
                                     "t.right_ascension, t.declination), "
                                     "CIRCLE('ICRS', u.ra, u.dec, 0.001))",
                       UPLOAD="pos,param:pos", files=files)
        assert {int(r["target_id"]) for r in rows} == truth.targets_for(user), user.name


def test_dimension_rows_of_restricted_sources_are_hidden(
        matrix: tuple[LiveServer, Truth], users: list[User]) -> None:
    """Facilities, instruments, data collections and organisations that only restricted
    observations use say that a restricted source exists: they must be hidden too."""
    server, truth = matrix
    anonymous = users[0]
    settings = server.dep.settings()
    engine = make_engine(settings.metadata_url)
    with engine.connect() as conn:
        org_hidden = set(conn.execute(sa.text(
            "SELECT g.organisation_id FROM organisation g WHERE NOT EXISTS (SELECT 1 "
            "FROM dataid d JOIN observation o ON o.dataid_id = d.dataid_id "
            "WHERE d.organisation_id = g.organisation_id AND o.access <> 'restricted')"
        )).scalars())
    org_got = {_int(r["organisation_id"]) for r in tap_csv(
        server, anonymous, "SELECT organisation_id FROM skvo.organisation")}
    assert org_got and not org_got & org_hidden, "skvo.organisation: rows of restricted sources"
    for table, column in (("facility", "facility_id"), ("instrument", "instrument_id"),
                          ("dataid", "dataid_id")):
        with engine.connect() as conn:
            hidden = set(conn.execute(sa.text(
                f"SELECT d.{column} FROM {table} d WHERE NOT EXISTS (SELECT 1 FROM observation o "
                f"WHERE o.{column} = d.{column} AND o.access <> 'restricted')")).scalars())
        got = {_int(r[column]) for r in tap_csv(server, anonymous,
                                                 f"SELECT {column} FROM skvo.{table}")}
        granted = {_int(r[column]) for r in tap_csv(server, users[-1],
                                                     f"SELECT {column} FROM skvo.{table}")}
        assert got and not got & hidden, f"skvo.{table}: rows of restricted sources {got & hidden}"
        assert hidden <= granted and got <= granted, f"skvo.{table}: granted rows missing"
        if table == "facility":
            assert hidden, "the data hold a facility that only restricted observations use"
    engine.dispose()


# --------------------------------------------------------------------------
# SCS, SSA, SIA, DataLink


def votable_rows(body: bytes) -> Table:
    return parse_single_table(io.BytesIO(body)).to_table()


def test_cone_search_shows_visible_targets_with_visible_counts(
        matrix: tuple[LiveServer, Truth], users: list[User]) -> None:
    server, truth = matrix
    for user in users:
        r = requests.get(f"{server.url}/scs", params={"RA": 0, "DEC": 0, "SR": 180, "VERB": 3},
                         auth=user.auth, timeout=60)
        assert r.status_code == 200
        table = votable_rows(r.content)
        by_target = {}
        for o in truth.obs_for(user):
            by_target.setdefault(o.target_id, []).append(o)
        assert len(table) == len(by_target), user.name
        positions = {(round(float(a), 6), round(float(d), 6))
                     for a, d in zip(table["ra"], table["dec"], strict=True)}
        assert positions == {tuple(round(x, 6) for x in truth.targets[t]) for t in by_target}
        for row in table:
            key = (round(float(row["ra"]), 6), round(float(row["dec"]), 6))
            tid = next(t for t in by_target if tuple(round(x, 6) for x in truth.targets[t]) == key)
            assert int(row["n_observations"]) == len(by_target[tid]), user.name
            visible_series = [s for s in truth.series_for(user) if s.obs.target_id == tid]
            assert int(row["n_series"]) == len(visible_series), user.name
            assert int(row["n_points"]) == sum(s.n_points for s in visible_series), user.name
            assert set(str(row["collections"]).split()) == {o.source for o in by_target[tid]}


def test_ssa_finds_only_visible_series(matrix: tuple[LiveServer, Truth],
                                       users: list[User]) -> None:
    server, truth = matrix
    for user in users:
        r = requests.get(f"{server.url}/ssa", params={"REQUEST": "queryData", "MAXREC": 100000},
                         auth=user.auth, timeout=60)
        table = votable_rows(r.content)
        stars = {truth.star_did(k) for k in truth.stars_for(user)}
        assert {str(d) for d in table["ssa_pubDID"]} == {truth.did(s.obs) for s in
                                                         truth.series_for(user)} | stars
        assert len(table) == len(truth.series_for(user)) + len(stars), user.name
        # getData of every DID: a redirect for what the user sees, NotFound otherwise
        for obs in truth.observations:
            r = requests.get(f"{server.url}/ssa", params={"REQUEST": "getData",
                                                        "PUBDID": truth.did(obs)},
                             auth=user.auth, allow_redirects=False, timeout=60)
            if user.sees(obs.access, obs.source):
                assert r.status_code == 303, (user.name, obs)
            else:
                assert r.status_code == 200 and b"NotFoundFault" in r.content
                assert obs.uuid.encode() not in r.content.replace(truth.did(obs).encode(), b"")


def test_sia_finds_only_visible_frames(matrix: tuple[LiveServer, Truth],
                                       users: list[User]) -> None:
    server, truth = matrix
    for user in users:
        r = requests.get(f"{server.url}/sia/query", params={"MAXREC": 100000}, auth=user.auth,
                         timeout=60)
        assert r.status_code == 200
        table = votable_rows(r.content)
        frames = truth.frames_for(user)
        assert len(table) == len(frames), user.name
        urls = {str(u) for u in table["access_url"]}
        assert urls == {f"{server.url}/frame/{f.frame_id}" for f in frames}, user.name
        dids = {frame_did(truth.authority, f.series.obs.uuid, f.frame_index) for f in frames}
        assert {str(d) for d in table["obs_publisher_did"]} == dids, user.name
        # the IDs of every frame (values of one parameter are ORed): only visible ones answer
        every = [frame_did(truth.authority, f.series.obs.uuid, f.frame_index)
                 for f in truth.frames]
        r = requests.post(f"{server.url}/sia/query", data={"ID": every, "MAXREC": 100000},
                          auth=user.auth, timeout=60)
        assert {str(d) for d in votable_rows(r.content)["obs_publisher_did"]} == dids, user.name


def datalink_rows(server: LiveServer, user: User, did: str) -> list[dict]:
    r = requests.get(f"{server.url}/datalink", params={"ID": did}, auth=user.auth, timeout=60)
    assert r.status_code == 200
    table = votable_rows(r.content)
    return [{c: (None if np.ma.is_masked(row[c]) else row[c]) for c in table.colnames}
            for row in table]


def test_datalink_links_only_what_the_user_may_fetch(matrix: tuple[LiveServer, Truth],
                                                     users: list[User]) -> None:
    server, truth = matrix
    for user in users:
        for obs in truth.observations:
            rows = datalink_rows(server, user, truth.did(obs))
            errors = {str(r["error_message"] or "") for r in rows}
            urls = [str(r["access_url"]) for r in rows if r["access_url"]]
            if not user.sees(obs.access, obs.source):
                assert len(rows) == 1 and "NotFoundFault" in errors.pop(), (user.name, obs)
            elif not user.fetches(obs.access, obs.source):
                assert urls == [], (user.name, obs)
                fault = "AuthenticationFault" if user.auth is None else "AuthorizationFault"
                assert all(fault in e for e in errors), (user.name, errors)
            else:
                assert any("/lightcurve/" in u for u in urls), (user.name, obs)
                assert not any(errors - {""}), (user.name, errors)


# --------------------------------------------------------------------------
# Light curves, previews, frames


def expected_status(user: User, access: str, source: str) -> int:
    if not user.sees(access, source):
        return 404
    if not user.fetches(access, source):
        return user.denial()
    return 200


def test_light_curves_answer_by_access_right(matrix: tuple[LiveServer, Truth],
                                             users: list[User]) -> None:
    server, truth = matrix
    for user in users:
        s = requests.Session()
        s.auth = user.auth
        for series in truth.series:
            url = f"{server.url}/lightcurve/{series.obs.uuid}/{series.bandpass_uid}"
            r = s.get(url, params={"MAXREC": 1}, timeout=60)
            want = expected_status(user, series.obs.access, series.obs.source)
            assert r.status_code == want, (user.name, series, r.text[:300])
            if want != 200:
                assert b"<TR>" not in r.content and b"STREAM" not in r.content
            if want == 401:
                assert "WWW-Authenticate" in r.headers


def test_previews_answer_by_access_right(
        matrix: tuple[LiveServer, Truth], users: list[User]) -> None:
    server, truth = matrix
    one_each: dict[tuple[str, str], Series] = {}
    for series in truth.series:
        one_each.setdefault((series.obs.access, series.obs.source), series)
    for user in users:
        for series in one_each.values():
            want = expected_status(user, series.obs.access, series.obs.source)
            url = f"{server.url}/lightcurve/{series.obs.uuid}/{series.bandpass_uid}/preview.png"
            r = requests.get(url, auth=user.auth, timeout=120)
            assert r.status_code == want, (user.name, series)
            assert (r.headers["Content-Type"] == "image/png") == (want == 200)


def test_night_tables_hold_only_what_the_user_may_fetch(
        matrix: tuple[LiveServer, Truth], users: list[User]) -> None:
    """``/lightcurve/<uuid>``: 404 when the uuid's own series is invisible (whatever else
    that night holds); otherwise every visible series of the night, refused whole if
    one of them may not be fetched."""
    server, truth = matrix
    for user in users:
        read: set[tuple[str, str, str]] = set()
        for obs in truth.observations:
            night = [s for s in truth.series_for(user) if s.obs.night == obs.night]
            if not user.sees(obs.access, obs.source):
                want = 404
            elif all(user.fetches(s.obs.access, s.obs.source) for s in night):
                want = 200
            else:
                want = user.denial()
            whole = want == 200 and obs.night not in read  # each night's table read once
            read.add(obs.night)
            r = requests.get(f"{server.url}/lightcurve/{obs.uuid}", auth=user.auth, timeout=60,
                             params={} if whole else {"MAXREC": 1})
            assert r.status_code == want, (user.name, obs, r.text[:200])
            if whole:
                table = votable_rows(r.content)
                assert {str(b) for b in table["bandpass_uid"]} == {s.bandpass_uid
                                                                   for s in night}
                assert len(table) == sum(s.n_points for s in night), (user.name, obs)


def test_frames_answer_by_access_right(matrix: tuple[LiveServer, Truth],
                                       users: list[User]) -> None:
    server, truth = matrix
    for user in users:
        s = requests.Session()
        s.auth = user.auth
        for frame in truth.frames:
            obs = frame.series.obs
            want = expected_status(user, obs.access, obs.source)
            r = s.get(f"{server.url}/frame/{frame.frame_id}", timeout=60)
            assert r.status_code == want, (user.name, frame)
            assert r.headers["Content-Type"].startswith("image/") == (want == 200)


# --------------------------------------------------------------------------
# Async jobs


def finished(job: str, user: User) -> bytes:
    """The job document once the job has left the active phases (UWS WAIT, repeated)."""
    for _ in range(20):
        doc = requests.get(job, params={"WAIT": "10"}, auth=user.auth, timeout=60)
        assert doc.status_code == 200, doc.text
        phase = etree.fromstring(doc.content).find("{*}phase").text
        if phase not in ("PENDING", "QUEUED", "EXECUTING"):
            return doc.content
    raise AssertionError(f"{job} still {phase}")


def refusals(user: User) -> tuple[int, ...]:
    """Another user's job: 401 asks anonymous users to log in; users get 403, or 404 (the
    job does not exist for them)."""
    return (401,) if user.auth is None else (403, 404)


RESTRICTED_QUERY = ("SELECT observation_id, observation_uuid FROM skvo.observation "
                    "WHERE access = 'restricted'")


def test_jobs_and_their_results_belong_to_their_owner(matrix: tuple[LiveServer, Truth],
                                                      users: list[User]) -> None:
    server, truth = matrix
    anonymous, bob, carol, alice = users
    r = requests.post(f"{server.url}/tap/async", auth=alice.auth, allow_redirects=False,
                      data={"LANG": "ADQL", "QUERY": RESTRICTED_QUERY, "PHASE": "RUN",
                            "RESPONSEFORMAT": "csv", "RUNID": "alice-secret"}, timeout=60)
    assert r.status_code == 303
    job = r.headers["Location"]
    job_id = job.rsplit("/", 1)[1]
    assert b"COMPLETED" in finished(job, alice)
    result = requests.get(f"{job}/results/result", auth=alice.auth, timeout=60)
    restricted = [o for o in truth.observations if o.access == "restricted"]
    assert result.status_code == 200
    assert {row["observation_uuid"] for row in csv.DictReader(io.StringIO(result.text))} == \
        {o.uuid for o in restricted}
    for other in (anonymous, bob, carol):
        for path in ("", "/phase", "/parameters", "/parameters/QUERY", "/results",
                     "/results/result", "/error", "/owner", "/quote", "/executionduration",
                     "/destruction"):
            r = requests.get(job + path, auth=other.auth, timeout=60)
            assert r.status_code in refusals(other), (other.name, path, r.status_code)
            assert not any(o.uuid.encode() in r.content for o in restricted), (other.name, path)
            assert b"alice-secret" not in r.content and b"restricted" not in r.content
        for method, path, data in (("POST", "/phase", {"PHASE": "ABORT"}),
                                   ("POST", "", {"ACTION": "DELETE"}),
                                   ("DELETE", "", {}),
                                   ("POST", "/parameters", {"QUERY": "SELECT 1"}),
                                   ("POST", "/destruction",
                                    {"DESTRUCTION": "2030-01-01T00:00:00Z"}),
                                   ("POST", "/executionduration", {"EXECUTIONDURATION": "1"})):
            r = requests.request(method, job + path, data=data, auth=other.auth,
                                 allow_redirects=False, timeout=60)
            assert r.status_code in refusals(other), (other.name, method, path, r.status_code)
        listing = requests.get(f"{server.url}/tap/async", auth=other.auth, timeout=60)
        assert listing.status_code == 200
        assert job_id.encode() not in listing.content and b"alice-secret" not in listing.content
        ids = {el.get("id") for el in etree.fromstring(listing.content)}
        assert job_id not in ids
    # the job is still there and unchanged for its owner
    doc = requests.get(job, auth=alice.auth, timeout=60)
    assert doc.status_code == 200 and b"COMPLETED" in doc.content
    assert job_id.encode() in requests.get(f"{server.url}/tap/async", auth=alice.auth,
                                           timeout=60).content
    requests.delete(job, auth=alice.auth, timeout=60)


def test_jobs_see_what_their_owner_sees(matrix: tuple[LiveServer, Truth],
                                        users: list[User]) -> None:
    """An async query runs with its owner's rights: BOB's job finds no restricted row."""
    server, truth = matrix
    for user in users:
        r = requests.post(f"{server.url}/tap/async", auth=user.auth, allow_redirects=False,
                          data={"LANG": "ADQL", "PHASE": "RUN", "RESPONSEFORMAT": "csv",
                                "QUERY": "SELECT COUNT(*) AS n, MAX(observation_id) AS hi "
                                         "FROM skvo.observation"}, timeout=60)
        job = r.headers["Location"]
        assert b"COMPLETED" in finished(job, user)
        row = next(csv.DictReader(io.StringIO(requests.get(
            f"{job}/results/result", auth=user.auth, timeout=60).text)))
        ids = [o.observation_id for o in truth.obs_for(user)]
        assert (int(row["n"]), int(row["hi"])) == (len(ids), max(ids)), user.name
        requests.delete(job, auth=user.auth, timeout=60)
