"""The offline skill classifier: label a prompt ``code``, ``multilingual``, ``reasoning`` or
``general`` so the router can send it to the right model family.

One job: turn a prompt into a :class:`SkillGuess` offline, without any model call, in well
under a millisecond, by a transparent rule system whose every decision carries
human-readable ``reasons``. The precedence of the labels, the cues and the cost are
described in docs/routing.md ("The skill classifier"). Standard library only; imported
lazily (never by ``import hybridstack``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, NamedTuple, TypeAlias

from ._code_cues import _choice_for_project, _code_evidence, _CodeEvidence, _grams
from ._patterns import _LATIN_WORD_CHAR
from ._prose_cues import _LONG_PROMPT_WORDS, _reasoning_vs_general, _translate_intent
from .language import _language_stats
from .vocabulary import SKILLS, Skill

__all__ = [
    "SKILLS",
    "Classification",
    "GuessSource",
    "Skill",
    "SkillClassifier",
    "SkillGuess",
    "classify",
    "classify_skill",
    "guess_skill",
]


class Classification(NamedTuple):
    """Result of classifying one prompt: a plain 3-tuple, kept for callers that unpack it.

    :class:`SkillGuess` carries the same and more (language, who answered).
    """

    skill: Skill
    confidence: float  # 0..1; how sure the rules are, not a calibrated probability
    reasons: tuple[str, ...]  # human-readable cues, e.g. "code fence", "script: Thai 82%"


GuessSource: TypeAlias = Literal["rules", "llm"]


@dataclass(frozen=True, slots=True)
class SkillGuess:
    """A skill for one prompt, how sure the classifier is, and why.

    Attributes:
        skill: one of :data:`SKILLS`.
        confidence: 0..1, how sure the deciding stage is (not a calibrated probability).
            :class:`LLMSkillClassifier` consults its model only below its threshold.
        language: the prompt's main human language (ISO 639-1-ish, ``"und"`` if none),
            code and quoted text ignored; see :func:`detect_language`.
        reasons: the cues that decided, in plain words ("code fence", "script: Thai 82%").
        source: ``"rules"`` (the offline classifier) or ``"llm"`` (a cascade's model).
        llm_error: set when a cascade consulted its model and that failed (timeout, error,
            unparseable reply); the guess is then the offline one, and this says why.
    """

    skill: Skill
    confidence: float
    language: str
    reasons: tuple[str, ...]
    source: GuessSource = "rules"
    llm_error: str | None = None

    def as_classification(self) -> Classification:
        """The ``(skill, confidence, reasons)`` tuple older callers unpack."""
        return Classification(self.skill, self.confidence, self.reasons)


def _clip(x: float) -> float:
    return round(max(0.0, min(0.99, x)), 3)


class SkillClassifier:
    """Configurable deterministic classifier; ``classifier(text)`` returns a Classification.

    Args:
        extra_code_keywords: words that mark a prompt as about code (e.g. in-house framework
            names). Matched case-insensitively, word-bounded for Latin-script words and as
            substrings otherwise. A match adds 3.0 to the score, enough on its own.
        extra_translate_keywords: words that mark a translation/localisation request.
        extra_reasoning_keywords / extra_general_keywords: words that push an English,
            non-code prompt to ``reasoning`` / ``general`` (each match adds 3.0).
        code_threshold: minimum code score (sum of cue weights) to label ``code``.
        reasoning_threshold: minimum reasoning score to label ``reasoning``.
        english_threshold: prompts whose English share is below this are ``multilingual``.
        max_chars: only the first ``max_chars`` characters are analysed, which bounds the
            cost on huge pasted logs (the start of a prompt is the most telling part).
    """

    def __init__(
        self,
        *,
        extra_code_keywords: Iterable[str] = (),
        extra_translate_keywords: Iterable[str] = (),
        extra_reasoning_keywords: Iterable[str] = (),
        extra_general_keywords: Iterable[str] = (),
        code_threshold: float = 2.0,
        reasoning_threshold: float = 2.0,
        english_threshold: float = 0.5,
        max_chars: int = 4000,
    ) -> None:
        self.code_threshold = code_threshold
        self.reasoning_threshold = reasoning_threshold
        self.english_threshold = english_threshold
        self.max_chars = max_chars
        self._extra_code = self._compile(extra_code_keywords)
        self._extra_translate = self._compile(extra_translate_keywords)
        self._extra_reasoning = self._compile(extra_reasoning_keywords)
        self._extra_general = self._compile(extra_general_keywords)

    @staticmethod
    def _compile(words: Iterable[str]) -> re.Pattern[str] | None:
        words = [w for w in words if w]
        if not words:
            return None
        # Word-bounded only where both ends are word characters; CJK keywords are unbounded
        # because those scripts have no spaces.
        parts = []
        for w in sorted({w.lower() for w in words}, key=len, reverse=True):
            esc = re.escape(w)
            if w.isascii():
                esc = rf"(?<![{_LATIN_WORD_CHAR}]){esc}(?![{_LATIN_WORD_CHAR}])"
            parts.append(esc)
        return re.compile("|".join(parts))  # lowercase; matched against text.lower()

    def __call__(self, text: str) -> Classification:
        return self.classify(text)

    def _is_decision_about_tech(self, low: str, toks: list[str], code: _CodeEvidence) -> bool:
        # "Should we rewrite the backend in Rust or keep Python?" names technologies but asks
        # for a decision, not code. Only soft, near-threshold evidence can be overruled.
        if code.hard or code.score >= self.code_threshold + 1.0:
            return False
        r, g, r_why, _ = _reasoning_vs_general(low, toks, None, None)
        return "decision" in r_why and r >= self.reasoning_threshold and r > g

    def classify(self, text: str) -> Classification:
        """Classify one prompt: ``(skill, confidence, reasons)``. See :meth:`guess`."""
        return self.guess(text).as_classification()

    def guess(self, text: str) -> SkillGuess:
        """Classify one prompt. Pure function of ``text`` and this instance's settings."""
        if not isinstance(text, str):
            raise TypeError(f"text must be str, not {type(text).__name__}")
        text = text[: self.max_chars].strip()
        if not text:
            return SkillGuess("general", 0.5, "und", ("empty prompt",))

        low = text.lower()
        stats = _language_stats(text, self.english_threshold)
        lang = stats.lang
        toks, grams = _grams(low)
        foreign_prose = lang not in ("en", "und")
        code = _code_evidence(text, low, toks, grams, self._extra_code, foreign_prose)
        lang_reason = (f"language: {lang}",)

        # Soft evidence only (names, no syntax, nothing asked to be written) and a choice
        # for a project: a decision that happens to name technologies.
        choice = (
            code.hard == 0
            and not code.requested
            and _choice_for_project(low, grams, code.techs, foreign_prose)
        )
        if (
            code.score >= self.code_threshold
            and not choice
            and not self._is_decision_about_tech(low, toks, code)
        ):
            conf = 0.55 + 0.1 * code.score
            return SkillGuess("code", _clip(conf), lang, code.reasons + lang_reason)

        if _translate_intent(low, self._extra_translate):
            return SkillGuess("multilingual", 0.9, lang, ("translate request", *stats.reasons))
        if foreign_prose:
            conf = 0.5 + 0.5 * (1.0 - stats.english_share)
            return SkillGuess("multilingual", _clip(conf), lang, stats.reasons + lang_reason)

        r, g, r_why, g_why = _reasoning_vs_general(
            low, toks, self._extra_reasoning, self._extra_general, grams, code.techs
        )
        # Near-miss code evidence makes the prose labels less certain (LLM fallback bait).
        doubt = 0.15 if code.score >= self.code_threshold * 0.6 else 0.0
        # A long prompt with no sign of a look-up, a greeting or short writing, and some
        # sign of inference, is a problem to work through ("If the project must finish by
        # June 30 and testing takes three weeks ..."): the bar is lower.
        long_unmarked = g == 0 and len(toks) >= _LONG_PROMPT_WORDS and r >= 1.0
        if (r >= self.reasoning_threshold or long_unmarked) and r > g:
            conf = 0.5 + 0.08 * (r - g) - doubt
            return SkillGuess("reasoning", _clip(conf), lang, tuple(r_why))
        conf = 0.55 + 0.08 * (g - r) + (0.1 if g else 0.0) - doubt
        reasons = tuple(g_why) or ("no code, translation or multi-step cues",)
        return SkillGuess("general", _clip(conf), lang, reasons)


_DEFAULT = SkillClassifier()


def classify(text: str) -> Classification:
    """Classify ``text`` with the default :class:`SkillClassifier`."""
    return _DEFAULT.classify(text)


def guess_skill(text: str) -> SkillGuess:
    """The default classifier's :class:`SkillGuess` (skill, confidence, language, reasons)."""
    return _DEFAULT.guess(text)


def classify_skill(text: str) -> Skill:
    """Just the label: ``"code"``, ``"multilingual"``, ``"reasoning"`` or ``"general"``."""
    return _DEFAULT.guess(text).skill
