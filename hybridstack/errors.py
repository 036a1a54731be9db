"""hybridstack's exceptions: the error taxonomy that decides every resilience step.

Every provider failure is translated once, at the adapter boundary, into exactly one
of five provider-error kinds. What the executor does next depends on the kind alone,
never on which SDK raised it::

    HybridStackError
    ├── ConfigurationError (also ValueError) ... bad set-up; fix the config, then retry
    │   ├── CatalogError ........................ bad catalog file or entry (names file/entry/field)
    │   ├── UnknownModelError ................... a model reference that resolves to nothing
    │   ├── MissingAPIKeyError .................. a deployment's key variable is unset
    │   ├── NoProviderError ..................... no key set and no local server answered
    │   └── SovereigntyError .................... a route could send data where it may not go
    ├── SecretPickleError (also TypeError) ...... an object holding a key was to be pickled
    ├── InvalidRequestError (also ValueError) ... a request hybridstack refuses to send
    │   └── BatchFileError ...................... bad batch task file (every line at fault listed)
    ├── ProviderError ........................... one attempt on one deployment failed
    │   ├── RetryableError ...................... retry here: 429, 5xx, 529, timeout, reset
    │   ├── FailoverError ....................... fail over: bad key, quota, retired model, region
    │   ├── ContentRefusedError ................. content refused: try another jurisdiction
    │   ├── ContextTooLongError ................. context too long: only larger windows
    │   └── FatalError .......................... fatal: malformed request; stop and raise
    ├── NoRouteError ............................ no allowed deployment can serve the request
    ├── BudgetExceededError ..................... the call's deadline, attempts or spend ran out
    ├── StreamInterruptedError .................. a stream broke after its first token
    ├── LedgerError ............................. attempts could not be stored; .unwritten has them
    └── AllAttemptsFailedError (ExceptionGroup) . every planned deployment failed

Secrets never appear in these messages: adapters scrub every key (and every piece of
one) from provider text before it is put in an exception (see :func:`scrub`), and
objects that hold a key refuse to be pickled (:class:`SecretPickleError`).
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Literal

from hybridstack._secrets import scrub_secrets

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


def _rebuild_provider_error(cls: type[ProviderError], message: str, state: dict[str, Any]):
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class RetryableError(ProviderError):
    """Transient: back off (honouring Retry-After up to a cap) and retry this deployment."""

    kind = "retry_here"


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


class AllAttemptsFailedError(HybridStackError, ExceptionGroup):  # type: ignore[misc]
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


# --- helpers used by every adapter -------------------------------------------------------


def parse_retry_after(
    headers: Mapping[str, str] | None, *, now: float | None = None
) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or HTTP date)."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` without any API key: ``secrets``, every key hybridstack was given, and
    anything shaped like a key (whole, by a head or tail, or masked with a few real
    characters); each becomes ``***``. See :mod:`hybridstack._secrets`.
    """
    return scrub_secrets(text, secrets)


def contains_secret(text: str, secret: str | None) -> bool:
    """Whether ``text`` holds ``secret`` or a fragment :func:`scrub` would hide."""
    return bool(secret) and scrub(text, (secret,)) != text
