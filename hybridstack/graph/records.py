"""Records of a run's work: the state entries for a finished subtask and for each model call,
and the normalised answer to the approval pause."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hybridstack.graph.state import SubtaskRecord, utcnow
from hybridstack.graph.subtasks import PlanValidationError, Subtask, TaskPlan

__all__ = [
    "call_id_of",
    "call_record",
    "combined_outputs",
    "done_record",
    "parse_approval",
    "route_taken",
]


def parse_approval(answer: Any) -> tuple[str, Any]:
    """Normalise a resume value: ("approve", None) | ("edit", plan) | ("reject", reason)."""
    if answer is None or answer is True:
        return "approve", None
    if answer is False:
        return "reject", None
    if isinstance(answer, str):
        lowered = answer.strip().lower()
        if lowered in ("approve", "approved", "yes", "ok", "y"):
            return "approve", None
        if lowered in ("reject", "rejected", "no", "n"):
            return "reject", None
        raise PlanValidationError(f"unknown approval answer {answer!r}; use 'approve' or 'reject'")
    if isinstance(answer, TaskPlan | list):
        return "edit", answer
    if isinstance(answer, Mapping):
        action = str(answer.get("action", "")).lower()
        if action == "reject" or answer.get("approved") is False:
            return "reject", answer.get("reason")
        if "plan" in answer or action == "edit":
            if answer.get("plan") is None:
                raise PlanValidationError("an 'edit' answer needs a 'plan'")
            return "edit", answer["plan"]
        if action in ("approve", "") or answer.get("approved") is True:
            return "approve", None
    raise PlanValidationError(
        f"unknown approval answer {answer!r}: resume with {{'action': 'approve'}}, "
        "{'action': 'edit', 'plan': [...]} or {'action': 'reject', 'reason': '...'}"
    )


def route_taken(events: Sequence[Mapping[str, Any]], answered_by: str | None) -> list[str]:
    route: list[str] = []
    for event in events:
        if event.get("kind") in ("attempt_failed", "failover", "retry", "resumed"):
            deployment = event.get("deployment")
            if deployment and (not route or route[-1] != deployment):
                route.append(deployment)
    if answered_by and (not route or route[-1] != answered_by):
        route.append(answered_by)
    return route


def call_id_of(events: Sequence[Mapping[str, Any]]) -> str | None:
    return next((e["call_id"] for e in events if e.get("call_id")), None)


def done_record(
    subtask: Subtask,
    data_class: str,
    response: Any,
    events: list[dict[str, Any]],
    data: Any,
    started_at: Any,
    elapsed: float,
) -> SubtaskRecord:
    usage = response.usage
    return SubtaskRecord(
        id=subtask.id,
        status="done",
        skill=subtask.skill,
        data_class=data_class,
        output=response.text,
        data=data,
        deployment=response.deployment,
        family=response.family or None,
        model=response.model or None,
        region=response.region or None,
        jurisdiction=response.jurisdiction or None,
        attempts=int(response.attempts or 1),
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cost_usd=float(response.cost_usd or 0.0),
        latency_s=elapsed,
        route_taken=route_taken(events, response.deployment),
        events=events,
        request_id=response.request_id,
        call_id=call_id_of(events),
        started_at=started_at,
        finished_at=utcnow(),
    )


def combined_outputs(records: Sequence[tuple[Subtask, Mapping[str, Any]]]) -> str:
    parts = []
    for subtask, record in records:
        if record.get("status") == "done":
            parts.append(f"## {subtask.id}: {subtask.instruction}\n\n{record.get('output', '')}")
        else:
            parts.append(f"## {subtask.id}: {subtask.instruction}\n\n({record.get('status')})")
    return "\n\n".join(parts)


def call_record(stage: str, response: Any, subtask_id: str | None = None) -> dict[str, Any]:
    """A CallRecord dict for one ChatResponse."""
    usage = getattr(response, "usage", None)
    return {
        "stage": stage,
        "subtask_id": subtask_id,
        "deployment": getattr(response, "deployment", None),
        "family": getattr(response, "family", None),
        "jurisdiction": getattr(response, "jurisdiction", None),
        "attempts": int(getattr(response, "attempts", 1) or 1),
        "input_tokens": int(getattr(usage, "input_tokens", 0) or 0),
        "output_tokens": int(getattr(usage, "output_tokens", 0) or 0),
        "cost_usd": float(getattr(response, "cost_usd", 0.0) or 0.0),
        "latency_s": float(getattr(response, "latency_s", 0.0) or 0.0),
        "ok": True,
    }
