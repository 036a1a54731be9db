"""The ``openai`` wire protocol: OpenAI and every OpenAI-compatible host, via ``openai``.

Covers OpenAI, DeepSeek, Groq, Together, Fireworks, OpenRouter, DashScope's compatible
mode and local servers (vLLM, Ollama, llama.cpp). One ``AsyncOpenAI`` per event loop,
SDK retries off, every SDK failure translated into one taxonomy class.

SDK facts this relies on (openai 3.57):
* A non-streamed completion carries the ``x-request-id`` in ``completion._request_id``
  (set by the SDK for free); a stream exposes the HTTP response as ``stream.response``.
* An ``{"error": …}`` frame inside a stream raises a plain ``APIError`` with no status.
* A 200 body that is not JSON comes back as a ``str`` instead of a ``ChatCompletion``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletion

from hybridstack.errors import ProviderError
from hybridstack.providers._classify import classify
from hybridstack.providers._common import (
    AdapterBase,
    ToolCallAssembler,
    json_instruction,
    transport_code,
)
from hybridstack.types import (
    ChatRequest,
    ChatResponse,
    FinishEvent,
    FinishReason,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
    UsageEvent,
)

__all__ = ["OpenAIProvider"]

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
}


def _usage(raw: Any) -> Usage:
    """OpenAI usage, with OpenAI's and DeepSeek's two ways of reporting cache hits."""
    if raw is None:
        return Usage()
    cached = 0
    details = getattr(raw, "prompt_tokens_details", None)
    if details is not None:
        cached = getattr(details, "cached_tokens", None) or 0
    if not cached:
        extra = raw.model_extra
        if extra:
            cached = extra.get("prompt_cache_hit_tokens") or 0  # DeepSeek
    return Usage(
        input_tokens=raw.prompt_tokens or 0,
        output_tokens=raw.completion_tokens or 0,
        cached_input_tokens=cached,
    )


def _reasoning(obj: Any) -> str | None:
    """DeepSeek/Qwen ``reasoning_content`` (or vLLM/OpenRouter ``reasoning``), if sent."""
    extra = obj.model_extra
    if not extra:
        return None
    value = extra.get("reasoning_content") or extra.get("reasoning")
    return value if isinstance(value, str) else None


class OpenAIProvider(AdapterBase[AsyncOpenAI]):
    """Adapter for the OpenAI chat-completions protocol."""

    protocol = "openai"

    def _make_client(self) -> AsyncOpenAI:
        return AsyncOpenAI(
            base_url=self.deployment.base_url,
            api_key=self._api_key,
            max_retries=0,  # retries live in hybridstack's executor, once
            timeout=self.timeout_s,
        )

    async def _close_client(self, client: AsyncOpenAI) -> None:
        await client.close()

    # --- request --------------------------------------------------------------------

    def _messages(self, request: ChatRequest) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for m in request.messages:
            role = m.role
            if role == "tool":
                out.append({"role": "tool", "tool_call_id": m.tool_call_id, "content": m.text})
            elif role == "assistant":
                calls = m.all_tool_calls
                if calls:
                    out.append(
                        {
                            "role": "assistant",
                            "content": m.text or None,
                            "tool_calls": [
                                {
                                    "id": c.id,
                                    "type": "function",
                                    "function": {"name": c.name, "arguments": c.arguments_json},
                                }
                                for c in calls
                            ],
                        }
                    )
                else:
                    out.append({"role": "assistant", "content": m.text})
            else:
                out.append({"role": role, "content": m.text})
        return out

    def _params(self, request: ChatRequest) -> dict[str, Any]:
        messages = self._messages(request)
        params: dict[str, Any] = {"model": self.deployment.model, "messages": messages}
        if request.tools:
            params["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters,
                    },
                }
                for t in request.tools
            ]
        if request.tool_choice is not None:
            params["tool_choice"] = request.tool_choice
        schema = request.response_schema
        if schema is not None:
            if self._json_object_only:
                # JSON mode only: the schema travels in a system instruction.
                messages.insert(0, {"role": "system", "content": json_instruction(schema)})
                params["response_format"] = {"type": "json_object"}
            else:
                params["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {
                        "name": request.response_schema_name,
                        "schema": schema,
                        "strict": True,
                    },
                }
        if request.max_tokens is not None:
            params["max_tokens"] = request.max_tokens
        if request.temperature is not None:
            params["temperature"] = request.temperature
        if request.stop:
            params["stop"] = list(request.stop)
        return params

    # --- errors ---------------------------------------------------------------------

    def _translate(
        self,
        exc: Exception,
        *,
        partial_text: str = "",
        request_id: str | None = None,
        responded: bool = False,
    ) -> ProviderError:
        """The taxonomy error for ``exc``; ``responded``: a response was being read."""
        if isinstance(exc, ProviderError):
            return exc
        transport = transport_code(exc)
        if transport is not None:
            # Raw transport errors the SDK did not wrap (mid-stream reads).
            return self._error(
                "retry_here",
                f"transport failure: {type(exc).__name__}",
                code=transport,
                request_id=request_id,
                partial_text=partial_text,
                cause=exc,
            )
        if isinstance(exc, openai.APIStatusError):
            kind = classify(
                status=exc.status_code, code=exc.code, type_=exc.type, message=exc.message
            )
            return self._error(
                kind,
                exc.message,
                status=exc.status_code,
                code=exc.code or exc.type,
                request_id=exc.request_id or request_id,
                headers=exc.response.headers,
                partial_text=partial_text,
                cause=exc,
            )
        if isinstance(exc, openai.APITimeoutError):
            return self._error(
                "retry_here",
                f"no answer within {self.timeout_s:g} s",
                code="timeout",
                request_id=request_id,
                partial_text=partial_text,
                cause=exc,
            )
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__
            detail = f": {type(cause).__name__}" if cause is not None else ""
            return self._error(
                "retry_here",
                f"connection failed{detail}",
                code="connection_error",
                request_id=request_id,
                partial_text=partial_text,
                cause=exc,
            )
        if isinstance(exc, openai.APIResponseValidationError):
            return self._malformed(exc, partial_text, request_id)
        if isinstance(exc, openai.APIError):
            # An {"error": …} frame inside a 200 stream: no status, code/type from the body.
            kind = classify(status=None, code=exc.code, type_=exc.type, message=exc.message)
            return self._error(
                kind,
                exc.message,
                code=exc.code or exc.type,
                request_id=request_id,
                partial_text=partial_text,
                cause=exc,
            )
        if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError) or (
            responded
            and isinstance(exc, ValueError | KeyError | AttributeError | IndexError | TypeError)
        ):
            # A body or SSE frame that is not JSON, or a frame without the expected fields.
            # (Before any response the same types mean a bug or a bad argument: fatal.)
            return self._malformed(exc, partial_text, request_id)
        return self._error(
            "fatal",
            f"unexpected {type(exc).__name__} from the openai SDK: {exc}",
            request_id=request_id,
            partial_text=partial_text,
            cause=exc,
        )

    def _malformed(
        self, exc: BaseException | None, partial_text: str, request_id: str | None
    ) -> ProviderError:
        return self._error(
            "retry_here",
            "malformed response body"
            + (f": {type(exc).__name__}: {exc}"[:300] if exc is not None else ""),
            code="malformed_response",
            request_id=request_id,
            partial_text=partial_text,
            cause=exc,
        )

    def _refused(
        self, detail: str | None, request_id: str | None, partial_text: str = ""
    ) -> ProviderError:
        return self._error(
            "content_refused",
            "the provider refused the content" + (f": {detail}" if detail else ""),
            status=200,
            code="content_filter",
            request_id=request_id,
            partial_text=partial_text,
        )

    # --- calls ----------------------------------------------------------------------

    async def complete(
        self, request: ChatRequest, *, extra_headers: dict[str, str] | None = None
    ) -> ChatResponse:
        params = self._params(request)
        if extra_headers:
            params["extra_headers"] = extra_headers
        client = self._clients.get()
        started = time.perf_counter()
        try:
            completion = await client.chat.completions.create(**params)
        except Exception as exc:
            raise self._translate(exc) from exc
        latency = time.perf_counter() - started
        if not isinstance(completion, ChatCompletion):
            # The SDK hands back the raw text when the body is not JSON.
            raise self._malformed(None, "", None)
        request_id = completion._request_id
        try:
            choice = completion.choices[0]
            message = choice.message
            finish = choice.finish_reason
            text = message.content or ""
            refusal = message.refusal
            raw_calls = message.tool_calls
            usage = _usage(completion.usage)
            reasoning = _reasoning(message)
        except Exception as exc:
            raise self._malformed(exc, "", request_id) from exc
        if finish == "content_filter" or refusal:
            raise self._refused(refusal, request_id)
        tool_calls: tuple[ToolCall, ...] = ()
        if raw_calls:
            tool_calls = tuple(
                self._tool_call(c.id, c.function.name, c.function.arguments) for c in raw_calls
            )
        finish_reason = _FINISH.get(finish or "stop", "stop")
        if tool_calls and finish_reason == "stop":
            finish_reason = "tool_calls"  # some compatible hosts say "stop" after a tool call
        return self._response(
            text=text,
            tool_calls=tool_calls,
            finish_reason=finish_reason,
            usage=usage,
            latency_s=latency,
            request_id=request_id,
            reasoning=reasoning,
        )

    async def stream(
        self, request: ChatRequest, *, extra_headers: dict[str, str] | None = None
    ) -> AsyncIterator[StreamEvent]:
        params = self._params(request)
        params["stream"] = True
        params["stream_options"] = {"include_usage": True}
        if extra_headers:
            params["extra_headers"] = extra_headers
        client = self._clients.get()
        started = time.perf_counter()
        ttft: float | None = None
        parts: list[str] = []
        reasoning_parts: list[str] = []
        tools = ToolCallAssembler()
        usage: Usage | None = None
        finish: str | None = None
        refusal: str | None = None
        request_id: str | None = None
        sdk_stream: Any = None
        try:
            sdk_stream = await client.chat.completions.create(**params)
            request_id = sdk_stream.response.headers.get("x-request-id")
            async for chunk in sdk_stream:
                if chunk.usage is not None:
                    usage = _usage(chunk.usage)
                    yield UsageEvent(usage=usage)
                if not chunk.choices:  # the usage-only chunk has choices == []
                    continue
                choice = chunk.choices[0]
                delta = choice.delta
                if delta is not None:
                    text = delta.content
                    if text:
                        if ttft is None:
                            ttft = time.perf_counter() - started
                        parts.append(text)
                        yield TextDelta(text=text)
                    calls = delta.tool_calls
                    if calls:
                        if ttft is None:
                            ttft = time.perf_counter() - started
                        for position, call in enumerate(calls):
                            index = call.index if call.index is not None else position
                            fn = call.function
                            name = fn.name if fn is not None else None
                            arguments = (fn.arguments if fn is not None else None) or ""
                            tools.add(index, call.id, name, arguments)
                            yield ToolCallDelta(
                                index=index, id=call.id, name=name, arguments=arguments
                            )
                    if delta.refusal:
                        refusal = (refusal or "") + delta.refusal
                    reasoning = _reasoning(delta)
                    if reasoning:
                        reasoning_parts.append(reasoning)
                if choice.finish_reason:
                    finish = choice.finish_reason
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
        if finish == "content_filter" or refusal:
            raise self._refused(refusal, request_id, partial_text=text)
        if finish is None:
            raise self._error(
                "retry_here",
                "the stream ended without a finish reason (cut off)",
                code="stream_cut",
                request_id=request_id,
                partial_text=text,
            )
        tool_calls = tools.finish(self) if tools else ()
        finish_reason = _FINISH.get(finish, "stop")
        if tool_calls and finish_reason == "stop":
            finish_reason = "tool_calls"
        response = self._response(
            text=text,
            tool_calls=tool_calls,
            finish_reason=finish_reason,
            usage=usage or Usage(),
            latency_s=time.perf_counter() - started,
            ttft_s=ttft,
            request_id=request_id,
            reasoning="".join(reasoning_parts),
        )
        yield FinishEvent(finish_reason=finish_reason, response=response)
