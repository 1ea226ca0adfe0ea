"""PNG plots of periodograms and O-C diagrams (matplotlib's Agg Figure API,
as voservice.preview: no pyplot, no global state, safe in threads)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np

from voservice.analysis.ephemeris import OC, EphemerisFit
from voservice.analysis.periodogram import Periodogram

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _figure() -> Figure:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure(figsize=(6.4, 3.6), dpi=100)


def _png(fig: Figure) -> bytes:
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def periodogram_png(result: Periodogram, title: str = "") -> bytes:
    """A PNG of power against period (log axis) with the peaks marked and
    labelled by rank."""
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot(result.period, result.power, lw=0.6, color="tab:blue")
    for peak in result.peaks:
        ax.axvline(peak.period, color="tab:red", lw=0.5, alpha=0.5)
        ax.annotate(f"{peak.rank}: {peak.period:.6g} d", (peak.period, peak.power),
                    fontsize=7, xytext=(3, -2), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("period [d]")
    ax.set_ylabel(result.method)
    ax.set_title(title or result.power_description, fontsize=9)
    return _png(fig)


def oc_png(oc: OC, fit: EphemerisFit | None = None, title: str = "") -> bytes:
    """A PNG of O-C (in days) against cycle number, with error bars when
    known, and the fitted ephemeris' curve (relative to the one O-C was
    computed against) when given."""
    fig = _figure()
    ax = fig.add_subplot()
    ax.errorbar(oc.cycle, oc.oc, yerr=oc.error, fmt="o", ms=3, lw=0.6, color="tab:blue",
                ecolor="0.6")
    if fit is not None and oc.cycle.size:
        e = np.linspace(float(oc.cycle.min()), float(oc.cycle.max()), 200)
        ax.plot(e, fit.predict(e) - oc.calculate(e), color="tab:red", lw=0.8,
                label=f"{'quadratic' if fit.degree == 2 else 'linear'} fit")
        ax.legend(fontsize=7)
    ax.axhline(0.0, color="0.5", lw=0.5)
    ax.set_xlabel("cycle")
    ax.set_ylabel("O-C [d]")
    ax.set_title(title, fontsize=9)
    return _png(fig)
