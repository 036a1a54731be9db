"""Routing cost as a user catalog grows: building a Stack and building one plan.

One job: for user catalogs of 10, 100, 1,000 and 5,000 deployments (families of five
deployments each, one per jurisdiction, none of them named by the default skill
table; three families are strong at ``general``), measure

* ``stack_build_ms``: ``Stack(catalog)`` (router, route validation over every skill and
  data class, executor), the median of a few builds;
* ``pinned_plan_us``: ``router.plan(request, model=<family>)``, a five-candidate plan
  pinned by ``model=`` (the other deployments are exclusions);
* ``route_model_us``: ``stack.route(messages, model=<family>)`` without ``skill=``: a
  model pin needs no skill classifier;
* ``skill_plan_us``: ``router.plan(request, skill="general")``, fifteen candidates
  from the skill table's catalog-strength fall-backs.

Targets (issue 9.9): Stack build <= 100 ms and pinned plan <= 40 us at 5,000
deployments. Per-call times are the best of five blocks (a shared machine's load only
ever adds). Prints a table, then ONE final JSON line. ``--quick`` is a tiny smoke run
(10 and 100 deployments, few repetitions).

Run from the repo root: ``python benchmarks/bench_routing.py [--quick]``.
"""

from __future__ import annotations

import argparse
import functools
import gc
import statistics
import sys
import time
from datetime import date

from _common import API_KEY, final_line, log, print_table, run_facts

from hybridstack import Stack
from hybridstack.catalog import Catalog, Deployment, Family, Price
from hybridstack.types import ChatRequest

SIZES = (10, 100, 1_000, 5_000)
QUICK_SIZES = (10, 100)
SITES = (
    ("us", "us-east-1", "US"),
    ("eu", "eu-central-1", "EU"),
    ("sg", "ap-southeast-1", "SG"),
    ("cn", "cn-beijing", "CN"),
    ("local", "local", "LOCAL"),
)
TARGET_STACK_MS = 100.0
TARGET_PINNED_US = 40.0
MESSAGES = [{"role": "user", "content": "Summarise why unit tests are worth writing."}]


def user_catalog(n: int) -> Catalog:
    """``n`` deployments in families of five (the last family may be smaller)."""
    price = Price(input_per_mtok=0.4, output_per_mtok=1.2, as_of=date(2026, 1, 1))
    families: list[Family] = []
    deployments: list[Deployment] = []
    for i in range((n + len(SITES) - 1) // len(SITES)):
        name = f"user-llm-{i}"
        families.append(
            Family(
                name=name,
                vendor="user",
                context_window=128_000,
                features=frozenset({"streaming", "system_prompt", "tools"}),
                skills={"general": 0.9 - 0.1 * i} if i < 3 else {"code": 0.5},
            )
        )
        for site, region, jurisdiction in SITES[: min(len(SITES), n - len(deployments))]:
            deployments.append(
                Deployment(
                    family=name,
                    site=site,
                    protocol="openai",
                    model=name,
                    base_url=f"http://127.0.0.1:9/{site}/v1",  # never called
                    region=region,
                    jurisdiction=jurisdiction,
                    operator=f"op-{site}",
                    api_key=API_KEY,
                    price=price,
                )
            )
    return Catalog(families, deployments)


def per_call_us(fn: object, repeat: int) -> float:
    """Microseconds per call: the best of 5 timed blocks of ``repeat / 5`` calls (as
    ``timeit`` advises: slower blocks measure the machine's other load, not the code)."""
    assert callable(fn)
    for _ in range(min(repeat, 50)):
        fn()  # warm: caches, lazy imports, the tokenizer
    block = max(1, repeat // 5)
    samples = []
    # As in _common.run_batch: the catalog is long-lived, so it is frozen out of the
    # collector before the clock starts (else each full collection rescans thousands of
    # deployments, and the plan would be charged for the catalog's size).
    gc.collect()
    gc.freeze()
    try:
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(block):
                fn()
            samples.append((time.perf_counter() - t0) / block * 1e6)
    finally:
        gc.unfreeze()
    return min(samples)


def stack_build_ms(catalog: Catalog, builds: int) -> float:
    samples = []
    for _ in range(builds):
        gc.collect()
        t0 = time.perf_counter()
        Stack(catalog, seed=1)
        samples.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    sizes = QUICK_SIZES if args.quick else SIZES
    repeat = 200 if args.quick else 2_000
    request = ChatRequest(messages=MESSAGES)
    Stack(user_catalog(10), seed=1)  # warm imports (SDK-free) outside the timings
    rows = []
    results: dict[str, dict[str, float]] = {}
    for n in sizes:
        catalog = user_catalog(n)
        log(f"bench_routing: {n} deployments")
        build = stack_build_ms(catalog, 2 if n >= 1_000 and not args.quick else 3)
        stack = Stack(catalog, seed=1)
        router = stack.router
        pinned = per_call_us(functools.partial(router.plan, request, model="user-llm-0"), repeat)
        route_model = per_call_us(
            functools.partial(stack.route, MESSAGES, model="user-llm-0"), repeat
        )
        skill = per_call_us(functools.partial(router.plan, request, skill="general"), repeat)
        results[str(n)] = {
            "stack_build_ms": build,
            "pinned_plan_us": pinned,
            "route_model_us": route_model,
            "skill_plan_us": skill,
        }
        rows.append((n, build, pinned, route_model, skill))
    print_table(
        ("deployments", "stack build ms", "pinned plan us", "route model= us", "skill plan us"),
        rows,
        title="bench_routing: Stack build and plan build by catalog size",
    )
    largest = results[str(sizes[-1])]
    payload = {
        "deployments": list(sizes),
        "stack_build_ms": {k: v["stack_build_ms"] for k, v in results.items()},
        "pinned_plan_us": {k: v["pinned_plan_us"] for k, v in results.items()},
        "route_model_us": {k: v["route_model_us"] for k, v in results.items()},
        "skill_plan_us": {k: v["skill_plan_us"] for k, v in results.items()},
        "targets": {
            f"stack_build_ms<={TARGET_STACK_MS:g}@{sizes[-1]}": largest["stack_build_ms"]
            <= TARGET_STACK_MS,
            f"pinned_plan_us<={TARGET_PINNED_US:g}@{sizes[-1]}": largest["pinned_plan_us"]
            <= TARGET_PINNED_US,
        },
        **run_facts(started),
    }
    final_line(payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
