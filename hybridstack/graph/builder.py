"""Build the agent graph: plan -> preflight -> (approve) -> dispatch <-> workers -> (review)
-> synthesize, as an *uncompiled* LangGraph ``StateGraph``.

Callers add nodes and pick their own checkpointer; :class:`hybridstack.graph.Agent`
compiles it with a SQLite checkpointer and drives it. How a run moves through the nodes
is described in docs/agent.md ("The graph").
"""

from __future__ import annotations

from collections.abc import MutableMapping

from langgraph.graph import END, START, StateGraph

from hybridstack.errors import ConfigurationError
from hybridstack.graph.heuristic_planner import HeuristicPlanner
from hybridstack.graph.llm_planner import LLMPlanner
from hybridstack.graph.nodes import AgentNodes
from hybridstack.graph.planner import Planner
from hybridstack.graph.ports import AgentStack
from hybridstack.graph.state import AgentState, WorkerInput

__all__ = ["build_agent_graph", "resolve_planner"]


def resolve_planner(planner: Planner | str | None) -> Planner:
    """``None``/"auto"/"llm" → LLMPlanner (heuristic fall-back); "heuristic" → HeuristicPlanner."""
    if planner is None or planner in ("auto", "llm"):
        return LLMPlanner()
    if planner == "heuristic":
        return HeuristicPlanner()
    if isinstance(planner, str):
        raise ValueError(f"unknown planner {planner!r}; use 'llm', 'heuristic' or a Planner")
    if not isinstance(planner, Planner):
        raise TypeError(
            f"planner must have a name and an async plan(task, *, stack, data_class, ...) "
            f"method; got {type(planner).__name__}"
        )
    return planner


def build_agent_graph(
    stack: AgentStack,
    *,
    planner: Planner | str | None = None,
    review: bool = False,
    require_approval: bool = False,
    max_concurrency: int = 4,
    stream_tokens: bool | None = None,
    synthesize_single: bool = False,
    error_sink: MutableMapping[str, dict[str, BaseException]] | None = None,
) -> StateGraph[AgentState]:
    """The agent graph as an *uncompiled* ``StateGraph`` (compile it with a checkpointer).

    Args:
        stack: a :class:`hybridstack.Stack`, or anything that satisfies
            :class:`~hybridstack.graph.ports.AgentStack`.
        planner: a :class:`Planner`, ``"llm"`` (default: LLM with heuristic fall-back)
            or ``"heuristic"``. A plan in the input (``user_plan``) skips the planner.
        review: review code subtasks with a second family (and ``compile()`` Python).
        require_approval: pause for plan approval before dispatch (needs a checkpointer).
        max_concurrency: stack calls in flight at once per run (the input's
            ``max_concurrency`` overrides it per run).
        stream_tokens: workers use ``stack.stream`` (True), ``stack.complete`` (False),
            or decide per run from ``config["configurable"]["hybridstack_stream_tokens"]``.
        synthesize_single: also run synthesis when the plan has one subtask.
        error_sink: receives each failed subtask's exception (``{run_id: {subtask_id:
            exc}}``) in this process; the state keeps a serialisable summary either way.

    Input: ``{"task": str, "data_class": str, "run_id": str, "user_plan": [...] | None,
    "max_concurrency": int}``. Output: the :class:`AgentState` (``final["text"]`` is the answer).
    """
    if max_concurrency < 1:
        raise ConfigurationError("max_concurrency must be at least 1")
    nodes = AgentNodes(
        stack,
        planner=resolve_planner(planner),
        review=review,
        require_approval=require_approval,
        max_concurrency=max_concurrency,
        stream_tokens=stream_tokens,
        synthesize_single=synthesize_single,
        error_sink=error_sink,
    )
    builder: StateGraph[AgentState] = StateGraph(AgentState)
    builder.add_node("plan", nodes.plan)
    builder.add_node("preflight", nodes.preflight)
    dispatch_targets: tuple[str, ...] = (
        ("worker", "review", "synthesize") if review else ("worker", "synthesize")
    )
    builder.add_node("dispatch", nodes.dispatch, destinations=dispatch_targets)
    builder.add_node("worker", nodes.worker, input_schema=WorkerInput)
    builder.add_node("synthesize", nodes.synthesize)
    builder.add_edge(START, "plan")
    builder.add_edge("plan", "preflight")
    if require_approval:
        builder.add_node("approve", nodes.approve, destinations=("dispatch", END))
        builder.add_edge("preflight", "approve")
    else:
        builder.add_edge("preflight", "dispatch")
    builder.add_edge("worker", "dispatch")
    if review:
        builder.add_node("review", nodes.review)
        builder.add_edge("review", "synthesize")
    builder.add_edge("synthesize", END)
    return builder
