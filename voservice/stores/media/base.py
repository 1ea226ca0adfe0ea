"""The media store interface: bytes of image frames."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

#: media types frames may have, with the file extension each is stored under
CONTENT_TYPES = {"image/png": "png", "image/jpeg": "jpg"}


class MediaError(Exception):
    """A frame could not be stored or read; the message says why."""


@dataclass(frozen=True)
class StoredMedia:
    """What ``put`` stored: its reference, checksum, size and type."""

    ref: str
    md5: str
    size: int
    content_type: str


class MediaStore(ABC):
    """Where frame bytes live."""

    @abstractmethod
    def put(self, series_key: str, index: int, data: bytes, content_type: str) -> StoredMedia:
        """Store the bytes of frame ``index`` of a series."""

    @abstractmethod
    def get(self, ref: str) -> tuple[bytes, str]:
        """The bytes and content type of a frame (KeyError if absent)."""

    @abstractmethod
    def delete(self, ref: str) -> None:
        """Remove a frame (absent is fine)."""

    @abstractmethod
    def exists(self, ref: str) -> bool:
        """Is the frame stored?"""

    def create_schema(self) -> None:  # noqa: B027 - optional
        """Create what the store needs; default: nothing."""

    def close(self) -> None:  # noqa: B027 - optional
        """Release connections."""
