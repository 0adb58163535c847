"""The model's in-process tools: ONE registry, served as one SDK MCP server.

Each tool is defined once: its name, a description written for the model, a JSON Schema in which
optional arguments are optional (with defaults), its handler, and the feature it belongs to. The
window tools are defined below; features add theirs with `register(...)` from their own module
(memory: `memory/tools.py`; segments, strips, tune_window, log_choice: `window_tools.py`).
`active_tools(config)` is what a turn offers: a feature whose config switch is off (e.g.
`rag_enabled: false`) offers none of its tools. Handlers that touch a backend
(an index, an embedder, a network) are marked `blocking` and run in a worker thread, so the event
loop (and the TUI) never waits on them.

`claude_agent_sdk` is imported only inside `build_sdk_server`: importing it costs ~0.5 s, which
commands that never talk to the model must not pay.
"""

from __future__ import annotations

import asyncio
import copy
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from ..errors import MnemaraError
from . import tool_handlers as h
from .tool_handlers import ToolContext, ToolError

if TYPE_CHECKING:
    from claude_agent_sdk import McpSdkServerConfig

__all__ = ["FEATURES", "SERVER_NAME", "TOOLS", "TOOLS_BY_NAME", "ToolContext", "ToolError", "ToolSpec",
           "active_tools", "build_sdk_server", "call_tool", "qualified", "register", "validate_args"]

SERVER_NAME = "mnemara"


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str  # for the model: when to use it and what it returns
    schema: dict[str, Any]  # JSON Schema of the arguments object
    handler: Callable[[ToolContext, dict[str, Any]], str]
    read_only: bool = False  # only reads state (an MCP annotation hint for the CLI)
    feature: str = "core"  # a key of FEATURES: the config switch that offers this tool
    blocking: bool = False   # touches a backend: run in a worker thread, off the event loop


# Which config switch turns each feature's tools on.
FEATURES: dict[str, Callable[[Any], bool]] = {
    "core": lambda config: True,
    "notes": lambda config: True,
    "wiki": lambda config: True,
    "memory": lambda config: bool(config.rag_enabled),
    "slots": lambda config: True,
    "window_tuning": lambda config: bool(config.model_may_tune_window),
    "graph": lambda config: bool(config.graph_enabled),
}


def qualified(name: str) -> str:
    """The name the model and the permission policy see: `mcp__mnemara__<name>`."""
    return f"mcp__{SERVER_NAME}__{name}"


def _args(required: tuple[str, ...] = (), **properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required),
            "additionalProperties": False}


_IDS = {"type": "array", "items": {"type": "integer"}, "minItems": 1,
        "description": "Turn ids, as shown by list_window (e.g. [12, 13])."}

TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "write_memory",
        "Save something worth remembering beyond this conversation (a fact about the user, a "
        "preference, a decision, a lesson, an observation about your own behaviour) to today's "
        "memory file. Memory outlives the rolling window; use it for what should survive eviction. "
        "Returns the file the note was written to.",
        _args(("text",),
              text={"type": "string", "minLength": 1,
                    "description": "The note itself: one self-contained statement or short paragraph."},
              category={"type": "string", "default": "note",
                        "description": "A short label, 1-64 letters, digits, '_', '.', '/' or '-' "
                                       "(e.g. insight, preference, decision, self_observation). "
                                       "Default: note."},
              payload={"type": "object", "additionalProperties": False,
                       "description": "Optional structure for notes that make a claim; give only the "
                                      "fields you have.",
                       "properties": {
                           "observation": {"type": "string", "description": "What was observed."},
                           "evidence": {"type": "string", "description": "What supports it."},
                           "prediction": {"type": "string", "description": "What it implies will happen."},
                           "applies_to": {"type": "string", "description": "Where it applies."},
                           "confidence": {"type": "number", "minimum": 0, "maximum": 1,
                                          "description": "How sure you are, from 0 to 1."}}}),
        h.write_memory, feature="notes", blocking=True),
    ToolSpec(
        "propose_role_amendment",
        "Propose a change to your role document (your system prompt) when you notice a standing "
        "instruction is missing, wrong or keeps causing mistakes. The proposal is saved for the "
        "user to review; nothing is applied automatically. Returns the proposal's id.",
        _args(("text", "rationale", "severity"),
              text={"type": "string", "minLength": 1,
                    "description": "The exact text to add to or change in the role document."},
              rationale={"type": "string", "description": "Why: what happened that calls for it."},
              severity={"type": "string", "enum": ["low", "medium", "high"],
                        "description": "How much it matters: low, medium or high."}),
        h.propose_role_amendment),
    ToolSpec(
        "inspect_context",
        "Report what your context holds right now: window rows against the turn budget, estimated "
        "tokens against the token budget (plus the system prompt), pinned and archived turns, the "
        "last request's real token usage and prompt-cache hit ratio, session cost, and recent "
        "evictions. Use it before deciding to pin or evict.",
        _args(),
        h.inspect_context, read_only=True),
    ToolSpec(
        "list_window",
        "List the turns in your rolling window, oldest first, one line each: id, role, time, "
        "estimated tokens, flags (pinned, pending, failed, interrupted) and the start of the text or "
        "a summary of its tool calls. Use the ids with pin_turn, unpin_turn and evict_turns.",
        _args(limit={"type": "integer", "minimum": 1,
                     "description": "Show only the newest N turns (default: all)."}),
        h.list_window, read_only=True),
    ToolSpec(
        "pin_turn",
        "Pin turns so they stay in the window: pinned turns are evicted last, only when the budget "
        "cannot be met otherwise. Pin what you must keep seeing verbatim (the task, key decisions). "
        "Returns which ids were pinned and which were not in the window.",
        _args(("ids",), ids=_IDS),
        h.pin_turn),
    ToolSpec(
        "unpin_turn",
        "Unpin turns so they are evicted in the normal oldest-first order again. Returns which ids "
        "were unpinned and which were not in the window.",
        _args(("ids",), ids=_IDS),
        h.unpin_turn),
    ToolSpec(
        "evict_turns",
        "Move turns out of your window into the archive (still searchable, no longer sent), to make "
        "room or drop what is no longer relevant. Give either `ids` or `older_than`, not both. "
        "Pinned turns and the turn being answered now are skipped. Evicting changes the prompt "
        "prefix, so evict in one batch rather than a turn at a time. Returns what was archived.",
        _args(ids=dict(_IDS, description="Turn ids to archive, as shown by list_window."),
              older_than={"type": "string",
                          "description": "Archive every turn older than this duration: a number and "
                                         "a unit s, m, h, d or w, e.g. \"30m\", \"2h\", \"3d\"."}),
        h.evict_turns),
)
TOOLS_BY_NAME: dict[str, ToolSpec] = {t.name: t for t in TOOLS}


def register(*specs: ToolSpec) -> None:
    """Add a feature's tools to the registry (each name once)."""
    global TOOLS
    for spec in specs:
        if spec.feature not in FEATURES:
            raise ValueError(f"tool {spec.name}: unknown feature {spec.feature!r}")
        if spec.name in TOOLS_BY_NAME:
            raise ValueError(f"tool {spec.name} is defined twice")
        TOOLS_BY_NAME[spec.name] = spec
    TOOLS = tuple(TOOLS_BY_NAME.values())


def active_tools(config: Any) -> list[ToolSpec]:
    """The tools a turn offers under `config`, in registry order."""
    return [t for t in TOOLS_BY_NAME.values() if FEATURES[t.feature](config)]


# --- argument checking -----------------------------------------------------------------------------
# The SDK server checks arguments with jsonschema too; this check also covers direct calls
# (`call_tool`), applies defaults, and words every problem so the model can fix its call.
# It enforces exactly these keywords; a test keeps every tool schema within them.
SCHEMA_KEYWORDS = frozenset({
    "type", "properties", "required", "additionalProperties", "description", "default", "enum",
    "minimum", "maximum", "minLength", "maxLength", "pattern", "items", "minItems"})

def validate_args(spec: ToolSpec, args: Any) -> dict[str, Any]:
    """`args` checked against `spec.schema`, defaults applied; a ToolError names any problem."""
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise ToolError(f"{spec.name} takes an object of named arguments, got {_kind(args)}")
    return _check_object(spec.schema, args, "", spec.name)


def _check_object(schema: dict[str, Any], value: dict[str, Any], path: str,
                  tool: str) -> dict[str, Any]:
    props: dict[str, Any] = schema.get("properties", {})
    required = schema.get("required", [])
    where = f"{tool}" if not path else f"{tool}: {path}"
    if schema.get("additionalProperties", True) is False:
        for key in value:
            if key not in props:
                takes = ", ".join(f"{k} (required)" if k in required else k for k in props) or "no arguments"
                raise ToolError(f"{where}: unknown argument {_join(path, key)!r}; it takes {takes}")
    out: dict[str, Any] = {}
    for key, sub in props.items():
        # A null optional argument means "not given", as if the key were absent.
        if value.get(key) is None:
            if key in required:
                raise ToolError(f"{where}: missing required argument {_join(path, key)!r} "
                                f"({_describe(sub)}): {sub.get('description', '')}".rstrip(": "))
            if "default" in sub:
                out[key] = copy.deepcopy(sub["default"])
            continue
        out[key] = _check(sub, value[key], _join(path, key), tool)
    return out


def _check(schema: dict[str, Any], value: Any, path: str, tool: str) -> Any:
    kind = schema.get("type")
    if kind == "integer" and isinstance(value, float) and value.is_integer():
        value = int(value)
    ok = {"string": lambda v: isinstance(v, str),
          "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
          "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          "boolean": lambda v: isinstance(v, bool),
          "array": lambda v: isinstance(v, list),
          "object": lambda v: isinstance(v, dict)}.get(kind, lambda v: True)(value)
    if not ok:
        raise ToolError(f"{tool}: {path} must be {_describe(schema)}, got {_kind(value)}")
    if "enum" in schema and value not in schema["enum"]:
        raise ToolError(f"{tool}: {path} must be {_describe(schema)}, got {value!r}")
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        span = f"between {lo} and {hi}" if lo is not None and hi is not None else (
            f"at least {lo}" if lo is not None else f"at most {hi}")
        raise ToolError(f"{tool}: {path} must be {span}, got {value}")
    if kind == "string" and len(value.strip()) < schema.get("minLength", 0):
        raise ToolError(f"{tool}: {path} must not be empty")
    if kind == "string" and len(value) > schema.get("maxLength", len(value)):
        raise ToolError(f"{tool}: {path} is {len(value):,} characters; at most "
                        f"{schema['maxLength']:,} are accepted")
    if kind == "string" and "pattern" in schema and not re.search(schema["pattern"], value):
        raise ToolError(f"{tool}: {path} {value[:80]!r} is not valid: "
                        f"{schema.get('description', 'see the tool description')}")
    if kind == "array":
        if len(value) < schema.get("minItems", 0):
            raise ToolError(f"{tool}: {path} needs at least {schema['minItems']} item(s)")
        return [_check(schema.get("items", {}), v, f"{path}[{i}]", tool) for i, v in enumerate(value)]
    if kind == "object":
        return _check_object(schema, value, path, tool)
    return value


def _describe(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return "one of " + ", ".join(repr(v) for v in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        item = _describe(schema.get("items", {})).removeprefix("an ").removeprefix("a ")
        return f"an array of {item}s"
    return {"string": "a string", "integer": "an integer", "number": "a number",
            "boolean": "true or false", "object": "an object"}.get(kind, "a value")


def _kind(v: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "an array", dict: "an object", type(None): "null"}.get(type(v), type(v).__name__)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# --- dispatch --------------------------------------------------------------------------------------

def _result(text: str, is_error: bool = False) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "is_error": is_error}


async def call_tool(ctx: ToolContext, name: str, args: Any) -> dict[str, Any]:
    """Run one tool; an MCP-shaped result. Never raises: every failure is an `is_error` result."""
    spec = TOOLS_BY_NAME.get(name.removeprefix(qualified("")))
    if spec is None:
        return _result(f"unknown tool {name!r}; the tools are {', '.join(TOOLS_BY_NAME)}", True)
    if not FEATURES[spec.feature](ctx.config):
        return _result(f"{spec.name} is turned off in this instance's config "
                       f"(its {spec.feature} feature is disabled)", True)
    try:
        checked = validate_args(spec, args)
        if spec.blocking:
            return _result(await asyncio.to_thread(spec.handler, ctx, checked))
        # The others take well under a millisecond (SQLite rows, small file appends).
        return _result(spec.handler(ctx, checked))
    except (ToolError, MnemaraError) as exc:  # a mistake the model can read and fix
        return _result(str(exc), True)
    except Exception as exc:  # noqa: BLE001 - a bug in one tool must not end the user's turn
        text = f"{spec.name} failed: {type(exc).__name__}: {exc}"
        ctx.notify("error", text)
        return _result(text, True)


def build_sdk_server(ctx: ToolContext) -> "McpSdkServerConfig":
    """The in-process MCP server for `ClaudeAgentOptions.mcp_servers[SERVER_NAME]`.

    A dict schema with `type` and `properties` reaches the model unchanged (the SDK's
    `_build_input_schema` passes it through), so optional arguments stay optional.
    """
    from claude_agent_sdk import SdkMcpTool, ToolAnnotations, create_sdk_mcp_server

    def runner(name: str) -> Callable[[dict[str, Any]], Any]:
        async def run(args: dict[str, Any]) -> dict[str, Any]:
            return await call_tool(ctx, name, args)
        return run

    tools = [SdkMcpTool(name=t.name, description=t.description, input_schema=t.schema,
                        handler=runner(t.name),
                        annotations=ToolAnnotations(readOnlyHint=t.read_only))
             for t in active_tools(ctx.config)]
    return create_sdk_mcp_server(SERVER_NAME, tools=tools)


# Features register their tools on import; importing them here makes the registry complete for
# everyone who imports it (their handlers import their backends lazily).
from ..memory import tools as _memory_tools  # noqa: E402,F401
from ..memory import slot_tools as _slot_tools  # noqa: E402,F401
from . import window_tools as _window_tools  # noqa: E402,F401
from ..graph import tools as _graph_tools  # noqa: E402,F401
