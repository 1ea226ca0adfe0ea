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
            store.close()
        self.engine.dispose()


def open_stores(settings: Settings, create: bool = True) -> Stores:
    """Open the write engine and the stores of ``settings``.

    With ``create`` a database without the SKVO tables is initialised and the
    stores' schemas are created when missing (``skvo initdb`` does the same).
    """
    from voservice.stores import open_data_stores
    from voservice.stores.metadata import initdb, make_engine

    engine = make_engine(settings.metadata_url)
    if create and not sa.inspect(engine).has_table("observation"):
        initdb(engine)
    elif create:  # an archive of an older schema is upgraded by `skvo upgrade`, not here
        from voservice.migrations import require_current

        require_current(engine)
    timeseries, media = open_data_stores(settings, engine)
    for store in (timeseries, media) if create else ():
        store.create_schema()
    m = settings.section("media")
    media_path = Path(m["path"]) if m["backend"] == "files" else None
    return Stores(engine, timeseries, media, media_path)
