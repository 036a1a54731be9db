"""Orders: how the router sorts the deployments that passed the filters, as values.

A plan is built in passes (filter -> **order** -> diversify -> health -> Plan); this
module is the order pass. An order is any object with a ``name`` and a ``rank``
method (:class:`Order`); three are built in and registered by name (``weighted``,
``cheapest``, ``fastest``), and :func:`register_order` adds one that policy strings
(``"mine+diversified"``) can then name. A :class:`~hybridstack.routing.Policy` or a
Router also takes an order object directly.

``rank`` gets the survivors (``(entry, prompt count)`` pairs, entries in skill-table
order) and an :class:`OrderContext` (the seeded draw, output tokens, pricing time,
latency tracker), and returns one :class:`Ranked` per survivor; the router sorts them
by ``key`` (ascending). Keys that start with ``entry.group`` keep families in their
skill-table rank, so fail-over tries the same family elsewhere first; :class:`KeyOrder`
does that for you: subclass it and write ``value(entry, count, ctx)``.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

from hybridstack.errors import ConfigurationError
from hybridstack.plan import Reason

if TYPE_CHECKING:
    from hybridstack.resilience.latency import LatencyTracker
    from hybridstack.routing.filters import RouteEntry
    from hybridstack.tokens import TokenCount

__all__ = [
    "BUILTIN_ORDERS",
    "CheapestOrder",
    "FastestOrder",
    "KeyOrder",
    "Order",
    "OrderContext",
    "Ranked",
    "WeightedOrder",
    "draw_state",
    "get_order",
    "order_names",
    "register_order",
    "usd",
]

_M64 = (1 << 64) - 1
_INV_2_53 = 1.0 / (1 << 53)

_WEIGHTED = "weighted draw {0:.2f} (weight {1:g}, key {2:.2f})"
_WEIGHT_ZERO = "weighted draw {0:.2f} (weight 0: fall-back only)"
_CHEAPEST = "cheapest: {0} expected ({1:,} in + {2:,} out tokens)"
_FASTEST = "fastest: EWMA {0:.0f} ms over {1} call(s)"
_UNMEASURED = "fastest: not measured yet (optimistic prior 0 ms, explored first)"


def mix(x: int) -> int:
    """SplitMix64 finaliser: a fast, well-distributed 64-bit hash of an integer."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def id_hash(text: str) -> int:
    """A 64-bit hash stable across processes (unlike hash()), so draws replay anywhere."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def draw_state(seed: int, draw_index: int | None = None, route_key: str | None = None) -> int:
    """The 64-bit state one plan's weighted draws derive from.

    ``route_key`` (the call's stable identity) wins over ``draw_index`` (the plan's
    place in the router's sequence): a keyed draw does not depend on what ran before.
    """
    if route_key is not None:
        return mix((seed ^ id_hash("route-key\x00" + route_key)) & _M64)
    return mix((seed ^ mix(draw_index or 0)) & _M64)


def usd(value: float) -> str:
    """A price for reasons: two significant decimals at least ($0.00031, $1.20)."""
    if value <= 0:
        return "$0"
    decimals = max(2, 1 - math.floor(math.log10(value)))
    return f"${value:.{decimals}f}"


class OrderContext:
    """What an order may read besides the survivors (one per plan)."""

    __slots__ = ("draws", "latency", "output_tokens", "priced_at", "state")

    def __init__(
        self,
        state: int,
        output_tokens: int,
        priced_at: datetime,
        latency: LatencyTracker | None = None,
    ) -> None:
        #: The plan's seeded 64-bit draw state (see :func:`draw_state`).
        self.state = state
        #: Output tokens the costs assume (``max_tokens`` or the router's default).
        self.output_tokens = output_tokens
        #: The moment prices are read at (time-of-day prices).
        self.priced_at = priced_at
        #: Measured latencies (the Stack's tracker), or None.
        self.latency = latency
        #: deployment id -> uniform draw; recorded in ``Plan.draws`` (fill it when you draw).
        self.draws: dict[str, float] = {}

    def uniform(self, entry: RouteEntry) -> float:
        """This plan's seeded uniform draw in (0, 1) for one deployment (replayable)."""
        x = ((self.state ^ entry.id_hash) + 0x9E3779B97F4A7C15) & _M64
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
        return (((x ^ (x >> 31)) >> 11) + 0.5) * _INV_2_53

    def cost(self, entry: RouteEntry, count: TokenCount) -> float:
        """Expected USD cost of this request on ``entry`` (its tier, its price window)."""
        return entry.price.cost(count.tokens, self.output_tokens, at=self.priced_at)


class Ranked(NamedTuple):
    """One survivor's place: sorted by ``key``; ``reason`` is why (text or template)."""

    key: Any
    entry: RouteEntry
    #: The request's prompt tokens for this entry's family.
    prompt: TokenCount
    reason: Reason
    #: The expected cost if the order computed it (None: priced when someone reads it).
    cost: float | None = None


#: ``(entry, prompt count)``: one deployment that passed every filter.
Survivor = tuple["RouteEntry", "TokenCount"]


@runtime_checkable
class Order(Protocol):
    """Sorts the survivors of one plan; ``name`` is how policies and plans show it."""

    name: str

    def rank(self, survivors: Sequence[Survivor], ctx: OrderContext) -> list[Ranked]: ...


class KeyOrder:
    """An order by one value per deployment, families kept in their skill-table rank.

    Subclass it, set ``name`` and write :meth:`value` (lower goes first)::

        class GreenestOrder(KeyOrder):
            name = "greenest"

            def value(self, entry, count, ctx):
                grams = CARBON[entry.region]
                return grams, f"greenest: {grams} gCO2/kWh in {entry.region}"
    """

    name = "key"

    def value(
        self, entry: RouteEntry, count: TokenCount, ctx: OrderContext
    ) -> tuple[float, Reason]:
        raise NotImplementedError

    def rank(self, survivors: Sequence[Survivor], ctx: OrderContext) -> list[Ranked]:
        out = []
        for e, count in survivors:
            value, why = self.value(e, count, ctx)
            out.append(Ranked((e.group, value, e.index), e, count, why))
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class WeightedOrder:
    """Weighted random (Efraimidis-Spirakis keys ``u ** (1 / weight)``), seeded and recorded:
    each deployment's chance of going first in its family is its weight over the sum."""

    name = "weighted"

    def rank(self, survivors: Sequence[Survivor], ctx: OrderContext) -> list[Ranked]:
        uniform = ctx.uniform
        draws = ctx.draws
        out = []
        for e, count in survivors:
            u = uniform(e)
            draws[e.id] = u
            w = e.weight
            if w > 0:
                key = u ** (1.0 / w)  # P(first) = w / sum(w)
                why: Reason = (_WEIGHTED, (u, w, key))
            else:
                key = u - 1.0  # weight 0: behind every weighted one, still a fall-back
                why = (_WEIGHT_ZERO, (u,))
            out.append(Ranked((e.group, -key, e.index), e, count, why))
        return out

    def __repr__(self) -> str:
        return "WeightedOrder()"


class CheapestOrder:
    """By expected cost; families by their cheapest allowed deployment."""

    name = "cheapest"

    def rank(self, survivors: Sequence[Survivor], ctx: OrderContext) -> list[Ranked]:
        out_tokens, at = ctx.output_tokens, ctx.priced_at
        group_min: dict[int, float] = {}
        costs = []
        for e, count in survivors:
            cost = e.price.cost(count.tokens, out_tokens, at=at)
            if cost < group_min.get(e.group, math.inf):
                group_min[e.group] = cost
            costs.append(cost)
        return [
            Ranked(
                (group_min[e.group], e.group, cost, e.index),
                e,
                count,
                (_CHEAPEST, (usd(cost), count.tokens, out_tokens)),
                cost,
            )
            for (e, count), cost in zip(survivors, costs, strict=True)
        ]

    def __repr__(self) -> str:
        return "CheapestOrder()"


class FastestOrder:
    """By measured latency (EWMA); an unmeasured deployment counts as 0 s (explored first)."""

    name = "fastest"

    def rank(self, survivors: Sequence[Survivor], ctx: OrderContext) -> list[Ranked]:
        tracker = ctx.latency
        out = []
        for e, count in survivors:
            ewma = tracker.ewma(e.id) if tracker is not None else None
            why: Reason
            if ewma is None:
                speed, why = 0.0, _UNMEASURED
            else:
                counted = getattr(tracker, "count", None)
                calls = counted(e.id) if callable(counted) else 0
                speed, why = ewma, (_FASTEST, (ewma * 1000.0, calls))
            out.append(Ranked((e.group, speed, e.index), e, count, why))
        return out

    def __repr__(self) -> str:
        return "FastestOrder()"


#: The built-in orders' names, in the order the docs list them.
BUILTIN_ORDERS: tuple[str, ...] = ("weighted", "cheapest", "fastest")

_registry: dict[str, Order] = {
    "weighted": WeightedOrder(),
    "cheapest": CheapestOrder(),
    "fastest": FastestOrder(),
}
_lock = threading.Lock()
_listeners: list[Callable[[], object]] = []


def on_register(listener: Callable[[], object]) -> None:
    """Call ``listener()`` after every registration (the policy parser drops its cache)."""
    _listeners.append(listener)


def check_order(order: object) -> Order:
    """``order`` if it is an order (a str ``name`` and a ``rank`` method), else an error."""
    name = getattr(order, "name", None)
    if not isinstance(name, str) or not name.strip() or not callable(getattr(order, "rank", None)):
        raise ConfigurationError(
            f"{order!r} is not an order: it needs a non-empty str `name` and a method "
            "`rank(survivors, ctx) -> list[Ranked]` (see hybridstack.routing.orders)"
        )
    return order  # type: ignore[return-value]


def register_order(order: Order, *, replace: bool = False) -> Order:
    """Make ``order`` nameable in policy strings (``"greenest+diversified"``); returns it.

    Names are lower case words (``[a-z0-9_-]``); a built-in or taken name needs
    ``replace=True``.
    """
    check_order(order)
    name = order.name
    if name != name.strip().lower() or not name.replace("_", "").replace("-", "").isalnum():
        raise ConfigurationError(
            f"order name {name!r}: use lower-case letters, digits, '-' or '_' "
            "(policy strings join names with '+' and arguments with ':')"
        )
    if name == "diversified":
        raise ConfigurationError("'diversified' is the jurisdiction cap, not an order name")
    with _lock:
        if name in _registry and _registry[name] is not order and not replace:
            raise ConfigurationError(
                f"an order named {name!r} is already registered; pass replace=True to replace it"
            )
        _registry[name] = order
    for listener in _listeners:
        listener()
    return order


def get_order(name: str) -> Order:
    """The registered order called ``name``; ConfigurationError listing the names if none."""
    found = _registry.get(name)
    if found is None:
        raise ConfigurationError(
            f"unknown order {name!r}; registered: {', '.join(order_names())} "
            "(register_order() adds one)"
        )
    return found


def order_names() -> tuple[str, ...]:
    """Every registered order's name (built-ins first)."""
    return tuple(_registry)
