"""``hybridstack.toml``: one validated file for catalog additions, routing and resilience.

Found at ``--config PATH``, else ``$HYBRIDSTACK_CONFIG``, else ``./hybridstack.toml``.
Keys are never written here: deployments name the environment variable that holds
theirs (``api_key_env``). Every error names the file, the key and what is expected.

Example::

    ledger = "runs/ledger.sqlite"            # or "memory", or "postgresql://host/db"
    checkpoints = "postgresql://host/db"     # the agent's checkpoints (default: SQLite)

    [routing]
    policy = "weighted"          # weighted | cheapest | fastest | diversified
    seed = 7

    [skills]                     # skill -> ranked families
    code = ["deepseek-flash", "qwen3-coder-plus"]

    [data_classes]               # data class -> allowed jurisdictions
    personal = ["EU", "LOCAL"]

    [budget]
    deadline_s = 30
    max_attempts = 6

    [retry]
    max_retries = 2              # per deployment

    [catalog]
    files = ["my-models.toml"]   # relative to this file

    [health]                     # share breakers and holds across processes
    url = "redis://127.0.0.1:6379/0"
    prefix = "hybridstack"

(top-level keys go before the first ``[section]``; ``[ledger] path = …`` works too.)
"""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hybridstack.errors import ConfigurationError

if TYPE_CHECKING:
    from hybridstack.catalog import Catalog
    from hybridstack.ledger import Ledger
    from hybridstack.resilience.health import HealthStore
    from hybridstack.stack import Stack

__all__ = ["HybridStackConfig", "find_config", "load_config"]

CONFIG_ENV = "HYBRIDSTACK_CONFIG"
CONFIG_FILENAME = "hybridstack.toml"


class _Section(BaseModel):
    # strict: TOML has real booleans and numbers, so "yes" or "7" in a string is a mistake.
    model_config = ConfigDict(extra="forbid", strict=True)


class RoutingSection(_Section):
    policy: str = "weighted"
    seed: int | None = None
    allow_jurisdictions: list[str] | None = None
    deny_jurisdictions: list[str] = Field(default_factory=list)
    deny_deployments: list[str] = Field(default_factory=list)
    redact_personal_data: bool = False
    stream_failover: Literal["raise", "resume"] = "raise"


class CatalogSection(_Section):
    #: Extra catalog files (TOML/YAML/JSON), relative to the config file.
    files: list[str] = Field(default_factory=list)
    #: Use the bundled catalog underneath (false: only your files).
    bundled: bool = True


class LedgerSection(_Section):
    #: ``memory``, a path to a SQLite file (relative to the config file) or a
    #: ``postgresql://`` URL.
    path: str = "memory"


class HealthSection(_Section):
    #: ``memory`` (each process its own) or a Redis URL shared by a fleet.
    url: str = "memory"
    #: Key namespace in Redis: fleets that must not share state use different ones.
    prefix: str = "hybridstack"
    #: The most a read may lag another process (seconds).
    cache_ttl_s: float | int = 1.0


class HybridStackConfig(_Section):
    """The whole file. Unknown keys are errors (a typo must not be silently ignored)."""

    routing: RoutingSection = Field(default_factory=RoutingSection)
    skills: dict[str, list[str]] = Field(default_factory=dict)
    data_classes: dict[str, list[str]] = Field(default_factory=dict)
    budget: dict[str, Any] = Field(default_factory=dict)
    retry: dict[str, Any] = Field(default_factory=dict)
    breakers: dict[str, Any] = Field(default_factory=dict)
    hedge: dict[str, Any] = Field(default_factory=dict)
    catalog: CatalogSection = Field(default_factory=CatalogSection)
    ledger: LedgerSection = Field(default_factory=LedgerSection)
    health: HealthSection = Field(default_factory=HealthSection)
    #: The agent's checkpoint store: an SQLite file (relative to the config file) or a
    #: ``postgresql://`` URL; None: the agent's default.
    checkpoints: str | None = None
    #: Where the file was read from (set by :func:`load_config`).
    source: Path | None = Field(default=None, exclude=True)

    @field_validator("ledger", mode="before")
    @classmethod
    def _ledger_as_string(cls, value: Any) -> Any:
        # ``ledger = "postgresql://…"`` is short for ``[ledger] path = "postgresql://…"``.
        return {"path": value} if isinstance(value, str) else value

    def _relative(self, value: str) -> Path:
        path = Path(value).expanduser()
        if not path.is_absolute() and self.source is not None:
            path = self.source.parent / path
        return path

    def build_catalog(self) -> Catalog:
        from hybridstack.catalog import Catalog

        catalog = Catalog.default() if self.catalog.bundled else Catalog()
        for file in self.catalog.files:
            catalog = catalog.with_file(self._relative(file))
        return catalog

    def ledger_location(self) -> str:
        """``memory``, the SQLite path (resolved against the config file) or the URL."""
        from hybridstack.ledger.opening import is_postgres_url

        where = self.ledger.path
        if where == "memory" or is_postgres_url(where):
            return where
        return str(self._relative(where))

    def checkpoint_location(self) -> str | None:
        """The checkpoint store (SQLite path resolved against the config file, or URL)."""
        from hybridstack.ledger.opening import is_postgres_url

        where = self.checkpoints
        if where is None or is_postgres_url(where):
            return where
        return str(self._relative(where))

    def build_ledger(self) -> Ledger:
        from hybridstack.ledger import open_ledger

        return open_ledger(self.ledger_location())

    def build_health_store(self) -> HealthStore:
        """The ``[health]`` store (a Redis one connects in the background, never blocks)."""
        from hybridstack.resilience.health import MemoryHealthStore

        url = self.health.url
        if url == "memory":
            return MemoryHealthStore()
        where = str(self.source) if self.source else "<config>"
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigurationError(
                f"{where}: health.url: expected 'memory' or a Redis URL such as "
                "'redis://127.0.0.1:6379/0'"
            )
        from hybridstack.resilience.health_redis import RedisHealthStore

        try:
            return RedisHealthStore(
                url, prefix=self.health.prefix, cache_ttl_s=float(self.health.cache_ttl_s)
            )
        except ConfigurationError as error:
            raise ConfigurationError(f"{where}: [health]: {error}") from None

    def stack_options(self) -> dict[str, Any]:
        """Keyword arguments for :class:`~hybridstack.Stack` (all validated here)."""
        from hybridstack.resilience import BreakerSettings, Budget, HedgeSettings, RetrySettings
        from hybridstack.routing import Policy, RouteConstraints

        where = str(self.source) if self.source else "<config>"
        options: dict[str, Any] = {
            "policy": self.routing.policy,
            "seed": self.routing.seed,
            "redact_personal_data": self.routing.redact_personal_data,
            "stream_failover": self.routing.stream_failover,
        }
        if self.skills:
            options["skill_table"] = self.skills
        if self.data_classes:
            options["data_classes"] = self.data_classes
        try:
            Policy.parse(self.routing.policy)
        except ConfigurationError as error:
            raise ConfigurationError(f"{where}: routing.policy: {error}") from None
        for key, cls in (
            ("budget", Budget),
            ("retry", RetrySettings),
            ("breakers", BreakerSettings),
            ("hedge", HedgeSettings),
        ):
            section = getattr(self, key)
            if section:
                options[key] = _settings(where, key, cls, section)
        if (
            self.routing.allow_jurisdictions is not None
            or self.routing.deny_jurisdictions
            or self.routing.deny_deployments
        ):
            allow = self.routing.allow_jurisdictions
            options["constraints"] = RouteConstraints(
                allow_jurisdictions=None if allow is None else frozenset(allow),
                deny_jurisdictions=frozenset(self.routing.deny_jurisdictions),
                deny_deployments=frozenset(self.routing.deny_deployments),
            )
        return options

    def build_stack(self, *, catalog: Catalog | None = None, **overrides: Any) -> Stack:
        from hybridstack.stack import Stack

        options = self.stack_options()
        options.update({k: v for k, v in overrides.items() if v is not None})
        options.setdefault("ledger", self.build_ledger())
        if self.health.url != "memory" and "health_store" not in options:
            options["health_store"] = self.build_health_store()
            stack = Stack(catalog if catalog is not None else self.build_catalog(), **options)
            stack._owns_store = True  # built from the file: the stack closes it
            return stack
        return Stack(catalog if catalog is not None else self.build_catalog(), **options)


#: What a settings field holds, by its annotation (the settings are plain dataclasses).
_EXPECTED = {
    "bool": ("true or false", (bool,)),
    "int": ("an integer", (int,)),
    "int | None": ("an integer", (int,)),
    "float": ("a number", (int, float)),
    "float | None": ("a number", (int, float)),
}


def _settings(where: str, section: str, cls: type, values: dict[str, Any]) -> Any:
    """Build one resilience settings object; errors name the file, the key and the type."""
    import dataclasses

    def annotation(field: dataclasses.Field[Any]) -> str:
        kind = field.type
        return kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))

    # Fields a TOML value can set (a custom tenacity ``wait`` strategy cannot).
    fields = {
        annotated.name: annotation(annotated)
        for annotated in dataclasses.fields(cls)
        if annotated.init
        and not annotated.name.startswith("_")
        and annotation(annotated) in _EXPECTED
    }
    for key, value in values.items():
        kind = fields.get(key)
        if kind is None:
            raise ConfigurationError(
                f"{where}: {section}.{key}: unknown key (expected one of: "
                f"{', '.join(fields)}; see docs/configuration.md)"
            )
        expected, types = _EXPECTED[kind]
        if isinstance(value, bool) is not (bool in types) or not isinstance(value, types):
            raise ConfigurationError(
                f"{where}: {section}.{key}: expected {expected}, got {value!r}"
            )
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:  # the settings' own range checks
        message = str(error)
        name = next((k for k in values if message.startswith(k)), None)
        key = f"{section}.{name}" if name else f"[{section}]"
        raise ConfigurationError(f"{where}: {key}: {message}") from None


def _check_jurisdictions(where: str, key: str, codes: Any, *, allow_any: bool = False) -> None:
    """Jurisdiction codes as the catalog accepts them: a known code or two letters."""
    from hybridstack.catalog.models import KNOWN_JURISDICTIONS

    for code in [codes] if isinstance(codes, str) else codes:
        normal = code.strip().upper()
        if normal in KNOWN_JURISDICTIONS or (allow_any and normal in ("*", "ANY")):
            continue
        if len(normal) == 2 and normal.isascii() and normal.isalpha():
            continue
        raise ConfigurationError(
            f"{where}: {key}: unknown jurisdiction {code!r} (expected one of "
            f"{', '.join(KNOWN_JURISDICTIONS)} or another two-letter country code"
            + (", or '*' for any)" if allow_any else ")")
        )


def _find_api_keys(data: Any, path: str = "") -> str | None:
    """The dotted path of the first ``api_key`` (or ``*_api_key``) anywhere in the file."""
    if isinstance(data, dict):
        for key, value in data.items():
            here = f"{path}.{key}" if path else str(key)
            name = str(key).lower()
            if name in ("api_key", "apikey", "api-key", "secret_key") or name.endswith(
                ("_api_key", "-api-key")
            ):
                return here
            found = _find_api_keys(value, here)
            if found:
                return found
    elif isinstance(data, list):
        for index, item in enumerate(data):
            found = _find_api_keys(item, f"{path}[{index}]")
            if found:
                return found
    return None


def find_config(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The config path to use: explicit, then $HYBRIDSTACK_CONFIG, then ./hybridstack.toml."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigurationError(f"config file {path} does not exist (from --config)")
        return path
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        path = Path(from_env).expanduser()
        if not path.is_file():
            raise ConfigurationError(f"config file {path} does not exist (from ${CONFIG_ENV})")
        return path
    local = Path.cwd() / CONFIG_FILENAME
    return local if local.is_file() else None


def load_config(path: str | os.PathLike[str] | None = None) -> HybridStackConfig:
    """Read and validate a config file; with no file anywhere, the defaults."""
    found = find_config(path)
    if found is None:
        return HybridStackConfig()
    try:
        data = tomllib.loads(found.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigurationError(f"{found}: not valid TOML: {error}") from None
    except RecursionError:
        raise ConfigurationError(
            f"{found}: not valid TOML for hybridstack: values are nested too deeply (the "
            "config needs two levels, e.g. [budget] deadline_s = 30)"
        ) from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"{found}: is not UTF-8 text (save it as UTF-8)") from None
    except ValueError:  # tomllib's own int(): beyond Python's int_max_str_digits
        raise ConfigurationError(
            f"{found}: not valid TOML for hybridstack: a number has more than "
            f"{sys.get_int_max_str_digits()} digits"
        ) from None
    secret = _find_api_keys(data)
    if secret is not None:
        raise ConfigurationError(
            f"{found}: {secret}: API keys never go in hybridstack.toml; a deployment names "
            "the environment variable that holds its key (api_key_env = 'MY_KEY') in a "
            "catalog file, and you export that variable"
        )
    try:
        config = HybridStackConfig.model_validate(data)
    except ValidationError as error:
        problems = []
        for item in error.errors()[:5]:
            key = ".".join(str(part) for part in item["loc"])
            expected = item["msg"]
            if item["type"] == "extra_forbidden":
                expected = "unknown key (check the spelling; see docs/configuration.md)"
            problems.append(f"{key}: {expected}")
        raise ConfigurationError(f"{found}: " + "; ".join(problems)) from None
    config.source = found
    for name, codes in config.data_classes.items():
        _check_jurisdictions(str(found), f"data_classes.{name}", codes, allow_any=True)
    _check_jurisdictions(
        str(found), "routing.allow_jurisdictions", config.routing.allow_jurisdictions or []
    )
    _check_jurisdictions(
        str(found), "routing.deny_jurisdictions", config.routing.deny_jurisdictions
    )
    config.stack_options()  # every setting is checked now, with the file's name
    if config.health.url != "memory" and not config.health.url.startswith(
        ("redis://", "rediss://", "unix://")
    ):
        raise ConfigurationError(
            f"{found}: health.url: expected 'memory' or a Redis URL such as "
            "'redis://127.0.0.1:6379/0'"
        )
    if config.routing.deny_deployments:
        from hybridstack.catalog.refs import unnamed_entry

        # A typo here would deny nothing: say so now, naming the file.
        problem = unnamed_entry(
            config.build_catalog(), "deny_deployments", config.routing.deny_deployments
        )
        if problem is not None:
            raise ConfigurationError(f"{found}: routing.deny_deployments: {problem}")
    return config
