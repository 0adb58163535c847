"""Reading the memory index without opening a `MemoryIndex`: nothing is created, migrated or
written (replay's dry run reads the index this way)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Collection

from .atoms import Atom
from .lance import WRITE_BATCH, _col, _read_meta, import_lancedb
from .layout import COLUMNS, TABLE, read_atoms


@dataclass
class StoredRows:
    """Atoms the index holds (by id), their vectors when they have one, and the embedder
    those vectors were made with (None: the index records none)."""

    atoms: dict[str, Atom]
    vectors: dict[str, Any]
    embedder: str | None


def read_rows(directory: Path, ids: Collection[str], *, vectors: bool = True) -> StoredRows:
    """The stored rows for `ids`, read without opening a `MemoryIndex`: nothing is created,
    migrated or written (replay's dry run reads the index this way). A missing index is empty."""
    directory = Path(directory)
    meta = _read_meta(directory)
    empty = StoredRows({}, {}, meta.get("embedder"))
    if not ids or not (directory / f"{TABLE}.lance").is_dir():
        return empty
    table = import_lancedb().connect(str(directory)).open_table(TABLE)
    with_vec = vectors and "vector" in table.schema.names
    out = StoredRows({}, {}, empty.embedder)
    wanted = list(ids)
    for start in range(0, len(wanted), WRITE_BATCH):
        rows = (table.search().where(_col("id").isin(wanted[start:start + WRITE_BATCH]))
                .select([*COLUMNS, *(["vector"] if with_vec else [])]).limit(None).to_arrow())
        found = read_atoms(rows)
        vecs = rows.column("vector").to_pylist() if with_vec else [None] * len(found)
        for atom, vec in zip(found, vecs):
            out.atoms[atom.id] = atom
            if vec is not None:
                out.vectors[atom.id] = vec
    return out
