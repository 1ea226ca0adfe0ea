"""The three stores: metadata (SQL), time series, media.

:func:`open_data_stores` is the one place the ``[timeseries]`` and ``[media]``
settings turn into store objects; the service and the uploader both use it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from voservice.config import Settings


def open_data_stores(settings: Settings, engine: sa.Engine) -> tuple[Any, Any]:
    """The time-series and media stores the settings name.

    ``engine`` is the metadata database; the ``sql`` time-series backend keeps
    its points there.
    """
    from voservice.stores.media import open_media_store
    from voservice.stores.timeseries import open_timeseries_store

    ts = settings.section("timeseries")
    timeseries = open_timeseries_store(
        ts["backend"], engine=engine, url=ts["url"], batch_size=ts["batch_size"],
        timeout=ts["timeout"], max_body=ts["max_body"], assign_uids=ts["assign_uids"],
    )
    m = settings.section("media")
    if m["backend"] == "files":
        media = open_media_store("files", path=m["path"])
    else:
        media = open_media_store(
            "hbase", host=m["host"], port=m["port"], table=m["table"],
            transport=m["transport"], protocol=m["protocol"], timeout=m["timeout"],
        )
    return timeseries, media
