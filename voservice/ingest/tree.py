"""Walk an upload tree (docs: shared/spec/data-formats.md) into series.

``<base>/<source>/photometry/dtables/<yyyymm>/<target>_<yyyymmdd>/<bandpass>/``
holds the data and meta CSV of one series; the same path under ``imgs/`` (or
``media/``) holds its frames.  Problems of the layout are attached to the
series they concern, or returned on their own when no series is concerned.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

from voservice.ingest.problems import Problem

PHOTOMETRY = "photometry"
SKIPPED_DTYPES = ("spectroscopy", "spectra", "spectrum")
DATA_FOLDER = "dtables"
IMAGE_FOLDERS = ("imgs", "media")
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}

_YYYYMM = re.compile(r"^\d{6}$")
_YYYYMMDD = re.compile(r"^\d{8}$")
_FRAME_INDEX = re.compile(r"_(\d+)$")
_DATA_STEM = re.compile(r"_data(_id)?$")
_META_STEM = re.compile(r"_meta(_id)?$")


@dataclass(frozen=True, order=True)
class SeriesKey:
    """What identifies a series in the tree (and in the observation table)."""

    source: str
    night: str  # yyyymmdd
    target: str
    bandpass: str

    def __str__(self) -> str:
        return f"{self.source}/{self.target}_{self.night}/{self.bandpass}"


@dataclass
class Frame:
    """One image file of a series."""

    index: int
    path: Path
    rel: str
    content_type: str


@dataclass
class SeriesFiles:
    """The files of one series as found in the tree, and the layout's problems."""

    key: SeriesKey
    yyyymm: str
    folder: str  # <target>_<yyyymmdd>
    data: Path | None = None
    meta: Path | None = None
    frames: list[Frame] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    dir_rel: str = ""

    @property
    def night_date(self) -> dt.date:
        """The UTC date of the folder name."""
        return dt.datetime.strptime(self.key.night, "%Y%m%d").date()


@dataclass
class Tree:
    """Everything found under a base path."""

    series: list[SeriesFiles]
    problems: list[Problem]  # problems no single series owns
    notices: list[str]


def _rel(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return path.as_posix()


def _dirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def _files(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))


def _folder_date(name: str) -> str | None:
    """The yyyymmdd of a ``<target>_<yyyymmdd>`` folder, None when it is not one."""
    target, sep, date = name.rpartition("_")
    if not sep or not target or not _YYYYMMDD.match(date):
        return None
    try:
        dt.datetime.strptime(date, "%Y%m%d")
    except ValueError:
        return None
    return date


def walk(base: Path) -> Tree:
    """Find every (source, night, target, bandpass) series under ``base``."""
    base = Path(base)
    series: dict[SeriesKey, SeriesFiles] = {}
    problems: list[Problem] = []
    notices: list[str] = []
    if not base.is_dir():
        problems.append(Problem(str(base), 0, "-", "upload tree not found (not a folder)"))
        return Tree([], problems, notices)

    def stray(path: Path, what: str) -> None:
        notices.append(f"{_rel(path, base)}: {what}, ignored")

    for source_dir in _dirs(base):
        for f in _files(source_dir):
            stray(f, "file outside a dtype folder")
        for dtype_dir in _dirs(source_dir):
            if dtype_dir.name.lower() in SKIPPED_DTYPES:
                stray(dtype_dir, "spectroscopy is not supported yet")
                continue
            if dtype_dir.name != PHOTOMETRY:
                stray(dtype_dir, f"unknown data type folder (expected {PHOTOMETRY})")
                continue
            for kind_dir in _dirs(dtype_dir):
                if kind_dir.name == DATA_FOLDER:
                    _walk_kind(kind_dir, base, source_dir.name, True, series, problems)
                elif kind_dir.name in IMAGE_FOLDERS:
                    _walk_kind(kind_dir, base, source_dir.name, False, series, problems)
                else:
                    stray(kind_dir, f"unknown folder (expected {DATA_FOLDER} or imgs)")
    for files in series.values():
        if files.data is None and files.meta is None and files.frames:
            files.problems.append(
                Problem(files.dir_rel, 0, "-", "frames without a data table (no dtables folder)")
            )
        else:
            if files.data is None:
                files.problems.append(Problem(files.dir_rel, 0, "-", "data CSV file missing"))
            if files.meta is None:
                files.problems.append(Problem(files.dir_rel, 0, "-", "meta CSV file missing"))
    return Tree(sorted(series.values(), key=lambda s: s.key), problems, notices)


def _walk_kind(
    kind_dir: Path,
    base: Path,
    source: str,
    tables: bool,
    series: dict[SeriesKey, SeriesFiles],
    problems: list[Problem],
) -> None:
    for f in _files(kind_dir):
        problems.append(Problem(_rel(f, base), 0, "-", "file outside a <yyyymm> folder"))
    for month_dir in _dirs(kind_dir):
        month = month_dir.name
        if not _YYYYMM.match(month) or not 1 <= int(month[4:]) <= 12:
            problems.append(
                Problem(_rel(month_dir, base), 0, "-", "folder name is not a month <yyyymm>")
            )
            continue
        for f in _files(month_dir):
            problems.append(
                Problem(_rel(f, base), 0, "-", "file outside a <target>_<yyyymmdd> folder")
            )
        for night_dir in _dirs(month_dir):
            night = _folder_date(night_dir.name)
            if night is None:
                problems.append(Problem(
                    _rel(night_dir, base), 0, "-",
                    "folder name is not <target>_<yyyymmdd> with a valid date",
                ))
                continue
            target = night_dir.name[: -len(night) - 1]
            for f in _files(night_dir):
                problems.append(Problem(_rel(f, base), 0, "-", "file outside a bandpass folder"))
            for band_dir in _dirs(night_dir):
                key = SeriesKey(source, night, target, band_dir.name)
                files = series.get(key)
                if files is None:
                    files = series[key] = SeriesFiles(key, month, night_dir.name)
                if tables or not files.dir_rel:
                    files.dir_rel = _rel(band_dir, base)
                if month != night[:6]:
                    files.problems.append(Problem(
                        _rel(band_dir, base), 0, "-",
                        f"month folder {month} does not match the night {night}",
                    ))
                if tables:
                    _table_files(band_dir, base, files)
                else:
                    _image_files(band_dir, base, files)
                for sub in _dirs(band_dir):
                    files.problems.append(
                        Problem(_rel(sub, base), 0, "-", "unexpected folder in a bandpass folder")
                    )


def _table_files(band_dir: Path, base: Path, files: SeriesFiles) -> None:
    def problem(rel: str, message: str) -> None:
        files.problems.append(Problem(rel, 0, "-", message))

    for f in _files(band_dir):
        rel = _rel(f, base)
        if f.suffix.lower() != ".csv":
            problem(rel, "not a CSV file (expected *_data.csv or *_meta.csv)")
            continue
        kind = None
        if _DATA_STEM.search(f.stem):
            kind = "data"
        elif _META_STEM.search(f.stem):
            kind = "meta"
        if kind is None:
            problem(rel, "CSV name ends neither in _data[_id] nor _meta[_id]")
            continue
        if getattr(files, kind) is not None:
            files.problems.append(Problem(
                rel, 0, "-", f"second {kind} file in the folder "
                f"(first: {_rel(getattr(files, kind), base)})",
            ))
            continue
        setattr(files, kind, f)


def _image_files(band_dir: Path, base: Path, files: SeriesFiles) -> None:
    seen = {fr.index: fr for fr in files.frames}
    for f in _files(band_dir):
        rel = _rel(f, base)
        content_type = IMAGE_TYPES.get(f.suffix.lower())
        match = _FRAME_INDEX.search(f.stem)
        if content_type is None or match is None:
            files.problems.append(Problem(rel, 0, "-", "not a frame name <...>_<n>.png|jpg|jpeg"))
            continue
        index = int(match.group(1))
        if index in seen:
            files.problems.append(
                Problem(rel, 0, "-", f"second frame {index} (first: {seen[index].rel})")
            )
            continue
        seen[index] = Frame(index, f, rel, content_type)
        files.frames.append(seen[index])
    files.frames.sort(key=lambda fr: fr.index)
