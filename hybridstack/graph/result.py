"""What an agent run returns: :class:`RunResult`, and how it renders (Markdown, Jupyter HTML).

A result is built from the checkpointed state plus the ledger, so it is the same whether
the run finished in one go or was resumed in another process after a crash. It carries
the final answer, each subtask with the deployment and jurisdiction that answered, its
attempts, tokens, cost and time, run totals, and every ledger attempt of the run.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from hybridstack.graph.state import ErrorSummary, ReviewRecord
from hybridstack.graph.subtasks import GraphError, PlanRejectedError, Subtask, TaskPlan
from hybridstack.types import Attempt

__all__ = ["CallRecord", "RunFailedError", "RunResult", "RunStatus", "RunTotals", "SubtaskOutcome"]

#: ``completed``: every subtask done and an answer synthesised; ``partial``: an answer,
#: but some subtasks failed or were skipped; ``failed``: no subtask succeeded;
#: ``awaiting_approval``: paused before dispatch; ``rejected``: the plan was rejected;
#: ``incomplete``: stopped part-way (the process died, or a step raised): resume it.
RunStatus = Literal["completed", "partial", "failed", "awaiting_approval", "rejected", "incomplete"]


class RunFailedError(GraphError):
    """Raised by :meth:`RunResult.raise_for_status` for a failed or partial run."""

    def __init__(self, message: str, result: RunResult) -> None:
        self.result = result
        super().__init__(message)


class CallRecord(BaseModel):
    """A model call the run made outside the workers (planner, review, synthesis)."""

    model_config = ConfigDict(extra="ignore")

    stage: str
    subtask_id: str | None = None
    deployment: str | None = None
    family: str | None = None
    jurisdiction: str | None = None
    attempts: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    ok: bool = True
    error: str | None = None


class SubtaskOutcome(BaseModel):
    """One subtask of the plan and what became of it."""

    model_config = ConfigDict(extra="ignore")

    id: str
    instruction: str
    skill: str
    data_class: str
    depends_on: list[str] = Field(default_factory=list)
    status: Literal["done", "failed", "skipped", "pending"] = "pending"
    output: str = ""
    data: Any = None
    deployment: str | None = None
    family: str | None = None
    region: str | None = None
    jurisdiction: str | None = None
    attempts: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    route_taken: list[str] = Field(default_factory=list)
    #: What the router planned before dispatch: {"deployment", "candidates", "reasons", …}.
    planned_route: dict[str, Any] | None = None
    events: list[dict[str, Any]] = Field(default_factory=list)
    error: ErrorSummary | None = None
    skip_reason: str | None = None
    blocked_by: list[str] = Field(default_factory=list)
    review: ReviewRecord | None = None
    request_id: str | None = None
    call_id: str | None = None
    #: This subtask's ledger attempts (failed ones too), when the ledger has them.
    attempt_log: list[Attempt] = Field(default_factory=list)

    @property
    def failed_over(self) -> bool:
        """True when the answer came from another deployment than the first one tried."""
        return len(dict.fromkeys(self.route_taken)) > 1


class RunTotals(BaseModel):
    """Sums over the run: every call, failed attempts included."""

    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    #: Attempts on deployments (from the ledger when it has the run, else from the state).
    attempts: int = 0
    failed_attempts: int = 0
    #: Wall time of the workers' calls, summed (parallel calls overlap).
    work_time_s: float = 0.0
    by_jurisdiction: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class RunResult(BaseModel):
    """The outcome of one agent run (one thread)."""

    model_config = ConfigDict(extra="ignore", arbitrary_types_allowed=True)

    thread_id: str
    run_id: str
    task: str
    data_class: str
    status: RunStatus
    final_answer: str = ""
    language: str = ""
    planner: str = ""
    plan_notes: list[str] = Field(default_factory=list)
    approval: str | None = None
    plan: list[Subtask] = Field(default_factory=list)
    subtasks: list[SubtaskOutcome] = Field(default_factory=list)
    calls: list[CallRecord] = Field(default_factory=list)
    totals: RunTotals = Field(default_factory=RunTotals)
    #: Every ledger attempt of the run (``ledger.attempts(run_id=...)``).
    ledger: list[Attempt] = Field(default_factory=list)
    #: The agent graph drawn by LangGraph (``get_graph().draw_mermaid()``).
    graph_mermaid: str | None = None
    # Failed subtasks' exceptions, when they failed in this process (never serialised).
    _exceptions: dict[str, BaseException] = PrivateAttr(default_factory=dict)

    # --- reading ----------------------------------------------------------------------

    @property
    def ok(self) -> bool:
        return self.status == "completed"

    def subtask(self, subtask_id: str) -> SubtaskOutcome:
        for outcome in self.subtasks:
            if outcome.id == subtask_id:
                return outcome
        raise KeyError(f"no subtask {subtask_id!r} in this run")

    @property
    def failed(self) -> list[SubtaskOutcome]:
        return [s for s in self.subtasks if s.status == "failed"]

    @property
    def skipped(self) -> list[SubtaskOutcome]:
        return [s for s in self.subtasks if s.status == "skipped"]

    def exception(self, subtask_id: str) -> BaseException | None:
        """The exception (e.g. ``AllAttemptsFailedError``) a subtask failed with, when it
        failed in this process; the serialisable summary is ``subtask(id).error``."""
        return self._exceptions.get(subtask_id)

    @property
    def task_plan(self) -> TaskPlan | None:
        return TaskPlan.model_construct(subtasks=tuple(self.plan)) if self.plan else None

    def raise_for_status(self) -> RunResult:
        """Return self when completed (or paused for approval); otherwise raise
        :class:`PlanRejectedError` for a rejected plan or :class:`RunFailedError`."""
        if self.status in ("completed", "awaiting_approval"):
            return self
        if self.status == "rejected":
            reason = next(
                (n for n in reversed(self.plan_notes) if n.startswith("plan rejected")), ""
            )
            raise PlanRejectedError(f"run {self.thread_id!r}: {reason or 'plan rejected'}")
        problems = [f"{s.id}: {s.error}" for s in self.failed] + [
            f"{s.id}: skipped ({s.skip_reason})" for s in self.skipped
        ]
        detail = ("\n  - " + "\n  - ".join(problems)) if problems else ""
        error = RunFailedError(f"run {self.thread_id!r} {self.status}{detail}", self)
        causes = [e for e in self._exceptions.values() if isinstance(e, Exception)]
        if causes:
            raise error from ExceptionGroup("failed subtasks", causes)
        raise error

    def dag_mermaid(self) -> str:
        """The subtask DAG as Mermaid, nodes coloured by status."""
        plan = self.task_plan
        if plan is None:
            return "flowchart TD\n    empty[no plan]"
        return plan.to_mermaid({s.id: s.status for s in self.subtasks})

    # --- rendering --------------------------------------------------------------------

    def __str__(self) -> str:
        return self.final_answer

    def __repr__(self) -> str:
        return (
            f"RunResult(thread_id={self.thread_id!r}, status={self.status!r}, "
            f"subtasks={len(self.subtasks)}, cost_usd={self.totals.cost_usd:.6f})"
        )

    def to_markdown(self, *, include_graph: bool = False) -> str:
        """A Markdown report: answer, subtask table, fail-overs, totals and the DAG."""
        out = [f"## Run `{self.thread_id}` — {self.status}", ""]
        out += [f"**Task:** {_md_inline(self.task)}", ""]
        out += [
            f"**Data class:** `{self.data_class}` · **planner:** {self.planner or '—'}"
            + (f" · **approval:** {self.approval}" if self.approval else ""),
            "",
        ]
        if self.final_answer:
            out += ["### Answer", "", self.final_answer, ""]
        out += [
            "### Subtasks",
            "",
            "| id | skill | status | deployment | jurisdiction | attempts | tokens (in/out) "
            "| cost (USD) | time (s) | route |",
            "|---|---|---|---|---|---:|---:|---:|---:|---|",
        ]
        for s in self.subtasks:
            route = " → ".join(s.route_taken) or "—"
            if s.failed_over:
                route = f"**{route}** (fail-over)"
            out.append(
                f"| {s.id} | {s.skill} | {s.status} | {s.deployment or '—'} | "
                f"{s.jurisdiction or '—'} | {s.attempts} | {s.input_tokens}/{s.output_tokens} | "
                f"{s.cost_usd:.6f} | {s.latency_s:.2f} | {route} |"
            )
        out.append("")
        problems = [s for s in self.subtasks if s.status in ("failed", "skipped")]
        if problems:
            out += ["### Problems", ""]
            for s in problems:
                if s.status == "failed" and s.error is not None:
                    out.append(f"- **{s.id}** failed: {_md_inline(str(s.error))}")
                    for a in s.error.attempts:
                        kind = a.kind or a.type
                        out.append(f"  - {a.deployment or '?'}: {kind}: {_md_inline(a.message)}")
                else:
                    out.append(f"- **{s.id}** skipped: {_md_inline(s.skip_reason or '')}")
            out.append("")
        reviewed = [s for s in self.subtasks if s.review is not None]
        if reviewed:
            out += ["### Code review", ""]
            for s in reviewed:
                r = s.review
                assert r is not None
                verdict = "approved" if r.approved and not r.compile_errors else "changes requested"
                line = f"- **{s.id}** reviewed by {r.reviewer or '—'}: {verdict}"
                if r.revised:
                    line += f"; revised by {r.reviser}"
                out.append(line)
            out.append("")
        t = self.totals
        out += [
            "### Totals",
            "",
            f"- cost: ${t.cost_usd:.6f} · tokens: {t.input_tokens} in / {t.output_tokens} out"
            f" · attempts: {t.attempts} ({t.failed_attempts} failed)",
        ]
        for jurisdiction, row in sorted(t.by_jurisdiction.items()):
            out.append(
                f"- {jurisdiction}: {row.get('attempts', 0)} attempts, "
                f"${float(row.get('cost_usd', 0.0)):.6f}"
            )
        out += ["", "### Plan", "", "```mermaid", self.dag_mermaid(), "```", ""]
        if include_graph and self.graph_mermaid:
            out += ["### Agent graph", "", "```mermaid", self.graph_mermaid, "```", ""]
        return "\n".join(out)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def _repr_html_(self) -> str:
        """Jupyter: answer, a table per subtask, the route with fail-overs, Mermaid graphs."""
        esc = html.escape
        status_colour = {
            "completed": "#2b8a3e",
            "partial": "#e67700",
            "failed": "#c92a2a",
            "awaiting_approval": "#1971c2",
            "rejected": "#868e96",
            "incomplete": "#1971c2",
        }.get(self.status, "#495057")
        parts = [
            '<div class="hybridstack-run" style="font-family:system-ui,sans-serif;'
            'font-size:13px;line-height:1.4">',
            f"<div><b>Run</b> <code>{esc(self.thread_id)}</code> "
            f'<span style="color:#fff;background:{status_colour};padding:1px 6px;'
            f'border-radius:4px">{esc(self.status)}</span> · data class '
            f"<code>{esc(self.data_class)}</code> · planner {esc(self.planner or '—')}"
            f" · ${self.totals.cost_usd:.6f} · {self.totals.input_tokens}+"
            f"{self.totals.output_tokens} tokens · {self.totals.attempts} attempts</div>",
            f'<div style="margin:6px 0"><b>Task:</b> {esc(self.task)}</div>',
        ]
        if self.final_answer:
            parts.append(
                '<div style="margin:6px 0;padding:6px;border-left:3px solid #2b8a3e;'
                f'white-space:pre-wrap">{esc(self.final_answer)}</div>'
            )
        for s in self.subtasks:
            parts.append(_subtask_html(s))
        if self.calls:
            rows = "".join(
                f"<tr><td>{esc(c.stage)}</td><td>{esc(c.deployment or '—')}</td>"
                f"<td>{esc(c.jurisdiction or '—')}</td><td>{c.attempts}</td>"
                f"<td>{c.input_tokens}/{c.output_tokens}</td><td>{c.cost_usd:.6f}</td>"
                f"<td>{'ok' if c.ok else esc(c.error or 'failed')}</td></tr>"
                for c in self.calls
            )
            parts.append(
                "<details><summary>Planner / review / synthesis calls</summary>"
                "<table><tr><th>stage</th><th>deployment</th><th>jurisdiction</th>"
                f"<th>attempts</th><th>tokens</th><th>cost</th><th>outcome</th></tr>{rows}"
                "</table></details>"
            )
        if self.totals.by_jurisdiction:
            rows = "".join(
                f"<tr><td>{esc(j)}</td><td>{row.get('attempts', 0)}</td>"
                f"<td>{float(row.get('cost_usd', 0.0)):.6f}</td></tr>"
                for j, row in sorted(self.totals.by_jurisdiction.items())
            )
            parts.append(
                "<details><summary>By jurisdiction</summary><table><tr><th>jurisdiction</th>"
                f"<th>attempts</th><th>cost (USD)</th></tr>{rows}</table></details>"
            )
        if self.plan_notes:
            notes = "".join(f"<li>{esc(n)}</li>" for n in self.plan_notes)
            parts.append(f"<details><summary>Planner trace</summary><ul>{notes}</ul></details>")
        parts.append(_mermaid_html("Plan (subtask DAG)", self.dag_mermaid(), open_=True))
        if self.graph_mermaid:
            parts.append(_mermaid_html("Agent graph", self.graph_mermaid, open_=False))
        parts.append(_MERMAID_SCRIPT)
        parts.append("</div>")
        return "".join(parts)


# --- building -------------------------------------------------------------------------


def build_result(
    *,
    thread_id: str,
    values: Mapping[str, Any],
    status: RunStatus,
    ledger: Sequence[Attempt] = (),
    ledger_by_jurisdiction: Mapping[str, Any] | None = None,
    graph_mermaid: str | None = None,
) -> RunResult:
    """A :class:`RunResult` from a thread's state values and the run's ledger attempts."""
    plan = [Subtask.model_validate(s) for s in values.get("plan") or []]
    results: Mapping[str, Mapping[str, Any]] = values.get("results") or {}
    routes: Mapping[str, Mapping[str, Any]] = values.get("routes") or {}
    outcomes = []
    for s in plan:
        record = dict(results.get(s.id) or {})
        record.pop("id", None)
        outcomes.append(
            SubtaskOutcome(
                id=s.id,
                instruction=s.instruction,
                depends_on=list(s.depends_on),
                planned_route=dict(routes[s.id]) if s.id in routes else None,
                **{
                    "skill": s.skill,
                    "data_class": s.data_class or values.get("data_class", "public"),
                    **record,
                },
            )
        )
    _link_attempts(outcomes, ledger)
    calls = [CallRecord.model_validate(c) for c in values.get("calls") or []]
    final = values.get("final") or {}
    totals = _totals(outcomes, calls, ledger, ledger_by_jurisdiction)
    return RunResult(
        thread_id=thread_id,
        run_id=values.get("run_id") or thread_id,
        task=values.get("task", ""),
        data_class=values.get("data_class", "public"),
        status=status,
        final_answer=final.get("text", ""),
        language=final.get("language", ""),
        planner=values.get("planner", ""),
        plan_notes=list(values.get("plan_notes") or []),
        approval=values.get("approval"),
        plan=plan,
        subtasks=outcomes,
        calls=calls,
        totals=totals,
        ledger=list(ledger),
        graph_mermaid=graph_mermaid,
    )


def _link_attempts(outcomes: Sequence[SubtaskOutcome], ledger: Sequence[Attempt]) -> None:
    """Attach each subtask's ledger attempts: by call id, else via the answer's request id."""
    if not ledger:
        return
    by_request = {a.request_id: a.call_id for a in ledger if a.request_id and a.outcome == "ok"}
    for outcome in outcomes:
        call_id = outcome.call_id or by_request.get(outcome.request_id or "")
        if call_id:
            outcome.call_id = call_id
            outcome.attempt_log = [a for a in ledger if a.call_id == call_id]


def _totals(
    outcomes: Sequence[SubtaskOutcome],
    calls: Sequence[CallRecord],
    ledger: Sequence[Attempt],
    by_jurisdiction: Mapping[str, Any] | None,
) -> RunTotals:
    if ledger:
        # The ledger is the source of truth: it holds failed attempts and hedges too.
        by_j: dict[str, dict[str, Any]] = {}
        for a in ledger:
            row = by_j.setdefault(a.jurisdiction or "?", {"attempts": 0, "cost_usd": 0.0})
            row["attempts"] += 1
            row["cost_usd"] += a.cost_usd
        if by_jurisdiction:
            by_j = {str(k): _as_dict(v) for k, v in by_jurisdiction.items()}
        return RunTotals(
            cost_usd=sum(a.cost_usd for a in ledger),
            input_tokens=sum(a.usage.input_tokens for a in ledger),
            output_tokens=sum(a.usage.output_tokens for a in ledger),
            attempts=len(ledger),
            failed_attempts=sum(1 for a in ledger if a.outcome != "ok"),
            work_time_s=sum(o.latency_s for o in outcomes),
            by_jurisdiction=by_j,
        )
    # No ledger for this run in this process (e.g. a memory ledger after a resume in
    # another process): sum what the checkpointed state recorded.
    rows: list[tuple[str | None, int, int, int, float]] = [
        (o.jurisdiction, o.attempts, o.input_tokens, o.output_tokens, o.cost_usd)
        for o in outcomes
        if o.status == "done"
    ] + [(c.jurisdiction, c.attempts, c.input_tokens, c.output_tokens, c.cost_usd) for c in calls]
    by_j = {}
    for jurisdiction, attempts, _, _, cost in rows:
        row = by_j.setdefault(jurisdiction or "?", {"attempts": 0, "cost_usd": 0.0})
        row["attempts"] += attempts
        row["cost_usd"] += cost
    failed_attempts = sum(len(o.error.attempts) for o in outcomes if o.error is not None)
    return RunTotals(
        cost_usd=sum(r[4] for r in rows),
        input_tokens=sum(r[2] for r in rows),
        output_tokens=sum(r[3] for r in rows),
        attempts=sum(r[1] for r in rows) + failed_attempts,
        failed_attempts=failed_attempts + sum(max(0, r[1] - 1) for r in rows),
        work_time_s=sum(o.latency_s for o in outcomes),
        by_jurisdiction=by_j,
    )


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if hasattr(value, "model_dump"):
        return dict(value.model_dump())
    if hasattr(value, "_asdict"):
        return dict(value._asdict())
    return dict(vars(value))


# --- HTML helpers ---------------------------------------------------------------------

_STATUS_BG = {"done": "#ebfbee", "failed": "#fff5f5", "skipped": "#f8f9fa", "pending": "#fff9db"}

_MERMAID_SCRIPT = (
    # Renders <pre class="mermaid"> blocks where the notebook may load scripts; where it
    # may not (offline, trusted-output off), the Mermaid source stays readable as text.
    '<script type="module">try{const m=(await import('
    '"https://cdn.jsdelivr.net/npm/mermaid@11/dist/mermaid.esm.min.mjs")).default;'
    'm.initialize({startOnLoad:false});await m.run({querySelector:".hybridstack-mermaid"});'
    "}catch(e){}</script>"
)


def _subtask_html(s: SubtaskOutcome) -> str:
    esc = html.escape
    bg = _STATUS_BG.get(s.status, "#fff")
    route_cells = []
    for i, deployment in enumerate(s.route_taken):
        last = i == len(s.route_taken) - 1
        colour = "#2b8a3e" if last and s.status == "done" else "#c92a2a"
        route_cells.append(f'<span style="color:{colour}">{esc(deployment)}</span>')
    route = " → ".join(route_cells) or "—"
    if s.failed_over:
        route = (
            '<span style="background:#fff3bf;padding:0 4px;border-radius:3px">'
            f"fail-over</span> {route}"
        )
    rows = [
        ("instruction", esc(s.instruction)),
        ("skill / data class", f"{esc(s.skill)} / {esc(s.data_class)}"),
        ("depends on", esc(", ".join(s.depends_on)) or "—"),
        ("deployment", esc(s.deployment or "—")),
        ("jurisdiction / region", f"{esc(s.jurisdiction or '—')} / {esc(s.region or '—')}"),
        ("attempts", str(s.attempts)),
        ("tokens in / out", f"{s.input_tokens} / {s.output_tokens}"),
        ("cost (USD)", f"{s.cost_usd:.6f}"),
        ("time (s)", f"{s.latency_s:.3f}"),
        ("route taken", route),
    ]
    if s.planned_route:
        reasons = "; ".join(s.planned_route.get("reasons") or [])
        rows.append(
            (
                "planned route",
                esc(" → ".join(s.planned_route.get("candidates") or []) or "—")
                + (f"<br/><small>{esc(reasons)}</small>" if reasons else ""),
            )
        )
    if s.attempt_log:
        lines = "".join(
            f'<tr style="background:{"#ebfbee" if a.outcome == "ok" else "#fff5f5"}">'
            f"<td>{esc(a.deployment)}</td><td>{esc(a.jurisdiction)}</td>"
            f"<td>{esc(a.outcome)}</td><td>{esc(a.error_type or '')}"
            f"{(': ' + esc(a.error_message[:120])) if a.error_message else ''}</td>"
            f"<td>{a.latency_s:.3f}</td><td>{a.cost_usd:.6f}</td></tr>"
            for a in s.attempt_log
        )
        rows.append(
            (
                "attempts",
                "<table><tr><th>deployment</th><th>jurisdiction</th><th>outcome</th>"
                f"<th>error</th><th>s</th><th>USD</th></tr>{lines}</table>",
            )
        )
    if s.error is not None:
        attempts = "".join(
            f"<li>{esc(a.deployment or '?')}: {esc(a.kind or a.type)}: {esc(a.message)}</li>"
            for a in s.error.attempts
        )
        rows.append(("error", f"{esc(str(s.error))}<ul>{attempts}</ul>"))
    if s.skip_reason:
        rows.append(("skipped", esc(s.skip_reason)))
    if s.review is not None:
        r = s.review
        verdict = "approved" if r.approved and not r.compile_errors else "changes requested"
        text = f"{esc(r.reviewer or '—')}: {verdict}"
        if r.compile_errors:
            text += "<br/>compile: " + esc("; ".join(r.compile_errors))
        if r.revised:
            text += f"<br/>revised by {esc(r.reviser or '?')}"
        rows.append(("review", text))
    if s.output:
        rows.append(
            (
                "output",
                f'<div style="white-space:pre-wrap;max-height:12em;overflow:auto">'
                f"{esc(s.output)}</div>",
            )
        )
    body = "".join(
        f'<tr><th style="text-align:left;padding-right:8px;vertical-align:top">{k}</th>'
        f"<td>{v}</td></tr>"
        for k, v in rows
    )
    return (
        f'<details open style="margin:4px 0;background:{bg};padding:4px;border-radius:4px">'
        f"<summary><b>{esc(s.id)}</b> · {esc(s.skill)} · {esc(s.status)}"
        f"{' · ' + esc(s.deployment) if s.deployment else ''}</summary>"
        f"<table>{body}</table></details>"
    )


def _mermaid_html(title: str, source: str, *, open_: bool) -> str:
    return (
        f"<details{' open' if open_ else ''}><summary>{html.escape(title)}</summary>"
        f'<pre class="mermaid hybridstack-mermaid">{html.escape(source)}</pre></details>'
    )


def _md_inline(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
