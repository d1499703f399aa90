"""Errors that the command line turns into one clear line for the user."""

from __future__ import annotations


class ScreentimeError(Exception):
    """A failure the user can fix: the message says what is wrong and what to do (exit status 1)."""

    exit_status = 1


class UsageError(ScreentimeError):
    """A wrong argument or option on the command line (exit status 2)."""

    exit_status = 2
