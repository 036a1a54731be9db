"""Price one attempt's usage from the catalog: :meth:`Price.cost` adapted to :class:`Usage`.

The arithmetic (input-length tiers, time-of-day windows such as DeepSeek's peak hours,
cache-hit rates) lives in :meth:`hybridstack.catalog.models.Price.cost`, the one cost
function; this module only adapts it to :class:`~hybridstack.types.Usage`, evaluated at
the attempt's start ``at``. An extra ``multiplier`` (a number, or a function of ``at``
such as :func:`time_window_multiplier` builds) scales the result for schedules a
catalog does not carry, e.g. a negotiated discount.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time

from hybridstack.catalog.models import Price
from hybridstack.types import Usage

#: A price multiplier for the moment an attempt started (1.0 = list price).
Multiplier = Callable[[datetime], float]


def price_usage(
    price: Price,
    usage: Usage,
    *,
    at: datetime | None = None,
    multiplier: float | Multiplier | None = None,
) -> float:
    """USD for ``usage`` at ``price`` for an attempt started ``at``; ``multiplier`` scales it.

    ``at`` selects the price's time-of-day window (None: the dearest one, so a cost
    without a clock is never under-counted); ``multiplier`` is a number or a function
    of ``at`` (now when ``at`` is None).

    >>> from datetime import date
    >>> p = Price(input_per_mtok=1.0, output_per_mtok=2.0, as_of=date(2025, 1, 1))
    >>> price_usage(p, Usage(input_tokens=1_000_000, output_tokens=500_000))
    2.0
    """
    cost = price.cost(usage.input_tokens, usage.output_tokens, usage.cached_input_tokens, at=at)
    if multiplier is None:
        return cost
    if callable(multiplier):
        factor = multiplier(at if at is not None else datetime.now(UTC))
    else:
        factor = multiplier
    if factor < 0:
        raise ValueError(f"a price multiplier must not be negative (got {factor})")
    return cost * factor


def time_window_multiplier(start: time, end: time, factor: float) -> Multiplier:
    """A multiplier that is ``factor`` from ``start`` to ``end`` (UTC, may wrap midnight), else 1.

    ``time_window_multiplier(time(16, 30), time(0, 30), 0.5)`` halves the price of
    attempts started between 16:30 and 00:30 UTC. Naive datetimes are taken as UTC.
    """
    if factor < 0:
        raise ValueError(f"a price multiplier must not be negative (got {factor})")

    def multiplier(at: datetime) -> float:
        moment = at if at.tzinfo is None else at.astimezone(UTC)
        now = moment.time().replace(tzinfo=None)
        inside = start <= now < end if start <= end else now >= start or now < end
        return factor if inside else 1.0

    return multiplier
