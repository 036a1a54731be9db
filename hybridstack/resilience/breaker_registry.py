"""The breaker board: every deployment's and quota scope's breaker, and what each error does.

:class:`BreakerRegistry` pairs each deployment's breaker with its quota scope's (created
on first use), answers the router's and dashboards' questions (``health``, ``state``,
``snapshot``), and turns each attempt's outcome into breaker moves by its taxonomy kind
(see :meth:`BreakerRegistry.record_failure` and :mod:`hybridstack.resilience.breaker`).
"""

from __future__ import annotations

import time
from dataclasses import replace

from hybridstack.catalog.models import Deployment
from hybridstack.errors import ProviderError
from hybridstack.resilience.breaker_circuit import CircuitBreaker
from hybridstack.resilience.breaker_scope import is_scope_wide, is_throttle
from hybridstack.resilience.breaker_types import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    BreakerAdmission,
    BreakerBlock,
    BreakerInfo,
    BreakerState,
    Clock,
)
from hybridstack.resilience.health import HealthStore, breaker_key
from hybridstack.resilience.settings import BreakerSettings

__all__ = ["BreakerRegistry"]


class BreakerRegistry:
    """Every deployment's and quota scope's breaker, created on first use.

    ``health`` is the router's view (``"closed"|"open"|"half_open"``), ``state`` and
    ``snapshot`` are for alerting, and the executor goes through ``admit`` and the
    ``record_*`` methods (handing back the admission, so outcomes are judged in the
    order their requests were sent).

    ``store``: a shared :class:`~hybridstack.resilience.health.HealthStore` (default: none,
    every breaker is this process's own).
    """

    def __init__(
        self,
        settings: BreakerSettings | None = None,
        *,
        clock: Clock = time.monotonic,
        store: HealthStore | None = None,
    ) -> None:
        self.settings = settings or BreakerSettings()
        self._clock = clock
        self.store = store if store is not None and store.shared else None
        self._deployments: dict[str, CircuitBreaker] = {}
        self._scopes: dict[str, CircuitBreaker] = {}
        #: deployment id -> (its breaker, its scope's breaker)
        self._pairs: dict[str, tuple[CircuitBreaker, CircuitBreaker]] = {}
        self._scope_of: dict[str, str] = {}

    def __repr__(self) -> str:
        opened = [name for name, info in self.snapshot().items() if info.state != CLOSED]
        count = len(self._deployments) + len(self._scopes)
        return f"BreakerRegistry(breakers={count}, not_closed={opened})"

    # --- lookup --------------------------------------------------------------------

    def _pair(self, deployment: Deployment) -> tuple[CircuitBreaker, CircuitBreaker]:
        key = deployment.id
        pair = self._pairs.get(key)
        if pair is None:
            pair = self._make_pair(key, deployment.quota_scope or key)
        return pair

    def _make_pair(self, key: str, scope: str) -> tuple[CircuitBreaker, CircuitBreaker]:
        own = self._deployments.get(key)
        if own is None:
            own = self._deployments[key] = CircuitBreaker(
                key, self.settings, clock=self._clock, store=self.store
            )
        shared = self._scopes.get(scope)
        if shared is None:
            shared = self._scopes[scope] = CircuitBreaker(
                scope, self.settings, clock=self._clock, kind="quota_scope", store=self.store
            )
        pair = self._pairs[key] = (own, shared)
        self._scope_of[key] = scope
        return pair

    def _lookup(self, deployment: Deployment | str) -> tuple[CircuitBreaker, CircuitBreaker] | None:
        # Read-only: asking about a deployment creates no breaker for it.
        if isinstance(deployment, str):
            return self._pairs.get(deployment)
        pair = self._pairs.get(deployment.id)
        if pair is None:
            # Never used itself, but its quota scope may be held by a twin (here, or in
            # another process when the store is shared).
            scope = deployment.quota_scope or deployment.id
            if scope in self._scopes:
                return self._pair(deployment)
            store = self.store
            if store is not None and (
                store.breaker_view(breaker_key("deployment", deployment.id)) is not None
                or store.breaker_view(breaker_key("quota_scope", scope)) is not None
            ):
                return self._pair(deployment)
        return pair

    def breaker(self, deployment: Deployment) -> CircuitBreaker:
        """The deployment's own breaker."""
        return self._pair(deployment)[0]

    def scope_breaker(self, deployment: Deployment) -> CircuitBreaker:
        """The breaker of the deployment's quota scope (shared with its twins)."""
        return self._pair(deployment)[1]

    # --- views ---------------------------------------------------------------------

    def health(self, deployment: Deployment | str) -> BreakerState:
        """What the router should know: open if the deployment or its scope refuses now.

        ``"half_open"`` means a probe may be sent (or is out); a deployment never seen
        (or an unknown id) is ``"closed"``.
        """
        pair = self._lookup(deployment)
        if pair is None:
            return CLOSED
        own, shared = pair
        scope_health = shared.health()
        if scope_health is OPEN:
            return OPEN
        own_health = own.health()
        if own_health is CLOSED and scope_health is HALF_OPEN:
            return HALF_OPEN
        return own_health

    def state(self, deployment: Deployment | str) -> BreakerInfo:
        """The deployment breaker's details, with its scope's combined into ``state``."""
        pair = self._lookup(deployment)
        if pair is None:
            name = deployment if isinstance(deployment, str) else deployment.id
            return CircuitBreaker(name, self.settings, clock=self._clock).info()
        own, shared = pair
        info = own.info(scope=shared.name)
        combined = self.health(own.name)
        if combined != info.state:
            retry_in = shared.retry_in()
            info = replace(
                info,
                state=combined,
                retry_in_s=None
                if retry_in is None or info.retry_in_s is None
                else max(retry_in, info.retry_in_s),
                held_for_s=max(info.held_for_s, shared.info().held_for_s),
            )
        return info

    def snapshot(self) -> dict[str, BreakerInfo]:
        """Every breaker: deployments by id, quota scopes as ``"scope:<name>"``."""
        members: dict[str, list[str]] = {}
        for dep, scope in self._scope_of.items():
            members.setdefault(scope, []).append(dep)
        out: dict[str, BreakerInfo] = {}
        for name, breaker in self._deployments.items():
            out[name] = breaker.info(scope=self._scope_of.get(name))
        for name, breaker in self._scopes.items():
            out[f"scope:{name}"] = breaker.info(members=members.get(name, ()))
        return out

    # --- the executor's side ---------------------------------------------------------

    def admit(
        self, deployment: Deployment, *, last_resort: bool = False
    ) -> BreakerBlock | BreakerAdmission:
        """Ask to send a request: an admission to hand back with the outcome, or a block.

        ``last_resort=True``: the caller has no other candidate left, so an open breaker
        may take it as an early probe (see :meth:`CircuitBreaker.admit`). The admission
        must be passed to ``record_success``, ``record_failure`` or ``release``.
        """
        own, shared = self._pair(deployment)
        scope_gate = shared.admit(last_resort=last_resort)
        if scope_gate.__class__ is BreakerBlock:
            return scope_gate
        own_gate = own.admit(last_resort=last_resort)
        if own_gate.__class__ is BreakerBlock:
            shared.release(scope_gate)  # type: ignore[arg-type]
            return own_gate
        probe = scope_gate.probe or own_gate.probe  # type: ignore[union-attr]
        return BreakerAdmission(HALF_OPEN if probe else CLOSED, own_gate, scope_gate)  # type: ignore[arg-type]

    def acquire(self, deployment: Deployment) -> BreakerBlock | BreakerState:
        """:meth:`admit` for callers that report outcomes without an admission."""
        gate = self.admit(deployment)
        return gate if isinstance(gate, BreakerBlock) else gate.state

    def record_success(
        self, deployment: Deployment, admission: BreakerAdmission | None = None
    ) -> None:
        own, shared = self._pair(deployment)
        own.on_success(admission.own if admission is not None else None)
        shared.on_success(admission.scope if admission is not None else None)

    def release(self, deployment: Deployment, admission: BreakerAdmission | None = None) -> None:
        own, shared = self._pair(deployment)
        own.release(admission.own if admission is not None else None)
        shared.release(admission.scope if admission is not None else None)

    def record_failure(
        self,
        deployment: Deployment,
        error: ProviderError,
        admission: BreakerAdmission | None = None,
    ) -> list[str]:
        """Apply one failed attempt; returns the names of the breakers it opened or held."""
        own, shared = self._pair(deployment)
        mine = admission.own if admission is not None else None
        theirs = admission.scope if admission is not None else None
        kind = error.kind
        description = f"{kind}: {error.message}"
        opened: list[str] = []
        if kind == "retry_here":
            if own.on_failure(description, mine):
                opened.append(own.name)
            retry_after = error.retry_after
            if is_throttle(error):
                # Slow down the whole key: for as long as the provider said, else briefly.
                hold = retry_after if retry_after is not None and retry_after > 0 else None
                hold = hold if hold is not None else self.settings.throttle_hold_s
                if hold > 0:
                    shared.hold(hold, description)
                    opened.append(f"scope:{shared.name}")
                if shared.on_failure(description, theirs):
                    opened.append(f"scope:{shared.name}")
            else:
                shared.release(theirs)
                if retry_after is not None and retry_after > 0:
                    own.hold(retry_after, description)
        elif kind == "fail_over":
            cooldown = self.settings.failover_cooldown_s
            if own.trip(cooldown, description, mine):
                opened.append(own.name)
            if is_scope_wide(error):
                if shared.trip(cooldown, description, theirs):
                    opened.append(f"scope:{shared.name}")
            else:
                shared.release(theirs)
        else:
            # Refused, too long, fatal: the endpoint is alive and answering.
            own.on_success(mine)
            shared.on_success(theirs)
        return list(dict.fromkeys(opened))

    def reset(self, deployment: Deployment | str | None = None) -> None:
        """Close one deployment's breaker and its scope's, or every breaker."""
        if deployment is None:
            for breaker in (*self._deployments.values(), *self._scopes.values()):
                breaker.reset()
            return
        pair = self._lookup(deployment)
        if pair is not None:
            pair[0].reset()
            pair[1].reset()
