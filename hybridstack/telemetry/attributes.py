"""What telemetry says about hybridstack's records, as GenAI-convention attribute dicts.

Plain dicts, no OpenTelemetry import: a deployment's ``gen_ai.provider.name`` and
server (:class:`Site`), an attempt's child-span attributes and its low-cardinality
``error.type``, an executor event's attributes, and the route decision's event
(candidates, exclusions, seed, draws). Attribute names follow the OpenTelemetry GenAI
semantic conventions as plain strings; hybridstack's own are under ``hybridstack.*``.
Text that could hold provider output (error messages, exclusion reasons) is scrubbed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from hybridstack._secrets import scrub

if TYPE_CHECKING:
    from hybridstack.catalog import Deployment
    from hybridstack.plan import Plan
    from hybridstack.resilience import ExecutionEvent
    from hybridstack.types import Attempt

__all__ = [
    "MAX_ERROR_CHARS",
    "OPERATION",
    "Site",
    "attempt_attributes",
    "attempt_error_type",
    "event_attributes",
    "route_attributes",
]

OPERATION = "chat"

#: hybridstack operators whose well-known ``gen_ai.provider.name`` is spelt differently.
_PROVIDER_NAMES = {
    "azure": "azure.ai.openai",
    "azure-openai": "azure.ai.openai",
    "bedrock": "aws.bedrock",
    "mistral": "mistral_ai",
    "xai": "x_ai",
    "vertex": "gcp.vertex_ai",
    "gemini": "gcp.gemini",
}
_DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_ERROR_CHARS = 500
_MAX_ERROR_TYPE_CHARS = 64


class Site:
    """What telemetry says about one deployment (computed once per deployment id)."""

    __slots__ = ("address", "port", "provider")

    def __init__(self, deployment: Deployment | None) -> None:
        self.provider = provider_name(deployment)
        self.address: str | None = None
        self.port: int | None = None
        if deployment is not None:
            try:
                parts = urlsplit(deployment.base_url)
                self.address = parts.hostname
                self.port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
            except ValueError:
                pass

    def put(self, attrs: dict[str, Any]) -> None:
        attrs["gen_ai.provider.name"] = self.provider
        if self.address:
            attrs["server.address"] = self.address
            if self.port:
                attrs["server.port"] = self.port


def provider_name(deployment: Deployment | None) -> str:
    """The well-known ``gen_ai.provider.name`` of a deployment's operator."""
    if deployment is None:
        return "hybridstack"
    operator = (deployment.operator or deployment.protocol or "").strip().lower()
    return _PROVIDER_NAMES.get(operator, operator or deployment.protocol)


def attempt_attributes(attempt: Attempt, site: Site, error_type: str | None) -> dict[str, Any]:
    """The attributes of one attempt's CLIENT child span."""
    usage = attempt.usage
    outcome = attempt.outcome
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": OPERATION,
        "gen_ai.request.model": attempt.model or attempt.family,
        "hybridstack.call.id": attempt.call_id,
        "hybridstack.attempt.index": attempt.attempt_index,
        "hybridstack.attempt.retry_index": attempt.retry_index,
        "hybridstack.attempt.kind": _attempt_kind(attempt),
        "hybridstack.attempt.outcome": outcome,
        "hybridstack.deployment": attempt.deployment,
        "hybridstack.family": attempt.family,
        "hybridstack.region": attempt.region,
        "hybridstack.jurisdiction": attempt.jurisdiction,
        "hybridstack.breaker_state": attempt.breaker_state,
        "hybridstack.attempt.streamed": attempt.streamed,
        "gen_ai.usage.cost": attempt.cost_usd,
    }
    site.put(attrs)
    if attempt.quota_scope:
        attrs["hybridstack.quota_scope"] = attempt.quota_scope
    if outcome == "ok":
        attrs["gen_ai.response.model"] = attempt.model or attempt.family
    if outcome == "ok" or usage.input_tokens or usage.output_tokens:
        attrs["gen_ai.usage.input_tokens"] = usage.input_tokens
        attrs["gen_ai.usage.output_tokens"] = usage.output_tokens
        if usage.cached_input_tokens:
            attrs["gen_ai.usage.cache_read.input_tokens"] = usage.cached_input_tokens
    if attempt.ttft_s is not None:
        attrs["hybridstack.attempt.ttft_s"] = attempt.ttft_s
    if attempt.status is not None:
        attrs["http.response.status_code"] = attempt.status
    if attempt.provider_code:
        attrs["hybridstack.provider_code"] = attempt.provider_code[:_MAX_ERROR_TYPE_CHARS]
    if attempt.retry_after_s is not None:
        attrs["hybridstack.retry_after_s"] = attempt.retry_after_s
    if attempt.hedged:
        attrs["hybridstack.attempt.hedged"] = True
    if attempt.redactions:
        attrs["hybridstack.redactions"] = [f"{k}={n}" for k, n in attempt.redactions.items()]
    if error_type is not None:
        attrs["error.type"] = error_type
    return attrs


def event_attributes(event: ExecutionEvent) -> dict[str, Any]:
    """The attributes of one executor event (retry, failover, hedge, breaker)."""
    attrs: dict[str, Any] = {"hybridstack.deployment": event.deployment}
    if event.to_deployment:
        attrs["hybridstack.to_deployment"] = event.to_deployment
    if event.error_kind:
        attrs["hybridstack.error.kind"] = event.error_kind
    if event.message:
        attrs["hybridstack.message"] = scrub(event.message)[:MAX_ERROR_CHARS]
    if event.delay_s is not None:
        attrs["hybridstack.delay_s"] = float(event.delay_s)
    return attrs


def _attempt_kind(attempt: Attempt) -> str:
    if attempt.hedged:
        return "hedge"
    if attempt.retry_index > 0:
        return "retry"
    return "first" if attempt.attempt_index == 0 else "failover"


def attempt_error_type(attempt: Attempt) -> str | None:
    """A low-cardinality error class: the provider's code, else the HTTP status, else the
    error's class; None for ok and cancelled attempts."""
    outcome = attempt.outcome
    if outcome in ("ok", "cancelled"):
        return None
    value = attempt.provider_code or (
        str(attempt.status) if attempt.status is not None else attempt.error_type
    )
    return (value or outcome)[:_MAX_ERROR_TYPE_CHARS]


def route_attributes(plan: Plan) -> dict[str, Any]:
    """The route decision, as the attributes of the call span's ``hybridstack.route`` event."""
    attrs: dict[str, Any] = {
        "hybridstack.route.policy": plan.policy,
        "hybridstack.route.candidates": [c.deployment.id for c in plan.candidates],
        "hybridstack.route.candidate_jurisdictions": [
            c.deployment.jurisdiction for c in plan.candidates
        ],
        "hybridstack.route.excluded": list(plan.excluded),
        "hybridstack.route.exclusion_reasons": [scrub(r) for r in plan.excluded.values()],
        "hybridstack.route.estimated_prompt_tokens": plan.estimated_prompt_tokens,
    }
    if plan.model:
        attrs["hybridstack.route.model"] = plan.model
    if plan.allowed_jurisdictions is not None:
        attrs["hybridstack.route.allowed_jurisdictions"] = list(plan.allowed_jurisdictions)
    if plan.home_jurisdiction is not None:
        attrs["hybridstack.route.home_jurisdiction"] = plan.home_jurisdiction
    if plan.seed is not None:
        attrs["hybridstack.route.seed"] = plan.seed
    if plan.draw_index is not None:
        attrs["hybridstack.route.draw_index"] = plan.draw_index
    if plan.draws:
        attrs["hybridstack.route.draw_deployments"] = list(plan.draws)
        attrs["hybridstack.route.draws"] = [float(u) for u in plan.draws.values()]
    if plan.candidates:
        attrs["hybridstack.route.expected_cost_usd"] = plan.candidates[0].expected_cost_usd
    return attrs
