"""Run one agent thread against an emulator another process started (durability tests).

    python tests/graph_helpers/run_agent.py CONFIG_JSON

CONFIG_JSON holds ``{"urls": {deployment_id: base_url}, "checkpoint": path,
"thread_id": str, "task": str, "plan": [...], "skill_table": {...}}`` and optionally
``"mode": "start" | "resume"`` (default ``start``), ``"wait_for_go": true`` (print
``ready``, then start when a line arrives on stdin, so two processes can be released at
the same moment) and ``"lease_ttl"``. The script builds a Stack over exactly those
emulated deployments and runs (or resumes) the thread, printing one line per event so
the parent can follow along. It ends with ``finished <status>``, or with ``refused
<json>`` and exit code 3 when another run holds the thread.
:func:`build_stack` is shared with the parent, which resumes threads in-process.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

from hybridstack.catalog import Catalog
from hybridstack.stack import Stack
from hybridstack.testing import OFFLINE_API_KEY

EXIT_REFUSED = 3


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


async def main(config: Mapping[str, Any]) -> int:
    from hybridstack.graph import Agent

    stack = build_stack(config["urls"], config["skill_table"])
    options: dict[str, Any] = {"checkpoint_path": config["checkpoint"], "max_concurrency": 4}
    if "lease_ttl" in config:
        options["lease_ttl"] = config["lease_ttl"]
    agent = Agent(stack, **options)
    thread_id = config["thread_id"]
    if config.get("wait_for_go"):
        print("ready", os.getpid(), flush=True)
        await asyncio.to_thread(sys.stdin.readline)
    if config.get("mode") == "resume":
        events = agent.stream_resume(thread_id, stream_tokens=False)
    else:
        events = agent.stream(
            config["task"], plan=config["plan"], thread_id=thread_id, stream_tokens=False
        )
    try:
        async for event in events:
            print(event.type, getattr(event, "subtask_id", ""), flush=True)
            if event.type == "run_finished":
                print("finished", event.result.status, flush=True)
    except Exception as error:
        # By name: the parent also runs this script against code without leases.
        if type(error).__name__ != "ThreadBusyError":
            raise
        holder = error.holder  # type: ignore[attr-defined]
        refusal = {"message": str(error), "holder_pid": holder.pid, "owner": holder.owner}
        print("refused", json.dumps(refusal), flush=True)
        return EXIT_REFUSED
    finally:
        await stack.aclose()
    return 0


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as fh:
        sys.exit(asyncio.run(main(json.load(fh))))
