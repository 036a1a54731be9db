"""Threads in the checkpointer: whether one exists, which exist, its status, and the
command that resumes it (answering an approval pause or replacing an unstarted plan)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langgraph.types import Command

from hybridstack.graph.ports import AgentStack
from hybridstack.graph.preflight import check_routes, effective_data_classes
from hybridstack.graph.result import RunStatus
from hybridstack.graph.subtasks import GraphError, PlanInput, TaskPlan

__all__ = ["FINISHED", "resume_command", "run_status", "thread_exists", "thread_ids"]


async def thread_exists(graph: Any, config: dict[str, Any]) -> bool:
    """Whether the checkpointer holds anything for the thread in ``config``."""
    snapshot = await graph.aget_state(config)
    return bool(snapshot.values or snapshot.next)


async def thread_ids(graph: Any, limit: int = 2000) -> list[str]:
    """Thread ids the graph's checkpointer holds, most recent first (at most ``limit``)."""
    saver = graph.checkpointer
    seen: dict[str, None] = {}
    try:
        async for item in saver.alist(None, limit=limit):
            tid = item.config.get("configurable", {}).get("thread_id")
            if tid is not None:
                seen.setdefault(str(tid), None)
    except (NotImplementedError, AttributeError, TypeError):
        return []
    return list(seen)


async def resume_command(
    stack: AgentStack,
    graph: Any,
    config: dict[str, Any],
    snapshot: Any,
    plan: PlanInput | None,
    approve: bool | None,
    reason: str,
) -> Command[Any] | object | None:
    """What resumes a thread: a ``Command`` answering its approval pause, None to continue
    where it stopped, or :data:`FINISHED` when it has nothing left to do. Raises
    GraphError when the request does not fit the thread's state."""
    values = snapshot.values
    waiting = bool(snapshot.interrupts) or "approve" in (snapshot.next or ())
    checked: list[dict[str, Any]] | None = None
    if plan is not None:
        # Check the edit before anything is written: an invalid plan leaves the
        # thread exactly as it was (still paused, or still resumable).
        data_class = values.get("data_class", "public")
        parsed = TaskPlan.parse(plan).with_data_class(data_class)
        parsed, _ = effective_data_classes(stack, parsed)
        check_routes(stack, parsed, values.get("task", ""))
        checked = [s.model_dump(mode="json") for s in parsed]
    if waiting:
        if approve is False:
            return Command(resume={"action": "reject", "reason": reason or "rejected"})
        if checked is not None:
            return Command(resume={"action": "edit", "plan": checked})
        if approve is True:
            return Command(resume={"action": "approve"})
        raise GraphError(
            f"thread {snapshot.config['configurable']['thread_id']!r} is waiting for plan "
            "approval: call agent.approve(thread_id[, plan=...]) or agent.reject(thread_id)"
        )
    if approve is not None:
        raise GraphError("this thread is not waiting for plan approval")
    if not snapshot.next:
        if checked is not None:
            raise GraphError("this thread has finished; start a new run to use another plan")
        return FINISHED
    if checked is not None:
        if values.get("results") or not set(snapshot.next) <= {"plan", "preflight"}:
            raise GraphError(
                "cannot replace the plan of a thread that already dispatched subtasks; "
                "resume it as it is or start a new run"
            )
        # The run stopped before dispatch (e.g. an unroutable subtask): write the new
        # plan as if the planner had made it, so preflight checks it again.
        await graph.aupdate_state(
            config,
            {"plan": checked, "planner": "edited", "plan_notes": ["plan replaced on resume"]},
            as_node="plan",
        )
    return None


#: :func:`resume_command`'s answer for a thread with nothing left to run.
FINISHED = object()


def run_status(values: Mapping[str, Any], snapshot: Any) -> RunStatus:
    """A thread's status from its checkpointed values and snapshot."""
    if values.get("approval") == "rejected":
        return "rejected"
    if snapshot.interrupts or "approve" in (snapshot.next or ()):
        return "awaiting_approval"
    if snapshot.next or values.get("final") is None:
        return "incomplete"
    records = values.get("results") or {}
    plan_ids = [s.get("id") for s in values.get("plan") or []]
    states = [records.get(i, {}).get("status") for i in plan_ids]
    if states and all(s == "done" for s in states):
        return "completed"
    if any(s == "done" for s in states):
        return "partial"
    return "failed"
