"""The uploader end to end: sample tree -> SQLite / MariaDB + SQL points + frame files."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import mariadb_database

from voservice import tables
from voservice.config import load_config
from voservice.ingest import IngestReport, Stores, ingest, open_stores, run_ingest
from voservice.ingest.tree import walk

DB_PARAMS = ["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)]


def t(name: str) -> sa.Table:
    return tables.sa_table(f"skvo.{name}")


def write_settings(root: Path, url: str):  # noqa: ANN201 - Settings
    """A skvo.ini in ``root`` naming the database and a frame folder; its settings."""
    ini = root / "skvo.ini"
    ini.write_text(
        f"[general]\nbase_path = data\n[metadata]\nurl = {url}\n"
        "[timeseries]\nbackend = sql\n[media]\nbackend = files\npath = media\n"
    )
    return load_config(ini)


def database_url(kind: str, tmp_path: Path, name: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'skvo.sqlite'}"
    return mariadb_database(name)


@pytest.fixture(params=DB_PARAMS)
def settings(request: pytest.FixtureRequest, tmp_path: Path):  # noqa: ANN201
    return write_settings(tmp_path, database_url(request.param, tmp_path, "skvo_ingest_test"))


@pytest.fixture
def stores(settings: Any) -> Iterator[Stores]:
    opened = open_stores(settings)
    yield opened
    opened.close()


def count(engine: sa.Engine, name: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(t(name))).scalar_one()


def media_files(stores: Stores) -> list[str]:
    """Every frame the files media store holds."""
    if stores.media_path is None or not stores.media_path.exists():
        return []
    return stores.media.refs()


def loaded_refs(stores: Stores) -> list[tuple[Any, int]]:
    """(SeriesRef, n_points) of every photometry row."""
    from voservice.stores.timeseries.base import SeriesRef

    obs, phot, ins = t("observation"), t("photometry"), t("instrument")
    q = (sa.select(phot.c.photometry_id, phot.c.n_points, phot.c.start_date, phot.c.end_date,
                   obs.c.observation_uuid, obs.c.target_folder, obs.c.bandpass_folder,
                   obs.c.source, ins.c.instrument_hash)
         .join(obs, obs.c.observation_id == phot.c.observation_id)
         .join(ins, ins.c.instrument_id == obs.c.instrument_id))
    with stores.engine.connect() as conn:
        rows = conn.execute(q).all()
    from voservice.ingest.load import _us

    return [(SeriesRef(series_id=r.photometry_id, observation_uuid=r.observation_uuid,
                       target=r.target_folder, bandpass_uid=r.bandpass_folder, source=r.source,
                       instrument_hash=r.instrument_hash, start_us=_us(r.start_date),
                       end_us=_us(r.end_date)), r.n_points) for r in rows]


def assert_consistent(stores: Stores) -> None:
    """Every photometry row has exactly its points and every frame row its file."""
    for ref, n_points in loaded_refs(stores):
        assert stores.timeseries.count(ref) == n_points, ref
    with stores.engine.connect() as conn:
        refs = conn.execute(sa.select(t("frame").c.media_ref)).scalars().all()
    for ref in refs:
        data, content_type = stores.media.get(ref)
        assert data.startswith(b"\x89PNG") and content_type == "image/png"
    assert len(media_files(stores)) == len(refs)


def tree_totals(path: Path) -> tuple[int, int, int]:
    """Series, points and frames of a tree, counted from the files themselves."""
    series = walk(path).series
    points = sum(len(s.data.read_text().strip().splitlines()) - 1 for s in series)
    frames = sum(len(s.frames) for s in series)
    return len(series), points, frames


def test_demo_tree_loads_and_reloads_nothing(demo_tree: Path, stores: Stores) -> None:
    n_series, n_points, n_frames = tree_totals(demo_tree)
    report = ingest(stores, demo_tree, progress=False)
    assert report.ok, report.lines()
    assert (len(report.loaded), report.points, report.frames) == (n_series, n_points, n_frames)
    assert count(stores.engine, "observation") == n_series
    assert count(stores.engine, "photometry") == n_series
    assert count(stores.engine, "frame") == n_frames
    with stores.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.sum(t("photometry").c.n_points))).scalar() == \
            n_points
        accesses = set(conn.execute(sa.select(t("observation").c.access)).scalars())
        bands = conn.execute(sa.select(t("bandpass"))).mappings().all()
    assert accesses == {"open", "on_demand", "restricted"}
    assert all(b["wavelength_eff"] is not None for b in bands)
    assert_consistent(stores)
    assert any("spectroscopy" in n for n in report.notices)

    again = ingest(stores, demo_tree, progress=False)
    assert again.ok and not again.loaded and len(again.skipped) == n_series
    assert count(stores.engine, "observation") == n_series
    assert count(stores.engine, "frame") == n_frames
    assert_consistent(stores)


def test_photometry_row_summarises_points(demo_tree: Path, stores: Stores) -> None:
    import numpy as np

    from voservice.ingest.csvfiles import read_data
    from voservice.ingest.problems import Problems

    ingest(stores, demo_tree, progress=False)
    files = walk(demo_tree).series[0]
    data = read_data(files.data, "x", files.night_date, Problems("x"))
    obs, phot = t("observation"), t("photometry")
    with stores.engine.connect() as conn:
        row = conn.execute(
            sa.select(phot, obs.c.night, obs.c.observation_uuid)
            .join(obs, obs.c.observation_id == phot.c.observation_id)
            .where(obs.c.source == files.key.source, obs.c.target_folder == files.key.target,
                   obs.c.bandpass_folder == files.key.bandpass)
            .where(obs.c.night == f"{files.key.night[:4]}-{files.key.night[4:6]}-"
                                  f"{files.key.night[6:]}")
        ).mappings().one()
    assert row["n_points"] == len(data)
    assert row["mag_min"] == pytest.approx(float(np.min(data.magnitude)))
    assert row["mag_max"] == pytest.approx(float(np.max(data.magnitude)))
    assert row["exposure_total"] == pytest.approx(float(np.sum(data.exposure)))
    assert row["mjd_start"] == pytest.approx(40587 + data.time_us[0] / 86400e6, abs=1e-9)
    assert row["start_date"].strftime("%Y%m%d") >= files.key.night[:6]
    assert row["media"] == f"{row['observation_uuid']}/{files.key.bandpass}"
    assert row["flux_calibration"] in ("abs", "dif")


def test_dry_run_writes_nothing(demo_tree: Path, settings: Any, tmp_path: Path) -> None:
    from voservice.stores.metadata import make_engine

    with (tmp_path / "log").open("w") as stream:
        assert run_ingest(settings, demo_tree, dry_run=True, stream=stream) == 0
    assert "would load" in (tmp_path / "log").read_text()
    engine = make_engine(settings.metadata_url)
    try:
        if sa.inspect(engine).has_table("observation"):
            assert count(engine, "observation") == 0
    finally:
        engine.dispose()
    media = Path(settings.get("media", "path"))
    assert not media.exists() or not any(p.is_file() for p in media.rglob("*"))


def test_run_ingest_cli_function(demo_tree: Path, settings: Any, tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    with log.open("w") as stream:
        assert run_ingest(settings, demo_tree, stream=stream) == 0
        assert run_ingest(settings, demo_tree, stream=stream) == 0
    text = log.read_text()
    assert "loaded 0 series" in text and "skipped" in text


def _change_one(tree: Path) -> tuple[Path, Any]:
    files = walk(tree).series[3]
    lines = files.data.read_text().splitlines()
    fields = lines[1].split(",")
    fields[1] = "25.5"  # a plausible magnitude (SKVO refuses those above 40)
    lines[1] = ",".join(fields)
    files.data.write_text("\n".join(lines) + "\n")
    return files.data, files.key


def test_changed_file_is_reported_then_replaced(demo_tree: Path, stores: Stores,
                                                tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(demo_tree, tree)
    first = ingest(stores, tree, progress=False)
    assert first.ok
    n_obs, n_frames = count(stores.engine, "observation"), count(stores.engine, "frame")
    _, key = _change_one(tree)

    second = ingest(stores, tree, progress=False)
    assert second.changed == [key] and not second.loaded and not second.ok
    assert any(str(key) in line and "--replace" in line for line in second.lines())
    assert count(stores.engine, "observation") == n_obs
    with stores.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.max(t("photometry").c.mag_max))).scalar() < 25

    third = ingest(stores, tree, replace=True, progress=False)
    assert third.replaced == [key] and third.ok
    assert count(stores.engine, "observation") == n_obs
    assert count(stores.engine, "frame") == n_frames
    with stores.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.max(t("photometry").c.mag_max))).scalar() == \
            pytest.approx(25.5)
    assert_consistent(stores)
    assert ingest(stores, tree, progress=False).skipped


class FailingMedia:
    """A media store that breaks on its n-th put."""

    def __init__(self, inner: Any, fail_at: int) -> None:
        self.inner, self.fail_at, self.calls = inner, fail_at, 0

    def put(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == self.fail_at:
            raise OSError("disk on fire")
        return self.inner.put(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class FailingPoints:
    """A time-series store whose put fails for series with more than ``limit`` points."""

    def __init__(self, inner: Any, limit: int) -> None:
        self.inner, self.limit = inner, limit
        self.refs: list[Any] = []

    def put(self, ref: Any, points: Any, **kwargs: Any) -> None:
        self.refs.append(ref)
        if len(points.time_us) > self.limit:
            raise ConnectionError("time-series store went away")
        self.inner.put(ref, points, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _assert_no_trace(stores: Stores, report: IngestReport) -> None:
    obs = t("observation")
    with stores.engine.connect() as conn:
        keys = {(r.source, r.night.replace("-", ""), r.target_folder, r.bandpass_folder)
                for r in conn.execute(sa.select(obs))}
    for key in report.failed:
        assert (key.source, key.night, key.target, key.bandpass) not in keys
    assert_consistent(stores)


def test_media_failure_mid_series_leaves_nothing(demo_tree: Path, stores: Stores) -> None:
    stores.media = FailingMedia(stores.media, fail_at=3)
    report = ingest(stores, demo_tree, progress=False)
    assert len(report.failed) == 1
    assert any("disk on fire" in p.message for p in report.problems)
    n_series, _, n_frames = tree_totals(demo_tree)
    assert len(report.loaded) == n_series - 1
    assert count(stores.engine, "observation") == n_series - 1
    assert count(stores.engine, "frame") == report.frames < n_frames
    assert len(media_files(stores)) == report.frames
    _assert_no_trace(stores, report)
    # the failed series loads on the next run
    stores.media = stores.media.inner
    again = ingest(stores, demo_tree, progress=False)
    assert again.ok and again.loaded == report.failed
    assert_consistent(stores)


def test_points_failure_leaves_nothing(demo_tree: Path, stores: Stores) -> None:
    wrapped = FailingPoints(stores.timeseries, limit=400)
    stores.timeseries = wrapped
    report = ingest(stores, demo_tree, progress=False)
    assert report.failed and report.loaded
    assert all("went away" in p.message for p in report.problems)
    assert count(stores.engine, "observation") == len(report.loaded)
    assert len(media_files(stores)) == count(stores.engine, "frame") == report.frames
    # points of a failed series are not in the store (its id may have been reused since)
    loaded = {ref.series_id: n for ref, n in loaded_refs(stores)}
    for ref in wrapped.refs:
        expected = loaded.get(ref.series_id, 0)
        assert wrapped.inner.count(ref) == expected
    _assert_no_trace(stores, report)


def test_one_uploader_at_a_time(demo_tree: Path, stores: Stores) -> None:
    from voservice.ingest.load import IngestLocked, ingest_lock

    with ingest_lock(stores.engine), pytest.raises(IngestLocked):
        ingest(stores, demo_tree, progress=False)
    assert count(stores.engine, "observation") == 0
    assert ingest(stores, demo_tree, progress=False).ok


def test_access_changes_reach_the_public_flags(demo_tree: Path, stores: Stores,
                                               tmp_path: Path) -> None:
    """Replacing a target's observations with restricted ones hides the target."""
    import csv
    import io

    from voservice import catalog
    from voservice.access import ANONYMOUS, Principal

    tree = tmp_path / "tree"
    shutil.copytree(demo_tree, tree)
    assert ingest(stores, tree, progress=False).ok
    series = walk(tree).series
    name = series[0].key.target
    for files in (s for s in series if s.key.target == name):
        rows = list(csv.reader(io.StringIO(files.meta.read_text())))
        rows[1][rows[0].index("access.access")] = "restricted"
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows)
        files.meta.write_text(out.getvalue())
    assert ingest(stores, tree, replace=True, progress=False).ok

    def visible(who: Principal, qualified: str, use_flag: bool = True) -> list[Any]:
        desc, table = tables.table(qualified), tables.sa_table(qualified)
        with stores.engine.connect() as conn:
            return sorted(conn.execute(sa.select(table).where(
                catalog._visible_rows(desc, who, use_flag))).all())

    names = {r.target_folder for r in visible(ANONYMOUS, "skvo.observation")}
    assert name not in names
    targets = {r.target for r in visible(ANONYMOUS, "skvo.target")}
    with stores.engine.connect() as conn:
        published = conn.execute(sa.select(t("target").c.target).join(
            t("observation"), t("observation").c.target_id == t("target").c.target_id).where(
            t("observation").c.target_folder == name)).scalars().first()
    assert published not in targets
    granted = Principal("alice", frozenset({series[0].key.source}))
    for who in (ANONYMOUS, granted):
        for qualified in ("skvo.target", "skvo.photometry", "skvo.frame"):
            assert visible(who, qualified) == visible(who, qualified, False), qualified
