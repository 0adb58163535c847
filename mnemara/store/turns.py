"""TurnStore: the rolling window and its archive in `turns.sqlite`.

Rows in `turns` are the window; eviction moves them to `archive` (same id) in one transaction.
Nothing is deleted except by `purge()`. Both tables are searchable through one FTS5 index.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from .db import Transaction, connect
from .render import DEFAULT_RESULT_MAX_CHARS, plain_text, render_turn
from .tokens import BLOCK_OVERHEAD_TOKENS, SAFETY_MARGIN, TokenEstimator
from .window import Budget, RowCost, plan_eviction

RANK_WINDOW = 5_000  # most matches `search` ranks; see its docstring
SENDABLE = ("pending", "complete", "interrupted")  # failed turns stay visible but are never sent
_COLUMNS = "id, role, content, rendered, created_at, model, est_tokens, usage, cost_usd, status, pinned"


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Turn:
    id: int
    role: str
    blocks: list[dict[str, Any]]
    rendered: str
    created_at: str
    model: str | None
    est_tokens: int
    usage: dict[str, Any] | None
    cost_usd: float | None
    status: str
    pinned: bool

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Turn":
        return cls(row["id"], row["role"], json.loads(row["content"]), row["rendered"],
                   row["created_at"], row["model"], row["est_tokens"],
                   json.loads(row["usage"]) if row["usage"] else None, row["cost_usd"],
                   row["status"], bool(row["pinned"]))

    @property
    def text(self) -> str:
        return "".join(b.get("text", "") for b in self.blocks if b.get("type") == "text")


@dataclass(frozen=True)
class Eviction:
    ids: list[int]
    est_tokens: int
    reason: str


@dataclass(frozen=True)
class SearchHit:
    source: str  # "window" | "archive"
    turn_id: int
    role: str
    created_at: str
    snippet: str


class TurnStore:
    def __init__(self, path: Path, *, readonly: bool = False,
                 result_max_chars: int = DEFAULT_RESULT_MAX_CHARS) -> None:
        self.path = Path(path)
        self.conn = connect(self.path, readonly=readonly)
        self.result_max_chars = result_max_chars
        self.estimator = self._load_estimator()

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "TurnStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transactions ---------------------------------------------------------------------------
    def transaction(self) -> Transaction:
        """`with store.transaction():` one write transaction (BEGIN IMMEDIATE ... COMMIT, rolled
        back on error). Nested uses join the outer one, so a caller can make several store
        writes, and its own statements on `store.conn`, atomic together."""
        return Transaction(self.conn)

    # --- turns ----------------------------------------------------------------------------------
    def add_turn(self, role: str, blocks: list[dict[str, Any]], *, status: str = "complete",
                 model: str | None = None, usage: dict[str, Any] | None = None,
                 cost_usd: float | None = None, created_at: str | None = None) -> Turn:
        created_at = created_at or utc_now()
        with self.transaction():
            cur = self.conn.execute(
                "INSERT INTO turns (role, content, rendered, created_at, model, est_tokens, usage,"
                " cost_usd, status) VALUES (?, ?, '', ?, ?, 0, ?, ?, ?)",
                (role, json.dumps(blocks, ensure_ascii=False), created_at, model,
                 _json_or_none(usage), cost_usd, status))
            turn_id = cur.lastrowid
            self._set_rendering(turn_id, role, created_at, blocks, status)
            # Read back under the write lock: another process may evict it right after commit.
            return self.get(turn_id)

    def update_turn(self, turn_id: int, *, blocks: list[dict[str, Any]] | None = None,
                    status: str | None = None, usage: dict[str, Any] | None = None,
                    cost_usd: float | None = None, model: str | None = None) -> Turn:
        with self.transaction():
            # Read inside the transaction, so the row cannot be evicted between read and write
            # (that would leave its archived copy and its search text disagreeing).
            current = self.get(turn_id)
            blocks = current.blocks if blocks is None else blocks
            status = status or current.status
            self.conn.execute(
                "UPDATE turns SET content = ?, status = ?, usage = COALESCE(?, usage),"
                " cost_usd = COALESCE(?, cost_usd), model = COALESCE(?, model) WHERE id = ?",
                (json.dumps(blocks, ensure_ascii=False), status, _json_or_none(usage), cost_usd,
                 model, turn_id))
            self._set_rendering(turn_id, current.role, current.created_at, blocks, status)
            return self.get(turn_id)

    def _set_rendering(self, turn_id: int, role: str, created_at: str,
                       blocks: list[dict[str, Any]], status: str) -> None:
        rendered = render_turn(turn_id, role, created_at, blocks, status=status,
                               result_max_chars=self.result_max_chars)
        est = self.estimator.estimate_chars(len(rendered))
        self.conn.execute("UPDATE turns SET rendered = ?, est_tokens = ? WHERE id = ?",
                          (rendered, est, turn_id))
        self.conn.execute("INSERT OR REPLACE INTO turn_fts (rowid, body) VALUES (?, ?)",
                          (turn_id, plain_text(blocks)))

    def get(self, turn_id: int) -> Turn:
        row = self.conn.execute(f"SELECT {_COLUMNS} FROM turns WHERE id = ?", (turn_id,)).fetchone()
        if row is None:
            raise KeyError(turn_id)
        return Turn.from_row(row)

    def window(self, last: int | None = None) -> list[Turn]:
        """Every row of the window, oldest first (or only the `last` N)."""
        if last is None:
            rows = self.conn.execute(f"SELECT {_COLUMNS} FROM turns ORDER BY id").fetchall()
        else:
            rows = self.conn.execute(
                f"SELECT * FROM (SELECT {_COLUMNS} FROM turns ORDER BY id DESC LIMIT ?) ORDER BY id",
                (last,)).fetchall()
        return [Turn.from_row(r) for r in rows]

    def sendable(self) -> list[Turn]:
        rows = self.conn.execute(
            f"SELECT {_COLUMNS} FROM turns WHERE status IN {SENDABLE} ORDER BY id").fetchall()
        return [Turn.from_row(r) for r in rows]

    def sendable_renderings(self) -> list[str]:
        """Just the rendered blocks of what will be sent, oldest first (no JSON parsing)."""
        return [r[0] for r in self.conn.execute(
            f"SELECT rendered FROM turns WHERE status IN {SENDABLE} ORDER BY id")]

    def costs(self) -> list[RowCost]:
        """The budget's view of the window: what will be sent, by size and pin."""
        rows = self.conn.execute(
            f"SELECT id, est_tokens, pinned FROM turns WHERE status IN {SENDABLE} ORDER BY id")
        return [RowCost(i, t, bool(p)) for i, t, p in rows]

    def fail_stale_pending(self) -> list[int]:
        """Mark turns left 'pending' by a process that died mid-turn as failed (never re-sent)."""
        with self.transaction():
            ids = [r[0] for r in self.conn.execute("SELECT id FROM turns WHERE status = 'pending'")]
            self.conn.executemany("UPDATE turns SET status = 'failed' WHERE id = ?", [(i,) for i in ids])
        return ids

    def set_pinned(self, turn_ids: list[int], pinned: bool = True) -> list[int]:
        """Pin or unpin window rows; returns the ids that were in the window."""
        with self.transaction():
            found = self._existing(turn_ids)
            self.conn.executemany("UPDATE turns SET pinned = ? WHERE id = ?",
                                  [(int(pinned), i) for i in found])
        return found

    def _existing(self, turn_ids: list[int]) -> list[int]:
        if not turn_ids:
            return []
        marks = ",".join("?" * len(turn_ids))
        return [r[0] for r in self.conn.execute(
            f"SELECT id FROM turns WHERE id IN ({marks}) ORDER BY id", list(turn_ids))]

    # --- budget and eviction --------------------------------------------------------------------
    def apply_budget(self, budget: Budget, *, incoming_turns: int = 0, incoming_tokens: int = 0,
                     low_water: float = 1.0, reason: str = "budget") -> Eviction | None:
        """Evict what the budget requires (see `plan_eviction`); None when nothing moved.

        Plan and move are one transaction, so two processes sharing an instance never plan on a
        window the other has just changed."""
        with self.transaction():
            ids = plan_eviction(self.costs(), budget, incoming_turns=incoming_turns,
                                incoming_tokens=incoming_tokens, low_water=low_water)
            if not ids:
                return None
            # Failed rows older than the chunk go with it: they are never sent, so keep them no longer.
            stale = [r[0] for r in self.conn.execute(
                "SELECT id FROM turns WHERE status = 'failed' AND id < ?", (max(ids),))]
            return self.evict(sorted(set(ids) | set(stale)), reason)

    def evict(self, turn_ids: list[int], reason: str) -> Eviction | None:
        """Move rows from the window to the archive in one transaction."""
        with self.transaction():
            found = self._existing(turn_ids)  # under the lock: report only what this call moved
            if not found:
                return None
            marks = ",".join("?" * len(found))
            now = utc_now()
            tokens = self.conn.execute(
                f"SELECT COALESCE(SUM(est_tokens), 0) FROM turns WHERE id IN ({marks})", found
            ).fetchone()[0]
            self.conn.execute(
                f"INSERT INTO archive ({_COLUMNS}, archived_at, archive_reason)"
                f" SELECT {_COLUMNS}, ?, ? FROM turns WHERE id IN ({marks})", [now, reason, *found])
            self.conn.execute(f"DELETE FROM turns WHERE id IN ({marks})", found)
            self.conn.execute("INSERT INTO evictions (at, turns, est_tokens, reason) VALUES (?, ?, ?, ?)",
                              (now, len(found), tokens, reason))
        return Eviction(found, tokens, reason)

    def evict_older_than(self, cutoff_iso: str, reason: str) -> Eviction | None:
        ids = [r[0] for r in self.conn.execute(
            "SELECT id FROM turns WHERE created_at < ? ORDER BY id", (cutoff_iso,))]
        return self.evict(ids, reason)

    def clear(self) -> Eviction | None:
        return self.evict([r[0] for r in self.conn.execute("SELECT id FROM turns")], "clear")

    def purge(self) -> int:
        """Delete window and archive for good. Returns how many turns were deleted."""
        with self.transaction():
            n = self.count() + self.archived_count()
            # The index forgets them too (through its outbox, in this same transaction).
            self.conn.execute(
                "INSERT INTO index_outbox (atom_id, op) SELECT 'turn:' || id, 'delete' FROM turns"
                " UNION ALL SELECT 'turn:' || id, 'delete' FROM archive")
            for table in ("turns", "archive", "turn_fts", "evictions"):
                self.conn.execute(f"DELETE FROM {table}")
        return n

    # --- figures --------------------------------------------------------------------------------
    def count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM turns").fetchone()[0]

    def archived_count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM archive").fetchone()[0]

    def window_tokens(self) -> int:
        return sum(c.est_tokens for c in self.costs())

    def last_activity(self) -> str | None:
        row = self.conn.execute(
            "SELECT max(m) FROM (SELECT max(created_at) AS m FROM turns"
            " UNION ALL SELECT max(created_at) FROM archive)").fetchone()
        return row[0]

    def evictions(self, limit: int = 10) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT at, turns, est_tokens, reason FROM evictions ORDER BY id DESC LIMIT ?", (limit,))
        return [dict(r) for r in rows]

    # --- search ---------------------------------------------------------------------------------
    def search(self, query: str, limit: int = 20) -> list[SearchHit]:
        """Full-text search over window and archive, best match first.

        Ranking (bm25) costs about a microsecond per matching turn, so a query matching more
        than RANK_WINDOW turns (a very common word over a large archive) is ranked among its
        RANK_WINDOW newest matches: it stays fast, and leans to recent turns when the query
        cannot tell them apart anyway.
        """
        match = fts_query(query)
        if not match:
            return []
        row = self.conn.execute(
            "SELECT rowid FROM turn_fts WHERE turn_fts MATCH ? ORDER BY rowid DESC LIMIT 1 OFFSET ?",
            (match, RANK_WINDOW - 1)).fetchone()
        oldest = row[0] if row else 0
        # Rank inside the FTS table first; join the (at most `limit`) winners to their rows after.
        sql = """
            SELECT f.id, f.snip, COALESCE(t.role, a.role) AS role,
                   COALESCE(t.created_at, a.created_at) AS at,
                   CASE WHEN t.id IS NOT NULL THEN 'window' ELSE 'archive' END AS source
            FROM (SELECT rowid AS id, snippet(turn_fts, 0, '[', ']', ' … ', 12) AS snip, rank
                  FROM turn_fts WHERE turn_fts MATCH ? AND rowid >= ?
                  ORDER BY rank LIMIT ?) AS f
            LEFT JOIN turns t ON t.id = f.id
            LEFT JOIN archive a ON a.id = f.id
            WHERE t.id IS NOT NULL OR a.id IS NOT NULL
            ORDER BY f.rank"""
        return [SearchHit(r["source"], r["id"], r["role"], r["at"], r["snip"])
                for r in self.conn.execute(sql, (match, oldest, limit))]

    # --- token estimate calibration ---------------------------------------------------------------
    def _load_estimator(self) -> TokenEstimator:
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'estimator'").fetchone()
        if row:
            data = json.loads(row[0])
            return TokenEstimator(float(data["chars_per_token"]), int(data["samples"]))
        return TokenEstimator()

    def calibrate(self, chars: int, real_tokens: int) -> float:
        """Learn the chars/token ratio from a real request and re-estimate the window."""
        before = self.estimator.chars_per_token
        ratio = self.estimator.calibrate(chars, real_tokens)
        if abs(ratio - before) < before * 0.002:
            return ratio  # too small a change to re-estimate every row for
        with self.transaction():
            self.conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('estimator', ?)",
                (json.dumps({"chars_per_token": ratio, "samples": self.estimator.samples}),))
            # One statement, same arithmetic as TokenEstimator.estimate_chars (ceil done by hand).
            self.conn.execute(
                "UPDATE turns SET est_tokens = (WITH x(v) AS (SELECT length(rendered) * 1.0 / ? * ?)"
                " SELECT CAST(v AS INTEGER) + (v > CAST(v AS INTEGER)) + ? FROM x)",
                (ratio, SAFETY_MARGIN, BLOCK_OVERHEAD_TOKENS))
        return ratio

    def get_any(self, turn_id: int) -> tuple[Turn, str] | None:
        """A turn by id from the window or the archive, with where it is ("window" | "archive")."""
        for table, where in (("turns", "window"), ("archive", "archive")):
            row = self.conn.execute(f"SELECT {_COLUMNS} FROM {table} WHERE id = ?", (turn_id,)).fetchone()
            if row is not None:
                return Turn.from_row(row), where
        return None

    def iter_all(self) -> Iterator[Turn]:
        """Every turn, archive and window, in id order (for rebuilding the index)."""
        for row in self.conn.execute(
                f"SELECT {_COLUMNS} FROM archive UNION ALL SELECT {_COLUMNS} FROM turns ORDER BY id"):
            yield Turn.from_row(row)

    def iter_archive(self) -> Iterator[Turn]:
        for row in self.conn.execute(f"SELECT {_COLUMNS} FROM archive ORDER BY id"):
            yield Turn.from_row(row)


def fts_query(text: str) -> str:
    """Turn free text into a safe FTS5 query: every word must appear (prefix match on the last)."""
    words = re.findall(r"\w+", text, flags=re.UNICODE)
    if not words:
        return ""
    quoted = [f'"{w}"' for w in words]
    quoted[-1] += "*"
    return " ".join(quoted)


def _json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)
