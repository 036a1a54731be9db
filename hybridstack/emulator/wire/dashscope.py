"""DashScope native text-generation wire format for the emulator.

Serves ``POST …/api/v1/services/aigc/text-generation/generation`` the way ``dashscope``
2.0.2 (``HttpRequest._handle_aio_response`` and ``common.utils._handle_aio_stream``)
parses it: a JSON body with ``output``/``usage``/``request_id``; SSE frames
``id:`` / ``event:result`` / ``:HTTP_STATUS/200`` / ``data:{…}`` (no space after the
colons: the SDK matches ``event:error`` literally); errors as ``{"code","message",
"request_id"}`` with the HTTP status, or mid-stream as an ``event:error`` frame whose
``status:`` line the SDK turns into the response's ``status_code``.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    estimate_tokens,
    parse_openai_style_messages,
    parse_openai_style_options,
)

_FINISH = {"stop": "stop", "tool_calls": "tool_calls", "length": "length", "refusal": "stop"}

# status, code, message — codes from the DashScope error-code page.
_ERRORS: dict[str, tuple[int, str, str]] = {
    "rate_limit": (
        429,
        "Throttling.RateQuota",
        "Requests rate limit exceeded, please try again later.",
    ),
    "server_error": (
        500,
        "InternalError",
        "An internal error has occured, please try again later or contact service support.",
    ),
    "unavailable": (503, "ModelServingError", "Model serving is overloaded (simulated)."),
    "overloaded": (529, "ModelServingError", "Model serving is overloaded (simulated)."),
    "outage": (503, "ModelUnavailable", "Model is unavailable (simulated outage)."),
    "auth": (401, "InvalidApiKey", "Invalid API-key provided."),
    "quota": (
        400,
        "Arrearage",
        "Access denied, please make sure your account is in good standing.",
    ),
    "refusal": (
        400,
        "DataInspectionFailed",
        "Input or output data may contain inappropriate content.",
    ),
    "bad_request": (400, "InvalidParameter", "Invalid parameter."),
    "not_found": (404, "ModelNotFound", "Model not exist."),
}


def _truthy_header(headers: Mapping[str, str], name: str, needle: str) -> bool:
    value = headers.get(name)
    return value is not None and needle in value.lower()


class DashScopeWire(WireAdapter):
    protocol = "dashscope"
    endpoint = "/api/v1/services/aigc/text-generation/generation"
    base_suffix = "/api/v1"
    request_id_header = "x-request-id"
    canned_errors = _ERRORS
    code_field = 1  # the body's ``code``

    def parse(self, body: dict[str, Any], headers: Mapping[str, str]) -> ChatRequest:
        if not body.get("model"):
            raise BadRequest("Model not specified.")
        inp = body.get("input")
        params = body.get("parameters")
        params = params if isinstance(params, Mapping) else {}
        if not isinstance(inp, Mapping):
            raise BadRequest('Required parameter "input" missing from request.')
        # The SDK never puts ``stream`` in the body: it asks for SSE with headers.
        stream = (
            _truthy_header(headers, "X-DashScope-SSE", "enable")
            or _truthy_header(headers, "Accept", "text/event-stream")
            or bool(params.get("stream"))
        )
        req = ChatRequest(stream=stream)
        messages = inp.get("messages")
        if isinstance(messages, list) and messages:
            chars = parse_openai_style_messages(
                req,
                messages,
                system_roles=("system",),
                tool_roles=("tool",),
                not_an_object="Each message must be an object.",
            )
        elif isinstance(inp.get("prompt"), str) and inp["prompt"]:
            req.last_user_text = inp["prompt"]
            chars = len(inp["prompt"])
        else:
            raise BadRequest("Required input parameter missing from request.")
        parse_openai_style_options(req, params, chars)
        max_tokens = params.get("max_tokens")
        req.max_tokens = max_tokens if isinstance(max_tokens, int) else None
        req.incremental = bool(params.get("incremental_output"))
        req.message_format = params.get("result_format") == "message" or bool(req.tools)
        return req

    # ------------------------------------------------------------------ replies

    @staticmethod
    def _usage(turn: Turn, output_tokens: int) -> dict[str, int]:
        return {
            "input_tokens": turn.input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": turn.input_tokens + output_tokens,
        }

    @staticmethod
    def _tool_calls(turn: Turn, arguments: str, first: bool) -> list[dict[str, Any]]:
        assert turn.tool_call is not None
        call = turn.tool_call
        function: dict[str, Any] = {"arguments": arguments}
        if first:
            function = {"name": call.name, "arguments": arguments}
        return [
            {
                "index": 0,
                "id": f"call_{call.id_hex}" if first else "",
                "type": "function",
                "function": function,
            }
        ]

    def _output(self, req: ChatRequest, turn: Turn, text: str, finish: str, tools: Any) -> Any:
        if not req.message_format:
            return {"text": text, "finish_reason": finish}
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if tools is not None:
            message["tool_calls"] = tools
        return {"choices": [{"finish_reason": finish, "message": message}]}

    def render(self, ctx: RequestContext, req: ChatRequest, turn: Turn) -> bytes:
        tools = None
        if turn.tool_call is not None:
            tools = self._tool_calls(turn, turn.tool_call.arguments, True)
        output = self._output(req, turn, turn.text or "", _FINISH[turn.finish], tools)
        return dumps(
            {
                "status_code": 200,
                "request_id": ctx.request_id,
                "code": "",
                "message": "",
                "output": output,
                "usage": self._usage(turn, turn.output_tokens),
            }
        ).encode()

    def _frame(self, ctx: RequestContext, seq: int, output: Any, usage: dict[str, int]) -> bytes:
        data = dumps({"output": output, "usage": usage, "request_id": ctx.request_id})
        return f"id:{seq}\nevent:result\n:HTTP_STATUS/200\ndata:{data}\n\n".encode()

    def stream_plan(self, ctx: RequestContext, req: ChatRequest, turn: Turn) -> StreamPlan:
        tokens: list[bytes] = []
        emitted = ""
        # Hot path (text in message format): splice the encoded text into a ready envelope.
        fast = req.message_format and turn.tool_call is None
        text_head = (
            '{"output":{"choices":[{"finish_reason":"null","message":{"role":"assistant","content":'
        )
        rid = dumps(ctx.request_id)
        for seq, piece in enumerate(turn.pieces, start=1):
            emitted += piece
            # Cumulative usage per frame, never above the final count.
            out_tokens = min(turn.output_tokens, estimate_tokens(len(emitted)))
            shown = piece if req.incremental else emitted
            if fast:
                total = turn.input_tokens + out_tokens
                data = (
                    f'{text_head}{dumps(shown)}}}}}]}},"usage":{{"input_tokens":{turn.input_tokens},'
                    f'"output_tokens":{out_tokens},"total_tokens":{total}}},"request_id":{rid}}}'
                )
                tokens.append(f"id:{seq}\nevent:result\n:HTTP_STATUS/200\ndata:{data}\n\n".encode())
                continue
            usage = self._usage(turn, out_tokens)
            if turn.tool_call is not None:
                tools = self._tool_calls(turn, shown, seq == 1 or not req.incremental)
                output = self._output(req, turn, "", "null", tools)
            else:
                output = self._output(req, turn, shown, "null", None)
            tokens.append(self._frame(ctx, seq, output, usage))
        final_tools = None
        final_text = "" if req.incremental else (turn.text or "")
        if turn.tool_call is not None and not req.incremental:
            final_tools = self._tool_calls(turn, turn.tool_call.arguments, True)
        output = self._output(req, turn, final_text, _FINISH[turn.finish], final_tools)
        tail = [
            self._frame(ctx, len(turn.pieces) + 1, output, self._usage(turn, turn.output_tokens))
        ]
        return StreamPlan([], tokens, tail)

    # ------------------------------------------------------------------ errors

    def context_length_error(self, info: ErrorInfo) -> tuple[int, str, str]:
        return 400, "InvalidParameter", f"Range of input length should be [1, {info.limit}]"

    def error(self, kind: ErrorKind, ctx: RequestContext, info: ErrorInfo) -> tuple[int, bytes]:
        status, code, message = self.error_entry(kind, info)
        body = {"code": code, "message": message, "request_id": ctx.request_id}
        return status, dumps(body).encode()

    def mid_stream_error(self, ctx: RequestContext) -> bytes:
        status, code, message = _ERRORS["server_error"]
        data = dumps({"code": code, "message": message, "request_id": ctx.request_id})
        # ``:HTTP_STATUS/500`` is what the service sends (an SSE comment); the SDK ignores it and
        # reads ``status:`` instead (default 400), so both are sent.
        frame = f"id:0\nevent:error\n:HTTP_STATUS/{status}\nstatus:{status}\ndata:{data}\n\n"
        return frame.encode()

    def malformed(self, ctx: RequestContext, stream: bool) -> bytes:
        if stream:
            return b'id:1\nevent:result\n:HTTP_STATUS/200\ndata:{"output":{"choices":[{"mess\n\n'
        return b'{"status_code":200,"request_id":"' + ctx.request_id.encode() + b'","output":{'

    def refusal_is_error(self, refusal_style: str) -> bool:
        return True  # DashScope always refuses with 400 DataInspectionFailed
