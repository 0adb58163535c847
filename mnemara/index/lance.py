"""`MemoryIndex`: every memory atom in one LanceDB table, searched by full text and by vector.

Layout of `<instance>/index/` (0700): the LanceDB database with one table `atoms` (a column per
Atom field plus `search_text`, the full-text entry; `vector`, a fixed-size float32 list, null for
atoms not embedded yet; and the time facts of the atom's text, FACT_COLUMNS, read as it is
written) and `embedder.json`, the embedder name and dim the vectors were built with.

- Embedder changes are detected on open: the vectors of one model are meaningless to another, so
  the index goes full-text only (`needs_reindex` says why) until `rebuild()` rewrites it; atoms
  written meanwhile get no vector rather than a vector of the wrong model.
- Without an embedder, or when it raises `EmbedderUnavailable`, everything works full text only
  and each `SearchResult` says so (`mode="text"`, `note`); such atoms get a null vector and
  `backfill_vectors()` embeds them later (an index built with no embedder at all gains the
  vector column when opened with one).
- Filters are LanceDB expressions with bound literals (`lancedb.expr`), never SQL text built
  from caller strings; kinds are checked against KINDS and timestamps against a strict regex.
- Freshness: rows added since the last `optimize()` are searchable at once (LanceDB scans what
  its FTS and vector indexes do not cover yet), but that scan grows with them, so `upsert` calls
  `optimize()` every `optimize_every` calls (OPTIMIZE_EVERY; 0 leaves it to the caller).
  optimize() compacts, folds new rows into the FTS and vector indexes, drops old versions and
  keeps the indexes a growing table needs (a vector index, a BTree on turn_id: upkeep.py).
- Another process may write the table: the connection re-checks the latest version on every
  read (`read_consistency_interval=0`: ~0.2 ms, more with many old versions, see upkeep.py).

Search: `fusion.py` holds the scoring (signals, weights, neighbour lifting) and its calibration.
LanceDB is imported lazily (about 1.8 s), inside `open`.
"""

from __future__ import annotations

import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Collection, Iterable, Iterator, Sequence, Sized

from ..fsutil import atomic_write_text, ensure_private_dir
from .atoms import KINDS, Atom, Hit
from .embedders import Embedder, EmbedderUnavailable
from .fusion import (DEFAULT, SEARCH_REACH, TIME_FACTS_VERSION, Candidate, Params, TimeFacts,
                     asks_when, context_turns, fuse, lift_neighbours, mark_time, own_match,
                     query_terms, search_text, time_facts, with_search_text)
from .layout import (COLUMNS, FACT_COLUMNS, STALE_FACTS, TABLE, add_fact_columns, create_table,
                     has_facts, read_atoms, read_facts, vector_field)
from .upkeep import VersionClock, keep_indexes

if TYPE_CHECKING:
    import pyarrow as pa

    from .timephrase import TimeRange

META_FILE = "embedder.json"
EMBED_BATCH = 64
EMBED_RETRY_SECONDS = 60.0  # after the embedder failed, full text only for this long
WRITE_BATCH = 2_000
OPTIMIZE_EVERY = 8  # upserts between optimize() calls (upkeep.py: why not more often)
ISO_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


@dataclass
class SearchResult:
    hits: list[Hit]
    mode: str                    # "hybrid" | "text"
    note: str | None = None      # why the search was text only, when it was
    time_range: "TimeRange | None" = None


def iso_utc(value: str | datetime) -> str:
    """A validated "YYYY-MM-DDTHH:MM:SSZ" string; raises ValueError on anything else."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if not isinstance(value, str) or not ISO_UTC.fullmatch(value):
        raise ValueError(f"not an ISO-8601 UTC timestamp: {value!r}")
    return value


class MemoryIndex:
    def __init__(self, directory: Path, db: Any, table: Any, embedder: Embedder | None,
                 needs_reindex: str | None, params: Params, optimize_every: int) -> None:
        self.directory = directory
        self._db = db
        self._table = table
        self.embedder = embedder
        self.needs_reindex = needs_reindex
        self.params = params
        self.optimize_every = optimize_every
        self._writes = 0
        self._versions = VersionClock()
        self._embed_error: str | None = None
        self._embed_failed_at = 0.0
        self._executor: ThreadPoolExecutor | None = None

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    def open(cls, directory: Path, embedder: Embedder | None, *, params: Params = DEFAULT,
             optimize_every: int = OPTIMIZE_EVERY) -> "MemoryIndex":
        lancedb = import_lancedb()  # lazy: ~1.8 s

        ensure_private_dir(Path(directory))
        db = lancedb.connect(str(directory), read_consistency_interval=timedelta(0))
        meta = _read_meta(directory)
        needs_reindex = None
        embed_error = None
        if TABLE not in db.list_tables().tables:
            # A server embedder learns its dimension by asking; when it is down the table starts
            # full text only and gets its vector column (and vectors) once it answers.
            dim, embed_error = _dim_or_error(embedder)
            table = create_table(db, embedder if dim else None)
            _write_meta(directory, embedder if dim else None)
        else:
            table = db.open_table(TABLE)
            add_fact_columns(table)
            has_vectors = "vector" in table.schema.names
            built, dim = meta.get("embedder"), meta.get("dim")
            if embedder is not None and not has_vectors:
                # Built full text only: add the column; backfill_vectors() fills it.
                new_dim, embed_error = _dim_or_error(embedder)
                if new_dim:
                    table.add_columns(vector_field(new_dim))
                    _write_meta(directory, embedder)
            elif embedder is not None and built != embedder.name:
                # Compared by name, so a server that is down is not asked for its dimension.
                built = built or "an unrecorded embedder"
                needs_reindex = (f"the index was built with {built} (dim {dim}); the configured "
                                 f"embedder is {embedder.name}: run `mnemara reindex`")
        index = cls(Path(directory), db, table, embedder, needs_reindex, params, optimize_every)
        if embed_error:
            index._embed_failed(embed_error)
        return index

    # -- writing -----------------------------------------------------------------------------

    def upsert(self, atoms: Sequence[Atom]) -> None:
        """Insert or update by id: one LanceDB version per call.

        A turn's full-text entry includes its neighbouring turns (see `search_text`), so the
        stored turns next to the new ones are rewritten in the same write (their vectors kept).
        """
        atoms = list(atoms)
        if not atoms:
            return
        vectors = self._embed_or_none([a.text for a in atoms])
        rows: list[tuple[Atom, Any]] = list(zip(atoms, vectors if vectors is not None else [None] * len(atoms)))
        batch_turns = {a.turn_id: a for a in atoms if a.kind == "turn" and a.turn_id is not None}
        by_turn: dict[int, Atom] = {}
        if batch_turns:
            # stored turns whose entry changes (within SEARCH_REACH) and the turns they need
            reach = range(-2 * SEARCH_REACH, 2 * SEARCH_REACH + 1)
            near = {t + d for t in batch_turns for d in reach} - batch_turns.keys()
            stored = self._stored_turns(sorted(near))
            by_turn = {tid: a for tid, (a, _) in stored.items()} | batch_turns
            batch_ids = {a.id for a in atoms}
            touched = sorted({t + d for t in batch_turns for d in range(-SEARCH_REACH, SEARCH_REACH + 1)}
                             & stored.keys())
            rows += [stored[t] for t in touched if stored[t][0].id not in batch_ids]
        batch = self._arrow([a for a, _ in rows], [v for _, v in rows],
                            [search_text(a, by_turn) for a, _ in rows])
        self._merge(batch)
        self._writes += 1
        if self.optimize_every and self._writes % self.optimize_every == 0:
            self.optimize()

    def delete(self, ids: Collection[str]) -> None:
        if ids:
            self._table.delete(_col("id").isin(list(ids)))

    def set_superseded(self, ids: Collection[str], flag: bool = True) -> None:
        if ids:
            self._table.update(where=_col("id").isin(list(ids)), values={"superseded": bool(flag)})

    def relocate(self, places: dict[str, tuple[str, int]]) -> list[str]:
        """Record that atoms moved (notes replay archived): their new `source` and `line`, in one
        write, vectors and full-text entries kept (nothing is embedded again). Returns the ids
        found and moved."""
        if not places:
            return []
        found, vectors, texts = self._whole_rows(_col("id").isin(list(places)))
        atoms = [Atom(**{**a.__dict__, "source": places[a.id][0], "line": places[a.id][1]})
                 for a in found]
        if not atoms:
            return []
        self._merge(self._arrow(atoms, vectors, texts))
        return [a.id for a in atoms]

    def get(self, ids: Sequence[str]) -> list[Atom]:
        """The atoms with these ids, in the order asked (unknown ids skipped)."""
        if not ids:
            return []
        rows = self._table.search().where(_col("id").isin(list(ids))).select(list(COLUMNS)).to_arrow()
        found = {a.id: a for a in read_atoms(rows)}
        return [found[i] for i in ids if i in found]

    def count(self) -> int:
        return self._table.count_rows()

    def rebuild(self, atoms: Iterable[Atom], progress: Callable[[int, int], None] | None = None) -> None:
        """Drop the table and write `atoms` again with the configured embedder (`mnemara
        reindex`), streaming them in batches (turns in turn order, so each meets its
        neighbours). `progress(done, total)` after each batch; total is 0 when `atoms` has no
        len()."""
        total = len(atoms) if isinstance(atoms, Sized) else 0
        dim, error = _dim_or_error(self.embedder)
        if error:  # before anything is dropped: a rebuild needs a working embedder
            raise EmbedderUnavailable(error)
        self._db.drop_table(TABLE)
        self._table = create_table(self._db, self.embedder)
        _write_meta(self.directory, self.embedder)
        self.needs_reindex = None
        self._embed_error = None
        done = 0
        for chunk in _chunks(with_search_text(atoms), WRITE_BATCH):
            vectors = self._embed_or_none([a.text for a, _ in chunk])
            self._table.add(self._arrow([a for a, _ in chunk], vectors, [t for _, t in chunk]),
                            on_bad_vectors="null")
            done += len(chunk)
            if progress:
                progress(done, total)
        self.optimize()

    def backfill_vectors(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Embed the atoms stored without a vector; returns how many were embedded."""
        if self.embedder is None or self.needs_reindex:
            return 0
        rows = (self._table.search().where("vector IS NULL").select([*COLUMNS, "search_text"])
                .limit(None).to_arrow())
        pending = list(zip(read_atoms(rows), rows.column("search_text").to_pylist()))
        done = 0
        for chunk in _chunks(pending, WRITE_BATCH):
            vectors = self._embed_or_none([a.text for a, _ in chunk])
            if vectors is None:
                break
            batch = self._arrow([a for a, _ in chunk], vectors, [t for _, t in chunk])
            self._merge(batch)
            done += len(chunk)
            if progress:
                progress(done, len(pending))
        return done

    def optimize(self) -> None:
        """Compact fragments, bring the FTS and vector indexes up to date, drop old versions,
        and keep the indexes a growing table needs (see upkeep.py). Before that, up to
        WRITE_BATCH rows whose time facts are missing or were read by an older grammar are
        read again (an index from before they were stored: a few optimizes bring it up to
        date; searches read those rows' text meanwhile)."""
        self.refresh_time_facts(WRITE_BATCH)
        self._table.optimize(cleanup_older_than=self._versions.cleanup_older_than(self._table.version))
        keep_indexes(self._table, self.count())

    def refresh_time_facts(self, limit: int | None = None) -> int:
        """Write the current time facts of up to `limit` rows (all: None) that lack them;
        returns how many were rewritten (vectors and full-text entries kept)."""
        if not has_facts(self._table.schema):
            return 0
        atoms, vectors, texts = self._whole_rows(STALE_FACTS, limit)
        if atoms:
            self._merge(self._arrow(atoms, vectors, texts))
        return len(atoms)

    # -- searching ---------------------------------------------------------------------------

    def search(self, query: str, *, k: int = 10, kinds: Sequence[str] | None = None,
               since: str | None = None, until: str | None = None,
               exclude_ids: Collection[str] = (), include_superseded: bool = False,
               now: datetime | None = None, params: Params | None = None) -> SearchResult:
        """Hybrid recall: BM25 and vector candidates (a pool several times k), fused, lifted by
        neighbouring turns, deduplicated, with context turns; see `fusion.py` for the scoring."""
        p = params or self.params
        query = query if isinstance(query, str) else ""
        since = None if since is None else iso_utc(since)
        until = None if until is None else iso_utc(until)
        time_range = _resolve_time(query, now)
        base = self._filter(kinds, since, until, include_superseded)
        exclude = set(exclude_ids)
        # excluded atoms (the window) may fill the top of the pool: widen it by as many, capped
        pool = max(p.pool, 5 * k) + min(len(exclude), 200)

        in_range, lo, hi = None, "", ""
        if time_range is not None:
            lo, hi = iso_utc(time_range.since), iso_utc(time_range.until)
            in_range = (_col("created_at") >= _lit(lo)) & (_col("created_at") < _lit(hi))
        use_filter = in_range is not None and p.time_mode == "filter"
        restrictive = use_filter or kinds is not None or since is not None or until is not None
        with_facts = time_range is not None or asks_when(query)  # only mark_time reads them
        cands, mode, note = self._candidates(query, base & in_range if use_filter else base, pool,
                                             restrictive, not include_superseded, with_facts)
        if use_filter and not cands:  # an empty range: boost instead
            restrictive = kinds is not None or since is not None or until is not None
            cands, mode, note = self._candidates(query, base, pool, restrictive, not include_superseded,
                                                 with_facts)
        cands = {i: c for i, c in cands.items() if i not in exclude}
        mark_time(cands.values(), query, time_range, lo, hi, _resolve_time)
        fuse(cands.values(), p, hybrid=mode == "hybrid")

        by_turn = self._turn_neighbours(cands.values(), p)
        eligible = {tid: a for tid, a in by_turn.items()
                    if a.id not in exclude and self._passes(a, kinds, since, until, include_superseded)}
        lift_neighbours(cands, eligible, p)
        hits = self._assemble(cands, by_turn, k, p)
        return SearchResult(hits, mode, note, time_range)

    def _candidates(self, query: str, where: Any, pool: int, restrictive: bool = True,
                    drop_superseded: bool = True,
                    with_facts: bool = True) -> tuple[dict[str, Candidate], str, str | None]:
        """Raw BM25 and cosine candidates, with their stored time facts if `with_facts`. The
        full-text query runs on a worker thread while this one runs the vector search (LanceDB
        releases the GIL)."""
        columns = [*COLUMNS, *(FACT_COLUMNS if with_facts and has_facts(self._table.schema) else ())]
        terms = query_terms(query)
        # embed first: the model already uses both cores, running the full-text query beside
        # it only slowed both (measured); the two LanceDB queries do overlap well
        vector = self._query_vector(query) if query.strip() else None
        fts = (self._pool().submit(self._fts, " ".join(terms), where if restrictive else None, pool,
                                   columns) if terms else None)
        cands: dict[str, Candidate] = {}
        mode, note = "hybrid", None
        if vector is None:
            mode, note = "text", self._why_text_only()
        else:
            search = self._table.search(vector, vector_column_name="vector").distance_type("cosine")
            if restrictive:
                search = search.where(where, prefilter=True)
            # Unrestricted, the ANN index answers alone (a prefilter costs ~60 ms at 100k rows);
            # the only default filter, superseded, is rare and applied here in Python.
            rows = search.select([*columns, "_distance"]).limit(pool).to_arrow()
            found = zip(read_atoms(rows), read_facts(rows), rows.column("_distance").to_pylist())
            for atom, facts, dist in found:
                if restrictive or not (drop_superseded and atom.superseded):
                    cands[atom.id] = Candidate(atom, {"cosine": 1.0 - dist}, facts=facts)
        for atom, facts, score in (fts.result() if fts else []):
            if not restrictive and drop_superseded and atom.superseded:
                continue
            c = cands.setdefault(atom.id, Candidate(atom, facts=facts))
            c.raw["bm25"] = score
            c.raw["own"] = own_match(terms, atom.text)
        return cands, mode, note

    def _fts(self, text: str, where: Any, pool: int,
             columns: Sequence[str]) -> list[tuple[Atom, TimeFacts | None, float]]:
        from lancedb.query import MatchQuery
        search = self._table.search(MatchQuery(text, "search_text"), query_type="fts")
        if where is not None:
            search = search.where(where, prefilter=True)
        rows = search.select([*columns, "_score"]).limit(pool).to_arrow()  # matched on search_text
        return list(zip(read_atoms(rows), read_facts(rows), rows.column("_score").to_pylist()))

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mnemara-fts")
        return self._executor

    def text_only_reason(self) -> str | None:
        """Why searches are full-text only right now (no embedder, a stale index, the embedder
        failing at its last call), or None when they are hybrid."""
        return self._why_text_only()

    def _why_text_only(self) -> str | None:
        if self.needs_reindex:
            return self.needs_reindex
        if self.embedder is None:
            return "no embedder configured (rag_embedder is none): full-text search only"
        if self._embed_error:
            return f"embedder unavailable ({self._embed_error}): full-text search only"
        return None  # an empty query: nothing to embed, nothing to say

    def _query_vector(self, query: str) -> list[float] | None:
        vectors = self._embed_or_none([query], for_query=True)
        return None if vectors is None else vectors[0].tolist()

    def _turn_neighbours(self, cands: Iterable[Candidate], p: Params) -> dict[int, Atom]:
        """Turns within reach of the turn candidates, by turn id (one query)."""
        reach = max(p.neighbour_reach, p.context_before, p.context_after)
        wanted: set[int] = set()
        # only strong candidates lift or carry neighbours: the tail of the pool never reaches k
        cands = list(cands)
        for c in sorted(cands, key=lambda c: c.score, reverse=True)[:p.lift_top]:
            if c.atom.kind == "turn" and c.atom.turn_id is not None:
                wanted.update(range(c.atom.turn_id - reach, c.atom.turn_id + reach + 1))
        if not wanted or reach == 0:
            return {}
        known = {c.atom.turn_id: c.atom for c in cands if c.atom.kind == "turn" and c.atom.turn_id in wanted}
        missing = sorted(wanted - known.keys())
        if missing:
            # only turns have a turn_id; BTree-indexed once the table is large (optimize)
            rows = (self._table.search().where(_col("turn_id").isin(missing))
                    .select(list(COLUMNS)).limit(None).to_arrow())
            known.update((a.turn_id, a) for a in read_atoms(rows) if a.turn_id is not None)
        return known

    def _assemble(self, cands: dict[str, Candidate], by_turn: dict[int, Atom], k: int, p: Params) -> list[Hit]:
        # newer first among equal scores: ISO-8601 UTC strings sort chronologically
        ranked = sorted(cands.values(), key=lambda c: (round(c.score, 6), c.atom.created_at), reverse=True)
        hits: list[Hit] = []
        seen_text: set[str] = set()
        surfaced: set[str] = set()
        for c in ranked:
            key = " ".join(c.atom.text.split()).lower()
            if key in seen_text or c.atom.id in surfaced or c.score <= 0:
                continue
            seen_text.add(key)
            context = context_turns(c.atom, by_turn, p)
            surfaced.update(a.id for a in context or [c.atom])
            signals = dict(c.signals)
            if c.raw.get("own"):
                signals["words"] = c.raw["own"]  # share of the query's words in the atom itself
            hits.append(Hit(c.atom, min(1.0, c.score), signals, context))
            if len(hits) >= k:
                break
        return hits

    # -- helpers -----------------------------------------------------------------------------

    def _filter(self, kinds: Sequence[str] | None, since: str | None, until: str | None,
                include_superseded: bool) -> Any:
        where = _lit(True) if include_superseded else (_col("superseded") == _lit(False))
        if kinds is not None:
            bad = [k for k in kinds if k not in KINDS]
            if bad:
                raise ValueError(f"unknown kind(s) {bad}; kinds are {', '.join(KINDS)}")
            where = where & _col("kind").isin(list(kinds))
        if since is not None:
            where = where & (_col("created_at") >= _lit(iso_utc(since)))
        if until is not None:
            where = where & (_col("created_at") < _lit(iso_utc(until)))
        return where

    @staticmethod
    def _passes(a: Atom, kinds: Sequence[str] | None, since: str | None, until: str | None,
                include_superseded: bool) -> bool:
        return ((include_superseded or not a.superseded) and (kinds is None or a.kind in kinds)
                and (since is None or a.created_at >= since) and (until is None or a.created_at < until))

    def _embed_or_none(self, texts: list[str], for_query: bool = False) -> Any:
        """Vectors for `texts`, or None when they cannot be computed or must not be stored.

        After a failure the embedder is left alone for EMBED_RETRY_SECONDS: a hung server would
        otherwise cost its timeout on every write and every recall."""
        if self.embedder is None or self.needs_reindex or "vector" not in self._table.schema.names:
            return None
        if self._embed_error and time.monotonic() - self._embed_failed_at < EMBED_RETRY_SECONDS:
            return None
        import numpy as np
        try:
            parts = [self.embedder.embed(texts[i:i + EMBED_BATCH]) for i in range(0, len(texts), EMBED_BATCH)]
        except EmbedderUnavailable as e:
            self._embed_failed(str(e).splitlines()[0] if str(e) else type(e).__name__)
            return None
        self._embed_error = None
        return np.vstack(parts).astype(np.float32) if parts else None

    def _embed_failed(self, error: str) -> None:
        self._embed_error = error
        self._embed_failed_at = time.monotonic()

    def _arrow(self, atoms: Sequence[Atom], vectors: Any, texts: Sequence[str]) -> "pa.Table":
        """Rows for `atoms`; `vectors` is None or one vector (or None) per atom; `texts` are
        the full-text entries."""
        import numpy as np
        import pyarrow as pa
        schema = self._table.schema
        cols: dict[str, Any] = {name: [getattr(a, name) for a in atoms] for name in COLUMNS}
        cols["line"] = [int(a.line or 0) for a in atoms]
        cols["superseded"] = [bool(a.superseded) for a in atoms]
        cols["search_text"] = list(texts)
        if has_facts(schema):
            facts = [time_facts(a.text, a.created_at, _resolve_time) for a in atoms]
            cols["told_since"] = [f.told[0] if f.told else None for f in facts]
            cols["told_until"] = [f.told[1] if f.told else None for f in facts]
            cols["states_time"] = [f.states for f in facts]
            cols["time_facts"] = [TIME_FACTS_VERSION] * len(atoms)
        if "vector" in schema.names:
            dim = schema.field("vector").type.list_size
            flat = np.zeros((len(atoms), dim), dtype=np.float32)
            missing = np.ones(len(atoms), dtype=bool)
            for i, v in enumerate(vectors if vectors is not None else []):
                if v is not None and len(v) == dim:  # another model's vector is never stored
                    flat[i], missing[i] = v, False
            cols["vector"] = pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel()), dim,
                                                               mask=pa.array(missing))
        return pa.table(cols, schema=schema)

    def _merge(self, batch: "pa.Table") -> None:
        """Insert or update `batch`'s rows by id: one version."""
        (self._table.merge_insert("id").when_matched_update_all()
         .when_not_matched_insert_all().execute(batch, on_bad_vectors="null"))

    def _whole_rows(self, where: Any, limit: int | None = None
                    ) -> tuple[list[Atom], list[Any] | None, list[str]]:
        """The atoms of the rows matching `where`, with their vectors (None: the table has no
        vector column) and full-text entries, to be written back with `_arrow` as they are."""
        with_vec = "vector" in self._table.schema.names
        rows = (self._table.search().where(where)
                .select([*COLUMNS, "search_text", *(["vector"] if with_vec else [])])
                .limit(limit).to_arrow())
        vectors = rows.column("vector").to_pylist() if with_vec else None
        return read_atoms(rows), vectors, rows.column("search_text").to_pylist()

    def _stored_turns(self, turn_ids: list[int]) -> dict[int, tuple[Atom, Any]]:
        """Stored turns by turn id, each with its vector (or None)."""
        if not turn_ids:
            return {}
        with_vec = "vector" in self._table.schema.names
        rows = (self._table.search().where(_col("turn_id").isin(turn_ids))
                .select([*COLUMNS, *(["vector"] if with_vec else [])]).limit(None).to_arrow())
        vecs = rows.column("vector").to_pylist() if with_vec else [None] * rows.num_rows
        return {a.turn_id: (a, v) for a, v in zip(read_atoms(rows), vecs) if a.turn_id is not None}


# -- module helpers ------------------------------------------------------------------------------

def import_lancedb() -> Any:
    """lancedb, its Rust log kept off the terminal: its warnings go straight to stderr, which
    would land on the chat's screen. LANCEDB_LOG is lancedb's switch (LANCE_LOG, pylance's, does
    nothing here); the user's own setting wins."""
    os.environ.setdefault("LANCEDB_LOG", "error")
    import lancedb
    return lancedb


def _col(name: str) -> Any:
    from lancedb.expr import col
    return col(name)


def _lit(value: Any) -> Any:
    from lancedb.expr import lit
    return lit(value)


def _dim_or_error(embedder: Embedder | None) -> tuple[int | None, str | None]:
    """The embedder's dimension, or (None, why) when it cannot say (a server that is down)."""
    if embedder is None:
        return None, None
    try:
        return embedder.dim, None
    except EmbedderUnavailable as e:
        return None, str(e).splitlines()[0] if str(e) else type(e).__name__


def _read_meta(directory: Path) -> dict[str, Any]:
    try:
        return json.loads((Path(directory) / META_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _write_meta(directory: Path, embedder: Embedder | None) -> None:
    meta = {"embedder": embedder.name if embedder else None, "dim": embedder.dim if embedder else None}
    atomic_write_text(Path(directory) / META_FILE, json.dumps(meta) + "\n")


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _resolve_time(query: str, now: datetime | None) -> "TimeRange | None":
    try:
        from .timephrase import resolve_time
    except ImportError:  # the resolver is optional: without it no time boost
        return None
    return resolve_time(query, now or datetime.now(timezone.utc))

