"""Exceptions a user reads.

Every error raised for a user's code names where (file:line:col and the line
itself), what (the construct), why, and what to write instead.
"""

import linecache


class S2SADError(Exception):
    """Base class of every error s2sad raises about a user's code."""


class UnsupportedSyntaxError(S2SADError, SyntaxError):
    """A construct outside the subset s2sad can differentiate."""

    def __init__(self, construct, where, hint=""):
        self.construct = construct
        self.filename, self.lineno, self.col = where.filename, where.lineno, where.col
        self.source_line = where.line
        message = f"{where}: s2sad cannot differentiate {construct}"
        if where.line:
            message += f"\n    {where.line.strip()}"
        if hint:
            message += f"\n  hint: {hint}"
        Exception.__init__(self, message)
        self.msg = message
        self.text = where.line
        self.offset = where.col + 1

    def __str__(self):
        return self.msg


class NonDifferentiableError(S2SADError, TypeError):
    """A call or value that has no derivative rule and is not a user function."""


class Location:
    """A place in the user's source: file, 1-based line, 0-based column."""

    def __init__(self, filename, lineno, col=0):
        self.filename, self.lineno, self.col = filename, lineno, col

    @property
    def line(self):
        return linecache.getline(self.filename, self.lineno).rstrip("\n") if self.filename else ""

    def __str__(self):
        return f"{self.filename}:{self.lineno}:{self.col + 1}"
