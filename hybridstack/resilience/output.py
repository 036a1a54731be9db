"""Structured output: check a reply against the JSON schema the request asked for.

A reply to a request with ``response_schema`` that is not JSON, or is JSON that does not
conform, is a :class:`~hybridstack.errors.SchemaMismatchError` (retry here, or the next
candidate), never an ``ok`` attempt. Hosts with JSON mode only (``json_object``) are the
usual source: they get the schema as an instruction and may answer in another shape.

The validator covers the JSON-schema keywords structured-output APIs accept (OpenAI's
strict mode, pydantic's ``model_json_schema``): ``type`` (one or a list), ``enum``,
``const``, ``properties``, ``required``, ``additionalProperties``, ``items``,
``prefixItems``, ``minItems``/``maxItems``, ``minLength``/``maxLength``, ``pattern``,
``minimum``/``maximum`` (and the exclusive ones), ``anyOf``/``oneOf``/``allOf`` and local
``$ref`` (``#/$defs/...``). Keywords it does not know are ignored (never a false alarm).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from hybridstack.catalog.models import Deployment
from hybridstack.errors import SchemaMismatchError
from hybridstack.types import ChatRequest, ChatResponse

__all__ = ["check_output", "schema_violation"]

_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def check_output(request: ChatRequest, response: ChatResponse, dep: Deployment) -> None:
    """Raise :class:`SchemaMismatchError` unless ``response`` conforms to the request's schema.

    A reply that calls tools instead of answering is not checked (the schema is for the
    final answer).
    """
    schema = request.response_schema
    if schema is None or response.tool_calls:
        return
    text = response.text.strip()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        problem = f"the reply is not JSON ({exc.msg} at character {exc.pos})"
    else:
        found = schema_violation(value, schema)
        if found is None:
            return
        problem = f"the reply does not match the response schema: {found}"
    raise SchemaMismatchError(
        f"{problem}; schema {request.response_schema_name!r}",
        deployment=dep.id,
        code="schema_mismatch",
        request_id=response.request_id,
        provider=dep.protocol,
    )


def schema_violation(value: Any, schema: Mapping[str, Any]) -> str | None:
    """The first way ``value`` breaks ``schema`` (``"at $.a.b: ..."``), or None if it conforms."""
    return _check(value, schema, "$", schema)


def _type_ok(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    expected = _TYPES.get(name)
    return True if expected is None else isinstance(value, expected)


def _resolve(ref: str, root: Mapping[str, Any]) -> Mapping[str, Any] | None:
    if not ref.startswith("#"):
        return None
    node: Any = root
    for part in ref[1:].split("/"):
        if not part:
            continue
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, Mapping) else None


def _check(value: Any, schema: Any, path: str, root: Mapping[str, Any]) -> str | None:
    if schema is False:
        return f"at {path}: no value is allowed here"
    if not isinstance(schema, Mapping):
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = _resolve(ref, root)
        if target is not None:
            found = _check(value, target, path, root)
            if found is not None:
                return found
    kind = schema.get("type")
    if kind is not None:
        names = [kind] if isinstance(kind, str) else list(kind)
        if not any(_type_ok(value, n) for n in names):
            return f"at {path}: expected {' or '.join(names)}, got {_json_type(value)}"
    if "enum" in schema and value not in schema["enum"]:
        return f"at {path}: {value!r} is not one of {schema['enum']!r}"
    if "const" in schema and value != schema["const"]:
        return f"at {path}: expected {schema['const']!r}"
    for key in ("allOf", "anyOf", "oneOf"):
        options = schema.get(key)
        if not options:
            continue
        results = [_check(value, option, path, root) for option in options]
        passed = sum(r is None for r in results)
        if key == "allOf" and passed < len(results):
            return next(r for r in results if r is not None)
        if key == "anyOf" and passed == 0:
            return results[0]
        if key == "oneOf" and passed != 1:
            return results[0] if passed == 0 else f"at {path}: matches {passed} oneOf options"
    if isinstance(value, dict):
        return _check_object(value, schema, path, root)
    if isinstance(value, list):
        return _check_array(value, schema, path, root)
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            return f"at {path}: shorter than {schema['minLength']} characters"
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            return f"at {path}: longer than {schema['maxLength']} characters"
        pattern = schema.get("pattern")
        if isinstance(pattern, str) and re.search(pattern, value) is None:
            return f"at {path}: does not match the pattern {pattern!r}"
    elif isinstance(value, int | float) and not isinstance(value, bool):
        bounds: tuple[tuple[str, Callable[[float, float], bool]], ...] = (
            ("minimum", lambda v, b: v >= b),
            ("maximum", lambda v, b: v <= b),
            ("exclusiveMinimum", lambda v, b: v > b),
            ("exclusiveMaximum", lambda v, b: v < b),
        )
        for key, ok in bounds:
            bound = schema.get(key)
            if isinstance(bound, int | float) and not ok(value, bound):
                return f"at {path}: {value} breaks {key} {bound}"
    return None


def _check_object(
    value: dict[str, Any], schema: Mapping[str, Any], path: str, root: Mapping[str, Any]
) -> str | None:
    props = schema.get("properties") or {}
    for name in schema.get("required") or ():
        if name not in value:
            return f"at {path}: the required property {name!r} is missing"
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        sub = props.get(name)
        where = f"{path}.{name}"
        if sub is not None:
            found = _check(item, sub, where, root)
        elif extra is False:
            found = f"at {path}: the property {name!r} is not in the schema"
        else:
            found = _check(item, extra, where, root)
        if found is not None:
            return found
    return None


def _check_array(
    value: list[Any], schema: Mapping[str, Any], path: str, root: Mapping[str, Any]
) -> str | None:
    if len(value) < schema.get("minItems", 0):
        return f"at {path}: fewer than {schema['minItems']} items"
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        return f"at {path}: more than {schema['maxItems']} items"
    prefix = schema.get("prefixItems") or []
    for i, item in enumerate(value):
        sub = prefix[i] if i < len(prefix) else schema.get("items")
        if sub is not None:
            found = _check(item, sub, f"{path}[{i}]", root)
            if found is not None:
                return found
    return None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
