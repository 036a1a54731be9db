"""Policies (how to order allowed deployments) and route constraints (which are allowed).

A policy composes in a fixed order: **constraints** filter (sovereignty first), then the
**primary order**, then the optional **jurisdiction cap**, then **health**::

    weighted    weighted random order (Efraimidis-Spirakis keys u ** (1 / weight)) from a
                seeded, recorded draw; the default: it spreads traffic across regions
    cheapest    by expected cost: catalog prices x (estimated prompt tokens, max_tokens
                or the router's default output estimate); families ordered by their
                cheapest allowed deployment
    fastest     by measured latency (EWMA from the LatencyTracker); an unmeasured
                deployment counts as 0 s (optimistic prior), so it is tried, and measured,
                before measured ones
    diversified weighted + a cap of 0.5 on any jurisdiction's share of recent traffic

Strings parse: ``"weighted"``, ``"cheapest"``, ``"fastest"``, ``"diversified"``,
``"cheapest+diversified"``, ``"fastest+diversified:0.3"``, ``"diversified:0.4:200"``
(cap 0.4 over the last 200 calls).

Jurisdiction cap: a jurisdiction whose share of the last ``window`` recorded calls is at
or over ``max_jurisdiction_share`` moves behind every other candidate. It is **not**
excluded: it stays as a fall-back (sovereignty is the only thing that excludes).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, cast

from hybridstack.errors import ConfigurationError

__all__ = ["PRIMARY_POLICIES", "Policy", "RouteConstraints"]

Primary = Literal["weighted", "cheapest", "fastest"]
PRIMARY_POLICIES: tuple[str, ...] = ("weighted", "cheapest", "fastest")
DEFAULT_CAP = 0.5
DEFAULT_WINDOW = 100


@dataclass(frozen=True, slots=True)
class Policy:
    """How the router orders the deployments that passed the constraints.

    Args:
        primary: ``"weighted"``, ``"cheapest"`` or ``"fastest"``.
        max_jurisdiction_share: cap in (0, 1] on one jurisdiction's share of the last
            ``window`` calls; None = no cap.
        window: how many recent calls the cap looks at.
    """

    primary: Primary = "weighted"
    max_jurisdiction_share: float | None = None
    window: int = DEFAULT_WINDOW

    def __post_init__(self) -> None:
        if self.primary not in PRIMARY_POLICIES:
            raise ConfigurationError(
                f"unknown primary policy {self.primary!r}; use one of {', '.join(PRIMARY_POLICIES)}"
            )
        share = self.max_jurisdiction_share
        if share is not None and not 0.0 < share <= 1.0:
            raise ConfigurationError(f"max_jurisdiction_share must be in (0, 1], got {share}")
        if self.window < 1:
            raise ConfigurationError(f"window must be at least 1, got {self.window}")

    @property
    def diversified(self) -> bool:
        return self.max_jurisdiction_share is not None

    @classmethod
    def parse(cls, value: str | Policy | None) -> Policy:
        """``"weighted"``, ``"cheapest+diversified"``, ``"diversified:0.3:200"`` … or a Policy."""
        if value is None:
            return cls()
        if isinstance(value, Policy):
            return value
        if not isinstance(value, str):
            raise ConfigurationError(
                f"policy must be a string or a Policy, got {type(value).__name__}"
            )
        return _parse(value.strip().lower())

    def __str__(self) -> str:
        if self.max_jurisdiction_share is None:
            return self.primary
        cap = "diversified"
        if self.max_jurisdiction_share != DEFAULT_CAP or self.window != DEFAULT_WINDOW:
            cap += f":{self.max_jurisdiction_share:g}"
            if self.window != DEFAULT_WINDOW:
                cap += f":{self.window}"
        return cap if self.primary == "weighted" else f"{self.primary}+{cap}"


@functools.lru_cache(maxsize=64)
def _parse(text: str) -> Policy:
    primary: str | None = None
    share: float | None = None
    window = DEFAULT_WINDOW
    valid = "weighted, cheapest, fastest, diversified[:share[:window]] joined by '+'"
    if not text:
        raise ConfigurationError(f"empty policy; use one of: {valid}")
    for part in text.split("+"):
        part = part.strip()
        name, _, args = part.partition(":")
        if name in PRIMARY_POLICIES:
            if args:
                raise ConfigurationError(f"policy {name!r} takes no arguments (in {text!r})")
            if primary is not None and primary != name:
                raise ConfigurationError(
                    f"policy {text!r} names two primary orders ({primary}, {name}); pick one"
                )
            primary = name
        elif name == "diversified":
            share = DEFAULT_CAP
            if args:
                bits = args.split(":")
                try:
                    share = float(bits[0])
                    if len(bits) > 1:
                        window = int(bits[1])
                except ValueError:
                    raise ConfigurationError(
                        f"bad diversified arguments in {text!r}: use diversified:0.5 or "
                        "diversified:0.5:100 (share, window)"
                    ) from None
                if len(bits) > 2:
                    raise ConfigurationError(f"too many diversified arguments in {text!r}")
        else:
            raise ConfigurationError(f"unknown policy {part!r} in {text!r}; use: {valid}")
    order = cast("Primary", primary or "weighted")  # one of PRIMARY_POLICIES, checked above
    return Policy(primary=order, max_jurisdiction_share=share, window=window)


def _codes(value: Iterable[str] | str | None, *, upper: bool) -> frozenset[str] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, str) else list(value)
    return frozenset(i.strip().upper() if upper else i.strip() for i in items)


@dataclass(frozen=True, slots=True)
class RouteConstraints:
    """Filters on deployments, on top of the data class's jurisdictions (never looser).

    Allow-lists (None = no restriction) and deny-lists. Deployment lists take ids
    (``family@site``) or family names. Prices: ``max_price_per_mtok`` is USD per one
    million tokens on ``price_basis``: ``"blended"`` = (3 x input + 1 x output) / 4 (the
    usual 3:1 input:output mix) or ``"input"`` = the input price alone.
    ``require_features`` adds features on top of those the request implies (tools,
    structured output, streaming).
    """

    allow_jurisdictions: frozenset[str] | None = None
    deny_jurisdictions: frozenset[str] = field(default_factory=frozenset)
    allow_operators: frozenset[str] | None = None
    deny_operators: frozenset[str] = field(default_factory=frozenset)
    allow_deployments: frozenset[str] | None = None
    deny_deployments: frozenset[str] = field(default_factory=frozenset)
    max_price_per_mtok: float | None = None
    price_basis: Literal["blended", "input"] = "blended"
    min_context_window: int | None = None
    require_features: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        norm = {
            "allow_jurisdictions": _codes(self.allow_jurisdictions, upper=True),
            "deny_jurisdictions": _codes(self.deny_jurisdictions, upper=True) or frozenset(),
            "allow_operators": _codes(self.allow_operators, upper=False),
            "deny_operators": _codes(self.deny_operators, upper=False) or frozenset(),
            "allow_deployments": _codes(self.allow_deployments, upper=False),
            "deny_deployments": _codes(self.deny_deployments, upper=False) or frozenset(),
            "require_features": _codes(self.require_features, upper=False) or frozenset(),
        }
        for name, value in norm.items():
            object.__setattr__(self, name, value)
        if self.price_basis not in ("blended", "input"):
            raise ConfigurationError(
                f"price_basis must be 'blended' or 'input', got {self.price_basis!r}"
            )
        if self.max_price_per_mtok is not None and self.max_price_per_mtok < 0:
            raise ConfigurationError("max_price_per_mtok must not be negative")
        if self.min_context_window is not None and self.min_context_window < 1:
            raise ConfigurationError("min_context_window must be a positive number of tokens")

    @classmethod
    def coerce(cls, value: RouteConstraints | Mapping[str, Any] | None) -> RouteConstraints | None:
        if value is None or isinstance(value, RouteConstraints):
            return value
        if isinstance(value, Mapping):
            names = {f.name for f in fields(cls)}
            unknown = sorted(set(value) - names)
            if unknown:
                raise ConfigurationError(
                    f"unknown route constraint(s) {unknown}; known: {', '.join(sorted(names))}"
                )
            return cls(**value)
        raise ConfigurationError(
            f"constraints must be a RouteConstraints or a dict, got {type(value).__name__}"
        )

    @property
    def empty(self) -> bool:
        return self == _EMPTY

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, frozenset):
                value = sorted(value)
            out[f.name] = value
        return out


_EMPTY = RouteConstraints()
