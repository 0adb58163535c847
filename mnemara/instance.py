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
    def proposals_dir(self) -> Path: return self.root / "proposals"  # replay/proposals.py
    @property
    def legacy_proposals_dir(self) -> Path: return self.root / "role_proposals"  # before 0.4
    @property
    def graph_dir(self) -> Path: return self.root / "graph"  # graph/ (ladybug database, lock)
    @property
    def debug_log_path(self) -> Path: return self.root / "debug.log"
    @property
    def prompt_history_path(self) -> Path: return self.root / ".prompt_history"

    def exists(self) -> bool:
        return self.config_path.is_file()

    def require(self) -> "Instance":
        """Fail with one line unless the instance exists, saying what is there instead."""
        if not self.exists():
            problem = self.problem()
            if problem:
                raise InstanceError(problem)
            raise InstanceError(f"no instance named {self.name!r} (looked in {self.root.parent}); "
                                f"create it with `mnemara init --instance {self.name}`")
        return self

    def problem(self) -> str | None:
        """Why something at `root` is not a usable instance (None: a usable one, or nothing)."""
        root, config = self.root, self.config_path
        if root.is_symlink() and not root.exists():
            return (f"instance {self.name!r} at {root} is a link to {os.readlink(root)}, which does "
                    f"not exist; remove the link with `mnemara delete --force -i {self.name}`")
        if not root.exists():
            return None
        if not root.is_dir():
            return (f"{root} is not a directory, so it is not instance {self.name!r}; "
                    "move it aside (mnemara does not touch it)")
        if config.is_dir():
            return (f"instance {self.name!r}: {config} is a directory, not a file; move it aside, "
                    f"then restore config.json from a backup or run `mnemara init -i {self.name}` "
                    "for a default one (set the role doc again with --role)")
        if config.exists() or config.is_symlink():
            if not config.is_file():
                return (f"instance {self.name!r}: {config} is not a regular file; move it aside, "
                        f"then run `mnemara init -i {self.name}`")
            return None
        return (f"instance {self.name!r} at {root} has no config.json; restore the instance from "
                f"a backup (`mnemara restore FILE -i NEW`), or run `mnemara init -i {self.name}` "
                "for a default config "
                "(its turns and memory are kept; set the role doc again with --role), or "
                f"`mnemara delete --force -i {self.name}`")

    def holds_data(self) -> bool:
        """The directory holds an instance's data (turns, memory, wiki, index, grants): not a
        place to create a fresh default config in silently, which would drop the role doc
        setting and every other choice the lost config held."""
        return any(p.exists() or p.is_symlink() for p in (
            self.turns_path, self.memory_dir, self.wiki_dir, self.index_dir, self.permissions_path))

    def load_config(self) -> Config:
        return load_config(self.config_path)

    def save_config(self, config: Config) -> None:
        save_config(self.config_path, config)

    def create(self, config: Config | None = None) -> Config:
        """Create the directory (0700) and a config (0600). Refuses an existing instance."""
        if self.exists():
            raise InstanceError(f"instance {self.name!r} already exists at {self.root}")
        problem = self.problem()
        if problem and (self.config_path.exists() or self.config_path.is_symlink()
                        or not self.root.is_dir()):
            raise InstanceError(problem)  # a config.json that is a directory, a file as root...
        try:
            ensure_private_dir(self.root.parent)
            ensure_private_dir(self.root)
        except OSError as exc:
            raise InstanceError(f"cannot create instance {self.name!r} at {self.root}: "
                                f"{exc.strerror or exc}") from None
        config = config or Config.defaults()
        self.save_config(config)
        return config

    def delete(self) -> Path | None:
        """Remove the directory. A directory without config.json can be deleted too: `require`
        tells the user to do exactly that to recover a broken instance.

        An instance that is a symbolic link loses the link only: its target may be anywhere
        (outside MNEMARA_HOME) and is the user's to delete. Returns that target, or None.
        """
        if self.root.is_symlink():
            target = Path(os.readlink(self.root))
            try:
                self.root.unlink()
            except OSError as exc:
                raise InstanceError(f"cannot remove the link {self.root}: {exc.strerror or exc}") from None
            return target
        if not self.root.is_dir():
            self.require()
        try:
            shutil.rmtree(self.root)
        except OSError as exc:
            where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
            raise InstanceError(f"cannot delete {self.root}{where}: {exc.strerror or exc}; "
                                "part of it may be left; fix the permissions and run it again") from None
        return None


def broken_instances() -> list[Instance]:
    """Entries of the root that look like instances but are not usable ones (config.json lost
    or a directory, a dangling link, ...): listed by `mnemara list` as broken, never hidden."""
    root = home_root()
    if not root.is_dir():
        return []
    found = []
    for child in sorted(root.iterdir()):
        if not NAME_RE.fullmatch(child.name):
            continue
        inst = Instance(child.name, child)
        if inst.exists() or not (child.is_dir() or child.is_symlink()):
            continue
        if inst.holds_data() or os.path.lexists(inst.config_path) or child.is_symlink():
            found.append(inst)
    return found


def list_instances() -> list[Instance]:
    root = home_root()
    if not root.is_dir():
        return []
    found = []
    for child in sorted(root.iterdir()):
        if NAME_RE.fullmatch(child.name) and (child / "config.json").is_file():
            found.append(Instance(child.name, child))
    return found
