"""hybridstack's exceptions, all of them: the error taxonomy that decides every resilience step.

Every provider failure is translated once, at the adapter boundary, into exactly one
of five provider-error kinds. What the executor does next depends on the kind alone,
never on which SDK raised it. Each branch of the tree is a decision a caller makes::

    HybridStackError
    ├── ConfigurationError (also ValueError) ... bad set-up; fix it, then retry
    │   ├── CatalogError ........................ bad catalog file or entry (names file/entry/field)
    │   ├── UnknownModelError (also LookupError)  a model reference that resolves to nothing
    │   ├── UnknownDataClassError (LookupError) . a data class the sovereignty rules do not know
    │   ├── MissingAPIKeyError .................. a deployment's key variable is unset
    │   ├── NoProviderError ..................... no key set and no local server answered
    │   ├── SovereigntyError .................... a route could send data where it may not go
    │   └── EmulatorConfigError ................. a bad emulator config file (names the field)
    ├── SecretPickleError (also TypeError) ...... an object holding a key was to be pickled
    ├── InvalidRequestError (also ValueError) ... a request hybridstack refuses to send
    │   └── BatchFileError ...................... bad batch task file (every line at fault listed)
    ├── ProviderError ........................... one attempt on one deployment failed
    │   ├── RetryableError ...................... retry here: 429, 5xx, 529, timeout, reset
    │   │   └── SchemaMismatchError ............. a reply that breaks the requested response schema
    │   ├── FailoverError ....................... fail over: bad key, quota, retired model, region
    │   │   └── DeploymentSkippedError .......... never sent: breaker open, scope held, no key
    │   ├── ContentRefusedError ................. content refused: try another jurisdiction
    │   ├── ContextTooLongError ................. context too long: only larger windows
    │   └── FatalError .......................... fatal: malformed request; stop and raise
    ├── NoRouteError ............................ no allowed deployment can serve the request
    ├── BudgetExceededError ..................... the call's deadline, attempts or spend ran out
    ├── StreamInterruptedError .................. a stream broke after its first token
    ├── LedgerError ............................. attempts could not be stored; .unwritten has them
    ├── AllAttemptsFailedError (ExceptionGroup) . every planned deployment failed
    └── GraphError .............................. the agent graph's own errors
        ├── EmptyTaskError (InvalidRequestError)  the task is empty
        ├── PlanValidationError (InvalidRequestError)  a plan is not a DAG of subtasks
        ├── UnroutableSubtaskError (NoRouteError) a subtask's skill has no allowed deployment
        ├── UnknownThreadError (LookupError) .... resume of a thread with no checkpoint
        ├── CheckpointError ..................... the checkpoint store failed
        │   ├── CheckpointStoreError (ConfigurationError)  the path cannot hold checkpoints
        │   └── CheckpointUnavailableError ...... a read/write failed mid-run; resume later
        ├── ThreadBusyError ..................... another run holds the thread's lease
        ├── LeaseLostError ...................... this run's lease was taken over; it stopped
        ├── PlanRejectedError ................... the plan was rejected at approval
        └── RunFailedError ...................... RunResult.raise_for_status: failed/partial run

Secrets never appear in these messages: adapters scrub every key (and every piece of
one) from provider text before it is put in an exception (:func:`hybridstack.scrub`),
and objects that hold a key refuse to be pickled (:class:`SecretPickleError`).
This module imports nothing of hybridstack: it is the bottom of the layers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

ErrorKind = Literal["retry_here", "fail_over", "content_refused", "context_too_long", "fatal"]


class HybridStackError(Exception):
    """Base class of every error hybridstack raises on purpose."""


class ConfigurationError(HybridStackError, ValueError):
    """The set-up is wrong: a catalog, a config file, a route. Says what to fix."""


class CatalogError(ConfigurationError):
    """A catalog file or entry is invalid. Nothing of the file was loaded."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        entry: str | None = None,
        field: str | None = None,
    ) -> None:
        self.source = source
        self.entry = entry
        self.field = field
        where = ", ".join(
            part
            for part in (
                f"file {source}" if source else "",
                f"entry {entry!r}" if entry else "",
                f"field {field!r}" if field else "",
            )
            if part
        )
        super().__init__(f"{where}: {message}" if where else message)


class UnknownModelError(ConfigurationError, LookupError):
    """A model reference (``family``, ``family@site``, ``provider:model``) matched nothing."""

    def __init__(self, reference: str, suggestions: Sequence[str] = (), hint: str = "") -> None:
        self.reference = reference
        self.suggestions = tuple(suggestions)
        message = f"unknown model {reference!r}"
        if self.suggestions:
            message += "; did you mean " + " or ".join(repr(s) for s in self.suggestions) + "?"
        if hint:
            message += f" {hint}"
        super().__init__(message)


class MissingAPIKeyError(ConfigurationError):
    """A deployment needs a key from an environment variable that is not set."""

    def __init__(self, deployment: str, variable: str) -> None:
        self.deployment = deployment
        self.variable = variable
        super().__init__(
            f"deployment {deployment!r} needs an API key: set the environment variable "
            f"{variable} (or pass api_key=...), or use the offline emulator"
        )


class NoProviderError(ConfigurationError):
    """Nothing could answer: no key is set for the hosted deployments a request may use,
    and none of the local servers (which need no key) answered.

    ``variables`` are the key variables that would make hosted deployments usable;
    ``tried`` the local deployments that did not answer.
    """

    def __init__(self, message: str, *, variables: Sequence[str], tried: Sequence[str]) -> None:
        self.variables = tuple(variables)
        self.tried = tuple(tried)
        super().__init__(message)


class SovereigntyError(ConfigurationError):
    """A route could send a data class to a jurisdiction it is not allowed in."""

    def __init__(self, message: str, *, route: str = "", deployment: str = "") -> None:
        self.route = route
        self.deployment = deployment
        super().__init__(message)


class UnknownDataClassError(ConfigurationError, LookupError):
    """A data class name the rules do not know (routing fails closed)."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.data_class = name
        self.known = tuple(known)
        super().__init__(
            f"unknown data class {name!r}; known classes: {', '.join(self.known)}. "
            "Unknown classes are refused rather than treated as public: add it with "
            f"data_classes={{{name!r}: ['EU', 'LOCAL']}}"
        )


class EmulatorConfigError(ConfigurationError):
    """An emulator config file could not be read; the message names the file and field."""


class SecretPickleError(HybridStackError, TypeError):
    """An object holding an API key was asked to be pickled: refused, keys stay in memory.

    A pickle is a file or a message to another process; the key would be in it in clear.
    """

    def __init__(self, what: str, hint: str) -> None:
        self.what = what
        super().__init__(
            f"{what} holds an API key and is not pickled (a pickle would carry the key in "
            f"clear). {hint}"
        )


class InvalidRequestError(HybridStackError, ValueError):
    """A request that hybridstack will not send, with what to change."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        #: The request field at fault (``max_tokens``, ``messages[0].role`` …), when known.
        self.field = field
        super().__init__(message)


class BatchFileError(InvalidRequestError):
    """A batch task file (or list of tasks) is invalid; nothing of it ran.

    ``problems`` holds ``(line number, what to fix)`` for every bad line.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        problems: Sequence[tuple[int, str]] = (),
    ) -> None:
        self.path = path
        self.problems = list(problems)
        super().__init__(message)


class ProviderError(HybridStackError):
    """One attempt on one deployment failed. Subclasses are the five taxonomy kinds."""

    kind: ClassVar[ErrorKind]

    def __init__(
        self,
        message: str,
        *,
        deployment: str | None = None,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        provider: str | None = None,
        partial_text: str = "",
    ) -> None:
        self.message = message
        self.deployment = deployment
        self.status = status
        #: The provider's own error code or type (``insufficient_quota``, ``Throttling``…).
        self.code = code
        self.request_id = request_id
        #: Seconds the provider asked us to wait (from retry-after-ms / retry-after).
        self.retry_after = retry_after
        #: The wire protocol that reported it (``openai``, ``anthropic``, ``dashscope``).
        self.provider = provider
        #: Text already streamed before a mid-stream failure.
        self.partial_text = partial_text
        super().__init__(message)

    def __str__(self) -> str:
        details = [
            f"{k}={v}"
            for k, v in (
                ("deployment", self.deployment),
                ("status", self.status),
                ("code", self.code),
                ("request_id", self.request_id),
                ("retry_after", self.retry_after),
            )
            if v is not None
        ]
        return f"{self.message} ({', '.join(details)})" if details else self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Exceptions with keyword-only arguments do not pickle by default; checkpoints
        # and subprocess workers need them to.
        return (
            _rebuild_provider_error,
            (type(self), self.message, self.__dict__.copy()),
        )


def _rebuild_provider_error(
    cls: type[ProviderError], message: str, state: dict[str, Any]
) -> ProviderError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class RetryableError(ProviderError):
    """Transient: back off (honouring Retry-After up to a cap) and retry this deployment."""

    kind = "retry_here"


class SchemaMismatchError(RetryableError):
    """The reply is not JSON that conforms to the request's ``response_schema``.

    The host answered (its breakers count a success), but the answer is unusable: the
    attempt is recorded as failed and the call retries or moves to the next candidate.
    """

    #: The host itself is healthy: the breakers are told of a success, not a failure.
    host_answered = True


class FailoverError(ProviderError):
    """This deployment cannot serve now (key, quota, region, retired model): skip it."""

    kind = "fail_over"


class ContentRefusedError(ProviderError):
    """The provider refused the content: try a deployment in another jurisdiction."""

    kind = "content_refused"


class ContextTooLongError(ProviderError):
    """The prompt does not fit: only deployments with a larger context window may help."""

    kind = "context_too_long"

    def __init__(self, message: str, *, limit_tokens: int | None = None, **kwargs: Any) -> None:
        self.limit_tokens = limit_tokens
        super().__init__(message, **kwargs)


class FatalError(ProviderError):
    """The request itself is wrong (malformed, 422): no deployment will accept it."""

    kind = "fatal"


class DeploymentSkippedError(FailoverError):
    """A deployment the executor never sent a request to (breaker open, scope held, no key).

    Appears in :class:`AllAttemptsFailedError` after the real attempts' errors, so the
    group accounts for every planned deployment; never recorded in the ledger.
    """

    skipped = True


ERROR_KINDS: dict[ErrorKind, type[ProviderError]] = {
    "retry_here": RetryableError,
    "fail_over": FailoverError,
    "content_refused": ContentRefusedError,
    "context_too_long": ContextTooLongError,
    "fatal": FatalError,
}


class NoRouteError(HybridStackError):
    """No allowed deployment can serve the request; ``exclusions`` says why for each."""

    #: Exclusions listed one by one in the message; the rest are summarised by reason.
    MAX_LISTED = 12

    def __init__(self, message: str, exclusions: Mapping[str, str] | None = None) -> None:
        self.exclusions = dict(exclusions or {})
        if self.exclusions:
            message = f"{message}\nexcluded:\n{self._describe(self.exclusions)}"
        super().__init__(message)

    @classmethod
    def _describe(cls, exclusions: Mapping[str, str]) -> str:
        # Reasons that name the user's constraint (jurisdiction, key, price …) matter most;
        # "not ranked for this skill" / "not named by model" are listed last and counted.
        def routine(why: str) -> bool:
            return "not ranked for skill" in why or why.startswith(("not named by", "not in route"))

        ordered = sorted(exclusions.items(), key=lambda item: routine(item[1]))
        listed = ordered[: cls.MAX_LISTED]
        lines = [f"  - {d}: {why}" for d, why in listed]
        rest = ordered[cls.MAX_LISTED :]
        if rest:
            kinds: dict[str, int] = {}
            for _, why in rest:
                key = (
                    why.split(":")[0]
                    if not routine(why)
                    else why.split(" for ")[0].split(" by ")[0]
                )
                kinds[key] = kinds.get(key, 0) + 1
            summary = "; ".join(
                f"{n} × {k}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1])
            )
            lines.append(f"  … and {len(rest)} more ({summary}); see .exclusions for all")
        return "\n".join(lines)


class BudgetExceededError(HybridStackError):
    """The call's budget (deadline, attempts or spend) ran out before an answer."""

    def __init__(self, message: str, *, budget: str) -> None:
        self.budget = budget
        super().__init__(message)


class StreamInterruptedError(HybridStackError):
    """A stream failed after its first token; ``partial_text`` keeps what arrived."""

    def __init__(self, message: str, *, partial_text: str, cause: BaseException | None = None):
        self.partial_text = partial_text
        self.cause = cause
        super().__init__(message)


class LedgerError(HybridStackError):
    """The ledger could not store (or fully read) attempts: disk full, file locked or gone.

    ``unwritten`` holds the attempts that were recorded but are not in storage, so that a
    caller can write them elsewhere; ``path`` names the ledger file when there is one.
    """

    def __init__(self, message: str, *, path: str | None = None, unwritten: Sequence[Any] = ()):
        self.path = path
        self.unwritten = tuple(unwritten)
        super().__init__(message)


class AllAttemptsFailedError(HybridStackError, ExceptionGroup[Exception]):
    """Every deployment of the plan failed. Holds each attempt's error, in order."""

    def __new__(cls, message: str, exceptions: Sequence[Exception]) -> AllAttemptsFailedError:
        return super().__new__(cls, message, list(exceptions))

    def __init__(self, message: str, exceptions: Sequence[Exception]) -> None:
        super().__init__(message, list(exceptions))

    def derive(self, excs: Sequence[Exception]) -> AllAttemptsFailedError:  # type: ignore[override]
        return AllAttemptsFailedError(self.message, excs)

    @classmethod
    def from_errors(cls, errors: Sequence[Exception]) -> AllAttemptsFailedError:
        lines = []
        for error in errors:
            where = getattr(error, "deployment", None) or "?"
            kind = getattr(error, "kind", type(error).__name__)
            lines.append(f"  - {where}: {kind}: {getattr(error, 'message', error)}")
        tried = len({getattr(e, "deployment", None) for e in errors})
        message = f"all {len(errors)} attempts on {tried} deployment(s) failed:\n" + "\n".join(
            lines
        )
        return cls(message, errors)


# --- the agent graph -----------------------------------------------------------------------


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
