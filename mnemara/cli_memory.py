"""The memory commands of the `mnemara` CLI: recall, reindex, wiki, import.

Registered on the `main` group by importing this module. Importing it stays cheap (click and the
standard library only): LanceDB, the embedders and numpy load inside the commands that need them.
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import click

from .cli import _ensure, _existing, instance_option, main
from .errors import MnemaraError
from .index.atoms import KINDS
from .termsafe import inert, inert_json, one_line

if TYPE_CHECKING:
    from datetime import datetime

    from .config import Config
    from .index.atoms import Hit
    from .index.lance import SearchResult
    from .instance import Instance
    from .memory.service import MemoryService

PREVIEW_CHARS = 100


@contextmanager
def _memory(inst: "Instance", config: "Config", name: str) -> Iterator["MemoryService"]:
    """The instance's memory service, closed afterwards; memory off, or an index or embedder
    that cannot be opened, is one line."""
    from .ops.memory import open_memory
    if not config.rag_enabled:
        raise MnemaraError(f"memory is off for instance {name!r} (rag_enabled is false); "
                           "`mnemara search` still searches the text of turns and notes")
    service = open_memory(inst, config)
    try:
        yield service
    finally:
        service.close()


# -- recall -------------------------------------------------------------------------------------

@main.command()
@instance_option
@click.argument("queries", nargs=-1, required=True, metavar="QUERY...")
@click.option("-k", "k", type=click.IntRange(1, 100), default=10, show_default=True,
              help="Hits per query.")
@click.option("--kind", "kinds", type=click.Choice(KINDS), multiple=True,
              help="Only this kind of memory (repeatable).")
@click.option("--since", metavar="ISO", help="Only memories from this time on (ISO-8601; naive = UTC).")
@click.option("--until", metavar="ISO", help="Only memories before this time (ISO-8601; naive = UTC).")
@click.option("--now", metavar="ISO", help="The instant time phrases (\"last week\") are resolved "
              "against, e.g. for a script replaying an old conversation (ISO-8601; naive = UTC; "
              "default: now).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per query per line.")
def recall(instance_name: str, queries: tuple[str, ...], k: int, kinds: tuple[str, ...],
           since: str | None, until: str | None, now: str | None, as_json: bool) -> None:
    """Search memory (turns, notes, wiki, entries) the way the model's recall does.

    Each QUERY is one query (quote a multi-word one); '-' reads queries from stdin, one per line,
    so a script can ask many questions through one process. Time phrases in a query ("last
    week") boost what falls in that period.
    """
    from .ops import memory as ops
    since, until = _time_bounds(since, until)
    at = _now_option(now)
    inst = _existing(instance_name)
    config = inst.load_config()
    asked = _queries(queries)
    with _memory(inst, config, instance_name) as service:
        for query in asked:  # each printed as soon as it is answered
            result = ops.recall(service, [query], k=k, kinds=list(kinds) or None,
                                since=since, until=until, now=at)[0]
            if as_json:
                click.echo(inert_json(json.dumps(_result_json(query, result), ensure_ascii=False)))
            else:
                _print_result(query, result)


def _time_bounds(since: str | None, until: str | None) -> tuple[str | None, str | None]:
    from .timestamps import parse_timestamp
    bounds = []
    for flag, value in (("--since", since), ("--until", until)):
        try:
            bounds.append(None if value is None else parse_timestamp(value))
        except ValueError as exc:
            raise MnemaraError(f"{flag} {exc}") from None
    if bounds[0] and bounds[1] and bounds[0] >= bounds[1]:
        raise MnemaraError(f"--since {bounds[0]} is not before --until {bounds[1]}; nothing could match")
    return bounds[0], bounds[1]


def _now_option(value: str | None) -> "datetime | None":
    """--now as an aware UTC datetime (validated like --since), or None for the real now."""
    from datetime import datetime, timezone

    from .timestamps import parse_timestamp
    if value is None:
        return None
    try:
        stamp = parse_timestamp(value)
    except ValueError as exc:
        raise MnemaraError(f"--now {exc}") from None
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def _queries(args: tuple[str, ...]) -> list[str]:
    """The queries in order; '-' stands for the lines of stdin (blank lines skipped)."""
    out: list[str] = []
    for arg in args:
        if arg == "-":
            out.extend(line.strip() for line in sys.stdin.read().splitlines() if line.strip())
        elif arg.strip():
            out.append(arg.strip())
    if not out:
        raise MnemaraError("no query given (arguments and stdin were empty)")
    return out


def _iso(at: Any) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _result_json(query: str, result: "SearchResult") -> dict[str, Any]:
    tr = result.time_range
    return {"query": query, "mode": result.mode, "note": result.note,
            "time_range": {"since": _iso(tr.since), "until": _iso(tr.until), "phrase": tr.phrase}
            if tr else None,
            "hits": [h.to_json() for h in result.hits]}


def _print_result(query: str, result: "SearchResult") -> None:
    mode = "hybrid" if result.mode == "hybrid" else "full-text only"
    header = f"== {one_line(query, 200)} [{mode}"
    if result.note:
        header += f": {one_line(result.note, 300)}"
    header += "]"
    if result.time_range:
        tr = result.time_range
        header += f" time {one_line(tr.phrase, 60)!r}: {_iso(tr.since)} .. {_iso(tr.until)}"
    n = len(result.hits)
    click.echo(f"{header}; {n} hit{'s' if n != 1 else ''}")
    for rank, hit in enumerate(result.hits, 1):
        click.echo(_hit_line(rank, hit))


def _hit_line(rank: int, hit: "Hit") -> str:
    signals = " ".join(f"{name}={value:.2f}" for name, value in hit.signals.items()) or "-"
    return (f"{rank:>3}. {hit.score:.3f}  {_where(hit):<28} {hit.atom.created_at:<20}  "
            f"{signals:<28}  {one_line(hit.atom.text, PREVIEW_CHARS)}")


def _where(hit: "Hit") -> str:
    """Kind and source: turn #id (role), note FILE:LINE, wiki PAGE#SECTION, manual ID."""
    atom = hit.atom
    if atom.kind == "turn":
        where = f"turn #{atom.turn_id} ({atom.role})"
        ids = hit.turn_ids()
        if len(ids) > 1:
            where += f" +#{ids[0]}-#{ids[-1]}"
        return where
    if atom.kind == "note":
        return f"note {Path(atom.source).name}:{atom.line}"
    if atom.kind == "wiki":
        return f"wiki {atom.id.removeprefix('wiki:')}"
    return f"{atom.kind} {atom.id}" + (f" [{atom.category}]" if atom.category else "")


# -- reindex ------------------------------------------------------------------------------------

@main.command()
@instance_option
def reindex(instance_name: str) -> None:
    """Rebuild the memory index from its sources (turns, notes, wiki, manual entries)."""
    from collections import Counter

    from .memory.sources import iter_source_atoms
    from .ops import memory as ops
    from .ops.progress import progress_bar
    inst = _existing(instance_name)
    config = inst.load_config()
    with _memory(inst, config, instance_name) as service:
        started = time.perf_counter()
        # The breakdown for the summary, read from the same sources the rebuild reads.
        kinds = Counter(a.kind for a in iter_source_atoms(inst, service.store(), config))
        with progress_bar("reindexing") as update:
            total = ops.reindex(service, update)
        seconds = time.perf_counter() - started
        embedder = _embedder_name(service)
    manual = sum(n for kind, n in kinds.items() if kind not in ("turn", "note", "wiki"))
    click.echo(f"reindexed {total:,} atoms ({_count(kinds['turn'], 'turn')}, "
               f"{_count(kinds['note'], 'note')}, {_count(kinds['wiki'], 'wiki section')}, "
               f"{_count(manual, 'manual entry', 'manual entries')}) "
               f"with {embedder} in {seconds:.1f} s")


def _embedder_name(service: "MemoryService") -> str:
    embedder = service.make_embedder()  # constructed only: nothing is loaded or contacted
    return embedder.name if embedder is not None else "no embedder (full-text only)"


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


# -- wiki ---------------------------------------------------------------------------------------

@main.group()
@instance_option
@click.pass_context
def wiki(ctx: click.Context, instance_name: str) -> None:
    """List, show and edit the instance's wiki pages (wiki/<page>.md)."""
    ctx.obj = instance_name


def _sub_instance_option(fn: Any) -> Any:
    """`-i` after the subcommand too (`mnemara wiki list -i work`), where it wins."""
    return click.option("--instance", "-i", "instance_name", default=None, metavar="NAME",
                        help="Instance name (may also come before the subcommand).")(fn)


@wiki.command("list")
@click.argument("prefix", required=False)
@_sub_instance_option
@click.pass_obj
def wiki_list(group_instance: str, instance_name: str | None, prefix: str | None) -> None:
    """List pages: slug, size, last update, tags, title. PREFIX keeps slugs starting with it."""
    from .ops import memory as ops
    inst = _existing(group_instance if instance_name is None else instance_name)
    entries = ops.wiki_list(inst, prefix)
    if not entries:
        click.echo("no wiki pages" + (f" starting with {prefix!r}" if prefix else "")
                   + "; create one with `mnemara wiki edit PAGE`")
        return
    width = max(len(e.slug) for e in entries)
    for e in entries:
        tags = ",".join(e.tags) or "-"
        click.echo(f"{e.slug:<{width}}  {e.size:>8,} B  {e.updated_at}  {one_line(tags, 40):<12}  "
                   f"{one_line(e.title, 80) or '-'}")


@wiki.command("show")
@click.argument("page")
@_sub_instance_option
@click.pass_obj
def wiki_show(group_instance: str, instance_name: str | None, page: str) -> None:
    """Print a page."""
    from .memory.wiki import WikiError
    from .ops import memory as ops
    inst = _existing(group_instance if instance_name is None else instance_name)
    try:
        text = ops.wiki_read(inst, page).text
    except WikiError as exc:
        # The wiki's messages name the model's tool; here the command is what helps.
        raise MnemaraError(str(exc).replace("wiki_list", "`mnemara wiki list`")) from None
    # The model writes wiki pages: inert on a terminal; the page's bytes unchanged into a pipe
    # (color=True: click would strip what looks like a colour code, and only that).
    click.echo(inert(text) if sys.stdout.isatty() else text, nl=False, color=True)


@wiki.command("edit")
@click.argument("page")
@_sub_instance_option
@click.pass_obj
def wiki_edit(group_instance: str, instance_name: str | None, page: str) -> None:
    """Edit a page (a new one is created) in $VISUAL or $EDITOR (default vi); saved and indexed
    only if the text changed."""
    from .memory.wiki import WikiError, validate_slug
    from .ops import memory as ops
    inst = _existing(group_instance if instance_name is None else instance_name)
    slug = validate_slug(page)  # before anything is written: a bad name is one line
    try:
        original = ops.wiki_read(inst, slug).text
    except WikiError:
        if os.path.lexists(inst.wiki_dir / f"{slug}.md"):
            raise  # there is something by that name that cannot be read: never overwrite it
        original = ""  # a new page
    edited = _edit_text(inst, original)
    if edited == original or not edited.strip() and not original:
        click.echo(f"no changes to wiki page {slug!r}")
        return
    saved = ops.wiki_write(inst, slug, edited)
    click.echo(f"saved wiki page {saved.slug!r} ({len(saved.text.encode('utf-8')):,} bytes) "
               f"to {saved.path}")


def _editor_command() -> list[str]:
    import shlex
    raw = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    try:
        command = shlex.split(raw)
    except ValueError as exc:
        raise MnemaraError(f"cannot parse the editor command {raw!r} ($VISUAL/$EDITOR): {exc}") from None
    if not command:
        raise MnemaraError("the editor command ($VISUAL/$EDITOR) is empty")
    return command


def _edit_text(inst: "Instance", text: str) -> str:
    """`text` after the user edited it in their editor: a private temp copy in the instance
    directory (never /tmp, which others can read), removed afterwards whatever happens."""
    import subprocess
    import tempfile
    command = _editor_command()
    fd, tmp = tempfile.mkstemp(prefix=".wiki-edit-", suffix=".md", dir=inst.root)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        try:
            status = subprocess.run([*command, tmp]).returncode
        except OSError as exc:
            raise MnemaraError(f"cannot start the editor {command[0]!r}: {exc.strerror}; "
                               "set $VISUAL or $EDITOR") from None
        if status != 0:
            raise MnemaraError(f"the editor exited with status {status}; the page was not changed")
        try:
            return Path(tmp).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise MnemaraError("the edited page is not valid UTF-8; the page was not changed") from None
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass  # the editor removed it


# -- import -------------------------------------------------------------------------------------

@main.command("import")
@instance_option
@click.argument("file", metavar="FILE")
def import_cmd(instance_name: str, file: str) -> None:
    """Import a conversation (JSON lines, one turn per line) or a `mnemara export` file.

    A conversation line: {"role": "user"|"assistant", "text": "...", "ts": "ISO-8601"} (ts
    optional; naive = UTC); its turns follow any existing ones. An export (recognised by its
    header record) is restored exactly (turns with their ids, blocks, usage, pins and status;
    notes; wiki pages) into an empty instance only. FILE '-' reads stdin. Every line is checked
    first (a bad one imports nothing); the newest turns that fit stay in the window, the rest are
    archived, and all are indexed for recall. Creates the instance if it does not exist.
    """
    from .instance import Instance
    from .ops.importer import import_turns, load_conversation
    from .ops.progress import progress_bar
    # A bad name or a broken config first, then a bad file: all before anything is created.
    if Instance.named(instance_name).exists():
        _existing(instance_name)
    conversation = load_conversation(file)
    inst = _ensure(instance_name)
    config = inst.load_config()
    with progress_bar("importing") as update:  # the bar fills as the turns are indexed
        report = import_turns(inst, config, conversation, progress=update)
    click.echo(report.line())
    if report.note:
        click.echo(f"mnemara: note: {report.note}", err=True)


# -- export -------------------------------------------------------------------------------------

@main.command("export")
@instance_option
@click.option("--format", "fmt", type=click.Choice(["jsonl", "md"]), default="jsonl",
              show_default=True, help="jsonl: for `mnemara import` (lossless); md: for reading.")
@click.option("-o", "--output", metavar="FILE", help="Write to FILE (created 0600) instead of stdout.")
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
def export_cmd(instance_name: str, fmt: str, output: str | None, force: bool) -> None:
    """Export the window, the archive, memory notes and wiki pages.

    Every turn with all its blocks, usage, pin, status and times. Secrets are replaced by
    markers unless the config says `redact: false`. The instance is not changed.
    """
    from .ops.export import export
    inst = _existing(instance_name)
    report = export(inst, inst.load_config(), fmt=fmt, output=output, force=force)
    if output is not None:
        click.echo(report.line())
    elif report.secrets_redacted:
        click.echo(f"mnemara: note: {report.secrets_redacted:,} secret(s) redacted", err=True)
