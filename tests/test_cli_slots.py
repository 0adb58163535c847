"""`mnemara slot -i NAME list|show|set|edit|clear|undo`, in-process through click and as the real
entry point: what a user sees, what is stored, and what the next request will carry."""

from __future__ import annotations

import json
from pathlib import Path


def test_set_list_show_and_undo(cli, make_instance) -> None:
    make_instance("w")
    assert cli("slot", "-i", "w", "list").stdout == "no slots yet\n"
    out = cli("slot", "-i", "w", "set", "current_task", "fix", "the", "parser")
    assert out.exit_code == 0 and "saved slot 'current_task'" in out.stdout
    assert "`mnemara slot undo current_task` takes it back" in out.stdout
    cli("slot", "set", "current_task", "fix the lexer", "-i", "w")  # -i after the subcommand too
    listing = cli("slot", "-i", "w", "list").stdout
    assert "current_task" in listing and "fix the lexer" in listing and "by user" in listing
    assert cli("slot", "-i", "w", "show", "current_task").stdout == "fix the lexer\n"
    undone = cli("slot", "-i", "w", "undo", "current_task")
    assert undone.exit_code == 0 and "it holds: fix the parser" in undone.stdout
    data = json.loads(cli("slot", "-i", "w", "list", "--json").stdout)
    assert data["current_task"]["text"] == "fix the parser"
    history = cli("slot", "-i", "w", "show", "current_task", "--history").stdout.splitlines()
    assert [line.split()[3] for line in history] == ["set", "set", "undo"]


def test_set_from_stdin_and_clear(cli, make_instance) -> None:
    make_instance("w")
    cli("slot", "-i", "w", "set", "notes", "-", input="line one\nline two\n")
    assert cli("slot", "-i", "w", "show", "notes").stdout == "line one\nline two\n"
    assert "cleared slot 'notes'" in cli("slot", "-i", "w", "clear", "notes").stdout
    assert cli("slot", "-i", "w", "list").stdout.startswith("no slots yet")


def test_edit_in_the_editor_saves_a_new_version(cli, make_instance, tmp_path: Path) -> None:
    make_instance("w")
    cli("slot", "-i", "w", "set", "todo", "write tests")
    editor = tmp_path / "ed.sh"
    editor.write_text("#!/bin/sh\nprintf 'write tests\\nthen docs' > \"$1\"\n")
    editor.chmod(0o755)
    out = cli("slot", "-i", "w", "edit", "todo", env={"VISUAL": str(editor)})
    assert out.exit_code == 0 and "saved slot 'todo'" in out.stdout
    assert cli("slot", "-i", "w", "show", "todo").stdout == "write tests\nthen docs\n"
    unchanged = tmp_path / "same.sh"
    unchanged.write_text("#!/bin/sh\ntrue\n")
    unchanged.chmod(0o755)
    assert "no changes" in cli("slot", "-i", "w", "edit", "todo", env={"VISUAL": str(unchanged)}).stdout


def test_mistakes_are_one_line(cli, make_instance, assert_user_error) -> None:
    make_instance("w", slot_max_chars=20)
    assert_user_error(cli("slot", "-i", "w", "set", "Bad-Name", "x"), "not a valid slot name")
    assert_user_error(cli("slot", "-i", "w", "set", "list", "x"), "reserved word")
    assert_user_error(cli("slot", "-i", "w", "set", "long", "x" * 21), "slot_max_chars")
    assert_user_error(cli("slot", "-i", "w", "undo", "never"), "nothing to undo")
    assert_user_error(cli("slot", "-i", "w", "show", "never"), "is empty")
    assert_user_error(cli("slot", "-i", "nope", "list"), "nope")


def test_show_prompt_shows_the_slots_the_next_message_ends_with(cli, make_instance) -> None:
    make_instance("w")
    assert "slots" not in cli("show", "-i", "w", "--prompt").stdout
    cli("slot", "-i", "w", "set", "user_profile", "prefers short answers")
    out = cli("show", "-i", "w", "--prompt").stdout
    assert "ending with your slots, changed since last sent" in out
    assert '<slot name="user_profile">prefers short answers</slot>' in out
    data = json.loads(cli("show", "-i", "w", "--prompt", "--json").stdout)
    assert "prefers short answers" in data["next_message_slots"]
    # once a turn carried them, the next message does not repeat them
    from mnemara.instance import Instance
    from mnemara.memory.slots import pending_block
    from mnemara.store.blocks import text_block
    from mnemara.store.turns import TurnStore
    inst = Instance.named("w")
    with TurnStore(inst.turns_path) as store:
        store.add_turn("user", [text_block("hi"), pending_block(store, inst.load_config())])
    out = cli("show", "-i", "w", "--prompt").stdout
    assert "ending with the slots as they were then" in out and "unchanged, so not repeated" in out
    assert json.loads(cli("show", "-i", "w", "--prompt", "--json").stdout)["next_message_slots"] is None


def test_model_written_slot_text_prints_inert_on_a_terminal(run_mnemara, make_instance) -> None:
    make_instance("w")
    run_mnemara("slot", "-i", "w", "set", "x", "-", input="ok\x1b]0;pwned\x07done")
    out = run_mnemara("slot", "-i", "w", "show", "x")  # a pipe: the exact bytes
    assert out.stdout == "ok\x1b]0;pwned\x07done\n"


def test_export_and_import_keep_every_slot_version(cli, make_instance, tmp_path: Path) -> None:
    make_instance("src", rag_embedder="hash")
    cli("slot", "-i", "src", "set", "task", "first")
    cli("slot", "-i", "src", "set", "task", "second")
    cli("slot", "-i", "src", "undo", "task")
    cli("slot", "-i", "src", "set", "profile", "likes tea")
    out = tmp_path / "src.jsonl"
    assert cli("export", "-i", "src", "-o", str(out)).exit_code == 0
    slots = [json.loads(line) for line in out.read_text().splitlines() if '"type": "slot"' in line]
    assert [(r["name"], r["action"], r["text"]) for r in slots] == [
        ("task", "set", "first"), ("task", "set", "second"), ("task", "undo", "first"),
        ("profile", "set", "likes tea")]
    assert "## Slots (every version)" in cli("export", "-i", "src", "--format", "md").stdout
    make_instance("dst", rag_embedder="hash")
    result = cli("import", "-i", "dst", str(out))
    assert result.exit_code == 0, result.stderr
    history = lambda inst: cli("slot", "-i", inst, "show", "task", "--history").stdout  # noqa: E731
    assert history("dst") == history("src")
    # undo goes on walking back where the source left off: before "first" there was nothing
    assert "took back the user's set" in (undone := cli("slot", "-i", "dst", "undo", "task").stdout)
    assert "it is empty now" in undone
    # an instance that already has slots is not an empty target
    assert "slot version" in cli("import", "-i", "dst", str(out)).stderr
