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
    from hybridstack._secrets import scrub as scrub
    from hybridstack.batch import (
        Batch as Batch,
    )
    from hybridstack.batch import (
        run_batch as run_batch,
    )
    from hybridstack.batch import (
        run_batch_sync as run_batch_sync,
    )
    from hybridstack.catalog import (
        Catalog as Catalog,
    )
    from hybridstack.catalog import (
        Deployment as Deployment,
    )
    from hybridstack.catalog import (
        Family as Family,
    )
    from hybridstack.catalog import (
        Price as Price,
    )
    from hybridstack.errors import (
        AllAttemptsFailedError as AllAttemptsFailedError,
    )
    from hybridstack.errors import (
        BatchFileError as BatchFileError,
    )
    from hybridstack.errors import (
        BudgetExceededError as BudgetExceededError,
    )
    from hybridstack.errors import (
        CatalogError as CatalogError,
    )
    from hybridstack.errors import (
        ConfigurationError as ConfigurationError,
    )
    from hybridstack.errors import (
        ContentRefusedError as ContentRefusedError,
    )
    from hybridstack.errors import (
        ContextTooLongError as ContextTooLongError,
    )
    from hybridstack.errors import (
        FailoverError as FailoverError,
    )
    from hybridstack.errors import (
        FatalError as FatalError,
    )
    from hybridstack.errors import (
        HybridStackError as HybridStackError,
    )
    from hybridstack.errors import (
        InvalidRequestError as InvalidRequestError,
    )
    from hybridstack.errors import (
        LedgerError as LedgerError,
    )
    from hybridstack.errors import (
        MissingAPIKeyError as MissingAPIKeyError,
    )
    from hybridstack.errors import (
        NoProviderError as NoProviderError,
    )
    from hybridstack.errors import (
        NoRouteError as NoRouteError,
    )
    from hybridstack.errors import (
        ProviderError as ProviderError,
    )
    from hybridstack.errors import (
        RetryableError as RetryableError,
    )
    from hybridstack.errors import (
        SchemaMismatchError as SchemaMismatchError,
    )
    from hybridstack.errors import (
        SovereigntyError as SovereigntyError,
    )
    from hybridstack.errors import (
        StreamInterruptedError as StreamInterruptedError,
    )
    from hybridstack.errors import (
        UnknownModelError as UnknownModelError,
    )
    from hybridstack.graph import (
        Agent as Agent,
    )
    from hybridstack.graph import (
        HybridChatModel as HybridChatModel,
    )
    from hybridstack.graph import (
        RunResult as RunResult,
    )
    from hybridstack.graph import (
        Subtask as Subtask,
    )
    from hybridstack.graph import (
        build_agent_graph as build_agent_graph,
    )
    from hybridstack.ledger import (
        Ledger as Ledger,
    )
    from hybridstack.ledger import (
        MemoryLedger as MemoryLedger,
    )
    from hybridstack.ledger import (
        PostgresLedger as PostgresLedger,
    )
    from hybridstack.ledger import (
        SQLiteLedger as SQLiteLedger,
    )
    from hybridstack.providers import Provider as Provider
    from hybridstack.providers import create_provider as create_provider
    from hybridstack.resilience import (
        BreakerSettings as BreakerSettings,
    )
    from hybridstack.resilience import (
        Budget as Budget,
    )
    from hybridstack.resilience import (
        ExecutionEvent as ExecutionEvent,
    )
    from hybridstack.resilience import (
        HedgeSettings as HedgeSettings,
    )
    from hybridstack.resilience import (
        RetrySettings as RetrySettings,
    )
    from hybridstack.routing import (
        DataClassRules as DataClassRules,
    )
    from hybridstack.routing import (
        Plan as Plan,
    )
    from hybridstack.routing import (
        Policy as Policy,
    )
    from hybridstack.routing import (
        Router as Router,
    )
    from hybridstack.routing import (
        SkillTable as SkillTable,
    )
    from hybridstack.routing.skills.cascade import LLMSkillClassifier as LLMSkillClassifier
    from hybridstack.routing.skills.classifier import (
        SkillGuess as SkillGuess,
    )
    from hybridstack.routing.skills.classifier import (
        classify_skill as classify_skill,
    )
    from hybridstack.stack import Stack as Stack
    from hybridstack.telemetry import (
        Telemetry as Telemetry,
    )
    from hybridstack.telemetry import (
        instrument as instrument,
    )
    from hybridstack.telemetry import (
        uninstrument as uninstrument,
    )
    from hybridstack.types import (
        Attempt as Attempt,
    )
    from hybridstack.types import (
        ChatRequest as ChatRequest,
    )
    from hybridstack.types import (
        ChatResponse as ChatResponse,
    )
    from hybridstack.types import (
        FinishEvent as FinishEvent,
    )
    from hybridstack.types import (
        Message as Message,
    )
    from hybridstack.types import (
        StreamEvent as StreamEvent,
    )
    from hybridstack.types import (
        StreamResumed as StreamResumed,
    )
    from hybridstack.types import (
        TextDelta as TextDelta,
    )
    from hybridstack.types import (
        Tool as Tool,
    )
    from hybridstack.types import (
        ToolCall as ToolCall,
    )
    from hybridstack.types import (
        ToolCallDelta as ToolCallDelta,
    )
    from hybridstack.types import (
        Usage as Usage,
    )
    from hybridstack.types import (
        UsageEvent as UsageEvent,
    )
