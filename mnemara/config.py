"""The instance config (`config.json`): schema, validation on load, atomic save.

Every field is declared once in `FIELDS` with its type, default, check and the sentence that
documents it; the README's config reference is tested against this table. Adding a field is
one `Field(...)` line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .errors import ConfigError
from .fsutil import atomic_write_text

MODES = ("allow", "ask", "deny")


@dataclass(frozen=True)
class ToolPolicy:
    """Policy for one tool name (or a `prefix*` glob such as `mcp__mnemara__*`)."""

    tool: str
    mode: str = "ask"
    allowed_patterns: tuple[str, ...] = ()

    def matches(self, tool_name: str) -> bool:
        if self.tool.endswith("*"):
            return tool_name.startswith(self.tool[:-1])
        return tool_name == self.tool

    def to_json(self) -> dict[str, Any]:
        return {"tool": self.tool, "mode": self.mode, "allowed_patterns": list(self.allowed_patterns)}


@dataclass(frozen=True)
class McpServer:
    """A stdio MCP server wired through to the model as `mcp__<name>__*` tools."""

    name: str
    command: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "command": self.command, "args": list(self.args),
                "env": dict(self.env)}


DEFAULT_POLICIES = (
    ToolPolicy("Bash", "ask"),
    ToolPolicy("Read", "allow"),
    ToolPolicy("Write", "ask"),
    ToolPolicy("Edit", "ask"),
    ToolPolicy("mcp__mnemara__*", "allow"),
)


# --- field checks: each returns the normalised value or raises ValueError(problem) ---------------

def _int_range(lo: int, hi: int | None = None) -> Callable[[Any], int]:
    def check(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"must be an integer, got {_kind(v)}")
        if v < lo or (hi is not None and v > hi):
            raise ValueError(f"must be between {lo} and {hi}, got {v}" if hi is not None
                             else f"must be at least {lo}, got {v}")
        return v
    return check


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"must be true or false, got {_kind(v)}")
    return v


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"must be a string, got {_kind(v)}")
    return v


def _nonempty_str(v: Any) -> str:
    if not _str(v).strip():
        raise ValueError("must not be empty")
    return v


def _url(v: Any) -> str:
    if not re.match(r"^https?://[^\s/]+", _str(v)):
        raise ValueError(f"must be an http(s) URL, got {v!r}")
    return v


def _choice(*choices: str) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if _str(v) not in choices:
            raise ValueError(f"must be one of {', '.join(repr(c) for c in choices)}, got {v!r}")
        return v
    return check


def _fraction(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"must be a number, got {_kind(v)}")
    if not 0 <= v <= 1:
        raise ValueError(f"must be between 0 and 1, got {v}")
    return float(v)


def _int_span(lo: int, hi: int) -> Callable[[Any], tuple[int, int]]:
    """A `[min, max]` pair of integers within lo..hi, min <= max."""
    one = _int_range(lo, hi)

    def check(v: Any) -> tuple[int, int]:
        if not isinstance(v, list) or len(v) != 2:
            raise ValueError(f"must be a [min, max] pair of integers, got {_kind(v)}")
        low, high = one(v[0]), one(v[1])
        if low > high:
            raise ValueError(f"min {low} is more than max {high}")
        return (low, high)
    return check


def _optional_str(v: Any) -> str | None:
    return None if v is None else _str(v)


def _string_list(v: Any, what: str) -> tuple[str, ...]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ValueError(f"{what} must be a list of strings")
    return tuple(v)


def _policies(v: Any) -> tuple[ToolPolicy, ...]:
    if not isinstance(v, list):
        raise ValueError(f"must be a list of {{tool, mode, allowed_patterns}}, got {_kind(v)}")
    out = []
    for i, item in enumerate(v):
        if not isinstance(item, dict):
            raise ValueError(f"entry {i} must be an object")
        unknown = set(item) - {"tool", "mode", "allowed_patterns"}
        if unknown:
            raise ValueError(f"entry {i} has unknown key {sorted(unknown)[0]!r}")
        tool = item.get("tool")
        if not isinstance(tool, str) or not tool:
            raise ValueError(f"entry {i} needs a non-empty 'tool' name")
        mode = item.get("mode", "ask")
        if mode not in MODES:
            raise ValueError(f"entry {i} ({tool}): mode must be one of allow, ask, deny, got {mode!r}")
        patterns = _string_list(item.get("allowed_patterns", []), f"entry {i} ({tool}): allowed_patterns")
        for p in patterns:
            try:
                re.compile(p)
            except re.error as exc:
                raise ValueError(f"entry {i} ({tool}): pattern {p!r} is not a valid regex ({exc})") from None
        out.append(ToolPolicy(tool, mode, patterns))
    return tuple(out)


def _mcp_servers(v: Any) -> tuple[McpServer, ...]:
    if not isinstance(v, list):
        raise ValueError(f"must be a list of {{name, command, args, env}}, got {_kind(v)}")
    out, seen = [], set()
    for i, item in enumerate(v):
        if not isinstance(item, dict):
            raise ValueError(f"entry {i} must be an object")
        unknown = set(item) - {"name", "command", "args", "env"}
        if unknown:
            raise ValueError(f"entry {i} has unknown key {sorted(unknown)[0]!r}")
        name, command = item.get("name"), item.get("command")
        if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9_-]{1,64}$", name):
            raise ValueError(f"entry {i}: name must be 1-64 letters, digits, '_' or '-'")
        if name == "mnemara" or name in seen:
            raise ValueError(f"entry {i}: name {name!r} is reserved or used twice")
        seen.add(name)
        if not isinstance(command, str) or not command:
            raise ValueError(f"entry {i} ({name}) needs a non-empty 'command'")
        args = _string_list(item.get("args", []), f"entry {i} ({name}): args")
        env = item.get("env", {})
        if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(x, str)
                                                for k, x in env.items()):
            raise ValueError(f"entry {i} ({name}): env must map strings to strings")
        out.append(McpServer(name, command, args, tuple(sorted(env.items()))))
    return tuple(out)


def _kind(v: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "an object", type(None): "null"}.get(type(v), type(v).__name__)


@dataclass(frozen=True)
class Field:
    name: str
    default: Any
    check: Callable[[Any], Any]
    doc: str


FIELDS: tuple[Field, ...] = (
    Field("role_doc_path", None, _optional_str,
          "Path to the role doc (Markdown), re-read before every turn and sent as the system prompt. null: no role doc."),
    Field("model", "claude-sonnet-5-5", _nonempty_str, "Claude model id used for every turn."),
    Field("display_name", "", _str, "Optional label shown in the header instead of the instance name."),
    Field("max_window_turns", 20, _int_range(1, 100_000),
          "Most turns (user and assistant rows) the rolling window holds."),
    Field("max_window_tokens", 100_000, _int_range(1_000, 2_000_000),
          "Estimated-token budget of what each turn sends: role doc + window + the new message."),
    Field("model_may_tune_window", True, _bool,
          "Offer the model `tune_window`, to change max_window_turns and max_window_tokens within "
          "tune_window_turns and tune_window_tokens (you see a notice each time)."),
    Field("tune_window_turns", (4, 100), _int_span(1, 100_000),
          "[min, max] max_window_turns the model may choose with tune_window."),
    Field("tune_window_tokens", (8_000, 200_000), _int_span(1_000, 2_000_000),
          "[min, max] max_window_tokens the model may choose with tune_window."),
    Field("strip_min_chars", 8_000, _int_range(0, 10_000_000),
          "Fewest characters strip_tool_output(now=true) must free at once, so the prompt cache "
          "breaks for a big saving, not for every small one (a held strip, the default, waits "
          "for the next eviction and needs no minimum)."),
    Field("allowed_tools", DEFAULT_POLICIES, _policies,
          "Tool policies: a list of {tool, mode: allow|ask|deny, allowed_patterns}. `tool` is a name or a `prefix*` glob."),
    Field("mcp_servers", (), _mcp_servers,
          "Stdio MCP servers ({name, command, args, env}) wired through as mcp__<name>__* tools."),
    Field("stream", True, _bool, "Render the reply as it streams."),
    Field("bash_timeout_seconds", 60, _int_range(1, 86_400), "Longest a Bash command may run."),
    Field("file_tool_home_only", True, _bool,
          "Refuse Read/Write/Edit on paths outside $HOME (after resolving ~, .. and symlinks)."),
    Field("max_steps_per_turn", 50, _int_range(1, 1000),
          "Most model steps (API calls) one turn may take before it stops and says so."),
    Field("max_api_retries", 5, _int_range(0, 10),
          "Times the Claude Code CLI retries a failed API call (each retry shown) before the turn "
          "fails; 5 gives up on a dead endpoint in about 20 s. The CLI's own default is 10 (~3 min)."),
    Field("tool_result_max_chars", 4000, _int_range(200, 1_000_000),
          "Tool output longer than this is cut (with a visible marker) when re-sent in later turns."),
    Field("auto_compress", False, _bool,
          "When the budget would evict, have the model summarize the turns instead (as /compress, "
          "without asking); the turns still go to the archive. false: plain eviction."),
    Field("compress_model", "", _str,
          "Model that writes /compress and auto_compress summaries. \"\": the session's model."),
    Field("cwd", None, _optional_str,
          "Working directory for the model's tools. null: the directory mnemara was started in."),
    Field("rag_enabled", True, _bool,
          "Keep the memory index (LanceDB) and offer recall and the rag_* tools. false: no index, no recall."),
    Field("rag_embedder", "local", _choice("local", "ollama", "none", "hash"),
          "Embedder for the index: `local` (MiniLM in-process, no server), `ollama` (rag_embed_url), "
          "`none` (full-text only), `hash` (deterministic, for tests)."),
    Field("rag_embed_url", "http://127.0.0.1:11434", _url,
          "Ollama-compatible embedding server (`/api/embed`), used when rag_embedder is `ollama`."),
    Field("rag_embed_model", "nomic-embed-text", _nonempty_str,
          "Ollama embedding model name, used when rag_embedder is `ollama`."),
    Field("rag_auto_index_memory", True, _bool, "Index every memory note."),
    Field("rag_auto_index_wiki", True, _bool, "Index every wiki page, section by section."),
    Field("rag_index_process", "auto", _choice("auto", "child", "inline"),
          "Where LanceDB and the embedder run: `auto` in a child process for the TUI and the REPL "
          "(replaced as it grows, so a long session stays small) and in process for `ask` and "
          "the other commands; `child` for `ask` too; `inline` always in process."),
    Field("redact", True, _bool,
          "Replace API keys, tokens, passwords and private keys by a marker such as "
          "`[redacted:github-token]` in memory notes, wiki pages, index entries and exports. "
          "The turn store keeps what was typed."),
    Field("recall", "auto", _choice("auto", "off"),
          "`auto`: before each turn, recall relevant memories into the user's turn. `off`: only the tools recall."),
    Field("recall_max_tokens", 0, _int_range(0, 200_000),
          "Most estimated tokens recalled into one turn. 0: 2% of max_window_tokens."),
    Field("recall_min_score", 0.3, _fraction,
          "Relevance (0..1) a memory needs to be recalled automatically."),
    Field("recall_k", 5, _int_range(1, 50), "Most memories recalled automatically into one turn."),
    Field("slot_max_chars", 2000, _int_range(20, 100_000),
          "Most characters one slot (a named block the model always sees) may hold."),
    Field("slots_max_tokens", 2000, _int_range(100, 200_000),
          "Most estimated tokens all slots together may take in the window (their `<slots>` block)."),
    Field("graph_enabled", True, _bool,
          "Keep the knowledge graph (ladybug, in graph/) and offer the graph_* tools. false: no graph."),
    Field("graph_allow_write_queries", False, _bool,
          "Let graph_query run Cypher that changes the graph. false: it runs on a read-only handle."),
    Field("graph_recall_weight", 0.3, _fraction,
          "How far (0..1) a hit linked in the graph to an entity the message names moves up in "
          "recall. 0: the graph is no recall signal."),
    Field("replay_default_days", 7, _int_range(1, 3650), "Days of memory `mnemara replay` reads by default."),
    Field("replay_default_threshold", 3, _int_range(2, 1000),
          "Fewest similar notes that make a pattern in replay."),
    Field("replay_model", "claude-haiku-4-5", _str,
          "Model that drafts proposal bodies and fact atoms for `mnemara replay --synthesize`. "
          "\"\": the instance's model."),
)
FIELD_BY_NAME = {f.name: f for f in FIELDS}


@dataclass(frozen=True)
class Config:
    """A validated config. Build with `Config.from_dict` or `load_config`, never by hand."""

    values: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    @classmethod
    def defaults(cls) -> "Config":
        return cls({f.name: f.default for f in FIELDS})

    @classmethod
    def from_dict(cls, data: Any, source: str = "config.json") -> "Config":
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: the top level must be a JSON object, got {_kind(data)}")
        values = {}
        for key in data:
            if key not in FIELD_BY_NAME:
                raise ConfigError(f"{source}: unknown field {key!r}")
        for f in FIELDS:
            if f.name not in data:
                values[f.name] = f.default
                continue
            try:
                values[f.name] = f.check(data[f.name])
            except ValueError as exc:
                raise ConfigError(f"{source}: field {f.name!r} {exc}") from None
        return cls(values)

    def replace(self, **changes: Any) -> "Config":
        """A new config with `changes` validated like values read from disk."""
        data = self.to_json()
        data.update({k: _plain(v) for k, v in changes.items()})
        return Config.from_dict(data, "config change")

    def to_json(self) -> dict[str, Any]:
        out = {}
        for f in FIELDS:
            v = self.values[f.name]
            if isinstance(v, tuple):
                v = [x.to_json() if hasattr(x, "to_json") else x for x in v]
            out[f.name] = v
        return out


def _plain(v: Any) -> Any:
    """A value as it would read from JSON (so `replace` accepts what `Config` itself holds)."""
    if hasattr(v, "to_json"):
        return v.to_json()
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    return v


def load_config(path: Path) -> Config:
    """Read and validate `path`; any problem is one ConfigError line naming the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file is missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    return Config.from_dict(data, str(path))


def save_config(path: Path, config: Config) -> None:
    """Atomically write `config` as 2-space-indented JSON, mode 0600."""
    atomic_write_text(Path(path), json.dumps(config.to_json(), indent=2) + "\n")
