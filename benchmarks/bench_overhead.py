"""What hybridstack costs on top of the bare ``openai`` client, against the emulator.

The same requests go (a) straight through ``openai.AsyncOpenAI(max_retries=0)`` and
(b) through ``Stack.complete`` / ``Stack.stream`` to one emulated openai-protocol
deployment (a one-deployment catalog: the Stack still plans, runs the executor with
its breakers, records every attempt in its default in-memory ledger).

Cells: concurrency 1, 16 and 64 x emulator latency 0 ms and 50 ms x non-streamed and
streamed. Raw and stack batches of each cell run back to back, in rounds, in one
process (the order alternates per round: raw-stack, stack-raw, ...) so machine drift
cancels out in the ratios: ``rps_ratio`` is the median of the per-round stack/raw
ratios (``rps_ratio_pooled``: total requests over total time, per path). The emulator
runs as a separate process (``python -m hybridstack.testing.emulator``), so
``time.process_time()`` counts only the client.

Default size: up to 400 requests per batch and 5 rounds, shrunk (from the warm-up
rates) to keep the measured rounds near ``--budget`` seconds; ``--requests`` makes the
size exact. ``--quick`` is a tiny smoke run.

Prints a table of every cell, then ONE final JSON line::

    {"raw_rps": ..., "stack_rps": ..., "rps_ratio": ...,            # c=64, 0 ms, plain
     "cpu_ms_per_req_raw": ..., "cpu_ms_per_req_stack": ...,       # c=64, 0 ms, plain
     "added_p50_ms": ..., "added_p99_ms": ...,                     # c=1,  0 ms, plain
     "stream_rps_ratio": ...,                                      # c=64, 0 ms, streamed
     ...}

Run from the repo root: ``python benchmarks/bench_overhead.py [--quick] [--requests N]
[--rounds R]``.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import openai
from _common import (
    API_KEY,
    MESSAGES,
    MODEL,
    EmulatorProcess,
    Series,
    Site,
    bench_catalog,
    emulated,
    final_line,
    library_fingerprint,
    log,
    open_fds,
    print_table,
    run_batch,
)

from hybridstack import Stack

CONCURRENCY = (1, 16, 64)
LATENCIES_MS = (0, 50)
MODES = ("plain", "stream")
PATHS = ("raw", "stack")
HEADLINE = (64, 0)  # concurrency, latency ms: rps_ratio, cpu per request, stream ratio
SINGLE = (1, 0)  # added latency


@dataclass(frozen=True)
class Cell:
    concurrency: int
    latency_ms: int
    mode: str

    @property
    def label(self) -> str:
        return f"c={self.concurrency:<2} {self.latency_ms:>2}ms {self.mode}"


def requests_for(cell: Cell, n: int) -> int:
    """Requests per batch: ``n``, fewer where latency (not CPU) bounds the rate.

    At 50 ms a worker does at most 20 requests/s, so 25 per worker keeps those batches
    near 1.25 s instead of n / 20 s at concurrency 1.
    """
    if cell.latency_ms == 0:
        return n
    return max(4, min(n, 25 * cell.concurrency))


def estimated_seconds(cell: Cell, n: int, warm_rps: dict[tuple[str, str], float]) -> float:
    """Rough wall time of one round of ``cell`` (both paths) from the warm-up rates."""
    total = 0.0
    for path in PATHS:
        rps = max(1e-3, warm_rps[(path, cell.mode)])
        per_request = 1.0 / rps + cell.latency_ms / 1000.0  # one worker, CPU + latency
        rate = min(rps, cell.concurrency / per_request)
        total += n / rate
    return total


def plan_sizes(
    args: argparse.Namespace, cells: list[Cell], warm_rps: dict[tuple[str, str], float]
) -> dict[Cell, int]:
    """Requests per batch for each cell; shrunk to fit ``--budget`` unless --requests was given."""
    sizes = {cell: requests_for(cell, args.requests) for cell in cells}
    if args.requests_given:
        return sizes
    estimate = args.rounds * sum(estimated_seconds(c, sizes[c], warm_rps) for c in cells)
    if estimate <= args.budget:
        return sizes
    scale = args.budget / estimate
    floor = 20 if not args.quick else 2
    log(
        f"estimated {estimate:.0f}s for {args.rounds} rounds of {args.requests} requests; "
        f"scaling batches by {scale:.2f} to fit the {args.budget:.0f}s budget"
    )
    return {cell: max(min(floor, n), int(n * scale)) for cell, n in sizes.items()}


class Paths:
    """The two ways of sending a request, per emulated deployment."""

    def __init__(self, base_url: str, site: Site, skill: str | None) -> None:
        self.client = openai.AsyncOpenAI(base_url=base_url, api_key=API_KEY, max_retries=0)
        self.stack = Stack(bench_catalog([site]))
        self.skill = skill

    def call(self, path: str, mode: str) -> Callable[[int], Awaitable[Any]]:
        client, stack, skill = self.client, self.stack, self.skill
        create = client.chat.completions.create

        async def raw_plain(_k: int) -> Any:
            completion = await create(model=MODEL, messages=MESSAGES)
            return completion.choices[0].message.content

        async def raw_stream(_k: int) -> None:
            stream = await create(
                model=MODEL,
                messages=MESSAGES,
                stream=True,
                stream_options={"include_usage": True},
            )
            async for _chunk in stream:
                pass

        async def stack_plain(_k: int) -> Any:
            response = await stack.complete(MESSAGES, skill=skill)
            return response.text

        async def stack_stream(_k: int) -> None:
            async for _event in stack.stream(MESSAGES, skill=skill):
                pass

        return {
            ("raw", "plain"): raw_plain,
            ("raw", "stream"): raw_stream,
            ("stack", "plain"): stack_plain,
            ("stack", "stream"): stack_stream,
        }[(path, mode)]

    async def aclose(self) -> None:
        await self.client.close()
        await self.stack.aclose()


async def measure(args: argparse.Namespace, emulator: EmulatorProcess) -> dict[str, Any]:
    skill = None if args.skill == "auto" else args.skill
    paths: dict[int, Paths] = {}
    for latency in LATENCIES_MS:
        name = f"bench-llm@lat{latency}"
        site = Site(f"lat{latency}", "local-1", "LOCAL", emulator.base_urls[name])
        paths[latency] = Paths(emulator.base_urls[name], site, skill)

    cells = [Cell(c, lat, mode) for lat in LATENCIES_MS for c in CONCURRENCY for mode in MODES]
    series: dict[tuple[Cell, str], Series] = {(cell, p): Series() for cell in cells for p in PATHS}
    try:
        # Warm-up: connections, lazy imports, the router's static cache ... for both
        # paths, both modes, both deployments. The 0 ms rates size the batches.
        warm_rps: dict[tuple[str, str], float] = {}
        for latency in LATENCIES_MS:
            for mode in MODES:
                for path in PATHS:
                    n = args.warmup if latency == 0 else max(4, args.warmup // 4)
                    batch = await run_batch(paths[latency].call(path, mode), n, 16)
                    if latency == 0:
                        warm_rps[(path, mode)] = batch.n / batch.wall_s
        log(
            "warm-up rps at c=16, 0 ms: "
            + ", ".join(f"{p}/{m} {r:.0f}" for (p, m), r in sorted(warm_rps.items()))
        )
        sizes = plan_sizes(args, cells, warm_rps)

        started = time.perf_counter()
        rounds_done = 0
        for r in range(args.rounds):
            elapsed = time.perf_counter() - started
            if r >= 2 and not args.requests_given and elapsed / r * (r + 1) > args.budget * 1.2:
                # A shared machine can slow down after the warm-up estimate: keep the
                # run near its budget (every completed round is still a paired A/B).
                log(f"stopping after {r} rounds: the next would end past the time budget")
                break
            order = PATHS if r % 2 == 0 else PATHS[::-1]
            for cell in cells:
                n = sizes[cell]
                for path in order:
                    call = paths[cell.latency_ms].call(path, cell.mode)
                    batch = await run_batch(call, n, cell.concurrency)
                    series[(cell, path)].add(batch)
                    if batch.errors:
                        log(f"  {cell.label} {path}: {batch.errors} error(s): {batch.first_error}")
            log(f"round {r + 1}/{args.rounds} done ({time.perf_counter() - started:.0f}s)")
            rounds_done = r + 1
        ledger_attempts = {lat: len(p.stack.ledger.attempts()) for lat, p in paths.items()}
        fds = open_fds()  # before closing: leaked clients/connections show up here
    finally:
        for p in paths.values():
            await p.aclose()
    return {
        "cells": cells,
        "series": series,
        "ledger_attempts": ledger_attempts,
        "sizes": {cell.label: n for cell, n in sizes.items()},
        "rounds_done": rounds_done,
        "open_fds": fds,
    }


def report(args: argparse.Namespace, data: dict[str, Any], elapsed_s: float) -> None:
    cells: list[Cell] = data["cells"]
    series: dict[tuple[Cell, str], Series] = data["series"]
    rows = []
    out_cells = []
    for cell in cells:
        raw, stk = series[(cell, "raw")], series[(cell, "stack")]
        ratios = [s / r for s, r in zip(stk.round_rps(), raw.round_rps(), strict=True) if r]
        row = {
            "concurrency": cell.concurrency,
            "latency_ms": cell.latency_ms,
            "mode": cell.mode,
            "n": raw.n,
            "raw_rps": raw.rps,
            "stack_rps": stk.rps,
            # Median of the per-round paired ratios: a burst of load from other work on
            # the machine hits one round's pair, not the whole figure.
            "rps_ratio": statistics.median(ratios) if ratios else float("nan"),
            "rps_ratio_pooled": stk.rps / raw.rps if raw.rps else float("nan"),
            "cpu_ratio": raw.cpu_ms_per_req / stk.cpu_ms_per_req
            if stk.cpu_ms_per_req
            else float("nan"),
            "rps_ratio_min": min(ratios) if ratios else float("nan"),
            "rps_ratio_max": max(ratios) if ratios else float("nan"),
            "cpu_ms_raw": raw.cpu_ms_per_req,
            "cpu_ms_stack": stk.cpu_ms_per_req,
            "p50_raw_ms": raw.p(50),
            "p50_stack_ms": stk.p(50),
            "p99_raw_ms": raw.p(99),
            "p99_stack_ms": stk.p(99),
            "errors": raw.errors + stk.errors,
        }
        out_cells.append(row)
        rows.append(
            [
                cell.concurrency,
                cell.latency_ms,
                cell.mode,
                raw.n,
                raw.rps,
                stk.rps,
                row["rps_ratio"],
                f"{row['rps_ratio_min']:.2f}-{row['rps_ratio_max']:.2f}",
                raw.cpu_ms_per_req,
                stk.cpu_ms_per_req,
                stk.cpu_ms_per_req - raw.cpu_ms_per_req,
                raw.p(50),
                stk.p(50),
                stk.p(50) - raw.p(50),
                raw.p(99),
                stk.p(99),
                stk.p(99) - raw.p(99),
                row["errors"],
            ]
        )
    print_table(
        [
            "conc", "lat", "mode", "n/path", "raw rps", "stack rps", "ratio", "ratio range",
            "cpu raw", "cpu stack", "+cpu", "p50 raw", "p50 stk", "+p50", "p99 raw",
            "p99 stk", "+p99", "err",
        ],
        rows,
        title=(
            f"bench_overhead: raw openai.AsyncOpenAI vs Stack ({data['rounds_done']} rounds, "
            "interleaved; rps = pooled over rounds; ratio = median of per-round stack/raw "
            "rps ratios (range: min-max); cpu = client CPU ms/request; latencies in ms)"
        ),
    )  # fmt: skip

    def find(concurrency: int, latency: int, mode: str) -> dict[str, Any]:
        for row in out_cells:
            if (row["concurrency"], row["latency_ms"], row["mode"]) == (concurrency, latency, mode):
                return row
        raise KeyError((concurrency, latency, mode))

    head = find(*HEADLINE, "plain")
    head_stream = find(*HEADLINE, "stream")
    single = find(*SINGLE, "plain")
    payload: dict[str, Any] = {
        "raw_rps": head["raw_rps"],
        "stack_rps": head["stack_rps"],
        "rps_ratio": head["rps_ratio"],
        "rps_ratio_pooled": head["rps_ratio_pooled"],
        "cpu_ratio": head["cpu_ratio"],
        "cpu_ms_per_req_raw": head["cpu_ms_raw"],
        "cpu_ms_per_req_stack": head["cpu_ms_stack"],
        "added_p50_ms": single["p50_stack_ms"] - single["p50_raw_ms"],
        "added_p99_ms": single["p99_stack_ms"] - single["p99_raw_ms"],
        "stream_rps_ratio": head_stream["rps_ratio"],
        "stream_rps_ratio_pooled": head_stream["rps_ratio_pooled"],
        "stream_cpu_ratio": head_stream["cpu_ratio"],
        "stream_raw_rps": head_stream["raw_rps"],
        "stream_stack_rps": head_stream["stack_rps"],
        "stream_cpu_ms_per_req_raw": head_stream["cpu_ms_raw"],
        "stream_cpu_ms_per_req_stack": head_stream["cpu_ms_stack"],
        "p50_raw_ms_c1": single["p50_raw_ms"],
        "p50_stack_ms_c1": single["p50_stack_ms"],
        "errors": sum(row["errors"] for row in out_cells),
    }
    payload["targets"] = {
        "rps_ratio>=0.9": payload["rps_ratio"] >= 0.9,
        "stream_rps_ratio>=0.9": payload["stream_rps_ratio"] >= 0.9,
        "added_p50_ms<=0.5": payload["added_p50_ms"] <= 0.5,
    }
    payload["config"] = {
        "requests": args.requests,
        "rounds": data["rounds_done"],
        "skill": args.skill,
        "quick": args.quick,
        "elapsed_s": round(elapsed_s, 1),
        "python": platform.python_version(),
        "openai": openai.__version__,
        "ledger_attempts": data["ledger_attempts"],
        "batch_sizes": data["sizes"],
        "open_fds_end": data["open_fds"],
        "library": library_fingerprint(),
    }
    payload["cells"] = out_cells
    final_line(payload)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=None, help="requests per batch (0 ms)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up requests per path")
    parser.add_argument("--quick", action="store_true", help="a tiny run (smoke test)")
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds the measured rounds may take; batches shrink to fit unless "
        "--requests is given (default 150, quick 8)",
    )
    parser.add_argument(
        "--skill",
        default="general",
        help="skill passed to the Stack; 'auto' lets the classifier pick (default: general)",
    )
    args = parser.parse_args(argv)
    args.requests_given = args.requests is not None
    if args.quick:
        defaults = {"requests": 8, "rounds": 2, "warmup": 8, "budget": 8.0}
    else:
        defaults = {"requests": 400, "rounds": 5, "warmup": 60, "budget": 150.0}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.requests < 1 or args.rounds < 1:
        parser.error("--requests and --rounds must be positive")

    config = {
        "seed": 0,
        "deployments": [emulated(f"bench-llm@lat{lat}", latency_ms=lat) for lat in LATENCIES_MS],
    }
    started = time.perf_counter()
    with EmulatorProcess(config) as emulator:
        log(f"emulator pid {emulator.pid} at {emulator.url}")
        data = asyncio.run(measure(args, emulator))
    report(args, data, time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
