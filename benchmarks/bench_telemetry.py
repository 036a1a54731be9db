"""What OpenTelemetry costs per Stack call: telemetry off, on without an SDK, on with one.

Three stacks over one emulated openai-protocol deployment (0 ms, the emulator in its
own process so ``time.process_time()`` counts only the client):

* ``off``   — ``Stack()``, nobody called ``hybridstack.instrument()`` (the default);
* ``api``   — ``Stack(telemetry=True)`` with no SDK tracer/meter provider installed
  (the OpenTelemetry API alone: non-recording spans, no-op instruments);
* ``sdk``   — ``Stack(telemetry=Telemetry(...))`` with SDK providers: every span goes
  through a ``SimpleSpanProcessor`` to an exporter that drops it, metrics aggregate in
  an ``InMemoryMetricReader`` (the work an app pays before its exporter).

Calls run at concurrency 1, non-streamed and streamed; the three stacks alternate
batch by batch over several rounds, so drift of a shared machine hits all of them.
``off_check_ns`` is the disabled path's whole extra work (the per-call look-up of the
telemetry setting), timed on its own with ``timeit``.

Prints a table, then ONE final JSON line::

    {"cpu_us_per_call": {"off": ..., "api": ..., "sdk": ...},          # plain calls
     "added_cpu_us_per_call_sdk": ..., "added_cpu_us_per_call_api": ...,
     "added_p50_ms_sdk": ..., "stream_added_cpu_us_per_call_sdk": ..., "off_check_ns": ...}

Run from the repo root: ``python benchmarks/bench_telemetry.py [--quick] [--requests N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import time
import timeit
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from _common import (
    MESSAGES,
    EmulatorProcess,
    Series,
    Site,
    bench_catalog,
    emulated,
    final_line,
    library_fingerprint,
    log,
    print_table,
    run_batch,
)

from hybridstack import Stack, Telemetry

MODES = ("plain", "stream")
STACKS = ("off", "api", "sdk")


def sdk_telemetry() -> tuple[Telemetry, Callable[[], int]]:
    """Telemetry with SDK providers and a discarding exporter; returns a span counter."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class Dropping(SpanExporter):
        def __init__(self) -> None:
            self.spans = 0

        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            self.spans += len(spans)
            return SpanExportResult.SUCCESS

    exporter = Dropping()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    telemetry = Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)
    return telemetry, lambda: exporter.spans


def caller(stack: Stack, mode: str) -> Callable[[int], Awaitable[Any]]:
    async def plain(_k: int) -> Any:
        return (await stack.complete(MESSAGES, skill="general")).text

    async def stream(_k: int) -> None:
        async for _event in stack.stream(MESSAGES, skill="general"):
            pass

    return plain if mode == "plain" else stream


def off_check_ns(stack: Stack) -> float:
    """Nanoseconds per call that the disabled path adds: one settings look-up."""
    number = 200_000
    seconds = min(timeit.repeat(stack._telemetry_settings, number=number, repeat=5))
    return seconds / number * 1e9


async def measure(args: argparse.Namespace, base_url: str) -> dict[str, Any]:
    catalog = bench_catalog([Site("otel", "local-1", "LOCAL", base_url)])
    telemetry, exported = sdk_telemetry()
    stacks = {
        "off": Stack(catalog),
        "api": Stack(catalog, telemetry=True),
        "sdk": Stack(catalog, telemetry=telemetry),
    }
    series = {(name, mode): Series() for name in STACKS for mode in MODES}
    try:
        for name in STACKS:  # connections, lazy imports, the OpenTelemetry import
            for mode in MODES:
                await run_batch(caller(stacks[name], mode), args.warmup, 1)
        for r in range(args.rounds):
            order = STACKS if r % 2 == 0 else STACKS[::-1]
            for mode in MODES:
                for name in order:
                    batch = await run_batch(caller(stacks[name], mode), args.requests, 1)
                    series[(name, mode)].add(batch)
                    if batch.errors:
                        log(f"  {name}/{mode}: {batch.errors} error(s): {batch.first_error}")
            log(f"round {r + 1}/{args.rounds} done")
        check_ns = off_check_ns(stacks["off"])
    finally:
        for stack in stacks.values():
            await stack.aclose()
    return {"series": series, "spans": exported(), "off_check_ns": check_ns}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run")
    parser.add_argument("--requests", type=int, default=None, help="calls per batch")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args(argv)
    args.requests = args.requests or (10 if args.quick else 300)
    args.rounds = args.rounds or (2 if args.quick else 5)
    args.warmup = 5 if args.quick else 40

    config = {"deployments": [emulated("bench-llm@otel")], "seed": 0}
    started = time.perf_counter()
    with EmulatorProcess(config) as emulator:
        data = asyncio.run(measure(args, emulator.base_url("bench-llm@otel")))
    elapsed = time.perf_counter() - started

    series: dict[tuple[str, str], Series] = data["series"]
    rows = []
    for mode in MODES:
        for name in STACKS:
            s = series[(name, mode)]
            rows.append([mode, name, s.n, 1000.0 * s.cpu_ms_per_req, s.p(50), s.p(99), s.errors])
    print_table(
        ["mode", "telemetry", "n", "cpu_us/call", "p50_ms", "p99_ms", "errors"],
        rows,
        title="bench_telemetry: per-call cost of OpenTelemetry (c=1, 0 ms emulator)",
    )

    def cpu_us(name: str, mode: str) -> float:
        return 1000.0 * series[(name, mode)].cpu_ms_per_req

    plain = {name: cpu_us(name, "plain") for name in STACKS}
    stream = {name: cpu_us(name, "stream") for name in STACKS}
    final_line(
        {
            "cpu_us_per_call": plain,
            "stream_cpu_us_per_call": stream,
            "added_cpu_us_per_call_api": plain["api"] - plain["off"],
            "added_cpu_us_per_call_sdk": plain["sdk"] - plain["off"],
            "stream_added_cpu_us_per_call_sdk": stream["sdk"] - stream["off"],
            "added_p50_ms_sdk": series[("sdk", "plain")].p(50) - series[("off", "plain")].p(50),
            "off_check_ns": data["off_check_ns"],
            "spans_exported": data["spans"],
            "requests_per_batch": args.requests,
            "rounds": args.rounds,
            "errors": sum(s.errors for s in series.values()),
            "elapsed_s": elapsed,
            "python": platform.python_version(),
            "library": library_fingerprint(),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
