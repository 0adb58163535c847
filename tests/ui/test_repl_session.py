"""The REPL's /role_doc ($EDITOR), /edit (a prefilled prompt), /regen, /name and /export in a real
pty (pexpect) over the fake CLI; and `mnemara ask` on a fresh install."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pexpect

from tests.fakes.fake_cli import fake_cli, parse_argv, read_log
from tests.ui.test_repl import ENV_EXTRA, spawn


def test_role_doc_opens_editor_and_the_next_turn_sends_the_saved_text(fake_cli_env: dict[str, str],
                                                                      tmp_path: Path) -> None:
    editor = tmp_path / "editor.py"
    editor.write_text("import sys\nopen(sys.argv[1], 'a').write('Always answer in haiku.')\n")
    fake = fake_cli(tmp_path / "fake", [[{"text": "Autumn moon rises."}]])
    env = {**fake_cli_env, **ENV_EXTRA, **fake.env, "EDITOR": f"{sys.executable} {editor}"}
    env.pop("VISUAL", None)
    child = spawn(env)
    child.sendline("/role_doc")
    child.expect("role doc saved to")
    child.expect("you>")
    role_md = Path(env["MNEMARA_HOME"]) / "r" / "role.md"
    assert role_md.read_text() == "Always answer in haiku."
    assert not list((role_md.parent).glob(".role_doc.editing*"))  # the editing copy is gone
    child.sendline("a poem please")
    child.expect("Autumn moon rises.")
    child.expect("you>")
    child.sendeof()
    child.expect(pexpect.EOF)
    argv = [e["argv"] for e in read_log(fake.log_path) if "argv" in e][-1]
    assert parse_argv(argv)["--system-prompt"] == "Always answer in haiku."


def test_role_doc_editor_failure_leaves_the_role_doc_alone(fake_cli_env: dict[str, str],
                                                           tmp_path: Path) -> None:
    editor = tmp_path / "editor.py"
    editor.write_text("import sys\nopen(sys.argv[1], 'w').write('half-written')\nsys.exit(3)\n")
    env = {**fake_cli_env, **ENV_EXTRA, "EDITOR": f"{sys.executable} {editor}"}
    child = spawn(env)
    child.sendline("/role_doc")
    child.expect("the editor exited with status 3; the role doc is unchanged")
    child.expect("you>")
    child.sendline("/quit")
    child.expect(pexpect.EOF)
    assert not (Path(env["MNEMARA_HOME"]) / "r" / "role.md").exists()


def test_edit_prefills_the_last_message_and_regen_asks_again(fake_cli_env: dict[str, str],
                                                             tmp_path: Path) -> None:
    fake = fake_cli(tmp_path / "fake", [[{"text": "Reply to the typo."}],
                                        [{"text": "Reply to the fix."}],
                                        [{"text": "Another reply to the fix."}]])
    env = {**fake_cli_env, **ENV_EXTRA, **fake.env}
    child = spawn(env)
    child.sendline("helo wrld")
    child.expect("Reply to the typo.")
    child.expect("you>")
    child.sendline("/edit")
    child.expect("edit> ")
    child.expect("helo wrld")  # the old message, ready to change
    child.send("\x15")  # Ctrl+U: clear the line
    child.sendline("hello world")
    child.expect("in the archive")
    child.expect("Reply to the fix.")
    child.expect("you>")
    child.sendline("/regen")
    child.expect("Another reply to the fix.")
    child.expect("you>")
    child.sendline("/show")
    child.expect("2/20 turns")
    child.expect("you>")
    child.sendeof()
    child.expect(pexpect.EOF)
    shown = subprocess.run([sys.executable, "-m", "mnemara", "show", "-i", "r", "--json"], env=env,
                           capture_output=True, text=True, timeout=30)
    texts = ["".join(b["text"] for b in t["content"] if b["type"] == "text")
             for t in json.loads(shown.stdout)["turns"]]
    assert texts == ["hello world", "Another reply to the fix."]
    found = subprocess.run([sys.executable, "-m", "mnemara", "search", "-i", "r", "typo"], env=env,
                           capture_output=True, text=True, timeout=30)
    assert "archive #2" in found.stdout and "Reply to the [typo]" in found.stdout  # never deleted


def test_piped_edit_with_text_name_and_export(fake_cli_env: dict[str, str], tmp_path: Path) -> None:
    fake = fake_cli(tmp_path / "fake", [[{"text": "first"}], [{"text": "second"}]])
    env = {**fake_cli_env, **fake.env}
    out = tmp_path / "talk.md"
    proc = subprocess.run([sys.executable, "-m", "mnemara", "run", "-i", "p"],
                          input=f"one\n/edit\n/edit two\n/name Helper\n/export {out}\n",
                          env=env, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr
    assert "no terminal to edit on: give the new text, /edit TEXT" in proc.stderr
    assert "second" in proc.stdout and "display name is now 'Helper'" in proc.stdout
    assert f"to {out}" in proc.stdout
    text = out.read_text()
    assert "two" in text and "second" in text  # the archived exchange is in the export too
    assert "first" in text


def test_ask_on_a_fresh_install_creates_the_instance_as_run_does(fake_cli_env: dict[str, str],
                                                                 tmp_path: Path) -> None:
    env = {**fake_cli_env, **fake_cli(tmp_path / "fake", [[{"text": "Hi there."}]]).env}
    proc = subprocess.run([sys.executable, "-m", "mnemara", "ask", "hi"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Hi there.\n"
    assert "created instance 'default'" in proc.stderr
    assert (Path(env["MNEMARA_HOME"]) / "default" / "config.json").is_file()
    nothing = subprocess.run([sys.executable, "-m", "mnemara", "ask", "-i", "other", ""], env=env,
                             capture_output=True, text=True, timeout=60)
    assert nothing.returncode == 2 and not (Path(env["MNEMARA_HOME"]) / "other").exists()
