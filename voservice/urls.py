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
