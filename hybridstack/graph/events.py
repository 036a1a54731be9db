"""Typed events an agent run streams: one pydantic model per kind, discriminated by ``type``.

Nodes emit these through LangGraph's custom stream writer (``get_stream_writer()``);
:meth:`hybridstack.graph.Agent.stream` yields them. :func:`from_execution_event` turns
the executor's ``on_event`` callbacks (fail-over, hedging, retries) into events tagged
with the subtask they belong to, so a UI can show *which* subtask moved *where*.

Parse a serialised event with ``AGENT_EVENT_ADAPTER.validate_python(data)``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from hybridstack.graph.result import RunResult
from hybridstack.graph.state import ErrorSummary, ReviewRecord
from hybridstack.graph.subtasks import Subtask

__all__ = [
    "AGENT_EVENT_ADAPTER",
    "AgentEvent",
    "ApprovalRequested",
    "AttemptFailed",
    "BreakerOpened",
    "DeploymentSkipped",
    "FailedOver",
    "FinalAnswer",
    "Hedged",
    "PlanMade",
    "Retrying",
    "ReviewDone",
    "RouteChosen",
    "RunFinished",
    "RunStarted",
    "Stage",
    "StreamResumedElsewhere",
    "SubtaskDone",
    "SubtaskFailed",
    "SubtaskSkipped",
    "SubtaskStarted",
    "TokenDelta",
    "from_execution_event",
]

#: Which part of the run an event comes from.
Stage = Literal["plan", "work", "review", "synthesize"]


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RunStarted(_Event):
    type: Literal["run_started"] = "run_started"
    thread_id: str
    run_id: str
    task: str
    data_class: str
    #: True when this continues an existing thread (after a crash or an approval).
    resumed: bool = False


class PlanMade(_Event):
    type: Literal["plan_made"] = "plan_made"
    subtasks: list[Subtask]
    #: "user", "llm", "heuristic", "llm→heuristic" or "edited".
    planner: str
    notes: list[str] = Field(default_factory=list)
    #: Subtask ids grouped into dependency waves (each wave runs in parallel).
    waves: list[list[str]] = Field(default_factory=list)


class ApprovalRequested(_Event):
    """The run paused for a human to approve (or edit, or reject) the plan."""

    type: Literal["approval_requested"] = "approval_requested"
    thread_id: str
    subtasks: list[Subtask]


class RouteChosen(_Event):
    """The router's plan for a subtask: first choice, fall-backs and why."""

    type: Literal["route_chosen"] = "route_chosen"
    subtask_id: str
    skill: str
    data_class: str
    deployment: str
    jurisdiction: str = ""
    candidates: list[str] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)
    excluded: dict[str, str] = Field(default_factory=dict)


class SubtaskStarted(_Event):
    type: Literal["subtask_started"] = "subtask_started"
    subtask_id: str
    skill: str
    data_class: str
    depends_on: list[str] = Field(default_factory=list)


class _ExecutionEventBase(_Event):
    #: The subtask the call served; None for the planner's and synthesis calls.
    subtask_id: str | None = None
    stage: Stage = "work"
    deployment: str
    error_kind: str | None = None
    message: str = ""


class AttemptFailed(_ExecutionEventBase):
    type: Literal["attempt_failed"] = "attempt_failed"


class Retrying(_ExecutionEventBase):
    type: Literal["retrying"] = "retrying"
    delay_s: float | None = None


class FailedOver(_ExecutionEventBase):
    type: Literal["failed_over"] = "failed_over"
    to_deployment: str | None = None


class Hedged(_ExecutionEventBase):
    type: Literal["hedged"] = "hedged"
    to_deployment: str | None = None


class StreamResumedElsewhere(_ExecutionEventBase):
    """A stream broke after its first token and continued on another deployment."""

    type: Literal["stream_resumed"] = "stream_resumed"
    to_deployment: str | None = None


class BreakerOpened(_ExecutionEventBase):
    type: Literal["breaker_open"] = "breaker_open"


class DeploymentSkipped(_ExecutionEventBase):
    type: Literal["deployment_skipped"] = "deployment_skipped"


class TokenDelta(_Event):
    type: Literal["token"] = "token"
    subtask_id: str | None = None
    stage: Stage = "work"
    text: str


class SubtaskDone(_Event):
    type: Literal["subtask_done"] = "subtask_done"
    subtask_id: str
    skill: str
    deployment: str
    family: str = ""
    region: str = ""
    jurisdiction: str = ""
    attempts: int = 1
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    route_taken: list[str] = Field(default_factory=list)
    output: str = ""


class SubtaskFailed(_Event):
    type: Literal["subtask_failed"] = "subtask_failed"
    subtask_id: str
    error: ErrorSummary


class SubtaskSkipped(_Event):
    type: Literal["subtask_skipped"] = "subtask_skipped"
    subtask_id: str
    reason: str
    blocked_by: list[str] = Field(default_factory=list)


class ReviewDone(_Event):
    type: Literal["review_done"] = "review_done"
    subtask_id: str
    review: ReviewRecord


class FinalAnswer(_Event):
    type: Literal["final_answer"] = "final_answer"
    text: str
    language: str = ""
    skill: str | None = None
    deployment: str | None = None


class RunFinished(_Event):
    """The last event of a stream: the run's result (also for a paused run)."""

    type: Literal["run_finished"] = "run_finished"
    result: RunResult


AgentEvent = Annotated[
    RunStarted
    | PlanMade
    | ApprovalRequested
    | RouteChosen
    | SubtaskStarted
    | AttemptFailed
    | Retrying
    | FailedOver
    | Hedged
    | StreamResumedElsewhere
    | BreakerOpened
    | DeploymentSkipped
    | TokenDelta
    | SubtaskDone
    | SubtaskFailed
    | SubtaskSkipped
    | ReviewDone
    | FinalAnswer
    | RunFinished,
    Field(discriminator="type"),
]

AGENT_EVENT_ADAPTER: TypeAdapter[AgentEvent] = TypeAdapter(AgentEvent)

_KIND_TO_EVENT: dict[str, type[_ExecutionEventBase]] = {
    "attempt_failed": AttemptFailed,
    "retry": Retrying,
    "failover": FailedOver,
    "hedge": Hedged,
    "resumed": StreamResumedElsewhere,
    "breaker_open": BreakerOpened,
    "skipped": DeploymentSkipped,
}


def _deployment_id(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "id", value))


def from_execution_event(
    event: Any, *, subtask_id: str | None, stage: Stage = "work"
) -> _ExecutionEventBase | None:
    """The typed agent event for one executor ``ExecutionEvent`` (None for unknown kinds)."""
    cls = _KIND_TO_EVENT.get(str(getattr(event, "kind", "")))
    if cls is None:
        return None
    fields: dict[str, Any] = {
        "subtask_id": subtask_id,
        "stage": stage,
        "deployment": _deployment_id(getattr(event, "deployment", None)) or "?",
        "error_kind": getattr(event, "error_kind", None),
        "message": str(getattr(event, "message", "") or ""),
    }
    if "to_deployment" in cls.model_fields:
        fields["to_deployment"] = _deployment_id(getattr(event, "to_deployment", None))
    if "delay_s" in cls.model_fields:
        fields["delay_s"] = getattr(event, "delay_s", None)
    return cls(**fields)


def execution_event_dict(event: Any) -> dict[str, Any]:
    """A JSON-able record of one executor event, kept in the subtask's record."""
    return {
        "kind": str(getattr(event, "kind", "")),
        "deployment": _deployment_id(getattr(event, "deployment", None)),
        "to_deployment": _deployment_id(getattr(event, "to_deployment", None)),
        "error_kind": getattr(event, "error_kind", None),
        "message": str(getattr(event, "message", "") or "")[:500],
        "delay_s": getattr(event, "delay_s", None),
        "call_id": getattr(event, "call_id", None) or None,
    }
