"""Time-series stores: where light-curve points live (``[timeseries] backend``)."""

from __future__ import annotations

from typing import Any

from voservice.stores.timeseries.base import Points, SeriesRef, StoreError, TimeSeriesStore

__all__ = ["Points", "SeriesRef", "StoreError", "TimeSeriesStore", "open_timeseries_store"]


def open_timeseries_store(backend: str, *, engine: Any = None, url: str | None = None,
                          batch_size: int | None = None, timeout: float | None = None,
                          max_body: int | None = None, assign_uids: bool = False
                          ) -> TimeSeriesStore:
    """Open the store named by ``backend``: ``sql`` or ``opentsdb``."""
    if backend == "sql":
        from voservice.stores.timeseries.sql import SqlTimeSeriesStore

        if engine is None:
            raise ValueError("[timeseries] backend = sql needs the metadata engine")
        return SqlTimeSeriesStore(engine)
    if backend == "opentsdb":
        from voservice.stores.timeseries.opentsdb import OpenTsdbTimeSeriesStore

        if not url:
            raise ValueError("[timeseries] backend = opentsdb needs [timeseries] url")
        return OpenTsdbTimeSeriesStore(url, batch_size=batch_size or 50, timeout=timeout or 30.0,
                                       max_body=max_body or 8192, assign_uids=assign_uids)
    raise ValueError(f"[timeseries] backend = {backend!r}: must be sql or opentsdb")
