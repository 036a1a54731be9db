"""OpenAI Chat Completions wire format for the emulator (``POST …/v1/chat/completions``).

Parses a chat.completions request into the neutral :class:`ChatRequest` and renders
``chat.completion`` JSON, ``chat.completion.chunk`` SSE frames and
``{"error": {message, type, param, code}}`` bodies the way ``openai`` 3.x parses them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hybridstack.emulator.wire.common import (
    BadRequest,
    ChatRequest,
    ErrorInfo,
    ErrorKind,
    RequestContext,
    StreamPlan,
    Turn,
    WireAdapter,
    dumps,
    parse_openai_style_messages,
    parse_openai_style_options,
    sse,
)

_FINISH = {
    "stop": "stop",
    "tool_calls": "tool_calls",
    "length": "length",
    "refusal": "content_filter",
}

# status, type, code, message — shaped like the real API's bodies.
_ERRORS: dict[str, tuple[int, str, str | None, str]] = {
    "rate_limit": (
        429,
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for requests (simulated by hybridstack emulator). "
        "Please try again later.",
    ),
    "server_error": (
        500,
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that! (simulated)",
    ),
    "unavailable": (
        503,
        "server_error",
        "service_unavailable",
        "The engine is currently overloaded, please try again later. (simulated)",
    ),
    "overloaded": (529, "server_error", "overloaded", "The server is overloaded. (simulated)"),
    "outage": (
        503,
        "server_error",
        "service_unavailable",
        "Service unavailable (simulated outage).",
    ),
    "auth": (
        401,
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided. (simulated)",
    ),
    "quota": (
        429,
        "insufficient_quota",
        "insufficient_quota",
        "You exceeded your current quota, please check your plan and billing details. (simulated)",
    ),
    "refusal": (
        400,
        "data_inspection_failed",
        "data_inspection_failed",
        "Input data may contain inappropriate content. (simulated)",
    ),
    "bad_request": (400, "invalid_request_error", None, "Invalid request."),
    "not_found": (404, "invalid_request_error", "model_not_found", "Not found."),
}


class OpenAIWire(WireAdapter):
    protocol = "openai"
    endpoint = "/v1/chat/completions"
    base_suffix = "/v1"
    request_id_header = "x-request-id"
    canned_errors = _ERRORS
    code_field = 2  # the body's ``code``

    def parse(self, body: dict[str, Any], headers: Mapping[str, str]) -> ChatRequest:
        if not body.get("model"):
            raise BadRequest("you must provide a model parameter", param="model")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("'messages' must be a non-empty array", param="messages")
        req = ChatRequest(stream=bool(body.get("stream")))
        chars = parse_openai_style_messages(
            req,
            messages,
            system_roles=("system", "developer"),
            tool_roles=("tool", "function"),
            not_an_object="each message must be an object",
            param="messages",
        )
        parse_openai_style_options(req, body, chars)
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        req.max_tokens = max_tokens if isinstance(max_tokens, int) else None
        options = body.get("stream_options")
        req.include_usage = isinstance(options, Mapping) and bool(options.get("include_usage"))
        return req

    # ------------------------------------------------------------------ replies

    def _usage(self, turn: Turn) -> dict[str, Any]:
        return {
            "prompt_tokens": turn.input_tokens,
            "completion_tokens": turn.output_tokens,
            "total_tokens": turn.input_tokens + turn.output_tokens,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }

    def render(self, ctx: RequestContext, req: ChatRequest, turn: Turn) -> bytes:
        message: dict[str, Any] = {"role": "assistant", "content": turn.text, "refusal": None}
        if turn.tool_call is not None:
            call = turn.tool_call
            message["tool_calls"] = [
                {
                    "id": f"call_{call.id_hex}",
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
            ]
        return dumps(
            {
                "id": ctx.message_id,
                "object": "chat.completion",
                "created": ctx.created,
                "model": ctx.model,
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "logprobs": None,
                        "finish_reason": _FINISH[turn.finish],
                    }
                ],
                "usage": self._usage(turn),
                "system_fingerprint": None,
            }
        ).encode()

    @staticmethod
    def _chunker(ctx: RequestContext) -> Callable[[str, str | None], bytes]:
        """Frame builder with the per-request envelope encoded once.

        Streams are the emulator's hot path: only each frame's delta is JSON-encoded, the
        envelope around it (id, created, model) is spliced in as ready-made text.
        """
        head = (
            'data: {"id":'
            + dumps(ctx.message_id)
            + ',"object":"chat.completion.chunk","created":'
            + str(ctx.created)
            + ',"model":'
            + dumps(ctx.model)
            + ',"choices":[{"index":0,"delta":'
        )

        def chunk(delta_json: str, finish: str | None) -> bytes:
            finish_json = "null" if finish is None else dumps(finish)
            return (
                head + delta_json + ',"logprobs":null,"finish_reason":' + finish_json + "}]}\n\n"
            ).encode()

        return chunk

    def stream_plan(self, ctx: RequestContext, req: ChatRequest, turn: Turn) -> StreamPlan:
        chunk = self._chunker(ctx)
        head = [chunk('{"role":"assistant","content":""}', None)]
        tokens: list[bytes] = []
        if turn.tool_call is not None:
            call = turn.tool_call
            # First fragment carries id and name; later ones only pieces of the arguments.
            for i, piece in enumerate(turn.pieces):
                entry: dict[str, Any] = {"index": 0, "function": {"arguments": piece}}
                if i == 0:
                    entry = {
                        "index": 0,
                        "id": f"call_{call.id_hex}",
                        "type": "function",
                        "function": {"name": call.name, "arguments": piece},
                    }
                tokens.append(chunk(dumps({"tool_calls": [entry]}), None))
        else:
            tokens.extend(chunk('{"content":' + dumps(piece) + "}", None) for piece in turn.pieces)
        tail = [chunk("{}", _FINISH[turn.finish])]
        if req.include_usage:
            usage_frame = {
                "id": ctx.message_id,
                "object": "chat.completion.chunk",
                "created": ctx.created,
                "model": ctx.model,
                "choices": [],
                "usage": self._usage(turn),
            }
            tail.append(sse(usage_frame))
        tail.append(b"data: [DONE]\n\n")
        return StreamPlan(head, tokens, tail)

    # ------------------------------------------------------------------ errors

    def context_length_error(self, info: ErrorInfo) -> tuple[int, str, str, str]:
        return (
            400,
            "invalid_request_error",
            "context_length_exceeded",
            f"This model's maximum context length is {info.limit} tokens. However, your "
            f"messages resulted in {info.input_tokens} tokens. Please reduce the length "
            "of the messages.",
        )

    def error(self, kind: ErrorKind, ctx: RequestContext, info: ErrorInfo) -> tuple[int, bytes]:
        status, etype, code, message = self.error_entry(kind, info)
        param = "messages" if kind == "context_length" else info.param
        body = {"error": {"message": message, "type": etype, "param": param, "code": code}}
        return status, dumps(body).encode()

    def auth_message(self, api_key: str | None) -> str | None:
        # Like api.openai.com: the key's first 8 and last 4 characters, stars between.
        if not api_key:
            return None
        shown = api_key[:8] + "*" * max(3, len(api_key) - 12) + api_key[-4:]
        return (
            f"Incorrect API key provided: {shown}. You can find your API key at "
            "https://platform.openai.com/account/api-keys. (simulated)"
        )

    def mid_stream_error(self, ctx: RequestContext) -> bytes:
        body = {
            "error": {
                "message": "The server had an error while processing your request. (simulated)",
                "type": "server_error",
                "param": None,
                "code": "server_error",
            }
        }
        return sse(body)

    def malformed(self, ctx: RequestContext, stream: bool) -> bytes:
        if stream:
            return (
                b'data: {"id":"' + ctx.message_id.encode() + b'","object":"chat.completion.chunk",'
                b'"choices":[{"index":0,"delta":{"content":"trunc\n\n'
            )
        return b'{"id":"' + ctx.message_id.encode() + b'","object":"chat.completion","choices":[{'

    def refusal_is_error(self, refusal_style: str) -> bool:
        # DashScope's OpenAI-compatible mode refuses with 400 data_inspection_failed.
        return refusal_style == "dashscope-compat"
