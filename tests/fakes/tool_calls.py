"""Calling a model tool the way the SDK server does, for tests: `ok` expects success, `err` a
readable failure."""

from __future__ import annotations

from mnemara.engine.tools import call_tool


async def run(ctx, name, args=None) -> tuple[str, bool]:
    result = await call_tool(ctx, name, args if args is not None else {})
    assert set(result) == {"content", "is_error"}
    return result["content"][0]["text"], result["is_error"]


async def ok(ctx, name, args=None) -> str:
    text, is_error = await run(ctx, name, args)
    assert not is_error, text
    return text


async def err(ctx, name, args=None, *, one_line: bool = False) -> str:
    text, is_error = await run(ctx, name, args)
    assert is_error, text
    assert "Traceback" not in text
    if one_line:
        assert "\n" not in text.strip(), f"an error is one line: {text!r}"
    return text
