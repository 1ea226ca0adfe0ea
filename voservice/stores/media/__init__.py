"""Media stores: where frame bytes live (``[media] backend``)."""

from __future__ import annotations

from typing import Any

from voservice.stores.media.base import MediaError, MediaStore, StoredMedia

__all__ = ["MediaError", "MediaStore", "StoredMedia", "open_media_store"]


def open_media_store(backend: str, **settings: Any) -> MediaStore:
    """Open the store named by ``backend``: ``files`` or ``hbase``."""
    if backend == "files":
        from voservice.stores.media.files import FileMediaStore

        return FileMediaStore(settings["path"])
    if backend == "hbase":
        from voservice.stores.media.hbase import HBaseMediaStore

        return HBaseMediaStore(
            host=settings["host"], port=settings["port"], table=settings["table"],
            transport=settings.get("transport", "buffered"),
            protocol=settings.get("protocol", "binary"), timeout=settings.get("timeout", 30.0),
        )
    raise ValueError(f"[media] backend = {backend!r}: must be files or hbase")
