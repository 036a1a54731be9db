"""Resilience: execute a plan with retries, circuit breakers, fail-over, hedging and budgets.

* :class:`Executor` runs a :class:`~hybridstack.routing.Plan` (see
  ``docs/resilience.md`` for the exact policy);
* :class:`BreakerRegistry` holds a circuit breaker per deployment and per quota scope;
* :class:`ProviderPool` caches one provider client per deployment;
* :class:`RetrySettings`, :class:`BreakerSettings`, :class:`Budget`,
  :class:`HedgeSettings` are the frozen settings;
* :class:`LatencyTracker` measures each deployment's latency (EWMA, p95).
"""

from hybridstack.resilience.breaker import (
    BreakerAdmission,
    BreakerBlock,
    BreakerInfo,
    BreakerRegistry,
    BreakerState,
    BreakerTicket,
    CircuitBreaker,
)
from hybridstack.resilience.executor import (
    DeploymentSkippedError,
    ExecutionEvent,
    Executor,
    Redactor,
)
from hybridstack.resilience.latency import LatencyTracker
from hybridstack.resilience.pool import ProviderFactory, ProviderPool
from hybridstack.resilience.settings import BreakerSettings, Budget, HedgeSettings, RetrySettings

__all__ = [
    "BreakerAdmission",
    "BreakerBlock",
    "BreakerInfo",
    "BreakerRegistry",
    "BreakerSettings",
    "BreakerState",
    "BreakerTicket",
    "Budget",
    "CircuitBreaker",
    "DeploymentSkippedError",
    "ExecutionEvent",
    "Executor",
    "HedgeSettings",
    "LatencyTracker",
    "ProviderFactory",
    "ProviderPool",
    "Redactor",
    "RetrySettings",
]
