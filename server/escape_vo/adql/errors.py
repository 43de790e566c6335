"""The one exception the ADQL package raises for anything wrong with a query."""

from __future__ import annotations


class AdqlError(ValueError):
    """A query the service cannot run, with a message that says what to change.

    ``line`` and ``column`` (1-based) point into the ADQL text where the parser knows the place;
    the TAP layer puts them into the DALI error document.
    """

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        self.message = message
        self.line = line
        self.column = column
        super().__init__(self.__str__())

    def __str__(self) -> str:
        if self.line is None or self.message.startswith("syntax error at line"):
            return self.message
        return f"{self.message} (line {self.line}, column {self.column})"

    def __reduce__(self):  # keep line/column when pickled to a job worker
        return (type(self), (self.message, self.line, self.column))


def error_at(message: str, pos: tuple[int, int] | None) -> AdqlError:
    """An AdqlError located at a (line, column) pair as the AST nodes carry them."""
    if pos is None:
        return AdqlError(message)
    return AdqlError(message, pos[0], pos[1])
