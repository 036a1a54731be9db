"""OpenTelemetry GenAI spans and metrics, read back from the SDK's in-memory exporter and
metric reader, for real calls against the emulator (real SDK clients over loopback).

Providers are passed to ``Telemetry(...)`` rather than installed globally: the global
tracer provider can be set once per process, and other tests must not see these spans.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import date
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from secret_helpers import find_fragments, realistic_keys

import hybridstack
from hybridstack import ConfigurationError, NoRouteError, Stack, Telemetry
from hybridstack.catalog import Catalog, Deployment, Family, Price
from hybridstack.resilience import RetrySettings
from hybridstack.telemetry import CAPTURE_CONTENT_ENV
from hybridstack.testing import offline_stack

FAMILY = "fam"
CHEAP = f"{FAMILY}@cn"  # tried first (cheapest policy); refuses our key in the fail-over test
DEAR = f"{FAMILY}@sg"
#: A realistic key per deployment (sk-proj-…, and the next kinds): a leak is any fragment.
KEYS = realistic_keys(10, [CHEAP, DEAR])
assert KEYS[CHEAP].startswith("sk-proj-")


def _catalog() -> Catalog:
    family = Family(
        name=FAMILY,
        vendor="test",
        context_window=32_000,
        features=frozenset({"streaming", "system_prompt", "tools"}),
        skills={"general": 0.9},
    )

    def deployment(site: str, region: str, jurisdiction: str, operator: str, price: float):
        return Deployment(
            family=FAMILY,
            site=site,
            protocol="openai",
            model=f"fam-model-{site}",
            base_url="http://127.0.0.1:9/v1",  # replaced by the emulator's URL
            region=region,
            jurisdiction=jurisdiction,
            operator=operator,
            price=Price(input_per_mtok=price, output_per_mtok=price * 4, as_of=date(2026, 1, 1)),
        )

    return Catalog(
        [family],
        [
            deployment("cn", "cn-beijing", "CN", "deepseek", 0.5),
            deployment("sg", "ap-southeast-1", "SG", "openai", 2.0),
        ],
    )


class Otel:
    """An SDK tracer provider and meter provider whose output the test can read."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def telemetry(self, **options: Any) -> Telemetry:
        return Telemetry(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider, **options
        )

    def spans(self) -> list[ReadableSpan]:
        return sorted(self.exporter.get_finished_spans(), key=lambda s: s.start_time or 0)

    def call_and_attempts(self) -> tuple[ReadableSpan, list[ReadableSpan]]:
        spans = self.spans()
        [call] = [s for s in spans if s.parent is None]
        children = [s for s in spans if s.parent is not None]
        assert all(c.parent.span_id == call.context.span_id for c in children)  # type: ignore[union-attr]
        children.sort(key=lambda s: s.attributes["hybridstack.attempt.index"])  # type: ignore[index]
        return call, children

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        found = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found

    def texts(self) -> dict[str, str]:
        """Everything the exporter and reader hold, as text, for the key scan."""
        out: dict[str, str] = {}
        for i, span in enumerate(self.exporter.get_finished_spans()):
            out[f"span{i}"] = span.to_json()
        data = self.reader.get_metrics_data()
        out["metrics"] = data.to_json() if data else ""
        return out

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


@pytest.fixture
def otel() -> Iterator[Otel]:
    o = Otel()
    yield o
    o.shutdown()


@contextlib.asynccontextmanager
async def stack_with(otel: Otel | None, **options: Any) -> AsyncIterator[Stack]:
    if otel is not None:
        options.setdefault("telemetry", otel.telemetry())
    async with offline_stack(_catalog(), policy="cheapest", api_keys=KEYS, **options) as stack:
        yield stack


async def test_a_fail_over_call_is_one_span_with_a_child_per_attempt(otel: Otel) -> None:
    async with stack_with(otel) as stack:
        # The cheap deployment wants another key: 401 (its message echoes a masked key).
        stack.emulator.set_faults(CHEAP, auth_key="sk-the-emulator-wants-another-key")
        reply = await stack.complete("Say hello", max_tokens=64, temperature=0.2)
    assert reply.deployment == DEAR
    call, (failed, served) = otel.call_and_attempts()

    assert call.name == f"chat {FAMILY}"
    assert call.kind is SpanKind.INTERNAL
    a = call.attributes
    assert a is not None
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.model"] == FAMILY
    assert a["gen_ai.response.model"] == "fam-model-sg"
    assert a["gen_ai.provider.name"] == "openai"  # who answered
    assert a["server.address"] == "127.0.0.1"
    assert isinstance(a["server.port"], int)
    assert a["gen_ai.request.max_tokens"] == 64
    assert a["gen_ai.request.temperature"] == 0.2
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["gen_ai.usage.input_tokens"] == reply.usage.input_tokens > 0
    assert a["gen_ai.usage.output_tokens"] == reply.usage.output_tokens > 0
    assert a["gen_ai.usage.cost"] == pytest.approx(reply.cost_usd)
    assert a["hybridstack.attempts"] == 2
    assert "error.type" not in a
    assert call.status.status_code is StatusCode.UNSET
    assert "gen_ai.input.messages" not in a  # content is opt-in

    [route] = [e for e in call.events if e.name == "hybridstack.route"]
    assert route.attributes is not None
    assert route.attributes["hybridstack.route.candidates"] == (CHEAP, DEAR)
    assert route.attributes["hybridstack.route.policy"] == "cheapest"
    assert "hybridstack.failover" in [e.name for e in call.events]

    assert failed.name == "chat fam-model-cn"
    assert failed.kind is SpanKind.CLIENT
    f = failed.attributes
    assert f is not None
    assert f["error.type"] == "invalid_api_key"
    assert f["hybridstack.attempt.outcome"] == "fail_over"
    assert f["hybridstack.attempt.kind"] == "first"
    assert f["hybridstack.deployment"] == CHEAP
    assert f["hybridstack.jurisdiction"] == "CN"
    assert f["gen_ai.provider.name"] == "deepseek"
    assert f["http.response.status_code"] == 401
    assert failed.status.status_code is StatusCode.ERROR

    s = served.attributes
    assert s is not None
    assert "error.type" not in s
    assert s["hybridstack.attempt.kind"] == "failover"
    assert s["hybridstack.attempt.index"] == 1
    assert s["hybridstack.region"] == "ap-southeast-1"
    assert s["gen_ai.response.model"] == "fam-model-sg"
    assert s["gen_ai.usage.output_tokens"] == reply.usage.output_tokens
    assert failed.start_time <= served.start_time  # type: ignore[operator]

    # Metrics: one duration point per deployment, the failed one with its error.type.
    durations = {p.attributes["hybridstack.deployment"]: p for p in otel.points(
        "gen_ai.client.operation.duration"
    )}  # fmt: skip
    assert durations[CHEAP].attributes["error.type"] == "invalid_api_key"
    assert "error.type" not in durations[DEAR].attributes
    assert durations[DEAR].count == 1
    tokens = {
        p.attributes["gen_ai.token.type"]: p for p in otel.points("gen_ai.client.token.usage")
    }
    assert tokens["input"].sum == reply.usage.input_tokens
    assert tokens["output"].sum == reply.usage.output_tokens
    assert tokens["output"].attributes["gen_ai.provider.name"] == "openai"


async def test_a_retry_on_the_same_deployment_is_a_retry_child(otel: Otel) -> None:
    fast = RetrySettings(max_retries=2, backoff_initial_s=0.01, backoff_max_s=0.02)
    async with stack_with(otel, retry=fast, run_id="batch-7") as stack:
        stack.emulator.script(CHEAP, ["429"])
        stack.emulator.set_faults(CHEAP, retry_after_s=0.01)
        reply = await stack.complete("Say hello", model=CHEAP)  # one deployment: retried
    assert reply.deployment == CHEAP
    call, (throttled, served) = otel.call_and_attempts()
    assert call.name == f"chat {CHEAP}"  # the model asked for
    assert call.attributes["hybridstack.run.id"] == "batch-7"  # type: ignore[index]
    assert throttled.attributes["hybridstack.attempt.outcome"] == "retry_here"  # type: ignore[index]
    assert throttled.attributes["http.response.status_code"] == 429  # type: ignore[index]
    assert served.attributes["hybridstack.attempt.kind"] == "retry"  # type: ignore[index]
    assert served.attributes["hybridstack.attempt.retry_index"] == 1  # type: ignore[index]
    assert "hybridstack.retry" in [e.name for e in call.events]


async def test_a_stream_span_ends_when_the_stream_ends(otel: Otel) -> None:
    async with stack_with(otel) as stack:
        stream = stack.stream("Tell me a short story")
        assert otel.spans() == []  # nothing sent yet: no span before iteration
        events = [event async for event in stream]
    assert events[-1].type == "finish"
    call, [attempt] = otel.call_and_attempts()
    assert call.attributes["hybridstack.stream"] is True  # type: ignore[index]
    assert call.attributes["hybridstack.outcome"] == "ok"  # type: ignore[index]
    assert call.attributes["gen_ai.usage.output_tokens"] > 0  # type: ignore[index,operator]
    assert attempt.attributes["hybridstack.attempt.streamed"] is True  # type: ignore[index]
    assert attempt.attributes["hybridstack.attempt.ttft_s"] >= 0  # type: ignore[index,operator]


async def test_a_stream_closed_early_ends_its_span_as_cancelled(otel: Otel) -> None:
    async with stack_with(otel) as stack:
        stack.emulator.set_faults(DEAR, inter_token_ms=5.0)
        stack.emulator.set_faults(CHEAP, inter_token_ms=5.0)
        async with contextlib.aclosing(stack.stream("Tell me a long story")) as stream:
            async for event in stream:
                if event.type == "text":
                    break
        call, [attempt] = otel.call_and_attempts()
    assert call.end_time is not None
    assert call.attributes["hybridstack.outcome"] == "cancelled"  # type: ignore[index]
    assert call.status.status_code is StatusCode.UNSET
    assert attempt.attributes["hybridstack.attempt.outcome"] == "cancelled"  # type: ignore[index]


async def test_a_cancelled_call_ends_its_span_as_cancelled(otel: Otel) -> None:
    async with stack_with(otel) as stack:
        stack.emulator.set_faults([CHEAP, DEAR], latency_ms=1_500.0)  # cancelled before it answers

        async def consume() -> None:
            async for _event in stack.stream("Tell me a story"):
                pass

        for run in (consume(), stack.complete("Say hello")):
            sent = stack.emulator.counters(CHEAP).requests
            task = asyncio.ensure_future(run)
            for _ in range(1000):  # until the request is in flight
                if stack.emulator.counters(CHEAP).requests > sent:
                    break
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    calls = [s for s in otel.spans() if s.parent is None]
    assert len(calls) == 2
    for call in calls:
        assert call.attributes["hybridstack.outcome"] == "cancelled"  # type: ignore[index]
        assert call.status.status_code is StatusCode.UNSET


async def test_a_failed_call_carries_error_type_on_its_span(otel: Otel) -> None:
    async with stack_with(otel) as stack:
        stack.emulator.set_outage([CHEAP, DEAR])
        with pytest.raises(hybridstack.HybridStackError) as raised:
            await stack.complete("Say hello")
    call, attempts = otel.call_and_attempts()
    assert call.attributes["error.type"] == type(raised.value).__name__  # type: ignore[index]
    assert call.status.status_code is StatusCode.ERROR
    # Each attempt's error.type is the provider's code; the status is beside it.
    assert {a.attributes["error.type"] for a in attempts} == {"service_unavailable"}  # type: ignore[index]
    assert {a.attributes["http.response.status_code"] for a in attempts} == {503}  # type: ignore[index]


async def test_a_routing_error_is_a_span_too(otel: Otel) -> None:
    async with stack_with(otel) as stack:
        with pytest.raises(NoRouteError):
            await stack.complete("hi", constraints={"allow_jurisdictions": ["EU"]})
    [span] = otel.spans()
    assert span.attributes["error.type"] == "NoRouteError"  # type: ignore[index]
    assert span.status.status_code is StatusCode.ERROR


PROMPT = "Mail ana.lopez@example.com the report. My key is {key}, please keep it."


async def test_content_is_recorded_only_when_asked_redacted_and_without_keys(
    otel: Otel, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompt = PROMPT.format(key=KEYS[DEAR])
    async with stack_with(otel) as stack:
        await stack.complete(prompt)
        monkeypatch.setenv(CAPTURE_CONTENT_ENV, "true")  # the standard opt-in
        await stack.complete(
            [{"role": "system", "content": "Be brief."}, {"role": "user", "content": prompt}]
        )
    plain, captured = [s for s in otel.spans() if s.parent is None]
    assert "gen_ai.input.messages" not in plain.attributes  # type: ignore[operator]
    attrs = captured.attributes
    assert attrs is not None
    messages = json.loads(attrs["gen_ai.input.messages"])  # type: ignore[arg-type]
    assert messages[0]["role"] == "user"
    text = messages[0]["parts"][0]["content"]
    assert "report" in text
    assert "ana.lopez" not in text
    assert "example.com" not in text
    assert json.loads(attrs["gen_ai.system_instructions"])[0]["content"] == "Be brief."  # type: ignore[arg-type]
    [output] = json.loads(attrs["gen_ai.output.messages"])  # type: ignore[arg-type]
    assert output["role"] == "assistant"
    assert output["finish_reason"] == "stop"


async def test_no_attribute_or_event_holds_key_material(otel: Otel) -> None:
    async with stack_with(otel, telemetry=otel.telemetry(capture_content=True)) as stack:
        stack.emulator.set_faults(CHEAP, auth_key="sk-the-emulator-wants-another-key")
        await stack.complete(PROMPT.format(key=KEYS[CHEAP]))
        async with contextlib.aclosing(stack.stream(PROMPT.format(key=KEYS[DEAR]))) as stream:
            _ = [event async for event in stream]
        stack.emulator.set_outage([DEAR])
        with pytest.raises(hybridstack.HybridStackError):
            await stack.complete("Say hello")
    texts = otel.texts()
    assert "invalid_api_key" in "".join(texts.values())  # the 401 is in there, scrubbed
    assert find_fragments(texts, KEYS.values()) == []


async def test_instrument_turns_on_every_stack_and_telemetry_false_opts_out(
    otel: Otel,
) -> None:
    async with (
        stack_with(None) as default,
        stack_with(None, telemetry=False) as opted_out,
    ):
        await default.complete("before")
        hybridstack.instrument(
            tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider
        )
        try:
            await default.complete("during")
            await opted_out.complete("during")
        finally:
            hybridstack.uninstrument()
        await default.complete("after")
    [call] = [s for s in otel.spans() if s.parent is None]
    assert call.attributes["hybridstack.call.id"] == default.ledger.attempts()[1].call_id  # type: ignore[index]


def test_bad_telemetry_settings_are_clear_errors() -> None:
    with pytest.raises(ConfigurationError, match="telemetry must be True"):
        Stack(telemetry="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="capture_content"):
        Telemetry(capture_content="true")  # type: ignore[arg-type]


def test_opentelemetry_loads_only_when_a_call_is_traced() -> None:
    code = (
        "import sys, hybridstack;"
        "s = hybridstack.Stack(telemetry=True); s.route('hello');"
        "hybridstack.Stack().route('hi');"
        "print(','.join(m for m in sys.modules if m.startswith('opentelemetry')"
        " or m.startswith('hybridstack.telemetry.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
