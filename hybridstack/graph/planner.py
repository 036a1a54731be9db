"""Planners: turn a task into a :class:`~hybridstack.graph.subtasks.TaskPlan`.

Two planners share one interface (:class:`Planner`):

* :class:`HeuristicPlanner` needs no model. It splits explicit lists and steps, and
  sentences that ask for separate things, links pieces that refer back ("then translate
  it") to what they refer to, and labels each piece with the skill classifier.
* :class:`LLMPlanner` asks the ``reasoning`` skill for a plan as structured output (the
  JSON schema of the plan model), validates it, retries once with the validation error,
  and then falls back to the heuristic planner. Every step is recorded in the notes, so
  a run's trace shows which planner produced its plan and why.

Neither planner sets data classes: every subtask inherits the run's, so no model can
lower the sensitivity of the data it plans over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from hybridstack.graph.subtasks import TaskPlan

if TYPE_CHECKING:
    from hybridstack.graph.ports import AgentStack, EventCallback

__all__ = ["PlanResult", "Planner"]


@dataclass
class PlanResult:
    """A plan and how it was made."""

    plan: TaskPlan
    #: "llm", "heuristic", "llm→heuristic", or a custom planner's name.
    planner: str
    notes: list[str] = field(default_factory=list)
    #: CallRecord dicts for the model calls the planner made (for the run's totals).
    calls: list[dict[str, Any]] = field(default_factory=list)


@runtime_checkable
class Planner(Protocol):
    """Anything that can plan a task. ``stack`` is the run's Stack (planners may ignore it)."""

    name: str

    async def plan(
        self,
        task: str,
        *,
        stack: AgentStack,
        data_class: str,
        run_id: str | None = None,
        on_event: EventCallback | None = None,
    ) -> PlanResult: ...
