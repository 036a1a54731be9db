"""The script-aware token estimate: characters counted per script in a few C-speed passes
over the UTF-8 bytes, weighted by tokens per character calibrated against real tokenizers
(``benchmarks/calibrate_tokens.py`` fits them). Two weight sets: ``qwen`` and ``generic``
(an upper bound for tiktoken-family vocabularies). :mod:`hybridstack.tokens` uses it
wherever no exact tokenizer is loaded."""

from __future__ import annotations

from collections import Counter

__all__ = ["CODES", "WEIGHTS", "estimate_text", "script_counts"]

# --- the script-aware estimate ------------------------------------------------------------
#
# Each UTF-8 byte is translated to one class code and continuation bytes are dropped (one
# bytes.translate pass), so the characters of each class are counted with bytes.count or
# a Counter over the few non-ASCII codes; lead bytes that span several scripts (0xE0: the
# Indic scripts and Thai; 0xE1, 0xE3, 0xEF, 0xF0) are split by counting a few two-byte
# prefixes in the UTF-8 text. No per-character Python loop.

#: class name -> one-byte code in the translated text.
CODES: dict[str, bytes] = {
    "latin": b"a",  # ASCII letters
    "latin_en": b"a",  # ASCII letters of text that reads as English (see _english)
    "digit": b"d",
    "space": b"s",  # ASCII space and tab
    "newline": b"n",
    "punct": b"p",  # ASCII punctuation and symbols
    "latin_ext": b"x",  # accented Latin, Latin Extended (Vietnamese, Turkish, Polish …)
    "greek": b"g",
    "cyrillic": b"c",
    "hebrew": b"h",
    "arabic": b"r",  # Arabic, Persian, Urdu, Syriac
    "devanagari": b"v",  # Hindi, Marathi, Nepali, Sanskrit
    "bengali": b"b",
    "tamil": b"t",
    "indic": b"i",  # other Indic scripts (Telugu, Kannada, Gujarati …), Lao, Tibetan
    "thai": b"y",
    "hangul": b"k",
    "kana": b"j",
    "han": b"z",  # CJK ideographs (Chinese, Japanese kanji)
    "cjk_punct": b"w",  # CJK punctuation and full-width forms
    "symbol": b"u",  # general punctuation, currency, arrows, maths (U+0080-00BF, U+2000-2BFF)
    # scripts vocabularies cover poorly (Ethiopic, Armenian, Georgian, Myanmar …), emoji,
    # private use: calibrated on Amharic
    "other": b"o",
}

#: Tokens per character, fitted by benchmarks/calibrate_tokens.py on the "fit" paragraphs of
#: tests/data/multilingual_tokens.json (paste its output here after re-running it).
#: "indic" has no calibration paragraph: it takes the costliest fitted Brahmic script.
WEIGHTS: dict[str, dict[str, float]] = {
    "qwen": {
        "latin": 0.3271,
        "latin_en": 0.2418,
        "digit": 1.2162,
        "space": 0.0,
        "newline": 0.4962,
        "punct": 0.4901,
        "latin_ext": 0.3086,
        "greek": 1.0291,
        "cyrillic": 0.4413,
        "hebrew": 0.4379,
        "arabic": 0.4878,
        "devanagari": 1.1205,
        "bengali": 1.2792,
        "tamil": 1.2508,
        "indic": 1.2792,
        "thai": 0.522,
        "hangul": 0.8056,
        "kana": 0.7677,
        "han": 0.5612,
        "cjk_punct": 0.9543,
        "symbol": 1.5053,
        "other": 1.5233,
    },
    "generic": {
        "latin": 0.2854,
        "latin_en": 0.2056,
        "digit": 0.7442,
        "space": 0.1523,
        "newline": 0.3971,
        "punct": 0.4572,
        "latin_ext": 1.0642,
        "greek": 1.0434,
        "cyrillic": 0.5511,
        "hebrew": 1.1089,
        "arabic": 0.8158,
        "devanagari": 1.1427,
        "bengali": 1.477,
        "tamil": 1.5108,
        "indic": 1.5108,
        "thai": 0.9367,
        "hangul": 1.2075,
        "kana": 0.97,
        "han": 1.1865,
        "cjk_punct": 1.0393,
        "symbol": 1.0181,
        "other": 2.6932,
    },
}


def _byte_table() -> bytes:
    table = bytearray(CODES["other"] * 256)
    for b in range(128):
        ch = chr(b)
        if ch.isalpha():
            code = "latin"
        elif ch.isdigit():
            code = "digit"
        elif ch in "\n\r":
            code = "newline"
        elif ch in " \t\f\v":
            code = "space"
        else:
            code = "punct"
        table[b] = CODES[code][0]
    leads = {
        0xC2: "symbol",
        **dict.fromkeys(range(0xC3, 0xCD), "latin_ext"),
        **dict.fromkeys(range(0xCD, 0xD0), "greek"),
        **dict.fromkeys(range(0xD0, 0xD5), "cyrillic"),
        0xD6: "hebrew",
        0xD7: "hebrew",
        **dict.fromkeys(range(0xD8, 0xDE), "arabic"),
        0xE2: "symbol",
        **dict.fromkeys(range(0xE4, 0xEA), "han"),  # U+4000-9FFF
        **dict.fromkeys(range(0xEA, 0xEE), "hangul"),  # U+A000-DFFF: Hangul syllables, mostly
    }
    for b, lead_name in leads.items():
        table[b] = CODES[lead_name][0]
    for lead, split_code in _SPLIT_CODES.items():
        table[lead] = split_code
    return bytes(table)


#: Lead bytes whose characters belong to several classes: lead -> its own code, and
#: (class, second bytes) pairs; what the pairs leave over goes to the last, catch-all class.
_SPLITS: dict[int, tuple[tuple[str, tuple[int, ...]], ...]] = {
    0xE0: (  # U+0800-0FFF
        ("devanagari", (0xA4, 0xA5)),
        ("bengali", (0xA6, 0xA7)),
        ("tamil", (0xAE, 0xAF)),
        ("thai", (0xB8, 0xB9)),
        ("indic", ()),
    ),
    0xE1: (("latin_ext", (0xB8, 0xB9, 0xBA, 0xBB)), ("other", ())),  # U+1E00-1EFF: Vietnamese
    0xE3: (("cjk_punct", (0x80,)), ("kana", (0x81, 0x82, 0x83)), ("han", ())),  # U+3000-3FFF
    0xEF: (("cjk_punct", (0xBC, 0xBD, 0xBE, 0xBF)), ("other", ())),  # full-width forms
    0xF0: (("other", (0x9F,)), ("han", ())),  # emoji; CJK extensions B-H
}
_SPLIT_CODES = {lead: ord(str(i)) for i, lead in enumerate(_SPLITS)}
_SPLIT_PARTS = {
    _SPLIT_CODES[lead]: tuple(
        (name, tuple(bytes((lead, second)) for second in seconds)) for name, seconds in parts
    )
    for lead, parts in _SPLITS.items()
}
_TABLE = _byte_table()
_CONTINUATION = bytes(range(0x80, 0xC0))
_ASCII_CLASSES = ("latin", "digit", "space", "newline", "punct")
_ASCII_ITEMS = tuple((name, CODES[name][0]) for name in _ASCII_CLASSES)
_ASCII_CODE_BYTES = bytes(code for _, code in _ASCII_ITEMS)
_NAME_OF = {code[0]: name for name, code in CODES.items() if name != "latin_en"}

#: The commonest English function words: a fifth of the words of English prose, rare in other
#: languages written in Latin letters.
_EN_WORDS_TEXT = """
the and of to a in is that for it with as on be by this are or from at an not have was
but you your can will which if what how please do does when there their they we our has
had been would should could about into than then them these those its
"""
_EN_WORDS = frozenset(_EN_WORDS_TEXT.split())


def _english(text: str) -> bool:
    words = text[:3000].lower().split()
    if len(words) < 8:
        return False
    hits = sum(1 for w in words if w in _EN_WORDS)
    return hits * 8 >= len(words)  # at least one word in eight


def script_counts(text: str) -> dict[str, int]:
    """Characters of ``text`` per script class (classes with none are left out)."""
    raw = text.encode("utf-8", "surrogatepass")
    classes = raw.translate(_TABLE, _CONTINUATION)  # one code a character
    counts: dict[str, int] = {}
    for name, code in _ASCII_ITEMS:
        n = classes.count(code)
        if n:
            counts[name] = n
    if not raw.isascii():
        rest = classes.translate(None, _ASCII_CODE_BYTES)
        if len(rest) > 512:  # long non-ASCII text: a C scan per class beats a Counter
            tally = {code: rest.count(code) for code in _NAME_OF if code not in _ASCII_CODE_BYTES}
        else:
            tally = Counter(rest)
        for code, n in tally.items():
            if not n:
                continue
            parts = _SPLIT_PARTS.get(code)
            if parts is None:
                name = _NAME_OF[code]
                counts[name] = counts.get(name, 0) + n
                continue
            for name, prefixes in parts:
                part = sum(raw.count(p) for p in prefixes) if prefixes else n
                if part:
                    counts[name] = counts.get(name, 0) + part
                    n -= part
    latin = counts.get("latin", 0)
    if latin * 2 >= len(text) and _english(text):
        # Whole English words are usually one token each; other languages written in the
        # same letters split into two or three: one weight cannot fit both.
        counts["latin_en"] = counts.pop("latin")
    return counts


def estimate_text(text: str, profile: str = "generic") -> int:
    """Estimated tokens of ``text``: script counts x calibrated tokens per character.

    ``profile`` is ``"qwen"`` (ratios fitted to the Qwen tokenizer) or ``"generic"``
    (fitted to cl100k_base: an upper bound for hosts whose tokenizer is unknown).
    """
    if not text:
        return 0
    weights = WEIGHTS[profile]
    other = weights.get("other", 1.0)
    tokens = 0.0
    for name, n in script_counts(text).items():
        tokens += n * weights.get(name, other)
    return max(1, round(tokens))
