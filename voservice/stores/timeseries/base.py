"""The time-series store interface: light-curve points of photometry series."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

#: MJD of the Unix epoch (1970-01-01T00:00:00 UTC)
MJD_UNIX_EPOCH = 40587.0
US_PER_DAY = 86_400_000_000


def resolution_unit(resolution_us: int) -> str:
    """The time unit of a resolution for messages: ``microsecond``, ``millisecond``, ..."""
    return {1: "microsecond", 1000: "millisecond", 1_000_000: "second"}.get(
        resolution_us, f"{resolution_us}-microsecond step")


def off_resolution(time_us: np.ndarray, resolution_us: int) -> np.ndarray:
    """Indexes of the times with digits below ``resolution_us`` (not a multiple of it)."""
    return np.flatnonzero(np.asarray(time_us, dtype=np.int64) % resolution_us)


def same_instant(time_us: np.ndarray, resolution_us: int) -> list[tuple[int, int]]:
    """(earlier, later) index pairs of distinct times that one storage instant would merge.

    An instant is ``time_us // resolution_us`` (floor, also before 1970); each
    later point is paired with the first point of its instant.
    """
    times = np.asarray(time_us, dtype=np.int64)
    if resolution_us <= 1 or len(times) < 2:
        return []
    order = np.argsort(times, kind="stable")
    instants = times[order] // resolution_us
    clash = np.flatnonzero((instants[1:] == instants[:-1])
                           & (times[order][1:] != times[order][:-1])) + 1
    pairs = []
    for k in clash.tolist():
        first = k
        while first > 0 and instants[first - 1] == instants[k]:
            first -= 1
        pairs.append((int(order[first]), int(order[k])))
    return pairs


class StoreError(Exception):
    """A store could not do what was asked; the message says why."""


@dataclass(frozen=True)
class SeriesRef:
    """Identifies one photometry series (one observation night in one bandpass)."""

    series_id: int  # photometry_id in the metadata database
    observation_uuid: str
    target: str  # target uid of the upload folder
    bandpass_uid: str
    source: str
    instrument_hash: str
    start_us: int  # first point, unix microseconds UTC
    end_us: int  # last point


@dataclass
class Points:
    """Column-oriented points of a series, sorted by time."""

    time_us: np.ndarray  # int64 unix microseconds UTC
    magnitude: np.ndarray  # float64
    magnitude_error: np.ndarray  # float64
    exposure: np.ndarray  # float64 seconds
    flux_calibration: np.ndarray  # str: abs | dif
    flux_calibration_level: np.ndarray  # int64
    timeframe_reference_position: np.ndarray  # str

    def __post_init__(self) -> None:
        self.time_us = np.asarray(self.time_us, dtype=np.int64)
        for name in ("magnitude", "magnitude_error", "exposure"):
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.float64))
        self.flux_calibration_level = np.asarray(self.flux_calibration_level, dtype=np.int64)
        for name in ("flux_calibration", "timeframe_reference_position"):
            setattr(self, name, np.asarray(getattr(self, name), dtype=object))
        n = len(self.time_us)
        for f in fields(self):
            if len(getattr(self, f.name)) != n:
                raise ValueError(f"Points.{f.name} has {len(getattr(self, f.name))} values, "
                                 f"time_us has {n}")

    def __len__(self) -> int:
        return len(self.time_us)

    @property
    def mjd(self) -> np.ndarray:
        """Times as MJD (UTC)."""
        return MJD_UNIX_EPOCH + self.time_us / US_PER_DAY

    def __getitem__(self, index: Any) -> Points:
        return Points(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @classmethod
    def empty(cls) -> Points:
        """No points."""
        return cls(*(np.array([]) for _ in fields(cls)))

    @classmethod
    def concat(cls, parts: list[Points]) -> Points:
        """One Points of several, in the given order."""
        if not parts:
            return cls.empty()
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts])
                      for f in fields(cls)})

    def rows(self) -> Iterator[tuple[Any, ...]]:
        """The points as tuples (time_us, magnitude, ..., refposition)."""
        return zip(*(getattr(self, f.name).tolist() for f in fields(self)), strict=True)


class TimeSeriesStore(ABC):
    """Where the points of light curves live."""

    #: the finest time step the store keeps, in microseconds (1: every microsecond)
    time_resolution_us: int = 1
    #: how messages name the store ("the SQL store keeps microseconds")
    label: str = "the time-series store"

    @abstractmethod
    def put(self, ref: SeriesRef, points: Points) -> None:
        """Store all points of a series, or none (StoreError)."""

    @abstractmethod
    def read(self, ref: SeriesRef, start_us: int | None = None, end_us: int | None = None,
             chunk_size: int = 100_000) -> Iterator[Points]:
        """The points of a series in time order, in chunks."""

    @abstractmethod
    def count(self, ref: SeriesRef) -> int:
        """Number of points stored for a series."""

    @abstractmethod
    def delete(self, ref: SeriesRef) -> None:
        """Remove every point of a series (nothing to remove is fine)."""

    def reader(self, refs: Sequence[SeriesRef], sizes: Sequence[int]) -> SeriesReader:
        """Reads many series (``sizes``: their numbers of points), in the order given,
        as :meth:`read` reads each.

        A store whose queries cost more than their points (a star has hundreds
        of short series) reads several series per query; the default reads
        each on its own.
        """
        return SeriesReader(self)

    def create_schema(self) -> None:  # noqa: B027 - optional
        """Create what the store needs (tables, metrics); default: nothing."""

    def close(self) -> None:  # noqa: B027 - optional
        """Release connections."""


class SeriesReader:
    """Reads series a store was asked for (:meth:`TimeSeriesStore.reader`): one by one."""

    def __init__(self, store: TimeSeriesStore) -> None:
        self.store = store

    def read(self, ref: SeriesRef, start_us: int | None = None, end_us: int | None = None,
             chunk_size: int = 100_000) -> Iterator[Points]:
        """The chunks of one series, exactly as ``store.read`` gives them."""
        yield from self.store.read(ref, start_us, end_us, chunk_size)
