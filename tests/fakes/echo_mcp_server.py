#!/usr/bin/env python3
"""A minimal stdio MCP server (stdlib only) with one tool, `shout`, for wire-through tests.

Each call appends its argument to the file named by $ECHO_MARKER, so a test can tell whether the
tool really ran.
"""

import json
import os
import sys

TOOL = {"name": "shout", "description": "Upper-case the text.",
        "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}},
                        "required": ["text"]}}


def answer(msg_id, result=None, error=None):
    reply = {"jsonrpc": "2.0", "id": msg_id}
    reply.update({"error": error} if error else {"result": result})
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    if not line.strip():
        continue
    msg = json.loads(line)
    method, msg_id = msg.get("method"), msg.get("id")
    if msg_id is None:
        continue  # a notification
    if method == "initialize":
        answer(msg_id, {"protocolVersion": msg["params"].get("protocolVersion", "2025-06-18"),
                        "capabilities": {"tools": {}}, "serverInfo": {"name": "echo", "version": "1"}})
    elif method == "tools/list":
        answer(msg_id, {"tools": [TOOL]})
    elif method == "tools/call":
        text = msg["params"].get("arguments", {}).get("text", "")
        with open(os.environ["ECHO_MARKER"], "a") as fh:
            fh.write(text + "\n")
        answer(msg_id, {"content": [{"type": "text", "text": text.upper()}]})
    elif method == "ping":
        answer(msg_id, {})
    else:
        answer(msg_id, error={"code": -32601, "message": f"unknown method {method}"})
