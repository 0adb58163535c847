"""Memory operations shared by the CLI and the chat: note, search, recall, reindex, wiki."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..errors import MnemaraError

if TYPE_CHECKING:
    from ..config import Config
    from ..index.lance import SearchResult
    from ..instance import Instance
    from ..memory.service import MemoryService
    from ..memory.wiki import WikiEntry, WikiPage
    from ..memory.writes import NoteWritten
    from ..store.turns import TurnStore


def note(instance: "Instance", text: str, category: str = "note",
         payload: dict[str, Any] | None = None, *, store: "TurnStore | None" = None,
         config: "Config | None" = None) -> "NoteWritten":
    """Append a memory note and queue it for the index (fast: no index is opened)."""
    from ..memory.writes import write_note
    from ..store.turns import TurnStore
    config = config or instance.load_config()
    try:
        if store is not None:
            return write_note(instance, store, config, text, category, payload)
        with TurnStore(instance.turns_path) as own:
            return write_note(instance, own, config, text, category, payload)
    except ValueError as exc:  # empty text, bad category, bad wiki slug
        raise MnemaraError(str(exc)) from None


def search(instance: "Instance", query: str, limit: int = 20, *,
           store: "TurnStore | None" = None) -> list[Any]:
    """Full-text search over the window, the archive and the memory notes, those replay
    archived included (they are only kept out of automatic recall); turn hits first, notes kept
    to a fair share when both have more than `limit`."""
    from ..memory.archive import iter_archived
    from ..memory.notes import search_notes
    from ..store import TurnStore
    turns: list[Any] = []
    if store is not None:
        turns = store.search(query, limit)
    elif instance.turns_path.exists():
        with TurnStore(instance.turns_path, readonly=True) as own:
            turns = own.search(query, limit)
    notes = search_notes(instance.memory_dir, query, limit,
                         also=(entry.note for entry in iter_archived(instance.memory_dir)))
    if len(turns) + len(notes) <= limit:
        return [*turns, *notes]
    keep_notes = min(len(notes), max(limit // 2, limit - len(turns)))
    return turns[: limit - keep_notes] + notes[:keep_notes]


def open_memory(instance: "Instance", config: "Config | None" = None) -> "MemoryService":
    from ..memory.service import MemoryService
    return MemoryService(instance, config or instance.load_config())


def recall(service: "MemoryService", queries: Sequence[str], *, k: int = 10,
           kinds: Sequence[str] | None = None, since: str | None = None, until: str | None = None,
           now: datetime | None = None) -> list["SearchResult"]:
    """The same retrieval the engine uses, one result list per query."""
    from ..memory.service import MemoryUnavailable
    try:
        return [service.search(q, k=k, kinds=kinds, since=since, until=until, now=now) for q in queries]
    except MemoryUnavailable as exc:
        raise MnemaraError(str(exc)) from None


def reindex(service: "MemoryService", progress: Callable[[int, int], None] | None = None) -> int:
    from ..memory.service import MemoryUnavailable
    try:
        return service.reindex(progress)
    except MemoryUnavailable as exc:
        raise MnemaraError(str(exc)) from None


def wiki_list(instance: "Instance", prefix: str | None = None) -> list["WikiEntry"]:
    from ..memory.wiki import Wiki
    return Wiki(instance.wiki_dir).list(prefix)


def wiki_read(instance: "Instance", slug: str) -> "WikiPage":
    from ..memory.wiki import Wiki
    return Wiki(instance.wiki_dir).read(slug)


def wiki_write(instance: "Instance", slug: str, content: str, mode: str = "replace", *,
               store: "TurnStore | None" = None, config: "Config | None" = None) -> "WikiPage":
    from ..memory.writes import write_wiki
    from ..store.turns import TurnStore
    config = config or instance.load_config()
    if store is not None:
        return write_wiki(instance, store, config, slug, content, mode)
    with TurnStore(instance.turns_path) as own:
        return write_wiki(instance, own, config, slug, content, mode)
