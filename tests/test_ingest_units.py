"""Uploader pieces: hashes, bandpass table, tree walking and CSV reading."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import pytest

from voservice import bandpasses
from voservice.ingest import ingest
from voservice.ingest.csvfiles import (
    META_COLUMNS,
    instrument_hash,
    observation_hash,
    read_data,
    read_meta,
)
from voservice.ingest.problems import Problems
from voservice.ingest.tree import walk

HEADER = ("ts.timestamp,ts.magnitude,ts.magnitude_error,ts.flux_calibration,"
          "ts.flux_calibration_level,ts.exposure,ts.timeframe_reference_position")


def meta_values(band: str = "johnson.u") -> dict[str, str]:
    values = {name: "x" for name in META_COLUMNS}
    values.update({
        "target.right_ascension": "282.519975", "target.declination": "33.362667",
        "bandpass.bandpass_uid": band, "bandpass.spectral_band_type": "optical",
        "instrument.field_of_view": "0.5", "organisation.organisation_did": "http://upjs.sk",
        "dataid.publisher_did": "ivo://skvo/upjs", "access.access": "open",
        "organisation.email": "a@b.c", "target.target": "beta Lyr, \"Sheliak\"",
        "facility.longitude": "22.27", "facility.latitude": "48.94", "facility.height": "460",
    })
    return values


def write_meta(path: Path, values: dict[str, str]) -> None:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")
        writer.writerow(values)
        writer.writerow(values.values())


def test_observation_hash_is_the_original_formula() -> None:
    values = {"b.x": "2", "a.y": "1", "c.z": "3"}
    expected = hashlib.md5(b"20180217___1___2___3").hexdigest()
    assert observation_hash("20180217", values) == expected
    expected = hashlib.md5(b"i___t___c______0.5").hexdigest()
    assert instrument_hash("i", "t", "c", "", "0.5") == expected


def test_meta_hash_uses_values_as_written(tmp_path: Path) -> None:
    values = meta_values()
    path = tmp_path / "m_meta_id.csv"
    write_meta(path, values)
    probs = Problems("m")
    meta = read_meta(path, "m", "johnson.u", "20180217", probs)
    assert not probs, probs.items
    assert meta is not None
    wanted = "___".join(["20180217"] + [values[k] for k in sorted(values)])
    assert meta.hash == hashlib.md5(wanted.encode()).hexdigest()
    assert meta.get("target.target") == 'beta Lyr, "Sheliak"'
    assert meta.right_ascension == pytest.approx(282.519975)


@pytest.mark.parametrize(("uid", "canonical"), [
    ("johnson.u", "johnson.u"), ("Johnson.U", "johnson.u"), ("Jonson.U", "johnson.u"),
    ("johnson_v", "johnson.v"), ("bessel.v", "bessel.v"), ("Bessell.R", "bessel.r"),
    ("cousins.r", "cousins.r"), ("Cousins.Ic", "cousins.i"), ("sdss.g", "sdss.g"),
    ("sloan.r", "sdss.r"), ("SDSS-g'", "sdss.g"), ("stromgren.y", "stromgren.y"),
    ("Strömgren.b", "stromgren.b"), ("johnson.q", None), ("uid_for_band", None), ("V", None),
])
def test_bandpass_aliases(uid: str, canonical: str | None) -> None:
    assert bandpasses.canonical_uid(uid) == canonical
    filt = bandpasses.lookup(uid)
    if canonical is None:
        assert filt is None
    else:
        assert filt is bandpasses.FILTERS[canonical]
        assert 3e-7 < filt.wavelength_min < filt.wavelength_eff < filt.wavelength_max < 2.5e-6


def test_bandpass_values_are_ordered() -> None:
    f = bandpasses.FILTERS
    assert f["johnson.u"].wavelength_eff < f["johnson.b"].wavelength_eff \
        < f["johnson.v"].wavelength_eff < f["cousins.r"].wavelength_eff \
        < f["cousins.i"].wavelength_eff
    assert f["johnson.v"].wavelength_eff == pytest.approx(5.51e-7)
    assert f["johnson.v"].mag_ucd == "phot.mag;em.opt.V"


def _series_dir(base: Path, kind: str, folder: str, band: str, source: str = "upjs") -> Path:
    date = folder.rsplit("_", 1)[1]
    path = base / source / "photometry" / kind / date[:6] / folder / band
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_tree_layout_variants(tmp_path: Path) -> None:
    d = _series_dir(tmp_path, "dtables", "bet_Lyr_20180217", "Jonson.U")
    (d / "bet_Lyr_20180217_0_data_id.csv").write_text(HEADER + "\n")
    (d / "bet_Lyr_20180217_meta_id.csv").write_text("a\n")
    d = _series_dir(tmp_path, "dtables", "W_UMa_20180223", "johnson.v")
    (d / "W_UMa_20180223_data.csv").write_text(HEADER + "\n")
    (d / "W_UMa_20180223_meta.csv").write_text("a\n")
    m = _series_dir(tmp_path, "media", "W_UMa_20180223", "johnson.v")
    (m / "20180223_3.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (m / "W_UMa_20180223_0.jpeg").write_bytes(b"\xff\xd8\xff")
    (m / "notes.txt").write_text("x")
    (tmp_path / "upjs" / "spectroscopy").mkdir()
    (tmp_path / "upjs" / "photometry" / "dtables" / "2018-02").mkdir()
    (tmp_path / "upjs" / "photometry" / "dtables" / "201802" / "nodate").mkdir()
    tree = walk(tmp_path)
    keys = {(s.key.target, s.key.night, s.key.bandpass) for s in tree.series}
    assert keys == {("bet_Lyr", "20180217", "Jonson.U"), ("W_UMa", "20180223", "johnson.v")}
    wuma = next(s for s in tree.series if s.key.target == "W_UMa")
    assert [(f.index, f.content_type) for f in wuma.frames] == [(0, "image/jpeg"),
                                                                (3, "image/png")]
    assert any("notes.txt" in p.file for p in wuma.problems)
    assert any("spectroscopy" in n for n in tree.notices)
    assert {p.file for p in tree.problems} == {"upjs/photometry/dtables/2018-02",
                                               "upjs/photometry/dtables/201802/nodate"}


def _data_file(tmp_path: Path, lines: list[str], crlf: bool = False) -> Path:
    path = tmp_path / "x_data.csv"
    end = "\r\n" if crlf else "\n"
    path.write_bytes(("\ufeff" + HEADER + end + end.join(lines) + end).encode())
    return path


def test_data_iso_forms_sorting_and_precision(tmp_path: Path) -> None:
    path = _data_file(tmp_path, [
        "2018-02-17T21:00:00.123456Z,1.0,0.01,abs,2,10,heliocenter",
        "2018-02-17 20:00:00,2.0,0.02,dif,1,10,topocenter",
        "",
        "2018-02-18 01:00:00.5,3.0,0.03,abs,3,5,heliocenter",
    ], crlf=True)
    probs = Problems("x")
    data = read_data(path, "x", dt.date(2018, 2, 17), probs)
    assert not probs, probs.items
    assert data is not None
    assert list(data.magnitude) == [2.0, 1.0, 3.0]
    assert list(data.lines) == [3, 2, 5]
    t0 = int(dt.datetime(2018, 2, 17, 21, tzinfo=dt.UTC).timestamp()) * 1_000_000 + 123456
    assert int(data.time_us[1]) == t0
    assert data.flux_calibration.tolist() == ["dif", "abs", "abs"]
    assert data.flux_calibration_level.dtype == np.int64


def test_data_problems_name_every_line(tmp_path: Path) -> None:
    path = _data_file(tmp_path, [
        "2018-02-17 20:00:00,1.0,0.01,abs,2,10,heliocenter",
        "2018-02-17 20:00:00,x,0.01,abs,2,10,heliocenter",
        "2018-02-17 20:01:00+01:00,1.0,-1,abs,2,10,heliocenter",
        "2018-02-17 20:02:00,1.0,0.01,abs,2,10,heliocenter,extra",
    ])
    probs = Problems("x")
    assert read_data(path, "x", dt.date(2018, 2, 17), probs) is None
    found = {(p.line, p.column) for p in probs.items}
    assert {(3, "ts.magnitude"), (4, "ts.timestamp"), (4, "ts.magnitude_error"),
            (5, "-")} <= found


def test_frame_order_follows_time(tmp_path: Path) -> None:
    """Frame k belongs to the k-th point in time order, whatever the row order."""
    from voservice.ingest import prepare

    d = _series_dir(tmp_path, "dtables", "bet_Lyr_20180217", "johnson.u")
    (d / "bet_Lyr_20180217_data_id.csv").write_text(HEADER + "\n" + "\n".join([
        "2018-02-17 21:00:00,1.0,0.01,abs,2,10,heliocenter",
        "2018-02-17 20:00:00,2.0,0.01,abs,2,20,heliocenter",
    ]) + "\n")
    write_meta(d / "bet_Lyr_20180217_meta_id.csv", meta_values())
    img = _series_dir(tmp_path, "imgs", "bet_Lyr_20180217", "johnson.u")
    (img / "bet_Lyr_20180217_0.png").write_bytes(b"\x89PNG\r\n\x1a\n....")
    prepared, problems = prepare(walk(tmp_path).series[0], tmp_path)
    assert not problems and prepared is not None
    assert prepared.data.exposure[prepared.frames[0].index] == 20.0
    (img / "bet_Lyr_20180217_2.png").write_bytes(b"\x89PNG\r\n\x1a\n....")
    prepared, problems = prepare(walk(tmp_path).series[0], tmp_path)
    assert prepared is None and [p.file for p in problems] == [
        "upjs/photometry/imgs/201802/bet_Lyr_20180217/johnson.u/bet_Lyr_20180217_2.png"]


def test_missing_tree_is_a_problem(tmp_path: Path) -> None:
    report = ingest(None, tmp_path / "nope", dry_run=True, progress=False)
    assert not report.ok and report.problems


def test_data_tolerates_blanks_case_integral_levels_and_extra_columns(tmp_path: Path) -> None:
    path = tmp_path / "x_data.csv"
    path.write_text(
        HEADER.replace(",", ", ") + ", ts.airmass\n"
        "2018-02-17 20:00:00 , 2.0, 0.02, DIF, 1.0, 10, Topocenter, 1.2\n"
        " 2018-02-19T03:00:00Z,1.0,0.01,abs ,2,10,heliocenter,1.3\n")
    probs = Problems("x")
    data = read_data(path, "x", dt.date(2018, 2, 17), probs)
    assert not probs, probs.items
    assert data is not None
    assert data.flux_calibration.tolist() == ["dif", "abs"]
    assert data.timeframe_reference_position.tolist() == ["topocenter", "heliocenter"]
    assert data.flux_calibration_level.tolist() == [1, 2]
    assert int(data.time_us[1] - data.time_us[0]) == 31 * 3600 * 1_000_000
    assert probs.notices == ["x:1: ts.airmass: unknown column, ignored"]


def test_data_refuses_utc_offsets_and_dates_far_from_the_folder(tmp_path: Path) -> None:
    path = _data_file(tmp_path, [
        "2018-02-17 20:00:00-05:00,1.0,0.01,abs,2,10,heliocenter",
        "2018-02-17 20:01:00,1.0,0.01,abs,2.5,10,heliocenter",
        "2018-03-30 20:02:00,1.0,0.01,abs,2,10,heliocenter",
        "2018-02-15 20:03:00,1.0,0.01,abs,2,10,heliocenter",
    ])
    probs = Problems("x")
    assert read_data(path, "x", dt.date(2018, 2, 17), probs) is None
    found = {(p.line, p.column) for p in probs.items}
    assert found == {(2, "ts.timestamp"), (3, "ts.flux_calibration_level"),
                     (4, "ts.timestamp"), (5, "ts.timestamp")}


def test_meta_takes_choices_in_any_case_and_ignores_unknown_columns(tmp_path: Path) -> None:
    values = meta_values()
    values.update({"access.access": " On_Demand", "bandpass.spectral_band_type": "Optical",
                   "target.spectral_type": "A8V"})
    path = tmp_path / "m_meta.csv"
    write_meta(path, values)
    probs = Problems("m")
    meta = read_meta(path, "m", "johnson.u", "20180217", probs)
    assert not probs, probs.items
    assert meta is not None
    assert meta.choice("access.access") == "on_demand"
    assert meta.choice("bandpass.spectral_band_type") == "optical"
    assert probs.notices == ["m:1: target.spectral_type: unknown column, ignored"]
    wanted = "___".join(["20180217"] + [values[k] for k in sorted(values)])
    assert meta.hash == hashlib.md5(wanted.encode()).hexdigest()
