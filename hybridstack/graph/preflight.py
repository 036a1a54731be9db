"""Preflight: a plan's data classes carried along its edges, and every subtask's route checked.

Both run before anything is sent (at plan time, on an edited plan, and on a plan the
caller supplies), so a plan that could not run, or could leak, costs nothing.
"""

from __future__ import annotations

from typing import Any

from hybridstack.errors import NoRouteError
from hybridstack.graph.ports import AgentStack
from hybridstack.graph.prompts import worker_messages
from hybridstack.graph.subtasks import (
    PlanValidationError,
    TaskPlan,
    UnroutableSubtaskError,
    call_route_key,
)
from hybridstack.routing.sovereignty import strictest_data_class

__all__ = ["check_routes", "effective_data_classes"]


def effective_data_classes(stack: AgentStack, plan: TaskPlan) -> tuple[TaskPlan, list[str]]:
    """Carry data classes along dependency edges: a subtask that reads a stricter output
    runs under the stricter class. Raises PlanValidationError when two classes share no
    jurisdiction (the data could go nowhere legally)."""
    by_id = {s.id: s for s in plan}
    resolved: dict[str, str] = {}
    notes: list[str] = []
    for wave in plan.waves():
        for sid in wave:
            s = by_id[sid]
            own = s.data_class or "public"
            classes = [own, *(resolved[d] for d in s.depends_on)]
            best = strictest_data_class(classes, stack.allowed_jurisdictions)
            if best is None:
                raise PlanValidationError(
                    f"subtask {sid!r} (data class {own!r}) depends on outputs of data classes "
                    f"{sorted(set(classes) - {own})} with no jurisdiction allowed for all of "
                    "them; split the plan or change a data class",
                    problems=[f"data class conflict at {sid!r}"],
                )
            if best != own:
                notes.append(f"subtask {sid!r} runs as {best!r} (it reads {best!r} outputs)")
            resolved[sid] = best
    if not notes:
        return plan, notes
    return TaskPlan.model_construct(
        subtasks=tuple(s.model_copy(update={"data_class": resolved[s.id]}) for s in plan)
    ), notes


def check_routes(stack: AgentStack, plan: TaskPlan, task: str) -> dict[str, dict[str, Any]]:
    """Every subtask's planned route, or :class:`UnroutableSubtaskError` for the first
    subtask whose skill has no allowed deployment under its data class."""
    routes: dict[str, dict[str, Any]] = {}
    for s in plan:
        data_class = s.data_class or "public"
        try:
            # Drawn under the key its worker uses, so it is the route the worker takes.
            route = stack.route(
                worker_messages(task, s, {}),
                skill=s.skill,
                data_class=data_class,
                model=s.model,
                route_key=call_route_key(task, s.id, "work"),
            )
        except NoRouteError as error:
            raise UnroutableSubtaskError(
                subtask_id=s.id, skill=s.skill, data_class=data_class, cause=error
            ) from error
        if not route.candidates:
            raise UnroutableSubtaskError(subtask_id=s.id, skill=s.skill, data_class=data_class)
        first = route.candidates[0]
        routes[s.id] = {
            "deployment": first.deployment.id,
            "jurisdiction": first.deployment.jurisdiction,
            "candidates": [c.deployment.id for c in route.candidates],
            "reasons": list(first.reasons),
            "excluded": {str(k): str(v) for k, v in route.excluded.items()},
        }
    return routes
