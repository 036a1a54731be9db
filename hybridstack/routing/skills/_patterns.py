"""Regex building blocks shared by the skill cues: alternations, boundaries, gated cues."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple


def _alternation(words: Iterable[str]) -> str:
    # Longest first so "unit tests" wins over "unit test"; escaped so "c++" is literal.
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))


# Latin letters and digits only: "\\w" would also match CJK, and "写一个Python函数" has no
# spaces around "Python".
_LATIN_WORD_CHAR = r"a-z0-9_\u00c0-\u024f\u1e00-\u1eff"


def _bounded(words: Iterable[str]) -> re.Pattern[str]:
    # Look-arounds instead of \b so terms that start/end with punctuation ("c++", ".net")
    # still get a boundary, and so CJK neighbours count as a boundary. Like every keyword
    # pattern here it is lowercase and runs on lowercased text: re.IGNORECASE makes large
    # alternations several times slower.
    alt = _alternation(w.lower() for w in words)
    return re.compile(rf"(?<![{_LATIN_WORD_CHAR}.])(?:{alt})(?![{_LATIN_WORD_CHAR}+#])")


def _unbounded(words: Iterable[str]) -> re.Pattern[str]:
    return re.compile(_alternation(w.lower() for w in words))


_M = re.MULTILINE
# Patterns built with _LC are lowercase and run on ``text.lower()`` (see _bounded).
_LC = 0


class _Cue(NamedTuple):
    pattern: re.Pattern[str]
    weight: float
    reason: str
    # The regex runs only if one of these substrings occurs (every alternative of the
    # pattern contains one). A substring test costs tens of nanoseconds, a regex scan of a
    # prompt several microseconds, and most prompts trip few cues. Empty = always run.
    needles: tuple[str, ...] = ()


def _hit(cue: _Cue, subject: str) -> bool:
    if cue.needles and not any(n in subject for n in cue.needles):
        return False
    return cue.pattern.search(subject) is not None


def _count(cue: _Cue, subject: str) -> int:
    if cue.needles and not any(n in subject for n in cue.needles):
        return 0
    return len(cue.pattern.findall(subject))


class _Gated:
    """A keyword regex that only runs when the first word of one of its terms occurs."""

    __slots__ = ("needles", "pattern")

    def __init__(self, pattern: re.Pattern[str], terms: Iterable[str]) -> None:
        self.pattern = pattern
        self.needles = tuple(sorted({t.lower().split()[0] for t in terms}))

    def findall(self, subject: str) -> list[str]:
        if any(n in subject for n in self.needles):
            return self.pattern.findall(subject)
        return []

    def search(self, subject: str) -> re.Match[str] | None:
        if any(n in subject for n in self.needles):
            return self.pattern.search(subject)
        return None


def _latin_set(words: Iterable[str]) -> frozenset[str]:
    return frozenset(w.lower() for w in words)


# Weight of a caller-supplied keyword: the operator's explicit say, so on its own it clears
# the default thresholds (2.0) and outweighs a typical single cue.
_CUSTOM_WEIGHT = 3.0
