"""What a principal may query: the ADQL schema of published tables.

Each published table becomes an ``adql.Table`` whose ``sql`` is either the
physical table or a sub-select that drops rows the principal may not see
(access rights) and, for ``ivoa.obscore``, computes the ObsCore columns from
the skvo tables.  The sub-selects are built with SQLAlchemy and compiled for
the database's dialect, so the SQL is right on SQLite and MySQL alike.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

import adql
from adql.schema import Footprint
from voservice import tables
from voservice.access import ANONYMOUS, Principal, downloadable_clause, visible_clause

DATALINK_MIME = "application/x-votable+xml;content=datalink"


def publisher_did(authority: str, observation_uuid: str) -> str:
    """The publisher DID of an observation's light curve."""
    return f"ivo://{authority}/skvo?{observation_uuid}"


def did_prefix(authority: str) -> str:
    """Everything of a publisher DID before the observation uuid."""
    return publisher_did(authority, "")


#: what follows :func:`did_prefix` in the DID of a star's curve
STAR_DID_MARK = "star/"


def star_did(authority: str, target_id: int, bandpass_uid: str) -> str:
    """The publisher DID of a star's light curve in one band (all its nights)."""
    return f"{did_prefix(authority)}{STAR_DID_MARK}{int(target_id)}/{bandpass_uid}"


def parse_star_did(authority: str, did: str) -> tuple[int, str] | None:
    """(target id, bandpass uid) of a star-curve DID; None for any other string."""
    head = did_prefix(authority) + STAR_DID_MARK
    if not did.lower().startswith(head.lower()):
        return None
    target, sep, band = did[len(head):].partition("/")
    if not sep or not band or not target.isdigit() or len(target) > 18:
        return None
    return int(target), band


def _t(name: str) -> sa.Table:
    return tables.sa_table(f"skvo.{name}")


#: the internal column of a "via:" table: 1 when a row of the parent table that
#: everybody may see shares the link column (see resources/tables/skvo.toml)
PUBLIC_FLAG = "public"


def _visible_rows(desc: tables.TableDesc, principal: Principal, use_flag: bool = True
                  ) -> sa.ColumnElement[bool]:
    """Condition on ``desc``'s own table: the principal may see the row.

    A "via:" row is visible when a visible parent row shares the link column.
    ``use_flag`` answers most of that from the row's own ``public`` flag:
    anonymous users and users without grants need nothing else, others only
    the parents of the sources granted to them.  Without it the condition is
    computed from the parents alone (what the flag is kept from).
    """
    table = tables.sa_table(desc.qualified_name)
    if desc.visibility == "public" or principal.admin:
        return sa.true()
    if desc.visibility == "access":
        return visible_clause(principal, table.c.access, table.c.source)
    if desc.visibility.startswith("via:"):
        parent_name, column = desc.visibility[4:].split(".")
        parent_desc = tables.table(f"{desc.schema}.{parent_name}")
        parent = tables.sa_table(parent_desc.qualified_name).alias(f"v_{parent_name}")
        flag = table.c[PUBLIC_FLAG] == 1
        if use_flag and not principal.sources:
            return flag
        inner = _visible_rows(parent_desc, principal, use_flag)
        # re-target the parent's condition to the alias
        inner = sa.sql.util.ClauseAdapter(parent).traverse(inner)
        shared = sa.exists(
            sa.select(sa.literal(1))
            .select_from(parent)
            .where(parent.c[column] == table.c[column], inner)
        )
        return sa.or_(flag, shared) if use_flag else shared
    if desc.visibility.startswith("data:"):
        # the observation's data (points): what the principal may fetch, not see
        parent_name, column = desc.visibility[5:].split(".")
        parent = tables.sa_table(f"{desc.schema}.{parent_name}").alias(f"d_{parent_name}")
        flag = table.c[PUBLIC_FLAG] == 1
        if use_flag and not principal.sources:
            return flag
        if use_flag:  # the flag covers the open observations: only the granted ones
            granted = sa.select(parent.c[column]).where(
                parent.c.source.in_(sorted(principal.sources)))
            return sa.or_(flag, table.c[column].in_(granted))
        return table.c[column].in_(sa.select(parent.c[column]).where(
            downloadable_clause(principal, parent.c.access, parent.c.source)))
    raise ValueError(f"{desc.qualified_name}: unknown visibility {desc.visibility!r}")


def refresh_public_flags(conn: sa.Connection, qualified_name: str, column: str | None = None,
                         value: object = None) -> None:
    """Recompute the ``public`` flag of the rows of a "via:" table whose ``column``
    equals ``value`` (of every row without ``column``).

    The uploader calls it for the rows a load or a removal concerns, inside
    its transaction.
    """
    params = {} if column is None else {"key": value}
    conn.execute(_refresh_statement(qualified_name, column), params)


@lru_cache(maxsize=32)
def _refresh_statement(qualified_name: str, column: str | None) -> sa.Update:
    """The UPDATE behind :func:`refresh_public_flags` (built once: it is not small)."""
    desc = tables.table(qualified_name)
    table = tables.sa_table(qualified_name)
    everybody = _visible_rows(desc, ANONYMOUS, use_flag=False)
    update = table.update().values({PUBLIC_FLAG: sa.case((everybody, 1), else_=0)})
    if column is not None:
        update = update.where(table.c[column] == sa.bindparam("key"))
    return update


def visible_select(qualified_name: str, principal: Principal) -> sa.Select:
    """SELECT of the published columns of a table, rows the principal may see."""
    desc = tables.table(qualified_name)
    table = tables.sa_table(qualified_name)
    cols = [table.c[c.name] for c in desc.published_columns if not c.computed]
    return sa.select(*cols).where(_visible_rows(desc, principal))


def point_select(principal: Principal, base_url: str) -> sa.Select:
    """The rows of ``skvo.point`` the principal may fetch.

    ``frame_url`` is stored relative to the base URL (``urls.frame_url("", id)``,
    by the uploader) and made absolute here, as ObsCore's ``access_url`` is.
    """
    select = visible_select("skvo.point", principal)
    path = _t("point").c.frame_url
    return select.with_only_columns(*(
        (sa.literal(base_url, sa.String) + path).label("frame_url")
        if c.name == "frame_url" else c for c in select.selected_columns))


def series_join() -> sa.Join:
    """A photometry series joined with its observation and the dimension tables.

    Light-curve queries (ObsCore, SSA) select from it; frame queries (SIA)
    join ``frame`` onto it.
    """
    o, p, t, b = _t("observation"), _t("photometry"), _t("target"), _t("bandpass")
    i, f, d = _t("instrument"), _t("facility"), _t("dataid")
    return (
        p.join(o, o.c.observation_id == p.c.observation_id)
        .join(t, t.c.target_id == o.c.target_id)
        .join(b, b.c.bandpass_id == p.c.bandpass_id)
        .join(i, i.c.instrument_id == o.c.instrument_id)
        .join(f, f.c.facility_id == o.c.facility_id)
        .join(d, d.c.dataid_id == o.c.dataid_id)
    )


def fov_square_sql(ra: sa.ColumnElement[float], dec: sa.ColumnElement[float],
                   fov: sa.ColumnElement[float]) -> list[sa.ColumnElement[float]]:
    """The 8 values (lon lat of 4 corners, as :func:`adql.geometry.box_vertices`
    orders them) of the field-of-view square around a target, computed in SQL;
    all null without a usable field of view (:func:`adql.geometry.fov_usable`)."""
    f = sa.func
    a = f.radians(fov) / 2.0
    c, s = f.cos(a), f.sin(a)
    cd, sd = f.cos(f.radians(dec)), f.sin(f.radians(dec))
    cr, sr = f.cos(f.radians(ra)), f.sin(f.radians(ra))
    usable = sa.and_(fov > 0, fov < 180)
    out: list[sa.ColumnElement[float]] = []
    for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        # the corner (lon sx a, lat sy a) of the square centred on (0, 0), rotated
        x, y, z = c * c, c * s * sx, s * sy
        x1, z1 = x * cd - z * sd, x * sd + z * cd
        x2, y2 = x1 * cr - y * sr, x1 * sr + y * cr
        lon = f.degrees(f.atan2(y2, x2))
        lon = sa.case((lon < 0, lon + 360.0), else_=lon)
        lat = f.degrees(f.asin(sa.case((z1 > 1.0, 1.0), (z1 < -1.0, -1.0), else_=z1)))
        out += [sa.case((usable, lon), else_=sa.null()), sa.case((usable, lat), else_=sa.null())]
    return [sa.type_coerce(v, sa.Double) for v in out]


def obscore_select(principal: Principal, base_url: str, authority: str
                   ) -> sa.CompoundSelect:
    """The rows of ``ivoa.obscore``: one per light curve the principal may see."""
    o, p, t, b = _t("observation"), _t("photometry"), _t("target"), _t("bandpass")
    i, f, d = _t("instrument"), _t("facility"), _t("dataid")
    did = sa.literal(did_prefix(authority), sa.String) + o.c.observation_uuid
    access_url = (
        sa.literal(f"{base_url}/datalink?ID={quote(did_prefix(authority), safe='')}", sa.String)
        + o.c.observation_uuid
    )
    estsize = sa.cast((p.c.n_points * 96 + 4096) / 1024, sa.BigInteger)
    resolution = sa.case(
        (p.c.n_points > 1, (p.c.mjd_end - p.c.mjd_start) * 86400.0 / (p.c.n_points - 1)),
        else_=sa.null(),
    )
    null_double = sa.type_coerce(sa.null(), sa.Double)
    null_long = sa.type_coerce(sa.null(), sa.BigInteger)
    null_text = sa.type_coerce(sa.null(), sa.String)
    region = fov_square_sql(t.c.right_ascension, t.c.declination, i.c.field_of_view)
    columns = {
        "dataproduct_type": sa.literal("timeseries", sa.String),
        "calib_level": sa.literal(NIGHT_CALIB_LEVEL, sa.SmallInteger),
        "obs_collection": o.c.source,
        "obs_id": o.c.observation_uuid,
        "obs_publisher_did": did,
        "access_url": access_url,
        "access_format": sa.literal(DATALINK_MIME, sa.String),
        "access_estsize": estsize,
        "target_name": t.c.target,
        "target_class": t.c.target_class,
        "s_ra": t.c.right_ascension,
        "s_dec": t.c.declination,
        "s_fov": i.c.field_of_view,
        "s_region": region[0],
        "s_resolution": null_double,
        "s_xel1": sa.literal(1, sa.BigInteger),
        "s_xel2": sa.literal(1, sa.BigInteger),
        "t_min": p.c.mjd_start,
        "t_max": p.c.mjd_end,
        "t_exptime": p.c.exposure_total,
        "t_resolution": resolution,
        "t_xel": p.c.n_points,
        "em_min": b.c.wavelength_min,
        "em_max": b.c.wavelength_max,
        "em_res_power": null_double,
        "em_xel": sa.literal(1, sa.BigInteger),
        "o_ucd": sa.func.coalesce(b.c.mag_ucd, sa.literal("phot.mag", sa.String)),
        "pol_states": null_text,
        "pol_xel": null_long,
        "facility_name": f.c.facility,
        "instrument_name": i.c.instrument,
        "obs_creator_did": d.c.publisher_did,
        "obs_title": d.c.title,
        "bandpass_uid": b.c.bandpass_uid,
        "access_rights": o.c.access,
        "dataproduct_subtype": sa.literal("lightcurve", sa.String),
        "preview": sa.literal(f"{base_url}/lightcurve/", sa.String) + o.c.observation_uuid
        + sa.literal("/", sa.String) + b.c.bandpass_uid + sa.literal("/preview.png", sa.String),
    }
    desc = tables.table("ivoa.obscore")
    missing = {c.name for c in desc.columns} ^ set(columns)
    if missing:  # the description and this SELECT must agree
        raise RuntimeError(f"ivoa.obscore description and SELECT differ in {sorted(missing)}")
    # s_region is 8 SQL columns (adql.Column.sql_width): s_region, s_region__2, ...
    labelled = []
    for c in desc.columns:
        labelled.append(columns[c.name].label(c.name))
        if c.name == "s_region":
            labelled += [v.label(f"s_region__{k}") for k, v in enumerate(region[1:], start=2)]
    nights = (
        sa.select(*labelled)
        .select_from(series_join())
        .where(visible_clause(principal, o.c.access, o.c.source))
    )
    stars = _star_records(principal, base_url, authority, desc, columns)
    return sa.union_all(nights, stars)


#: ObsCore calibration levels: a night's curve, and a star's curve combined from nights
NIGHT_CALIB_LEVEL = 2
STAR_CALIB_LEVEL = 3


def _star_records(principal: Principal, base_url: str, authority: str,
                  desc: tables.TableDesc, night: dict[str, Any]) -> sa.Select:
    """ObsCore rows of the star curves: one per target and band over the nights the
    principal may fetch (:mod:`voservice.archive.stars`); ``night`` are the per-night
    columns, reused where a star's value is the same."""
    o, p, t, b = _t("observation"), _t("photometry"), _t("target"), _t("bandpass")
    i, f = _t("instrument"), _t("facility")
    f_ = sa.func
    text = sa.String

    def one(column: sa.ColumnElement[Any], otherwise: sa.ColumnElement[Any]
            ) -> sa.ColumnElement[Any]:
        """The column's value when every night shares it, else ``otherwise``."""
        return sa.case((f_.min(column) == f_.max(column), f_.min(column)), else_=otherwise)

    ident = (sa.literal(STAR_DID_MARK, text) + sa.cast(t.c.target_id, text)
             + sa.literal("/", text) + b.c.bandpass_uid)
    star_path = (sa.literal(f"{base_url}/lightcurve/star/", text) + sa.cast(t.c.target_id, text)
                 + sa.literal("/", text) + b.c.bandpass_uid)
    points = f_.sum(p.c.n_points)
    # the frames of a star's nights are squares around it: the largest holds the others
    largest = f_.max(i.c.field_of_view)
    region = fov_square_sql(t.c.right_ascension, t.c.declination, largest)
    null_text = sa.type_coerce(sa.null(), text)
    null_double = sa.type_coerce(sa.null(), sa.Double)
    columns = dict(night)
    columns.update({
        "calib_level": sa.literal(STAR_CALIB_LEVEL, sa.SmallInteger),
        "obs_collection": one(o.c.source, sa.literal("skvo", text)),
        "obs_id": ident,
        "obs_publisher_did": sa.literal(did_prefix(authority), text) + ident,
        "access_url": sa.literal(f"{base_url}/datalink?ID="
                                 f"{quote(did_prefix(authority) + STAR_DID_MARK, safe='')}", text)
        + sa.cast(t.c.target_id, text) + sa.literal("%2F", text) + b.c.bandpass_uid,
        "access_estsize": sa.cast((points * 160 + 4096) / 1024, sa.BigInteger),
        "s_fov": largest,
        "s_region": region[0],
        "t_min": f_.min(p.c.mjd_start),
        "t_max": f_.max(p.c.mjd_end),
        "t_exptime": f_.sum(p.c.exposure_total),
        "t_resolution": null_double,
        "t_xel": points,
        "facility_name": one(f.c.facility, null_text),
        "instrument_name": one(i.c.instrument, null_text),
        "obs_creator_did": null_text,
        "obs_title": sa.literal("Light curve of ", text) + t.c.target
        + sa.literal(" in ", text) + b.c.bandpass_uid + sa.literal(", all nights", text),
        "access_rights": sa.literal("open", text),
        "preview": star_path + sa.literal("/preview.png", text),
    })
    labelled = []
    for c in desc.columns:
        labelled.append(columns[c.name].label(c.name))
        if c.name == "s_region":
            labelled += [v.label(f"s_region__{k}") for k, v in enumerate(region[1:], start=2)]
    return (
        sa.select(*labelled)
        .select_from(series_join())
        .where(downloadable_clause(principal, o.c.access, o.c.source))
        .group_by(t.c.target_id, b.c.bandpass_id, t.c.target, t.c.target_class,
                  t.c.right_ascension, t.c.declination, b.c.bandpass_uid, b.c.wavelength_min,
                  b.c.wavelength_max, b.c.mag_ucd)
    )


def _compile(select: sa.Select, dialect: sa.Dialect) -> str:
    return str(select.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def _quote(name: str, dialect: sa.Dialect) -> str:
    return dialect.identifier_preparer.quote_identifier(name)


@lru_cache(maxsize=256)
def _schema(
    admin: bool, sources: frozenset[str], dialect_name: str, base_url: str, authority: str
) -> tuple[adql.Table, ...]:
    dialect = _dialect(dialect_name)
    principal = Principal(name="cached", sources=sources, admin=admin)
    result = []
    for desc in tables.all_tables():
        columns = tuple(c.adql_column() for c in desc.published_columns)
        if desc.qualified_name == "ivoa.obscore":
            columns = tuple(_obscore_column(c, dialect) for c in columns)
            sql = f"({_compile(obscore_select(principal, base_url, authority), dialect)})"
        elif desc.qualified_name == "skvo.point":
            sql = f"({_compile(point_select(principal, base_url), dialect)})"
        elif desc.qualified_name == "skvo.minimum":
            from voservice.archive.minima import minimum_select

            sql = f"({_compile(minimum_select(principal, authority), dialect)})"
        elif desc.visibility == "public" or admin:
            sql = _quote(desc.sql_name, dialect)
            if len(desc.published_columns) != len(desc.columns):
                sql = f"({_compile(visible_select(desc.qualified_name, principal), dialect)})"
        else:
            sql = f"({_compile(visible_select(desc.qualified_name, principal), dialect)})"
        result.append(adql.Table(name=desc.qualified_name, columns=columns, sql=sql))
    return tuple(result)


def _obscore_column(col: adql.Column, dialect: sa.Dialect) -> adql.Column:
    """s_region is a polygon of 8 SQL columns: the square of s_fov around s_ra, s_dec."""
    if col.name != "s_region":
        return col
    i = _t("instrument")
    fov = i.c.field_of_view
    largest = sa.select(sa.func.max(fov)).where(fov > 0, fov < 180)
    footprint = Footprint("s_ra", "s_dec", "s_fov", f"({_compile(largest, dialect)})")
    return replace(col, sql_width=8, footprint=footprint)


def _dialect(name: str) -> sa.Dialect:
    if name == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.dialect()
    from sqlalchemy.dialects import mysql

    # "named" keeps literal % signs single: the SQL runs without parameters
    return mysql.dialect(paramstyle="named")


def published_tables(
    principal: Principal, dialect_name: str, base_url: str, authority: str
) -> tuple[adql.Table, ...]:
    """The ADQL tables the principal may query (TAP_UPLOAD tables come on top)."""
    return _schema(principal.admin, principal.sources, dialect_name, base_url, authority)


def adql_schema(
    principal: Principal,
    dialect_name: str,
    base_url: str,
    authority: str,
    uploads: tuple[adql.Table, ...] = (),
) -> adql.Schema:
    """The ADQL schema for one request."""
    return adql.Schema(published_tables(principal, dialect_name, base_url, authority) + uploads)
