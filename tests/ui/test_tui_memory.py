"""Memory as the user sees it: the recall line in the chat panel (live and reloaded from the
store), the status bar's memory segments, and the recall line of the REPL and `mnemara ask`.

The Textual app is driven with Pilot over the scripted fake CLI, like tests/ui/test_tui.py;
the instance uses the hash embedder and a real LanceDB index in a temp dir.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from mnemara.engine.events import Recalled, TextDelta, TextDone
from mnemara.engine.turn import TurnEngine
from mnemara.instance import Instance
from mnemara.store import TurnStore
from mnemara.store.blocks import text_block
from mnemara.ui.plain import PlainRenderer
from mnemara.ui.tui.history import InputHistory
from mnemara.ui.tui.status import StatusFigures, segments
from tests.fakes.fake_cli import fake_cli
from tests.ui.test_tui import chat_text, drawn, entries, finish_turn, send, status_text, wait_for

MEMORY_CONFIG = {"rag_embedder": "hash", "recall_min_score": 0.1}
QUESTION = "which rack is the staging host in?"
REPLY = "It is in rack 4."


def archive_a_fact(store: TurnStore) -> None:
    """Two turns about the staging host, moved out of the window into the archive."""
    store.add_turn("user", [text_block("our staging host is stg-7 and it sits in rack 4")],
                   created_at="2026-03-01T10:00:00Z")
    store.add_turn("assistant", [text_block("noted: staging host stg-7, rack 4")],
                   created_at="2026-03-01T10:00:05Z")
    store.evict([1, 2], "test")
    store.add_turn("user", [text_block("unrelated: what is for lunch")], created_at="2026-03-02T12:00:00Z")
    store.add_turn("assistant", [text_block("pasta")], created_at="2026-03-02T12:00:03Z")


@pytest.fixture
def make_app(tmp_path: Path, home: Path):
    """make_app(turns, setup=...) -> MnemaraApp over instance "m" (created on first use, reused
    after: a second call is mnemara started again on the same instance)."""
    engines: list[TurnEngine] = []
    made = 0

    def make(turns: list[list[dict[str, Any]]] | None = None, *,
             setup: Callable[[TurnStore], None] | None = None, **config: Any):
        nonlocal made
        from mnemara.ui.tui.app import MnemaraApp
        inst = Instance.named("m")
        if not inst.exists():
            inst.save_config(inst.create().replace(**{**MEMORY_CONFIG, **config}))
        made += 1
        fake = fake_cli(tmp_path / f"fake{made}", turns or [])
        engine = TurnEngine(inst, cli_path=fake.cli_path, env=fake.env)
        engines.append(engine)
        if setup is not None:
            setup(engine.store)
        app = MnemaraApp(engine, history=InputHistory([], tmp_path / "history"), owns_process=False)
        app.fake = fake  # type: ignore[attr-defined]  # for assertions on what the model was sent
        return app

    yield make
    for engine in engines:
        engine.close()


def recall_lines(app) -> list:
    from mnemara.ui.tui.chat import RecallLine
    return entries(app, RecallLine)


def summary_of(line) -> str:
    return str(line.query_one(".fold-summary").render())


def chat_order(app) -> list[str]:
    """The kinds of entry in the chat log, top to bottom."""
    from mnemara.ui.tui.chat import ChatLog
    return [type(e).__name__ for e in app.query_one(ChatLog).children]


# --- the recall line ---------------------------------------------------------------------------------

async def test_a_related_message_shows_what_was_recalled_before_the_reply(make_app) -> None:
    from mnemara.ui.tui.chat import AssistantText
    app = make_app([[{"text": REPLY}]], setup=archive_a_fact)
    async with app.run_test(size=(100, 30)) as pilot:
        await drawn(pilot)
        assert not recall_lines(app)
        assert "recalled" not in status_text(app)
        await send(pilot, QUESTION)
        await finish_turn(pilot)
        (line,) = recall_lines(app)
        summary = summary_of(line)
        assert "⟲ recalled" in summary and "turn #1" in summary
        n = int(summary.split("⟲ recalled ")[1].split()[0])
        assert summary.split("⟲ recalled ")[1].startswith(f"{n} memor{'y' if n == 1 else 'ies'}: ")
        order = chat_order(app)
        this_turn = order[len(order) - 1 - order[::-1].index("UserMessage"):]
        assert this_turn[:3] == ["UserMessage", "RecallLine", "AssistantText"]
        assert [e.source for e in entries(app, AssistantText)][-1] == REPLY

        # Enter opens it: the recalled text itself, with its time and score
        detail = line.query_one(".fold-detail")
        assert not detail.display
        line.focus()
        await pilot.press("enter")
        assert detail.display
        shown = str(detail.render())
        assert "our staging host is stg-7 and it sits in rack 4" in shown
        assert "turn #1" in shown and "2026-03-01T10:00:00Z" in shown and "score 0." in shown
        await pilot.press("enter")
        assert not detail.display

        # the status bar counts it
        assert f"⟲ {n} recalled" in status_text(app)

    # the model was sent the recalled memory, fenced as data, ahead of the message
    (sent,) = app.fake.user_messages()
    content = sent["message"]["content"]
    text = content if isinstance(content, str) else " ".join(b.get("text", "") for b in content)
    assert "<recalled_memory" in text and "stg-7 and it sits in rack 4" in text
    assert text.index("<recalled_memory") < text.index(QUESTION)


async def test_an_unrelated_message_recalls_nothing(make_app) -> None:
    app = make_app([[{"text": "Hello."}]], setup=archive_a_fact, recall_min_score=0.9)
    async with app.run_test(size=(100, 30)) as pilot:
        await send(pilot, "good morning")
        await finish_turn(pilot)
        assert not recall_lines(app)
        assert "recalled" not in status_text(app)
        assert "Hello." in chat_text(app)


async def test_the_recall_is_stored_with_the_turn_and_shown_again_after_a_restart(make_app) -> None:
    from mnemara.ui.tui.chat import RecallLine, UserMessage, turn_widgets
    app = make_app([[{"text": REPLY}]], setup=archive_a_fact)
    async with app.run_test(size=(100, 30)) as pilot:
        await send(pilot, QUESTION)
        await finish_turn(pilot)
        live = summary_of(recall_lines(app)[0])
    stored = app.engine.store.window()[-2]
    assert stored.role == "user" and stored.text == QUESTION
    kinds = [b["type"] for b in stored.blocks]
    assert kinds == ["recall", "text"]
    items = stored.blocks[0]["items"]
    assert items[0]["id"] in ("turn:1", "turn:2") and stored.blocks[0]["mode"] == "hybrid"

    widgets = turn_widgets(stored)
    assert {type(w) for w in widgets} == {RecallLine, UserMessage}

    # mnemara started again on the same instance draws the same line from the store
    again = make_app([[{"text": "ok"}]])
    async with again.run_test(size=(100, 30)) as pilot:
        await drawn(pilot)
        (line,) = recall_lines(again)
        assert summary_of(line) == live
        line.focus()
        await pilot.press("enter")
        assert "stg-7 and it sits in rack 4" in str(line.query_one(".fold-detail").render())
        # nothing recalled in this session yet: the status bar does not claim a recall
        assert "recalled" not in status_text(again)


async def test_recall_off_shows_no_recall_line(make_app) -> None:
    app = make_app([[{"text": REPLY}]], setup=archive_a_fact, recall="off")
    async with app.run_test(size=(100, 30)) as pilot:
        await send(pilot, QUESTION)
        await finish_turn(pilot)
        assert not recall_lines(app)
        assert "recalled" not in status_text(app)
    assert [b["type"] for b in app.engine.store.window()[-2].blocks] == ["text"]


# --- the status bar ----------------------------------------------------------------------------------

def figures(**memory: Any) -> StatusFigures:
    return StatusFigures(4, 20, 2_000, 100_000, None, None, None, 0.0, "claude-sonnet-4-6",
                         **{"archived_session": 0, **memory})


def memory_segment(f: StatusFigures):
    found = [s for s in segments(f) if s.key == "memory"]
    return found[0] if found else None


def test_status_segments_for_recall_and_the_index() -> None:
    plain = figures(memory_mode="hybrid")
    assert memory_segment(plain) is None
    assert not [s for s in segments(plain) if s.key == "recall"]

    recall = [s for s in segments(figures(recalled=3, recall_tokens=1_450)) if s.key == "recall"]
    assert [s.text for s in recall] == ["⟲ 3 recalled ~1.4k"]

    queued = memory_segment(figures(memory_pending=12, memory_mode="hybrid"))
    assert queued.text == "index: 12 queued" and queued.parts[0][1] == "label"

    failing = memory_segment(figures(memory_pending=12, memory_failing=2, memory_mode="hybrid"))
    assert failing.text == "index: 2 failing" and failing.parts[0][1] == "alert"

    text_only = memory_segment(figures(memory_mode="text"))
    assert text_only.text == "memory: full-text only" and text_only.parts[0][1] == "warn"
    # queued or failing work says more than the mode: it takes the place
    assert memory_segment(figures(memory_pending=1, memory_mode="text")).text == "index: 1 queued"

    assert memory_segment(figures(memory_mode=None)) is None  # the index not opened yet


def test_every_status_style_has_a_colour() -> None:
    from mnemara.ui.tui.widgets import STATUS_STYLES
    f = figures(recalled=1, recall_tokens=10, memory_pending=3, memory_failing=1, memory_mode="text",
                archived_session=2, busy=True)
    styles = {style for seg in segments(f) for _, style in seg.parts}
    assert styles <= set(STATUS_STYLES)


async def test_status_bar_says_full_text_only_without_an_embedder(make_app) -> None:
    app = make_app([[{"text": REPLY}]], setup=archive_a_fact, rag_embedder="none")
    async with app.run_test(size=(140, 30)) as pilot:
        await send(pilot, QUESTION)
        await finish_turn(pilot)
        assert recall_lines(app)  # full text still recalls the lexical match
        await wait_for(pilot, lambda: "memory: full-text only" in status_text(app))


# --- the REPL and `mnemara ask` ----------------------------------------------------------------------

def recalled_event() -> Recalled:
    items = [{"id": "turn:1", "kind": "turn", "time": "2026-03-01T10:00:00Z", "score": 0.61,
              "signals": {"text": 0.7}, "text": "our staging host is stg-7"},
             {"id": "note:2026-03-01.md:4", "kind": "note", "time": "2026-03-01T11:00:00Z",
              "score": 0.4, "signals": {"text": 0.5}, "text": "rack 4"}]
    from mnemara.views import recall_summary
    return Recalled(items, 180, "hybrid", recall_summary({"items": items}))


def test_plain_renderer_puts_the_recall_line_on_stderr_only() -> None:
    out, err = io.StringIO(), io.StringIO()
    renderer = PlainRenderer(out, err, color=False)
    renderer.render(recalled_event())
    renderer.render(TextDelta("It is in rack 4."))
    renderer.render(TextDone("It is in rack 4."))
    assert out.getvalue() == "It is in rack 4.\n"
    assert err.getvalue() == ("⟲ recalled 2 memories: turn #1, note 2026-03-01.md:4 "
                              "(~180 tokens)\n")


def test_plain_renderer_ends_a_half_written_line_before_the_recall_line() -> None:
    out, err = io.StringIO(), io.StringIO()
    renderer = PlainRenderer(out, err, color=True)
    renderer.render(TextDelta("half a line"))
    renderer.render(recalled_event())
    assert out.getvalue() == "half a line\n"
    assert err.getvalue().startswith("\033[2m⟲ recalled 2 memories") and err.getvalue().endswith("\033[0m\n")


def test_ask_prints_the_recall_on_stderr_and_only_the_reply_on_stdout(fake_cli_env: dict[str, str],
                                                                      tmp_path: Path) -> None:
    env = {**fake_cli_env, **fake_cli(tmp_path / "fake", [[{"text": REPLY, "chunks": 2}]]).env}
    inst = Instance("a", Path(env["MNEMARA_HOME"]) / "a")
    inst.save_config(inst.create().replace(**MEMORY_CONFIG))
    with TurnStore(inst.turns_path) as store:
        archive_a_fact(store)
    proc = subprocess.run([sys.executable, "-m", "mnemara", "ask", "-i", "a", QUESTION], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == REPLY + "\n"
    recall_line = next(ln for ln in proc.stderr.splitlines() if "⟲ recalled" in ln)
    assert "turn #1" in recall_line and "tokens)" in recall_line
    assert "Traceback" not in proc.stderr
