"""Benchmark the deterministic skill classifier: accuracy and per-prompt latency.

One job: load ``tests/data/skill_prompts.jsonl`` (the development set the rules were tuned
on) and ``tests/data/skill_prompts_holdout.jsonl`` (written after the rules were frozen),
print confusion matrices, per-language accuracy and timing, then print ONE final JSON line:

    {"accuracy": ..., "per_skill": {...}, "holdout_accuracy": ..., "n": ..., "mean_us": ...,
     "p99_us": ..., "n_holdout": ...}

Run from the repo root: ``python benchmarks/bench_classifier.py [--rounds N]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable without installing the package
    sys.path.insert(0, str(ROOT))

from hybridstack.graph.classifier import SKILLS, classify, detect_language  # noqa: E402

DATA = ROOT / "tests" / "data"


def load(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def evaluate(rows: list[dict[str, str]], title: str) -> tuple[float, dict[str, float]]:
    confusion: dict[str, Counter[str]] = {s: Counter() for s in SKILLS}
    by_lang: dict[str, list[bool]] = defaultdict(list)
    lang_hits = 0
    for row in rows:
        got = classify(row["text"]).skill
        confusion[row["skill"]][got] += 1
        by_lang[row["lang"]].append(got == row["skill"])
        lang = detect_language(row["text"])
        # id/ms are one family for detection; the marker words only break the tie.
        lang_hits += lang == row["lang"] or {lang, row["lang"]} <= {"id", "ms"}

    n = len(rows)
    correct = sum(confusion[s][s] for s in SKILLS)
    print(f"\n== {title}: {correct}/{n} = {correct / n:.3f}")
    print("confusion (rows = expected, columns = predicted)")
    print(f"{'':>14}" + "".join(f"{s[:12]:>14}" for s in SKILLS) + f"{'recall':>9}")
    per_skill: dict[str, float] = {}
    for s in SKILLS:
        total = sum(confusion[s].values())
        per_skill[s] = round(confusion[s][s] / total, 4) if total else 0.0
        cells = "".join(f"{confusion[s][p]:>14}" for p in SKILLS)
        print(f"{s:>14}{cells}{per_skill[s]:>9.3f}")
    print("per-language accuracy:")
    for lang, oks in sorted(by_lang.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        print(f"  {lang:>4}: {sum(oks):>3}/{len(oks):<3} = {sum(oks) / len(oks):.3f}")
    print(f"detect_language agreement with the dataset's lang field: {lang_hits / n:.3f}")
    return correct / n, per_skill


def _mean_p99(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return statistics.fmean(samples), samples[min(len(samples) - 1, int(0.99 * len(samples)))]


def time_prompts(texts: list[str], rounds: int) -> tuple[float, float, float, float]:
    """Wall-clock and CPU (thread) microseconds per prompt: (mean, p99, cpu mean, cpu p99).

    Wall-clock is what a caller waits; CPU time excludes preemption, so on a busy machine it
    is the better measure of the classifier's own cost.
    """
    for t in texts:  # warm-up: first calls pay for lazy regex internals
        classify(t)
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(rounds):
        for t in texts:
            start, start_cpu = time.perf_counter_ns(), time.thread_time_ns()
            classify(t)
            cpu.append((time.thread_time_ns() - start_cpu) / 1000)
            wall.append((time.perf_counter_ns() - start) / 1000)
    return (*_mean_p99(wall), *_mean_p99(cpu))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="timing passes over the data")
    args = parser.parse_args()

    main_rows = load("skill_prompts.jsonl")
    holdout_rows = load("skill_prompts_holdout.jsonl")
    acc, per_skill = evaluate(main_rows, "development set (rules tuned on it)")
    holdout_acc, _ = evaluate(holdout_rows, "holdout set (written after the rules froze)")

    texts = [r["text"] for r in main_rows + holdout_rows]
    mean_us, p99_us, cpu_mean, cpu_p99 = time_prompts(texts, args.rounds)
    print(f"\nlatency over {len(texts)} prompts x {args.rounds} rounds:")
    print(f"  wall-clock mean {mean_us:.1f} us, p99 {p99_us:.1f} us")
    print(f"  CPU time   mean {cpu_mean:.1f} us, p99 {cpu_p99:.1f} us")

    # Worst case: a huge pasted log. Only the first max_chars are analysed, so this is
    # bounded regardless of input size.
    big = "Traceback (most recent call last):\n" + "  File 'x.py', line 1, in f\n" * 20000
    start = time.perf_counter_ns()
    classify(big)
    print(f"  {len(big):,}-char log: {(time.perf_counter_ns() - start) / 1000:.0f} us")

    print(
        json.dumps(
            {
                "accuracy": round(acc, 4),
                "per_skill": per_skill,
                "holdout_accuracy": round(holdout_acc, 4),
                "n": len(main_rows),
                "mean_us": round(mean_us, 1),
                "p99_us": round(p99_us, 1),
                "n_holdout": len(holdout_rows),
            }
        )
    )


if __name__ == "__main__":
    main()
