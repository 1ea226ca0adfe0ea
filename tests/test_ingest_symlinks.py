"""The uploader reads nothing outside its tree: links out, loops and FIFOs are problems.

docs/uploading.md, "Symbolic links and special files": a link whose target is
outside the tree, a link that cannot be resolved and a FIFO, device or socket
are problem lines naming the entry (never its target or content); a link to a
file or folder inside the tree is followed.  The rest of the tree loads.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_ingest import assert_consistent, count, media_files, t, write_settings

from voservice.ingest import IngestReport, Stores, ingest, open_stores, safefs
from voservice.ingest.tree import SeriesFiles, walk

SECRET = "root:x:0:0:TOP-SECRET-LINE:/root:/bin/bash"
#: a secret that would pass the uploader's PNG check if it were read
SECRET_PNG = b"\x89PNG\r\n\x1a\nTOP-SECRET-IMAGE-BYTES"


@pytest.fixture
def tree(demo_tree: Path, tmp_path: Path) -> Path:
    """A private copy of the sample tree."""
    base = tmp_path / "tree"
    shutil.copytree(demo_tree, base)
    return base


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the tree with secret files in it."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "passwd").write_text(SECRET + "\n")
    (folder / "secret.png").write_bytes(SECRET_PNG)
    return folder


@pytest.fixture
def stores(tmp_path: Path) -> Stores:
    settings = write_settings(tmp_path, f"sqlite:///{tmp_path / 'skvo.sqlite'}")
    opened = open_stores(settings)
    yield opened
    opened.close()


def _framed(base: Path) -> SeriesFiles:
    return next(s for s in walk(base).series if len(s.frames) >= 2)


def _plain(base: Path) -> SeriesFiles:
    return next(s for s in walk(base).series if not s.frames)


def _link(path: Path, target: Path) -> None:
    """Replace ``path`` (file or folder) by a symbolic link to ``target``."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
    path.symlink_to(target)


def _text(report: IngestReport) -> str:
    return "\n".join(report.lines() + [report.summary()] + report.notices)


def _database_text(stores: Stores) -> str:
    """Every value of every table row the uploader writes, as one string."""
    out = []
    with stores.engine.connect() as conn:
        for name in ("observation", "photometry", "frame", "target", "instrument",
                     "facility", "organisation", "dataid", "bandpass"):
            out += [repr(tuple(row)) for row in conn.execute(sa.select(t(name)))]
    return "\n".join(out)


def _assert_rest_loaded(report: IngestReport, base: Path, n_bad: int) -> None:
    n_series = len(walk(base).series)
    assert len(report.loaded) == n_series - n_bad, report.lines()


def _assert_secret_nowhere(report: IngestReport, stores: Stores, outside: Path) -> None:
    text = _text(report)
    assert "TOP-SECRET" not in text
    assert str(outside) not in text  # a link's target is never named
    assert "TOP-SECRET" not in _database_text(stores)
    for ref in media_files(stores):
        data, _ = stores.media.get(ref)
        assert b"TOP-SECRET" not in data


def test_frame_linked_outside_is_refused(tree: Path, outside: Path, stores: Stores) -> None:
    files = _framed(tree)
    frame = files.frames[1]
    _link(frame.path, outside / "secret.png")
    report = ingest(stores, tree, progress=False)
    assert f"{frame.rel}:0: -: {safefs.OUTSIDE}" in report.lines()
    assert files.key in report.failed
    _assert_rest_loaded(report, tree, 1)
    _assert_secret_nowhere(report, stores, outside)
    assert count(stores.engine, "frame") == report.frames == len(media_files(stores))
    assert_consistent(stores)


def test_data_csv_linked_to_a_secret_is_not_read(tree: Path, outside: Path,
                                                 stores: Stores) -> None:
    files = _plain(tree)
    rel = files.data.relative_to(tree).as_posix()
    _link(files.data, outside / "passwd")
    report = ingest(stores, tree, progress=False)
    assert f"{rel}:0: -: {safefs.OUTSIDE}" in report.lines()
    assert files.key in report.failed
    _assert_rest_loaded(report, tree, 1)
    _assert_secret_nowhere(report, stores, outside)
    dry = ingest(None, tree, dry_run=True, progress=False)
    assert "TOP-SECRET" not in _text(dry)


def test_meta_csv_linked_to_a_secret_is_not_read(tree: Path, outside: Path,
                                                 stores: Stores) -> None:
    files = _plain(tree)
    rel = files.meta.relative_to(tree).as_posix()
    _link(files.meta, outside / "passwd")
    report = ingest(stores, tree, progress=False)
    assert f"{rel}:0: -: {safefs.OUTSIDE}" in report.lines()
    _assert_rest_loaded(report, tree, 1)
    _assert_secret_nowhere(report, stores, outside)


def _level(files: SeriesFiles, base: Path, level: str) -> Path:
    """The folder of a series' tables (or frames, for ``imgs*``) at a tree level."""
    band = files.data.parent
    frames = files.frames[0].path.parent
    return {
        "source": base / files.key.source,
        "photometry": band.parents[3],
        "dtables": band.parents[2],
        "month": band.parents[1],
        "night": band.parent,
        "band": band,
        "imgs-band": frames,
    }[level]


@pytest.mark.parametrize("level", ["source", "photometry", "dtables", "month", "night", "band",
                                   "imgs-band"])
def test_folder_linked_outside_is_refused(tree: Path, tmp_path: Path, stores: Stores,
                                          level: str) -> None:
    files = _framed(tree)
    folder = _level(files, tree, level)
    rel = folder.relative_to(tree).as_posix()
    copy = tmp_path / "elsewhere" / "TOP-SECRET-FOLDER"
    shutil.copytree(folder, copy)
    n_before = len(walk(tree).series)
    under = [s.key for s in walk(tree).series
             if (s.data and s.data.is_relative_to(folder))
             or any(f.path.is_relative_to(folder) for f in s.frames)]
    _link(folder, copy)
    report = ingest(stores, tree, progress=False)
    assert f"{rel}:0: -: {safefs.OUTSIDE}" in report.lines()
    assert not report.ok
    with stores.engine.connect() as conn:
        loaded = {(r.source, r.night.replace("-", ""), r.target_folder, r.bandpass_folder)
                  for r in conn.execute(sa.select(t("observation")))}
    for key in under:  # nothing under the link was loaded
        assert (key.source, key.night, key.target, key.bandpass) not in loaded
    assert files.key in report.failed or files.key not in {*report.loaded, *report.skipped}
    assert len(report.loaded) == n_before - len(under)
    assert "TOP-SECRET" not in _text(report) and str(copy) not in _text(report)
    assert_consistent(stores)


def test_link_loops_are_refused(tree: Path, stores: Stores) -> None:
    files = _plain(tree)
    night = files.data.parent.parent
    (night / "loop.a").symlink_to(night / "loop.b")
    (night / "loop.b").symlink_to(night / "loop.a")
    (night / "self").symlink_to(night / "self")
    band = files.data.parent
    rel = band.relative_to(tree).as_posix()
    looped = files.data.with_name(f"{files.folder}_data.csv")
    files.data.unlink()
    looped.symlink_to(looped)
    report = ingest(stores, tree, progress=False)
    lines = report.lines()
    for name in ("loop.a", "loop.b", "self"):
        assert f"{night.relative_to(tree).as_posix()}/{name}:0: -: {safefs.UNRESOLVED}" in lines
    assert f"{rel}/{looped.name}:0: -: {safefs.UNRESOLVED}" in lines
    assert files.key in report.failed
    # links in place of bandpass folders are refused series of their own
    assert {"loop.a", "loop.b", "self"} <= {k.bandpass for k in report.failed}
    _assert_rest_loaded(report, tree, 4)
    assert_consistent(stores)


def test_fifo_is_refused_without_hanging(tree: Path, stores: Stores) -> None:
    plain, framed = _plain(tree), _framed(tree)
    data_rel = plain.data.relative_to(tree).as_posix()
    plain.data.unlink()
    os.mkfifo(plain.data)
    frame = framed.frames[0]
    frame.path.unlink()
    os.mkfifo(frame.path)
    source_fifo = tree / plain.key.source / "photometry" / "pipe"
    os.mkfifo(source_fifo)
    report = ingest(stores, tree, progress=False)
    lines = report.lines()
    assert f"{data_rel}:0: -: {safefs.SPECIAL}" in lines
    assert f"{frame.rel}:0: -: {safefs.SPECIAL}" in lines
    assert f"{source_fifo.relative_to(tree).as_posix()}:0: -: {safefs.SPECIAL}" in lines
    assert {plain.key, framed.key} <= set(report.failed)
    _assert_rest_loaded(report, tree, 2)
    assert_consistent(stores)


def test_links_inside_the_tree_are_followed(tree: Path, stores: Stores) -> None:
    plain, framed = _plain(tree), _framed(tree)
    kept = plain.data.parent.parent / ".kept_data.csv"  # hidden: no series of its own
    plain.data.rename(kept)
    plain.data.symlink_to(Path("..") / kept.name)  # relative link, inside the tree
    first, second = framed.frames[0], framed.frames[1]
    second.path.unlink()
    second.path.symlink_to(first.path)  # the same image twice
    report = ingest(stores, tree, progress=False)
    assert report.ok, report.lines()
    assert {plain.key, framed.key} <= set(report.loaded)
    assert len(report.loaded) == len(walk(tree).series)
    assert_consistent(stores)


def test_tree_given_through_a_link_loads(tree: Path, tmp_path: Path, stores: Stores) -> None:
    via = tmp_path / "via"
    via.symlink_to(tree)
    report = ingest(stores, via, progress=False)
    assert report.ok, report.lines()
    assert len(report.loaded) == len(walk(tree).series)


# ---------------------------------------------------------------- safefs itself


def test_read_refuses_a_file_swapped_for_a_link(tree: Path, outside: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A file replaced by a link after it was checked is still not read (O_NOFOLLOW)."""
    files = _plain(tree)
    root = safefs.real_base(tree)
    checked = safefs.resolve(files.data, root)
    assert checked[0] == "file"
    _link(files.data, outside / "passwd")
    monkeypatch.setattr(safefs, "resolve", lambda path, root: checked)  # the stale check
    with pytest.raises(safefs.UnsafePath):
        safefs.read_bytes(files.data, root)


def test_read_refuses_a_folder_swapped_for_a_link(tree: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder above the file replaced by a link after the check: the open file is outside."""
    files = _plain(tree)
    root = safefs.real_base(tree)
    checked = safefs.resolve(files.data, root)
    band = files.data.parent
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(band, elsewhere)
    (elsewhere / files.data.name).write_text(SECRET + "\n")
    _link(band, elsewhere)
    monkeypatch.setattr(safefs, "resolve", lambda path, root: checked)
    with pytest.raises(safefs.UnsafePath, match="outside"):
        safefs.read_bytes(files.data, root)
