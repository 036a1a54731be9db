"""Shared health state: 4 worker processes, one region down, Redis-shared vs local breakers.

One family (``bench-llm``) with four emulated deployments (openai protocol, in a child
process with a loopback counters endpoint):

* ``bench-llm@cn`` (CN) — down (``outage=True``: 503 on every request);
* ``bench-llm@sg`` (SG) — flaky: 30% instant 500s;
* ``bench-llm@eu`` and ``bench-llm@us`` — healthy.

**Fleet** — ``--workers`` processes (multiprocessing, spawn), each with its own ``Stack``
(default settings, weighted policy, its own seed), warm up, wait at a barrier, then send
``--calls`` calls each at ``--concurrency``. Run twice in the same run against the same
emulator, counters reset in between: with each process's own health state (``local``)
and with a ``RedisHealthStore`` on 127.0.0.1:6379 under a fresh key prefix (``redis``).
``requests_to_dead_*`` is the emulator's request count for the dead deployment: with
local state every worker rediscovers the outage (N x ~5-8 requests); with Redis the
first five failures anywhere open it for all.

**Overhead** — one process, one healthy deployment, concurrency 1: ``--overhead-calls``
calls each through a local-state Stack and a Redis-store Stack, alternating call by
call (so the machine's load hits both alike); ``added_p50_ms`` is p50(redis) -
p50(local), ``added_cpu_ms_per_call`` the same for this process's CPU time (the
store's background thread included).

Final JSON keys: ``requests_to_dead_redis``, ``requests_to_dead_local``, ``ratio``,
``success_rate_redis``, ``success_rate_local``, ``added_p50_ms``, ``p50_local_ms``,
``p50_redis_ms``, ``targets``.

Run from the repo root: ``python benchmarks/bench_shared_state.py [--quick]
[--workers N] [--calls N] [--concurrency C] [--redis URL]``.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import secrets
import sys
import time
from typing import Any

from _common import (
    FAMILY,
    MESSAGES,
    EmulatorProcess,
    Site,
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

DEAD, FLAKY = f"{FAMILY}@cn", f"{FAMILY}@sg"
SITES = (("cn", "cn-beijing", "CN"), ("sg", "ap-southeast-1", "SG"))
SITES += (("eu", "eu-central-1", "EU"), ("us", "us-east-1", "US"))


def sites(base_urls: dict[str, str], only: tuple[str, ...] | None = None) -> list[Site]:
    return [
        Site(site, region, jurisdiction, base_urls[f"{FAMILY}@{site}"])
        for site, region, jurisdiction in SITES
        if only is None or site in only
    ]


def _store(url: str, prefix: str) -> Any:
    from hybridstack.resilience import RedisHealthStore

    return RedisHealthStore(url, prefix=prefix)


async def _worker(
    index: int, mode: str, url: str, prefix: str, base_urls: dict[str, str], args: Any, barrier: Any
) -> dict[str, Any]:
    store = _store(url, prefix) if mode == "redis" else None
    stack = Stack(bench_catalog(sites(base_urls)), seed=1000 + index, health_store=store)
    await stack.warm_up()
    if store is not None:
        await asyncio.to_thread(store.sync_now)
    await asyncio.to_thread(barrier.wait)
    batch = await run_batch(
        lambda _k: stack.complete(MESSAGES, skill="general"), args.calls, args.concurrency
    )
    await stack.aclose()
    if store is not None:
        store.close()
    return {"n": batch.n, "errors": batch.errors, "first_error": batch.first_error}


def worker(
    index: int,
    mode: str,
    url: str,
    prefix: str,
    base_urls: dict[str, str],
    args: Any,
    barrier: Any,
    results: Any,
) -> None:
    results.put((index, asyncio.run(_worker(index, mode, url, prefix, base_urls, args, barrier))))


def fleet(
    mode: str, emulator: EmulatorProcess, args: argparse.Namespace, prefix: str
) -> dict[str, Any]:
    context = mp.get_context("spawn")
    barrier = context.Barrier(args.workers)
    results = context.Queue()
    emulator.reset_counters()
    processes = [
        context.Process(
            target=worker,
            args=(i, mode, args.redis, prefix, emulator.base_urls, args, barrier, results),
        )
        for i in range(args.workers)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    counters = emulator.all_counters()
    calls = sum(o["n"] for _, o in outcomes)
    errors = sum(o["errors"] for _, o in outcomes)
    first = next((o["first_error"] for _, o in outcomes if o["first_error"]), None)
    requests = {name: c.requests for name, c in counters.items()}
    log(f"{mode}: {calls} calls, {errors} failed, requests {requests}, first error {first}")
    return {
        "requests_to_dead": counters[DEAD].requests,
        "success_rate": (calls - errors) / calls if calls else 0.0,
        "requests": requests,
    }


async def overhead(
    emulator: EmulatorProcess, args: argparse.Namespace, prefix: str
) -> dict[str, float]:
    """Calls alternate local, redis, local, ... so the machine's load hits both alike."""
    catalog = bench_catalog(sites(emulator.base_urls, only=("eu",)))
    store = _store(args.redis, prefix)
    stacks = {"local": Stack(catalog, seed=1), "redis": Stack(catalog, seed=1, health_store=store)}
    for stack in stacks.values():
        await stack.warm_up()
        for _ in range(30):  # warm both paths
            await stack.complete(MESSAGES, skill="general")
    await asyncio.to_thread(store.sync_now)
    latencies: dict[str, list[float]] = {"local": [], "redis": []}
    cpu: dict[str, float] = {"local": 0.0, "redis": 0.0}
    perf, process = time.perf_counter, time.process_time
    for i in range(2 * args.overhead_calls):
        label = ("local", "redis")[i % 2]
        c0, t0 = process(), perf()
        await stacks[label].complete(MESSAGES, skill="general")
        latencies[label].append(perf() - t0)
        cpu[label] += process() - c0
    for stack in stacks.values():
        await stack.aclose()
    syncs = store.syncs
    store.close()
    p50 = {label: 1000 * percentile(values, 50) for label, values in latencies.items()}
    n = args.overhead_calls
    return {
        "p50_local_ms": p50["local"],
        "p50_redis_ms": p50["redis"],
        "added_p50_ms": p50["redis"] - p50["local"],
        # CPU of this process per call (the store's thread included), less the local path's
        "added_cpu_ms_per_call": 1000 * (cpu["redis"] - cpu["local"]) / n,
        "redis_round_trips": syncs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--calls", type=int, default=150, help="calls per worker")
    parser.add_argument("--concurrency", type=int, default=4, help="per worker")
    parser.add_argument("--overhead-calls", type=int, default=500, help="per store, at c=1")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--quick", action="store_true", help="fewer calls (a smoke run)")
    parser.add_argument("--overhead-only", action="store_true", help="skip the fleet runs")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.overhead_calls = 40, 100
    started = time.perf_counter()
    prefix = f"bench-shared-{secrets.token_hex(4)}"
    config = {
        "seed": 7,
        "deployments": [
            emulated(DEAD, outage=True),
            emulated(FLAKY, p_500=0.3),
            emulated(f"{FAMILY}@eu"),
            emulated(f"{FAMILY}@us"),
        ],
    }
    try:
        with EmulatorProcess(config, control=True) as emulator:
            skipped = {"requests_to_dead": 0, "success_rate": 0.0, "requests": {}}
            if args.overhead_only:
                local = shared = skipped
            else:
                local = fleet("local", emulator, args, prefix + "-unused")
                shared = fleet("redis", emulator, args, prefix)
            cost = asyncio.run(overhead(emulator, args, prefix + "-overhead"))
    finally:
        for name in (prefix, prefix + "-overhead"):
            cleaner = _store(args.redis, name)
            cleaner.close()
            cleaner.clear()
    print_table(
        ["state", "requests to dead", "success rate", "requests per deployment"],
        [
            ["local", local["requests_to_dead"], local["success_rate"], local["requests"]],
            ["redis", shared["requests_to_dead"], shared["success_rate"], shared["requests"]],
        ],
        title=f"{args.workers} workers x {args.calls} calls at c={args.concurrency}",
    )
    print_table(
        ["p50 local ms", "p50 redis ms", "added p50 ms", "added CPU ms/call", "round trips"],
        [
            [
                cost["p50_local_ms"],
                cost["p50_redis_ms"],
                cost["added_p50_ms"],
                cost["added_cpu_ms_per_call"],
                cost["redis_round_trips"],
            ]
        ],
        title="Redis store overhead at c=1",
    )
    dead_redis, dead_local = shared["requests_to_dead"], local["requests_to_dead"]
    final_line(
        {
            "requests_to_dead_redis": dead_redis,
            "requests_to_dead_local": dead_local,
            "ratio": dead_local / dead_redis if dead_redis else None,
            "success_rate_redis": shared["success_rate"],
            "success_rate_local": local["success_rate"],
            **cost,
            "workers": args.workers,
            "calls_per_worker": args.calls,
            "targets": {
                "requests_to_dead_redis_max": 12,
                "success_rate": 1.0,
                "added_p50_ms_max": 0.3,
            },
            **run_facts(started),
        }
    )


if __name__ == "__main__":
    sys.exit(main())
