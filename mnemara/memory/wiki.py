"""Wiki pages: Markdown files `wiki/<slug>.md`, written by the user or the model, indexed by section.

A slug is a relative path without the `.md`: `deploy/staging` lives in `wiki/deploy/staging.md`.
Slugs come from the model as well as the user, so they are checked twice: `validate_slug` allows
only plain segments (no `..`, no hidden files, no `~`, no absolute paths), and every read and
write resolves the final path and refuses it if it lands outside the wiki directory (a symlink
planted inside `wiki/` that points out is never followed).

A page may start with a frontmatter block whose `tags` the index uses as the atom category:

    ---
    tags: [deploy, ops]
    ---
    # Staging
    ...

Only `tags` is read (flow list `[a, b]`, bare `a, b`, or a block list of `- a` lines); other
keys stay in the text untouched, and no YAML library is needed.
"""

from __future__ import annotations

import fcntl
import os
import re
import stat
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..errors import MnemaraError
from ..fsutil import atomic_write_text, ensure_private_dir
from ..index.atoms import Atom

MAX_PAGE_BYTES = 1_000_000
MAX_SLUG_CHARS = 200
MAX_SLUG_SEGMENTS = 8
# Enough for the frontmatter and the first heading of any sane page; `list` reads no more.
_LIST_HEAD_CHARS = 8192
_LOCK_NAME = ".wiki.lock"

_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_SLUG_RULE = (f"use 1-{MAX_SLUG_SEGMENTS} '/'-separated parts made of letters, digits, '_', '.' "
              f"and '-', each starting with a letter or digit, at most {MAX_SLUG_CHARS} characters "
              f"in all (e.g. 'deploy/staging')")
# CommonMark: up to 3 spaces of indent, 1-6 '#', then a space or the end of the line
# ("#hashtag" is not a heading).
_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+|$)(.*)$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


class WikiError(MnemaraError, ValueError):
    """A bad slug, a missing page, or a write the wiki refuses; the message is one line."""


@dataclass(frozen=True)
class WikiPage:
    slug: str
    path: Path
    text: str               # the whole file
    body: str               # the text after the frontmatter block (all of it if there is none)
    tags: tuple[str, ...]
    updated_at: str         # file mtime, ISO-8601 UTC "YYYY-MM-DDTHH:MM:SSZ"
    body_line: int = 1      # 1-based file line where `body` starts


@dataclass(frozen=True)
class WikiEntry:
    """One line of `Wiki.list`: enough to choose a page without reading all of it."""

    slug: str
    path: Path
    size: int               # bytes
    updated_at: str
    tags: tuple[str, ...]
    title: str              # the first heading, "" if the page's head has none


@dataclass(frozen=True)
class Section:
    n: int                  # 1-based among the page's non-empty sections
    heading: str            # heading text without the '#'s; "" for text before the first heading
    text: str               # heading line + content, surrounding blank lines dropped
    line: int               # 1-based line in the file where the section starts


# -- slugs --------------------------------------------------------------------------------------

def _short(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _check_segments(text: str, what: str) -> str:
    if not text:
        raise WikiError(f"{what} is empty; {_SLUG_RULE}")
    if len(text) > MAX_SLUG_CHARS:
        raise WikiError(f"{what} {_short(text)} is too long; {_SLUG_RULE}")
    if text.startswith("/"):
        raise WikiError(f"{what} {_short(text)} is an absolute path; {_SLUG_RULE}")
    segments = text.split("/")
    if len(segments) > MAX_SLUG_SEGMENTS:
        raise WikiError(f"{what} {_short(text)} has too many parts; {_SLUG_RULE}")
    for segment in segments:
        # The segment pattern alone excludes "", ".", "..", ".hidden", "~", "%2e%2e", "\\" and
        # control characters; fullmatch so a trailing "\n" cannot slip past a `$`.
        if not _SEGMENT.fullmatch(segment):
            raise WikiError(f"{what} {_short(text)} is not allowed; {_SLUG_RULE}")
        if segment.endswith(".md"):
            # Page "x" is the file x.md, so a directory x.md would collide with it.
            raise WikiError(f"{what} {_short(text)} has a part ending in '.md'; {_SLUG_RULE}")
    return text


def validate_slug(text: str) -> str:
    """The canonical slug for a user- or model-given page name, or WikiError.

    Surrounding whitespace and one trailing ".md" are dropped ("deploy/staging.md" ->
    "deploy/staging"). Nothing else is rewritten: a leading "/" is refused rather than stripped,
    so "/etc/passwd" can never quietly become the page "etc/passwd".
    """
    if not isinstance(text, str):
        raise WikiError(f"a wiki page name must be text; {_SLUG_RULE}")
    slug = text.strip()
    if slug.endswith(".md"):
        slug = slug[:-3]
    return _check_segments(slug, "wiki page name")


# -- frontmatter and sections -------------------------------------------------------------------

def _split_tags(value: str) -> list[str]:
    value = value.strip()
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    return [t.strip().strip("'\"").strip() for t in value.split(",")]


def parse_frontmatter(text: str) -> tuple[tuple[str, ...], str, int]:
    """(tags, body, body_line) for a page's text; a page without frontmatter has no tags."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].lstrip("\ufeff").rstrip("\r\n") != "---":
        return (), text, 1
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip("\r\n").rstrip() == "---"), None)
    first = next((ln for ln in lines[1:end] if ln.strip()), "")
    if end is None or (first and not re.match(r"^[A-Za-z_][\w-]*\s*:", first)):
        # Not a key: value block: a page that opens with a horizontal rule, and is all text.
        return (), text, 1
    tags: list[str] = []
    in_tag_list = False
    for line in lines[1:end]:
        line = line.rstrip("\r\n")
        m = re.match(r"^tags\s*:(.*)$", line, re.I)
        if m:
            in_tag_list = not m[1].strip()  # "tags:" alone: a block list follows
            tags += _split_tags(m[1]) if m[1].strip() else []
        elif in_tag_list and re.match(r"^\s*-\s", line):
            tags += _split_tags(line.split("-", 1)[1])
        else:
            in_tag_list = False
    unique = tuple(dict.fromkeys(t for t in tags if t))
    return unique, "".join(lines[end + 1:]), end + 2


def _heading_text(rest: str) -> str:
    # An optional closing run of '#'s counts only after a space ("## C#" keeps its '#').
    rest = rest.strip()
    return "" if set(rest) <= {"#"} else re.sub(r"\s+#+$", "", rest)


def sections(page: WikiPage) -> list[Section]:
    """The page body split at Markdown ATX headings outside fenced code blocks.

    A section whose content is blank (the empty preamble before a first heading, or a heading
    directly followed by another heading) is skipped: it has nothing to recall. Setext headings
    (text underlined with === or ---) are not split on.
    """
    found: list[Section] = []
    fence: str | None = None
    current: tuple[str, int] | None = None  # (heading, file line) of the open section
    body: list[str] = []

    def close() -> None:
        heading, line = current if current else ("", page.body_line)
        lines = list(body)
        while lines and not lines[-1].strip():
            lines.pop()
        start = 1 if current else 0  # the heading line itself does not count as content
        while len(lines) > start and not lines[start].strip():
            lines.pop(start)
            if not current:
                line += 1  # the preamble starts at its first non-blank line
        if len(lines) > start:
            found.append(Section(len(found) + 1, heading, "\n".join(lines), line))

    for number, raw in enumerate(page.body.splitlines(), page.body_line):
        fm = _FENCE.match(raw)
        if fm:
            marker = fm[1]
            if fence is None:
                fence = marker
            elif marker[0] == fence[0] and len(marker) >= len(fence) and not raw.strip()[len(marker):]:
                fence = None
        hm = _HEADING.match(raw) if fence is None and not fm else None
        if hm:
            close()
            current, body = (_heading_text(hm[2]), number), [raw]
        else:
            body.append(raw)
    close()
    return found


def page_atoms(page: WikiPage) -> list[Atom]:
    """One index atom per section: id `wiki:<slug>#<n>`, source `wiki/<slug>.md`."""
    category = ",".join(page.tags)
    return [Atom(id=f"wiki:{page.slug}#{s.n}", kind="wiki", text=s.text, created_at=page.updated_at,
                 source=f"wiki/{page.slug}.md", line=s.line, category=category)
            for s in sections(page)]


# -- the wiki directory -------------------------------------------------------------------------

def _iso_mtime(st: os.stat_result) -> str:
    return datetime.fromtimestamp(st.st_mtime, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Wiki:
    """The pages under one instance's `wiki/` directory."""

    def __init__(self, wiki_dir: Path):
        self.dir = Path(wiki_dir)

    def _root(self) -> Path:
        # The wiki dir itself may be a symlink the user set up (e.g. into a synced folder);
        # confinement is to wherever it really is.
        return self.dir.resolve()

    def _path(self, slug: str) -> tuple[str, Path]:
        """(slug, real file path), refusing any path that resolves outside the wiki dir."""
        slug = validate_slug(slug)
        root = self._root()
        # resolve() follows every symlink along the path, dangling ones included, so a link
        # planted anywhere under wiki/ that points out shows up here.
        real = (root / f"{slug}.md").resolve()
        if not real.is_relative_to(root):
            raise WikiError(f"wiki page {slug!r} points outside the wiki directory; refusing it")
        return slug, real

    def read(self, slug: str) -> WikiPage:
        slug, path = self._path(slug)
        text, st = self._read_file(slug, path)
        return self._page(slug, path, text, st)

    def _read_file(self, slug: str, path: Path) -> tuple[str, os.stat_result]:
        try:
            # O_NOFOLLOW: the path was just resolved, so a symlink here means one was swapped in
            # since. O_NONBLOCK: a FIFO planted as a page must not hang the read.
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            raise WikiError(f"no wiki page {slug!r}; wiki_list shows the pages") from None
        except OSError as exc:
            raise WikiError(f"cannot read wiki page {slug!r}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise WikiError(f"wiki page {slug!r} is not a regular file")
            data = fh.read()
        return data.decode("utf-8", errors="replace"), st

    @staticmethod
    def _page(slug: str, path: Path, text: str, st: os.stat_result) -> WikiPage:
        tags, body, body_line = parse_frontmatter(text)
        return WikiPage(slug, path, text, body, tags, _iso_mtime(st), body_line)

    def write(self, slug: str, content: str, mode: str = "replace") -> WikiPage:
        """Create or change a page atomically; `mode` "append" adds after a blank line."""
        if mode not in ("replace", "append"):
            raise WikiError(f"wiki write mode {mode!r} is unknown; use 'replace' or 'append'")
        if not isinstance(content, str) or not content.strip():
            raise WikiError("a wiki page needs some text")
        slug, path = self._path(slug)
        root = ensure_private_dir(self._root())
        # Writers are serialised (append is read-modify-write; two at once would lose one).
        lock_fd = os.open(root / _LOCK_NAME, os.O_CREAT | os.O_WRONLY, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            new = content.strip("\n") + "\n"
            if mode == "append" and path.exists():
                old, _ = self._read_file(slug, path)
                if old.strip():
                    new = old.rstrip("\n") + "\n\n" + new
            size = len(new.encode("utf-8"))
            if size > MAX_PAGE_BYTES:
                raise WikiError(f"wiki page {slug!r} would be {size:,} bytes; "
                                f"the limit is {MAX_PAGE_BYTES:,}")
            if path.is_dir():
                raise WikiError(f"wiki page {slug!r} is a directory in the wiki; choose another name")
            # Each missing directory gets 0700, not just the last one.
            for parent in reversed(path.parent.relative_to(root).parents):
                ensure_private_dir(root / parent)
            ensure_private_dir(path.parent)
            atomic_write_text(path, new)
        finally:
            os.close(lock_fd)  # closing releases the lock
        return self._page(slug, path, new, path.stat())

    def list(self, prefix: str | None = None) -> list[WikiEntry]:
        """Every page, sorted by slug; `prefix` keeps slugs starting with it ("deploy/" or "dep")."""
        if prefix:
            _check_segments(prefix.rstrip("/"), "wiki prefix")
        root = self._root()
        if not root.is_dir():
            return []
        entries: list[WikiEntry] = []
        # followlinks=False: a linked directory is not walked, wherever it points.
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                if not name.endswith(".md") or name.startswith("."):
                    continue
                slug = (Path(dirpath) / name).relative_to(root).as_posix()[:-3]
                if prefix and not slug.startswith(prefix):
                    continue
                try:
                    entries.append(self._entry(*self._path(slug)))
                except WikiError:
                    continue  # a hand-made file with a name no slug allows, or a link out
        return sorted(entries, key=lambda e: e.slug)

    def _entry(self, slug: str, path: Path) -> WikiEntry:
        if not path.is_file():
            raise WikiError(f"wiki page {slug!r} is not a regular file")
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                head = fh.read(_LIST_HEAD_CHARS)
            st = path.stat()
        except OSError as exc:
            raise WikiError(f"cannot read wiki page {slug!r}: {exc.strerror}") from None
        tags, body, _ = parse_frontmatter(head)
        title = next((_heading_text(m[2]) for m in map(_HEADING.match, body.splitlines()) if m), "")
        return WikiEntry(slug, path, st.st_size, _iso_mtime(st), tags, title)
