"""The memory commands: recall, reindex, wiki, import. Real SQLite and real LanceDB in tmp dirs,
the hash embedder for speed; every user mistake is one `mnemara:` line, exit 2, nothing written."""

from __future__ import annotations

import io
import json
import os
import pty
import shlex
import shutil
import socket
import sys
from pathlib import Path

import pytest

from mnemara.instance import Instance
from mnemara.memory.writes import add_manual
from mnemara.ops import memory as ops
from mnemara.ops.progress import progress_bar
from mnemara.store import TurnStore
from mnemara.store.blocks import text_block
from mnemara.store.window import Budget

HASH = {"rag_embedder": "hash"}
# (role, text, created_at): the first three end up in the archive (the window holds 2).
TURNS = [
    ("user", "how do we rotate the grimbleton certificates", "2026-02-01T09:00:00Z"),
    ("assistant", "Run the rotate script on the vault host first.", "2026-02-01T09:00:30Z"),
    ("user", "and the staging database password?", "2026-02-10T15:00:00Z"),
    ("assistant", "That one lives in the ops keyring.", "2026-02-10T15:00:20Z"),
    ("user", "thanks, all done", "2026-03-01T08:00:00Z"),
]


def make_memory_instance(make_instance, name: str = "mem", **changes) -> Instance:
    """An instance with TURNS stored (three of them archived) and nothing indexed yet."""
    inst = make_instance(name, max_window_turns=2, **{**HASH, **changes})
    with TurnStore(inst.turns_path) as store:
        for role, text, at in TURNS:
            store.add_turn(role, [text_block(text)], created_at=at)
        store.apply_budget(Budget(2, 100_000))
    return inst


def recall_json(cli, *args, input=None) -> list[dict]:
    result = cli("recall", "-i", "mem", "--json", *args, input=input)
    assert result.exit_code == 0, (result.output, result.stderr, result.exception)
    return [json.loads(line) for line in result.stdout.splitlines()]


def editor_env(tmp_path: Path, body: str) -> dict[str, str]:
    """EDITOR running a small Python script with `body` (which sees `path` and `log`)."""
    script = tmp_path / "editor.py"
    script.write_text("import os, sys\npath = sys.argv[-1]\nlog = sys.argv[-2]\n" + body, encoding="utf-8")
    log = tmp_path / "editor.log"
    command = " ".join(shlex.quote(p) for p in (sys.executable, str(script), str(log)))
    return {"EDITOR": command, "VISUAL": ""}


RECORD = ("st = os.stat(path)\n"
          "open(log, 'w').write(f'{path}\\n{oct(st.st_mode & 0o777)}\\n' + open(path).read())\n")


# -- recall -----------------------------------------------------------------------------------------

def test_recall_finds_an_archived_turn_and_a_note_written_by_another_process(cli, make_instance, run_mnemara):
    make_memory_instance(make_instance)
    noted = run_mnemara("note", "-i", "mem", "the flumpet deploy runs every friday at noon")
    assert noted.returncode == 0, noted.stderr
    result = cli("recall", "-i", "mem", "grimbleton certificates", "flumpet deploy")
    assert result.exit_code == 0, (result.output, result.exception)
    out = result.stdout
    blocks = out.split("== ")[1:]
    assert len(blocks) == 2
    assert blocks[0].startswith("grimbleton certificates [hybrid]")
    assert "turn #1 (user)" in blocks[0].splitlines()[1]  # the best hit, from the archive
    assert "2026-02-01T09:00:00Z" in blocks[0]
    first_hit = blocks[1].splitlines()[1]
    assert "note " in first_hit and ".md:" in first_hit and "flumpet deploy runs" in first_hit


def test_recall_reads_queries_from_stdin_and_arguments(cli, make_instance):
    make_memory_instance(make_instance)
    out = recall_json(cli, "keyring", "-", input="grimbleton\n\n  staging database  \n")
    assert [o["query"] for o in out] == ["keyring", "grimbleton", "staging database"]
    assert out[0]["hits"][0]["turn_id"] == 4
    assert out[1]["hits"][0]["turn_id"] == 1
    assert out[2]["hits"][0]["turn_id"] == 3
    result = cli("recall", "-i", "mem", "-", input="\n  \n")
    assert result.exit_code == 2 and "no query" in result.stderr


def test_recall_json_shape(cli, make_instance):
    make_memory_instance(make_instance)
    (out,) = recall_json(cli, "-k", "2", "rotate certificates")
    assert set(out) == {"query", "mode", "note", "time_range", "hits"}
    assert out["mode"] == "hybrid" and out["note"] is None and out["time_range"] is None
    assert 1 <= len(out["hits"]) <= 2
    hit = out["hits"][0]
    assert set(hit) >= {"id", "kind", "source", "line", "turn_id", "role", "time", "score",
                        "signals", "text", "context_turn_ids"}
    assert hit["kind"] == "turn" and hit["id"] == f"turn:{hit['turn_id']}"
    assert "text" in hit["signals"] and 0 < hit["score"] <= 1
    # A time phrase resolves to a range (relative to now, so only its shape is checked).
    (timed,) = recall_json(cli, "what did we rotate last week")
    assert timed["time_range"]["phrase"] == "last week"
    assert timed["time_range"]["since"] < timed["time_range"]["until"]
    assert timed["time_range"]["since"].endswith("Z")


def test_recall_filters_by_kind_and_time(cli, make_instance):
    inst = make_memory_instance(make_instance)
    ops.note(inst, "the keyring also holds the staging database password")
    hits = recall_json(cli, "staging database password")[0]["hits"]
    assert {h["kind"] for h in hits} == {"turn", "note"}
    notes = recall_json(cli, "--kind", "note", "staging database password")[0]["hits"]
    assert notes and {h["kind"] for h in notes} == {"note"}
    both = recall_json(cli, "--kind", "note", "--kind", "turn", "staging database password")[0]["hits"]
    assert {h["kind"] for h in both} == {"turn", "note"}

    def hit_times(*args):
        # A query with a word from every turn, so the filters decide what comes back.
        hits = recall_json(cli, "--kind", "turn", *args, "certificates rotate staging keyring thanks")
        return sorted(h["time"] for h in hits[0]["hits"])

    times = [at for _, _, at in TURNS]
    assert len(hit_times()) >= 3  # the others come along as context turns
    since = hit_times("--since", "2026-02-10")
    assert since and set(since) <= set(times[2:])
    until = hit_times("--until", "2026-02-10T16:00:00+01:00")  # 15:00 UTC: turn 3 is not before it
    assert until and set(until) <= set(times[:2])
    assert hit_times("--since", "2026-02-10T15:00:10Z", "--until", "2026-02-20") == [times[3]]


def test_recall_now_resolves_time_phrases_against_the_given_instant(cli, make_instance):
    make_memory_instance(make_instance)
    (timed,) = recall_json(cli, "--now", "2026-02-12T10:00:00+01:00", "what did we rotate yesterday")
    assert timed["time_range"]["phrase"] == "yesterday"
    assert timed["time_range"]["since"].startswith("2026-02-11")
    assert timed["time_range"]["since"] < timed["time_range"]["until"] <= "2026-02-12T09:00:00Z"
    (naive,) = recall_json(cli, "--now", "2026-02-12", "what did we rotate yesterday")
    assert naive["time_range"]["since"].startswith("2026-02-11")


@pytest.mark.parametrize("args, fragments", [
    (["--now", "last tuesday"], ["--now", "'last tuesday'", "ISO-8601"]),
    (["--since", "last tuesday"], ["--since", "'last tuesday'", "ISO-8601"]),
    (["--until", "2026-02-30"], ["--until", "'2026-02-30'"]),
    (["--since", "2026-03-01", "--until", "2026-02-01"], ["is not before --until"]),
    (["--kind", "diary"], []),
])
def test_recall_refuses_bad_options_in_one_line(cli, make_instance, assert_user_error, snapshot_tree,
                                                args, fragments):
    inst = make_memory_instance(make_instance)
    before = snapshot_tree(inst.root)
    result = cli("recall", "-i", "mem", *args, "certificates")
    if fragments:
        assert_user_error(result, *fragments)
    else:  # click's own usage error for a bad choice: exit 2, no traceback
        assert result.exit_code == 2 and "diary" in result.stderr and "Traceback" not in result.stderr
    assert snapshot_tree(inst.root) == before


def test_memory_off_is_one_line(cli, make_instance, assert_user_error):
    make_memory_instance(make_instance, rag_enabled=False)
    assert_user_error(cli("recall", "-i", "mem", "certificates"), "memory is off", "rag_enabled")
    assert_user_error(cli("reindex", "-i", "mem"), "memory is off")


def test_recall_on_a_missing_instance_is_one_line(cli, assert_user_error):
    assert_user_error(cli("recall", "-i", "nope", "anything"), "no instance named 'nope'")


def test_recall_with_an_unopenable_index_is_one_line(run_mnemara, make_instance, assert_user_error):
    inst = make_memory_instance(make_instance)
    inst.index_dir.mkdir()
    (inst.index_dir / "atoms.lance").write_text("not a lance table", encoding="utf-8")
    assert_user_error(run_mnemara("recall", "-i", "mem", "certificates"), "memory index")


def test_text_output_makes_control_characters_visible(cli, make_instance):
    inst = make_instance("mem", **HASH)
    with TurnStore(inst.turns_path) as store:
        store.add_turn("user", [text_block("red \x1b[31malert\x1b[0m\nsecond line\u202eevil")])
    result = cli("recall", "-i", "mem", "red second line")
    assert result.exit_code == 0, result.output
    hit = result.stdout.splitlines()[1]
    assert "\x1b" not in result.stdout and "\u202e" not in result.stdout
    assert "\\x1b[31malert" in hit and "second line\\u202eevil" in hit


# -- reindex ----------------------------------------------------------------------------------------

def test_reindex_rebuilds_a_deleted_index_with_the_right_counts(cli, make_instance):
    inst = make_memory_instance(make_instance)
    ops.note(inst, "the flumpet deploy runs every friday")
    ops.wiki_write(inst, "ops/keys", "# Keys\nin the keyring\n\n## Rotation\nyearly grimbleton rotation\n")
    with TurnStore(inst.turns_path) as store:
        add_manual(store, "the office wifi password changed in march", kind="fact")
    assert recall_json(cli, "flumpet")[0]["hits"]  # indexed through the outbox first
    shutil.rmtree(inst.index_dir)

    result = cli("reindex", "-i", "mem")
    assert result.exit_code == 0, (result.output, result.exception)
    line = result.stdout.strip()
    assert line.startswith("reindexed 9 atoms (5 turns, 1 note, 2 wiki sections, 1 manual entry) "
                           "with hash:64 in "), line
    assert line.endswith(" s")
    for query, kind in (("grimbleton rotation", "wiki"), ("flumpet", "note"), ("wifi password", "fact"),
                        ("rotate script vault host", "turn")):
        hits = recall_json(cli, query)[0]["hits"]
        assert hits and hits[0]["kind"] == kind, (query, hits[:1])


# -- wiki -------------------------------------------------------------------------------------------

def test_wiki_list_and_show(cli, make_instance):
    inst = make_instance("mem", **HASH)
    assert "no wiki pages" in cli("wiki", "-i", "mem", "list").stdout
    ops.wiki_write(inst, "deploy/staging", "---\ntags: [deploy, ops]\n---\n# Staging deploys\nuse make\n")
    ops.wiki_write(inst, "people", "# Who is who\nAda\n")
    listed = cli("wiki", "-i", "mem", "list").stdout.splitlines()
    assert [ln.split()[0] for ln in listed] == ["deploy/staging", "people"]
    assert "deploy,ops" in listed[0] and "Staging deploys" in listed[0] and " B " in listed[0]
    assert [ln.split()[0] for ln in cli("wiki", "-i", "mem", "list", "dep").stdout.splitlines()] == [
        "deploy/staging"]
    shown = cli("wiki", "-i", "mem", "show", "people")
    assert shown.exit_code == 0 and shown.stdout == "# Who is who\nAda\n"
    # -i may also follow the subcommand, where it wins over the group's.
    assert cli("wiki", "-i", "other", "show", "people", "-i", "mem").stdout == "# Who is who\nAda\n"


def test_wiki_show_errors_are_one_line(cli, make_instance, assert_user_error):
    make_instance("mem", **HASH)
    assert_user_error(cli("wiki", "-i", "mem", "show", "nope"), "no wiki page 'nope'", "`mnemara wiki list`")
    assert_user_error(cli("wiki", "-i", "mem", "show", "../config"), "not allowed")


def test_wiki_edit_saves_a_changed_page_and_indexes_it(cli, make_instance, tmp_path):
    inst = make_instance("mem", **HASH)
    ops.wiki_write(inst, "deploy", "# Deploy\nstep one\n")
    env = editor_env(tmp_path, RECORD + "open(path, 'a').write('## Rollback\\nthe zwibble switch\\n')\n")
    result = cli("wiki", "-i", "mem", "edit", "deploy", env=env)
    assert result.exit_code == 0, (result.output, result.exception)
    assert "saved wiki page 'deploy'" in result.stdout
    assert (inst.wiki_dir / "deploy.md").read_text() == "# Deploy\nstep one\n## Rollback\nthe zwibble switch\n"
    # The editor saw a private copy inside the instance directory, removed afterwards.
    edited, mode, *seen = (tmp_path / "editor.log").read_text().splitlines()
    assert Path(edited).parent == inst.root and mode == "0o600" and seen == ["# Deploy", "step one"]
    assert not Path(edited).exists() and not list(inst.root.glob(".wiki-edit-*"))
    hits = recall_json(cli, "zwibble switch")[0]["hits"]
    assert hits[0]["id"] == "wiki:deploy#2"


def test_wiki_edit_without_changes_writes_nothing(cli, make_instance, tmp_path, snapshot_tree):
    inst = make_instance("mem", **HASH)
    ops.wiki_write(inst, "deploy", "# Deploy\nstep one\n")
    before = snapshot_tree(inst.root)
    result = cli("wiki", "-i", "mem", "edit", "deploy", env=editor_env(tmp_path, "pass\n"))
    assert result.exit_code == 0 and "no changes to wiki page 'deploy'" in result.stdout
    assert snapshot_tree(inst.root) == before


def test_wiki_edit_creates_a_new_page_with_visual_preferred(cli, make_instance, tmp_path):
    inst = make_instance("mem", **HASH)
    env = editor_env(tmp_path, "open(path, 'w').write('# Fresh\\nnew page\\n')\n")
    env = {"VISUAL": env["EDITOR"], "EDITOR": "false"}
    result = cli("wiki", "-i", "mem", "edit", "notes/fresh.md", env=env)
    assert result.exit_code == 0, (result.output, result.exception)
    assert (inst.wiki_dir / "notes" / "fresh.md").read_text() == "# Fresh\nnew page\n"
    # A new page left empty is not created.
    result = cli("wiki", "-i", "mem", "edit", "empty", env=editor_env(tmp_path, "pass\n"))
    assert "no changes" in result.stdout and not (inst.wiki_dir / "empty.md").exists()


@pytest.mark.parametrize("slug", ["../../escape", "/etc/passwd", ".hidden", "a/../../b"])
def test_wiki_edit_refuses_traversal_before_writing_anything(cli, make_instance, tmp_path,
                                                            assert_user_error, snapshot_tree, slug):
    inst = make_instance("mem", **HASH)
    env = editor_env(tmp_path, "open(path, 'w').write('pwned\\n')\n")
    before = snapshot_tree(tmp_path)
    assert_user_error(cli("wiki", "-i", "mem", "edit", slug, env=env), "wiki page name")
    assert snapshot_tree(tmp_path) == before
    assert not (tmp_path / "editor.log").exists() and not inst.wiki_dir.exists()


def test_wiki_edit_editor_failures_are_one_line(cli, make_instance, tmp_path, assert_user_error):
    inst = make_instance("mem", **HASH)
    failing = editor_env(tmp_path, "open(path, 'w').write('half done\\n')\nsys.exit(3)\n")
    assert_user_error(cli("wiki", "-i", "mem", "edit", "p", env=failing), "status 3", "not changed")
    missing = {"EDITOR": str(tmp_path / "no-such-editor"), "VISUAL": ""}
    assert_user_error(cli("wiki", "-i", "mem", "edit", "p", env=missing), "cannot start the editor")
    unparsable = {"EDITOR": "vim 'unclosed", "VISUAL": ""}
    assert_user_error(cli("wiki", "-i", "mem", "edit", "p", env=unparsable), "cannot parse")
    assert not (inst.wiki_dir / "p.md").exists() and not list(inst.root.glob(".wiki-edit-*"))


# -- import -----------------------------------------------------------------------------------------

def conversation_lines(n: int) -> str:
    return "".join(json.dumps({"role": "user" if i % 2 == 0 else "assistant",
                               "text": f"imported line {i} about plorvex{i}",
                               "ts": f"2025-06-01T12:00:{i:02d}Z"}) + "\n" for i in range(n))


def test_import_a_file(cli, make_instance, tmp_path):
    inst = make_instance("mem", max_window_turns=4, **HASH)
    path = tmp_path / "conv.jsonl"
    path.write_text(conversation_lines(10), encoding="utf-8")
    result = cli("import", "-i", "mem", str(path))
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.stdout.startswith(f"imported 10 turns from {path}: 4 in the window, 6 archived; "
                                    "10 indexed; ")
    with TurnStore(inst.turns_path) as store:
        assert store.count() == 4 and store.archived_count() == 6
    hits = recall_json(cli, "plorvex3")[0]["hits"]
    assert hits[0]["turn_id"] == 4 and hits[0]["time"] == "2025-06-01T12:00:03Z"


def test_import_from_stdin_into_a_new_instance(cli, mnemara_home):
    # A new instance has the default (real, local) embedder.
    result = cli("import", "-i", "fresh", "-", input=conversation_lines(3))
    assert result.exit_code == 0, (result.output, result.stderr, result.exception)
    assert "created instance 'fresh'" in result.stderr
    assert result.stdout.startswith("imported 3 turns from <stdin>: 3 in the window, 0 archived; 3 indexed")
    assert Instance.named("fresh").load_config().rag_embedder == "local"


def test_import_appends_and_says_so(cli, make_instance, tmp_path):
    make_memory_instance(make_instance)
    path = tmp_path / "conv.jsonl"
    path.write_text(conversation_lines(2), encoding="utf-8")
    result = cli("import", "-i", "mem", str(path))
    assert result.exit_code == 0, result.output
    assert "after 5 existing turns" in result.stdout and "2 in the window" in result.stdout


def test_import_a_bad_line_is_one_line_and_writes_nothing(cli, make_instance, tmp_path,
                                                          assert_user_error, snapshot_tree):
    inst = make_memory_instance(make_instance)
    path = tmp_path / "conv.jsonl"
    path.write_text(conversation_lines(5) + '{"role": "robot", "text": "beep"}\n', encoding="utf-8")
    before = snapshot_tree(inst.root)
    assert_user_error(cli("import", "-i", "mem", str(path)), f"{path}:6:", "role", "'robot'")
    assert snapshot_tree(inst.root) == before
    assert_user_error(cli("import", "-i", "mem", "-", input=b"\xff\xfe{}\n"), "<stdin>:1:", "UTF-8")
    assert snapshot_tree(inst.root) == before
    # A bad file does not create the instance it was meant for either.
    assert_user_error(cli("import", "-i", "fresh", str(path)), f"{path}:6:")
    assert not Instance.named("fresh").root.exists()


@pytest.mark.parametrize("text, limit, shown", [
    ("short", 10, "short"),
    ("exactly 10", 10, "exactly 10"),
    ("one char too long", 16, "one char too lo…"),
    ("a\n\tb   c", 20, "a b c"),
    ("x\x1by", 20, "x\\x1by"),
    ("x\x1by", 3, "x…"),  # an escape is never cut in half
    ("bidi\u202etrick", 30, "bidi\\u202etrick"),
])
def test_one_line(text, limit, shown):
    from mnemara.cli_memory import one_line
    assert one_line(text, limit) == shown


def test_import_with_memory_off_says_so(cli, make_instance, tmp_path):
    make_instance("mem", rag_enabled=False)
    path = tmp_path / "conv.jsonl"
    path.write_text(conversation_lines(2), encoding="utf-8")
    result = cli("import", "-i", "mem", str(path))
    assert result.exit_code == 0 and "0 indexed" in result.stdout
    assert result.stderr.startswith("mnemara: note: memory is off")


def closed_port_url() -> str:
    """An Ollama URL on this machine where nothing listens (no network involved)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_an_unreachable_embedder_never_undoes_an_import(cli, make_instance, tmp_path, assert_user_error):
    inst = make_instance("mem", rag_embedder="ollama", rag_embed_url=closed_port_url())
    path = tmp_path / "conv.jsonl"
    path.write_text(conversation_lines(4), encoding="utf-8")
    result = cli("import", "-i", "mem", str(path))
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.stdout.startswith(f"imported 4 turns from {path}")
    assert "mnemara: note:" in result.stderr and "not reachable" in result.stderr
    with TurnStore(inst.turns_path) as store:
        assert store.count() == 4
    service = ops.open_memory(inst)
    try:
        # Whatever was not indexed waits in the outbox for the next drain.
        indexed = int(result.stdout.split("; ")[1].split()[0])
        assert indexed + service.status().pending == 4
    finally:
        service.close()
    recalled = cli("recall", "-i", "mem", "plorvex1")
    if recalled.exit_code == 0:  # the index may fall back to full text
        assert "[full-text only" in recalled.stdout
    else:
        assert_user_error(recalled, "not reachable")


# -- the progress bar -------------------------------------------------------------------------------

def test_progress_bar_draws_only_on_a_terminal():
    quiet = io.StringIO()
    with progress_bar("working", stream=quiet) as update:
        update(1, 2)
        update(2, 2)
    assert quiet.getvalue() == ""

    master, slave = pty.openpty()
    try:
        with open(slave, "w") as tty:  # closes the terminal's side: the reads below end at EIO
            with progress_bar("working", stream=tty) as update:
                update(1, 0)   # total unknown yet
                update(5, 10)
        chunks = []
        while True:  # one read may return only the first of the bar's writes
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: everything written has been read
                break
            if not chunk:
                break
            chunks.append(chunk)
        drawn = b"".join(chunks).decode("utf-8", "replace")
    finally:
        os.close(master)
    assert "working" in drawn
