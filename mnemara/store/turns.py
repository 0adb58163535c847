"""TurnStore: the rolling window and its archive in `turns.sqlite`.

Rows in `turns` are the window; eviction moves them to `archive` (same id) in one transaction.
Nothing is deleted except by `purge()`. Both tables are searchable through one FTS5 index.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from ..errors import StoreDamaged
from .db import Transaction, connect, damaged_message
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
        try:
            self.estimator = self._load_estimator()
        except BaseException:
            self.conn.close()  # now: an open connection would leave -wal/-shm next to the file
            raise

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "TurnStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _turn(self, row: sqlite3.Row) -> Turn:
        """A row as a Turn; a row whose JSON no longer parses (a changed byte on disk) is damage
        to report like any other, not a traceback."""
        try:
            return Turn.from_row(row)
        except (ValueError, TypeError, KeyError) as exc:
            raise StoreDamaged(damaged_message(
                self.path, f"turn {row['id']} cannot be read: {type(exc).__name__}")) from None

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
        return self._turn(row)

    def window(self, last: int | None = None) -> list[Turn]:
        """Every row of the window, oldest first (or only the `last` N)."""
        if last is None:
            rows = self.conn.execute(f"SELECT {_COLUMNS} FROM turns ORDER BY id").fetchall()
        else:
            rows = self.conn.execute(
                f"SELECT * FROM (SELECT {_COLUMNS} FROM turns ORDER BY id DESC LIMIT ?) ORDER BY id",
                (last,)).fetchall()
        return [self._turn(r) for r in rows]

    def sendable(self) -> list[Turn]:
        rows = self.conn.execute(
            f"SELECT {_COLUMNS} FROM turns WHERE status IN {SENDABLE} ORDER BY id").fetchall()
        return [self._turn(r) for r in rows]

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
            for table in ("turns", "archive", "turn_fts", "evictions", "segments"):
                self.conn.execute(f"DELETE FROM {table}")
        return n

    # --- figures --------------------------------------------------------------------------------
    def count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM turns").fetchone()[0]

    def window_counts(self) -> tuple[int, int]:
        """(rows that count toward max_window_turns, failed rows): failed turns stay visible in
        the window until evicted but are never sent, so neither the budget nor the totals a
        user reads ("20/20 turns") count them."""
        sendable, failed = self.conn.execute(
            f"SELECT count(*) FILTER (WHERE status IN {SENDABLE}),"
            " count(*) FILTER (WHERE status = 'failed') FROM turns").fetchone()
        return sendable, failed

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
        # FTS5's snippet() re-reads the whole text and its cost grows about with the square of
        # it (10 MB: minutes), so it only runs on texts up to SNIPPET_FTS_MAX_CHARS; a longer
        # one gets `bounded_snippet`, which looks only at slices around the first matches.
        sql = """
            SELECT f.id, f.snip, COALESCE(t.role, a.role) AS role,
                   COALESCE(t.created_at, a.created_at) AS at,
                   CASE WHEN t.id IS NOT NULL THEN 'window' ELSE 'archive' END AS source
            FROM (SELECT rowid AS id, rank,
                         CASE WHEN length(body) <= ? THEN snippet(turn_fts, 0, '[', ']', ' … ', 12)
                         END AS snip
                  FROM turn_fts WHERE turn_fts MATCH ? AND rowid >= ?
                  ORDER BY rank LIMIT ?) AS f
            LEFT JOIN turns t ON t.id = f.id
            LEFT JOIN archive a ON a.id = f.id
            WHERE t.id IS NOT NULL OR a.id IS NOT NULL
            ORDER BY f.rank"""
        hits = []
        for r in self.conn.execute(sql, (SNIPPET_FTS_MAX_CHARS, match, oldest, limit)).fetchall():
            snip = r["snip"]
            if snip is None:
                body = self.conn.execute("SELECT body FROM turn_fts WHERE rowid = ?",
                                         (r["id"],)).fetchone()
                # None: purged by another process since the ranking query (its own snapshot).
                snip = bounded_snippet(body[0], query) if body else ""
            hits.append(SearchHit(r["source"], r["id"], r["role"], r["at"], _cap_snippet(snip)))
        return hits

    # --- token estimate calibration ---------------------------------------------------------------
    def _load_estimator(self) -> TokenEstimator:
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'estimator'").fetchone()
        if row:
            try:
                data = json.loads(row[0])
                return TokenEstimator(float(data["chars_per_token"]), int(data["samples"]))
            except (ValueError, TypeError, KeyError):
                raise StoreDamaged(damaged_message(
                    self.path, "the token estimate in table meta cannot be read")) from None
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
                return self._turn(row), where
        return None

    def iter_all(self) -> Iterator[Turn]:
        """Every turn, archive and window, in id order (for rebuilding the index)."""
        for row in self.conn.execute(
                f"SELECT {_COLUMNS} FROM archive UNION ALL SELECT {_COLUMNS} FROM turns ORDER BY id"):
            yield self._turn(row)

    def iter_archive(self) -> Iterator[Turn]:
        for row in self.conn.execute(f"SELECT {_COLUMNS} FROM archive ORDER BY id"):
            yield self._turn(row)


SNIPPET_FTS_MAX_CHARS = 16_000  # longest text FTS5's snippet() is asked for (about 1 ms)
SNIPPET_SLICE_CHARS = 2_000     # a slice of a long text that bounded_snippet hands to FTS5
SNIPPET_CANDIDATES = 32         # places in a long text tried per pass before giving up
SNIPPET_SKIPS = 4_096           # occurrences inside words passed over per word and pass
SNIPPET_MAX_CHARS = 300         # a snippet longer than this (a huge "word") is cut around its match
_snippet_db = threading.local()  # one in-memory FTS5 table per thread for bounded_snippet


def bounded_snippet(body: str, query: str) -> str:
    """A search snippet of a long text, at a cost bounded by slices, not by the text's length.

    The query's words are found as plain lower-case strings at word starts (fast even in 10 MB),
    first as typed and then by their first three letters (so "runs" finds "running", as porter
    stemming does); slices around the first few such places go into a small in-memory FTS5
    table with the store's tokenizer, which decides which slice really matches and highlights
    it just as `search` does for shorter texts. When no slice matches (a word only matched
    through accent folding, say) the snippet is the text's beginning, without highlights.
    """
    words = [w.lower() for w in re.findall(r"\w+", query, flags=re.UNICODE)]
    if not words:
        return _cap_snippet(body[:SNIPPET_SLICE_CHARS])
    lower = body.lower()
    if len(lower) != len(body):  # a few characters lower-case to two: offsets would drift
        lower = body
    quoted = [f'"{w}"' for w in words]
    quoted[-1] += "*"  # as fts_query: the last word is a prefix
    any_word = " OR ".join(quoted)
    for prefixes in (words, [w[:3] for w in words]):
        starts = _word_starts(lower, prefixes, SNIPPET_CANDIDATES)
        if not starts:
            continue
        found = _snippet_of_first_match(body, _slices_around(body, starts), any_word)
        if found is not None:
            return found
    return body[:SNIPPET_MAX_CHARS] + (" … " if len(body) > SNIPPET_MAX_CHARS else "")


def _word_starts(lower: str, prefixes: list[str], most: int) -> list[int]:
    """Offsets (sorted) of up to `most` places where one of `prefixes` starts a word.

    Occurrences inside words are skipped, at most SNIPPET_SKIPS of them per prefix, so a prefix
    that is everywhere but never a word start ("a") costs a bounded number of steps too."""
    found: set[int] = set()
    for prefix in dict.fromkeys(prefixes):
        at, hits, skips = 0, 0, 0
        while hits < most and skips < SNIPPET_SKIPS:
            at = lower.find(prefix, at)
            if at < 0:
                break
            if at == 0 or not lower[at - 1].isalnum():
                found.add(at)
                hits += 1
            else:
                skips += 1
            at += 1
    return sorted(found)[:most]


def _slices_around(body: str, starts: list[int]) -> list[tuple[int, int]]:
    """Non-overlapping (start, end) slices of at most SNIPPET_SLICE_CHARS, each around a match."""
    half = SNIPPET_SLICE_CHARS // 2
    slices: list[tuple[int, int]] = []
    for at in starts:
        if slices and at < slices[-1][1] - 20:
            continue  # already inside the previous slice, with room for the word
        begin = max(0, at - half, slices[-1][1] if slices else 0)
        end = min(len(body), begin + SNIPPET_SLICE_CHARS)
        # Start and end at spaces, so no slice begins or ends with half a word.
        if begin:
            space = body.find(" ", begin, at)
            begin = space + 1 if space >= 0 else at
        if end < len(body):
            space = body.rfind(" ", at, end)
            end = space if space > at else end
        slices.append((begin, end))
    return slices


def _snippet_of_first_match(body: str, slices: list[tuple[int, int]], match: str) -> str | None:
    """FTS5's own snippet of the first slice that matches `match`, marked where it was cut."""
    conn = getattr(_snippet_db, "conn", None)
    if conn is None:
        conn = sqlite3.connect(":memory:", isolation_level=None)
        conn.execute("CREATE VIRTUAL TABLE s USING fts5 (body, tokenize = 'porter unicode61')")
        _snippet_db.conn = conn
    try:
        conn.executemany("INSERT INTO s (rowid, body) VALUES (?, ?)",
                         [(n, body[b:e]) for n, (b, e) in enumerate(slices)])
        row = conn.execute("SELECT rowid, snippet(s, 0, '[', ']', ' … ', 12) FROM s"
                           " WHERE s MATCH ? ORDER BY rowid LIMIT 1", (match,)).fetchone()
    finally:
        conn.execute("DELETE FROM s")
    if row is None:
        return None
    begin, end = slices[row[0]]
    snip: str = row[1]
    if begin and not snip.startswith(" … "):
        snip = " … " + snip
    if end < len(body) and not snip.endswith(" … "):
        snip += " … "
    return snip


def _cap_snippet(snippet: str) -> str:
    """Keep a snippet short even when a single "word" in it is enormous (base64, minified code)."""
    if len(snippet) <= SNIPPET_MAX_CHARS:
        return snippet
    mark = max(snippet.find("["), 0)
    begin = max(0, mark - SNIPPET_MAX_CHARS // 3)
    return ("… " if begin else "") + snippet[begin:begin + SNIPPET_MAX_CHARS] + " …"


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
