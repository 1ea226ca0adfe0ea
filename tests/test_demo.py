"""The sample tree: deterministic, realistic and valid."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from voservice import bandpasses
from voservice.demo import STARS, magnitudes, write_demo_tree
from voservice.ingest import ingest
from voservice.ingest.tree import walk


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_same_seed_same_bytes(tmp_path: Path, demo_tree: Path) -> None:
    write_demo_tree(tmp_path / "a")
    assert _files(tmp_path / "a") == _files(demo_tree)
    write_demo_tree(tmp_path / "b", seed=7)
    assert _files(tmp_path / "b") != _files(demo_tree)


def test_sample_tree_content(demo_tree: Path) -> None:
    tree = walk(demo_tree)
    series = tree.series
    assert not tree.problems and all(not s.problems for s in series)
    assert len({s.key.source for s in series}) >= 3
    assert 20 <= len(series) <= 60
    metas = [dict(zip(*csv.reader(io.StringIO(s.meta.read_text())), strict=True))
             for s in series]
    assert {m["access.access"] for m in metas} == {"open", "on_demand", "restricted"}
    ras = {m["target.target"]: float(m["target.right_ascension"]) for m in metas}
    decs = {m["target.target"]: float(m["target.declination"]) for m in metas}
    assert len(ras) >= 6
    assert ras["bet_Lyr"] == pytest.approx(282.519975) and decs["Algol"] == pytest.approx(40.955648)
    assert max(ras.values()) > 359 and min(decs.values()) < -60
    assert {"bet_Lyr", "W_UMa"} <= {s.key.target for s in series}
    assert all(m["target.catalogue"] == "HD" and m["target.catalogue_value"].isdigit()
               for m in metas)
    assert all(bandpasses.lookup(s.key.bandpass) is not None for s in series)
    nights: dict[tuple[str, str, str], int] = {}
    total = 0
    for s in series:
        n = len(s.data.read_text().splitlines()) - 1
        assert 20 <= n <= 2000
        total += n
        key = (s.key.source, s.key.target, s.key.night)
        nights[key] = nights.get(key, 0) + 1
    assert all(2 <= n <= 4 for n in nights.values())
    assert 8_000 <= total <= 40_000
    framed = [s for s in series if s.frames]
    assert framed and any("/media/" in f"/{s.frames[0].rel}" for s in framed)
    with Image.open(framed[0].frames[0].path) as image:
        assert image.size == (64, 64) and image.format == "PNG"
    report = ingest(None, demo_tree, dry_run=True, progress=False)
    assert report.ok and len(report.loaded) == len(series)


def test_light_curves_follow_the_stars() -> None:
    algol = next(s for s in STARS if s.name == "Algol")
    at_min = magnitudes(algol, "johnson.v", np.array([algol.epoch]))[0]
    at_quadrature = magnitudes(algol, "johnson.v", np.array([algol.epoch + algol.period / 4]))[0]
    assert at_min - at_quadrature == pytest.approx(algol.amplitude, abs=0.05)
    rr = next(s for s in STARS if s.name == "RR_Lyr")
    phase = np.linspace(0, rr.period, 200, endpoint=False) + rr.epoch
    v, b = magnitudes(rr, "johnson.v", phase), magnitudes(rr, "johnson.b", phase)
    assert np.ptp(b) > np.ptp(v) == pytest.approx(rr.amplitude, rel=0.05)


def test_scaled_tree(tmp_path: Path) -> None:
    summary = write_demo_tree(tmp_path / "big", points=60_000)
    assert summary.points >= 60_000
    assert summary.series > 45
