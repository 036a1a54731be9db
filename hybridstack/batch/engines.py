"""Batch engines: the seam that decides where tasks run, and the local (one process) engine.

An :class:`Engine` takes the tasks still to run and the workers' settings and yields one
:class:`~hybridstack.batch.TaskRecord` per task as each finishes, in any order. The
batch (:class:`~hybridstack.batch.Batch`) writes the records and draws the progress; an
engine only runs. :class:`LocalEngine` runs tasks on one event loop in this process, at
most ``concurrency`` at once; :class:`~hybridstack.batch.RayEngine` runs them on a pool
of Ray actors.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol, runtime_checkable

from hybridstack.batch.results import TaskRecord
from hybridstack.batch.tasks import BatchTask
from hybridstack.batch.worker import TaskWorker, WorkerSettings
from hybridstack.errors import ConfigurationError

__all__ = ["Engine", "LocalEngine", "engine_from"]


@runtime_checkable
class Engine(Protocol):
    """Where a batch's tasks run."""

    #: ``"local"``, ``"ray"`` … (shown in the progress line and the report).
    name: str

    def run(
        self, tasks: Sequence[BatchTask], settings: WorkerSettings
    ) -> AsyncIterator[TaskRecord]:
        """Run every task; yield each one's record as it finishes."""
        ...


class LocalEngine:
    """All tasks in this process, ``concurrency`` at a time, over one Stack.

    ``stack``: run on this Stack (yours: it is neither built nor closed here) instead of
    one built from the settings.
    """

    name = "local"

    def __init__(self, *, concurrency: int = 4, stack: Any = None) -> None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigurationError(f"concurrency must be an integer >= 1, not {concurrency!r}")
        self.concurrency = concurrency
        self.stack = stack

    def __repr__(self) -> str:
        return f"LocalEngine(concurrency={self.concurrency})"

    async def run(
        self, tasks: Sequence[BatchTask], settings: WorkerSettings
    ) -> AsyncIterator[TaskRecord]:
        if not tasks:
            return
        async with TaskWorker(settings, stack=self.stack) as worker:
            pending = iter(tasks)
            running: set[asyncio.Task[TaskRecord]] = set()
            try:
                for task in pending:
                    running.add(asyncio.create_task(worker.run(task)))
                    if len(running) >= self.concurrency:
                        break
                while running:
                    done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                    for finished in done:
                        yield finished.result()
                        following = next(pending, None)
                        if following is not None:
                            running.add(asyncio.create_task(worker.run(following)))
            finally:
                for leftover in running:
                    leftover.cancel()
                if running:
                    await asyncio.gather(*running, return_exceptions=True)


def engine_from(
    engine: str | Engine,
    *,
    concurrency: int = 4,
    ray_address: str | None = None,
    ray_cpus: int | None = None,
    actors: int | None = None,
) -> Engine:
    """An engine from its name (``"local"``, ``"ray"``) or an engine object."""
    if isinstance(engine, str):
        if engine == "local":
            return LocalEngine(concurrency=concurrency)
        if engine == "ray":
            from hybridstack.batch.ray_engine import RayEngine

            return RayEngine(
                address=ray_address, num_cpus=ray_cpus, actors=actors, concurrency=concurrency
            )
        raise ConfigurationError(f"unknown batch engine {engine!r}: choose 'local' or 'ray'")
    if isinstance(engine, Engine):
        return engine
    raise ConfigurationError(
        f"engine must be 'local', 'ray' or an Engine object, not {type(engine).__name__}"
    )
