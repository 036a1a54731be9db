"""Catalog text to plain data: TOML (stdlib ``tomllib``), YAML (``yaml``, imported only when
a YAML file is read) and JSON, each refusing a key that appears twice; every syntax error
becomes one :class:`~hybridstack.errors.CatalogError` with the line."""

from __future__ import annotations

import re
import sys
from typing import Any

from hybridstack.errors import CatalogError

__all__ = ["empty_file_error", "parse_text"]


def parse_text(text: str, kind: str, source: str) -> Any:
    """Parse TOML, YAML or JSON text; syntax errors become CatalogError with the line."""
    if not text.strip():
        raise empty_file_error(source)
    try:
        return _parse(text, kind, source)
    except RecursionError:
        # The parsers recurse once per nesting level; a catalog nests four levels deep.
        raise CatalogError(
            f"invalid {kind}: values are nested too deeply for a catalog file (a catalog "
            'needs a few levels: [deployments."family@site"] with a price table)',
            source=source,
        ) from None
    except ValueError as exc:
        # Python refuses to read integers of more than 4300 digits (int_max_str_digits).
        if "integer string conversion" not in str(exc):
            raise
        raise CatalogError(
            f"invalid {kind}: a number has more than {sys.get_int_max_str_digits()} digits; "
            "prices, windows and timeouts are ordinary numbers",
            source=source,
        ) from None


def _parse(text: str, kind: str, source: str) -> Any:
    if kind == "TOML":
        import tomllib

        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            message = str(exc)
            twice = re.match(r"Cannot declare \((.*)\) twice", message)
            if twice is None:
                raise CatalogError(f"invalid TOML: {message}", source=source) from None
            raise CatalogError(
                f"invalid TOML: {message}; each family, site and deployment may appear once "
                "per file",
                source=source,
                entry=".".join(re.findall(r"'([^']*)'", twice.group(1))) or None,
            ) from None
    if kind == "YAML":
        return _parse_yaml(text, source)
    return _parse_json(text, source)


def _parse_json(text: str, source: str) -> Any:
    import json

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise _DuplicateKeyError(key)
            result[key] = value
        return result

    try:
        return json.loads(text, object_pairs_hook=unique)
    except _DuplicateKeyError as exc:
        raise CatalogError(
            f"invalid JSON: the key {exc.key!r} appears twice in one object "
            "(each family, site and deployment may appear once per file)",
            source=source,
            entry=exc.key,
        ) from None
    except json.JSONDecodeError as exc:
        raise CatalogError(
            f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", source=source
        ) from None


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str, line: int | None = None, first: int | None = None) -> None:
        self.key = key
        self.line = line
        self.first = first
        super().__init__(key)


def _parse_yaml(text: str, source: str) -> Any:
    import yaml

    try:
        return yaml.load(text, Loader=_unique_key_loader())
    except _DuplicateKeyError as exc:
        raise CatalogError(
            f"invalid YAML at line {exc.line}: the key {exc.key!r} appears twice (first at "
            f"line {exc.first}); each family, site and deployment may appear once per file",
            source=source,
            entry=str(exc.key),
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = "; ".join(p for p in (exc.context, exc.problem) if p)
        raise CatalogError(f"invalid YAML{where}: {problem}", source=source) from None
    except yaml.YAMLError as exc:
        raise CatalogError(f"invalid YAML: {exc}", source=source) from None


_YAML_LOADER: type | None = None


def _unique_key_loader() -> type:
    """A SafeLoader that refuses duplicate keys (plain safe_load keeps the last one)."""
    global _YAML_LOADER
    if _YAML_LOADER is None:
        import yaml

        class UniqueKeyLoader(yaml.SafeLoader):
            pass

        def construct_mapping(
            loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False
        ) -> dict[Any, Any]:
            loader.flatten_mapping(node)
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = loader.construct_object(key_node, deep=deep)
                try:
                    first = seen.setdefault(key, key_node.start_mark.line)
                except TypeError:
                    continue  # an unhashable key: SafeLoader reports it below
                if first != key_node.start_mark.line:
                    raise _DuplicateKeyError(key, key_node.start_mark.line + 1, first + 1)
            return yaml.SafeLoader.construct_mapping(loader, node, deep)

        UniqueKeyLoader.add_constructor(
            yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping
        )
        _YAML_LOADER = UniqueKeyLoader
    return _YAML_LOADER


def empty_file_error(source: str) -> CatalogError:
    """The error for a catalog file with nothing in it."""
    return CatalogError(
        "the file is empty (no families, sites, deployments or retired entries); "
        "expected schema_version = 1 and [families.NAME] / "
        '[deployments."family@site"] tables (see the top of the bundled catalog.toml)',
        source=source,
    )
