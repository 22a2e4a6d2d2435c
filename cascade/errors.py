"""Errors that reach the user as one clear line (FORMAT.md, "Bad input")."""
from __future__ import annotations


class InputError(ValueError):
    """Malformed input: names the file, the line or row, and what is wrong.

    Parameters
    ----------
    message : str
        What is wrong, for a person.
    file : str, optional
        The file (or table) the problem is in.
    line : int, optional
        The line of that file, counting the CSV header as line 1.
    """

    unit: str  # 'line' of a file, or 'row' of a table built in Python

    def __init__(self, message: str, file: str | None = None, line: int | None = None):
        self.message = message
        self.file = file
        self.line = line
        self.unit = "line"
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = f"{self.file}"
            if self.line is not None:
                where += f", {self.unit} {self.line}"
            where += ": "
        return where + self.message
