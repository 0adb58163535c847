"""`mnemara proposals`: review what replay and the model proposed (list, show, accept, reject).

Registered on the `main` group by importing this module (the last lines of `cli.py`). Cheap to
import: click and the standard library; the store is read inside each command. Everything a
proposal holds came from memory or the model, so it is printed through `inert` (escapes shown,
never obeyed), and `--json` through `inert_json`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .cli import _existing, _is_tty, instance_option, main
from .cli_memory import _sub_instance_option
from .errors import MnemaraError
from .termsafe import inert, inert_json

if TYPE_CHECKING:
    from .instance import Instance
    from .replay.proposals import Proposal


@main.group()
@instance_option
@click.pass_context
def proposals(ctx: click.Context, instance_name: str) -> None:
    """Review proposals: wiki pages and role amendments drafted by `mnemara replay` or the model.
    Nothing changes in the wiki or the role doc until you accept one."""
    ctx.obj = instance_name


def _instance(group_instance: str, instance_name: str | None) -> "Instance":
    return _existing(group_instance if instance_name is None else instance_name)


@proposals.command("list")
@click.option("--all", "show_all", is_flag=True, help="Decided proposals too, not only pending ones.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per proposal per line.")
@_sub_instance_option
@click.pass_obj
def proposals_list(group_instance: str, instance_name: str | None, show_all: bool,
                   as_json: bool) -> None:
    """List pending proposals, newest first: id, kind, target, title, sources, origin."""
    from .ops import proposals as ops
    inst = _instance(group_instance, instance_name)
    found = ops.listing(inst, None if show_all else "pending")
    if as_json:
        for p in found:
            click.echo(inert_json(json.dumps(p.to_json(), ensure_ascii=False)))
    elif not found:
        click.echo("no proposals" if show_all else
                   "no pending proposals (`mnemara replay --apply` drafts them)")
    else:
        for p in found:
            click.echo(inert(ops.summary_line(p)))
    _warn_damaged(inst)


@proposals.command("show")
@click.argument("proposal_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="The proposal as one JSON object.")
@_sub_instance_option
@click.pass_obj
def proposals_show(group_instance: str, instance_name: str | None, proposal_id: str,
                   as_json: bool) -> None:
    """Show a proposal beside the atoms it came from (its provenance). ID may be a prefix."""
    from .ops import proposals as ops
    p = ops.get(_instance(group_instance, instance_name), proposal_id)
    if as_json:
        click.echo(inert_json(json.dumps(p.to_json(), ensure_ascii=False, indent=2)))
    else:
        click.echo(inert(ops.describe(p)))


@proposals.command("accept")
@click.argument("proposal_id", metavar="ID")
@click.option("--yes", "-y", is_flag=True, help="Append a role amendment without asking.")
@_sub_instance_option
@click.pass_obj
def proposals_accept(group_instance: str, instance_name: str | None, proposal_id: str,
                     yes: bool) -> None:
    """Accept a proposal: write (and index) the wiki page, or append the amendment to the role
    doc after you confirm it (a dated backup of the previous text is kept beside it)."""
    from .ops import proposals as ops
    inst = _instance(group_instance, instance_name)

    def confirm(p: "Proposal", role_doc: Path) -> bool:
        click.echo(f"===== amendment {p.id} for the role doc {role_doc} =====")
        click.echo(inert(p.body.rstrip("\n")))
        click.echo("===== end =====")
        if yes:
            return True
        if not _is_tty():
            raise MnemaraError(f"not applied: add --yes to accept role amendment {p.id} when "
                               "not on a terminal")
        return click.confirm("Append this to the role doc?", default=False)

    done = ops.accept(inst, proposal_id, confirm=confirm)
    click.echo("not applied; the proposal is still pending" if done is None else inert(done.message))


@proposals.command("reject")
@click.argument("proposal_id", metavar="ID")
@_sub_instance_option
@click.pass_obj
def proposals_reject(group_instance: str, instance_name: str | None, proposal_id: str) -> None:
    """Reject a proposal: nothing is written, and replay never proposes it again."""
    from .ops import proposals as ops
    p = ops.reject(_instance(group_instance, instance_name), proposal_id)
    click.echo(f"rejected {p.id}; replay will not propose it again")


def _warn_damaged(inst: "Instance") -> None:
    """A file in proposals/ that is not a proposal is skipped, and said so (doctor names it)."""
    from .ops import proposals as ops
    for path, reason in ops.damaged(inst):
        click.echo(inert(f"mnemara: warning: skipped {path.name}: not a readable proposal "
                         f"({reason}); `mnemara doctor` reports it"), err=True)
