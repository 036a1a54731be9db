"""Resilience: execute a plan with retries, circuit breakers, fail-over, hedging and budgets.

* :class:`Executor` runs a :class:`~hybridstack.routing.Plan` (see
  ``docs/resilience.md`` for the exact policy);
* :class:`BreakerRegistry` holds a circuit breaker per deployment and per quota scope;
* :class:`ProviderPool` caches one provider client per deployment;
* :class:`RetrySettings`, :class:`BreakerSettings`, :class:`Budget`,
  :class:`HedgeSettings` are the frozen settings;
* :class:`LatencyTracker` measures each deployment's latency (EWMA, p95);
* :class:`HealthStore` is where that state lives: :class:`MemoryHealthStore` (this
  process only, the default) or :class:`RedisHealthStore` (shared by a fleet).
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
from hybridstack.resilience.health import HealthStore, MemoryHealthStore
from hybridstack.resilience.health_redis import RedisHealthStore
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
    "HealthStore",
    "HedgeSettings",
    "LatencyTracker",
    "MemoryHealthStore",
    "ProviderFactory",
    "ProviderPool",
    "Redactor",
    "RedisHealthStore",
    "RetrySettings",
]
