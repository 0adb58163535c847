"""/role_doc /name /export /import /stop /edit /regen and /show's width, through `dispatch` as
both front ends call them; turns run through the real SDK against the scripted fake CLI."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from mnemara.engine.events import TextDelta, TurnFinished
from mnemara.engine.turn import TurnEngine
from mnemara.instance import Instance
from mnemara.ui.commands import dispatch
from mnemara.ui.session_commands import save_role_doc, send_edited
from tests.fakes.fake_cli import FakeCLI, fake_cli


@pytest.fixture
def make_engine(tmp_path: Path, home: Path):
    engines: list[TurnEngine] = []

    def make(turns: list[list[dict[str, Any]]] | None = None, name: str = "s",
             **config: Any) -> tuple[TurnEngine, FakeCLI]:
        inst = Instance.named(name)
        cfg = inst.create()
        inst.save_config(cfg.replace(rag_enabled=False, **config))
        fake = fake_cli(tmp_path / f"fake-{name}", turns or [])
        engine = TurnEngine(inst, cli_path=fake.cli_path, env=fake.env)
        engines.append(engine)
        return engine, fake

    yield make
    for engine in engines:
        engine.close()


async def run(events: Any) -> list[Any]:
    return [e async for e in events]


def sent_text(fake: FakeCLI) -> list[str]:
    """The window each request carried: the text of its blocks, joined."""
    return ["\n".join(b["text"] for b in m["message"]["content"]) for m in fake.user_messages()]


# --- /edit and /regen ----------------------------------------------------------------------------

async def test_edit_with_text_archives_the_old_exchange_and_sends_the_new_message(make_engine) -> None:
    engine, fake = make_engine([[{"text": "Paris."}], [{"text": "Lyon is second."}]])
    await run(engine.run("what is the biggest city in France?"))
    out = await dispatch(engine, "/edit what is the second city in France?")
    assert out.kind == "info" and out.events is not None
    events = await run(out.events)
    assert isinstance(events[-1], TurnFinished) and events[-1].status == "complete"
    window = engine.store.window()
    assert [t.text for t in window] == ["what is the second city in France?", "Lyon is second."]
    archived = {t.text for t in engine.store.iter_archive()}
    assert archived == {"what is the biggest city in France?", "Paris."}  # kept, not deleted
    reasons = {r[0] for r in engine.store.conn.execute("SELECT archive_reason FROM archive")}
    assert reasons == {"edited"}
    last_request = sent_text(fake)[-1]
    assert "second city" in last_request and "biggest city" not in last_request
    assert "Paris." not in last_request
    assert engine.store.search("biggest")  # the old question is still found


async def test_edit_without_text_hands_the_last_message_to_the_front_end(make_engine) -> None:
    engine, _ = make_engine([[{"text": "first reply"}], [{"text": "edited reply"}]])
    await run(engine.run("a message with a typo"))
    out = await dispatch(engine, "/edit")
    question = engine.store.window()[0]
    assert out.view == "edit" and out.data == {"turn_id": question.id, "text": "a message with a typo"}
    assert engine.store.count() == 2  # nothing changes until the edited text is sent
    await run(send_edited(engine, question.id, "a message without a typo"))
    assert [t.text for t in engine.store.window()] == ["a message without a typo", "edited reply"]


async def test_an_edit_of_a_message_that_is_no_longer_the_last_changes_nothing(make_engine) -> None:
    engine, _ = make_engine([[{"text": "one"}], [{"text": "two"}]])
    await run(engine.run("first"))
    first = engine.store.window()[0].id
    await run(engine.run("second"))
    events = await run(send_edited(engine, first, "changed first"))
    assert "no longer the last one" in events[0].text
    assert [t.text for t in engine.store.window()] == ["first", "one", "second", "two"]


async def test_an_edit_too_large_for_the_budget_keeps_the_old_exchange(make_engine) -> None:
    engine, _ = make_engine([[{"text": "short answer"}]], max_window_tokens=2_000)
    await run(engine.run("short question"))
    out = await dispatch(engine, "/edit " + "word " * 5_000)
    events = await run(out.events)
    assert events[-1].status == "refused" and "stays in the window" in events[-1].error
    assert [t.text for t in engine.store.window()] == ["short question", "short answer"]
    assert engine.store.archived_count() == 0


async def test_regen_archives_the_old_reply_and_asks_again(make_engine) -> None:
    engine, fake = make_engine([[{"text": "A dull answer."}], [{"text": "A better answer."}]])
    await run(engine.run("tell me something"))
    out = await dispatch(engine, "/regen")
    events = await run(out.events)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "A better answer."
    assert [t.text for t in engine.store.window()] == ["tell me something", "A better answer."]
    assert {t.text for t in engine.store.iter_archive()} == {"tell me something", "A dull answer."}
    first, second = sent_text(fake)
    assert second.count("tell me something") == 1 and "A dull answer." not in second


async def test_edit_and_regen_on_an_empty_window_and_while_busy(make_engine) -> None:
    engine, _ = make_engine()
    assert (await dispatch(engine, "/regen")).kind == "error"
    assert (await dispatch(engine, "/edit new")).kind == "error"
    engine.busy = True
    try:
        out = await dispatch(engine, "/regen")
        assert out.kind == "warning" and "waits until the turn finishes" in out.text
    finally:
        engine.busy = False


# --- /stop -----------------------------------------------------------------------------------------

async def test_stop_interrupts_the_running_turn_and_keeps_the_partial_reply(make_engine) -> None:
    engine, _ = make_engine([[{"text": "Working on it", "chunks": 1}, {"sleep": 30},
                              {"text": "never sent"}]])
    assert (await dispatch(engine, "/stop")).text == "no turn is running; nothing to stop"
    events: list[Any] = []

    async def consume() -> None:
        async for event in engine.run("a long job"):
            events.append(event)

    task = asyncio.create_task(consume())
    for _ in range(400):
        if any(isinstance(e, TextDelta) for e in events):
            break
        await asyncio.sleep(0.05)
    out = await dispatch(engine, "/stop")
    assert "stopping the turn" in out.text
    await asyncio.wait_for(task, 30)
    assert events[-1].status == "interrupted"
    reply = engine.store.window()[-1]
    assert reply.status == "interrupted" and "Working on it" in reply.text


# --- /name -------------------------------------------------------------------------------------------

async def test_name_sets_shows_and_clears_the_display_name(make_engine) -> None:
    engine, _ = make_engine()
    assert "(none: the instance name 's')" in (await dispatch(engine, "/name")).text
    assert (await dispatch(engine, "/name Research desk")).text == "display name is now 'Research desk'"
    assert engine.instance.load_config().display_name == "Research desk"
    assert "'Research desk'" in (await dispatch(engine, "/name")).text
    bad = await dispatch(engine, "/name evil\x1b]0;title\x07")
    assert bad.kind == "error" and engine.config.display_name == "Research desk"
    assert (await dispatch(engine, "/name " + "x" * 41)).kind == "error"
    await dispatch(engine, "/name --clear")
    assert engine.instance.load_config().display_name == ""


# --- /role_doc ---------------------------------------------------------------------------------------

async def test_role_doc_edits_the_configured_file_and_the_next_turn_sends_it(make_engine,
                                                                             tmp_path: Path) -> None:
    doc = tmp_path / "role.md"
    doc.write_text("You are terse.\n")
    doc.chmod(0o644)
    engine, fake = make_engine([[{"text": "ok"}]], role_doc_path=str(doc))
    out = await dispatch(engine, "/role_doc")
    draft = out.data["draft"]
    assert out.view == "role_doc" and draft.text == "You are terse.\n" and not draft.creating
    saved = save_role_doc(engine, draft, "You are verbose and cheerful.\n")
    assert saved.kind == "info" and "the next turn uses it" in saved.text
    assert doc.read_text() == "You are verbose and cheerful.\n"
    assert doc.stat().st_mode & 0o777 == 0o644  # the file's mode is kept
    assert not list(tmp_path.glob(".role.md.*"))  # no temp file left behind
    await run(engine.run("hi"))
    assert fake.flag("--system-prompt") == "You are verbose and cheerful.\n"


async def test_role_doc_with_none_set_creates_one_in_the_instance(make_engine) -> None:
    engine, _ = make_engine()
    out = await dispatch(engine, "/role_doc")
    draft = out.data["draft"]
    assert draft.creating and draft.path == engine.instance.root / "role.md"
    assert "creating the role doc" in out.text
    save_role_doc(engine, draft, "You help with gardening.")
    assert engine.config.role_doc_path == str(engine.instance.root / "role.md")
    assert engine.instance.load_config().role_doc_path == str(engine.instance.root / "role.md")
    assert (engine.instance.root / "role.md").read_text() == "You help with gardening."


async def test_role_doc_through_a_link_keeps_the_link(make_engine, tmp_path: Path) -> None:
    real = tmp_path / "shared-role.md"
    real.write_text("old")
    link = tmp_path / "link.md"
    link.symlink_to(real)
    engine, _ = make_engine(role_doc_path=str(link))
    draft = (await dispatch(engine, "/role_doc")).data["draft"]
    save_role_doc(engine, draft, "new")
    assert link.is_symlink() and real.read_text() == "new"


@pytest.mark.parametrize("content,problem", [(b"bad \xff byte", "not valid UTF-8"),
                                             (b"nul \x00 byte", "NUL byte"), (None, "directory")])
async def test_role_doc_refuses_a_file_it_cannot_edit_as_text(make_engine, tmp_path: Path,
                                                              content: bytes | None, problem: str) -> None:
    doc = tmp_path / "role.md"
    if content is None:
        doc.mkdir()
    else:
        doc.write_bytes(content)
    engine, _ = make_engine(role_doc_path=str(doc))
    out = await dispatch(engine, "/role_doc")
    assert out.kind == "error" and problem in out.text and out.view is None
    if content is not None:
        assert doc.read_bytes() == content


async def test_role_doc_refuses_to_save_text_that_cannot_be_sent(make_engine, tmp_path: Path) -> None:
    doc = tmp_path / "role.md"
    doc.write_text("fine")
    engine, _ = make_engine(role_doc_path=str(doc))
    draft = (await dispatch(engine, "/role_doc")).data["draft"]
    out = save_role_doc(engine, draft, "has a \0 in it")
    assert out.kind == "error" and "NUL" in out.text and doc.read_text() == "fine"


# --- /export and /import -------------------------------------------------------------------------------

async def test_export_writes_a_private_file_that_import_takes_into_a_new_instance(make_engine) -> None:
    engine, _ = make_engine([[{"text": "Kiwis are birds."}]])
    await run(engine.run("what are kiwis?"))
    out = await dispatch(engine, "/export")
    assert out.kind == "info" and "exported 2 turns" in out.text
    path = next((engine.instance.root / "exports").glob("s-*.jsonl"))
    assert str(path) in out.text
    assert path.stat().st_mode & 0o777 == 0o600
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["type"] for r in records] == ["header", "turn", "turn"]

    fresh, _ = make_engine(name="fresh")
    imported = await dispatch(fresh, f"/import {path}")
    assert imported.kind == "info" and "imported the export" in imported.text
    assert [t.text for t in fresh.store.window()] == ["what are kiwis?", "Kiwis are birds."]


async def test_export_to_a_named_markdown_file_and_never_over_an_existing_one(make_engine,
                                                                              tmp_path: Path) -> None:
    engine, _ = make_engine([[{"text": "Noted."}]])
    await run(engine.run("remember the code word"))
    target = tmp_path / "chat.md"
    out = await dispatch(engine, f"/export {target}")
    assert out.kind == "info" and "remember the code word" in target.read_text()
    again = await dispatch(engine, f"/export {target}")
    assert again.kind == "error" and "already exists; give another file name" in again.text


async def test_import_of_an_export_into_a_busy_instance_says_why_it_is_refused(make_engine,
                                                                               tmp_path: Path) -> None:
    source, _ = make_engine([[{"text": "hello back"}]], name="src")
    await run(source.run("hello"))
    path = tmp_path / "src.jsonl"
    await dispatch(source, f"/export {path}")
    target, _ = make_engine([[{"text": "reply"}]], name="dst")
    await run(target.run("already talking"))
    out = await dispatch(target, f"/import {path}")
    assert out.kind == "error"
    assert "is a mnemara export, not a conversation" in out.text
    assert "new or empty instance" in out.text and "mnemara import -i dst-imported" in out.text
    assert target.store.count() == 2


async def test_import_of_a_jsonl_conversation_appends_it(make_engine, tmp_path: Path) -> None:
    engine, _ = make_engine([[{"text": "first reply"}]])
    await run(engine.run("first"))
    conv = tmp_path / "old.jsonl"
    conv.write_text('{"role": "user", "text": "old question", "ts": "2025-01-01T10:00:00Z"}\n'
                    '{"role": "assistant", "text": "old answer"}\n')
    out = await dispatch(engine, f"/import {conv}")
    assert out.kind == "info" and "imported 2 turns" in out.text and "after 2 existing turns" in out.text
    assert [t.text for t in engine.store.window()][-2:] == ["old question", "old answer"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"role": "user", "txt": "typo"}\n')
    refused = await dispatch(engine, f"/import {bad}")
    assert refused.kind == "error" and "bad.jsonl:1" in refused.text
    assert (await dispatch(engine, "/import")).kind == "error"


# --- /show's width ------------------------------------------------------------------------------------

async def test_show_wraps_to_the_width_it_is_shown_at(make_engine) -> None:
    engine, _ = make_engine()
    engine.store.add_turn("user", [{"type": "text", "text": "word " * 60}])
    narrow = (await dispatch(engine, "/show", width=60)).text.splitlines()
    assert max(len(line) for line in narrow) <= 60
    wide = (await dispatch(engine, "/show", width=160)).text.splitlines()
    assert max(len(line) for line in wide) > 100  # not hard-wrapped at 100 any more


async def test_regen_keeps_a_compress_summary_made_after_the_question(make_engine) -> None:
    """/compress after the last exchange adds a pinned summary turn after it: /regen takes back
    the exchange, never the summary (it stands for turns already in the archive)."""
    from mnemara.store.blocks import summary_block
    engine, _ = make_engine([[{"text": "A dull answer."}], [{"text": "A better answer."}]])
    await run(engine.run("tell me something"))
    summary = engine.store.add_turn("assistant", [summary_block(
        "Earlier: the user picked Postgres.", [1], first_at="2026-01-01T00:00:00Z",
        last_at="2026-01-01T00:00:00Z", model="m")])
    engine.store.set_pinned([summary.id])
    out = await dispatch(engine, "/regen")
    await run(out.events)
    window = engine.store.window()
    assert summary.id in [t.id for t in window]
    assert [t.text for t in window if t.id != summary.id] == ["tell me something", "A better answer."]
