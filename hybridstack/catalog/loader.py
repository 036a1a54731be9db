"""Catalog files in, validated entries out — or exactly one :class:`CatalogError`.

This module reads a file (its text is parsed by :mod:`hybridstack.catalog.formats`);
checks the document's shape; and turns each table into a :class:`Family`,
:class:`Deployment`, site template or :class:`RetiredName`.
Every failure — a syntax error, a wrong type, an unknown field, a negative price — is
translated into one ``CatalogError`` that names the file, the entry and the field and
says what was expected. Merging entries into a catalog is ``catalog.py``'s job.

The document format is described at the top of ``data/catalog.toml``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from hybridstack._validation import did_you_mean, short_repr
from hybridstack._validation import first_problem as describe_first_problem
from hybridstack.catalog.formats import empty_file_error, parse_text
from hybridstack.catalog.models import KNOWN_JURISDICTIONS, Deployment, Family, Price
from hybridstack.catalog.refs import RetiredName
from hybridstack.errors import CatalogError

SCHEMA_VERSION = 1
#: How the bundled file is named in error messages.
BUNDLED_SOURCE = "hybridstack/catalog/data/catalog.toml"

Kind = Literal["families", "sites", "deployments", "retired"]
KINDS: tuple[Kind, ...] = ("families", "sites", "deployments", "retired")
TOP_LEVEL_KEYS = ("schema_version", *KINDS)
SUFFIXES = {".toml": "TOML", ".yaml": "YAML", ".yml": "YAML", ".json": "JSON"}

#: Deployment fields a site template may set (host-wide facts; never model or price).
SITE_FIELDS = (
    "protocol",
    "base_url",
    "region",
    "jurisdiction",
    "operator",
    "api_key_env",
    "quota_scope",
    "context_window",
    "weight",
    "enabled",
    "timeout_s",
    "notes",
)

#: What a missing or wrong field should look like, for error messages.
_EXPECTED = {
    "name": "a lowercase name such as 'qwen-plus'",
    "vendor": "who makes the model, e.g. vendor = 'alibaba'",
    "context_window": "the window in tokens, e.g. context_window = 131072",
    "protocol": "protocol = 'openai', 'anthropic' or 'dashscope'",
    "model": "the provider's own model id, e.g. model = 'qwen-plus'",
    "base_url": "base_url = 'https://…' (the API root, not an endpoint path)",
    "region": "where it runs, e.g. region = 'eu-central-1' or 'local'",
    "jurisdiction": "a code such as 'CN', 'SG', 'US', 'EU' or 'LOCAL'",
    "operator": "who runs the endpoint, e.g. operator = 'dashscope'",
    "price": (
        "a table of price.input_per_mtok, price.output_per_mtok (USD per 1M tokens), "
        "price.as_of (a date) and price.source"
    ),
    "price.input_per_mtok": "USD per 1M input tokens, e.g. 0.4",
    "price.output_per_mtok": "USD per 1M output tokens, e.g. 1.2",
    "price.as_of": "the date the price was read, e.g. as_of = 2026-11-15",
    "price.tiers.above_input_tokens": (
        "the prompt length the tier starts above, e.g. above_input_tokens = 32768"
    ),
    "price.tiers.input_per_mtok": "the tier's USD per 1M input tokens, e.g. 2.4",
    "price.tiers.output_per_mtok": "the tier's USD per 1M output tokens, e.g. 12.0",
    "price.windows.start": "the UTC time the window opens, e.g. start = 01:00:00",
    "price.windows.end": "the UTC time the window closes (exclusive), e.g. end = 04:00:00",
    "price.windows.multiplier": "the factor on every rate in the window, e.g. multiplier = 2.0",
    "retired_on": "the retirement date, e.g. retired_on = 2026-07-24",
    "replacement": "the family to use instead, e.g. replacement = 'deepseek-flash'",
}

#: Common spellings people use for jurisdictions, mapped to the codes.
_JURISDICTION_WORDS = {
    "CHINA": "CN",
    "SINGAPORE": "SG",
    "USA": "US",
    "EUROPE": "EU",
    "ONPREM": "LOCAL",
    "ON-PREM": "LOCAL",
    "LOCALHOST": "LOCAL",
}


@dataclass(frozen=True)
class RawEntry:
    """One table of a document (or one object given in code), not yet validated."""

    kind: Kind
    #: Family name, site name, deployment id (``family@site``) or retired name.
    key: str
    #: The table's fields (``override`` removed), or a ready model given in code.
    data: Mapping[str, Any] | BaseModel
    #: ``override = true``: patch the existing entry with only these fields.
    override: bool = False

    @property
    def label(self) -> str:
        """How error messages name the entry: ``deployments.qwen-plus@dashscope-sg``."""
        return f"{self.kind}.{self.key}"


@dataclass
class Entries:
    """The entries of one document, by kind, in document order."""

    source: str
    families: list[RawEntry] = field(default_factory=list)
    sites: list[RawEntry] = field(default_factory=list)
    deployments: list[RawEntry] = field(default_factory=list)
    retired: list[RawEntry] = field(default_factory=list)


_M = TypeVar("_M", bound=BaseModel)


# --- reading ------------------------------------------------------------------------------


def read_file(path: str | Path) -> Entries:
    """Read one catalog file into entries; CatalogError naming the file on any problem."""
    p = Path(path)
    source = str(path)
    kind = SUFFIXES.get(p.suffix.lower())
    if kind is None:
        raise CatalogError(
            f"unsupported file type {p.suffix or '(no suffix)'!r}: "
            "a catalog file ends in .toml, .yaml, .yml or .json",
            source=source,
        )
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogError(f"file not found (looked for {p.absolute()})", source=source) from None
    except IsADirectoryError:
        raise CatalogError("is a directory, not a catalog file", source=source) from None
    except UnicodeDecodeError:
        raise CatalogError("is not UTF-8 text", source=source) from None
    except OSError as exc:
        raise CatalogError(f"cannot be read: {exc.strerror or exc}", source=source) from None
    return parse_document(parse_text(text, kind, source), source)


def read_bundled() -> Entries:
    """The catalog shipped inside the package (works from a wheel or a zip)."""
    from importlib.resources import files

    text = files("hybridstack.catalog").joinpath("data", "catalog.toml").read_text("utf-8")
    return parse_document(parse_text(text, "TOML", BUNDLED_SOURCE), BUNDLED_SOURCE)


# --- document shape -----------------------------------------------------------------------


def parse_document(doc: Any, source: str) -> Entries:
    """Check a parsed document's shape and split it into entries (values not validated)."""
    if doc is None:
        raise empty_file_error(source)
    if not isinstance(doc, dict):
        raise CatalogError(
            f"expected a table of schema_version, families, sites, deployments and retired "
            f"at the top level, got {_type_name(doc)}",
            source=source,
        )
    for key in doc:
        if key not in TOP_LEVEL_KEYS:
            raise CatalogError(
                f"unknown top-level key {key!r}{did_you_mean(str(key), TOP_LEVEL_KEYS)} "
                f"(expected {', '.join(TOP_LEVEL_KEYS)})",
                source=source,
                field=str(key),
            )
    version = doc.get("schema_version", SCHEMA_VERSION)
    if isinstance(version, bool) or version != SCHEMA_VERSION:
        raise CatalogError(
            f"unsupported schema_version {version!r}: this version of hybridstack reads "
            f"schema_version = {SCHEMA_VERSION}",
            source=source,
            field="schema_version",
        )
    if not any(doc.get(kind) for kind in KINDS):
        raise empty_file_error(source)

    entries = Entries(source=source)
    for kind in ("families", "sites", "retired"):
        for key, body in _tables(doc, kind, source):
            getattr(entries, kind).append(_entry(kind, key, body, source, from_file=True))
    entries.deployments = list(_deployment_entries(doc.get("deployments"), source))
    return entries


def _tables(doc: dict[str, Any], kind: Kind, source: str) -> Iterable[tuple[str, Any]]:
    section = doc.get(kind)
    if section is None:
        return ()
    if not isinstance(section, dict):
        raise CatalogError(
            f"{kind} must be a table of named entries ([{kind}.NAME]), got {_type_name(section)}",
            source=source,
            field=kind,
        )
    return ((str(key), body) for key, body in section.items())


def _deployment_entries(section: Any, source: str) -> Iterable[RawEntry]:
    """Deployments as ``[deployments."family@site"]`` tables or a ``[[deployments]]`` list."""
    if section is None:
        return
    if isinstance(section, dict):
        for key, body in section.items():
            yield _entry("deployments", str(key), body, source, from_file=True)
        return
    if not isinstance(section, list):
        raise CatalogError(
            'deployments must be a table of [deployments."family@site"] entries '
            f"(or a list of tables with family and site), got {_type_name(section)}",
            source=source,
            field="deployments",
        )
    seen: dict[str, int] = {}
    for index, body in enumerate(section):
        label = f"deployments[{index}]"
        if not isinstance(body, dict):
            raise CatalogError(
                f"expected a table, got {_type_name(body)}", source=source, entry=label
            )
        for name in ("family", "site"):
            if not isinstance(body.get(name), str) or not body[name]:
                raise CatalogError(
                    f"is required in the list form of deployments ({_EXPECTED.get(name, name)})",
                    source=source,
                    entry=label,
                    field=name,
                )
        key = f"{body['family']}@{body['site']}"
        if key in seen:
            raise CatalogError(
                f"deployment {key!r} appears twice in this file (items {seen[key]} and {index})",
                source=source,
                entry=f"deployments.{key}",
            )
        seen[key] = index
        yield _entry("deployments", key, body, source, from_file=True)


def entries_from_code(
    families: Iterable[Family | Mapping[str, Any]],
    deployments: Iterable[Deployment | Mapping[str, Any]],
    source: str,
) -> Entries:
    """Entries given in code: models as they are, dicts shaped like file tables (a
    deployment dict carries ``family`` and ``site``; ``override=True`` patches)."""
    entries = Entries(source=source)
    for index, item in enumerate(families):
        if isinstance(item, Family):
            entries.families.append(RawEntry("families", item.name, item))
            continue
        if not isinstance(item, Mapping):
            raise CatalogError(
                f"expected a Family or a mapping, got {_type_name(item)}",
                source=source,
                entry=f"families[{index}]",
            )
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise CatalogError(
                f"is required ({_EXPECTED['name']})",
                source=source,
                entry=f"families[{index}]",
                field="name",
            )
        entries.families.append(_entry("families", name, item, source, from_file=False))
    for index, spec in enumerate(deployments):
        if isinstance(spec, Deployment):
            entries.deployments.append(RawEntry("deployments", spec.id, spec))
            continue
        label = f"deployments[{index}]"
        if not isinstance(spec, Mapping):
            raise CatalogError(
                f"expected a Deployment or a mapping, got {_type_name(spec)}",
                source=source,
                entry=label,
            )
        for name in ("family", "site"):
            if not isinstance(spec.get(name), str) or not spec[name]:
                raise CatalogError(
                    "is required: a deployment given as a mapping names its family and site",
                    source=source,
                    entry=label,
                    field=name,
                )
        key = f"{spec['family']}@{spec['site']}"
        entries.deployments.append(_entry("deployments", key, spec, source, from_file=False))
    return entries


def _entry(kind: Kind, key: str, body: Any, source: str, *, from_file: bool) -> RawEntry:
    label = f"{kind}.{key}"
    if not isinstance(body, Mapping):
        raise CatalogError(
            f"expected a table of fields, got {_type_name(body)}", source=source, entry=label
        )
    data = dict(body)
    if kind in ("families", "sites", "retired"):
        _refuse_split_name(kind, key, data, source)
    override = data.pop("override", False)
    if not isinstance(override, bool):
        raise CatalogError(
            f"must be true or false (got {override!r})",
            source=source,
            entry=label,
            field="override",
        )
    if from_file and "api_key" in data:
        raise CatalogError(
            "keys do not belong in catalog files: name the environment variable instead "
            "(api_key_env = 'MY_KEY') and export it, or pass the key in code",
            source=source,
            entry=label,
            field="api_key",
        )
    if kind == "deployments":
        family, at, site = key.partition("@")
        if not at or not family or not site or "@" in site:
            raise CatalogError(
                f"a deployment is named 'family@site' (got {key!r})", source=source, entry=label
            )
        for name, expected in (("family", family), ("site", site)):
            if name in data and data[name] != expected:
                raise CatalogError(
                    f"is {data[name]!r} but the entry's name says {expected!r}; "
                    "drop the field or rename the entry",
                    source=source,
                    entry=label,
                    field=name,
                )
    elif kind == "families" and "name" in data and data["name"] != key:
        raise CatalogError(
            f"is {data['name']!r} but the table is named {key!r}; "
            "drop the field or rename the table",
            source=source,
            entry=label,
            field="name",
        )
    return RawEntry(kind, key, data, override)


def _refuse_split_name(kind: Kind, key: str, data: Mapping[str, Any], source: str) -> None:
    """TOML reads ``[families.llama-3.3-70b]`` as nested tables ``llama-3`` > ``3-70b``:
    say so, instead of reporting missing fields of a family called ``llama-3``."""
    for sub, value in data.items():
        if isinstance(value, Mapping) and sub not in ("skills", "price"):
            name = f"{key}.{sub}"
            raise CatalogError(
                f"{sub!r} is not a field; if the name is {name!r}, quote it, because TOML "
                f'reads dots as nesting: [{kind}."{name}"]',
                source=source,
                entry=f"{kind}.{key}",
                field=sub,
            )


# --- validation ---------------------------------------------------------------------------


def build_family(data: Mapping[str, Any], *, source: str, entry: str) -> Family:
    return _validate(Family, data, source=source, entry=entry)


def build_retired(data: Mapping[str, Any], *, source: str, entry: str) -> RetiredName:
    return _validate(RetiredName, data, source=source, entry=entry)


def check_site(name: str, data: Mapping[str, Any], *, source: str) -> dict[str, Any]:
    """Check a site template's fields and values; return them as a plain dict."""
    entry = f"sites.{name}"
    for key in data:
        if key not in SITE_FIELDS:
            where = (
                " (it differs per model: set it on each deployment)"
                if key in Deployment.model_fields
                else did_you_mean(key, SITE_FIELDS)
            )
            raise CatalogError(
                f"unknown site field {key!r}{where}; a site may set {', '.join(SITE_FIELDS)}",
                source=source,
                entry=entry,
                field=key,
            )
    # Validate the values now, even if no deployment uses the site yet: a probe
    # deployment fills what the template leaves out with harmless placeholders.
    probe: dict[str, Any] = {
        "protocol": "openai",
        "base_url": "http://placeholder",
        "region": "placeholder",
        "jurisdiction": "LOCAL",
        "operator": "placeholder",
        **data,
        "family": "placeholder",
        "site": name,
        "model": "placeholder",
        "price": Price(input_per_mtok=0, output_per_mtok=0, as_of=date(2000, 1, 1)),
    }
    build_deployment(probe, source=source, entry=entry)
    return dict(data)


def build_deployment(
    data: Mapping[str, Any],
    *,
    source: str,
    entry: str,
    inherited: Iterable[str] = (),
    site_entry: str | None = None,
) -> Deployment:
    """Validate one deployment. Errors in fields that came from a site template
    (``inherited``) are reported against the site's entry."""
    inherited = set(inherited)

    def blame(field_path: str | None) -> str:
        top = (field_path or "").split(".")[0].split("[")[0]
        if site_entry and top in inherited:
            return site_entry
        return entry

    try:
        deployment = Deployment.model_validate(data)
    except ValidationError as exc:
        field_path, message = first_problem(exc, Deployment)
        raise CatalogError(
            message, source=source, entry=blame(field_path), field=field_path
        ) from None
    check_deployment(deployment, source=source, entry=entry, blame=blame)
    return deployment


def check_deployment(
    deployment: Deployment,
    *,
    source: str,
    entry: str,
    blame: Callable[[str], str] | None = None,
) -> None:
    """Checks beyond the model's own validators: jurisdiction codes and base URLs."""
    for field_name, problem in _deployment_problems(deployment):
        where = blame(field_name) if blame else entry
        raise CatalogError(problem, source=source, entry=where, field=field_name)


def _deployment_problems(d: Deployment) -> Iterable[tuple[str, str]]:
    code = d.jurisdiction
    if code not in KNOWN_JURISDICTIONS and not re.fullmatch(r"[A-Z]{2}", code):
        known = ", ".join(KNOWN_JURISDICTIONS)
        guess = _JURISDICTION_WORDS.get(code)
        hint = f"; did you mean {guess!r}?" if guess else did_you_mean(code, KNOWN_JURISDICTIONS)
        if re.search(r"-\d$", code):
            hint += f"; {code.lower()!r} looks like a region: put it in region"
        yield (
            "jurisdiction",
            f"unknown jurisdiction {code!r} (expected one of {known}, or another two-letter "
            f"country code){hint}",
        )
    parts = urlsplit(d.base_url)
    if not parts.hostname or any(ch.isspace() for ch in d.base_url):
        yield "base_url", f"base_url {d.base_url!r} has no valid host; expected https://host/path"
    path = parts.path.rstrip("/")
    for endpoint in ("/chat/completions", "/messages", "/services/aigc/text-generation"):
        if endpoint in path:
            yield (
                "base_url",
                f"base_url {d.base_url!r} is an endpoint, not the API root: drop "
                f"{path[path.index(endpoint) :]!r}",
            )
    if d.protocol == "dashscope" and "compatible-mode" in path:
        yield (
            "base_url",
            f"{d.base_url!r} is DashScope's OpenAI-compatible URL: use protocol = 'openai' "
            "with it, or the native …/api/v1 URL with protocol = 'dashscope'",
        )
    if d.protocol == "openai" and "dashscope" in (parts.hostname or "") and path == "/api/v1":
        yield (
            "base_url",
            f"{d.base_url!r} is DashScope's native URL: use protocol = 'dashscope' with it, "
            "or …/compatible-mode/v1 with protocol = 'openai'",
        )


def _validate(model: type[_M], data: Mapping[str, Any], *, source: str, entry: str) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise translate_validation_error(exc, model, source=source, entry=entry) from None


# --- pydantic errors -> one CatalogError ---------------------------------------------------


def translate_validation_error(
    exc: ValidationError, model: type[BaseModel], *, source: str, entry: str
) -> CatalogError:
    """One CatalogError for a pydantic ValidationError about one entry."""
    field_path, message = first_problem(exc, model)
    return CatalogError(message, source=source, entry=entry, field=field_path)


def first_problem(exc: ValidationError, model: type[BaseModel]) -> tuple[str | None, str]:
    """The first problem in words and the field it is about; other fields listed briefly."""
    return describe_first_problem(
        exc,
        model,
        expected=_EXPECTED,
        unit=lambda name: " (USD per 1M tokens)" if name.startswith("price.") else "",
        pattern=(
            "must be lowercase letters, digits, '.', '_' or '-', starting with a letter or digit"
        ),
    )


def _type_name(value: Any) -> str:
    return {
        list: "a list",
        dict: "a table",
        str: f"the text {short_repr(value)}",
        bool: f"the boolean {value}",
        int: f"the number {value}",
        float: f"the number {value}",
        type(None): "nothing",
    }.get(type(value), type(value).__name__)


__all__ = [
    "BUNDLED_SOURCE",
    "SCHEMA_VERSION",
    "SITE_FIELDS",
    "Entries",
    "RawEntry",
    "build_deployment",
    "build_family",
    "build_retired",
    "check_deployment",
    "check_site",
    "entries_from_code",
    "first_problem",
    "parse_document",
    "parse_text",
    "read_bundled",
    "read_file",
    "translate_validation_error",
]
