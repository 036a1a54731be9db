"""Opt-in message content for the call span, in the GenAI conventions' JSON shape.

``gen_ai.input.messages``, ``gen_ai.system_instructions`` and ``gen_ai.output.messages``
as JSON parts (text, tool calls, tool results). Every text is redacted of personal data,
then scrubbed of keys, then cut to the configured length, before it becomes an
attribute. Only :mod:`hybridstack.telemetry.otel` imports this: it loads with OpenTelemetry.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from hybridstack._secrets import scrub

if TYPE_CHECKING:
    from hybridstack.types import ChatRequest, ChatResponse

__all__ = ["input_content", "output_content"]


def _clean(text: str, limit: int) -> str:
    """Content as telemetry may hold it: personal data redacted, keys scrubbed, cut."""
    from hybridstack.routing import redact_text

    text = scrub(redact_text(text)[0])
    return text if len(text) <= limit else text[: limit - 1] + "…"


def input_content(request: ChatRequest, limit: int) -> dict[str, str]:
    """The request's messages (and system instructions) as attributes."""
    system = [
        {"type": "text", "content": _clean(m.text, limit)}
        for m in request.messages
        if m.role == "system"
    ]
    messages: list[dict[str, Any]] = []
    for m in request.messages:
        if m.role == "system":
            continue
        parts: list[dict[str, Any]] = []
        if m.role == "tool":
            parts.append(
                {
                    "type": "tool_call_response",
                    "id": m.tool_call_id,
                    "response": _clean(m.text, limit),
                }
            )
        elif m.text:
            parts.append({"type": "text", "content": _clean(m.text, limit)})
        parts.extend(_tool_call_part(c, limit) for c in m.all_tool_calls)
        messages.append({"role": m.role, "parts": parts})
    attrs = {"gen_ai.input.messages": _json(messages)}
    if system:
        attrs["gen_ai.system_instructions"] = _json(system)
    return attrs


def output_content(response: ChatResponse, limit: int) -> dict[str, str]:
    """The reply (text, tool calls, finish reason) as an attribute."""
    parts: list[dict[str, Any]] = []
    if response.text:
        parts.append({"type": "text", "content": _clean(response.text, limit)})
    parts.extend(_tool_call_part(c, limit) for c in response.tool_calls)
    message = {"role": "assistant", "parts": parts, "finish_reason": response.finish_reason}
    return {"gen_ai.output.messages": _json([message])}


def _tool_call_part(call: Any, limit: int) -> dict[str, Any]:
    arguments = _clean(call.arguments_json, limit)
    try:
        parsed: Any = json.loads(arguments)
    except ValueError:
        parsed = arguments  # cut or redacted out of JSON shape: keep the text
    return {"type": "tool_call", "id": call.id, "name": call.name, "arguments": parsed}


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
