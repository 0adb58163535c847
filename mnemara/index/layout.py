"""The `atoms` table's layout: its columns, creating it, adding the columns a table from an older
mnemara lacks, and reading rows back as atoms and time facts. `MemoryIndex` (lance.py) writes
and searches it; pyarrow and LanceDB are imported only inside the functions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .atoms import Atom
from .embedders import Embedder
from .fusion import TIME_FACTS_VERSION, TimeFacts

if TYPE_CHECKING:
    import pyarrow as pa

TABLE = "atoms"
COLUMNS = ("id", "kind", "source", "line", "turn_id", "role", "category", "created_at",
           "superseded", "text")
# What the atom's text says about time (fusion.TimeFacts), read when the row is written; a row
# whose `time_facts` is not fusion.TIME_FACTS_VERSION is read again (`optimize`).
FACT_COLUMNS = ("told_since", "told_until", "states_time", "time_facts")
STALE_FACTS = f"time_facts IS NULL OR time_facts <> {int(TIME_FACTS_VERSION)}"  # a constant filter


def vector_field(dim: int) -> "pa.Field":
    import pyarrow as pa
    return pa.field("vector", pa.list_(pa.float32(), dim))


def create_table(db: Any, embedder: Embedder | None) -> Any:
    import pyarrow as pa
    from lancedb.index import FTS

    fields = [pa.field("id", pa.string()), pa.field("kind", pa.string()), pa.field("source", pa.string()),
              pa.field("line", pa.int64()), pa.field("turn_id", pa.int64()), pa.field("role", pa.string()),
              pa.field("category", pa.string()), pa.field("created_at", pa.string()),
              pa.field("superseded", pa.bool_()), pa.field("text", pa.string()),
              pa.field("search_text", pa.string()), *fact_fields()]
    if embedder is not None:
        fields.append(vector_field(embedder.dim))
    table = db.create_table(TABLE, schema=pa.schema(fields), exist_ok=True)  # a racing process may win
    # English stemming and stop words; no positions (no phrase queries, a smaller index).
    table.create_index("search_text", config=FTS(with_position=False, stem=True, remove_stop_words=True))
    return table


def fact_fields() -> list["pa.Field"]:
    import pyarrow as pa
    when = pa.timestamp("us", tz="UTC")
    return [pa.field("told_since", when), pa.field("told_until", when),
            pa.field("states_time", pa.bool_()), pa.field("time_facts", pa.int32())]


def add_fact_columns(table: Any) -> None:
    """A table from before time facts were stored gains their columns, empty (null: read
    again by `refresh_time_facts`). When they cannot be added (a read-only copy, a schema
    change that failed) the table is used without them: searches read the texts, as before."""
    if has_facts(table.schema):
        return
    try:
        table.add_columns(fact_fields())
    except (ValueError, RuntimeError, OSError):  # also: another process added them first
        pass


def has_facts(schema: "pa.Schema") -> bool:
    return "time_facts" in schema.names


def read_facts(rows: "pa.Table") -> list[TimeFacts | None]:
    """Each row's stored time facts, None where they are missing, from an older grammar or not
    selected."""
    if "time_facts" not in rows.column_names:
        return [None] * rows.num_rows
    version = rows.column("time_facts").to_pylist()
    since, until = rows.column("told_since").to_pylist(), rows.column("told_until").to_pylist()
    states = rows.column("states_time").to_pylist()
    return [TimeFacts(None if s is None or u is None else (s, u), bool(st))
            if v == TIME_FACTS_VERSION else None
            for v, s, u, st in zip(version, since, until, states)]


def read_atoms(rows: "pa.Table") -> list[Atom]:
    cols = {name: rows.column(name).to_pylist() for name in COLUMNS}
    return [Atom(**{name: cols[name][i] for name in COLUMNS}) for i in range(rows.num_rows)]
