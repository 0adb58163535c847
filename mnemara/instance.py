"""Instances: name rules, where they live, and create / open / list / delete."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from .config import Config, load_config, save_config
from .errors import InstanceError
from .fsutil import ensure_private_dir

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DEFAULT_INSTANCE = "default"


def home_root() -> Path:
    """The directory holding every instance: `$MNEMARA_HOME`, else `~/.mnemara`."""
    env = os.environ.get("MNEMARA_HOME")
    return Path(env).expanduser() if env else Path.home() / ".mnemara"


def default_instance_name() -> str:
    return os.environ.get("MNEMARA_INSTANCE") or DEFAULT_INSTANCE


def validate_name(name: str) -> str:
    # fullmatch: `$` alone would also accept a trailing newline ("abc\n").
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        shown = name if len(name or "") <= 70 else name[:67] + "..."
        raise InstanceError(
            f"invalid instance name {shown!r}: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit")
    return name


@dataclass(frozen=True)
class Instance:
    """Paths of one instance directory. Constructing one touches nothing on disk."""

    name: str
    root: Path

    @classmethod
    def named(cls, name: str) -> "Instance":
        return cls(validate_name(name), home_root() / name)

    # Everything an instance holds lives at one of these paths.
    @property
    def config_path(self) -> Path: return self.root / "config.json"
    @property
    def turns_path(self) -> Path: return self.root / "turns.sqlite"
    @property
    def permissions_path(self) -> Path: return self.root / "permissions.json"
    @property
    def memory_dir(self) -> Path: return self.root / "memory"
    @property
    def wiki_dir(self) -> Path: return self.root / "wiki"
    @property
    def index_dir(self) -> Path: return self.root / "index"
    @property
    def proposals_dir(self) -> Path: return self.root / "role_proposals"
    @property
    def debug_log_path(self) -> Path: return self.root / "debug.log"
    @property
    def prompt_history_path(self) -> Path: return self.root / ".prompt_history"

    def exists(self) -> bool:
        return self.config_path.is_file()

    def require(self) -> "Instance":
        """Fail with one line unless the instance exists."""
        if not self.exists():
            if self.root.is_dir():
                raise InstanceError(f"instance {self.name!r} at {self.root} has no config.json; "
                                    "restore it or run `mnemara delete --force` and init again")
            raise InstanceError(f"no instance named {self.name!r} (looked in {self.root.parent}); "
                                f"create it with `mnemara init --instance {self.name}`")
        return self

    def load_config(self) -> Config:
        return load_config(self.config_path)

    def save_config(self, config: Config) -> None:
        save_config(self.config_path, config)

    def create(self, config: Config | None = None) -> Config:
        """Create the directory (0700) and a config (0600). Refuses an existing instance."""
        if self.exists():
            raise InstanceError(f"instance {self.name!r} already exists at {self.root}")
        ensure_private_dir(self.root.parent)
        ensure_private_dir(self.root)
        config = config or Config.defaults()
        self.save_config(config)
        return config

    def delete(self) -> None:
        """Remove the directory. A directory without config.json can be deleted too: `require`
        tells the user to do exactly that to recover a broken instance."""
        if not self.root.is_dir():
            self.require()
        shutil.rmtree(self.root)


def list_instances() -> list[Instance]:
    root = home_root()
    if not root.is_dir():
        return []
    found = []
    for child in sorted(root.iterdir()):
        if NAME_RE.fullmatch(child.name) and (child / "config.json").is_file():
            found.append(Instance(child.name, child))
    return found
