"""Shows an agent run in the terminal as it happens: plan, routes, fail-overs, answer, costs.

Shared by ``hybridstack demo`` and ``hybridstack run``. Events are printed as lines (so
the output reads well in a log or a pipe); a spinner with live status runs beside them
when the terminal is interactive.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text


class AgentView:
    """Consumes an agent's event stream, prints it, and returns the run's result.

    Text that comes from the task, a model or a provider is escaped (or wrapped in
    ``Text``) before it meets Rich markup: a ``[/INST]`` or ``items[i]`` in it must
    neither vanish nor crash the view.
    """

    def __init__(self, console: Console, *, progress: bool = True) -> None:
        self.console = console
        self.progress = progress and console.is_terminal
        self.done = 0
        self.total = 0
        self.failovers = 0

    async def follow(self, events: AsyncIterator[Any]) -> Any:
        status = self.console.status("planning…") if self.progress else None
        result = None
        started = time.perf_counter()
        if status is not None:
            status.start()
        try:
            async for event in events:
                self._show(event)
                if event.type == "run_finished":
                    result = event.result
                if status is not None:
                    elapsed = time.perf_counter() - started
                    status.update(
                        f"{self.done}/{self.total} subtasks done, {self.failovers} fail-over(s), "
                        f"{elapsed:.1f} s"
                    )
        finally:
            if status is not None:
                status.stop()
        return result

    def _show(self, event: Any) -> None:
        print_ = self.console.print
        kind = event.type
        if kind == "plan_made":
            self.total = len(event.subtasks)
            table = Table(title=f"Plan ({event.planner} planner): {self.total} subtask(s)")
            for column in ("id", "skill", "data class", "depends on", "instruction"):
                table.add_column(column, overflow="fold")
            for subtask in event.subtasks:
                instruction = " ".join(subtask.instruction.split())
                table.add_row(
                    Text(subtask.id),
                    Text(subtask.skill),
                    Text(subtask.data_class or ""),
                    Text(", ".join(subtask.depends_on) or "-"),
                    Text(instruction[:110] + ("…" if len(instruction) > 110 else "")),
                )
            print_(table)
        elif kind == "approval_requested":
            print_(f"[yellow]approval needed[/] for thread {escape(event.thread_id)}")
        elif kind == "route_chosen":
            others = [c for c in event.candidates[1:4] if c != event.deployment]
            head = f"{event.subtask_id} ({event.skill}, {event.data_class})"
            print_(
                f"[cyan]route[/]  {escape(head)} → [bold]{escape(event.deployment)}[/] "
                + escape(f"[{event.jurisdiction}]")
                + (escape(f"  then {', '.join(others)}") if others else ""),
                highlight=False,
            )
            if event.reasons:
                print_(f"       why: {'; '.join(event.reasons[:2])}", markup=False)
        elif kind == "attempt_failed":
            where = event.subtask_id or event.stage
            # The error class (retry_here, fail_over …) is the kind of failure, not what
            # was done about it: the action follows on its own line (retried / failed
            # over / gave up).
            print_(
                "[red]fail[/]   "
                + escape(f"{where}: {event.deployment} — {event.message[:90]}")
                + escape(f"  [error class: {event.error_kind}]" if event.error_kind else ""),
                highlight=False,
            )
        elif kind == "failed_over":
            self.failovers += 1
            where = event.subtask_id or event.stage
            print_(
                f"[yellow]action[/] {escape(f'{where}: failed over from {event.deployment}')} → "
                f"[bold]{escape(str(event.to_deployment))}[/]",
                highlight=False,
            )
        elif kind == "retrying":
            print_(
                "[yellow]action[/] "
                + escape(
                    f"{event.subtask_id or event.stage}: retried {event.deployment} "
                    f"after {event.delay_s or 0:.2f} s"
                ),
                highlight=False,
            )
        elif kind == "hedged":
            print_(
                "[magenta]hedge[/]  " + escape(f"{event.deployment} → {event.to_deployment}"),
                highlight=False,
            )
        elif kind == "subtask_done":
            self.done += 1
            print_(
                "[green]done[/]   "
                + escape(
                    f"{event.subtask_id} by {event.deployment} [{event.jurisdiction}] "
                    f"in {event.latency_s * 1000:.0f} ms, {event.attempts} attempt(s), "
                    f"${event.cost_usd:.6f}"
                ),
                highlight=False,
            )
        elif kind == "subtask_failed":
            self.done += 1
            print_(
                "[red]action[/] "
                + escape(f"{event.subtask_id}: gave up — {event.error.message[:200]}"),
                highlight=False,
            )
        elif kind == "subtask_skipped":
            self.done += 1
            print_("[yellow]skip[/]   " + escape(f"{event.subtask_id}: {event.reason}"))
        elif kind == "review_done":
            verdict = "approved" if event.review.approved else "changes requested"
            print_(f"[cyan]review[/] {escape(event.subtask_id)}: {verdict}", highlight=False)


def jurisdiction_table(result: Any) -> Table:
    """Cost and latency per jurisdiction, from the run's ledger."""
    table = Table(title="Cost and latency by jurisdiction (every attempt, failed ones too)")
    for column in (
        "jurisdiction",
        "attempts",
        "ok",
        "failed",
        "tokens in/out",
        "cost",
        "mean latency",
    ):
        table.add_column(column, justify="right" if column != "jurisdiction" else "left")
    rows: dict[str, dict[str, float]] = {}
    for attempt in result.ledger:
        row = rows.setdefault(
            attempt.jurisdiction or "?",
            {"attempts": 0, "ok": 0, "failed": 0, "in": 0, "out": 0, "cost": 0.0, "latency": 0.0},
        )
        row["attempts"] += 1
        row["ok"] += attempt.outcome == "ok"
        row["failed"] += attempt.outcome not in ("ok", "cancelled", "skipped")
        row["in"] += attempt.usage.input_tokens
        row["out"] += attempt.usage.output_tokens
        row["cost"] += attempt.cost_usd
        row["latency"] += attempt.latency_s
    for jurisdiction, row in sorted(rows.items()):
        table.add_row(
            jurisdiction,
            str(int(row["attempts"])),
            str(int(row["ok"])),
            str(int(row["failed"])),
            f"{int(row['in'])}/{int(row['out'])}",
            f"${row['cost']:.6f}",
            f"{row['latency'] / max(row['attempts'], 1) * 1000:.0f} ms",
        )
    return table


def result_summary(result: Any) -> dict[str, Any]:
    """A JSON-friendly summary of a run (for ``--json``)."""
    return {
        "thread_id": result.thread_id,
        "run_id": result.run_id,
        "status": result.status,
        "task": result.task,
        "final_answer": result.final_answer,
        "subtasks": [
            {
                "id": s.id,
                "skill": s.skill,
                "data_class": s.data_class,
                "status": s.status,
                "deployment": s.deployment,
                "jurisdiction": s.jurisdiction,
                "attempts": s.attempts,
                "route_taken": s.route_taken,
                "input_tokens": s.input_tokens,
                "output_tokens": s.output_tokens,
                "cost_usd": s.cost_usd,
                "latency_s": s.latency_s,
                "error": s.error.model_dump(mode="json") if s.error else None,
            }
            for s in result.subtasks
        ],
        "totals": result.totals.model_dump(mode="json"),
    }
