"""A :class:`~hybridstack.types.ChatRequest` from the loose arguments people pass, with an
:class:`~hybridstack.errors.InvalidRequestError` that names the field and its expected shape."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from hybridstack._validation import first_problem
from hybridstack.errors import InvalidRequestError
from hybridstack.types import MESSAGES_SHAPES, ChatRequest, MessagesInput, Tool

__all__ = ["build_request"]

#: What a request field looks like, for errors about a value of the wrong shape.
_REQUEST_SHAPES = {
    "messages": MESSAGES_SHAPES,
    "messages[]": "a Message or a dict such as {'role': 'user', 'content': 'Hi'}",
    "messages.role": "one of 'system', 'user', 'assistant' or 'tool'",
    "tools": "a Tool or a dict such as {'name': 'get_weather', 'parameters': {...}}",
    "tools.name": "letters, digits, '_' or '-', at most 64 characters",
    "metadata": "a dict of text to text, e.g. {'ticket': 'T-1'}",
    "response_schema": "a JSON schema dict or a pydantic model class",
}


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
) -> ChatRequest:
    """A :class:`ChatRequest` from the loose arguments people pass.

    Raises :class:`~hybridstack.errors.InvalidRequestError` naming the field, the bad
    value and what is allowed.
    """
    if isinstance(messages, ChatRequest):
        return messages
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
        )
    except ValidationError as exc:
        field, problem = first_problem(exc, ChatRequest, expected=_REQUEST_SHAPES)
        where = f"{field}: " if field else ""
        raise InvalidRequestError(f"invalid request: {where}{problem}", field=field) from None
