"""Errors that reach the user as one clear line (docs/format.md, "Bad input")."""
from __future__ import annotations

from contextlib import contextmanager


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


@contextmanager
def reading(path, kind: str = "file"):
    """Report the failures of opening and decoding ``path`` as one-line InputErrors.

    Wrap every read of a file a user named: a missing file, a directory in its place and
    text that is not UTF-8 each become ``InputError`` naming the file, never a traceback.
    """
    file = str(path)
    try:
        yield
    except FileNotFoundError:
        raise InputError(f"no such {kind}", file) from None
    except IsADirectoryError:
        raise InputError(f"is a directory, not a {kind}", file) from None
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", file) from None


def did_you_mean(name: str, choices, limit: int = 3) -> str:
    """`` (did you mean 'P-SUB-T01'?)`` for the closest ids to a mistyped ``name``, or ``''``.

    Uses :func:`difflib.get_close_matches` (ratio >= 0.6); ``choices`` is any iterable of ids.
    """
    import difflib

    matches = difflib.get_close_matches(str(name), [str(c) for c in choices], n=limit, cutoff=0.6)
    if not matches:
        return ""
    return " (did you mean " + " or ".join(f"'{m}'" for m in matches) + "?)"
