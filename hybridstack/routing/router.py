"""The router: request + skill + data class + policy + health -> :class:`Plan`.

One plan per call, so the work is split in two:

* **static** (cached per ``(skill, data class, model, call constraints)``, rebuilt when
  the catalog, skill table or rules change): resolve the skill table (or the pinned
  route, or ``model=``) into ranked groups of deployments, and drop everything the
  request cannot change: jurisdictions outside the data class (checked first, so the
  sovereignty reason is the one recorded), disabled and retired deployments, allow/deny
  lists, price caps, minimum context windows, required features.
* **per request**: the request's own needs (context window for the estimated prompt +
  ``max_tokens``; tools; structured output; streaming), API-key availability, then the
  policy's order, the jurisdiction cap and health. That is sorting a handful of entries.

Order of the plan: groups (families) in skill-table rank — for ``cheapest``, groups by
their cheapest allowed deployment — and within a group the policy's order, so fail-over
tries the same family in another region before another family. A jurisdiction over its
cap then moves behind the rest, and deployments whose breaker is open move last. Health
never re-admits an excluded deployment: sovereignty exclusions are final.

Replay: the weighted draw of deployment ``d`` in plan number ``i`` of a router seeded
``s`` is a pure function of ``(s, i, d.id)`` (SplitMix64), so the same seed and the same
sequence of requests give the same plans, and one plan is re-derived from its recorded
``seed`` and ``draw_index`` alone (:meth:`Router.replay`).

Diversification window: by default the executor reports each *answered* call with
:meth:`Router.record_choice` (the Stack wires it), so the window counts where traffic
really went (every answered call counts, whatever its policy). A router used on its own
can pass ``record_plans=True`` to count each plan's first candidate instead.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import random
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hybridstack.catalog.catalog import Catalog
from hybridstack.catalog.models import Deployment
from hybridstack.errors import (
    ConfigurationError,
    NoRouteError,
    SovereigntyError,
    UnknownModelError,
)
from hybridstack.plan import Candidate, Plan
from hybridstack.routing.policies import Policy, RouteConstraints
from hybridstack.routing.skills import SkillTable
from hybridstack.routing.sovereignty import DataClassRules
from hybridstack.tokens import TokenCount, TokenCounter, default_counter, tokenizer_for
from hybridstack.types import ChatRequest

if TYPE_CHECKING:  # the router only reads a tracker and a store; it never imports resilience
    from hybridstack.resilience.health import HealthStore
    from hybridstack.resilience.latency import LatencyTracker

__all__ = ["Router", "default_key_available"]

HealthFn = Callable[[Deployment], str]
KeyFn = Callable[[Deployment], bool]

_M64 = (1 << 64) - 1
_INV_2_53 = 1.0 / (1 << 53)
_CACHE_LIMIT = 1024


# Reason templates (formatted lazily by Candidate.reasons).
_WEIGHTED = "weighted draw {0:.2f} (weight {1:g}, key {2:.2f})"
_WEIGHT_ZERO = "weighted draw {0:.2f} (weight 0: fall-back only)"
_CHEAPEST = "cheapest: {0} expected ({1:,} in + {2:,} out tokens)"
_FASTEST = "fastest: EWMA {0:.0f} ms over {1} call(s)"
_UNMEASURED = "fastest: not measured yet (optimistic prior 0 ms, explored first)"
_SAME_REGION = "same family as first choice, other region ({0}, {1})"
_SAME_HOST = "same family as first choice, other host ({0})"
_CAPPED = (
    "diversified: {0} had {1:.0%} of the last {2} calls (cap {3:.0%}): "
    "moved behind other jurisdictions, kept as fall-back"
)
_BREAKER_OPEN = "breaker open: moved last"
_HALF_OPEN = "breaker half-open: trial call allowed"
_JSON_OBJECT = "structured output via json_object (the host does not enforce the schema)"


def _row_key(row: list[Any]) -> Any:
    return row[0]


def _mix(x: int) -> int:
    """SplitMix64 finaliser: a fast, well-distributed 64-bit hash of an integer."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _id_hash(text: str) -> int:
    # Stable across processes (unlike hash()), so a recorded plan replays anywhere.
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _usd(value: float) -> str:
    if value <= 0:
        return "$0"
    decimals = max(2, 1 - math.floor(math.log10(value)))
    return f"${value:.{decimals}f}"


def _too_long(window: int, count: TokenCount, max_tokens: int | None) -> str:
    how = "counted" if count.exact else "estimated"
    prompt = f"~{count.tokens:,} prompt tokens {how} by {count.method}"
    if max_tokens:
        prompt += f" + {max_tokens:,} max_tokens"
    return (
        f"context window {window:,} < {count.tokens + (max_tokens or 0):,} tokens needed ({prompt})"
    )


def default_key_available(deployment: Deployment) -> bool:
    """A key in code, no key needed (local), or the key variable set and non-empty."""
    if deployment.api_key is not None or deployment.api_key_env is None:
        return True
    return bool(os.environ.get(deployment.api_key_env))


class _Entry:
    """A deployment that passed the static filters, with what the hot path needs."""

    __slots__ = (
        "context_window",
        "deployment",
        "family",
        "features",
        "group",
        "id",
        "id_hash",
        "index",
        "jurisdiction",
        "key_env",
        "leaves_home",
        "price",
        "rank_reason",
        "region",
        "tokenizer",
        "weight",
    )

    def __init__(self, deployment: Deployment, group: int, rank_reason: str, index: int) -> None:
        self.deployment = deployment
        self.id = deployment.id
        self.family = deployment.family
        self.region = deployment.region
        self.jurisdiction = deployment.jurisdiction
        self.group = group
        self.rank_reason = rank_reason
        self.index = index
        self.id_hash = _id_hash(deployment.id)
        self.weight = deployment.weight
        # The variable the default key check reads (None: key in code, or none needed).
        self.key_env = None if deployment.api_key is not None else deployment.api_key_env
        # The one cost function (input-length tiers, time-of-day windows) prices the plan.
        self.price = deployment.price
        # The exact tokenizer of the family (None: the script-aware estimate).
        self.tokenizer: str | None = None
        self.context_window = 0
        self.features: frozenset[str] = frozenset()
        self.leaves_home = False


class _Static:
    __slots__ = ("allowed", "entries", "excluded", "home", "origin")

    def __init__(
        self,
        entries: tuple[_Entry, ...],
        excluded: dict[str, str],
        allowed: tuple[str, ...] | None,
        home: str | None,
        origin: str,
    ) -> None:
        self.entries = entries
        self.excluded = excluded
        self.allowed = allowed
        self.home = home
        self.origin = origin


class _ShareWindow:
    """Counts of the last ``size`` recorded jurisdictions."""

    __slots__ = ("counts", "ring")

    def __init__(self, size: int, history: Sequence[str]) -> None:
        self.ring: deque[str] = deque(maxlen=size)
        self.counts: dict[str, int] = {}
        for j in list(history)[-size:]:
            self.add(j)

    def add(self, jurisdiction: str) -> None:
        ring = self.ring
        if len(ring) == ring.maxlen:
            old = ring[0]
            self.counts[old] -= 1
        ring.append(jurisdiction)
        self.counts[jurisdiction] = self.counts.get(jurisdiction, 0) + 1


def _ref_kind(ref: str, catalog: Catalog) -> str:
    """``deployment`` (family@site), ``model`` (provider:model), ``family`` or ``site``."""
    if "@" in ref:
        return "deployment"
    if ":" in ref:
        return "model"
    if ref in catalog.families:
        return "family"
    try:
        catalog.family(ref)  # an alias
    except UnknownModelError:
        return "site"
    return "family"


def _route_key(key: str | tuple[str, str], rules: DataClassRules) -> tuple[str | None, str]:
    if isinstance(key, tuple):
        if len(key) != 2:
            raise ConfigurationError(f"route key {key!r} must be (skill, data_class)")
        skill, data_class = key
    elif "/" in key:
        skill, _, data_class = key.partition("/")
    else:
        skill, data_class = None, key
    if data_class not in rules:
        raise ConfigurationError(
            f"route {key!r}: unknown data class {data_class!r}; known: {', '.join(rules.names)}. "
            "Route keys are a data class ('personal') or 'skill/data_class' ('code/personal'); "
            "use skill_table= for routes by skill alone"
        )
    return (skill.strip() if skill else None), data_class


class Router:
    """Builds plans: which deployments to try for one request, in which order, and why.

    Args:
        catalog: families and deployments.
        skill_table: skill -> ranked families (:class:`SkillTable` or a dict).
        data_classes: data class -> allowed jurisdictions (:class:`DataClassRules` or dict).
        policy: default policy (a string such as ``"cheapest+diversified"`` or a Policy).
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
        policy: str | Policy = "weighted",
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
            self._routes[_route_key(key, self._rules)] = tuple(r.strip() for r in refs)
        self.default_output_tokens = default_output_tokens
        self.record_plans = record_plans
        self.token_counter = token_counter or default_counter
        #: Warnings from the last :meth:`validate` (routes with no allowed deployment …).
        self.warnings: list[str] = []
        self._draws = itertools.count()
        self._cache: dict[tuple[Any, ...], _Static] = {}
        self._lock = threading.Lock()
        self._history: deque[str] = deque(maxlen=10_000)
        self._windows: dict[int, _ShareWindow] = {}
        self.share_store = share_store if share_store is not None and share_store.shared else None

    # --- configuration (setting any of these drops the static cache) ------------------

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    @catalog.setter
    def catalog(self, value: Catalog) -> None:
        self._catalog = value
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
        self._cache.clear()

    # --- static part ---------------------------------------------------------------------

    def _route_refs(self, skill: str, data_class: str) -> tuple[str, tuple[str, ...]] | None:
        refs = self._routes.get((skill, data_class))
        if refs is not None:
            return f"route {skill}/{data_class}", refs
        refs = self._routes.get((None, data_class))
        if refs is not None:
            return f"route {data_class}", refs
        return None

    def _groups(
        self, skill: str, data_class: str, model: str | None
    ) -> tuple[list[tuple[str, list[Deployment]]], str, Callable[[Deployment], str]]:
        """Ranked groups ``[(rank reason, deployments)]``, the origin, and why others are out."""
        catalog = self._catalog
        if model is not None:
            deployments = catalog.resolve(model)  # UnknownModelError with "did you mean"
            return (
                [(f"model {model!r} requested", list(deployments))],
                f"model {model}",
                lambda _dep: f"not named by model {model!r}",
            )
        route = self._route_refs(skill, data_class)
        fallbacks: list[tuple[str, float]] = []
        if route is not None:
            origin, refs = route
            unlisted = lambda _dep: f"not in {origin}"  # noqa: E731
        else:
            table = self._skill_table
            if skill not in table and not any(
                skill in fam.skills for fam in catalog.families.values()
            ):
                known = ", ".join(table.known_skills(catalog))
                raise ConfigurationError(
                    f"unknown skill {skill!r}; known skills: {known}. Add it with "
                    f"skill_table={{{skill!r}: ['family', ...]}} or a catalog skill strength"
                )
            origin = f"skill {skill}"
            refs = table.ranked(skill)
            fallbacks = table.fallbacks(skill, catalog)
            unlisted = lambda dep: f"family {dep.family} not ranked for skill {skill!r}"  # noqa: E731
        groups: list[tuple[str, list[Deployment]]] = []
        for ref in refs:
            try:
                deployments = catalog.resolve(ref)
            except UnknownModelError:
                continue  # defaults name families a catalog may not have; validate() warns
            if not deployments:
                continue
            rank = len(groups) + 1
            kind = _ref_kind(ref, catalog)
            if kind == "deployment":
                what = f"pinned deployment {ref}"
            elif kind == "model":
                what = f"model {ref}"
            elif kind == "site":
                what = f"pinned site {ref}"
            else:
                what = f"family {deployments[0].family}"
            groups.append((f"{origin}: {what} ranked {rank}", list(deployments)))
        for family, strength in fallbacks:
            deployments = catalog.deployments_of(family)
            if deployments:
                rank = len(groups) + 1
                groups.append(
                    (
                        f"{origin}: family {family} ranked {rank} "
                        f"(fallback by catalog strength {strength:.2f})",
                        list(deployments),
                    )
                )
        return groups, origin, unlisted

    def _static_reason(
        self,
        dep: Deployment,
        context_window: int,
        features: frozenset[str],
        allowed: frozenset[str] | None,
        data_class: str,
        constraints: Sequence[RouteConstraints],
    ) -> str | None:
        j = dep.jurisdiction
        if allowed is not None and j not in allowed:
            return (
                f"jurisdiction {j} not allowed for data class {data_class!r} "
                f"(allowed: {self._rules.describe(data_class)})"
            )
        if not dep.enabled:
            return "disabled in the catalog (enabled = false)"
        if dep.retired:
            return "retired: the host no longer serves this model"
        for c in constraints:
            if c.allow_jurisdictions is not None and j not in c.allow_jurisdictions:
                listed = ", ".join(sorted(c.allow_jurisdictions))
                return f"jurisdiction {j} not in allowed jurisdictions ({listed})"
            if j in c.deny_jurisdictions:
                return f"jurisdiction {j} is denied"
            if c.allow_operators is not None and dep.operator not in c.allow_operators:
                listed = ", ".join(sorted(c.allow_operators))
                return f"operator {dep.operator} not in allowed operators ({listed})"
            if dep.operator in c.deny_operators:
                return f"operator {dep.operator} is denied"
            if (
                c.allow_deployments is not None
                and dep.id not in c.allow_deployments
                and dep.family not in c.allow_deployments
            ):
                return f"not in allowed deployments ({', '.join(sorted(c.allow_deployments))})"
            if dep.id in c.deny_deployments:
                return f"deployment {dep.id} is denied"
            if dep.family in c.deny_deployments:
                return f"family {dep.family} is denied"
            if c.max_price_per_mtok is not None:
                # A short prompt's rates at the dearest hour: what any request may pay.
                p = dep.price.rates()
                if c.price_basis == "input":
                    price, basis = p.input_per_mtok, "input"
                else:
                    price = (3 * p.input_per_mtok + p.output_per_mtok) / 4
                    basis = "blended 3:1 input:output"
                if price > c.max_price_per_mtok:
                    return (
                        f"price {_usd(price)}/1M tokens ({basis}) over the maximum "
                        f"{_usd(c.max_price_per_mtok)}/1M"
                    )
            if c.min_context_window is not None and context_window < c.min_context_window:
                return (
                    f"context window {context_window:,} below the required minimum "
                    f"{c.min_context_window:,}"
                )
            missing = c.require_features - features
            if missing:
                return f"lacks required feature(s): {', '.join(sorted(missing))}"
        return None

    def _allowed_jurisdictions(
        self, data_class: str, constraints: Sequence[RouteConstraints]
    ) -> tuple[str, ...] | None:
        allowed = self._rules.allowed(data_class)
        denied: set[str] = set()
        for c in constraints:
            if c.allow_jurisdictions is not None:
                allowed = (
                    c.allow_jurisdictions if allowed is None else allowed & c.allow_jurisdictions
                )
            denied |= c.deny_jurisdictions
        if allowed is None:
            return None
        return tuple(sorted(allowed - denied))

    def _build(
        self,
        skill: str,
        data_class: str,
        model: str | None,
        call_constraints: RouteConstraints | None,
    ) -> _Static:
        rules = self._rules
        allowed = rules.allowed(data_class)  # unknown class -> UnknownDataClassError
        home = rules.home(data_class)
        constraints = [
            c for c in (self._constraints, call_constraints) if c is not None and not c.empty
        ]
        groups, origin, unlisted = self._groups(skill, data_class, model)
        families = self._catalog.families
        reasons: dict[str, str] = {}
        entries: list[_Entry] = []
        placed: set[str] = set()
        order = {dep_id: i for i, dep_id in enumerate(self._catalog.deployments)}
        for group_index, (rank_reason, deployments) in enumerate(groups):
            for dep in deployments:
                if dep.id in placed:
                    continue
                placed.add(dep.id)
                family = families.get(dep.family)
                if family is None:
                    reasons[dep.id] = f"family {dep.family} is not in the catalog"
                    continue
                context_window = dep.context_window or family.context_window
                features = dep.features if dep.features is not None else family.features
                why = self._static_reason(
                    dep, context_window, features, allowed, data_class, constraints
                )
                if why is not None:
                    reasons[dep.id] = why
                    continue
                entry = _Entry(dep, group_index, rank_reason, order.get(dep.id, len(order)))
                entry.context_window = context_window
                entry.features = features
                entry.tokenizer = tokenizer_for(family.name, family.vendor)
                entry.leaves_home = rules.leaves_home(data_class, dep.jurisdiction)
                entries.append(entry)
        excluded: dict[str, str] = {}
        for dep_id, dep in self._catalog.deployments.items():
            if dep_id in reasons:
                excluded[dep_id] = reasons[dep_id]
            elif dep_id not in placed:
                excluded[dep_id] = unlisted(dep)
        for dep_id, why in reasons.items():  # model= may name deployments outside the mapping
            excluded.setdefault(dep_id, why)
        return _Static(
            tuple(entries),
            excluded,
            self._allowed_jurisdictions(data_class, constraints),
            home,
            origin,
        )

    def _static(
        self,
        skill: str,
        data_class: str,
        model: str | None,
        call_constraints: RouteConstraints | None,
    ) -> _Static:
        key = (skill, data_class, model, call_constraints)
        static = self._cache.get(key)
        if static is None:
            static = self._build(skill, data_class, model, call_constraints)
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
        policy: str | Policy | None = None,
        constraints: RouteConstraints | Mapping[str, Any] | None = None,
        model: str | None = None,
        stream: bool = False,
        draw_index: int | None = None,
        at: datetime | None = None,
    ) -> Plan:
        """The ordered deployments to try for ``request``.

        Prompt tokens are counted per family (exactly where its tokenizer ships, else
        estimated per script; the plan says which) for the context-window check and the
        expected cost, which is priced at ``at`` (default: now) for time-of-day prices.

        Raises:
            NoRouteError: nothing is left after the constraints (``exclusions`` says why).
            UnknownDataClassError / ConfigurationError: unknown data class or skill.
            UnknownModelError: ``model=`` names nothing in the catalog.
        """
        if draw_index is None:
            draw_index = next(self._draws)
        if skill is None:
            skill = "general"
        pol = self.policy if policy is None else Policy.parse(policy)
        call_constraints = None if constraints is None else RouteConstraints.coerce(constraints)
        static = self._static(skill, data_class, model, call_constraints)

        max_tokens = request.max_tokens
        output_tokens = max_tokens or self.default_output_tokens
        extra = max_tokens or 0
        # One count per tokenizer the entries need (most plans: the estimate and Qwen's).
        counter = self.token_counter
        counts: dict[str | None, TokenCount] = {}
        n_tools = len(request.tools)
        need_schema = request.response_schema is not None
        key_ok = self.key_available
        # The default check reads each key variable once per plan (hosts share keys).
        env_memo: dict[str, bool] | None = {} if key_ok is default_key_available else None
        environ = os.environ

        excluded = dict(static.excluded)
        survivors: list[tuple[_Entry, TokenCount]] = []
        for e in static.entries:
            count = counts.get(e.tokenizer)
            if count is None:
                count = counts[e.tokenizer] = counter.count_request(request, e.tokenizer)
            if e.context_window < count.tokens + extra:
                excluded[e.id] = _too_long(e.context_window, count, max_tokens)
                continue
            features = e.features
            if n_tools and "tools" not in features:
                excluded[e.id] = f"no tool calling (the request has {n_tools} tool(s))"
                continue
            if need_schema and "json_schema" not in features and "json_object" not in features:
                excluded[e.id] = (
                    "no structured output (response_schema needs json_schema or json_object)"
                )
                continue
            if stream and "streaming" not in features:
                excluded[e.id] = "no streaming support (a stream was requested)"
                continue
            if env_memo is not None:
                var = e.key_env
                if var is not None:
                    ok = env_memo.get(var)
                    if ok is None:
                        ok = env_memo[var] = bool(environ.get(var))
                    if not ok:
                        excluded[e.id] = f"key variable {var} is not set"
                        continue
            elif not key_ok(e.deployment):
                var = e.deployment.api_key_env
                excluded[e.id] = f"key variable {var} is not set" if var else "no API key available"
                continue
            survivors.append((e, count))

        if not survivors:
            allowed = "any" if static.allowed is None else (", ".join(static.allowed) or "none")
            target = f"model {model!r}" if model is not None else f"skill {skill!r}"
            raise NoRouteError(
                f"no deployment can serve {target} with data class {data_class!r} "
                f"(allowed jurisdictions: {allowed}); nothing outside them is ever tried",
                excluded,
            )

        # One row per survivor: [sort key, entry, expected cost (None: priced when read),
        # policy reason, prompt count].
        # Reasons are (template, args) pairs, formatted only if someone reads them.
        rows: list[list[Any]] = []
        draws: dict[str, float] = {}
        primary = pol.primary
        priced_at = at if at is not None else datetime.now(UTC)
        if primary == "weighted":
            m64, inv = _M64, _INV_2_53
            state = _mix((self.seed ^ _mix(draw_index)) & m64)
            for e, count in survivors:
                # SplitMix64 of (plan state, deployment id hash), inlined: uniform u in (0, 1).
                x = ((state ^ e.id_hash) + 0x9E3779B97F4A7C15) & m64
                x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & m64
                x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & m64
                u = (((x ^ (x >> 31)) >> 11) + 0.5) * inv
                draws[e.id] = u
                w = e.weight
                if w > 0:
                    key = u ** (1.0 / w)  # Efraimidis-Spirakis: P(first) = w / sum(w)
                    why: Any = (_WEIGHTED, (u, w, key))
                else:
                    key = u - 1.0  # weight 0: behind every weighted one, still a fall-back
                    why = (_WEIGHT_ZERO, (u,))
                rows.append([(e.group, -key, e.index), e, None, why, count])
        elif primary == "cheapest":
            group_min: dict[int, float] = {}
            for e, count in survivors:
                cost = e.price.cost(count.tokens, output_tokens, at=priced_at)
                if cost < group_min.get(e.group, math.inf):
                    group_min[e.group] = cost
                why = (_CHEAPEST, (_usd(cost), count.tokens, output_tokens))
                rows.append([None, e, cost, why, count])
            for row in rows:
                e = row[1]
                row[0] = (group_min[e.group], e.group, row[2], e.index)
        else:  # fastest
            tracker = self.latency
            for e, count in survivors:
                ewma = tracker.ewma(e.id) if tracker is not None else None
                if ewma is None:
                    speed, why = 0.0, _UNMEASURED
                else:
                    calls = tracker.count(e.id) if hasattr(tracker, "count") else 0  # type: ignore[union-attr]
                    speed, why = ewma, (_FASTEST, (ewma * 1000.0, calls))
                rows.append([(e.group, speed, e.index), e, None, why, count])
        rows.sort(key=_row_key)

        extra: dict[str, list[Any]] = {}
        if pol.max_jurisdiction_share is not None:
            rows = self._diversify(rows, pol, extra)

        health_of: dict[str, str] = {}
        if self.health is not None:
            health = self.health
            kept: list[list[Any]] = []
            moved: list[list[Any]] = []
            for row in rows:
                e = row[1]
                state_ = health(e.deployment)
                if state_ != "closed":
                    state_ = str(getattr(state_, "value", state_))
                    health_of[e.id] = state_
                    if state_ == "open":
                        extra.setdefault(e.id, []).append(_BREAKER_OPEN)
                        moved.append(row)
                        continue
                    if state_ == "half_open":
                        extra.setdefault(e.id, []).append(_HALF_OPEN)
                kept.append(row)
            rows = kept + moved if moved else kept

        first = rows[0][1]
        first_family, first_region = first.family, first.region
        schema_note = need_schema
        candidates = []
        for _, e, cost, why, count in rows:
            reasons: list[Any] = [e.rank_reason, why]
            if e.family == first_family and e is not first:
                reasons.append(
                    (_SAME_REGION, (e.region, e.jurisdiction))
                    if e.region != first_region
                    else (_SAME_HOST, (e.deployment.operator,))
                )
            more = extra.get(e.id)
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
            draws,
            rows[0][4].tokens,
            output_tokens,
            model,
            stream,
            static.home,
            rows[0][4].method,
            {c.method: c.tokens for c in counts.values()},
            priced_at,
        )

    def replay(self, plan: Plan, request: ChatRequest) -> Plan:
        """Re-derive a recorded plan's order (same seed, same draw index, same request).

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
        )

    # --- diversification window ---------------------------------------------------------

    def _window(self, size: int) -> _ShareWindow:
        window = self._windows.get(size)
        if window is None:
            with self._lock:
                window = self._windows.get(size)
                if window is None:
                    window = self._windows[size] = _ShareWindow(size, self._history)
        return window

    def _diversify(
        self, rows: list[list[Any]], pol: Policy, extra: dict[str, list[Any]]
    ) -> list[list[Any]]:
        counts, total = self._shares(pol.window)
        if not total:
            return rows
        cap = pol.max_jurisdiction_share or 1.0
        kept: list[list[Any]] = []
        moved: list[list[Any]] = []
        for row in rows:
            share = counts.get(row[1].jurisdiction, 0) / total
            (moved if share >= cap else kept).append(row)
        if not kept or not moved:
            return rows  # every candidate is capped (or none is): the order stands
        for row in moved:
            e = row[1]
            share = counts[e.jurisdiction] / total
            extra.setdefault(e.id, []).append((_CAPPED, (e.jurisdiction, share, total, cap)))
        return kept + moved

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
        warnings: list[str] = []
        rules = self._rules
        catalog = self._catalog
        for name, code in rules.unknown_jurisdictions():
            warnings.append(
                f"data class {name!r} allows {code!r}, which is not a known jurisdiction code"
            )

        def check_refs(label: str, refs: Sequence[str]) -> None:
            for ref in refs:
                try:
                    catalog.resolve(ref)
                except UnknownModelError as err:
                    warnings.append(f"{label}: {err}")

        for skill in sorted(self._skill_table.user_skills):
            check_refs(f"skill table {skill!r}", self._skill_table.ranked(skill))
        for (skill, data_class), refs in self._routes.items():
            check_refs(f"route {skill + '/' if skill else ''}{data_class}", refs)

        skills = list(self._skill_table.known_skills(catalog))
        skills += [s for (s, _), _ in self._routes.items() if s and s not in skills]
        for skill in skills:
            for data_class in rules.names:
                route = self._route_refs(skill, data_class)
                if route is not None:
                    origin, refs = route
                    name, where = origin.removeprefix("route "), origin
                else:
                    refs = self._skill_table.ranked(skill)
                    name, where = f"{skill}/{data_class}", f"skill table entry for {skill!r}"
                self._check_pins(name, skill, data_class, where, refs)
                try:
                    static = self._static(skill, data_class, None, None)
                except ConfigurationError as err:
                    warnings.append(f"route {skill}/{data_class}: {err}")
                    continue
                entries = static.entries
                excluded = dict(static.excluded)
                if check_keys:
                    usable = []
                    for e in entries:
                        if self.key_available(e.deployment):
                            usable.append(e)
                        else:
                            var = e.deployment.api_key_env
                            excluded[e.id] = (
                                f"key variable {var} is not set" if var else "no API key available"
                            )
                    entries = tuple(usable)
                if not entries:
                    message = (
                        f"route {skill}/{data_class}: no allowed deployment (data class "
                        f"{data_class!r} may go to: {rules.describe(data_class)})"
                    )
                    if strict:
                        raise NoRouteError(message, excluded)
                    warnings.append(message)
        self.warnings = warnings
        return warnings

    def _check_pins(
        self, route: str, skill: str, data_class: str, where: str, refs: Sequence[str]
    ) -> None:
        allowed = self._rules.allowed(data_class)
        if allowed is None:
            return
        for ref in refs:
            if _ref_kind(ref, self._catalog) not in ("deployment", "site"):
                continue  # a family's out-of-bounds deployments are filtered per call
            try:
                deployments = self._catalog.resolve(ref)
            except UnknownModelError:
                continue
            for dep in deployments:
                if dep.jurisdiction not in allowed:
                    raise SovereigntyError(
                        f"route {route}: {where} pins {dep.id} in "
                        f"{dep.jurisdiction}, but data class {data_class!r} may only go to "
                        f"{self._rules.describe(data_class)}. Name the family instead (its "
                        "deployments are then filtered per data class) or pin it only for "
                        f"classes that allow {dep.jurisdiction}, e.g. "
                        f"routes={{'{skill}/public': [{dep.id!r}]}}",
                        route=route,
                        deployment=dep.id,
                    )

    def __repr__(self) -> str:
        return (
            f"Router(deployments={len(self._catalog.deployments)}, policy={self.policy!s}, "
            f"seed={self.seed}, data_classes={list(self._rules.names)})"
        )
