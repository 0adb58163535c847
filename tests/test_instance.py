"""Instance names, where instances live, create / require / list / delete, and permissions."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from mnemara.config import Config
from mnemara.errors import InstanceError
from mnemara.instance import (Instance, default_instance_name, home_root, list_instances,
                              validate_name)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("name", ["default", "a", "0", "Work_2.backup-1", "x" * 64, "9lives"])
def test_valid_names(name):
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "../x", "a/b", "/abs", "x" * 65, ".hidden", "-dash", "_under",
                                  ".", "..", "a b", "tab\t", "abc\n", "caf\u00e9", "a:b", "a\\b"])
def test_invalid_names_are_one_line_errors(name):
    with pytest.raises(InstanceError) as info:
        validate_name(name)
    message = str(info.value)
    assert "invalid instance name" in message
    assert message.count("\n") == 0


def test_long_bad_name_is_shortened_in_the_message():
    with pytest.raises(InstanceError) as info:
        validate_name("y" * 500)
    assert len(str(info.value)) < 250


def test_home_root_honours_mnemara_home_and_tilde(mnemara_home, monkeypatch):
    assert home_root() == mnemara_home
    monkeypatch.setenv("MNEMARA_HOME", "~/elsewhere")
    assert home_root() == Path(os.environ["HOME"]) / "elsewhere"
    monkeypatch.delenv("MNEMARA_HOME")
    assert home_root() == Path(os.environ["HOME"]) / ".mnemara"


def test_default_instance_name_comes_from_the_environment(mnemara_home, monkeypatch):
    assert default_instance_name() == "default"
    monkeypatch.setenv("MNEMARA_INSTANCE", "work")
    assert default_instance_name() == "work"


def test_naming_an_instance_touches_nothing(mnemara_home):
    inst = Instance.named("fresh")
    assert inst.root == mnemara_home / "fresh"
    assert not mnemara_home.exists()
    assert not inst.exists()


def test_create_makes_private_dir_and_config(mnemara_home):
    old = os.umask(0)  # even a permissive umask must not widen the modes
    try:
        inst = Instance.named("work")
        cfg = inst.create()
    finally:
        os.umask(old)
    assert inst.exists()
    assert mode(inst.root) == 0o700
    assert mode(mnemara_home) == 0o700
    assert mode(inst.config_path) == 0o600
    assert cfg == Config.defaults() == inst.load_config()
    assert json.loads(inst.config_path.read_text()) == Config.defaults().to_json()


def test_create_refuses_an_existing_instance_and_keeps_its_config(make_instance):
    inst = make_instance("work", max_window_turns=7)
    before = inst.config_path.read_bytes()
    with pytest.raises(InstanceError, match="already exists"):
        Instance.named("work").create()
    assert inst.config_path.read_bytes() == before


def test_require_explains_a_missing_instance(mnemara_home):
    with pytest.raises(InstanceError) as info:
        Instance.named("ghost").require()
    assert "no instance named 'ghost'" in str(info.value)
    assert "mnemara init --instance ghost" in str(info.value)


def test_require_explains_a_directory_without_config(mnemara_home):
    (mnemara_home / "half").mkdir(parents=True)
    with pytest.raises(InstanceError, match="has no config.json"):
        Instance.named("half").require()


def test_list_instances_sorted_and_only_real_ones(mnemara_home, make_instance):
    assert list_instances() == []  # root does not even exist yet
    make_instance("zeta")
    make_instance("alpha")
    (mnemara_home / "no-config").mkdir()
    (mnemara_home / ".hidden").mkdir()
    (mnemara_home / ".hidden" / "config.json").write_text("{}")
    (mnemara_home / "stray-file").write_text("x")
    assert [i.name for i in list_instances()] == ["alpha", "zeta"]


def test_delete_removes_everything_and_only_that_instance(make_instance):
    keep = make_instance("keep")
    gone = make_instance("gone")
    (gone.memory_dir).mkdir()
    (gone.memory_dir / "2026-01-01.md").write_text("## [x] note\nhi\n")
    gone.delete()
    assert not gone.root.exists()
    assert keep.exists()


def test_delete_recovers_a_directory_without_config(mnemara_home):
    """`require` tells the user to delete such a directory; deleting it must then work."""
    root = mnemara_home / "half"
    root.mkdir(parents=True)
    (root / "turns.sqlite").write_bytes(b"junk")
    Instance.named("half").delete()
    assert not root.exists()


def test_delete_of_a_missing_instance_is_an_instance_error(mnemara_home):
    with pytest.raises(InstanceError):
        Instance.named("ghost").delete()
