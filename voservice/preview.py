"""Preview plots of light curves (PNG), cached on disk.

The cache key is the series and the md5 of its data file, so a reloaded
series gets a new plot.  Plots are drawn with matplotlib's Agg backend.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from voservice.stores.timeseries.base import Points


def render(points: Points, title: str, band: str) -> bytes:
    """A PNG of magnitude against MJD (brighter up)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.6), dpi=100)
    ax = fig.add_subplot()
    if len(points):
        mjd = points.mjd
        ax.errorbar(mjd - np.floor(mjd[0]), points.magnitude, yerr=points.magnitude_error,
                    fmt=".", ms=3, lw=0.5, color="tab:blue", ecolor="0.7")
        ax.set_xlabel(f"MJD - {int(np.floor(mjd[0]))}")
    ax.invert_yaxis()
    ax.set_ylabel(f"{band} [mag]")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def render_curves(curves: list[tuple[str, np.ndarray, np.ndarray, np.ndarray,
                                    np.ndarray | None]],
                  title: str, band: str, folded: bool) -> bytes:
    """A PNG of several curves (label, mjd, mag, err, phase): against MJD, or folded
    over two cycles of phase when ``folded``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.6), dpi=100)
    ax = fig.add_subplot()
    origin = min((float(np.floor(c[1][0])) for c in curves if len(c[1])), default=0.0)
    for label, mjd, mag, err, phase in curves:
        if folded and phase is not None:
            x, y, e = np.concatenate([phase, phase + 1]), np.tile(mag, 2), np.tile(err, 2)
        else:
            x, y, e = mjd - origin, mag, err
        ax.errorbar(x, y, yerr=e, fmt=".", ms=2, lw=0.4, ecolor="0.75",
                    label=label.lower() if len(curves) > 1 else None)
    ax.set_xlabel("phase" if folded else f"MJD - {int(origin)}")
    ax.invert_yaxis()
    ax.set_ylabel(f"{band} [mag]")
    ax.set_title(title, fontsize=10)
    if len(curves) > 1:
        ax.legend(fontsize=8, title="times at", title_fontsize=8)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def cached(cache_dir: Path, key: str, make: Callable[[], bytes]) -> bytes:
    """The bytes cached under ``key``, made (and stored atomically) when missing."""
    name = hashlib.sha256(key.encode()).hexdigest()
    path = cache_dir / name[:2] / f"{name}.png"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    data = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)
    return data
