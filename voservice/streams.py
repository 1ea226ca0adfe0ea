"""Row streams that give back what they hold, and their MAXREC trailers.

Pure helpers (no Flask): the archive layer and the TAP query service build
their responses' row iterators with them, the protocols stream those.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from voservice.votable import Info

log = logging.getLogger(__name__)

T = TypeVar("T")


class Guarded(Generic[T]):
    """An iterator whose ``close()`` releases what it holds, whether or not it was iterated.

    Closing a generator that never started does not run its ``finally``: a
    connection checked out before the body streams would stay out when the
    client leaves before the first byte.  ``Guarded`` closes the wrapped
    iterator and then runs every closer, exactly once, when it is exhausted,
    fails or is closed (WSGI servers close the response iterable in every
    case).  A failing closer is logged and does not stop the others.
    """

    def __init__(self, source: Iterable[T], *closers: Callable[[], None] | None) -> None:
        self._it = iter(source)
        self._closers = [c for c in closers if c is not None]
        self._lock = threading.Lock()
        self._closed = False

    def __iter__(self) -> Guarded[T]:
        return self

    def __next__(self) -> T:
        try:
            return next(self._it)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the source and run the closers (once; later calls do nothing)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for close in (getattr(self._it, "close", None), *self._closers):
            if close is None:
                continue
            try:
                close()
            except Exception:
                log.warning("releasing a streamed response's resources failed", exc_info=True)


def overflow_trailer(state: dict[str, bool], maxrec: int | None, what: str = "rows"
                     ) -> Callable[[], list[Info]]:
    """The trailer of a result cut at MAXREC: ``QUERY_STATUS=OVERFLOW`` once
    ``state["overflow"]`` is set (by the row iterator, before the trailer is asked)."""
    def trailer() -> list[Info]:
        if state.get("overflow"):
            return [Info("QUERY_STATUS", "OVERFLOW",
                         f"the result was cut at MAXREC={maxrec} {what}")]
        return []

    return trailer
