"""The agent graph's own errors: plans, threads, checkpoints, leases, approvals, runs.

Import them from :mod:`hybridstack.errors`, whose docstring draws the whole tree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hybridstack.errors._call import NoRouteError
from hybridstack.errors._setup import ConfigurationError, HybridStackError, InvalidRequestError


class GraphError(HybridStackError):
    """Base class of the agent graph's own errors (plans, threads, approvals)."""


class EmptyTaskError(GraphError, InvalidRequestError):
    """The agent was given an empty (or whitespace-only) task."""


class PlanValidationError(GraphError, InvalidRequestError):
    """A plan is not a valid DAG of subtasks; ``problems`` lists each defect.

    ``unknown`` maps a subtask id to the dependency ids it names that do not exist;
    ``cycle`` is the ids of one cycle, first id repeated at the end.
    """

    def __init__(
        self,
        message: str,
        *,
        problems: Sequence[str] = (),
        unknown: Mapping[str, Sequence[str]] | None = None,
        cycle: Sequence[str] = (),
        duplicates: Sequence[str] = (),
    ) -> None:
        self.problems = tuple(problems)
        self.unknown = {k: tuple(v) for k, v in (unknown or {}).items()}
        self.cycle = tuple(cycle)
        self.duplicates = tuple(duplicates)
        super().__init__(message)


class UnroutableSubtaskError(GraphError, NoRouteError):
    """A subtask's skill has no deployment allowed for its data class.

    Raised before dispatch, so no subtask of the run has been sent anywhere yet.
    """

    def __init__(
        self,
        *,
        subtask_id: str,
        skill: str,
        data_class: str,
        cause: NoRouteError | None = None,
    ) -> None:
        self.subtask_id = subtask_id
        self.skill = skill
        self.data_class = data_class
        detail = f": {cause}" if cause is not None else ""
        NoRouteError.__init__(
            self,
            f"subtask {subtask_id!r} cannot be routed: no deployment for skill {skill!r} is "
            f"allowed under data class {data_class!r}{detail}",
            None,
        )
        self.exclusions = dict(getattr(cause, "exclusions", {}) or {})


class UnknownThreadError(GraphError, LookupError):
    """A resume named a thread id the checkpointer has no checkpoint for.

    ``where`` names the checkpoint store that was searched (a file path), so a resume
    pointed at the wrong file says so.
    """

    def __init__(
        self,
        thread_id: str,
        known: Sequence[str] = (),
        *,
        where: str = "",
        store_exists: bool = True,
    ) -> None:
        self.thread_id = thread_id
        self.where = where
        place = f" in {where}" if where else ""
        if known:
            shown = ", ".join(repr(t) for t in list(known)[:5])
            more = f" (and {len(known) - 5} more)" if len(known) > 5 else ""
            hint = f"; known threads: {shown}{more}"
        elif where and not store_exists:
            hint = ", which does not exist: is this the checkpoint file the run used?"
        elif where:
            hint = "; it holds no threads: is this the checkpoint file the run used?"
        else:
            hint = ""
        super().__init__(f"no checkpoint for thread {thread_id!r}{place}{hint}")


class CheckpointError(GraphError):
    """The checkpoint store failed. ``path`` is the store (a file path for SQLite)."""

    def __init__(self, message: str, *, path: str = "", thread_id: str | None = None) -> None:
        self.path = path
        self.thread_id = thread_id
        super().__init__(message)


class CheckpointStoreError(CheckpointError, ConfigurationError):
    """The checkpoint path cannot hold checkpoints: not an SQLite file, not writable, a
    directory… Nothing was run or sent; the message says what to change."""


class CheckpointUnavailableError(CheckpointError):
    """Reading or writing a checkpoint failed during a run (the file stayed locked by
    another process past the busy timeout, the disk is full, an I/O error).

    The run stopped at its last saved step and nothing saved is lost. ``resumable``
    says whether the thread has a saved step (resume it) or none (start it again);
    the message gives the call for either.
    """

    def __init__(
        self,
        detail: str,
        *,
        path: str,
        thread_id: str | None,
        resumable: bool | None = None,
    ) -> None:
        self.detail = detail
        self.resumable = resumable
        message = f"the checkpoint store {path} failed: {detail}"
        if thread_id is not None:
            cli = f"hybridstack run --thread {thread_id} --checkpoints {path}"
            if resumable is False:
                message += (
                    f". Thread {thread_id!r} has no saved step, so there is nothing to resume: "
                    f"start it again with agent.run(task, thread_id={thread_id!r}) "
                    f'(CLI: hybridstack run "TASK" --thread {thread_id} --checkpoints {path})'
                )
            else:
                message += (
                    f". Thread {thread_id!r} stopped at its last saved step (finished subtasks "
                    f"are kept and will not be sent again): once the store is usable, resume "
                    f"it with agent.resume({thread_id!r}) (CLI: {cli})"
                )
        super().__init__(message, path=path, thread_id=thread_id)


class ThreadBusyError(GraphError):
    """Another run holds the thread's lease: two runs of one thread would send its
    unfinished subtasks twice, so this one was refused before sending anything.

    ``holder`` is the :class:`~hybridstack.graph.leases.ThreadLease` in force (its owner,
    host, pid and ``expires_at``). If the holder died, its lease runs out at
    ``expires_at`` (sooner on the same machine, where a dead holder is detected) and the
    thread can then be resumed.
    """

    def __init__(self, thread_id: str, holder: Any, *, same_process: bool = False) -> None:
        self.thread_id = thread_id
        self.holder = holder
        self.expires_at = holder.expires_at
        who = (
            "another run in this process"
            if same_process
            else f"pid {holder.pid} on host {holder.host!r}"
        )
        super().__init__(
            f"thread {thread_id!r} is already being run: {who} holds its lease (owner "
            f"{holder.owner!r}) until {holder.expires_at.isoformat(timespec='seconds')}, "
            f"renewing it while that run goes on. Nothing was sent. Follow that run with "
            f"agent.result({thread_id!r}); if its process has died, resume the thread once "
            f"the lease has run out: agent.resume({thread_id!r})"
        )


class LeaseLostError(GraphError):
    """This run's lease on its thread ran out and another run took the thread over
    (this process stalled past the lease's TTL). The run stopped before sending more;
    the other run carries on from the saved checkpoint."""

    def __init__(self, thread_id: str, owner: str, holder: Any = None) -> None:
        self.thread_id = thread_id
        self.owner = owner
        self.holder = holder
        if holder is not None:
            what = (
                f"ran out and was taken over by owner {holder.owner!r} (pid {holder.pid} on "
                f"host {holder.host!r})"
            )
        else:
            what = "could not be renewed within its TTL, so another run may have taken it over"
        super().__init__(
            f"the lease of thread {thread_id!r} held by {owner!r} {what}; this run stopped "
            f"before sending anything more. Read the thread with agent.result({thread_id!r})"
        )


class PlanRejectedError(GraphError):
    """The plan was rejected at the approval step; nothing was dispatched."""


class RunFailedError(GraphError):
    """Raised by ``RunResult.raise_for_status`` for a failed or partial run."""

    def __init__(self, message: str, result: Any) -> None:
        #: The :class:`~hybridstack.graph.RunResult` of the run.
        self.result = result
        super().__init__(message)
