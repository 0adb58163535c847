"""The README is documentation users rely on: these tests keep it in step with the code."""

from __future__ import annotations

import json
import re
from pathlib import Path

from mnemara.cli import main
from mnemara.config import FIELDS, Config
from mnemara.ui.commands import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _config_rows() -> dict[str, tuple[str, str]]:
    block = README.split("<!-- config-reference:start -->")[1].split("<!-- config-reference:end -->")[0]
    rows = {}
    for line in block.splitlines():
        m = re.match(r"^\| `(\w+)` \| (.+?) \| (.+) \|$", line)
        if m:
            rows[m[1]] = (m[2], m[3])
    return rows


def test_every_config_field_is_documented_with_its_default_and_meaning() -> None:
    rows = _config_rows()
    assert list(rows) == [f.name for f in FIELDS]
    defaults = Config.defaults().to_json()
    for field in FIELDS:
        default_cell, meaning = rows[field.name]
        if not isinstance(defaults[field.name], list):
            assert default_cell == f"`{json.dumps(defaults[field.name])}`", field.name
        assert meaning.replace("\\|", "|") == field.doc, field.name


def test_every_slash_command_is_documented() -> None:
    table = README.split("### In the chat")[1].split("REPL keys")[0]
    for name in COMMANDS:
        assert f"`/{name}" in table or f"`/{name} " in table or f", `/{name}" in table, name


def test_every_cli_command_is_documented() -> None:
    table = README.split("### Commands")[1].split("Examples:")[0]
    for name in main.commands:
        assert f"`mnemara {name}" in table, name


def test_ci_runs_exactly_the_readme_test_command() -> None:
    m = re.search(r"The test command is `([^`]+)`", README)
    assert m, "README names its test command"
    command = m[1]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert command in [line.strip() for line in ci]
    quick_start = README.split("## Quick start")[1].split("## Using it")[0]
    assert f'pip install -e ".[dev]" && {command}' in quick_start


def test_every_cli_command_has_an_example() -> None:
    lines = [ln.split("#")[0] for ln in README.splitlines()]
    for name in main.commands:
        assert any(re.search(rf"(^|\| )mnemara {name}( |$)", ln) for ln in lines), name
