"""The uploader: validate an upload tree and load its series into the stores.

``ingest(stores, path)`` walks the tree (:mod:`.tree`), reads and validates
each series' files (:mod:`.csvfiles`) and loads every good series atomically
(:mod:`.load`); it returns an :class:`IngestReport` listing every problem as
``file:line: column: what is wrong``.  ``run_ingest(settings, path)`` is the
``skvo ingest`` command: it opens the stores, prints a progress bar and the
report, and returns the exit code.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np
import sqlalchemy as sa

from voservice.config import Settings
from voservice.ingest import safefs
from voservice.ingest.csvfiles import MICROSECONDS, TimeResolution, read_data, read_meta
from voservice.ingest.load import (
    CommitUnknown,
    Existing,
    IngestLocked,
    Loader,
    LockLost,
    Prepared,
    UndoError,
    database_message,
    ingest_lock,
    is_disconnect,
)
from voservice.ingest.problems import Problem, Problems
from voservice.ingest.stores import Stores, open_stores
from voservice.ingest.tree import SeriesFiles, SeriesKey, walk

__all__ = ["IngestReport", "Stores", "ingest", "open_stores", "prepare", "run_ingest"]

_MAGIC = {"image/png": (b"\x89PNG\r\n\x1a\n",), "image/jpeg": (b"\xff\xd8\xff",)}
#: series named one by one when a run stops early (the rest are counted)
_LIST_AT_MOST = 20


@dataclass
class IngestReport:
    """The outcome of one ingest run."""

    path: Path
    dry_run: bool = False
    loaded: list[SeriesKey] = field(default_factory=list)  # (dry run: would be loaded)
    replaced: list[SeriesKey] = field(default_factory=list)  # loaded over a changed series
    skipped: list[SeriesKey] = field(default_factory=list)  # already loaded, unchanged
    changed: list[SeriesKey] = field(default_factory=list)  # files differ from the loaded ones
    failed: list[SeriesKey] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    not_attempted: list[SeriesKey] = field(default_factory=list)  # after the database went
    lost: str | None = None  # what happened to the database connection
    stopped: bool = False  # the run stopped early because of it
    points: int = 0
    frames: int = 0
    seconds: float = 0.0
    parse_seconds: float = 0.0
    store_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when every series loaded or was already there."""
        return not (self.failed or self.changed or self.problems or self.lost)

    def lines(self) -> list[str]:
        """Notices, problems and the changed series, one per line."""
        out = [f"notice: {n}" for n in self.notices]
        out += [str(p) for p in sorted(self.problems)]
        out += [
            f"{key}: changed since it was loaded (its meta or data file differs); not loaded, "
            "run `skvo ingest --replace` to load the new files in place of the old series"
            for key in self.changed
        ]
        return out + self.stop_lines()

    def stop_lines(self) -> list[str]:
        """When the database went away: what happened, what was loaded, what to do."""
        if self.lost is None:
            return []
        if not self.stopped:  # only the lock's connection went: every series was attempted
            return [f"skvo ingest: {self.lost}",
                    "  the series loaded are complete; run `skvo ingest` again to check "
                    "(it skips them)"]

        def listed(what: str, keys: list[SeriesKey]) -> list[str]:
            lines = [f"  {what}: {key}" for key in keys[:_LIST_AT_MOST]]
            if len(keys) > _LIST_AT_MOST:
                lines.append(f"  ... and {len(keys) - _LIST_AT_MOST} more series {what}")
            return lines

        done = self.loaded + self.replaced
        out = [f"skvo ingest: stopped: {self.lost}",
               f"  {len(done)} series were loaded before that and are complete"]
        out += listed("loaded", done)
        out += listed("failed", self.failed)
        if self.not_attempted:
            out.append(f"  {len(self.not_attempted)} series were not attempted")
        out.append("  run `skvo ingest` again when the database is back: the series loaded "
                   "are skipped and the rest are loaded")
        return out

    def summary(self) -> str:
        """One paragraph: counts, points, frames and times."""
        verb = "would load" if self.dry_run else "loaded"
        text = (
            f"{verb} {len(self.loaded)} series ({self.points} points, {self.frames} frames)"
            f"{f', replaced {len(self.replaced)}' if self.replaced else ''}; "
            f"skipped {len(self.skipped)} (already loaded); changed {len(self.changed)}; "
            f"failed {len(self.failed)}; {len(self.problems)} problems; "
            f"{self.seconds:.2f} s (read+validate {self.parse_seconds:.2f} s, "
            f"store {self.store_seconds:.2f} s)"
        )
        if self.points and self.seconds > 0:
            text += f", {self.points / self.seconds:,.0f} points/s"
        return text


def _check_frames(files: SeriesFiles, n_points: int | None, probs: list[Problem]) -> None:
    for frame in files.frames:
        if n_points is not None and frame.index >= n_points:
            probs.append(Problem(frame.rel, 0, "-",
                                 f"frame {frame.index} has no data row "
                                 f"(the data table has {n_points} rows, 0-based index)"))
        try:
            head = safefs.read_head(frame.path, frame.root, 8)
        except safefs.UnsafePath as exc:
            probs.append(Problem(frame.rel, 0, "-", str(exc)))
            continue
        if not head:
            probs.append(Problem(frame.rel, 0, "-", "image file is empty"))
        elif not head.startswith(_MAGIC[frame.content_type]):
            kind = frame.content_type.split("/")[1].upper()
            probs.append(Problem(frame.rel, 0, "-", f"not a {kind} file"))


def frame_gap_notices(files: SeriesFiles) -> list[str]:
    """A notice for a frame folder whose numbering has a gap (the series still loads).

    Frames may belong to every point or to every k-th one (rows without
    frames are allowed): the numbering's step is the most common difference
    between consecutive indexes (their greatest common divisor when some
    difference is not a multiple of it), and an index of that progression
    between the first and the last frame that has no file is a gap, usually
    a frame lost on the way.
    """
    have = sorted({f.index for f in files.frames})
    if len(have) < 2:
        return []
    diffs = np.diff(have)
    values, counts = np.unique(diffs, return_counts=True)
    step = int(values[np.argmax(counts)])
    if np.any(diffs % step):
        step = int(np.gcd.reduce(diffs))
    if step <= 0:
        return []
    present = set(have)
    missing = [i for i in range(have[0], have[-1] + 1, step) if i not in present]
    if not missing:
        return []
    folder = files.frames[0].rel.rpartition("/")[0] or files.dir_rel
    what = "frame" if len(missing) == 1 else "frames"
    listed = ", ".join(map(str, missing[:10])) + (
        f" and {len(missing) - 10} more" if len(missing) > 10 else "")
    return [str(Problem(folder, 0, "-",
                        f"gap in the frame numbering (indexes {have[0]} to {have[-1]} in "
                        f"steps of {step}): "
                        f"{what} {listed} missing; the series loads without them"))]


def _read(path: Path, root: Path, probs: Problems) -> bytes | None:
    """A CSV file's bytes, read only from inside the tree; None (and a problem) if refused."""
    try:
        return safefs.read_bytes(path, root)
    except safefs.UnsafePath as exc:
        probs.add(0, "-", str(exc))
        return None


def prepare(files: SeriesFiles, base: Path, notices: list[str] | None = None,
            resolution: TimeResolution = MICROSECONDS
            ) -> tuple[Prepared | None, list[Problem]]:
    """Read and validate every file of one series; all problems are returned.

    What the files have that is tolerated (unknown columns) is added to
    ``notices``.  Point times are checked against the time-series store's
    ``resolution``.
    """
    problems = list(files.problems)
    root = files.root if files.root is not None else safefs.real_base(base)
    meta = data = None
    if files.meta is not None:
        rel = files.meta.relative_to(base).as_posix()
        probs = Problems(rel)
        raw = _read(files.meta, root, probs)
        if raw is not None:
            meta = read_meta(raw, rel, files.key.bandpass, files.key.night, probs)
        problems += probs.items
        if notices is not None:
            notices += probs.notices
    if files.data is not None:
        rel = files.data.relative_to(base).as_posix()
        probs = Problems(rel)
        raw = _read(files.data, root, probs)
        if raw is not None:
            data = read_data(raw, rel, files.night_date, probs, resolution)
        problems += probs.items
        if notices is not None:
            notices += probs.notices
    _check_frames(files, len(data) if data is not None else None, problems)
    if notices is not None:
        notices += frame_gap_notices(files)
    if problems or meta is None or data is None:
        return None, problems
    return Prepared(files.key, meta, data, files.frames), []


def store_resolution(timeseries: object) -> TimeResolution:
    """The time resolution a time-series store declares (``time_resolution_us``, ``label``)."""
    return TimeResolution(int(getattr(timeseries, "time_resolution_us", 1)),
                          str(getattr(timeseries, "label", TimeResolution.store)))


def _find(loader: Loader | None, prepared: Prepared) -> Existing | None:
    if loader is None:
        return None
    try:
        return loader.find(prepared.key, prepared.meta.hash)
    except sa.exc.OperationalError as exc:  # dry run on a database without the tables
        if is_disconnect(exc):
            raise
        return None
    except sa.exc.ProgrammingError:
        return None


def ingest(
    stores: Stores | None,
    path: Path,
    dry_run: bool = False,
    replace: bool = False,
    progress: bool = True,
    stream: TextIO | None = None,
    resolution: TimeResolution | None = None,
) -> IngestReport:
    """Validate the tree at ``path`` and load its good series.

    ``stores`` may be None for a dry run (then nothing is compared with the
    database).  ``replace`` loads the new files of a loaded series whose files
    changed in its place (same observation uuid, DID and URLs; the old rows,
    points and frames go in the same all-or-nothing step).  A progress bar goes to
    ``stream`` when it is a terminal and ``progress`` is true.  Point times are validated against
    ``resolution``, by default the one ``stores.timeseries`` declares
    (without stores: microseconds).
    """
    from tqdm import tqdm

    started = time.perf_counter()
    base = Path(path)
    report = IngestReport(base, dry_run=dry_run)
    tree = walk(base)
    report.problems += tree.problems
    report.notices += tree.notices
    report.parse_seconds += time.perf_counter() - started
    loader = Loader(stores.engine, stores.timeseries, stores.media) if stores else None
    if resolution is None:
        resolution = store_resolution(stores.timeseries) if stores else MICROSECONDS
    stream = stream if stream is not None else sys.stderr
    show = progress and hasattr(stream, "isatty") and stream.isatty()
    bar = tqdm(tree.series, file=stream, disable=not show, unit="series", desc="ingest")
    try:
        with contextlib.ExitStack() as stack:
            if stores is not None and not dry_run:
                stack.enter_context(ingest_lock(stores.engine))
            _run(tree.series, bar, base, loader, report, dry_run, replace, resolution)
    except LockLost as exc:  # the series loaded are whole; say so
        if report.lost is None:
            report.lost = str(exc)
    finally:
        bar.close()
    report.seconds = time.perf_counter() - started
    return report


def _run(series: list[SeriesFiles], bar: Iterable[SeriesFiles], base: Path,
         loader: Loader | None, report: IngestReport, dry_run: bool, replace: bool,
         resolution: TimeResolution) -> None:
    for n, files in enumerate(bar):
        t0 = time.perf_counter()
        prepared, problems = prepare(files, base, report.notices, resolution)
        report.parse_seconds += time.perf_counter() - t0
        if prepared is None:
            report.failed.append(files.key)
            report.problems += problems
            continue
        t1 = time.perf_counter()
        try:
            _load_one(loader, prepared, files, report, dry_run, replace)
        except CommitUnknown as exc:
            report.failed.append(files.key)
            report.lost = (f"the database connection was lost while committing {files.key} "
                           f"({database_message(exc)}); the database may or may not have kept "
                           "it (a rerun skips it if it did)")
        except Exception as exc:
            if not is_disconnect(exc):
                raise
            report.failed.append(files.key)
            report.lost = (f"the database connection was lost while loading {files.key} "
                           f"({database_message(exc)}); nothing of {files.key} was kept")
        finally:
            report.store_seconds += time.perf_counter() - t1
        if report.lost is not None:
            report.stopped = True
            report.not_attempted = [f.key for f in series[n + 1:]]
            return


def _load_one(loader: Loader | None, prepared: Prepared, files: SeriesFiles,
              report: IngestReport, dry_run: bool, replace: bool) -> None:
    key = prepared.key
    existing = _find(loader, prepared)
    replacing = False
    if existing is not None:
        if existing.key != key:
            report.failed.append(key)
            report.problems.append(Problem(
                files.meta.relative_to(report.path).as_posix() if files.meta else files.dir_rel,
                0, "-", f"same metadata and night (observation hash {existing.observation_hash})"
                f" as the loaded series {existing.key}"))
            return
        if (existing.meta_md5, existing.data_md5) == (prepared.meta.md5, prepared.data.md5):
            report.skipped.append(key)
            return
        if not replace:
            report.changed.append(key)
            return
        replacing = True
    if dry_run or loader is None:
        (report.replaced if replacing else report.loaded).append(key)
        report.points += len(prepared.data)
        report.frames += len(prepared.frames)
        return
    try:  # a replaced observation keeps its uuid, DID and URLs; all or nothing
        result = loader.load(prepared, replacing=existing)
    except UndoError as exc:
        report.failed.append(key)
        report.problems.append(Problem(files.dir_rel, 0, "-",
                                       f"loading failed and cleaning up failed too: {exc}"))
        if is_disconnect(exc.__context__):
            report.failed.pop()
            raise exc.__context__ from None  # type: ignore[misc]
        return
    except CommitUnknown:
        raise
    except Exception as exc:  # a store refused: nothing of the series was kept
        if is_disconnect(exc):
            raise
        report.failed.append(key)
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        report.problems.append(Problem(files.dir_rel, 0, "-",
                                       f"loading failed, nothing kept: {message}"))
        return
    (report.replaced if replacing else report.loaded).append(key)
    report.points += result.points
    report.frames += result.frames


def run_ingest(
    settings: Settings,
    path: Path | None = None,
    dry_run: bool = False,
    replace: bool = False,
    stream: TextIO = sys.stderr,
) -> int:
    """``skvo ingest``: load ``path`` (default ``[general] base_path``); the exit code."""
    base = Path(path) if path is not None else Path(settings.get("general", "base_path"))
    try:
        stores = open_stores(settings, create=not dry_run)
    except sa.exc.DBAPIError as exc:
        print(f"skvo ingest: cannot use the metadata database ({database_message(exc)}); "
              "nothing was loaded", file=stream)
        return 1
    try:
        report = ingest(stores, base, dry_run=dry_run, replace=replace, stream=stream)
    except IngestLocked as exc:
        print(f"skvo ingest: {exc}", file=stream)
        return 1
    except sa.exc.DBAPIError as exc:  # before the first series (the uploader lock)
        what = "the connection to" if is_disconnect(exc) else "an error of"
        print(f"skvo ingest: stopped by {what} the metadata database "
              f"({database_message(exc)}); the series loaded before are complete, run "
              "`skvo ingest` again when the database is back", file=stream)
        return 1
    finally:
        with contextlib.suppress(Exception):  # a database that went away cannot be closed
            stores.close()
    for line in report.lines():
        print(line, file=stream)
    print(report.summary(), file=stream)
    return 0 if report.ok else 1
