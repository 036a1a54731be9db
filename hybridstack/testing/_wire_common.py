"""Protocol-neutral core of the emulator: the normalised request, reply synthesis, JSON examples.

Each wire adapter (``_wire_openai``, ``_wire_anthropic``, ``_wire_dashscope``) turns its
provider's request body into a :class:`ChatRequest`; :func:`synthesize` turns that into a
:class:`Turn` (deterministic text, a tool call, or JSON that fits a schema); the adapter
then renders the turn in its own wire format. Nothing here imports a provider SDK; the
only formats known here are the ones several wires share: OpenAI-shaped messages and
options (OpenAI and DashScope) and ``event:``/``data:`` SSE framing (OpenAI, Anthropic).
"""

from __future__ import annotations

import abc
import hashlib
import json
import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
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


# --------------------------------------------------------------------------- directives

_REPLY_RE = re.compile(r"^[ \t]*EMULATOR_REPLY:(.*)$", re.MULTILINE)
_TOOL_RE = re.compile(r"^[ \t]*EMULATOR_TOOL:[ \t]*([^\s{]*)[ \t]*(\{.*\})?[ \t]*$", re.MULTILINE)
_TOOL_WORD_RE = re.compile(r"\btools?\b", re.IGNORECASE)


def _directive(regex: re.Pattern[str], req: ChatRequest) -> re.Match[str] | None:
    # The last user message wins over the system prompt, so one test can override a
    # scripted default without rewriting the system prompt.
    for text in (req.last_user_text, req.system_text):
        if text and "EMULATOR_" in text:
            match = regex.search(text)
            if match:
                return match
    return None


# --------------------------------------------------------------------------- synthesis

_VOCAB_TEXT = (
    "the system routes each request to a suitable model while keeping data inside its "
    "region and the ledger records every token with its price so that operators can "
    "audit cost latency and quality across providers in one place careful planning "
    "reduces failures because a fallback deployment answers when the primary endpoint "
    "is slow overloaded or refuses the prompt this reply is deterministic text produced "
    "for tests benchmarks and demos without any real model behind it"
)
_VOCAB = tuple(_VOCAB_TEXT.split())


def _seed_of(*parts: str) -> int:
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big")


@lru_cache(maxsize=4096)
def simulated_text(deployment: str, seed_text: str, words: int) -> str:
    """``[simulated reply from NAME] …`` followed by ``words`` hash-chosen words in sentences."""
    rng = random.Random(_seed_of(deployment, seed_text))
    out: list[str] = []
    remaining = max(0, words)
    while remaining > 0:
        n = min(remaining, rng.randint(6, 11))
        sentence = [rng.choice(_VOCAB) for _ in range(n)]
        sentence[0] = sentence[0].capitalize()
        out.append(" ".join(sentence) + ".")
        remaining -= n
    prefix = f"[simulated reply from {deployment}]"
    return f"{prefix} {' '.join(out)}" if out else prefix


_PIECE_RE = re.compile(r"\S+\s*")


def word_pieces(text: str) -> list[str]:
    """Split ``text`` into word-sized stream deltas whose concatenation is exactly ``text``."""
    pieces = _PIECE_RE.findall(text)
    if not pieces:
        return [text] if text else []
    lead = len(text) - len(text.lstrip())
    if lead:
        pieces[0] = text[:lead] + pieces[0]
    return pieces


def fixed_pieces(text: str, size: int = 12) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _choose_tool(req: ChatRequest) -> tuple[ToolSpec, dict[str, Any] | None] | None:
    """The tool to call (and scripted arguments), or None for a text reply."""
    if not req.tools or req.last_is_tool_result or req.tool_choice == "none":
        return None
    by_name = {t.name: t for t in req.tools}
    if req.forced_tool is not None:
        return by_name.get(req.forced_tool, req.tools[0]), None
    directive = _directive(_TOOL_RE, req)
    if directive is not None:
        args: dict[str, Any] | None = None
        if directive.group(2):
            try:
                parsed = json.loads(directive.group(2))
            except ValueError:
                parsed = None
            args = parsed if isinstance(parsed, dict) else None
        return by_name.get(directive.group(1), req.tools[0]), args
    text = req.last_user_text.lower()
    for tool in req.tools:
        if len(tool.name) >= 3 and tool.name.lower() in text:
            return tool, None
    if req.tool_choice == "required" or _TOOL_WORD_RE.search(req.last_user_text):
        return req.tools[0], None
    return None


def synthesize(req: ChatRequest, deployment: str, reply_words: int) -> Turn:
    """The deterministic assistant turn for ``req`` on deployment ``deployment``."""
    input_tokens = req.input_tokens
    seed_text = req.last_user_text + "\x00" + req.tool_result_text
    chosen = _choose_tool(req)
    if chosen is not None:
        tool, scripted_args = chosen
        args = scripted_args if scripted_args is not None else example_for_schema(tool.parameters)
        arguments = dumps(args)
        call = ToolCall(
            id_hex=hashlib.sha256(
                f"{deployment}\x1f{seed_text}\x1f{tool.name}".encode()
            ).hexdigest()[:24],
            name=tool.name,
            arguments=arguments,
        )
        return Turn(
            text=None,
            tool_call=call,
            finish="tool_calls",
            input_tokens=input_tokens,
            output_tokens=estimate_tokens(len(tool.name) + len(arguments)),
            pieces=fixed_pieces(arguments),
        )

    directive = _directive(_REPLY_RE, req)
    if directive is not None:
        text = directive.group(1).strip()
    elif req.json_schema is not None:
        text = dumps(example_for_schema(req.json_schema))
    elif req.json_object:
        text = dumps({"result": simulated_text(deployment, seed_text, reply_words)})
    else:
        text = simulated_text(deployment, seed_text, reply_words)

    finish: Finish = "stop"
    output_tokens = estimate_tokens(len(text))
    if req.max_tokens is not None and 0 < req.max_tokens < output_tokens:
        # Same truncation a real model shows: cut at the budget, finish "length".
        text = text[: req.max_tokens * 4]
        output_tokens = req.max_tokens
        finish = "length"
    return Turn(
        text=text,
        tool_call=None,
        finish=finish,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        pieces=word_pieces(text),
    )


def refusal_turn(req: ChatRequest) -> Turn:
    """A turn the provider refused to produce: no content, no output tokens."""
    return Turn(
        text=None,
        tool_call=None,
        finish="refusal",
        input_tokens=req.input_tokens,
        output_tokens=0,
        pieces=[],
    )


# --------------------------------------------------------------------------- JSON schema examples

_MAX_DEPTH = 10
_STRING_FORMATS = {
    "date": "2024-01-01",
    "date-time": "2024-01-01T00:00:00Z",
    "time": "00:00:00",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "127.0.0.1",
    "hostname": "example.com",
}


def example_for_schema(schema: Any) -> Any:
    """A deterministic value that validates against ``schema`` (the subset LLM APIs use).

    Handles object/properties/required, string (enum, const, format, length), integer and
    number (bounds, multipleOf), boolean, null, array (items, min/maxItems), anyOf/oneOf
    (first non-null branch), allOf (merged), type lists and local ``$ref`` to ``$defs``.
    """
    return _example(schema, schema if isinstance(schema, Mapping) else {}, 0, "value")


def _resolve(ref: str, root: Mapping[str, Any]) -> Any:
    if not ref.startswith("#"):
        return {}
    node: Any = root
    for token in ref[1:].split("/"):
        if not token:
            continue
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and token in node:
            node = node[token]
        else:
            return {}
    return node


def _is_null_branch(branch: Any) -> bool:
    return isinstance(branch, Mapping) and branch.get("type") == "null"


def _merge_all_of(schema: Mapping[str, Any], root: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    props: dict[str, Any] = dict(merged.get("properties") or {})
    required: list[str] = list(merged.get("required") or [])
    for part in schema["allOf"]:
        if isinstance(part, Mapping) and "$ref" in part:
            part = _resolve(part["$ref"], root)
        if not isinstance(part, Mapping):
            continue
        props.update(part.get("properties") or {})
        required.extend(r for r in part.get("required") or [] if r not in required)
        for key, value in part.items():
            if key not in ("properties", "required"):
                merged.setdefault(key, value)
    if props:
        merged["properties"] = props
        merged.setdefault("type", "object")
    if required:
        merged["required"] = required
    return merged


def _example(schema: Any, root: Mapping[str, Any], depth: int, name: str) -> Any:
    if schema is True or not isinstance(schema, Mapping):
        return f"sample {name}"
    if depth > _MAX_DEPTH:
        return None
    if "$ref" in schema:
        return _example(_resolve(schema["$ref"], root), root, depth + 1, name)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    if "default" in schema:
        return schema["default"]
    examples = schema.get("examples")
    if isinstance(examples, list) and examples:
        return examples[0]
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and branches:
            branch = next((b for b in branches if not _is_null_branch(b)), branches[0])
            return _example(branch, root, depth + 1, name)
    if isinstance(schema.get("allOf"), list):
        return _example(_merge_all_of(schema, root), root, depth + 1, name)

    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        if "properties" in schema:
            kind = "object"
        elif "items" in schema:
            kind = "array"
        else:
            kind = "string"

    if kind == "object":
        return _object_example(schema, root, depth)
    if kind == "array":
        return _array_example(schema, root, depth, name)
    if kind == "integer":
        return _integer_example(schema)
    if kind == "number":
        return _number_example(schema)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _string_example(schema, name)


def _object_example(schema: Mapping[str, Any], root: Mapping[str, Any], depth: int) -> Any:
    props = schema.get("properties")
    props = props if isinstance(props, Mapping) else {}
    required = [r for r in schema.get("required") or [] if isinstance(r, str)]
    out: dict[str, Any] = {}
    deep = depth >= _MAX_DEPTH - 2
    for key, sub in props.items():
        # Deep in a recursive schema, stop at the required keys so the value stays finite.
        if deep and key not in required:
            continue
        out[key] = _example(sub, root, depth + 1, key)
    for key in required:
        if key not in out:
            out[key] = f"sample {key}"
    min_props = schema.get("minProperties")
    extra = schema.get("additionalProperties")
    if isinstance(min_props, int) and len(out) < min_props and extra is not False:
        for i in range(len(out), min_props):
            value_schema = extra if isinstance(extra, Mapping) else {}
            out[f"key{i}"] = _example(value_schema, root, depth + 1, "v")
    return out


def _array_example(
    schema: Mapping[str, Any], root: Mapping[str, Any], depth: int, name: str
) -> Any:
    raw_min, raw_max = schema.get("minItems"), schema.get("maxItems")
    min_items: int = raw_min if isinstance(raw_min, int) else 0
    max_items: int | None = raw_max if isinstance(raw_max, int) else None
    count = max(1, min_items) if depth < _MAX_DEPTH - 2 else min_items
    if max_items is not None:
        count = min(count, max_items)
    prefix = schema.get("prefixItems")
    items = schema.get("items", {})
    out: list[Any] = []
    for i in range(count):
        sub = prefix[i] if isinstance(prefix, list) and i < len(prefix) else items
        value = _example(sub, root, depth + 1, name)
        if i and schema.get("uniqueItems"):
            value = _vary(value, i)
        out.append(value)
    return out


def _vary(value: Any, i: int) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return f"{value} {i}"
    if isinstance(value, (int, float)):
        return value + i
    return value


def _bounds(schema: Mapping[str, Any], step: float) -> tuple[float | None, float | None]:
    lo = schema.get("minimum")
    hi = schema.get("maximum")
    ex_lo = schema.get("exclusiveMinimum")
    ex_hi = schema.get("exclusiveMaximum")
    if isinstance(ex_lo, (int, float)) and not isinstance(ex_lo, bool):
        lo = ex_lo + step if lo is None else max(lo, ex_lo + step)
    if isinstance(ex_hi, (int, float)) and not isinstance(ex_hi, bool):
        hi = ex_hi - step if hi is None else min(hi, ex_hi - step)
    return lo, hi


def _integer_example(schema: Mapping[str, Any]) -> int:
    lo, hi = _bounds(schema, 1)
    value = 1
    if lo is not None and value < lo:
        value = math.ceil(lo)
    if hi is not None and value > hi:
        value = math.floor(hi)
    multiple = schema.get("multipleOf")
    if isinstance(multiple, int) and multiple > 0 and value % multiple:
        value = (value // multiple + 1) * multiple
        if hi is not None and value > hi:
            value -= multiple
    return int(value)


def _number_example(schema: Mapping[str, Any]) -> float:
    lo, hi = _bounds(schema, 0.5)
    value = 1.5
    if lo is not None and value < lo:
        value = float(lo)
    if hi is not None and value > hi:
        value = float(hi)
    multiple = schema.get("multipleOf")
    if isinstance(multiple, (int, float)) and multiple > 0:
        value = math.ceil(value / multiple) * multiple
    return value


def _string_example(schema: Mapping[str, Any], name: str) -> str:
    fmt = schema.get("format")
    value = _STRING_FORMATS.get(fmt, f"sample {name}") if isinstance(fmt, str) else f"sample {name}"
    min_len = schema.get("minLength")
    max_len = schema.get("maxLength")
    if isinstance(min_len, int) and len(value) < min_len:
        value = value + "x" * (min_len - len(value))
    if isinstance(max_len, int) and len(value) > max_len:
        value = value[:max_len]
    return value
