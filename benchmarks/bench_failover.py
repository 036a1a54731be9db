"""Fail-over under a regional outage: success rate, traffic to the dead region, tail latency.

One family (``bench-llm``) with three deployments in three jurisdictions, all emulated
(openai protocol, 50 ms latency by default):

* A ``bench-llm@cn`` (CN) — fully down (``outage=True``: 503 on every request);
* B ``bench-llm@sg`` (SG) — failing 30%: 10% 500, 10% 503, 10% 429 with a short Retry-After;
* C ``bench-llm@eu`` (EU) — healthy.

A ``Stack`` with its default settings (weighted policy, so A is often first in the
plan; default retries, breakers, budget; a seed for reproducible draws) sends 2,000
non-streamed requests at concurrency 32. The same load is first run with all three
healthy for the baseline p99. The emulator runs in-process on a background thread
(``with Emulator(cfg)``) so its counters can be read directly (``--emulator
subprocess`` runs it in its own process and reads them over a loopback endpoint);
they are checked against the Stack's in-memory ledger, attempt by attempt.

Prints tables (per-deployment counts from both sides, breakers, executor events,
latency by number of attempts), then ONE final JSON line::

    {"success_rate": ..., "requests_to_dead": ..., "attempts_per_request": ...,
     "p50_ms": ..., "p99_ms": ..., "p99_healthy_ms": ..., "counters_match_ledger": ...,
     "per_deployment": {"emulator": {...}, "ledger": {...}}, ...}

Run from the repo root: ``python benchmarks/bench_failover.py [--quick] [--requests N]
[--concurrency C] [--seed S]``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from _common import (
    FAMILY,
    MESSAGES,
    Batch,
    EmulatorProcess,
    Site,
    add_emulator_option,
    bench_catalog,
    emulated,
    final_line,
    log,
    percentile,
    print_table,
    run_batch,
    run_facts,
)

from hybridstack import Stack
from hybridstack.resilience import ExecutionEvent
from hybridstack.testing.emulator import Emulator, EmulatorConfig

DEAD, FLAKY, HEALTHY = f"{FAMILY}@cn", f"{FAMILY}@sg", f"{FAMILY}@eu"
SITES = (("cn", "cn-hangzhou", "CN"), ("sg", "ap-southeast-1", "SG"), ("eu", "eu-central-1", "EU"))
ROLE = {DEAD: "A down", FLAKY: "B 30% 5xx/429", HEALTHY: "C healthy"}
#: What the emulator's outcome looks like on the wire (and so in the ledger's ``status``).
OUTCOME_STATUS = {"ok": 200, "429": 429, "500": 500, "503": 503, "outage": 503}


def emulator_config(args: argparse.Namespace, *, outage: bool) -> EmulatorConfig:
    lat = args.latency_ms
    faults: dict[str, dict[str, Any]] = {name: {"latency_ms": lat} for name in ROLE}
    if outage:
        faults[DEAD]["outage"] = True
        faults[FLAKY].update(p_500=0.1, p_503=0.1, p_429=0.1, retry_after_s=args.retry_after_s)
    return EmulatorConfig.model_validate(
        {"seed": args.seed, "deployments": [emulated(name, **faults[name]) for name in ROLE]}
    )


@dataclass
class Load:
    """What one scenario's load produced on the client side."""

    stack: Stack
    batch: Batch
    #: per call: (ok, latency s, network attempts, error type)
    results: list[tuple[bool, float, int, str]]
    events: list[ExecutionEvent]
    #: (seconds since the load started, event) for events that opened a breaker
    breaker_events: list[tuple[float, ExecutionEvent]] = field(default_factory=list)


async def drive(args: argparse.Namespace, emulator: Emulator | EmulatorProcess) -> Load:
    """Send the load through a fresh Stack (default settings, seeded) and collect results."""
    sites = [
        Site(site, region, j, emulator.base_url(f"{FAMILY}@{site}")) for site, region, j in SITES
    ]
    stack = Stack(bench_catalog(sites), seed=args.seed)
    # SDK imported and clients built first (as the docs advise at start-up), so neither
    # scenario's tail carries the cold start and p99 compares like with like.
    await stack.warm_up()
    perf = time.perf_counter
    load = Load(stack, Batch(0, 0.0, 0.0, []), [(False, 0.0, 0, "")] * args.requests, [])
    started = perf()

    def on_event(event: ExecutionEvent) -> None:
        load.events.append(event)
        if event.kind == "breaker_open" and "opened" in event.message:
            load.breaker_events.append((perf() - started, event))

    async def call(k: int) -> None:
        t0 = perf()
        try:
            response = await stack.complete(MESSAGES, skill="general", on_event=on_event)
        except Exception as exc:
            load.results[k] = (False, perf() - t0, -1, type(exc).__name__)
            raise
        load.results[k] = (True, perf() - t0, response.attempts, "")

    started = perf()
    load.batch = await run_batch(call, args.requests, args.concurrency, settle_gc=False)
    await stack.aclose()
    return load


def per_deployment(stack: Stack, emulator: Emulator | EmulatorProcess) -> dict[str, Any]:
    """Counts from both sides and whether they agree (per deployment and per attempt)."""
    counters = emulator.all_counters()
    attempts = stack.ledger.attempts()
    emu_side: dict[str, dict[str, Any]] = {}
    ledger_side: dict[str, dict[str, Any]] = {}
    match = True
    mismatches: list[str] = []
    for name in ROLE:
        c = counters[name]
        emu_status: Counter[str] = Counter()
        for outcome, count in c.by_outcome.items():
            if count:
                emu_status[str(OUTCOME_STATUS.get(outcome, outcome))] += count
        emu_side[name] = {
            "requests": c.requests,
            "ok": c.ok,
            "by_outcome": {k: v for k, v in c.by_outcome.items() if v},
            "by_status": dict(sorted(emu_status.items())),
        }
        mine = [a for a in attempts if a.deployment == name]
        led_status: Counter[str] = Counter()
        led_outcome: Counter[str] = Counter()
        for a in mine:
            led_outcome[a.outcome] += 1
            led_status[
                str(a.status if a.status is not None else (200 if a.outcome == "ok" else a.outcome))
            ] += 1
        ledger_side[name] = {
            "attempts": len(mine),
            "ok": led_outcome.get("ok", 0),
            "by_outcome": dict(sorted(led_outcome.items())),
            "by_status": dict(sorted(led_status.items())),
        }
        emu_ids = Counter((r.call_id, r.attempt_id) for r in c.attempts)
        led_ids = Counter((a.call_id, f"{a.call_id}-{a.attempt_index}") for a in mine)
        checks = {
            "requests": c.requests == len(mine),
            "ok": c.ok == led_outcome.get("ok", 0),
            "by_status": emu_status == led_status,
            "attempt_ids": emu_ids == led_ids,
        }
        for what, ok in checks.items():
            if not ok:
                match = False
                mismatches.append(f"{name}: {what}")
    return {
        "emulator": emu_side,
        "ledger": ledger_side,
        "match": match,
        "mismatches": mismatches,
        "attempts": attempts,
    }


def latency_summary(results: list[tuple[bool, float, int, str]]) -> dict[str, float]:
    lat = [r[1] for r in results]
    return {"p50_ms": 1000 * percentile(lat, 50), "p99_ms": 1000 * percentile(lat, 99)}


async def scenario(args: argparse.Namespace, *, outage: bool) -> dict[str, Any]:
    config = emulator_config(args, outage=outage)
    emulator: Any
    if args.emulator == "subprocess":
        emulator = EmulatorProcess(config.model_dump(mode="json"), control=True)
    else:
        emulator = Emulator(config)  # in-process, on a background thread
    with emulator:
        load = await drive(args, emulator)
        counts = per_deployment(load.stack, emulator)
    results, batch = load.results, load.batch
    ok_calls = sum(1 for r in results if r[0])
    total_requests = sum(v["requests"] for v in counts["emulator"].values())
    out: dict[str, Any] = {
        "calls": len(results),
        "success_rate": ok_calls / len(results),
        "errors": dict(Counter(r[3] for r in results if not r[0])),
        "requests_total": total_requests,
        "attempts_per_request": total_requests / len(results),
        "rps": batch.n / batch.wall_s,
        "wall_s": batch.wall_s,
        **latency_summary(results),
        "counts": counts,
        "events": load.events,
        "results": results,
        "breakers": load.stack.breakers.snapshot(),
        "breaker_events": load.breaker_events,
    }
    return out


# --------------------------------------------------------------------------- reporting


def report_scenario(title: str, data: dict[str, Any]) -> None:
    counts = data["counts"]
    rows = []
    for name in ROLE:
        e, led = counts["emulator"][name], counts["ledger"][name]
        info = data["breakers"].get(name)
        rows.append(
            [
                name,
                ROLE[name],
                e["requests"],
                led["attempts"],
                e["ok"],
                led["ok"],
                " ".join(f"{k}:{v}" for k, v in e["by_status"].items()),
                " ".join(f"{k}:{v}" for k, v in led["by_status"].items()),
                f"{info.state}/{info.times_opened}x" if info is not None else "-",
            ]
        )
    mismatches = f" ({', '.join(counts['mismatches'])})" if counts["mismatches"] else ""
    print_table(
        ["deployment", "role", "emu req", "ledger", "emu ok", "led ok", "emulator by status",
         "ledger by status", "breaker/opened"],
        rows,
        title=(
            f"{title}: {data['calls']} calls, success {data['success_rate']:.4f}, "
            f"{data['attempts_per_request']:.3f} attempts/call, p50 {data['p50_ms']:.1f} ms, "
            f"p99 {data['p99_ms']:.1f} ms, {data['rps']:.0f} calls/s; counters match ledger: "
            f"{counts['match']}{mismatches}"
        ),
    )  # fmt: skip

    # Latency by number of attempts: where the tail comes from.
    by_attempts: dict[int, list[float]] = defaultdict(list)
    for ok, latency, attempts, _ in data["results"]:
        by_attempts[attempts if ok else -1].append(latency)
    rows = [
        [k if k >= 0 else "failed", len(v), 1000 * percentile(v, 50), 1000 * percentile(v, 99),
         1000 * max(v)]
        for k, v in sorted(by_attempts.items())
    ]  # fmt: skip
    print_table(
        ["attempts", "calls", "p50 ms", "p99 ms", "max ms"],
        rows,
        title=f"{title}: latency by attempts per call",
    )

    # What the executor did: events by kind, waits.
    kinds: Counter[tuple[str, str]] = Counter()
    waits: dict[str, list[float]] = defaultdict(list)
    for ev in data["events"]:
        key = (
            ev.deployment
            if ev.kind not in ("failover",)
            else f"{ev.deployment}->{ev.to_deployment}"
        )
        kinds[(ev.kind, key)] += 1
        if ev.delay_s:
            waits[ev.kind].append(ev.delay_s)
    rows = [[kind, who, n] for (kind, who), n in sorted(kinds.items())]
    if rows:
        print_table(["event", "deployment(s)", "count"], rows, title=f"{title}: executor events")
    if waits:
        rows = [
            [kind, len(v), 1000 * sum(v) / len(v), 1000 * max(v)]
            for kind, v in sorted(waits.items())
        ]
        print_table(
            ["event", "with delay", "mean ms", "max ms"], rows, title=f"{title}: events that waited"
        )


def dead_timeline(data: dict[str, Any]) -> dict[str, Any]:
    """When the requests to the dead deployment were sent, and when its breaker opened."""
    everything = data["counts"]["attempts"]
    attempts = sorted((a for a in everything if a.deployment == DEAD), key=lambda a: a.started_at)
    if not attempts:
        return {}
    first = min(a.started_at for a in everything)
    offsets = [(a.started_at - first).total_seconds() * 1000 for a in attempts]
    answered = sorted(o + a.latency_s * 1000 for o, a in zip(offsets, attempts, strict=True))
    opened = [t * 1000 for t, ev in data["breaker_events"] if ev.deployment == DEAD]
    out: dict[str, Any] = {
        "sent_at_ms": [round(o, 1) for o in offsets],
        "first_failure_back_ms": round(answered[0], 1),
        "breaker_opened_at_ms": [round(t, 1) for t in opened],
        "by_breaker_state": dict(Counter(a.breaker_state for a in attempts)),
        "by_attempt_index": dict(sorted(Counter(a.attempt_index for a in attempts).items())),
    }
    if opened:
        out["sent_before_first_failure_back"] = sum(1 for o in offsets if o < answered[0])
        out["sent_before_breaker_opened"] = sum(1 for o in offsets if o < opened[0])
    return out


def breaker_times(data: dict[str, Any]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = defaultdict(list)
    for t, ev in data["breaker_events"]:
        name = (
            ev.message.split(" opened or held", 1)[0] if " opened" in ev.message else ev.deployment
        )
        out[name].append(round(t * 1000, 1))
    return dict(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=None, help="calls per scenario (2000)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency-ms", type=float, default=50.0, help="emulator latency")
    parser.add_argument("--retry-after-s", type=float, default=0.2, help="B's 429 Retry-After")
    parser.add_argument("--seed", type=int, default=7, help="router and emulator seed")
    parser.add_argument("--quick", action="store_true", help="a small run (200 calls)")
    add_emulator_option(parser, default="thread")
    args = parser.parse_args(argv)
    if args.requests is None:
        args.requests = 200 if args.quick else 2000
    if args.requests < 1 or args.concurrency < 1:
        parser.error("--requests and --concurrency must be positive")

    t0 = time.perf_counter()
    healthy = asyncio.run(scenario(args, outage=False))
    log(f"healthy: p99 {healthy['p99_ms']:.1f} ms ({time.perf_counter() - t0:.0f}s)")
    outage = asyncio.run(scenario(args, outage=True))
    log(f"outage: p99 {outage['p99_ms']:.1f} ms ({time.perf_counter() - t0:.0f}s)")

    report_scenario("healthy (all three up)", healthy)
    report_scenario("outage (A down, B 30% failing, C healthy)", outage)

    counts = outage["counts"]
    requests_to_dead = counts["emulator"][DEAD]["requests"]
    timeline = dead_timeline(outage)
    retry_after_attempts = [a.retry_after_s for a in counts["attempts"] if a.retry_after_s]
    payload: dict[str, Any] = {
        "success_rate": outage["success_rate"],
        "requests_to_dead": requests_to_dead,
        "attempts_per_request": outage["attempts_per_request"],
        "p50_ms": outage["p50_ms"],
        "p99_ms": outage["p99_ms"],
        "p99_healthy_ms": healthy["p99_ms"],
        "p50_healthy_ms": healthy["p50_ms"],
        "p99_ratio": outage["p99_ms"] / healthy["p99_ms"] if healthy["p99_ms"] else None,
        "counters_match_ledger": bool(counts["match"] and healthy["counts"]["match"]),
        "per_deployment": {
            "emulator": {k: v["requests"] for k, v in counts["emulator"].items()},
            "ledger": {k: v["attempts"] for k, v in counts["ledger"].items()},
            "emulator_by_status": {k: v["by_status"] for k, v in counts["emulator"].items()},
            "ledger_by_status": {k: v["by_status"] for k, v in counts["ledger"].items()},
        },
        "healthy_per_deployment": {
            k: v["requests"] for k, v in healthy["counts"]["emulator"].items()
        },
        "errors": outage["errors"],
        "dead_timeline_ms": timeline,
        "retry_after_attempts": len(retry_after_attempts),
        "breakers": {
            name: {"state": info.state, "times_opened": info.times_opened}
            for name, info in outage["breakers"].items()
        },
        # "X opened or held by this failure" events: the deployment's own breaker, or
        # its quota scope ("scope:X", opened or held by a 429's Retry-After).
        "breaker_events_at_ms": breaker_times(outage),
        "rps": outage["rps"],
        "rps_healthy": healthy["rps"],
    }
    payload["targets"] = {
        "success_rate==1.0": payload["success_rate"] == 1.0,
        "requests_to_dead<=10": requests_to_dead <= 10,
        "p99<=2x_healthy": payload["p99_ms"] <= 2 * payload["p99_healthy_ms"],
    }
    payload["config"] = {
        "requests": args.requests,
        "concurrency": args.concurrency,
        "latency_ms": args.latency_ms,
        "retry_after_s": args.retry_after_s,
        "seed": args.seed,
        "quick": args.quick,
        "emulator": args.emulator,
        **run_facts(t0),
    }
    final_line(payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
