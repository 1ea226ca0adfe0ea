"""Where things are: every URL SKVO hands to clients is built here."""

from __future__ import annotations

from urllib.parse import quote, urlencode


def lightcurve_url(base_url: str, observation_uuid: str, bandpass_uid: str,
                   responseformat: str | None = None) -> str:
    """The light curve of one series (VOTable with TIMESYS; CSV on request)."""
    url = f"{base_url}/lightcurve/{observation_uuid}/{quote(bandpass_uid, safe='')}"
    if responseformat:
        url += "?" + urlencode({"RESPONSEFORMAT": responseformat})
    return url


def multiband_url(base_url: str, observation_uuid: str) -> str:
    """All bandpasses of the observation night of a series, in one table."""
    return f"{base_url}/lightcurve/{observation_uuid}"


def preview_url(base_url: str, observation_uuid: str, bandpass_uid: str) -> str:
    """PNG plot of a light curve."""
    return f"{lightcurve_url(base_url, observation_uuid, bandpass_uid)}/preview.png"


def datalink_url(base_url: str, did: str) -> str:
    """The DataLink {links} document of a publisher DID."""
    return f"{base_url}/datalink?ID={quote(did, safe='')}"


def frame_url(base_url: str, frame_id: int) -> str:
    """The bytes of one image frame."""
    return f"{base_url}/frame/{int(frame_id)}"


def star_curve_url(base_url: str, target_id: int, bandpass_uid: str,
                   responseformat: str | None = None) -> str:
    """A star's light curve in one band over all its nights."""
    url = f"{base_url}/lightcurve/star/{int(target_id)}/{quote(bandpass_uid, safe='')}"
    if responseformat:
        url += "?" + urlencode({"RESPONSEFORMAT": responseformat})
    return url


def star_url(base_url: str, target_id: int) -> str:
    """Every band of a star over all its nights, one TABLE per band."""
    return f"{base_url}/lightcurve/star/{int(target_id)}"


def star_preview_url(base_url: str, target_id: int, bandpass_uid: str,
                     folded: bool = False) -> str:
    """PNG plot of a star's curve (folded on its default ephemeris when asked)."""
    name = "preview-folded.png" if folded else "preview.png"
    return f"{star_curve_url(base_url, target_id, bandpass_uid)}/{name}"
