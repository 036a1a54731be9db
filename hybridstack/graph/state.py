"""The agent graph's state: what is checkpointed between steps, and how writes merge.

Everything in :class:`AgentState` is plain JSON-able data (dicts, lists, strings), never
live objects: a checkpoint must load in another process, after a crash, with another
version of a model class. Pydantic models below (:class:`SubtaskRecord`,
:class:`ErrorSummary`) define the shape of those dicts and convert at the edges.

Parallel workers write to ``results`` in the same step; the :func:`merge_records`
reducer merges their dicts so no write is lost.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AgentState",
    "AttemptError",
    "ErrorSummary",
    "ReviewRecord",
    "SubtaskRecord",
    "SubtaskStatus",
    "WorkerInput",
    "merge_records",
    "summarize_error",
]

SubtaskStatus = Literal["done", "failed", "skipped"]


def merge_records(
    left: Mapping[str, dict[str, Any]] | None, right: Mapping[str, dict[str, Any]] | None
) -> dict[str, dict[str, Any]]:
    """Reducer for ``results``: later records for the same subtask id replace earlier ones."""
    return {**(left or {}), **(right or {})}


class AgentState(TypedDict, total=False):
    """The checkpointed state of one agent run (one LangGraph thread)."""

    #: The user's task, verbatim.
    task: str
    #: The run's data class; subtasks without their own inherit it.
    data_class: str
    #: Tags every ledger attempt of the run (defaults to the thread id).
    run_id: str
    #: Parallel subtasks in flight at most (also LangGraph's config max_concurrency).
    max_concurrency: int
    #: A plan the caller supplied (list of Subtask dicts); the planner is skipped.
    user_plan: list[dict[str, Any]] | None
    #: The plan in force: Subtask dicts, data classes resolved.
    plan: list[dict[str, Any]]
    #: Which planner produced the plan: "user", "llm", "heuristic", "llm→heuristic", "edited".
    planner: str
    #: The planner's trace (retries, fall-backs, normalisations), in order.
    plan_notes: Annotated[list[str], operator.add]
    #: "approved", "edited" or "rejected" when the plan went through approval.
    approval: str | None
    #: Subtask id -> the route the router planned for it (first candidate, reasons).
    routes: Annotated[dict[str, dict[str, Any]], merge_records]
    #: Subtask id -> SubtaskRecord dict, written by workers, dispatch and review.
    results: Annotated[dict[str, dict[str, Any]], merge_records]
    #: Model calls outside the workers (planner, review, synthesis): CallRecord dicts.
    calls: Annotated[list[dict[str, Any]], operator.add]
    #: The synthesis: {"text", "language", "skill", "deployment", ...}.
    final: dict[str, Any] | None


class WorkerInput(TypedDict):
    """What dispatch sends to one worker (a ``Send`` packet, checkpointed with the step)."""

    subtask: dict[str, Any]
    #: Dependency id -> its output text, for the prompt.
    inputs: dict[str, str]
    task: str
    run_id: str
    max_concurrency: int


class AttemptError(BaseModel):
    """One failed attempt inside a subtask's exception group."""

    model_config = ConfigDict(extra="ignore")

    type: str
    message: str
    kind: str | None = None
    deployment: str | None = None
    status: int | None = None
    code: str | None = None


class ErrorSummary(BaseModel):
    """A serialisable summary of why a subtask failed (the exception stays in the process)."""

    model_config = ConfigDict(extra="ignore")

    type: str
    message: str
    kind: str | None = None
    #: Per-attempt errors when the failure was an exception group (every fail-over).
    attempts: list[AttemptError] = Field(default_factory=list)

    def __str__(self) -> str:
        head = f"{self.type}: {self.message.splitlines()[0] if self.message else ''}"
        return f"{head} ({len(self.attempts)} attempts)" if self.attempts else head


def _attempt_error(error: BaseException) -> AttemptError:
    return AttemptError(
        type=type(error).__name__,
        message=str(getattr(error, "message", None) or error),
        kind=getattr(error, "kind", None),
        deployment=getattr(error, "deployment", None),
        status=getattr(error, "status", None),
        code=getattr(error, "code", None),
    )


def summarize_error(error: BaseException) -> ErrorSummary:
    """An :class:`ErrorSummary` of ``error``, flattening an exception group's attempts."""
    attempts: list[AttemptError] = []
    if isinstance(error, BaseExceptionGroup):
        stack: list[BaseException] = list(error.exceptions)
        while stack:
            inner = stack.pop(0)
            if isinstance(inner, BaseExceptionGroup):
                stack[:0] = list(inner.exceptions)
            else:
                attempts.append(_attempt_error(inner))
        message = error.message if isinstance(error.message, str) else str(error)
    else:
        message = str(error)
    return ErrorSummary(
        type=type(error).__name__,
        message=message,
        kind=getattr(error, "kind", None),
        attempts=attempts,
    )


class ReviewRecord(BaseModel):
    """What the review step found for one code subtask, and whether it was revised."""

    model_config = ConfigDict(extra="ignore")

    author_family: str = ""
    reviewer: str | None = None
    reviewer_family: str | None = None
    approved: bool = True
    issues: list[str] = Field(default_factory=list)
    compile_errors: list[str] = Field(default_factory=list)
    revised: bool = False
    reviser: str | None = None
    reviser_family: str | None = None
    #: Compile errors left after the revision (empty when it fixed them).
    revision_compile_errors: list[str] = Field(default_factory=list)
    original_output: str | None = None
    error: str | None = None
    cost_usd: float = 0.0


class SubtaskRecord(BaseModel):
    """The outcome of one subtask as the state keeps it (see ``AgentState.results``)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    status: SubtaskStatus
    skill: str = "general"
    data_class: str = "public"
    output: str = ""
    #: The output parsed as JSON when the subtask declared an output schema.
    data: Any = None
    deployment: str | None = None
    family: str | None = None
    model: str | None = None
    region: str | None = None
    jurisdiction: str | None = None
    attempts: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    #: The provider's request id of the answer (links the record to its ledger attempts).
    request_id: str | None = None
    #: The stack's call id, when the executor reported it (fail-over events carry it).
    call_id: str | None = None
    #: Deployments in the order they were tried, the answering one last.
    route_taken: list[str] = Field(default_factory=list)
    #: The executor's events for this subtask (attempt_failed, failover, hedge …).
    events: list[dict[str, Any]] = Field(default_factory=list)
    error: ErrorSummary | None = None
    skip_reason: str | None = None
    blocked_by: list[str] = Field(default_factory=list)
    review: ReviewRecord | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def failed_over(self) -> bool:
        return len(dict.fromkeys(self.route_taken)) > 1

    def to_state(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def utcnow() -> datetime:
    return datetime.now(UTC)
