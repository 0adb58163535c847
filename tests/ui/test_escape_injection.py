"""Escape injection (issue 10, hole 1): text from the store, the model or a tool never drives the
terminal. Every front end, with the sequences from the issue in user text, model text and tool
output: `show`, `show --prompt`, `search`, `ask` on a pty and into a pipe, the REPL on a pty, the
TUI through Pilot and in a real terminal (tmux). Plus NO_COLOR for `ask` and the REPL.
"""

from __future__ import annotations

import html
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import unicodedata
from pathlib import Path
from typing import Any

import pexpect
import pytest

from mnemara.instance import Instance
from mnemara.store import TurnStore
from tests.fakes.fake_cli import FAKE_CLI_PATH, fake_cli

# raw -> how it must show. Space-separated in PAYLOAD, so a wrapped line breaks between them.
SEQUENCES = {
    "\x1b[2J": "\\x1b[2J",                        # clear the screen
    "\x1b[H": "\\x1b[H",                          # cursor home: over the TUI's header
    "\x1b]0;TITLE\x07": "\\x1b]0;TITLE\\x07",     # retitle the terminal
    "\x1b]52;c;aGk=\x07": "\\x1b]52;c;aGk=\\x07",  # write "hi" to the clipboard
    "\x1b[?1049h": "\\x1b[?1049h",                # switch to the alternate screen
    "ab\x08\x08XY": "ab\\x08\\x08XY",             # backspaces overwrite what was shown
    "N\x00L": "N\\x00L",                          # NUL
    "\x9b31m": "\\x9b31m",                        # 8-bit CSI (red)
}
PAYLOAD = "START " + " ".join(SEQUENCES) + " END"
UNSAFE = {"Cc", "Cf", "Zl", "Zp", "Cs"}
SGR = re.compile(r"\x1b\[[0-9;]*m")


def raw_left(out: str, *, allow_sgr: bool = False) -> list[str]:
    """Control and format characters in `out` (newline and tab are fine; with `allow_sgr`, so
    are mnemara's own colour codes)."""
    if allow_sgr:
        out = SGR.sub("", out)
    return [f"U+{ord(c):04X}" for c in out if unicodedata.category(c) in UNSAFE and c not in "\n\t"]


def assert_shown_not_obeyed(out: str) -> None:
    for raw, shown in SEQUENCES.items():
        assert raw not in out, f"{raw!r} reached the terminal raw"
        assert shown in out, f"{shown} is not shown"


def write_payload_file(home: Path) -> Path:
    path = home / "evil.txt"
    path.write_text(f"{PAYLOAD}\nsecond line\n")
    return path


def store_conversation(inst: Instance, payload_file: Path | None = None) -> None:
    """A user turn, and an assistant turn whose text, tool call, tool output and thinking all
    carry the payload."""
    with TurnStore(inst.turns_path) as store:
        store.add_turn("user", [{"type": "text", "text": f"user says {PAYLOAD}"}],
                       created_at="2026-01-02T10:00:00Z")
        store.add_turn("assistant", [
            {"type": "thinking", "thinking": f"hmm {PAYLOAD}", "signature": "s"},
            {"type": "text", "text": f"model says {PAYLOAD}"},
            {"type": "tool_use", "id": "t1", "name": "Bash",
             "input": {"command": f"cat {payload_file or 'evil.txt'} # \x1b[2J"}},
            {"type": "tool_result", "tool_use_id": "t1", "content": f"{PAYLOAD}\nsecond line",
             "is_error": False},
        ], created_at="2026-01-02T10:00:05Z", model="claude-test-model")


def stored_texts(inst: Instance) -> list[Any]:
    with TurnStore(inst.turns_path, readonly=True) as store:
        return [t.blocks for t in store.window()]


# --- show, show --prompt, search (the CLI, as click runs it) ------------------------------------

def test_show_prints_stored_sequences_visibly_and_leaves_the_store_alone(cli, make_instance) -> None:
    inst = make_instance("work")
    store_conversation(inst)
    before = stored_texts(inst)
    result = cli("show", "--instance", "work")
    assert result.exit_code == 0, result.output
    assert not raw_left(result.stdout)
    for shown in SEQUENCES.values():
        assert shown in result.stdout
    assert "user says START" in result.stdout and "model says START" in result.stdout
    data = json.loads(cli("show", "--instance", "work", "--json").stdout)
    assert data["turns"][0]["content"][0]["text"] == f"user says {PAYLOAD}"  # JSON stays exact
    assert stored_texts(inst) == before


def test_show_prompt_shows_exactly_what_is_sent_but_inert(cli, make_instance, tmp_path) -> None:
    role = tmp_path / "role.md"
    role.write_text(f"You are careful. {PAYLOAD.replace(' N' + chr(0) + 'L', '')}\n")  # a NUL: unreadable
    inst = make_instance("work", role_doc_path=str(role))
    store_conversation(inst)
    result = cli("show", "--instance", "work", "--prompt")
    assert result.exit_code == 0, result.output
    assert not raw_left(result.stdout)
    assert_shown_not_obeyed(result.stdout)
    assert result.stdout.count("\\x1b[?1049h") >= 4  # role doc, user turn, model text, tool output
    raw_json = cli("show", "--instance", "work", "--prompt", "--json").stdout
    assert not raw_left(raw_json)  # json.dumps(ensure_ascii=False) let the 8-bit CSI through
    data = json.loads(raw_json)
    assert "\x1b]52;c;aGk=\x07" in data["system_prompt"] and PAYLOAD in data["blocks"][0]["text"]


def test_search_hits_show_sequences_visibly(cli, make_instance) -> None:
    inst = make_instance("work")
    with TurnStore(inst.turns_path) as store:
        store.add_turn("user", [{"type": "text",
                                 "text": "gamma \x1b[2J\x1b]0;TITLE\x07 \x9b31m ab\x08\x08XY"}])
    result = cli("search", "--instance", "work", "gamma")
    assert result.exit_code == 0, result.output
    assert "gamma" in result.stdout and not raw_left(result.stdout)
    assert "\\x1b[2J\\x1b]0;TITLE\\x07 \\x9b31m ab\\x08\\x08XY" in result.stdout
    assert not raw_left(cli("search", "--instance", "work", "--json", "gamma").stdout)


def test_error_lines_quote_names_inertly(cli, make_instance, tmp_path) -> None:
    role = tmp_path / "roles\x1b[2J\x1b]0;TITLE\x07"
    role.mkdir()  # unreadable as a role doc: the error names it
    make_instance("work", role_doc_path=str(role))
    result = cli("role", "--instance", "work", "--show")
    assert result.exit_code == 2
    assert not raw_left(result.stderr) and "roles\\x1b[2J\\x1b]0;TITLE\\x07" in result.stderr


def test_wiki_pages_and_the_role_doc_print_inert_on_a_terminal_and_exact_into_a_pipe(
        fake_cli_env, tmp_path) -> None:
    from mnemara.ops import memory as ops
    role = tmp_path / "role.md"
    body = "# Page \x1b]52;c;aGk=\x07 \x1b[2J \x9b31m\n"  # the model writes wiki pages
    role.write_text(body)
    inst = Instance("w", Path(fake_cli_env["MNEMARA_HOME"]) / "w")
    inst.save_config(inst.create().replace(rag_embedder="hash", role_doc_path=str(role)))
    ops.wiki_write(inst, "evil", body)
    for args in (["wiki", "-i", "w", "show", "evil"], ["role", "-i", "w", "--show"]):
        child = pexpect.spawn(sys.executable, ["-m", "mnemara", *args], env=fake_cli_env,
                              encoding="utf-8", codec_errors="replace", timeout=60)
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0, child.before
        assert not raw_left(child.before.replace("\r\n", "\n")), args
        assert "# Page \\x1b]52;c;aGk=\\x07 \\x1b[2J \\x9b31m" in child.before, args
        piped = subprocess.run([sys.executable, "-m", "mnemara", *args], env=fake_cli_env,
                               capture_output=True, text=True, timeout=60)
        assert body in piped.stdout, args


# --- ask ------------------------------------------------------------------------------------------

def ask_env(fake_cli_env: dict[str, str], tmp_path: Path, **extra: str) -> tuple[dict[str, str], Path]:
    """An instance `a` and a script: the model calls Bash on a file holding the payload, then
    replies with the payload."""
    home = Path(fake_cli_env["HOME"])
    evil = write_payload_file(home)
    inst = Instance("a", Path(fake_cli_env["MNEMARA_HOME"]) / "a")
    inst.create()
    turns = [[{"tool": "Bash", "input": {"command": f"cat {evil}"}, "id": "b1"},
              {"text": PAYLOAD, "chunks": 3}]]
    env = {**fake_cli_env, **fake_cli(tmp_path / "fake", turns).env, "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    env.update(extra)
    return env, evil


def spawn_ask(env: dict[str, str], *args: str) -> str:
    child = pexpect.spawn(sys.executable, ["-m", "mnemara", "ask", "-i", "a", "--yes", *args],
                          env=env, encoding="utf-8", codec_errors="replace", timeout=60,
                          dimensions=(40, 200))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    return child.before.replace("\r\n", "\n")  # the pty's own line ends


def test_ask_on_a_terminal_shows_model_text_and_tool_output_inert(fake_cli_env, tmp_path) -> None:
    env, _ = ask_env(fake_cli_env, tmp_path)
    out = spawn_ask(env, "show me the file")
    assert_shown_not_obeyed(out)
    assert not raw_left(out, allow_sgr=True)
    assert "→ START" in out  # the tool output's first line, on stderr


def test_ask_into_a_pipe_keeps_the_reply_bytes_and_still_guards_stderr(fake_cli_env, tmp_path) -> None:
    env, _ = ask_env(fake_cli_env, tmp_path)
    proc = subprocess.run([sys.executable, "-m", "mnemara", "ask", "-i", "a", "--yes", "go"],
                          env=env, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == PAYLOAD.encode() + b"\n"  # the reply, byte for byte
    err = proc.stderr.decode()
    assert not raw_left(err) and "\\x1b[2J" in err  # the tool line is for a person


def test_ask_json_is_lossless_and_safe_to_print(fake_cli_env, tmp_path) -> None:
    env, _ = ask_env(fake_cli_env, tmp_path)
    proc = subprocess.run([sys.executable, "-m", "mnemara", "ask", "-i", "a", "--yes", "--json", "go"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert not raw_left(proc.stdout)
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert next(e for e in events if e["event"] == "text")["text"] == PAYLOAD
    assert any(PAYLOAD in e.get("text", "") for e in events if e["event"] == "tool_result")


def test_ask_honours_no_color_on_a_terminal(fake_cli_env, tmp_path) -> None:
    outs = {}
    for no_color in ("", "1"):  # an empty NO_COLOR counts as unset (no-color.org)
        base = {**fake_cli_env, "MNEMARA_HOME": str(tmp_path / f"mnemara{no_color}")}
        env, _ = ask_env(base, tmp_path / f"nc{no_color}", NO_COLOR=no_color)
        outs[no_color] = spawn_ask(env, "go")
    assert "\x1b[36m⚙ Bash" in outs[""]  # colour on a terminal ...
    assert "⚙ Bash" in outs["1"] and "\x1b" not in outs["1"]  # ... and none at all with NO_COLOR


# --- the REPL on a pty ----------------------------------------------------------------------------

def repl_env(fake_cli_env: dict[str, str], tmp_path: Path, no_color: str | None = "1") -> dict[str, str]:
    home = Path(fake_cli_env["HOME"])
    evil = write_payload_file(home)
    inst = Instance("r", Path(fake_cli_env["MNEMARA_HOME"]) / "r")
    inst.create()
    store_conversation(inst, evil)
    turns = [[{"tool": "Read", "input": {"file_path": str(evil)}, "id": "r1"},
              {"text": f"reply {PAYLOAD}", "chunks": 3}]]
    env = {**fake_cli_env, **fake_cli(tmp_path / "fake", turns).env, "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    if no_color is not None:
        env["NO_COLOR"] = no_color
    return env


def spawn_repl(env: dict[str, str]) -> pexpect.spawn:
    child = pexpect.spawn(sys.executable, ["-m", "mnemara", "run", "--no-tui", "-i", "r"], env=env,
                          encoding="utf-8", codec_errors="replace", timeout=30, dimensions=(40, 200))
    child.expect("you>")
    return child


def quit_repl(child: pexpect.spawn) -> None:
    child.sendline("/quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_repl_shows_model_text_tool_output_and_stored_turns_inert(fake_cli_env, tmp_path) -> None:
    child = spawn_repl(repl_env(fake_cli_env, tmp_path))
    out = child.before
    for line, until in (("read the file", "reply START"), ("/show", r"4/20 turns · ")):
        child.sendline(line)  # /show: the stored turns too, the model's with its tool output
        child.expect(until)
        out += child.before + child.after
        child.expect("you>")
        out += child.before
    quit_repl(child)
    assert_shown_not_obeyed(out)
    for what in ("user says START", "model says START", "→ 1\tSTART", "reply START"):
        assert what in out, what


def test_repl_honours_no_color(fake_cli_env, tmp_path) -> None:
    outs = {}
    for no_color in (None, "1"):
        base = {**fake_cli_env, "MNEMARA_HOME": str(tmp_path / f"mnemara{no_color}")}
        child = spawn_repl(repl_env(base, tmp_path / f"nc{no_color}", no_color))
        child.sendline("read the file")
        child.expect("reply START")
        outs[no_color] = child.before
        child.expect("you>")
        outs[no_color] += child.before
        quit_repl(child)
    assert "\x1b[36m⚙ Read" in outs[None]
    # prompt_toolkit still moves the cursor and resets attributes; nothing is coloured or dimmed
    assert "⚙ Read" in outs["1"]
    assert not [m for m in SGR.findall(outs["1"]) if m not in ("\x1b[0m", "\x1b[m")], outs["1"]


# --- the TUI (Textual Pilot: the whole screen as exported) ----------------------------------------

@pytest.fixture
def tui_app(tui_over: Any):
    """tui_app(turns) -> MnemaraApp over instance `t` holding the stored conversation."""
    return lambda turns: tui_over(store_conversation, turns)


async def wait_for(pilot, predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.05)


async def open_all_folds(pilot) -> None:
    from mnemara.ui.tui.chat import FoldLine
    for fold in pilot.app.query(FoldLine):
        fold.expanded = True
    await pilot.pause()


def screen_lines(svg: str) -> str:
    """The text of an exported screen, one line per terminal row."""
    rows: dict[int, list[str]] = {}
    for m in re.finditer(r'<text[^>]*clip-path="url\(#terminal-\d+-line-(\d+)\)">([^<]*)</text>', svg):
        rows.setdefault(int(m.group(1)), []).append(html.unescape(m.group(2)))
    return "\n".join("".join(rows[k]).replace("\xa0", " ") for k in sorted(rows))


async def test_tui_shows_stored_and_streamed_sequences_inert(tui_app, home: Path) -> None:
    from mnemara.ui.tui.chat import TurnSummary
    from mnemara.ui.tui.widgets import PromptInput
    evil = write_payload_file(home)
    app = tui_app([[{"tool": "Read", "input": {"file_path": str(evil)}, "id": "r1"},
                    {"text": f"streamed *reply* {PAYLOAD} &#x202e;reversed", "chunks": 4}]])
    async with app.run_test(size=(200, 60)) as pilot:  # everything fits on one screen
        await wait_for(pilot, lambda: app.window_drawn.is_set())
        app.query_one(PromptInput).load_text(f"typed {PAYLOAD}")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.query(TurnSummary) and not app.turn_running)
        await open_all_folds(pilot)  # thinking, tool input and output
        svg = app.export_screenshot()
    assert not raw_left(svg), raw_left(svg)[:10]  # every cell of the screen, header to footer
    text = screen_lines(svg)
    full = " ".join(SEQUENCES.values()) + " END"
    for source in ("user says START ",     # stored user text
                   "hmm START ",           # stored thinking
                   "model says START ",    # stored model text
                   "✓ START ",             # stored tool output: its line ...
                   "▌START ",              # ... and its detail
                   "typed START ",         # what was just typed
                   "✓ 1     START ",       # the Read tool's output, live
                   "▌1       START ",
                   "streamed reply START "):  # streamed model text
        assert source in text, source
    assert text.count(full) >= 7, text
    assert "reply START" in text and "\\u202ereversed" in text  # a Markdown entity, decoded: escaped too
    assert text.splitlines()[0].startswith(" mnemara  t ·")


async def test_tui_permission_dialog_and_window_viewer_are_inert(tui_app) -> None:
    from mnemara.ui.tui.screens import ContextScreen, PermissionScreen
    from mnemara.ui.tui.widgets import PromptInput
    app = tui_app([[{"tool": "Bash", "input": {"command": f"echo hi # {PAYLOAD}"}, "id": "b1"},
                    {"text": "done"}]])
    async with app.run_test(size=(200, 60)) as pilot:
        await wait_for(pilot, lambda: app.window_drawn.is_set())
        app.query_one(PromptInput).load_text("run it")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, PermissionScreen)
                       and bool(app.screen.query("#choice-n")))
        await pilot.pause()
        dialog = app.export_screenshot()
        await pilot.pause(PermissionScreen.ARM_SECONDS + 0.1)
        await pilot.press("n")
        await wait_for(pilot, lambda: not app.turn_running)
        app.open_context()
        await wait_for(pilot, lambda: isinstance(app.screen, ContextScreen))
        await pilot.pause()
        app.screen.table.move_cursor(row=1)
        app.screen.action_show()
        await pilot.pause()
        viewer = app.export_screenshot()
    assert not raw_left(dialog), raw_left(dialog)[:10]
    dialog = screen_lines(dialog)
    assert "Bash: echo hi # START \\x1b[2J" in dialog and "\\x1b]52;c;aGk=\\x07" in dialog  # the call
    assert "\\u001b[?1049h" in dialog and "\\u009b31m" in dialog  # its input, as JSON
    assert not raw_left(viewer), raw_left(viewer)[:10]
    assert "model says START \\x1b[2J" in screen_lines(viewer)  # /context, the turn opened


# --- the TUI in a real terminal (tmux) --------------------------------------------------------------

@pytest.mark.skipif(shutil.which("tmux") is None and not os.environ.get("CI"),
                    reason="needs the tmux binary (apt-get install tmux)")
def test_tui_in_a_real_terminal_keeps_its_header_title_and_clipboard(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    inst = Instance("smoke", home / ".mnemara" / "smoke")
    inst.create()
    with TurnStore(inst.turns_path) as store:
        store.add_turn("user", [{"type": "text", "text": "hello"}])
        store.add_turn("assistant", [{"type": "text", "text": f"\x1b[H\x1b[2JPWNED {PAYLOAD}"}],
                       model="m")
    env = {"HOME": home, "MNEMARA_HOME": home / ".mnemara", "MNEMARA_CLI_PATH": FAKE_CLI_PATH,
           "TERM": "xterm-256color"}
    launcher = tmp_path / "launch.sh"
    launcher.write_text("#!/bin/sh\n" + "".join(f"export {k}={shlex.quote(str(v))}\n" for k, v in env.items())
                        + "unset MNEMARA_INSTANCE MNEMARA_NO_TUI NO_COLOR\n"
                        + f"cd {shlex.quote(str(Path(__file__).resolve().parents[2]))}\n"
                        + f"exec {shlex.quote(sys.executable)} -m mnemara run --instance smoke\n")
    launcher.chmod(0o755)
    sock = str(tmp_path / "tmux.sock")

    def tmux(*args: str) -> str:
        return subprocess.run(["tmux", "-S", sock, *args], capture_output=True, text=True,
                              timeout=10).stdout

    try:
        tmux("-f", "/dev/null", "new-session", "-d", "-s", "smoke", "-x", "120", "-y", "30", "sh")
        tmux("set-option", "-g", "set-clipboard", "on")  # an OSC 52 from the app would make a buffer
        tmux("set-option", "-g", "allow-rename", "on")
        tmux("respawn-pane", "-k", "-t", "smoke", str(launcher))
        deadline = time.monotonic() + 30
        screen = ""
        while time.monotonic() < deadline:
            screen = tmux("capture-pane", "-p", "-J", "-t", "smoke")
            if "turns 2/20" in screen and "PWNED" in screen:
                break
            time.sleep(0.2)
        time.sleep(0.5)
        screen = tmux("capture-pane", "-p", "-J", "-t", "smoke")
        title = tmux("display-message", "-p", "-t", "smoke", "#{pane_title}").strip()
        buffers = tmux("list-buffers")
        tmux("send-keys", "-t", "smoke", "C-c")
    finally:
        tmux("kill-server")
    lines = screen.splitlines()
    assert lines and "mnemara" in lines[0] and "smoke" in lines[0], screen  # the header is intact
    assert "turns 2/20" in screen, screen                                  # so is the status bar
    assert "\\x1b[H\\x1b[2JPWNED" in screen and "\\x1b]52;c;aGk=\\x07" in screen, screen
    assert title != "TITLE"
    assert buffers.strip() == ""
