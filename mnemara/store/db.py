"""SQLite connection and numbered schema migrations for `turns.sqlite`."""

from __future__ import annotations

import os
import re
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Union

from ..errors import StoreDamaged, StoreError
from ..fsutil import PRIVATE_FILE, touch_private

_TURN_COLUMNS = """
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    content TEXT NOT NULL,            -- JSON list of content blocks, as received
    rendered TEXT NOT NULL,           -- the exact text block sent to the model for this turn
    created_at TEXT NOT NULL,         -- ISO-8601 UTC
    model TEXT,
    est_tokens INTEGER NOT NULL,
    usage TEXT,                       -- JSON: real API usage of the turn, when known
    cost_usd REAL,
    status TEXT NOT NULL DEFAULT 'complete'
        CHECK (status IN ('pending', 'complete', 'failed', 'interrupted')),
    pinned INTEGER NOT NULL DEFAULT 0
"""

# A migration is an SQL script (statements may be triggers with BEGIN ... END bodies) or a Python
# step given the connection, run inside the migration's transaction.
Migration = Union[str, Callable[[sqlite3.Connection], None]]

# Each entry upgrades the schema by one version; never edit a shipped entry, append a new one.
MIGRATIONS: tuple[Migration, ...] = (
    f"""
    CREATE TABLE turns (id INTEGER PRIMARY KEY AUTOINCREMENT, {_TURN_COLUMNS});
    CREATE TABLE archive (id INTEGER PRIMARY KEY, {_TURN_COLUMNS},
        archived_at TEXT NOT NULL, archive_reason TEXT NOT NULL);
    CREATE INDEX archive_created ON archive (created_at);
    -- One full-text row per turn, keyed by turn id; it follows a turn into the archive.
    -- Prefix indexes keep short prefix queries ("dep*") from merging thousands of doclists.
    CREATE VIRTUAL TABLE turn_fts USING fts5 (body, tokenize = 'porter unicode61', prefix = '2 3 4');
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE evictions (
        id INTEGER PRIMARY KEY, at TEXT NOT NULL, turns INTEGER NOT NULL,
        est_tokens INTEGER NOT NULL, reason TEXT NOT NULL);
    """,
    # 2: the memory index's outbox. Every write that matters to the index queues its atom here in
    # the write's own transaction (turns through triggers); the running session drains it into
    # the index, and a failure leaves the row for a retry. Manual index entries and supersede
    # marks live here too, so a rebuild of the index loses neither.
    """
    CREATE TABLE index_outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        atom_id TEXT NOT NULL,
        op TEXT NOT NULL CHECK (op IN ('upsert', 'delete')),
        atom TEXT,                        -- JSON of the atom, when the source is not a turn row
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        next_try REAL NOT NULL DEFAULT 0  -- unix time before which a failed row is not retried
    );
    CREATE TRIGGER turns_to_outbox_insert AFTER INSERT ON turns BEGIN
        INSERT INTO index_outbox (atom_id, op) VALUES ('turn:' || NEW.id, 'upsert');
    END;
    CREATE TRIGGER turns_to_outbox_update AFTER UPDATE OF content, status ON turns BEGIN
        INSERT INTO index_outbox (atom_id, op) VALUES ('turn:' || NEW.id, 'upsert');
    END;
    CREATE TABLE manual_atoms (
        id TEXT PRIMARY KEY, atom TEXT NOT NULL, created_at TEXT NOT NULL);
    CREATE TABLE superseded (
        atom_id TEXT PRIMARY KEY, by_id TEXT NOT NULL, reason TEXT, at TEXT NOT NULL);
    """,
    # 3: the model's window tools. A segment marks where a sub-task began, so evict_segment can
    # archive it as one unit. (A stripped tool output needs no table: the stub's block keeps the
    # original, see blocks.strip_result.)
    """
    CREATE TABLE segments (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        label TEXT NOT NULL,
        start_turn INTEGER NOT NULL,      -- the first turn id the segment covers
        created_at TEXT NOT NULL,
        evicted_at TEXT                   -- when evict_segment archived it; NULL while open
    );
    CREATE INDEX segments_label ON segments (label);
    """,
    # 4: slots, the small named blocks the model always sees. Every change is a new row holding
    # the slot's whole value after it (nothing is overwritten), so any edit can be undone; a
    # slot's value is its newest row ('' once cleared).
    """
    CREATE TABLE slot_versions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        text TEXT NOT NULL,
        action TEXT NOT NULL CHECK (action IN ('set', 'append', 'clear', 'undo')),
        author TEXT NOT NULL CHECK (author IN ('model', 'user')),
        reverts INTEGER,                  -- for an undo: the id of the change it took back
        created_at TEXT NOT NULL
    );
    CREATE INDEX slot_versions_name ON slot_versions (name, id);
    """,
    # 5: the knowledge graph's outbox. Every atom queued for the index (turns, notes, wiki
    # sections, manual entries) is queued for the graph too (by a trigger, in the write's own
    # transaction), so a graph that is locked or damaged never fails the write:
    # mnemara/graph/feed.py applies the queue later. graph_mentions records which atoms name
    # which entity, so an entity becomes a node once it recurs across atoms.
    """
    CREATE TABLE graph_outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        atom_id TEXT NOT NULL,
        op TEXT NOT NULL CHECK (op IN ('upsert', 'delete')),
        atom TEXT,                        -- JSON of the atom (as in index_outbox)
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        next_try REAL NOT NULL DEFAULT 0
    );
    CREATE TRIGGER index_outbox_to_graph AFTER INSERT ON index_outbox BEGIN
        INSERT INTO graph_outbox (atom_id, op, atom) VALUES (NEW.atom_id, NEW.op, NEW.atom);
    END;
    CREATE TABLE graph_mentions (
        entity TEXT NOT NULL,             -- the entity's node id, e.g. host:stg-7
        atom_id TEXT NOT NULL,
        props TEXT NOT NULL DEFAULT '{}', -- JSON: the atom node's properties, for when it links later
        PRIMARY KEY (entity, atom_id)
    ) WITHOUT ROWID;
    CREATE INDEX graph_mentions_atom ON graph_mentions (atom_id);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


# SQLite result codes (primary, low byte) that mean the file itself is damaged or is not SQLite.
_DAMAGE_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})
# ... and those that mean the file cannot be read or written where it is (disk, permissions).
_ACCESS_CODES = frozenset({sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM,
                           sqlite3.SQLITE_READONLY, sqlite3.SQLITE_FULL})
_INSTANCE_DIR_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def damaged_message(path: Path, detail: str) -> str:
    """The one line a user sees for a damaged store: which file, that nothing was written, and
    the way back (doctor to confirm, restore from a backup, or start a fresh window)."""
    name = path.parent.name if _INSTANCE_DIR_RE.fullmatch(path.parent.name) else "NAME"
    return (f"{path} is damaged ({detail}); nothing was changed. Check it with "
            f"`mnemara doctor -i {name}`, then restore a backup with `mnemara restore FILE -i NEW` "
            "or move the file aside to start a fresh window")


def translate_error(path: Path, exc: Exception) -> Exception:
    """The user-facing error for an SQLite failure, or `exc` itself when it is not about the file
    (busy, constraint, a bug in our SQL: those keep their type so callers can still catch them)."""
    if isinstance(exc, UnicodeDecodeError):
        # SQLite's own error text quoted bytes of a garbled schema, and Python could not decode
        # even the message: the file is damaged.
        detail = bytes(exc.object).decode("utf-8", "replace")
        return StoreDamaged(damaged_message(path, detail.replace("\ufffd", "?")))
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary in _DAMAGE_CODES or (primary is None and _looks_damaged(str(exc))):
        return StoreDamaged(damaged_message(path, str(exc)))
    if primary in _ACCESS_CODES:
        return StoreError(f"{path}: cannot use the turn store ({exc}); check the disk and the "
                          "file's permissions")
    return exc


def _looks_damaged(message: str) -> bool:
    """Damage Python's sqlite3 module reports itself, without an SQLite code: a text column
    whose bytes are no longer the UTF-8 mnemara wrote (a flipped byte inside a turn)."""
    return ("malformed" in message or "not a database" in message
            or "Could not decode to UTF-8" in message)


class _Cursor(sqlite3.Cursor):
    """A cursor whose failures on a damaged file are StoreDamaged. Rows are read lazily, so
    damage can surface on any fetch, not only on execute: every entry point translates."""

    def _fail(self, exc: Exception) -> Exception:
        conn = self.connection
        translated = translate_error(getattr(conn, "store_path", Path("turns.sqlite")), exc)
        if translated is not exc:
            # Let go of the statement now: the traceback keeps this cursor alive (asyncio and
            # click hold on to it), and a statement still open makes closing the connection
            # lazy, leaving -wal/-shm files behind next to the damaged store.
            self.close()
        return translated

    def execute(self, sql: str, parameters: Any = (), /) -> "_Cursor":
        try:
            return super().execute(sql, parameters)
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            raise self._fail(exc) from None

    def executemany(self, sql: str, seq_of_parameters: Iterable[Any], /) -> "_Cursor":
        try:
            return super().executemany(sql, seq_of_parameters)
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            raise self._fail(exc) from None

    def fetchone(self) -> Any:
        try:
            return super().fetchone()
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            raise self._fail(exc) from None

    def fetchmany(self, size: int | None = None) -> list[Any]:
        try:
            return super().fetchmany(self.arraysize if size is None else size)
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            raise self._fail(exc) from None

    def fetchall(self) -> list[Any]:
        try:
            return super().fetchall()
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            raise self._fail(exc) from None

    def __next__(self) -> Any:
        try:
            return super().__next__()
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            raise self._fail(exc) from None


class StoreConnection(sqlite3.Connection):
    """The store's connection: remembers its file so any SQLite failure that means the file is
    damaged becomes one StoreDamaged line naming it, wherever in mnemara the query runs (the
    engine, the memory service's own connection, the CLI)."""

    store_path: Path = Path("turns.sqlite")

    def cursor(self, factory: Any = _Cursor) -> Any:  # type: ignore[override]
        return super().cursor(factory)

    def execute(self, sql: str, parameters: Any = (), /) -> Any:  # type: ignore[override]
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Iterable[Any], /) -> Any:  # type: ignore[override]
        return self.cursor().executemany(sql, seq_of_parameters)


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """Open the store. Read-only opens never create the file and write nothing, except that an
    older schema is upgraded first (a healthy file only: damage is found before any migration).

    Any failure (not a database, truncated, unreadable, newer schema) is a StoreError with one
    line; a damaged file is a StoreDamaged, now or on any later query. A 0-byte file is what
    SQLite itself calls an empty database: writers initialise it, readers see an empty store
    (without writing it). A new file is created 0600, and its -wal/-shm inherit that mode.
    """
    path = Path(path)
    if readonly and not path.exists():
        raise StoreError(f"{path}: no turn store yet")
    if readonly and _empty_file(path):
        return _empty_store(path)
    conn = None
    try:
        if not readonly:
            _private_file(path)
        conn = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False,
                               factory=StoreConnection)
        conn.store_path = path
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 10000")
        if readonly:
            # A normal connection with query_only leaves no -wal/-shm behind once closed.
            conn.execute("PRAGMA query_only = 1")
        # One statement, one snapshot: another process may be migrating this file right now.
        version, tables = conn.execute(
            "SELECT (SELECT user_version FROM pragma_user_version),"
            " (SELECT count(*) FROM sqlite_master)").fetchone()
        if tables:
            # Before the WAL switch and any migration: neither may write into a damaged file.
            _probe(conn)
        # Checked before the WAL switch, which would already rewrite someone else's file.
        if not readonly and (version or not tables):
            _enable_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
            version = _migrate(conn)
        if version == 0:
            raise StoreError(f"{path}: not a mnemara turn store ("
                             + ("another program's SQLite database" if tables else "empty")
                             + "); move the file aside to start a fresh window")
        if version > SCHEMA_VERSION:
            raise StoreError(f"{path}: schema version {version} is newer than this mnemara "
                             f"supports ({SCHEMA_VERSION}); upgrade mnemara")
        if readonly and version < SCHEMA_VERSION:
            if not os.access(path, os.W_OK):
                raise StoreError(f"{path}: schema version {version} needs an upgrade, and the "
                                 "file is not writable; run mnemara as its owner once")
            # A newer mnemara reading an instance for the first time (`list`, `show` after an
            # upgrade): upgrade it once, the one write a reader makes, then read as asked.
            _close(conn)
            conn = None
            _close(connect(path))
            return connect(path, readonly=True)
    except sqlite3.DatabaseError as exc:
        _close(conn)
        translated = translate_error(path, exc)
        if translated is exc:
            raise StoreError(f"{path}: cannot open the turn store ({exc}); "
                             "move the file aside to start a fresh window") from None
        raise translated from None
    except StoreError:
        _close(conn)  # now, not at interpreter exit: a failed open leaves no -wal/-shm behind
        raise
    return conn


def _probe(conn: sqlite3.Connection) -> None:
    """Read both ends of every table's B-tree (its root, first and last leaf: a few pages each).

    A damaged store mostly fails here, at open, before anything is written anywhere (a WAL
    switch, a migration, a note's file): inserts go to the last leaf, and the root pages sit at
    the front of the file where overwritten pages tend to be. Damage deeper inside still fails
    the query that reaches it, as StoreDamaged, and that query's transaction is rolled back.
    """
    tables = conn.execute(
        "SELECT name, upper(sql) LIKE '%WITHOUT ROWID%' FROM sqlite_master"
        " WHERE type = 'table' AND rootpage > 0").fetchall()
    for name, without_rowid in tables:
        quoted = '"' + name.replace('"', '""') + '"'
        if without_rowid:  # FTS5's small shadow tables: the first row is enough
            conn.execute(f"SELECT 1 FROM {quoted} LIMIT 1").fetchone()
            continue
        conn.execute(f"SELECT (SELECT rowid FROM {quoted} ORDER BY rowid LIMIT 1),"
                     f" (SELECT rowid FROM {quoted} ORDER BY rowid DESC LIMIT 1)").fetchone()


def _private_file(path: Path) -> None:
    """Create the store file 0600 before SQLite does (SQLite would make it 0644 less umask, and
    gives its -wal/-shm the main file's mode), and tighten a store an older version left 0644."""
    try:
        if not path.exists():
            touch_private(path)
        mode = path.stat().st_mode & 0o777
        if mode & ~PRIVATE_FILE and path.is_file():
            os.chmod(path, mode & PRIVATE_FILE)
    except OSError as exc:
        raise StoreError(f"{path}: cannot open the turn store for writing "
                         f"({exc.strerror or exc}); check its directory's permissions") from None


def _empty_file(path: Path) -> bool:
    """A 0-byte store with no write-ahead log holding its pages: an empty database."""
    try:
        if path.stat().st_size:
            return False
        wal = path.with_name(path.name + "-wal")
        return not (wal.exists() and wal.stat().st_size)
    except OSError:
        return False


def _empty_store(path: Path) -> sqlite3.Connection:
    """A read-only view of an empty store, in memory: what a 0-byte file will be once a writer
    initialises it, without writing it now."""
    conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False,
                           factory=StoreConnection)
    conn.store_path = path
    conn.row_factory = sqlite3.Row
    _migrate(conn)
    conn.execute("PRAGMA query_only = 1")
    return conn


def _enable_wal(conn: sqlite3.Connection, timeout: float = 10.0) -> None:
    """Switch to WAL, retrying while busy: when two processes create the store at once, SQLite
    fails one journal-mode change with SQLITE_BUSY at once instead of running the busy handler."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL").fetchone()
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


def _close(conn: sqlite3.Connection | None) -> None:
    if conn is not None:
        conn.close()


def _migrate(conn: sqlite3.Connection) -> int:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version >= SCHEMA_VERSION:
        return version
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Re-read under the write lock: another process may have migrated meanwhile.
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for number in range(version, SCHEMA_VERSION):
            step = MIGRATIONS[number]
            if callable(step):
                step(conn)
                continue
            for statement in split_statements(step):
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # some failures (I/O, a full disk) already rolled it back
            conn.execute("ROLLBACK")
        raise
    return SCHEMA_VERSION


def split_statements(script: str) -> list[str]:
    """Split a migration into complete statements (executescript would commit our transaction).

    Statements end where SQLite says they are complete, so a trigger's `BEGIN ...; ...; END;`
    body stays one statement. `--` comments are dropped first.
    """
    statements, current = [], ""
    for line in script.splitlines():
        code = line.split("--", 1)[0]
        if not code.strip():
            continue
        current += code + "\n"
        if sqlite3.complete_statement(current):
            statements.append(current.strip().rstrip(";").strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements


class Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on error; nests by doing nothing inside."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.outer = False

    def __enter__(self) -> None:
        if not self.conn.in_transaction:
            self.conn.execute("BEGIN IMMEDIATE")
            self.outer = True

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if not self.outer:
            return
        if exc_type and not self.conn.in_transaction:
            return  # SQLite already rolled back (I/O error, full disk): nothing left to undo
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
