"""The embedded graph database engine: the only module that imports it.

ladybug (the maintained fork of Kuzu, same API under another module name) is the engine. Kuzu is a
swap of this one module: `import kuzu as _engine` and `ENGINE = "kuzu"` (its files are not
ladybug's: move a graph across with `mnemara graph export --format json` and an import). Never
import both in one process: their native libraries clash (a segfault, measured).

Importing ladybug costs ~0.3 s, so this module is imported only inside the operations that open
the database, never at mnemara's start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ladybug as _engine

ENGINE = "ladybug"
VERSION: str = getattr(_engine, "__version__", "?")
BUFFER_POOL_BYTES = 64 << 20
QUERY_TIMEOUT_MS = 10_000  # a runaway Cypher query (a wide variable-length match) is stopped


def open_database(path: Path, *, read_only: bool) -> Any:
    """A database handle on `path` (created when missing, unless `read_only`)."""
    # One worker thread per query: a chat's graph is small, and the machine has few cores to spare.
    # A small buffer pool: the default (most of the machine's memory) costs ~60 ms per open,
    # and every operation opens the database anew (measured: 64 MB opens and reads in ~5 ms).
    return _engine.Database(str(path), read_only=read_only, max_num_threads=1,
                            buffer_pool_size=BUFFER_POOL_BYTES)


def connect(database: Any) -> Any:
    conn = _engine.Connection(database, num_threads=1)
    conn.set_query_timeout(QUERY_TIMEOUT_MS)
    return conn


def rows(conn: Any, query: str, parameters: dict[str, Any] | None = None) -> tuple[list[str], list[list[Any]]]:
    """Run one statement; (column names, all rows)."""
    result = conn.execute(query, parameters or {})
    if isinstance(result, list):  # several statements: the caller refuses those beforehand
        result = result[-1]
    try:
        return list(result.get_column_names()), [list(r) for r in result.get_all()]
    finally:
        result.close()


def iter_rows(conn: Any, query: str, parameters: dict[str, Any] | None = None,
              limit: int | None = None) -> tuple[list[str], list[list[Any]], bool]:
    """Run one statement and read at most `limit` rows: (columns, rows, more rows were left)."""
    result = conn.execute(query, parameters or {})
    if isinstance(result, list):
        result = result[-1]
    try:
        columns = list(result.get_column_names())
        out: list[list[Any]] = []
        while result.has_next():
            if limit is not None and len(out) >= limit:
                return columns, out, True
            out.append(list(result.get_next()))
        return columns, out, False
    finally:
        result.close()


def close(conn: Any, database: Any) -> None:
    """Close both handles now (not at garbage collection): the file lock goes with them."""
    for handle in (conn, database):
        if handle is not None:
            try:
                handle.close()
            except RuntimeError:
                pass  # already closed by the engine after a failure
