"""An instance with memory worth replaying, shared by the replay tests and the kill -9 driver.

Real components only: notes written through the memory write path (day files plus the index
outbox), turns in the real turn store (some evicted to the archive), a wiki page, and the index
built by draining the outbox with the deterministic `hash` embedder, and the knowledge graph.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from mnemara.config import Config
from mnemara.instance import Instance

# Three notes about one topic (two of them the same words: a near-duplicate), one note that is
# a paraphrase-level duplicate, unrelated notes, and a cluster of self-observations.
STAGING = [
    "The staging host is stg-7 and deploys run with make deploy on stg-7",
    "Deploys to the staging host stg-7 run with make deploy on stg-7",
    "The staging host is stg-7 and deploys run with make deploy on stg-7",
    "Deploys to staging host stg-7 failed because the disk on stg-7 was full",
]
OTHER = [
    "The user prefers green tea in the morning before standup meetings",
    "Postgres migrations run with alembic upgrade head in the api repo",
]
SELF = [
    "My answers ran too long again; keep answers short and direct",
    "Answers too long again: keep answers short and direct for the user",
    "I wrote long answers again; keep answers short and direct please",
]
TURNS = [
    ("user", "How do I deploy to the staging host stg-7 with make deploy?"),
    ("assistant", "Run make deploy on the staging host stg-7; deploys need the disk checked first."),
    ("user", "thanks"),
    ("assistant", "You're welcome."),
]


def make_replay_instance(name: str = "work", **config: Any) -> Instance:
    """Create the instance (config changes on top of the hash embedder) with its memory."""
    from mnemara.memory.service import MemoryService
    from mnemara.ops import memory as ops
    from mnemara.store import TurnStore
    inst = Instance.named(name)
    inst.create(Config.defaults().replace(**{"rag_embedder": "hash", **config}))
    cfg = inst.load_config()
    for text in STAGING + OTHER:
        ops.note(inst, text, config=cfg)
    for text in SELF:
        ops.note(inst, text, "self_observation", config=cfg)
    ops.wiki_write(inst, "tea", "# Tea\n\nThe user prefers green tea in the morning before standup meetings.\n",
                   config=cfg)
    with TurnStore(inst.turns_path) as store:
        ids = [store.add_turn(role, [{"type": "text", "text": text}]).id for role, text in TURNS]
        store.evict(ids[:2], "test")
    if cfg.rag_enabled:
        service = MemoryService(inst, cfg)
        try:
            service.drain()
        finally:
            service.close()
    if cfg.graph_enabled:  # `mnemara graph` first applies the writes queued for the graph
        from click.testing import CliRunner

        from mnemara.cli import main
        assert CliRunner().invoke(main, ["graph", "-i", name]).exit_code == 0
    return inst


def old_note(inst: Instance, text: str, days_ago: int) -> None:
    """A note written `days_ago` days ago (straight into its day file, as an old one would be)."""
    from mnemara.memory.notes import write_note_block
    write_note_block(inst.memory_dir, text, "note",
                     at=datetime.now(timezone.utc) - timedelta(days=days_ago))
