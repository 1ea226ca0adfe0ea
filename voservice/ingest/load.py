"""Load one validated series into the three stores, all or nothing.

The metadata rows go in one database transaction; the points go to the
time-series store and the frames to the media store while that transaction
is open.  When anything fails the transaction is rolled back and the points
and frames already written are deleted again, so nothing of the series stays
anywhere.  Dimension rows (organisation, target, ...) are get-or-create and
cached for the run; a cache entry made in a rolled-back transaction is
forgotten.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import inspect
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa

from voservice import bandpasses, tables
from voservice.catalog import refresh_public_flags
from voservice.ephemeris import add_ephemeris
from voservice.ingest.csvfiles import Data, Meta
from voservice.ingest.minima import delete_minima, insert_minima
from voservice.ingest.points import delete_points, insert_points
from voservice.ingest.tree import Frame, SeriesKey
from voservice.resolver import add_aliases, ingest_aliases

_EPOCH = dt.datetime(1970, 1, 1)
MJD_UNIX_EPOCH = 40587.0


def t(name: str) -> sa.Table:
    """A table of the skvo schema."""
    return tables.sa_table(f"skvo.{name}")


def to_datetime(us: int) -> dt.datetime:
    """Unix µs -> naive UTC datetime."""
    return _EPOCH + dt.timedelta(microseconds=int(us))


def to_mjd(us: np.ndarray | int) -> Any:
    """Unix µs -> MJD (UTC)."""
    return MJD_UNIX_EPOCH + np.asarray(us, dtype=np.float64) / 86_400e6


@dataclass
class Prepared:
    """A series ready to load: its key, parsed meta and data, checked frames."""

    key: SeriesKey
    meta: Meta
    data: Data
    frames: list[Frame]


@dataclass
class Existing:
    """An observation already in the database under a series key (or hash)."""

    observation_id: int
    observation_uuid: str
    observation_hash: str
    meta_md5: str
    data_md5: str
    key: SeriesKey


@dataclass
class _Replaced:
    """What a replaced observation had: its ids (kept), points and frames (removed)."""

    observation_id: int
    observation_uuid: str
    ids: dict[str, Any]  # target_id, instrument_id, ... of the old row
    photometry_id: int | None
    ref: Any  # SeriesRef of the old points (None without a photometry row)
    frame_ids: dict[int, int]  # frame_index -> frame_id
    media_refs: list[str]


@dataclass
class LoadResult:
    """What loading a series wrote."""

    observation_uuid: str
    photometry_id: int
    points: int
    frames: int


@dataclass
class _DimCache:
    ids: dict[tuple[str, tuple[Any, ...]], int] = field(default_factory=dict)
    pending: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)


class Loader:
    """Writes series into a metadata engine, a time-series store and a media store."""

    def __init__(self, engine: sa.Engine, timeseries: Any, media: Any) -> None:
        self.engine = engine
        self.timeseries = timeseries
        self.media = media
        self._cache = _DimCache()
        params = inspect.signature(timeseries.put).parameters
        self._put_conn_arg = next((p for p in ("conn", "connection") if p in params), None)

    # ---------------------------------------------------------------- look-ups

    def find(self, key: SeriesKey, observation_hash: str) -> Existing | None:
        """The observation stored under a series key, else one with the same hash."""
        obs = t("observation")
        night = f"{key.night[:4]}-{key.night[4:6]}-{key.night[6:]}"
        cols = [obs.c.observation_id, obs.c.observation_uuid, obs.c.observation_hash,
                obs.c.meta_md5, obs.c.data_md5, obs.c.source, obs.c.night,
                obs.c.target_folder, obs.c.bandpass_folder]
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(*cols).where(
                obs.c.source == key.source, obs.c.night == night,
                obs.c.target_folder == key.target, obs.c.bandpass_folder == key.bandpass,
            )).first()
            if row is None:
                row = conn.execute(
                    sa.select(*cols).where(obs.c.observation_hash == observation_hash)
                ).first()
        if row is None:
            return None
        return Existing(row.observation_id, row.observation_uuid, row.observation_hash,
                        row.meta_md5, row.data_md5,
                        SeriesKey(row.source, row.night.replace("-", ""), row.target_folder,
                                  row.bandpass_folder))

    # ---------------------------------------------------------------- dimensions

    def _get_or_create(self, conn: sa.Connection, name: str, match: dict[str, Any],
                       values: dict[str, Any]) -> int:
        cache_key = (name, tuple(match.values()))
        found = self._cache.ids.get(cache_key)
        if found is not None:
            return found
        table = t(name)
        pk = next(iter(table.primary_key.columns))
        found = conn.execute(
            sa.select(pk).where(*(table.c[k] == v for k, v in match.items()))
        ).scalar()
        if found is None:
            found = conn.execute(table.insert().values(**match, **values)).inserted_primary_key[0]
            self._cache.pending.append(cache_key)
        self._cache.ids[cache_key] = int(found)
        return int(found)

    def _dimensions(self, conn: sa.Connection, meta: Meta) -> dict[str, int]:
        g = meta.get
        org = self._get_or_create(conn, "organisation",
                                  {"organisation_did": g("organisation.organisation_did")},
                                  {"organisation": g("organisation.organisation"),
                                   "email": g("organisation.email")})
        dataid = self._get_or_create(conn, "dataid", {
            "organisation_id": org, "title": g("dataid.title"),
            "publisher": g("dataid.publisher"), "publisher_did": g("dataid.publisher_did"),
        }, {})
        facility = self._get_or_create(conn, "facility",
                                       {"facility_uid": g("facility.facility_uid")},
                                       {"facility": g("facility.facility"),
                                        "description": g("facility.description"),
                                        **_location(meta)})
        where = _location(meta)
        if where["longitude"] is not None:  # a facility loaded without one gets it now
            fac = t("facility")
            conn.execute(fac.update().where(fac.c.facility_id == facility,
                                            fac.c.longitude.is_(None)).values(**where))
        instrument = self._get_or_create(conn, "instrument",
                                         {"instrument_uid": g("instrument.instrument_uid")}, {
            "instrument": g("instrument.instrument"),
            "instrument_hash": meta.instrument_hash,
            "telescope": g("instrument.telescope"),
            "camera": g("instrument.camera"),
            "spectroscope": g("instrument.spectroscope"),
            "field_of_view": meta.field_of_view,
            "description": g("instrument.description"),
        })
        uid = g("bandpass.bandpass_uid") or ""
        filt = bandpasses.lookup(uid)
        bandpass = self._get_or_create(conn, "bandpass", {"bandpass_uid": uid}, {
            "bandpass": g("bandpass.bandpass"),
            "spectral_band_type": meta.choice("bandpass.spectral_band_type"),
            "photometric_system": g("bandpass.photometric_system"),
            "wavelength_eff": filt.wavelength_eff if filt else None,
            "wavelength_min": filt.wavelength_min if filt else None,
            "wavelength_max": filt.wavelength_max if filt else None,
            "mag_ucd": filt.mag_ucd if filt else None,
        })
        target = self._get_or_create(conn, "target", {
            "catalogue": g("target.catalogue"), "catalogue_value": g("target.catalogue_value"),
        }, {
            "target": g("target.target"),
            "description": g("target.description"),
            "right_ascension": meta.right_ascension,
            "declination": meta.declination,
            "equinox": g("target.equinox") or "J2000",
            "target_class": g("target.target_class"),
        })
        return {"dataid_id": dataid, "facility_id": facility, "instrument_id": instrument,
                "bandpass_id": bandpass, "target_id": target, "organisation_id": org}

    # ---------------------------------------------------------------- loading

    def load(self, series: Prepared, replacing: Existing | None = None) -> LoadResult:
        """Write one series to all three stores, or nothing at all (then raise).

        ``replacing`` (``skvo ingest --replace``): the loaded observation these
        files replace.  It keeps its identity: observation id and uuid (so its
        publisher DID and every URL), photometry id, and the frame ids of the
        frame indexes it still has.  Its old rows go in the transaction that
        inserts the new ones; its old points are replaced in that transaction
        (SQL store) or kept in memory and written back if anything fails
        (other stores); its old frames are deleted only after the commit (the
        new ones are stored under a new media key).  A failure leaves the old
        series as it was.

        When the time-series store can write through our connection (the SQL
        store), points and metadata commit in one transaction.  Otherwise the
        points and frames are written first under a photometry id taken in
        advance (:func:`ingest_lock` keeps other uploaders away) and the
        metadata transaction commits last: readers, who start from the
        metadata, never see a half-loaded series.
        """
        from voservice.stores.timeseries.base import Points, SeriesRef

        key, meta, data = series.key, series.meta, series.data
        old = self._replaced(replacing) if replacing is not None else None
        obs_uuid = old.observation_uuid if old is not None else str(uuid.uuid4())
        # a replacement's frames go under a new key: the old ones stay until the commit
        series_key = (f"{obs_uuid}/{key.bandpass}" if old is None
                      else f"{obs_uuid}~{uuid.uuid4().hex[:8]}/{key.bandpass}")
        points = Points(
            time_us=data.time_us, magnitude=data.magnitude,
            magnitude_error=data.magnitude_error, exposure=data.exposure,
            flux_calibration=data.flux_calibration,
            flux_calibration_level=data.flux_calibration_level,
            timeframe_reference_position=data.timeframe_reference_position,
        )

        def make_ref(phot_id: int) -> SeriesRef:
            return SeriesRef(
                series_id=int(phot_id), observation_uuid=obs_uuid, target=key.target,
                bandpass_uid=key.bandpass, source=key.source,
                instrument_hash=meta.instrument_hash,
                start_us=int(data.time_us[0]), end_us=int(data.time_us[-1]),
            )

        stored: list[Any] = []
        ref: SeriesRef | None = None
        restore: tuple[SeriesRef, Points] | None = None  # old points to put back on failure
        kept_id = old.photometry_id if old is not None else None
        self._cache.pending.clear()
        try:
            for frame in series.frames:
                stored.append(self.media.put(series_key, frame.index, frame.read(),
                                             frame.content_type))
            if not self._put_conn_arg:  # points first, under an id taken in advance
                if kept_id is not None:
                    reserved = kept_id
                    restore = (old.ref, Points.concat(list(self.timeseries.read(old.ref))))
                    self.timeseries.delete(old.ref)  # the store keys series by the uuid
                else:
                    with self.engine.connect() as conn:
                        reserved = self._next_photometry_id(conn)
                ref = make_ref(reserved)
                # no delete first: a put replaces what the store holds for the ref (the
                # SQL store's leftovers of an interrupted run under a reused id; OpenTSDB
                # keys series by the new uuid and deletes only when it finds points);
                # a replaced series was deleted by delete() before this load
                self.timeseries.put(ref, points)
            with self.engine.connect() as conn:
                trans = conn.begin()
                try:
                    if old is not None:
                        self._remove_rows(conn, old)
                    if ref is not None:
                        phot_id = self._insert(conn, series, obs_uuid, series_key, stored,
                                               ref.series_id, old)
                    else:  # one transaction for metadata and points
                        phot_id = self._insert(conn, series, obs_uuid, series_key, stored,
                                               kept_id, old)
                        self.timeseries.put(make_ref(phot_id), points,
                                            **{self._put_conn_arg: conn})
                    if old is not None:
                        self._refresh_old(conn, old)
                except BaseException:
                    with contextlib.suppress(sa.exc.DBAPIError):  # a lost connection
                        trans.rollback()
                    raise
                try:
                    trans.commit()
                except sa.exc.DBAPIError as exc:
                    if is_disconnect(exc):  # kept or not: only the database knows
                        raise CommitUnknown(str(key)) from exc
                    raise
        except CommitUnknown as lost:
            kept = self._was_kept(obs_uuid, meta.md5, data.md5)
            if kept is None:  # still no database: leave points and frames for a kept series
                for cache_key in self._cache.pending:
                    self._cache.ids.pop(cache_key, None)
                self._cache.pending.clear()
                raise
            if not kept:
                self._undo(ref, stored, restore)
                raise lost.__cause__ from None  # type: ignore[misc]
        except BaseException:
            self._undo(ref, stored, restore)
            raise
        self._cache.pending.clear()
        if old is not None:  # committed: the old frames are no longer referenced
            new_refs = {item.ref for item in stored}
            for media_ref in old.media_refs:
                if media_ref not in new_refs:
                    with contextlib.suppress(Exception):  # an unreferenced file at worst
                        self.media.delete(media_ref)
        return LoadResult(obs_uuid, int(phot_id), len(data), len(series.frames))

    def _replaced(self, existing: Existing) -> _Replaced:
        """Read what a loaded observation has before a replacement takes its place."""
        from voservice.stores.timeseries.base import SeriesRef

        obs, phot, frame = t("observation"), t("photometry"), t("frame")
        ins, dataid = t("instrument"), t("dataid")
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(obs, ins.c.instrument_hash, dataid.c.organisation_id)
                .join(ins, ins.c.instrument_id == obs.c.instrument_id)
                .join(dataid, dataid.c.dataid_id == obs.c.dataid_id)
                .where(obs.c.observation_id == existing.observation_id)).one()
            p = conn.execute(sa.select(phot).where(phot.c.observation_id == row.observation_id)
                             .order_by(phot.c.photometry_id)).first()
            frames = conn.execute(sa.select(frame.c.frame_index, frame.c.frame_id,
                                            frame.c.media_ref).where(
                frame.c.photometry_id == (p.photometry_id if p is not None else -1))).all()
        ref = None if p is None else SeriesRef(
            series_id=int(p.photometry_id), observation_uuid=row.observation_uuid,
            target=row.target_folder, bandpass_uid=row.bandpass_folder, source=row.source,
            instrument_hash=row.instrument_hash, start_us=_us(p.start_date),
            end_us=_us(p.end_date))
        ids = {name: getattr(row, name) for name in (
            "target_id", "instrument_id", "facility_id", "dataid_id", "organisation_id")}
        return _Replaced(int(row.observation_id), row.observation_uuid, ids,
                         int(p.photometry_id) if p is not None else None, ref,
                         {int(f.frame_index): int(f.frame_id) for f in frames},
                         [f.media_ref for f in frames])

    def _remove_rows(self, conn: sa.Connection, old: _Replaced) -> None:
        """Delete the rows of a replaced observation and of every table that refers to
        its observation or photometry rows (frames and any table added later)."""
        obs, phot = t("observation"), t("photometry")
        delete_points(conn, old.observation_id)  # skvo.point (also found by its key below)
        phot_ids = conn.execute(sa.select(phot.c.photometry_id).where(
            phot.c.observation_id == old.observation_id)).scalars().all()
        for table in reversed(tables.METADATA.sorted_tables):
            if table is obs or table is phot:
                continue
            for fk in table.foreign_keys:
                if fk.column.table is phot and phot_ids:
                    conn.execute(table.delete().where(fk.parent.in_(phot_ids)))
                elif fk.column.table is obs:
                    conn.execute(table.delete().where(fk.parent == old.observation_id))
        conn.execute(phot.delete().where(phot.c.observation_id == old.observation_id))
        conn.execute(obs.delete().where(obs.c.observation_id == old.observation_id))

    def _refresh_old(self, conn: sa.Connection, old: _Replaced) -> None:
        """The public flags of the rows the replaced observation referred to."""
        for name in ("skvo.target", "skvo.target_alias", "skvo.ephemeris"):
            refresh_public_flags(conn, name, "target_id", old.ids["target_id"])
        refresh_dimension_flags(conn, old.ids)

    def _was_kept(self, obs_uuid: str, meta_md5: str, data_md5: str) -> bool | None:
        """After a commit without an answer: is the observation there (with these files: a
        replaced one had the uuid before)? None: cannot tell."""
        obs = t("observation")
        try:
            with self.engine.connect() as conn:
                return conn.execute(sa.select(obs.c.observation_id).where(
                    obs.c.observation_uuid == obs_uuid, obs.c.meta_md5 == meta_md5,
                    obs.c.data_md5 == data_md5)).first() is not None
        except sa.exc.DBAPIError:
            return None

    def _next_photometry_id(self, conn: sa.Connection) -> int:
        phot = t("photometry")
        last = conn.execute(sa.select(sa.func.max(phot.c.photometry_id))).scalar()
        self._last_id = max(int(last or 0), getattr(self, "_last_id", 0)) + 1
        return self._last_id

    def _insert(self, conn: sa.Connection, series: Prepared, obs_uuid: str, series_key: str,
                stored: list[Any], phot_id: int | None, old: _Replaced | None = None) -> int:
        """Insert the metadata rows of a series; returns the photometry id.

        ``old``: the observation it replaces, whose observation id and frame ids
        (by frame index) the new rows take.
        """
        key, meta, data = series.key, series.meta, series.data
        ids = self._dimensions(conn, meta)
        kept = {"observation_id": old.observation_id} if old is not None else {}
        obs_id = conn.execute(t("observation").insert().values(
            **kept,
            observation_uuid=obs_uuid,
            observation_hash=meta.hash,
            source=key.source,
            night=f"{key.night[:4]}-{key.night[4:6]}-{key.night[6:]}",
            target_folder=key.target,
            bandpass_folder=key.bandpass,
            target_id=ids["target_id"],
            instrument_id=ids["instrument_id"],
            facility_id=ids["facility_id"],
            dataid_id=ids["dataid_id"],
            access=meta.choice("access.access"),
            meta_md5=meta.md5,
            data_md5=data.md5,
            ingested=dt.datetime.now(dt.UTC),
        )).inserted_primary_key[0]
        values: dict[str, Any] = {"photometry_id": phot_id} if phot_id is not None else {}
        phot_id = conn.execute(t("photometry").insert().values(
            observation_id=obs_id, bandpass_id=ids["bandpass_id"], media=series_key,
            n_frames=len(series.frames), **values, **_series_stats(data),
        )).inserted_primary_key[0]
        frame_rows = []
        for frame, item in zip(series.frames, stored, strict=True):
            us = int(data.time_us[frame.index])
            frame_rows.append({
                "photometry_id": phot_id, "frame_index": frame.index,
                "obs_time": to_datetime(us), "mjd": float(to_mjd(us)),
                "exposure": float(data.exposure[frame.index]),
                "content_type": item.content_type, "file_size": item.size,
                "md5": item.md5, "media_ref": item.ref,
            })
        frame_ids = old.frame_ids if old is not None else {}
        for rows in ([dict(r, frame_id=frame_ids[r["frame_index"]]) for r in frame_rows
                      if r["frame_index"] in frame_ids],  # a replaced frame keeps its URL
                     [r for r in frame_rows if r["frame_index"] not in frame_ids]):
            if rows:
                conn.execute(t("frame").insert(), rows)
        refresh_public_flags(conn, "skvo.target", "target_id", ids["target_id"])
        refresh_dimension_flags(conn, ids)
        add_aliases(conn, ids["target_id"], ingest_aliases(  # also keeps the aliases' flags
            meta.get("target.target"), key.target, meta.get("target.catalogue"),
            meta.get("target.catalogue_value")))
        if meta.ephemeris is not None:  # the provider's (once per target, not per night)
            add_ephemeris(conn, ids["target_id"], meta.ephemeris, "provider")
        refresh_public_flags(conn, "skvo.ephemeris", "target_id", ids["target_id"])
        refresh_public_flags(conn, "skvo.photometry", "photometry_id", phot_id)
        refresh_public_flags(conn, "skvo.frame", "photometry_id", phot_id)
        insert_points(conn, observation_id=obs_id, target_id=ids["target_id"],
                      bandpass_id=ids["bandpass_id"], photometry_id=phot_id,
                      access=meta.choice("access.access"), source=key.source, data=data)
        insert_minima(conn, observation_id=obs_id, photometry_id=phot_id,
                      target_id=ids["target_id"], bandpass_id=ids["bandpass_id"],
                      access=meta.choice("access.access"), source=key.source, data=data,
                      location=_location(meta))
        return int(phot_id)

    def _undo(self, ref: Any, stored: list[Any], restore: tuple[Any, Any] | None = None
              ) -> None:
        """Delete what already reached the other stores (the transaction is rolled back);
        ``restore``: (ref, points) of a replaced series to write back."""
        errors: list[BaseException] = []
        for cache_key in self._cache.pending:
            self._cache.ids.pop(cache_key, None)
        self._cache.pending.clear()
        if ref is not None:
            try:
                self.timeseries.delete(ref)
            except Exception as exc:
                errors.append(exc)
        if restore is not None and not errors:
            try:
                self.timeseries.delete(restore[0])  # what a failed delete left of it
                if len(restore[1]):
                    self.timeseries.put(*restore)
            except Exception as exc:
                errors.append(exc)
        for item in stored:
            try:
                self.media.delete(item.ref)
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise UndoError(f"could not undo everything: {errors[0]}") from errors[0]

    # ---------------------------------------------------------------- removal

    def delete(self, observation_id: int) -> None:
        """Remove a loaded observation from all stores (for ``--replace``)."""
        from voservice.stores.timeseries.base import SeriesRef

        obs, phot, frame = t("observation"), t("photometry"), t("frame")
        ins = t("instrument")
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(obs, ins.c.instrument_hash).join(
                    ins, ins.c.instrument_id == obs.c.instrument_id
                ).where(obs.c.observation_id == observation_id)
            ).first()
            if row is None:
                return
            series = conn.execute(sa.select(phot).where(
                phot.c.observation_id == observation_id)).all()
            for p in series:
                refs = conn.execute(sa.select(frame.c.media_ref).where(
                    frame.c.photometry_id == p.photometry_id)).scalars().all()
                ref = SeriesRef(
                    series_id=int(p.photometry_id), observation_uuid=row.observation_uuid,
                    target=row.target_folder, bandpass_uid=row.bandpass_folder,
                    source=row.source, instrument_hash=row.instrument_hash,
                    start_us=_us(p.start_date), end_us=_us(p.end_date),
                )
                self.timeseries.delete(ref)
                for media_ref in refs:
                    self.media.delete(media_ref)
                conn.execute(frame.delete().where(frame.c.photometry_id == p.photometry_id))
            delete_points(conn, observation_id)
            delete_minima(conn, observation_id)
            conn.execute(phot.delete().where(phot.c.observation_id == observation_id))
            conn.execute(obs.delete().where(obs.c.observation_id == observation_id))
            refresh_public_flags(conn, "skvo.target", "target_id", row.target_id)
            refresh_public_flags(conn, "skvo.target_alias", "target_id", row.target_id)
            refresh_public_flags(conn, "skvo.ephemeris", "target_id", row.target_id)
            dataid = t("dataid")
            organisation_id = conn.execute(sa.select(dataid.c.organisation_id).where(
                dataid.c.dataid_id == row.dataid_id)).scalar()
            refresh_dimension_flags(conn, {
                "instrument_id": row.instrument_id, "facility_id": row.facility_id,
                "dataid_id": row.dataid_id, "organisation_id": organisation_id})


#: the dimension tables an observation refers to, each visible through the
#: observations that use it (resources/tables/skvo.toml), in dependency order
DIMENSION_FLAGS = (("skvo.instrument", "instrument_id"), ("skvo.facility", "facility_id"),
                   ("skvo.dataid", "dataid_id"), ("skvo.organisation", "organisation_id"))


def refresh_dimension_flags(conn: sa.Connection, ids: dict[str, Any]) -> None:
    """Recompute the public flags of the dimension rows an observation refers to."""
    for table, column in DIMENSION_FLAGS:
        if ids.get(column) is not None:
            refresh_public_flags(conn, table, column, ids[column])


class UndoError(RuntimeError):
    """A failed series could not be removed from every store again."""


class CommitUnknown(RuntimeError):
    """The connection was lost while committing a series and the database cannot tell.

    The uploader asks the database (on a new connection) whether the series
    was kept: yes, it counts as loaded; no, its points and frames are removed.
    When the database does not answer, points and frames are left in place so
    that a series the database did keep is whole; a rerun skips it when it was
    kept and loads it when not (the frames of a series that was not kept are
    then unreferenced files).
    """


#: MySQL/MariaDB client and server errors that mean the connection is gone
_DISCONNECT_CODES = frozenset({
    1053,  # server shutdown in progress
    1152, 1927,  # connection aborted, connection killed
    2002, 2003, 2005, 2006, 2013, 2014, 2045, 2055,  # cannot connect, gone away, lost
    4031,  # disconnected by the server because of inactivity
})


def is_disconnect(exc: BaseException | None) -> bool:
    """Does ``exc`` (or an exception it was raised from) mean the database went away?"""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, sa.exc.DBAPIError):
            if exc.connection_invalidated:
                return True
            args = getattr(exc.orig, "args", ())
            if args and isinstance(args[0], int) and args[0] in _DISCONNECT_CODES:
                return True
        exc = exc.__cause__ or exc.__context__
    return False


def database_message(exc: BaseException) -> str:
    """The driver's own one-line message of a database error (no SQL, no parameters)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, sa.exc.DBAPIError) and cur.orig is not None:
            args = getattr(cur.orig, "args", ())
            if len(args) == 2 and isinstance(args[0], int):  # MySQL: (code, message)
                return f"error {args[0]}: {str(args[1]).strip().splitlines()[0]}"
            text = str(cur.orig).strip()
            return text.splitlines()[0] if text else type(cur.orig).__name__
        cur = cur.__cause__ or cur.__context__
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class IngestLocked(RuntimeError):
    """Another uploader is writing to the same database."""


class LockLost(RuntimeError):
    """The database connection that held the uploader lock went away."""


@contextlib.contextmanager
def ingest_lock(engine: sa.Engine) -> Iterator[None]:
    """Hold the database's uploader lock (one writing ``skvo ingest`` at a time)."""
    busy = "another `skvo ingest` is loading into this database; try again when it is done"
    if engine.dialect.name in ("mysql", "mariadb"):
        name = f"skvo_ingest.{engine.url.database}"[:64]
        conn = engine.connect()
        try:
            if conn.execute(sa.text("SELECT GET_LOCK(:n, 0)"), {"n": name}).scalar() != 1:
                raise IngestLocked(busy)
            try:
                yield
            except BaseException:
                with contextlib.suppress(sa.exc.DBAPIError):  # the first error is the one
                    conn.execute(sa.text("SELECT RELEASE_LOCK(:n)"), {"n": name})
                raise
            try:
                conn.execute(sa.text("SELECT RELEASE_LOCK(:n)"), {"n": name})
            except sa.exc.DBAPIError as exc:
                if not is_disconnect(exc):
                    raise
                # the server released the lock with the connection
                raise LockLost("the database connection holding the uploader lock was lost "
                               f"during the run ({database_message(exc)})") from None
        finally:
            with contextlib.suppress(sa.exc.DBAPIError):  # a lost connection cannot roll back
                conn.close()
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:" \
            or database.startswith("file:"):
        yield
        return
    import fcntl

    with open(f"{database}.ingest-lock", "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IngestLocked(busy) from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _us(value: dt.datetime) -> int:
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return (value - _EPOCH) // dt.timedelta(microseconds=1)


def _series_stats(data: Data) -> dict[str, Any]:
    """The photometry row's summary of the points."""
    calibrations = set(np.unique(data.flux_calibration).tolist())
    positions = data.timeframe_reference_position
    if np.all(positions == positions[0]):
        refpos = str(positions[0])
    else:
        refpos = Counter(positions.tolist()).most_common(1)[0][0]
    return {
        "start_date": to_datetime(data.time_us[0]),
        "end_date": to_datetime(data.time_us[-1]),
        "mjd_start": float(to_mjd(data.time_us[0])),
        "mjd_end": float(to_mjd(data.time_us[-1])),
        "n_points": len(data),
        "exposure_total": float(np.sum(data.exposure)),
        "mag_min": float(np.min(data.magnitude)),
        "mag_max": float(np.max(data.magnitude)),
        "flux_calibration": calibrations.pop() if len(calibrations) == 1 else "mixed",
        "time_refposition": refpos,
    }


def _location(meta: Meta) -> dict[str, float | None]:
    """The facility's longitude, latitude and height from the meta CSV (validated there)."""
    out: dict[str, float | None] = {}
    for name in ("longitude", "latitude", "height"):
        text = meta.get(f"facility.{name}")
        out[name] = float(text) if text is not None else None
    if out["longitude"] is not None and out["longitude"] > 180:
        out["longitude"] -= 360.0  # one convention in the table: (-180, 180]
    return out
