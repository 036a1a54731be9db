"""``Batch``: many agent tasks from a JSONL file, resumable, on a local or a Ray engine.

::

    report = await Batch("tasks.jsonl", engine="local", offline=True).run()
    report = Batch("tasks.jsonl", engine="ray", checkpoints="runs.sqlite").run_sync()
    print(report.costs)                       # {"EU": JurisdictionCost(...), ...}

The batch reads the results file first: tasks with a finished record are skipped; every
other task is sent to the engine, which starts its thread or resumes it from the
checkpoint an interrupted run left (finished subtasks are not sent again). Each record
is written to the results file as it arrives, so a batch killed at any moment is
resumed by running it again.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from hybridstack._sync import run_sync
from hybridstack.batch.engines import Engine, LocalEngine, engine_from
from hybridstack.batch.results import (
    JurisdictionCost,
    ResultsFile,
    TaskRecord,
    costs_by_jurisdiction,
)
from hybridstack.batch.tasks import DEFAULT_THREAD_PREFIX, BatchTask, load_tasks, parse_tasks
from hybridstack.batch.worker import WorkerSettings
from hybridstack.errors import ConfigurationError

__all__ = ["Batch", "BatchReport", "default_output_path", "run_batch", "run_batch_sync"]

TasksInput = str | os.PathLike[str] | Iterable[BatchTask | Mapping[str, Any]]


class BatchReport(BaseModel):
    """How a batch went: counts, every task's latest record, and the cost table."""

    output: str
    engine: str
    #: Tasks in the task file.
    total: int
    #: Tasks finished by an earlier run, not run again.
    skipped: int = 0
    #: Tasks run this time (started or resumed).
    ran: int = 0
    #: Of those, how many went on from an earlier run's checkpoint.
    resumed: int = 0
    #: Every task's latest record, in task-file order (tasks never run are missing).
    records: list[TaskRecord] = Field(default_factory=list)
    #: Cost per jurisdiction over every task of the file (earlier runs' records too).
    costs: dict[str, JurisdictionCost] = Field(default_factory=dict)

    def count(self, status: str) -> int:
        return sum(1 for r in self.records if r.status == status)

    @property
    def completed(self) -> int:
        return self.count("completed")

    @property
    def ok(self) -> bool:
        """Every task of the file completed."""
        return self.completed == self.total

    @property
    def cost_usd(self) -> float:
        return sum(c.cost_usd for c in self.costs.values())


def default_output_path(tasks_path: str | os.PathLike[str]) -> Path:
    """``tasks.jsonl`` -> ``tasks.results.jsonl`` beside it."""
    path = Path(tasks_path).expanduser()
    return path.with_name(f"{path.stem}.results.jsonl")


class Batch:
    """Many agent tasks, each in its own resumable thread (see the module docstring).

    Args:
        tasks: a JSONL file path, or task dicts / :class:`BatchTask` objects.
        output: the results JSONL (default for a file: ``<name>.results.jsonl`` beside it).
        engine: ``"local"`` (one process), ``"ray"`` or an :class:`Engine`.
        concurrency: tasks at once (local: in this process; ray: per actor).
        stack: a Stack to run on (local engine only; yours to close), or
            ``"module:function"`` building one in every worker (with ``factory_kwargs``).
        config, offline, stack_options, ledger, checkpoints, agent_options, thread_prefix:
            how each worker builds its Stack and Agent (see :class:`WorkerSettings`;
            health store, checkpoint and ledger URLs are passed through as given).
        ray_address, ray_cpus, actors: for ``engine="ray"`` (see :class:`RayEngine`).
        progress: draw a progress bar (on ``console``, default stderr).
        on_record: called with every record as it is written.
    """

    def __init__(
        self,
        tasks: TasksInput,
        *,
        output: str | os.PathLike[str] | None = None,
        engine: str | Engine = "local",
        concurrency: int = 4,
        stack: Any = None,
        factory_kwargs: Mapping[str, Any] | None = None,
        config: str | os.PathLike[str] | None = None,
        offline: bool = False,
        stack_options: Mapping[str, Any] | None = None,
        ledger: str | os.PathLike[str] | None = None,
        checkpoints: str | os.PathLike[str] | None = None,
        agent_options: Mapping[str, Any] | None = None,
        thread_prefix: str = DEFAULT_THREAD_PREFIX,
        ray_address: str | None = None,
        ray_cpus: int | None = None,
        actors: int | None = None,
        progress: bool = False,
        console: Any = None,
        on_record: Callable[[TaskRecord], None] | None = None,
    ) -> None:
        if isinstance(tasks, str | os.PathLike):
            self.tasks = load_tasks(tasks)
            if output is None:
                output = default_output_path(tasks)
        else:
            self.tasks = parse_tasks(list(tasks))
        if output is None:
            raise ConfigurationError(
                "give output= (the results JSONL): it is how a re-run knows what finished"
            )
        self.results = ResultsFile(output)
        factory = stack if isinstance(stack, str) else None
        if stack is not None and factory is None:
            if engine != "local":
                raise ConfigurationError(
                    "a Stack object cannot be sent to other processes: for the ray engine "
                    "give stack='module:function' (called in every actor) or a config"
                )
            self.engine: Engine = LocalEngine(concurrency=concurrency, stack=stack)
        else:
            self.engine = engine_from(
                engine,
                concurrency=concurrency,
                ray_address=ray_address,
                ray_cpus=ray_cpus,
                actors=actors,
            )
        self.settings = WorkerSettings(
            config=None if config is None else str(config),
            offline=offline,
            stack_factory=factory,
            factory_kwargs=dict(factory_kwargs or {}),
            stack_options=dict(stack_options or {}),
            ledger=None if ledger is None else str(ledger),
            checkpoints=None if checkpoints is None else str(checkpoints),
            agent_options=dict(agent_options or {}),
            thread_prefix=thread_prefix,
        )
        self.progress = progress
        self.console = console
        self.on_record = on_record
        #: The report of the last :meth:`run` (also filled while :meth:`stream` goes on).
        self.report: BatchReport | None = None

    def __repr__(self) -> str:
        return f"Batch({len(self.tasks)} tasks, engine={self.engine!r}, output={self.results.path})"

    async def stream(self) -> AsyncIterator[TaskRecord]:
        """Run the unfinished tasks, yielding each record once it is on disk."""
        earlier = self.results.read()
        todo = [t for t in self.tasks if not (t.key in earlier and earlier[t.key].finished)]
        latest = dict(earlier)
        report = self.report = BatchReport(
            output=str(self.results.path),
            engine=self.engine.name,
            total=len(self.tasks),
            skipped=len(self.tasks) - len(todo),
        )
        bar = None
        if self.progress:
            from rich.console import Console

            from hybridstack.batch.display import BatchProgress

            console = self.console or Console(stderr=True)
            bar = BatchProgress(
                console, total=len(self.tasks), skipped=report.skipped, engine=self.engine.name
            )
            bar.__enter__()
        try:
            with self.results.open() as out:
                async for record in self.engine.run(todo, self.settings):
                    out.write(record)
                    latest[record.id] = record
                    report.ran += 1
                    report.resumed += record.resumed
                    if bar is not None:
                        bar.advance(record)
                    if self.on_record is not None:
                        self.on_record(record)
                    yield record
        finally:
            if bar is not None:
                bar.__exit__(None, None, None)
            report.records = [latest[t.key] for t in self.tasks if t.key in latest]
            report.costs = costs_by_jurisdiction(report.records)

    async def run(self) -> BatchReport:
        """Run the batch to its end and return the report."""
        async for _ in self.stream():
            pass
        assert self.report is not None
        return self.report

    def run_sync(self) -> BatchReport:
        """Blocking twin of :meth:`run` (refuses inside a running event loop)."""
        return run_sync(self.run(), name="run_sync")


async def run_batch(tasks: TasksInput, **options: Any) -> BatchReport:
    """``await run_batch("tasks.jsonl", engine="ray", ...)``: :class:`Batch` in one call."""
    return await Batch(tasks, **options).run()


def run_batch_sync(tasks: TasksInput, **options: Any) -> BatchReport:
    """Blocking twin of :func:`run_batch`."""
    return run_sync(run_batch(tasks, **options), name="run_batch_sync")
