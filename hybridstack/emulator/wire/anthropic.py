"""Anthropic Messages wire format for the emulator (``POST …/v1/messages``).

Parses a messages.create request into the neutral :class:`ChatRequest` and renders
``message`` JSON, the ``message_start … message_stop`` event stream and
``{"type":"error","error":{type, message},"request_id"}`` bodies the way ``anthropic`` 2.x
parses them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hybridstack.emulator.wire.common import (
    BadRequest,
    ChatRequest,
    ErrorInfo,
    ErrorKind,
    RequestContext,
    StreamPlan,
    ToolSpec,
    Turn,
    WireAdapter,
    content_text,
    dumps,
    sse,
)

_STOP = {"stop": "end_turn", "tool_calls": "tool_use", "length": "max_tokens", "refusal": "refusal"}

# status, error.type, message
_ERRORS: dict[str, tuple[int, str, str]] = {
    "rate_limit": (
        429,
        "rate_limit_error",
        "This request would exceed the rate limit for your organization (simulated).",
    ),
    "server_error": (500, "api_error", "Internal server error (simulated)."),
    "unavailable": (503, "api_error", "Service unavailable (simulated)."),
    "overloaded": (529, "overloaded_error", "Overloaded"),
    "outage": (503, "api_error", "Service unavailable (simulated outage)."),
    "auth": (401, "authentication_error", "invalid x-api-key"),
    "quota": (
        402,
        "billing_error",
        "Your credit balance is too low to access the Anthropic API (simulated).",
    ),
    "refusal": (400, "invalid_request_error", "The request was refused (simulated)."),
    "bad_request": (400, "invalid_request_error", "Invalid request."),
    "not_found": (404, "not_found_error", "Not found."),
}


_TEXT_DELTA_HEAD = (
    'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    '"delta":{"type":"text_delta","text":'
)


def _text_of_blocks(content: Any) -> tuple[str, str, bool, int]:
    """(text of text blocks, text of tool_result blocks, has tool_result, other chars)."""
    if isinstance(content, str):
        return content, "", False, 0
    if not isinstance(content, list):
        return "", "", False, 0
    texts: list[str] = []
    results: list[str] = []
    other = 0
    for block in content:
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_result":
            results.append(content_text(block.get("content")))
        elif kind == "tool_use":
            other += len(str(block.get("name", ""))) + len(dumps(block.get("input", {})))
    return "\n".join(texts), "\n".join(results), bool(results), other


class AnthropicWire(WireAdapter):
    protocol = "anthropic"
    endpoint = "/v1/messages"
    base_suffix = ""
    request_id_header = "request-id"
    canned_errors = _ERRORS
    code_field = 1  # ``error.type``: this wire has no separate code

    def parse(self, body: dict[str, Any], headers: Mapping[str, str]) -> ChatRequest:
        if not body.get("model"):
            raise BadRequest("model: Field required")
        if not isinstance(body.get("max_tokens"), int):
            raise BadRequest("max_tokens: Field required")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("messages: at least one message is required")
        req = ChatRequest(stream=bool(body.get("stream")), max_tokens=body["max_tokens"])
        req.system_text = content_text(body.get("system"))
        chars = len(req.system_text)
        last_results = ""
        last_has_result = False
        for msg in messages:
            if not isinstance(msg, Mapping):
                raise BadRequest("messages: each message must be an object")
            text, results, has_result, other = _text_of_blocks(msg.get("content"))
            chars += len(text) + len(results) + other
            if msg.get("role") == "user":
                if text:
                    req.last_user_text = text
                last_results, last_has_result = results, has_result
            else:
                last_results, last_has_result = "", False
        req.last_is_tool_result = last_has_result and messages[-1].get("role") == "user"
        req.tool_result_text = last_results if req.last_is_tool_result else ""

        tools = body.get("tools")
        if isinstance(tools, list):
            for tool in tools:
                if isinstance(tool, Mapping) and isinstance(tool.get("name"), str):
                    schema = tool.get("input_schema")
                    if isinstance(schema, dict):
                        req.tools.append(ToolSpec(tool["name"], schema))
            chars += len(dumps(tools))
        req.input_chars = chars

        choice = body.get("tool_choice")
        if isinstance(choice, Mapping):
            kind = choice.get("type")
            if kind == "none":
                req.tool_choice = "none"
            elif kind == "any":
                req.tool_choice = "required"
            elif kind == "tool":
                req.tool_choice = "required"
                name = choice.get("name")
                req.forced_tool = name if isinstance(name, str) else None

        # Structured output: output_config.format (GA) or the older top-level output_format.
        config = body.get("output_config")
        fmt = config.get("format") if isinstance(config, Mapping) else None
        if fmt is None:
            fmt = body.get("output_format")
        if isinstance(fmt, Mapping) and fmt.get("type") == "json_schema":
            schema = fmt.get("schema")
            req.json_schema = dict(schema) if isinstance(schema, Mapping) else {"type": "object"}
        return req

    # ------------------------------------------------------------------ replies

    def _usage(self, turn: Turn, output_tokens: int) -> dict[str, Any]:
        return {
            "input_tokens": turn.input_tokens,
            "output_tokens": output_tokens,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        }

    def _blocks(self, turn: Turn) -> list[dict[str, Any]]:
        if turn.tool_call is not None:
            call = turn.tool_call
            return [
                {
                    "type": "tool_use",
                    "id": f"toolu_{call.id_hex}",
                    "name": call.name,
                    "input": json.loads(call.arguments),
                }
            ]
        if turn.text is None:
            return []
        return [{"type": "text", "text": turn.text}]

    def _stop_details(self, turn: Turn) -> dict[str, Any] | None:
        if turn.finish != "refusal":
            return None
        return {"type": "refusal", "category": None, "explanation": "Simulated refusal."}

    def render(self, ctx: RequestContext, req: ChatRequest, turn: Turn) -> bytes:
        return dumps(
            {
                "id": ctx.message_id,
                "type": "message",
                "role": "assistant",
                "model": ctx.model,
                "content": self._blocks(turn),
                "stop_reason": _STOP[turn.finish],
                "stop_sequence": None,
                "stop_details": self._stop_details(turn),
                "usage": self._usage(turn, turn.output_tokens),
            }
        ).encode()

    def stream_plan(self, ctx: RequestContext, req: ChatRequest, turn: Turn) -> StreamPlan:
        start = {
            "type": "message_start",
            "message": {
                "id": ctx.message_id,
                "type": "message",
                "role": "assistant",
                "model": ctx.model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": self._usage(turn, 1 if turn.output_tokens else 0),
            },
        }
        head = [sse(start, "message_start"), sse({"type": "ping"}, "ping")]
        tokens: list[bytes] = []
        tail: list[bytes] = []
        if turn.tool_call is not None:
            call = turn.tool_call
            block = {
                "type": "tool_use",
                "id": f"toolu_{call.id_hex}",
                "name": call.name,
                "input": {},
            }
            head.append(
                sse(
                    {"type": "content_block_start", "index": 0, "content_block": block},
                    "content_block_start",
                )
            )
            tokens.extend(
                sse(
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "input_json_delta", "partial_json": piece},
                    },
                    "content_block_delta",
                )
                for piece in turn.pieces
            )
            tail.append(sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
        elif turn.text is not None:
            head.append(
                sse(
                    {
                        "type": "content_block_start",
                        "index": 0,
                        "content_block": {"type": "text", "text": ""},
                    },
                    "content_block_start",
                )
            )
            # Hot path: encode only the text of each delta, not the whole event.
            tokens.extend(
                (_TEXT_DELTA_HEAD + dumps(piece) + "}}\n\n").encode() for piece in turn.pieces
            )
            tail.append(sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
        tail.append(
            sse(
                {
                    "type": "message_delta",
                    "delta": {
                        "stop_reason": _STOP[turn.finish],
                        "stop_sequence": None,
                        "stop_details": self._stop_details(turn),
                    },
                    "usage": {"output_tokens": turn.output_tokens},
                },
                "message_delta",
            )
        )
        tail.append(sse({"type": "message_stop"}, "message_stop"))
        return StreamPlan(head, tokens, tail)

    # ------------------------------------------------------------------ errors

    def _error_body(self, ctx: RequestContext, etype: str, message: str) -> dict[str, Any]:
        return {
            "type": "error",
            "error": {"type": etype, "message": message},
            "request_id": ctx.request_id,
        }

    def context_length_error(self, info: ErrorInfo) -> tuple[int, str, str]:
        message = f"prompt is too long: {info.input_tokens} tokens > {info.limit} maximum"
        return 400, "invalid_request_error", message

    def error(self, kind: ErrorKind, ctx: RequestContext, info: ErrorInfo) -> tuple[int, bytes]:
        status, etype, message = self.error_entry(kind, info)
        return status, dumps(self._error_body(ctx, etype, message)).encode()

    def mid_stream_error(self, ctx: RequestContext) -> bytes:
        return sse(self._error_body(ctx, "overloaded_error", "Overloaded"), "error")

    def malformed(self, ctx: RequestContext, stream: bool) -> bytes:
        if stream:
            return b'event: message_start\ndata: {"type":"message_start","message":{"id":"\n\n'
        return b'{"id":"' + ctx.message_id.encode() + b'","type":"message","content":[{"ty'
