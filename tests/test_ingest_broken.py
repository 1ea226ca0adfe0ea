"""A sample tree with many kinds of broken files: good series load, bad ones are all listed."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
import test_ingest
from test_ingest import assert_consistent, count, media_files, t

from voservice.ingest import Stores, ingest
from voservice.ingest.tree import SeriesFiles, SeriesKey, walk

settings = test_ingest.settings  # the fixtures: each database in turn
stores = test_ingest.stores


def _rel(path: Path, base: Path) -> str:
    return path.relative_to(base).as_posix()


def _edit_meta(column: str, value: str) -> Callable[[SeriesFiles, Path], tuple[str, int, str]]:
    def edit(files: SeriesFiles, base: Path) -> tuple[str, int, str]:
        import csv
        import io

        rows = list(csv.reader(io.StringIO(files.meta.read_text())))
        rows[1][rows[0].index(column)] = value
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows)
        files.meta.write_text(out.getvalue())
        return _rel(files.meta, base), 2, column
    return edit


def _edit_data(line: int, column: str, value: str | None
               ) -> Callable[[SeriesFiles, Path], tuple[str, int, str]]:
    """Set one field of a data line (1 = header); value None copies the previous line's."""
    def edit(files: SeriesFiles, base: Path) -> tuple[str, int, str]:
        lines = files.data.read_text().splitlines()
        header = lines[0].split(",")
        fields = lines[line - 1].split(",")
        j = header.index(column)
        fields[j] = lines[line - 2].split(",")[j] if value is None else value
        lines[line - 1] = ",".join(fields)
        files.data.write_text("\n".join(lines) + "\n")
        return _rel(files.data, base), line, column
    return edit


def _drop_meta_column(files: SeriesFiles, base: Path) -> tuple[str, int, str]:
    import csv
    import io

    rows = list(csv.reader(io.StringIO(files.meta.read_text())))
    j = rows[0].index("organisation.organisation_did")
    rows = [r[:j] + r[j + 1:] for r in rows]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    files.meta.write_text(out.getvalue())
    return _rel(files.meta, base), 1, "organisation.organisation_did"


def _two_meta_lines(files: SeriesFiles, base: Path) -> tuple[str, int, str]:
    text = files.meta.read_text()
    files.meta.write_text(text + text.splitlines()[1] + "\n")
    return _rel(files.meta, base), 3, "-"


def _empty_meta(files: SeriesFiles, base: Path) -> tuple[str, int, str]:
    files.meta.write_text("")
    return _rel(files.meta, base), 0, "-"


def _header_only_data(files: SeriesFiles, base: Path) -> tuple[str, int, str]:
    files.data.write_text(files.data.read_text().splitlines()[0] + "\n")
    return _rel(files.data, base), 2, "-"


def _short_line(files: SeriesFiles, base: Path) -> tuple[str, int, str]:
    lines = files.data.read_text().splitlines()
    lines[7] = lines[7].rsplit(",", 1)[0]
    files.data.write_text("\n".join(lines) + "\n")
    return _rel(files.data, base), 8, "-"


def _wrong_month(files: SeriesFiles, base: Path) -> tuple[str, int, str]:
    band_dir = files.data.parent
    night_dir = band_dir.parent
    month = "209901"
    target = night_dir.parent.parent / month / night_dir.name / band_dir.name
    target.parent.mkdir(parents=True)
    band_dir.rename(target)
    return _rel(target, base), 0, "-"


def _orphan_frame(files: SeriesFiles, base: Path) -> tuple[str, int, str]:
    src = files.frames[0].path
    dst = src.with_name(f"{files.folder}_99999.png")
    shutil.copy(src, dst)
    return _rel(dst, base), 0, "-"


def _not_png(files: SeriesFiles, base: Path) -> tuple[str, int, str]:
    files.frames[-1].path.write_bytes(b"GIF89a not really")
    return files.frames[-1].rel, 0, "-"


def _missing_meta(files: SeriesFiles, base: Path) -> tuple[str, int, str]:
    files.meta.unlink()
    return _rel(files.data.parent, base), 0, "-"


def _badly_named_data(files: SeriesFiles, base: Path) -> tuple[str, int, str]:
    dst = files.data.with_name("observations.csv")
    files.data.rename(dst)
    return _rel(dst, base), 0, "-"


#: name -> (breakage, words expected in the message, needs frames)
BREAKAGES: dict[str, tuple[Callable[[SeriesFiles, Path], tuple[str, int, str]], str, bool]] = {
    "ra": (_edit_meta("target.right_ascension", "360.5"), "[0, 360)", False),
    "dec": (_edit_meta("target.declination", "-91"), "[-90, 90]", False),
    "ra-text": (_edit_meta("target.right_ascension", "12h30m"), "not a number", False),
    "access": (_edit_meta("access.access", "public"), "not one of", False),
    "band-type": (_edit_meta("bandpass.spectral_band_type", "visible"), "not one of", False),
    "band-uid": (_edit_meta("bandpass.bandpass_uid", "johnson.q"), "bandpass folder", False),
    "empty-required": (_edit_meta("facility.facility_uid", ""), "empty", False),
    "did": (_edit_meta("organisation.organisation_did", "upjs"), "URI", False),
    "meta-column": (_drop_meta_column, "missing", False),
    "meta-lines": (_two_meta_lines, "exactly one data line", False),
    "meta-empty": (_empty_meta, "empty", False),
    "mag-text": (_edit_data(5, "ts.magnitude", "abc"), "not a number", False),
    "mag-nan": (_edit_data(4, "ts.magnitude", "nan"), "finite", False),
    "exp-inf": (_edit_data(9, "ts.exposure", "inf"), "finite", False),
    "err-negative": (_edit_data(7, "ts.magnitude_error", "-0.1"), ">= 0", False),
    "calibration": (_edit_data(3, "ts.flux_calibration", "absolute"), "not one of", False),
    "refpos": (_edit_data(6, "ts.timeframe_reference_position", "heliocentre"), "not one of",
               False),
    "level": (_edit_data(10, "ts.flux_calibration_level", "2.5"), "not an integer", False),
    "time-far": (_edit_data(6, "ts.timestamp", "2016-01-01 00:00:00"),
                 "does not fit the folder's date", False),
    "time-bad": (_edit_data(11, "ts.timestamp", "2018-02-30 25:00:00"), "timestamp", False),
    "time-dup": (_edit_data(3, "ts.timestamp", None), "duplicate", False),
    "data-empty": (_header_only_data, "no data lines", False),
    "fields": (_short_line, "fields", False),
    "month": (_wrong_month, "does not match", False),
    "orphan-frame": (_orphan_frame, "no data row", True),
    "not-png": (_not_png, "not a PNG", True),
    "no-meta": (_missing_meta, "meta CSV file missing", False),
    "data-name": (_badly_named_data, "_data", False),
}


@pytest.fixture
def broken_tree(demo_tree: Path, tmp_path: Path
                ) -> tuple[Path, dict[SeriesKey, tuple[str, str, int, str, str]]]:
    """A copy of the sample tree with one breakage per series: key -> expectation."""
    base = tmp_path / "broken"
    shutil.copytree(demo_tree, base)
    series = walk(base).series
    plain = [s for s in series if not s.frames]
    framed = [s for s in series if len(s.frames) >= 2]
    broken: dict[SeriesKey, tuple[str, str, int, str, str]] = {}
    for name, (breakage, words, needs_frames) in BREAKAGES.items():
        files = (framed if needs_frames else plain).pop()
        file, line, column = breakage(files, base)
        broken[files.key] = (name, file, line, column, words)
    assert len(plain) + len(framed) > 3  # some good series are left
    return base, broken


def test_broken_tree(broken_tree: tuple[Path, dict], stores: Stores) -> None:
    base, broken = broken_tree
    n_series = len(walk(base).series)
    report = ingest(stores, base, progress=False)
    assert not report.ok
    assert set(report.failed) == set(broken)
    assert len(report.loaded) == n_series - len(broken)
    lines = [str(p) for p in report.problems]
    for name, file, line, column, words in broken.values():
        wanted = f"{file}:{line}: {column}: "
        assert any(p.startswith(wanted) and words in p for p in lines), (name, wanted, lines)
    # nothing of the bad series anywhere
    with stores.engine.connect() as conn:
        keys = {(r.source, r.night.replace("-", ""), r.target_folder, r.bandpass_folder)
                for r in conn.execute(sa.select(t("observation")))}
    assert keys.isdisjoint({(k.source, k.night, k.target, k.bandpass) for k in broken})
    assert count(stores.engine, "observation") == len(report.loaded)
    assert count(stores.engine, "frame") == report.frames == len(media_files(stores))
    assert_consistent(stores)


def test_dry_run_lists_the_same_problems(broken_tree: tuple[Path, dict]) -> None:
    base, broken = broken_tree
    report = ingest(None, base, dry_run=True, progress=False)
    assert set(report.failed) == set(broken)
    assert all(str(p).count(":") >= 3 for p in report.problems)


def test_many_bad_lines_are_summed_up(demo_tree: Path, tmp_path: Path) -> None:
    base = tmp_path / "tree"
    shutil.copytree(demo_tree, base)
    files = max(walk(base).series, key=lambda s: s.data.stat().st_size)
    lines = files.data.read_text().splitlines()
    lines[1:] = [line.replace(",abs,", ",absolute,").replace(",dif,", ",differential,")
                 for line in lines[1:]]
    files.data.write_text("\n".join(lines) + "\n")
    report = ingest(None, base, dry_run=True, progress=False)
    mine = [p for p in report.problems if p.column == "ts.flux_calibration"]
    assert 2 <= len(mine) <= 12
    assert "more lines like this" in mine[-1].message
