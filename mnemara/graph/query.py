"""`graph_query`: Cypher from the model, run so that it cannot reach beyond the graph.

Read-only is enforced by the engine, not by reading the query: unless `graph_allow_write_queries`
is on, the statement runs on a read-only database handle, which refuses every write whatever its
spelling (CREATE, MERGE, SET, DELETE, a procedure that writes...).

A read-only handle still reads and writes *files* (`LOAD FROM '/etc/passwd'`, `COPY ... TO`,
`EXPORT DATABASE`), installs extensions from the network and can scan Python objects by name; so,
write queries allowed or not, the statement is checked first, with its string literals, quoted
names and comments blanked out: one statement, none of the clauses that reach outside the graph,
no schema change, and CALL only for the catalogue functions below. Values belong in `params`
(bound by the engine, never pasted into the text).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .store import Graph, GraphError, GraphUnavailable, load_engine

MAX_ROWS = 200
DEFAULT_ROWS = 50
MAX_CHARS = 8_000
MAX_CELL_CHARS = 400

# Clauses that touch files, the network, other databases or transactions: never allowed.
_OUTSIDE = re.compile(
    r"\b(LOAD|COPY|EXPORT|IMPORT|INSTALL|UNINSTALL|ATTACH|USE|CHECKPOINT|BEGIN|COMMIT|ROLLBACK|"
    r"TRANSACTION|EXTENSION)\b", re.I)
_DETACH_DB = re.compile(r"\bDETACH\b(?!\s+DELETE\b)", re.I)
# Schema changes: the graph's two tables are mnemara's, not the model's.
_SCHEMA = re.compile(r"\b(DROP|ALTER|RENAME|COMMENT)\b|\bCREATE\s+(NODE|REL|MACRO|SEQUENCE|TYPE|"
                     r"GRAPH|INDEX|OR)\b", re.I)
_CALL = re.compile(r"\bCALL\s+([A-Za-z_][\w]*)", re.I)
CALL_ALLOWED = frozenset({"show_tables", "table_info", "show_connection", "db_version"})


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[list[Any]]
    more: bool  # rows were left out beyond the limit


def blank_literals(cypher: str) -> str:
    """The query with string literals, `quoted` names and comments replaced by spaces, so no
    word inside them is mistaken for a clause (and none hides from the check)."""
    out: list[str] = []
    i, n = 0, len(cypher)
    while i < n:
        ch = cypher[i]
        if ch in "'\"`":
            j = i + 1
            while j < n and cypher[j] != ch:
                j += 2 if cypher[j] == "\\" and ch != "`" else 1
            out.append(" " * (min(j, n - 1) - i + 1))
            i = j + 1
        elif cypher.startswith("//", i) or cypher.startswith("--", i):
            j = cypher.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif cypher.startswith("/*", i):
            j = cypher.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(" " * (j - i))
            i = j
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def check(cypher: str) -> None:
    """Refuse, with a reason the model can act on, what may not run as a graph query."""
    code = blank_literals(cypher)
    body = code.strip().rstrip(";")
    if not body.strip():
        raise GraphError("graph_query: the query is empty")
    if ";" in body:
        raise GraphError("graph_query runs one statement at a time; send the others as separate calls")
    found = _OUTSIDE.search(body) or _DETACH_DB.search(body)
    if found:
        raise GraphError(f"graph_query: {found.group(0).upper()} is not allowed: queries read and "
                         "change the graph only, never files, extensions, other databases or "
                         "transactions")
    found = _SCHEMA.search(body)
    if found:
        raise GraphError(f"graph_query: {found.group(0).upper()} is not allowed: the schema (tables "
                         "Node and Edge) is fixed; add nodes and edges instead")
    for call in _CALL.finditer(body):
        if call.group(1).lower() not in CALL_ALLOWED:
            raise GraphError(f"graph_query: CALL {call.group(1)} is not allowed; CALL may use "
                             f"{', '.join(sorted(CALL_ALLOWED))}")


def run(graph: Graph, cypher: str, params: dict[str, Any] | None = None, *,
        allow_writes: bool = False, limit: int = DEFAULT_ROWS) -> QueryResult:
    """Run one checked statement with bound parameters, reading at most `limit` rows."""
    iter_rows = load_engine().iter_rows
    check(cypher)
    limit = max(1, min(limit, MAX_ROWS))
    with graph.session(write=allow_writes) as conn:
        if conn is None:
            return QueryResult([], [], False)  # no graph yet: every read finds nothing
        try:
            columns, rows, more = iter_rows(conn, cypher, dict(params or {}), limit)
        except RuntimeError as exc:
            text = " ".join(str(exc).split())  # one line, whatever the engine wrote
            if "read-only" in text.lower() or "read only" in text.lower():
                raise GraphError("graph_query is read-only in this instance (graph_allow_write_queries "
                                 "is false): use graph_add_node / graph_add_edge to add to the graph")
            raise GraphError(f"graph_query failed: {text}") from None
    return QueryResult(columns, rows, more)


def render_value(value: Any) -> str:
    """One cell as plain text: a node as (id:label {props}), an edge as [RELATIONSHIP {props}]."""
    if isinstance(value, dict) and "_LABEL" in value and "id" in value:
        if value.get("_LABEL") == "Edge" or "relationship" in value:
            return f"[{value.get('relationship')} {value.get('properties') or '{}'}]"
        return f"({value['id']}:{value.get('label')} {value.get('properties') or '{}'})"
    if isinstance(value, dict) and "_NODES" in value:  # a path: nodes joined by their edges
        nodes, rels = value.get("_NODES") or [], value.get("_RELS") or []
        parts = [render_value(nodes[0])] if nodes else []
        for rel, node in zip(rels, nodes[1:]):
            parts += [render_value(rel), render_value(node)]
        return " - ".join(parts)
    if isinstance(value, list):
        return "[" + ", ".join(render_value(v) for v in value) + "]"
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def render(result: QueryResult) -> str:
    """The result as a plain-text table, cut to MAX_CHARS with a note saying so."""
    if not result.columns:
        return "No rows (the graph is empty)."
    lines = [" | ".join(result.columns)]
    shown = 0
    for row in result.rows:
        cells = [render_value(v) for v in row]
        cells = [c if len(c) <= MAX_CELL_CHARS else c[: MAX_CELL_CHARS - 1] + "…" for c in cells]
        line = " | ".join(" ".join(c.split()) for c in cells)
        if sum(len(x) + 1 for x in lines) + len(line) > MAX_CHARS:
            break
        lines.append(line)
        shown += 1
    head = f"{shown} row(s)"
    if shown < len(result.rows) or result.more:
        head += " shown; more were left out: add LIMIT / WHERE, or ask for more with `limit`"
    return head + ":\n" + "\n".join(lines)


__all__ = ["CALL_ALLOWED", "QueryResult", "GraphUnavailable", "blank_literals", "check", "render", "run"]
