"""The model's graph tools, each defined once and registered with the tool registry (feature
"graph": offered only while `graph_enabled` is on).

Every handler is `blocking` (a worker thread: it opens the database) and first applies what the
graph outbox holds, so the auto-edges of a note written a moment ago are there. A graph that is
missing its engine, damaged or busy is one error line for the model (`GraphUnavailable`); the next
call tries again. Properties travel as JSON text: the registry's argument check keeps only the
declared keys of an object, and a node's properties are the model's own.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..engine.tools import ToolSpec, _args, register
from ..engine.tool_handlers import ToolContext, ToolError

if TYPE_CHECKING:
    from .store import Graph, Node

MAX_OUTPUT_CHARS = 8_000
PROPS_SHOWN_CHARS = 300
_ID = {"type": "string", "minLength": 1, "maxLength": 500}
_NAME = {"type": "string", "minLength": 1, "maxLength": 100, "pattern": r"^[A-Za-z_][\w-]*$"}
_JSON = {"type": "string", "maxLength": 20_000}


def _graph(ctx: ToolContext) -> "Graph":
    """The instance's graph, with the queued auto-edges applied first (when it can be opened)."""
    from . import open_graph
    from .feed import BACKGROUND_LOCK_WAIT, drain
    from .store import Graph
    graph = open_graph(ctx.instance, ctx.config)
    if graph is None:
        raise ToolError("the graph is turned off in this instance's config (graph_enabled is false)")
    with ctx.memory_service().locked_store() as store:
        # A failure stays queued (the operation below reports a graph it cannot open); a short
        # wait: the memory service's lock is held meanwhile.
        drain(Graph(graph.directory, lock_wait=BACKGROUND_LOCK_WAIT), store.conn,
              redact=bool(ctx.config.redact), rounds=1)
    return graph


def _object(text: str | None, what: str) -> dict[str, Any]:
    if not text or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ToolError(f"{what} must be a JSON object as text, e.g. {{\"name\": \"ada\"}}: {exc}") from None
    if not isinstance(value, dict):
        raise ToolError(f"{what} must be a JSON object (in braces), got {type(value).__name__}")
    return value


def node_line(node: "Node") -> str:
    props = json.dumps(node.properties, ensure_ascii=False, sort_keys=True)
    if len(props) > PROPS_SHOWN_CHARS:
        props = props[: PROPS_SHOWN_CHARS - 1] + "…"
    return f"- {node.id} ({node.label}) {props}"


def _bounded(lines: list[str], more: bool = False) -> str:
    out: list[str] = []
    size = 0
    for n, line in enumerate(lines):
        if size + len(line) > MAX_OUTPUT_CHARS:
            out.append(f"[... {len(lines) - n} more line(s) left out: narrow the request]")
            break
        out.append(line)
        size += len(line) + 1
    else:
        if more:
            out.append("[... more left out: narrow the request]")
    return "\n".join(out)


# --- handlers ------------------------------------------------------------------------------------

def graph_add_node(ctx: ToolContext, args: dict[str, Any]) -> str:
    props = _object(args.get("properties"), "properties")
    node, created = _graph(ctx).add_node(args["label"], props, args.get("id"))
    if not created:
        return f"A node with id {node.id} already exists (label {node.label}); it was left as it is."
    return f"Added node {node.id} ({node.label})."


def graph_add_edge(ctx: ToolContext, args: dict[str, Any]) -> str:
    props = _object(args.get("properties"), "properties")
    edge = _graph(ctx).add_edge(args["from_id"], args["to_id"], args["relationship"], props)
    return f"Added edge {edge.id}: {edge.from_id} -[{edge.relationship}]-> {edge.to_id}."


def graph_query(ctx: ToolContext, args: dict[str, Any]) -> str:
    from .query import render, run
    params = _object(args.get("params"), "params")
    result = run(_graph(ctx), args["cypher"], params,
                 allow_writes=bool(ctx.config.graph_allow_write_queries), limit=args["limit"])
    return render(result)


def graph_neighbors(ctx: ToolContext, args: dict[str, Any]) -> str:
    graph = _graph(ctx)
    node_id, depth = args["node_id"], args["depth"]
    if depth == 1:  # one read: the edges name the neighbours, with the relationship and direction
        edges, more = graph.edges_of(node_id)
        if not edges:
            if graph.get_node(node_id) is None:
                raise ToolError(f"no node with id {node_id!r}; graph_match finds ids")
            return f"{node_id} has no neighbours."
        lines = [f"{len({o.id for _, o, _ in edges})} node(s) one edge from {node_id}:"]
        for edge, other, outgoing in edges:
            arrow = f"-[{edge.relationship}]->" if outgoing else f"<-[{edge.relationship}]-"
            lines.append(f"{arrow} " + node_line(other)[2:])
        return _bounded(lines, more)
    nodes = graph.neighbors(node_id, depth)
    if not nodes:
        if graph.get_node(node_id) is None:
            raise ToolError(f"no node with id {node_id!r}; graph_match finds ids")
        return f"{node_id} has no neighbours within {depth} edges."
    return _bounded([f"{len(nodes)} node(s) within {depth} edges of {node_id}, nearest first:"]
                    + [node_line(n) for n in nodes])


def graph_match(ctx: ToolContext, args: dict[str, Any]) -> str:
    subset = _object(args.get("properties"), "properties")
    nodes, more = _graph(ctx).match(args.get("label"), subset, args["limit"])
    if not nodes:
        return "No node matches."
    return _bounded([f"{len(nodes)} node(s){' (more left out)' if more else ''}:"]
                    + [node_line(n) for n in nodes], more)


def graph_shortest_path(ctx: ToolContext, args: dict[str, Any]) -> str:
    path = _graph(ctx).shortest_path(args["from_id"], args["to_id"])
    if not path:
        return f"No path joins {args['from_id']} and {args['to_id']} (within 12 edges)."
    lines = [f"{len(path) - 1} edge(s) from {args['from_id']} to {args['to_id']}:"]
    for node, edge in path:
        if edge is not None:
            arrow = "->" if edge.from_id != node.id else "<-"
            lines.append(f"  {arrow} [{edge.relationship}]")
        lines.append(node_line(node))
    return _bounded(lines)


# --- the registry entries --------------------------------------------------------------------------

register(
    ToolSpec(
        "graph_add_node",
        "Add a node to your knowledge graph: an entity (person, project, host, file, decision...) "
        "you want to relate to others. Notes you write are linked to the entities they name "
        "automatically; add nodes for what they miss. Returns the node's id.",
        _args(("label",),
              label=dict(_NAME, description="The node's kind, e.g. person, project, host, decision."),
              properties=dict(_JSON, description="Its properties as a JSON object in text, e.g. "
                                                 "{\"name\": \"ada\", \"team\": \"infra\"}."),
              id=dict(_ID, description="An id of your choosing (default: a new one). Entity nodes "
                                       "made from notes use <kind>:<name>, e.g. person:ada.")),
        graph_add_node, feature="graph", blocking=True),
    ToolSpec(
        "graph_add_edge",
        "Relate two nodes of your knowledge graph with a named relationship (WORKS_ON, DEPENDS_ON, "
        "RUNS_ON...). Returns the edge's id.",
        _args(("from_id", "to_id", "relationship"),
              from_id=dict(_ID, description="The node the edge starts at."),
              to_id=dict(_ID, description="The node it points to."),
              relationship=dict(_NAME, description="The relationship, e.g. DEPENDS_ON."),
              properties=dict(_JSON, description="Its properties as a JSON object in text.")),
        graph_add_edge, feature="graph", blocking=True),
    ToolSpec(
        "graph_query",
        "Run a Cypher query on your knowledge graph: tables Node(id, label, properties, created_at) "
        "and Edge(FROM Node TO Node, id, relationship, properties, created_at); properties are "
        "JSON text. Read-only unless the user allowed writes. Pass values as $names in `params`. "
        "Returns the rows as text.",
        _args(("cypher",),
              cypher={"type": "string", "minLength": 1, "maxLength": 10_000,
                      "description": "One Cypher statement, e.g. MATCH (n:Node) WHERE n.label = $l "
                                     "RETURN n.id LIMIT 20."},
              params=dict(_JSON, description="Values for the $names in the query, as a JSON object "
                                             "in text, e.g. {\"l\": \"person\"}."),
              limit={"type": "integer", "minimum": 1, "maximum": 200, "default": 50,
                     "description": "Most rows returned (default 50)."}),
        graph_query, read_only=True, feature="graph", blocking=True),
    ToolSpec(
        "graph_neighbors",
        "List the nodes related to one node of your knowledge graph (memory atoms linked to an "
        "entity, the entities a note names...), with the relationships at depth 1.",
        _args(("node_id",),
              node_id=dict(_ID, description="The node, e.g. host:stg-7 or note:2026-05-01.md:14."),
              depth={"type": "integer", "minimum": 1, "maximum": 3, "default": 1,
                     "description": "How many edges away to look (1-3, default 1)."}),
        graph_neighbors, read_only=True, feature="graph", blocking=True),
    ToolSpec(
        "graph_match",
        "Find nodes of your knowledge graph by label and properties (every given property must be "
        "equal). Returns the matching nodes.",
        _args(label=dict(_NAME, description="Only nodes with this label, e.g. person."),
              properties=dict(_JSON, description="Properties the nodes must have, as a JSON object "
                                                 "in text, e.g. {\"name\": \"ada\"}."),
              limit={"type": "integer", "minimum": 1, "maximum": 200, "default": 50,
                     "description": "Most nodes returned (default 50)."}),
        graph_match, read_only=True, feature="graph", blocking=True),
    ToolSpec(
        "graph_shortest_path",
        "Find how two nodes of your knowledge graph are connected: the shortest chain of edges "
        "between them (either direction). Returns the nodes and relationships along it.",
        _args(("from_id", "to_id"),
              from_id=dict(_ID, description="One node."),
              to_id=dict(_ID, description="The other node.")),
        graph_shortest_path, read_only=True, feature="graph", blocking=True),
)
