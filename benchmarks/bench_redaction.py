"""How much personal data survives redaction, and how much ordinary text it damages.

One job: run :func:`hybridstack.routing.redact_text` over three fixed sets from
:mod:`hybridstack.testing.pii` and print ONE final JSON line:

* the adjacency set (each value with a number, word or CJK text beside it; phones and
  cards side by side) — ``adjacent_cases``, ``adjacent_leaks`` (cases with any piece of a
  value still readable);
* the fuzz set (random request texts with 1-3 values) — ``fuzz_cases``, ``fuzz_leaks``;
* the ordinary corpus (numbers that are not personal data) — ``ordinary_texts``,
  ``ordinary_changed`` (texts the redactor altered);
* ``count_errors`` (cases whose returned counts differ from the values planted) and
  ``kb_per_s`` (throughput over the fuzz set, for information only).

Run from the repo root: ``python benchmarks/bench_redaction.py [--fuzz N] [--seed S]``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable without installing the package
    sys.path.insert(0, str(ROOT))

from hybridstack.routing import redact_text  # noqa: E402
from hybridstack.testing.pii import (  # noqa: E402
    ORDINARY_TEXTS,
    adjacent_cases,
    fuzz_case,
    surviving_pieces,
)


def judge(cases: list[tuple[str, list[tuple[str, str]]]]) -> tuple[int, int, list[str]]:
    """(cases with a leak, cases with wrong counts, a few leaking examples)."""
    leaks = count_errors = 0
    examples: list[str] = []
    for text, values in cases:
        out, counts = redact_text(text)
        leaked = False
        for _, value in values:
            context = text.replace(value, " ", 1)
            if surviving_pieces(value, context, out):
                leaked = True
        if leaked:
            leaks += 1
            if len(examples) < 8:
                examples.append(f"{text!r} -> {out!r}")
        if counts != dict(Counter(kind for kind, _ in values)):
            count_errors += 1
    return leaks, count_errors, examples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fuzz", type=int, default=2000, help="fuzzed request texts")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    adjacent = adjacent_cases()
    rng = random.Random(args.seed)
    fuzz = [fuzz_case(rng) for _ in range(args.fuzz)]

    adjacent_leaks, adjacent_count_errors, adjacent_examples = judge(adjacent)
    fuzz_leaks, fuzz_count_errors, fuzz_examples = judge(fuzz)
    changed = [t for t in ORDINARY_TEXTS if redact_text(t)[0] != t]

    started = time.perf_counter()
    size = 0
    for text, _ in fuzz:
        redact_text(text)
        size += len(text.encode())
    elapsed = time.perf_counter() - started

    for title, examples in (("adjacent", adjacent_examples), ("fuzz", fuzz_examples)):
        for example in examples:
            print(f"{title} leak: {example}", file=sys.stderr)
    for text in changed:
        print(f"ordinary text changed: {text!r} -> {redact_text(text)[0]!r}", file=sys.stderr)
    print(f"{'set':<10} {'cases':>7} {'leaks':>6} {'bad counts':>10}")
    print(f"{'adjacent':<10} {len(adjacent):>7} {adjacent_leaks:>6} {adjacent_count_errors:>10}")
    print(f"{'fuzz':<10} {len(fuzz):>7} {fuzz_leaks:>6} {fuzz_count_errors:>10}")
    print(f"{'ordinary':<10} {len(ORDINARY_TEXTS):>7} {len(changed):>6} {'-':>10}")
    print(
        json.dumps(
            {
                "adjacent_cases": len(adjacent),
                "adjacent_leaks": adjacent_leaks,
                "fuzz_cases": len(fuzz),
                "fuzz_leaks": fuzz_leaks,
                "ordinary_texts": len(ORDINARY_TEXTS),
                "ordinary_changed": len(changed),
                "count_errors": adjacent_count_errors + fuzz_count_errors,
                "kb_per_s": round(size / 1024 / elapsed, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
