"""Exceptions meant for the user: the CLI prints them as one line naming what was wrong and where."""

from __future__ import annotations


class ScganError(Exception):
    """Base class of errors caused by the user's input (files, arguments, data), not by a bug."""


class ImageReadError(ScganError):
    """An image file that cannot be decoded; carries the path and the reason."""

    def __init__(self, path, reason: str | None = None):
        if reason is None:  # rebuilt from one formatted message (pickling, DataLoader workers re-raising)
            path, _, reason = str(path).partition(": ")
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")

    def __reduce__(self):
        return (type(self), (self.path, self.reason))


class InputError(ScganError, ValueError):
    """Bad argument or data: wrong shape, range, pairing, missing file."""
