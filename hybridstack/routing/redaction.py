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

How numbers next to other numbers are told apart, and what is left alone: see
:mod:`hybridstack.routing._numbers`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from hybridstack.errors import ConfigurationError
from hybridstack.routing._numbers import (
    CUE,
    RUN,
    Group,
    card_ends,
    cue_ends,
    fixed_shape_ends,
    groups_of,
    international_ends,
    nanp_ends,
    national_boundary_ok,
    tight,
    trunk_ends,
)
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
    groups = groups_of(run)
    plus = run.group(0).startswith("+")
    cue = "phone" in kinds and CUE.search(text, max(0, run.start() - 32), run.start())
    items: list[tuple[int, int, str]] = []
    for i in range(len(groups)):
        if "card" in kinds:
            items += [(i, j, "card") for j in card_ends(groups, i)]
        if "phone" not in kinds:
            continue
        if i == 0 and plus:
            items += [(i, j, _PLUS_PHONE) for j in international_ends(groups, i, True)]
            continue
        if i == 1 and plus:
            # "+CC" then a number a national grammar reads: the country code is part of it.
            national_here = [*nanp_ends(groups, 1), *trunk_ends(groups, 1)]
            items += [(0, j, _PLUS_PHONE) for j in national_here]
        if groups[i].digits.startswith("00") and (i == 0 or not tight(groups[i].sep)):
            items += [(i, j, "phone") for j in international_ends(groups, i, False)]
        national = [*nanp_ends(groups, i), *trunk_ends(groups, i), *fixed_shape_ends(groups, i)]
        items += [(i, j, "phone") for j in national if national_boundary_ok(text, groups, i, j)]
        if i == 0 and cue:
            items += [(i, j, "phone") for j in cue_ends(groups, i)]
    found: list[Found] = []
    for first, last, kind in _resolve(groups, items):
        kind = "phone" if kind == _PLUS_PHONE else kind
        start = run.start() if first == 0 else groups[first].start
        end = groups[last - 1].end
        found.append(Found(start, end, kind, _normalise(kind, text[start:end])))
    return found


def _resolve(
    groups: Sequence[Group], items: list[tuple[int, int, str]]
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
            for run in RUN.finditer(work):
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
