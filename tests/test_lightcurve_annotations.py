"""What light-curve clients read besides the points: photcal, COOSYS, DataOrigin (live servers).

The photcal GROUP is read as skvo_veb's light-curve reader reads DaCHS's
``//timeseries#phot-0`` annotation: the GROUP named ``photcal``, its PARAMs
by name and utype, the FIELDref naming the calibrated column.
"""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import warnings

import numpy as np
import pytest
import requests
from astropy.io.votable import parse as parse_votable
from astropy.io.votable.tree import FieldRef, Group
from astropy.io.votable.tree import Param as VOParam
from astropy.timeseries import TimeSeries
from conftest import LiveServer
from lxml import etree
from test_lightcurve import VOT, lc_url, series_rows, store_points

from voservice import bandpasses

FORMATS = ["votable/td", "votable/binary2"]

#: name -> (ucd, utype, unit) of the photcal PARAMs, as DaCHS's phot-0 writes them
PHOTCAL = {
    "filterIdentifier": ("meta.id;instr.filter", "photDM:PhotometryFilter.identifier", None),
    "zeroPointFlux": ("phot.flux.density;arith.zp", "photDM:PhotCal.zeroPoint.flux.value", "Jy"),
    "magnitudeSystem": ("meta.code", "photDM:PhotCal.magnitudeSystem.type", None),
    "effectiveWavelength": ("em.wl.effective",
                            "photDM:PhotometryFilter.spectralLocation.value", "m"),
}


def get(url: str, **params: str) -> bytes:
    response = requests.get(url, params=params, timeout=60)
    assert response.status_code == 200, response.text[:500]
    return response.content


def photcal_of_columns(body: bytes) -> dict[str, dict[str, VOParam]]:
    """Column name -> photcal PARAMs by name, found as skvo_veb finds them."""
    votable = parse_votable(io.BytesIO(body))
    table = votable.get_first_table()
    ids = {f.ID: f.name for f in table.fields if f.ID}
    out = {}
    for group in table.iter_groups():
        if group.name != "photcal":
            continue
        params = {e.name: e for e in group.entries if isinstance(e, VOParam)}
        refs = [e.ref for e in group.entries if isinstance(e, FieldRef)]
        for ref in refs:
            out[ids[ref]] = params
    return out


def groups_named(body: bytes, prefix: str) -> list[Group]:
    table = parse_votable(io.BytesIO(body)).get_first_table()
    return [g for g in table.iter_groups() if g.name.startswith(prefix)]


def band_row(server: LiveServer) -> dict:
    """An open series of a standard filter."""
    return next(r for r in series_rows(server, "open") if bandpasses.lookup(r["bandpass_uid"]))


@pytest.mark.parametrize("fmt", FORMATS)
def test_magnitudes_convert_to_flux_with_the_photcal_group(server: LiveServer, fmt: str) -> None:
    row = band_row(server)
    filt = bandpasses.lookup(row["bandpass_uid"])
    body = get(lc_url(server, row), RESPONSEFORMAT=fmt)
    photcal = photcal_of_columns(body)
    assert list(photcal) == ["magnitude"]
    params = photcal["magnitude"]
    for name, (ucd, utype, unit) in PHOTCAL.items():
        p = params[name]
        assert (p.ucd, p.utype, None if p.unit is None else str(p.unit)) == (ucd, utype, unit)
    assert params["filterIdentifier"].value == filt.fps_id
    assert params["magnitudeSystem"].value == filt.mag_system
    assert params["zeroPointFlux"].value == filt.zero_point
    assert params["effectiveWavelength"].value == pytest.approx(filt.wavelength_eff)
    table = parse_votable(io.BytesIO(body)).get_first_table().to_table()
    flux = params["zeroPointFlux"].value * 10 ** (-0.4 * np.asarray(table["magnitude"]))
    points = store_points(server, row)
    assert np.allclose(flux, filt.zero_point * 10 ** (-0.4 * points.magnitude), rtol=1e-12)
    root = etree.fromstring(body)
    mag = root.find(f".//{VOT}FIELD[@name='magnitude']")
    group = root.find(f".//{VOT}GROUP[@name='photcal']")
    assert mag.get("ref") == group.get("ID") and mag.get("ID") == "magnitude"
    assert [r.get("ref") for r in group.findall(f"{VOT}FIELDref")] == ["magnitude"]


def test_sdss_and_bessell_facts() -> None:
    f = bandpasses.FILTERS
    assert (f["sdss.r"].fps_id, f["sdss.r"].mag_system, f["sdss.r"].zero_point) == (
        "SLOAN/SDSS.r", "AB", 3631.0)
    assert (f["bessel.v"].fps_id, f["bessel.v"].mag_system) == ("Generic/Bessell.V", "Vega")
    assert f["cousins.r"].fps_id == "Generic/Cousins.R"
    assert all(x.zero_point > 0 and x.fps_id.count("/") == 1 for x in f.values())
    assert bandpasses.lookup("Sloan.r") is f["sdss.r"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_multiband_curves_calibrate_each_band(server: LiveServer, fmt: str) -> None:
    row = band_row(server)
    body = get(f"{server.url}/lightcurve/{row['obs_id']}", RESPONSEFORMAT=fmt)
    table = parse_votable(io.BytesIO(body)).get_first_table().to_table()
    bands = set(np.asarray(table["bandpass_uid"]).astype(str))
    groups = groups_named(body, "photcal_")
    by_band = {}
    for g in groups:
        params = {e.name: e.value for e in g.entries if isinstance(e, VOParam)}
        assert not [e for e in g.entries if isinstance(e, FieldRef)]
        assert g.name == f"photcal_{params['bandpass_uid']}"
        by_band[str(params["bandpass_uid"])] = params
    assert set(by_band) == bands
    for band, params in by_band.items():
        filt = bandpasses.lookup(band)
        if filt is not None:
            assert params["filterIdentifier"] == filt.fps_id
            assert params["zeroPointFlux"] == filt.zero_point
    # one band's zero point is never taken for the mixed column
    assert photcal_of_columns(body) == {}
    mag = etree.fromstring(body).find(f".//{VOT}FIELD[@name='magnitude']")
    assert mag.get("ref") is None


@pytest.mark.parametrize("path", ["single", "multi"])
def test_data_origin_coosys_and_product_type(server: LiveServer, path: str) -> None:
    row = band_row(server)
    url = lc_url(server, row) if path == "single" else f"{server.url}/lightcurve/{row['obs_id']}"
    root = etree.fromstring(get(url))
    infos = {i.get("name"): i.get("value") for i in root.iter(f"{VOT}INFO")}
    settings = server.dep.settings()
    ivoid = f"ivo://{settings.get('vo', 'authority')}/skvo"
    assert infos["publisher"] == "SKVO" and infos["contact"] == "skvo@example.org"
    assert infos["ivoid"] == ivoid and infos["publisher_did"].startswith(ivoid + "?")
    assert infos["citation"] == f"{settings.get('vo', 'title')}, {ivoid}"
    requested = dt.datetime.fromisoformat(infos["request_date"])
    assert requested.utcoffset() == dt.timedelta(0)
    assert abs(dt.datetime.now(dt.UTC) - requested) < dt.timedelta(days=1)
    params = {p.get("name"): p for p in root.iter(f"{VOT}PARAM")}
    assert params["dataproduct_type"].get("value") == "timeseries"
    assert params["dataproduct_subtype"].get("value") == "lightcurve"
    coosys = root.find(f"{VOT}COOSYS")
    assert coosys.get("system") == "ICRS"
    assert params["ra"].get("ref") == params["dec"].get("ref") == coosys.get("ID")
    description = root.find(f".//{VOT}TABLE/{VOT}DESCRIPTION").text
    assert row["target_name"] in description and row["bandpass_uid"] in description


@pytest.mark.parametrize("query", [{}, {"RESPONSEFORMAT": "votable/td"}, {"BIN": "0.01"},
                                   {"PERIOD": "0.5", "EPOCH": "58100"}])
def test_astropy_reads_the_curve_without_a_warning(server: LiveServer, query: dict) -> None:
    row = band_row(server)
    body = get(lc_url(server, row), **query)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parse_votable(io.BytesIO(body), verify="exception")
        series = TimeSeries.read(io.BytesIO(body), format="votable", time_column="time",
                                 time_format="mjd")
    assert len(series) > 0 and "magnitude" in series.colnames
    if not query:
        assert len(series) == row["t_xel"]


def test_votlint_accepts_annotated_curves(server: LiveServer) -> None:
    row = band_row(server)
    urls = [f"{lc_url(server, row)}?RESPONSEFORMAT=votable/binary2",
            f"{server.url}/lightcurve/{row['obs_id']}?RESPONSEFORMAT=votable/td",
            f"{server.url}/lightcurve/{row['obs_id']}?BIN=0.01"]
    for url in urls:
        result = subprocess.run(["stilts", "votlint", f"votable={url}"], capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0 and result.stdout.strip() == "", (url, result.stdout)


def test_csv_stays_plain(server: LiveServer) -> None:
    row = band_row(server)
    text = get(lc_url(server, row), RESPONSEFORMAT="csv").decode()
    assert text.splitlines()[0].startswith("time,magnitude,magnitude_error,")
    assert "photcal" not in text and len(text.splitlines()) == row["t_xel"] + 1


def test_topcat_still_plots_time_against_magnitude(server: LiveServer) -> None:
    row = band_row(server)
    root = etree.fromstring(get(lc_url(server, row)))
    fields = root.findall(f".//{VOT}FIELD")
    timesys = root.find(f"{VOT}TIMESYS")
    assert fields[0].get("name") == "time" and fields[0].get("ref") == timesys.get("ID")
    assert fields[1].get("name") == "magnitude" and fields[1].get("ucd").startswith("phot.mag")


def _series(bandpass_uid: str, wavelength_eff: float | None):
    from voservice.archive.lightcurves import Series

    return Series(
        photometry_id=1, observation_uuid="u", source="s", night="20200101", access="open",
        target_folder="t", bandpass_folder=bandpass_uid, instrument_hash="h", data_md5="m",
        start_date="2020-01-01T00:00:00", end_date="2020-01-01T01:00:00", n_points=1,
        time_refposition=None, target="T", right_ascension=1.0, declination=2.0,
        bandpass="x", bandpass_uid=bandpass_uid, photometric_system="x",
        wavelength_eff=wavelength_eff, mag_ucd=None, instrument="i", facility="f", title="d")


def test_an_unknown_filter_is_named_but_never_given_a_zero_point() -> None:
    from voservice.archive.lightcurves import groups

    (group,) = groups([_series("kolonica.clear", 6e-7)], multiband=False)
    params = {p.name: p.value for p in group.params}
    assert params == {"filterIdentifier": "kolonica.clear", "effectiveWavelength": 6e-7}
    assert group.name == "photcal" and group.field_refs == ["magnitude"]
    (known,) = groups([_series("Johnson.V", None)], multiband=False)
    filt = bandpasses.FILTERS["johnson.v"]
    assert {p.name: p.value for p in known.params} == {
        "filterIdentifier": filt.fps_id, "zeroPointFlux": filt.zero_point,
        "magnitudeSystem": "Vega", "effectiveWavelength": filt.wavelength_eff}


def test_the_writer_places_coosys_groups_and_fieldrefs() -> None:
    from voservice.votable import Columns, CooSys, Field, Param, write_table
    from voservice.votable import Group as VGroup

    body = b"".join(write_table(
        [Field("t", "double"), Field("m", "double", id="m", ref="g")],
        [Columns([np.array([1.0]), np.array([2.0])])], format="votable/td",
        coosys=[CooSys("c")], params=[Param("ra", "double", value=1.0, ref="c")],
        groups=[VGroup(name="photcal", id="g", field_refs=["m"],
                       params=[Param("zeroPointFlux", "double", unit="Jy", value=3631.0)])]))
    votable = parse_votable(io.BytesIO(body), verify="exception")
    (coosys,) = votable.iter_coosys()
    assert (coosys.ID, coosys.system) == ("c", "ICRS")
    (group,) = votable.get_first_table().iter_groups()
    assert [e.ref for e in group.entries if isinstance(e, FieldRef)] == ["m"]
    assert [e.value for e in group.entries if isinstance(e, VOParam)] == [3631.0]
