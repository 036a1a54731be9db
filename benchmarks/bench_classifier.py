"""Benchmark the deterministic skill classifier: accuracy and per-prompt latency.

One job: measure the offline classifier on the frozen holdout of the skill evaluation set
(``tests/data/skill_eval/holdout.jsonl``: never tuned on, sha256 pinned by the tests) and
report accuracy overall, per language and per skill, plus the development sets it was
tuned on (``tests/data/skill_eval/dev.jsonl`` and the older ``tests/data/skill_prompts*``),
and the per-prompt latency. It prints tables, then ONE final JSON line:

    {"holdout_accuracy": ..., "holdout_per_language": {...}, "holdout_per_skill": {...},
     "n_holdout": ..., "dev_accuracy": ..., "accuracy": ..., "old_holdout_accuracy": ...,
     "mean_us": ..., "p99_us": ..., "cpu_mean_us": ..., "cpu_p99_us": ..., ...}

``accuracy`` is the old development set's (kept for comparison with earlier runs).
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
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable without installing the package
    sys.path.insert(0, str(ROOT))

from hybridstack.routing.skills import SKILLS, classify, detect_language  # noqa: E402

DATA = ROOT / "tests" / "data"


def load(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class Report(NamedTuple):
    accuracy: float
    per_skill: dict[str, float]
    per_language: dict[str, float]


def evaluate(rows: list[dict[str, str]], title: str) -> Report:
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
    per_language: dict[str, float] = {}
    for lang, oks in sorted(by_lang.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        per_language[lang] = round(sum(oks) / len(oks), 4)
        print(f"  {lang:>4}: {sum(oks):>3}/{len(oks):<3} = {sum(oks) / len(oks):.3f}")
    print(f"detect_language agreement with the dataset's lang field: {lang_hits / n:.3f}")
    return Report(round(correct / n, 4), per_skill, per_language)


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

    holdout = load("skill_eval/holdout.jsonl")
    dev = load("skill_eval/dev.jsonl")
    old_dev = load("skill_prompts.jsonl")
    old_holdout = load("skill_prompts_holdout.jsonl")
    held = evaluate(holdout, "FROZEN HOLDOUT (skill_eval/holdout.jsonl, never tuned on)")
    dev_report = evaluate(dev, "development set (skill_eval/dev.jsonl, tuned on)")
    old = evaluate(old_dev, "old development set (skill_prompts.jsonl, tuned on)")
    old_held = evaluate(old_holdout, "old holdout (skill_prompts_holdout.jsonl, tuned on since)")

    texts = [r["text"] for r in holdout + dev + old_dev + old_holdout]
    mean_us, p99_us, cpu_mean, cpu_p99 = time_prompts(texts, args.rounds)
    print(f"\nlatency over {len(texts)} prompts x {args.rounds} rounds:")
    print(f"  wall-clock mean {mean_us:.1f} us, p99 {p99_us:.1f} us")
    print(f"  CPU time   mean {cpu_mean:.1f} us, p99 {cpu_p99:.1f} us")

    # Worst case: a huge pasted log. Only the first max_chars are analysed, so this is
    # bounded regardless of input size.
    big = "Traceback (most recent call last):\n" + "  File 'x.py', line 1, in f\n" * 20000
    start = time.perf_counter_ns()
    classify(big)
    big_us = (time.perf_counter_ns() - start) / 1000
    print(f"  {len(big):,}-char log: {big_us:.0f} us")

    print(
        json.dumps(
            {
                "holdout_accuracy": held.accuracy,
                "holdout_per_language": held.per_language,
                "holdout_per_skill": held.per_skill,
                "n_holdout": len(holdout),
                "dev_accuracy": dev_report.accuracy,
                "n_dev": len(dev),
                "accuracy": old.accuracy,
                "per_skill": old.per_skill,
                "n": len(old_dev),
                "old_holdout_accuracy": old_held.accuracy,
                "mean_us": round(mean_us, 1),
                "p99_us": round(p99_us, 1),
                "cpu_mean_us": round(cpu_mean, 1),
                "cpu_p99_us": round(cpu_p99, 1),
                "huge_log_us": round(big_us),
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
