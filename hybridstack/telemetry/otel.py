"""OpenTelemetry GenAI spans and metrics for Stack calls (imported only when telemetry is on).

One span per ``Stack.complete``/``Stack.stream`` call, ``chat {model}`` (kind INTERNAL:
the logical operation, which may span several providers), with one CLIENT child span
per network attempt, built from the :class:`~hybridstack.types.Attempt` the executor
records (a ledger subscriber, so the executor itself has no telemetry code): the child's
start and end are the attempt's own ``started_at`` and ``latency_s``. The route decision
(candidates, exclusions, seed, draws) and the executor's events (retry, failover,
hedge, breaker) are span events on the call span. Attribute names follow the
OpenTelemetry GenAI semantic conventions, written as plain strings (the incubating
semconv package renames them between releases); hybridstack's own attributes are under
``hybridstack.*``.

Metrics, per attempt (each is one client operation against one provider, as the
OpenAI/Anthropic instrumentors would count it): ``gen_ai.client.operation.duration``
(s) and ``gen_ai.client.token.usage`` ({token}, ``gen_ai.token.type`` input/output).

No key ever reaches an attribute: deployments appear by id and host, error text is the
ledger's scrubbed text, and message content (opt-in) is redacted, then scrubbed.

This module makes the spans and records the metrics; the attribute dicts they carry are
built in :mod:`hybridstack.telemetry.attributes`, and the opt-in message content in
:mod:`hybridstack.telemetry.content`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from hybridstack import __version__
from hybridstack._secrets import scrub
from hybridstack.errors import ProviderError
from hybridstack.telemetry.attributes import (
    MAX_ERROR_CHARS,
    OPERATION,
    Site,
    attempt_attributes,
    attempt_error_type,
    event_attributes,
    route_attributes,
)
from hybridstack.telemetry.content import input_content, output_content

if TYPE_CHECKING:
    from hybridstack.catalog import Catalog
    from hybridstack.ledger import Ledger
    from hybridstack.plan import Plan
    from hybridstack.resilience import ExecutionEvent
    from hybridstack.telemetry import Telemetry
    from hybridstack.types import Attempt, ChatRequest, ChatResponse, StreamEvent

__all__ = ["CallSpan", "Instrumentation", "StackObserver"]

logger = logging.getLogger("hybridstack.telemetry")

SCOPE = "hybridstack"

#: Bucket boundaries the GenAI metric conventions advise.
_DURATION_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
_TOKEN_BUCKETS = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip


class Instrumentation:
    """The tracer and the two GenAI histograms for one :class:`Telemetry` setting."""

    __slots__ = ("duration", "settings", "token_usage", "tracer")

    def __init__(self, settings: Telemetry) -> None:
        self.settings = settings
        # Without a provider these are the global proxies: a provider configured later
        # is picked up, and until then spans are non-recording (near free).
        self.tracer = trace.get_tracer(SCOPE, __version__, tracer_provider=settings.tracer_provider)
        meter = metrics.get_meter(SCOPE, __version__, meter_provider=settings.meter_provider)
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=list(_DURATION_BUCKETS),
        )
        self.token_usage = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=[float(b) for b in _TOKEN_BUCKETS],
        )


class StackObserver:
    """One per Stack: opens call spans, and turns the ledger's attempts into child spans.

    Calls are found by their ``call_id`` (every Attempt carries it), so attempts made in
    hedge tasks or inside a stream land under the right call without any context passing.
    """

    def __init__(self, catalog: Catalog, ledger: Ledger) -> None:
        self._catalog = catalog
        self._calls: dict[str, CallSpan] = {}
        self._sites: dict[str, Site] = {}
        self._unsubscribe = ledger.subscribe(self._on_attempt)

    def close(self) -> None:
        self._unsubscribe()

    def site(self, deployment_id: str) -> Site:
        site = self._sites.get(deployment_id)
        if site is None:
            site = self._sites[deployment_id] = Site(self._catalog.deployments.get(deployment_id))
        return site

    def call(
        self,
        settings: Telemetry,
        execution: dict[str, Any],
        request: ChatRequest,
        plan: Plan,
        *,
        model: str | None,
        started_ns: int,
        stream: bool,
    ) -> CallSpan:
        """A call about to run: its on_event hook goes into ``execution``."""
        call = CallSpan(self, settings, execution, request, plan, model, started_ns, stream)
        execution["on_event"] = call.on_event
        return call

    def routing_failed(
        self, settings: Telemetry, started_ns: int, error: BaseException, model: str | None
    ) -> None:
        """A call that ended before it had a plan (no route, a bad request)."""
        try:
            tracer = settings.instrumentation().tracer
            name = f"{OPERATION} {model}" if model else OPERATION
            attrs: dict[str, Any] = {
                "gen_ai.operation.name": OPERATION,
                "gen_ai.provider.name": "hybridstack",
            }
            if model:
                attrs["gen_ai.request.model"] = model
            span = tracer.start_span(
                name, kind=SpanKind.INTERNAL, attributes=attrs, start_time=started_ns
            )
            _set_error(span, error)
            span.end()
        except Exception:
            logger.exception("telemetry failed on a routing error; the call is unaffected")

    def _on_attempt(self, attempt: Attempt) -> None:
        call = self._calls.get(attempt.call_id)
        if call is not None:
            call.attempt(attempt)


class CallSpan:
    """The telemetry of one call: its span, its totals, and the hooks the Stack calls."""

    __slots__ = (
        "_ended",
        "_open",
        "_user_on_event",
        "attempts",
        "call_id",
        "context",
        "cost",
        "input_tokens",
        "inst",
        "model",
        "observer",
        "output_tokens",
        "plan",
        "request",
        "response",
        "run_id",
        "settings",
        "span",
        "started_ns",
        "stream_mode",
    )

    def __init__(
        self,
        observer: StackObserver,
        settings: Telemetry,
        execution: Mapping[str, Any],
        request: ChatRequest,
        plan: Plan,
        model: str | None,
        started_ns: int,
        stream: bool,
    ) -> None:
        self.observer = observer
        self.settings = settings
        self.inst = settings.instrumentation()
        self.call_id: str = execution["call_id"]
        self.run_id: str | None = execution.get("run_id")
        self._user_on_event: Callable[[ExecutionEvent], None] | None = execution.get("on_event")
        self.request = request
        self.plan = plan
        self.model = model
        self.started_ns = started_ns
        self.stream_mode = stream
        self.span: Any = None
        self.context: Any = None
        self.response: ChatResponse | None = None
        self.attempts = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.cost = 0.0
        self._open = False
        self._ended = False

    # --- the Stack's hooks ------------------------------------------------------------

    async def run(self, execution: Awaitable[ChatResponse]) -> ChatResponse:
        """Await a non-streamed call with this call's span current."""
        self.open()
        token = otel_context.attach(self.context) if self.context is not None else None
        try:
            response = await execution
        except asyncio.CancelledError:
            self._finish(None, cancelled=True)
            raise
        except BaseException as error:
            self._finish(error)
            raise
        finally:
            if token is not None:
                otel_context.detach(token)
        self.response = response
        self._finish(None)
        return response

    async def stream(self, events: AsyncIterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
        """Re-yield a stream; the span ends when it ends, fails, or is closed/cancelled."""
        self.open()
        ctx = self.context
        attach, detach = otel_context.attach, otel_context.detach
        outcome: BaseException | None = None
        cancelled = False
        try:
            while True:
                # Current only while the executor runs, never across a yield (a context
                # attached in a generator would leak into the caller between events).
                token = attach(ctx) if ctx is not None else None
                try:
                    event = await events.__anext__()
                except StopAsyncIteration:
                    break
                finally:
                    if token is not None:
                        detach(token)
                if event.type == "finish":
                    self.response = event.response
                yield event
        except (GeneratorExit, asyncio.CancelledError):
            cancelled = True
            raise
        except BaseException as error:
            outcome = error
            raise
        finally:
            aclose = getattr(events, "aclose", None)
            try:
                if aclose is not None:
                    await aclose()  # records the attempt as cancelled before the span ends
            finally:
                self._finish(outcome, cancelled=cancelled)

    def on_event(self, event: ExecutionEvent) -> None:
        """The executor's events, as span events (then the caller's own callback)."""
        span = self.span
        if span is not None and span.is_recording():
            span.add_event(f"hybridstack.{event.kind}", event_attributes(event))
        user = self._user_on_event
        if user is not None:
            user(event)

    # --- the span ---------------------------------------------------------------------

    def open(self) -> None:
        if self._open:
            return
        self._open = True
        try:
            self._start_span()
        except Exception:
            logger.exception("telemetry failed to open a span; the call is unaffected")
            self.span = self.context = None
        self.observer._calls[self.call_id] = self

    def _start_span(self) -> None:
        plan, request = self.plan, self.request
        first = plan.candidates[0].deployment if plan.candidates else None
        requested = self.model or (first.family if first is not None else "")
        attrs: dict[str, Any] = {"gen_ai.operation.name": OPERATION}
        if first is not None:
            self.observer.site(first.id).put(attrs)
        else:
            attrs["gen_ai.provider.name"] = "hybridstack"
        if requested:
            attrs["gen_ai.request.model"] = requested
        span = self.inst.tracer.start_span(
            f"{OPERATION} {requested}" if requested else OPERATION,
            kind=SpanKind.INTERNAL,
            attributes=attrs,
            start_time=self.started_ns,
        )
        self.span = span
        self.context = trace.set_span_in_context(span)
        if not span.is_recording():
            return
        more: dict[str, Any] = {
            "hybridstack.call.id": self.call_id,
            "hybridstack.skill": plan.skill,
            "hybridstack.data_class": plan.data_class,
            "hybridstack.policy": plan.policy,
            "hybridstack.stream": self.stream_mode,
        }
        if self.run_id:
            more["hybridstack.run.id"] = self.run_id
        if request.max_tokens is not None:
            more["gen_ai.request.max_tokens"] = request.max_tokens
        if request.temperature is not None:
            more["gen_ai.request.temperature"] = request.temperature
        if request.stop:
            more["gen_ai.request.stop_sequences"] = list(request.stop)
        if request.response_schema is not None:
            more["gen_ai.output.type"] = "json"
        span.set_attributes(more)
        span.add_event("hybridstack.route", route_attributes(plan))
        if self.settings.captures_content():
            span.set_attributes(input_content(request, self.settings.max_content_chars))

    def attempt(self, attempt: Attempt) -> None:
        """One recorded attempt: a child span, the call's totals, the metrics."""
        self.attempts += 1
        usage = attempt.usage
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        self.cost += attempt.cost_usd
        site = self.observer.site(attempt.deployment)
        outcome = attempt.outcome
        error_type = attempt_error_type(attempt)
        if outcome != "skipped":
            self._measure(attempt, site, error_type)
        span = self.span
        if span is None or not span.is_recording():
            return
        attrs = attempt_attributes(attempt, site, error_type)
        start_ns = int(attempt.started_at.timestamp() * 1e9)
        child = self.inst.tracer.start_span(
            f"{OPERATION} {attrs['gen_ai.request.model']}",
            context=self.context,
            kind=SpanKind.CLIENT,
            attributes=attrs,
            start_time=start_ns,
        )
        if error_type is not None:
            child.set_status(Status(StatusCode.ERROR, attempt.error_message or error_type))
        child.end(end_time=start_ns + int(attempt.latency_s * 1e9))

    def _measure(self, attempt: Attempt, site: Site, error_type: str | None) -> None:
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": OPERATION,
            "gen_ai.request.model": attempt.model or attempt.family,
            "hybridstack.deployment": attempt.deployment,
            "hybridstack.jurisdiction": attempt.jurisdiction,
        }
        site.put(attrs)
        if error_type is not None:
            attrs["error.type"] = error_type
        elif attempt.outcome == "ok":
            attrs["gen_ai.response.model"] = attempt.model or attempt.family
        self.inst.duration.record(attempt.latency_s, attrs)
        usage = attempt.usage
        if attempt.outcome == "ok" or usage.input_tokens or usage.output_tokens:
            record = self.inst.token_usage.record
            record(usage.input_tokens, {**attrs, "gen_ai.token.type": "input"})
            record(usage.output_tokens, {**attrs, "gen_ai.token.type": "output"})

    def _finish(self, error: BaseException | None, *, cancelled: bool = False) -> None:
        if self._ended:
            return
        self._ended = True
        self.observer._calls.pop(self.call_id, None)
        span = self.span
        if span is None:
            return
        try:
            if span.is_recording():
                self._final_attributes(span, error, cancelled)
        except Exception:
            logger.exception("telemetry failed to finish a span; the call is unaffected")
        finally:
            span.end()

    def _final_attributes(self, span: Any, error: BaseException | None, cancelled: bool) -> None:
        response = self.response
        attrs: dict[str, Any] = {"hybridstack.attempts": self.attempts}
        inputs, outputs = self.input_tokens, self.output_tokens
        cost = self.cost
        if response is not None:
            self.observer.site(response.deployment).put(attrs)
            if response.model:
                attrs["gen_ai.response.model"] = response.model
            attrs["gen_ai.response.finish_reasons"] = [response.finish_reason]
            attrs["hybridstack.deployment"] = response.deployment
            attrs["hybridstack.region"] = response.region
            attrs["hybridstack.jurisdiction"] = response.jurisdiction
            attrs["hybridstack.attempts"] = max(self.attempts, response.attempts)
            if not self.attempts:  # attempts recorded elsewhere: the reply's own counts
                inputs = response.usage.input_tokens
                outputs = response.usage.output_tokens
            cost = max(cost, response.cost_usd)
            if self.settings.captures_content():
                attrs.update(output_content(response, self.settings.max_content_chars))
        if response is not None or inputs or outputs:
            attrs["gen_ai.usage.input_tokens"] = inputs
            attrs["gen_ai.usage.output_tokens"] = outputs
        attrs["gen_ai.usage.cost"] = cost
        if cancelled:
            attrs["hybridstack.outcome"] = "cancelled"
        elif error is None:
            attrs["hybridstack.outcome"] = "ok"
        span.set_attributes(attrs)
        if error is not None and not cancelled:
            _set_error(span, error)


def _set_error(span: Any, error: BaseException) -> None:
    attrs: dict[str, Any] = {"error.type": type(error).__name__, "hybridstack.outcome": "error"}
    if isinstance(error, ProviderError):
        attrs["hybridstack.error.kind"] = error.kind
    span.set_attributes(attrs)
    span.set_status(Status(StatusCode.ERROR, scrub(str(error))[:MAX_ERROR_CHARS]))
