"""An example value for a JSON schema: the emulator's answer to a structured-output request."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

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
