"""Card and phone numbers in runs of digit groups: the grammars redaction reads numbers by.

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "CUE",
    "RUN",
    "Group",
    "card_ends",
    "cue_ends",
    "fixed_shape_ends",
    "groups_of",
    "international_ends",
    "nanp_ends",
    "national_boundary_ok",
    "tight",
    "trunk_ends",
]

# --- numbers: runs of digit groups ---------------------------------------------------------

_SPACE = " \u00a0\u202f\t"
_DASH = "-\u2010\u2011\u2012\u2013"
# One separator between groups: a space, a dash or a dot (each with optional spaces round
# it), or nothing next to a parenthesised group ("(0)20", "(415)555").
_SEP = rf"(?:[{_SPACE}]?[{_DASH}.][{_SPACE}]?|[{_SPACE}]|(?<=\))[{_SPACE}]?|[{_SPACE}]?(?=\())"
_GROUP = r"(?:\([0-9]{1,5}\)|[0-9]+)"
RUN = re.compile(rf"\+?{_GROUP}(?:{_SEP}{_GROUP})*")
_GROUPS = re.compile(r"\(?([0-9]+)\)?")


@dataclass(slots=True, frozen=True)
class Group:
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


def groups_of(run: re.Match[str]) -> list[Group]:
    text, base = run.group(0), run.start()
    out: list[Group] = []
    previous_end = 1 if text.startswith("+") else 0
    for match in _GROUPS.finditer(text, previous_end):
        gap = text[previous_end : match.start()]
        out.append(
            Group(
                start=base + match.start(),
                end=base + match.end(),
                digits=match.group(1),
                paren=match.group(0).startswith("("),
                sep="^" if not out else _separator(gap),
            )
        )
        previous_end = match.end()
    return out


def tight(sep: str) -> bool:
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


def _card_shape_ok(groups: Sequence[Group]) -> bool:
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


def card_ends(groups: Sequence[Group], i: int) -> Iterable[int]:
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


def international_ends(groups: Sequence[Group], i: int, plus: bool) -> Iterable[int]:
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


def national_boundary_ok(text: str, groups: Sequence[Group], i: int, j: int) -> bool:
    """No letter, dot or dash glued on: "ORD-415-555-2671" and "123-456-7890-55" are ids."""
    if i > 0 and tight(groups[i].sep):
        return False
    if j < len(groups) and tight(groups[j].sep):
        return False
    start, end = groups[i].start, groups[j - 1].end
    before = text[start - 1] if start else " "
    after = text[end] if end < len(text) else " "
    if before.isascii() and (before.isalnum() or before in "+/_.-"):
        return False
    if after.isascii() and (after.isalnum() or after in "/_-"):
        return False
    return not (after == "." and end + 1 < len(text) and text[end + 1].isdigit())


def _same_separators(groups: Sequence[Group]) -> bool:
    return len({g.sep for g in groups}) <= 1


def nanp_ends(groups: Sequence[Group], i: int) -> Iterable[int]:
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


def trunk_ends(groups: Sequence[Group], i: int) -> Iterable[int]:
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


def fixed_shape_ends(groups: Sequence[Group], i: int) -> Iterable[int]:
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
CUE = re.compile(
    r"(?:(?<![A-Za-z])(?:tel|tele?phone|phone|ph|mobile|mob|cell(?:phone)?|call (?:me|us)"
    r"(?: on| at)?|fax|whatsapp|sms|contact|handy|telefon|telefono|teléfono|téléphone|tél"
    r"|portable|móvil|movil|celular|cellulare)|电话|電話|手机|手機|联系|聯絡|致电|拨打|撥打"
    r"|號碼|号码|携帯|電話番号|전화|휴대폰)"
    r"(?:[ \t]*(?:number|no\.?|nr\.?|num\.?|#|号码|號碼|号|號|番号|번호))?[ \t]*[:：.#]?[ \t]*$",
    re.IGNORECASE,
)


def cue_ends(groups: Sequence[Group], i: int) -> Iterable[int]:
    digits = 0
    for j in range(i, len(groups)):
        if j > i and groups[j].sep not in _PHONE_SEPARATORS:
            return
        digits += len(groups[j].digits)
        if digits > 15:
            return
        if digits >= 7:
            yield j + 1
