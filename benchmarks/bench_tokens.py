"""Token counts per language: the estimate's error against the exact Qwen count, and speed.

One job: on the "holdout" paragraphs of ``tests/data/multilingual_tokens.json`` (never
used to fit the weights; ``calibrate_tokens.py`` fits on the "fit" ones), print per
language the exact Qwen token count and the ratio estimate / exact for

* ``before``: the old rule, about four characters a token (``len // 4 + 1``);
* ``after``: the script-aware estimate with the Qwen weights (what a Qwen family gets
  while its tokenizer loads) and, for reference, the generic weights (what other
  families get: fitted to cl100k_base, so above Qwen on non-Latin scripts);

then microseconds per count (old rule, estimate, exact Qwen; a ~300-character paragraph
and ~9,000 characters of mixed text; a whole request with framing and a tool) and per
``Router.plan`` on the bundled catalog (which counts once per tokenizer its candidates
need: a Qwen route counts twice, a pinned DeepSeek deployment once),
the first load of the Qwen tokenizer in a fresh interpreter, and the longest stall of a
running event loop while that load runs in a background thread (an asyncio task that
sleeps 1 ms in a loop measures the gaps). Ends with one JSON line.

``--quick`` counts fewer repetitions (for the smoke test).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable from a checkout without installing
    sys.path.insert(0, str(ROOT))

from hybridstack import tokens  # noqa: E402
from hybridstack.types import ChatRequest, Message, Tool  # noqa: E402

SAMPLES = ROOT / "tests" / "data" / "multilingual_tokens.json"

#: A fresh interpreter: how long the first load takes, and how long a running event loop
#: is stalled by it when it runs in a background thread.
LOAD_PROBE = """
import asyncio, json, time
from hybridstack import tokens
t0 = time.perf_counter()
enc = tokens.load_qwen_encoder()
cold = time.perf_counter() - t0

async def stalls():
    counter = tokens.TokenCounter(mode="background")
    worst, last = 0.0, time.perf_counter()
    counter.preload()
    while counter.status() in ("loading", "not loaded"):
        await asyncio.sleep(0.001)
        now = time.perf_counter()
        worst, last = max(worst, now - last), now
    return worst, counter.load_seconds()

worst, background = asyncio.run(stalls())
print(json.dumps({"cold_s": cold, "stall_s": worst, "background_s": background}))
"""


def per_call_us(fn, arg, repeats: int) -> float:
    """Median over 5 rounds of the mean time of ``repeats`` calls, in microseconds."""
    rounds = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn(arg)
        rounds.append((time.perf_counter() - t0) / repeats * 1e6)
    return statistics.median(rounds)


def main() -> int:
    quick = "--quick" in sys.argv[1:]
    samples = json.loads(SAMPLES.read_text(encoding="utf-8"))["samples"]
    qwen = tokens.load_qwen_encoder()

    print("holdout paragraphs: estimate / exact Qwen count (1.00 = exact)")
    print(f"{'lang':<9}{'chars':>6}{'qwen':>6}{'before':>8}{'after':>7}{'generic':>9}")
    before: dict[str, float] = {}
    after: dict[str, float] = {}
    generic: dict[str, float] = {}
    for s in samples:
        text, lang = s["holdout"], s["lang"]
        exact = len(qwen.encode_ordinary(text))
        before[lang] = round((len(text) // 4 + 1) / exact, 3)
        after[lang] = round(tokens.estimate_text(text, "qwen") / exact, 3)
        generic[lang] = round(tokens.estimate_text(text, "generic") / exact, 3)
        print(
            f"{lang:<9}{len(text):>6}{exact:>6}{before[lang]:>8.2f}{after[lang]:>7.2f}"
            f"{generic[lang]:>9.2f}"
        )

    def worst(ratios: dict[str, float]) -> float:
        return round(max(abs(r - 1) for r in ratios.values()), 3)

    repeats = 50 if quick else 2000
    paragraph = next(s["holdout"] for s in samples if s["lang"] == "zh")
    english = next(s["holdout"] for s in samples if s["lang"] == "en")
    long_text = " ".join(s["holdout"] for s in samples)[:9000]
    request = ChatRequest(
        messages=[Message.system("You translate."), Message.user(paragraph)],
        tools=[
            Tool(
                name="lookup",
                description="Look a term up in the glossary",
                parameters={"type": "object", "properties": {"term": {"type": "string"}}},
            )
        ],
    )
    counter = tokens.TokenCounter({"qwen": lambda: qwen}, mode="sync")
    timings = {
        "old_rule_zh_paragraph": per_call_us(lambda t: len(t) // 4 + 1, paragraph, repeats),
        "estimate_zh_paragraph": per_call_us(tokens.estimate_text, paragraph, repeats),
        "estimate_en_paragraph": per_call_us(tokens.estimate_text, english, repeats),
        "exact_qwen_zh_paragraph": per_call_us(qwen.encode_ordinary, paragraph, repeats),
        "estimate_9k_chars": per_call_us(tokens.estimate_text, long_text, repeats // 4 or 1),
        "exact_qwen_9k_chars": per_call_us(qwen.encode_ordinary, long_text, repeats // 4 or 1),
        "request_estimate": per_call_us(lambda r: counter.count_request(r), request, repeats),
        "request_exact_qwen": per_call_us(
            lambda r: counter.count_request(r, "qwen"), request, repeats
        ),
    }
    from hybridstack.catalog import Catalog
    from hybridstack.routing import Router

    router = Router(Catalog.default(), key_available=lambda d: True, seed=1, token_counter=counter)
    chinese = ChatRequest(messages=paragraph)
    plain = ChatRequest(messages=english)
    timings["plan_multilingual_zh"] = per_call_us(
        lambda r: router.plan(r, skill="multilingual"), chinese, repeats // 4 or 1
    )
    timings["plan_pinned_deepseek_en"] = per_call_us(
        lambda r: router.plan(r, model="deepseek-flash@deepseek-cn"), plain, repeats // 4 or 1
    )
    print("\nmicroseconds per count (median of 5 rounds)")
    for name, us in timings.items():
        print(f"  {name:<26}{us:>10.1f}")

    probe = subprocess.run(
        [sys.executable, "-c", LOAD_PROBE],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**_env(), "PYTHONPATH": str(ROOT)},
    )
    load = json.loads(probe.stdout.strip().splitlines()[-1])
    print(
        f"\nfirst load of the Qwen tokenizer (fresh interpreter): {load['cold_s'] * 1000:.0f} ms;"
        f" in a background thread {load['background_s'] * 1000:.0f} ms, the event loop's"
        f" longest stall meanwhile {load['stall_s'] * 1000:.0f} ms"
    )
    result = {
        "benchmark": "bench_tokens",
        "paragraphs": "holdout",
        "languages": len(samples),
        "before_ratio": before,
        "after_ratio": after,
        "generic_ratio": generic,
        "before_worst_abs_error": worst(before),
        "after_worst_abs_error": worst(after),
        "after_median_abs_error": round(statistics.median(abs(r - 1) for r in after.values()), 3),
        "us_per_count": {k: round(v, 2) for k, v in timings.items()},
        "first_load_ms": round(load["cold_s"] * 1000, 1),
        "background_load_ms": round(load["background_s"] * 1000, 1),
        "max_loop_stall_ms": round(load["stall_s"] * 1000, 1),
    }
    print(json.dumps(result))
    return 0


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


if __name__ == "__main__":
    raise SystemExit(main())
