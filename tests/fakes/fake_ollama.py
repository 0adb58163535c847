"""A fake Ollama server for the embedder tests: `POST /api/embed` only, on 127.0.0.1.

Answers like Ollama 0.3.4+: `{"model": ..., "embeddings": [[...], ...]}` for a known model and
HTTP 404 `{"error": "model \\"x\\" not found, try pulling it first"}` for any other. The vectors
are deterministic (derived from a hash of each text) and deliberately NOT unit length, so a test
can check that the client normalises them.

    with FakeOllama(models={"nomic-embed-text": 8}) as server:
        server.url        # "http://127.0.0.1:PORT"
        server.requests   # the JSON body of every /api/embed request, in order
        server.delay = 2  # seconds to wait before answering (a slow server)
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def fake_vector(text: str, dim: int) -> list[float]:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return [(digest[i % len(digest)] - 127.5) / 10.0 for i in range(dim)]


class FakeOllama:
    def __init__(self, models: dict[str, int] | None = None) -> None:
        self.models = dict(models or {"nomic-embed-text": 8})  # model name -> vector size
        self.requests: list[dict[str, Any]] = []
        self.delay = 0.0
        self._release = threading.Event()  # set on stop, so a delayed answer does not outlive us
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "FakeOllama":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if self.path != "/api/embed":
                    return self._send(404, "404 page not found", "text/plain")
                fake.requests.append(body)
                if fake.delay:
                    fake._release.wait(fake.delay)
                model = body.get("model", "")
                if model not in fake.models:
                    return self._send(404, json.dumps(
                        {"error": f'model "{model}" not found, try pulling it first'}))
                texts = body.get("input", [])
                texts = [texts] if isinstance(texts, str) else texts
                dim = fake.models[model]
                self._send(200, json.dumps({"model": model,
                                            "embeddings": [fake_vector(t, dim) for t in texts]}))

            def _send(self, status: int, text: str, ctype: str = "application/json") -> None:
                data = text.encode("utf-8")
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

        return Handler
