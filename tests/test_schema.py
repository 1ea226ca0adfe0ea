"""The metadata schema, TAP_SCHEMA and access-right filters on SQLite and MariaDB."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import mariadb_database

from voservice import catalog, tables
from voservice.access import ANONYMOUS, Principal
from voservice.catalog import refresh_public_flags
from voservice.stores.metadata import initdb, make_engine


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'meta.sqlite'}"
    else:
        url = mariadb_database("skvo_schema_test")
    eng = make_engine(url)
    initdb(eng)
    yield eng
    eng.dispose()


def t(name: str) -> sa.Table:
    return tables.sa_table(f"skvo.{name}")


def load_three_observations(engine: sa.Engine) -> dict[str, str]:
    """One observation per access right, each from its own source; returns uuid by access."""
    uuids = {}
    with engine.begin() as conn:
        org = conn.execute(t("organisation").insert().values(
            organisation="UPJS", organisation_did="http://upjs.sk")).inserted_primary_key[0]
        did = conn.execute(t("dataid").insert().values(
            organisation_id=org, title="T", publisher="P", publisher_did="ivo://p")
        ).inserted_primary_key[0]
        fac = conn.execute(t("facility").insert().values(
            facility="Kolonica", facility_uid="kol")).inserted_primary_key[0]
        ins = conn.execute(t("instrument").insert().values(
            instrument="CCD", instrument_uid="ccd", instrument_hash="0" * 32, telescope="T1",
            field_of_view=0.5)).inserted_primary_key[0]
        band = conn.execute(t("bandpass").insert().values(
            bandpass="V", bandpass_uid="johnson.v", spectral_band_type="optical",
            photometric_system="johnson", wavelength_eff=5.5e-7, wavelength_min=5.1e-7,
            wavelength_max=5.9e-7, mag_ucd="phot.mag;em.opt.V")).inserted_primary_key[0]
        for i, (access, source) in enumerate(
            [("open", "s1"), ("on_demand", "s2"), ("restricted", "s3")]
        ):
            target = conn.execute(t("target").insert().values(
                target=f"star{i}", catalogue="HD", catalogue_value=str(i),
                right_ascension=10.0 * i, declination=-5.0 * i, equinox="J2000")
            ).inserted_primary_key[0]
            uid = str(uuid.uuid4())
            uuids[access] = uid
            obs = conn.execute(t("observation").insert().values(
                observation_uuid=uid, observation_hash=f"{i:032d}", source=source,
                night="2018-02-17", target_folder=f"star{i}", bandpass_folder="johnson.v",
                target_id=target, instrument_id=ins, facility_id=fac, dataid_id=did,
                access=access, meta_md5="m" * 32, data_md5="d" * 32,
                ingested=dt.datetime(2026, 1, 1, 12, 0, 0, 123456))).inserted_primary_key[0]
            phot = conn.execute(t("photometry").insert().values(
                observation_id=obs, bandpass_id=band,
                start_date=dt.datetime(2018, 2, 17, 20, 0, 0, 500001),
                end_date=dt.datetime(2018, 2, 18, 2, 0, 0), mjd_start=58166.8333,
                mjd_end=58167.0833, n_points=100, n_frames=1, exposure_total=1000.0,
                media=f"{uid}/johnson.v")).inserted_primary_key[0]
            conn.execute(t("frame").insert().values(
                photometry_id=phot, frame_index=0, obs_time=dt.datetime(2018, 2, 17, 20),
                mjd=58166.8333, exposure=10.0, content_type="image/png", file_size=10,
                md5="f" * 32, media_ref="ref"))
        for name in ("target", "photometry", "frame"):  # as the uploader does
            refresh_public_flags(conn, f"skvo.{name}")
    return uuids


def test_initdb_writes_tap_schema_from_the_descriptions(engine: sa.Engine) -> None:
    initdb(engine)  # a second run keeps working and does not duplicate
    with engine.connect() as conn:
        names = set(conn.execute(sa.select(
            tables.sa_table("TAP_SCHEMA.tables").c.table_name)).scalars())
        columns = conn.execute(sa.select(tables.sa_table("TAP_SCHEMA.columns"))).mappings().all()
        keys = conn.execute(sa.select(tables.sa_table("TAP_SCHEMA.keys"))).mappings().all()
    assert names == {d.qualified_name for d in tables.all_tables()}
    assert "ivoa.obscore" in names and "TAP_SCHEMA.columns" in names
    published = {(d.qualified_name, c.tap_name) for d in tables.all_tables()
                 for c in d.published_columns}
    assert {(c["table_name"], c["column_name"]) for c in columns} == published
    ra = next(c for c in columns if c["column_name"] == "right_ascension")
    assert (ra["unit"], ra["ucd"], ra["indexed"]) == ("deg", "pos.eq.ra;meta.main", 1)
    assert not any(c["column_name"] in ("meta_md5", "media_ref") for c in columns)
    assert {(k["from_table"], k["target_table"]) for k in keys} >= {
        ("skvo.observation", "skvo.target"), ("skvo.photometry", "skvo.observation"),
        ("TAP_SCHEMA.columns", "TAP_SCHEMA.tables"),
    }


def test_timestamps_keep_microseconds(engine: sa.Engine) -> None:
    load_three_observations(engine)
    with engine.connect() as conn:
        start = conn.execute(sa.select(t("photometry").c.start_date)).scalars().first()
    assert start == dt.datetime(2018, 2, 17, 20, 0, 0, 500001)


def rows(engine: sa.Engine, select: sa.Select) -> list[sa.Row]:
    with engine.connect() as conn:
        return conn.execute(select).all()


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        (ANONYMOUS, {"open", "on_demand"}),
        (Principal("bob"), {"open", "on_demand"}),
        (Principal("alice", frozenset({"s3"})), {"open", "on_demand", "restricted"}),
        (Principal("root", admin=True), {"open", "on_demand", "restricted"}),
    ],
)
def test_restricted_rows_are_invisible_without_a_grant(
    engine: sa.Engine, who: Principal, expected: set[str]
) -> None:
    uuids = load_three_observations(engine)
    visible = {uuids[a] for a in expected}
    obs = rows(engine, catalog.visible_select("skvo.observation", who))
    assert {r.observation_uuid for r in obs} == visible
    targets = rows(engine, catalog.visible_select("skvo.target", who))
    assert len(targets) == len(expected)
    assert len(rows(engine, catalog.visible_select("skvo.photometry", who))) == len(expected)
    assert len(rows(engine, catalog.visible_select("skvo.frame", who))) == len(expected)
    core = rows(engine, catalog.obscore_select(who, "http://h:1", "auth"))
    assert {r.obs_id for r in core if r.calib_level == 2} == visible
    # a star's curve joins only the nights the principal may fetch (not on_demand ones)
    source = {"open": "s1", "on_demand": "s2", "restricted": "s3"}
    fetchable = {a for a in expected if a == "open" or who.admin or source[a] in who.sources}
    stars = [r for r in core if r.calib_level == 3]
    assert len(stars) == len(fetchable)  # one target per observation here
    assert sum(r.t_xel for r in stars) == sum(
        r.t_xel for r in core if r.calib_level == 2 and
        next(a for a, u in uuids.items() if u == r.obs_id) in fetchable)


def test_obscore_rows_follow_the_standard(engine: sa.Engine) -> None:
    uuids = load_three_observations(engine)
    core = {r.obs_id: r for r in rows(engine, catalog.obscore_select(ANONYMOUS, "http://h:1",
                                                                        "auth"))}
    row = core[uuids["open"]]
    assert row.dataproduct_type == "timeseries"
    assert row.obs_publisher_did == f"ivo://auth/skvo?{uuids['open']}"
    assert row.access_url == f"http://h:1/datalink?ID=ivo%3A%2F%2Fauth%2Fskvo%3F{uuids['open']}"
    assert row.access_format == "application/x-votable+xml;content=datalink"
    assert (row.t_min, row.t_max, row.t_xel) == (58166.8333, 58167.0833, 100)
    assert (row.em_min, row.em_max) == (5.1e-7, 5.9e-7)
    assert row.o_ucd == "phot.mag;em.opt.V"
    assert row.t_resolution == pytest.approx(0.25 * 86400 / 99)
    assert row.access_estsize == (100 * 96 + 4096) // 1024


def test_adql_tables_compile_and_run_for_the_dialect(engine: sa.Engine) -> None:
    load_three_observations(engine)
    dialect = "sqlite" if engine.dialect.name == "sqlite" else "mysql"
    for table in catalog.published_tables(ANONYMOUS, dialect, "http://h:1", "auth"):
        with engine.connect() as conn:
            cursor = conn.connection.cursor()
            cursor.execute(f"SELECT * FROM {table.sql} AS q")
            names = [d[0] for d in cursor.description]
            cursor.close()
        # a geometry of several SQL columns (s_region): name, name__2, ...
        assert names == [n for c in table.columns for n in [c.name] + [
            f"{c.name}__{i}" for i in range(2, c.sql_width + 1)]], table.name


def test_public_flags_agree_with_the_access_rules(engine: sa.Engine) -> None:
    """The flag fast path and the rule it is kept from select the same rows."""
    load_three_observations(engine)
    obs = t("observation")
    with engine.begin() as conn:
        # the restricted target gets an open observation too, then loses it again;
        # the open target gets a restricted one
        rows_ = conn.execute(sa.select(obs)).mappings().all()
        by_access = {r["access"]: r for r in rows_}
        extra = []
        for access, host in (("open", "restricted"), ("restricted", "open")):
            values = {k: v for k, v in by_access[host].items() if k != "observation_id"}
            values.update(observation_uuid=str(uuid.uuid4()), access=access, source="s9",
                          observation_hash=uuid.uuid4().hex, night="2018-03-01")
            extra.append(conn.execute(obs.insert().values(**values)).inserted_primary_key[0])
        refresh_public_flags(conn, "skvo.target")
    with engine.begin() as conn:
        conn.execute(obs.delete().where(obs.c.observation_id == extra[0]))
        refresh_public_flags(conn, "skvo.target", "target_id",
                             by_access["restricted"]["target_id"])
    for who in (ANONYMOUS, Principal("bob"), Principal("alice", frozenset({"s3"})),
                Principal("carol", frozenset({"s9"}))):
        for name in ("skvo.target", "skvo.photometry", "skvo.frame"):
            desc, table = tables.table(name), tables.sa_table(name)
            fast = rows(engine, sa.select(table).where(catalog._visible_rows(desc, who)))
            slow = rows(engine, sa.select(table).where(
                catalog._visible_rows(desc, who, use_flag=False)))
            assert sorted(fast) == sorted(slow), (who, name)
    anonymous = {r.target for r in rows(engine, catalog.visible_select("skvo.target",
                                                                        ANONYMOUS))}
    assert anonymous == {"star0", "star1"}  # the restricted star lost its open observation


def test_initdb_refuses_an_older_schema_and_upgrade_brings_it_back(engine: sa.Engine) -> None:
    from voservice.migrations import SchemaBehind

    with engine.begin() as conn:  # an archive of the schema before the public flags
        conn.exec_driver_sql("ALTER TABLE target DROP COLUMN public")
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '2026_11'")
    with pytest.raises(SchemaBehind, match="run `skvo upgrade`"):
        initdb(engine)
    initdb(engine, upgrade=True)
    assert "public" in {c["name"] for c in sa.inspect(engine).get_columns("target")}
