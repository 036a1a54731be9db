"""Prose cues: translation intent, and reasoning versus general for English prose.

One job: :func:`_translate_intent` (a translation or localisation request, in any
language) and :func:`_reasoning_vs_general` (scores of multi-step inference against
look-ups, greetings and short writing). The cue tables are data; the logic is the scoring.
"""

from __future__ import annotations

import re

from . import _data as _d
from ._code_cues import _choice_for_project, _is_about_a_project
from ._patterns import _CUSTOM_WEIGHT, _LC, _alternation, _Cue, _Gated, _hit, _unbounded
from .language import _language_stats

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
