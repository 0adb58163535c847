"""The instance-wide lock: whole-instance rewrites never overlap a turn or each other.

One `flock` on the instance directory itself (no lock file to create or leave behind), in two
modes:

- shared: held by a chat session for the length of each turn (role doc, recall, the request,
  the tools' note and wiki writes, storing the reply) and by its background index drain. Many
  shared holders coexist, so two sessions never wait on each other. Single appends (`mnemara
  note`) take no lock: each is atomic on its own, and a backup notices one that lands while it
  copies (`ops/backup.py`).
- exclusive: held by `import`, `restore`, redaction rewrites and `backup`. It waits for the
  turn in flight to finish, and a turn that starts meanwhile waits for it, so a session never
  reads a half-imported store or a half-rewritten note file, and a backup copies the index,
  notes and wiki pages while no session writes them.

Waits are bounded: a command that cannot get the lock in time fails with one line naming who
holds it ("instance 'work' is busy: chat turn (pid 4121, since 14:02:11 UTC); try again when it
has finished") instead of hanging. `MNEMARA_LOCK_WAIT` (seconds) overrides the default wait.

Who holds the lock is recorded in `<instance>/.lock.info` (JSON, one entry per holder, updated
under its own short flock; entries of dead processes are dropped on the next update; the last
holder to leave removes the file), only so that message can say it. The kernel releases a
flock when its holder dies, even by SIGKILL, so a crash never leaves the instance locked.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import json
import os
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

from .errors import MnemaraError
from .fsutil import open_flocked

LOCK_NAME = ".lock"  # not used by this version (it locks the directory); skipped by backups
INFO_NAME = ".lock.info"
DEFAULT_WAIT_SECONDS = 10.0
# A chat turn waits longer than a command: a backup or an import of thousands of turns takes a
# while, and the user would rather see the turn start late than fail.
TURN_WAIT_SECONDS = 300.0
POLL_SECONDS = 0.05


class InstanceBusy(MnemaraError):
    """Another process holds the instance lock in a conflicting mode for longer than the wait."""


@dataclass(frozen=True)
class Holder:
    pid: int
    purpose: str
    exclusive: bool
    since: str  # ISO-8601 UTC

    def describe(self) -> str:
        at = self.since[11:19] + " UTC" if len(self.since) >= 19 else self.since
        return f"{self.purpose} (pid {self.pid}, since {at})"


def default_wait() -> float:
    """The bounded wait for commands: MNEMARA_LOCK_WAIT seconds when set, else 10."""
    raw = os.environ.get("MNEMARA_LOCK_WAIT", "").strip()
    if raw:
        try:
            value = float(raw)
            if value >= 0:
                return value
        except ValueError:
            pass
        raise MnemaraError(f"MNEMARA_LOCK_WAIT must be a number of seconds, got {raw!r}")
    return DEFAULT_WAIT_SECONDS


class InstanceLock:
    """One acquisition of the lock of the instance directory `root` (named `name` in messages).

    Each acquisition opens its own descriptor: flock locks belong to the open file, so a shared
    holder and an exclusive request in the same process conflict exactly as across processes.
    """

    def __init__(self, root: Path, name: str, *, exclusive: bool, purpose: str) -> None:
        self.root = Path(root)
        self.name = name
        self.exclusive = exclusive
        self.purpose = purpose
        self._fd: int | None = None
        self._token = uuid.uuid4().hex

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if it is free now; never waits."""
        if self._fd is not None:
            return True
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if self.exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise
        self._fd = fd
        self._record(add=True)
        return True

    def acquire(self, wait: float | None = None) -> "InstanceLock":
        """Take the lock, waiting at most `wait` seconds (default: `default_wait()`)."""
        wait = default_wait() if wait is None else wait
        deadline = time.monotonic() + wait
        while not self.try_acquire():
            if time.monotonic() >= deadline:
                raise InstanceBusy(self.busy_message(wait))
            time.sleep(POLL_SECONDS)
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self._record(add=False)
        finally:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def busy_message(self, waited: float) -> str:
        holders = read_holders(self.root)
        if not self.exclusive:  # only an exclusive holder keeps a shared request out
            holders = [h for h in holders if h.exclusive] or holders
        who = "; ".join(h.describe() for h in holders[:3]) or "locked by another process"
        return (f"instance {self.name!r} is busy: {who}; try again when it has finished "
                f"(waited {waited:g} s; MNEMARA_LOCK_WAIT sets how long)")

    def _record(self, *, add: bool) -> None:
        """Add or remove this acquisition in `.lock.info` (best effort: it only feeds messages)."""
        path = self.root / INFO_NAME
        try:
            fd = open_flocked(path)  # the last holder unlinks it under this lock
        except OSError:
            return
        try:
            entries = _parse_info(_read_fd(fd))
            entries = {k: v for k, v in entries.items() if _alive(_pid(v))}
            if add:
                entries[self._token] = {"pid": os.getpid(), "purpose": self.purpose,
                                        "exclusive": self.exclusive, "since": _now()}
            else:
                entries.pop(self._token, None)
            if entries:
                data = json.dumps(entries).encode("utf-8")
                os.ftruncate(fd, 0)
                os.pwrite(fd, data, 0)
            else:
                path.unlink()  # the last holder leaves nothing behind
        except OSError:
            pass
        finally:
            os.close(fd)  # releases the info file's flock

    def __enter__(self) -> "InstanceLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def read_holders(root: Path) -> list[Holder]:
    """Live holders recorded for the instance at `root` (nothing is written; doctor uses it)."""
    try:
        text = (Path(root) / INFO_NAME).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    holders = []
    for entry in _parse_info(text).values():
        try:
            holder = Holder(int(entry["pid"]), str(entry["purpose"]), bool(entry["exclusive"]),
                            str(entry["since"]))
        except (KeyError, TypeError, ValueError):
            continue
        if _alive(holder.pid):
            holders.append(holder)
    return sorted(holders, key=lambda h: h.since)


def is_locked(root: Path) -> bool:
    """Whether some process holds the lock in either mode (checked with a shared try-lock on a
    read-only descriptor: it creates nothing and changes nothing)."""
    try:
        fd = os.open(Path(root), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


@contextmanager
def instance_lock(instance: Any, *, exclusive: bool = True, purpose: str = "a command",
                  wait: float | None = None) -> Iterator[InstanceLock]:
    """`with instance_lock(inst, exclusive=True, purpose="import"): ...`

    `instance` is an `Instance` (its directory must exist). `purpose` names the holder in
    busy messages ("import", "backup", "chat turn"). Raises `InstanceBusy` after `wait` seconds
    (default `default_wait()`).
    """
    lock = InstanceLock(instance.root, instance.name, exclusive=exclusive, purpose=purpose)
    lock.acquire(wait)
    try:
        yield lock
    finally:
        lock.release()


async def acquire_waiting(lock: InstanceLock, wait: float, notify: Callable[[str], Awaitable[Any]],
                          stop: Callable[[], bool]) -> bool:
    """Take `lock` from async code without blocking the event loop: `notify` is told once what it
    waits for; gives up (False) after `wait` seconds or as soon as `stop()` is true (Ctrl+C)."""
    if lock.try_acquire():
        return True
    holders = [h for h in read_holders(lock.root) if h.exclusive] or read_holders(lock.root)
    who = "; ".join(h.describe() for h in holders[:3]) or "another process"
    await notify(f"waiting for the instance lock: {who}")
    deadline = time.monotonic() + wait
    while not lock.try_acquire():
        if stop() or time.monotonic() >= deadline:
            return False
        await asyncio.sleep(POLL_SECONDS * 2)
    return True


def _read_fd(fd: int) -> str:
    chunks = []
    offset = 0
    while chunk := os.pread(fd, 1 << 16, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks).decode("utf-8", errors="replace")


def _parse_info(text: str) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict)}


def _pid(entry: dict[str, Any]) -> int:
    try:
        return int(entry.get("pid", 0))
    except (TypeError, ValueError):
        return 0


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
