"""Standard photometric filters: where they are, what they are called, how they are calibrated.

One table, :data:`FILTERS`: canonical uid (``system.band``) -> effective
wavelength, width (FWHM) in metres, the UCD of magnitudes in the band, the
filter's identifier in the SVO Filter Profile Service (``Generic/Bessell.V``,
``SLOAN/SDSS.r``), its magnitude system (Vega or AB) and the flux density of
magnitude 0 in Jy.  :func:`lookup` maps the many spellings providers use
(``Johnson.U``, ``Jonson.U``, ``johnson_v``, ``sloan.r``, ``SDSS-g'``,
``stromgren.y`` ...) onto it; unknown filters give ``None``.

Values: Johnson-Cousins after Bessell (1990, PASP 102, 1181) and Binney &
Merrifield, SDSS after Fukugita et al. (1996), Strömgren after Crawford &
Barnes (1970).  Good to a few nm, which is what VO discovery needs.  Vega
zero points of U B V R I J H K after Bessell, Castelli & Plez (1998, A&A 333,
231, table A2), used for every Johnson, Cousins and Bessell band of that
letter; Strömgren zero points are Vega fluxes to a few per cent; SDSS is AB
(3631 Jy in every band).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Filter:
    """A standard filter: effective wavelength and FWHM in metres, magnitude UCD, calibration."""

    uid: str
    wavelength_eff: float
    width: float
    mag_ucd: str
    fps_id: str
    mag_system: str
    zero_point: float

    @property
    def wavelength_min(self) -> float:
        """Short end of the band (effective wavelength minus half the width)."""
        return self.wavelength_eff - self.width / 2

    @property
    def wavelength_max(self) -> float:
        """Long end of the band (effective wavelength plus half the width)."""
        return self.wavelength_eff + self.width / 2


_NM = 1e-9

#: flux density (Jy) of a Vega magnitude 0 per band letter (Bessell et al. 1998)
_VEGA_JY = {"U": 1790.0, "B": 4063.0, "V": 3636.0, "R": 3064.0, "I": 2416.0,
            "J": 1589.0, "H": 1021.0, "K": 640.0}
#: flux density (Jy) of a Vega magnitude 0 in the Strömgren bands
_STROMGREN_JY = {"u": 1500.0, "v": 3950.0, "b": 4000.0, "y": 3640.0}
#: flux density (Jy) of an AB magnitude 0
_AB_JY = 3631.0

#: photometric system -> (SVO FPS facility/instrument, magnitude system)
_FPS = {"johnson": ("Generic/Johnson", "Vega"), "cousins": ("Generic/Cousins", "Vega"),
        "bessel": ("Generic/Bessell", "Vega"), "sdss": ("SLOAN/SDSS", "AB"),
        "stromgren": ("Generic/Stromgren", "Vega")}

#: canonical uid -> (effective wavelength nm, FWHM nm, UCD)
_TABLE: dict[str, tuple[float, float, str]] = {
    "johnson.u": (365, 66, "phot.mag;em.opt.U"),
    "johnson.b": (445, 94, "phot.mag;em.opt.B"),
    "johnson.v": (551, 88, "phot.mag;em.opt.V"),
    "johnson.r": (658, 138, "phot.mag;em.opt.R"),
    "johnson.i": (806, 149, "phot.mag;em.opt.I"),
    "johnson.j": (1220, 213, "phot.mag;em.IR.J"),
    "johnson.h": (1630, 307, "phot.mag;em.IR.H"),
    "johnson.k": (2190, 390, "phot.mag;em.IR.K"),
    "cousins.r": (647, 157, "phot.mag;em.opt.R"),
    "cousins.i": (786, 154, "phot.mag;em.opt.I"),
    "bessel.u": (366, 65, "phot.mag;em.opt.U"),
    "bessel.b": (438, 97, "phot.mag;em.opt.B"),
    "bessel.v": (545, 85, "phot.mag;em.opt.V"),
    "bessel.r": (641, 157, "phot.mag;em.opt.R"),
    "bessel.i": (798, 154, "phot.mag;em.opt.I"),
    "sdss.u": (355, 57, "phot.mag;em.opt.U"),
    "sdss.g": (469, 128, "phot.mag;em.opt.B"),
    "sdss.r": (617, 115, "phot.mag;em.opt.R"),
    "sdss.i": (748, 123, "phot.mag;em.opt.I"),
    "sdss.z": (893, 94, "phot.mag;em.opt.I"),
    "stromgren.u": (350, 34, "phot.mag;em.opt.U"),
    "stromgren.v": (411, 20, "phot.mag;em.opt.B"),
    "stromgren.b": (467, 16, "phot.mag;em.opt.B"),
    "stromgren.y": (547, 24, "phot.mag;em.opt.V"),
}


def _filter(uid: str, eff: float, width: float, ucd: str) -> Filter:
    system, band = uid.split(".")
    fps, mag_system = _FPS[system]
    if system == "sdss":
        band_id, zero_point = band, _AB_JY
    elif system == "stromgren":
        band_id, zero_point = band, _STROMGREN_JY[band]
    else:
        band_id = band.upper()
        zero_point = _VEGA_JY[band_id]
    return Filter(uid, eff * _NM, width * _NM, ucd, f"{fps}.{band_id}", mag_system, zero_point)


FILTERS: dict[str, Filter] = {
    uid: _filter(uid, eff, width, ucd) for uid, (eff, width, ucd) in _TABLE.items()
}

#: other spellings of the photometric systems
_SYSTEMS = {
    "johnson": "johnson",
    "jonson": "johnson",
    "johnsons": "johnson",
    "johnsoncousins": None,  # band decides: U B V -> johnson, R I -> cousins
    "jc": None,
    "ubv": "johnson",
    "cousins": "cousins",
    "cousin": "cousins",
    "kron": "cousins",
    "bessel": "bessel",
    "bessell": "bessel",
    "sdss": "sdss",
    "sloan": "sdss",
    "stromgren": "stromgren",
    "strömgren": "stromgren",
    "stroemgren": "stromgren",
    "uvby": "stromgren",
}

_SPLIT = re.compile(r"[.\-_/ :]+")


def canonical_uid(uid: str) -> str | None:
    """The canonical ``system.band`` of a filter spelling, or None when unknown."""
    text = uid.strip().lower().replace("'", "").replace("′", "")
    parts = [p for p in _SPLIT.split(text) if p]
    if len(parts) < 2:
        return None
    *system_parts, band = parts
    system_key = "".join(system_parts)
    if system_key not in _SYSTEMS:
        return None
    system = _SYSTEMS[system_key]
    if system is None:
        system = "cousins" if band in ("r", "i") else "johnson"
    if band.endswith("c") and len(band) == 2 and system in ("cousins", "johnson"):
        band, system = band[0], "cousins"  # Rc, Ic
    uid_ = f"{system}.{band}"
    return uid_ if uid_ in FILTERS else None


def lookup(uid: str) -> Filter | None:
    """The standard filter a bandpass uid names (any usual spelling), or None."""
    canonical = canonical_uid(uid)
    return FILTERS[canonical] if canonical else None
