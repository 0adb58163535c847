"""The knowledge graph: entities and memory atoms, and how they relate.

`open_graph(instance, config)` is the way in: a `Graph` (cheap; the database is opened per
operation) or None when `graph_enabled` is false. Importing this package imports no database
engine; the engine is loaded by the first operation that opens the graph.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .entities import Entity, extract_entities
from .store import Edge, Graph, GraphError, GraphStats, GraphUnavailable, Node

if TYPE_CHECKING:
    from ..config import Config
    from ..instance import Instance


def open_graph(instance: "Instance", config: "Config") -> Graph | None:
    """The instance's graph, or None when the graph is turned off (`graph_enabled: false`)."""
    if not getattr(config, "graph_enabled", True):
        return None
    return Graph(instance.graph_dir)


__all__ = ["Edge", "Entity", "Graph", "GraphError", "GraphStats", "GraphUnavailable", "Node",
           "extract_entities", "open_graph"]
