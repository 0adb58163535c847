"""`mnemara graph`: the knowledge graph's size, one node and its edges, an export as DOT or JSON.

Registered on the `main` group by importing this module (the last lines of `cli.py`). Cheap to
import: click and the standard library; the graph engine loads inside each command. Every command
first applies the memory writes still queued for the graph, so what it shows is current.
"""

from __future__ import annotations

import sys

import click

from .cli import _existing, instance_option, main
from .cli_memory import _sub_instance_option
from .termsafe import inert


def _echo(text: str) -> None:
    """Node names and properties come from notes and the model: inert on a terminal."""
    click.echo(inert(text) if sys.stdout.isatty() else text, nl=not text.endswith("\n"))


def _open(group_instance: str, instance_name: str | None):  # type: ignore[no-untyped-def]
    from .ops import graph as ops
    inst = _existing(group_instance if instance_name is None else instance_name)
    graph = ops.require_graph(inst, inst.load_config())
    return inst, graph, ops.catch_up(inst, graph)


@main.group(invoke_without_command=True)
@instance_option
@click.pass_context
def graph(ctx: click.Context, instance_name: str) -> None:
    """The knowledge graph: entities your notes name and how they relate (the model adds to it
    with the graph_* tools). Without a subcommand: `stats`."""
    ctx.obj = instance_name
    if ctx.invoked_subcommand is None:
        ctx.invoke(graph_stats, instance_name=None)


@graph.command("stats")
@_sub_instance_option
@click.pass_obj
def graph_stats(group_instance: str, instance_name: str | None) -> None:
    """Count the nodes and edges, by label and relationship."""
    from .ops import graph as ops
    inst, g, report = _open(group_instance, instance_name)
    _echo(ops.stats_text(inst, g, report))


@graph.command("show")
@click.argument("node_id", metavar="NODE")
@_sub_instance_option
@click.pass_obj
def graph_show(group_instance: str, instance_name: str | None, node_id: str) -> None:
    """Print one node (e.g. host:stg-7, person:ada) with its properties and edges."""
    from .ops import graph as ops
    _, g, _ = _open(group_instance, instance_name)
    _echo(ops.show_text(g, node_id))


@graph.command("export")
@click.option("--format", "fmt", type=click.Choice(["dot", "json"]), default="json", show_default=True,
              help="dot: Graphviz (render with `dot -Tsvg`); json: every node and edge.")
@_sub_instance_option
@click.pass_obj
def graph_export(group_instance: str, instance_name: str | None, fmt: str) -> None:
    """Write the whole graph to stdout."""
    from .ops import graph as ops
    _, g, _ = _open(group_instance, instance_name)
    _echo(ops.export_dot(g) if fmt == "dot" else ops.export_json(g))


@graph.command("rebuild")
@_sub_instance_option
@click.pass_obj
def graph_rebuild(group_instance: str, instance_name: str | None) -> None:
    """Link every note, wiki page and index entry to the entities it names again (after an
    upgrade, or with the graph moved aside). Nodes and edges the model added are kept."""
    from .ops import graph as ops
    inst, g, _ = _open(group_instance, instance_name)
    report = ops.rebuild(inst, inst.load_config(), g)
    line = f"linked {report.applied:,} memory atom(s) into the graph"
    if report.error:
        line += f"; {report.pending} left queued: {report.error}"
    _echo(line)


@graph.command("import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@_sub_instance_option
@click.pass_obj
def graph_import(group_instance: str, instance_name: str | None, file: str) -> None:
    """Add the nodes and edges of a `mnemara graph export --format json` file (FILE `-`: stdin).
    What the graph holds already is kept; importing the same file twice adds nothing."""
    import json

    from .graph import GraphError
    from .ops import graph as ops
    _, g, _ = _open(group_instance, instance_name)
    try:
        text = sys.stdin.read() if file == "-" else open(file, encoding="utf-8").read()
        data = json.loads(text)
    except OSError as exc:
        raise GraphError(f"cannot read {file}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise GraphError(f"{file} is not JSON: {exc}") from None
    nodes, edges = ops.load_export(g, data)
    _echo(f"added {nodes:,} node(s) and {edges:,} edge(s)")
