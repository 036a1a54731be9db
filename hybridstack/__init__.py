"""hybridstack: route agent subtasks to specialised model families across jurisdictions.

The curated public API. Names load lazily on first use, so ``import hybridstack`` stays
fast and never imports the provider SDKs or LangGraph until they are needed::

    import hybridstack as hs

    async with hs.testing.offline_stack() as stack:          # no keys, no network
        reply = await stack.complete("Fix this: def add(a, b): return a - b", skill="code")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> module that defines it. Kept sorted by module so the layers read top-down.
_EXPORTS: dict[str, str] = {
    # types
    "Attempt": "hybridstack.types",
    "ChatRequest": "hybridstack.types",
    "ChatResponse": "hybridstack.types",
    "FinishEvent": "hybridstack.types",
    "Message": "hybridstack.types",
    "StreamEvent": "hybridstack.types",
    "StreamResumed": "hybridstack.types",
    "TextDelta": "hybridstack.types",
    "Tool": "hybridstack.types",
    "ToolCall": "hybridstack.types",
    "ToolCallDelta": "hybridstack.types",
    "Usage": "hybridstack.types",
    "UsageEvent": "hybridstack.types",
    # errors
    "AllAttemptsFailedError": "hybridstack.errors",
    "BatchFileError": "hybridstack.errors",
    "BudgetExceededError": "hybridstack.errors",
    "CatalogError": "hybridstack.errors",
    "ConfigurationError": "hybridstack.errors",
    "ContentRefusedError": "hybridstack.errors",
    "ContextTooLongError": "hybridstack.errors",
    "FailoverError": "hybridstack.errors",
    "FatalError": "hybridstack.errors",
    "HybridStackError": "hybridstack.errors",
    "InvalidRequestError": "hybridstack.errors",
    "LedgerError": "hybridstack.errors",
    "MissingAPIKeyError": "hybridstack.errors",
    "NoProviderError": "hybridstack.errors",
    "NoRouteError": "hybridstack.errors",
    "ProviderError": "hybridstack.errors",
    "RetryableError": "hybridstack.errors",
    "SchemaMismatchError": "hybridstack.errors",
    "SovereigntyError": "hybridstack.errors",
    "StreamInterruptedError": "hybridstack.errors",
    "UnknownModelError": "hybridstack.errors",
    # keeping keys out of text
    "scrub": "hybridstack._secrets",
    # catalog
    "Catalog": "hybridstack.catalog",
    "Deployment": "hybridstack.catalog",
    "Family": "hybridstack.catalog",
    "Price": "hybridstack.catalog",
    # providers
    "Provider": "hybridstack.providers",
    "create_provider": "hybridstack.providers",
    # routing
    "DataClassRules": "hybridstack.routing",
    "Plan": "hybridstack.routing",
    "Policy": "hybridstack.routing",
    "Router": "hybridstack.routing",
    "SkillTable": "hybridstack.routing",
    # resilience
    "BreakerSettings": "hybridstack.resilience",
    "Budget": "hybridstack.resilience",
    "ExecutionEvent": "hybridstack.resilience",
    "HedgeSettings": "hybridstack.resilience",
    "RetrySettings": "hybridstack.resilience",
    # ledger
    "Ledger": "hybridstack.ledger",
    "MemoryLedger": "hybridstack.ledger",
    "PostgresLedger": "hybridstack.ledger",
    "SQLiteLedger": "hybridstack.ledger",
    # stack
    "Stack": "hybridstack.stack",
    # telemetry (OpenTelemetry loads only when it is switched on)
    "Telemetry": "hybridstack.telemetry",
    "instrument": "hybridstack.telemetry",
    "uninstrument": "hybridstack.telemetry",
    # graph
    "Agent": "hybridstack.graph",
    "HybridChatModel": "hybridstack.graph",
    "RunResult": "hybridstack.graph",
    "Subtask": "hybridstack.graph",
    "build_agent_graph": "hybridstack.graph",
    "classify_skill": "hybridstack.routing.skills.classifier",
    "LLMSkillClassifier": "hybridstack.routing.skills.cascade",
    "SkillGuess": "hybridstack.routing.skills.classifier",
    # batch
    "Batch": "hybridstack.batch",
    "run_batch": "hybridstack.batch",
    "run_batch_sync": "hybridstack.batch",
}

_SUBMODULES = {
    "testing",
    "errors",
    "types",
    "tokens",
    "catalog",
    "routing",
    "resilience",
    "ledger",
    "graph",
    "telemetry",
    "batch",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is not None:
        value = getattr(importlib.import_module(module_name), name)
        globals()[name] = value  # later look-ups skip this hook
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"hybridstack.{name}")
    raise AttributeError(f"module 'hybridstack' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS, *_SUBMODULES])


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from hybridstack import testing as testing
    from hybridstack._secrets import scrub
    from hybridstack.batch import Batch, run_batch, run_batch_sync
    from hybridstack.catalog import Catalog, Deployment, Family, Price
    from hybridstack.errors import (
        AllAttemptsFailedError,
        BatchFileError,
        BudgetExceededError,
        CatalogError,
        ConfigurationError,
        ContentRefusedError,
        ContextTooLongError,
        FailoverError,
        FatalError,
        HybridStackError,
        InvalidRequestError,
        LedgerError,
        MissingAPIKeyError,
        NoProviderError,
        NoRouteError,
        ProviderError,
        RetryableError,
        SchemaMismatchError,
        SovereigntyError,
        StreamInterruptedError,
        UnknownModelError,
    )
    from hybridstack.graph import Agent, HybridChatModel, RunResult, Subtask, build_agent_graph
    from hybridstack.ledger import Ledger, MemoryLedger, PostgresLedger, SQLiteLedger
    from hybridstack.providers import Provider, create_provider
    from hybridstack.resilience import (
        BreakerSettings,
        Budget,
        ExecutionEvent,
        HedgeSettings,
        RetrySettings,
    )
    from hybridstack.routing import DataClassRules, Plan, Policy, Router, SkillTable
    from hybridstack.routing.skills.cascade import LLMSkillClassifier
    from hybridstack.routing.skills.classifier import SkillGuess, classify_skill
    from hybridstack.stack import Stack
    from hybridstack.telemetry import Telemetry, instrument, uninstrument
    from hybridstack.types import (
        Attempt,
        ChatRequest,
        ChatResponse,
        FinishEvent,
        Message,
        StreamEvent,
        StreamResumed,
        TextDelta,
        Tool,
        ToolCall,
        ToolCallDelta,
        Usage,
        UsageEvent,
    )
