"""Cold start: how long the event loop stalls on the first call of each wire protocol.

Each run is a fresh interpreter (nothing of the SDKs imported yet) with the emulator
in-process on the same event loop and a ticker task that wakes every 5 ms; the loop's
stall is the longest gap between two ticks. Two scenarios per run:

* ``lazy``: the first ``stack.complete`` of each protocol (openai, anthropic,
  dashscope) with nothing warmed: the call imports the SDK itself;
* ``warm``: ``await stack.warm_up()`` first (timed), then the same three first calls.

Prints a table per scenario (median over ``--repeats`` interpreters), then ONE JSON line::

    {"lazy": {"openai": {"first_call_ms": ..., "max_loop_stall_ms": ...}, ...},
     "warm_up_s": ..., "warm_up_max_loop_stall_ms": ...,
     "warm": {"openai": {"first_call_ms": ..., "max_loop_stall_ms": ...}, ...},
     "max_loop_stall_ms": ..., "repeats": ..., "checkout": "<path measured>",
     "library": "<fingerprint, when it is this checkout>"}

``max_loop_stall_ms`` is the worst stall of any lazy first call: before the SDK import
moved off the loop it was the import's whole duration. Run from the repo root:
``python benchmarks/bench_cold_start.py [--quick] [--repeats N]``. A checkout without
``Stack.warm_up`` reports only ``lazy``: measure an older one with ``python -S`` and
``PYTHONPATH=<its source>:<site-packages>`` (``-S`` skips the editable install's hook).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
from typing import Any

from _common import ROOT, library_fingerprint

DEPLOYMENTS = {
    "openai": "gpt-4o-mini@openai-us",
    "anthropic": "claude-haiku-4.5@anthropic-us",
    "dashscope": "qwen-plus@dashscope-cn",
}

PROBE = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from hybridstack.testing import offline_stack

    DEPLOYMENTS = {deployments!r}
    WARM = {warm!r}

    class Ticker:
        def __init__(self):
            self.max_gap = 0.0
            self.stop = False

        async def run(self):
            last = time.perf_counter()
            while not self.stop:
                await asyncio.sleep(0.005)
                now = time.perf_counter()
                self.max_gap = max(self.max_gap, now - last)
                last = now

    async def timed(coro):
        ticker = Ticker()
        task = asyncio.get_running_loop().create_task(ticker.run())
        await asyncio.sleep(0.02)
        started = time.perf_counter()
        result = await coro
        elapsed = time.perf_counter() - started
        await asyncio.sleep(0.01)
        ticker.stop = True
        await task
        return result, elapsed, ticker.max_gap

    async def main():
        import hybridstack
        out = {{"package": hybridstack.__file__.rsplit("/", 2)[0]}}
        async with offline_stack() as stack:
            if WARM:
                if not hasattr(stack, "warm_up"):
                    print(json.dumps(None))
                    return
                _, seconds, gap = await timed(stack.warm_up())
                out["warm_up"] = {{"seconds": seconds, "max_loop_stall_ms": gap * 1000}}
            for protocol, deployment in DEPLOYMENTS.items():
                call = stack.complete("Hello", model=deployment, skill="general")
                _, seconds, gap = await timed(call)
                out[protocol] = {{"first_call_ms": seconds * 1000, "max_loop_stall_ms": gap * 1000}}
        print(json.dumps(out))

    asyncio.run(main())
    """
)


def probe(warm: bool) -> dict[str, Any] | None:
    env = dict(os.environ)
    env.setdefault("PYTHONPATH", str(ROOT))
    proc = subprocess.run(
        # -S is passed on, so `python -S` with PYTHONPATH can measure another checkout.
        [
            sys.executable,
            *(["-S"] if sys.flags.no_site else []),
            "-c",
            PROBE.format(deployments=DEPLOYMENTS, warm=warm),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    if proc.returncode != 0:
        raise SystemExit(f"probe failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] | None = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def median_of(runs: list[dict[str, Any]], key: str, field: str) -> float:
    return round(statistics.median(run[key][field] for run in runs), 1)


def summarise(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    return {
        protocol: {
            "first_call_ms": median_of(runs, protocol, "first_call_ms"),
            "max_loop_stall_ms": median_of(runs, protocol, "max_loop_stall_ms"),
        }
        for protocol in DEPLOYMENTS
    }


def table(title: str, rows: dict[str, dict[str, float]]) -> None:
    print(title)
    print(f"  {'protocol':<10} {'first call':>12} {'max loop stall':>16}")
    for protocol, row in rows.items():
        print(
            f"  {protocol:<10} {row['first_call_ms']:>9.1f} ms {row['max_loop_stall_ms']:>13.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="fresh interpreters per scenario")
    parser.add_argument("--quick", action="store_true", help="one interpreter per scenario")
    args = parser.parse_args()
    repeats = 1 if args.quick else max(1, args.repeats)

    lazy_runs = [probe(warm=False) for _ in range(repeats)]
    lazy = summarise([r for r in lazy_runs if r is not None])
    table(f"lazy: first call of each protocol, nothing warmed (median of {repeats})", lazy)
    result: dict[str, Any] = {"lazy": lazy}

    warm_runs = [probe(warm=True) for _ in range(repeats)]
    if all(r is not None for r in warm_runs):
        runs = [r for r in warm_runs if r is not None]
        warm = summarise(runs)
        result["warm_up_s"] = round(statistics.median(r["warm_up"]["seconds"] for r in runs), 3)
        result["warm_up_max_loop_stall_ms"] = median_of(runs, "warm_up", "max_loop_stall_ms")
        print(
            f"warm_up(): {result['warm_up_s']:.2f} s, "
            f"max loop stall {result['warm_up_max_loop_stall_ms']:.1f} ms"
        )
        table(f"warm: first call after warm_up() (median of {repeats})", warm)
        result["warm"] = warm
    else:
        print("this checkout has no Stack.warm_up(): only the lazy scenario ran")
    result["max_loop_stall_ms"] = max(row["max_loop_stall_ms"] for row in lazy.values())
    result["repeats"] = repeats
    measured = lazy_runs[0]["package"] if lazy_runs[0] else ""
    result["checkout"] = measured
    if measured == str(ROOT):
        result["library"] = library_fingerprint()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
