"""Shared fixtures. Keep them generic: any test module may use them, and others add their own.

- `mnemara_home`: an isolated MNEMARA_HOME (and HOME) under tmp_path; MNEMARA_INSTANCE unset.
- `cli`: run `mnemara ARGS...` in-process with click's CliRunner (stdout and stderr separate).
- `run_mnemara`: run `python -m mnemara ARGS...` as a real subprocess (for "no traceback" checks).
- `make_instance`: create an instance (optionally with config changes) and return it.
- `assert_user_error`: the contract for a user mistake: exit 2, one `mnemara:` line, no traceback.
- `snapshot_tree`: {relative path: bytes} of a directory, to prove a command modified nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
from click.testing import CliRunner, Result
from hypothesis import settings

# Property tests explore the same examples on every run (a CI failure reproduces on a laptop),
# and keep no example database in the checkout.
settings.register_profile("mnemara", derandomize=True, database=None)
settings.load_profile("mnemara")

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def mnemara_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The instance root for this test (not created yet); HOME is a separate empty tmp dir."""
    home = tmp_path / "home"
    home.mkdir()
    root = tmp_path / "mnemara-home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("MNEMARA_HOME", str(root))
    monkeypatch.delenv("MNEMARA_INSTANCE", raising=False)
    return root


@pytest.fixture
def cli(mnemara_home: Path) -> Callable[..., Result]:
    """`cli("show", "--instance", "x", input="...")` -> click Result (.exit_code, .stdout, .stderr).

    Runs without a TTY, as CI does. Unexpected exceptions are caught and kept on the result
    (`result.exception`), so a test can assert that none happened.
    """
    from mnemara.cli import main

    def run(*args: str, input: str | bytes | None = None, env: dict[str, str] | None = None) -> Result:
        return CliRunner().invoke(main, list(args), input=input, env=env, catch_exceptions=True)

    return run


@pytest.fixture
def run_mnemara(mnemara_home: Path) -> Callable[..., subprocess.CompletedProcess]:
    """Run the real entry point (`python -m mnemara`) in a subprocess with this test's env."""

    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess:
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), full_env.get("PYTHONPATH")]))
        full_env.update(env or {})
        return subprocess.run([sys.executable, "-m", "mnemara", *args], input=input, env=full_env,
                              capture_output=True, text=True, timeout=timeout)

    return run


@pytest.fixture
def make_instance(mnemara_home: Path) -> Callable[..., Any]:
    """`make_instance("work", max_window_turns=5)` -> a created `Instance`."""
    from mnemara.config import Config
    from mnemara.instance import Instance

    def make(name: str = "default", **config_changes: Any) -> Instance:
        inst = Instance.named(name)
        config = Config.defaults().replace(**config_changes) if config_changes else None
        inst.create(config)
        return inst

    return make


def _assert_user_error(result: Any, *fragments: str) -> str:
    """Check a click Result or CompletedProcess failed the way a user mistake must fail.

    Returns the error line. Every fragment must appear in it.
    """
    code = getattr(result, "exit_code", None)
    if code is None:
        code = result.returncode
    stderr = result.stderr
    assert code == 2, f"exit code {code}; stdout={result.stdout!r} stderr={stderr!r}"
    exc = getattr(result, "exception", None)
    assert exc is None or isinstance(exc, SystemExit), f"unexpected exception: {exc!r}"
    assert "Traceback" not in stderr and "Traceback" not in result.stdout
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {stderr!r}"
    assert lines[0].startswith("mnemara:"), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


@pytest.fixture
def assert_user_error() -> Callable[..., str]:
    return _assert_user_error


def _snapshot_tree(root: Path) -> dict[str, bytes | None]:
    """Every file and directory below `root`: file -> bytes, directory -> None."""
    if not root.exists():
        return {}
    out: dict[str, bytes | None] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        out[rel] = None if path.is_dir() else path.read_bytes()
    return out


@pytest.fixture
def snapshot_tree() -> Callable[[Path], dict[str, bytes | None]]:
    return _snapshot_tree


@pytest.fixture
def fake_cli_env(tmp_path: Path) -> dict[str, str]:
    """Env for running `python -m mnemara` in a subprocess against the scripted fake CLI.

    HOME and MNEMARA_HOME are fresh temp dirs; no other MNEMARA_* variable leaks in. Add a
    script's env from `tests.fakes.fake_cli.fake_cli(...)` on top.
    """
    from tests.fakes.fake_cli import FAKE_CLI_PATH
    home = tmp_path / "home"
    home.mkdir()
    base = {k: v for k, v in os.environ.items() if not k.startswith("MNEMARA_")}
    return {**base, "HOME": str(home), "MNEMARA_HOME": str(home / ".mnemara"),
            "MNEMARA_CLI_PATH": FAKE_CLI_PATH}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's home for in-process engine tests: HOME is tmp/home, instances live in
    HOME/.mnemara, and no MNEMARA_INSTANCE / MNEMARA_CLI_PATH leaks in from the outside."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("MNEMARA_HOME", str(home / ".mnemara"))
    monkeypatch.delenv("MNEMARA_INSTANCE", raising=False)
    monkeypatch.delenv("MNEMARA_CLI_PATH", raising=False)
    return home
