"""hybridstack.graph: the LangGraph agent — plan, dispatch subtasks, synthesise, durably.

Names load lazily, so ``import hybridstack.graph`` (or a light submodule such as
``hybridstack.graph.ports``) never imports LangGraph or LangChain until a name is used::

    from hybridstack.graph import Agent, build_agent_graph, HybridChatModel
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> submodule that defines it
_EXPORTS: dict[str, str] = {
    # agent and graph
    "Agent": "hybridstack.graph.agent",
    "DEFAULT_CHECKPOINT_PATH": "hybridstack.graph.agent",
    "build_agent_graph": "hybridstack.graph.builder",
    "AgentState": "hybridstack.graph.state",
    "SubtaskRecord": "hybridstack.graph.state",
    "ErrorSummary": "hybridstack.graph.state",
    # plans
    "Subtask": "hybridstack.graph.subtasks",
    "TaskPlan": "hybridstack.graph.subtasks",
    "Planner": "hybridstack.graph.planner",
    "PlanResult": "hybridstack.graph.planner",
    "HeuristicPlanner": "hybridstack.graph.heuristic_planner",
    "LLMPlanner": "hybridstack.graph.llm_planner",
    # results and events
    "RunResult": "hybridstack.graph.result",
    "SubtaskOutcome": "hybridstack.graph.result",
    "RunTotals": "hybridstack.graph.result",
    "RunFailedError": "hybridstack.graph.result",
    "AgentEvent": "hybridstack.graph.events",
    "AGENT_EVENT_ADAPTER": "hybridstack.graph.events",
    "ApprovalRequested": "hybridstack.graph.events",
    "AttemptFailed": "hybridstack.graph.events",
    "BreakerOpened": "hybridstack.graph.events",
    "DeploymentSkipped": "hybridstack.graph.events",
    "FailedOver": "hybridstack.graph.events",
    "FinalAnswer": "hybridstack.graph.events",
    "Hedged": "hybridstack.graph.events",
    "PlanMade": "hybridstack.graph.events",
    "Retrying": "hybridstack.graph.events",
    "ReviewDone": "hybridstack.graph.events",
    "RouteChosen": "hybridstack.graph.events",
    "RunFinished": "hybridstack.graph.events",
    "RunStarted": "hybridstack.graph.events",
    "StreamResumedElsewhere": "hybridstack.graph.events",
    "SubtaskDone": "hybridstack.graph.events",
    "SubtaskFailed": "hybridstack.graph.events",
    "SubtaskSkipped": "hybridstack.graph.events",
    "SubtaskStarted": "hybridstack.graph.events",
    "TokenDelta": "hybridstack.graph.events",
    # errors
    "GraphError": "hybridstack.graph.subtasks",
    "EmptyTaskError": "hybridstack.graph.subtasks",
    "PlanValidationError": "hybridstack.graph.subtasks",
    "PlanRejectedError": "hybridstack.graph.subtasks",
    "UnknownThreadError": "hybridstack.graph.subtasks",
    "UnroutableSubtaskError": "hybridstack.graph.subtasks",
    "CheckpointError": "hybridstack.graph.subtasks",
    "CheckpointStoreError": "hybridstack.graph.subtasks",
    "CheckpointUnavailableError": "hybridstack.graph.subtasks",
    "ThreadBusyError": "hybridstack.graph.subtasks",
    "LeaseLostError": "hybridstack.graph.subtasks",
    # thread leases
    "ThreadLeases": "hybridstack.graph.leases",
    "ThreadLease": "hybridstack.graph.leases",
    "HeldLease": "hybridstack.graph.leases",
    "InMemoryThreadLeases": "hybridstack.graph.leases",
    "SQLiteThreadLeases": "hybridstack.graph.leases",
    "PostgresThreadLeases": "hybridstack.graph.leases",
    # LangChain interop
    "HybridChatModel": "hybridstack.graph.langchain",
}

__all__ = [
    "AGENT_EVENT_ADAPTER",
    "DEFAULT_CHECKPOINT_PATH",
    "Agent",
    "AgentEvent",
    "AgentState",
    "ApprovalRequested",
    "AttemptFailed",
    "BreakerOpened",
    "CheckpointError",
    "CheckpointStoreError",
    "CheckpointUnavailableError",
    "DeploymentSkipped",
    "EmptyTaskError",
    "ErrorSummary",
    "FailedOver",
    "FinalAnswer",
    "GraphError",
    "Hedged",
    "HeldLease",
    "HeuristicPlanner",
    "HybridChatModel",
    "InMemoryThreadLeases",
    "LLMPlanner",
    "LeaseLostError",
    "PlanMade",
    "PlanRejectedError",
    "PlanResult",
    "PlanValidationError",
    "Planner",
    "PostgresThreadLeases",
    "Retrying",
    "ReviewDone",
    "RouteChosen",
    "RunFailedError",
    "RunFinished",
    "RunResult",
    "RunStarted",
    "RunTotals",
    "SQLiteThreadLeases",
    "StreamResumedElsewhere",
    "Subtask",
    "SubtaskDone",
    "SubtaskFailed",
    "SubtaskOutcome",
    "SubtaskRecord",
    "SubtaskSkipped",
    "SubtaskStarted",
    "TaskPlan",
    "ThreadBusyError",
    "ThreadLease",
    "ThreadLeases",
    "TokenDelta",
    "UnknownThreadError",
    "UnroutableSubtaskError",
    "build_agent_graph",
]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'hybridstack.graph' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # later look-ups skip this hook
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from hybridstack.graph.agent import DEFAULT_CHECKPOINT_PATH, Agent
    from hybridstack.graph.builder import build_agent_graph
    from hybridstack.graph.events import (
        AGENT_EVENT_ADAPTER,
        AgentEvent,
        ApprovalRequested,
        AttemptFailed,
        BreakerOpened,
        DeploymentSkipped,
        FailedOver,
        FinalAnswer,
        Hedged,
        PlanMade,
        Retrying,
        ReviewDone,
        RouteChosen,
        RunFinished,
        RunStarted,
        StreamResumedElsewhere,
        SubtaskDone,
        SubtaskFailed,
        SubtaskSkipped,
        SubtaskStarted,
        TokenDelta,
    )
    from hybridstack.graph.heuristic_planner import HeuristicPlanner
    from hybridstack.graph.langchain import HybridChatModel
    from hybridstack.graph.leases import (
        HeldLease,
        InMemoryThreadLeases,
        PostgresThreadLeases,
        SQLiteThreadLeases,
        ThreadLease,
        ThreadLeases,
    )
    from hybridstack.graph.llm_planner import LLMPlanner
    from hybridstack.graph.planner import Planner, PlanResult
    from hybridstack.graph.result import RunFailedError, RunResult, RunTotals, SubtaskOutcome
    from hybridstack.graph.state import AgentState, ErrorSummary, SubtaskRecord
    from hybridstack.graph.subtasks import (
        CheckpointError,
        CheckpointStoreError,
        CheckpointUnavailableError,
        EmptyTaskError,
        GraphError,
        LeaseLostError,
        PlanRejectedError,
        PlanValidationError,
        Subtask,
        TaskPlan,
        ThreadBusyError,
        UnknownThreadError,
        UnroutableSubtaskError,
    )
