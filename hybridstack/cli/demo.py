"""``hybridstack demo``: the offline agent demo on the emulator, with one region failing.

A customer writes in Indonesian asking for a code fix and an explanation. The agent
plans subtasks, routes code to DeepSeek and the explanation to Qwen across CN, SG, US,
EU and LOCAL deployments, fails over when the failing region refuses, and answers in
Indonesian. Everything is real (SDK clients, HTTP, retries, breakers, ledger) except the
model text, which the emulator simulates, and the output says so.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from hybridstack.cli.agent_view import AgentView, jurisdiction_table, result_summary

DEMO_TASK = """Halo, aplikasi toko online saya error waktu pelanggan checkout:
TypeError: list indices must be integers or slices, not str

Tolong perbaiki fungsi Python ini:
```python
def total(items):
    return sum(i["price"] for i in items) * 1.1 + items["shipping"]
```
Lalu jelaskan kenapa error itu terjadi dengan bahasa yang sederhana."""

REAL_PROVIDERS_HINT = (
    "The model text above is SIMULATED by hybridstack's built-in emulator; routing, "
    "retries, fail-over, breakers and the priced ledger are the production code paths.\n"
    "To use real models: export provider keys (DEEPSEEK_API_KEY, DASHSCOPE_INTL_API_KEY, "
    "TOGETHER_API_KEY, OPENAI_API_KEY …; `hybridstack doctor` lists them) and run "
    '`hybridstack run "your task"`; or serve a local OpenAI-compatible model (Ollama at '
    "http://localhost:11434/v1, vLLM at http://localhost:8000/v1) — LOCAL deployments "
    "need no key."
)


def _matches(deployment: Any, target: str) -> bool:
    wanted = {t.strip().lower() for t in target.split(",") if t.strip()}
    return deployment.region.lower() in wanted or deployment.jurisdiction.lower() in wanted


async def run_demo(
    console: Console,
    *,
    seed: int = 7,
    outage: str = "CN",
    progress: bool = True,
    as_json: bool = False,
) -> int:
    from hybridstack.emulator.offline import offline_stack
    from hybridstack.graph import Agent

    async with offline_stack(seed=seed) as stack:
        down = [d.id for d in stack.catalog if _matches(d, outage)]
        if not down:
            from hybridstack.errors import InvalidRequestError

            raise InvalidRequestError(
                f"--outage {outage!r}: no deployment is in that region or jurisdiction; "
                f"jurisdictions: {', '.join(stack.catalog.jurisdictions())}"
            )
        stack.emulator.set_outage(down, True)
        await stack.warm_up()  # SDK imports off the loop, before the live display starts
        # The emulator's simulated text cannot plan, so the demo plans without a model.
        agent = Agent(stack, planner="heuristic", checkpointer="memory")
        if not as_json:
            console.print(
                Panel(
                    Text(DEMO_TASK),
                    title="hybridstack demo — a customer message in Indonesian",
                    subtitle=f"simulated outage: {outage} ({len(down)} deployments down)",
                )
            )
        view = AgentView(console if not as_json else Console(quiet=True), progress=progress)
        result = await view.follow(agent.stream(DEMO_TASK, stream_tokens=False))
    if as_json:
        summary = result_summary(result)
        summary["simulated"] = True
        summary["outage"] = {"target": outage, "deployments": down}
        print(json.dumps(summary, ensure_ascii=False, indent=2))
        return 0 if result.status == "completed" else 1
    # Model text is shown as text: brackets in it (code, "[simulated …]") are not markup.
    console.print(
        Panel(Text(result.final_answer or "(no answer)"), title="Final answer (simulated text)")
    )
    console.print(jurisdiction_table(result))
    totals = result.totals
    console.print(
        f"run {result.run_id}: {len(result.subtasks)} subtask(s), {totals.attempts} attempt(s) "
        f"({totals.failed_attempts} failed), {totals.input_tokens + totals.output_tokens} tokens, "
        f"${totals.cost_usd:.6f}"
    )
    console.print(REAL_PROVIDERS_HINT, markup=False, highlight=False)
    return 0 if result.status == "completed" else 1


def main_demo(args: Any, console: Console) -> int:
    return asyncio.run(
        run_demo(
            console,
            seed=args.seed,
            outage=args.outage,
            progress=not args.no_progress,
            as_json=args.json,
        )
    )
