"""Walk an upload tree (docs/uploading.md) into series.

``<base>/<source>/photometry/dtables/<yyyymm>/<target>_<yyyymmdd>/<bandpass>/``
holds the data and meta CSV of one series; the same path under ``imgs/`` (or
``media/``) holds its frames.  Problems of the layout are attached to the
series they concern, or returned on their own when no series is concerned.

Nothing outside the tree is looked into (:mod:`.safefs`): a symbolic link
whose target is outside the tree, a link that cannot be resolved and a FIFO,
device or socket are problems naming the entry; a link to a file or folder
inside the tree is followed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from voservice.ingest import safefs
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
    root: Path  # the resolved upload tree: the frame is read only from inside it

    def read(self) -> bytes:
        """The bytes of the image (:class:`~.safefs.UnsafePath` when it left the tree)."""
        return safefs.read_bytes(self.path, self.root)


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
    root: Path | None = None  # the resolved upload tree
    refused: bool = False  # its bandpass folder (tables or frames) was not looked into

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


Refuse = Callable[[Path, str], None]


def _entries(path: Path, root: Path, refuse: Refuse) -> tuple[list[Path], list[Path]]:
    """The folders and the regular files of a folder, links inside the tree followed.

    Hidden entries are skipped; links out of the tree, unresolvable links and
    special files go to ``refuse`` (path, why) and are not returned.
    """
    dirs: list[Path] = []
    files: list[Path] = []
    try:
        children = sorted(path.iterdir())
    except OSError:
        refuse(path, safefs.VANISHED)
        return dirs, files
    for child in children:
        if child.name.startswith("."):
            continue
        kind, _real, refusal = safefs.resolve(child, root)
        if kind == "dir":
            dirs.append(child)
        elif kind == "file":
            files.append(child)
        else:
            refuse(child, refusal or safefs.SPECIAL)
    return dirs, files


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
    root = safefs.real_base(base)

    def stray(path: Path, what: str) -> None:
        notices.append(f"{_rel(path, base)}: {what}, ignored")

    def refuse(path: Path, why: str) -> None:
        problems.append(Problem(_rel(path, base), 0, "-", why))

    for source_dir in _entries(base, root, refuse)[0]:
        dtype_dirs, source_files = _entries(source_dir, root, refuse)
        for f in source_files:
            stray(f, "file outside a dtype folder")
        for dtype_dir in dtype_dirs:
            if dtype_dir.name.lower() in SKIPPED_DTYPES:
                stray(dtype_dir, "spectroscopy is not supported yet")
                continue
            if dtype_dir.name != PHOTOMETRY:
                stray(dtype_dir, f"unknown data type folder (expected {PHOTOMETRY})")
                continue
            kind_dirs, dtype_files = _entries(dtype_dir, root, refuse)
            for f in dtype_files:
                stray(f, f"file outside the {DATA_FOLDER} and imgs folders")
            for kind_dir in kind_dirs:
                if kind_dir.name == DATA_FOLDER:
                    _walk_kind(kind_dir, base, root, source_dir.name, True, series, problems)
                elif kind_dir.name in IMAGE_FOLDERS:
                    _walk_kind(kind_dir, base, root, source_dir.name, False, series, problems)
                else:
                    stray(kind_dir, f"unknown folder (expected {DATA_FOLDER} or imgs)")
    for files in series.values():
        if files.refused:
            continue
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
    root: Path,
    source: str,
    tables: bool,
    series: dict[SeriesKey, SeriesFiles],
    problems: list[Problem],
) -> None:
    def refuse(path: Path, why: str) -> None:
        problems.append(Problem(_rel(path, base), 0, "-", why))

    month_dirs, kind_files = _entries(kind_dir, root, refuse)
    for f in kind_files:
        problems.append(Problem(_rel(f, base), 0, "-", "file outside a <yyyymm> folder"))
    for month_dir in month_dirs:
        month = month_dir.name
        if not _YYYYMM.match(month) or not 1 <= int(month[4:]) <= 12:
            problems.append(
                Problem(_rel(month_dir, base), 0, "-", "folder name is not a month <yyyymm>")
            )
            continue
        night_dirs, month_files = _entries(month_dir, root, refuse)
        for f in month_files:
            problems.append(
                Problem(_rel(f, base), 0, "-", "file outside a <target>_<yyyymmdd> folder")
            )
        for night_dir in night_dirs:
            night = _folder_date(night_dir.name)
            if night is None:
                problems.append(Problem(
                    _rel(night_dir, base), 0, "-",
                    "folder name is not <target>_<yyyymmdd> with a valid date",
                ))
                continue
            target = night_dir.name[: -len(night) - 1]

            def refuse_band(path: Path, why: str, night: str = night, target: str = target,
                            folder: str = night_dir.name, month: str = month) -> None:
                """A link in place of a bandpass folder: its series fails (also for frames)."""
                if why == safefs.SPECIAL:  # a FIFO, device or socket is no bandpass folder
                    refuse(path, why)
                    return
                key = SeriesKey(source, night, target, path.name)
                files = series.get(key)
                if files is None:
                    files = series[key] = SeriesFiles(key, month, folder, root=root,
                                                      dir_rel=_rel(path, base))
                files.refused = True
                files.problems.append(Problem(_rel(path, base), 0, "-", why))

            band_dirs, night_files = _entries(night_dir, root, refuse_band)
            for f in night_files:
                problems.append(Problem(_rel(f, base), 0, "-", "file outside a bandpass folder"))
            for band_dir in band_dirs:
                key = SeriesKey(source, night, target, band_dir.name)
                files = series.get(key)
                if files is None:
                    files = series[key] = SeriesFiles(key, month, night_dir.name, root=root)
                if tables or not files.dir_rel:
                    files.dir_rel = _rel(band_dir, base)
                if month != night[:6]:
                    files.problems.append(Problem(
                        _rel(band_dir, base), 0, "-",
                        f"month folder {month} does not match the night {night}",
                    ))
                bands = files.problems

                def refuse_in_band(path: Path, why: str, bands: list[Problem] = bands) -> None:
                    bands.append(Problem(_rel(path, base), 0, "-", why))

                subs, band_files = _entries(band_dir, root, refuse_in_band)
                if tables:
                    _table_files(band_files, base, files)
                else:
                    _image_files(band_files, base, root, files)
                for sub in subs:
                    files.problems.append(
                        Problem(_rel(sub, base), 0, "-", "unexpected folder in a bandpass folder")
                    )


def _table_files(band_files: list[Path], base: Path, files: SeriesFiles) -> None:
    def problem(rel: str, message: str) -> None:
        files.problems.append(Problem(rel, 0, "-", message))

    for f in band_files:
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


def _image_files(band_files: list[Path], base: Path, root: Path, files: SeriesFiles) -> None:
    seen = {fr.index: fr for fr in files.frames}
    for f in band_files:
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
        seen[index] = Frame(index, f, rel, content_type, root)
        files.frames.append(seen[index])
    files.frames.sort(key=lambda fr: fr.index)
