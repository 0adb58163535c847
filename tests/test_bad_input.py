"""Bad input, generated: whatever is in an instance's files or a command's arguments, a command
fails with one `mnemara:` line and exit 2 (never a traceback) and modifies nothing.

Property-based where the space is large (config.json contents, damaged store bytes, memory file
bytes, instance names); each example runs in a fresh MNEMARA_HOME of its own.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mnemara.cli import main
from mnemara.config import Config, ConfigError, load_config
from mnemara.instance import NAME_RE, Instance
from mnemara.store import TurnStore

SETTINGS = settings(max_examples=50, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
PAGE = 4096


@contextmanager
def fresh_home() -> Iterator[Path]:
    """A private MNEMARA_HOME (and HOME) for one example."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        root = Path(tmp) / "mnemara-home"
        old = {k: os.environ.get(k) for k in ("HOME", "MNEMARA_HOME", "MNEMARA_INSTANCE")}
        os.environ.update(HOME=str(home), MNEMARA_HOME=str(root))
        os.environ.pop("MNEMARA_INSTANCE", None)
        try:
            yield root
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def invoke(*args: str, input: str | None = None) -> Result:
    from tests.fakes.fake_cli import FAKE_CLI_PATH  # never a real CLI, should a command get far
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=True,
                              env={"MNEMARA_CLI_PATH": FAKE_CLI_PATH})


def snapshot(root: Path) -> dict[str, bytes | None]:
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes())
            for p in sorted(root.rglob("*"))}


def assert_one_line(result: Result, *fragments: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mnemara:"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def make_instance(name: str = "work", turns: int = 3) -> Instance:
    inst = Instance.named(name)
    inst.create()
    with TurnStore(inst.turns_path) as s:
        for i in range(turns):
            s.add_turn("user" if i % 2 == 0 else "assistant",
                       [{"type": "text", "text": f"turn {i} about the gamma rollout"}])
    return inst


# --- config.json ---------------------------------------------------------------------------------

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                         st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=8)
config_texts = st.one_of(
    # Real field names with values of any JSON type: mostly wrong types and ranges.
    st.dictionaries(st.sampled_from(sorted(Config.defaults().to_json())), json_values,
                    min_size=1, max_size=4).map(json.dumps),
    json_values.map(json.dumps),                       # any JSON: a list, a number, an object...
    st.text(max_size=60),                              # any text, mostly not JSON
)
config_bytes = st.one_of(config_texts.map(lambda t: t.encode("utf-8")),
                         st.binary(max_size=80))       # invalid UTF-8, NUL bytes


def config_is_valid(path: Path) -> bool:
    try:
        load_config(path)
        return True
    except ConfigError:
        return False


CONFIG_COMMANDS = [["show"], ["show", "--prompt"], ["search", "gamma"], ["clear"], ["note", "hi"],
                   ["ask", "hi"], ["run", "--no-tui"], ["role", "--set", "/tmp/r.md"], ["recall", "gamma"]]


@SETTINGS
@given(data=config_bytes)
@example(data=b"")
@example(data=b'{"model": "x",')
@example(data=b"\xff\xfe{}")
@example(data=b'{"max_window_turns": "\x00"}')
@example(data=b"[]")
def test_a_malformed_config_is_one_line_for_every_command_and_changes_nothing(data: bytes) -> None:
    with fresh_home() as root:
        inst = make_instance()
        inst.config_path.write_bytes(data)
        if config_is_valid(inst.config_path):
            return  # generated a valid config: nothing to refuse
        before = snapshot(root)
        for args in CONFIG_COMMANDS:
            assert_one_line(invoke(*args, "--instance", "work", input=""), str(inst.config_path))
            assert snapshot(root) == before, args
        # `list` lists it as broken and still exits 0.
        result = invoke("list")
        assert result.exit_code == 0 and result.exception is None
        assert "broken config" in result.stdout
        assert snapshot(root) == before


def test_a_config_that_is_a_directory_is_called_a_directory() -> None:
    with fresh_home() as root:
        inst = make_instance()
        inst.config_path.unlink()
        inst.config_path.mkdir()
        before = snapshot(root)
        for args in CONFIG_COMMANDS + [["init"]]:
            assert_one_line(invoke(*args, "--instance", "work", input=""), "is a directory")
        assert snapshot(root) == before


@pytest.mark.parametrize("args", [["note", "hi"], ["run", "--no-tui"], ["import", "-"]])
def test_a_missing_config_over_existing_turns_is_refused_not_recreated(args: list[str]) -> None:
    """`note` and `run` create an instance that does not exist; one whose config.json was lost
    still has its turns (and had a role doc set): recreating defaults would silently drop it."""
    with fresh_home() as root:
        inst = make_instance()
        inst.config_path.unlink()
        before = snapshot(root)
        line = assert_one_line(invoke(*args, "--instance", "work",
                                      input='{"role": "user", "text": "x"}\n'), "no config.json")
        assert "mnemara init -i work" in line and "mnemara restore" in line
        assert snapshot(root) == before
        assert not inst.config_path.exists()


def test_init_over_a_directory_that_lost_its_config_writes_defaults_and_keeps_the_turns() -> None:
    with fresh_home():
        inst = make_instance(turns=5)
        inst.config_path.unlink()
        assert invoke("init", "--instance", "work").exit_code == 0
        assert inst.exists()
        with TurnStore(inst.turns_path, readonly=True) as s:
            assert s.count() == 5


# --- permissions.json ----------------------------------------------------------------------------

@SETTINGS
@given(data=st.one_of(config_bytes, st.dictionaries(st.text(max_size=10), json_values, max_size=3)
                      .map(lambda d: json.dumps(d).encode())))
@example(data=b'{"Bash": ["(unclosed"]}')
@example(data=b'{"Bash": "^ls$"}')
def test_malformed_saved_permissions_grant_nothing_warn_once_and_are_not_rewritten(data: bytes) -> None:
    """A broken permissions.json is not fatal (it only ever adds grants): it is ignored with one
    warning line naming it, grants nothing, and opening a session changes no file."""
    from mnemara.engine.permissions import Decision, _read_saved
    from mnemara.engine.turn import TurnEngine
    with fresh_home() as root:
        inst = make_instance()
        inst.permissions_path.write_bytes(data)
        if _read_saved(inst.permissions_path)[1] is None:
            return  # generated a well-formed file: not this test's business
        before = snapshot(root)
        engine = TurnEngine(inst, embedder=None)
        try:
            warnings = [n.text for n in engine.startup_notices
                        if str(inst.permissions_path) in n.text]
            assert len(warnings) == 1 and "\n" not in warnings[0] and "ignoring" in warnings[0]
            for call in ({"command": "rm -rf /tmp/x"}, {"command": "ls"}):
                assert engine.policy.decide("Bash", call).decision is not Decision.ALLOW
        finally:
            engine.close()
        assert snapshot(root) == before


# --- turns.sqlite --------------------------------------------------------------------------------

_GOOD_STORE: dict[str, bytes] = {}


def good_store() -> bytes:
    """A healthy store of 150 turns, the first 50 archived (built once)."""
    if "bytes" not in _GOOD_STORE:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "turns.sqlite"
            with TurnStore(path) as s:
                for i in range(150):
                    s.add_turn("user", [{"type": "text", "text": f"turn {i} gamma " + "word " * 60}])
                s.evict(list(range(1, 51)), "test")
            _GOOD_STORE["bytes"] = path.read_bytes()
    return _GOOD_STORE["bytes"]


damages = st.one_of(
    st.tuples(st.just("truncate"), st.integers(0, 60), st.integers(0, 0)),
    st.tuples(st.just("pages"), st.integers(0, 40), st.integers(1, 4)),
    st.tuples(st.just("bytes"), st.integers(0, 40 * PAGE), st.integers(1, 512)),
)


def damaged(good: bytes, how: tuple[str, int, int]) -> bytes:
    kind, a, b = how
    data = bytearray(good)
    rnd = random.Random(a * 1000 + b)
    if kind == "truncate":  # a: twentieths of the file kept ... or a few bytes when small
        del data[(len(data) * a) // 60:]
    elif kind == "pages":
        start = min(a, len(data) // PAGE - 1) * PAGE
        data[start:start + b * PAGE] = bytes(rnd.randrange(256) for _ in range(b * PAGE))
    else:
        data[a:a + b] = bytes(rnd.randrange(256) for _ in range(b))
    return bytes(data[:len(good)]) if kind != "truncate" else bytes(data)


@SETTINGS
@given(how=damages)
@example(how=("pages", 1, 2))
@example(how=("truncate", 30, 0))
@example(how=("truncate", 1, 0))
def test_a_damaged_store_never_gives_a_traceback_and_reads_change_nothing(how: tuple[str, int, int]) -> None:
    """Damage that a command reaches is one line naming turns.sqlite and exit 2, with nothing
    changed; damage it never reaches (a few overwritten bytes of free space) lets it succeed."""
    with fresh_home() as root:
        inst = Instance.named("work")
        inst.create()
        inst.turns_path.write_bytes(damaged(good_store(), how))
        for args in (["show"], ["show", "--json"], ["search", "gamma"], ["note", "hi"], ["clear"]):
            before = snapshot(root)
            result = invoke(*args, "--instance", "work")
            assert "Traceback" not in result.stderr and (
                result.exception is None or isinstance(result.exception, SystemExit)), \
                (args, repr(result.exception))
            if result.exit_code != 0:
                assert_one_line(result, str(inst.turns_path))
                assert snapshot(root) == before, args
            elif args[0] in ("show", "search"):
                assert snapshot(root) == before, args
        result = invoke("list")
        assert result.exit_code == 0 and result.exception is None
        assert result.stdout.count("\nwork ") == 1


# --- memory files --------------------------------------------------------------------------------

@SETTINGS
@given(data=st.binary(max_size=300), query=st.sampled_from(["gamma", "note", "x", "\u00e9t\u00e9"]))
@example(data=b"## [2026-01-01T00:00:00Z] note\n\xff\xfe gamma \x00 nul\n", query="gamma")
@example(data=b"\x00" * 50, query="x")
def test_memory_files_with_invalid_utf8_and_nul_bytes_are_read_not_rewritten(data: bytes, query: str) -> None:
    """Notes are the user's Markdown: bytes that are not UTF-8, or NULs, are read with
    replacement characters (search, show, recall's sources) and never rewritten; a new note is
    appended after them, leaving every existing byte in place."""
    with fresh_home() as root:
        inst = make_instance()
        inst.memory_dir.mkdir(mode=0o700)
        old = inst.memory_dir / "2020-01-01.md"
        old.write_bytes(data)
        before = snapshot(root)
        for args in (["search", query], ["search", query, "--json"], ["show"]):
            result = invoke(*args, "--instance", "work")
            assert result.exit_code == 0 and result.exception is None, (args, result.output)
            assert snapshot(root) == before
        assert invoke("note", "--instance", "work", "after the junk").exit_code == 0
        assert old.read_bytes() == data


def test_a_note_with_a_nul_byte_is_stored_and_found() -> None:
    with fresh_home():
        make_instance()
        assert invoke("note", "--instance", "work", "nul\x00inside gamma").exit_code == 0
        hits = [json.loads(ln) for ln in invoke("search", "--instance", "work", "inside",
                                                "--json").stdout.splitlines()]
        assert [h["source"] for h in hits] == ["memory"]


# --- instance names ------------------------------------------------------------------------------

NAME_COMMANDS = [["show"], ["init"], ["note", "hi"], ["run", "--no-tui"], ["ask", "hi"],
                 ["delete", "--force"], ["search", "x"], ["clear"], ["import", "-"]]
tricky_names = st.one_of(
    st.sampled_from(["../x", "..", ".", "a/b", "/etc", "/tmp/x", "~", "~root", "a\x00b", "x" * 65,
                     "x" * 5000, "-rf", "a\nb", "a b", "", " ", "é", "a\\b", ".hidden", "a/../b"]),
    st.text(min_size=0, max_size=80),
)


@SETTINGS
@given(name=tricky_names)
def test_instance_names_with_path_tricks_are_refused_before_anything_is_touched(name: str) -> None:
    if NAME_RE.fullmatch(name):
        return  # a valid name: not this test's business
    with fresh_home() as root:
        outside = root.parent / "outside"
        outside.mkdir()
        (outside / "keep").write_text("mine")
        for args in NAME_COMMANDS:
            result = invoke(*args, f"--instance={name}", input="")
            assert_one_line(result, "invalid instance name")
            assert not root.exists(), args
        assert (outside / "keep").read_text() == "mine"
        if name and "\x00" not in name:  # the environment cannot hold a NUL; empty = unset
            result = CliRunner().invoke(main, ["show"], env={"MNEMARA_INSTANCE": name})
            assert_one_line(result, "invalid instance name")


def test_a_very_long_name_is_shown_shortened_in_the_error() -> None:
    with fresh_home():
        line = assert_one_line(invoke("show", "--instance=" + "x" * 5000), "invalid instance name")
        assert len(line) < 300


# --- delete on a symlinked instance --------------------------------------------------------------

def test_delete_of_a_symlinked_instance_removes_the_link_and_keeps_the_target() -> None:
    with fresh_home() as root:
        target = root.parent / "elsewhere"
        inst = Instance("work", target)
        inst.create()
        with TurnStore(inst.turns_path) as s:
            s.add_turn("user", [{"type": "text", "text": "precious"}])
        before = snapshot(target)
        root.mkdir(mode=0o700)
        (root / "work").symlink_to(target)
        refused = invoke("delete", "--instance", "work")
        assert_one_line(refused, "link", "--force")
        result = invoke("delete", "--instance", "work", "--force")
        assert result.exit_code == 0 and result.exception is None, result.output
        assert "removed the link" in result.stdout and str(target) in result.stdout
        assert not (root / "work").is_symlink() and snapshot(target) == before


def test_delete_of_a_dangling_instance_link_removes_it() -> None:
    with fresh_home() as root:
        root.mkdir(mode=0o700)
        (root / "work").symlink_to(root.parent / "gone")
        line = assert_one_line(invoke("show", "--instance", "work"), "does not exist")
        assert "delete --force" in line
        assert invoke("delete", "--instance", "work", "--force").exit_code == 0
        assert not os.path.lexists(root / "work")


def test_an_instance_path_that_is_a_file_is_one_line_and_left_alone() -> None:
    with fresh_home() as root:
        root.mkdir(mode=0o700)
        (root / "work").write_text("not a directory")
        for args in (["show"], ["note", "hi"], ["run", "--no-tui"], ["init"], ["delete", "--force"]):
            assert_one_line(invoke(*args, "--instance", "work", input=""), "not a directory")
        assert (root / "work").read_text() == "not a directory"
