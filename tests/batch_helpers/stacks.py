"""A stack factory for batch workers in other processes: ``--stack batch_helpers.stacks:emulated``.

The test process runs the emulator and writes a JSON spec (``{"urls": {deployment: base
url}, "skill_table": {...}, "ledger": path | null}``); the worker (a CLI subprocess or a
Ray actor) finds it through ``spec=`` or ``$HYBRIDSTACK_BATCH_TEST_STACK`` and builds a
Stack over exactly those emulated deployments, so the test's emulator counts every
request the batch sends.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from hybridstack.catalog import Catalog
from hybridstack.ledger import MemoryLedger, SQLiteLedger
from hybridstack.stack import Stack
from hybridstack.testing import OFFLINE_API_KEY

SPEC_ENV = "HYBRIDSTACK_BATCH_TEST_STACK"


def write_spec(
    path: Any, urls: dict[str, str], skill_table: dict[str, list[str]], **extra: Any
) -> str:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"urls": urls, "skill_table": skill_table, **extra}, fh)
    return str(path)


def emulated(spec: str | None = None) -> contextlib.AbstractAsyncContextManager[Stack]:
    """The factory: the stack the spec file describes (an async context manager)."""
    config = json.loads(Path(spec or os.environ[SPEC_ENV]).read_text(encoding="utf-8"))
    return _emulated(config)


@contextlib.asynccontextmanager
async def _emulated(config: dict[str, Any]) -> AsyncIterator[Stack]:
    base = Catalog.default()
    moved = [
        d.model_copy(
            update={"base_url": config["urls"][d.id], "api_key": SecretStr(OFFLINE_API_KEY)}
        )
        for d in base
        if d.id in config["urls"]
    ]
    catalog = Catalog(families=base.families.values(), deployments=moved)
    ledger = SQLiteLedger(config["ledger"]) if config.get("ledger") else MemoryLedger()
    stack = Stack(catalog, skill_table=config["skill_table"], seed=7, ledger=ledger)
    try:
        yield stack
    finally:
        await stack.aclose()
        close = getattr(ledger, "close", None)
        if close is not None:
            close()
