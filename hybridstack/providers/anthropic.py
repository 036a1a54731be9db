"""The ``anthropic`` wire protocol (Claude, and hosts with an Anthropic-format endpoint).

One ``AsyncAnthropic`` per event loop, SDK retries off. System messages go in the
top-level ``system`` field, tool results become ``tool_result`` blocks of a user turn
(consecutive ones merged, as the API wants alternating roles), structured output uses
``output_config.format`` (or a forced tool on hosts that declare no ``json_schema``).

SDK facts this relies on (anthropic 2.14):
* ``messages.create(stream=True)`` yields raw events, cheaper than the ``stream()`` helper.
* An ``event: error`` frame inside a stream raises ``APIStatusError`` with
  ``status_code == 200`` and ``.type`` such as ``overloaded_error``: classified by type.
* ``APIStatusError.error_code`` is the stable cause (``enforced_spend_limit_reached`` …);
  ``.type`` the broad category; ``message._request_id`` the ``request-id`` header.
* ``stop_reason`` ``refusal`` and ``model_context_window_exceeded`` arrive with HTTP 200.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import anthropic
from anthropic import AsyncAnthropic
from anthropic.types import Message as AnthropicMessage
from anthropic.types import TextBlock, ThinkingBlock, ToolUseBlock

from hybridstack.errors import ProviderError
from hybridstack.providers._classify import classify
from hybridstack.providers._common import AdapterBase, ToolCallAssembler
from hybridstack.providers.base import DEFAULT_MAX_TOKENS
from hybridstack.types import (
    ChatRequest,
    ChatResponse,
    FinishReason,
    StreamEvent,
    TextDelta,
    ToolCall,
    Usage,
    UsageEvent,
)

__all__ = ["AnthropicProvider"]

_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}

_TOOL_CHOICE = {"auto": {"type": "auto"}, "none": {"type": "none"}, "required": {"type": "any"}}


def _usage(raw: Any, base: Usage | None = None) -> Usage:
    """Anthropic reports fresh, cache-read and cache-write input separately: sum them."""
    if raw is None:
        return base or Usage()
    prior = base or Usage()
    fresh = getattr(raw, "input_tokens", None)
    read = getattr(raw, "cache_read_input_tokens", None)
    write = getattr(raw, "cache_creation_input_tokens", None)
    output = getattr(raw, "output_tokens", None)
    if fresh is None and read is None and write is None:
        input_tokens, cached = prior.input_tokens, prior.cached_input_tokens
    else:
        input_tokens = (fresh or 0) + (read or 0) + (write or 0)
        cached = read or 0
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output if output is not None else prior.output_tokens,
        cached_input_tokens=cached,
    )


class AnthropicProvider(AdapterBase[AsyncAnthropic]):
    """Adapter for the Anthropic Messages protocol."""

    protocol = "anthropic"
    _sdk_client = AsyncAnthropic

    def _prime(self, client: AsyncAnthropic) -> None:
        client.messages  # noqa: B018 - a cached property that imports its module

    # --- request --------------------------------------------------------------------

    @staticmethod
    def _messages(request: ChatRequest) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for m in request.messages:
            role = m.role
            content: str | list[dict[str, Any]]
            if role == "system":
                continue  # goes to the top-level ``system`` field
            if role == "tool":
                role = "user"
                content = [
                    {"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.text}
                ]
            elif role == "assistant":
                blocks: list[dict[str, Any]] = []
                if m.text:
                    blocks.append({"type": "text", "text": m.text})
                for call in m.all_tool_calls:
                    blocks.append(
                        {
                            "type": "tool_use",
                            "id": call.id,
                            "name": call.name,
                            "input": call.arguments,
                        }
                    )
                if not blocks:
                    continue  # the API rejects empty assistant turns
                content = blocks
            else:
                content = m.text
            if out and out[-1]["role"] == role:
                # The API wants alternating roles: merge (tool results, then user text).
                prev = out[-1]
                if isinstance(prev["content"], str):
                    prev["content"] = [{"type": "text", "text": prev["content"]}]
                if isinstance(content, str):
                    content = [{"type": "text", "text": content}]
                prev["content"].extend(content)
            else:
                out.append({"role": role, "content": content})
        return out

    def _params(
        self, request: ChatRequest, extra_headers: dict[str, str] | None
    ) -> tuple[dict[str, Any], str | None]:
        """The ``messages.create`` arguments, and the forced tool standing in for a schema."""
        params: dict[str, Any] = {
            "model": self.deployment.model,
            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,  # required by the API
            "messages": self._messages(request),
        }
        system = request.system_text
        if system:
            params["system"] = system
        tools = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters}
            for t in request.tools
        ]
        if request.tool_choice is not None:
            params["tool_choice"] = _TOOL_CHOICE[request.tool_choice]
        forced: str | None = None
        schema = request.response_schema
        if schema is not None:
            if self._json_schema_native:
                params["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
            else:
                # Hosts without structured output: a tool whose input is the answer, forced.
                forced = request.response_schema_name
                tools.append(
                    {
                        "name": forced,
                        "description": "Return the final answer as this tool's input.",
                        "input_schema": schema,
                    }
                )
                params["tool_choice"] = {"type": "tool", "name": forced}
        if tools:
            params["tools"] = tools
        # No temperature: anthropic 2.x's messages.create no longer takes one (the models
        # choose their own sampling), and passing it raises TypeError before any request.
        if request.stop:
            params["stop_sequences"] = list(request.stop)
        if extra_headers:
            params["extra_headers"] = extra_headers
        return params, forced

    # --- errors ---------------------------------------------------------------------

    def _translate_sdk(
        self, exc: Exception, partial_text: str, request_id: str | None
    ) -> ProviderError | None:
        if isinstance(exc, anthropic.APIStatusError):
            # A 200 status means an ``event: error`` frame inside the stream.
            status = exc.status_code if exc.status_code >= 400 else None
            message = exc.api_message or exc.message
            kind = classify(status=status, code=exc.error_code, type_=exc.type, message=message)
            return self._error(
                kind,
                message,
                status=status,
                code=exc.error_code or exc.type,
                request_id=exc.request_id or request_id,
                headers=exc.response.headers,
                partial_text=partial_text,
                cause=exc,
            )
        if isinstance(exc, anthropic.APITimeoutError):
            return self._timed_out(exc, partial_text, request_id)
        if isinstance(exc, anthropic.APIConnectionError):
            return self._connection_failed(exc, exc.__cause__, partial_text, request_id)
        if isinstance(exc, anthropic.APIResponseValidationError):
            return self._malformed(exc, partial_text, request_id)
        if isinstance(exc, anthropic.APIError):
            kind = classify(status=None, message=exc.message)
            return self._error(
                kind, exc.message, request_id=request_id, partial_text=partial_text, cause=exc
            )
        return None

    def _check_stop(
        self, stop_reason: str | None, details: Any, request_id: str | None, partial_text: str
    ) -> None:
        """Refusals and context overflows arrive as 200 stop reasons: raise them."""
        if stop_reason == "refusal":
            category = getattr(details, "category", None) if details is not None else None
            raise self._error(
                "content_refused",
                "the model refused the request" + (f" (category {category})" if category else ""),
                status=200,
                code="refusal",
                request_id=request_id,
                partial_text=partial_text,
            )
        if stop_reason == "model_context_window_exceeded":
            raise self._error(
                "context_too_long",
                "the conversation exceeded the model's context window",
                status=200,
                code="model_context_window_exceeded",
                request_id=request_id,
                partial_text=partial_text,
            )

    # --- calls ----------------------------------------------------------------------

    async def complete(
        self, request: ChatRequest, *, extra_headers: dict[str, str] | None = None
    ) -> ChatResponse:
        params, forced = self._params(request, extra_headers)
        client = self._clients.get()
        started = time.perf_counter()
        try:
            message = await client.messages.create(**params)
        except Exception as exc:
            raise self._translate(exc) from exc
        latency = time.perf_counter() - started
        if not isinstance(message, AnthropicMessage):
            raise self._malformed(None, "", None)
        request_id = message._request_id
        texts: list[str] = []
        thinking: list[str] = []
        calls: list[ToolCall] = []
        try:
            for block in message.content:
                if isinstance(block, TextBlock):
                    texts.append(block.text)
                elif isinstance(block, ToolUseBlock):
                    if forced is not None and block.name == forced:
                        texts.append(json.dumps(block.input, ensure_ascii=False))
                    else:
                        calls.append(self._tool_call(block.id, block.name, block.input))
                elif isinstance(block, ThinkingBlock):
                    thinking.append(block.thinking)
            stop_reason = message.stop_reason
            stop_details = getattr(message, "stop_details", None)
            usage = _usage(message.usage)
        except ProviderError:
            raise
        except Exception as exc:
            raise self._malformed(exc, "", request_id) from exc
        text = "".join(texts)
        self._check_stop(stop_reason, stop_details, request_id, text)
        finish_reason = _FINISH.get(stop_reason or "end_turn", "stop")
        if forced is not None and finish_reason == "tool_calls":
            finish_reason = "stop"  # the forced tool was the answer, not a call to run
        return self._response(
            text=text,
            tool_calls=tuple(calls),
            finish_reason=finish_reason,
            usage=usage,
            latency_s=latency,
            request_id=request_id,
            reasoning="".join(thinking),
        )

    async def stream(
        self, request: ChatRequest, *, extra_headers: dict[str, str] | None = None
    ) -> AsyncIterator[StreamEvent]:
        params, forced = self._params(request, extra_headers)
        params["stream"] = True
        client = self._clients.get()
        started = time.perf_counter()
        ttft: float | None = None
        parts: list[str] = []
        thinking: list[str] = []
        tools = ToolCallAssembler()
        #: content-block index -> tool-call index (text blocks take block indexes too);
        #: -1 marks the forced tool whose input is the answer text.
        tool_index: dict[int, int] = {}
        usage = Usage()
        stop_reason: str | None = None
        stop_details: Any = None
        request_id: str | None = None
        sdk_stream: Any = None
        try:
            sdk_stream = await client.messages.create(**params)
            request_id = sdk_stream.response.headers.get("request-id")
            async for event in sdk_stream:
                etype = event.type
                if etype == "content_block_delta":
                    delta = event.delta
                    dtype = delta.type
                    if dtype == "text_delta":
                        if ttft is None:
                            ttft = time.perf_counter() - started
                        parts.append(delta.text)
                        yield TextDelta(text=delta.text)
                    elif dtype == "input_json_delta":
                        index = tool_index.get(event.index)
                        fragment = delta.partial_json
                        if index == -1:
                            if ttft is None:
                                ttft = time.perf_counter() - started
                            parts.append(fragment)
                            yield TextDelta(text=fragment)
                        elif index is not None and fragment:
                            yield tools.add(index, None, None, fragment)
                    elif dtype == "thinking_delta":
                        thinking.append(delta.thinking)
                elif etype == "content_block_start":
                    block = event.content_block
                    if block.type == "tool_use":
                        if ttft is None:
                            ttft = time.perf_counter() - started
                        if forced is not None and block.name == forced:
                            tool_index[event.index] = -1
                            continue
                        index = sum(1 for i in tool_index.values() if i >= 0)
                        tool_index[event.index] = index
                        # Some hosts send the whole input here instead of as deltas.
                        initial = json.dumps(block.input) if block.input else ""
                        yield tools.add(index, block.id, block.name, initial)
                    elif block.type == "text" and block.text:
                        parts.append(block.text)
                        yield TextDelta(text=block.text)
                elif etype == "message_start":
                    usage = _usage(event.message.usage)
                elif etype == "message_delta":
                    stop_reason = event.delta.stop_reason or stop_reason
                    stop_details = getattr(event.delta, "stop_details", None) or stop_details
                    usage = _usage(event.usage, usage)
                    yield UsageEvent(usage=usage)
        except Exception as exc:
            raise self._translate(
                exc,
                partial_text="".join(parts),
                request_id=request_id,
                responded=sdk_stream is not None,
            ) from exc
        finally:
            if sdk_stream is not None:
                await sdk_stream.close()

        text = "".join(parts)
        self._check_stop(stop_reason, stop_details, request_id, text)
        if stop_reason is None:
            # message_delta carries the stop reason; without it the stream was cut.
            raise self._stream_cut("stop reason", request_id, text)
        finish_reason = _FINISH.get(stop_reason, "stop")
        if forced is not None and finish_reason == "tool_calls":
            finish_reason = "stop"
        yield self._finished(
            text=text,
            tool_calls=tools.finish(self) if tools else (),
            finish_reason=finish_reason,
            usage=usage,
            started=started,
            ttft_s=ttft,
            request_id=request_id,
            reasoning="".join(thinking),
        )
