"""Chaos-test your own agent: a regional outage, a flaky region, and proof that it held.

``my_agent`` stands for your app: it translates a support ticket (skill
"multilingual") and drafts a reply (skill "reasoning"). The scenario runs it on the
emulator from ``hybridstack.testing`` with every SG deployment down and every US
deployment failing 30% of requests with HTTP 500, then checks what a chaos test should:

  * every request still succeeded;
  * once a breaker opened, not one more request reached that downed deployment
    (the emulator's counters say so, not the client);
  * the ledger agrees with the emulator, deployment by deployment, and every call
    was answered exactly once.

The same scenario as a pytest test to copy: examples/test_chaos_outage.py. Faults can
only be injected into the emulator, so this example always runs offline (--offline is
accepted like in the other examples).

Run it:
    python examples/chaos_outage.py --offline
    pytest examples/test_chaos_outage.py
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter

import hybridstack as hs
from hybridstack.testing import offline_stack

TICKETS = ["Pesanan saya belum sampai", "พัสดุของฉันเสียหาย", "我的订单还没到", "الطلب وصل متأخرا"]
# Test settings: quick backoff, and breakers that open after 2 failures and stay open.
RETRY = hs.RetrySettings(backoff_initial_s=0.01, backoff_jitter_s=0.01)
BREAKERS = hs.BreakerSettings(failure_threshold=2, cooldown_s=60)


async def my_agent(stack: hs.Stack, ticket: str) -> str:
    """Your agent under test: any code that calls ``stack.complete`` or ``stack.stream``."""
    english = await stack.complete(f"Translate to English:\n{ticket}", skill="multilingual")
    reply = await stack.complete(
        f"Draft a short, kind reply to:\n{english.text}", skill="reasoning"
    )
    return reply.text


async def run() -> int:
    async with offline_stack(seed=11, retry=RETRY, breakers=BREAKERS) as stack:
        emulator = stack.emulator
        down = [d for d in stack.catalog if d.jurisdiction == "SG"]
        flaky = [d.id for d in stack.catalog if d.jurisdiction == "US"]
        emulator.set_outage([d.id for d in down])
        emulator.set_faults(flaky, p_500=0.3)
        print(f"simulated: {len(down)} SG deployments down, {len(flaky)} US deployments fail 30%")

        # Phase 1: the outage begins; calls that try SG fail over, and breakers open.
        phase1 = await asyncio.gather(
            *(my_agent(stack, t) for t in TICKETS * 3), return_exceptions=True
        )
        opened = [d for d in down if stack.breakers.health(d) == "open"]
        before = {d.id: emulator.counters(d.id).requests for d in opened}
        print(f"phase 1: {len(phase1)} tickets; SG breakers open: {', '.join(before) or 'none'}")
        # Phase 2: with those breakers open, no request may reach them.
        phase2 = await asyncio.gather(
            *(my_agent(stack, t) for t in TICKETS * 3), return_exceptions=True
        )
        after = {name: emulator.counters(name).requests for name in before}
        print(
            f"phase 2: {len(phase2)} tickets; requests to open SG deployments: "
            f"{sum(after.values()) - sum(before.values())}"
        )

        attempts = [a for a in stack.ledger.attempts() if a.outcome != "skipped"]
        ledger = Counter(a.deployment for a in attempts)
        served = {n: c for n, c in emulator.all_counters().items() if c.requests}
        print(f"\n{'deployment':<34}{'where':<7}{'emulator':>9}{'ledger':>8}  outcomes")
        for name, c in sorted(served.items()):
            outcomes = {k: v for k, v in c.by_outcome.items() if v}
            where = stack.catalog.deployment(name).jurisdiction
            print(f"{name:<34}{where:<7}{c.requests:>9}{ledger[name]:>8}  {outcomes}")
        answered = Counter()  # call id -> ok answers the emulator sent
        for c in served.values():
            answered.update(c.ok_by_call())
        calls = {a.call_id for a in attempts}

    failures = [r for r in phase1 + phase2 if isinstance(r, BaseException)]
    emulator_counts = Counter({name: c.requests for name, c in served.items()})
    once = set(answered) == calls and set(answered.values()) == {1}
    checks = {
        "every request succeeded": not failures,
        "no request reached an open SG deployment": bool(before) and after == before,
        "the ledger agrees with the emulator counters": ledger == emulator_counts,
        "every call was answered exactly once": once,
    }
    print()
    for name, ok in checks.items():
        print(f"check: {name}: {'PASS' if ok else 'FAIL'}")
    print(
        f"({len(phase1) + len(phase2)} agent runs, {len(calls)} calls, {len(attempts)} attempts; "
        "the model text is SIMULATED by hybridstack's emulator, the failures and fail-overs are real)"
    )
    return 0 if all(checks.values()) else 1


def main() -> None:
    parser = argparse.ArgumentParser(description="Chaos-test an agent against a regional outage.")
    parser.add_argument(
        "--offline", action="store_true", help="accepted; this example is always offline"
    )
    parser.parse_args()
    raise SystemExit(asyncio.run(run()))


if __name__ == "__main__":
    main()
