"""The model's window tools: tune_window, mark_segment/evict_segment, evict_last,
strip_tool_output, list_pinned and log_choice. Real SQLite store, real memory files; the engine
test goes through the SDK's real subprocess transport with the fake CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mnemara.engine.events import Notice, TurnFinished
from mnemara.engine.tools import active_tools
from mnemara.engine.turn import TurnEngine
from mnemara.instance import Instance
from mnemara.memory.notes import parse_notes
from mnemara.memory.sources import turn_atom
from mnemara.store.blocks import text_block, tool_result_block, tool_use_block
from mnemara.store.turns import TurnStore
from tests.fakes.drive import run_turn
from tests.fakes.fake_cli import fake_cli
from tests.engine.test_tools import ctx  # noqa: F401  (the ToolContext fixture)
from tests.fakes.tool_calls import err, ok




def user(store: TurnStore, text: str, **kw: Any):
    return store.add_turn("user", [text_block(text)], **kw)


def assistant(store: TurnStore, text: str, **kw: Any):
    return store.add_turn("assistant", [text_block(text)], **kw)


def tool_turn(store: TurnStore, call: str, output: str, *, tool: str = "Bash"):
    """An assistant turn that ran one tool and got `output` back."""
    return store.add_turn("assistant", [
        tool_use_block(call, tool, {"command": "cat big.log"}),
        tool_result_block(call, output, False),
        text_block("read it")])


def ids(store: TurnStore) -> list[int]:
    return [t.id for t in store.window()]


# --- tune_window -----------------------------------------------------------------------------------

async def test_tune_window_changes_the_saved_budget_within_bounds_and_tells_the_user(ctx):
    text = await ok(ctx, "tune_window", {"max_turns": 40, "max_tokens": 50_000})
    assert "max_window_turns 20 → 40" in text and "max_window_tokens 100,000 → 50,000" in text
    on_disk = ctx.instance.load_config()
    assert (on_disk.max_window_turns, on_disk.max_window_tokens) == (40, 50_000)
    assert (ctx.config.max_window_turns, ctx.config.max_window_tokens) == (40, 50_000)
    [(kind, notice)] = ctx.notices
    assert kind == "info" and "the model changed the window budget" in notice
    assert "max_window_tokens 100,000 → 50,000" in notice


async def test_tune_window_refuses_what_the_user_did_not_allow(ctx):
    ctx.config = ctx.config.replace(tune_window_tokens=[20_000, 60_000])
    ctx.instance.save_config(ctx.config)
    text = await err(ctx, "tune_window", {"max_tokens": 80_000}, one_line=True)
    assert "80,000 is outside what the user allows, 20,000 to 60,000 (config tune_window_tokens)" in text
    assert "max_turns 2 is outside" in await err(ctx, "tune_window", {"max_turns": 2})
    assert "give max_turns, max_tokens or both" in await err(ctx, "tune_window", {})
    assert ctx.instance.load_config().max_window_tokens == 100_000  # nothing saved
    assert ctx.notices == []
    assert "Nothing changed" in await ok(ctx, "tune_window", {"max_turns": 20})


async def test_tune_window_is_not_offered_when_the_user_turns_it_off(ctx):
    assert "tune_window" in [t.name for t in active_tools(ctx.config)]
    ctx.config = ctx.config.replace(model_may_tune_window=False)
    assert "tune_window" not in [t.name for t in active_tools(ctx.config)]
    assert "turned off" in await err(ctx, "tune_window", {"max_turns": 10})


class _Engines:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.instance = Instance.named("w")
        self.instance.create()
        self.engines: list[TurnEngine] = []
        self.fake: Any = None

    def engine(self, turns: list[list[dict[str, Any]]], **config: Any) -> TurnEngine:
        if config:
            self.instance.save_config(self.instance.load_config().replace(**config))
        self.fake = fake_cli(self.tmp / f"fake{len(self.engines)}", turns)
        eng = TurnEngine(self.instance, cli_path=self.fake.cli_path, env=self.fake.env)
        self.engines.append(eng)
        return eng


@pytest.fixture
def engines(home: Path, tmp_path: Path):
    made = _Engines(tmp_path)
    yield made
    for eng in made.engines:
        eng.close()


async def test_a_smaller_window_from_tune_window_is_enforced_before_the_next_turn(engines):
    eng = engines.engine([[{"text": "a"}], [{"text": "b"}], [{"text": "c"}],
                          [{"tool": "mcp__mnemara__tune_window", "input": {"max_turns": 4},
                            "id": "t1"}, {"text": "smaller now"}],
                          [{"text": "e"}]], rag_enabled=False)
    for msg in ("one", "two", "three"):
        await run_turn(eng, msg)
    events = await run_turn(eng, "keep the window small")
    notices = [e for e in events if isinstance(e, Notice)]
    assert any("the model changed the window budget: max_window_turns 20 → 4" in n.text for n in notices)
    assert eng.config.max_window_turns == 4 and engines.instance.load_config().max_window_turns == 4
    assert eng.store.archived_count() == 0  # nothing moves during the turn that asked
    events = await run_turn(eng, "next")
    assert isinstance(events[-1], TurnFinished) and events[-1].status == "complete"
    assert any(isinstance(e, Notice) and e.kind == "eviction" for e in events)
    assert eng.store.window_counts()[0] <= 4 and eng.store.archived_count() >= 6


# --- segments --------------------------------------------------------------------------------------

async def test_a_finished_segment_leaves_the_window_as_one_unit_into_the_archive(ctx):
    store = ctx.store
    user(store, "set up the project")                                     # 1
    assistant(store, "done")                                              # 2
    user(store, "now debug the flaky lease test", status="pending")      # 3
    text = await ok(ctx, "mark_segment", {"label": "flaky lease test"})
    assert "starts at #3 (the message being answered now)" in text
    store.update_turn(3, status="complete")
    assistant(store, "the lease timeout was 1 ms")                        # 4
    user(store, "and the retry?")                                         # 5
    assistant(store, "fixed")                                             # 6
    store.set_pinned([5], True)
    user(store, "thanks, now write the docs", status="pending")           # 7

    text = await ok(ctx, "evict_segment", {"label": "flaky lease test"})
    assert "Archived segment 'flaky lease test': #3, #4, #6" in text
    assert "#5 (pinned: unpin it first)" in text and "#7 (the turn being answered now)" in text
    assert ids(store) == [1, 2, 5, 7]
    assert ctx.notices == [("eviction", "3 turns archived by the model (segment 'flaky lease test')")]
    assert ctx.stats.archived_this_session == 3
    assert [h.turn_id for h in store.search("lease timeout")] == [4]  # archived, still searchable
    assert "the lease timeout was 1 ms" in await ok(ctx, "read_turns", {"ids": [4]})
    # closed: the same label cannot be evicted twice, and the reply lists what is open
    assert "no open segment named 'flaky lease test'; open segments: none" in await err(
        ctx, "evict_segment", {"label": "flaky lease test"}, one_line=True)


async def test_a_segment_ends_where_the_next_one_starts(ctx):
    store = ctx.store
    for i in range(6):
        (user if i % 2 == 0 else assistant)(store, f"turn {i + 1}")
    await ok(ctx, "mark_segment", {"label": "a", "start_id": 2})
    await ok(ctx, "mark_segment", {"label": "b", "start_id": 4})
    assert "segment named 'a' is already open" in await err(ctx, "mark_segment", {"label": "a"})
    assert "start_id #99 is not in the window" in await err(ctx, "mark_segment",
                                                            {"label": "c", "start_id": 99})
    await ok(ctx, "evict_segment", {"label": "a"})
    assert ids(store) == [1, 4, 5, 6]
    text = await err(ctx, "evict_segment", {"label": "zzz"})
    assert "open segments: 'b' (from #4)" in text
    await ok(ctx, "evict_segment", {"label": "b"})
    assert ids(store) == [1]
    await ok(ctx, "mark_segment", {"label": "c", "start_id": 1})
    store.purge()  # deleting everything for good forgets the marks too
    assert store.conn.execute("SELECT count(*) FROM segments").fetchone()[0] == 0


# --- evict_last ------------------------------------------------------------------------------------

async def test_evict_last_archives_the_newest_rows_but_not_the_pending_or_pinned(ctx):
    store = ctx.store
    for i in range(5):
        user(store, f"row {i + 1}")
    store.set_pinned([4], True)
    user(store, "being answered", status="pending")  # 6
    text = await ok(ctx, "evict_last", {"n": 3})
    assert "Archived #3, #5" in text and "#4 (pinned: unpin it first)" in text
    assert ids(store) == [1, 2, 4, 6]
    assert store.archived_count() == 2
    assert "n must be between 1 and 1000, got 0" in await err(ctx, "evict_last", {"n": 0})


# --- strip_tool_output -----------------------------------------------------------------------------

BIG = "".join(f"log line {n}: lease renewed by worker-{n % 7}\n" for n in range(400))  # ~16 kB


async def test_strip_replaces_large_results_by_a_stub_and_keeps_the_original(ctx):
    store = ctx.store
    ctx.config = ctx.config.replace(strip_min_chars=3000)
    user(store, "read the log")                           # 1
    tool_turn(store, "toolu_a", BIG + "UNIQUEWORD zebra")  # 2
    user(store, "and the short one")                      # 3
    tool_turn(store, "toolu_b", "ok, 2 lines")            # 4
    user(store, "thanks")                                 # 5
    before = {t.id: t for t in store.window()}

    text = await ok(ctx, "strip_tool_output", {"ids": [2, 4, 99], "now": True})
    assert "Stripped 1 tool result in #2" in text and "Not in the window: #99." in text
    after = {t.id: t for t in store.window()}
    # only turn 2's rendering changed; the small result and every other turn are byte-identical
    assert [i for i in after if after[i].rendered != before[i].rendered] == [2]
    stub = f"[Bash output stripped from the window: {len(BIG) + 16:,} characters;"
    assert stub in after[2].rendered and "lease renewed" not in after[2].rendered
    assert after[2].rendered.count("\n") < 6 and after[2].est_tokens < before[2].est_tokens / 10
    assert "read_turns([2]) shows it in full" in after[2].rendered
    # nothing is lost: the block keeps the original; search, the index entry and read_turns use it
    result = after[2].blocks[1]
    assert result["stripped"]["content"] == BIG + "UNIQUEWORD zebra"
    assert [h.turn_id for h in store.search("UNIQUEWORD")] == [2]
    assert "UNIQUEWORD zebra" in turn_atom(after[2]).text
    opened = await ok(ctx, "read_turns", {"ids": [2]})
    assert "Bash output toolu_a, stripped from the window, in full:" in opened
    assert "log line 399: lease renewed by worker-0" in opened
    # the user is told; a second strip finds nothing left to strip
    assert ctx.notices and ctx.notices[-1][0] == "info" and "stripped 1 tool output from #2" in ctx.notices[-1][1]
    assert "Nothing to strip" in await ok(ctx, "strip_tool_output", {"ids": [2], "now": True})


async def test_strip_changes_nothing_until_it_frees_enough_at_once(ctx):
    store = ctx.store
    user(store, "q")
    tool_turn(store, "toolu_a", "y" * 3000)
    tool_turn(store, "toolu_b", "z" * 3000)
    before = [t.rendered for t in store.window()]
    assert ctx.config.strip_min_chars == 8000
    text = await ok(ctx, "strip_tool_output", {"ids": [2, 3], "now": True})
    assert "Nothing stripped: the 2 large tool results in #2, #3 would free 5," in text
    assert "below strip_min_chars (8,000)" in text
    assert [t.rendered for t in store.window()] == before and ctx.notices == []
    # a later batch that frees enough goes all at once: both turns in one strip
    tool_turn(store, "toolu_c", "w" * 4000)
    text = await ok(ctx, "strip_tool_output", {"ids": [2, 3, 4], "now": True})
    assert "Stripped 3 tool results in #2, #3, #4" in text
    assert all("stripped" in t.blocks[1] for t in store.window()[1:])


async def test_strip_without_ids_leaves_the_newest_turns_and_skips_pinned(ctx):
    store = ctx.store
    ctx.config = ctx.config.replace(strip_min_chars=0)
    for i in range(6):
        tool_turn(store, f"toolu_{i}", "v" * 2000)  # 1..6
    store.set_pinned([1], True)
    text = await ok(ctx, "strip_tool_output", {"now": True})
    assert "Stripped 1 tool result in #2" in text and "#1 (pinned: unpin it first)" in text
    stripped = [t.id for t in store.window() if "stripped" in t.blocks[1]]
    assert stripped == [2]  # 3..6 are the newest four


async def test_a_stripped_turn_exports_with_its_original(ctx):
    from mnemara.ops.export import iter_records
    ctx.config = ctx.config.replace(strip_min_chars=0)
    tool_turn(ctx.store, "toolu_a", BIG)
    await ok(ctx, "strip_tool_output", {"ids": [1], "now": True})
    [record] = [r for r in iter_records(ctx.instance, ctx.config, exported_at="now") if r["type"] == "turn"]
    assert record["blocks"][1]["stripped"]["content"] == BIG


# --- list_pinned -----------------------------------------------------------------------------------

async def test_list_pinned_shows_each_pinned_turn_and_their_share(ctx):
    assert "No pinned turns" in await ok(ctx, "list_pinned")
    user(ctx.store, "the task: migrate the billing cron to UTC")
    assistant(ctx.store, "ok")
    user(ctx.store, "key decision: keep the old job until Friday")
    await ok(ctx, "pin_turn", {"ids": [1, 3]})
    text = await ok(ctx, "list_pinned")
    lines = text.splitlines()
    assert lines[0].startswith("2 pinned turn(s), ~") and "of the 100,000 budget" in lines[0]
    assert lines[1].startswith("#1 user ") and "migrate the billing cron to UTC" in lines[1]
    assert lines[2].startswith("#3 user ") and "keep the old job until Friday" in lines[2]
    assert len(lines) == 3


# --- log_choice ------------------------------------------------------------------------------------

async def test_log_choice_writes_an_indexed_decision_note(ctx):
    text = await ok(ctx, "log_choice", {
        "decision": "Use SQLite for the job queue.",
        "alternatives": ["Redis", "a JSON file"], "reason": "No server to run; one file to back up."})
    [path] = ctx.instance.memory_dir.glob("*.md")
    note_id = f"note:{path.name}:1"
    assert f"Logged the decision as {note_id} and queued for the index" in text
    [note] = parse_notes(path)
    assert note.category == "decision"
    assert note.body == ("Use SQLite for the job queue.\n- **alternatives**: Redis; a JSON file\n"
                         "- **reason**: No server to run; one file to back up.")
    rows = ctx.store.conn.execute(
        "SELECT atom_id, op, atom FROM index_outbox WHERE atom_id LIKE 'note:%'").fetchall()
    assert [(r[0], r[1]) for r in rows] == [(note_id, "upsert")]
    assert json.loads(rows[0][2])["category"] == "decision"


async def test_log_choice_needs_a_decision(ctx):
    assert "missing required argument 'decision'" in await err(ctx, "log_choice", {"reason": "r"})
    assert "must not be empty" in await err(ctx, "log_choice", {"decision": "  "})
