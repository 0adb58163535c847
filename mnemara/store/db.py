"""SQLite connection and numbered schema migrations for `turns.sqlite`."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Callable, Union

from ..errors import StoreError

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
)
SCHEMA_VERSION = len(MIGRATIONS)


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """Open the store. Read-only opens never create the file and never migrate.

    Any failure (not a database, truncated, unreadable, newer schema) is a StoreError with one line.
    """
    path = Path(path)
    if readonly and not path.exists():
        raise StoreError(f"{path}: no turn store yet")
    conn = None
    try:
        conn = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 10000")
        if readonly:
            # A normal connection with query_only leaves no -wal/-shm behind once closed.
            conn.execute("PRAGMA query_only = 1")
        # One statement, one snapshot: another process may be migrating this file right now.
        version, tables = conn.execute(
            "SELECT (SELECT user_version FROM pragma_user_version),"
            " (SELECT count(*) FROM sqlite_master)").fetchone()
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
            raise StoreError(f"{path}: schema version {version} needs an upgrade; "
                             "run any writing command (e.g. `mnemara run`) first")
    except sqlite3.DatabaseError as exc:
        _close(conn)
        raise StoreError(f"{path}: cannot open the turn store ({exc}); "
                         "move the file aside to start a fresh window") from None
    except StoreError:
        _close(conn)  # now, not at interpreter exit: a failed open leaves no -wal/-shm behind
        raise
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
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
