"""Errors every layer may raise and the protocols answer."""

from __future__ import annotations


class UsageError(ValueError):
    """The request's parameters are wrong: a DALI UsageFault."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
