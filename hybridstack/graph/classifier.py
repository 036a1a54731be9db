"""Deterministic skill classifier: label a prompt ``code``, ``multilingual``, ``reasoning`` or
``general`` so the router can send it to the right model family.

One job: turn a prompt into a :class:`Classification` offline, without any model call, in
well under a millisecond. It is a transparent rule system (scored regex cues + Unicode script
statistics + small stop-word lists), not a learned model, so every decision carries
human-readable ``reasons`` and can be audited or overridden.

Precedence mirrors what the labels mean:

1. **code** - the deliverable is code or concerns specific code (fences, syntax, stack
   traces, file names, "write a function", SQL/regex/shell), in any human language;
2. **multilingual** - not code, and either a translation/localisation request (even in
   English) or a prompt mostly written in a language other than English;
3. **reasoning** - English, needs several inference steps (maths word problems, logic,
   planning, trade-offs, applying a policy to a case);
4. **general** - everything else in English (facts, greetings, short writing, summaries).

For ambiguous prompts, :class:`LLMSkillClassifier` can consult a caller-supplied async
``ask`` callable, but only when the deterministic confidence falls below a threshold.

Standard library only. Importing it compiles ~60 regexes, a one-off cost of a few tens of
milliseconds (~25 ms best case measured), which is why it is imported lazily and never by
``import hybridstack``. Per prompt the cost is ~0.1 ms of CPU (see
benchmarks/bench_classifier.py); input beyond ``max_chars`` is not analysed.
"""

from __future__ import annotations

import logging
import re
from bisect import bisect_right
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal, NamedTuple, TypeAlias

# Relative on purpose: this module and its data move together (no other hybridstack import).
from . import _classifier_data as _d

__all__ = [
    "SKILLS",
    "CascadeStats",
    "Classification",
    "LLMSkillClassifier",
    "Skill",
    "SkillClassifier",
    "SkillGuess",
    "classify",
    "classify_skill",
    "detect_language",
    "guess_skill",
    "is_mostly_english",
]

Skill: TypeAlias = str
"""One of :data:`SKILLS`."""

SKILLS: tuple[Skill, ...] = ("code", "multilingual", "reasoning", "general")


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


# --------------------------------------------------------------------------------------
# Regex helpers
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# Script statistics and language detection
# --------------------------------------------------------------------------------------

_RANGE_STARTS = [r[0] for r in _d.SCRIPT_RANGES]
_LATIN_RUN = re.compile(r"[A-Za-z\u00c0-\u024f\u1e00-\u1eff]+")
# Any letter outside Basic Latin/Latin-1/Latin Extended/Latin Extended Additional.
_NON_LATIN_LETTER = re.compile(r"[^\W\d_A-Za-z\u00c0-\u024f\u1e00-\u1eff]")
_TOKEN = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
# Vietnamese-only letters: ă â đ ê ô ơ ư plus the tone-marked block U+1EA0..U+1EF9, less
# ẹ and ọ (U+1EB8/9, U+1ECC/D), which Yoruba writes too.
_VI_LETTER = re.compile(r"[ăâđêôơưĂÂĐÊÔƠƯ\u1ea0-\u1eb7\u1eba-\u1ecb\u1ece-\u1ef9]")
# Yoruba: ẹ ọ ṣ (and a combining dot below); Hausa: the hooked letters ɓ ɗ ƙ ƴ.
_YO_MARK = re.compile(r"[ẹọṣẸỌṢ\u0323]")
_HA_MARK = re.compile(r"[ɓɗƙƴƁƊƘƳ]")
_PL_MARK = re.compile(r"[ąęłńśźżĄĘŁŃŚŹŻ]")
_ES_MARK = re.compile(r"[ñ¿¡]")
_PT_MARK = re.compile(r"[ãõ]")
_DE_MARK = re.compile(r"[ßäöü]")
_TR_MARK = re.compile(r"[ğşıİ]")
_FR_MARK = re.compile(r"[èêàùîôâëïœç]")
# Code is language-neutral: strip it before judging the human language of a prompt.
_FENCED = re.compile(r"```.*?(?:```|$)", re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]+`")

_STOP_LANGS: dict[str, tuple[str, ...]] = {}
for _lang, _words in _d.STOPWORDS.items():
    # Malay and Indonesian share most function words; score them as one family ("id") and
    # split afterwards with marker words, otherwise every shared word is worth half.
    _lang = "id" if _lang == "ms" else _lang
    for _w in _words:
        _STOP_LANGS.setdefault(_w, ())
        if _lang not in _STOP_LANGS[_w]:
            _STOP_LANGS[_w] = (*_STOP_LANGS[_w], _lang)
# A word shared by k languages gives each 1/k: "de" is weak evidence, "yang" strong.
_STOP_WEIGHT: dict[str, tuple[tuple[str, float], ...]] = {
    w: tuple((lang, 1.0 / len(langs)) for lang in langs) for w, langs in _STOP_LANGS.items()
}
del _lang, _words, _w


class _LangStats(NamedTuple):
    lang: str  # ISO-ish code or "und"
    english_share: float  # 0..1 of the linguistic evidence that is English
    reasons: tuple[str, ...]


def _strip_code(text: str) -> str:
    if "`" not in text:
        return text
    return _INLINE_CODE.sub(" ", _FENCED.sub(" ", text))


# Tool output and quoted strings are usually English whatever the asker writes in
# ("Tatizo ni nini? ... inasema "no such table""), so they do not count as prose.
_ERROR_TEXT = re.compile(r"\b(?:[A-Z]\w*(?:Error|Exception)|[Ff]atal error|[Ee]rror)\b:[^\n]*")
_DOUBLE_QUOTED = re.compile(r"\"[^\"\n]{1,300}\"|“[^”\n]{1,300}”|«[^»\n]{1,300}»")


def _prose_of(text: str) -> str:
    prose = _strip_code(text)
    if ":" in prose or '"' in prose or "“" in prose or "«" in prose:
        stripped = _DOUBLE_QUOTED.sub(" ", _ERROR_TEXT.sub(" ", prose))
        # A prompt that is all quote ("\"Hola\"") keeps it: it is the only evidence.
        if any(c.isalpha() for c in stripped):
            return stripped
    return prose


def _script_counts(text: str) -> dict[tuple[str, str], float]:
    counts: dict[tuple[str, str], float] = {}
    for ch in _NON_LATIN_LETTER.findall(text):
        cp = ord(ch)
        i = bisect_right(_RANGE_STARTS, cp) - 1
        if i >= 0:
            _, hi, name, lang, weight = _d.SCRIPT_RANGES[i]
            if cp <= hi:
                key = (name, lang)
                counts[key] = counts.get(key, 0.0) + weight
    return counts


def _latin_scores(text: str) -> dict[str, float]:
    scores: dict[str, float] = {}
    for tok in _TOKEN.findall(text.lower()):
        for lang, w in _STOP_WEIGHT.get(tok, ()):
            scores[lang] = scores.get(lang, 0.0) + w
    # Diacritics that are nearly unique to one language are strong, cheap evidence.
    if not text.isascii():
        vi = len(_VI_LETTER.findall(text))
        if vi >= 2:
            scores["vi"] = scores.get("vi", 0.0) + 1.5 * vi
        for pat, lang, w in (
            (_ES_MARK, "es", 2.0),
            (_PT_MARK, "pt", 1.5),
            (_DE_MARK, "de", 1.0),
            (_TR_MARK, "tr", 1.5),
            (_FR_MARK, "fr", 0.5),
            (_YO_MARK, "yo", 1.5),
            (_HA_MARK, "ha", 2.0),
            (_PL_MARK, "pl", 1.0),
        ):
            k = len(pat.findall(text))
            if k:
                scores[lang] = scores.get(lang, 0.0) + min(3.0, w * k)
    return scores


def _refine_script_lang(lang: str, text: str) -> str:
    if lang == "ar":
        if any(c in text for c in _d.URDU_LETTERS):
            return "ur"
        if any(c in text for c in _d.PERSIAN_LETTERS):
            return "fa"
    elif lang == "ru" and any(c in text for c in _d.UKRAINIAN_LETTERS):
        return "uk"
    return lang


def _malay_or_indonesian(text: str) -> str:
    toks = set(_TOKEN.findall(text.lower()))
    return "ms" if len(toks & _d.MALAY_MARKERS) > len(toks & _d.INDONESIAN_MARKERS) else "id"


def _language_stats(text: str, english_threshold: float = 0.5) -> _LangStats:
    prose = _prose_of(text)
    latin = sum(map(len, _LATIN_RUN.findall(prose)))
    scripts = {} if prose.isascii() else _script_counts(prose)
    non_latin = sum(scripts.values())
    total = latin + non_latin
    if total == 0:
        return _LangStats("und", 1.0, ())

    latin_scores = _latin_scores(prose) if latin else {}
    en_hits = latin_scores.get("en", 0.0)

    if scripts:
        (name, lang), weight = max(scripts.items(), key=lambda kv: kv[1])
        share = weight / total
        # Chinese with kana is Japanese; kanji-heavy Japanese still has some kana.
        if lang == "zh" and scripts.get(("Kana", "ja"), 0.0) >= 0.05 * non_latin:
            name, lang = "Kana", "ja"
            share = (weight + scripts[("Kana", "ja")]) / total
        # Borrowed Latin words ("marketing budget", "Python") without English function
        # words do not make a Chinese sentence English.
        if share >= english_threshold or (share >= 0.2 and en_hits < 2):
            lang = _refine_script_lang(lang, prose)
            reason = f"script: {name} {round(100 * share)}%"
            return _LangStats(lang, 1.0 - share, (reason,))

    # Latin script (or a minority of another script): decide by stop words.
    if not latin_scores:
        # No function words of any language ("Kubernetes YAML?"): nothing suggests a
        # foreign language, so plain ASCII counts as English.
        return _LangStats("en" if prose.isascii() else "und", 1.0, ())
    best_lang, best = max(
        ((lg, s) for lg, s in latin_scores.items() if lg != "en"),
        key=lambda kv: kv[1],
        default=("en", 0.0),
    )
    evidence = en_hits + best
    en_share = en_hits / evidence if evidence else 1.0
    # Short prompts carry few function words: with no English one at all, a single word of
    # another language decides ("Menene babban birnin Najeriya?").
    if (
        best_lang != "en"
        and (best >= 1.5 or (en_hits == 0 and best >= 1.0))
        and (en_share < english_threshold)
    ):
        if best_lang in ("id", "ms"):
            best_lang = _malay_or_indonesian(prose)
        reason = f"stop words: {best_lang} {round(100 * (1 - en_share))}%"
        return _LangStats(best_lang, en_share, (reason,))
    return _LangStats("en", en_share, ())


def detect_language(text: str) -> str:
    """Best-effort ISO-639-1-ish code of the prompt's main human language.

    Returns e.g. ``"en"``, ``"zh"``, ``"ja"``, ``"ko"``, ``"th"``, ``"ar"``, ``"hi"``,
    ``"ru"``, ``"vi"``, ``"id"``, ``"ms"``, ``"es"``, ``"pt"``, ``"fr"``, ``"de"``, ``"it"``,
    ``"tr"``, ``"tl"``, ``"nl"``, or ``"und"`` when there is no usable text. Code blocks and
    inline code are ignored. Malay vs Indonesian is decided by a handful of marker words and
    defaults to ``"id"``.
    """
    return _language_stats(text).lang


def is_mostly_english(text: str) -> bool:
    """True when the prose of ``text`` (code stripped) is mainly English.

    Text with no linguistic evidence at all (empty, numbers, emoji) counts as English: there
    is nothing in it that would need a multilingual model.
    """
    return _language_stats(text).lang in ("en", "und")


# --------------------------------------------------------------------------------------
# Code cues
# --------------------------------------------------------------------------------------

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


_FILE_EXT_NEEDLES = tuple("." + ext for ext in _d.FILE_EXTENSIONS)
# "Hard" cues are things that only appear in code or tool output.
_HARD_CODE_CUES: tuple[_Cue, ...] = (
    _Cue(re.compile(r"```"), 3.0, "code fence", ("```",)),
    _Cue(
        re.compile(r"Traceback \(most recent call last\)"), 4.0, "Python traceback", ("Traceback",)
    ),
    _Cue(re.compile(r'^\s*File "[^"]+", line \d+', _M), 3.0, "stack frame", ('File "',)),
    _Cue(re.compile(r"Exception in thread"), 3.0, "Java exception", ("Exception in thread",)),
    _Cue(re.compile(r"^\s*at [\w$.<>]+ ?\([^)]*[:)]", _M), 3.0, "stack frame", ("(",)),
    _Cue(re.compile(r"goroutine \d+ \[|^panic: ", _M), 3.0, "Go panic", ("goroutine ", "panic: ")),
    _Cue(re.compile(r"error\[E\d{4}\]"), 3.0, "Rust compiler error", ("error[E",)),
    _Cue(
        re.compile(r"Segmentation fault|core dumped|fatal error:"),
        2.5,
        "crash output",
        ("Segmentation fault", "core dumped", "fatal error:"),
    ),
    _Cue(
        re.compile(r"(?<![A-Za-z])[A-Z][a-z]+(?:[A-Z][a-z]*)*(?:Error|Exception)\b"),
        2.5,
        "error type name",
        ("Error", "Exception"),
    ),
    _Cue(
        re.compile(r"\bdef \w+\s*\(|\bfn \w+\s*\(|\bfunc \(?\w*"),
        3.0,
        "function definition",
        ("def ", "fn ", "func "),
    ),
    _Cue(
        re.compile(r"\bfunction\s*\w*\s*\([^)]*\)\s*\{"),
        3.0,
        "function definition",
        ("function",),
    ),
    _Cue(re.compile(r"^\s*class \w+\s*[:({]", _M), 2.5, "class definition", ("class ",)),
    _Cue(
        re.compile(r"^\s*(?:import [\w.]+|from [\w.]+ import |#include\s*<)", _M),
        2.5,
        "import",
        ("import ", "#include"),
    ),
    _Cue(
        re.compile(r"\b(?:const|let|var) \w+\s*=|=>|\bpublic static\b"),
        2.0,
        "JS/Java syntax",
        ("=", "public static"),
    ),
    _Cue(
        re.compile(
            r"\[[^\]\n]{1,80}\bfor \w+ in \w+|\bfor \w+ in range\(|\bfor \(|\bwhile \(|"
            r"\bif \([^\n]{0,200}\)\s*\{"
        ),
        2.0,
        "loop syntax",
        ("for ", "while (", "if ("),
    ),
    _Cue(
        re.compile(
            r"\bSELECT\b[^;]{1,200}?\bFROM\b|\bINSERT INTO\b|\bUPDATE \w+ SET\b|"
            r"\bCREATE (?:TABLE|INDEX|VIEW)\b|\bDELETE FROM\b|\bALTER TABLE\b"
        ),
        3.0,
        "SQL statement",
        ("SELECT", "INSERT INTO", "UPDATE ", "CREATE ", "DELETE FROM", "ALTER TABLE"),
    ),
    _Cue(
        re.compile(r"\b(?:print|console\.log|System\.out\.println|printf)\("),
        2.0,
        "print call",
        ("print", "console.log", "System.out"),
    ),
    _Cue(
        re.compile(r"^(?:FROM|RUN|CMD|COPY|WORKDIR|ENTRYPOINT|EXPOSE|ENV) \S", _M),
        1.5,
        "Dockerfile line",
        ("FROM ", "RUN ", "CMD ", "COPY ", "WORKDIR ", "ENTRYPOINT ", "EXPOSE ", "ENV "),
    ),
    _Cue(
        re.compile(rf"(?<![\w/.-])[\w][\w/.-]*\.(?:{_alternation(_d.FILE_EXTENSIONS)})\b"),
        2.0,
        "file name",
        _FILE_EXT_NEEDLES,
    ),
    _Cue(
        re.compile(
            r"\b(?:Dockerfile|Makefile|package\.json|requirements\.txt|docker-compose|"
            r"Cargo\.toml|pom\.xml|\.gitignore|\.env)\b"
        ),
        2.0,
        "build file",
        (
            "Dockerfile",
            "Makefile",
            "package.json",
            "requirements.txt",
            "docker-compose",
            "Cargo.toml",
            "pom.xml",
            ".gitignore",
            ".env",
        ),
    ),
    _Cue(
        re.compile(
            r"(?:^|[`$]\s*|\s)(?:git|npm|pip|docker|kubectl|sudo|apt(?:-get)?|brew|cargo|"
            r"yarn|pnpm|chmod|chown|grep|find|ssh|scp|rsync|tar) (?:-{1,2}\w|[a-z][\w-]* -{1,2}\w)",
            _M,
        ),
        2.0,
        "shell command",
        (" -",),
    ),
    _Cue(
        re.compile(r"\bawk -F|\bsed -[ie]|\|\s*(?:grep|xargs|awk|sed|sort|wc)\b"),
        2.0,
        "shell pipeline",
        ("awk -F", "sed -", "|"),
    ),
)

# Hard cues matched against the lowercased text.
_HARD_CODE_CUES_LC: tuple[_Cue, ...] = (
    _Cue(
        re.compile(
            r"undefined is not a function|cannot read propert(?:y|ies) of|is not defined\b|"
            r"unexpected token|syntax error|no module named|command not found|"
            r"permission denied|cannot borrow|must appear in the group by|"
            r"address already in use|port \d+ (?:is|was) already in use",
            _LC,
        ),
        2.0,
        "error message",
        (
            "undefined is not",
            "cannot read propert",
            "is not defined",
            "unexpected token",
            "syntax error",
            "no module named",
            "command not found",
            "permission denied",
            "cannot borrow",
            "must appear in the group by",
            "already in use",
        ),
    ),
)

_SOFT_CODE_CUES: tuple[_Cue, ...] = (
    _Cue(re.compile(r"`[^`\n]{1,80}`"), 1.0, "inline code", ("`",)),
    _Cue(re.compile(r"(?<![\w.])[a-z_]\w*\.\w+\([^)]*\)"), 1.0, "method call", ("(",)),
    _Cue(re.compile(r"(?<![\w.])[a-z_][a-z0-9_]*\([\w ,:.*'\"]*\)"), 0.75, "call syntax", ("(",)),
    _Cue(re.compile(r"\b[a-z]+_[a-z0-9_]+\b"), 0.5, "snake_case identifier", ("_",)),
    _Cue(re.compile(r"\b[a-z]{2,}[A-Z][A-Za-z0-9]*\b"), 0.5, "camelCase identifier", ()),
    _Cue(
        re.compile(r"(?:==|!=|->|::|&&|\|\||\+\+|\+=|\[\w+\])"),
        0.75,
        "operator",
        ("==", "!=", "->", "::", "&&", "||", "++", "+=", "["),
    ),
    _Cue(
        re.compile(r"(?:^|\s)/(?:[\w.-]+/)+[\w.-]*|\s/(?:var|etc|usr|home|tmp|opt|dev|srv)\b"),
        0.75,
        "file path",
        ("/",),
    ),
    _Cue(
        re.compile(r"\s\.(?:txt|csv|log|md|jpe?g|png)\b|\b\w+\.(?:csv|txt|log)\b"),
        0.75,
        "data file",
        (".txt", ".csv", ".log", ".md", ".jpg", ".jpeg", ".png"),
    ),
    _Cue(
        re.compile(r"\bcode \d+\b|\bexit (?:code|status)\b"), 0.5, "exit code", ("code ", "exit ")
    ),
)

# The three big vocabularies are looked up by token and token bigram in sets: much cheaper
# than 150-way regex alternations. Tokens keep ".#+/-" so "node.js", "c++", "ci/cd" and
# "react-i18next" survive, and stop at CJK characters ("写一个python函数" -> "python").
_GRAM_TOKEN = re.compile(rf"[{_LATIN_WORD_CHAR}.#+/-]+")
_TECH_SET = frozenset(w.lower() for w in _d.TECH_TERMS)
_ARTEFACT_SET = frozenset(w.lower() for w in _d.CODE_ARTEFACTS)
_INTENT_SET = frozenset(w.lower() for w in _d.CODE_INTENT_VERBS)
# "... in bash?", "using pandas": the prompt asks for a solution in that technology.
_FRAME_WORDS = frozenset({"in", "using", "with", "via"})


def _grams(low: str) -> tuple[list[str], set[str]]:
    toks = [t for t in (t.strip(".-/") for t in _GRAM_TOKEN.findall(low)) if t]
    grams = set(toks)
    grams.update(f"{a} {b}" for a, b in pairwise(toks))
    # "Docker-Container", "SQL-Abfrage": the parts count as well as the compound.
    for tok in toks:
        if "-" in tok:
            grams.update(p for p in tok.split("-") if p)
    return toks, grams


def _inflected_tech(toks: list[str]) -> set[str]:
    # Inflecting languages decline borrowed names: "w Pythonie", "w bashu", "на Pythonе".
    found: set[str] = set()
    for tok in toks:
        if len(tok) >= 5 and tok not in _TECH_SET:
            for k in (1, 2, 3):
                stem = tok[:-k]
                if len(stem) >= 4 and stem in _TECH_SET:
                    found.add(stem)
                    break
    return found


# Cased names that are safe to take anywhere inside non-English prose ("En Excel, ¿qué
# fórmula...?"); single letters (C, R) are not.
_TECH_CASED_ANYWHERE = re.compile(
    rf"(?<![A-Za-z])(?:{_alternation(w for w in _d.TECH_TERMS_CASED if len(w) > 1)})(?![A-Za-z+#])"
)


def _tech_frame(toks: list[str]) -> bool:
    for i, tok in enumerate(toks[:-1]):
        if tok in _FRAME_WORDS:
            nxt = toks[i + 1]
            if nxt in ("a", "an") and i + 2 < len(toks):
                nxt = toks[i + 2]
            if nxt in _TECH_SET:
                return True
    return False


# Asks whose deliverable is inherently code, whatever else the prompt says.
_CODE_ASK_RE = _Gated(
    re.compile(
        rf"(?<![{_LATIN_WORD_CHAR}])(?:{_alternation(w.lower() for w in _d.CODE_ASKS)})"
        rf"(?![{_LATIN_WORD_CHAR}])|{_alternation(w.lower() for w in _d.CODE_ASKS_NOSPACE)}",
        _LC,
    ),
    (*_d.CODE_ASKS, *_d.CODE_ASKS_NOSPACE),
)
# Cased names only count in a technical frame ("in Go", "Rust code"), because "Go"/"Rust"
# /"Swift" are ordinary words too.
_TECH_CASED_RE = re.compile(
    rf"\b(?:in|using|with|to|from|keep|learn) (?:{_alternation(_d.TECH_TERMS_CASED)})\b(?![+#])"
    rf"|\b(?:{_alternation(_d.TECH_TERMS_CASED)}) (?:code|program|function|service|script|"
    r"error|compiler|module|crate|package|app)\b"
)
# "code" as in "dress code", "discount code", "postcode" is not an artefact.
_NOT_CODE_NOUN = re.compile(  # only consulted when "code" was found
    r"\b(?:dress|discount|promo|coupon|zip|post|postal|area|country|tax|qr|bar|morse|"
    r"verification|access|error|exit|status) code\b|\bcode of conduct\b",
    _LC,
)
# "bug" only counts as an artefact when it points at a specific defect ("this bug").
_BUG_RE = _Gated(re.compile(r"\b(?:this|that|the|a|my) bug\b(?! bount)", _LC), ["bug"])
_FOREIGN_CODE_RE = _unbounded(_d.FOREIGN_CODE_WORDS)
_FOREIGN_CODE_LATIN_RE = _Gated(_bounded(_d.FOREIGN_CODE_WORDS_LATIN), _d.FOREIGN_CODE_WORDS_LATIN)
_WEAK_FOREIGN_CODE_RE = _unbounded(_d.WEAK_FOREIGN_CODE_WORDS)
_FOREIGN_TECH_RE = _unbounded(_d.FOREIGN_TECH_WORDS)
_FOREIGN_INTENT_RE = _unbounded(_d.FOREIGN_INTENT_WORDS)
_FOREIGN_INTENT_LATIN_RE = _Gated(
    _bounded(_d.FOREIGN_INTENT_WORDS_LATIN), _d.FOREIGN_INTENT_WORDS_LATIN
)
# Code-like punctuation: lots of ; { } relative to prose length is a strong hint.
_BRACES = re.compile(r"[{};]")


# Weight of a caller-supplied keyword: the operator's explicit say, so on its own it clears
# the default thresholds (2.0) and outweighs a typical single cue.
_CUSTOM_WEIGHT = 3.0


class _CodeEvidence(NamedTuple):
    score: float
    hard: float
    reasons: tuple[str, ...]
    #: An intent verb with a code artefact ("write a function", "fix this script").
    requested: bool = False
    #: How many technologies the prompt names.
    techs: int = 0


_FOREIGN_CONTEXT_SET = _d.FOREIGN_CONTEXT_TECH_WORDS
_TECH_ARTEFACT_SET = _d.TECH_ARTEFACT_NOUNS
_TECH_CASED_SET = frozenset(_d.TECH_TERMS_CASED)
# "How do I ... in pandas?", "what's the idiomatic way to ... in Go": a how-to about a tool.
_HOW_TO = re.compile(
    r"\bhow (?:do|can|could|would|should) (?:i|we|you)\b|\bhow to\b|"
    r"\bwhat(?:'s| is) the (?:best|idiomatic|right|correct|fastest|cleanest|easiest) way\b|"
    r"\bwhy (?:does|do|is|isn't|doesn't|won't|can't) (?:my|the|this|it)\b",
    _LC,
)
# "Python: flatten a nested list?", "SQL: average salary for each department".
_TOOL_PREFIX = re.compile(r"^\W*([A-Za-z][\w.+#/-]*(?: [A-Za-z][\w.+#/-]*)?)\s*:")


def _tool_prefix(text: str) -> bool:
    m = _TOOL_PREFIX.match(text)
    if m is None:
        return False
    name = m.group(1)
    return name in _TECH_CASED_SET or name.lower() in _TECH_SET


def _tool_artefact(toks: list[str]) -> bool:
    # A technology immediately followed by what is made with it: "jq filter", "Excel formula".
    for a, b in pairwise(toks):
        if b in _TECH_ARTEFACT_SET and (a in _TECH_SET or a in _TECH_LOWER_CASED):
            return True
    return False


_TECH_LOWER_CASED = frozenset(w.lower() for w in ("spark", "excel", "matlab", "crontab"))


def _code_evidence(
    text: str,
    low: str,
    toks: list[str],
    grams: set[str],
    extra: re.Pattern[str] | None,
    foreign_prose: bool = False,
) -> _CodeEvidence:
    reasons: list[str] = []
    hard = 0.0
    for cues, subject in ((_HARD_CODE_CUES, text), (_HARD_CODE_CUES_LC, low)):
        for cue in cues:
            if _hit(cue, subject):
                hard += cue.weight
                if cue.reason not in reasons:
                    reasons.append(cue.reason)
    soft = 0.0
    for cue in _SOFT_CODE_CUES:
        n = _count(cue, text)
        if n:
            soft += min(cue.weight * n, 2 * cue.weight)
            reasons.append(cue.reason)

    braces = len(_BRACES.findall(text))
    if braces >= 4 and braces / max(len(text), 1) > 0.015:
        hard += 1.5
        reasons.append("brace/semicolon density")

    tech = (grams & _TECH_SET) | set(_TECH_CASED_RE.findall(text))
    ascii_only = low.isascii()  # the non-Latin vocabularies cannot match pure ASCII
    if not ascii_only:
        tech |= set(_FOREIGN_TECH_RE.findall(low))
    if foreign_prose:
        tech |= _inflected_tech(toks) | set(_TECH_CASED_ANYWHERE.findall(text))
        # "jest" is Polish for "is", not the test runner.
        tech = {t for t in tech if t not in _STOP_WEIGHT or "en" in dict(_STOP_WEIGHT[t])}
    # A programming tool named inside Chinese or Swahili prose is rarely incidental
    # ("用 Java 写…", "nikirun migrate"): its asker wants help with it. English uses
    # technology names casually ("What is Rust used for?"), so there it takes more.
    per_tech = 2.0 if foreign_prose else 0.75
    tech_score = min(2.0, per_tech * len(tech))
    if tech:
        reasons.append("tech: " + ", ".join(sorted(tech)[:3]))
        if _tech_frame(toks):
            tech_score += 0.75
        if not foreign_prose and _HOW_TO.search(low):
            tech_score += 1.0
            reasons.append("how-to about a tool")
    if _tool_prefix(text):
        tech_score += 1.5
        reasons.append("tool prefix")
    elif _tool_artefact(toks):
        tech_score += 1.25
        reasons.append("tool artefact")
    if foreign_prose:
        kept = grams & _FOREIGN_CONTEXT_SET
        if kept:
            tech_score += min(2.0, 1.0 * len(kept))
            reasons.append("English tech words: " + ", ".join(sorted(kept)[:3]))
    if _CODE_ASK_RE.search(low):
        hard += 1.5
        reasons.append("regex/SQL/shell ask")

    artefacts = grams & _ARTEFACT_SET
    if "code" in artefacts and _NOT_CODE_NOUN.search(low):
        artefacts.discard("code")
    if _BUG_RE.search(low):
        artefacts.add("bug")
    foreign = set(_FOREIGN_CODE_LATIN_RE.findall(low))
    if not ascii_only:
        foreign |= set(_FOREIGN_CODE_RE.findall(low))
    if extra is not None and extra.search(low):
        hard += _CUSTOM_WEIGHT
        reasons.append("custom code keyword")
    # A word for "function" or "regular expression" in another language is as telling as a
    # tool's name there.
    per_foreign = 2.0 if foreign_prose else 1.5
    art_score = min(2.0, 1.0 * len(artefacts)) + min(3.0, per_foreign * len(foreign))
    if not ascii_only and _WEAK_FOREIGN_CODE_RE.search(low):
        art_score += 0.75
    if artefacts:
        reasons.append("code words: " + ", ".join(sorted(artefacts)[:3]))
    if foreign:
        reasons.append("code words: " + ", ".join(sorted(foreign)[:3]))

    intent = 0.0
    requested = False
    if (
        not grams.isdisjoint(_INTENT_SET)
        or (not ascii_only and _FOREIGN_INTENT_RE.search(low))
        or _FOREIGN_INTENT_LATIN_RE.search(low)
    ):
        if artefacts or foreign:
            intent = 1.5
            requested = True
            reasons.append("code request")
        elif tech:
            intent = 0.5
    score = hard + soft + tech_score + art_score + intent
    return _CodeEvidence(score, hard, tuple(reasons), requested, len(tech))


def _latin_set(words: Iterable[str]) -> frozenset[str]:
    return frozenset(w.lower() for w in words)


_CHOICE_LATIN = _latin_set(_d.CHOICE_WORDS_LATIN)
_CHOICE_NOSPACE = _unbounded(_d.CHOICE_WORDS_NOSPACE)
_PROJECT_LATIN = _latin_set(_d.PROJECT_WORDS_LATIN)
_PROJECT_NOSPACE = _unbounded(_d.PROJECT_WORDS_NOSPACE)
_DECISION_LATIN = _latin_set(_d.DECISION_WORDS_LATIN)
_DECISION_NOSPACE = _unbounded(_d.DECISION_WORDS_NOSPACE)


def _choice_for_project(low: str, grams: set[str], techs: int, foreign_prose: bool) -> bool:
    """A team choosing between options: "Flutter oder React Native für unsere App?".

    Needs an "or" word and a project word (we, team, startup, app ...), plus either a
    decision word (should, better, worth ...) or two named technologies. Such a prompt asks
    for a decision, not for code, even though it names technologies. Outside English an
    "or" with a decision word is enough ("iPhoneとAndroidのどちらがいいですか"): the label is
    ``multilingual`` either way, so only a code question must not be caught.
    """
    if not _has_words(low, grams, _CHOICE_LATIN, _CHOICE_NOSPACE):
        return False
    decision = _has_words(low, grams, _DECISION_LATIN, _DECISION_NOSPACE)
    if foreign_prose and decision:
        return True
    return _is_about_a_project(low, grams) and (decision or techs >= 2)


def _has_words(low: str, grams: set[str], latin: frozenset[str], nospace: re.Pattern[str]) -> bool:
    """Any of ``latin`` as a token or bigram, or of ``nospace`` as a substring."""
    if not grams.isdisjoint(latin):
        return True
    return not low.isascii() and nospace.search(low) is not None


def _is_about_a_project(low: str, grams: set[str]) -> bool:
    return _has_words(low, grams, _PROJECT_LATIN, _PROJECT_NOSPACE)


# --------------------------------------------------------------------------------------
# Translation / localisation intent
# --------------------------------------------------------------------------------------

_LANGS = _alternation(_d.LANGUAGE_NAMES)
_NON_EN_LANGS = _alternation(n for n in _d.LANGUAGE_NAMES if n != "english")
_TRANSLATE_EN = re.compile(
    r"\btranslat(?:e|es|ed|ing)\b"
    r"|\btranslations? (?:of|into|to|for)\b"
    rf"|\b(?:{_LANGS}) (?:translation|version|equivalent|word|term|phrase|wording|subtitles?)\b"
    r"|\b(?:locali[sz]e|locali[sz]es|locali[sz]ed|locali[sz]ing)\b|\blocali[sz]ation of\b"
    rf"|\bhow (?:do|would|can|should) (?:you|i|we) say\b.{{0,120}}\bin (?:{_LANGS})\b"
    rf"|\bwhat(?:'s| does| do| is) ['\"“‘].{{1,80}}['\"”’] in (?:{_LANGS})\b"
    rf"|\bthe (?:{_NON_EN_LANGS}) for\b"
    rf"|\bmean(?:s|ing)? in (?:{_LANGS})\b"
    rf"|\b(?:render\w*|put|say|write|rewrite|convert|turn|reply|respond|answer|draft|compose|"
    rf"explain|describe|summari[sz]e|tell|give)\b[^.?!]{{0,80}}"
    rf"\b(?:in|into) (?:[\w-]+ ){{0,2}}(?:{_NON_EN_LANGS})\b"
    # "..., into Brazilian Portuguese:" - "into" a language is a translation on its own.
    rf"|\binto (?:[\w-]+ ){{0,2}}(?:{_NON_EN_LANGS})\b"
    # Quoted words asked about in a language: "'tu' and 'vous' in French".
    rf"|['\"“‘][^'\"”’\n]{{1,40}}['\"”’][^.?!\n]{{0,80}}\bin (?:{_NON_EN_LANGS})\b",
    _LC,
)
# Every alternative above contains "translat", "locali" or a language name.
_TRANSLATE_EN_NEEDLES = ("translat", "locali", *_d.LANGUAGE_NAMES)
_TRANSLATE_NOSPACE = _unbounded(_d.TRANSLATE_WORDS_NOSPACE)
_TRANSLATE_LATIN = _Gated(
    re.compile(rf"\b(?:{_alternation(w.lower() for w in _d.TRANSLATE_STEMS_LATIN)})\w*", _LC),
    _d.TRANSLATE_STEMS_LATIN,
)
# Vietnamese "dịch" = translate, but "dịch vụ" = service and "dịch bệnh" = epidemic.
_TRANSLATE_VI = re.compile(r"\bdịch\b(?! vụ| bệnh| tễ| chuyển)", _LC)


# "What does 'terima kasih' mean?" is a translation request; "What does 'GDP' mean?" is not.
_QUOTED_MEANING = re.compile(
    r"\b(?:what (?:does|do|is)|meaning of) ['\"“‘]([^'\"”’]{2,80})['\"”’]", _LC
)


def _translate_intent(low: str, extra: re.Pattern[str] | None) -> bool:
    ascii_only = low.isascii()
    if (
        (any(n in low for n in _TRANSLATE_EN_NEEDLES) and _TRANSLATE_EN.search(low))
        or (not ascii_only and _TRANSLATE_NOSPACE.search(low))
        or _TRANSLATE_LATIN.search(low)
        or (not ascii_only and _TRANSLATE_VI.search(low))
        or (extra is not None and extra.search(low))
    ):
        return True
    m = _QUOTED_MEANING.search(low) if ("what" in low or "meaning" in low) else None
    return m is not None and _language_stats(m.group(1), 0.5).lang not in ("en", "und")


# --------------------------------------------------------------------------------------
# Reasoning vs general (English prose)
# --------------------------------------------------------------------------------------

_DIGIT = re.compile(r"\d")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,:]\d+)*")
_NUMBER_WORDS = _d.NUMBER_WORDS
# Statements followed by a question: the shape of a word problem or puzzle.
_WORD_PROBLEM = re.compile(r"[.!;]\s+[^.!?]*\?\s*$")
_QUANTITY_Q = re.compile(
    r"\bhow (?:many|much|long|far|often|old)\b|\bwhat time\b|\bwhat day\b|"
    r"\bwhich \w+ (?:are|is|will|would|does|do)\b",
    _LC,
)
_LONG_PROMPT_WORDS = 15
_PREMISE_WORDS = re.compile(r"\b(?:if|each|every|per|with|given|total)\b", _LC)
_REASONING_CUES: tuple[_Cue, ...] = (
    _Cue(
        re.compile(r"(?:^|[.!?:]\s+|,\s*)if\b|\bif\b[^.?!]{3,80},|\bunless\b", _LC),
        1.0,
        "conditional",
        ("if", "unless"),
    ),
    _Cue(
        re.compile(
            r"\b(?:prove|proof|show that|demonstrate that|by induction|irrational|"
            r"divisible by|remainder of|counterexample)\b",
            _LC,
        ),
        2.5,
        "proof",
        (
            "prove",
            "proof",
            "show that",
            "demonstrate",
            "induction",
            "irrational",
            "divisible by",
            "remainder of",
            "counterexample",
        ),
    ),
    _Cue(
        re.compile(
            r"\bnext (?:number|term|letter|shape)\b|"
            r"\b(?:number )?(?:pattern|sequence)\b[^.?!]{0,40}\?|"
            r"\b(?:reasoning|argument|logic) (?:sound|valid|correct)\b|\bdoes it follow\b|"
            r"\bwhat follows\b",
            _LC,
        ),
        2.0,
        "pattern/logic question",
        ("next ", "pattern", "sequence", "sound", "valid", "correct", "follow"),
    ),
    _Cue(
        re.compile(
            r"\bhow (?:do|can|could|would|will) (?:you|i|we) (?:find|measure|tell|know|determine|"
            r"figure out|work out|identify|guarantee|make sure)\b|\bweighings?\b|"
            r"\bwith (?:one|a single|two|three|only one) (?:question|weighing|trip|move)s?\b",
            _LC,
        ),
        1.0,
        "puzzle",
        ("how ", "weighing", "with "),
    ),
    _Cue(
        re.compile(
            r"\bdoes (?:that|this|it) (?:mean|prove|imply|show)\b|\bwhat else (?:could|might)\b|"
            r"\bcorrelation\b|\bcausation\b|\bconfound\w*\b",
            _LC,
        ),
        1.5,
        "causal analysis",
        ("does ", "what else", "correlation", "causation", "confound"),
    ),
    _Cue(
        re.compile(r"\bin total\b|\band why\b|\bexplain why\b|\bfactorial\b", _LC),
        1.0,
        "asks for a derivation",
        ("in total", "and why", "explain why", "factorial"),
    ),
    _Cue(
        re.compile(r"\b(?:given (?:that|our|a|the|we|you|i)|assuming|suppose)\b", _LC),
        0.75,
        "premise",
        ("given ", "assuming", "suppose"),
    ),
    _Cue(
        re.compile(
            r"\bstep[- ]by[- ]step\b|\bthink (?:it )?through\b|\breason (?:through|about)\b|"
            r"\bwalk me through\b|\blay out\b|\bshow (?:your|the) (?:work|reasoning)\b|"
            r"\bexplain (?:why|your reasoning)\b|\bjustify\b",
            _LC,
        ),
        1.5,
        "asks for reasoning",
        ("step", "think", "reason ", "walk me through", "lay out", "show ", "explain ", "justify"),
    ),
    _Cue(
        re.compile(
            r"\bshould (?:we|i|our|they|a|the|he|she|you|support)\b|"
            r"\bis it (?:better|worth|wise|smarter|cheaper|faster|safer)\b|"
            r"\bwhich (?:option|one|is (?:better|cheaper|faster|more)|would you|should|class)\b|"
            r"\bbetter (?:deal|option|choice|hire)\b|\bhelp me (?:decide|choose)\b|"
            r"\bhow should\b|\bwhat would you recommend\b|\b(?:decide|decision)\b|"
            r"\bwould you (?:pick|choose|recommend)\b",
            _LC,
        ),
        1.5,
        "decision",
        (
            "should",
            "is it ",
            "which ",
            "better ",
            "help me ",
            "what would you recommend",
            "decide",
            "decision",
            "would you ",
        ),
    ),
    _Cue(
        re.compile(
            r"\btrade-?offs?\b|\bpros and cons\b|\bweigh\b|\bconsider(?:ing)?\b|\bversus\b|"
            r"\bvs\.?\b|\bcompare\b|\bcomparison\b|\brisks?\b|\bcost[- ]benefit\b",
            _LC,
        ),
        1.0,
        "trade-off",
        ("trade", "pros and cons", "weigh", "consider", "versus", "vs", "compar", "risk", "cost"),
    ),
    _Cue(
        re.compile(
            r"\bplan\b|\bschedule\b|\bitinerary\b|\brollout\b|\broadmap\b|\ballocate\b|"
            r"\bsplit\b|\bminimi[sz]\w*\b|\bmaximi[sz]\w*\b|\bprioriti[sz]e\b|\brank\b|"
            r"\bdepends? on\b|\bdependenc\w+\b|\bin what order\b|\border of\b",
            _LC,
        ),
        1.0,
        "planning",
        (
            "plan",
            "schedule",
            "itinerary",
            "rollout",
            "roadmap",
            "allocate",
            "split",
            "minimi",
            "maximi",
            "prioriti",
            "rank",
            "depend",
            "in what order",
            "order of",
        ),
    ),
    _Cue(
        re.compile(
            r"\bpolicy\b|\brules?\b|\bregulations?\b|\bgdpr\b|\bsla\b|\baccording to\b|"
            r"\bunder (?:the )?[\w ]{1,20}(?:law|act|rules?|policy)\b",
            _LC,
        ),
        1.0,
        "policy",
        ("policy", "rule", "regulation", "gdpr", "sla", "according to", "under "),
    ),
    _Cue(
        re.compile(
            r"\b(?:eligible|eligibility|compliant|compliance|allowed|permitted|breach(?:ed)?|"
            r"entitled|violat\w+|must we|can we keep)\b",
            _LC,
        ),
        1.0,
        "rule applied to a case",
        (
            "eligib",
            "complian",
            "allowed",
            "permitted",
            "breach",
            "entitled",
            "violat",
            "must we",
            "can we keep",
        ),
    ),
    _Cue(
        re.compile(
            r"\bprobabilit\w*\b|\bchances?\b|\bodds\b|\bexpected value\b|\blikelihood\b|"
            r"\bat (?:least|most) (?:one|two|\d+)\b",
            _LC,
        ),
        2.0,
        "probability",
        ("probabilit", "chance", "odds", "expected value", "likelihood", "at least ", "at most "),
    ),
    _Cue(
        re.compile(
            r"\b(?:conclude|conclusion|valid|invalid|argument|premises?|implies|deduce|infer|"
            r"contradiction|truth|liars?|knights?|knaves?|puzzle|riddle)\b|"
            r"\b(?:all|some|no|every) \w+ (?:is|are)\b|"
            r"\b(?:older|younger|taller|shorter|faster|slower|heavier) than\b|"
            r"\b(?:next to|to the (?:left|right) of|either end|in a row)\b",
            _LC,
        ),
        2.0,
        "logic",
        (
            "conclu",
            "valid",
            "argument",
            "premise",
            "implies",
            "deduce",
            "infer",
            "contradiction",
            "truth",
            "liar",
            "knight",
            "knave",
            "puzzle",
            "riddle",
            "all ",
            "some ",
            "no ",
            "every ",
            " than",
            "next to",
            "to the ",
            "either end",
            "in a row",
        ),
    ),
    _Cue(
        re.compile(
            r"\b(?:solve|equation|calculate|work out|compute|average|interest|break-even|"
            r"rebalance|arrangements?|combinations?|permutations?|ways can|angle|area|"
            r"perimeter|volume|radius|ratio|proportion)\b",
            _LC,
        ),
        1.0,
        "calculation",
        (
            "solve",
            "equation",
            "calculate",
            "work out",
            "compute",
            "average",
            "interest",
            "break-even",
            "rebalance",
            "arrangement",
            "combination",
            "permutation",
            "ways can",
            "angle",
            "area",
            "perimeter",
            "volume",
            "radius",
            "ratio",
            "proportion",
        ),
    ),
    _Cue(
        re.compile(r"\bwhy\b|\bmechanisms?\b|\bstrateg(?:y|ies)\b", _LC),
        0.5,
        "why/strategy",
        ("why", "mechanism", "strateg"),
    ),
)
_COUNTED_CUES = frozenset({"trade-off", "planning"})
_UNITS = re.compile(
    r"%|\$\s?\d|\d\s?(?:km|kg|g|m|h|hours?|minutes?|days?|weeks?|months?|years?|k)\b|"
    r"\bper (?:hour|day|week|month|year|unit)\b",
    _LC,
)

_GREETING_RE = re.compile(
    rf"^\W*(?:{_alternation(_d.GREETINGS)})\b",
    _LC,
)
_GENERAL_CUES: tuple[_Cue, ...] = (
    _Cue(
        re.compile(r"^\W*(?:what|who|when|where)(?:'s| is| are| was| were| did| does)\b", _LC),
        1.0,
        "factual question",
        ("what", "who", "when", "where"),
    ),
    _Cue(
        re.compile(
            r"\b(?:capital of|population of|who (?:wrote|invented|painted|founded|discovered|is)|"
            r"stand for|what year|how tall|tallest|largest|boiling point|speed of|time zone|"
            r"official languages?|pronounce|origin of)\b",
            _LC,
        ),
        1.5,
        "lookup",
        (
            "capital of",
            "population of",
            "who ",
            "stand for",
            "what year",
            "how tall",
            "tallest",
            "largest",
            "boiling point",
            "speed of",
            "time zone",
            "official language",
            "pronounce",
            "origin of",
        ),
    ),
    _Cue(
        re.compile(
            r"\b(?:write|draft|compose|give me|suggest|recommend|create)\b[^.?!]{0,50}\b(?:email|"
            r"e-mail|message|note|letter|post|caption|bio|haiku|poem|story|joke|quote|"
            r"description|reply|reminder|tweet|slogan|names?|ideas|tagline|announcement|toast|"
            r"card|recipe|podcast|book|questions|titles?|tips|list)\b",
            _LC,
        ),
        2.0,
        "short writing",
        ("write", "draft", "compose", "give me", "suggest", "recommend", "create"),
    ),
    _Cue(
        re.compile(
            r"\b(?:summari[sz]e|summary|tl;?dr|rewrite|rephrase|paraphrase|proofread|shorten|define|"
            r"definition|tell me (?:a|about)|fun fact|recommend|list (?:the|some)|"
            r"in simple terms)\b",
            _LC,
        ),
        1.5,
        "summary/lookup",
        (
            "summar",
            "tl",
            "rewrite",
            "rephrase",
            "shorten",
            "paraphrase",
            "proofread",
            "defin",
            "tell me ",
            "fun fact",
            "recommend",
            "list ",
            "in simple terms",
        ),
    ),
)


def _reasoning_vs_general(
    low: str,
    toks: list[str],
    extra_reasoning: re.Pattern[str] | None,
    extra_general: re.Pattern[str] | None,
    grams: set[str] | None = None,
    techs: int = 0,
) -> tuple[float, float, list[str], list[str]]:
    r = 0.0
    r_why: list[str] = []
    if grams is not None and _choice_for_project(low, grams, techs, False):
        r += 2.0
        r_why.append("choice between options")
    has_digit = _DIGIT.search(low) is not None
    nums = len(_NUMBER.findall(low)) if has_digit else 0
    nums += sum(1 for tok in toks for part in tok.split("-") if part in _NUMBER_WORDS)
    if nums >= 2:
        r += 0.75 + (0.5 if nums >= 3 else 0.0)
        r_why.append(f"{nums} numbers")
    if _QUANTITY_Q.search(low):
        r += 1.0 if nums else 0.25
        r_why.append("quantity question")
        if nums and _PREMISE_WORDS.search(low):
            # "How many handshakes if 12 people each ...": a count to derive, not look up.
            r += 1.0
            r_why.append("quantity from premises")
    if nums and _WORD_PROBLEM.search(low):
        r += 1.0
        r_why.append("word problem")
    units = len(_UNITS.findall(low)) if has_digit or "%" in low or "per " in low else 0
    if units:
        r += min(1.0, 0.5 * units)
        r_why.append("quantities")
    for cue in _REASONING_CUES:
        if cue.reason in _COUNTED_CUES:
            # Two different cues of one kind ("trade-offs ... versus") say more than one.
            found = len(set(cue.pattern.findall(low))) if _hit(cue, low) else 0
            if found:
                r += cue.weight * min(2, found)
                r_why.append(cue.reason)
        elif _hit(cue, low):
            r += cue.weight
            r_why.append(cue.reason)
    if "decision" in r_why and grams is not None and _is_about_a_project(low, grams):
        r += 0.5
        r_why.append("decision for a team or project")
    if extra_reasoning is not None and extra_reasoning.search(low):
        r += _CUSTOM_WEIGHT
        r_why.append("custom reasoning keyword")

    g = 0.0
    g_why: list[str] = []
    words = len(low.split())
    if _GREETING_RE.search(low):
        g += 2.0
        g_why.append("greeting")
    if words <= 6:
        g += 1.0
        g_why.append("short")
    for cue in _GENERAL_CUES:
        if _hit(cue, low):
            g += cue.weight
            g_why.append(cue.reason)
    if extra_general is not None and extra_general.search(low):
        g += _CUSTOM_WEIGHT
        g_why.append("custom general keyword")
    return r, g, r_why, g_why


# --------------------------------------------------------------------------------------
# The classifier
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# Optional LLM fallback for low-confidence prompts
# --------------------------------------------------------------------------------------

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

_LABEL_RE = re.compile(r"\b(code|multilingual|reasoning|general)\b", re.IGNORECASE)
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
