"""What a compress and a strip cost the prompt cache, on the wire: mnemara's engine -> the REAL
bundled Claude Code CLI -> the fake Messages API on 127.0.0.1, with Anthropic's documented
cache rule replayed over the recorded requests (tests/fakes/cache_model.py, the model the
cache-share benchmark scores with).

- The summary request continues the session's own request: the same tools and system, the
  previous request's blocks byte for byte, then only the newest reply and the instruction; so the
  cache serves the covered turns instead of the summary re-sending them.
- After a compress the history changes once; from then on each request extends the previous one
  byte for byte.
- A strip the model asks for is held until the budget has to make room: the next requests are
  unchanged, and the strip lands in the request that changes anyway (one cache break, not two).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mnemara.engine.events import Notice, TurnFinished
from mnemara.engine.turn import RENDER_OVERHEAD, TurnEngine
from mnemara.ops.compress import REQUEST_MARK
from mnemara.ui.commands import dispatch
from mnemara.ui.compress_command import answer
from tests.e2e.conftest import CliHome
from tests.fakes.cache_model import CacheModel, plain
from tests.fakes.drive import run_turn
from tests.fakes.fake_api import FakeMessagesAPI

pytestmark = pytest.mark.e2e

FILLER = " ".join(["The pipeline discussion covered caches, queues and retries in detail."] * 30)
SUMMARY = 'The user chose Postgres: "use Postgres, not MySQL" (#1). Nothing else is open.'


@pytest.fixture
def engine(cli_home: CliHome):
    role = cli_home.home / "role.md"
    role.write_text("You are the e2e test role. Answer briefly.")
    inst = cli_home.instance("cache", recall="off", rag_enabled=False, role_doc_path=str(role))
    eng = TurnEngine(inst, env=cli_home.env)
    yield eng, cli_home.work
    eng.close()


def content(body: dict[str, Any]) -> list[str]:
    """The first message's blocks as the cache compares them (without `cache_control`)."""
    return [plain(b) for b in body["messages"][0]["content"]]


def window(body: dict[str, Any]) -> list[str]:
    """mnemara's `<turn ...>` blocks in a request (the CLI's reminders left out)."""
    return [b["text"] for b in body["messages"][0]["content"]
            if b.get("type") == "text" and b["text"].startswith("<turn ")]


def replay(bodies: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """(cached bytes, uncached bytes) of each request under the modelled prompt cache."""
    cache = CacheModel()
    return [cache.read(body) for body in bodies]


async def turn(eng: TurnEngine, api: FakeMessagesAPI, text: str, *steps: dict[str, Any]) -> list[Any]:
    for step in steps:
        api.enqueue([step])
    events = await run_turn(eng, text)
    done = events[-1]
    assert isinstance(done, TurnFinished) and done.status == "complete", done.error
    return events


def reply(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


async def test_the_summary_request_reads_the_covered_turns_from_the_cache(engine, api) -> None:
    eng, _ = engine
    await turn(eng, api, f"Please use Postgres, not MySQL. {FILLER}", reply(f"Postgres it is. {FILLER}"))
    await turn(eng, api, f"And the queue? {FILLER}", reply(f"A small one. {FILLER}"))
    await turn(eng, api, "Thanks, what next?", reply("Tests."))
    stored = {t.id: t.rendered for t in eng.store.window()}
    last = api.requests[-1]

    api.enqueue([reply(SUMMARY)])
    outcome = await dispatch(eng, "/compress 4")
    assert outcome.view == "compress", outcome.text
    ask = api.requests[-1]
    # The session's request, continued: same tools (the CLI's and mnemara's), same system prompt
    # (the role doc), the previous request's blocks byte for byte, then the newest reply and the
    # instruction naming the covered turns.
    assert ask["tools"] == last["tools"] and ask["system"] == last["system"]
    assert content(ask)[: len(content(last))] == content(last)
    tail = ask["messages"][0]["content"][len(content(last)):]
    assert [b["text"] for b in tail[:-1]] == [stored[6]]
    assert tail[-1]["text"].startswith(REQUEST_MARK) and "#1-#4" in tail[-1]["text"]
    assert "verbatim" in tail[-1]["text"] and tail[-1].get("cache_control")
    assert window(ask) == [stored[i] for i in range(1, 7)]
    # So the cache serves the whole prefix, the four covered turns in it: what is read afresh is
    # the newest reply, the instruction and what the CLI adds after them, far less than the
    # covered turns alone.
    cached, uncached = replay(api.requests)[-1]
    covered = sum(len(stored[i].encode()) for i in range(1, 5))
    assert cached >= sum(len(c.encode()) for c in content(last)) and uncached < covered / 2

    answer(eng, outcome.data["proposal"], True)
    summary = eng.store.window()[-1]
    await turn(eng, api, "Let's write the tests.", reply("Starting."))
    await turn(eng, api, "Go on.", reply("Done."))
    await turn(eng, api, "And then?", reply("Ship it."))
    after, later, latest = api.requests[-3:]
    # The one change: the covered turns gave way to the summary, after the turns that stay.
    assert window(after)[:3] == [stored[5], stored[6], summary.rendered]
    # From then on the history is byte-identical from turn to turn: each request extends the one
    # before, and the cache serves all of it but the newest exchange.
    assert content(later)[: len(content(after))] == content(after)
    assert content(latest)[: len(content(later))] == content(later)
    costs = replay(api.requests)
    for body, (cached, uncached) in zip((later, latest), costs[-2:]):
        newest = sum(len(plain(b).encode()) for b in body["messages"][0]["content"][-2:])
        assert uncached < newest + 4_000  # the newest exchange and the CLI's environment note


def big_log(path: Path, name: str) -> Path:
    path.write_text("".join(f"{name} line {n}: worker-{n % 5} renewed its lease\n" for n in range(300)))
    return path


async def test_a_strip_is_held_until_the_budget_changes_the_history_anyway(engine, api) -> None:
    eng, work = engine
    log = big_log(work / "a.log", "alpha")
    await turn(eng, api, f"First topic. {FILLER}", reply(f"Noted. {FILLER}"))           # 1, 2
    await turn(eng, api, f"Second topic. {FILLER}", reply(f"Noted too. {FILLER}"))      # 3, 4
    await turn(eng, api, "read a.log", {"type": "tool_use", "name": "Read",             # 5, 6
                                        "input": {"file_path": str(log)}}, reply("read a"))
    held = await turn(eng, api, "strip the old log",                                    # 7, 8
                      {"type": "tool_use", "name": "mcp__mnemara__strip_tool_output",
                       "input": {"ids": [6]}}, reply("held"))
    assert not [e for e in held if isinstance(e, Notice) and "stripped" in e.text]
    result = api.requests[-1]["messages"][-1]["content"][0]
    assert "Held 1 large tool result in #6" in str(result)
    before = api.requests[-1]
    await turn(eng, api, "what now?", reply("waiting"))                                 # 9, 10
    quiet = api.requests[-1]
    # Held: the next request extends the previous one byte for byte; the log is still in it.
    assert content(quiet)[: len(content(before))] == content(before)
    assert "alpha line 50:" in window(quiet)[5]

    # The budget is now one token short of the next message: it has to make room before it.
    text = "and now?"
    rows = eng.store.costs()
    incoming = eng.store.estimator.estimate_chars(len(text) + RENDER_OVERHEAD)
    eng.set_config(eng.config.replace(max_window_tokens=eng.tools.system_prompt_tokens
                                      + sum(r.est_tokens for r in rows) + incoming - 1))
    made_room = await turn(eng, api, text, reply("room made"))                         # 11, 12
    [notice] = [e for e in made_room if isinstance(e, Notice) and "stripped" in e.text]
    assert "the model stripped 1 tool output from #6" in notice.text
    [eviction] = [e for e in made_room if isinstance(e, Notice) and e.kind == "eviction"]
    changed = api.requests[-1]
    await turn(eng, api, "go on", reply("on we go"))
    settled = api.requests[-1]
    # The strip rode on the eviction the budget made anyway (the oldest chat turns left, as they
    # would have without the strip); the log's turn stayed, as a stub from now on.
    gone = eviction.data["ids"]
    assert gone[0] == 1 and 6 not in gone
    stub = next(b for b in window(changed) if b.startswith('<turn id="6"'))
    assert "output stripped from the window:" in stub and "alpha line 50:" not in stub
    assert content(settled)[: len(content(changed))] == content(changed)
    # One cache break in the whole conversation (the old immediate strip made two): the request
    # that had to change anyway.
    heads = [content(body) for body in api.requests]
    breaks = [n for n in range(1, len(heads)) if heads[n][: len(heads[n - 1])] != heads[n - 1]]
    assert len(breaks) == 1 and api.requests[breaks[0]] is changed
