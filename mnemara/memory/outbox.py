"""The index outbox in `turns.sqlite`: what the index still has to take in.

Writers queue an operation in the same transaction as their write (turn rows through triggers,
notes, wiki pages and manual entries through `enqueue`, with the atom). Superseding an atom is an
upsert of it with `superseded` set. `Outbox.take` hands the drainer the
newest operation per atom; `done` removes what was applied; `failed` keeps the rows with the error
and a back-off, so a failure is retried and never loses the write.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass

from ..index.atoms import Atom
from ..store.db import Transaction

RETRY_BASE_SECONDS = 2.0
RETRY_MAX_SECONDS = 300.0


def enqueue(conn: sqlite3.Connection, op: str, atom_id: str, atom: Atom | None = None) -> None:
    """Queue one operation; call inside the write's transaction."""
    conn.execute("INSERT INTO index_outbox (atom_id, op, atom) VALUES (?, ?, ?)",
                 (atom_id, op, json.dumps(atom.to_json(), ensure_ascii=False) if atom else None))


@dataclass(frozen=True)
class Pending:
    seqs: tuple[int, ...]   # every queued row this operation stands for
    atom_id: str
    op: str                 # upsert | delete
    atom: Atom | None       # for upserts of atoms that are not turn rows


@dataclass(frozen=True)
class OutboxState:
    pending: int            # operations waiting
    failing: int            # of which failed at least once
    last_error: str | None


class Outbox:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def take(self, limit: int = 1000) -> list[Pending]:
        """Up to `limit` distinct atoms' latest operations that are due, oldest first."""
        rows = self.conn.execute(
            "SELECT seq, atom_id, op, atom FROM index_outbox WHERE next_try <= ? ORDER BY seq",
            (time.time(),)).fetchall()
        latest: dict[str, tuple[list[int], str, str | None]] = {}
        for seq, atom_id, op, atom in rows:
            if atom_id not in latest and len(latest) >= limit:
                continue
            seqs = latest[atom_id][0] if atom_id in latest else []
            seqs.append(seq)
            latest[atom_id] = (seqs, op, atom)  # the newest operation on an atom wins
        return [Pending(tuple(seqs), atom_id, op, Atom.from_json(json.loads(a)) if a else None)
                for atom_id, (seqs, op, a) in latest.items()]

    def due_ops(self, at_most: int) -> list[tuple[str, str, bool]] | None:
        """(atom_id, latest op, carries an atom) for each distinct atom due now, oldest first, or
        None when more than `at_most` atoms are due. Cheap: the drain's batching rule asks it
        after every turn, and a large backlog is drained whatever it holds."""
        now = time.time()
        count = self.conn.execute("SELECT count(DISTINCT atom_id) FROM index_outbox"
                                  " WHERE next_try <= ?", (now,)).fetchone()[0]
        if count > at_most:
            return None
        latest: dict[str, tuple[str, bool]] = {}
        for atom_id, op, has_atom in self.conn.execute(
                "SELECT atom_id, op, atom IS NOT NULL FROM index_outbox WHERE next_try <= ?"
                " ORDER BY seq", (now,)):
            latest[atom_id] = (op, bool(has_atom))  # the newest operation on an atom wins
        return [(atom_id, op, has_atom) for atom_id, (op, has_atom) in latest.items()]

    def done(self, items: list[Pending]) -> None:
        seqs = [(s,) for p in items for s in p.seqs]
        with Transaction(self.conn):
            self.conn.executemany("DELETE FROM index_outbox WHERE seq = ?", seqs)

    def failed(self, items: list[Pending], error: str) -> None:
        now = time.time()
        with Transaction(self.conn):
            for p in items:
                for seq in p.seqs:
                    self.conn.execute(
                        "UPDATE index_outbox SET attempts = attempts + 1, last_error = ?,"
                        " next_try = ? + min(?, ? * (1 << min(attempts, 12))) WHERE seq = ?",
                        (error[:500], now, RETRY_MAX_SECONDS, RETRY_BASE_SECONDS, seq))

    def state(self) -> OutboxState:
        pending, failing = self.conn.execute(
            "SELECT count(DISTINCT atom_id), count(DISTINCT CASE WHEN attempts > 0 THEN atom_id END)"
            " FROM index_outbox").fetchone()
        row = self.conn.execute("SELECT last_error FROM index_outbox WHERE last_error IS NOT NULL"
                                " ORDER BY seq DESC LIMIT 1").fetchone()
        return OutboxState(pending, failing, row[0] if row else None)

    def retry_now(self) -> None:
        with Transaction(self.conn):
            self.conn.execute("UPDATE index_outbox SET next_try = 0")

    def last_seq(self) -> int:
        return self.conn.execute("SELECT COALESCE(max(seq), 0) FROM index_outbox").fetchone()[0]

    def clear(self, up_to_seq: int) -> None:
        """Drop what was queued up to `up_to_seq` (a rebuild from the sources read after it
        supersedes it; later writes stay queued)."""
        with Transaction(self.conn):
            self.conn.execute("DELETE FROM index_outbox WHERE seq <= ?", (up_to_seq,))
