"""Run one agent thread against an emulator another process started (for the kill test).

    python tests/graph_helpers/run_agent.py CONFIG_JSON

CONFIG_JSON holds ``{"urls": {deployment_id: base_url}, "checkpoint": path,
"thread_id": str, "task": str, "plan": [...], "skill_table": {...}}``. The script
builds a Stack over exactly those emulated deployments and runs the thread, printing
one line per event so the parent can follow along; the parent SIGKILLs it mid-run.
:func:`build_stack` is shared with the parent, which resumes the thread in-process.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

from hybridstack.catalog import Catalog
from hybridstack.stack import Stack
from hybridstack.testing import OFFLINE_API_KEY


def build_stack(urls: Mapping[str, str], skill_table: Mapping[str, list[str]]) -> Stack:
    """A Stack whose catalog is exactly the emulated deployments named in ``urls``."""
    base = Catalog.default()
    moved = [
        d.model_copy(update={"base_url": urls[d.id], "api_key": SecretStr(OFFLINE_API_KEY)})
        for d in base
        if d.id in urls
    ]
    catalog = Catalog(families=base.families.values(), deployments=moved)
    return Stack(catalog, skill_table=dict(skill_table), seed=7)


async def main(config: Mapping[str, Any]) -> None:
    from hybridstack.graph import Agent

    stack = build_stack(config["urls"], config["skill_table"])
    agent = Agent(stack, checkpoint_path=config["checkpoint"], max_concurrency=4)
    async for event in agent.astream(
        config["task"], plan=config["plan"], thread_id=config["thread_id"], stream_tokens=False
    ):
        print(event.type, getattr(event, "subtask_id", ""), flush=True)
    await stack.aclose()


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as fh:
        asyncio.run(main(json.load(fh)))
