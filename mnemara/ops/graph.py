"""Graph operations shared by `mnemara graph`, the doctor, backup and export: bring the graph up
to date with its queue, count it, show a node, write it as DOT or JSON, load an export.

Each returns text or data; mistakes are one-line `GraphError`s, a graph that cannot be opened a
`GraphUnavailable`. Importing this module loads no database engine.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Iterator

from ..graph import Edge, Graph, GraphError, GraphUnavailable, Node, open_graph
from ..graph.feed import FeedReport

if TYPE_CHECKING:
    from ..config import Config
    from ..instance import Instance

EXPORT_FORMAT = "mnemara-graph"
EXPORT_VERSION = 1
SHOW_EDGES = 100


def require_graph(instance: "Instance", config: "Config") -> Graph:
    graph = open_graph(instance, config)
    if graph is None:
        raise GraphError(f"the graph is turned off for instance {instance.name!r} (graph_enabled is "
                         f"false); `mnemara config -i {instance.name} set graph_enabled true` turns it on")
    return graph


def catch_up(instance: "Instance", graph: Graph) -> FeedReport | None:
    """Apply what the graph outbox holds now (failed rows too), so what is shown is current.
    None when there is no turn store yet (nothing was ever written)."""
    from ..graph.feed import drain
    from ..store.turns import TurnStore
    if not instance.turns_path.exists():
        return None
    redact = bool(instance.load_config().redact)
    with TurnStore(instance.turns_path) as store:
        return drain(graph, store.conn, force=True, redact=redact)


def rebuild(instance: "Instance", config: "Config", graph: Graph) -> FeedReport:
    """Link every turn, note, wiki section and manual entry again (written before the graph
    existed, or a graph moved aside): each is queued for the graph and the queue applied.
    Nodes and edges added with the graph tools are kept."""
    from ..graph.feed import drain, queue_all
    from ..memory.sources import iter_source_atoms
    from ..store.db import Transaction
    from ..store.turns import TurnStore
    with TurnStore(instance.turns_path) as store:
        atoms = list(iter_source_atoms(instance, store, config))  # redacted as for the index
        with Transaction(store.conn):
            store.conn.execute("DELETE FROM graph_mentions")  # recounted as the atoms are applied
            queue_all(store.conn, atoms)
        return drain(graph, store.conn, force=True, redact=bool(config.redact))


def stats_text(instance: "Instance", graph: Graph, report: FeedReport | None) -> str:
    stats = graph.stats()
    if not stats.exists:
        lines = [f"no graph yet for instance {instance.name!r}: it is made by the first note "
                 "that names an entity, or by the graph_add_node tool"]
    else:
        lines = [f"graph of {instance.name!r}: {stats.nodes:,} node(s), {stats.edges:,} edge(s), "
                 f"{stats.size_bytes / 1e6:.1f} MB at {graph.path}"]
        if stats.labels:
            lines.append("nodes by label: " + ", ".join(f"{k} {v:,}" for k, v in stats.labels.items()))
        if stats.relationships:
            lines.append("edges by relationship: " + ", ".join(f"{k} {v:,}" for k, v in stats.relationships.items()))
    if report is not None and report.pending:
        lines.append(f"{report.pending} memory write(s) not in the graph yet: {report.error}")
    return "\n".join(lines)


def show_text(graph: Graph, node_id: str) -> str:
    node = graph.get_node(node_id)
    if node is None:
        raise GraphError(f"no node with id {node_id!r}; `mnemara graph export --format json` "
                         "lists them all")
    lines = [f"{node.id} ({node.label}), created {node.created_at}"]
    for key, value in sorted(node.properties.items()):
        lines.append(f"  {key}: {json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value}")
    edges, more = graph.edges_of(node.id, SHOW_EDGES)
    if not edges:
        lines.append("no edges")
    for edge, other, outgoing in edges:
        arrow = f"-[{edge.relationship}]->" if outgoing else f"<-[{edge.relationship}]-"
        extra = f" {json.dumps(edge.properties, ensure_ascii=False, sort_keys=True)}" if edge.properties else ""
        lines.append(f"  {arrow} {other.id} ({other.label}){extra}")
    if more:
        lines.append(f"  ... more than {SHOW_EDGES} edges; `mnemara graph export` has them all")
    return "\n".join(lines)


def export_data(graph: Graph) -> dict[str, Any]:
    nodes, edges = graph.dump()
    return {"format": EXPORT_FORMAT, "version": EXPORT_VERSION,
            "nodes": [n.to_json() for n in nodes], "edges": [e.to_json() for e in edges]}


def export_json(graph: Graph) -> str:
    return json.dumps(export_data(graph), indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def _dot_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def export_dot(graph: Graph) -> str:
    """Graphviz DOT: one line per node (labelled with its id and label) and per edge."""
    nodes, edges = graph.dump()
    lines = ["digraph mnemara {", "  node [shape=box];"]
    for node in nodes:
        lines.append(f"  {_dot_string(node.id)} [label={_dot_string(node.id + chr(10) + node.label)}];")
    for edge in edges:
        lines.append(f"  {_dot_string(edge.from_id)} -> {_dot_string(edge.to_id)} "
                     f"[label={_dot_string(edge.relationship)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def parse_export(data: Any) -> tuple[list[Node], list[Edge]]:
    """Nodes and edges from `export_json` output; a file that is not one is a GraphError."""
    if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
        raise GraphError("not a mnemara graph export (format mnemara-graph)")
    if data.get("version") != EXPORT_VERSION:
        raise GraphError(f"graph export version {data.get('version')!r} is not supported "
                         f"(this mnemara reads version {EXPORT_VERSION})")
    try:
        nodes = [Node(str(n["id"]), str(n["label"]), dict(n.get("properties") or {}),
                      str(n.get("created_at") or "")) for n in data.get("nodes") or []]
        edges = [Edge(str(e["relationship"]), dict(e.get("properties") or {}),
                      str(e.get("created_at") or ""), str(e["id"]), str(e["from"]), str(e["to"]))
                 for e in data.get("edges") or []]
    except (KeyError, TypeError, ValueError) as exc:
        raise GraphError(f"graph export is malformed ({type(exc).__name__}: {exc})") from None
    known = {n.id for n in nodes}
    for edge in edges:
        if edge.from_id not in known or edge.to_id not in known:
            raise GraphError(f"graph export is malformed: edge {edge.id} joins a node it does not hold")
    return nodes, edges


def load_export(graph: Graph, data: Any) -> tuple[int, int]:
    """Add an export's nodes and edges to the graph (what it already holds is kept)."""
    nodes, edges = parse_export(data)
    return graph.load(nodes, edges)


def check(instance: "Instance", config: "Config", queued: int = 0,
          error: str | None = None) -> tuple[str, str, str | None]:
    """For the doctor: (ok | warning | problem, the detail, the fix). Writes nothing: the graph
    is read through a read-only handle. `queued`/`error`: the graph outbox's state."""
    graph = open_graph(instance, config)
    if graph is None:
        return "ok", "off (graph_enabled is false)", None
    try:
        stats = graph.stats()
    except GraphUnavailable as exc:
        return "problem", str(exc), (f"move {graph.directory} aside (the notes' links are rebuilt "
                                     "by `mnemara graph rebuild`), or restore a backup")
    line = "not created yet" if not stats.exists else \
        f"{stats.nodes:,} node(s), {stats.edges:,} edge(s) at {graph.path}"
    if queued and error:  # tried and failed: say why
        return ("warning", f"{line}; {queued} memory write(s) not in it yet: {error}",
                f"`mnemara graph -i {instance.name}` applies them (and says what fails)")
    if queued:  # waiting for the next chat turn or graph command: normal
        return "ok", f"{line}; {queued} memory write(s) queued for it", None
    return "ok", line, None


# --- the graph in `mnemara export` / `mnemara import` ----------------------------------------------
GRAPH_RECORD_KEYS = ("type", "graph")


def export_records(instance: "Instance", config: "Config",
                   redact_text: Any = None) -> Iterator[dict[str, Any]]:
    """The export's graph record ({"type": "graph", "graph": <export data>}): what the model
    added (with the nodes its edges reach), not the links `drain` makes again from the notes the
    export holds; none when there is nothing of that. String property values pass through
    `redact_text` (secrets)."""
    from ..graph.feed import is_derived_edge, is_derived_node
    graph = open_graph(instance, config)
    if graph is None or not graph.exists():
        return
    try:
        nodes, edges = graph.dump()
    except GraphUnavailable as exc:
        raise GraphUnavailable(f"{exc}; set graph_enabled to false to export without the graph") from None
    edges = [e for e in edges if not is_derived_edge(e)]
    reached = {e.from_id for e in edges} | {e.to_id for e in edges}
    nodes = [n for n in nodes if n.id in reached or not is_derived_node(n)]
    if not nodes:
        return
    data = {"format": EXPORT_FORMAT, "version": EXPORT_VERSION,
            "nodes": [n.to_json() for n in nodes], "edges": [e.to_json() for e in edges]}
    if redact_text is not None:
        for item in data["nodes"] + data["edges"]:
            item["properties"] = {k: redact_text(v) if isinstance(v, str) else v
                                  for k, v in item["properties"].items()}
    yield {"type": "graph", "graph": data}


def check_record(record: dict[str, Any]) -> None:
    """An export's graph record, checked; a ValueError says what is wrong."""
    if set(record) != set(GRAPH_RECORD_KEYS):
        raise ValueError(f"a graph record has the keys {', '.join(GRAPH_RECORD_KEYS)}")
    try:
        parse_export(record["graph"])
    except GraphError as exc:
        raise ValueError(str(exc)) from None


def import_record(instance: "Instance", config: "Config", data: dict[str, Any]) -> str | None:
    """Load an export's graph into the instance's graph; a sentence when it could not be (the
    rest of the import stands), else None."""
    graph = open_graph(instance, config)
    if graph is None:
        return "the export's graph was not imported: graph_enabled is false"
    try:
        load_export(graph, data)
    except (GraphUnavailable, GraphError) as exc:
        return f"the export's graph was not imported: {exc}"
    return None


def markdown_record(record: dict[str, Any]) -> str:
    data = record["graph"]
    lines = [f"\n{len(data['nodes'])} node(s), {len(data['edges'])} edge(s):\n"]
    lines += [f"- `{n['id']}` ({n['label']}) {json.dumps(n['properties'], ensure_ascii=False, sort_keys=True)}"
              for n in data["nodes"]]
    lines += [f"- `{e['from']}` -[{e['relationship']}]-> `{e['to']}`" for e in data["edges"]]
    return "\n".join(lines) + "\n"


__all__ = ["catch_up", "rebuild", "check", "check_record", "export_data", "export_dot", "export_json",
           "export_records", "import_record", "load_export", "markdown_record", "parse_export",
           "require_graph", "show_text", "stats_text"]
