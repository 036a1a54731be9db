"""What the executor did after each attempt (answered, retried, failed over, gave up).

An attempt's ``outcome`` is the *error class* of the taxonomy (``retry_here``,
``fail_over`` …): the kind of failure, which says what the executor may do, not what it
did. Users read ``retry_here`` as "it retried here" even when the call then failed over,
so the action taken is told apart here. It is derived from the call's attempts in order
(the next attempt of the same call shows what followed), so it needs no column and holds
for ledgers written by any version.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Literal

from hybridstack.types import Attempt

__all__ = ["Action", "attempt_actions"]

#: What followed an attempt.
Action = Literal[
    "answered",  # this attempt's reply was the call's answer
    "retried",  # failed; the same deployment was tried again
    "failed over",  # failed; another deployment was tried next
    "gave up",  # failed and nothing followed: the call failed (or a budget ran out)
    "cancelled",  # stopped by the executor (a hedge that lost the race, a cancelled call)
    "not sent",  # skipped without a request (breaker open, no key)
]


def attempt_actions(attempts: Sequence[Attempt]) -> list[Action]:
    """The action that followed each attempt, in the order given."""
    by_call: dict[str, list[int]] = defaultdict(list)
    for index, attempt in enumerate(attempts):
        by_call[attempt.call_id].append(index)
    actions: list[Action] = ["answered"] * len(attempts)
    for indexes in by_call.values():
        ordered = sorted(indexes, key=lambda i: (attempts[i].attempt_index, attempts[i].started_at))
        for position, i in enumerate(ordered):
            # What followed is the next attempt of the call that was really sent.
            following = next(
                (attempts[j] for j in ordered[position + 1 :] if attempts[j].outcome != "skipped"),
                None,
            )
            actions[i] = _action(attempts[i], following)
    return actions


def _action(attempt: Attempt, following: Attempt | None) -> Action:
    if attempt.outcome == "ok":
        return "answered"
    if attempt.outcome == "skipped":
        return "not sent"
    if attempt.outcome == "cancelled":
        return "cancelled"
    if following is None:
        return "gave up"
    return "retried" if following.deployment == attempt.deployment else "failed over"
