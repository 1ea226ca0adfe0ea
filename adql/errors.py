"""The one exception type of the package."""

from __future__ import annotations


class ADQLError(Exception):
    """An ADQL query that cannot be parsed, checked or translated.

    ``message`` is meant for a person; ``line`` and ``column`` (1-based) point
    at the place in the query text the problem was found (0 if unknown).
    """

    def __init__(self, message: str, line: int = 0, column: int = 0):
        super().__init__(message, line, column)
        self.message = message
        self.line = line
        self.column = column

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.message}"


def error_at(node: object, message: str) -> ADQLError:
    """An ADQLError located at ``node`` (anything with line/col attributes)."""
    return ADQLError(message, getattr(node, "line", 0) or 0, getattr(node, "col", 0) or 0)
