"""The router: request + skill + data class + policy + health -> :class:`Plan`.

It runs the passes, each in its own module: **sources** (``model=``, a pinned route or
the skill table -> ranked groups), **filters** (static ones, walked in
:mod:`~hybridstack.routing.static`, cached per ``(skill, data class, model, call
constraints)`` and rebuilt when the catalog, skill table or rules change; then the
request's own needs), the policy's **order** (a value: see
:mod:`hybridstack.routing.orders`), **reorder** (the jurisdiction cap, then health),
and builds the :class:`Plan`. :meth:`Router.validate` runs
:mod:`~hybridstack.routing.validation` over every route. Health never re-admits an
excluded deployment: sovereignty exclusions are final.

Replay: the weighted draw of deployment ``d`` is a pure function of the router's seed,
the call's identity and ``d.id`` (SplitMix64). The identity is the call's
``route_key`` when it has one (the agent keys every call by task, subtask and stage, so
the route shown before a run is the route its worker takes, whatever the concurrency),
else the plan's number in the router's sequence (``draw_index``). A recorded plan is
re-derived from its ``seed`` and key or index alone (:meth:`Router.replay`).

Diversification window: by default the executor reports each *answered* call with
:meth:`Router.record_choice` (the Stack wires it), so the window counts where traffic
really went. A router used on its own can pass ``record_plans=True`` to count each
plan's first candidate instead.
"""

from __future__ import annotations

import itertools
import operator
import random
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hybridstack.catalog.catalog import Catalog
from hybridstack.catalog.models import Deployment
from hybridstack.errors import ConfigurationError, NoRouteError
from hybridstack.plan import Candidate, Exclusions, Plan
from hybridstack.routing.filters import (
    StaticRoute,
    default_key_available,
    request_filter,
)
from hybridstack.routing.orders import Order, OrderContext, draw_state
from hybridstack.routing.policies import Policy, RouteConstraints
from hybridstack.routing.reorder import ShareWindow, diversify, health_pass
from hybridstack.routing.skills import SkillTable
from hybridstack.routing.sources import CatalogIndex, parse_route_key
from hybridstack.routing.sovereignty import DataClassRules
from hybridstack.routing.static import any_routable, build_static_route
from hybridstack.routing.validation import validate_routes
from hybridstack.tokens import TokenCounter, default_counter
from hybridstack.types import ChatRequest

if TYPE_CHECKING:  # the router only reads a tracker and a store; it never imports resilience
    from hybridstack.resilience.health import HealthStore
    from hybridstack.resilience.latency import LatencyTracker

__all__ = ["Router", "default_key_available"]

HealthFn = Callable[[Deployment], str]
KeyFn = Callable[[Deployment], bool]

_CACHE_LIMIT = 1024
_row_key = operator.itemgetter(0)

_SAME_REGION = "same family as first choice, other region ({0}, {1})"
_SAME_HOST = "same family as first choice, other host ({0})"
_JSON_OBJECT = "structured output via json_object (the host does not enforce the schema)"


class Router:
    """Builds plans: which deployments to try for one request, in which order, and why.

    Args:
        catalog: families and deployments.
        skill_table: skill -> ranked families (:class:`SkillTable` or a dict).
        data_classes: data class -> allowed jurisdictions (:class:`DataClassRules` or dict).
        policy: default policy (a string such as ``"cheapest+diversified"``, a Policy, or
            an order object: see :mod:`hybridstack.routing.orders`).
        seed: seed of the weighted draws (random when None; always recorded in plans).
        constraints: :class:`RouteConstraints` (or dict) applied to every plan.
        health: ``(Deployment) -> "closed" | "open" | "half_open"``; open moves last.
        latency: the :class:`LatencyTracker` the ``fastest`` policy reads.
        key_available: ``(Deployment) -> bool``; default: key in code, none needed, or
            the key variable set. Deployments without a key are excluded.
        routes: explicit pinned routes overriding the skill table, keyed by data class
            (``"personal"``) or ``"skill/data_class"`` / ``(skill, data_class)``.
        default_output_tokens: output estimate for cost when a request sets no max_tokens.
        token_counter: counts prompt tokens per family (default: the process-wide
            :data:`hybridstack.tokens.default_counter`: exact for Qwen, else estimated).
        record_plans: count each plan's first candidate in the diversification window
            (for routers used without an executor calling :meth:`record_choice`).
        share_store: a shared health store for the diversification window (a
            ``HealthStore``): calls are counted across every process using it.
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        skill_table: SkillTable | Mapping[str, Sequence[str]] | None = None,
        data_classes: DataClassRules | Mapping[str, Any] | None = None,
        policy: str | Policy | Order = "weighted",
        seed: int | None = None,
        constraints: RouteConstraints | Mapping[str, Any] | None = None,
        health: HealthFn | None = None,
        latency: LatencyTracker | None = None,
        key_available: KeyFn | None = None,
        routes: Mapping[str | tuple[str, str], Sequence[str]] | None = None,
        default_output_tokens: int = 512,
        record_plans: bool = False,
        token_counter: TokenCounter | None = None,
        share_store: HealthStore | None = None,
    ) -> None:
        if default_output_tokens < 1:
            raise ConfigurationError("default_output_tokens must be positive")
        self._catalog = catalog
        self._skill_table = SkillTable.coerce(skill_table)
        self._rules = DataClassRules.coerce(data_classes)
        self.policy = Policy.parse(policy)
        self.seed: int = seed if seed is not None else random.SystemRandom().getrandbits(63)
        self._constraints = RouteConstraints.coerce(constraints)
        self.health = health
        self.latency = latency
        self.key_available: KeyFn = key_available or default_key_available
        self._routes: dict[tuple[str | None, str], tuple[str, ...]] = {}
        for key, refs in (routes or {}).items():
            refs = [refs] if isinstance(refs, str) else list(refs)
            self._routes[parse_route_key(key, self._rules)] = tuple(r.strip() for r in refs)
        self.default_output_tokens = default_output_tokens
        self.record_plans = record_plans
        self.token_counter = token_counter or default_counter
        #: Warnings from the last :meth:`validate` (routes with no allowed deployment …).
        self.warnings: list[str] = []
        self._draws = itertools.count()
        self._cache: dict[tuple[Any, ...], StaticRoute] = {}
        self._index: CatalogIndex | None = None
        self._lock = threading.Lock()
        self._history: deque[str] = deque(maxlen=10_000)
        self._windows: dict[int, ShareWindow] = {}
        self.share_store = share_store if share_store is not None and share_store.shared else None

    # --- configuration (setting any of these drops the static cache) ------------------

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    @catalog.setter
    def catalog(self, value: Catalog) -> None:
        self._catalog = value
        self._index = None
        self._cache.clear()

    @property
    def skill_table(self) -> SkillTable:
        return self._skill_table

    @skill_table.setter
    def skill_table(self, value: SkillTable | Mapping[str, Sequence[str]]) -> None:
        self._skill_table = SkillTable.coerce(value)
        self._cache.clear()

    @property
    def data_classes(self) -> DataClassRules:
        return self._rules

    @data_classes.setter
    def data_classes(self, value: DataClassRules | Mapping[str, Any]) -> None:
        self._rules = DataClassRules.coerce(value)
        self._cache.clear()

    @property
    def constraints(self) -> RouteConstraints | None:
        return self._constraints

    @constraints.setter
    def constraints(self, value: RouteConstraints | Mapping[str, Any] | None) -> None:
        self._constraints = RouteConstraints.coerce(value)
        self._cache.clear()

    @property
    def routes(self) -> dict[str, tuple[str, ...]]:
        return {(f"{s}/{d}" if s else d): refs for (s, d), refs in self._routes.items()}

    def clear_cache(self) -> None:
        self._index = None
        self._cache.clear()

    # --- static part ---------------------------------------------------------------------

    def _catalog_index(self) -> CatalogIndex:
        index = self._index
        if index is None or index.catalog is not self._catalog:
            index = self._index = CatalogIndex(self._catalog)
        return index

    def _static(
        self,
        skill: str | None,
        data_class: str,
        model: str | None,
        call_constraints: RouteConstraints | None,
    ) -> StaticRoute:
        key = (skill, data_class, model, call_constraints)
        static = self._cache.get(key)
        if static is None:
            static = build_static_route(
                self._catalog_index(),
                self._rules,
                self._skill_table,
                self._routes,
                (self._constraints, call_constraints),
                skill,
                data_class,
                model,
            )
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = static
        return static

    # --- the plan ------------------------------------------------------------------------

    def plan(
        self,
        request: ChatRequest,
        *,
        skill: str | None = "general",
        data_class: str = "public",
        policy: str | Policy | Order | None = None,
        constraints: RouteConstraints | Mapping[str, Any] | None = None,
        model: str | None = None,
        stream: bool = False,
        draw_index: int | None = None,
        at: datetime | None = None,
        route_key: str | None = None,
    ) -> Plan:
        """The ordered deployments to try for ``request``.

        Prompt tokens are counted per family (exactly where its tokenizer ships, else
        estimated per script; the plan says which) for the context-window check and the
        expected cost, which is priced at ``at`` (default: now) for time-of-day prices.

        ``route_key`` is the call's stable identity (``"run-7/s1/work"``): the weighted
        draw then depends on the seed and the key alone, so the same key gets the same
        order whenever it is planned, and ``stack.route(..., route_key=k)`` shows what
        ``stack.complete(..., route_key=k)`` will try. Without one the draw takes the
        next number of the router's sequence (``draw_index``). ``skill=None`` with
        ``model=`` records no skill (the model pins the route).

        Raises:
            NoRouteError: nothing is left after the constraints (``exclusions`` says why).
            UnknownDataClassError / ConfigurationError: unknown data class or skill.
            UnknownModelError: ``model=`` names nothing in the catalog.
        """
        if route_key is not None:
            if not isinstance(route_key, str) or not route_key.strip():
                raise ConfigurationError(
                    f"route_key must be a non-empty str (the call's stable identity, e.g. "
                    f"'run-7/s1/work'), got {route_key!r}"
                )
            draw_index = None
        elif draw_index is None:
            draw_index = next(self._draws)
        if skill is None and model is None:
            skill = "general"
        pol = self.policy if policy is None else Policy.parse(policy)
        call_constraints = None if constraints is None else RouteConstraints.coerce(constraints)
        static = self._static(skill, data_class, model, call_constraints)

        # 1. the request's own filters (the static ones are in ``static``)
        dropped: dict[str, str] = {}
        survivors, counts = request_filter(
            static.entries, request, stream, self.token_counter, self.key_available, dropped
        )
        excluded = Exclusions(static.excluded, dropped) if dropped else static.excluded
        if not survivors:
            allowed = "any" if static.allowed is None else (", ".join(static.allowed) or "none")
            target = f"model {model!r}" if model is not None else f"skill {skill!r}"
            raise NoRouteError(
                f"no deployment can serve {target} with data class {data_class!r} "
                f"(allowed jurisdictions: {allowed}); nothing outside them is ever tried",
                excluded,
            )

        # 2. the order, 3. the jurisdiction cap, 4. health
        output_tokens = request.max_tokens or self.default_output_tokens
        priced_at = at if at is not None else datetime.now(UTC)
        ctx = OrderContext(
            draw_state(self.seed, draw_index, route_key), output_tokens, priced_at, self.latency
        )
        rows = pol.order.rank(survivors, ctx)
        rows.sort(key=_row_key)
        notes: dict[str, list[Any]] = {}
        if pol.max_jurisdiction_share is not None:
            shares, total = self._shares(pol.window)  # the fleet's window, when shared
            rows = diversify(rows, shares, total, pol.max_jurisdiction_share, notes)
        health_of: dict[str, str] = {}
        if self.health is not None:
            rows = health_pass(rows, self.health, notes, health_of)

        # 5. the plan
        first = rows[0].entry
        first_family, first_region = first.family, first.region
        schema_note = request.response_schema is not None
        candidates = []
        for _, e, count, why, cost in rows:  # Ranked(key, entry, prompt, reason, cost)
            reasons: list[Any] = [e.rank_reason, why]
            if e.family == first_family and e is not first:
                reasons.append(
                    (_SAME_REGION, (e.region, e.jurisdiction))
                    if e.region != first_region
                    else (_SAME_HOST, (e.deployment.operator,))
                )
            more = notes.get(e.id)
            if more:
                reasons.extend(more)
            if schema_note and "json_schema" not in e.features:
                reasons.append(_JSON_OBJECT)
            candidates.append(
                Candidate(
                    e.deployment,
                    reasons,
                    cost,
                    e.context_window,
                    e.leaves_home,
                    health_of.get(e.id, "closed"),
                    count.tokens,
                    count.method,
                    (count.tokens, output_tokens, priced_at),
                )
            )

        if self.record_plans:
            self._record(first.jurisdiction)

        return Plan(
            skill,
            data_class,
            str(pol),
            tuple(candidates),
            excluded,
            static.allowed,
            self.seed,
            draw_index,
            ctx.draws,
            rows[0].prompt.tokens,
            output_tokens,
            model,
            stream,
            static.home,
            rows[0].prompt.method,
            {c.method: c.tokens for c in counts.values()},
            priced_at,
            route_key,
        )

    def replay(self, plan: Plan, request: ChatRequest) -> Plan:
        """Re-derive a recorded plan's order (same seed, same key or draw index, same request).

        Weighted draws replay exactly; ``fastest``, the jurisdiction cap and health read
        live state, so they replay only as far as that state is the same.
        """
        if plan.seed != self.seed:
            raise ConfigurationError(
                f"the plan was drawn with seed {plan.seed}, this router has seed {self.seed}: "
                f"replay it with Router(..., seed={plan.seed})"
            )
        return self.plan(
            request,
            skill=plan.skill,
            data_class=plan.data_class,
            policy=plan.policy,
            model=plan.model,
            stream=plan.stream,
            draw_index=plan.draw_index,
            at=plan.priced_at,
            route_key=plan.route_key,
        )

    # --- diversification window ---------------------------------------------------------

    def _window(self, size: int) -> ShareWindow:
        window = self._windows.get(size)
        if window is None:
            with self._lock:
                window = self._windows.get(size)
                if window is None:
                    window = self._windows[size] = ShareWindow(size, self._history)
        return window

    def _shares(self, size: int) -> tuple[dict[str, int], int]:
        """Counts per jurisdiction in the last ``size`` calls (the fleet's, when shared)."""
        if self.share_store is not None:
            shared = self.share_store.share_counts(size)
            if shared is not None:
                return shared
        window = self._window(size)
        return window.counts, len(window.ring)

    def _record(self, jurisdiction: str) -> None:
        if self.share_store is not None:
            self.share_store.share_add(jurisdiction)
        with self._lock:
            self._history.append(jurisdiction)
            for window in self._windows.values():
                window.add(jurisdiction)

    def record_choice(self, choice: Any, *_: Any, **__: Any) -> None:
        """Count one served call in the diversification window.

        Accepts a Deployment, a Candidate, a deployment id, or anything with a
        ``jurisdiction`` (a ChatResponse). The Stack's executor calls it on success.
        """
        if isinstance(choice, Candidate):
            jurisdiction: str | None = choice.deployment.jurisdiction
        elif isinstance(choice, str):
            dep = self._catalog.deployments.get(choice)
            jurisdiction = dep.jurisdiction if dep is not None else None
        else:
            jurisdiction = getattr(choice, "jurisdiction", None)
            if not jurisdiction:
                dep_id = getattr(choice, "deployment", None)
                if isinstance(dep_id, str):
                    dep = self._catalog.deployments.get(dep_id)
                    jurisdiction = dep.jurisdiction if dep is not None else None
        if jurisdiction:
            self._record(jurisdiction.upper())

    def jurisdiction_shares(self, window: int | None = None) -> dict[str, float]:
        """Each jurisdiction's share of the last ``window`` recorded calls."""
        counts, total = self._shares(window or self.policy.window)
        return {j: c / total for j, c in counts.items() if c} if total else {}

    # --- validation ---------------------------------------------------------------------

    def validate(self, *, strict: bool = False, check_keys: bool = False) -> list[str]:
        """Check every route before any call is made.

        Raises :class:`SovereigntyError` when a pinned deployment (``family@site``, or a
        site name such as ``dashscope-cn``, in the
        skill table or in ``routes``) lies outside a data class it would serve. Routes with
        no allowed deployment at all are warnings (returned, and kept in ``self.warnings``)
        or, with ``strict=True``, a :class:`NoRouteError`. ``check_keys`` also treats
        deployments without a key as unavailable.
        """
        self.warnings = validate_routes(
            self._catalog_index(),
            self._rules,
            self._skill_table,
            self._routes,
            routable=lambda skill, data_class: self._routable(skill, data_class, check_keys),
            exclusions=self._route_exclusions,
            strict=strict,
        )
        return self.warnings

    def _routable(self, skill: str, data_class: str, check_keys: bool) -> bool:
        """Whether the route has a usable deployment (a cached static route answers
        when keys do not matter)."""
        cached = self._cache.get((skill, data_class, None, None))
        if cached is not None and not check_keys:
            return bool(cached.entries)
        return any_routable(
            self._catalog_index(),
            self._rules,
            self._skill_table,
            self._routes,
            (self._constraints,),
            skill,
            data_class,
            self.key_available if check_keys else None,
        )

    def _route_exclusions(self, skill: str, data_class: str) -> Mapping[str, str]:
        """Every exclusion of a route with no usable deployment (for NoRouteError)."""
        static = self._static(skill, data_class, None, None)
        keyless: dict[str, str] = {}
        for e in static.entries:  # present only when every one lacks a key
            var = e.deployment.api_key_env
            keyless[e.id] = f"key variable {var} is not set" if var else "no API key available"
        return Exclusions(static.excluded, keyless)

    def __repr__(self) -> str:
        return (
            f"Router(deployments={len(self._catalog.deployments)}, policy={self.policy!s}, "
            f"seed={self.seed}, data_classes={list(self._rules.names)})"
        )
