"""`skvo ingest --replace` keeps the observation's identity, and a failed replacement
leaves the loaded series as it was (SQLite and MariaDB)."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
import test_ingest
from conftest import ADMIN, LiveServer, deploy, mariadb_database
from test_ingest import FailingMedia, assert_consistent, t

from voservice.ingest import Stores, ingest
from voservice.ingest.tree import SeriesFiles, walk
from voservice.stores.timeseries.base import Points

settings = test_ingest.settings  # the fixtures: each database in turn
stores = test_ingest.stores


def _night(files: SeriesFiles) -> str:
    n = files.key.night
    return f"{n[:4]}-{n[4:6]}-{n[6:]}"


def identity(engine: sa.Engine, files: SeriesFiles) -> dict[str, Any]:
    """What identifies a loaded series: ids, uuid, frame ids by index."""
    obs, phot, frame = t("observation"), t("photometry"), t("frame")
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(obs.c.observation_id, obs.c.observation_uuid, phot.c.photometry_id,
                      phot.c.n_points, phot.c.mag_max, obs.c.data_md5)
            .join(phot, phot.c.observation_id == obs.c.observation_id)
            .where(obs.c.source == files.key.source, obs.c.night == _night(files),
                   obs.c.target_folder == files.key.target,
                   obs.c.bandpass_folder == files.key.bandpass)).one()
        frames = dict(conn.execute(sa.select(frame.c.frame_index, frame.c.frame_id).where(
            frame.c.photometry_id == row.photometry_id)).all())
    return {**row._asdict(), "frames": frames}


def points_of(stores: Stores, engine: sa.Engine, files: SeriesFiles) -> Points:
    """The points the time-series store holds for a series."""
    from test_ingest import loaded_refs

    uuid = identity(engine, files)["observation_uuid"]
    ref = next(r for r, _ in loaded_refs(stores) if r.observation_uuid == uuid)
    inner = getattr(stores.timeseries, "inner", stores.timeseries)
    return Points.concat(list(inner.read(ref)))


def set_magnitude(files: SeriesFiles, line: int, value: str) -> None:
    """Write ``value`` as the magnitude of one data line (1 = header)."""
    lines = files.data.read_text().splitlines()
    j = lines[0].split(",").index("ts.magnitude")
    fields = lines[line - 1].split(",")
    fields[j] = value
    lines[line - 1] = ",".join(fields)
    files.data.write_text("\n".join(lines) + "\n")


def framed_series(tree: Path, access: str | None = None) -> SeriesFiles:
    """A series of the tree with at least two frames (of one access right)."""
    for files in walk(tree).series:
        if len(files.frames) < 2:
            continue
        rows = list(csv.reader(io.StringIO(files.meta.read_text())))
        if access is None or rows[1][rows[0].index("access.access")] == access:
            return files
    raise AssertionError("the sample tree has series with frames")


@pytest.fixture
def loaded(demo_tree: Path, stores: Stores, tmp_path: Path) -> tuple[Path, SeriesFiles]:
    tree = tmp_path / "tree"
    shutil.copytree(demo_tree, tree)
    assert ingest(stores, tree, progress=False).ok
    return tree, framed_series(tree)


def test_replace_keeps_uuid_ids_and_frame_ids(loaded: tuple[Path, SeriesFiles],
                                              stores: Stores) -> None:
    tree, files = loaded
    before = identity(stores.engine, files)
    n_obs = test_ingest.count(stores.engine, "observation")
    set_magnitude(files, 2, "19.875")
    # one frame less, one frame more: the kept indexes keep their frame ids
    dropped = files.frames[-1]
    dropped.path.unlink()
    report = ingest(stores, tree, replace=True, progress=False)
    assert report.ok and len(report.replaced) == 1, report.lines()
    after = identity(stores.engine, files)
    for key in ("observation_id", "observation_uuid", "photometry_id"):
        assert after[key] == before[key], key
    assert after["data_md5"] != before["data_md5"]
    assert after["mag_max"] == pytest.approx(19.875)
    kept = {i: f for i, f in before["frames"].items() if i != dropped.index}
    assert after["frames"] == kept
    assert 19.875 in points_of(stores, stores.engine, files).magnitude.tolist()
    assert test_ingest.count(stores.engine, "observation") == n_obs
    assert_consistent(stores)  # old frames gone from the media store, the others there
    assert ingest(stores, tree, progress=False).skipped


class FailingOncePoints:
    """A store without transactions (as OpenTSDB): its first put fails half-way."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.failed = inner, False

    def put(self, ref: Any, points: Any) -> None:
        if not self.failed:
            self.failed = True
            self.inner.put(ref, points[: len(points) // 2])
            raise ConnectionError("time-series store went away")
        self.inner.put(ref, points)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class FailingTransactionalPoints:
    """The SQL store, failing inside the uploader's transaction (after the old rows went)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def put(self, ref: Any, points: Any, conn: Any = None) -> None:
        if conn is not None:
            self.inner.put(ref, points, conn=conn)  # the old points are replaced ...
        raise ConnectionError("time-series store went away")  # ... then it fails

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.mark.parametrize("failure", ["media", "points-first", "in-transaction"])
def test_failed_replace_leaves_the_old_series(loaded: tuple[Path, SeriesFiles],
                                              stores: Stores, failure: str) -> None:
    tree, files = loaded
    before = identity(stores.engine, files)
    old_points = points_of(stores, stores.engine, files)
    with stores.engine.connect() as conn:
        old_refs = sorted(conn.execute(sa.select(t("frame").c.media_ref)).scalars())
    set_magnitude(files, 2, "19.875")
    real_media, real_points = stores.media, stores.timeseries
    if failure == "media":
        stores.media = FailingMedia(real_media, fail_at=2)
    elif failure == "points-first":  # a store without transactions (OpenTSDB's way)
        stores.timeseries = FailingOncePoints(real_points)
    else:
        stores.timeseries = FailingTransactionalPoints(real_points)
    report = ingest(stores, tree, replace=True, progress=False)
    stores.media, stores.timeseries = real_media, real_points
    assert report.failed == [files.key] and not report.replaced
    assert any("nothing kept" in p.message for p in report.problems), report.lines()
    assert identity(stores.engine, files) == before
    kept = points_of(stores, stores.engine, files)
    assert kept.magnitude.tolist() == old_points.magnitude.tolist()
    assert kept.time_us.tolist() == old_points.time_us.tolist()
    with stores.engine.connect() as conn:
        assert sorted(conn.execute(sa.select(t("frame").c.media_ref)).scalars()) == old_refs
    assert_consistent(stores)
    # the next run replaces it, under the same identity
    again = ingest(stores, tree, replace=True, progress=False)
    assert again.replaced == [files.key] and again.ok
    now = identity(stores.engine, files)
    assert (now["observation_uuid"], now["frames"]) == (before["observation_uuid"],
                                                         before["frames"])
    assert now["mag_max"] == pytest.approx(19.875)


# --------------------------------------------------------------------------
# Over HTTP: TAP, the light curve and the frames of a replaced series


def tap_rows(url: str, query: str) -> list[tuple]:
    from astropy.io.votable import parse

    response = requests.post(f"{url}/tap/sync", data={"REQUEST": "doQuery", "LANG": "ADQL",
                                                       "QUERY": query}, auth=ADMIN, timeout=60)
    assert response.status_code == 200, response.text[:500]
    table = parse(io.BytesIO(response.content)).get_first_table().to_table()
    return [tuple(str(v) for v in row) for row in table]


def frame_urls(url: str, did: str) -> list[str]:
    from astropy.io.votable import parse

    body = requests.get(f"{url}/datalink", params={"ID": did}, auth=ADMIN, timeout=30).content
    table = parse(io.BytesIO(body)).get_first_table().to_table()
    return sorted(str(r["access_url"]) for r in table if str(r["semantics"]) == "#auxiliary"
                  and str(r["local_semantics"]) == "frame")


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def test_replaced_series_keeps_its_did_and_serves_the_new_data(
        demo_tree: Path, tmp_path: Path, kind: str) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(demo_tree, tree)
    url = ("sqlite:///skvo.sqlite" if kind == "sqlite"
           else mariadb_database("skvo_replace_live"))
    dep = deploy(tmp_path / "dep", tree, url)
    server = LiveServer(dep)
    server.start()
    try:
        files = framed_series(tree, "open")
        engine = sa.create_engine(dep.settings().metadata_url)
        uuid = identity(engine, files)["observation_uuid"]
        engine.dispose()
        query = (f"SELECT obs_id, obs_publisher_did, access_url FROM ivoa.obscore "
                 f"WHERE obs_id = '{uuid}'")
        before = tap_rows(server.url, query)
        assert len(before) == 1
        did = before[0][1]
        frames = frame_urls(server.url, did)
        assert frames
        frame_bytes = [requests.get(f, timeout=30).content for f in frames]
        lc = f"{server.url}/lightcurve/{uuid}/{files.key.bandpass}"
        old_csv = requests.get(lc, params={"RESPONSEFORMAT": "csv"}, timeout=30).text
        assert "19.875" not in old_csv
        n_rows = tap_rows(server.url, "SELECT COUNT(*) FROM ivoa.obscore")

        set_magnitude(files, 2, "19.875")
        result = dep.skvo("ingest", str(tree), "--replace", check=False)
        assert result.returncode == 0, result.stderr[-2000:]
        assert "replaced 1" in result.stderr

        assert tap_rows(server.url, query) == before  # same uuid, DID and DataLink URL
        assert tap_rows(server.url, "SELECT COUNT(*) FROM ivoa.obscore") == n_rows
        new_csv = requests.get(lc, params={"RESPONSEFORMAT": "csv"}, timeout=30)
        assert new_csv.status_code == 200
        assert "19.875" in new_csv.text
        assert len(new_csv.text.splitlines()) == len(old_csv.splitlines())
        assert frame_urls(server.url, did) == frames  # the frames keep their URLs
        assert [requests.get(f, timeout=30).content for f in frames] == frame_bytes
    finally:
        server.stop()
