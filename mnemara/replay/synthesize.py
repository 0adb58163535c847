"""`replay --synthesize`: proposal bodies and fact atoms written by a small model.

Each request is one SDK query through the Claude Code CLI, as the turn engine makes them (same
CLI, same environment and retry bound, no tools, no settings files), with `replay_model` (or
the instance's model when it is empty). Nothing here writes: the caller stores what comes back.

Fact atoms make archived conversations findable by what was said rather than how: "the user's
staging host is stg-7 (said on 2026-03-02)", indexed as kind `fact` with a pointer to its source
turns. Conversations are taken in fixed blocks of FACT_BLOCK turn ids, each block once it has
wholly left the window, and a block's facts have ids derived from the block
(`fact:turns-40-59.3`), so a block is never synthesized twice.
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from ..errors import MnemaraError

if TYPE_CHECKING:
    from ..config import Config
    from ..index.atoms import Atom
    from ..store.turns import TurnStore
    from .patterns import Pattern

FACT_BLOCK = 20          # turn ids per conversation block
FACT_CHARS = 300         # longest fact kept
TURN_CHARS = 2_000       # characters of each turn shown to the model
MAX_FACTS = 12
FACT_PREFIX = "fact:turns-"

WIKI_SYSTEM = """\
You write one wiki page for a personal knowledge base from the memory excerpts below (notes and \
conversation turns, each with its id and date). Markdown, starting with the title as a level-1 \
heading. State what recurs, the decisions and facts, names, paths and commands, and causes and \
effects where the excerpts state them; cite the ids in square brackets. Use only what the \
excerpts say. No preamble, no closing remarks. At most 400 words."""

ROLE_SYSTEM = """\
An AI assistant noted the observations below about its own behaviour. Write a short amendment \
to its role document: a level-2 heading, then 1-5 imperative sentences the assistant should \
follow from now on, grounded only in the observations; cite their ids in square brackets. \
No preamble. At most 150 words."""

FACT_SYSTEM = """\
Extract durable facts from the conversation turns below: things about the user, their work, \
their systems and their decisions that would still be worth knowing later. One fact per line, \
each line starting with "- ", a short standalone statement that makes sense without the \
conversation (name who and what), ending with "(said on YYYY-MM-DD)" using the turn's date. \
Only facts stated in the turns; at most 12. If there are none, reply NONE."""


class SynthesisFailed(MnemaraError):
    """The model could not be asked, or answered with an error: one line."""


@dataclass(frozen=True)
class FactBlock:
    key: str                  # "turns-40-59"
    turns: tuple["Atom", ...]

    @property
    def span(self) -> str:
        return self.key.removeprefix("turns-")


def fact_blocks(turns: Sequence["Atom"], archived_ids: set[int], store: "TurnStore") -> list[FactBlock]:
    """Blocks of archived turns in the period with no fact atoms yet (a block still partly in
    the window waits for a later replay)."""
    blocks: dict[int, list["Atom"]] = {}
    for atom in turns:
        if atom.turn_id is not None:
            blocks.setdefault(atom.turn_id // FACT_BLOCK, []).append(atom)
    out = []
    window = {r[0] for r in store.conn.execute("SELECT id FROM turns")}
    for n, atoms in sorted(blocks.items()):
        lo, hi = n * FACT_BLOCK, n * FACT_BLOCK + FACT_BLOCK - 1
        if any(lo <= t <= hi for t in window) or not all(a.turn_id in archived_ids for a in atoms):
            continue
        key = f"turns-{lo}-{hi}"
        if store.conn.execute("SELECT 1 FROM manual_atoms WHERE id LIKE ? LIMIT 1",
                              (f"fact:{key}.%",)).fetchone():
            continue
        out.append(FactBlock(key, tuple(sorted(atoms, key=lambda a: a.turn_id or 0))))
    return out


def existing_facts(store: "TurnStore", since: str) -> list[tuple[str, int]]:
    """(turn span, number of fact atoms) for the fact blocks written for the period."""
    rows = store.conn.execute("SELECT id FROM manual_atoms WHERE id LIKE ? AND created_at >= ?",
                              (f"{FACT_PREFIX}%", since)).fetchall()
    counts: dict[str, int] = {}
    for (atom_id,) in rows:
        span = atom_id.removeprefix(FACT_PREFIX).split(".")[0]
        counts[span] = counts.get(span, 0) + 1
    return sorted(counts.items(), key=lambda kv: int(kv[0].split("-")[0]))


def excerpts(atoms: Sequence["Atom"]) -> str:
    return "\n\n".join(f"[{a.id} · {a.created_at[:10]}] {a.text.strip()[:TURN_CHARS]}" for a in atoms)


def write_body(config: "Config", pattern: "Pattern") -> str:
    system = WIKI_SYSTEM if pattern.kind == "wiki" else ROLE_SYSTEM
    head = f"Title: {pattern.title}\n\n" if pattern.kind == "wiki" else ""
    text = ask(config, system, head + excerpts(pattern.members))
    if not text.strip():
        raise SynthesisFailed("the model returned an empty draft")
    return text.strip() + "\n"


def write_facts(config: "Config", block: FactBlock) -> list[str]:
    lines = "\n\n".join(f"[turn {a.turn_id} · {a.role} · {a.created_at[:10]}] {a.text.strip()[:TURN_CHARS]}"
                        for a in block.turns)
    answer = ask(config, FACT_SYSTEM, lines)
    day = block.turns[-1].created_at[:10]
    facts = []
    for line in answer.splitlines():
        m = re.match(r"^\s*[-*•]\s+(.+)$", line)
        if not m:
            continue
        fact = " ".join(m[1].split())
        if "(said on" not in fact:
            fact = f"{fact.rstrip('.')} (said on {day})"
        facts.append(fact[:FACT_CHARS])
    return facts[:MAX_FACTS]


def ask(config: "Config", system: str, text: str) -> str:
    """One question to the model, no tools; the text of its answer."""
    return asyncio.run(_ask(config, system, text))


async def _ask(config: "Config", system: str, text: str) -> str:
    from claude_agent_sdk import ClaudeAgentOptions

    from ..engine.oneshot import AskFailed, ask_once
    stderr: list[str] = []
    env = {"CLAUDE_CODE_MAX_RETRIES": str(config.max_api_retries),
           "CLAUDE_AGENT_SDK_CLIENT_APP": "mnemara"}
    options = ClaudeAgentOptions(
        tools=[], system_prompt=system, model=config.replay_model or config.model,
        cwd=os.getcwd(), cli_path=os.environ.get("MNEMARA_CLI_PATH") or None, env=env,
        stderr=stderr.append, setting_sources=[], verbatim_prompts=True, max_turns=1)
    message = {"type": "user", "message": {"role": "user", "content": [{"type": "text", "text": text}]},
               "parent_tool_use_id": None}
    try:
        answer = await ask_once(options, message, front_end="ask", stderr=lambda: stderr)
    except AskFailed as exc:
        raise SynthesisFailed(f"the model could not draft ({exc.reason})") from None
    if answer.error is not None:
        raise SynthesisFailed(f"the model could not draft ({answer.error})")
    return answer.text
