"""`mnemara slot`: list, show, set, edit, clear and undo the instance's slots (memory/slots.py).

Registered on the `main` group by importing this module (the last lines of `cli.py`). Cheap to
import: click and the standard library; the store opens inside each command.
"""

from __future__ import annotations

import json
import sys

import click

from .cli import _existing, instance_option, main
from .cli_memory import _edit_text, _sub_instance_option
from .termsafe import inert

CLI_UNDO = "`mnemara slot undo {name}`"


@main.group()
@instance_option
@click.pass_context
def slot(ctx: click.Context, instance_name: str) -> None:
    """Slots: small named notes the model always sees (it edits them with slot_set, slot_append
    and slot_clear). Every change is kept; `undo` takes the last one back."""
    ctx.obj = instance_name


def _echo(text: str) -> None:
    """Slot text comes from the model: inert on a terminal, unchanged into a pipe."""
    click.echo(inert(text) if sys.stdout.isatty() else text, color=True)


@slot.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object with every slot.")
@_sub_instance_option
@click.pass_obj
def slot_list(group_instance: str, instance_name: str | None, as_json: bool) -> None:
    """List the slots: name, size, last change and who made it, the start of the text."""
    from .ops import slots as ops
    inst = _existing(group_instance if instance_name is None else instance_name)
    config = inst.load_config()
    if not inst.turns_path.exists():
        click.echo("{}" if as_json else "no slots yet")
        return
    with ops.open_book(inst, config, readonly=True) as book:
        if as_json:
            click.echo(json.dumps({n: {"text": v.text, "updated_at": v.created_at, "by": v.author,
                                       "version": v.id} for n, v in book.current().items()},
                                  indent=2, ensure_ascii=False))
            return
        _echo(ops.listing(book))


@slot.command("show")
@click.argument("name")
@click.option("--history", is_flag=True, help="Every version, oldest first, instead of the text.")
@_sub_instance_option
@click.pass_obj
def slot_show(group_instance: str, instance_name: str | None, name: str, history: bool) -> None:
    """Print a slot's text (or its versions)."""
    from .memory.slots import SlotError, validate_name
    from .ops import slots as ops
    inst = _existing(group_instance if instance_name is None else instance_name)
    name = validate_name(name)
    if not inst.turns_path.exists():
        raise SlotError(f"slot {name!r} has never been set")
    with ops.open_book(inst, inst.load_config(), readonly=True) as book:
        if history:
            _echo(ops.history(book, name))
            return
        text = book.get(name)
        if not text:
            raise SlotError(f"slot {name!r} is empty; `mnemara slot list` lists the slots")
        _echo(text)


@slot.command("set")
@click.argument("name")
@click.argument("text", nargs=-1, required=True)
@_sub_instance_option
@click.pass_obj
def slot_set(group_instance: str, instance_name: str | None, name: str, text: tuple[str, ...]) -> None:
    """Set slot NAME to TEXT ('-' reads it from stdin); the model sees it with the next message."""
    from .ops import slots as ops
    inst = _existing(group_instance if instance_name is None else instance_name)
    value = sys.stdin.read() if text == ("-",) else " ".join(text)
    with ops.open_book(inst, inst.load_config()) as book:
        click.echo(ops.save(book, name, value, CLI_UNDO))


@slot.command("edit")
@click.argument("name")
@_sub_instance_option
@click.pass_obj
def slot_edit(group_instance: str, instance_name: str | None, name: str) -> None:
    """Edit slot NAME in $VISUAL or $EDITOR (default vi); saved as a new version if it changed
    (an emptied slot is cleared)."""
    from .memory.slots import validate_name
    from .ops import slots as ops
    inst = _existing(group_instance if instance_name is None else instance_name)
    name = validate_name(name)
    with ops.open_book(inst, inst.load_config()) as book:
        original = book.get(name)
    edited = _edit_text(inst, original)
    with ops.open_book(inst, inst.load_config()) as book:
        if book.get(name) != original:  # changed meanwhile (the model, another edit): never lose it
            raise _changed_meanwhile(name)
        click.echo(ops.save(book, name, edited, CLI_UNDO))


def _changed_meanwhile(name: str) -> Exception:
    from .memory.slots import SlotError
    return SlotError(f"slot {name!r} changed while you were editing it; nothing was saved "
                     "(`mnemara slot show` shows the new text)")


@slot.command("clear")
@click.argument("name")
@_sub_instance_option
@click.pass_obj
def slot_clear(group_instance: str, instance_name: str | None, name: str) -> None:
    """Empty slot NAME (kept in its history; `undo` brings it back)."""
    from .ops import slots as ops
    inst = _existing(group_instance if instance_name is None else instance_name)
    with ops.open_book(inst, inst.load_config()) as book:
        click.echo(ops.clear(book, name, CLI_UNDO))


@slot.command("undo")
@click.argument("name")
@_sub_instance_option
@click.pass_obj
def slot_undo(group_instance: str, instance_name: str | None, name: str) -> None:
    """Take back the last change to slot NAME (again: the one before it, and so on)."""
    from .ops import slots as ops
    inst = _existing(group_instance if instance_name is None else instance_name)
    with ops.open_book(inst, inst.load_config()) as book:
        _echo(ops.undo(book, name))
