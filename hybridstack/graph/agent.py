"""The Agent: compiles the agent graph with a checkpointer and runs, streams and resumes it.

``Agent(stack)`` is the one object most users touch::

    agent = Agent(stack, checkpoint_path="runs.sqlite")
    result = await agent.run("Write a parser, then translate its docs to German")
    async for event in agent.stream(task): ...            # typed events
    result = await agent.resume(thread_id)                 # after a crash
    result = await agent.approve(thread_id, plan=edited)   # with require_approval=True

Every coroutine has a blocking ``*_sync`` twin (``run_sync``, ``stream_sync`` …), like
``Stack.complete``/``complete_sync``. Durability (checkpoints, leases, resume) is
described in docs/agent.md ("Durable runs and resume").
"""

from __future__ import annotations

import contextlib
import os
import uuid
import weakref
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from langgraph.graph import StateGraph

from hybridstack import _sync
from hybridstack._postgres import is_postgres_url, parse_postgres_url
from hybridstack.errors import ConfigurationError, LedgerError
from hybridstack.graph._agent_compat import deprecated_alias
from hybridstack.graph.builder import build_agent_graph
from hybridstack.graph.checkpoints import DEFAULT_BUSY_TIMEOUT_S, shared_saver
from hybridstack.graph.events import (
    AgentEvent,
    ApprovalRequested,
    RunFinished,
    RunStarted,
    _Event,
)
from hybridstack.graph.leases import (
    DEFAULT_LEASE_TTL_S,
    HeldLease,
    InMemoryThreadLeases,
    PostgresThreadLeases,
    SQLiteThreadLeases,
    ThreadLeases,
)
from hybridstack.graph.nodes import CONFIG_LEASE, CONFIG_STREAM_TOKENS
from hybridstack.graph.planner import Planner
from hybridstack.graph.ports import AgentStack
from hybridstack.graph.preflight import check_routes, effective_data_classes
from hybridstack.graph.result import RunResult, build_result
from hybridstack.graph.state import AgentState
from hybridstack.graph.subtasks import (
    CheckpointUnavailableError,
    EmptyTaskError,
    GraphError,
    PlanInput,
    Subtask,
    TaskPlan,
    UnknownThreadError,
)
from hybridstack.graph.threads import (
    FINISHED,
    resume_command,
    run_status,
    thread_exists,
    thread_ids,
)
from hybridstack.types import Attempt

__all__ = ["DEFAULT_CHECKPOINT_PATH", "Agent"]

#: Where runs are checkpointed unless ``checkpoint_path``/``checkpointer`` says otherwise.
DEFAULT_CHECKPOINT_PATH = Path("~/.hybridstack/checkpoints.sqlite")
#: Environment variable overriding :data:`DEFAULT_CHECKPOINT_PATH`.
CHECKPOINT_ENV = "HYBRIDSTACK_CHECKPOINTS"

Durability = Literal["sync", "async", "exit"]


class Agent:
    """Plan → dispatch → workers → synthesise over a :class:`~hybridstack.Stack`, durably.

    Args:
        stack: the stack every model call goes through (routing, fail-over, ledger).
        planner: ``"llm"`` (default; heuristic fall-back), ``"heuristic"`` or a Planner.
        review: have a second family review code subtasks (one revision on failure).
        require_approval: pause before dispatch until :meth:`approve`/:meth:`reject`.
        max_concurrency: stack calls in flight at once per run.
        checkpointer: any LangGraph checkpoint saver, or ``"memory"``; when given, the
            caller owns its lifecycle. Default: SQLite at ``checkpoint_path``.
        checkpoint_path: SQLite file for the default saver (default
            ``$HYBRIDSTACK_CHECKPOINTS`` or ``~/.hybridstack/checkpoints.sqlite``), or a
            ``postgresql://`` URL: checkpoints and thread leases in Postgres, shared by
            hosts (``pip install 'hybridstack[postgres]'``).
        durability: LangGraph durability mode; ``"sync"`` (default) persists every
            finished worker before the next step starts.
        synthesize_single: run the synthesis step even for one-subtask plans.
        leases: who may drive a thread: a :class:`~hybridstack.graph.leases.ThreadLeases`
            store, ``None`` for no leases, or ``"auto"`` (default): a lease table in the
            SQLite checkpoint file, in-memory leases for ``"memory"``, and none for a
            checkpointer you pass (give a store that reaches every process that uses it).
        lease_ttl: seconds a run's lease lasts without renewal (renewed every third of
            it while the run goes on); how long a thread stays refused after its holder
            died on another machine.
        checkpoint_busy_timeout: seconds a checkpoint write waits for another process's
            write lock on the SQLite file before the run stops, resumable, with
            :class:`~hybridstack.graph.CheckpointUnavailableError`.
    """

    def __init__(
        self,
        stack: AgentStack,
        *,
        planner: Planner | str | None = None,
        review: bool = False,
        require_approval: bool = False,
        max_concurrency: int = 4,
        checkpointer: Any = None,
        checkpoint_path: str | os.PathLike[str] | None = None,
        durability: Durability = "sync",
        synthesize_single: bool = False,
        recursion_limit: int = 200,
        leases: ThreadLeases | Literal["auto"] | None = "auto",
        lease_ttl: float = DEFAULT_LEASE_TTL_S,
        checkpoint_busy_timeout: float = DEFAULT_BUSY_TIMEOUT_S,
    ) -> None:
        for name, value in (
            ("lease_ttl", lease_ttl),
            ("checkpoint_busy_timeout", checkpoint_busy_timeout),
        ):
            if not (isinstance(value, int | float) and 0 < value < float("inf")):
                raise ConfigurationError(f"{name} must be a positive number of seconds")
        if not (leases is None or leases == "auto" or isinstance(leases, ThreadLeases)):
            raise ConfigurationError(
                f"leases must be a ThreadLeases store, 'auto' or None, not {leases!r}"
            )
        self.stack = stack
        self.max_concurrency = max_concurrency
        self.require_approval = require_approval
        self.durability: Durability = durability
        self.recursion_limit = recursion_limit
        # Failed subtasks' exception groups from runs in this process (by run id).
        self._errors: dict[str, dict[str, BaseException]] = {}
        self.builder: StateGraph[AgentState] = build_agent_graph(
            stack,
            planner=planner,
            review=review,
            require_approval=require_approval,
            max_concurrency=max_concurrency,
            synthesize_single=synthesize_single,
            error_sink=self._errors,
        )
        in_memory = checkpointer == "memory"
        if in_memory:
            from langgraph.checkpoint.memory import InMemorySaver

            checkpointer = InMemorySaver()
        self._checkpointer = checkpointer
        self._compiled_with_saver: Any = None
        self._compiled_for: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        path = checkpoint_path or os.environ.get(CHECKPOINT_ENV) or DEFAULT_CHECKPOINT_PATH
        #: A ``postgresql://`` checkpoint_path: the Postgres saver and leases use it.
        self.checkpoint_url: str | None = (
            str(path) if checkpointer is None and is_postgres_url(path) else None
        )
        self.checkpoint_path: Path | None = (
            None if checkpointer is not None or self.checkpoint_url else Path(path).expanduser()
        )
        self.checkpoint_busy_timeout = float(checkpoint_busy_timeout)
        self.lease_ttl = float(lease_ttl)
        if leases == "auto":
            if self.checkpoint_url is not None:
                leases = PostgresThreadLeases(
                    self.checkpoint_url, busy_timeout=self.checkpoint_busy_timeout
                )
            elif self.checkpoint_path is not None:
                leases = SQLiteThreadLeases(
                    self.checkpoint_path, busy_timeout=self.checkpoint_busy_timeout
                )
            else:
                leases = InMemoryThreadLeases() if in_memory else None
        #: The lease store guarding threads (None: no leases).
        self.leases: ThreadLeases | None = leases
        self._mermaid: str | None = None

    def __repr__(self) -> str:
        where = (
            type(self._checkpointer).__name__ if self._checkpointer is not None else self._where()
        )
        return f"Agent(stack={self.stack!r}, checkpoints={where})"

    # --- the compiled graph -------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def compiled(self) -> AsyncIterator[Any]:
        """The graph compiled with this agent's checkpointer (opened for the block)."""
        if self._checkpointer is not None:
            if self._compiled_with_saver is None:
                self._compiled_with_saver = self.builder.compile(checkpointer=self._checkpointer)
            yield self._compiled_with_saver
            return
        store = self.checkpoint_url or self.checkpoint_path
        assert store is not None
        async with shared_saver(store, busy_timeout=self.checkpoint_busy_timeout) as saver:
            graph = self._compiled_for.get(saver)
            if graph is None:
                graph = self._compiled_for[saver] = self.builder.compile(checkpointer=saver)
            yield graph

    @contextlib.asynccontextmanager
    async def _holding(self, thread_id: str) -> AsyncIterator[HeldLease | None]:
        """The thread's lease for the block (ThreadBusyError if another run holds it)."""
        if self.leases is None:
            yield None
            return
        async with self.leases.hold(thread_id, ttl=self.lease_ttl) as held:
            yield held

    def _where(self) -> str:
        if self.checkpoint_url is not None:
            return parse_postgres_url(self.checkpoint_url, what="checkpoint store").shown
        return str(self.checkpoint_path) if self.checkpoint_path is not None else ""

    def _missing_file(self, thread_id: str) -> UnknownThreadError | None:
        """Reading a thread from a checkpoint file that does not exist: say so, and do not
        create an empty file as a side effect."""
        if self.checkpoint_path is None or self.checkpoint_path.exists():
            return None
        return UnknownThreadError(thread_id, where=str(self.checkpoint_path), store_exists=False)

    async def _unavailable(
        self, error: CheckpointUnavailableError, thread_id: str, *, saved: bool | None
    ) -> CheckpointUnavailableError:
        """The store failed mid-run: name the thread and say how to go on. ``saved`` None
        means "look": a thread with a saved step is resumed, one without is started again."""
        if saved is None:
            with contextlib.suppress(Exception):
                async with self.compiled() as graph:
                    snapshot = await graph.aget_state(self._config(thread_id, stream_tokens=False))
                    saved = bool(snapshot.values or snapshot.next)
        return CheckpointUnavailableError(
            error.detail, path=error.path, thread_id=thread_id, resumable=saved
        )

    def graph_mermaid(self) -> str:
        """The agent graph as Mermaid (LangGraph's drawing of the compiled graph)."""
        if self._mermaid is None:
            self._mermaid = self.builder.compile().get_graph().draw_mermaid()
        return self._mermaid

    def _config(
        self,
        thread_id: str,
        *,
        stream_tokens: bool,
        max_concurrency: int | None = None,
        lease: HeldLease | None = None,
    ) -> dict[str, Any]:
        configurable: dict[str, Any] = {"thread_id": thread_id, CONFIG_STREAM_TOKENS: stream_tokens}
        if lease is not None:
            configurable[CONFIG_LEASE] = lease
        return {
            "configurable": configurable,
            "max_concurrency": max_concurrency or self.max_concurrency,
            "recursion_limit": self.recursion_limit,
        }

    # --- starting runs ------------------------------------------------------------------

    def _start_input(
        self,
        task: str,
        *,
        data_class: str,
        plan: PlanInput | None,
        thread_id: str | None,
        run_id: str | None,
        max_concurrency: int | None = None,
    ) -> tuple[str, dict[str, Any]]:
        if not isinstance(task, str) or not task.strip():
            raise EmptyTaskError("the task is empty: give the agent something to do")
        if max_concurrency is not None and max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        thread_id = thread_id or f"run-{uuid.uuid4().hex[:12]}"
        user_plan = None
        if plan is not None:
            # Validated here, before anything is checkpointed: a bad plan costs nothing.
            parsed = TaskPlan.parse(plan).with_data_class(data_class)
            parsed, _ = effective_data_classes(self.stack, parsed)
            check_routes(self.stack, parsed, task)
            user_plan = [s.model_dump(mode="json") for s in TaskPlan.parse(plan)]
        return thread_id, {
            "task": task,
            "data_class": data_class,
            "run_id": run_id or thread_id,
            "user_plan": user_plan,
            "max_concurrency": max_concurrency or self.max_concurrency,
        }

    async def run(
        self,
        task: str,
        *,
        data_class: str = "public",
        plan: PlanInput | None = None,
        thread_id: str | None = None,
        run_id: str | None = None,
        max_concurrency: int | None = None,
    ) -> RunResult:
        """Run a task to the end (or to the approval pause) and return its result.

        ``plan`` skips the planner; ``thread_id`` names the run for :meth:`resume`
        (default: a fresh id, in ``result.thread_id``); ``run_id`` tags the ledger
        (default: the thread id); ``max_concurrency`` overrides the agent's for this run.
        """
        result: RunResult | None = None
        async for event in self.stream(
            task,
            data_class=data_class,
            plan=plan,
            thread_id=thread_id,
            run_id=run_id,
            max_concurrency=max_concurrency,
            stream_tokens=False,
        ):
            if isinstance(event, RunFinished):
                result = event.result
        assert result is not None
        return result

    async def stream(
        self,
        task: str,
        *,
        data_class: str = "public",
        plan: PlanInput | None = None,
        thread_id: str | None = None,
        run_id: str | None = None,
        max_concurrency: int | None = None,
        stream_tokens: bool = True,
    ) -> AsyncIterator[AgentEvent]:
        """Run a task, yielding typed events; the last one is :class:`RunFinished`."""
        thread_id, inputs = self._start_input(
            task,
            data_class=data_class,
            plan=plan,
            thread_id=thread_id,
            run_id=run_id,
            max_concurrency=max_concurrency,
        )
        started = False
        try:
            async with self.compiled() as graph, self._holding(thread_id) as lease:
                config = self._config(
                    thread_id,
                    stream_tokens=stream_tokens,
                    max_concurrency=max_concurrency,
                    lease=lease,
                )
                existing = await graph.aget_state(config)
                if existing.values:
                    raise GraphError(
                        f"thread {thread_id!r} already has a run; resume it with "
                        f"agent.resume({thread_id!r}) or pick a new thread_id"
                    )
                started = True
                yield RunStarted(
                    thread_id=thread_id,
                    run_id=inputs["run_id"],
                    task=task,
                    data_class=data_class,
                )
                async for event in self._drive(graph, inputs, config, thread_id):
                    yield event
        except CheckpointUnavailableError as error:
            # Before the run started nothing was saved: it is started again, not resumed.
            raise await self._unavailable(
                error, thread_id, saved=None if started else False
            ) from error

    # --- resuming -----------------------------------------------------------------------

    async def resume(
        self,
        thread_id: str,
        *,
        plan: PlanInput | None = None,
        approve: bool | None = None,
        reason: str = "",
    ) -> RunResult:
        """Continue a thread: after a crash (only unfinished subtasks run), or answer its
        approval pause (``approve=True``, ``approve=False`` to reject, or ``plan=`` to
        run an edited plan). A finished thread just returns its result."""
        result: RunResult | None = None
        async for event in self.stream_resume(
            thread_id, plan=plan, approve=approve, reason=reason, stream_tokens=False
        ):
            if isinstance(event, RunFinished):
                result = event.result
        assert result is not None
        return result

    async def stream_resume(
        self,
        thread_id: str,
        *,
        plan: PlanInput | None = None,
        approve: bool | None = None,
        reason: str = "",
        stream_tokens: bool = True,
    ) -> AsyncIterator[AgentEvent]:
        """Like :meth:`resume`, yielding typed events."""
        missing = self._missing_file(thread_id)
        if missing is not None:
            raise missing
        try:
            async with self.compiled() as graph:
                config = self._config(thread_id, stream_tokens=stream_tokens)
                if not await thread_exists(graph, config):
                    raise UnknownThreadError(
                        thread_id, await thread_ids(graph), where=self._where()
                    )
                async with self._holding(thread_id) as lease:
                    config = self._config(thread_id, stream_tokens=stream_tokens, lease=lease)
                    # Read under the lease: a run that held it a moment ago may have moved
                    # the thread on (or finished it) since.
                    snapshot = await graph.aget_state(config)
                    values = snapshot.values
                    config["max_concurrency"] = (
                        values.get("max_concurrency") or self.max_concurrency
                    )
                    command = await resume_command(
                        self.stack, graph, config, snapshot, plan, approve, reason
                    )
                    yield RunStarted(
                        thread_id=thread_id,
                        run_id=values.get("run_id") or thread_id,
                        task=values.get("task", ""),
                        data_class=values.get("data_class", "public"),
                        resumed=True,
                    )
                    if command is FINISHED:
                        yield RunFinished(result=await self._result(graph, config, thread_id))
                        return
                    async for event in self._drive(graph, command, config, thread_id):
                        yield event
        except CheckpointUnavailableError as error:
            raise await self._unavailable(error, thread_id, saved=True) from error

    async def approve(self, thread_id: str, *, plan: PlanInput | None = None) -> RunResult:
        """Approve a paused plan (or replace it with ``plan``) and run it."""
        return await self.resume(thread_id, plan=plan, approve=True)

    async def reject(self, thread_id: str, reason: str = "") -> RunResult:
        """Reject a paused plan: the run ends with status ``rejected``; nothing is sent."""
        return await self.resume(thread_id, approve=False, reason=reason)

    # --- reading threads ----------------------------------------------------------------

    async def result(self, thread_id: str) -> RunResult:
        """The result of a thread as it stands (finished, paused or interrupted)."""
        missing = self._missing_file(thread_id)
        if missing is not None:
            raise missing
        async with self.compiled() as graph:
            config = self._config(thread_id, stream_tokens=False)
            if not await thread_exists(graph, config):
                raise UnknownThreadError(thread_id, await thread_ids(graph), where=self._where())
            return await self._result(graph, config, thread_id)

    async def threads(self) -> list[str]:
        """Thread ids the checkpointer holds, most recent first."""
        if self.checkpoint_path is not None and not self.checkpoint_path.exists():
            return []
        async with self.compiled() as graph:
            return await thread_ids(graph)

    # --- driving ------------------------------------------------------------------------

    async def _drive(
        self, graph: Any, inputs: Any, config: dict[str, Any], thread_id: str
    ) -> AsyncIterator[AgentEvent]:
        async for mode, chunk in graph.astream(
            inputs,
            config,
            stream_mode=["custom", "updates"],
            durability=self.durability,
        ):
            if mode == "custom":
                if isinstance(chunk, _Event):
                    yield chunk  # type: ignore[misc]
            elif mode == "updates" and isinstance(chunk, Mapping) and "__interrupt__" in chunk:
                for item in chunk["__interrupt__"]:
                    value = getattr(item, "value", None)
                    if isinstance(value, Mapping) and value.get("kind") == "plan_approval":
                        yield ApprovalRequested(
                            thread_id=thread_id,
                            subtasks=[Subtask.model_validate(s) for s in value.get("plan", [])],
                        )
        yield RunFinished(result=await self._result(graph, config, thread_id))

    async def _result(self, graph: Any, config: dict[str, Any], thread_id: str) -> RunResult:
        snapshot = await graph.aget_state(config)
        values = snapshot.values or {}
        status = run_status(values, snapshot)
        run_id = values.get("run_id") or thread_id
        ledger = self.stack.ledger
        attempts: list[Attempt] = []
        by_jurisdiction: Mapping[str, Any] | None = None
        try:
            attempts = list(ledger.attempts(run_id=run_id))
            by_jurisdiction = ledger.totals(run_id=run_id, by="jurisdiction")
        except LedgerError:  # a ledger store that cannot answer must not hide the result
            pass
        result = build_result(
            thread_id=thread_id,
            values=values,
            status=status,
            ledger=attempts,
            ledger_by_jurisdiction=by_jurisdiction,
            graph_mermaid=self.graph_mermaid(),
        )
        errors = self._errors.get(run_id, {})
        result._exceptions = (
            {k: v for k, v in errors.items() if result.subtask(k).status == "failed"}
            if errors
            else {}
        )
        if status not in ("incomplete", "awaiting_approval"):
            self._errors.pop(run_id, None)  # the run is over: do not hold them forever
        return result

    # --- blocking twins -----------------------------------------------------------------

    def run_sync(self, task: str, **kwargs: Any) -> RunResult:
        """Blocking twin of :meth:`run` (refuses inside a running event loop)."""
        return _sync.run_sync(self.run(task, **kwargs), name="run_sync")

    def stream_sync(self, task: str, **kwargs: Any) -> Iterator[AgentEvent]:
        """Blocking twin of :meth:`stream`."""
        return _sync.iterate_sync(self.stream(task, **kwargs), name="stream_sync")

    def resume_sync(self, thread_id: str, **kwargs: Any) -> RunResult:
        """Blocking twin of :meth:`resume`."""
        return _sync.run_sync(self.resume(thread_id, **kwargs), name="resume_sync")

    def stream_resume_sync(self, thread_id: str, **kwargs: Any) -> Iterator[AgentEvent]:
        """Blocking twin of :meth:`stream_resume`."""
        return _sync.iterate_sync(
            self.stream_resume(thread_id, **kwargs), name="stream_resume_sync"
        )

    def approve_sync(self, thread_id: str, *, plan: PlanInput | None = None) -> RunResult:
        """Blocking twin of :meth:`approve`."""
        return _sync.run_sync(self.approve(thread_id, plan=plan), name="approve_sync")

    def reject_sync(self, thread_id: str, reason: str = "") -> RunResult:
        """Blocking twin of :meth:`reject`."""
        return _sync.run_sync(self.reject(thread_id, reason), name="reject_sync")

    def result_sync(self, thread_id: str) -> RunResult:
        """Blocking twin of :meth:`result`."""
        return _sync.run_sync(self.result(thread_id), name="result_sync")

    def threads_sync(self) -> list[str]:
        """Blocking twin of :meth:`threads`."""
        return _sync.run_sync(self.threads(), name="threads_sync")

    # --- the old names (one release) ------------------------------------------------------

    arun = deprecated_alias("arun")
    astream = deprecated_alias("astream")
    aresume = deprecated_alias("aresume")
    astream_resume = deprecated_alias("astream_resume")
    aapprove = deprecated_alias("aapprove")
    areject = deprecated_alias("areject")
    aresult = deprecated_alias("aresult")
    athreads = deprecated_alias("athreads")
