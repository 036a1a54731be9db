"""One attempt on one deployment failed: :class:`ProviderError` and its five kinds.

Every provider failure is translated once, at the adapter boundary, into exactly one of
the kinds in :data:`ERROR_KINDS`; what the executor does next depends on the kind alone.
Import them from :mod:`hybridstack.errors`, whose docstring draws the whole tree.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from hybridstack.errors._setup import HybridStackError

ErrorKind = Literal["retry_here", "fail_over", "content_refused", "context_too_long", "fatal"]


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
