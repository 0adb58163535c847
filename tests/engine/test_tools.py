"""The in-process model tools: one registry, checked arguments, and what each tool does on disk."""

from __future__ import annotations

import stat
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mnemara.engine.events import SessionStats, Usage
from mnemara.engine.tools import (SERVER_NAME, TOOLS, TOOLS_BY_NAME, ToolContext, ToolError, ToolSpec,
                                  build_sdk_server, call_tool, qualified, validate_args)
from mnemara.instance import Instance
from mnemara.memory.notes import parse_notes
from mnemara.store.turns import TurnStore, utc_now
from mnemara.store.window import Budget, plan_eviction
from tests.fakes.tool_calls import err, ok, run

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def ctx(tmp_path: Path):
    inst = Instance("t", tmp_path / "inst")
    config = inst.create()
    store = TurnStore(inst.turns_path)
    notices: list[tuple[str, str]] = []
    context = ToolContext(inst, config, store, SessionStats(),
                          notify=lambda kind, text: notices.append((kind, text)))
    context.notices = notices  # type: ignore[attr-defined]  # for assertions
    yield context
    store.close()
    if context.memory is not None:
        context.memory.close()


def user(store: TurnStore, text: str, **kw):
    return store.add_turn("user", [{"type": "text", "text": text}], **kw)


def assistant(store: TurnStore, text: str, **kw):
    return store.add_turn("assistant", [{"type": "text", "text": text}], **kw)


def window_ids(store: TurnStore) -> list[int]:
    return [t.id for t in store.window()]


# --- the registry --------------------------------------------------------------------------------

EXPECTED_REQUIRED = {
    "write_memory": ["text"],
    "propose_role_amendment": ["text", "rationale", "severity"],
    "inspect_context": [],
    "list_window": [],
    "pin_turn": ["ids"],
    "unpin_turn": ["ids"],
    "evict_turns": [],
    "rag_query": ["question"],
    "rag_index": ["text"],
    "read_turns": ["ids"],
    "wiki_read": ["path"],
    "wiki_write": ["path", "content"],
    "wiki_list": [],
    "update_memory": ["id", "text"],
    "tune_window": [],
    "mark_segment": ["label"],
    "evict_segment": ["label"],
    "evict_last": ["n"],
    "strip_tool_output": [],
    "list_pinned": [],
    "log_choice": ["decision"],
    "slot_set": ["name", "text"],
    "slot_append": ["name", "text"],
    "slot_clear": ["name"],
    "graph_add_node": ["label"],
    "graph_add_edge": ["from_id", "to_id", "relationship"],
    "graph_query": ["cypher"],
    "graph_neighbors": ["node_id"],
    "graph_match": [],
    "graph_shortest_path": ["from_id", "to_id"],
}


def test_every_schema_requires_only_what_is_truly_required():
    assert [t.name for t in TOOLS] == list(TOOLS_BY_NAME)  # each name defined once
    assert set(TOOLS_BY_NAME) == set(EXPECTED_REQUIRED)
    for spec in TOOLS:
        schema = spec.schema
        assert schema["type"] == "object" and schema["additionalProperties"] is False, spec.name
        assert schema["required"] == EXPECTED_REQUIRED[spec.name], spec.name
        assert set(schema["required"]) <= set(schema["properties"]), spec.name
        for key, prop in schema["properties"].items():
            assert prop.get("description"), f"{spec.name}.{key} has no description"
            assert not ("default" in prop and key in schema["required"]), f"{spec.name}.{key}"
        assert len(spec.description) > 60, f"{spec.name}: describe when to use it"


def test_qualified_names_match_the_permission_glob():
    assert SERVER_NAME == "mnemara"
    assert qualified("write_memory") == "mcp__mnemara__write_memory"


def test_importing_the_registry_does_not_import_the_sdk():
    code = "import sys, mnemara.engine.tools; print('claude_agent_sdk' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


# --- argument checking ---------------------------------------------------------------------------

async def test_missing_required_argument_is_a_readable_error(ctx):
    text = await err(ctx, "write_memory", {"category": "x"})
    assert "missing required argument 'text'" in text and "string" in text


async def test_wrong_type_is_a_readable_error(ctx):
    assert "ids must be an array of integers, got a string" in await err(ctx, "pin_turn", {"ids": "3"})
    assert "ids[1] must be an integer, got a boolean" in await err(ctx, "pin_turn", {"ids": [1, True]})
    assert "limit must be an integer" in await err(ctx, "list_window", {"limit": "all"})
    text = await err(ctx, "write_memory", {"text": "x", "payload": {"confidence": 1.5}})
    assert "payload.confidence must be between 0 and 1, got 1.5" in text


async def test_unknown_argument_is_a_readable_error(ctx):
    text = await err(ctx, "write_memory", {"text": "x", "importance": 3})
    assert "unknown argument 'importance'" in text
    assert "text (required), category, payload" in text
    assert "unknown argument 'payload.mood'" in await err(ctx, "write_memory",
                                                           {"text": "x", "payload": {"mood": "ok"}})
    assert "takes no arguments" in await err(ctx, "inspect_context", {"verbose": True})


async def test_enum_and_unknown_tool(ctx):
    text = await err(ctx, "propose_role_amendment", {"text": "a", "rationale": "b", "severity": "urgent"})
    assert "severity must be one of 'low', 'medium', 'high', got 'urgent'" in text
    assert "unknown tool 'nope'" in await err(ctx, "nope")


def test_validate_args_applies_defaults_and_treats_null_as_absent():
    spec = TOOLS_BY_NAME["write_memory"]
    assert validate_args(spec, {"text": "x"}) == {"text": "x", "category": "note"}
    assert validate_args(spec, {"text": "x", "category": None, "payload": None}) == \
        {"text": "x", "category": "note"}
    assert validate_args(TOOLS_BY_NAME["pin_turn"], {"ids": [3.0]}) == {"ids": [3]}


async def test_a_crashing_handler_becomes_an_error_result_and_a_notice(ctx, monkeypatch):
    def boom(_ctx, _args):
        raise RuntimeError("kaput")
    monkeypatch.setitem(TOOLS_BY_NAME, "boom", ToolSpec("boom", "d", TOOLS_BY_NAME["inspect_context"].schema, boom))
    text = await err(ctx, "boom")
    assert "RuntimeError: kaput" in text
    assert ctx.notices == [("error", "boom failed: RuntimeError: kaput")]


async def test_call_tool_accepts_the_qualified_name(ctx):
    assert "window rows" in await ok(ctx, qualified("inspect_context"))


# --- write_memory --------------------------------------------------------------------------------

async def test_write_memory_appends_a_block_with_payload(ctx):
    text = await ok(ctx, "write_memory", {
        "text": "The user prefers tabs.", "category": "preference",
        "payload": {"observation": "reformatted to tabs twice", "confidence": 0.8}})
    files = list(ctx.instance.memory_dir.glob("*.md"))
    assert len(files) == 1 and files[0].name == datetime.now(timezone.utc).strftime("%Y-%m-%d.md")
    assert f"memory/{files[0].name}" in text
    body = files[0].read_text()
    assert "] preference\nThe user prefers tabs.\n" in body
    assert "- **observation**: reformatted to tabs twice" in body
    assert "- **confidence**: 0.8" in body
    (note,) = parse_notes(files[0])
    assert note.category == "preference" and note.at.startswith(str(datetime.now(timezone.utc).year))
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600


async def test_write_memory_defaults_to_category_note(ctx):
    await ok(ctx, "write_memory", {"text": "plain"})
    (note,) = parse_notes(next(ctx.instance.memory_dir.glob("*.md")))
    assert (note.category, note.body) == ("note", "plain")


async def test_write_memory_rejects_a_bad_category(ctx):
    assert "category 'two words'" in await err(ctx, "write_memory", {"text": "x", "category": "two words"})
    assert not ctx.instance.memory_dir.exists() or not list(ctx.instance.memory_dir.glob("*.md"))


async def test_write_memory_queues_the_note_for_the_index_in_the_same_write(ctx):
    text = await ok(ctx, "write_memory", {"text": "remember the lease timeout", "payload": {"evidence": "e"}})
    (path,) = ctx.instance.memory_dir.glob("*.md")
    note_id = f"note:{path.name}:1"
    assert f"id {note_id}" in text
    rows = ctx.store.conn.execute("SELECT atom_id, op, atom FROM index_outbox WHERE atom_id LIKE 'note:%'").fetchall()
    assert [(r[0], r[1]) for r in rows] == [(note_id, "upsert")]
    assert "remember the lease timeout" in rows[0][2]


# --- propose_role_amendment ----------------------------------------------------------------------

async def test_proposal_goes_to_the_review_store_as_a_private_file(ctx):
    from mnemara.replay.proposals import ProposalStore
    user(ctx.store, "you said the fix worked but never ran the tests")
    text = await ok(ctx, "propose_role_amendment", {
        "text": "Always run the tests before saying a change works.",
        "rationale": "I claimed a fix worked twice without running tests.", "severity": "high"})
    (path,) = ctx.instance.proposals_dir.iterdir()
    (proposal,) = ProposalStore(ctx.instance).list("pending")
    assert path.name == f"{proposal.id}.json" and proposal.id in text
    assert "nothing was applied" in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(ctx.instance.proposals_dir.stat().st_mode) == 0o700
    assert (proposal.kind, proposal.origin) == ("role", "model")
    assert proposal.body == "Always run the tests before saying a change works.\n"
    assert proposal.rationale == "severity high: I claimed a fix worked twice without running tests."
    assert [s.atom_id for s in proposal.sources] == ["turn:1"]  # provenance: what prompted it
    assert "never ran the tests" in proposal.sources[0].excerpt
    assert ctx.notices[-1][0] == "info" and proposal.id in ctx.notices[-1][1]


async def test_the_same_amendment_is_stored_once_and_a_rejected_one_never_again(ctx):
    from mnemara.replay.proposals import ProposalStore
    for severity in ("low", "medium"):
        await ok(ctx, "propose_role_amendment", {"text": "Be brief", "rationale": "r", "severity": severity})
    store = ProposalStore(ctx.instance)
    (first,) = store.list()
    store.decide(first.id, "rejected")
    text = await ok(ctx, "propose_role_amendment", {"text": "Be  brief", "rationale": "again", "severity": "high"})
    assert "proposed before" in text and "rejected" in text
    assert [p.status for p in store.list()] == ["rejected"]
    await ok(ctx, "propose_role_amendment", {"text": "Be kind", "rationale": "r", "severity": "low"})
    assert sorted(p.title for p in store.list()) == ["Be brief", "Be kind"]


# --- pins ----------------------------------------------------------------------------------------

async def test_pins_change_what_eviction_keeps(ctx):
    for i in range(4):
        user(ctx.store, f"turn {i}")
    budget = Budget(max_turns=2, max_tokens=1_000_000)
    assert plan_eviction(ctx.store.costs(), budget) == [1, 2]

    text = await ok(ctx, "pin_turn", {"ids": [1, 99]})
    assert "Pinned: #1." in text and "Not in the window: #99." in text
    assert plan_eviction(ctx.store.costs(), budget) == [2, 3]
    assert "Already pinned: #1." in await ok(ctx, "pin_turn", {"ids": [1]})

    text = await ok(ctx, "unpin_turn", {"ids": [1, 2]})
    assert "Unpinned: #1." in text and "Already unpinned: #2." in text
    assert plan_eviction(ctx.store.costs(), budget) == [1, 2]


async def test_pin_needs_at_least_one_id(ctx):
    assert "needs at least 1 item" in await err(ctx, "pin_turn", {"ids": []})


# --- evict_turns ---------------------------------------------------------------------------------

async def test_evict_by_ids_archives_and_skips_pending(ctx):
    for i in range(3):
        user(ctx.store, f"old {i}")
    pending = user(ctx.store, "being answered", status="pending")
    text = await ok(ctx, "evict_turns", {"ids": [1, 2, pending.id, 99]})
    assert window_ids(ctx.store) == [3, pending.id]
    assert ctx.store.archived_count() == 2
    assert "Archived #1, #2" in text
    assert f"#{pending.id} (the turn being answered now)" in text and "#99 (not in the window)" in text
    assert ctx.notices == [("eviction", "2 turns archived by the model")]
    assert ctx.stats.archived_this_session == 2
    assert ctx.store.evictions()[0]["reason"] == "model"
    assert [h.turn_id for h in ctx.store.search("old 1")] == [2]  # still searchable, in the archive


async def test_evict_older_than_spares_recent_pinned_and_pending(ctx):
    old = (datetime.now(timezone.utc) - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    a = user(ctx.store, "old a", created_at=old)
    b = assistant(ctx.store, "old pinned", created_at=old)
    c = user(ctx.store, "old pending", created_at=old, status="pending")
    d = user(ctx.store, "recent", created_at=utc_now())
    ctx.store.set_pinned([b.id])
    text = await ok(ctx, "evict_turns", {"older_than": "2h"})
    assert window_ids(ctx.store) == [b.id, c.id, d.id]
    assert f"Archived #{a.id}" in text
    assert f"#{b.id} (pinned: unpin it first)" in text and f"#{c.id} (the turn being answered now)" in text
    assert "Nothing archived." in await ok(ctx, "evict_turns", {"older_than": "1h30m"})
    assert ctx.notices == [("eviction", "1 turn archived by the model")]


async def test_evict_needs_exactly_one_selector_and_a_real_duration(ctx):
    user(ctx.store, "x")
    assert "exactly one of `ids`" in await err(ctx, "evict_turns", {})
    assert "exactly one of `ids`" in await err(ctx, "evict_turns", {"ids": [1], "older_than": "1h"})
    assert "'soon' is not a duration" in await err(ctx, "evict_turns", {"older_than": "soon"})
    assert "'2 hours' is not a duration" in await err(ctx, "evict_turns", {"older_than": "2 hours"})
    assert window_ids(ctx.store) == [1]


# --- list_window and inspect_context -------------------------------------------------------------

async def test_list_window_shows_one_line_per_row(ctx):
    long = "word " * 40
    t1 = user(ctx.store, long)
    t2 = ctx.store.add_turn("assistant", [
        {"type": "tool_use", "id": "tu1", "name": "Bash", "input": {"command": "ls -la"}},
        {"type": "tool_result", "tool_use_id": "tu1", "content": "a\nb"}])
    t3 = user(ctx.store, "latest", status="pending")
    ctx.store.set_pinned([t1.id])
    lines = (await ok(ctx, "list_window")).splitlines()
    assert lines[0].startswith("3 row(s) in the window")
    assert lines[1].startswith(f"#{t1.id} user {t1.created_at} ~{t1.est_tokens:,} tok [pinned]: word word")
    assert lines[1].endswith("…") and len(lines[1].split(": ", 1)[1]) == 80
    assert lines[2].endswith(f"~{ctx.store.get(t2.id).est_tokens:,} tok: Bash: ls -la")
    assert lines[3] == f"#{t3.id} user {t3.created_at} ~{t3.est_tokens:,} tok [pending]: latest"

    limited = (await ok(ctx, "list_window", {"limit": 1})).splitlines()
    assert limited[0].startswith("3 row(s) in the window, the last 1 shown")
    assert len(limited) == 2 and limited[1].startswith(f"#{t3.id} ")


async def test_list_window_empty(ctx):
    assert await ok(ctx, "list_window") == "The window is empty."


async def test_inspect_context_reports_the_figures(ctx):
    for i in range(3):
        user(ctx.store, f"turn {i}")
    ctx.store.set_pinned([3])
    ctx.store.evict([1], "budget")
    ctx.system_prompt_tokens = 1234
    ctx.stats.last_usage = Usage(input_tokens=100, output_tokens=50, cache_read_input_tokens=900,
                                 cache_creation_input_tokens=0)
    ctx.stats.session_cost_usd, ctx.stats.turns_run, ctx.stats.last_cost_usd = 0.125, 2, 0.05
    ctx.config = ctx.config.replace(max_window_turns=7)  # the engine may swap the config between turns
    report = await ok(ctx, "inspect_context")
    window_tokens = ctx.store.window_tokens()
    assert "window rows: 2 / 7 max_window_turns (1 pinned)" in report
    assert (f"~{window_tokens:,} window / 100,000 max_window_tokens (0%); + ~1,234 system prompt"
            f" = ~{window_tokens + 1234:,} sent") in report
    assert "archived turns: 1 (0 this session)" in report
    assert "input 100, output 50, cache read 900, cache creation 0" in report
    assert "cache hit ratio: 90%" in report
    assert "session cost: $0.1250 over 2 turn(s) (last turn $0.0500)" in report
    assert "3.20 chars/token (default, not calibrated yet)" in report
    assert ": 1 turn(s), ~" in report and "(budget)" in report


async def test_inspect_context_before_any_request(ctx):
    report = await ok(ctx, "inspect_context")
    assert "cache hit ratio: n/a (no request yet)" in report
    assert "recent evictions: none" in report


# --- through the real SDK MCP server --------------------------------------------------------------

async def test_sdk_server_lists_optional_args_as_optional_and_runs_calls(ctx):
    from claude_agent_sdk._internal.sdk_mcp_bridge import SdkMcpBridge
    from mcp.types import LATEST_PROTOCOL_VERSION

    config = build_sdk_server(ctx)
    assert config["type"] == "sdk" and config["name"] == SERVER_NAME
    # The same path the SDK's Query takes for the CLI's `mcp_message` control requests.
    bridge = SdkMcpBridge(SERVER_NAME, config["instance"])
    try:
        init = await bridge.handle({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": LATEST_PROTOCOL_VERSION, "capabilities": {},
            "clientInfo": {"name": "test", "version": "0"}}})
        assert "result" in init, init
        await bridge.handle({"jsonrpc": "2.0", "method": "notifications/initialized"})

        listed = await bridge.handle({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        tools = {t["name"]: t for t in listed["result"]["tools"]}
        assert list(tools) == [t.name for t in TOOLS]
        for spec in TOOLS:
            assert tools[spec.name]["inputSchema"] == spec.schema  # passed through unchanged
            assert tools[spec.name]["description"] == spec.description
        assert tools["write_memory"]["inputSchema"]["required"] == ["text"]
        assert tools["inspect_context"]["annotations"]["readOnlyHint"] is True

        called = await bridge.handle({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "write_memory", "arguments": {"text": "said over MCP"}}})
        result = called["result"]
        assert result["isError"] is False and "Saved a 'note' note" in result["content"][0]["text"]
        (note,) = parse_notes(next(ctx.instance.memory_dir.glob("*.md")))
        assert (note.category, note.body) == ("note", "said over MCP")

        bad = await bridge.handle({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {
            "name": "evict_turns", "arguments": {"older_than": "soon"}}})
        assert bad["result"]["isError"] is True
        assert "not a duration" in bad["result"]["content"][0]["text"]
    finally:
        await bridge.aclose()


async def test_list_window_names_tool_calls_next_to_text(ctx):
    ctx.store.add_turn("assistant", [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "a", "name": "Read", "input": {"file_path": "/etc/hosts"}},
        {"type": "tool_use", "id": "b", "name": "Bash", "input": {"command": "ls"}}])
    line = (await ok(ctx, "list_window")).splitlines()[1]
    assert line.endswith(": Checking. [tools: Read: /etc/hosts; +1 more]")


# --- the registry: features, worker threads, schema keywords ------------------------------------

def _keywords(schema, found):
    for key, value in schema.items():
        found.add(key)
        if key == "properties":
            for sub in value.values():
                _keywords(sub, found)
        elif key == "items" and isinstance(value, dict):
            _keywords(value, found)
    return found


def test_every_schema_keyword_is_one_the_checker_enforces():
    from mnemara.engine.tools import SCHEMA_KEYWORDS
    for spec in TOOLS:
        assert _keywords(spec.schema, set()) <= SCHEMA_KEYWORDS, spec.name


async def test_max_length_and_pattern_are_enforced(ctx, monkeypatch):
    spec = ToolSpec("probe", "A probe tool used only by this test to check argument checking.",
                    {"type": "object", "additionalProperties": False, "required": ["slug"],
                     "properties": {"slug": {"type": "string", "maxLength": 8, "pattern": "^[a-z]+$",
                                             "description": "lower-case letters"}}},
                    lambda c, a: f"got {a['slug']}")
    with pytest.raises(ToolError, match="at most 8"):
        validate_args(spec, {"slug": "abcdefghij"})
    with pytest.raises(ToolError, match="lower-case letters"):
        validate_args(spec, {"slug": "ab1"})
    assert validate_args(spec, {"slug": "abc"}) == {"slug": "abc"}


async def test_a_disabled_feature_offers_and_runs_none_of_its_tools(ctx, monkeypatch):
    from mnemara.engine import tools as registry
    spec = ToolSpec("probe_memory", "A probe tool of the memory feature, used only by this test.",
                    {"type": "object", "properties": {}, "required": [], "additionalProperties": False},
                    lambda c, a: "ran", feature="memory")
    monkeypatch.setattr(registry, "TOOLS_BY_NAME", dict(registry.TOOLS_BY_NAME))
    monkeypatch.setattr(registry, "TOOLS", registry.TOOLS)
    registry.register(spec)
    on = ctx.config.replace(rag_enabled=True)
    off = ctx.config.replace(rag_enabled=False)
    assert "probe_memory" in [t.name for t in registry.active_tools(on)]
    assert "probe_memory" not in [t.name for t in registry.active_tools(off)]
    ctx.config = off
    assert "turned off" in await err(ctx, "probe_memory")
    ctx.config = on
    assert await ok(ctx, "probe_memory") == "ran"
    with pytest.raises(ValueError, match="defined twice"):
        registry.register(spec)


async def test_blocking_handlers_run_off_the_event_loop(ctx, monkeypatch):
    import threading
    from mnemara.engine import tools as registry
    seen = {}

    def handler(c, a):
        seen["thread"] = threading.current_thread()
        return "done"

    monkeypatch.setattr(registry, "TOOLS_BY_NAME", dict(registry.TOOLS_BY_NAME))
    monkeypatch.setattr(registry, "TOOLS", registry.TOOLS)
    registry.register(ToolSpec("probe_slow", "A probe tool that would block, used only by this test.",
                               {"type": "object", "properties": {}, "required": [],
                                "additionalProperties": False}, handler, blocking=True))
    assert await ok(ctx, "probe_slow") == "done"
    assert seen["thread"] is not threading.main_thread()
