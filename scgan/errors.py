"""Exceptions meant for the user: the CLI prints them as one line naming what was wrong and where."""

from __future__ import annotations


class ScganError(Exception):
    """Base class of errors caused by the user's input (files, arguments, data), not by a bug."""


class ImageReadError(ScganError):
    """An image file that cannot be decoded; carries the path and the reason."""

    def __init__(self, path, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class InputError(ScganError, ValueError):
    """Bad argument or data: wrong shape, range, pairing, missing file."""
