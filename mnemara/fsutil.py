"""Small filesystem helpers: atomic writes and private permissions."""

from __future__ import annotations

import fcntl
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


@contextmanager
def atomic_output(path: Path, *, mode: int = PRIVATE_FILE, overwrite: bool = True,
                  binary: bool = False, newline: str | None = None,
                  sync_dir: bool = False) -> Iterator[IO[Any]]:
    """`with atomic_output(path) as fh:` write `fh`; on a clean exit the file appears at `path`
    whole, and on an error or a kill nothing changes there (readers see the old file or the new
    one, never half of one).

    The temp file lives in the same directory (same filesystem, so the rename is atomic), is
    created private, fsync'ed, and given `mode` before it becomes visible. With
    `overwrite=False` it is linked into place only if the name is still free, so a file that
    appeared meanwhile is never clobbered (FileExistsError). `sync_dir` also fsyncs the
    directory, so the new name survives a power cut.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        fh: IO[Any] = (os.fdopen(fd, "wb") if binary else
                       os.fdopen(fd, "w", encoding="utf-8", newline=newline))
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # FileExistsError when the name was taken meanwhile
            os.unlink(tmp)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if sync_dir:
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def atomic_write_text(path: Path, text: str, mode: int = PRIVATE_FILE) -> None:
    """Write `text` to `path` atomically (see `atomic_output`)."""
    with atomic_output(path, mode=mode) as fh:
        fh.write(text)


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) if needed; the leaf gets mode 0700."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    os.chmod(path, PRIVATE_DIR)
    return path


def touch_private(path: Path) -> None:
    """Create `path` with mode 0600 if it does not exist (never truncates)."""
    fd = os.open(path, os.O_CREAT | os.O_APPEND | os.O_WRONLY, PRIVATE_FILE)
    os.close(fd)


def open_flocked(path: Path, flags: int = os.O_RDWR) -> int:
    """`path` opened (created 0600 if missing) under its exclusive `flock`, and still the file
    at `path` when the lock is granted; the caller closes the descriptor to release it.

    A file locked this way may be replaced (renamed over, or unlinked) by whoever holds the
    lock. A process that was waiting on the old inode would otherwise go on with a file nobody
    reads any more; it notices the swap here and retries on the file now at `path`.
    """
    while True:
        fd = os.open(path, flags | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return fd
        except FileNotFoundError:
            pass  # removed and not (yet) replaced: open it afresh
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
