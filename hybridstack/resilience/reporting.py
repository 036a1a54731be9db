"""Failure reporting: the errors a call ends with, and messages that say what was tried.

* :func:`exhausted` — every candidate is done: one :class:`AllAttemptsFailedError`
  (each failed attempt's error in order, then one :class:`DeploymentSkippedError` per
  deployment never reached), or a :class:`NoRouteError` when nothing could be tried;
* :func:`budget_error` — a :class:`BudgetExceededError` naming the budget and what was
  tried, its ``__cause__`` the group of the errors so far.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hybridstack.errors import (
    AllAttemptsFailedError,
    BudgetExceededError,
    DeploymentSkippedError,
    NoRouteError,
)

if TYPE_CHECKING:
    from hybridstack.resilience.call import Call

__all__ = ["DeploymentSkippedError", "budget_error", "exhausted", "failure_group"]


def _failure_lines(call: Call) -> list[str]:
    lines: list[str] = []
    for error in call.errors:
        details = ", ".join(
            f"{name}={value}"
            for name, value in (
                ("status", error.status),
                ("code", error.code),
                ("retry_after", error.retry_after),
            )
            if value is not None
        )
        suffix = f" ({details})" if details else ""
        lines.append(f"  - {error.deployment}: {error.kind}: {error.message}{suffix}")
    if call.skips:
        lines.append("skipped without a request:")
        lines.extend(f"  - {e.deployment}: {e.message}" for e in call.skips)
    if call.not_tried:
        lines.append("not tried:")
        lines.extend(f"  - {dep}: {why}" for dep, why in call.not_tried.items())
    excluded = getattr(call.plan, "excluded", None) or {}
    if excluded:
        lines.append("excluded by the plan:")
        lines.extend(f"  - {dep}: {why}" for dep, why in excluded.items())
    return lines


def failure_group(call: Call) -> AllAttemptsFailedError | None:
    """Every error of the call so far as one group (None when there is none)."""
    errors: list[Exception] = [*call.errors, *call.skips]
    if not errors:
        return None
    tried = len(dict.fromkeys(e.deployment for e in call.errors))
    if call.errors:
        head = f"all {len(call.errors)} attempt(s) on {tried} deployment(s) failed:"
    else:
        head = "no request was sent: every planned deployment was skipped"
    return AllAttemptsFailedError("\n".join([head, *_failure_lines(call)]), errors)


def exhausted(call: Call) -> Exception:
    """The error of a call whose every candidate is done."""
    group = failure_group(call)
    if group is not None:
        return group
    excluded = dict(getattr(call.plan, "excluded", None) or {})
    excluded.update(call.not_tried)
    if not call.slots:
        return NoRouteError("the plan has no candidates to try", excluded)
    return NoRouteError("no planned deployment could be tried", excluded)


def budget_error(call: Call, which: str, detail: str) -> BudgetExceededError:
    """``which`` budget ("deadline", "attempts", "cost") ran out; ``detail`` says how."""
    tried = ", ".join(f"{e.deployment} ({e.kind})" for e in call.errors) or "no failed attempts"
    message = (
        f"{which} budget exceeded: {detail}; {call.attempts} attempt(s), "
        f"${call.spent:.6f} spent; tried: {tried}"
    )
    error = BudgetExceededError(message, budget=which)
    error.errors = tuple(call.errors)  # type: ignore[attr-defined]
    group = failure_group(call)
    if group is not None:
        error.__cause__ = group
    return error
