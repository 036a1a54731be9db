"""Batch runs on the local engine: tasks per second by concurrency, and what a re-run costs.

Run: ``python benchmarks/bench_batch.py [--quick]``. N one-subtask tasks (pinned plans, so
no planner call) on the in-process emulator with 50 ms of simulated model latency, one
SQLite checkpoint file per run, at concurrency 1 and 8 (after a warm-up batch); then the
same batch again, which must send nothing (every task is finished). Prints a table and
one final JSON line:
``{"tasks": N, "tasks_per_s_c1": ..., "tasks_per_s_c8": ..., "speedup_c8": ...,
"rerun_requests": 0, "rerun_s": ...}``.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from _common import final_line, print_table

from hybridstack.batch import Batch
from hybridstack.testing import offline_stack

DEPLOYMENTS = ["deepseek-flash@deepseek-cn", "qwen-plus@dashscope-sg", "gpt-4o-mini@openai-eu"]


def tasks(n: int) -> list[dict[str, object]]:
    return [
        {
            "id": f"t{i}",
            "task": f"Write helper function number {i}",
            "plan": [
                {
                    "id": "s1",
                    "instruction": f"Write helper function number {i}",
                    "skill": "code",
                    "model": DEPLOYMENTS[i % len(DEPLOYMENTS)],
                }
            ],
        }
        for i in range(n)
    ]


async def timed(
    work: Path, name: str, batch_tasks: list[dict[str, object]], c: int, stack: object
) -> float:
    started = time.perf_counter()
    report = await Batch(
        batch_tasks,
        output=work / f"{name}.jsonl",
        stack=stack,
        concurrency=c,
        checkpoints=work / f"{name}.sqlite",
    ).run()
    elapsed = time.perf_counter() - started
    assert report.ok, [(r.id, r.status, r.error) for r in report.records if r.status != "completed"]
    return elapsed


async def main(quick: bool) -> None:
    n = 8 if quick else 40
    batch_tasks = tasks(n)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        async with offline_stack(default_faults={"latency_ms": 50}) as stack:
            await stack.warm_up()
            # The first run compiles the graph and opens the SQLite saver: not the engine's.
            await timed(work, "warm", tasks(2), 2, stack)
            c1 = await timed(work, "c1", batch_tasks, 1, stack)
            c8 = await timed(work, "c8", batch_tasks, 8, stack)
            sent = stack.emulator.total()
            rerun = await timed(work, "c8", batch_tasks, 8, stack)
            rerun_requests = stack.emulator.total() - sent
    rows = [
        ["1", f"{c1:.2f}", n / c1],
        ["8", f"{c8:.2f}", n / c8],
        ["8 (re-run, all finished)", f"{rerun:.2f}", "-"],
    ]
    print_table(["concurrency", "seconds", "tasks/s"], rows, title=f"{n} tasks, local engine")
    final_line(
        {
            "tasks": n,
            "tasks_per_s_c1": n / c1,
            "tasks_per_s_c8": n / c8,
            "speedup_c8": c1 / c8,
            "rerun_requests": rerun_requests,
            "rerun_s": rerun,
        }
    )


if __name__ == "__main__":
    asyncio.run(main("--quick" in sys.argv[1:]))
