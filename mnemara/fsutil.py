"""Small filesystem helpers: atomic writes and private permissions."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def atomic_write_text(path: Path, text: str, mode: int = PRIVATE_FILE) -> None:
    """Write `text` to `path` so readers see either the old or the new file, never half of one.

    The temp file lives in the same directory (same filesystem, so rename is atomic), is
    fsync'ed before the rename, and gets `mode` before it becomes visible.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


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
