"""`MemoryIndex`: every memory atom in one LanceDB table, searched by full text and by vector.

Layout of `<instance>/index/` (0700): the LanceDB database with one table `atoms` (a column per
Atom field plus `vector`, a fixed-size float32 list, null for atoms not embedded yet) and
`embedder.json`, the embedder name and dim the vectors were built with.

- Embedder changes are detected on open: the vectors of one model are meaningless to another, so
  the index goes full-text only (`needs_reindex` says why) until `rebuild()` rewrites it.
- Without an embedder, or when it raises `EmbedderUnavailable`, everything works full text only
  and each `SearchResult` says so; such atoms get a null vector and `backfill_vectors()` embeds
  them later.
- Filters are LanceDB expressions with bound literals (`lancedb.expr`), never SQL text built
  from caller strings.
- Maintenance: each `upsert` is one LanceDB version (a new fragment). New rows are searchable
  at once (LanceDB scans rows its FTS and vector indexes do not cover yet), but the scan grows,
  so `optimize()` (compaction, index refresh, the vector index once the table holds
  VECTOR_INDEX_MIN_ROWS rows) runs from `upsert` every `optimize_every` calls; callers that
  batch differently can call it themselves.
- Another process may write the table: the connection re-checks the latest version on every
  read (`read_consistency_interval=0`, a directory listing, ~0.2 ms).

LanceDB is imported lazily (about 1.8 s), inside `open`.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Collection, Iterable, Iterator, Sequence, Sized

from ..fsutil import atomic_write_text, ensure_private_dir
from .atoms import KINDS, Atom, Hit
from .embedders import Embedder, EmbedderUnavailable
from .fusion import DEFAULT, Candidate, Params, fuse, lift_neighbours, query_terms

if TYPE_CHECKING:
    import pyarrow as pa

    from .timephrase import TimeRange

TABLE = "atoms"
META_FILE = "embedder.json"
EMBED_BATCH = 64
WRITE_BATCH = 2_000
# From this many rows optimize() builds an IVF_HNSW_SQ (cosine) index: a flat scan of 384-dim
# vectors costs ~10-15 ms at 10k rows and ~90 ms at 100k, the index ~4-6 ms at 100k. Building it
# takes a few seconds at 5k rows (~35 s at 100k, once; later optimize() calls extend it).
VECTOR_INDEX_MIN_ROWS = 5_000
OPTIMIZE_EVERY = 64
ISO_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
COLUMNS = ("id", "kind", "source", "line", "turn_id", "role", "category", "created_at",
           "superseded", "text")


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
        self._embed_error: str | None = None
        self._executor: ThreadPoolExecutor | None = None

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    def open(cls, directory: Path, embedder: Embedder | None, *, params: Params = DEFAULT,
             optimize_every: int = OPTIMIZE_EVERY) -> "MemoryIndex":
        import lancedb  # lazy: ~1.8 s

        ensure_private_dir(Path(directory))
        db = lancedb.connect(str(directory), read_consistency_interval=timedelta(0))
        meta = _read_meta(directory)
        needs_reindex = None
        if TABLE not in db.list_tables().tables:
            table = _create_table(db, embedder)
            _write_meta(directory, embedder)
        else:
            table = db.open_table(TABLE)
            has_vectors = "vector" in table.schema.names
            built, dim = meta.get("embedder"), meta.get("dim")
            if embedder is not None and not has_vectors:
                # Built full text only: add the column; backfill_vectors() fills it.
                table.add_columns(_vector_field(embedder.dim))
                _write_meta(directory, embedder)
            elif embedder is not None and (built != embedder.name or dim != embedder.dim):
                built = built or "an unrecorded embedder"
                needs_reindex = (f"the index was built with {built} (dim {dim}); the configured "
                                 f"embedder is {embedder.name} (dim {embedder.dim}): run `mnemara reindex`")
        return cls(Path(directory), db, table, embedder, needs_reindex, params, optimize_every)

    # -- writing -----------------------------------------------------------------------------

    def upsert(self, atoms: Sequence[Atom]) -> None:
        """Insert or update by id: one LanceDB version per call."""
        if not atoms:
            return
        batch = self._arrow(atoms, self._embed_or_none([a.text for a in atoms]))
        (self._table.merge_insert("id").when_matched_update_all()
         .when_not_matched_insert_all().execute(batch, on_bad_vectors="null"))
        self._writes += 1
        if self.optimize_every and self._writes % self.optimize_every == 0:
            self.optimize()

    def delete(self, ids: Collection[str]) -> None:
        if ids:
            self._table.delete(_col("id").isin(list(ids)))

    def set_superseded(self, ids: Collection[str], flag: bool = True) -> None:
        if ids:
            self._table.update(where=_col("id").isin(list(ids)), values={"superseded": bool(flag)})

    def get(self, ids: Sequence[str]) -> list[Atom]:
        """The atoms with these ids, in the order asked (unknown ids skipped)."""
        if not ids:
            return []
        rows = self._table.search().where(_col("id").isin(list(ids))).select(list(COLUMNS)).to_arrow()
        found = {a.id: a for a in _atoms(rows)}
        return [found[i] for i in ids if i in found]

    def count(self) -> int:
        return self._table.count_rows()

    def rebuild(self, atoms: Iterable[Atom], progress: Callable[[int, int], None] | None = None) -> None:
        """Drop the table and write `atoms` again with the configured embedder (`mnemara
        reindex`), streaming them in batches. `progress(done, total)` after each batch; total is
        0 when `atoms` has no len()."""
        total = len(atoms) if isinstance(atoms, Sized) else 0
        self._db.drop_table(TABLE)
        self._table = _create_table(self._db, self.embedder)
        _write_meta(self.directory, self.embedder)
        self.needs_reindex = None
        self._embed_error = None
        done = 0
        for chunk in _chunks(atoms, WRITE_BATCH):
            self._table.add(self._arrow(chunk, self._embed_or_none([a.text for a in chunk])), on_bad_vectors="null")
            done += len(chunk)
            if progress:
                progress(done, total)
        self.optimize()

    def backfill_vectors(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Embed the atoms stored without a vector; returns how many were embedded."""
        if self.embedder is None or self.needs_reindex:
            return 0
        rows = (self._table.search().where("vector IS NULL").select(list(COLUMNS))
                .limit(None).to_arrow())
        pending = _atoms(rows)
        done = 0
        for chunk in _chunks(pending, WRITE_BATCH):
            vectors = self._embed_or_none([a.text for a in chunk])
            if vectors is None:
                break
            (self._table.merge_insert("id").when_matched_update_all()
             .when_not_matched_insert_all().execute(self._arrow(chunk, vectors), on_bad_vectors="null"))
            done += len(chunk)
            if progress:
                progress(done, len(pending))
        return done

    def optimize(self) -> None:
        """Compact fragments, bring the FTS and vector indexes up to date, and create the vector
        index once the table is large enough to need one."""
        self._table.optimize(cleanup_older_than=timedelta(hours=1))
        if "vector" not in self._table.schema.names:
            return
        has_vector_index = any(i.columns == ["vector"] for i in self._table.list_indices())
        if not has_vector_index and self.count() >= VECTOR_INDEX_MIN_ROWS:
            self._table.create_index(metric="cosine", vector_column_name="vector",
                                     index_type="IVF_HNSW_SQ")

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

        in_range = None
        if time_range is not None:
            lo, hi = iso_utc(time_range.since), iso_utc(time_range.until)
            in_range = (_col("created_at") >= _lit(lo)) & (_col("created_at") < _lit(hi))
        use_filter = in_range is not None and p.time_mode == "filter"
        restrictive = use_filter or kinds is not None or since is not None or until is not None
        cands, mode, note = self._candidates(query, base & in_range if use_filter else base, pool,
                                             restrictive, not include_superseded)
        if use_filter and not cands:  # an empty range: boost instead
            restrictive = kinds is not None or since is not None or until is not None
            cands, mode, note = self._candidates(query, base, pool, restrictive, not include_superseded)
        cands = {i: c for i, c in cands.items() if i not in exclude}
        if time_range is not None:
            for c in cands.values():
                if lo <= c.atom.created_at < hi:
                    c.raw["time"] = 1.0
        fuse(cands.values(), p, hybrid=mode == "hybrid")

        by_turn = self._turn_neighbours(cands.values(), p)
        eligible = {tid: a for tid, a in by_turn.items()
                    if a.id not in exclude and self._passes(a, kinds, since, until, include_superseded)}
        lift_neighbours(cands, eligible, p)
        hits = self._assemble(cands, by_turn, k, p)
        return SearchResult(hits, mode, note, time_range)

    def _candidates(self, query: str, where: Any, pool: int, restrictive: bool = True,
                    drop_superseded: bool = True) -> tuple[dict[str, Candidate], str, str | None]:
        """Raw BM25 and cosine candidates. The full-text query runs on a worker thread while
        this one runs the vector search (LanceDB releases the GIL)."""
        terms = query_terms(query)
        # embed first: the model already uses both cores, running the full-text query beside
        # it only slowed both (measured); the two LanceDB queries do overlap well
        vector = self._query_vector(query) if query.strip() else None
        fts = self._pool().submit(self._fts, " ".join(terms), where, pool) if terms else None
        cands: dict[str, Candidate] = {}
        mode, note = "hybrid", None
        if vector is None:
            mode, note = "text", self._why_text_only()
        else:
            search = self._table.search(vector, vector_column_name="vector").distance_type("cosine")
            if restrictive:
                search = search.where(where, prefilter=True)
            # Unrestricted, the ANN index answers alone (a prefilter costs ~60 ms at 100k rows);
            # the only default filter, superseded, is rare and applied below from a larger pool.
            rows = search.select([*COLUMNS, "_distance"]).limit(pool if restrictive else pool * 2).to_arrow()
            for atom, dist in zip(_atoms(rows), rows.column("_distance").to_pylist()):
                if restrictive or not (drop_superseded and atom.superseded):
                    cands[atom.id] = Candidate(atom, {"cosine": 1.0 - dist})
        for atom, score in (fts.result() if fts else []):
            c = cands.setdefault(atom.id, Candidate(atom))
            c.raw["bm25"] = score
        return cands, mode, note

    def _fts(self, text: str, where: Any, pool: int) -> list[tuple[Atom, float]]:
        from lancedb.query import MatchQuery
        rows = (self._table.search(MatchQuery(text, "text"), query_type="fts")
                .where(where, prefilter=True).select([*COLUMNS, "_score"]).limit(pool).to_arrow())
        return list(zip(_atoms(rows), rows.column("_score").to_pylist()))

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mnemara-fts")
        return self._executor

    def _why_text_only(self) -> str | None:
        if self.needs_reindex:
            return self.needs_reindex
        if self.embedder is None:
            return "no embedder configured: full-text search only"
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
            rows = (self._table.search().where((_col("kind") == _lit("turn")) & _col("turn_id").isin(missing))
                    .select(list(COLUMNS)).limit(None).to_arrow())
            known.update((a.turn_id, a) for a in _atoms(rows) if a.turn_id is not None)
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
            context = _context(c.atom, by_turn, p)
            surfaced.update(a.id for a in context or [c.atom])
            hits.append(Hit(c.atom, min(1.0, c.score), dict(c.signals), context))
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
        """Vectors for `texts`, or None when they cannot be computed or must not be stored."""
        if self.embedder is None or self.needs_reindex:
            return None
        import numpy as np
        try:
            parts = [self.embedder.embed(texts[i:i + EMBED_BATCH]) for i in range(0, len(texts), EMBED_BATCH)]
        except EmbedderUnavailable as e:
            self._embed_error = str(e).splitlines()[0] if str(e) else type(e).__name__
            return None
        self._embed_error = None
        return np.vstack(parts).astype(np.float32) if parts else None

    def _arrow(self, atoms: Sequence[Atom], vectors: Any) -> "pa.Table":
        import pyarrow as pa
        schema = self._table.schema
        cols: dict[str, Any] = {name: [getattr(a, name) for a in atoms] for name in COLUMNS}
        cols["line"] = [int(a.line or 0) for a in atoms]
        cols["superseded"] = [bool(a.superseded) for a in atoms]
        if "vector" in schema.names:
            dim = schema.field("vector").type.list_size
            if vectors is None or vectors.shape[1] != dim:
                cols["vector"] = pa.nulls(len(atoms), type=schema.field("vector").type)
            else:
                cols["vector"] = pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), dim)
        return pa.table(cols, schema=schema)


# -- module helpers ------------------------------------------------------------------------------

def _col(name: str) -> Any:
    from lancedb.expr import col
    return col(name)


def _lit(value: Any) -> Any:
    from lancedb.expr import lit
    return lit(value)


def _vector_field(dim: int) -> "pa.Field":
    import pyarrow as pa
    return pa.field("vector", pa.list_(pa.float32(), dim))


def _create_table(db: Any, embedder: Embedder | None) -> Any:
    import pyarrow as pa
    from lancedb.index import FTS

    fields = [pa.field("id", pa.string()), pa.field("kind", pa.string()), pa.field("source", pa.string()),
              pa.field("line", pa.int64()), pa.field("turn_id", pa.int64()), pa.field("role", pa.string()),
              pa.field("category", pa.string()), pa.field("created_at", pa.string()),
              pa.field("superseded", pa.bool_()), pa.field("text", pa.string())]
    if embedder is not None:
        fields.append(_vector_field(embedder.dim))
    table = db.create_table(TABLE, schema=pa.schema(fields), mode="overwrite")
    # English stemming and stop words; no positions (no phrase queries, a smaller index).
    table.create_index("text", config=FTS(with_position=False, stem=True, remove_stop_words=True))
    return table


def _read_meta(directory: Path) -> dict[str, Any]:
    try:
        return json.loads((Path(directory) / META_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _write_meta(directory: Path, embedder: Embedder | None) -> None:
    meta = {"embedder": embedder.name if embedder else None, "dim": embedder.dim if embedder else None}
    atomic_write_text(Path(directory) / META_FILE, json.dumps(meta) + "\n")


def _atoms(rows: "pa.Table") -> list[Atom]:
    cols = {name: rows.column(name).to_pylist() for name in COLUMNS}
    return [Atom(**{name: cols[name][i] for name in COLUMNS}) for i in range(rows.num_rows)]


def _chunks(items: Iterable[Atom], size: int) -> Iterator[list[Atom]]:
    chunk: list[Atom] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _context(atom: Atom, by_turn: dict[int, Atom], p: Params) -> list[Atom]:
    """The hit with its neighbouring turns that are close in time, oldest first."""
    if atom.kind != "turn" or atom.turn_id is None or (p.context_before == 0 and p.context_after == 0):
        return []
    out = [atom]
    for d in range(1, p.context_before + 1):
        prev = by_turn.get(atom.turn_id - d)
        if prev is None or not _close(prev, out[0], p.context_gap_s):
            break
        out.insert(0, prev)
    for d in range(1, p.context_after + 1):
        nxt = by_turn.get(atom.turn_id + d)
        if nxt is None or not _close(out[-1], nxt, p.context_gap_s):
            break
        out.append(nxt)
    return out if len(out) > 1 else []


def _close(a: Atom, b: Atom, gap_s: int) -> bool:
    try:
        ta = datetime.strptime(a.created_at, "%Y-%m-%dT%H:%M:%SZ")
        tb = datetime.strptime(b.created_at, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return False
    return abs((tb - ta).total_seconds()) <= gap_s


def _resolve_time(query: str, now: datetime | None) -> "TimeRange | None":
    try:
        from .timephrase import resolve_time
    except ImportError:  # the resolver is optional: without it no time boost
        return None
    return resolve_time(query, now or datetime.now(timezone.utc))
