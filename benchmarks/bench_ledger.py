"""How much ``Ledger.record`` costs on the hot path, and how much memory a ledger holds.

Run: ``python benchmarks/bench_ledger.py [N] [--postgres URL]``. Prints progress to stderr and one
final JSON line on stdout: ``{"n": ..., "memory_us": ..., "sqlite_us": ...,
"sqlite_batch100_us": ..., "sqlite_p99_us": ..., "sqlite_max_us": ...,
"sqlite_read_us": ..., "memory_mb": {...}}`` (mean per record, best of three runs;
p99/max from one write-through run timed record by record; read = ``attempts()`` per
row).

``memory_mb`` is what a ``MemoryLedger`` still holds after 20,000 and after 100,000
records, measured with ``tracemalloc`` (Python allocations that outlive the recording:
each attempt is a fresh object, as the executor makes them), for the default ledger
(bounded to the newest 10,000 attempts) and for ``MemoryLedger(max_attempts=None)``.
The default must stay flat between the two counts; the unbounded one grows with them.

``--postgres postgresql://…`` also times the Postgres ledger on that server (in a fresh
schema, dropped afterwards; at most 5,000 records a run): ``postgres_us``,
``postgres_batch100_us`` and ``postgres_read_us``, the same measures as SQLite's.
"""

from __future__ import annotations

import gc
import json
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from hybridstack.ledger import Ledger, MemoryLedger, PostgresLedger, SQLiteLedger
from hybridstack.types import Attempt, Usage


def make_attempts(n: int) -> list[Attempt]:
    start = datetime(2025, 6, 1, tzinfo=UTC)
    return [
        Attempt(
            call_id=f"call-{i // 3}",
            run_id=f"run-{i // 300}",
            attempt_index=i % 3,
            retry_index=i % 2,
            deployment="qwen-plus@sg",
            family="qwen-plus",
            model="qwen-plus",
            protocol="openai",
            region="ap-southeast-1",
            jurisdiction="SG",
            quota_scope="dashscope-intl",
            started_at=start,
            ttft_s=0.21,
            latency_s=1.37,
            usage=Usage(input_tokens=812, output_tokens=240, cached_input_tokens=128),
            cost_usd=0.000412,
            outcome="ok" if i % 3 == 2 else "retry_here",
            error_type=None if i % 3 == 2 else "RetryableError",
            error_message=None if i % 3 == 2 else "rate limited (429)",
            status=None if i % 3 == 2 else 429,
            breaker_state="closed",
            skill="multilingual",
            data_class="internal",
            reasons=("skill multilingual rank 1", "weighted draw 0.31", "jurisdiction SG allowed"),
        )
        for i in range(n)
    ]


def per_record_us(make: Callable[[], Ledger], attempts: list[Attempt]) -> float:
    best = float("inf")
    for _ in range(3):
        ledger = make()
        t0 = time.perf_counter()
        for a in attempts:
            ledger.record(a)
        ledger.flush()
        best = min(best, time.perf_counter() - t0)
        ledger.close()
    return best / len(attempts) * 1e6


def held_mb(make: Callable[[], Ledger], template: Attempt, n: int) -> float:
    """MB of Python memory a ledger holds after recording ``n`` distinct attempts."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        ledger = make()
        for i in range(n):
            # A new object with its own strings per record, like the executor's.
            ledger.record(
                template.model_copy(
                    update={
                        "call_id": f"call-{i // 2:08d}-{id(ledger):x}",
                        "run_id": f"run-{i // 300}",
                        "request_id": f"req-{i:012d}",
                        "attempt_index": i % 2,
                    }
                ),
                owned=True,
            )
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
        ledger.close()
        del ledger
    finally:
        tracemalloc.stop()
    return round(held / 1e6, 2)


def postgres(url: str, attempts: list[Attempt], result: dict[str, float | int]) -> None:
    """The Postgres ledger's write-through, batched and read costs, in a throw-away schema."""
    import uuid

    import psycopg

    schema = f"hs_bench_ledger_{uuid.uuid4().hex[:8]}"
    attempts = attempts[:5_000]
    counter = iter(range(1_000))

    def fresh(batch: int) -> Callable[[], Ledger]:
        # A schema per run: each run starts on an empty table, as SQLite's on a new file.
        return lambda: PostgresLedger(url, schema=f"{schema}_{next(counter)}", batch_size=batch)

    try:
        result["postgres_n"] = len(attempts)
        result["postgres_us"] = round(per_record_us(fresh(1), attempts), 2)
        print(f"postgres (write-through): {result['postgres_us']} µs/record", file=sys.stderr)
        result["postgres_batch100_us"] = round(per_record_us(fresh(100), attempts), 2)
        print(f"postgres (batch 100): {result['postgres_batch100_us']} µs/record", file=sys.stderr)
        with fresh(100)() as ledger:
            for a in attempts:
                ledger.record(a)
            t0 = time.perf_counter()
            read = ledger.attempts()
            result["postgres_read_us"] = round((time.perf_counter() - t0) / len(read) * 1e6, 2)
        print(f"postgres read: {result['postgres_read_us']} µs/attempt", file=sys.stderr)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            for i in range(next(counter)):
                conn.execute(f"DROP SCHEMA IF EXISTS {schema}_{i} CASCADE")


def main() -> None:
    args = sys.argv[1:]
    url = None
    if "--postgres" in args:
        at = args.index("--postgres")
        url = args[at + 1]
        del args[at : at + 2]
    n = int(args[0]) if args else 20_000
    attempts = make_attempts(n)
    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(1_000))

        def sqlite(batch: int) -> Callable[[], Ledger]:
            return lambda: SQLiteLedger(Path(tmp) / f"l{next(counter)}.db", batch_size=batch)

        result: dict[str, float | int] = {"n": n}
        result["memory_us"] = round(per_record_us(MemoryLedger, attempts), 2)
        print(f"memory: {result['memory_us']} µs/record", file=sys.stderr)
        result["sqlite_us"] = round(per_record_us(sqlite(1), attempts), 2)
        print(f"sqlite (write-through): {result['sqlite_us']} µs/record", file=sys.stderr)
        result["sqlite_batch100_us"] = round(per_record_us(sqlite(100), attempts), 2)
        print(f"sqlite (batch 100): {result['sqlite_batch100_us']} µs/record", file=sys.stderr)

        # The tail matters on a hot path too: WAL checkpoints land on some commits.
        with SQLiteLedger(Path(tmp) / "tail.db") as ledger:
            samples = []
            for a in attempts:
                t0 = time.perf_counter()
                ledger.record(a)
                samples.append(time.perf_counter() - t0)
        samples.sort()
        result["sqlite_p99_us"] = round(samples[int(len(samples) * 0.99)] * 1e6, 2)
        result["sqlite_max_us"] = round(samples[-1] * 1e6, 2)
        print(
            f"sqlite (write-through) p99 {result['sqlite_p99_us']} µs, "
            f"max {result['sqlite_max_us']} µs",
            file=sys.stderr,
        )

        with SQLiteLedger(Path(tmp) / "read.db", batch_size=100) as ledger:
            for a in attempts:
                ledger.record(a)
            t0 = time.perf_counter()
            read = ledger.attempts()
            result["sqlite_read_us"] = round((time.perf_counter() - t0) / len(read) * 1e6, 2)
        print(f"sqlite read: {result['sqlite_read_us']} µs/attempt", file=sys.stderr)
    if url is not None:
        postgres(url, attempts, result)

    memory: dict[str, float] = {}
    for label, make in (
        ("default", MemoryLedger),
        ("unbounded", lambda: MemoryLedger(max_attempts=None)),
    ):
        for count in (20_000, 100_000):
            memory[f"{label}_{count}"] = held_mb(make, attempts[0], count)
            print(
                f"memory ledger ({label}) after {count:,} records: "
                f"{memory[f'{label}_{count}']} MB held",
                file=sys.stderr,
            )
    result["memory_mb"] = memory  # type: ignore[assignment]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
