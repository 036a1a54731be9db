"""Code evidence: how strongly a prompt is about code (syntax, file names, tech terms, asks).

One job: :func:`_code_evidence` scores a prompt's code cues, in English and other
languages; :func:`_choice_for_project` spots a choice between technologies that asks for a
decision, not code. The cue tables are data; the logic is the scoring.
"""

from __future__ import annotations

import re
from itertools import pairwise
from typing import NamedTuple

from . import _data as _d
from ._patterns import (
    _CUSTOM_WEIGHT,
    _LATIN_WORD_CHAR,
    _LC,
    _M,
    _alternation,
    _bounded,
    _count,
    _Cue,
    _Gated,
    _hit,
    _latin_set,
    _unbounded,
)
from .language import _STOP_WEIGHT

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
