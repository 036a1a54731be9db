"""The Ray batch engine: a pool of Ray actors, each with its own Stack, results streamed back.

``RayEngine()`` attaches to a running Ray (``ray.init`` already called, or ``address``:
``"auto"``, ``"ray://host:10001"``) or starts a local one with ``num_cpus`` CPUs (2 by
default) and shuts it down afterwards. Each actor builds one Stack and one Agent from
the batch's :class:`~hybridstack.batch.WorkerSettings` (so they share what the settings
point at: a Redis health store, a checkpoint store, a ledger) and runs up to
``concurrency`` tasks at once. Each task's record comes back as soon as it finishes.

An actor that dies (its process killed, its node lost) is restarted by Ray and the task
it held is sent again: safe, because the task's thread resumes from its checkpoint and
finished subtasks are not sent twice. Ray is an optional extra: ``hybridstack[ray]``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any

from hybridstack.batch.results import TaskRecord
from hybridstack.batch.tasks import BatchTask
from hybridstack.batch.worker import TaskWorker, WorkerSettings
from hybridstack.errors import ConfigurationError

__all__ = ["RayEngine"]

#: CPUs of the local Ray a RayEngine starts when none is running and no address is given.
DEFAULT_LOCAL_CPUS = 2


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigurationError(
            "the ray engine needs Ray: pip install 'hybridstack[ray]' (or use --engine local)"
        ) from None
    return ray


class _BatchActor:
    """The body of one Ray actor: a TaskWorker living in the actor's process."""

    def __init__(self, settings: dict[str, Any], name: str) -> None:
        self._worker = TaskWorker(WorkerSettings(**settings), name=f"ray:{name}:{os.getpid()}")
        self._opened = False

    async def open(self) -> str:
        if not self._opened:
            await self._worker.open()
            self._opened = True
        return self._worker.name

    async def run(self, task: dict[str, Any]) -> dict[str, Any]:
        await self.open()  # a restarted actor builds its Stack again
        record = await self._worker.run(BatchTask.model_validate(task))
        return record.model_dump(mode="json")

    async def close(self) -> None:
        await self._worker.close()

    def pid(self) -> int:
        return os.getpid()


class RayEngine:
    """Tasks on a pool of Ray actors, one Stack per actor.

    Args:
        address: the Ray cluster to attach to (``ray.init(address=...)``); default: the
            Ray this process already started, else a new local one.
        num_cpus: CPUs of a local Ray started here (default 2).
        actors: actors in the pool (default: the cluster's CPUs, at least 1).
        concurrency: tasks one actor runs at once.
        actor_options: extra ``.options(...)`` for the actors (``num_cpus``, ``resources``,
            ``runtime_env`` …); ``max_restarts``/``max_task_retries`` default to 2/2.
        init_options: extra ``ray.init(...)`` keyword arguments.
    """

    name = "ray"

    def __init__(
        self,
        *,
        address: str | None = None,
        num_cpus: int | None = None,
        actors: int | None = None,
        concurrency: int = 4,
        actor_options: dict[str, Any] | None = None,
        init_options: dict[str, Any] | None = None,
    ) -> None:
        for label, value in (("actors", actors), ("num_cpus", num_cpus)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ConfigurationError(f"{label} must be an integer >= 1, not {value!r}")
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigurationError(f"concurrency must be an integer >= 1, not {concurrency!r}")
        self.address = address
        self.num_cpus = num_cpus
        self.actors = actors
        self.concurrency = concurrency
        self.actor_options = dict(actor_options or {})
        self.init_options = dict(init_options or {})
        #: Pids of the live pool's actors (for tests and the curious), by actor index.
        self.actor_pids: dict[int, int] = {}

    def __repr__(self) -> str:
        where = self.address or "local"
        return f"RayEngine(address={where!r}, actors={self.actors}, concurrency={self.concurrency})"

    def _init(self, ray: Any) -> bool:
        """Attach to or start Ray; True when it was started here (and is ours to stop)."""
        if ray.is_initialized():
            return False
        options: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "logging_level": logging.WARNING,
        }
        options.update(self.init_options)
        if self.address is not None:
            ray.init(address=self.address, **options)
        else:
            options.setdefault("num_cpus", self.num_cpus or DEFAULT_LOCAL_CPUS)
            ray.init(**options)
        return True

    async def run(
        self, tasks: Sequence[BatchTask], settings: WorkerSettings
    ) -> AsyncIterator[TaskRecord]:
        if not tasks:
            return
        ray = import_ray()
        started = await asyncio.to_thread(self._init, ray)
        pool: list[Any] = []
        try:
            size = self.actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
            size = min(size, len(tasks))
            options = {
                "num_cpus": 1,
                "max_restarts": 2,
                "max_task_retries": 2,
                "max_concurrency": self.concurrency + 2,  # + open/close beside the tasks
            }
            options.update(self.actor_options)
            actor_class = ray.remote(_BatchActor)
            plain = dataclasses.asdict(settings)
            pool = [
                actor_class.options(**options).remote(plain, str(index)) for index in range(size)
            ]
            # Build every Stack first: a set-up error (bad config, unknown option) stops
            # the batch here, with its message, before any task is sent.
            try:
                await asyncio.gather(*(actor.open.remote() for actor in pool))
            except ray.exceptions.RayTaskError as error:
                raise _cause(error) from None
            self.actor_pids = dict(
                enumerate(await asyncio.gather(*(actor.pid.remote() for actor in pool)))
            )
            async for record in self._stream(ray, pool, tasks, settings.thread_prefix):
                yield record
        finally:
            for actor in pool:
                try:
                    await asyncio.wait_for(actor.close.remote(), timeout=30)
                except Exception:  # a dead or stuck actor: killed below anyway
                    pass
                ray.kill(actor)
            if started:
                await asyncio.to_thread(ray.shutdown)

    async def _stream(
        self, ray: Any, pool: list[Any], tasks: Sequence[BatchTask], prefix: str
    ) -> AsyncIterator[TaskRecord]:
        """Keep every actor ``concurrency`` tasks busy; yield records as they land."""
        queue = list(reversed(tasks))
        running: dict[asyncio.Future[Any], tuple[int, BatchTask]] = {}

        def submit(index: int) -> None:
            task = queue.pop()
            ref = pool[index].run.remote(task.model_dump(mode="json"))
            running[asyncio.ensure_future(ref)] = (index, task)

        try:
            for _ in range(self.concurrency):
                for index in range(len(pool)):
                    if queue:
                        submit(index)
            while running:
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for future in done:
                    index, task = running.pop(future)
                    yield self._record(ray, future, task, prefix)
                    if queue:
                        submit(index)
        finally:
            for future in running:
                future.cancel()

    @staticmethod
    def _record(ray: Any, future: asyncio.Future[Any], task: BatchTask, prefix: str) -> TaskRecord:
        try:
            return TaskRecord.model_validate(future.result())
        except ray.exceptions.RayError as error:
            # The actor died more often than Ray restarts it, or the task raised outside
            # the worker's own error handling: the task is not finished; a re-run resumes it.
            return TaskRecord(
                id=task.key,
                thread_id=task.thread_id(prefix),
                status="error",
                task=task.task,
                error=_describe(error),
                worker="ray",
                metadata=dict(task.metadata),
            )


#: Characters of a Ray error's text kept in a record (its traceback can be long).
_MAX_ERROR_TEXT = 2000


def _describe(error: BaseException) -> str:
    """A Ray error in words: the actor's own exception (type and message) when Ray carries
    it, else Ray's whole message. Ray's first line is only a traceback header or the
    actor's name, which says nothing about what went wrong."""
    cause = getattr(error, "cause", None)
    if isinstance(cause, BaseException):
        text = " ".join(str(cause).split())
        return f"{type(cause).__name__}: {text}"[:_MAX_ERROR_TEXT]
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}"[:_MAX_ERROR_TEXT]


def _cause(error: Any) -> BaseException:
    """The exception an actor raised, unwrapped from Ray's RayTaskError when possible."""
    cause = getattr(error, "cause", None)
    if isinstance(cause, BaseException):
        return cause
    return ConfigurationError(f"a Ray batch worker could not start: {error}")
