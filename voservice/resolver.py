"""Target names in the archive: the aliases table and the optional Sesame resolver.

A name is looked up by its key (:func:`voservice.names.name_key`) among the
aliases of the targets the principal may see (``skvo.target_alias``: filled
at ingest from the provider's name, folder and catalogue identifier, and by
the operator with ``skvo target alias``).  A name the archive does not know
goes to Sesame (CDS) when ``[names] sesame_url`` is set: its identifiers are
looked up again, else the targets within ``[names] cone_radius`` of its
position match.  Positive Sesame answers are cached in the database; a
timeout or a failed connection means "not found" with a note, never an
error.  Visibility is that of :mod:`voservice.access`: a target exists for a
principal only through an observation the principal may see.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

from voservice import tables
from voservice.access import Principal, visible_clause
from voservice.catalog import refresh_public_flags
from voservice.names import catalogue_alias, name_key

log = logging.getLogger(__name__)

#: where an alias comes from (target_alias.origin)
ORIGINS = ("provider", "catalogue", "operator")
#: at most this many bytes of a Sesame answer are read
SESAME_MAX_BYTES = 1 << 20
#: Sesame is asked about at most this many names of one request
SESAME_MAX_NAMES = 5


def _t(name: str) -> sa.Table:
    return tables.sa_table(f"skvo.{name}")


# --------------------------------------------------------------------------
# The aliases table


def ingest_aliases(target: str | None, folder: str | None, catalogue: str | None,
                   catalogue_value: str | None) -> list[tuple[str, str]]:
    """(alias, origin) pairs an uploaded series gives its target."""
    out = [(n.strip(), "provider") for n in (target, folder) if n and n.strip()]
    ident = catalogue_alias(catalogue, catalogue_value)
    if ident:
        out.append((ident, "catalogue"))
    return out


def add_aliases(conn: sa.Connection, target_id: int, aliases: Iterable[tuple[str, str]]
                ) -> list[str]:
    """Store the aliases of a target whose keys it lacks; returns those added.

    Runs inside the caller's transaction and keeps the rows' ``public`` flag.
    """
    table = _t("target_alias")
    have = set(conn.execute(sa.select(table.c.alias_key).where(
        table.c.target_id == target_id)).scalars())
    added = []
    for alias, origin in aliases:
        alias = alias.strip()[:255]
        key = name_key(alias)[:255]
        if not key or key in have:
            continue
        conn.execute(table.insert().values(target_id=target_id, alias=alias, alias_key=key,
                                           origin=origin))
        have.add(key)
        added.append(alias)
    refresh_public_flags(conn, "skvo.target_alias", "target_id", target_id)
    return added


def remove_alias(conn: sa.Connection, target_id: int, alias: str) -> bool:
    """Remove an operator's alias of a target (provider and catalogue aliases stay)."""
    table = _t("target_alias")
    gone = conn.execute(table.delete().where(
        table.c.target_id == target_id, table.c.alias_key == name_key(alias),
        table.c.origin == "operator")).rowcount
    return bool(gone)


def backfill_aliases(engine: sa.Engine) -> int:
    """Give targets loaded before aliases existed their ingest aliases; returns how many."""
    t, o, a = _t("target"), _t("observation"), _t("target_alias")
    added = 0
    with engine.begin() as conn:
        bare = conn.execute(sa.select(t.c.target_id, t.c.target, t.c.catalogue,
                                      t.c.catalogue_value).where(
            ~sa.exists().where(a.c.target_id == t.c.target_id))).all()
        for row in bare:
            folders = conn.execute(sa.select(o.c.target_folder).distinct().where(
                o.c.target_id == row.target_id)).scalars().all()
            pairs = ingest_aliases(row.target, None, row.catalogue, row.catalogue_value)
            pairs += [(f, "provider") for f in folders]
            added += len(add_aliases(conn, row.target_id, pairs))
    return added


def aliases_of(conn: sa.Connection, target_ids: Sequence[int]) -> dict[int, list[tuple[str, str]]]:
    """(alias, origin) of each target, in the order they were added."""
    table = _t("target_alias")
    out: dict[int, list[tuple[str, str]]] = {int(i): [] for i in target_ids}
    if not target_ids:
        return out
    for row in conn.execute(sa.select(table.c.target_id, table.c.alias, table.c.origin)
                            .where(table.c.target_id.in_(list(target_ids)))
                            .order_by(table.c.alias_id)):
        out[int(row.target_id)].append((row.alias, row.origin))
    return out


# --------------------------------------------------------------------------
# Look-ups in the archive


@dataclass(frozen=True)
class TargetMatch:
    """A target a name reached."""

    target_id: int
    target: str
    catalogue: str
    catalogue_value: str
    ra: float
    dec: float
    target_class: str | None


def _visible_target(principal: Principal) -> sa.ColumnElement[bool]:
    """The target has an observation the principal may see."""
    t, o = _t("target"), _t("observation").alias("r_observation")
    return sa.exists().where(o.c.target_id == t.c.target_id,
                             visible_clause(principal, o.c.access, o.c.source))


def _matches(conn: sa.Connection, where: sa.ColumnElement[bool], principal: Principal
             ) -> list[TargetMatch]:
    t = _t("target")
    rows = conn.execute(sa.select(t.c.target_id, t.c.target, t.c.catalogue, t.c.catalogue_value,
                                  t.c.right_ascension, t.c.declination, t.c.target_class)
                        .where(where, _visible_target(principal)).order_by(t.c.target_id))
    return [TargetMatch(int(r.target_id), r.target, r.catalogue, r.catalogue_value,
                        float(r.right_ascension), float(r.declination), r.target_class)
            for r in rows]


def find_by_names(conn: sa.Connection, principal: Principal, names: Iterable[str]
                  ) -> list[TargetMatch]:
    """Visible targets one of whose aliases (or whose name) has the key of one of ``names``."""
    t, a = _t("target"), _t("target_alias")
    keys = sorted({k[:255] for k in (name_key(n) for n in names) if k})
    if not keys:
        return []
    lowered = sorted({n.strip().lower() for n in names if n.strip()})
    by_alias = sa.select(a.c.target_id).where(a.c.alias_key.in_(keys))
    return _matches(conn, sa.or_(t.c.target_id.in_(by_alias),
                                 sa.func.lower(t.c.target).in_(lowered)), principal)


def angular_distance(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Great-circle distance in degrees (haversine)."""
    r1, d1, r2, d2 = map(math.radians, (ra1, dec1, ra2, dec2))
    h = math.sin((d2 - d1) / 2) ** 2 + math.cos(d1) * math.cos(d2) * math.sin((r2 - r1) / 2) ** 2
    return math.degrees(2 * math.asin(min(1.0, math.sqrt(h))))


def find_near(conn: sa.Connection, principal: Principal, ra: float, dec: float,
              radius: float) -> list[TargetMatch]:
    """Visible targets within ``radius`` degrees of a position, nearest first."""
    t = _t("target")
    band = sa.and_(t.c.declination >= dec - radius, t.c.declination <= dec + radius)
    near = [(angular_distance(ra, dec, m.ra, m.dec), m) for m in _matches(conn, band, principal)]
    return [m for d, m in sorted(near, key=lambda x: x[0]) if d <= radius]


# --------------------------------------------------------------------------
# Sesame


@dataclass(frozen=True)
class SesameAnswer:
    """What Sesame knows of a name: ICRS position, main identifier and aliases."""

    ra: float
    dec: float
    oname: str | None = None
    aliases: tuple[str, ...] = ()


class SesameUnavailable(RuntimeError):
    """Sesame did not answer (timeout, connection, HTTP error, unreadable XML)."""


def parse_sesame(xml: bytes) -> SesameAnswer | None:
    """The first resolver with a position in Sesame's ``-oxp`` XML (None: not found)."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False)
    try:
        root = etree.fromstring(xml, parser)
    except etree.XMLSyntaxError as exc:
        raise SesameUnavailable(f"Sesame's answer is not XML ({exc})") from None
    for resolver in root.iter("Resolver"):
        ra, dec = resolver.findtext("jradeg"), resolver.findtext("jdedeg")
        if ra is None or dec is None:
            continue
        try:
            ra_v, dec_v = float(ra), float(dec)
        except ValueError:
            continue
        if not (math.isfinite(ra_v) and math.isfinite(dec_v) and -90 <= dec_v <= 90):
            continue
        oname = (resolver.findtext("oname") or "").strip() or None
        aliases = tuple(a.text.strip() for a in resolver.iter("alias") if a.text and a.text.strip())
        return SesameAnswer(ra_v % 360.0, dec_v, oname, aliases)
    return None


def query_sesame(url: str, name: str, timeout: float) -> SesameAnswer | None:
    """Ask Sesame at ``url`` (the name is appended after ``?``); None: not found.

    ``url`` is the operator's configuration, not client input: it is fetched
    directly (no SSRF filter), without redirects, for at most ``timeout``
    seconds per connect and read and :data:`SESAME_MAX_BYTES` bytes.
    """
    import requests

    target = f"{url}?{quote(name, safe='')}"
    try:
        with requests.get(target, timeout=timeout, stream=True, allow_redirects=False) as r:
            if r.status_code != 200:
                raise SesameUnavailable(f"Sesame answered HTTP {r.status_code}")
            body = b""
            for chunk in r.iter_content(65536):
                body += chunk
                if len(body) > SESAME_MAX_BYTES:
                    raise SesameUnavailable("Sesame's answer is too large")
    except requests.Timeout:
        raise SesameUnavailable(f"Sesame did not answer within {timeout:g} s") from None
    except requests.RequestException as exc:
        raise SesameUnavailable(f"Sesame could not be reached ({type(exc).__name__})") from None
    return parse_sesame(body)


CACHE_METADATA = sa.MetaData()

#: positive Sesame answers by name key (internal, never published)
sesame_cache = sa.Table(
    "skvo_sesame_cache",
    CACHE_METADATA,
    sa.Column("name_key", sa.String(255), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("ra", sa.Double, nullable=False),
    sa.Column("dec", sa.Double, nullable=False),
    sa.Column("oname", sa.String(255), nullable=True),
    sa.Column("aliases", sa.Text, nullable=False, default=""),
    sa.Column("fetched", sa.Double, nullable=False),
    **tables.MYSQL_TABLE_OPTIONS,
)


def prepare(engine: sa.Engine) -> None:
    """Create the Sesame cache table if it is missing (``skvo initdb`` calls it)."""
    try:
        CACHE_METADATA.create_all(engine, checkfirst=True)
    except sa.exc.DBAPIError:  # another process created it at the same moment
        if not sa.inspect(engine).has_table(sesame_cache.name):
            raise


def cached_answer(engine: sa.Engine, key: str) -> SesameAnswer | None:
    """A cached Sesame answer (None when none is cached or the cache cannot be read)."""
    try:
        with engine.connect() as conn:
            row = conn.execute(sa.select(sesame_cache).where(
                sesame_cache.c.name_key == key[:255])).first()
    except sa.exc.DBAPIError:  # no cache table yet, or a SELECT-only account without it
        return None
    if row is None:
        return None
    aliases = tuple(a for a in row.aliases.split("\n") if a)
    return SesameAnswer(float(row.ra), float(row.dec), row.oname, aliases)


_PREPARED: set[int] = set()
_PREPARED_LOCK = threading.Lock()


def cache_answer(engine: sa.Engine, key: str, name: str, answer: SesameAnswer) -> None:
    """Remember a positive answer (best effort: a failure is logged, not raised)."""
    try:
        with _PREPARED_LOCK:
            if id(engine) not in _PREPARED:
                prepare(engine)
                _PREPARED.add(id(engine))
        with engine.begin() as conn:
            conn.execute(sesame_cache.delete().where(sesame_cache.c.name_key == key[:255]))
            conn.execute(sesame_cache.insert().values(
                name_key=key[:255], name=name[:255], ra=answer.ra, dec=answer.dec,
                oname=(answer.oname or "")[:255] or None,
                aliases="\n".join(a[:255] for a in answer.aliases[:200]), fetched=time.time()))
    except sa.exc.DBAPIError as exc:
        log.warning("could not cache the Sesame answer for %r: %s", name, type(exc).__name__)


# --------------------------------------------------------------------------
# Resolution


@dataclass(frozen=True)
class ResolverConfig:
    """``[names]``: Sesame's URL (empty: off), its timeout and the cone radius (degrees)."""

    sesame_url: str = ""
    sesame_timeout: float = 3.0
    cone_radius: float = 10.0 / 3600.0

    @classmethod
    def from_settings(cls, settings: Any) -> ResolverConfig:
        """The resolver settings of ``[names]``."""
        return cls(str(settings.get("names", "sesame_url")),
                   float(settings.get("names", "sesame_timeout")),
                   float(settings.get("names", "cone_radius")) / 3600.0)


@dataclass
class Resolution:
    """What a name reached: targets, a position, who resolved it and a note."""

    name: str
    targets: list[TargetMatch] = field(default_factory=list)
    position: tuple[float, float] | None = None
    resolver: str | None = None  # archive | sesame
    note: str | None = None
    sesame_name: str | None = None

    @property
    def found(self) -> bool:
        """Did the name reach a target or a position?"""
        return bool(self.targets) or self.position is not None


def resolve(engine: sa.Engine, principal: Principal, name: str, config: ResolverConfig,
            cache_engine: sa.Engine | None = None, use_sesame: bool = True) -> Resolution:
    """Resolve a name for a principal: the archive's aliases first, then Sesame."""
    out = Resolution(name=name)
    key = name_key(name)
    if not key:
        out.note = "the name has no letters or digits"
        return out
    with engine.connect() as conn:
        out.targets = find_by_names(conn, principal, [name])
    if out.targets:
        out.resolver = "archive"
        out.position = (out.targets[0].ra, out.targets[0].dec)
        return out
    if not (config.sesame_url and use_sesame):
        out.note = "no target of the archive has this name"
        return out
    answer = cached_answer(engine, key)
    if answer is None:
        try:
            answer = query_sesame(config.sesame_url, name, config.sesame_timeout)
        except SesameUnavailable as exc:
            out.note = f"no target of the archive has this name; {exc}"
            return out
        if answer is None:
            out.note = "neither the archive nor Sesame knows this name"
            return out
        cache_answer(cache_engine or engine, key, name, answer)
    out.resolver = "sesame"
    out.position = (answer.ra, answer.dec)
    out.sesame_name = answer.oname
    with engine.connect() as conn:
        known = [n for n in (answer.oname, *answer.aliases) if n]
        out.targets = find_by_names(conn, principal, known) if known else []
        if not out.targets:
            out.targets = find_near(conn, principal, answer.ra, answer.dec, config.cone_radius)
    if not out.targets:
        out.note = (f"Sesame places the name at RA {answer.ra:.6f}, Dec {answer.dec:.6f}; "
                    f"no target of the archive is within {config.cone_radius * 3600:g} arcsec")
    return out


def resolve_many(engine: sa.Engine, principal: Principal, names: Sequence[str],
                 config: ResolverConfig, cache_engine: sa.Engine | None = None
                 ) -> tuple[list[int], list[tuple[float, float]]]:
    """Target ids the names reach, and Sesame positions that reached no target.

    Sesame is asked about at most :data:`SESAME_MAX_NAMES` names.
    """
    ids: list[int] = []
    cones: list[tuple[float, float]] = []
    asked = 0
    for name in names:
        use = asked < SESAME_MAX_NAMES
        res = resolve(engine, principal, name, config, cache_engine, use_sesame=use)
        if res.resolver == "sesame":
            asked += 1
        ids.extend(m.target_id for m in res.targets if m.target_id not in ids)
        if not res.targets and res.position is not None:
            cones.append(res.position)
    return ids, cones


def curves(conn: sa.Connection, principal: Principal, target_ids: Sequence[int],
           limit: int = 1000) -> list[dict[str, Any]]:
    """The per-night light curves of targets the principal may see (at most ``limit``)."""
    o, p, b = _t("observation"), _t("photometry"), _t("bandpass")
    if not target_ids:
        return []
    rows = conn.execute(
        sa.select(o.c.target_id, o.c.observation_uuid, o.c.night, o.c.source, o.c.access,
                  b.c.bandpass_uid)
        .select_from(p.join(o, o.c.observation_id == p.c.observation_id)
                     .join(b, b.c.bandpass_id == p.c.bandpass_id))
        .where(o.c.target_id.in_(list(target_ids)),
               visible_clause(principal, o.c.access, o.c.source))
        .order_by(o.c.night, o.c.source, b.c.bandpass_uid).limit(limit))
    return [dict(r._mapping) for r in rows]
