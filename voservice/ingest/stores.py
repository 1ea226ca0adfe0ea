"""Open the metadata engine and the two stores the settings name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from voservice.config import Settings


@dataclass
class Stores:
    """Where an ingest writes: metadata engine, time-series store, media store."""

    engine: sa.Engine
    timeseries: Any  # voservice.stores.timeseries.base.TimeSeriesStore
    media: Any  # voservice.stores.media MediaStore
    media_path: Path | None = None  # folder of the files media store

    def close(self) -> None:
        """Close the stores and dispose of the engine."""
        for store in (self.timeseries, self.media):
            close = getattr(store, "close", None)
            if close is not None:
                close()
        self.engine.dispose()


def open_stores(settings: Settings, create: bool = True) -> Stores:
    """Open the write engine and the stores of ``settings``.

    With ``create`` a database without the SKVO tables is initialised and the
    stores' schemas are created when missing (``skvo initdb`` does the same).
    """
    from voservice.stores.media import open_media_store
    from voservice.stores.metadata import initdb, make_engine
    from voservice.stores.timeseries import open_timeseries_store

    engine = make_engine(settings.metadata_url)
    if create and not sa.inspect(engine).has_table("observation"):
        initdb(engine)
    ts = settings.section("timeseries")
    timeseries = open_timeseries_store(
        ts["backend"], engine=engine, url=ts["url"], batch_size=ts["batch_size"],
        timeout=ts["timeout"],
    )
    m = settings.section("media")
    if m["backend"] == "files":
        media = open_media_store("files", path=m["path"])
    else:
        media = open_media_store(
            "hbase", host=m["host"], port=m["port"], table=m["table"],
            transport=m["transport"], protocol=m["protocol"], timeout=m["timeout"],
        )
    for store in (timeseries, media) if create else ():
        create_schema = getattr(store, "create_schema", None)
        if create_schema is not None:
            create_schema()
    media_path = Path(m["path"]) if m["backend"] == "files" else None
    return Stores(engine, timeseries, media, media_path)
