"""Errors a user can act on. The CLI turns each into one line on stderr and exit code 2."""

from __future__ import annotations


class MnemaraError(Exception):
    """A problem the user can fix; its message is one complete sentence, shown as-is."""

    exit_code = 2


class InstanceError(MnemaraError):
    """Bad instance name, missing instance, or an instance that already exists."""


class ConfigError(MnemaraError):
    """config.json is unreadable, not JSON, or fails validation."""


class StoreError(MnemaraError):
    """turns.sqlite cannot be opened or is not a mnemara store."""


class StoreDamaged(StoreError):
    """turns.sqlite is not a readable SQLite database any more (overwritten pages, truncation,
    another file in its place). Raised at the store boundary, before anything is written, so the
    user gets one line naming the file and the way back (doctor, restore) instead of a traceback."""
