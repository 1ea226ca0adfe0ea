"""What the analysis modules share: their error and input cleaning."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray


class AnalysisError(ValueError):
    """Bad analysis input or a request above a limit.

    ``parameter`` names the request parameter at fault (``MINPERIOD``,
    ``OVERSAMPLE``, ``location``...) so that an HTTP handler can answer with a
    DALI error naming it; ``str(error)`` is a complete sentence fit for a client.
    """

    def __init__(self, message: str, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter


@dataclass(frozen=True)
class Series:
    """A cleaned light curve: finite values, sorted by time.

    ``err`` is None when no errors were given; ``bands`` is None when no band
    labels were given. ``notes`` say what was dropped.
    """

    time: NDArray[np.float64]
    mag: NDArray[np.float64]
    err: NDArray[np.float64] | None
    bands: NDArray[np.str_] | None
    notes: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.time.size)


def clean_series(
    time: ArrayLike,
    mag: ArrayLike,
    err: ArrayLike | None = None,
    bands: ArrayLike | None = None,
) -> Series:
    """Checks shapes, drops rows with a non-finite time/mag or a non-positive or
    non-finite error (saying so in ``notes``) and sorts by time."""
    t = np.asarray(time, dtype=float).ravel()
    m = np.asarray(mag, dtype=float).ravel()
    if t.size != m.size:
        raise AnalysisError(f"time has {t.size} values but mag has {m.size}", "mag")
    keep = np.isfinite(t) & np.isfinite(m)
    notes: list[str] = []
    n_missing = int(t.size - keep.sum())
    if n_missing:
        notes.append(f"dropped {n_missing} points with a missing time or magnitude")
    e: NDArray[np.float64] | None = None
    if err is not None:
        e = np.asarray(err, dtype=float).ravel()
        if e.size == 1:  # one error for all points
            e = np.full(t.size, float(e[0]))
        if e.size != t.size:
            raise AnalysisError(f"time has {t.size} values but err has {e.size}", "err")
        bad_err = keep & ~(np.isfinite(e) & (e > 0))
        if bad_err.any():
            notes.append(f"dropped {int(bad_err.sum())} points with a missing or "
                         "non-positive error")
        keep &= ~bad_err
    b: NDArray[np.str_] | None = None
    if bands is not None:
        b = np.asarray(bands).astype(str).ravel()
        if b.size != t.size:
            raise AnalysisError(f"time has {t.size} values but bands has {b.size}", "bands")
    order = np.argsort(t[keep], kind="stable")
    return Series(
        time=t[keep][order],
        mag=m[keep][order],
        err=None if e is None else e[keep][order],
        bands=None if b is None else b[keep][order],
        notes=tuple(notes),
    )
