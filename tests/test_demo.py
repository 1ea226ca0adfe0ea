"""The sample tree: deterministic, realistic and valid."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from voservice import bandpasses, demo
from voservice.demo import (
    ARCHIVE_SOURCES,
    CAMPAIGN,
    CAMPAIGN_SOURCE,
    SOURCES,
    STARS,
    magnitudes,
    write_demo_tree,
)
from voservice.ingest import ingest
from voservice.ingest.tree import SeriesFiles, walk

STAR = {s.folder: s for s in STARS}


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _meta(s: SeriesFiles) -> dict[str, str]:
    assert s.meta is not None
    return dict(zip(*csv.reader(io.StringIO(s.meta.read_text())), strict=True))


def _points(s: SeriesFiles) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MJD (UTC), magnitude and error of a series' rows."""
    assert s.data is not None
    rows = list(csv.reader(io.StringIO(s.data.read_text())))[1:]
    ms = np.array([np.datetime64(r[0].replace(" ", "T"), "ms") for r in rows]).astype(np.int64)
    return (40587.0 + ms / 86400e3, np.array([float(r[1]) for r in rows]),
            np.array([float(r[2]) for r in rows]))


@pytest.fixture(scope="module")
def campaign(demo_tree: Path) -> list[SeriesFiles]:
    """The campaign's series of the sample tree."""
    return [s for s in walk(demo_tree).series if s.key.source == CAMPAIGN_SOURCE.name]


def test_same_seed_same_bytes(tmp_path: Path, demo_tree: Path) -> None:
    write_demo_tree(tmp_path / "a")
    assert _files(tmp_path / "a") == _files(demo_tree)
    write_demo_tree(tmp_path / "b", seed=7)
    assert _files(tmp_path / "b") != _files(demo_tree)


def test_sample_tree_content(demo_tree: Path) -> None:
    tree = walk(demo_tree)
    series = tree.series
    assert not tree.problems and all(not s.problems for s in series)
    assert {s.key.source for s in series} == {s.name for s in SOURCES}
    metas = [_meta(s) for s in series]
    assert {m["access.access"] for m in metas} == {"open", "on_demand", "restricted"}
    ras = {m["target.target"]: float(m["target.right_ascension"]) for m in metas}
    decs = {m["target.target"]: float(m["target.declination"]) for m in metas}
    assert set(ras) == {s.name for s in STARS}
    assert ras["bet_Lyr"] == pytest.approx(282.519975) and decs["Algol"] == pytest.approx(40.955648)
    assert max(ras.values()) > 359 and min(decs.values()) < -60
    assert all(m["target.catalogue"] == "HD" and m["target.catalogue_value"].isdigit()
               for m in metas)
    assert all(bandpasses.lookup(s.key.bandpass) is not None for s in series)
    # the archive: a dozen scattered nights of each source, 2-4 bands a night
    archive = [s for s in series if s.key.source in {a.name for a in ARCHIVE_SOURCES}]
    assert 20 <= len(archive) <= 60
    nights: dict[tuple[str, str, str], int] = {}
    total = 0
    for s in archive:
        n = len(s.data.read_text().splitlines()) - 1
        assert 20 <= n <= 2000
        total += n
        key = (s.key.source, s.key.target, s.key.night)
        nights[key] = nights.get(key, 0) + 1
    assert all(2 <= n <= 4 for n in nights.values())
    assert 8_000 <= total <= 40_000
    framed = [s for s in series if s.frames]
    assert framed and any("/media/" in f"/{s.frames[0].rel}" for s in framed)
    assert {s.key.source for s in framed} >= {CAMPAIGN_SOURCE.name}
    with Image.open(framed[0].frames[0].path) as image:
        assert image.size == (demo.FRAME_SIZE, demo.FRAME_SIZE) and image.format == "PNG"
    report = ingest(None, demo_tree, dry_run=True, progress=False)
    assert report.ok and len(report.loaded) == len(series)


def test_campaign_nights(campaign: list[SeriesFiles]) -> None:
    """Each campaign star: its number of nights, in its season, B and V every night,
    open, a few hours and a few dozen points a night, the ephemeris of the archive."""
    assert {_meta(s)["access.access"] for s in campaign} == {"open"}
    site = CAMPAIGN_SOURCE.location
    assert site is not None
    for season in CAMPAIGN:
        star = STAR[season.star]
        mine = [s for s in campaign if s.key.target == star.folder]
        by_night: dict[str, set[str]] = {}
        for s in mine:
            by_night.setdefault(s.key.night, set()).add(s.key.bandpass)
        assert season.nights[0] <= len(by_night) <= season.nights[1]
        assert all(bands == set(CAMPAIGN_SOURCE.bands) for bands in by_night.values())
        last = season.first + dt.timedelta(days=season.days + 1)
        assert all(season.first <= s.night_date <= last for s in mine)
        for s in mine:
            mjd, _, _ = _points(s)
            hours = (mjd[-1] - mjd[0]) * 24
            assert 1.0 <= hours <= demo.RUN_HOURS[1]
            assert 15 <= mjd.size <= demo.RUN_HOURS[1] * 60 / demo.CYCLE_MINUTES[0] + 1
            # every point at night, the star well up
            sun, alt = demo._sky_altitudes(mjd, star.ra, star.dec, site[0], site[1])
            assert sun.max() < demo.SUN_LIMIT + 1 and alt.min() > demo.STAR_LIMIT - 1
            meta = _meta(s)
            assert float(meta["ephemeris.period"]) == star.period
            assert float(meta["ephemeris.epoch"]) == pytest.approx(star.epoch + 2400000.5)


def test_campaign_errors_and_noise(campaign: list[SeriesFiles]) -> None:
    """Errors of a few mmag that grow with airmass (scintillation) and magnitude
    (photon noise); the points scatter about the model by those errors."""
    site = CAMPAIGN_SOURCE.location
    assert site is not None
    pulls, rising = [], 0
    for s in campaign:
        star = STAR[s.key.target]
        mjd, mag, err = _points(s)
        assert err.min() >= 0.0015 and err.max() <= 0.03
        pulls.append((mag - magnitudes(star, s.key.bandpass, mjd)) / err)
        _, alt = demo._sky_altitudes(mjd, star.ra, star.dec, site[0], site[1])
        x = demo.airmass(alt)
        if np.ptp(x) > 0.2:
            rising += np.corrcoef(x, err)[0, 1] > 0.5
    z = np.concatenate(pulls)
    assert np.std(z) == pytest.approx(1.0, abs=0.05) and abs(np.mean(z)) < 0.05
    assert rising >= len(campaign) // 4
    mag = np.array([3.0, 10.0])
    bright, faint = demo.photometric_error(mag, "johnson.v", np.array([1.2, 1.2]), 30.0, 800.0)
    assert faint > bright and bright < 0.006
    low, high = demo.photometric_error(np.array([3.0, 3.0]), "johnson.v",
                                       np.array([1.1, 2.2]), 30.0, 800.0)
    assert high > 2 * low


def test_algol_nights_sometimes_cover_a_minimum(campaign: list[SeriesFiles]) -> None:
    algol = next(s for s in STARS if s.name == "Algol")
    covered = set()
    nights = {s.key.night for s in campaign if s.key.target == algol.folder}
    for s in campaign:
        if s.key.target == algol.folder:
            phase = np.mod((_points(s)[0] - algol.epoch) / algol.period + 0.5, 1.0) - 0.5
            if phase.min() < -0.01 and phase.max() > 0.01 and np.abs(phase).min() < 0.005:
                covered.add(s.key.night)
    assert 2 <= len(covered) < len(nights)


def test_campaign_frames_are_star_fields(campaign: list[SeriesFiles]) -> None:
    """Frames on a few nights per star: sky with noise, the target (the brightest
    star) near the centre, other stars around."""
    for season in CAMPAIGN:
        framed = {s.key.night for s in campaign if s.key.target == season.star and s.frames}
        assert framed and len(framed) <= demo.FRAME_NIGHTS
    frames = [f for s in campaign for f in s.frames]
    size = demo.FRAME_SIZE
    for frame in frames[:: max(1, len(frames) // 12)]:
        with Image.open(frame.path) as image:
            a = np.asarray(image, dtype=float)
        assert a.shape == (size, size)
        sky = np.median(a)
        assert 15 <= sky <= 60 and 1.0 < np.median(np.abs(a - sky)) < 10
        box = sum(np.roll(np.roll(a, i, 0), j, 1) for i in (-1, 0, 1) for j in (-1, 0, 1)) / 9
        y, x = np.unravel_index(np.argmax(box), box.shape)  # hot pixels are single
        assert abs(x - size / 2) <= 6 and abs(y - size / 2) <= 6
        centre = np.zeros_like(a, dtype=bool)
        centre[size // 2 - 15:size // 2 + 15, size // 2 - 15:size // 2 + 15] = True
        assert np.sum((box > sky + 15) & ~centre) >= 20  # field stars


def test_light_curves_follow_the_stars() -> None:
    algol = next(s for s in STARS if s.name == "Algol")
    at_min = magnitudes(algol, "johnson.v", np.array([algol.epoch]))[0]
    at_quadrature = magnitudes(algol, "johnson.v", np.array([algol.epoch + algol.period / 4]))[0]
    assert at_min - at_quadrature == pytest.approx(algol.amplitude, abs=0.05)
    rr = next(s for s in STARS if s.name == "RR_Lyr")
    phase = np.linspace(0, rr.period, 200, endpoint=False) + rr.epoch
    v, b = magnitudes(rr, "johnson.v", phase), magnitudes(rr, "johnson.b", phase)
    assert np.ptp(b) > np.ptp(v) == pytest.approx(rr.amplitude, rel=0.05)
    # beta Lyr: primary minimum at the epoch, a shallower secondary half a period on,
    # equal maxima between them
    bl = next(s for s in STARS if s.name == "bet_Lyr")
    t = bl.epoch + np.linspace(0, bl.period, 2000, endpoint=False)
    m = magnitudes(bl, "johnson.v", t)
    assert np.argmax(m) == 0 and np.ptp(m) == pytest.approx(bl.amplitude)
    secondary = m[1000] - m.min()
    assert 0.3 * bl.amplitude < secondary < 0.6 * bl.amplitude
    assert m[:1000].min() == pytest.approx(m[1000:].min(), abs=1e-3)


def test_scaled_tree(tmp_path: Path, demo_tree: Path) -> None:
    """``points=`` scales the archive; the campaign stays as it is."""
    summary = write_demo_tree(tmp_path / "big", points=60_000)
    campaign = sum(len(s.data.read_text().splitlines()) - 1 for s in walk(demo_tree).series
                   if s.key.source == CAMPAIGN_SOURCE.name)
    assert summary.points >= 60_000 + campaign
    assert summary.series > len(walk(demo_tree).series)
    big = _files(tmp_path / "big" / CAMPAIGN_SOURCE.name)
    assert big == _files(demo_tree / CAMPAIGN_SOURCE.name)
