"""A fake Anthropic Messages API, for running the REAL bundled Claude Code CLI in tests.

Why: the fake CLI (``fake_cli.py``) checks what mnemara sends to the CLI, but only the
real CLI shows what finally reaches the model (the system prompt, the message blocks,
the tool list), and only the real CLI can prove that a denied ``Bash`` call never runs.
Pointing the real CLI at this server (``ANTHROPIC_BASE_URL``) makes that testable offline.

Protocol served (the public Messages API, as the CLI uses it):

* ``POST /v1/messages`` (the CLI adds ``?beta=true``). The body is recorded. With
  ``"stream": true`` the answer is Server-Sent Events, sent with chunked transfer
  encoding so that the connection stays keep-alive and a response can be paced::

      event: message_start        data: {"type":"message_start","message":{... "usage":{...}}}
      event: content_block_start  data: {"type":"content_block_start","index":0,"content_block":{...}}
      event: content_block_delta  data: {... "delta":{"type":"text_delta","text":"..."}}
                                  (or input_json_delta / thinking_delta + signature_delta)
      event: content_block_stop   data: {"type":"content_block_stop","index":0}
      event: message_delta        data: {"delta":{"stop_reason":"end_turn",...},"usage":{...}}
      event: message_stop         data: {"type":"message_stop"}

  Without ``stream`` the answer is one JSON ``message`` object.
* ``POST /v1/messages/count_tokens``: ``{"input_tokens": <estimate>}``.
* ``GET /v1/models`` and anything else: a small plausible JSON answer, never a hang.

Scripting: ``api.enqueue(blocks, usage=..., stop_reason=...)`` queues one model step;
each main-loop ``POST /v1/messages`` pops one. An empty queue answers the text "ok".
``api.enqueue_error(status, ...)`` queues an HTTP error instead (e.g. 401 for an auth
failure). Every model step costs the CLI exactly one request, so a tool round trip is
two enqueued responses: the ``tool_use`` step and the step after the tool result.

Side requests: some CLI features make extra model calls of their own (session titles,
quota probes, summaries...). With ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`` (see
``real_cli_env``) the bundled CLI 2.1.332 made none in our runs, but in case one comes,
requests that are not the agent loop's are told apart: every agent-loop request carries
the Agent SDK identity line ("You are a Claude agent, built on Anthropic's Claude Agent
SDK.") in ``system`` and a ``tools`` list (never empty: see below). A request with neither
is recorded in ``api.side_requests`` and answered without consuming the scripted queue.
(Without that variable the CLI only adds a ``HEAD /api/hello`` connectivity probe, which
lands in ``other_requests``.)

Surprises seen with CLI 2.1.332 (see also tests/test_fakes.py):

* ``tools`` holds, besides the tools you asked for, a ``DeferredToolPlaceholder`` with
  ``"defer_loading": true`` (never callable). ``offered_tool_names()`` filters it out.
* ``messages[0]`` (user) holds the prompt's blocks as sent (a plain string stays a string),
  preceded by ``<system-reminder>`` text blocks only in some setups (e.g. a git-attribution
  reminder when ``Bash`` is offered). The environment section (cwd, platform, model, date)
  follows as a separate ``{"role": "system", ...}`` message, and it is that message which
  carries the ``cache_control`` breakpoint, not the prompt's last block.
* ``system`` is [billing header, "You are a Claude agent, built on Anthropic's Claude Agent
  SDK.", <your system prompt>], the last two with ``cache_control``.
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "AGENT_SDK_IDENTITY",
    "DEFAULT_USAGE",
    "FakeMessagesAPI",
    "RecordedRequest",
    "offered_tool_names",
    "real_cli_env",
    "system_text",
]

#: The line the CLI puts in ``system`` of every agent-loop request made through the SDK.
AGENT_SDK_IDENTITY = "Claude Agent SDK"

#: Usage reported for a step when ``enqueue`` gets none. All four counters are non-zero
#: so that tests can check they are summed over the steps of a turn.
DEFAULT_USAGE: dict[str, int] = {
    "input_tokens": 100,
    "output_tokens": 20,
    "cache_creation_input_tokens": 10,
    "cache_read_input_tokens": 30,
}

DEFAULT_MODEL = "claude-sonnet-4-5"


@dataclass
class RecordedRequest:
    """One HTTP request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON when possible, else the raw text (or None when empty)
    kind: str = "other"  # "main", "side" or "other"
    time: float = field(default_factory=time.time)


@dataclass
class _Scripted:
    """One queued answer: either a model step (``blocks``) or an HTTP error."""

    blocks: list[dict[str, Any]] | None = None
    usage: dict[str, int] | None = None
    stop_reason: str | None = None
    delay: float = 0.0  # seconds to wait before each SSE event (paces the stream)
    error_status: int | None = None
    error_type: str = "api_error"
    error_message: str = ""


def system_text(body: dict[str, Any]) -> str:
    """The request's ``system`` field flattened to one string (it may be str or blocks)."""
    system = body.get("system")
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        return "\n".join(b.get("text", "") for b in system if isinstance(b, dict))
    return ""


def offered_tool_names(body: dict[str, Any]) -> list[str]:
    """Names of the tools a request offers the model, without deferred placeholders.

    The CLI adds ``DeferredToolPlaceholder`` (``"defer_loading": true``) to keep
    deferred tool loading switched on; it is not a tool the model may call.
    """
    return [
        t.get("name")
        for t in body.get("tools") or []
        if isinstance(t, dict) and not t.get("defer_loading")
    ]


def _estimate_tokens(body: Any) -> int:
    """A crude token count for count_tokens: ~4 characters per token."""
    return max(1, math.ceil(len(json.dumps(body)) / 4))


class FakeMessagesAPI:
    """A scripted Messages API on ``http://127.0.0.1:<free port>``.

    Usage::

        with FakeMessagesAPI() as api:
            api.enqueue([{"type": "text", "text": "hi"}])
            env = real_cli_env(tmp_path, api)
            ...  # run the real CLI with ClaudeAgentOptions(env=env)
            assert api.requests[0]["system"] ...

    Attributes (all lists are in arrival order and safe to read after the run):

    * ``url``: base URL for ``ANTHROPIC_BASE_URL``.
    * ``requests``: JSON bodies of agent-loop ``POST /v1/messages`` calls.
    * ``request_headers``: the headers of each of those, index-aligned with ``requests``.
    * ``side_requests``: JSON bodies of other model calls (titles, quota probes, ...).
    * ``other_requests``: ``RecordedRequest`` for every other endpoint (count_tokens, ...).
    * ``log``: ``RecordedRequest`` for everything, in order.
    """

    def __init__(
        self,
        *,
        default_text: str = "ok",
        model: str | None = None,
        side_request_text: str = "Fake title",
    ) -> None:
        self.default_text = default_text
        self.model = model  # None: echo the model named in each request
        self.side_request_text = side_request_text
        self.requests: list[dict[str, Any]] = []
        self.request_headers: list[dict[str, str]] = []
        self.side_requests: list[dict[str, Any]] = []
        self.other_requests: list[RecordedRequest] = []
        self.log: list[RecordedRequest] = []
        self._queue: deque[_Scripted] = deque()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._tool_counter = 0

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> "FakeMessagesAPI":
        api = self

        class Handler(_Handler):
            fake = api

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="FakeMessagesAPI", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "FakeMessagesAPI":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeMessagesAPI is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # ----------------------------------------------------------------- scripting
    def enqueue(
        self,
        blocks: list[dict[str, Any]],
        usage: dict[str, int] | None = None,
        stop_reason: str | None = None,
        *,
        delay: float = 0.0,
    ) -> None:
        """Queue one model step.

        ``blocks`` are Messages API content blocks: ``{"type":"text","text":...}``,
        ``{"type":"tool_use","name":...,"input":{...}}`` (``id`` is generated if absent),
        ``{"type":"thinking","thinking":...}`` (``signature`` is generated if absent).
        ``usage`` entries override ``DEFAULT_USAGE``. ``stop_reason`` defaults to
        ``"tool_use"`` if a tool_use block is present, else ``"end_turn"``. ``delay``
        (seconds) is slept before every SSE event, to keep a response in flight (e.g.
        to interrupt it).
        """
        normalized = []
        for block in blocks:
            block = dict(block)
            if block.get("type") == "tool_use":
                block.setdefault("id", self._next_tool_id())
                block.setdefault("input", {})
            elif block.get("type") == "thinking":
                block.setdefault("signature", "fake-signature-" + uuid.uuid4().hex[:12])
            normalized.append(block)
        if stop_reason is None:
            has_tool = any(b.get("type") == "tool_use" for b in normalized)
            stop_reason = "tool_use" if has_tool else "end_turn"
        with self._lock:
            self._queue.append(
                _Scripted(blocks=normalized, usage=usage, stop_reason=stop_reason, delay=delay)
            )

    def enqueue_error(
        self,
        status: int,
        message: str = "fake error",
        error_type: str | None = None,
    ) -> None:
        """Queue an HTTP error answer, e.g. ``enqueue_error(401, "invalid x-api-key")``.

        The body is the API's error shape:
        ``{"type":"error","error":{"type":<error_type>,"message":<message>}}``. The answer
        carries ``x-should-retry: false``, so the CLI's client does not retry it (seen with
        401 and 529: one request, then the CLI reports the error as the turn's result).
        """
        default_types = {
            400: "invalid_request_error",
            401: "authentication_error",
            403: "permission_error",
            404: "not_found_error",
            429: "rate_limit_error",
            529: "overloaded_error",
        }
        with self._lock:
            self._queue.append(
                _Scripted(
                    error_status=status,
                    error_type=error_type or default_types.get(status, "api_error"),
                    error_message=message,
                )
            )

    def pending(self) -> int:
        """How many scripted answers are still queued."""
        with self._lock:
            return len(self._queue)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> bool:
        """Block until ``len(self.requests) >= count`` (or the timeout); True if reached."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    # ----------------------------------------------------------------- internals
    def _next_tool_id(self) -> str:
        with self._lock:
            self._tool_counter += 1
            return f"toolu_fake_{self._tool_counter:04d}"

    def _is_side_request(self, body: dict[str, Any]) -> bool:
        """Agent-loop calls carry the SDK identity line in ``system`` and a tool list.

        A call with neither (a title, a summary, a quota probe...) is a side request.
        """
        return AGENT_SDK_IDENTITY not in system_text(body) and not body.get("tools")

    def _record(self, rec: RecordedRequest) -> None:
        with self._changed:
            self.log.append(rec)
            if rec.kind == "main":
                self.requests.append(rec.body)
                self.request_headers.append(rec.headers)
            elif rec.kind == "side":
                self.side_requests.append(rec.body)
            else:
                self.other_requests.append(rec)
            self._changed.notify_all()

    def _take_main(self) -> _Scripted:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        return _Scripted(
            blocks=[{"type": "text", "text": self.default_text}],
            stop_reason="end_turn",
        )


class _Handler(BaseHTTPRequestHandler):
    """HTTP handler; ``fake`` is bound to the owning FakeMessagesAPI by a subclass."""

    fake: FakeMessagesAPI
    protocol_version = "HTTP/1.1"  # keep-alive, as the CLI's fetch expects

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr noise
        pass

    # -- helpers
    def _read_body(self) -> Any:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace")

    def _send_json(
        self, status: int, payload: Any, extra_headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", "req_fake_" + uuid.uuid4().hex[:16])
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    # -- verbs
    def do_GET(self) -> None:
        self._handle(None)

    def do_HEAD(self) -> None:
        self.fake._record(RecordedRequest("HEAD", self.path, dict(self.headers), None))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        self._handle(self._read_body())

    def do_PUT(self) -> None:
        self._handle(self._read_body())

    def do_DELETE(self) -> None:
        self._handle(self._read_body())

    def _handle(self, body: Any) -> None:
        fake = self.fake
        path = urlsplit(self.path).path.rstrip("/")
        headers = dict(self.headers)
        try:
            if self.command == "POST" and path == "/v1/messages" and isinstance(body, dict):
                kind = "side" if fake._is_side_request(body) else "main"
                fake._record(RecordedRequest(self.command, self.path, headers, body, kind))
                if kind == "side":
                    step = _Scripted(
                        blocks=[{"type": "text", "text": fake.side_request_text}],
                        stop_reason="end_turn",
                    )
                else:
                    step = fake._take_main()
                self._answer_messages(body, step)
                return

            fake._record(RecordedRequest(self.command, self.path, headers, body, "other"))
            if path == "/v1/messages/count_tokens":
                self._send_json(200, {"input_tokens": _estimate_tokens(body)})
            elif path.startswith("/v1/models"):
                model = fake.model or DEFAULT_MODEL
                entry = {
                    "type": "model",
                    "id": model,
                    "display_name": model,
                    "created_at": "2025-01-01T00:00:00Z",
                }
                if path == "/v1/models":
                    self._send_json(
                        200,
                        {"data": [entry], "has_more": False, "first_id": model, "last_id": model},
                    )
                else:
                    self._send_json(200, entry)
            else:
                # Unknown endpoint (OAuth, settings, telemetry...): a harmless empty object.
                self._send_json(200, {})
        except (BrokenPipeError, ConnectionResetError):
            # The client went away (e.g. the CLI aborted a stream on interrupt).
            self.close_connection = True

    def _answer_messages(self, body: dict[str, Any], step: _Scripted) -> None:
        if step.error_status is not None:
            self._send_json(
                step.error_status,
                {
                    "type": "error",
                    "error": {"type": step.error_type, "message": step.error_message},
                },
                # Tell the CLI's client not to wait long before any retry.
                {"retry-after": "0", "x-should-retry": "false"},
            )
            return
        model = self.fake.model or body.get("model") or DEFAULT_MODEL
        usage = {**DEFAULT_USAGE, **(step.usage or {})}
        message_id = "msg_fake_" + uuid.uuid4().hex[:20]
        blocks = step.blocks or []
        if body.get("stream"):
            self._stream(model, message_id, blocks, usage, step)
        else:
            self._send_json(
                200,
                {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": blocks,
                    "stop_reason": step.stop_reason,
                    "stop_sequence": None,
                    "usage": usage,
                },
            )

    def _stream(
        self,
        model: str,
        message_id: str,
        blocks: list[dict[str, Any]],
        usage: dict[str, int],
        step: _Scripted,
    ) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("request-id", "req_fake_" + uuid.uuid4().hex[:16])
        self.end_headers()

        def event(name: str, data: dict[str, Any]) -> None:
            if step.delay:
                time.sleep(step.delay)
            self._write_chunk(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())

        # message_start carries the input side of usage; output_tokens is final only in
        # message_delta, as with the real API.
        start_usage = {**usage, "output_tokens": 1}
        event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": start_usage,
                },
            },
        )
        for index, block in enumerate(blocks):
            for name, data in _block_events(index, block):
                event(name, data)
        event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": step.stop_reason, "stop_sequence": None},
                "usage": usage,
            },
        )
        event("message_stop", {"type": "message_stop"})
        self.wfile.write(b"0\r\n\r\n")  # end of the chunked body
        self.wfile.flush()


def _split(text: str, parts: int = 2) -> list[str]:
    """Cut a string into up to ``parts`` non-empty pieces (for realistic deltas)."""
    if not text:
        return []
    size = max(1, math.ceil(len(text) / parts))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _block_events(index: int, block: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The content_block_start / delta(s) / stop events that stream one block."""
    kind = block.get("type")
    events: list[tuple[str, dict[str, Any]]] = []

    def delta(d: dict[str, Any]) -> None:
        events.append(
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
        )

    if kind == "text":
        start = {"type": "text", "text": ""}
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": start},
            )
        )
        for piece in _split(block.get("text", "")):
            delta({"type": "text_delta", "text": piece})
    elif kind == "tool_use":
        start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": start},
            )
        )
        for piece in _split(json.dumps(block.get("input", {}))):
            delta({"type": "input_json_delta", "partial_json": piece})
    elif kind == "thinking":
        start = {"type": "thinking", "thinking": "", "signature": ""}
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": start},
            )
        )
        for piece in _split(block.get("thinking", "")):
            delta({"type": "thinking_delta", "thinking": piece})
        delta({"type": "signature_delta", "signature": block["signature"]})
    else:
        # Any other block (redacted_thinking, server tool blocks...) goes out whole.
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": block},
            )
        )
    events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    return events


def real_cli_env(tmp_path: Path | str, api: FakeMessagesAPI) -> dict[str, str]:
    """Environment for running the real bundled CLI against ``api``, offline and isolated.

    Pass it as ``ClaudeAgentOptions(env=real_cli_env(tmp_path, api))``. ``HOME`` and
    ``CLAUDE_CONFIG_DIR`` point into ``tmp_path`` so no user settings, credentials or
    session files leak in or out. Works as root (only ``bypassPermissions`` is refused
    under root; do not use it). Combine with ``setting_sources=[]`` in the options.
    """
    home = Path(tmp_path) / "cli-home"
    config = home / ".claude"
    config.mkdir(parents=True, exist_ok=True)
    return {
        "ANTHROPIC_BASE_URL": api.url,
        "ANTHROPIC_API_KEY": "test-key",
        # No OAuth token may win over the API key.
        "CLAUDE_CODE_OAUTH_TOKEN": "",
        "ANTHROPIC_AUTH_TOKEN": "",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "HOME": str(home),
        "CLAUDE_CONFIG_DIR": str(config),
        # Loopback only: make sure no proxy from the outer environment is used.
        "HTTP_PROXY": "",
        "HTTPS_PROXY": "",
        "http_proxy": "",
        "https_proxy": "",
        "NO_PROXY": "127.0.0.1,localhost",
    }
