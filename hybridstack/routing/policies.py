"""Policies (how to order allowed deployments) and route constraints (which are allowed).

A policy composes in a fixed order: **constraints** filter (sovereignty first), then the
**primary order** (a value: see :mod:`hybridstack.routing.orders`), then the optional
**jurisdiction cap**, then **health**. The built-in orders::

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
(cap 0.4 over the last 200 calls), and the name of any order given to
:func:`~hybridstack.routing.orders.register_order`. ``Policy(primary=order)`` takes an
order object itself, registered or not.

Jurisdiction cap: a jurisdiction whose share of the last ``window`` recorded calls is at
or over ``max_jurisdiction_share`` moves behind every other candidate. It is **not**
excluded: it stays as a fall-back (sovereignty is the only thing that excludes).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from hybridstack.errors import ConfigurationError
from hybridstack.routing import orders
from hybridstack.routing.orders import Order

__all__ = ["PRIMARY_POLICIES", "Policy", "RouteConstraints"]

#: The built-in orders' names (every registered name parses too).
PRIMARY_POLICIES: tuple[str, ...] = orders.BUILTIN_ORDERS
DEFAULT_CAP = 0.5
DEFAULT_WINDOW = 100


@dataclass(frozen=True, slots=True)
class Policy:
    """How the router orders the deployments that passed the constraints.

    Args:
        primary: an order: ``"weighted"``, ``"cheapest"``, ``"fastest"``, the name of a
            registered order, or an :class:`~hybridstack.routing.orders.Order` object.
        max_jurisdiction_share: cap in (0, 1] on one jurisdiction's share of the last
            ``window`` calls; None = no cap.
        window: how many recent calls the cap looks at.
    """

    primary: str | Order = "weighted"
    max_jurisdiction_share: float | None = None
    window: int = DEFAULT_WINDOW

    def __post_init__(self) -> None:
        if isinstance(self.primary, str):
            if self.primary not in orders.order_names():
                raise ConfigurationError(
                    f"unknown primary policy {self.primary!r}; use one of "
                    f"{', '.join(orders.order_names())} (register_order() adds one)"
                )
        else:
            orders.check_order(self.primary)
        share = self.max_jurisdiction_share
        if share is not None and not 0.0 < share <= 1.0:
            raise ConfigurationError(f"max_jurisdiction_share must be in (0, 1], got {share}")
        if self.window < 1:
            raise ConfigurationError(f"window must be at least 1, got {self.window}")

    @property
    def diversified(self) -> bool:
        return self.max_jurisdiction_share is not None

    @property
    def order(self) -> Order:
        """The order object (a registered name resolved)."""
        primary = self.primary
        return orders.get_order(primary) if isinstance(primary, str) else primary

    @property
    def order_name(self) -> str:
        primary = self.primary
        return primary if isinstance(primary, str) else primary.name

    @classmethod
    def parse(cls, value: str | Policy | Order | None) -> Policy:
        """``"weighted"``, ``"cheapest+diversified"``, ``"diversified:0.3:200"`` …, a
        Policy, or an order object (``Policy(primary=order)``)."""
        if value is None:
            return cls()
        if isinstance(value, Policy):
            return value
        if not isinstance(value, str):
            if callable(getattr(value, "rank", None)):
                return cls(primary=value)
            raise ConfigurationError(
                f"policy must be a string, a Policy or an order, got {type(value).__name__}"
            )
        return _parse(value.strip().lower())

    def __str__(self) -> str:
        name = self.order_name
        if self.max_jurisdiction_share is None:
            return name
        cap = "diversified"
        if self.max_jurisdiction_share != DEFAULT_CAP or self.window != DEFAULT_WINDOW:
            cap += f":{self.max_jurisdiction_share:g}"
            if self.window != DEFAULT_WINDOW:
                cap += f":{self.window}"
        return cap if name == "weighted" else f"{name}+{cap}"


@functools.lru_cache(maxsize=64)
def _parse(text: str) -> Policy:
    primary: str | None = None
    share: float | None = None
    window = DEFAULT_WINDOW
    names = orders.order_names()
    valid = f"{', '.join(names)}, diversified[:share[:window]] joined by '+'"
    if not text:
        raise ConfigurationError(f"empty policy; use one of: {valid}")
    for part in text.split("+"):
        part = part.strip()
        name, _, args = part.partition(":")
        if name in names:
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
    return Policy(primary=primary or "weighted", max_jurisdiction_share=share, window=window)


orders.on_register(_parse.cache_clear)  # a newly registered name parses at once


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
        cap = self.max_price_per_mtok
        if cap is not None:
            if isinstance(cap, bool) or not isinstance(cap, int | float):
                raise ConfigurationError(
                    f"max_price_per_mtok must be a number of USD per 1M tokens, got {cap!r}"
                )
            # NaN compares False with everything: a NaN cap would exclude nothing, silently.
            if not math.isfinite(cap) or cap < 0:
                raise ConfigurationError(
                    f"max_price_per_mtok must be a finite, non-negative USD amount per 1M "
                    f"tokens, got {cap!r}; leave it unset (None) for no price cap"
                )
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
