"""The router's answer for one request: deployments to try, in order, and why.

It lives below routing and resilience so that both the router (which builds it) and the
executor (which runs it) can name its type.

A :class:`Plan` is built for every call, so it is a plain slotted dataclass rather than
a pydantic model (building one must cost microseconds, not tens of them). It is
immutable, and :meth:`Plan.to_dict` gives a JSON-safe dict for the ledger and traces.
``model_dump``/``model_copy`` are provided for callers written against pydantic.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hybridstack.catalog.models import Deployment

__all__ = ["Candidate", "Exclusions", "Plan"]


#: A reason as the router stores it: final text, or ``(template, args)`` formatted on
#: first read (formatting floats for every candidate of every plan would cost more than
#: the rest of routing; most reasons are never read).
Reason = str | tuple[str, tuple[Any, ...]]


class Candidate:
    """One deployment to try, with the router's reasons in plain words.

    Immutable by convention (slotted, no setters). ``reasons`` is formatted on first use.
    """

    __slots__ = (
        "_cost",
        "_pricing",
        "_raw",
        "_reasons",
        "context_window",
        "deployment",
        "health",
        "leaves_home",
        "prompt_tokens",
        "token_method",
    )

    def __init__(
        self,
        deployment: Deployment,
        reasons: Sequence[Reason] = (),
        expected_cost_usd: float | None = 0.0,
        context_window: int = 0,
        leaves_home: bool = False,
        health: str = "closed",
        prompt_tokens: int = 0,
        token_method: str = "",
        pricing: tuple[int, int, datetime | None] | None = None,
    ) -> None:
        self.deployment = deployment
        self._raw = reasons
        self._reasons: tuple[str, ...] | None = None
        # The expected cost, or None with ``pricing`` = (prompt tokens, output tokens, at):
        # then the deployment's price is asked on first read (most plans are never priced
        # by anyone but the budget check).
        self._cost = expected_cost_usd
        self._pricing = pricing
        #: The deployment's context window (its override, else the family's).
        self.context_window = context_window
        #: True when the deployment is outside the data class's home jurisdiction: with
        #: redaction on, the executor redacts the request before sending it here.
        self.leaves_home = leaves_home
        #: The breaker state the router saw ("closed", "open", "half_open").
        self.health = health
        #: The request's prompt tokens for this deployment's family, and how they were
        #: counted: ``tokenizer:qwen`` (exact) or ``estimate:script-aware``.
        self.prompt_tokens = prompt_tokens
        self.token_method = token_method

    @property
    def expected_cost_usd(self) -> float:
        """Expected USD cost: the deployment's price (its tier for this prompt, its window
        at the plan's time) for the plan's token counts."""
        cost = self._cost
        if cost is None:
            pricing = self._pricing
            if pricing is None:
                cost = 0.0
            else:
                prompt, output, at = pricing
                cost = self.deployment.price.cost(prompt, output, at=at)
            self._cost = cost
        return cost

    @property
    def reasons(self) -> tuple[str, ...]:
        """Why this deployment is here and in this place, in plain words."""
        done = self._reasons
        if done is None:
            done = self._reasons = tuple(
                r if isinstance(r, str) else r[0].format(*r[1]) for r in self._raw
            )
        return done

    @property
    def id(self) -> str:
        return self.deployment.id

    def to_dict(self) -> dict[str, Any]:
        d = self.deployment
        return {
            "deployment": d.id,
            "family": d.family,
            "region": d.region,
            "jurisdiction": d.jurisdiction,
            "operator": d.operator,
            "reasons": list(self.reasons),
            "expected_cost_usd": self.expected_cost_usd,
            "context_window": self.context_window,
            "leaves_home": self.leaves_home,
            "health": self.health,
            "prompt_tokens": self.prompt_tokens,
            "token_method": self.token_method,
        }

    def replace(self, **changes: Any) -> Candidate:
        """A copy with some fields changed (``reasons`` as final strings)."""
        values: dict[str, Any] = {
            "deployment": self.deployment,
            "reasons": self.reasons,
            "expected_cost_usd": self.expected_cost_usd,
            "context_window": self.context_window,
            "leaves_home": self.leaves_home,
            "health": self.health,
            "prompt_tokens": self.prompt_tokens,
            "token_method": self.token_method,
        }
        values.update(changes)
        return Candidate(**values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Candidate):
            return NotImplemented
        return (
            self.deployment == other.deployment
            and self.reasons == other.reasons
            and self.expected_cost_usd == other.expected_cost_usd
            and self.context_window == other.context_window
            and self.leaves_home == other.leaves_home
            and self.health == other.health
            and self.prompt_tokens == other.prompt_tokens
            and self.token_method == other.token_method
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Candidate({self.deployment.id!r}, jurisdiction={self.deployment.jurisdiction!r}, "
            f"expected_cost_usd={self.expected_cost_usd:.6f}, health={self.health!r})"
        )


class Exclusions(Mapping[str, str]):
    """deployment id -> why it is not in the plan: the request's own exclusions over the
    route's static ones, layered rather than copied (a plan over a catalog of thousands
    of deployments must not copy thousands of reasons). Read-only; ``dict(...)`` copies."""

    __slots__ = ("_base", "_extra")

    def __init__(self, base: Mapping[str, str], extra: Mapping[str, str]) -> None:
        self._base = base
        self._extra = extra

    def __getitem__(self, dep_id: str) -> str:
        why = self._extra.get(dep_id)
        return why if why is not None else self._base[dep_id]

    def __contains__(self, dep_id: object) -> bool:
        return dep_id in self._extra or dep_id in self._base

    def __iter__(self) -> Iterator[str]:
        yield from self._base
        base = self._base
        for dep_id in self._extra:
            if dep_id not in base:
                yield dep_id

    def __len__(self) -> int:
        base = self._base
        return len(base) + sum(1 for k in self._extra if k not in base)

    def __repr__(self) -> str:
        return repr(dict(self))


@dataclass(frozen=True, slots=True, repr=False)
class Plan:
    """An ordered list of deployments to try, plus every exclusion and its reason."""

    #: The skill routed for; None when ``model=`` pinned the route and no skill was given.
    skill: str | None
    data_class: str
    #: The policy in its canonical string form ("weighted", "cheapest+diversified" …).
    policy: str
    candidates: tuple[Candidate, ...]
    #: deployment id -> why it is not in ``candidates`` (a read-only mapping).
    excluded: Mapping[str, str] = field(default_factory=dict)
    #: Jurisdictions this request may go to; None means any (less explicit denials).
    allowed_jurisdictions: tuple[str, ...] | None = None
    #: The router's seed and this plan's index in its draw sequence: together they
    #: re-derive the weighted draws (``Router(seed=s).plan(..., draw_index=i)``). A plan
    #: drawn for a ``route_key`` has no draw index: the seed and the key re-derive it.
    seed: int | None = None
    draw_index: int | None = None
    #: deployment id -> the uniform draw u in (0, 1) used for the weighted order.
    draws: dict[str, float] = field(default_factory=dict)
    #: Prompt tokens for the first candidate's family (see ``token_method``).
    estimated_prompt_tokens: int = 0
    estimated_output_tokens: int = 0
    #: The explicit model reference that replaced the skill table, if any.
    model: str | None = None
    stream: bool = False
    #: Where this data class's data lives (redaction applies outside it); None = nowhere.
    home_jurisdiction: str | None = None
    #: How ``estimated_prompt_tokens`` was counted: ``tokenizer:qwen`` (exact) or
    #: ``estimate:script-aware``; ``token_counts`` has every method the plan used.
    token_method: str = ""
    token_counts: dict[str, int] = field(default_factory=dict)
    #: The moment the expected costs were priced at (time-of-day prices); replay reuses it.
    priced_at: datetime | None = None
    #: The call's stable identity the weighted draw was keyed on (None: ``draw_index``).
    route_key: str | None = None

    # --- convenience -------------------------------------------------------------------

    @property
    def first(self) -> Deployment:
        return self.candidates[0].deployment

    @property
    def deployments(self) -> list[Deployment]:
        return [c.deployment for c in self.candidates]

    @property
    def deployment_ids(self) -> list[str]:
        return [c.deployment.id for c in self.candidates]

    def candidate(self, deployment_id: str) -> Candidate | None:
        for c in self.candidates:
            if c.deployment.id == deployment_id:
                return c
        return None

    def __len__(self) -> int:
        return len(self.candidates)

    # --- serialisation -----------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (no secrets: deployments appear by id and location)."""
        return {
            "skill": self.skill,
            "data_class": self.data_class,
            "policy": self.policy,
            "model": self.model,
            "stream": self.stream,
            "allowed_jurisdictions": (
                None if self.allowed_jurisdictions is None else list(self.allowed_jurisdictions)
            ),
            "home_jurisdiction": self.home_jurisdiction,
            "seed": self.seed,
            "draw_index": self.draw_index,
            "route_key": self.route_key,
            "draws": dict(self.draws),
            "estimated_prompt_tokens": self.estimated_prompt_tokens,
            "estimated_output_tokens": self.estimated_output_tokens,
            "token_method": self.token_method,
            "token_counts": dict(self.token_counts),
            "priced_at": None if self.priced_at is None else self.priced_at.isoformat(),
            "candidates": [c.to_dict() for c in self.candidates],
            "excluded": dict(self.excluded),
        }

    def model_dump(self, **_: Any) -> dict[str, Any]:
        """Alias of :meth:`to_dict` for code written against pydantic models."""
        return self.to_dict()

    def model_copy(self, *, update: dict[str, Any] | None = None, **_: Any) -> Plan:
        """A copy with some fields replaced (``candidates`` may be given as a list)."""
        changes = dict(update or {})
        if "candidates" in changes:
            changes["candidates"] = tuple(changes["candidates"])
        return dataclasses.replace(self, **changes)

    # --- display -----------------------------------------------------------------------

    def explain(self, limit: int | None = None) -> str:
        """A readable multi-line explanation (the CLI's ``route`` command prints it).

        ``limit`` shows only the first candidates in detail (the rest are counted).
        """
        allowed = (
            "any" if self.allowed_jurisdictions is None else ", ".join(self.allowed_jurisdictions)
        )
        where = f"data class {self.data_class!r} (allowed: {allowed})"
        if self.skill is None:
            head = f"Plan for model {self.model!r}, {where}"
        else:
            head = f"Plan for skill {self.skill!r}, {where}"
            if self.model:
                head += f", model {self.model!r}"
        lines = [head]
        policy = f"policy {self.policy}"
        if self.route_key is not None:
            policy += f" (seed {self.seed}, route key {self.route_key!r})"
        elif self.seed is not None:
            policy += f" (seed {self.seed}, draw #{self.draw_index})"
        lines.append(policy)
        method = f" ({self.token_method})" if self.token_method else ""
        others = "; ".join(
            f"{n:,} by {m}" for m, n in self.token_counts.items() if m != self.token_method
        )
        lines.append(
            f"estimate: ~{self.estimated_prompt_tokens:,} prompt tokens{method} + "
            f"{self.estimated_output_tokens:,} output tokens"
            + (", streamed" if self.stream else "")
            + (f"; other families: {others}" if others else "")
        )
        if self.home_jurisdiction is not None:
            lines.append(f"home jurisdiction: {self.home_jurisdiction}")
        lines.append(f"try in order ({len(self.candidates)}):")
        width = max((len(c.deployment.id) for c in self.candidates), default=0)
        digits = len(str(len(self.candidates)))
        shown = self.candidates if limit is None else self.candidates[: max(limit, 0)]
        # Per-candidate counts only when the families count differently.
        mixed = len(self.token_counts) > 1
        for i, c in enumerate(shown, 1):
            d = c.deployment
            lines.append(
                f"  {i:>{digits}}. {d.id:<{width}}  {d.region} ({d.jurisdiction})  "
                f"~${c.expected_cost_usd:.6f}  ctx {c.context_window:,}"
                + (f"  ({c.prompt_tokens:,} tok, {c.token_method})" if mixed else "")
                + ("  [leaves home: redacted when redaction is on]" if c.leaves_home else "")
            )
            lines.extend(f"  {'':>{digits}}     - {r}" for r in c.reasons)
        if len(shown) < len(self.candidates):
            lines.append(f"  … and {len(self.candidates) - len(shown)} more fall-back(s)")
        if self.excluded:
            lines.append(f"excluded ({len(self.excluded)}):")
            lines.extend(f"  - {dep}: {why}" for dep, why in self.excluded.items())
        return "\n".join(lines)

    def __str__(self) -> str:
        ids = ", ".join(self.deployment_ids)
        return (
            f"Plan({self.skill}/{self.data_class}, {self.policy}: [{ids}], "
            f"excluded={len(self.excluded)})"
        )

    __repr__ = __str__
