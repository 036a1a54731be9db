"""Redaction: find personal data in text by grammar and checksum, replace it with placeholders.

:func:`redact` and :func:`redact_text` are pure: they return new values and
``{kind: occurrences}``; the same value gets the same placeholder within one request
(``[EMAIL_1]``, ``[EMAIL_2]`` …). Kinds and how each is found:

``email``        ``name@host.tld`` (ASCII), wherever it stands, CJK text around it too
``iban``         IBANs (spaced or not) with a valid ISO 13616 mod-97 checksum and, for
                 known countries, the right length
``national_id``  Chinese resident ID numbers (18 characters, valid birth date and ISO 7064
                 checksum) and UK National Insurance numbers (``AB 12 34 56 C``)
``ssn``          US social security numbers written ``123-45-6789`` (area/group/serial rules)
``card``         13-19 digits with a card-network prefix and a valid Luhn checksum, written
                 plain or in groups (4-4-4-4, Amex 4-6-5, Diners 4-6-4, 4-4-4-4-3), spaces or
                 dashes
``phone``        a phone grammar: international numbers (``+CC`` or ``00CC``, then grouped
                 digits whose length fits the country: ``+44 20 7946 0958``,
                 ``+44 (0)20 7946 0958``, ``+8613800138000``); national numbers with a trunk
                 ``0`` and an area code (``020 7946 0958``, ``(030) 1234567``, ``06 12 34 56 78``,
                 ``03-1234-5678``); North American ``(415) 555-2671``, ``415-555-2671``,
                 ``1-800-555-0199``; Chinese mobiles ``138 0013 8000``; Spanish ``612 34 56 78``;
                 Russian ``8 (495) 123-45-67``; Brazilian ``(11) 91234-5678``; and any 7-15
                 digits right after a word that says "phone" (``tel``, ``call me on``,
                 ``mobile``, ``电话``, ``手机号`` …)

How numbers next to other numbers are told apart: a text's digits are read as *runs*
of digit groups joined by a space, a dash or a dot (``+44 20 7946 0958 4111 1111 1111
1111`` is one run of eight groups). Every sub-run of whole groups that the card or phone
grammar accepts is a candidate; candidates that overlap are hidden together (so a value
is never half-shown when two readings compete), and the reading that covers the most
digits with the fewest values gives the counts. A bare dash or dot between two groups
joins them into one token (``ORD-415-555-2671``, ``123-456-7890-55``, ``3.4111…``), so
a national phone is never cut out of one; a card's Luhn check is strong enough to be
cut out of anything.

Left alone because the grammar can tell: order numbers and other bare digit runs
(``100234``, a 16-digit number that fails Luhn), dates, times, versions, IP addresses,
amounts, years, ISBNs. Cannot be told and so not claimed: a card glued to other digits
with no separator (``123454111111111111111`` is one 21-digit number), and national
numbers without a trunk prefix or a cue word (``9123 4567`` in Singapore looks like two
ordinary numbers); write them with ``+CC`` or after "tel" and they are found.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from hybridstack.errors import ConfigurationError
from hybridstack.types import ChatRequest, Message, TextPart, ToolCall, ToolCallPart

__all__ = ["REDACTION_KINDS", "find_personal_data", "redact", "redact_text"]

REDACTION_KINDS = ("email", "iban", "national_id", "card", "ssn", "phone")

# --- the regular kinds (one regex and a check each) -----------------------------------------

# ASCII classes on purpose: CJK characters are ``\w`` in Python, and a value glued to
# Chinese text ("邮箱jane@example.com的") must still be found.
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}(?![A-Za-z0-9@-])"
)
# Greedy over space-separated groups; the check backs off group by group until the
# checksum holds (so "DE89 3704 0044 0532 0130 00 EUR" still finds the IBAN).
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])")
_CN_ID = re.compile(r"(?<![0-9A-Za-z-])[1-9]\d{16}[\dXx](?![0-9A-Za-z-])")
_SSN = re.compile(
    r"(?<![A-Za-z0-9-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![A-Za-z0-9-])"
)
_NINO = re.compile(
    r"(?<![A-Za-z0-9])(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
    r" ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![A-Za-z0-9])"
)

#: Expected IBAN lengths for common countries (others: mod-97 and 15-34 characters).
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24,
    "DE": 22, "DK": 18, "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27,
    "HR": 21, "HU": 28, "IE": 22, "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MT": 31, "NL": 18, "NO": 15, "PL": 28, "PT": 25, "RO": 24,
    "SA": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TR": 26,
}  # fmt: skip

_CN_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CN_ID_CHECK = "10X98765432"


def _iban_ok(compact: str) -> bool:
    expected = _IBAN_LENGTHS.get(compact[:2])
    if expected is not None and len(compact) != expected:
        return False
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _cn_id_ok(text: str) -> bool:
    body, check = text[:17], text[17].upper()
    try:
        born = date(int(body[6:10]), int(body[10:12]), int(body[12:14]))
    except ValueError:
        return False
    if not 1900 <= born.year <= date.today().year:
        return False
    total = sum(int(ch) * w for ch, w in zip(body, _CN_ID_WEIGHTS, strict=True))
    return _CN_ID_CHECK[total % 11] == check


def _iban_spans(text: str) -> Iterable[tuple[int, int]]:
    at = 0
    while (match := _IBAN.search(text, at)) is not None:
        # Back off whole space-separated groups from the right until the checksum holds;
        # the search goes on right after what was taken (an IBAN may follow at once).
        candidate = match.group(0)
        at = match.start() + 1
        while True:
            compact = candidate.replace(" ", "")
            if len(compact) >= 15 and _iban_ok(compact):
                at = match.start() + len(candidate)
                yield match.start(), at
                break
            if " " not in candidate:
                break
            candidate = candidate.rsplit(" ", 1)[0]


def _regex_spans(pattern: re.Pattern[str], check: Any = None) -> Any:
    def spans(text: str) -> Iterable[tuple[int, int]]:
        for match in pattern.finditer(text):
            if check is None or check(match.group(0)):
                yield match.span()

    return spans


# --- numbers: runs of digit groups ---------------------------------------------------------

_SPACE = " \u00a0\u202f\t"
_DASH = "-\u2010\u2011\u2012\u2013"
# One separator between groups: a space, a dash or a dot (each with optional spaces round
# it), or nothing next to a parenthesised group ("(0)20", "(415)555").
_SEP = rf"(?:[{_SPACE}]?[{_DASH}.][{_SPACE}]?|[{_SPACE}]|(?<=\))[{_SPACE}]?|[{_SPACE}]?(?=\())"
_GROUP = r"(?:\([0-9]{1,5}\)|[0-9]+)"
_RUN = re.compile(rf"\+?{_GROUP}(?:{_SEP}{_GROUP})*")
_GROUPS = re.compile(r"\(?([0-9]+)\)?")


@dataclass(slots=True, frozen=True)
class _Group:
    start: int  # of the group in the text, "(" included
    end: int
    digits: str
    paren: bool
    #: the separator before it: "" (none), " ", "\t", "-" or "." (a dash or dot with
    #: spaces round it is " -" / " ."); the first group of a run has "^"
    sep: str


def _separator(gap: str) -> str:
    if not gap:
        return ""
    if any(ch in _DASH for ch in gap):
        return "-" if len(gap) == 1 else " -"
    if "." in gap:
        return "." if len(gap) == 1 else " ."
    return "\t" if "\t" in gap else " "


def _groups(run: re.Match[str]) -> list[_Group]:
    text, base = run.group(0), run.start()
    out: list[_Group] = []
    previous_end = 1 if text.startswith("+") else 0
    for match in _GROUPS.finditer(text, previous_end):
        gap = text[previous_end : match.start()]
        out.append(
            _Group(
                start=base + match.start(),
                end=base + match.end(),
                digits=match.group(1),
                paren=match.group(0).startswith("("),
                sep="^" if not out else _separator(gap),
            )
        )
        previous_end = match.end()
    return out


def _tight(sep: str) -> bool:
    """A bare dash or dot: the groups on both sides are one token (an id, a decimal)."""
    return sep in ("-", ".")


# --- cards ----------------------------------------------------------------------------------


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = ord(ch) - 48
        if i % 2 == 1:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def _card_prefix_ok(d: str) -> bool:
    """Issuer prefixes: Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro, Mir."""
    n = len(d)
    two, three, four = int(d[:2]), int(d[:3]), int(d[:4])
    if d[0] == "4":
        return n in (13, 16, 19)
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return n == 16
    if 2200 <= four <= 2204:
        return 16 <= n <= 19
    if two in (34, 37):
        return n == 15
    if d.startswith(("6011", "65")) or 644 <= three <= 649 or two == 62:
        return 16 <= n <= 19
    if 3528 <= four <= 3589:
        return 16 <= n <= 19
    if two in (36, 38, 39) or 300 <= three <= 305:
        return 14 <= n <= 19
    if two in (50, 56, 57, 58, 63, 67):
        return 12 <= n <= 19
    return False


def _card_shape_ok(groups: Sequence[_Group]) -> bool:
    """Plain, in fours (the last group 1-4 digits), or 4-6-4 / 4-6-5; one kind of separator."""
    if len(groups) == 1:
        return True
    if any(g.paren for g in groups) or len({g.sep for g in groups[1:]}) != 1:
        return False
    if groups[1].sep not in (" ", "-"):
        return False
    sizes = tuple(len(g.digits) for g in groups)
    if sizes in ((4, 6, 4), (4, 6, 5)):  # Diners, Amex
        return True
    return all(s == 4 for s in sizes[:-1]) and 1 <= sizes[-1] <= 4


def _card_ends(groups: Sequence[_Group], i: int) -> Iterable[int]:
    if i > 0 and groups[i].sep == ".":
        return  # "3.4111111111111111" is a decimal number
    digits = ""
    for j in range(i, len(groups)):
        if groups[j].paren:
            return
        digits += groups[j].digits
        if len(digits) > 19:
            return
        if j + 1 < len(groups) and groups[j + 1].sep == ".":
            continue  # ends inside a decimal
        part = groups[i : j + 1]
        shaped = len(digits) >= 13 and _card_shape_ok(part) and _card_prefix_ok(digits)
        if shaped and _luhn_ok(digits):
            yield j + 1


# --- phones ---------------------------------------------------------------------------------

_CC2 = frozenset(
    (
        "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45",
        "46", "47", "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61",
        "62", "63", "64", "65", "66", "81", "82", "84", "86", "90", "91", "92", "93", "94",
        "95", "98",
    )
)  # fmt: skip
#: Country code -> (min, max) digits of the national number after it (ITU E.164 plans).
_NSN = {
    "1": (10, 10), "7": (10, 10), "20": (8, 10), "27": (9, 9), "30": (10, 10),
    "31": (9, 9), "32": (8, 9), "33": (9, 9), "34": (9, 9), "36": (8, 9), "39": (6, 11),
    "40": (9, 9), "41": (9, 9), "43": (4, 13), "44": (9, 10), "45": (8, 8), "46": (7, 10),
    "47": (8, 8), "48": (9, 9), "49": (6, 13), "51": (8, 9), "52": (10, 10), "54": (10, 11),
    "55": (10, 11), "56": (9, 9), "57": (10, 10), "60": (8, 10), "61": (9, 9), "62": (8, 12),
    "63": (8, 10), "64": (8, 10), "65": (8, 8), "66": (8, 9), "81": (9, 10), "82": (8, 10),
    "84": (9, 10), "86": (10, 11), "90": (10, 10), "91": (10, 10), "92": (9, 10),
    "351": (9, 9), "353": (7, 9), "358": (5, 12), "380": (9, 9), "420": (9, 9),
    "852": (8, 8), "853": (8, 8), "886": (8, 9), "966": (9, 9), "971": (8, 9), "972": (8, 9),
}  # fmt: skip


#: Separators inside a phone number ("020 - 7946" or a tab is a list, not one number).
_PHONE_SEPARATORS = ("", " ", "-", ".")


def _country_code(digits: str) -> str:
    if digits[0] in "17":
        return digits[0]
    return digits[:2] if digits[:2] in _CC2 else digits[:3]


def _international_ends(groups: Sequence[_Group], i: int, plus: bool) -> Iterable[int]:
    """``+CC …`` (``plus``) or ``00CC …``: the national number's length fits the country."""
    first = groups[i].digits
    lead = first if plus else first[2:]
    if not lead or lead[0] == "0" or groups[i].paren:
        return
    cc = _country_code(lead + "".join(g.digits for g in groups[i + 1 : i + 3]))
    if len(cc) > len(lead):
        return  # the country code must be written in one piece
    low, high = _NSN.get(cc, (6, 15 - len(cc)))
    national = lead[len(cc) :]
    for j in range(i + 1, len(groups) + 1):
        if j > i + 1:
            g = groups[j - 1]
            if g.sep not in _PHONE_SEPARATORS:
                return  # "+49 30 1234567 - 8 …": a list, not one number
            if g.paren and g.digits == "0" and j - 1 == i + 1 and not national:
                continue  # "+44 (0)20 …": the trunk prefix in brackets is not dialled
            national += g.digits
        # "+44 020 …": a trunk 0 written by habit is not counted (Italy dials its 0).
        lengths = {len(national), len(national) - national.startswith("0")}
        if min(lengths) > high or len(cc) + min(lengths) > 15:
            return
        if any(low <= n <= high for n in lengths):
            yield j


def _national_boundary_ok(text: str, groups: Sequence[_Group], i: int, j: int) -> bool:
    """No letter, dot or dash glued on: "ORD-415-555-2671" and "123-456-7890-55" are ids."""
    if i > 0 and _tight(groups[i].sep):
        return False
    if j < len(groups) and _tight(groups[j].sep):
        return False
    start, end = groups[i].start, groups[j - 1].end
    before = text[start - 1] if start else " "
    after = text[end] if end < len(text) else " "
    if before.isascii() and (before.isalnum() or before in "+/_.-"):
        return False
    if after.isascii() and (after.isalnum() or after in "/_-"):
        return False
    return not (after == "." and end + 1 < len(text) and text[end + 1].isdigit())


def _same_separators(groups: Sequence[_Group]) -> bool:
    return len({g.sep for g in groups}) <= 1


def _nanp_ends(groups: Sequence[_Group], i: int) -> Iterable[int]:
    """``(415) 555-2671``, ``415-555-2671``, ``415.555.2671``, ``1-800-555-0199``."""
    k = i
    leading_one = groups[k].digits == "1" and not groups[k].paren and k + 3 < len(groups)
    if leading_one and groups[k + 1].sep in (" ", "-", "."):
        k += 1
    if k + 2 >= len(groups):
        return
    area, exchange, line = groups[k], groups[k + 1], groups[k + 2]
    if len(area.digits) != 3 or area.digits[0] in "01":
        return
    if len(exchange.digits) != 3 or exchange.digits[0] in "01" or exchange.paren:
        return
    if len(line.digits) != 4 or line.paren:
        return
    if area.paren:
        if exchange.sep not in ("", " ") or line.sep not in (" ", "-", "."):
            return
    elif exchange.sep != line.sep or exchange.sep not in (" ", "-", "."):
        return
    yield k + 3


def _trunk_ends(groups: Sequence[_Group], i: int) -> Iterable[int]:
    """National numbers with a trunk 0 and an area code: ``020 7946 0958``, ``06 12 34 56 78``."""
    first = groups[i]
    if not first.digits.startswith("0") or first.digits.startswith("00"):
        return
    if not 2 <= len(first.digits) <= 5:
        return
    digits = len(first.digits)
    for j in range(i + 1, len(groups)):
        g = groups[j]
        if g.paren or not 2 <= len(g.digits) <= 8 or g.sep not in _PHONE_SEPARATORS:
            return
        digits += len(g.digits)
        if digits > 12:
            return
        # After the area code one kind of separator ("070-123 45 67" is Swedish style).
        if not _same_separators(groups[i + 2 : j + 1]):
            return
        if first.paren and g.sep not in ("", " ") and j == i + 1:
            return
        # Two groups need ten digits ("0958 12345" is two numbers more often than a phone).
        if digits >= (10 if j == i + 1 else 9):
            yield j + 1


def _fixed_shape_ends(groups: Sequence[_Group], i: int) -> Iterable[int]:
    """National shapes without a trunk 0 that no ordinary number takes."""
    sizes = tuple(len(g.digits) for g in groups[i : i + 5])
    first = groups[i].digits
    rest = groups[i + 1 : i + 5]
    plain = not groups[i].paren
    # Chinese mobile 138 0013 8000 / 138-0013-8000.
    if plain and sizes[:3] == (3, 4, 4) and re.match(r"1[3-9]", first):
        if _same_separators(rest[:2]) and rest[0].sep in (" ", "-"):
            yield i + 3
    # Spanish 612 34 56 78.
    elif plain and sizes[:4] == (3, 2, 2, 2) and first[0] in "6789":
        if _same_separators(rest[:3]) and rest[0].sep == " ":
            yield i + 4
    # Brazilian (11) 91234-5678 / (21) 1234-5678.
    elif not plain and len(first) == 2 and first[0] != "0" and sizes[1:3] in ((5, 4), (4, 4)):
        if rest[0].sep in ("", " ") and rest[1].sep == "-":
            yield i + 3
    # Russian 8 (495) 123-45-67 / 8 912 123-45-67.
    elif plain and first == "8" and sizes[1:5] == (3, 3, 2, 2):
        spaced_then_dashed = rest[0].sep == " " and rest[2].sep == rest[3].sep == "-"
        yield from (i + 5,) if spaced_then_dashed else ()


#: A word that says the number after it is a phone number (then any 7-15 digits are one).
_CUE = re.compile(
    r"(?:(?<![A-Za-z])(?:tel|tele?phone|phone|ph|mobile|mob|cell(?:phone)?|call (?:me|us)"
    r"(?: on| at)?|fax|whatsapp|sms|contact|handy|telefon|telefono|teléfono|téléphone|tél"
    r"|portable|móvil|movil|celular|cellulare)|电话|電話|手机|手機|联系|聯絡|致电|拨打|撥打"
    r"|號碼|号码|携帯|電話番号|전화|휴대폰)"
    r"(?:[ \t]*(?:number|no\.?|nr\.?|num\.?|#|号码|號碼|号|號|番号|번호))?[ \t]*[:：.#]?[ \t]*$",
    re.IGNORECASE,
)


def _cue_ends(groups: Sequence[_Group], i: int) -> Iterable[int]:
    digits = 0
    for j in range(i, len(groups)):
        if j > i and groups[j].sep not in _PHONE_SEPARATORS:
            return
        digits += len(groups[j].digits)
        if digits > 15:
            return
        if digits >= 7:
            yield j + 1


# --- finding values -------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class Found:
    """One value found: ``text[start:end]`` is of ``kind``; ``value`` keys its placeholder."""

    start: int
    end: int
    kind: str
    value: str


#: A phone written with "+CC": the strongest reading of a run (then cards, by checksum).
_PLUS_PHONE = "phone+"


def _number_spans(text: str, run: re.Match[str], kinds: frozenset[str]) -> list[Found]:
    """Cards and phones in one run of digit groups."""
    groups = _groups(run)
    plus = run.group(0).startswith("+")
    cue = "phone" in kinds and _CUE.search(text, max(0, run.start() - 32), run.start())
    items: list[tuple[int, int, str]] = []
    for i in range(len(groups)):
        if "card" in kinds:
            items += [(i, j, "card") for j in _card_ends(groups, i)]
        if "phone" not in kinds:
            continue
        if i == 0 and plus:
            items += [(i, j, _PLUS_PHONE) for j in _international_ends(groups, i, True)]
            continue
        if i == 1 and plus:
            # "+CC" then a number a national grammar reads: the country code is part of it.
            national_here = [*_nanp_ends(groups, 1), *_trunk_ends(groups, 1)]
            items += [(0, j, _PLUS_PHONE) for j in national_here]
        if groups[i].digits.startswith("00") and (i == 0 or not _tight(groups[i].sep)):
            items += [(i, j, "phone") for j in _international_ends(groups, i, False)]
        national = [*_nanp_ends(groups, i), *_trunk_ends(groups, i), *_fixed_shape_ends(groups, i)]
        items += [(i, j, "phone") for j in national if _national_boundary_ok(text, groups, i, j)]
        if i == 0 and cue:
            items += [(i, j, "phone") for j in _cue_ends(groups, i)]
    found: list[Found] = []
    for first, last, kind in _resolve(groups, items):
        kind = "phone" if kind == _PLUS_PHONE else kind
        start = run.start() if first == 0 else groups[first].start
        end = groups[last - 1].end
        found.append(Found(start, end, kind, _normalise(kind, text[start:end])))
    return found


def _resolve(
    groups: Sequence[_Group], items: list[tuple[int, int, str]]
) -> list[tuple[int, int, str]]:
    """Merge overlapping candidates; in each cluster keep the reading that covers most.

    The whole cluster is hidden (the kept values are widened over it), so competing
    readings never leave a piece of either value visible.
    """
    items.sort()
    clusters: list[list[tuple[int, int, str]]] = []
    for item in items:
        if clusters and item[0] < max(end for _, end, _ in clusters[-1]):
            clusters[-1].append(item)
        else:
            clusters.append([item])
    out: list[tuple[int, int, str]] = []
    for cluster in clusters:
        low = cluster[0][0]
        high = max(end for _, end, _ in cluster)
        size = [len(g.digits) for g in groups]
        # best[k]: the best reading of groups k..high and its values. A reading is scored
        # by the digits its "+CC" phones cover, then its cards (a checksum is strong
        # evidence), then all digits covered, then by fewer values.
        empty: tuple[tuple[int, int, int, int], list[tuple[int, int, str]]] = ((0, 0, 0, 0), [])
        best = {high: empty}
        for k in range(high - 1, low - 1, -1):
            score, chosen = best[k + 1]
            for start, end, kind in cluster:
                if start != k:
                    continue
                (plus, cards, covered, count), rest = best[end]
                digits = sum(size[start:end])
                candidate = (
                    plus + digits * (kind == _PLUS_PHONE),
                    cards + digits * (kind == "card"),
                    covered + digits,
                    count - 1,
                )
                if candidate > score:
                    score, chosen = candidate, [(start, end, kind), *rest]
            best[k] = (score, chosen)
        chosen = best[low][1]
        # Widen: the first value from the cluster's start, each to the next value's start.
        for n, (start, end, kind) in enumerate(chosen):
            start = low if n == 0 else start
            end = chosen[n + 1][0] if n + 1 < len(chosen) else high
            out.append((start, end, kind))
    return out


def _normalised_digits(text: str) -> str:
    """``text`` with every decimal digit as ASCII (same length: positions stay valid)."""
    if text.isascii():
        return text
    return "".join(
        str(unicodedata.decimal(ch)) if ch.isdecimal() and not ch.isascii() else ch for ch in text
    )


_FILLER = "\ufffc"  # stands in for a found value: no grammar reads through it


def find_personal_data(text: str, kinds: Iterable[str] | None = None) -> list[Found]:
    """Every personal value in ``text``, in order, as :class:`Found` spans."""
    chosen = _check_kinds(kinds)
    if not text:
        return []
    work = _normalised_digits(text)
    has_digit = any(ch.isdigit() for ch in work)
    found: list[Found] = []

    def take(kind: str, spans: Iterable[tuple[int, int]]) -> None:
        nonlocal work
        pieces = list(spans)
        for start, end in pieces:
            found.append(Found(start, end, kind, _normalise(kind, work[start:end])))
        for start, end in pieces:
            work = work[:start] + _FILLER * (end - start) + work[end:]

    if "email" in chosen and "@" in work:
        take("email", _regex_spans(_EMAIL)(work))
    if has_digit:
        if "iban" in chosen:
            take("iban", _iban_spans(work))
        if "national_id" in chosen:
            take("national_id", _regex_spans(_CN_ID, _cn_id_ok)(work))
        if "ssn" in chosen:
            take("ssn", _regex_spans(_SSN)(work))
        if "national_id" in chosen:
            take("national_id", _regex_spans(_NINO)(work))
        numeric = chosen & {"card", "phone"}
        if numeric:
            for run in _RUN.finditer(work):
                # Fewer than 7 digits is never a card or a national phone (the fast path).
                if run.group(0)[0] == "+" or sum(map(str.isdigit, run.group(0))) >= 7:
                    found += _number_spans(work, run, numeric)
    found.sort(key=lambda f: f.start)
    return found


def _check_kinds(kinds: Iterable[str] | None) -> frozenset[str]:
    chosen = tuple(REDACTION_KINDS if kinds is None else kinds)
    unknown = [k for k in chosen if k not in REDACTION_KINDS]
    if unknown:
        raise ConfigurationError(
            f"unknown redaction kind(s) {unknown}; known: {', '.join(REDACTION_KINDS)}"
        )
    return frozenset(chosen)


def _normalise(kind: str, value: str) -> str:
    """The same value written two ways gets one placeholder."""
    if kind == "email":
        return value.lower()
    return "".join(ch for ch in value if ch.isalnum()).upper()


# --- replacing ------------------------------------------------------------------------------


class _Redactor:
    """Replaces found values with numbered placeholders; one instance per request."""

    __slots__ = ("counts", "kinds", "seen")

    def __init__(self, kinds: Iterable[str] | None) -> None:
        self.kinds = _check_kinds(kinds)
        self.counts: dict[str, int] = {}
        self.seen: dict[tuple[str, str], str] = {}

    def _placeholder(self, kind: str, value: str) -> str:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        key = (kind, value)
        placeholder = self.seen.get(key)
        if placeholder is None:
            n = sum(1 for k, _ in self.seen if k == kind) + 1
            placeholder = self.seen[key] = f"[{kind.upper()}_{n}]"
        return placeholder

    def text(self, text: str) -> str:
        if not text:
            return text
        found = find_personal_data(text, self.kinds)
        if not found:
            return text
        parts: list[str] = []
        at = 0
        for item in found:
            parts.append(text[at : item.start])
            parts.append(self._placeholder(item.kind, item.value))
            at = item.end
        parts.append(text[at:])
        return "".join(parts)

    def value(self, value: Any) -> Any:
        """Redact strings inside JSON-like values (tool-call arguments)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.value(v) for v in value)
        return value


def redact_text(text: str, *, kinds: Iterable[str] | None = None) -> tuple[str, dict[str, int]]:
    """Redact one string. Returns ``(new_text, {kind: occurrences})``."""
    redactor = _Redactor(kinds)
    return redactor.text(text), dict(redactor.counts)


def _redact_tool_call(redactor: _Redactor, call: ToolCall) -> ToolCall:
    arguments = redactor.value(call.arguments)
    return call if arguments == call.arguments else call.model_copy(update={"arguments": arguments})


def _redact_message(redactor: _Redactor, message: Message) -> Message:
    update: dict[str, Any] = {}
    if isinstance(message.content, str):
        new = redactor.text(message.content)
        if new != message.content:
            update["content"] = new
    else:
        parts: list[Any] = []
        changed = False
        for part in message.content:
            if isinstance(part, TextPart):
                new = redactor.text(part.text)
                if new != part.text:
                    part = part.model_copy(update={"text": new})
                    changed = True
            elif isinstance(part, ToolCallPart):
                call = _redact_tool_call(redactor, part.tool_call)
                if call is not part.tool_call:
                    part = part.model_copy(update={"tool_call": call})
                    changed = True
            parts.append(part)
        if changed:
            update["content"] = parts
    if message.tool_calls:
        calls = tuple(_redact_tool_call(redactor, c) for c in message.tool_calls)
        if any(a is not b for a, b in zip(calls, message.tool_calls, strict=True)):
            update["tool_calls"] = calls
    return message.model_copy(update=update) if update else message


def redact(
    request: ChatRequest, *, kinds: Iterable[str] | None = None
) -> tuple[ChatRequest, dict[str, int]]:
    """Redact personal data in every message (text parts and tool-call arguments).

    Pure: the input request is not changed. Returns ``(new_request, {kind: count})``;
    when nothing matched, the same request object and an empty dict. Tool definitions,
    the response schema and metadata are left as they are (they are not user data).
    """
    redactor = _Redactor(kinds)
    messages = tuple(_redact_message(redactor, m) for m in request.messages)
    if not redactor.counts:
        return request, {}
    return request.model_copy(update={"messages": messages}), dict(redactor.counts)
