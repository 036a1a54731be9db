"""A research brief under sovereignty rules: personal data stays in the EU or on-prem.

The agent runs an explicit plan. Public desk research may go to any region; the
interview notes are data class ``personal`` (allowed in EU and LOCAL only), and the
brief that reads them inherits that class. The ledger records every attempt with its
jurisdiction: the program prints it as a table and exits non-zero if a personal
attempt ever left EU/LOCAL. With ``redact_personal_data=True`` and the EU as home,
e-mail addresses and phone numbers are replaced before a request leaves the EU; the
ledger records what was redacted on each attempt.

With --offline every EU deployment is also down, so personal work has to fail over,
and it goes to LOCAL, never to another region.

Run it:
    python examples/sovereign_research_brief.py --offline   # emulator: no keys, no network
    export SCW_SECRET_KEY=... DASHSCOPE_INTL_API_KEY=...    # EU host (Scaleway) + Qwen
    python examples/sovereign_research_brief.py             # real providers (or `ollama serve`)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import hybridstack as hs
from hybridstack.graph import Agent, Subtask
from hybridstack.testing import offline_stack

# The requirement: personal data never leaves these jurisdictions (checked at the end).
PERSONAL_ZONES = ("EU", "LOCAL")
# The routing rules that enforce it; the EU is home, so redaction applies outside it.
RULES = hs.DataClassRules({"personal": PERSONAL_ZONES}, home={"public": "EU", "personal": "EU"})

TASK = "Research brief for the Lyon city council: why do households adopt heat pumps, or not?"
PLAN = [
    Subtask(
        id="china",
        skill="multilingual",
        data_class="public",
        instruction="Summarise public Chinese-language evaluations of heat-pump subsidies "
        "(report 热泵补贴政策评估 2025; press contact wang.fang@example.cn, +86 10 6552 9988).",
    ),
    Subtask(
        id="eurostat",
        skill="reasoning",
        data_class="public",
        instruction="Summarise public Eurostat and EHPA figures on heat-pump sales in France, 2022-2025.",
    ),
    Subtask(
        id="interviews",
        skill="reasoning",
        data_class="personal",
        instruction="Find the main adoption barriers in these interview notes, without naming anyone: "
        "Marie Dupont (marie.dupont@example.fr, +33 6 12 34 56 78), Lyon 3e: 'the installer quoted "
        "14,000 euros'; Karim Haddad (+33 7 98 76 54 32): 'my landlord decides'.",
    ),
    Subtask(
        id="brief",
        skill="general",
        depends_on=("china", "eurostat", "interviews"),
        instruction="Write a one-page brief for the council from these findings.",
    ),
]


def real_stack(**options) -> hs.Stack:
    """The real providers, keys from the environment (`hybridstack doctor` lists them)."""
    catalog = hs.Catalog.default()
    if not any(os.environ.get(d.api_key_env) for d in catalog if d.api_key_env):
        sys.exit(
            "error: no provider API key is set. Export e.g. SCW_SECRET_KEY (EU) and "
            "DASHSCOPE_INTL_API_KEY, or run with --offline to use the built-in emulator."
        )
    return hs.Stack(catalog, **options)


async def run(offline: bool) -> int:
    options = {"data_classes": RULES, "redact_personal_data": True}
    async with offline_stack(seed=3, **options) if offline else real_stack(**options) as stack:
        if offline:
            eu = [d.id for d in stack.catalog if d.jurisdiction == "EU"]
            stack.emulator.set_outage(eu)
            print(f"simulated: all {len(eu)} EU deployments are down (503)")
        agent = Agent(stack, checkpointer="memory")
        result = await agent.run(TASK, plan=PLAN)

    print(f"run {result.run_id}: {result.status}; " + "; ".join(result.plan_notes))
    subtask_of = {s.call_id: s.id for s in result.subtasks}  # the rest is the synthesis
    print(f"\n{'subtask':<12}{'class':<10}{'deployment':<30}{'where':<7}{'outcome':<12}redacted")
    for a in result.ledger:
        name = subtask_of.get(a.call_id, "(synthesis)")
        redacted = ", ".join(f"{k} x{n}" for k, n in a.redactions.items()) or "-"
        print(
            f"{name:<12}{a.data_class:<10}{a.deployment:<30}{a.jurisdiction:<7}{a.outcome:<12}{redacted}"
        )

    personal = [a for a in result.ledger if a.data_class == "personal"]
    left_eu = [a for a in result.ledger if a.jurisdiction not in ("EU", "LOCAL")]
    for a in left_eu:
        if a.redactions:
            name = subtask_of.get(a.call_id, "(synthesis)")
            print(f"redacted before leaving the EU: {name} -> {a.deployment} ({a.jurisdiction})")
    by_where = result.totals.by_jurisdiction
    print(
        "\nby jurisdiction: "
        + ", ".join(
            f"{j} {row['attempts']} attempts ${row['cost_usd']:.6f}"
            for j, row in sorted(by_where.items())
        )
    )
    print(f"final answer: {result.final_answer[:100]}...")

    leaks = [a for a in personal if a.jurisdiction not in PERSONAL_ZONES]
    if leaks:
        for a in leaks:
            print(f"SOVEREIGNTY VIOLATION: personal data sent to {a.deployment} ({a.jurisdiction})")
        return 1
    print(
        f"check passed: all {len(personal)} personal attempts stayed in "
        f"{'/'.join(PERSONAL_ZONES)}; {len(left_eu)} public attempt(s) left the EU"
    )
    if offline:
        print(
            "\nThe model text above is SIMULATED by hybridstack's emulator; routing, the "
            "sovereignty rules, redaction and the ledger are real. Drop --offline for real providers."
        )
    return 0 if result.status == "completed" else 1


def main() -> None:
    parser = argparse.ArgumentParser(description="Sovereignty-bound research brief.")
    parser.add_argument("--offline", action="store_true", help="use the built-in emulator")
    args = parser.parse_args()
    try:
        sys.exit(asyncio.run(run(args.offline)))
    except hs.HybridStackError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
