"""The `mnemara` command line. Each command is thin; heavy imports happen inside commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable

import click

from . import __version__
from .errors import MnemaraError
from .instance import Instance, default_instance_name, list_instances


class _Group(click.Group):
    """Turns every MnemaraError into one line on stderr and exit code 2 (no traceback)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MnemaraError as exc:
            from .termsafe import inert  # a message may quote a page name, a path, a tool's text
            click.echo(f"mnemara: {inert(str(exc))}", err=True)
            ctx.exit(exc.exit_code)


def instance_option(fn: Callable) -> Callable:
    return click.option(
        # No show_default: the default is a callable (env, else 'default'); click would print
        # "[default: (default)]". The help says it in words.
        "--instance", "-i", "instance_name", default=default_instance_name, show_default=False,
        metavar="NAME", help="Instance name (env MNEMARA_INSTANCE; default 'default').")(fn)


def _existing(name: str) -> Instance:
    """The instance, which must exist and have a valid config (checked before anything is written)."""
    inst = Instance.named(name).require()
    inst.load_config()
    return inst


def _ensure(name: str, say: Callable[[str], None] | None = None) -> Instance:
    """The instance, created with defaults (and said so: on stderr, or through `say`) when it
    does not exist yet."""
    from .errors import InstanceError
    inst = Instance.named(name)
    if inst.exists():
        inst.load_config()
        return inst
    if inst.holds_data() or inst.problem() and not inst.root.is_dir():
        inst.require()  # a lost or broken config.json over turns: say so, never recreate silently
    try:
        inst.create()
    except InstanceError:
        if not inst.exists():  # not a lost race with another process creating it: a real error
            raise
        inst.load_config()
        return inst
    created = f"created instance {name!r} at {inst.root} with default config"
    if say is not None:
        say(created)
    else:
        click.echo(f"mnemara: {created}", err=True)
    return inst


def _is_tty() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def _warn_missing_role(path: str | None) -> None:
    """A role doc that is missing, unreadable, a directory, not UTF-8 or holding a NUL byte is
    a warning: turns run with an empty system prompt until it is fixed."""
    from .engine.prompt import role_doc_problem
    problem = role_doc_problem(path) if path else None
    if problem == "does not exist":
        click.echo(f"mnemara: warning: role doc {path} does not exist yet; "
                   "turns will run with an empty system prompt until it does", err=True)
    elif problem:
        click.echo(f"mnemara: warning: role doc {path} {problem}; "
                   "turns run with an empty system prompt until it is fixed", err=True)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="mnemara", message="%(prog)s %(version)s")
def main() -> None:
    """mnemara: a Claude chat runtime where you see and shape exactly what the model sees.

    Every instance lives in ~/.mnemara/<instance>/ (root overridable with MNEMARA_HOME).
    """


@main.command()
@instance_option
@click.option("--role", "role", metavar="PATH", help="Role doc (Markdown) used as the system prompt.")
def init(instance_name: str, role: str | None) -> None:
    """Create a new instance with a default config."""
    inst = Instance.named(instance_name)
    if inst.exists():
        raise MnemaraError(f"instance {instance_name!r} already exists at {inst.root}")
    if role is None and _is_tty():
        role = click.prompt("Role doc path (Enter to skip)", default="", show_default=False).strip() or None
    from .config import Config
    config = Config.defaults()
    if role:
        role = str(Path(role).expanduser().resolve())
        config = config.replace(role_doc_path=role)
    inst.create(config)
    click.echo(f"created instance {instance_name!r} at {inst.root}")
    _warn_missing_role(role)


@main.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_cmd(as_json: bool) -> None:
    """List instances with model, role doc, window size and last activity."""
    from .errors import ConfigError, StoreDamaged, StoreError
    from .instance import broken_instances
    from .store import TurnStore
    rows = []
    # One broken instance is one row saying so; the others are listed as usual.
    for inst in list_instances():
        row: dict[str, Any] = {"name": inst.name, "path": str(inst.root)}
        try:
            cfg = inst.load_config()
            row.update(model=cfg.model, role_doc=cfg.role_doc_path, max_window_turns=cfg.max_window_turns)
        except ConfigError as exc:
            row["error"] = str(exc)
        try:
            with TurnStore(inst.turns_path, readonly=True) as store:
                counted, failed = store.window_counts()
                row.update(window_turns=counted, failed_turns=failed,
                           archived=store.archived_count(), last_activity=store.last_activity())
        except StoreError as exc:
            if inst.turns_path.exists():
                row["error"] = str(exc)
                row["damaged"] = isinstance(exc, StoreDamaged)
            row.update(window_turns=0, failed_turns=0, archived=0, last_activity=None)
        rows.append(row)
    for inst in broken_instances():
        rows.append({"name": inst.name, "path": str(inst.root), "error": inst.problem()})
    rows.sort(key=lambda r: r["name"])
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no instances yet; create one with `mnemara init --instance NAME`")
        return
    click.echo(f"{'NAME':<20} {'MODEL':<20} {'WINDOW':>8} {'LAST ACTIVITY':<21} ROLE DOC")
    for r in rows:
        if "model" not in r:
            click.echo(f"{r['name']:<20} (broken config: {r['error']})")
            continue
        if "error" in r:
            kind = "DAMAGED store" if r.get("damaged") else "unreadable store"
            click.echo(f"{r['name']:<20} ({kind}: {r['error']})")
            continue
        window = f"{r['window_turns']}/{r['max_window_turns']}"
        click.echo(f"{r['name']:<20} {r['model']:<20} {window:>8} {r.get('last_activity') or '-':<21} "
                   f"{r['role_doc'] or '-'}")


@main.command()
@instance_option
@click.option("-n", "last", type=click.IntRange(min=1), help="Show only the last N turns.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: turns and totals.")
@click.option("--prompt", "as_prompt", is_flag=True,
              help="Print exactly the system prompt and content blocks the next turn sends.")
def show(instance_name: str, last: int | None, as_json: bool, as_prompt: bool) -> None:
    """Print the rolling window as the model will see it, then totals. Read-only."""
    from .store import TurnStore
    from .views import WindowTotals, display_turn, terminal_width, turn_json
    inst = _existing(instance_name)
    cfg = inst.load_config()
    if as_prompt:
        _show_prompt(inst, cfg, as_json)
        return
    turns, est, archived = [], 0, 0
    if inst.turns_path.exists():
        with TurnStore(inst.turns_path, readonly=True) as store:
            turns, est, archived = store.window(last), store.window_tokens(), store.archived_count()
            count, failed = store.window_counts()
    else:
        count, failed = 0, 0
    totals = WindowTotals(count, cfg.max_window_turns, est, cfg.max_window_tokens, archived, failed)
    if as_json:
        click.echo(json.dumps({"turns": [turn_json(t) for t in turns], "totals": totals.to_json()}, indent=2))
        return
    if not turns:
        click.echo("(the window is empty)")
    width = terminal_width()
    for turn in turns:
        click.echo(display_turn(turn, width))
        click.echo()
    click.echo(totals.line())


def _show_prompt(inst: Instance, cfg: Any, as_json: bool) -> None:
    from .ops.window import request_preview
    from .termsafe import inert, inert_json  # exactly what is sent, but shown, never obeyed
    preview = request_preview(inst, cfg)
    if as_json:
        data = {"system_prompt": preview.system_prompt, "blocks": preview.blocks,
                "next_message_slots": _slots_text(preview.next_slots),
                "warning": preview.role_warning,
                "added_by_claude_code": [{"where": w, "what": t} for w, t in _cli_additions(cfg)]}
        click.echo(inert_json(json.dumps(data, indent=2, ensure_ascii=False)))
        return
    if preview.role_warning:
        click.echo(f"mnemara: warning: {preview.role_warning}", err=True)
    if preview.role_warning:  # said on stdout too: the empty prompt below is what is sent
        click.echo(f"===== system prompt (empty: {inert(preview.role_warning)}) =====")
    else:
        click.echo(f"===== system prompt ({len(preview.system_prompt):,} characters, "
                   f"from {cfg.role_doc_path or 'no role doc'}) =====")
    click.echo(inert(preview.system_prompt))
    click.echo(f"===== user message: {len(preview.blocks)} block(s) from the window, then your next message =====")
    for turn, block in zip(preview.turns, preview.blocks):
        recalled = preview.recalled(turn)
        extra = f", {recalled} recalled memor{'y' if recalled == 1 else 'ies'} inside" if recalled else ""
        if any(b.get("type") == "slots" for b in turn.blocks):
            extra += ", ending with the slots as they were then"
        click.echo(f"----- block: turn {turn.id} ({turn.role}, ~{turn.est_tokens:,} tokens{extra}) -----")
        click.echo(inert(block["text"]))
    recall = ("recalled memories relevant to it are added inside its block"
              if cfg.recall == "auto" and cfg.rag_enabled else "automatic recall is off")
    click.echo(f"----- block: your next message ({recall}) -----")
    if preview.next_slots is not None:  # changed since the window last carried them
        from .store.blocks import render_block
        click.echo(f"----- ... ending with your slots, changed since last sent ({preview.slots_line}) -----")
        click.echo(inert(render_block(preview.next_slots)))
    elif preview.slots_line:
        click.echo(f"----- slots: {preview.slots_line}; unchanged, so not repeated: the model "
                   "sees them in the newest window block that carries them -----")
    click.echo("===== added by Claude Code on its own (not controlled by mnemara; "
               "varies with its version) =====")
    for where, what in _cli_additions(cfg):
        click.echo(inert(f"- {where}: {what}"))  # the cwd and model come from config.json


def _slots_text(block: Any) -> str | None:
    """The `<slots>` block the next message ends with, as sent (None: nothing is added)."""
    if block is None:
        return None
    from .store.blocks import render_block
    return render_block(block)


def _cli_additions(cfg: Any) -> list[tuple[str, str]]:
    """What the Claude Code CLI adds to the request by itself, for `show --prompt`."""
    import datetime

    from .engine.prompt import cli_additions, offered_builtins
    offered = offered_builtins(cfg)
    cwd = str(Path(cfg.cwd).expanduser()) if cfg.cwd else str(Path.cwd())
    return cli_additions(model=cfg.model, cwd=cwd, offered_tools=offered,
                         today=datetime.date.today().isoformat())


@main.command()
@instance_option
@click.option("--no-tui", is_flag=True, help="Use the plain REPL (also MNEMARA_NO_TUI=1, or off a terminal).")
def run(instance_name: str, no_tui: bool) -> None:
    """Chat with the instance (creates it with defaults if missing)."""
    import os
    interactive = _is_tty()
    plain = no_tui or os.environ.get("MNEMARA_NO_TUI", "").lower() in ("1", "true", "yes") or not interactive
    said: list[str] = []  # the TUI covers stderr: it shows the creation notice inside instead
    inst = _ensure(instance_name, None if plain else said.append)
    inst.load_config()  # a broken config is one line here, before any screen opens
    if plain:
        from .ui.repl import run_repl
        sys.exit(run_repl(inst, interactive=interactive))
    from .ui.tui.app import run_tui
    sys.exit(run_tui(inst, notices=said))


@main.command()
@instance_option
@click.argument("message", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print every event as a JSON line.")
@click.option("--yes", "-y", is_flag=True, help="Allow tools whose policy is 'ask' (denied otherwise).")
def ask(instance_name: str, message: tuple[str, ...], as_json: bool, yes: bool) -> None:
    """Run one turn non-interactively; the reply goes to stdout. MESSAGE '-' (or none) reads stdin
    (on a terminal it says so; end the message with Ctrl+D).

    Exit code: 0 done, 1 the turn failed or the message was refused as too large for the
    window budget, 130 interrupted (Ctrl+C), 143 stopped by SIGTERM."""
    if message in ((), ("-",)):
        if sys.stdin.isatty():  # else it would wait silently, looking hung
            click.echo("mnemara: reading the message from stdin (Ctrl+D to end)", err=True)
        text = sys.stdin.read()
    else:
        text = " ".join(message)
    if not text.strip():
        raise MnemaraError("nothing to ask: give a MESSAGE or pipe one on stdin")
    inst = _ensure(instance_name)  # as `run` and `note` do: a fresh install just works
    from .ui.oneshot import ask as run_ask
    sys.exit(run_ask(inst, text, as_json=as_json, yes=yes))


@main.command()
@instance_option
@click.option("--purge", is_flag=True, help="Delete the window AND the archive for good.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (with --purge).")
def clear(instance_name: str, purge: bool, yes: bool) -> None:
    """Move every window turn to the archive (nothing is deleted unless --purge)."""
    from .store import TurnStore
    inst = _existing(instance_name)
    with TurnStore(inst.turns_path) as store:
        if not purge:
            from .ops.window import clear as clear_window
            click.echo(clear_window(store))
            return
        total = store.count() + store.archived_count()
        if not yes:
            if not _is_tty():
                raise MnemaraError("--purge deletes the window and the archive for good; "
                                   "add --yes to confirm when not on a terminal")
            click.confirm(f"Delete {total} turns (window and archive) of {instance_name!r} for good?",
                          abort=True)
        n = store.purge()
        click.echo(f"deleted {n} turn{'s' if n != 1 else ''} (window and archive)")


@main.command()
@instance_option
@click.option("--force", is_flag=True, help="Required: confirms deleting the whole instance directory.")
def delete(instance_name: str, force: bool) -> None:
    """Delete an instance directory and everything in it."""
    inst = Instance.named(instance_name)
    if not inst.root.is_dir() and not inst.root.is_symlink():
        inst.require()
    # No config check: `delete --force` is how a user removes a broken instance.
    if inst.root.is_symlink():  # only the link goes: its target is the user's, wherever it is
        if not force:
            raise MnemaraError(f"{inst.root} is a link to {inst.root.readlink()}; this removes the "
                               "link only (the target is left as it is); add --force to confirm")
        target = inst.delete()
        click.echo(f"deleted instance {instance_name!r}: removed the link {inst.root}; "
                   f"its target {target} was left as it is")
        return
    if not force:
        raise MnemaraError(f"this deletes {inst.root} and everything in it (window, archive, memory); "
                           "add --force to confirm")
    inst.delete()
    click.echo(f"deleted instance {instance_name!r} ({inst.root})")


@main.command()
@instance_option
@click.option("--set", "set_path", metavar="PATH", help="Point the instance at this role doc.")
@click.option("--show", "show_doc", is_flag=True, help="Print the role doc path and its text.")
@click.option("--set-from-url", "url", metavar="URL",
              help="Fetch a role doc (https only, at most 1 MB), show it, and on confirmation save "
                   "it as role.md in the instance and point the instance at it.")
@click.option("--yes", "-y", is_flag=True, help="With --set-from-url: save without asking.")
def role(instance_name: str, set_path: str | None, show_doc: bool, url: str | None, yes: bool) -> None:
    """Show or set the role doc (the system prompt, re-read every turn)."""
    inst = _existing(instance_name)
    cfg = inst.load_config()
    if url:
        _role_from_url(inst, cfg, url, yes)
        return
    if set_path:
        from .engine.prompt import role_doc_problem
        path = str(Path(set_path).expanduser().resolve())
        problem = role_doc_problem(path)
        if problem not in (None, "does not exist"):  # a missing doc may be written later
            raise MnemaraError(f"role doc {path} {problem}; not set (the role doc stays "
                               f"{cfg.role_doc_path or 'unset'})")
        inst.save_config(cfg.replace(role_doc_path=path))
        click.echo(f"role doc for {instance_name!r} is now {path}")
        _warn_missing_role(path)
        return
    path = cfg.role_doc_path
    if not path:
        click.echo("no role doc set (the system prompt is empty); set one with --set PATH")
        return
    click.echo(f"role doc: {path}")
    if show_doc:
        from .engine.prompt import role_doc_problem
        problem = role_doc_problem(path)
        if problem:
            raise MnemaraError(f"cannot read role doc {path}: it {problem}; turns run with an "
                               "empty system prompt until it is fixed")
        try:
            from .termsafe import inert  # on a terminal: shown, never obeyed; piped: as written
            doc = Path(path).read_text(encoding="utf-8")
            click.echo(inert(doc) if sys.stdout.isatty() else doc, color=True)  # color: keep bytes
        except (OSError, UnicodeDecodeError) as exc:
            raise MnemaraError(f"cannot read role doc {path}: {exc}") from None
    else:
        _warn_missing_role(path)


def _role_from_url(inst: Instance, cfg: Any, url: str, yes: bool) -> None:
    """`role --set-from-url`: fetch, show (inert: shown, never obeyed), confirm, save atomically."""
    from .ops.role import ROLE_FILE, fetch, save
    from .termsafe import inert
    text = fetch(url)
    target = inst.root / ROLE_FILE
    click.echo(f"===== {url} ({len(text.encode('utf-8')):,} bytes) =====")
    click.echo(inert(text))
    click.echo("===== end =====")
    replaces = " (replacing the one there)" if target.exists() else ""
    if not yes:
        if not _is_tty():
            raise MnemaraError("not saved: add --yes to save a fetched role doc when not on a terminal")
        if not click.confirm(f"Save this as the role doc of {inst.name!r} in {target}{replaces}?",
                             default=False):
            click.echo("not saved")
            return
    save(inst, cfg, target, text)
    click.echo(f"role doc for {inst.name!r} is now {target}{replaces}; the next turn uses it")


@main.command()
@instance_option
@click.option("--category", "-c", default="note", show_default=True, help="Category in the note header.")
@click.argument("text", nargs=-1, required=True)
def note(instance_name: str, category: str, text: tuple[str, ...]) -> None:
    """Append a memory note to memory/YYYY-MM-DD.md (queued for the index). TEXT '-' reads stdin."""
    from .ops.memory import note as write_note
    body = sys.stdin.read() if text == ("-",) else " ".join(text)
    inst = _ensure(instance_name)
    written = write_note(inst, body, category)
    click.echo(f"noted in {written.path} (id {written.id})")


@main.command()
@instance_option
@click.argument("query", nargs=-1, required=True)
@click.option("-n", "limit", type=click.IntRange(min=1), default=20, show_default=True, help="Most hits.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines, one per hit.")
def search(instance_name: str, query: tuple[str, ...], limit: int, as_json: bool) -> None:
    """Full-text search over the window, the archive and memory notes (see also `recall`)."""
    from .ops.memory import search as search_all
    from .views import format_hit, hit_json
    inst = _existing(instance_name)
    text = " ".join(query)
    hits = search_all(inst, text, limit)
    if as_json:
        for hit in hits:
            click.echo(json.dumps(hit_json(hit)))
        return
    if not hits:
        click.echo(f"no matches for {text!r}")
    for hit in hits:
        click.echo(format_hit(hit))


from . import cli_memory  # noqa: E402,F401  (registers the memory commands)
from . import cli_ops  # noqa: E402,F401  (registers doctor, backup, restore)
from . import cli_slots  # noqa: E402,F401  (registers `mnemara slot`)
from . import cli_graph  # noqa: E402,F401  (registers `mnemara graph`)
from . import cli_replay  # noqa: E402,F401  (registers `mnemara replay`)
from . import cli_proposals  # noqa: E402,F401  (registers `mnemara proposals`)
