"""Why nothing answered: a :class:`~hybridstack.errors.NoProviderError` in place of the
failure of a call that only local servers could take (no key is set for the hosted ones)
when none of them answered, naming the key variables that would help."""

from __future__ import annotations

from collections.abc import AsyncIterator

from hybridstack._sync import closing
from hybridstack.catalog import Catalog
from hybridstack.catalog.keys import KeyResolver, needs_key
from hybridstack.errors import (
    AllAttemptsFailedError,
    BudgetExceededError,
    NoProviderError,
    ProviderError,
)
from hybridstack.plan import Plan
from hybridstack.types import StreamEvent

__all__ = ["did_not_answer", "explain_silence", "nothing_answered", "only_keyless"]


def only_keyless(plan: Plan) -> bool:
    """Every candidate needs no key: what a plan holds when no provider key is set."""
    return bool(plan.candidates) and all(c.deployment.api_key_env is None for c in plan.candidates)


def did_not_answer(error: Exception) -> bool:
    """The attempt never reached a server (refused, unreachable, timed out), or a
    breaker skipped it after such failures."""
    if getattr(error, "skipped", False):
        return True
    return (
        isinstance(error, ProviderError)
        and error.kind == "retry_here"
        and error.code in ("connection_error", "timeout")
    )


async def explain_silence(
    events: AsyncIterator[StreamEvent], plan: Plan, catalog: Catalog, keys: KeyResolver
) -> AsyncIterator[StreamEvent]:
    """``events``, with a :class:`NoProviderError` in place of the failure when
    :func:`nothing_answered` finds one."""
    async with closing(events):
        try:
            async for event in events:
                yield event
        except (AllAttemptsFailedError, BudgetExceededError) as error:
            nothing = nothing_answered(plan, error, catalog, keys)
            if nothing is None:
                raise
            raise nothing from error


def nothing_answered(
    plan: Plan, error: Exception, catalog: Catalog, keys: KeyResolver
) -> NoProviderError | None:
    """A :class:`NoProviderError` for a call that had only keyless (local) deployments
    to try because keys are missing, and none of them answered; else None."""
    if not only_keyless(plan):
        return None
    candidates = [c.deployment for c in plan.candidates]
    group = error if isinstance(error, AllAttemptsFailedError) else error.__cause__
    errors = list(group.exceptions) if isinstance(group, AllAttemptsFailedError) else []
    if not errors or not all(did_not_answer(e) for e in errors):
        return None
    # Hosted deployments the router left out only for want of their key.
    variables: list[str] = []
    for dep_id, why in plan.excluded.items():
        dep = catalog.deployments.get(dep_id)
        if dep is None or not dep.api_key_env:
            continue
        var = dep.api_key_env
        if var in why and var not in variables and not keys.available(dep):
            variables.append(var)
    if not variables:
        return None
    tried = list(dict.fromkeys(str(getattr(e, "deployment", "")) for e in errors))
    urls = list(dict.fromkeys(d.base_url for d in candidates if d.id in tried))
    any_key = any(needs_key(d) and keys.available(d) for d in catalog)
    head = (
        "no provider key is set"
        if not any_key
        else "none of the keys for the hosted deployments this request may use is set"
    )
    listed = ", ".join(variables[:8]) + (", …" if len(variables) > 8 else "")
    return NoProviderError(
        f"{head} and no local server answered (tried {len(tried)} local deployment(s) at "
        f"{', '.join(urls)}: connection failed). To fix it, set a key such as {listed} "
        "(`hybridstack doctor` lists every variable), or start a local OpenAI-compatible "
        "server (Ollama: `ollama serve`), or try the offline emulator "
        "(`hybridstack demo`, `hybridstack.testing.offline_stack()`)",
        variables=variables,
        tried=tried,
    )
