"""The catalog's value types: families, deployments and their prices.

A *family* is a model identity independent of where it runs; a *deployment* is one
family served by one endpoint in one region and jurisdiction. Both are immutable
pydantic models so that a catalog can be shared by concurrent calls without locks.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

Protocol = Literal["openai", "anthropic", "dashscope"]

#: Capabilities a request may need; the router filters deployments on them.
Feature = Literal["tools", "json_schema", "json_object", "streaming", "system_prompt", "thinking"]

#: Jurisdictions are upper-case codes; LOCAL means on-prem / this machine.
KNOWN_JURISDICTIONS = ("CN", "SG", "US", "EU", "UK", "JP", "KR", "IN", "AE", "AU", "HK", "LOCAL")


class _Model(BaseModel):
    # No inf or NaN in any figure: an infinite price or timeout is always a typo, and
    # NaN passes every comparison a spend cap or a ranking makes.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


#: Days of the week, as price windows name them (evaluated in UTC).
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


_DAY_GROUPS = {
    "weekdays": list(WEEKDAYS[:5]),
    "weekend": list(WEEKDAYS[5:]),
    "daily": list(WEEKDAYS),
}
_FULL_DAYS = {
    "monday": "mon", "tuesday": "tue", "wednesday": "wed", "thursday": "thu",
    "friday": "fri", "saturday": "sat", "sunday": "sun",
}  # fmt: skip


def _day(value: Any) -> Any:
    """'Mon', 'monday' -> 'mon'; anything else unchanged, so the error quotes it."""
    if not isinstance(value, str):
        return value
    key = value.strip().lower()
    return _FULL_DAYS.get(key, key)


class Rates(NamedTuple):
    """USD per 1M tokens that apply to one request (after its tier and time of day)."""

    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float


class PriceTier(_Model):
    """Rates for prompts longer than ``above_input_tokens`` (input-length tiers).

    As the providers bill, the tier is chosen by the request's input tokens (cached ones
    included) and then applies to all of its tokens, output too: a 40K-token prompt to
    qwen3-max is billed entirely at the 32K-128K rates.
    """

    above_input_tokens: int = Field(gt=0)
    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    #: Cache-hit rate in this tier; defaults to this tier's input rate when unknown.
    cached_input_per_mtok: float | None = Field(default=None, ge=0)


class PriceWindow(_Model):
    """A daily window in which every rate is multiplied (DeepSeek's peak hours x2).

    Times and days are UTC, taken at the attempt's start. ``end`` is exclusive and may
    be earlier than ``start`` (the window wraps midnight); ``00:00`` means midnight.
    ``except_dates`` are UTC dates the window does not apply on (e.g. public holidays).
    """

    start: time
    end: time
    multiplier: float = Field(ge=0)
    #: UTC weekdays it applies on: 'mon' … 'sun' (or 'monday' …), or "weekdays" / "weekend".
    days: tuple[Weekday, ...] = WEEKDAYS
    except_dates: tuple[date, ...] = ()
    note: str = ""

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock_time(cls, value: Any) -> Any:
        if isinstance(value, int | float):  # bool is an int too
            # YAML 1.1 reads an unquoted 01:00 as the base-60 number 60.
            raise ValueError(
                f"expected a UTC time such as '01:00' (got the number {value}; in YAML, "
                "quote times: start: '01:00')"
            )
        return value

    @field_validator("days", mode="before")
    @classmethod
    def _day_names(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = _DAY_GROUPS.get(value.strip().lower(), [value])
        if isinstance(value, list | tuple):
            return tuple(_day(v) for v in value)
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> PriceWindow:
        if self.start == self.end:
            raise ValueError(
                f"a price window from {self.start:%H:%M} to {self.end:%H:%M} is empty: "
                "end must differ from start (00:00 means midnight)"
            )
        if not self.days:
            raise ValueError("a price window needs at least one day, e.g. days = ['mon']")
        return self

    def applies(self, at: datetime) -> bool:
        """Whether an attempt started at ``at`` (naive = UTC) falls in this window."""
        return self._applies(_utc_naive(at))

    def _applies(self, moment: datetime) -> bool:
        # Minutes of the day: integers, no time objects (every plan prices every candidate).
        now = moment.hour * 60 + moment.minute
        start = self.start.hour * 60 + self.start.minute
        end = self.end.hour * 60 + self.end.minute
        if start < end:
            if not start <= now < end:
                return False
            day = moment.date()
        elif now >= start:
            day = moment.date()
        elif now < end:  # after midnight in a window that wrapped: it belongs to the day before
            day = moment.date() - timedelta(days=1)
        else:
            return False
        if WEEKDAYS[day.weekday()] not in self.days:
            return False
        return not self.except_dates or day not in self.except_dates


def _utc_naive(at: datetime) -> datetime:
    return at if at.tzinfo is None else at.astimezone(UTC).replace(tzinfo=None)


class Price(_Model):
    """USD per one million tokens, with when and where the figure was read.

    The top-level rates are the base tier (short prompts) at the base time; ``tiers``
    raise them for longer prompts and ``windows`` multiply them at some hours. One
    function prices a request, :meth:`cost`; every cost in hybridstack goes through it.
    """

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    #: Price of prompt-cache hits; defaults to the input price when unknown.
    cached_input_per_mtok: float | None = Field(default=None, ge=0)
    as_of: date
    source: str = ""
    #: Input-length tiers above the base rates, in increasing order of threshold.
    tiers: tuple[PriceTier, ...] = ()
    #: Time-of-day rules (peak / off-peak) that multiply the rates.
    windows: tuple[PriceWindow, ...] = ()
    #: Why this price knowingly differs from the maintained price map the tests compare
    #: the bundled catalog with (genai-prices), e.g. "newer: the host cut prices on …".
    override_reason: str = ""

    @field_validator("tiers")
    @classmethod
    def _tiers_ascending(cls, tiers: tuple[PriceTier, ...]) -> tuple[PriceTier, ...]:
        thresholds = [t.above_input_tokens for t in tiers]
        if thresholds != sorted(set(thresholds)):
            listed = ", ".join(f"{n:,}" for n in thresholds)
            raise ValueError(
                f"tiers must be listed in increasing order of above_input_tokens, each "
                f"threshold once (got {listed})"
            )
        return tiers

    @property
    def flat(self) -> bool:
        """True when the price depends on neither prompt length nor time of day."""
        return not self.tiers and not self.windows

    def multiplier(self, at: datetime | None = None) -> float:
        """The time-of-day factor at ``at``; with no time, the highest any window sets
        (so an estimate made without a clock never under-counts)."""
        windows = self.windows
        if not windows:
            return 1.0
        if at is None:
            return max(1.0, *(w.multiplier for w in windows))
        moment = _utc_naive(at)
        factors = [w.multiplier for w in windows if w._applies(moment)]
        return max(factors) if factors else 1.0

    def _tier_rates(self, input_tokens: int) -> tuple[float, float, float]:
        inp, out, cached = self.input_per_mtok, self.output_per_mtok, self.cached_input_per_mtok
        for tier in self.tiers:  # ascending: the last one the prompt exceeds wins
            if input_tokens <= tier.above_input_tokens:
                break
            inp, out, cached = tier.input_per_mtok, tier.output_per_mtok, tier.cached_input_per_mtok
        return inp, out, inp if cached is None else cached

    def rates(self, input_tokens: int = 0, at: datetime | None = None) -> Rates:
        """The rates a request with ``input_tokens`` of prompt pays at ``at``."""
        inp, out, cached = self._tier_rates(input_tokens)
        factor = self.multiplier(at) if self.windows else 1.0
        return Rates(inp * factor, out * factor, cached * factor)

    def cost(
        self,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int = 0,
        *,
        at: datetime | None = None,
    ) -> float:
        """USD for one request: its tier by ``input_tokens``, its window by ``at``.

        ``input_tokens`` includes ``cached_input_tokens`` (billed at the cache rate).
        ``at`` is when the attempt started; None takes the dearest window. A pure
        function of its arguments (the router calls it for every candidate of every
        plan, so it stays cheap).
        """
        inp, out, cached = self._tier_rates(input_tokens)
        fresh = input_tokens - cached_input_tokens
        usd = (
            (fresh if fresh > 0 else 0) * inp + cached_input_tokens * cached + output_tokens * out
        ) / 1_000_000
        return usd * self.multiplier(at) if self.windows else usd


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
