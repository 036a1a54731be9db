"""Protocol-neutral core of the emulator's wires: the normalised request and reply.

Each wire adapter (``_wire_openai``, ``_wire_anthropic``, ``_wire_dashscope``) turns its
provider's request body into a :class:`ChatRequest`; :func:`synthesize` turns that into a
:class:`Turn` (deterministic text, a tool call, or JSON that fits a schema); the adapter
then renders the turn in its own wire format. Nothing here imports a provider SDK; the
only formats known here are the ones several wires share: OpenAI-shaped messages and
options (OpenAI and DashScope) and ``event:``/``data:`` SSE framing (OpenAI, Anthropic).
"""

from __future__ import annotations

import abc
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

#: Compact JSON, made once: replies are encoded on the hot path of every request.
dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

Finish = Literal["stop", "tool_calls", "length", "refusal"]
ErrorKind = Literal[
    "rate_limit",
    "server_error",
    "unavailable",
    "overloaded",
    "auth",
    "quota",
    "context_length",
    "refusal",
    "outage",
    "bad_request",
    "not_found",
]


class BadRequest(Exception):
    """The request body is not something the real provider would accept (answered with 400)."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


@dataclass(slots=True)
class ToolSpec:
    name: str
    parameters: dict[str, Any]


@dataclass(slots=True)
class ChatRequest:
    """What the emulator needs from any provider's chat request, and nothing more."""

    stream: bool = False
    system_text: str = ""
    last_user_text: str = ""
    #: text of the tool results that end the conversation ("" when it does not end in one)
    tool_result_text: str = ""
    last_is_tool_result: bool = False
    #: characters of prompt text (messages, system, tool definitions) for the token estimate
    input_chars: int = 0
    tools: list[ToolSpec] = field(default_factory=list)
    tool_choice: Literal["auto", "none", "required"] = "auto"
    forced_tool: str | None = None
    json_schema: dict[str, Any] | None = None
    json_object: bool = False
    max_tokens: int | None = None
    include_usage: bool = False  # OpenAI stream_options.include_usage
    incremental: bool = True  # DashScope incremental_output
    message_format: bool = True  # DashScope result_format == "message"

    @property
    def input_tokens(self) -> int:
        return estimate_tokens(self.input_chars)


@dataclass(slots=True)
class ToolCall:
    id_hex: str  # wire adapters add their provider's prefix (call_, toolu_)
    name: str
    arguments: str  # JSON text


@dataclass(slots=True)
class Turn:
    """One synthesized assistant turn, before any wire format is applied."""

    text: str | None
    tool_call: ToolCall | None
    finish: Finish
    input_tokens: int
    output_tokens: int
    #: what a stream sends one frame at a time: words of the text, or pieces of the arguments
    pieces: list[str]


@dataclass(slots=True)
class RequestContext:
    deployment: str
    model: str
    request_id: str
    message_id: str
    created: int


@dataclass(slots=True)
class ErrorInfo:
    message: str | None = None
    input_tokens: int = 0
    limit: int = 0
    param: str | None = None
    #: Replaces the wire's own error code (``FaultProfile.error_codes``).
    code: str | None = None


@dataclass(slots=True)
class StreamPlan:
    """Frames of one streamed reply, split where faults cut in (after head / after k tokens)."""

    head: list[bytes]
    tokens: list[bytes]
    tail: list[bytes]


class WireAdapter(abc.ABC):
    """One provider's wire format: parse a request body, render replies and errors."""

    protocol: ClassVar[str]
    #: path served below ``/d/{name}``
    endpoint: ClassVar[str]
    #: what ``Emulator.base_url`` appends to ``/d/{name}`` for this SDK
    base_suffix: ClassVar[str]
    request_id_header: ClassVar[str]
    json_content_type: ClassVar[str] = "application/json"
    sse_content_type: ClassVar[str] = "text/event-stream; charset=utf-8"
    #: ``kind`` → (HTTP status, this wire's error fields …, message): the message is last
    canned_errors: ClassVar[Mapping[str, tuple[Any, ...]]]
    #: Which field of a ``canned_errors`` entry carries the provider's error code.
    code_field: ClassVar[int]

    @abc.abstractmethod
    def parse(self, body: dict[str, Any], headers: Mapping[str, str]) -> ChatRequest: ...

    @abc.abstractmethod
    def render(self, ctx: RequestContext, req: ChatRequest, turn: Turn) -> bytes: ...

    @abc.abstractmethod
    def stream_plan(self, ctx: RequestContext, req: ChatRequest, turn: Turn) -> StreamPlan: ...

    @abc.abstractmethod
    def error(self, kind: ErrorKind, ctx: RequestContext, info: ErrorInfo) -> tuple[int, bytes]: ...

    @abc.abstractmethod
    def context_length_error(self, info: ErrorInfo) -> tuple[Any, ...]:
        """The ``context_length`` entry, shaped as in ``canned_errors`` (it quotes the limit)."""

    def error_entry(self, kind: ErrorKind, info: ErrorInfo) -> tuple[Any, ...]:
        """(status, fields …, message) of a ``kind`` error; ``info`` may replace code and text."""
        if kind == "context_length":
            entry = self.context_length_error(info)
        else:
            entry = self.canned_errors[kind]
        if info.code is not None:
            at = self.code_field
            entry = (*entry[:at], info.code, *entry[at + 1 :])
        return (*entry[:-1], info.message) if info.message else entry

    def auth_message(self, api_key: str | None) -> str | None:
        """The text of a 401 for ``api_key``; None keeps the canned message."""
        return None

    @abc.abstractmethod
    def mid_stream_error(self, ctx: RequestContext) -> bytes: ...

    @abc.abstractmethod
    def malformed(self, ctx: RequestContext, stream: bool) -> bytes: ...

    def refusal_is_error(self, refusal_style: str) -> bool:
        """True when this wire reports a refusal as an HTTP error instead of a 200."""
        return False


# --------------------------------------------------------------------------- text helpers


def estimate_tokens(chars: int) -> int:
    """The emulator's one token rule: ceil(chars / 4), at least 1."""
    return max(1, math.ceil(chars / 4))


def content_text(content: Any) -> str:
    """Plain text of a message ``content`` in any of the three providers' shapes."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping):
                text = part.get("text")
                if isinstance(text, str):
                    parts.append(text)
                elif part.get("type") == "tool_result":
                    parts.append(content_text(part.get("content")))
        return "\n".join(parts)
    return str(content)


def tool_call_chars(calls: Any) -> int:
    """Prompt characters of the tool calls in an earlier assistant message (OpenAI shape)."""
    chars = 0
    for call in calls or ():
        fn = call.get("function") if isinstance(call, Mapping) else None
        if isinstance(fn, Mapping):
            chars += len(str(fn.get("name", ""))) + len(str(fn.get("arguments", "")))
    return chars


def normalise_tool_choice(
    choice: Any,
) -> tuple[Literal["auto", "none", "required"], str | None]:
    """OpenAI/DashScope ``tool_choice`` → (mode, forced tool name)."""
    if choice in (None, "auto"):
        return "auto", None
    if choice == "none":
        return "none", None
    if choice == "required":
        return "required", None
    if isinstance(choice, Mapping):
        fn = choice.get("function")
        name = fn.get("name") if isinstance(fn, Mapping) else choice.get("name")
        if isinstance(name, str) and name:
            return "required", name
        return "required", None
    return "auto", None


def openai_style_tools(tools: Any) -> list[ToolSpec]:
    """``[{"type":"function","function":{name, parameters}}]`` as OpenAI and DashScope send."""
    specs: list[ToolSpec] = []
    if not isinstance(tools, list):
        return specs
    for tool in tools:
        if not isinstance(tool, Mapping):
            continue
        fn = tool.get("function")
        if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
            continue
        params = fn.get("parameters")
        specs.append(ToolSpec(fn["name"], params if isinstance(params, dict) else {}))
    return specs


def parse_openai_style_messages(
    req: ChatRequest,
    messages: list[Any],
    *,
    system_roles: tuple[str, ...],
    tool_roles: tuple[str, ...],
    not_an_object: str,
    param: str | None = None,
) -> int:
    """Fill ``req`` from OpenAI-shaped ``messages``; returns their prompt characters.

    Sets the system text, the last user text and the tool results that end the
    conversation. A message that is not an object is a :class:`BadRequest` with the
    provider's wording ``not_an_object`` (and ``param``).
    """
    system: list[str] = []
    chars = 0
    for msg in messages:
        if not isinstance(msg, Mapping):
            raise BadRequest(not_an_object, param=param)
        role = msg.get("role")
        text = content_text(msg.get("content"))
        chars += len(text)
        if role in system_roles:
            system.append(text)
        elif role == "user":
            req.last_user_text = text
        elif role == "assistant":
            chars += tool_call_chars(msg.get("tool_calls"))
    trailing: list[str] = []
    for msg in reversed(messages):
        if msg.get("role") not in tool_roles:
            break
        trailing.append(content_text(msg.get("content")))
    req.last_is_tool_result = bool(trailing)
    req.tool_result_text = "\n".join(reversed(trailing))
    req.system_text = "\n".join(system)
    return chars


def parse_openai_style_options(req: ChatRequest, options: Mapping[str, Any], chars: int) -> None:
    """Tools, tool choice and response format from OpenAI-shaped ``options``.

    ``chars``: the prompt characters so far; the tool definitions add theirs.
    """
    tools = options.get("tools")
    req.tools = openai_style_tools(tools)
    if tools:
        chars += len(dumps(tools))
    req.input_chars = chars
    req.tool_choice, req.forced_tool = normalise_tool_choice(options.get("tool_choice"))
    req.json_schema, req.json_object = response_format_schema(options.get("response_format"))


def response_format_schema(fmt: Any) -> tuple[dict[str, Any] | None, bool]:
    """OpenAI/DashScope ``response_format`` → (JSON schema, json_object flag)."""
    if not isinstance(fmt, Mapping):
        return None, False
    kind = fmt.get("type")
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        if schema is None:
            schema = fmt.get("schema")
        return (dict(schema) if isinstance(schema, Mapping) else {"type": "object"}), False
    if kind == "json_object":
        return None, True
    return None, False


# --------------------------------------------------------------------------- SSE framing


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event the OpenAI / Anthropic way: ``event: NAME`` when named, then
    ``data: JSON`` and the blank line."""
    head = b"data: " if event is None else b"event: " + event.encode() + b"\ndata: "
    return head + dumps(data).encode() + b"\n\n"
