"""Bring your own model: register a local OpenAI-compatible server (Ollama, vLLM) in code.

The catalog gets two entries in code, no file needed: a family (what the model is and
can do) and a deployment (where it runs: http://localhost:11434/v1, jurisdiction
LOCAL, no API key, price 0). ``skill_table=`` pins a skill of your own, "summarise",
to that deployment. Because it is LOCAL, even "regulated" data (allowed only on LOCAL
deployments) may use it. The ledger prices every call at $0 and says where it ran.

Offline, the emulator serves exactly this deployment (``emulator_config_for(catalog,
include=[...])`` then ``offline_catalog``); online, the example talks to your server.

Run it:
    python examples/bring_your_own_model.py --offline   # emulator: no server, no network
    ollama serve &  ollama pull qwen2.5:7b               # then, with a real local model:
    python examples/bring_your_own_model.py             # your local server
    LOCAL_BASE_URL=http://localhost:8000/v1 LOCAL_MODEL=Qwen/Qwen2.5-7B-Instruct \
        python examples/bring_your_own_model.py         # or vLLM (`vllm serve ...`)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import date

import hybridstack as hs
from hybridstack.testing import Emulator, emulator_config_for, offline_catalog

BASE_URL = os.environ.get("LOCAL_BASE_URL", "http://localhost:11434/v1")
MODEL = os.environ.get("LOCAL_MODEL", "qwen2.5:7b")
MINE = "qwen2.5-7b@my-ollama"  # family@site: how routes, plans and the ledger name it

LETTER = """Patient letter (regulated): Dr. Anna Weber to Mr. J. Novak, 12 March.
Your MRI shows a small disc protrusion at L4/L5. No surgery is needed. Please start
physiotherapy twice a week for six weeks and book a follow-up in April."""


def my_catalog() -> hs.Catalog:
    family = hs.Family(
        name="qwen2.5-7b",
        vendor="alibaba",
        context_window=32768,
        features=frozenset({"streaming", "system_prompt", "json_object"}),
        skills={"summarise": 0.8},
    )
    deployment = hs.Deployment(
        family="qwen2.5-7b",
        site="my-ollama",
        protocol="openai",
        model=MODEL,
        base_url=BASE_URL,
        region="local",
        jurisdiction="LOCAL",
        operator="ollama",
        api_key_env=None,  # Ollama and vLLM need no key
        price=hs.Price(
            input_per_mtok=0, output_per_mtok=0, as_of=date(2026, 1, 1), source="own GPU"
        ),
    )
    return hs.Catalog.default().with_entries(families=[family], deployments=[deployment])


async def summarise(stack: hs.Stack, offline: bool) -> None:
    plan = stack.route(LETTER, skill="summarise", data_class="regulated")
    print(f"route for skill 'summarise', data class 'regulated': {plan.deployment_ids}")
    print(f"  why: {'; '.join(plan.candidates[0].reasons)}")
    prompt = f"Summarise this letter in one sentence for the patient:\n{LETTER}"
    if offline:  # tell the emulator what to 'answer', so the output reads well
        prompt += "\nEMULATOR_REPLY: Your back needs physiotherapy twice a week for six weeks, not surgery."
    reply = await stack.complete(prompt, skill="summarise", data_class="regulated")
    print(f"\nsummary: {reply.text}")
    for a in stack.ledger.attempts():
        print(
            f"ledger: {a.deployment} model={a.model} region={a.region} jurisdiction={a.jurisdiction} "
            f"tokens={a.usage.input_tokens}+{a.usage.output_tokens} outcome={a.outcome} cost=${a.cost_usd:.6f}"
        )


async def run(offline: bool) -> None:
    catalog = my_catalog()
    skills = {"summarise": [MINE]}  # pin the skill to the deployment
    if not offline:
        async with hs.Stack(catalog, skill_table=skills) as stack:
            await summarise(stack, offline)
        return
    config = emulator_config_for(catalog, include=[MINE])  # emulate just this deployment
    async with (
        Emulator(config) as emulator,
        hs.Stack(offline_catalog(catalog, emulator), skill_table=skills) as stack,
    ):
        print(f"emulating {MINE} at {stack.catalog.deployment(MINE).base_url}")
        await summarise(stack, offline)
    print(
        "\nThe model text above is SIMULATED by hybridstack's emulator, speaking the OpenAI "
        f"wire format like Ollama does. Drop --offline to use your server at {BASE_URL}."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Register a local model server in code.")
    parser.add_argument("--offline", action="store_true", help="use the built-in emulator")
    args = parser.parse_args()
    try:
        asyncio.run(run(args.offline))
    except hs.AllAttemptsFailedError as exc:
        last = exc.exceptions[-1]
        sys.exit(
            f"error: no answer from {BASE_URL} (model {MODEL!r}): {getattr(last, 'message', last)}\n"
            f"Is the server running? Start it with `ollama serve`, then `ollama pull {MODEL}` "
            "(or set LOCAL_BASE_URL / LOCAL_MODEL), or run with --offline."
        )
    except hs.HybridStackError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
