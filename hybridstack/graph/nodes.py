"""The agent graph's node functions (plan, preflight, approve, dispatch, worker, review,
synthesize), closed over the stack and the run's settings; docs/agent.md describes the graph."""

from __future__ import annotations

import asyncio
import json
import time
import weakref
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.config import get_stream_writer
from langgraph.graph import END
from langgraph.types import Command, Send, interrupt

from hybridstack.errors import HybridStackError
from hybridstack.graph.events import (
    FinalAnswer,
    PlanMade,
    ReviewDone,
    RouteChosen,
    StreamResumedElsewhere,
    SubtaskDone,
    SubtaskFailed,
    SubtaskSkipped,
    SubtaskStarted,
    TokenDelta,
    execution_event_dict,
    from_execution_event,
)
from hybridstack.graph.planner import Planner
from hybridstack.graph.ports import AgentStack
from hybridstack.graph.preflight import check_routes, effective_data_classes
from hybridstack.graph.prompts import Messages, synthesis_messages, worker_messages
from hybridstack.graph.records import (
    call_id_of,
    call_record,
    combined_outputs,
    done_record,
    parse_approval,
    route_taken,
)
from hybridstack.graph.review import review_code
from hybridstack.graph.state import AgentState, SubtaskRecord, WorkerInput, summarize_error, utcnow
from hybridstack.graph.subtasks import (
    EmptyTaskError,
    GraphError,
    LeaseLostError,
    Subtask,
    TaskPlan,
    call_route_key,
)
from hybridstack.routing.skills.language import detect_language, is_mostly_english, language_name
from hybridstack.routing.sovereignty import strictest_data_class
from hybridstack.types import ChatResponse, FinishEvent, StreamResumed, TextDelta

__all__ = ["CONFIG_LEASE", "CONFIG_STREAM_TOKENS", "AgentNodes"]

#: ``config["configurable"]`` key: workers stream tokens (``stack.stream``) when true.
CONFIG_STREAM_TOKENS = "hybridstack_stream_tokens"
#: ``config["configurable"]`` key: the run's :class:`~hybridstack.graph.leases.HeldLease`;
#: every node checks it before it sends work, so a run whose lease was taken over stops.
CONFIG_LEASE = "hybridstack_lease"


class AgentNodes:
    """The graph's node functions, closed over the stack and the run's settings."""

    def __init__(
        self,
        stack: AgentStack,
        *,
        planner: Planner,
        review: bool,
        require_approval: bool,
        max_concurrency: int,
        stream_tokens: bool | None,
        synthesize_single: bool,
        error_sink: MutableMapping[str, dict[str, BaseException]] | None = None,
    ) -> None:
        self.stack = stack
        #: run id -> subtask id -> the exception (group) itself, for in-process callers;
        #: the checkpoint keeps only the serialisable summary.
        self.error_sink = error_sink
        self.planner = planner
        self.review_enabled = review
        self.require_approval = require_approval
        self.max_concurrency = max_concurrency
        self.stream_tokens = stream_tokens
        self.synthesize_single = synthesize_single
        # Per event loop, per run: a semaphore around stack calls. Keyed by loop because
        # asyncio primitives are bound to the loop they first wait on.
        self._semaphores: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, asyncio.Semaphore]
        ]
        self._semaphores = weakref.WeakKeyDictionary()

    # --- helpers ------------------------------------------------------------------------

    def _semaphore(self, run_id: str, limit: int) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        per_loop = self._semaphores.setdefault(loop, {})
        sem = per_loop.get(run_id)
        if sem is None:
            sem = per_loop[run_id] = asyncio.Semaphore(max(1, limit))
        return sem

    def _release_run(self, run_id: str) -> None:
        try:
            self._semaphores.get(asyncio.get_running_loop(), {}).pop(run_id, None)
        except RuntimeError:
            pass

    @staticmethod
    async def _ensure_lease(config: RunnableConfig | None) -> None:
        """Raise LeaseLostError if another run took this thread over (checked before
        every model call, so a stalled run that lost its lease sends nothing more)."""
        held = ((config or {}).get("configurable") or {}).get(CONFIG_LEASE)
        if held is not None:
            await held.ensure()

    def _streaming(self, config: RunnableConfig | None) -> bool:
        if self.stream_tokens is not None:
            return self.stream_tokens
        return bool(((config or {}).get("configurable") or {}).get(CONFIG_STREAM_TOKENS, False))

    @staticmethod
    def _plan_of(state: Mapping[str, Any]) -> TaskPlan:
        return TaskPlan.model_construct(
            subtasks=tuple(Subtask.model_validate(s) for s in state.get("plan") or [])
        )

    @staticmethod
    def _dump_plan(plan: TaskPlan) -> list[dict[str, Any]]:
        return [s.model_dump(mode="json") for s in plan]

    def _on_event(
        self,
        writer: Callable[[Any], None],
        subtask_id: str | None,
        stage: Any,
        sink: list[dict[str, Any]] | None = None,
    ) -> Callable[[Any], None]:
        def on_event(event: Any) -> None:
            if sink is not None:
                sink.append(execution_event_dict(event))
            typed = from_execution_event(event, subtask_id=subtask_id, stage=stage)
            if typed is not None:
                writer(typed)

        return on_event

    async def _call(
        self,
        messages: Messages,
        *,
        writer: Callable[[Any], None],
        stream: bool,
        subtask_id: str | None,
        stage: Any,
        sink: list[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> ChatResponse:
        """One stack call, streamed (tokens surfaced as TokenDelta) or not."""
        on_event = self._on_event(writer, subtask_id, stage, sink)
        if not stream:
            return await self.stack.complete(messages, on_event=on_event, **kwargs)
        response = None
        async for event in self.stack.stream(messages, on_event=on_event, **kwargs):
            if isinstance(event, TextDelta):
                writer(TokenDelta(subtask_id=subtask_id, stage=stage, text=event.text))
            elif isinstance(event, StreamResumed):
                writer(
                    StreamResumedElsewhere(
                        subtask_id=subtask_id,
                        stage=stage,
                        deployment=event.from_deployment,
                        to_deployment=event.to_deployment,
                        message=event.reason,
                    )
                )
                if sink is not None:
                    sink.append(
                        {
                            "kind": "resumed",
                            "deployment": event.from_deployment,
                            "to_deployment": event.to_deployment,
                            "message": event.reason,
                        }
                    )
            elif isinstance(event, FinishEvent):
                response = event.response
        if response is None:  # a stream must end with FinishEvent; treat otherwise as a bug
            raise GraphError("the stack's stream ended without a finish event")
        return response

    # --- plan ---------------------------------------------------------------------------

    async def plan(self, state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        task = (state.get("task") or "").strip()
        if not task:
            raise EmptyTaskError("the task is empty: give the agent something to do")
        data_class = state.get("data_class") or "public"
        run_id = state.get("run_id")
        writer = get_stream_writer()
        calls: list[dict[str, Any]] = []
        user_plan = state.get("user_plan")
        if user_plan:
            plan = TaskPlan.parse(user_plan)
            planner, notes = "user", ["plan supplied by the caller"]
        else:
            await self._ensure_lease(config)
            result = await self.planner.plan(
                task,
                stack=self.stack,
                data_class=data_class,
                run_id=run_id,
                on_event=self._on_event(writer, None, "plan"),
            )
            plan, planner, notes, calls = result.plan, result.planner, result.notes, result.calls
        plan = plan.with_data_class(data_class)
        writer(PlanMade(subtasks=list(plan), planner=planner, notes=notes, waves=plan.waves()))
        return {
            "plan": self._dump_plan(plan),
            "planner": planner,
            "plan_notes": notes,
            "calls": calls,
        }

    # --- preflight ----------------------------------------------------------------------

    def preflight(self, state: AgentState) -> dict[str, Any]:
        plan, notes = effective_data_classes(self.stack, self._plan_of(state))
        routes = check_routes(self.stack, plan, state.get("task", ""))
        writer = get_stream_writer()
        for s in plan:
            self._emit_route(writer, s, routes[s.id])
        update: dict[str, Any] = {"routes": routes}
        if notes:
            update["plan"] = self._dump_plan(plan)
            update["plan_notes"] = notes
        return update

    @staticmethod
    def _emit_route(writer: Callable[[Any], None], s: Subtask, route: Mapping[str, Any]) -> None:
        writer(
            RouteChosen(
                subtask_id=s.id,
                skill=s.skill,
                data_class=s.data_class or "public",
                deployment=route["deployment"],
                jurisdiction=route.get("jurisdiction", ""),
                candidates=list(route.get("candidates", [])),
                reasons=list(route.get("reasons", [])),
                excluded=dict(route.get("excluded", {})),
            )
        )

    # --- approve ------------------------------------------------------------------------

    def approve(self, state: AgentState) -> Command[Any]:
        answer = interrupt(
            {
                "kind": "plan_approval",
                "task": state.get("task", ""),
                "plan": state.get("plan", []),
                "routes": state.get("routes", {}),
                "how": "resume with {'action': 'approve'}, {'action': 'edit', 'plan': [...]} "
                "or {'action': 'reject', 'reason': '...'}",
            }
        )
        action, payload = parse_approval(answer)
        if action == "reject":
            reason = str(payload or "rejected at approval")
            return Command(
                goto=END,
                update={
                    "approval": "rejected",
                    "plan_notes": [f"plan rejected: {reason}"],
                    "final": {"text": "", "rejected": True, "reason": reason},
                },
            )
        if action == "edit":
            data_class = state.get("data_class") or "public"
            plan = TaskPlan.parse(payload).with_data_class(data_class)
            plan, notes = effective_data_classes(self.stack, plan)
            routes = check_routes(self.stack, plan, state.get("task", ""))
            writer = get_stream_writer()
            writer(PlanMade(subtasks=list(plan), planner="edited", notes=notes, waves=plan.waves()))
            for s in plan:
                self._emit_route(writer, s, routes[s.id])
            return Command(
                goto="dispatch",
                update={
                    "plan": self._dump_plan(plan),
                    "planner": "edited",
                    "approval": "edited",
                    "routes": routes,
                    "plan_notes": ["plan edited at approval", *notes],
                },
            )
        return Command(goto="dispatch", update={"approval": "approved"})

    # --- dispatch -----------------------------------------------------------------------

    def dispatch(self, state: AgentState) -> Command[Any]:
        plan = self._plan_of(state)
        results = dict(state.get("results") or {})
        status = {sid: rec.get("status") for sid, rec in results.items()}
        writer = get_stream_writer()
        skipped: dict[str, dict[str, Any]] = {}
        changed = True
        while changed:  # skipping one subtask can block its own dependants
            changed = False
            for s in plan:
                if s.id in status:
                    continue
                blockers = [d for d in s.depends_on if status.get(d) in ("failed", "skipped")]
                if not blockers:
                    continue
                reason = "; ".join(f"dependency {d!r} {status[d]}" for d in blockers)
                record = SubtaskRecord(
                    id=s.id,
                    status="skipped",
                    skill=s.skill,
                    data_class=s.data_class or "public",
                    skip_reason=reason,
                    blocked_by=blockers,
                    finished_at=utcnow(),
                )
                skipped[s.id] = record.to_state()
                status[s.id] = "skipped"
                changed = True
                writer(SubtaskSkipped(subtask_id=s.id, reason=reason, blocked_by=blockers))
        update: dict[str, Any] = {"results": skipped} if skipped else {}
        ready = [
            s
            for s in plan
            if s.id not in status and all(status.get(d) == "done" for d in s.depends_on)
        ]
        if ready:
            limit = int(state.get("max_concurrency") or self.max_concurrency)
            sends = [
                Send(
                    "worker",
                    WorkerInput(
                        subtask=s.model_dump(mode="json"),
                        inputs={d: str(results[d].get("output", "")) for d in s.depends_on},
                        task=state.get("task", ""),
                        run_id=state.get("run_id") or "",
                        max_concurrency=limit,
                    ),
                )
                for s in ready
            ]
            return Command(update=update or None, goto=sends)
        pending = [s.id for s in plan if s.id not in status]
        if pending:  # cannot happen for a validated DAG; fail loudly rather than hang
            raise GraphError(f"subtasks {pending} can never run (dependency bookkeeping error)")
        wants_review = self.review_enabled and any(
            s.skill == "code" and status.get(s.id) == "done" for s in plan
        )
        return Command(update=update or None, goto="review" if wants_review else "synthesize")

    # --- worker -------------------------------------------------------------------------

    async def worker(self, state: WorkerInput, config: RunnableConfig) -> dict[str, Any]:
        subtask = Subtask.model_validate(state["subtask"])
        data_class = subtask.data_class or "public"
        run_id = state.get("run_id") or None
        writer = get_stream_writer()
        writer(
            SubtaskStarted(
                subtask_id=subtask.id,
                skill=subtask.skill,
                data_class=data_class,
                depends_on=list(subtask.depends_on),
            )
        )
        messages = worker_messages(state["task"], subtask, state.get("inputs") or {})
        events: list[dict[str, Any]] = []
        started_at = utcnow()
        began = time.perf_counter()
        stream = self._streaming(config) and subtask.output_schema is None
        semaphore = self._semaphore(
            run_id or "", int(state.get("max_concurrency") or self.max_concurrency)
        )
        try:
            async with semaphore:
                await self._ensure_lease(config)
                response = await self._call(
                    messages,
                    writer=writer,
                    stream=stream,
                    subtask_id=subtask.id,
                    stage="work",
                    sink=events,
                    skill=subtask.skill,
                    data_class=data_class,
                    response_schema=subtask.output_schema,
                    model=subtask.model,
                    run_id=run_id,
                    metadata={"subtask": subtask.id, "stage": "work"},
                    route_key=call_route_key(state["task"], subtask.id, "work"),
                )
        except LeaseLostError:
            raise  # another run took the thread over: stop, this is no failed subtask
        except HybridStackError as error:
            # Failed after every fail-over: record it and let the run go on where the
            # dependants allow. The exception itself stays here; the state keeps a summary.
            summary = summarize_error(error)
            if self.error_sink is not None:
                self.error_sink.setdefault(run_id or "", {})[subtask.id] = error
            record = SubtaskRecord(
                id=subtask.id,
                status="failed",
                skill=subtask.skill,
                data_class=data_class,
                error=summary,
                events=events,
                route_taken=route_taken(events, None),
                call_id=call_id_of(events),
                latency_s=time.perf_counter() - began,
                started_at=started_at,
                finished_at=utcnow(),
            )
            writer(SubtaskFailed(subtask_id=subtask.id, error=summary))
            return {"results": {subtask.id: record.to_state()}}
        data = None
        if subtask.output_schema is not None:
            try:
                data = json.loads(response.text)
            except ValueError:
                events.append({"kind": "output_not_json", "message": "output is not valid JSON"})
        record = done_record(
            subtask, data_class, response, events, data, started_at, time.perf_counter() - began
        )
        writer(
            SubtaskDone(
                subtask_id=subtask.id,
                skill=subtask.skill,
                deployment=record.deployment or "",
                family=record.family or "",
                region=record.region or "",
                jurisdiction=record.jurisdiction or "",
                attempts=record.attempts,
                input_tokens=record.input_tokens,
                output_tokens=record.output_tokens,
                cost_usd=record.cost_usd,
                latency_s=record.latency_s,
                route_taken=record.route_taken,
                output=record.output,
            )
        )
        return {"results": {subtask.id: record.to_state()}}

    # --- review -------------------------------------------------------------------------

    async def review(self, state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        plan = self._plan_of(state)
        results = state.get("results") or {}
        writer = get_stream_writer()
        run_id = state.get("run_id") or None
        targets = [
            s for s in plan if s.skill == "code" and results.get(s.id, {}).get("status") == "done"
        ]
        limit = int(state.get("max_concurrency") or self.max_concurrency)
        semaphore = self._semaphore(run_id or "", limit)
        calls: list[dict[str, Any]] = []

        async def one(s: Subtask) -> tuple[str, dict[str, Any]]:
            record = SubtaskRecord.model_validate(results[s.id])
            async with semaphore:
                await self._ensure_lease(config)
                review, revised, made = await review_code(
                    self.stack,
                    s,
                    record,
                    run_id=run_id,
                    on_event=self._on_event(writer, s.id, "review"),
                )
            calls.extend(made)
            update: dict[str, Any] = {"review": review}
            # The revision replaces the output unless it compiles worse than the original
            # (the original stays in review.original_output either way).
            if revised is not None and len(review.revision_compile_errors) <= len(
                review.compile_errors
            ):
                update["output"] = revised
            writer(ReviewDone(subtask_id=s.id, review=review))
            return s.id, record.model_copy(update=update).to_state()

        pairs = await asyncio.gather(*(one(s) for s in targets))
        return {"results": dict(pairs), "calls": calls}

    @staticmethod
    def _fallback_final(
        writer: Callable[[Any], None],
        language: str,
        records: Sequence[tuple[Subtask, Mapping[str, Any]]],
        why: str,
    ) -> dict[str, Any]:
        text = combined_outputs(records)
        writer(FinalAnswer(text=text, language=language))
        return {"final": {"text": text, "language": language, "combined": False, "note": why}}

    # --- synthesize ---------------------------------------------------------------------

    async def synthesize(self, state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        plan = self._plan_of(state)
        results = state.get("results") or {}
        task = state.get("task", "")
        run_id = state.get("run_id") or None
        writer = get_stream_writer()
        code = detect_language(task)
        english = is_mostly_english(task)
        language = "English" if english else language_name(code)
        records = [(s, results.get(s.id, {})) for s in plan]
        done = [(s, r) for s, r in records if r.get("status") == "done"]
        self._release_run(run_id or "")
        if not done:
            final = {
                "text": "",
                "language": code,
                "skill": None,
                "deployment": None,
                "note": "no subtask succeeded; nothing to synthesise",
            }
            writer(FinalAnswer(text="", language=code))
            return {"final": final}
        if len(plan) == 1 and not self.synthesize_single:
            # One subtask already answered the whole task: another call would only
            # paraphrase it at extra cost.
            s, r = done[0]
            final = {
                "text": r.get("output", ""),
                "language": code,
                "skill": s.skill,
                "deployment": r.get("deployment"),
            }
            writer(
                FinalAnswer(
                    text=str(r.get("output", "")),
                    language=code,
                    skill=s.skill,
                    deployment=r.get("deployment"),
                )
            )
            return {"final": final}
        skill = "general" if english else "multilingual"
        classes = [
            state.get("data_class") or "public",
            *(s.data_class or "public" for s, _ in done),
        ]
        data_class = strictest_data_class(classes, self.stack.allowed_jurisdictions)
        if data_class is None:
            # Outputs whose data classes share no jurisdiction cannot go to one model
            # together: fail closed and hand back the outputs side by side.
            return self._fallback_final(
                writer, code, records, "the outputs' data classes share no jurisdiction"
            )
        await self._ensure_lease(config)
        try:
            response = await self._call(
                synthesis_messages(task, language, records),
                writer=writer,
                stream=self._streaming(config),
                subtask_id=None,
                stage="synthesize",
                skill=skill,
                data_class=data_class,
                run_id=run_id,
                metadata={"stage": "synthesize"},
                route_key=call_route_key(task, None, "synthesize"),
            )
        except HybridStackError as error:
            # The subtasks' work is done and paid for; a failed synthesis should not
            # throw it away. Hand back the outputs and say why they were not combined.
            update = self._fallback_final(
                writer, code, records, f"synthesis failed: {summarize_error(error)}"
            )
            update["calls"] = [
                {"stage": "synthesize", "ok": False, "error": str(summarize_error(error))}
            ]
            return update
        final = {
            "text": response.text,
            "language": code,
            "skill": skill,
            "deployment": response.deployment,
            "data_class": data_class,
        }
        writer(
            FinalAnswer(
                text=response.text, language=code, skill=skill, deployment=response.deployment
            )
        )
        return {"final": final, "calls": [call_record("synthesize", response)]}
