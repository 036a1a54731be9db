"""Filters: which deployments may serve a request, and why each other one may not.

Two passes. The **static** pass (:func:`static_reason`, cached by the router per skill,
data class, model and call constraints) checks what no request can change:
jurisdiction against the data class first (so the sovereignty reason is the one
recorded), disabled and retired deployments, allow/deny lists, price caps, minimum
context windows, required features. The **request** pass (:func:`request_filter`)
checks what the request needs: the context window for its prompt plus ``max_tokens``,
tools, structured output, streaming, and a key.

What passes is a :class:`RouteEntry` (what the orders read); what does not is an
exclusion with a reason. :class:`StaticExclusions` keeps the static pass's exclusions
without writing one string per catalog deployment: a reason is formatted when it is
read, so a five-candidate plan over a 5,000-deployment catalog costs what one over ten
costs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence

from hybridstack.catalog.keys import ENVIRONMENT_KEYS
from hybridstack.catalog.models import Deployment
from hybridstack.routing.orders import id_hash, usd
from hybridstack.routing.policies import RouteConstraints
from hybridstack.routing.sovereignty import DataClassRules
from hybridstack.tokens import TokenCount, TokenCounter
from hybridstack.types import ChatRequest

__all__ = [
    "RouteEntry",
    "StaticExclusions",
    "StaticRoute",
    "allowed_jurisdictions",
    "default_key_available",
    "request_filter",
    "static_reason",
]

KeyFn = Callable[[Deployment], bool]


def default_key_available(deployment: Deployment) -> bool:
    """A key in code, no key needed (local), or the key variable set and non-empty."""
    return ENVIRONMENT_KEYS.available(deployment)


class RouteEntry:
    """A deployment that passed the static filters, with what orders and plans read.

    Attributes: ``deployment``, ``id``, ``family``, ``region``, ``jurisdiction``,
    ``group`` (its family's rank, 0 first), ``index`` (catalog position, a stable
    tie-break), ``weight``, ``price``, ``context_window``, ``features``, ``leaves_home``,
    ``tokenizer`` (None: the script-aware estimate), ``rank_reason``.
    """

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
        self.id_hash = id_hash(deployment.id)
        self.weight = deployment.weight
        # The variable the default key check reads (None: key in code, or none needed).
        self.key_env = None if deployment.api_key is not None else deployment.api_key_env
        # The one cost function (input-length tiers, time-of-day windows) prices the plan.
        self.price = deployment.price
        self.tokenizer: str | None = None
        self.context_window = 0
        self.features: frozenset[str] = frozenset()
        self.leaves_home = False

    def __repr__(self) -> str:
        return f"RouteEntry({self.id!r}, group={self.group})"


class StaticExclusions(Mapping[str, str]):
    """deployment id -> why the static pass left it out, formatted on read.

    ``reasons`` holds the deployments that were considered and refused; every other
    catalog deployment not in ``kept`` was never considered (``unlisted`` says why).
    """

    __slots__ = ("_deployments", "_kept", "_len", "_reasons", "_unlisted")

    def __init__(
        self,
        deployments: Mapping[str, Deployment],
        reasons: dict[str, str],
        kept: frozenset[str],
        unlisted: Callable[[Deployment], str],
    ) -> None:
        self._deployments = deployments
        self._reasons = reasons
        self._kept = kept
        self._unlisted = unlisted
        self._len: int | None = None

    def __getitem__(self, dep_id: str) -> str:
        why = self._reasons.get(dep_id)
        if why is not None:
            return why
        if dep_id in self._kept:
            raise KeyError(dep_id)
        return self._unlisted(self._deployments[dep_id])

    def __contains__(self, dep_id: object) -> bool:
        return dep_id in self._reasons or (dep_id in self._deployments and dep_id not in self._kept)

    def __iter__(self) -> Iterator[str]:
        kept, reasons = self._kept, self._reasons
        for dep_id in self._deployments:
            if dep_id not in kept:
                yield dep_id
        for dep_id in reasons:  # model= may name deployments outside the catalog mapping
            if dep_id not in self._deployments:
                yield dep_id

    def __len__(self) -> int:
        n = self._len
        if n is None:
            deployments = self._deployments
            n = len(deployments) - sum(1 for k in self._kept if k in deployments)
            n += sum(1 for k in self._reasons if k not in deployments)
            self._len = n
        return n

    def __repr__(self) -> str:
        return repr(dict(self))


class StaticRoute:
    """The cached static part of a plan: entries in order, exclusions, bounds."""

    __slots__ = ("allowed", "entries", "excluded", "home", "origin")

    def __init__(
        self,
        entries: tuple[RouteEntry, ...],
        excluded: Mapping[str, str],
        allowed: tuple[str, ...] | None,
        home: str | None,
        origin: str,
    ) -> None:
        self.entries = entries
        self.excluded = excluded
        self.allowed = allowed
        self.home = home
        self.origin = origin


def static_reason(
    dep: Deployment,
    context_window: int,
    features: frozenset[str],
    allowed: frozenset[str] | None,
    data_class: str,
    constraints: Sequence[RouteConstraints],
    rules: DataClassRules,
) -> str | None:
    """Why ``dep`` can never serve this route (None: it may)."""
    j = dep.jurisdiction
    if allowed is not None and j not in allowed:
        return (
            f"jurisdiction {j} not allowed for data class {data_class!r} "
            f"(allowed: {rules.describe(data_class)})"
        )
    if not dep.enabled:
        return "disabled in the catalog (enabled = false)"
    if dep.retired:
        return "retired: the host no longer serves this model"
    for c in constraints:
        why = _constraint_reason(dep, j, context_window, features, c)
        if why is not None:
            return why
    return None


def _constraint_reason(
    dep: Deployment,
    j: str,
    context_window: int,
    features: frozenset[str],
    c: RouteConstraints,
) -> str | None:
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
                f"price {usd(price)}/1M tokens ({basis}) over the maximum "
                f"{usd(c.max_price_per_mtok)}/1M"
            )
    if c.min_context_window is not None and context_window < c.min_context_window:
        return (
            f"context window {context_window:,} below the required minimum {c.min_context_window:,}"
        )
    missing = c.require_features - features
    if missing:
        return f"lacks required feature(s): {', '.join(sorted(missing))}"
    return None


def allowed_jurisdictions(
    rules: DataClassRules, data_class: str, constraints: Sequence[RouteConstraints]
) -> tuple[str, ...] | None:
    """The jurisdictions a route may reach (None = any), the constraints applied."""
    allowed = rules.allowed(data_class)
    denied: set[str] = set()
    for c in constraints:
        if c.allow_jurisdictions is not None:
            allowed = c.allow_jurisdictions if allowed is None else allowed & c.allow_jurisdictions
        denied |= c.deny_jurisdictions
    if allowed is None:
        return None
    return tuple(sorted(allowed - denied))


def _too_long(window: int, count: TokenCount, max_tokens: int | None) -> str:
    how = "counted" if count.exact else "estimated"
    prompt = f"~{count.tokens:,} prompt tokens {how} by {count.method}"
    if max_tokens:
        prompt += f" + {max_tokens:,} max_tokens"
    return (
        f"context window {window:,} < {count.tokens + (max_tokens or 0):,} tokens needed ({prompt})"
    )


def request_filter(
    entries: Sequence[RouteEntry],
    request: ChatRequest,
    stream: bool,
    counter: TokenCounter,
    key_ok: KeyFn,
    excluded: dict[str, str],
) -> tuple[list[tuple[RouteEntry, TokenCount]], dict[str | None, TokenCount]]:
    """The entries this request can use, each with its prompt count; the others go into
    ``excluded`` with a reason. Also returns the count per tokenizer used."""
    max_tokens = request.max_tokens
    extra = max_tokens or 0
    # One count per tokenizer the entries need (most plans: the estimate and Qwen's).
    counts: dict[str | None, TokenCount] = {}
    n_tools = len(request.tools)
    need_schema = request.response_schema is not None
    # The default check reads each key variable once per plan (hosts share keys).
    env_memo: dict[str, bool] | None = {} if key_ok is default_key_available else None
    environ = os.environ
    survivors: list[tuple[RouteEntry, TokenCount]] = []
    for e in entries:
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
    return survivors, counts
