"""How alike two memory atoms are, for replay's clustering and duplicate finding.

Two ways to compare, and replay always says which one it used:

- `vector`: the embedding vectors the memory index already holds (read, never written), with
  the atoms the index has not taken in yet embedded here in batches of EMBED_BATCH (never one
  request per atom). Cosine distance, with the spec's cut-offs: a pattern within 0.35, a
  near-duplicate within 0.10.
- `lexical`: TF-IDF over content words, feature-hashed into LEXICAL_DIM dimensions (no
  vocabulary to keep, one code path with the vectors). Used when no embedder is configured,
  when it is unavailable, or when the index's vectors belong to another embedder. Its cut-offs
  are its own (word overlap scores lower than meaning does).

Neighbours are found with a blocked matrix product, exact, over all loaded atoms. That step is
quadratic in the number of atoms but vectorised: ~0.2 s for 5,000 atoms of 384 dimensions on two
cores (see `benchmarks/bench_replay.py` for the measured growth).
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

from ..errors import MnemaraError

if TYPE_CHECKING:
    import numpy as np

    from ..index.atoms import Atom
    from ..index.embedders import Embedder

EMBED_BATCH = 64
LEXICAL_DIM = 1024
BLOCK = 512  # rows per block of the similarity product (bounds its memory: BLOCK x n floats)
MAX_EMBED_CHARS = 2_000
# Most neighbours kept per atom: bounds memory and time when many atoms look alike (a pattern
# is then its centre and its nearest MAX_NEIGHBOURS).
MAX_NEIGHBOURS = 100  # an atom's text as embedded here (the models truncate long ones anyway)


class ClusteringUnavailable(MnemaraError):
    """Neither the vectors nor lexical similarity can compare the atoms: replay stops and says
    why, rather than reporting "0 patterns" that were never looked for."""


@dataclass(frozen=True)
class Cutoffs:
    """Cosine similarity (1 - distance) at or above which two atoms belong to one pattern, and
    at or above which they are near-duplicates."""

    pattern: float
    duplicate: float


VECTOR_CUTOFFS = Cutoffs(pattern=1 - 0.35, duplicate=1 - 0.10)
LEXICAL_CUTOFFS = Cutoffs(pattern=0.25, duplicate=0.80)


@dataclass
class Space:
    """Unit vectors for a list of atoms (row i belongs to atom i), and how they were made."""

    mode: str                 # "vector" | "lexical"
    matrix: "np.ndarray"      # float32, (n, dim), rows L2-normalised (a zero row: no words)
    cutoffs: Cutoffs
    detail: str               # e.g. "vectors of local:all-MiniLM-L6-v2-int8 (4,980 from the index, 20 embedded)"
    note: str | None = None   # why it is not the vectors, when it is lexical

    def describe(self) -> str:
        text = f"{self.mode} similarity: {self.detail}"
        return f"{text} ({self.note})" if self.note else text


# --- lexical --------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=20_000)
def content_words(text: str) -> tuple[str, ...]:
    """The words that say what a text is about: lower-cased, no stop words, no 1-letter words.
    (Cached: each phase of a replay asks again for the same atoms.)"""
    from ..index.fusion import STOPWORDS
    return tuple(w for w in re.findall(r"\w+", text.lower())
                 if len(w) > 1 and w not in STOPWORDS and not w.isdigit() and len(w) <= 40)


def _bucket(feature: str) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest[:4], "little") % LEXICAL_DIM, (1.0 if digest[4] & 1 else -1.0)


def lexical_space(texts: Sequence[str], note: str | None) -> Space:
    """TF-IDF (sublinear tf, smoothed idf over these texts) of words and word pairs, hashed."""
    import numpy as np
    docs = []
    df: dict[str, int] = {}
    for text in texts:
        words = content_words(text)
        feats: dict[str, int] = {}
        for f in [*words, *(f"{a} {b}" for a, b in zip(words, words[1:]))]:
            feats[f] = feats.get(f, 0) + 1
        docs.append(feats)
        for f in feats:
            df[f] = df.get(f, 0) + 1
    if texts and not df:
        raise ClusteringUnavailable(
            f"cannot compare the {len(texts)} atoms: no embedder vectors, and none of them has a "
            "word to compare by; nothing was changed")
    n = len(texts)
    cache: dict[str, tuple[int, float]] = {}
    matrix = np.zeros((n, LEXICAL_DIM), dtype=np.float32)
    for row, feats in enumerate(docs):
        for f, tf in feats.items():
            if f not in cache:
                cache[f] = _bucket(f)
            col, sign = cache[f]
            matrix[row, col] += sign * (1.0 + math.log(tf)) * math.log((1 + n) / (1 + df[f]))
    _normalise(matrix)
    return Space("lexical", matrix, LEXICAL_CUTOFFS, "TF-IDF over content words", note)


def _normalise(matrix: "np.ndarray") -> None:
    import numpy as np
    norms = np.linalg.norm(matrix, axis=1)
    norms[norms == 0] = 1.0
    matrix /= norms[:, None]


# --- vectors --------------------------------------------------------------------------------------

def embed_in_batches(embedder: "Embedder", texts: Sequence[str],
                     progress: Callable[[int, int], None] | None = None) -> "np.ndarray":
    """Vectors for `texts`, EMBED_BATCH at a time (raises EmbedderUnavailable)."""
    import numpy as np
    parts = []
    for i in range(0, len(texts), EMBED_BATCH):
        parts.append(np.asarray(embedder.embed([t[:MAX_EMBED_CHARS] for t in texts[i:i + EMBED_BATCH]]),
                                dtype=np.float32))
        if progress:
            progress(min(i + EMBED_BATCH, len(texts)), len(texts))
    return np.vstack(parts) if parts else np.zeros((0, embedder.dim), dtype=np.float32)


def vector_space(atoms: Sequence["Atom"], embedder: "Embedder", stored: dict[str, Sequence[float]],
                 progress: Callable[[int, int], None] | None = None) -> Space:
    """Unit vectors for `atoms`: the index's own (`stored`, by atom id) where it has them, the
    rest embedded in batches. Raises EmbedderUnavailable when some must be embedded and cannot."""
    import numpy as np
    missing = [i for i, a in enumerate(atoms) if a.id not in stored]
    fresh = embed_in_batches(embedder, [atoms[i].text for i in missing], progress) if missing else None
    # The dimension from the vectors at hand: asking a server embedder for it is a request.
    dim = fresh.shape[1] if fresh is not None else len(next(iter(stored.values()), [])) or (embedder.dim if atoms else 1)
    matrix = np.zeros((len(atoms), dim), dtype=np.float32)
    for i, a in enumerate(atoms):
        if a.id in stored:
            matrix[i] = np.asarray(stored[a.id], dtype=np.float32)
    for row, i in enumerate(missing):
        matrix[i] = fresh[row]  # type: ignore[index]  # missing is empty when fresh is None
    _normalise(matrix)
    from_index = len(atoms) - len(missing)
    detail = (f"vectors of {embedder.name} ({from_index:,} from the index, "
              f"{len(missing):,} embedded now)")
    return Space("vector", matrix, VECTOR_CUTOFFS, detail)


# --- neighbours -----------------------------------------------------------------------------------

def neighbours(space: Space, cutoff: float, rows: Sequence[int] | None = None,
               among: Sequence[int] | None = None) -> dict[int, list[int]]:
    """For each row in `rows` (default all), the rows of `among` (default all) at or above
    `cutoff` similarity, itself excluded, in `among` order."""
    import numpy as np
    m = space.matrix
    rows = list(range(len(m))) if rows is None else list(rows)
    among_idx = np.arange(len(m)) if among is None else np.asarray(list(among), dtype=np.int64)
    if not rows or not len(among_idx):
        return {r: [] for r in rows}
    out: dict[int, list[int]] = {}
    target = m[among_idx].T
    for start in range(0, len(rows), BLOCK):
        block = rows[start:start + BLOCK]
        sims = m[block] @ target
        mask = sims >= cutoff
        counts = mask.sum(axis=1)
        _, cols = np.nonzero(mask)  # row-major: each row's hits together, in order
        per_row = np.split(among_idx[cols], np.cumsum(counts)[:-1])
        for k, (r, hits) in enumerate(zip(block, per_row)):
            if counts[k] > MAX_NEIGHBOURS:  # a crowded row keeps its nearest only
                top = np.argpartition(-sims[k], MAX_NEIGHBOURS)[:MAX_NEIGHBOURS + 1]
                hits = among_idx[np.sort(top[sims[k][top] >= cutoff])]
            out[r] = hits[hits != r].tolist()
    return out


def centroid_similarity(space: Space, members: Sequence[int], others: Sequence[int]) -> list[float]:
    """Cosine similarity of each row in `others` with the mean of `members`."""
    import numpy as np
    if not members or not others:
        return [0.0] * len(others)
    c = space.matrix[list(members)].mean(axis=0)
    norm = float(np.linalg.norm(c))
    if norm == 0:
        return [0.0] * len(others)
    return [float(x) for x in space.matrix[list(others)] @ (c / norm)]
