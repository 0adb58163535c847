"""Anthropic's prompt cache, replayed over recorded Messages API requests.

The fake Messages API (tests/fakes/fake_api.py) does not cache, so tests and benchmarks that
measure cache friendliness replay the documented rule over the request bodies it recorded: a
request reads from the cache the longest prefix (tools, system, then message blocks, at block
boundaries, looking back at most 20 blocks from each of its `cache_control` breakpoints) that an
earlier request wrote at one of its breakpoints; then its own breakpoints are written.
Sizes are bytes of each block's JSON (without `cache_control`), a stand-in for tokens. Not
modelled: the 5-minute lifetime and the minimum cacheable length.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

LOOKBACK = 20  # blocks the API looks back from a breakpoint for an earlier cache entry


class CacheModel:
    """The prompt cache, replayed over a sequence of request bodies."""

    def __init__(self) -> None:
        self.entries: set[str] = set()

    @staticmethod
    def units(body: dict[str, Any]) -> list[tuple[str, int, bool]]:
        """(prefix hash, size in bytes, is a breakpoint) for each cacheable unit, in cache order."""
        raw: list[tuple[str, bool]] = []
        for tool in body.get("tools") or []:
            raw.append(("tool " + plain(tool), "cache_control" in tool))
        system = body.get("system")
        for block in ([{"type": "text", "text": system}] if isinstance(system, str) else system or []):
            raw.append(("system " + plain(block), "cache_control" in block))
        for n, message in enumerate(body["messages"]):
            content = message["content"]
            for block in ([{"type": "text", "text": content}] if isinstance(content, str) else content):
                raw.append((f"{n} {message['role']} " + plain(block), "cache_control" in block))
        out, digest = [], hashlib.sha256()
        for text, mark in raw:
            digest.update(text.encode() + b"\0")
            out.append((digest.copy().hexdigest(), len(text.encode()), mark))
        return out

    def read(self, body: dict[str, Any]) -> tuple[int, int]:
        """(cached bytes, uncached bytes) of this request; then its breakpoints are written."""
        units = self.units(body)
        cached_upto = -1
        for i, (_, _, mark) in enumerate(units):
            if mark:
                for j in range(i, max(-1, i - LOOKBACK), -1):
                    if units[j][0] in self.entries:
                        cached_upto = max(cached_upto, j)
                        break
        cached = sum(size for _, size, _ in units[: cached_upto + 1])
        total = sum(size for _, size, _ in units)
        self.entries.update(h for h, _, mark in units if mark)
        return cached, total - cached


def plain(block: dict[str, Any]) -> str:
    """A block as the cache compares it: its JSON without the `cache_control` marker."""
    return json.dumps({k: v for k, v in block.items() if k != "cache_control"}, sort_keys=True)
