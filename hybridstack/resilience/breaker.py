"""Circuit breakers: one per deployment and one per quota scope.

A breaker is *closed* (requests flow), *open* (requests are skipped without a network
call) or *half-open* (a probe request decides). Transitions::

    closed --(failure rate or failure run, see below)---> open
    open   --(cool-down elapsed)------------------------> half_open
    half_open --(probe succeeds)------------------------> closed  (cool-down reset)
    half_open --(probe fails)---------------------------> open    (cool-down x multiplier, capped)
    any    --(fail-over error: key, quota, retired)-----> open    (failover_cooldown_s)

A closed breaker opens on either rule (:class:`BreakerSettings` has the numbers):

* **failure rate** over a window of recent outcomes (count- and time-bounded) with a
  minimum number of outcomes before it may open;
* **failure run**: the last requests, *in the order they were sent*, all failed — a
  short run (``failure_threshold``) when nothing succeeded within the window, so an
  endpoint that is down is found in a handful of requests; a long one
  (``minimum_requests``) when it was answering lately.

Outcomes are matched to the request that produced them by a :class:`BreakerTicket`
(its send sequence number), so an instant 5xx does not overtake a slower success sent
before it, and an answer to a request sent before the breaker last changed state
(*stale*) counts in the totals but never moves the state machine.

Open breakers are a last resort. A call with nothing else left may wait for one, and
the first such call becomes a probe early (``last_resort=True`` in :meth:`admit`): at
most one per ``probe_interval_s`` (and ``half_open_max_probes`` at a time). A breaker
opened by a fail-over error takes no early probe: a revoked key does not heal in a
second.

Besides its state a breaker can be *held* until a time the provider named: a 429 with
Retry-After holds the deployment's **quota scope** (every deployment sharing the key or
upstream limit) until the Retry-After elapses, so one throttle does not spray retries
at the twins; a throttle without one holds it for ``throttle_hold_s``. A hold ends by
itself (no probe needed: the provider said when), and while it lasts
:meth:`BreakerRegistry.health` reports ``"open"``.

What counts, per taxonomy kind (see :meth:`BreakerRegistry.record_failure`):

* ``retry_here`` — a health failure of the deployment. A throttle (HTTP 429 or a
  rate-limit code) also counts on the quota scope, and holds the scope (its
  Retry-After, else ``throttle_hold_s``); another retry-here error with a Retry-After
  (503) holds only the deployment.
* ``fail_over`` — opens the deployment at once for ``failover_cooldown_s``; the quota
  scope too when the error is about the shared key or account (401, 402, quota,
  balance, arrears).
* ``content_refused``, ``context_too_long``, ``fatal`` — the endpoint answered: these
  count as a success for the breakers (they are about the request, not its health).
* a cancelled attempt (hedge loser, deadline, caller cancelled) only frees its place.

Time comes from an injectable monotonic ``clock`` so tests can drive it. The breakers
are meant for one event loop (or one thread) at a time, like the clients they guard.

With a shared :class:`~hybridstack.resilience.health.HealthStore` (``store=``) a breaker
also tells the store each outcome it judged, each open, close and hold, and before it
answers anything it adopts the fleet's view (open until, held until, closed by another
process's probe) from the store's local cache; a probe is sent only by the process
that claimed it in the store. Without one (or while the store is degraded) nothing
changes: each breaker decides from what its own process saw.

This module is the breakers' front: the names to import. The pieces, each its own job:

* :mod:`~hybridstack.resilience.breaker_types` — states, tickets, admissions, blocks,
  info snapshots;
* :mod:`~hybridstack.resilience.breaker_scope` — which errors are throttles and which
  are about the whole key or account;
* :mod:`~hybridstack.resilience.breaker_window` — the failure-rate window and the
  failure run;
* :mod:`~hybridstack.resilience.breaker_circuit` — one breaker's state machine, probes,
  holds and shared view;
* :mod:`~hybridstack.resilience.breaker_registry` — every deployment's and scope's
  breaker, and what each taxonomy kind does to them.
"""

from hybridstack.resilience.breaker_circuit import CircuitBreaker
from hybridstack.resilience.breaker_registry import BreakerRegistry
from hybridstack.resilience.breaker_scope import is_scope_wide, is_throttle
from hybridstack.resilience.breaker_types import (
    BreakerAdmission,
    BreakerBlock,
    BreakerInfo,
    BreakerState,
    BreakerTicket,
)

__all__ = [
    "BreakerAdmission",
    "BreakerBlock",
    "BreakerInfo",
    "BreakerRegistry",
    "BreakerState",
    "BreakerTicket",
    "CircuitBreaker",
    "is_scope_wide",
    "is_throttle",
]
