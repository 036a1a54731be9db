"""The one provider interface every wire-protocol adapter implements.

An adapter owns one SDK client for one deployment (SDK retries off), turns a
:class:`~hybridstack.types.ChatRequest` into that SDK's call, turns the answer into a
:class:`~hybridstack.types.ChatResponse` or stream events, and translates every
failure into exactly one taxonomy class from :mod:`hybridstack.errors`.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Iterator

from hybridstack._sync import iterate_sync, run_sync
from hybridstack.catalog.models import Deployment
from hybridstack.types import ChatRequest, ChatResponse, StreamEvent

#: Default ``max_tokens`` when a request leaves it out (Anthropic requires one).
DEFAULT_MAX_TOKENS = 1024


class Provider(abc.ABC):
    """Talks to one deployment over its wire protocol.

    ``complete`` returns the whole reply; ``stream`` yields :data:`StreamEvent` values
    and always ends with a :class:`~hybridstack.types.FinishEvent` holding the assembled
    reply, or raises a :class:`~hybridstack.errors.ProviderError` (``partial_text``
    set when tokens had already arrived).
    """

    protocol: str

    def __init__(self, deployment: Deployment, *, api_key: str, timeout_s: float | None = None):
        self.deployment = deployment
        self._api_key = api_key  # kept private: never in repr, logs or errors
        self.timeout_s = timeout_s if timeout_s is not None else deployment.timeout_s

    def __repr__(self) -> str:
        return f"{type(self).__name__}(deployment={self.deployment.id!r})"

    @abc.abstractmethod
    async def complete(
        self, request: ChatRequest, *, extra_headers: dict[str, str] | None = None
    ) -> ChatResponse: ...

    @abc.abstractmethod
    def stream(
        self, request: ChatRequest, *, extra_headers: dict[str, str] | None = None
    ) -> AsyncIterator[StreamEvent]: ...

    async def warm_up(self) -> None:  # noqa: B027 - optional hook
        """Build the SDK client for the running event loop ahead of the first request.

        Adapters build it on a worker thread where the SDK allows, so neither the
        first request nor the event loop pays for it.
        """

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release the SDK client's connections."""

    def complete_sync(self, request: ChatRequest) -> ChatResponse:
        return run_sync(self.complete(request), name="complete_sync")

    def stream_sync(self, request: ChatRequest) -> Iterator[StreamEvent]:
        return iterate_sync(self.stream(request), name="stream_sync")
