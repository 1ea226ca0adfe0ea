"""Plausibility checks of the uploader: implausible magnitudes and errors and duplicated
timestamps are problems of their line; a gap in a frame folder's numbering is a notice."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import test_ingest
from test_ingest import assert_consistent, count

from voservice.ingest import Stores, ingest
from voservice.ingest.tree import SeriesFiles, SeriesKey, walk

settings = test_ingest.settings  # the fixtures: each database in turn
stores = test_ingest.stores

Edit = Callable[[SeriesFiles, Path], tuple[str, int, str]]


def _set(line: int, **fields: str | None) -> Edit:
    """Set fields of one data line (1 = header; column names with ``_`` for ``.``);
    None copies the previous line's value."""
    def edit(files: SeriesFiles, base: Path) -> tuple[str, int, str]:
        lines = files.data.read_text().splitlines()
        header = lines[0].split(",")
        row = lines[line - 1].split(",")
        column = "-"
        for name, value in fields.items():
            column = "ts." + name
            j = header.index(column)
            row[j] = lines[line - 2].split(",")[j] if value is None else value
        lines[line - 1] = ",".join(row)
        files.data.write_text("\n".join(lines) + "\n")
        return files.data.relative_to(base).as_posix(), line, column
    return edit


#: name -> (edit, column the problem names, words of the message, calibration of the series)
CASES: dict[str, tuple[Edit, str, str, str]] = {
    "error-above-1-mag": (_set(4, magnitude_error="1.2"), "ts.magnitude_error",
                          "above 1 mag", "dif"),
    "error-above-1-mag-abs": (_set(9, magnitude_error="3"), "ts.magnitude_error",
                              "above 1 mag", "abs"),
    "error-larger-than-magnitude": (_set(5, magnitude="0.4", magnitude_error="0.5"),
                                    "ts.magnitude_error", "larger than the magnitude", "abs"),
    "magnitude-too-faint": (_set(6, magnitude="45.5"), "ts.magnitude",
                            "not a plausible magnitude", "abs"),
    "magnitude-too-bright": (_set(7, magnitude="-31"), "ts.magnitude",
                             "not a plausible magnitude", "dif"),
    "duplicate-timestamp": (_set(8, timestamp=None), "ts.timestamp", "duplicate timestamp",
                            "abs"),
}


def calibration(files: SeriesFiles) -> str:
    lines = files.data.read_text().splitlines()
    return lines[1].split(",")[lines[0].split(",").index("ts.flux_calibration")]


def test_implausible_points_fail_their_series_with_file_line_column(
        demo_tree: Path, tmp_path: Path, stores: Stores) -> None:
    base = tmp_path / "tree"
    shutil.copytree(demo_tree, base)
    series = walk(base).series
    pools = {c: [s for s in series if calibration(s) == c] for c in ("abs", "dif")}
    broken: dict[SeriesKey, tuple[str, str, int, str, str]] = {}
    for name, (edit, column, words, calib) in CASES.items():
        files = pools[calib].pop()
        file, line, _ = edit(files, base)
        broken[files.key] = (name, file, line, column, words)
    report = ingest(stores, base, progress=False)
    assert set(report.failed) == set(broken)
    lines = [str(p) for p in report.problems]
    for name, file, line, column, words in broken.values():
        wanted = f"{file}:{line}: {column}: "
        assert any(p.startswith(wanted) and words in p for p in lines), (name, wanted, lines)
    assert len(report.loaded) == len(series) - len(broken)
    assert count(stores.engine, "observation") == len(report.loaded)
    assert_consistent(stores)


def test_differential_magnitudes_may_be_smaller_than_their_errors(demo_tree: Path,
                                                                  tmp_path: Path) -> None:
    """A dif magnitude near 0 (or negative) with a fine error is a good point."""
    base = tmp_path / "tree"
    shutil.copytree(demo_tree, base)
    files = next(s for s in walk(base).series if calibration(s) == "dif")
    _set(3, magnitude="0.02", magnitude_error="0.05")(files, base)
    _set(4, magnitude="-0.3", magnitude_error="0.04")(files, base)
    report = ingest(None, base, dry_run=True, progress=False)
    assert files.key in report.loaded and not report.problems, report.lines()
    # the same on an absolute scale is refused
    lines = files.data.read_text().replace(",dif,", ",abs,")
    files.data.write_text(lines)
    report = ingest(None, base, dry_run=True, progress=False)
    assert files.key in report.failed
    rel = files.data.relative_to(base).as_posix()
    # line 4's -0.3 is brighter than its error is large (|m| > error): fine on any scale
    assert [str(p) for p in report.problems] == [
        f"{rel}:3: ts.magnitude_error: error 0.05 is larger than the magnitude 0.02 itself"]


def test_many_implausible_lines_are_summed_up(demo_tree: Path, tmp_path: Path) -> None:
    base = tmp_path / "tree"
    shutil.copytree(demo_tree, base)
    files = max(walk(base).series, key=lambda s: s.data.stat().st_size)
    for line in range(2, 30):
        _set(line, magnitude_error="2.5")(files, base)
    report = ingest(None, base, dry_run=True, progress=False)
    mine = [p for p in report.problems if p.column == "ts.magnitude_error"]
    assert 2 <= len(mine) <= 12 and "more lines like this" in mine[-1].message


def _frame_notices(report: object) -> list[str]:
    return [n for n in report.notices if "gap in the frame numbering" in n]  # type: ignore


def test_sample_frames_have_no_gaps(demo_tree: Path) -> None:
    """Frames of every k-th point are a regular numbering, not a gap."""
    report = ingest(None, demo_tree, dry_run=True, progress=False)
    assert report.ok and _frame_notices(report) == []


@pytest.mark.parametrize("which", ["middle", "two"])
def test_gap_in_frame_numbering_is_a_notice_and_the_series_loads(
        demo_tree: Path, tmp_path: Path, stores: Stores, which: str) -> None:
    base = tmp_path / "tree"
    shutil.copytree(demo_tree, base)
    files = max(walk(base).series, key=lambda s: len(s.frames))
    assert len(files.frames) >= 5
    gone = [files.frames[2]] if which == "middle" else [files.frames[1], files.frames[3]]
    for frame in gone:
        frame.path.unlink()
    report = ingest(stores, base, progress=False)
    assert report.ok, report.lines()
    notices = _frame_notices(report)
    folder = files.frames[0].rel.rpartition("/")[0]
    assert len(notices) == 1 and notices[0].startswith(f"{folder}:0: -: "), notices
    missing = ", ".join(str(f.index) for f in gone)
    assert f" {missing} missing" in notices[0], notices[0]
    assert f"notice: {notices[0]}" in report.lines()
    assert count(stores.engine, "frame") == sum(len(s.frames) for s in walk(base).series)
    assert_consistent(stores)


def test_gap_notice_with_contiguous_frames(demo_tree: Path, tmp_path: Path) -> None:
    """Frames 0, 1, 2, 4, 5: frame 3 is missing."""
    base = tmp_path / "tree"
    shutil.copytree(demo_tree, base)
    files = max(walk(base).series, key=lambda s: len(s.frames))
    folder, png = files.frames[0].path.parent, files.frames[0].path.read_bytes()
    for frame in files.frames:
        frame.path.unlink()
    for index in (0, 1, 2, 4, 5):
        (folder / f"{files.folder}_{index}.png").write_bytes(png)
    notices = _frame_notices(ingest(None, base, dry_run=True, progress=False))
    assert len(notices) == 1 and "frame 3 missing" in notices[0], notices
