"""Language detection: a prompt's main human language from Unicode scripts and stop words.

One job: :func:`detect_language` (ISO 639-1-ish code, ``"und"`` for none) and
:func:`is_mostly_english`, with code, error text and quoted strings set aside first, and
:func:`language_name` for the English name of a code. Standard library only.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from typing import NamedTuple

from . import _data as _d

__all__ = ["detect_language", "is_mostly_english", "language_name"]

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


#: English names of the language codes :func:`detect_language` returns most often.
_LANGUAGE_NAMES = {
    "en": "English",
    "zh": "Chinese",
    "ja": "Japanese",
    "ko": "Korean",
    "fr": "French",
    "de": "German",
    "es": "Spanish",
    "pt": "Portuguese",
    "it": "Italian",
    "nl": "Dutch",
    "ru": "Russian",
    "uk": "Ukrainian",
    "ar": "Arabic",
    "fa": "Persian",
    "hi": "Hindi",
    "th": "Thai",
    "vi": "Vietnamese",
    "id": "Indonesian",
    "ms": "Malay",
    "tr": "Turkish",
    "pl": "Polish",
    "sv": "Swedish",
    "he": "Hebrew",
    "el": "Greek",
}


def language_name(code: str, default: str = "the language of the task") -> str:
    """The English name of a language code (``"de"`` -> ``"German"``), else ``default``."""
    return _LANGUAGE_NAMES.get(code, default)
