"""Editing the role doc in place, and fetching one from a URL: shared by `/role_doc` (TUI and
REPL) and `mnemara role --set-from-url`.

The role doc is the system prompt, re-read by every turn, so a save here is what the next turn
sends. Every write is atomic (a turn reading it meanwhile sees the old text or the new one) and
keeps the file's mode; a role doc that is a link is written through to its target, so the link
stays a link. Text that could not be sent (a NUL byte, more than the size limit) is refused
before anything is written, with the same words the turn would use.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..engine.prompt import ROLE_DOC_MAX_BYTES, role_doc_problem
from ..errors import MnemaraError
from ..fsutil import atomic_write_text

if TYPE_CHECKING:
    from ..config import Config
    from ..instance import Instance

ROLE_FILE = "role.md"          # where a role doc made by mnemara lives, in the instance dir
URL_MAX_BYTES = 1_000_000      # `role --set-from-url` reads at most this much
URL_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class RoleDraft:
    """The role doc as it stands, ready for an editor."""

    path: Path        # the file a save writes (a link's target)
    text: str         # "" when the file does not exist yet
    creating: bool    # the file does not exist: saving creates it
    configured: bool  # config already points at `path` (else a save points it there)


def role_path(instance: "Instance", config: "Config") -> tuple[Path, bool]:
    """(the file the role doc is, whether config names it): the configured path, or the
    instance's own `role.md` when none is set."""
    if config.role_doc_path:
        return Path(config.role_doc_path).expanduser(), True
    return instance.root / ROLE_FILE, False


def draft(instance: "Instance", config: "Config") -> RoleDraft:
    """The role doc to edit, or MnemaraError when it cannot be edited as text (a directory, a NUL
    byte, not UTF-8, too large): editing such a file would destroy what it holds."""
    path, configured = role_path(instance, config)
    problem = role_doc_problem(str(path))
    if problem == "does not exist":
        return RoleDraft(path, "", True, configured)
    if problem:
        raise MnemaraError(f"role doc {path} {problem}; it cannot be edited here (fix it in an "
                           "editor of your own, or point /role at another file)")
    return RoleDraft(path, path.read_text(encoding="utf-8"), False, configured)


def check_text(text: str) -> None:
    """MnemaraError when `text` could not be sent as the system prompt."""
    nul = text.find("\0")
    if nul >= 0:
        raise MnemaraError(f"the role doc holds a NUL character (at {nul:,}), which cannot be "
                           "sent; nothing was saved")
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > ROLE_DOC_MAX_BYTES:
        raise MnemaraError(f"the role doc is {size:,} bytes (limit {ROLE_DOC_MAX_BYTES:,}); "
                           "nothing was saved")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MnemaraError(f"the role doc is not valid text (at {exc.start:,}); nothing was saved") from None


def save(instance: "Instance", config: "Config", path: Path, text: str) -> "Config":
    """Write `text` to the role doc at `path` atomically (mode kept, a link written through) and
    return the config pointing at it (saved when it changed)."""
    check_text(text)
    target = Path(os.path.realpath(path))
    if target.is_dir():
        raise MnemaraError(f"role doc {path} is a directory, not a file; nothing was saved")
    if not target.parent.is_dir():
        raise MnemaraError(f"cannot save the role doc: the directory {target.parent} does not exist")
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = 0o600
    try:
        atomic_write_text(target, text, mode=mode)
    except OSError as exc:
        raise MnemaraError(f"cannot save the role doc {target}: {exc.strerror or exc}") from None
    current = Path(config.role_doc_path).expanduser() if config.role_doc_path else None
    if current != Path(path).expanduser():
        config = config.replace(role_doc_path=str(Path(path).expanduser().absolute()))
        instance.save_config(config)
    return config


# -- fetching one from a URL -----------------------------------------------------------------------

def fetch(url: str, *, opener: Callable[..., Any] | None = None,
          max_bytes: int = URL_MAX_BYTES, timeout: float = URL_TIMEOUT_SECONDS) -> str:
    """The text at an https `url`: at most `max_bytes`, UTF-8, no NUL. A redirect to anything but
    https is refused. MnemaraError says what went wrong. `opener(request, timeout=...)` defaults
    to urllib's, which verifies the certificate with the system's CAs (or SSL_CERT_FILE)."""
    import urllib.error
    import urllib.parse
    import urllib.request
    if urllib.parse.urlsplit(url).scheme.lower() != "https" or not urllib.parse.urlsplit(url).netloc:
        raise MnemaraError(f"{url}: only https:// URLs are fetched (the role doc steers the model; "
                           "it must not be changed on the way)")
    open_url = opener or urllib.request.build_opener(_https_only_redirects()).open
    request = urllib.request.Request(url, headers={"User-Agent": "mnemara",
                                                   "Accept": "text/markdown, text/plain, */*"})
    try:
        with open_url(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise MnemaraError(f"{url} is {int(length):,} bytes; a role doc may be at most "
                                   f"{max_bytes:,}; nothing was saved")
            data = response.read(max_bytes + 1)
    except urllib.error.HTTPError as exc:
        raise MnemaraError(f"{url}: HTTP {exc.code} {exc.reason}; nothing was saved") from None
    except urllib.error.URLError as exc:
        raise MnemaraError(f"cannot fetch {url}: {exc.reason}; nothing was saved") from None
    except (TimeoutError, OSError) as exc:
        raise MnemaraError(f"cannot fetch {url}: {exc}; nothing was saved") from None
    if len(data) > max_bytes:
        raise MnemaraError(f"{url} is more than {max_bytes:,} bytes; a role doc may be at most "
                           f"{max_bytes:,}; nothing was saved")
    nul = data.find(b"\0")
    if nul >= 0:
        raise MnemaraError(f"{url} holds a NUL byte (at byte {nul:,}): not a text role doc; "
                           "nothing was saved")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MnemaraError(f"{url} is not UTF-8 text (byte {exc.start:,}); nothing was saved") from None
    if not text.strip():
        raise MnemaraError(f"{url} is empty; nothing was saved")
    return text


def _https_only_redirects() -> Any:
    """A redirect handler that follows https -> https only (urllib would follow one to http)."""
    import urllib.request

    class HttpsOnly(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any,
                             newurl: str) -> Any:
            if not newurl.lower().startswith("https://"):
                raise MnemaraError(f"{req.full_url} redirects to {newurl}, which is not https; "
                                   "nothing was saved")
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    return HttpsOnly()
