"""The knowledge graph of one instance: nodes and edges in an embedded ladybug database.

Two tables, as the base spec has them: `Node(id, label, properties, created_at)` and
`Edge(FROM Node TO Node, id, relationship, properties, created_at)`, properties as JSON text.

Two mnemara processes share one graph (a chat and a `replay`, two chats): the engine lets one
process hold a read-write handle at a time, so no handle is kept. Every operation takes the
graph's lock file (shared to read, exclusive to write; waiting at most `lock_wait` seconds), opens
the database, does its work and closes it again. Reads use a read-only handle, which writes
nothing to the files, and is never held across another process's checkpoint (upstream issue 666).
A failure to open (engine missing, file damaged, lock held) is a `GraphUnavailable` with one line
saying what to do; nothing is cached, so the next operation tries again.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import secrets
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from ..errors import MnemaraError
from ..fsutil import ensure_private_dir
from .entities import Entity, normalise

DB_NAME = "graph.lbug"
LOCK_NAME = "graph.lock"
LOCK_WAIT_SECONDS = 10.0
MAX_DEPTH = 3          # graph_neighbors: the widest neighbourhood one call walks
MAX_PATH_HOPS = 12     # graph_shortest_path: the longest path looked for
MAX_NODES = 200        # most nodes one call returns
LOAD_CHUNK = 2_000     # nodes created by one statement when an export is loaded

SCHEMA = (
    "CREATE NODE TABLE IF NOT EXISTS Node(id STRING PRIMARY KEY, label STRING, "
    "properties STRING, created_at STRING)",
    "CREATE REL TABLE IF NOT EXISTS Edge(FROM Node TO Node, id STRING, relationship STRING, "
    "properties STRING, created_at STRING)",
)


class GraphUnavailable(MnemaraError):
    """The graph cannot be used right now (off, engine missing, damaged, locked): one line."""


class GraphError(MnemaraError):
    """A request the caller can fix (an unknown node id, a bad query): one line."""


@dataclass(frozen=True)
class Node:
    id: str
    label: str
    properties: dict[str, Any]
    created_at: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "label": self.label, "properties": self.properties,
                "created_at": self.created_at}


@dataclass(frozen=True)
class Edge:
    relationship: str
    properties: dict[str, Any]
    created_at: str
    id: str = ""
    from_id: str = ""
    to_id: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "from": self.from_id, "to": self.to_id,
                "relationship": self.relationship, "properties": self.properties,
                "created_at": self.created_at}


@dataclass(frozen=True)
class GraphStats:
    exists: bool
    nodes: int
    edges: int
    labels: dict[str, int]
    relationships: dict[str, int]
    size_bytes: int


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def dumps(properties: dict[str, Any]) -> str:
    """Properties as stored: sorted keys, compact, so a key-value pair is one fixed substring."""
    return json.dumps(properties, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _loads(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except (TypeError, ValueError):
        return {"_raw": str(text)}
    return value if isinstance(value, dict) else {"_value": value}


def node_from_row(value: Any) -> Node:
    return Node(str(value["id"]), str(value.get("label") or ""), _loads(value.get("properties")),
                str(value.get("created_at") or ""))


def edge_from_row(value: Any, from_id: str = "", to_id: str = "") -> Edge:
    return Edge(str(value.get("relationship") or ""), _loads(value.get("properties")),
                str(value.get("created_at") or ""), str(value.get("id") or ""), from_id, to_id)


def load_engine() -> Any:
    """The engine module (graph/engine.py), imported on first use; GraphUnavailable without it."""
    try:
        from . import engine
    except ImportError as exc:
        raise GraphUnavailable(f"graph backend unavailable: the graph engine is not installed "
                               f"({exc}); `pip install ladybug`") from None
    return engine


class Graph:
    """One instance's graph at `directory` (graph/). Cheap to make: nothing is opened here."""

    def __init__(self, directory: Path, *, lock_wait: float | None = None) -> None:
        self.directory = Path(directory)
        self.path = self.directory / DB_NAME
        self.lock_path = self.directory / LOCK_NAME
        self.lock_wait = LOCK_WAIT_SECONDS if lock_wait is None else lock_wait

    def exists(self) -> bool:
        return self.path.exists()

    # --- sessions ----------------------------------------------------------------------------
    @contextmanager
    def session(self, *, write: bool) -> Iterator[Any]:
        """A connection for one operation, or None to read a graph that does not exist yet
        (reads never create anything). Held under the lock, closed on leaving."""
        if not write and not self.path.exists():
            yield None
            return
        if write:
            ensure_private_dir(self.directory)
        with self._file_lock(exclusive=write):
            engine = load_engine()
            fresh = not self.path.exists()
            database = conn = None
            try:
                try:
                    database = engine.open_database(self.path, read_only=not write)
                    conn = engine.connect(database)
                except RuntimeError as exc:
                    raise self._unavailable(exc) from None
                try:
                    if fresh:
                        for statement in SCHEMA:
                            conn.execute(statement)
                        self._private_files()
                    yield conn
                except RuntimeError as exc:  # the engine failed mid-operation (I/O, a bad page)
                    raise GraphUnavailable(f"graph backend unavailable: {self.path}: "
                                           f"{' '.join(str(exc).split())}") from None
            finally:
                engine.close(conn, database)

    def _private_files(self) -> None:
        for path in self.directory.iterdir():
            if path.name.startswith(DB_NAME):
                try:
                    os.chmod(path, 0o600)
                except OSError:
                    pass

    def _unavailable(self, exc: Exception) -> GraphUnavailable:
        text = " ".join(str(exc).split())  # the engine's messages run over several lines
        low = text.lower()
        if "lock" in low:
            return GraphUnavailable(
                f"graph backend unavailable: {self.path} is locked by another program ({text}); "
                "try again when it has finished")
        if "not a valid" in low or "corrupt" in low or "checksum" in low or "wal" in low:
            return GraphUnavailable(
                f"graph backend unavailable: {self.path} is damaged ({text}); move it aside or "
                "`mnemara restore` a backup (memory, wiki and recall keep working)")
        return GraphUnavailable(f"graph backend unavailable: cannot open {self.path} ({text})")

    @contextmanager
    def _file_lock(self, *, exclusive: bool) -> Iterator[None]:
        """Our own lock beside the database, taken with a bounded wait: the engine's lock fails
        at once when another process holds it, this one queues politely for `lock_wait` s."""
        if not exclusive and not self.lock_path.exists():
            yield  # no writer of ours has ever run here: nothing to wait for, nothing to create
            return
        flags = os.O_RDWR | os.O_CREAT if exclusive else os.O_RDONLY
        try:
            fd = os.open(self.lock_path, flags | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise GraphUnavailable(f"graph backend unavailable: cannot open {self.lock_path} "
                                   f"({exc.strerror or exc})") from None
        try:
            mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
            deadline = time.monotonic() + self.lock_wait
            delay = 0.005
            while True:
                try:
                    fcntl.flock(fd, mode)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() >= deadline:
                        raise GraphUnavailable(
                            f"graph backend unavailable: the graph is busy in another mnemara "
                            f"process (waited {self.lock_wait:g} s for {self.lock_path}); "
                            "try again in a moment") from None
                    time.sleep(delay)
                    delay = min(delay * 2, 0.1)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Keep every other mnemara process out of the graph (for a backup copying its files:
        no handle is open while it is held, so the files on disk are the whole graph)."""
        if not self.directory.is_dir():
            yield
            return
        with self._file_lock(exclusive=True):
            yield

    # --- nodes and edges ---------------------------------------------------------------------
    def add_node(self, label: str, properties: dict[str, Any] | None = None,
                 node_id: str | None = None) -> tuple[Node, bool]:
        """Add a node; (the node, whether it was created). An existing id is returned as it is."""
        node_id = node_id or f"n:{secrets.token_hex(6)}"
        with self.session(write=True) as conn:
            found = self._node(conn, node_id)
            if found is not None:
                return found, False
            node = Node(node_id, label, dict(properties or {}), utc_now_iso())
            conn.execute("CREATE (:Node {id: $id, label: $label, properties: $props, created_at: $at})",
                         {"id": node.id, "label": label, "props": dumps(node.properties),
                          "at": node.created_at})
            return node, True

    def add_edge(self, from_id: str, to_id: str, relationship: str,
                 properties: dict[str, Any] | None = None) -> Edge:
        edge = Edge(relationship, dict(properties or {}), utc_now_iso(), f"e:{secrets.token_hex(6)}",
                    from_id, to_id)
        rows = load_engine().rows
        with self.session(write=True) as conn:
            _, made = rows(conn, "MATCH (a:Node {id: $a}), (b:Node {id: $b}) CREATE (a)-[:Edge {id: $id, "
                           "relationship: $rel, properties: $props, created_at: $at}]->(b) RETURN count(*)",
                           {"a": from_id, "b": to_id, "id": edge.id, "rel": relationship,
                            "props": dumps(edge.properties), "at": edge.created_at})
            if not made or not made[0][0]:  # one of the two does not exist: say which
                missing = from_id if self._node(conn, from_id) is None else to_id
                raise GraphError(f"no node with id {missing!r}; graph_match or graph_query find ids")
        return edge

    def get_node(self, node_id: str) -> Node | None:
        with self.session(write=False) as conn:
            return None if conn is None else self._node(conn, node_id)

    @staticmethod
    def _node(conn: Any, node_id: str) -> Node | None:
        rows = load_engine().rows
        _, found = rows(conn, "MATCH (n:Node {id: $id}) RETURN n", {"id": node_id})
        return node_from_row(found[0][0]) if found else None

    def edges_of(self, node_id: str, limit: int = MAX_NODES) -> tuple[list[tuple[Edge, Node, bool]], bool]:
        """The edges touching a node: (edge, the node at its other end, outgoing?) and whether
        more were left out."""
        iter_rows = load_engine().iter_rows
        with self.session(write=False) as conn:
            if conn is None:
                return [], False
            _, found, more = iter_rows(
                conn, "MATCH (a:Node {id: $id})-[e:Edge]->(b:Node) RETURN e, b, true AS outgoing "
                "UNION ALL MATCH (a:Node {id: $id})<-[e:Edge]-(b:Node) RETURN e, b, false AS outgoing",
                {"id": node_id}, limit)
        found.sort(key=lambda r: (str(r[0].get("created_at")), str(r[0].get("id"))))
        out = []
        for edge, other, outgoing in found:
            src, dst = (node_id, str(other["id"])) if outgoing else (str(other["id"]), node_id)
            out.append((edge_from_row(edge, src, dst), node_from_row(other), bool(outgoing)))
        return out, more

    def neighbors(self, node_id: str, depth: int = 1, limit: int = MAX_NODES) -> list[Node]:
        """The nodes within `depth` edges of `node_id` (either direction), nearest first; []
        for a node that is not there."""
        iter_rows = load_engine().iter_rows
        depth = max(1, min(int(depth), MAX_DEPTH))
        with self.session(write=False) as conn:
            if conn is None:
                return []
            _, found, _ = iter_rows(
                conn, f"MATCH p = (a:Node {{id: $id}})-[:Edge* SHORTEST 1..{depth}]-(b:Node) "
                "WHERE b.id <> $id RETURN b, length(p) AS hops ORDER BY hops, b.id",
                {"id": node_id}, limit)
        return [node_from_row(b) for b, _hops in found]

    def match(self, label: str | None = None, properties_subset: dict[str, Any] | None = None,
              limit: int = MAX_NODES) -> tuple[list[Node], bool]:
        """Nodes with this label (any, when None) whose properties include `properties_subset`."""
        iter_rows = load_engine().iter_rows
        subset = dict(properties_subset or {})
        where, params = [], {}
        if label:
            where.append("n.label = $label")
            params["label"] = label
        # Each key-value pair is a fixed substring of the stored JSON (sorted, compact); the
        # exact comparison below removes the rare false match (the pair inside a nested value).
        for i, (key, value) in enumerate(sorted(subset.items())):
            where.append(f"contains(n.properties, $p{i})")
            params[f"p{i}"] = dumps({key: value})[1:-1]
        query = "MATCH (n:Node)" + (" WHERE " + " AND ".join(where) if where else "") + \
            " RETURN n ORDER BY n.created_at, n.id"
        out: list[Node] = []
        with self.session(write=False) as conn:
            if conn is None:
                return [], False
            columns, found, more = iter_rows(conn, query, params, None if subset else limit)
        for (value,) in found:
            node = node_from_row(value)
            if all(k in node.properties and node.properties[k] == v for k, v in subset.items()):
                if len(out) >= limit:
                    return out, True
                out.append(node)
        return out, more

    def shortest_path(self, from_id: str, to_id: str) -> list[tuple[Node, Edge | None]]:
        """The nodes of a shortest path (ignoring direction), each with the edge that reached it
        (None for the first); [] when no path of at most MAX_PATH_HOPS edges joins them."""
        rows = load_engine().rows
        with self.session(write=False) as conn:
            if conn is None:
                raise GraphError(f"no node with id {from_id!r}: the graph is empty")
            for node_id in (from_id, to_id):
                if self._node(conn, node_id) is None:
                    raise GraphError(f"no node with id {node_id!r}")
            if from_id == to_id:
                return [(self._node(conn, from_id), None)]  # type: ignore[list-item]
            _, found = rows(
                conn, f"MATCH p = (a:Node {{id: $a}})-[:Edge* SHORTEST 1..{MAX_PATH_HOPS}]-(b:Node {{id: $b}}) "
                "RETURN nodes(p), rels(p) LIMIT 1", {"a": from_id, "b": to_id})
        if not found:
            return []
        nodes = [node_from_row(n) for n in found[0][0]]
        rels = found[0][1]
        out: list[tuple[Node, Edge | None]] = [(nodes[0], None)]
        for i, rel in enumerate(rels):
            out.append((nodes[i + 1], edge_from_row(rel, nodes[i].id, nodes[i + 1].id)))
        return out

    def atoms_for_entity(self, kind: str, name: str) -> list[str]:
        """Ids of the memory atoms linked to the entity (`atoms_for_entity("host", "stg-7")`)."""
        return self.atoms_for_entities([Entity(kind, normalise(kind, name))]).get(
            Entity(kind, normalise(kind, name)), [])

    def atoms_for_entities(self, entities: list[Entity]) -> dict[Entity, list[str]]:
        """The atoms linked to each of these entities, in one read."""
        rows = load_engine().rows
        if not entities:
            return {}
        by_id = {e.node_id: e for e in entities}
        with self.session(write=False) as conn:
            if conn is None:
                return {}
            _, found = rows(conn, "MATCH (a:Node)-[e:Edge]->(x:Node) WHERE x.id IN $ids AND "
                            "a.label = 'atom' RETURN x.id, a.id ORDER BY a.created_at, a.id",
                            {"ids": list(by_id)})
        out: dict[Entity, list[str]] = {}
        for entity_id, atom_id in found:
            ids = out.setdefault(by_id[entity_id], [])
            if atom_id not in ids:
                ids.append(atom_id)
        return out

    def stats(self) -> GraphStats:
        rows = load_engine().rows
        size = sum(p.stat().st_size for p in self.directory.glob(DB_NAME + "*")) if self.directory.is_dir() else 0
        with self.session(write=False) as conn:
            if conn is None:
                return GraphStats(False, 0, 0, {}, {}, 0)
            _, labels = rows(conn, "MATCH (n:Node) RETURN n.label, count(*) ORDER BY count(*) DESC, n.label")
            _, rels = rows(conn, "MATCH ()-[e:Edge]->() RETURN e.relationship, count(*) "
                           "ORDER BY count(*) DESC, e.relationship")
        return GraphStats(True, sum(c for _, c in labels), sum(c for _, c in rels),
                          {str(k): int(c) for k, c in labels}, {str(k): int(c) for k, c in rels}, size)

    def dump(self) -> tuple[list[Node], list[Edge]]:
        """Every node and edge (for export, backup and the doctor's check)."""
        rows = load_engine().rows
        with self.session(write=False) as conn:
            if conn is None:
                return [], []
            _, nodes = rows(conn, "MATCH (n:Node) RETURN n ORDER BY n.created_at, n.id")
            _, edges = rows(conn, "MATCH (a:Node)-[e:Edge]->(b:Node) RETURN a.id, e, b.id "
                            "ORDER BY e.created_at, e.id")
        return ([node_from_row(n) for (n,) in nodes],
                [edge_from_row(e, str(a), str(b)) for a, e, b in edges])

    def load(self, nodes: list[Node], edges: list[Edge]) -> tuple[int, int]:
        """Add nodes and edges (from an export): existing node ids and edge ids are kept as they
        are, so loading the same export twice adds nothing. (nodes, edges) added."""
        added_nodes = added_edges = 0
        with self.session(write=True) as conn:
            rows = load_engine().rows
            conn.execute("BEGIN TRANSACTION")
            try:
                for start in range(0, len(nodes), LOAD_CHUNK):  # one statement per chunk
                    chunk = {n.id: n for n in nodes[start:start + LOAD_CHUNK]}
                    _, have = rows(conn, "MATCH (n:Node) WHERE n.id IN $ids RETURN n.id",
                                   {"ids": list(chunk)})
                    for (node_id,) in have:
                        chunk.pop(node_id, None)
                    if chunk:
                        conn.execute("UNWIND $rows AS r CREATE (:Node {id: r.id, label: r.label, "
                                     "properties: r.props, created_at: r.at})",
                                     {"rows": [{"id": n.id, "label": n.label, "props": dumps(n.properties),
                                                "at": n.created_at} for n in chunk.values()]})
                    added_nodes += len(chunk)
                for edge in edges:
                    _, got = rows(conn, "MATCH (a:Node {id: $a})-[e:Edge {id: $id}]->(b:Node {id: $b}) "
                                  "RETURN count(e)", {"a": edge.from_id, "b": edge.to_id, "id": edge.id})
                    if got and got[0][0]:
                        continue
                    conn.execute("MATCH (a:Node {id: $a}), (b:Node {id: $b}) CREATE (a)-[:Edge {id: $id, "
                                 "relationship: $rel, properties: $props, created_at: $at}]->(b)",
                                 {"a": edge.from_id, "b": edge.to_id, "id": edge.id,
                                  "rel": edge.relationship, "props": dumps(edge.properties),
                                  "at": edge.created_at})
                    added_edges += 1
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return added_nodes, added_edges
