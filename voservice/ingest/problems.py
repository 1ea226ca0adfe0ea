"""Problems found in an upload tree: ``file:line: column: what is wrong``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

#: a file's problems of one kind beyond this many are summed up in one line
MAX_PER_COLUMN = 10


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with one file (line 0: the file as a whole)."""

    file: str
    line: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.column or '-'}: {self.message}"


@dataclass
class Problems:
    """The problems of one file (or folder), with per-column caps."""

    file: str
    items: list[Problem] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # worth saying, not wrong

    def notice(self, line: int, column: str, message: str) -> None:
        """Record something the uploader tolerates (it does not stop the series)."""
        self.notices.append(str(Problem(self.file, line, column, message)))

    def add(self, line: int, column: str, message: str) -> None:
        """Record one problem."""
        self.items.append(Problem(self.file, line, column, message))

    def add_rows(self, column: str, items: Sequence[tuple[int, str]]) -> None:
        """Record (line, message) problems of one column: the first few, then a count."""
        for line, message in items[:MAX_PER_COLUMN]:
            self.add(line, column, message)
        if len(items) > MAX_PER_COLUMN:
            line, message = items[MAX_PER_COLUMN]
            more = len(items) - MAX_PER_COLUMN - 1
            if more:
                message = f"{message} (and {more} more lines like this)"
            self.add(line, column, message)

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)
