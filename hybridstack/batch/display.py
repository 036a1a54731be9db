"""What a person sees of a batch: a live progress bar and the per-jurisdiction cost table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from hybridstack.batch.results import JurisdictionCost, TaskRecord

__all__ = ["BatchProgress", "cost_table"]


class BatchProgress:
    """A progress bar over a batch's tasks: done / total, with failures and resumes counted.

    Tasks finished by an earlier run count as done from the start.
    """

    def __init__(self, console: Console, *, total: int, skipped: int, engine: str) -> None:
        self.console = console
        self.engine = engine
        self.failed = 0
        self.resumed = 0
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._task = self._progress.add_task(
            f"batch ({engine})", total=total, completed=skipped, detail=self._detail(skipped)
        )
        self._skipped = skipped

    def _detail(self, skipped: int | None = None) -> str:
        skipped = self._skipped if skipped is None else skipped
        parts = [f"{skipped} from an earlier run"] if skipped else []
        if self.resumed:
            parts.append(f"{self.resumed} resumed")
        if self.failed:
            parts.append(f"{self.failed} not completed")
        return ", ".join(parts)

    def __enter__(self) -> BatchProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def advance(self, record: TaskRecord) -> None:
        self.resumed += record.resumed
        self.failed += record.status != "completed"
        self._progress.update(self._task, advance=1, detail=self._detail())


def cost_table(costs: Mapping[str, JurisdictionCost], *, title: str | None = None) -> Table:
    """Jurisdiction, calls, attempts, tokens and cost (USD), with a total row."""
    table = Table(
        title=title or "Cost by jurisdiction (every attempt, failed ones too)",
        show_footer=len(costs) > 1,
    )
    total = JurisdictionCost()
    for cost in costs.values():
        total = total.plus(cost)
    columns: list[tuple[str, str, Any]] = [
        ("jurisdiction", "total", "left"),
        ("calls", str(total.calls), "right"),
        ("attempts", str(total.attempts), "right"),
        ("tokens in/out", f"{total.input_tokens}/{total.output_tokens}", "right"),
        ("cost USD", f"${total.cost_usd:.6f}", "right"),
    ]
    for header, footer, justify in columns:
        table.add_column(header, footer=footer, justify=justify)
    for code, cost in costs.items():
        table.add_row(
            code,
            str(cost.calls),
            str(cost.attempts),
            f"{cost.input_tokens}/{cost.output_tokens}",
            f"${cost.cost_usd:.6f}",
        )
    return table
