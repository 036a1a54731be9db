"""``hybridstack.toml``: one validated file for catalog additions, routing and resilience.

Found at ``--config PATH``, else ``$HYBRIDSTACK_CONFIG``, else ``./hybridstack.toml``.
Keys are never written here: deployments name the environment variable that holds
theirs (``api_key_env``). Every error names the file, the key and what is expected.

Example::

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
    max_retries_per_deployment = 2

    [catalog]
    files = ["my-models.toml"]   # relative to this file
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hybridstack.errors import ConfigurationError

if TYPE_CHECKING:
    from hybridstack.catalog import Catalog
    from hybridstack.ledger import Ledger
    from hybridstack.stack import Stack

__all__ = ["HybridStackConfig", "find_config", "load_config"]

CONFIG_ENV = "HYBRIDSTACK_CONFIG"
CONFIG_FILENAME = "hybridstack.toml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
    #: ``memory`` or a path to a SQLite file (relative to the config file).
    path: str = "memory"


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
    #: Where the file was read from (set by :func:`load_config`).
    source: Path | None = Field(default=None, exclude=True)

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

    def build_ledger(self) -> Ledger:
        from hybridstack.ledger import MemoryLedger, SQLiteLedger

        if self.ledger.path == "memory":
            return MemoryLedger()
        return SQLiteLedger(self._relative(self.ledger.path))

    def stack_options(self) -> dict[str, Any]:
        """Keyword arguments for :class:`~hybridstack.Stack` (all validated here)."""
        from hybridstack.resilience import BreakerSettings, Budget, HedgeSettings, RetrySettings
        from hybridstack.routing import RouteConstraints

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
        for key, cls in (
            ("budget", Budget),
            ("retry", RetrySettings),
            ("breakers", BreakerSettings),
            ("hedge", HedgeSettings),
        ):
            section = getattr(self, key)
            if section:
                try:
                    options[key] = cls(**section)
                except (TypeError, ValidationError) as error:
                    raise ConfigurationError(
                        f"{where}: [{key}] is invalid: {_first_error(error)}"
                    ) from None
        if (
            self.routing.allow_jurisdictions is not None
            or self.routing.deny_jurisdictions
            or self.routing.deny_deployments
        ):
            options["constraints"] = RouteConstraints(
                allow_jurisdictions=self.routing.allow_jurisdictions,
                deny_jurisdictions=self.routing.deny_jurisdictions,
                deny_deployments=self.routing.deny_deployments,
            )
        return options

    def build_stack(self, *, catalog: Catalog | None = None, **overrides: Any) -> Stack:
        from hybridstack.stack import Stack

        options = self.stack_options()
        options.update({k: v for k, v in overrides.items() if v is not None})
        options.setdefault("ledger", self.build_ledger())
        return Stack(catalog if catalog is not None else self.build_catalog(), **options)


def _first_error(error: Exception) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        location = ".".join(str(part) for part in first["loc"])
        return f"{location}: {first['msg']}" if location else first["msg"]
    return str(error)


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
    return config
