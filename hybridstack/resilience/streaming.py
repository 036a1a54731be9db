"""Streaming: run a call as a stream, failing over before the first token and after it.

A failure before the first token (text or tool-call delta) fails over invisibly, by the
scheduler's policy. After it, ``stream_failover="raise"`` raises
:class:`StreamInterruptedError` with the text already yielded, and ``"resume"`` re-asks
another candidate (same family in another region first), yielding a
:class:`StreamResumed` marker just before its first token. A stream that ends without a
usage frame (llama.cpp's OpenAI-compatible server) gets its usage estimated with
:mod:`hybridstack.tokens`, its ledger row marked ``usage_estimated``. The call's
deadline is kept by one timer per attempt (:class:`StreamWatchdog`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from hybridstack.errors import ProviderError, RetryableError, StreamInterruptedError
from hybridstack.resilience.attempts import provider_for, request_for
from hybridstack.resilience.call import Call, DeadlineHit, Skipped, Slot
from hybridstack.resilience.output import check_output
from hybridstack.resilience.recording import AttemptLog
from hybridstack.resilience.reporting import budget_error
from hybridstack.resilience.scheduling import Scheduler
from hybridstack.tokens import count_request, count_text, tokenizer_for
from hybridstack.types import (
    ChatRequest,
    ChatResponse,
    FinishEvent,
    StreamEvent,
    StreamResumed,
    Usage,
)

__all__ = ["StreamWatchdog", "estimate_usage", "run_stream"]

logger = logging.getLogger("hybridstack.resilience")


class StreamWatchdog:
    """Enforces a streamed attempt's deadline with one timer for the whole attempt.

    The timer cancels the task only while it is waiting for the provider's next event
    (``reading``); if it fires while the caller is busy with an event, the next read
    raises instead. A cancellation that is not ours is passed through untouched.
    """

    __slots__ = ("_handle", "_task", "cancelled", "fired", "reading")

    def __init__(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        self._task = asyncio.current_task()
        self.reading = False
        self.fired = False
        self.cancelled = False
        self._handle = loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self.fired = True
        if self.reading and self._task is not None:
            self.cancelled = True
            self._task.cancel()

    def owns_cancellation(self) -> bool:
        """After a CancelledError during a read: True if it was this watchdog's alone."""
        return self.cancelled and self._task is not None and self._task.uncancel() == 0

    def close(self) -> None:
        self._handle.cancel()


def estimate_usage(slot: Slot, request: ChatRequest, response: ChatResponse) -> Usage:
    """Usage for a reply that came without any: prompt from the request, completion from
    the text (and tool calls), counted for the deployment's family."""
    dep = slot.dep
    tokenizer = tokenizer_for(dep.family)
    prompt = getattr(slot.cand, "prompt_tokens", 0) or count_request(request, tokenizer).tokens
    produced = response.text + "".join(
        f"{call.name}{call.arguments}" for call in response.tool_calls
    )
    completion = count_text(produced, tokenizer).tokens if produced else 0
    return Usage(input_tokens=prompt, output_tokens=completion)


def _no_usage(usage: Usage) -> bool:
    return usage.input_tokens == 0 and usage.output_tokens == 0


async def run_stream(call: Call, sched: Scheduler) -> AsyncIterator[StreamEvent]:
    """The call as a stream of events ending in a :class:`FinishEvent`."""
    # The call (and its deadline) starts when the caller starts iterating.
    call.start()
    ex = call.ex
    emitted_chars = 0
    marker: tuple[str, str] | None = None
    while True:
        slot = await sched.next_slot()
        try:
            provider = await provider_for(call, slot)
        except Skipped:
            continue
        request, redactions = request_for(call, slot)
        log = AttemptLog(call, slot, request, redactions, streamed=True)
        dep = slot.dep
        events = provider.stream(request, extra_headers=log.headers())
        got_first = False
        parts: list[str] = []
        recorded = False
        # One timer per attempt, not one per event: a timeout context around every
        # __anext__ cost about 1 ms per streamed reply (see benchmarks/bench_overhead.py).
        watchdog = None if call.deadline is None else StreamWatchdog(call.loop, call.deadline)
        try:
            while True:
                try:
                    if watchdog is None:
                        event = await events.__anext__()
                    else:
                        # Inlined watchdog read (a helper coroutine per event costs).
                        if watchdog.fired:
                            raise DeadlineHit
                        watchdog.reading = True
                        try:
                            event = await events.__anext__()
                        except asyncio.CancelledError:
                            if watchdog.owns_cancellation():
                                raise DeadlineHit from None
                            raise
                        finally:
                            watchdog.reading = False
                except StopAsyncIteration:
                    raise RetryableError(
                        "the stream ended without a finish event",
                        deployment=dep.id,
                        code="stream_cut",
                        partial_text="".join(parts),
                    ) from None
                except TimeoutError as exc:
                    if call.past_deadline():
                        raise DeadlineHit from None
                    raise RetryableError(
                        f"the stream timed out: {exc}",
                        deployment=dep.id,
                        code="timeout",
                        partial_text="".join(parts),
                    ) from exc
                etype = event.type
                if etype == "text" or etype == "tool_call":
                    if not got_first:
                        got_first = True
                        log.ttft_s = log.elapsed()
                        if marker is not None:
                            yield StreamResumed(
                                from_deployment=marker[0],
                                to_deployment=dep.id,
                                chars_before=emitted_chars,
                                reason=marker[1],
                            )
                            call.emit("resumed", marker[0], to=dep.id, message=marker[1])
                            marker = None
                            sched.resume_from = None
                    if etype == "text":
                        parts.append(event.text)
                        emitted_chars += len(event.text)
                    yield event
                elif etype == "finish":
                    response: ChatResponse = event.response
                    usage = response.usage
                    if _no_usage(usage) and (response.text or response.tool_calls):
                        # No usage frame (llama.cpp): estimate it rather than record 0.
                        usage = estimate_usage(slot, request, response)
                        response = response.model_copy(update={"usage": usage})
                        log.usage_estimated = True
                    log.usage = usage
                    if request.response_schema is not None:
                        check_output(request, response, dep)
                    recorded = True
                    log.ok(usage, response.request_id)
                    final = call.succeeded(slot, response)
                    ttft = log.ttft_s
                    if final.ttft_s is None and ttft is not None:
                        final = final.model_copy(update={"ttft_s": ttft})
                    yield FinishEvent(finish_reason=event.finish_reason, response=final)
                    return
                else:
                    if etype == "usage":
                        log.usage = event.usage
                    yield event
        except ProviderError as error:
            recorded = True
            log.failed(error)
            sched.on_error(slot, error)  # raises a fatal error
            if got_first:
                if ex.stream_failover == "raise":
                    partial = "".join(parts)
                    raise StreamInterruptedError(
                        f"the stream from {dep.id} broke after {len(partial)} characters "
                        f"({error.kind}: {error.message}); stream_failover='raise' keeps "
                        f"the partial text (use 'resume' to continue on another deployment)",
                        partial_text=partial,
                        cause=error,
                    ) from error
                marker = (dep.id, f"{error.kind}: {error.message}")
                sched.resume_from = dep
            continue
        except DeadlineHit:
            recorded = True
            log.cancelled(TimeoutError("the call's deadline passed during this attempt"))
            raise budget_error(
                call,
                "deadline",
                f"the {call.budget.deadline_s}s deadline passed while streaming from {dep.id}",
            ) from None
        except BaseException as exc:
            # The caller stopped reading (GeneratorExit), was cancelled, or an adapter bug.
            if not recorded:
                recorded = True
                if isinstance(exc, Exception):
                    log.crashed(exc)
                else:
                    log.cancelled()
            raise
        finally:
            if watchdog is not None:
                watchdog.close()
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception:
                    logger.debug("closing the stream of %s failed", dep.id, exc_info=True)
