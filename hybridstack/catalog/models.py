"""The catalog's value types: families, deployments and their prices.

A *family* is a model identity independent of where it runs; a *deployment* is one
family served by one endpoint in one region and jurisdiction. Both are immutable
pydantic models so that a catalog can be shared by concurrent calls without locks.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from hybridstack.errors import SecretPickleError

Protocol = Literal["openai", "anthropic", "dashscope"]

#: Capabilities a request may need; the router filters deployments on them.
Feature = Literal["tools", "json_schema", "json_object", "streaming", "system_prompt", "thinking"]

#: Jurisdictions are upper-case codes; LOCAL means on-prem / this machine.
KNOWN_JURISDICTIONS = ("CN", "SG", "US", "EU", "UK", "JP", "KR", "IN", "AE", "AU", "HK", "LOCAL")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Price(_Model):
    """USD per one million tokens, with when and where the figure was read."""

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    #: Price of prompt-cache hits; defaults to the input price when unknown.
    cached_input_per_mtok: float | None = Field(default=None, ge=0)
    as_of: date
    source: str = ""

    def cost(self, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0) -> float:
        cached_rate = (
            self.input_per_mtok
            if self.cached_input_per_mtok is None
            else self.cached_input_per_mtok
        )
        fresh = max(0, input_tokens - cached_input_tokens)
        return (
            fresh * self.input_per_mtok
            + cached_input_tokens * cached_rate
            + output_tokens * self.output_per_mtok
        ) / 1_000_000


class Family(_Model):
    """A model identity: what it can do, independent of who hosts it."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    vendor: str
    description: str = ""
    context_window: int = Field(gt=0)
    max_output_tokens: int = Field(default=8192, gt=0)
    features: frozenset[Feature] = frozenset({"streaming", "system_prompt"})
    #: Skill -> strength in [0, 1]; the default skill table ranks families by it.
    skills: dict[str, float] = Field(default_factory=dict)
    #: Old names that now point here (e.g. retired provider ids), for hints.
    aliases: tuple[str, ...] = ()

    @field_validator("skills")
    @classmethod
    def _strengths_in_range(cls, value: dict[str, float]) -> dict[str, float]:
        for skill, strength in value.items():
            if not 0.0 <= strength <= 1.0:
                raise ValueError(
                    f"skill strength for {skill!r} must be between 0 and 1, got {strength}"
                )
        return value


class Deployment(_Model):
    """One family served by one endpoint: where, how, at what price and under which key."""

    family: str
    #: Short name of the host/region, unique per family: the part after ``@``.
    site: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    protocol: Protocol
    #: The provider's own model id sent on the wire (``qwen-plus``, ``deepseek-flash`` …).
    model: str
    base_url: str
    region: str
    jurisdiction: str
    operator: str
    #: Environment variable holding the key; None for endpoints that need none (local).
    api_key_env: str | None = None
    #: A key given in code or by the emulator. Never printed (SecretStr).
    api_key: SecretStr | None = Field(default=None, exclude=True, repr=False)
    price: Price
    #: Deployments that share one key or upstream limit share a scope: they cool down together.
    quota_scope: str = ""
    #: Overrides of the family's figures for this host (hosts often cap the window).
    context_window: int | None = Field(default=None, gt=0)
    features: frozenset[Feature] | None = None
    #: Relative share of traffic under the weighted policy.
    weight: float = Field(default=1.0, ge=0)
    enabled: bool = True
    #: Model ids this host no longer serves (the doctor warns about them).
    retired: bool = False
    #: Per-attempt timeout in seconds.
    timeout_s: float = Field(default=60.0, gt=0)
    notes: str = ""

    @field_validator("jurisdiction")
    @classmethod
    def _upper(cls, value: str) -> str:
        value = value.strip().upper()
        if not value:
            raise ValueError(
                "jurisdiction must not be empty (e.g. 'CN', 'SG', 'US', 'EU', 'LOCAL')"
            )
        return value

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https:// (got {value!r})")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _default_scope(self) -> Deployment:
        if not self.quota_scope:
            # Without a declared scope a deployment only shares limits with itself.
            object.__setattr__(self, "quota_scope", self.id)
        return self

    @property
    def id(self) -> str:
        """The unique reference ``family@site``."""
        return f"{self.family}@{self.site}"

    def __repr__(self) -> str:
        return (
            f"Deployment({self.id!r}, protocol={self.protocol!r}, region={self.region!r}, "
            f"jurisdiction={self.jurisdiction!r})"
        )

    __str__ = __repr__

    def __getstate__(self) -> dict[Any, Any]:
        # A pickle is a file or a message to another process: a key in it is in clear
        # (SecretStr only hides it from repr). Refused rather than dropped, so that no
        # deployment arrives somewhere silently keyless. copy/deepcopy/model_copy stay
        # in memory and keep the key; model_dump and JSON leave it out.
        if self.api_key is not None:
            raise SecretPickleError(
                f"deployment {self.id!r}",
                "Give the key by environment variable (api_key_env) or "
                "Stack(api_keys=...) where it is used, or pickle "
                "deployment.model_copy(update={'api_key': None}).",
            )
        return super().__getstate__()
