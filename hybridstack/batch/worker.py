"""One batch worker: builds its own Stack and Agent from picklable settings and runs tasks.

Every engine runs tasks through a :class:`TaskWorker`: the local engine one in-process,
the Ray engine one per actor. :class:`WorkerSettings` is plain data (strings, numbers,
dicts), so it crosses to a Ray actor and the actor builds the same Stack there. Health
store, checkpoint and ledger settings are passed through as given (a path or a URL):
the Stack and Agent decide what they accept.

A task either starts its thread or, when the checkpoints already hold it, resumes it:
finished subtasks are not sent again, and a finished thread just returns its result.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from hybridstack.batch.results import TaskRecord, record_from_result
from hybridstack.batch.tasks import DEFAULT_THREAD_PREFIX, BatchTask
from hybridstack.errors import ConfigurationError, HybridStackError

__all__ = ["TaskWorker", "WorkerSettings"]


@dataclass(frozen=True)
class WorkerSettings:
    """How a worker builds its Stack and Agent (plain data: it is pickled to Ray actors).

    Args:
        config: ``hybridstack.toml`` to read (default: ``$HYBRIDSTACK_CONFIG``, then
            ``./hybridstack.toml``, else the defaults).
        offline: run on the built-in emulator (one per worker), like ``run --offline``.
        stack_factory: ``"module:function"`` that returns a Stack, an awaitable of one,
            or an (async) context manager yielding one; called with ``factory_kwargs`` in
            every worker. Replaces ``config``/``offline``/``stack_options``/``ledger``.
        factory_kwargs: keyword arguments for ``stack_factory`` (plain data).
        stack_options: extra ``Stack(...)`` keyword arguments, passed as given (for
            example ``{"health_store": "redis://127.0.0.1:6379/0"}``, ``{"seed": 7}``).
        ledger: ``"memory"``, a SQLite file path, or a URL; default: the config's ledger.
        checkpoints: a SQLite checkpoint file or a URL (``postgresql://...``); default:
            the Agent's (``$HYBRIDSTACK_CHECKPOINTS`` or ``~/.hybridstack/checkpoints.sqlite``).
        agent_options: extra ``Agent(...)`` keyword arguments (``planner``,
            ``max_concurrency``, ``lease_ttl`` …).
        thread_prefix: what every task's thread id starts with.
    """

    config: str | None = None
    offline: bool = False
    stack_factory: str | None = None
    factory_kwargs: Mapping[str, Any] = field(default_factory=dict)
    stack_options: Mapping[str, Any] = field(default_factory=dict)
    ledger: str | None = None
    checkpoints: str | None = None
    agent_options: Mapping[str, Any] = field(default_factory=dict)
    thread_prefix: str = DEFAULT_THREAD_PREFIX


def _is_url(value: str) -> bool:
    return "://" in value


def checkpoint_options(checkpoints: str | None) -> dict[str, Any]:
    """``Agent(...)`` keyword arguments for a checkpoint path or URL.

    The Agent takes both as ``checkpoint_path``: an SQLite file, or a ``postgresql://``
    URL (checkpoints and thread leases in Postgres, shared across hosts).
    """
    if checkpoints is None:
        return {}
    if _is_url(checkpoints) and not checkpoints.startswith(("postgresql://", "postgres://")):
        scheme = checkpoints.split("://", 1)[0]
        raise ConfigurationError(
            f"checkpoints at {scheme}:// URLs are not supported: give --checkpoints an SQLite "
            "file path or a postgresql:// URL"
        )
    return {"checkpoint_path": checkpoints}


def _open_ledger(value: str) -> Any:
    from hybridstack import ledger as ledgers

    if value == "memory":
        return ledgers.MemoryLedger()
    if not _is_url(value) or value.startswith("sqlite://"):
        path = value.removeprefix("sqlite:///") if value.startswith("sqlite://") else value
        return ledgers.SQLiteLedger(os.path.expanduser(path))
    opener = getattr(ledgers, "open_ledger", None)  # ledgers selected by URL, where present
    if opener is None:
        scheme = value.split("://", 1)[0]
        raise ConfigurationError(
            f"{scheme} ledgers not available in this hybridstack: give --ledger a SQLite "
            "file path or 'memory'"
        )
    return opener(value)


def _import_factory(ref: str) -> Any:
    module_name, _, name = ref.partition(":")
    if not module_name or not name:
        raise ConfigurationError(
            f"stack factory {ref!r}: expected 'module:function', e.g. 'myapp.stacks:make_stack'"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigurationError(
            f"stack factory {ref!r}: cannot import {module_name!r} ({error}); it must be "
            "importable in every worker (on Ray: installed, or on the runtime_env's path)"
        ) from None
    factory = getattr(module, name, None)
    if not callable(factory):
        raise ConfigurationError(f"stack factory {ref!r}: {module_name} has no function {name!r}")
    return factory


class TaskWorker:
    """One Stack, one Agent, many tasks (``async with TaskWorker(settings) as w``)."""

    def __init__(self, settings: WorkerSettings, *, stack: Any = None, name: str = "") -> None:
        self.settings = settings
        self.name = name or f"local:{os.getpid()}"
        self._given_stack = stack
        self._exit: contextlib.AsyncExitStack | None = None
        self.stack: Any = None
        self.agent: Any = None

    async def __aenter__(self) -> TaskWorker:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Build the Stack and the Agent (errors here are set-up errors: nothing ran)."""
        from hybridstack.graph import Agent

        exit_stack = contextlib.AsyncExitStack()
        try:
            if self._given_stack is not None:
                self.stack = self._given_stack  # the caller owns it
            else:
                self.stack = await exit_stack.enter_async_context(self._build_stack())
            options = {**checkpoint_options(self.settings.checkpoints)}
            options.update(self.settings.agent_options)
            try:
                self.agent = Agent(self.stack, **options)
            except TypeError as error:
                raise ConfigurationError(f"agent options {sorted(options)}: {error}") from None
        except BaseException:
            await exit_stack.aclose()
            raise
        self._exit = exit_stack

    async def close(self) -> None:
        if self._exit is not None:
            exit_stack, self._exit = self._exit, None
            await exit_stack.aclose()

    @contextlib.asynccontextmanager
    async def _build_stack(self) -> AsyncIterator[Any]:
        settings = self.settings
        if settings.stack_factory is not None:
            made = _import_factory(settings.stack_factory)(**dict(settings.factory_kwargs))
            if inspect.isawaitable(made):
                made = await made
            if hasattr(made, "__aenter__"):
                async with made as stack:
                    yield stack
            elif hasattr(made, "__enter__"):
                with made as stack:
                    yield stack
            else:
                try:
                    yield made
                finally:
                    await made.aclose()
            return
        from hybridstack.config import load_config

        config = load_config(settings.config)
        options = config.stack_options()
        options.update(settings.stack_options)
        ledger = _open_ledger(settings.ledger) if settings.ledger else config.build_ledger()
        options["ledger"] = ledger
        catalog = config.build_catalog()
        try:
            async with contextlib.AsyncExitStack() as exit_stack:
                try:
                    if settings.offline:
                        from hybridstack.emulator.offline import offline_stack

                        stack = await exit_stack.enter_async_context(
                            offline_stack(catalog, **options)
                        )
                    else:
                        from hybridstack.stack import Stack

                        stack = await exit_stack.enter_async_context(Stack(catalog, **options))
                except TypeError as error:
                    if "unexpected keyword" not in str(error):
                        raise
                    raise _unknown_option(error, settings.stack_options) from None
                await stack.warm_up()
                yield stack
        finally:
            close = getattr(ledger, "close", None)
            if close is not None:
                close()

    # --- running tasks ------------------------------------------------------------------

    async def run(self, task: BatchTask) -> TaskRecord:
        """Run (or resume) one task to its end; failures become a record, not an exception,
        so one task's failure never stops the batch."""
        from hybridstack.graph import UnknownThreadError

        assert self.agent is not None, "open the worker first"
        thread_id = task.thread_id(self.settings.thread_prefix)
        try:
            try:
                existing = await self.agent.result(thread_id)
            except UnknownThreadError:
                existing = None
            if existing is None:
                result = await self.agent.run(
                    task.task, data_class=task.data_class, plan=task.plan, thread_id=thread_id
                )
            elif existing.task != task.task:
                return self._error(
                    task,
                    thread_id,
                    f"thread {thread_id!r} in the checkpoints holds another task "
                    f"({existing.task[:60]!r}); give this task its own id, or use another "
                    "thread prefix or checkpoint store",
                )
            else:
                result = await self.agent.resume(thread_id)
        except HybridStackError as error:
            return self._error(task, thread_id, f"{type(error).__name__}: {error}")
        except Exception as error:  # one task's surprise must not stop the others
            return self._error(
                task,
                thread_id,
                f"unexpected {type(error).__name__}: {error} (a bug: please report it)",
            )
        return record_from_result(
            task.key,
            result,
            resumed=existing is not None,
            worker=self.name,
            metadata=task.metadata,
        )

    def _error(self, task: BatchTask, thread_id: str, message: str) -> TaskRecord:
        return TaskRecord(
            id=task.key,
            thread_id=thread_id,
            status="error",
            task=task.task,
            error=message,
            worker=self.name,
            metadata=dict(task.metadata),
        )


def _unknown_option(error: TypeError, given: Mapping[str, Any]) -> ConfigurationError:
    names = [name for name in given if f"'{name}'" in str(error)] or sorted(given)
    return ConfigurationError(
        f"Stack does not take {', '.join(names)}= in this hybridstack ({error}); "
        "remove the option or install the hybridstack that has it (health_store: "
        "hybridstack[redis])"
    )
