"""Timestamps as mnemara stores them: ISO-8601 UTC, "YYYY-MM-DDTHH:MM:SSZ". One parser for every
place a time comes in (imported turns, note headers, --since / --until / --now, the model's
since / until)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

_SHOWN_CHARS = 40


def parse_timestamp(value: str) -> str:
    """An ISO-8601 date or time as "YYYY-MM-DDTHH:MM:SSZ" in UTC (naive means UTC).

    Raises ValueError with a short reason; callers add where the value came from.
    """
    if not isinstance(value, str):
        raise ValueError(f"must be an ISO-8601 string, got {type(value).__name__}")
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{shown(value)} is not an ISO-8601 date or time "
                         "(e.g. 2026-01-02T10:00:00Z)") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    try:
        at = at.astimezone(timezone.utc)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 falls before year 1 in UTC
        raise ValueError(f"{shown(value)} is out of range") from None
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def shown(value: Any) -> str:
    """A value quoted for an error message, cut to a readable length."""
    text = value if isinstance(value, str) else json.dumps(value)
    return repr(text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS - 3] + "...")
