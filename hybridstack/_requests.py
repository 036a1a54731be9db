"""A :class:`~hybridstack.types.ChatRequest` from the loose arguments people pass, or an
:class:`~hybridstack.errors.InvalidRequestError` naming the field, the (scrubbed) bad value
and the shape it should have. :meth:`hybridstack.Stack.build_request` is this module's
:func:`build_request`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from hybridstack._secrets import scrub
from hybridstack._validation import first_problem
from hybridstack.errors import InvalidRequestError
from hybridstack.types import (
    MESSAGES_SHAPES,
    ChatRequest,
    MessagesInput,
    Tool,
    check_extra_headers,
)

__all__ = ["REQUEST_FIELDS", "REQUEST_SHAPES", "build_request", "request_fields"]

#: The request options a call hands on to :func:`build_request` (its keyword arguments).
REQUEST_FIELDS = (
    "tools",
    "tool_choice",
    "response_schema",
    "max_tokens",
    "temperature",
    "stop",
    "metadata",
    "extra_headers",
)

#: What a request field looks like, for errors about a value of the wrong shape.
REQUEST_SHAPES = {
    "messages": MESSAGES_SHAPES,
    "messages[]": "a Message or a dict such as {'role': 'user', 'content': 'Hi'}",
    "messages.role": "one of 'system', 'user', 'assistant' or 'tool'",
    "tools": "a Tool or a dict such as {'name': 'get_weather', 'parameters': {...}}",
    "tools.name": "letters, digits, '_' or '-', at most 64 characters",
    "metadata": "a dict of text to text, e.g. {'ticket': 'T-1'}",
    "extra_headers": "a dict of header name to text, e.g. {'x-trace-id': 'abc'}",
    "response_schema": "a JSON schema dict or a pydantic model class",
}


def request_fields(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The request options among a call's ``arguments`` (``complete()`` and ``stream()``
    pass their ``locals()``), as the keyword arguments of :func:`build_request`."""
    return {name: arguments[name] for name in REQUEST_FIELDS}


def build_request(
    messages: MessagesInput | ChatRequest,
    *,
    tools: Sequence[Tool | Mapping[str, Any]] | None = None,
    tool_choice: str | None = None,
    response_schema: Mapping[str, Any] | type | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    stop: Sequence[str] | None = None,
    metadata: Mapping[str, str] | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> ChatRequest:
    """A :class:`ChatRequest` from the loose arguments people pass.

    Raises :class:`~hybridstack.errors.InvalidRequestError` naming the field, the bad
    value and what is allowed.
    """
    if isinstance(messages, ChatRequest):
        return _with_headers(messages, extra_headers)
    schema: dict[str, Any] | None
    schema_name = "response"
    if response_schema is None:
        schema = None
    elif isinstance(response_schema, type) and hasattr(response_schema, "model_json_schema"):
        schema = response_schema.model_json_schema()
        schema_name = response_schema.__name__
    elif isinstance(response_schema, Mapping):
        schema = dict(response_schema)
    else:
        raise InvalidRequestError(
            "invalid request: response_schema: expected a JSON schema dict or a pydantic "
            f"model class, got {type(response_schema).__name__}",
            field="response_schema",
        )
    try:
        # Everything goes to the model as given: one validation, one translation.
        return ChatRequest(
            messages=messages,
            tools=() if tools is None else tools,
            tool_choice=tool_choice,
            response_schema=schema,
            response_schema_name=schema_name,
            max_tokens=max_tokens,
            temperature=temperature,
            stop=stop,
            metadata={} if metadata is None else metadata,
            # As given: the model's validator names what is wrong with it.
            **({} if extra_headers is None else {"extra_headers": extra_headers}),
        )
    except ValidationError as exc:
        field, problem = first_problem(exc, ChatRequest, expected=REQUEST_SHAPES)
    # Raised outside the except block: pydantic's error, which quotes the input
    # unscrubbed, must not ride along as __context__.
    where = f"{field}: " if field else ""
    raise InvalidRequestError(f"invalid request: {where}{problem}", field=field)


def _with_headers(request: ChatRequest, extra_headers: Mapping[str, str] | None) -> ChatRequest:
    """A built request with ``extra_headers`` added (they win over its own)."""
    if not extra_headers:
        return request
    try:
        headers = check_extra_headers(extra_headers)
    except ValueError as exc:
        refused = scrub(str(exc))
    else:
        return request.model_copy(update={"extra_headers": {**request.extra_headers, **headers}})
    # Raised outside the except block: the ValueError, which quotes the bad value
    # unscrubbed, must not ride along as __context__.
    raise InvalidRequestError(f"invalid request: extra_headers: {refused}", field="extra_headers")
