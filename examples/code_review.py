"""Code review by two model families, with a fail-over when the CN region throttles.

DeepSeek (skill "code") reviews a diff; a second family double-checks the same diff,
forced with ``model=`` so one vendor's blind spot is never the last word. Both return
a structured verdict. With --offline every CN deployment answers 429 with Retry-After:
the throttled quota scopes are held for the time the provider asked (their twins are
not even sent a request) and the review fails over to another region. The executor's
events and the ledger show each step.

Run it:
    python examples/code_review.py --offline    # built-in emulator: no keys, no network
    export DEEPSEEK_API_KEY=... DASHSCOPE_INTL_API_KEY=... ANTHROPIC_API_KEY=...
    python examples/code_review.py              # real providers
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from pydantic import BaseModel

import hybridstack as hs
from hybridstack.testing import offline_stack

DIFF = """--- a/shop/cart.py
+++ b/shop/cart.py
@@ def total(items, coupon=None):
-    subtotal = sum(i.price * i.qty for i in items)
+    subtotal = sum(i.price for i in items)
     if coupon:
-        subtotal -= coupon.amount
+        subtotal = max(subtotal - coupon.amount, 0)
     return round(subtotal * 1.1, 2)
"""
FIRST_VERDICT = '{"approve": false, "issues": ["quantity dropped from the subtotal: 3 mugs now cost as much as 1"]}'
SECOND_VERDICT = (
    '{"approve": false, "issues": ["agree: i.qty is missing", "the coupon clamp at 0 is fine"]}'
)
# The second opinion: the first of these that differs from the first reviewer's family.
SECOND_FAMILIES = ["claude-haiku-4.5", "gpt-4o-mini", "llama-3.3-70b", "qwen3-coder-plus"]


class Verdict(BaseModel):
    approve: bool
    issues: list[str]


def show_event(event: hs.ExecutionEvent) -> None:
    if event.kind == "attempt_failed":
        print(f"    ! {event.deployment}: {event.error_kind}: {event.message.split(' (')[0]}")
    elif event.kind == "failover":
        print(f"    -> fail-over from {event.deployment} to {event.to_deployment}")
    elif event.kind == "breaker_open":
        print(f"    # {event.deployment}: {event.message}")


async def review(stack: hs.Stack, scripted_verdict: str, offline: bool, **route) -> hs.ChatResponse:
    prompt = f"Review this diff. Is it correct? List concrete issues.\n\n{DIFF}"
    if offline:  # tell the emulator what to 'answer', so the output reads well
        prompt += f"\nEMULATOR_REPLY: {scripted_verdict}"
    return await stack.complete(prompt, response_schema=Verdict, on_event=show_event, **route)


def routable(stack: hs.Stack, family: str) -> bool:
    """Whether some deployment of ``family`` may take the diff (e.g. its key is set)."""
    try:
        return bool(stack.route(DIFF, model=family, response_schema=Verdict).candidates)
    except hs.HybridStackError:  # NoRouteError, or a family missing from the catalog
        return False


def real_stack() -> hs.Stack:
    """The real providers, keys from the environment (`hybridstack doctor` lists them)."""
    catalog = hs.Catalog.default()
    if not any(os.environ.get(d.api_key_env) for d in catalog if d.api_key_env):
        sys.exit(
            "error: no provider API key is set. Export e.g. DEEPSEEK_API_KEY and "
            "ANTHROPIC_API_KEY, or run with --offline to use the built-in emulator."
        )
    return hs.Stack(catalog)


async def run(offline: bool) -> None:
    async with offline_stack(seed=7) if offline else real_stack() as stack:
        if offline:
            cn = [d.id for d in stack.catalog if d.jurisdiction == "CN"]
            stack.emulator.set_faults(cn, p_429=1.0, retry_after_s=20)
            print(f"simulated: all {len(cn)} CN deployments answer 429, Retry-After: 20 s")

        planned = stack.route(DIFF, skill="code", response_schema=Verdict).deployment_ids
        print(f"\nroute for skill 'code': {' -> '.join(planned[:5])} ...")
        print("1) first review (skill code)")
        first = await review(stack, FIRST_VERDICT, offline, skill="code")
        second_family = next(f for f in SECOND_FAMILIES if f != first.family and routable(stack, f))
        print(f"2) second opinion (model={second_family!r})")
        second = await review(stack, SECOND_VERDICT, offline, model=second_family)

        for name, r in (("first review", first), ("second opinion", second)):
            verdict = Verdict.model_validate_json(r.text)
            print(
                f"\n{name}: {r.deployment} ({r.jurisdiction}) after {r.attempts} attempt(s), "
                f"${r.cost_usd:.6f}"
            )
            print(f"  approve={verdict.approve}  issues={verdict.issues}")

        attempts = stack.ledger.attempts()
        print(
            f"\n{'call':<15}{'deployment':<38}{'where':<7}{'outcome':<12}{'HTTP':<6}{'Retry-After':<13}cost"
        )
        for a in attempts:
            retry_after = f"{a.retry_after_s:g}s" if a.retry_after_s else "-"
            status = a.status or "-"
            print(
                f"{a.call_id:<15}{a.deployment:<38}{a.jurisdiction:<7}{a.outcome:<12}"
                f"{status!s:<6}{retry_after:<13}${a.cost_usd:.6f}"
            )
        sent = {a.deployment for a in attempts}
        for scope in dict.fromkeys(a.quota_scope for a in attempts if a.status == 429):
            twins = [d for d in planned if stack.catalog.deployment(d).quota_scope == scope]
            skipped = [d for d in twins if d not in sent]
            more = " ..." if len(skipped) > 2 else ""
            print(
                f"quota scope {scope} held by Retry-After, not sent: {', '.join(skipped[:2])}{more}"
            )
        if first.deployment != attempts[0].deployment:
            a = attempts[0]
            print(
                f"fail-over: {a.deployment} ({a.jurisdiction}) -> {first.deployment} ({first.jurisdiction})"
            )
        total = stack.ledger.totals()["all"]
        print(f"ledger: {total.attempts} attempts, {total.failed} failed, ${total.cost_usd:.6f}")
    if offline:
        print(
            "\nThe model text above is SIMULATED by hybridstack's emulator; routing, HTTP, "
            "429s, fail-over and the priced ledger are real. Drop --offline for real providers."
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="Two-family code review with fail-over.")
    parser.add_argument("--offline", action="store_true", help="use the built-in emulator")
    args = parser.parse_args()
    try:
        asyncio.run(run(args.offline))
    except hs.HybridStackError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
