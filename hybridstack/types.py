"""The value types every layer speaks: messages, requests, responses, stream events, attempts.

These are the bottom layer of hybridstack: nothing here imports another hybridstack
module (but :mod:`hybridstack.tokens`, which imports none) or a provider SDK. Adapters
translate these to and from each wire format;
the router, executor, ledger and graph only ever see these.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hybridstack.tokens import count_request

Role = Literal["system", "user", "assistant", "tool"]

#: Normalised reasons a generation stopped. Refusals never reach a caller as a
#: finish reason: adapters raise :class:`hybridstack.errors.ContentRefusedError`.
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error"]

#: The outcome class of one attempt: ``ok`` or one of the five taxonomy kinds, plus the
#: two ways an attempt ends without an answer of its own.
Outcome = Literal[
    "ok",
    "retry_here",
    "fail_over",
    "content_refused",
    "context_too_long",
    "fatal",
    "cancelled",
    "skipped",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ToolCall(_Frozen):
    """A request by the model to call one tool with JSON arguments."""

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)

    @property
    def arguments_json(self) -> str:
        return json.dumps(self.arguments, ensure_ascii=False, separators=(",", ":"))


class TextPart(_Frozen):
    """A text part of a message's content."""

    type: Literal["text"] = "text"
    text: str


class ToolCallPart(_Frozen):
    """A tool-call part of an assistant message's content."""

    type: Literal["tool_call"] = "tool_call"
    tool_call: ToolCall


ContentPart = Annotated[TextPart | ToolCallPart, Field(discriminator="type")]


class Message(_Frozen):
    """One chat message.

    ``content`` is plain text, or a list of parts (text and tool calls) as some callers
    hold them; it is normalised so that :attr:`text` and :attr:`tool_calls` always
    give the text and the tool calls, whichever form was passed.
    """

    role: Role
    content: str | list[ContentPart] = ""
    tool_calls: tuple[ToolCall, ...] = ()
    #: For ``role="tool"``: the id of the tool call this message answers.
    tool_call_id: str | None = None
    #: For ``role="tool"``: the tool's name (Anthropic and DashScope ignore it).
    name: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Message:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs tool_call_id: the id of the call it answers")
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only assistant messages carry tool_calls")
        return self

    @property
    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content if isinstance(p, TextPart))

    @property
    def all_tool_calls(self) -> tuple[ToolCall, ...]:
        """Tool calls from both ``tool_calls`` and tool-call content parts."""
        if isinstance(self.content, str):
            return self.tool_calls
        from_parts = tuple(p.tool_call for p in self.content if isinstance(p, ToolCallPart))
        return self.tool_calls + from_parts

    # Short constructors keep call sites readable: Message.user("hi").
    @classmethod
    def system(cls, text: str) -> Message:
        return cls(role="system", content=text)

    @classmethod
    def user(cls, text: str) -> Message:
        return cls(role="user", content=text)

    @classmethod
    def assistant(cls, text: str = "", tool_calls: list[ToolCall] | None = None) -> Message:
        return cls(role="assistant", content=text, tool_calls=tuple(tool_calls or ()))

    @classmethod
    def tool(
        cls, result: str | dict[str, Any], *, tool_call_id: str, name: str | None = None
    ) -> Message:
        text = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)
        return cls(role="tool", content=text, tool_call_id=tool_call_id, name=name)


class Tool(_Frozen):
    """A tool the model may call, described by a JSON schema for its arguments."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


MessagesInput = str | Message | dict[str, Any] | list[Message | dict[str, Any]]

#: What ``messages`` may be, for error messages.
MESSAGES_SHAPES = (
    "a string, a Message, a dict such as {'role': 'user', 'content': 'Hi'}, or a list of "
    "Messages and dicts"
)


def _message_items(messages: Any) -> tuple[Any, ...]:
    """The shapes people write, as a tuple of items to validate as messages."""
    if isinstance(messages, str):
        return (Message.user(messages),)
    if isinstance(messages, Message | dict):
        return (messages,)
    if isinstance(messages, list | tuple):
        return tuple(messages)
    # A set, a generator or None would be iterated in no order, or not at all.
    got = "None" if messages is None else type(messages).__name__
    raise ValueError(f"expected {MESSAGES_SHAPES}; got {got}")


def coerce_messages(messages: MessagesInput) -> list[Message]:
    """Accept the shapes people write: a string, one message, dicts or a list of them."""
    return [
        m if isinstance(m, Message) else Message.model_validate(m) for m in _message_items(messages)
    ]


#: Headers a caller may not set: credentials (the adapter sends the deployment's key),
#: HTTP framing, and the executor's own attempt ids.
RESERVED_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "cookie",
        "host",
        "content-length",
        "content-type",
        "transfer-encoding",
        "connection",
        "x-hybridstack-call",
        "x-hybridstack-attempt",
    }
)
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def check_extra_headers(value: Any) -> dict[str, str]:
    """``extra_headers`` as a dict of text to text, or a ValueError saying what to fix."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(
            f"expected a dict of header name to text, e.g. {{'x-trace-id': 'abc'}}, "
            f"got {type(value).__name__}"
        )
    headers: dict[str, str] = {}
    for name, text in value.items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            raise ValueError(
                f"header name {name!r} is not a valid HTTP header name "
                "(letters, digits and - _ . only, no spaces)"
            )
        if name.lower() in RESERVED_HEADERS:
            raise ValueError(
                f"header {name!r} cannot be set per call: hybridstack sends it itself "
                "(credentials come from the deployment's key variable)"
            )
        if not isinstance(text, str):
            raise ValueError(
                f"header {name!r}: the value must be text, got {type(text).__name__} "
                "(write it as a string)"
            )
        if any(ch in text for ch in "\r\n\0"):
            raise ValueError(
                f"header {name!r}: the value contains a line break or NUL character, "
                "which would split the HTTP request; remove it"
            )
        headers[name] = text
    return headers


class ChatRequest(_Frozen):
    """One chat completion request, independent of provider and wire format."""

    messages: tuple[Message, ...]
    tools: tuple[Tool, ...] = ()
    tool_choice: Literal["auto", "none", "required"] | None = None
    #: JSON schema the reply must validate against (structured output).
    response_schema: dict[str, Any] | None = None
    response_schema_name: str = "response"
    max_tokens: int | None = None
    temperature: float | None = None
    #: Stop sequences; one string is one sequence (never split into characters).
    stop: tuple[str, ...] = ()
    #: Free-form tags for your own bookkeeping (user id, ticket …); never sent upstream.
    metadata: dict[str, str] = Field(default_factory=dict)
    #: HTTP headers sent with every attempt of this call (a trace id, an idempotency
    #: key …): text to text, no line breaks, none of the auth or framing headers the
    #: adapters own. Never in a repr, a dump, the ledger or a log.
    extra_headers: dict[str, str] = Field(default_factory=dict, repr=False, exclude=True)

    @field_validator("messages", mode="before")
    @classmethod
    def _coerce_messages(cls, value: Any) -> Any:
        return _message_items(value)

    @field_validator("messages")
    @classmethod
    def _non_empty(cls, value: tuple[Message, ...]) -> tuple[Message, ...]:
        if not value:
            raise ValueError("needs at least one message, e.g. [Message.user('Hi')]; got none")
        if all(m.role == "system" for m in value):
            raise ValueError("needs a user message, not only system messages")
        return value

    @field_validator("extra_headers", mode="before")
    @classmethod
    def _headers(cls, value: Any) -> Any:
        return check_extra_headers(value)

    @field_validator("max_tokens", mode="wrap")
    @classmethod
    def _positive(cls, value: Any, handler: Any) -> Any:
        # bool is an int to Python: max_tokens=True would silently mean 1.
        tokens = None if isinstance(value, bool) else handler(value)
        if isinstance(value, bool) or (tokens is not None and tokens <= 0):
            raise ValueError(
                f"must be a positive whole number of tokens, got {value!r}; "
                "leave it out for the default"
            )
        return tokens

    @field_validator("temperature", mode="before")
    @classmethod
    def _temperature(cls, value: Any) -> Any:
        if value is None:
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not 0.0 <= value <= 2.0  # False for NaN too
        ):
            raise ValueError(f"must be a number from 0 to 2, got {value!r}")
        return float(value)

    @field_validator("stop", mode="before")
    @classmethod
    def _stop(cls, value: Any) -> Any:
        if value is None:
            return ()
        if isinstance(value, str):
            value = (value,)  # tuple("abc") would be three one-letter stop sequences
        if isinstance(value, list | tuple):
            for index, item in enumerate(value):
                if isinstance(item, str) and not item:
                    raise ValueError(f"stop[{index}] is empty; a stop sequence has text")
        return value

    @property
    def system_text(self) -> str:
        return "\n\n".join(m.text for m in self.messages if m.role == "system")

    @property
    def prompt_text(self) -> str:
        """All message text, for token estimates and classification."""
        return "\n".join(m.text for m in self.messages)

    def estimated_prompt_tokens(self, tokenizer: str | None = None) -> int:
        """Prompt tokens, messages' framing and tool schemas included.

        Exact with ``tokenizer="qwen"`` once that tokenizer is loaded; otherwise the
        script-aware estimate (:mod:`hybridstack.tokens`). The router counts per family.
        """
        return count_request(self, tokenizer).tokens


class Usage(_Frozen):
    """Token counts, normalised across providers."""

    input_tokens: int = 0
    output_tokens: int = 0
    #: Input tokens served from the provider's prompt cache (billed at a lower rate).
    cached_input_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
        )


class ChatResponse(_Frozen):
    """A completed reply, with who answered and what it cost in time and tokens."""

    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: FinishReason = "stop"
    usage: Usage = Usage()
    #: The deployment that answered (``family@site``), its family and provider model id.
    deployment: str
    family: str = ""
    model: str = ""
    region: str = ""
    jurisdiction: str = ""
    latency_s: float = 0.0
    #: Time to first token (streamed replies only).
    ttft_s: float | None = None
    request_id: str | None = None
    cost_usd: float = 0.0
    #: Attempts the executor made for this reply (1 when the first try answered).
    attempts: int = 1
    #: Reasoning text some families return separately (DeepSeek, Qwen thinking mode).
    reasoning: str | None = None

    def parsed(self) -> Any:
        """The reply text parsed as JSON (for structured output)."""
        return json.loads(self.text)


# --- stream events -----------------------------------------------------------------


class TextDelta(_Frozen):
    type: Literal["text"] = "text"
    text: str


class ToolCallDelta(_Frozen):
    """A fragment of a streamed tool call: ``id`` and ``name`` come with the first one."""

    type: Literal["tool_call"] = "tool_call"
    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


class UsageEvent(_Frozen):
    type: Literal["usage"] = "usage"
    usage: Usage


class StreamResumed(_Frozen):
    """A visible marker: the stream broke after its first token and resumed elsewhere.

    Text before the marker came from ``from_deployment``; text after it is a fresh
    answer from ``to_deployment`` (never a silent splice of two answers).
    """

    type: Literal["resumed"] = "resumed"
    from_deployment: str
    to_deployment: str
    chars_before: int
    reason: str


class FinishEvent(_Frozen):
    """The last event of a stream, with the whole reply assembled."""

    type: Literal["finish"] = "finish"
    finish_reason: FinishReason
    response: ChatResponse


StreamEvent = Annotated[
    TextDelta | ToolCallDelta | UsageEvent | StreamResumed | FinishEvent,
    Field(discriminator="type"),
]


# --- attempts --------------------------------------------------------------------------


class Attempt(BaseModel):
    """One call to one deployment, as the ledger records it. Never holds a secret."""

    model_config = ConfigDict(extra="forbid")

    call_id: str
    run_id: str | None = None
    attempt_index: int = 0
    #: 0 for the first try on this deployment, 1 for the first retry …
    retry_index: int = 0
    deployment: str
    family: str
    model: str = ""
    protocol: str = ""
    region: str = ""
    jurisdiction: str = ""
    quota_scope: str = ""
    started_at: datetime
    ttft_s: float | None = None
    latency_s: float = 0.0
    usage: Usage = Usage()
    #: True when the provider reported no usage and ``usage`` is hybridstack's estimate.
    usage_estimated: bool = False
    cost_usd: float = 0.0
    outcome: Outcome = "ok"
    error_type: str | None = None
    error_message: str | None = None
    status: int | None = None
    provider_code: str | None = None
    request_id: str | None = None
    retry_after_s: float | None = None
    breaker_state: str = "closed"
    hedged: bool = False
    streamed: bool = False
    skill: str | None = None
    data_class: str | None = None
    #: Why the plan chose this deployment, in the router's words.
    reasons: tuple[str, ...] = ()
    #: Personal data redacted before this attempt left its jurisdiction: kind -> count.
    redactions: dict[str, int] = Field(default_factory=dict)
