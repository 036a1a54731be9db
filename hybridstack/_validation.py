"""pydantic's ValidationError in words a user can act on: the field, the bad value, what is allowed.

One translation serves every entry point that validates user input with pydantic: the
catalog loader (files and entries given in code) and the Stack's request building.
Each caller wraps the words in its own hybridstack error (``CatalogError``,
``InvalidRequestError``) and may pass hints for fields whose expected shape is not
obvious from the error. The words quote the bad value (and name the field), so they pass
through :func:`hybridstack._secrets.scrub` first: a key pasted into the wrong field is
never quoted back. This module imports no other hybridstack module but ``_secrets``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from hybridstack._secrets import scrub

__all__ = ["close_matches", "did_you_mean", "first_problem", "short_repr"]


def close_matches(word: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Up to ``n`` candidates that look like ``word`` (case-insensitive difflib)."""
    import difflib

    by_lower: dict[str, str] = {}
    for candidate in candidates:
        by_lower.setdefault(candidate.lower(), candidate)
    found = difflib.get_close_matches(word.lower(), list(by_lower), n=n, cutoff=0.6)
    return [by_lower[f] for f in found]


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` or an empty string."""
    found = close_matches(word, candidates, n=1)
    return f"; did you mean {found[0]!r}?" if found else ""


def short_repr(value: Any) -> str:
    """``repr(value)`` without any key in it, cut to 60 characters (scrubbed before the
    cut: a key cut short no longer has the shape that shows it is one)."""
    text = scrub(repr(value))
    return text if len(text) <= 60 else text[:57] + "..."


def first_problem(
    exc: ValidationError,
    model: type[BaseModel],
    *,
    expected: Mapping[str, str] | None = None,
    unit: Callable[[str], str] | None = None,
    pattern: str | None = None,
) -> tuple[str | None, str]:
    """The first problem in words and the field path it is about; others listed briefly.

    ``expected``: field name (dotted, list indexes left out, or written ``[]`` to speak
    of an item) -> what a value looks like, for "is required" and wrong-shape messages.
    ``unit``: field name -> a unit to show after a range limit. ``pattern``: how to
    describe a string that does not match its field's pattern (default: the pattern).
    """
    # A misspelt field also makes the real one "missing": report the spelling first.
    errors = sorted(exc.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")
    field_path, message = _describe(errors[0], model, expected or {}, unit, pattern)
    others = list(dict.fromkeys(_path(e["loc"]) for e in errors[1:]))
    others = [o for o in others if o and o != field_path]
    if others:
        message += f" (also check {', '.join(others[:4])}{' …' if len(others) > 4 else ''})"
    # The one place user values reach the words: field paths hold dict keys, and the
    # message quotes values (its own and a validator's); neither may show a key.
    return scrub(field_path) or None, scrub(message)


def _path(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1] if parts else ''}[{item}]"]
        else:
            parts.append(str(item))
    return ".".join(parts)


_COMPARISONS = {
    "greater_than_equal": ">=",
    "greater_than": ">",
    "less_than_equal": "<=",
    "less_than": "<",
}


def _describe(
    error: Mapping[str, Any],
    model: type[BaseModel],
    expected: Mapping[str, str],
    unit: Callable[[str], str] | None,
    pattern: str | None,
) -> tuple[str, str]:
    loc = tuple(error["loc"])
    kind = error["type"]
    got = short_repr(error.get("input"))
    ctx = error.get("ctx") or {}
    field_path = _path(loc)
    named = ".".join(str(p) for p in loc if not isinstance(p, int))
    # Hints may tell an item from its list: "messages[]" before "messages".
    item = "".join("[]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    hint = expected.get(item) or expected.get(named)
    if kind == "missing":
        return field_path, "is required" + (f": {hint}" if hint else "")
    if kind == "extra_forbidden":
        allowed = [f for f in _fields_at(model, loc[:-1]) if f != "api_key"]
        name = str(loc[-1])
        return field_path, (
            f"unknown field {name!r} (expected one of: {', '.join(allowed)})"
            f"{did_you_mean(name, allowed)}"
        )
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        what = "feature" if named == "features" else "value"
        return field_path, (
            f"unknown {what} {error.get('input')!r} (expected one of {', '.join(choices)})"
            f"{did_you_mean(str(error.get('input')), choices)}"
        )
    if kind in _COMPARISONS:
        limit = next(iter(ctx.values()), "?")
        suffix = unit(named) if unit else ""
        return field_path, f"must be {_COMPARISONS[kind]} {limit}{suffix}, got {got}"
    if kind == "finite_number":
        suffix = unit(named) if unit else ""
        return field_path, f"must be a finite number{suffix}, got {got}"
    if kind.startswith(("date_", "datetime_")):
        return field_path, f"expected a date such as 2026-11-15, got {got}"
    if kind.startswith("time_"):
        return field_path, (
            f"expected a UTC time such as 01:00 (TOML: 01:00:00 unquoted; YAML or JSON: "
            f"'01:00'), got {got}"
        )
    if kind.startswith("int_"):
        return field_path, f"expected a whole number, got {got}"
    if kind.startswith("float_"):
        return field_path, f"expected a number, got {got}"
    if kind.startswith("bool_"):
        return field_path, f"expected true or false, got {got}"
    if kind.startswith("string_type"):
        return field_path, f"expected text, got {got}"
    if kind == "string_pattern_mismatch":
        described = pattern or f"must match {ctx.get('pattern', '?')}"
        return field_path, f"{described}; got {got}"
    if kind in ("model_type", "dict_type", "model_attributes_type", "is_instance_of"):
        return field_path, f"expected {hint or 'a table of fields'}, got {got}"
    if kind in ("list_type", "tuple_type", "set_type", "frozen_set_type", "iterable_type"):
        return field_path, f"expected a list, got {got}"
    if kind == "value_error":
        return field_path, str(error["msg"]).removeprefix("Value error, ")
    return field_path, f"{error['msg']}, got {got}"


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the (nested) model that ``loc`` points into."""
    current: type[BaseModel] = model
    for part in loc:
        if isinstance(part, int):
            continue
        info = current.model_fields.get(str(part))
        annotation = getattr(info, "annotation", None)
        nested = _models_in(annotation)
        if not nested:
            break
        current = nested[0]
    return list(current.model_fields)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (``Message``, ``tuple[Message, ...]`` …)."""
    found: list[type[BaseModel]] = []
    stack = [annotation]
    while stack:
        item = stack.pop()
        if isinstance(item, type) and issubclass(item, BaseModel):
            found.append(item)
        else:
            stack.extend(getattr(item, "__args__", ()))
    return found
