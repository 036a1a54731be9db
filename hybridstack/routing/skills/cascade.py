"""The cascade skill classifier: the offline rules first, a caller's model only when unsure.

One job: :class:`LLMSkillClassifier` wraps an offline ``SkillClassifier`` and awaits a
caller-supplied ``ask`` only below a confidence threshold, falling back to the offline
guess when the model fails; :class:`CascadeStats` counts what it did.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeAlias

from .classifier import _DEFAULT, Classification, SkillClassifier, SkillGuess, _clip
from .vocabulary import SKILLS

__all__ = ["Ask", "CascadeStats", "LLMSkillClassifier"]

_LLM_PROMPT = """Classify the user's request into exactly one skill label.
- code: the deliverable is code or is about specific code or a programming tool \
(write/fix/review/explain code, SQL, regex, shell, kubectl, stack traces, tests), in any \
human language.
- multilingual: not code, and either a translation/localisation request or written mostly \
in a language other than English (whatever it asks).
- reasoning: English, not code, needs several steps of inference (maths word problems, \
proofs, logic puzzles, planning, trade-offs and technology choices, applying a policy to a \
case).
- general: English, not code, single-step or casual (facts, greetings, short emails, \
summaries).
Answer with the label only.

Request:
<<<
{text}
>>>"""

_LABEL_RE = re.compile(rf"\b({'|'.join(SKILLS)})\b", re.IGNORECASE)
_log = logging.getLogger("hybridstack.classifier")

Ask: TypeAlias = Callable[[str], Awaitable[str]]


@dataclass(slots=True)
class CascadeStats:
    """What an :class:`LLMSkillClassifier` did: every guess, model call and model failure."""

    guesses: int = 0
    llm_calls: int = 0
    llm_failures: int = 0


class LLMSkillClassifier:
    """A cascade: the offline classifier first, a model only when the rules are unsure.

    Plug it into a stack: ``Stack(skill_classifier=LLMSkillClassifier(ask))``. Every prompt
    is classified offline; only when that confidence is below ``threshold`` is ``ask``
    awaited. If the model fails (an exception, a timeout, a reply with no label) the
    offline answer is used, its :attr:`SkillGuess.llm_error` says why, a warning is
    logged on ``hybridstack.classifier`` and :attr:`stats` counts it.

    Args:
        ask: async callable taking a prompt and returning the model's text reply. The
            caller owns the model, credentials, retries and cost accounting. One built on
            a stack must pass ``skill=`` to its ``complete`` call, or the stack would
            classify the classifier's own prompt.
        threshold: consult ``ask`` only when the offline confidence is below this (0..1).
        base: the offline classifier to use (default settings if omitted).
        timeout: seconds to wait for ``ask`` (None: no limit).
        max_prompt_chars: the request is truncated to this many characters in the prompt.
    """

    def __init__(
        self,
        ask: Ask,
        *,
        threshold: float = 0.65,
        base: SkillClassifier | None = None,
        timeout: float | None = 10.0,
        max_prompt_chars: int = 2000,
    ) -> None:
        if not callable(ask):
            raise TypeError(f"ask must be an async callable, not {type(ask).__name__}")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout must be positive seconds or None, got {timeout}")
        self.ask = ask
        self.threshold = threshold
        self.base = base or _DEFAULT
        self.timeout = timeout
        self.max_prompt_chars = max_prompt_chars
        self.stats = CascadeStats()

    def offline_guess(self, text: str) -> SkillGuess:
        """The first stage alone (no model call): what a synchronous caller can use."""
        return self.base.guess(text)

    async def __call__(self, text: str) -> SkillGuess:
        return await self.guess(text)

    async def classify(self, text: str) -> Classification:
        """Like :meth:`guess`, as the ``(skill, confidence, reasons)`` tuple."""
        return (await self.guess(text)).as_classification()

    async def guess(self, text: str) -> SkillGuess:
        det = self.base.guess(text)
        self.stats.guesses += 1
        if det.confidence >= self.threshold:
            return det
        import asyncio  # deferred: ~40 ms to import and only this optional path needs it

        self.stats.llm_calls += 1
        prompt = _LLM_PROMPT.format(text=text[: self.max_prompt_chars])
        try:
            reply = await asyncio.wait_for(self.ask(prompt), self.timeout)
        except Exception as exc:  # any failure (timeout, network, bug) falls back to rules
            return self._fallback(det, f"llm failed: {type(exc).__name__}")
        m = _LABEL_RE.search(reply if isinstance(reply, str) else "")
        if m is None:
            return self._fallback(det, "llm reply unparseable")
        label = m.group(1).lower()
        if label == det.skill:
            return SkillGuess(
                label,
                _clip(max(det.confidence, 0.85)),
                det.language,
                (*det.reasons, "llm agrees"),
                source="llm",
            )
        reasons = (f"llm: {label}", f"rules said {det.skill}", *det.reasons)
        return SkillGuess(label, 0.75, det.language, reasons, source="llm")

    def _fallback(self, det: SkillGuess, why: str) -> SkillGuess:
        self.stats.llm_failures += 1
        _log.warning("skill classifier: %s; using the offline answer %r", why, det.skill)
        return SkillGuess(
            det.skill, det.confidence, det.language, (*det.reasons, why), llm_error=why
        )
