"""config.json: defaults, validation on load (one line naming file and field), atomic save."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from mnemara import fsutil
from mnemara.config import (DEFAULT_POLICIES, FIELDS, Config, McpServer, ToolPolicy, load_config,
                            save_config)
from mnemara.errors import ConfigError


def write(path: Path, data: object) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def load_error(tmp_path: Path, data: object) -> str:
    path = write(tmp_path / "config.json", data)
    before = path.read_bytes()
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert path.read_bytes() == before, "loading a bad config must not rewrite it"
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    return message


# --- defaults ---------------------------------------------------------------------------------------

def test_defaults_match_the_issue():
    cfg = Config.defaults()
    assert cfg.role_doc_path is None
    assert cfg.max_window_turns == 20
    assert cfg.bash_timeout_seconds == 60
    assert cfg.file_tool_home_only is True
    assert cfg.replay_default_days == 7
    assert cfg.replay_default_threshold == 3
    assert cfg.mcp_servers == ()
    assert isinstance(cfg.stream, bool) and isinstance(cfg.graph_enabled, bool)
    assert isinstance(cfg.max_window_tokens, int) and cfg.model
    for name in ("rag_enabled", "rag_embed_url", "rag_embed_model", "rag_auto_index_memory",
                 "rag_auto_index_wiki"):
        assert name in cfg.to_json()
    modes = {p.tool: p.mode for p in cfg.allowed_tools}
    assert modes["Bash"] == "ask" and modes["Read"] == "allow"
    assert modes["Write"] == "ask" and modes["Edit"] == "ask"
    assert modes["mcp__mnemara__*"] == "allow"


def test_every_field_is_documented_and_its_default_validates():
    for f in FIELDS:
        assert f.doc.strip(), f.name
    assert Config.from_dict(Config.defaults().to_json()) == Config.defaults()


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError):
        Config.defaults().no_such_field  # noqa: B018


# --- round trip and older configs -------------------------------------------------------------------

def full_config() -> Config:
    return Config.defaults().replace(
        role_doc_path="/srv/roles/sentinel.md",
        model="claude-opus-4-1",
        max_window_turns=40,
        max_window_tokens=150_000,
        allowed_tools=[{"tool": "Bash", "mode": "ask", "allowed_patterns": [r"^git (status|log)\b"]},
                       {"tool": "WebFetch", "mode": "deny"},
                       {"tool": "mcp__files__*", "mode": "allow", "allowed_patterns": []}],
        mcp_servers=[{"name": "files", "command": "npx", "args": ["-y", "server-files", "/srv"],
                      "env": {"B": "2", "A": "1"}}],
        stream=False,
        bash_timeout_seconds=120,
        file_tool_home_only=False,
        rag_enabled=False,
        graph_enabled=False,
        replay_default_days=30,
        replay_default_threshold=5,
    )


def test_round_trip_save_load_is_equal(tmp_path):
    cfg = full_config()
    path = tmp_path / "config.json"
    save_config(path, cfg)
    loaded = load_config(path)
    assert loaded == cfg
    assert loaded.allowed_tools[0] == ToolPolicy("Bash", "ask", (r"^git (status|log)\b",))
    assert loaded.mcp_servers == (McpServer("files", "npx", ("-y", "server-files", "/srv"),
                                            (("A", "1"), ("B", "2"))),)
    # and saving what was loaded writes the same bytes
    first = path.read_bytes()
    save_config(path, loaded)
    assert path.read_bytes() == first


def test_saved_file_is_plain_two_space_json_and_private(tmp_path):
    path = tmp_path / "config.json"
    save_config(path, Config.defaults())
    text = path.read_text()
    assert text.endswith("}\n")
    assert text.splitlines()[1].startswith('  "') and not text.splitlines()[1].startswith('   ')
    assert json.loads(text) == Config.defaults().to_json()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_older_config_missing_keys_loads_with_defaults_and_is_not_rewritten(tmp_path):
    path = write(tmp_path / "config.json", {"model": "claude-haiku-4-5", "max_window_turns": 8})
    before = path.read_bytes()
    cfg = load_config(path)
    assert cfg.model == "claude-haiku-4-5" and cfg.max_window_turns == 8
    defaults = Config.defaults()
    for f in FIELDS:
        if f.name not in ("model", "max_window_turns"):
            assert getattr(cfg, f.name) == getattr(defaults, f.name), f.name
    assert path.read_bytes() == before


def test_empty_object_is_all_defaults(tmp_path):
    assert load_config(write(tmp_path / "config.json", {})) == Config.defaults()


# --- atomic save ------------------------------------------------------------------------------------

def test_atomic_save_leaves_no_temp_files(tmp_path):
    path = tmp_path / "config.json"
    for turns in (10, 11, 12):
        save_config(path, Config.defaults().replace(max_window_turns=turns))
    assert sorted(os.listdir(tmp_path)) == ["config.json"]
    assert load_config(path).max_window_turns == 12


def test_failed_save_keeps_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "config.json"
    save_config(path, Config.defaults())
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(fsutil.os, "replace", broken_replace)
    with pytest.raises(OSError):
        save_config(path, Config.defaults().replace(max_window_turns=99))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["config.json"]


# --- validation: every message names the file and the field -----------------------------------------

@pytest.mark.parametrize("data, fragments", [
    ("{not json", ["not valid JSON", "line 1"]),
    ("", ["not valid JSON"]),
    ([1, 2], ["top level must be a JSON object"]),
    ({"colour": "blue"}, ["unknown field 'colour'"]),
    ({"max_window_turns": "20"}, ["'max_window_turns'", "integer", "a string"]),
    ({"max_window_turns": 20.0}, ["'max_window_turns'", "integer"]),
    ({"max_window_turns": True}, ["'max_window_turns'", "integer", "boolean"]),
    ({"max_window_turns": 0}, ["'max_window_turns'", "between", "got 0"]),
    ({"max_window_turns": 100_001}, ["'max_window_turns'", "100001"]),
    ({"max_window_tokens": 10}, ["'max_window_tokens'", "got 10"]),
    ({"bash_timeout_seconds": -1}, ["'bash_timeout_seconds'"]),
    ({"replay_default_threshold": 1}, ["'replay_default_threshold'"]),
    ({"replay_default_days": 0}, ["'replay_default_days'"]),
    ({"stream": "yes"}, ["'stream'", "true or false"]),
    ({"file_tool_home_only": 1}, ["'file_tool_home_only'", "true or false"]),
    ({"model": ""}, ["'model'", "empty"]),
    ({"model": None}, ["'model'", "string", "null"]),
    ({"role_doc_path": 5}, ["'role_doc_path'", "string"]),
    ({"rag_embed_url": "ftp://host"}, ["'rag_embed_url'", "http"]),
    ({"display_name": []}, ["'display_name'", "a list"]),
])
def test_validation_error_names_the_field(tmp_path, data, fragments):
    message = load_error(tmp_path, data)
    for fragment in fragments:
        assert fragment in message, (fragment, message)


@pytest.mark.parametrize("policies, fragments", [
    ({"tool": "Bash"}, ["'allowed_tools'", "must be a list"]),
    (["Bash"], ["'allowed_tools'", "entry 0 must be an object"]),
    ([{"tool": "Bash", "mode": "sometimes"}], ["'allowed_tools'", "Bash", "mode", "'sometimes'"]),
    ([{"tool": "Read", "mode": "allow"}, {"tool": "Bash", "allowed_patterns": ["(unclosed"]}],
     ["'allowed_tools'", "entry 1", "Bash", "'(unclosed'", "not a valid regex"]),
    ([{"tool": "Bash", "allowed_patterns": "git status"}], ["'allowed_tools'", "list of strings"]),
    ([{"tool": "Bash", "allowed_patterns": [3]}], ["'allowed_tools'", "list of strings"]),
    ([{"mode": "allow"}], ["'allowed_tools'", "non-empty 'tool'"]),
    ([{"tool": "", "mode": "allow"}], ["'allowed_tools'", "non-empty 'tool'"]),
    ([{"tool": "Bash", "mode": "ask", "pattern": "x"}], ["'allowed_tools'", "unknown key 'pattern'"]),
])
def test_allowed_tools_entries_are_validated(tmp_path, policies, fragments):
    message = load_error(tmp_path, {"allowed_tools": policies})
    for fragment in fragments:
        assert fragment in message, (fragment, message)


@pytest.mark.parametrize("servers, fragments", [
    ({"name": "x"}, ["'mcp_servers'", "must be a list"]),
    ([{"name": "files"}], ["'mcp_servers'", "files", "'command'"]),
    ([{"name": "my server", "command": "x"}], ["'mcp_servers'", "name must be"]),
    ([{"name": "mnemara", "command": "x"}], ["'mcp_servers'", "reserved"]),
    ([{"name": "a", "command": "x"}, {"name": "a", "command": "y"}], ["'mcp_servers'", "entry 1", "twice"]),
    ([{"name": "a", "command": "x", "args": "--flag"}], ["'mcp_servers'", "args", "list of strings"]),
    ([{"name": "a", "command": "x", "env": {"PORT": 8080}}], ["'mcp_servers'", "env"]),
    ([{"name": "a", "command": "x", "cwd": "/"}], ["'mcp_servers'", "unknown key 'cwd'"]),
    (["a"], ["'mcp_servers'", "entry 0 must be an object"]),
])
def test_mcp_servers_are_validated(tmp_path, servers, fragments):
    message = load_error(tmp_path, {"mcp_servers": servers})
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_valid_policies_and_servers_load(tmp_path):
    cfg = load_config(write(tmp_path / "config.json", {
        "allowed_tools": [{"tool": "Bash", "mode": "allow", "allowed_patterns": ["^ls"]}],
        "mcp_servers": [{"name": "gh", "command": "gh-mcp"}]}))
    assert cfg.allowed_tools == (ToolPolicy("Bash", "allow", ("^ls",)),)
    assert cfg.mcp_servers == (McpServer("gh", "gh-mcp"),)


def test_missing_unreadable_and_non_utf8_files_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="missing"):
        load_config(tmp_path / "nope.json")
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "dir.json")
    bad = tmp_path / "latin1.json"
    bad.write_bytes(b'{"model": "caf\xe9"}')
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(bad)


# --- replace ----------------------------------------------------------------------------------------

def test_replace_validates_like_a_load():
    with pytest.raises(ConfigError, match="'max_window_turns'"):
        Config.defaults().replace(max_window_turns=0)
    with pytest.raises(ConfigError, match="unknown field 'colour'"):
        Config.defaults().replace(colour="blue")


def test_replace_accepts_the_values_a_config_holds():
    cfg = full_config()
    extra = cfg.allowed_tools + (ToolPolicy("Grep", "allow"),)
    changed = cfg.replace(allowed_tools=extra, mcp_servers=cfg.mcp_servers)
    assert changed.allowed_tools == extra
    assert changed.mcp_servers == cfg.mcp_servers
    assert cfg.allowed_tools != extra, "replace must not mutate the original"


def test_policy_glob_matching():
    glob = ToolPolicy("mcp__mnemara__*", "allow")
    assert glob.matches("mcp__mnemara__write_memory")
    assert not glob.matches("mcp__other__x")
    assert ToolPolicy("Bash").matches("Bash") and not ToolPolicy("Bash").matches("BashOutput")
    assert DEFAULT_POLICIES == Config.defaults().allowed_tools
