"""How a call ends without an answer, after routing or attempts: the call-level errors.

No allowed route (:class:`NoRouteError`), a budget run out, a stream broken after its
first token, every planned deployment failed (:class:`AllAttemptsFailedError`), and
attempts the ledger could not store. Import them from :mod:`hybridstack.errors`, whose
docstring draws the whole tree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hybridstack.errors._setup import HybridStackError


class NoRouteError(HybridStackError):
    """No allowed deployment can serve the request; ``exclusions`` says why for each."""

    #: Exclusions listed one by one in the message; the rest are summarised by reason.
    MAX_LISTED = 12

    def __init__(self, message: str, exclusions: Mapping[str, str] | None = None) -> None:
        self.exclusions = dict(exclusions or {})
        if self.exclusions:
            message = f"{message}\nexcluded:\n{self._describe(self.exclusions)}"
        super().__init__(message)

    @classmethod
    def _describe(cls, exclusions: Mapping[str, str]) -> str:
        # Reasons that name the user's constraint (jurisdiction, key, price …) matter most;
        # "not ranked for this skill" / "not named by model" are listed last and counted.
        def routine(why: str) -> bool:
            return "not ranked for skill" in why or why.startswith(("not named by", "not in route"))

        ordered = sorted(exclusions.items(), key=lambda item: routine(item[1]))
        listed = ordered[: cls.MAX_LISTED]
        lines = [f"  - {d}: {why}" for d, why in listed]
        rest = ordered[cls.MAX_LISTED :]
        if rest:
            kinds: dict[str, int] = {}
            for _, why in rest:
                key = (
                    why.split(":")[0]
                    if not routine(why)
                    else why.split(" for ")[0].split(" by ")[0]
                )
                kinds[key] = kinds.get(key, 0) + 1
            summary = "; ".join(
                f"{n} × {k}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1])
            )
            lines.append(f"  … and {len(rest)} more ({summary}); see .exclusions for all")
        return "\n".join(lines)


class BudgetExceededError(HybridStackError):
    """The call's budget (deadline, attempts or spend) ran out before an answer."""

    def __init__(self, message: str, *, budget: str) -> None:
        self.budget = budget
        super().__init__(message)


class StreamInterruptedError(HybridStackError):
    """A stream failed after its first token; ``partial_text`` keeps what arrived."""

    def __init__(self, message: str, *, partial_text: str, cause: BaseException | None = None):
        self.partial_text = partial_text
        self.cause = cause
        super().__init__(message)


class LedgerError(HybridStackError):
    """The ledger could not store (or fully read) attempts: disk full, file locked or gone.

    ``unwritten`` holds the attempts that were recorded but are not in storage, so that a
    caller can write them elsewhere; ``path`` names the ledger file when there is one.
    """

    def __init__(self, message: str, *, path: str | None = None, unwritten: Sequence[Any] = ()):
        self.path = path
        self.unwritten = tuple(unwritten)
        super().__init__(message)


class AllAttemptsFailedError(HybridStackError, ExceptionGroup[Exception]):
    """Every deployment of the plan failed. Holds each attempt's error, in order."""

    def __new__(cls, message: str, exceptions: Sequence[Exception]) -> AllAttemptsFailedError:
        return super().__new__(cls, message, list(exceptions))

    def __init__(self, message: str, exceptions: Sequence[Exception]) -> None:
        super().__init__(message, list(exceptions))

    def derive(self, excs: Sequence[Exception]) -> AllAttemptsFailedError:  # type: ignore[override]
        return AllAttemptsFailedError(self.message, excs)

    @classmethod
    def from_errors(cls, errors: Sequence[Exception]) -> AllAttemptsFailedError:
        lines = []
        for error in errors:
            where = getattr(error, "deployment", None) or "?"
            kind = getattr(error, "kind", type(error).__name__)
            lines.append(f"  - {where}: {kind}: {getattr(error, 'message', error)}")
        tried = len({getattr(e, "deployment", None) for e in errors})
        message = f"all {len(errors)} attempts on {tried} deployment(s) failed:\n" + "\n".join(
            lines
        )
        return cls(message, errors)
