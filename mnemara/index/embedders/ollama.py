"""Embeddings from an Ollama (or Ollama-compatible) server: POST /api/embed via the `ollama` client.

The client has no timeout by default, so one is always set: a short connect timeout (a server
that is not running is reported at once) and a longer read timeout (the first call may load the
model into memory). Every failure the user can fix becomes `EmbedderUnavailable` with one line
saying what to do. `ollama` and `httpx` are imported on first use, not with this module.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Sequence

from . import EmbedderUnavailable

if TYPE_CHECKING:
    import numpy as np


class OllamaEmbedder:
    """`embed` sends at most `batch` texts per request; `dim` is learned from the first answer."""

    def __init__(self, url: str, model: str, *, connect_timeout: float = 1.0, read_timeout: float = 30.0,
                 batch: int = 64) -> None:
        self.url = url
        self.model = model
        self.name = f"ollama:{model}"
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.batch = max(1, batch)
        self._dim: int | None = None
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        """The vector size; asks the server with one tiny embed when no answer was seen yet."""
        if self._dim is None:
            self.embed(["dimension probe"])
        assert self._dim is not None
        return self._dim

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                try:
                    import httpx
                    import ollama
                except ImportError as e:
                    raise EmbedderUnavailable(f"the ollama embedder needs {e.name}, which is not installed; "
                                              "reinstall mnemara or set rag_embedder to local") from None
                # connect bounds a dead host; read/write/pool bound a stuck or slow server
                timeout = httpx.Timeout(self.read_timeout, connect=self.connect_timeout)
                self._client = ollama.Client(host=self.url, timeout=timeout)
            return self._client

    def embed(self, texts: Sequence[str]) -> "np.ndarray":
        import numpy as np

        from .local import normalise

        if not texts:  # no request for nothing: (0, 0) while the size is still unknown
            return np.empty((0, self._dim or 0), dtype=np.float32)
        client = self._get_client()
        parts = []
        for start in range(0, len(texts), self.batch):
            chunk = list(texts[start:start + self.batch])
            parts.append(self._request(client, chunk))
        return normalise(np.concatenate(parts))

    def _request(self, client: Any, chunk: list[str]) -> "np.ndarray":
        import httpx
        import numpy as np
        import ollama
        import pydantic

        where = f"Ollama at {self.url}"
        try:
            response = client.embed(model=self.model, input=chunk)
        except ConnectionError:  # the client's translation of httpx.ConnectError
            raise self._unreachable() from None
        except httpx.ConnectError:
            raise self._unreachable() from None
        except httpx.ConnectTimeout:
            raise EmbedderUnavailable(f"{where} did not accept a connection within {self.connect_timeout:g} s; "
                                      "check that `ollama serve` is running or set rag_embedder to local") from None
        except httpx.TimeoutException:
            raise EmbedderUnavailable(f"{where} did not answer within the {self.read_timeout:g} s read timeout "
                                      f"embedding {len(chunk)} text(s) with {self.model}; the server may be "
                                      "overloaded or still loading the model") from None
        except ollama.ResponseError as e:
            # Ollama answers 404 {"error": "model \"x\" not found, try pulling it first"}; a 404
            # without that wording means the URL is not an Ollama server at all
            if e.status_code == 404 and "model" in str(e.error) and "not found" in str(e.error):
                raise EmbedderUnavailable(f"{where}: model {self.model} is not pulled; "
                                          f"run `ollama pull {self.model}`") from None
            if e.status_code == 404:
                raise EmbedderUnavailable(f"{where} has no /api/embed (HTTP 404); is it an Ollama server, "
                                          "version 0.3.4 or later?") from None
            raise EmbedderUnavailable(f"{where} refused to embed with {self.model}: {e.error} "
                                      f"(HTTP {e.status_code})") from None
        except httpx.HTTPError as e:  # any other transport failure (protocol error, reset, ...)
            raise EmbedderUnavailable(f"{where} failed: {type(e).__name__}: {e}") from None
        except (pydantic.ValidationError, ValueError) as e:  # not JSON, or not an embed answer
            raise EmbedderUnavailable(f"{where} sent an unexpected answer to /api/embed "
                                      f"({type(e).__name__}); is it an Ollama server?") from None

        vectors = np.asarray(response.embeddings, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(chunk) or vectors.shape[1] == 0:
            raise EmbedderUnavailable(f"{where} returned {vectors.shape[0] if vectors.ndim else 0} vectors "
                                      f"for {len(chunk)} texts; is it an Ollama server?")
        if self._dim is None:
            self._dim = int(vectors.shape[1])
        elif vectors.shape[1] != self._dim:
            raise EmbedderUnavailable(f"{where} changed its vector size from {self._dim} to {vectors.shape[1]} "
                                      f"for {self.model}; rebuild the index")
        return vectors

    def _unreachable(self) -> EmbedderUnavailable:
        return EmbedderUnavailable(f"Ollama at {self.url} is not reachable; "
                                   "start it with `ollama serve` or set rag_embedder to local")
