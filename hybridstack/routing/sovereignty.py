"""Sovereignty: which jurisdictions each data class may go to, and redaction of personal data.

Data classes (fail closed: an unknown class is an error, never "public")::

    public     -> any jurisdiction
    internal   -> any jurisdiction (override it, e.g. {"internal": ["EU", "US", "LOCAL"]})
    personal   -> EU, LOCAL
    regulated  -> LOCAL

``DataClassRules({"personal": ["EU", "UK", "LOCAL"], "health": ["LOCAL"]})`` replaces or
adds classes on top of those defaults (``defaults=False`` starts empty). ``"*"`` means any
jurisdiction; ``None`` is refused so that a typo cannot silently open a class to the world.

Home jurisdiction (for redaction): where a data class's data lives. With redaction on,
a request sent to a deployment outside it has e-mails, phone numbers, card numbers and
ID numbers replaced by placeholders first. The default home is ``LOCAL`` for every class
except ``public`` (whose home is None: public data is never redacted), so turning
redaction on without saying more redacts everything that leaves the machine. Set
``home="EU"`` (global) or ``home={"personal": "EU"}`` to send unredacted within the EU.
A ``LOCAL`` deployment never counts as leaving home.

Redaction (:func:`redact`, :func:`redact_text`) is pure: it returns a new request and
``{kind: count}``; the same value gets the same placeholder within one request
(``[EMAIL_1]``, ``[EMAIL_2]`` …). Kinds and what they match:

``email``        ``name@host.tld``
``phone``        international numbers written with ``+`` and 8-15 digits
                 (``+44 20 7946 0958``, ``+1 (415) 555-2671``, ``+8613800138000``) and
                 North American numbers with separators (``(415) 555-2671``, ``415-555-2671``)
``card``         13-19 digits (spaces/dashes allowed) with a card-network prefix and a
                 valid Luhn checksum
``iban``         upper-case IBANs (spaced or not) with a valid ISO 13616 mod-97 checksum
                 and, for known countries, the right length
``ssn``          US social security numbers written ``123-45-6789`` (area/group/serial rules)
``national_id``  UK National Insurance numbers (``AB 12 34 56 C``) and Chinese resident ID
                 numbers (18 characters, valid birth date and ISO 7064 checksum)

Bare digit runs (order numbers, invoice ids, tracking codes), dates, times, versions,
IP addresses and amounts are left alone: every numeric kind needs its checksum or its
exact written shape.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from hybridstack.catalog.models import KNOWN_JURISDICTIONS
from hybridstack.errors import ConfigurationError
from hybridstack.types import ChatRequest, Message, TextPart, ToolCall, ToolCallPart

__all__ = [
    "DEFAULT_DATA_CLASSES",
    "REDACTION_KINDS",
    "DataClassRules",
    "UnknownDataClassError",
    "redact",
    "redact_text",
]

ANY = "*"

#: The built-in data classes: name -> allowed jurisdictions ("*" = any).
DEFAULT_DATA_CLASSES: Mapping[str, tuple[str, ...]] = {
    "public": (ANY,),
    "internal": (ANY,),
    "personal": ("EU", "LOCAL"),
    "regulated": ("LOCAL",),
}

DEFAULT_HOME = "LOCAL"


class UnknownDataClassError(ConfigurationError, LookupError):
    """A data class name the rules do not know (routing fails closed)."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.data_class = name
        self.known = tuple(known)
        super().__init__(
            f"unknown data class {name!r}; known classes: {', '.join(self.known)}. "
            "Unknown classes are refused rather than treated as public: add it with "
            f"data_classes={{{name!r}: ['EU', 'LOCAL']}}"
        )


def _jurisdictions(name: str, value: Any) -> frozenset[str] | None:
    """Normalise one class's rule: None = any, else a frozenset of upper-case codes."""
    if value is None:
        raise ConfigurationError(
            f"data class {name!r}: None is not a rule; use '*' for any jurisdiction or a "
            "list such as ['EU', 'LOCAL']"
        )
    items = [value] if isinstance(value, str) else list(value)
    codes: set[str] = set()
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ConfigurationError(
                f"data class {name!r}: jurisdictions must be codes like 'EU', got {item!r}"
            )
        code = item.strip().upper()
        if code in (ANY, "ANY"):
            return None
        codes.add(code)
    return frozenset(codes)


class DataClassRules:
    """Data class -> allowed jurisdictions, and each class's home for redaction.

    Args:
        rules: ``{"personal": ["EU", "LOCAL"], "internal": "*"}``; merged over the defaults.
        defaults: start from :data:`DEFAULT_DATA_CLASSES` (True) or from nothing.
        home: home jurisdiction for redaction: one code for every class, or a mapping
            ``{class: code or None}`` (None: never redact that class). See the module doc.
    """

    __slots__ = ("_allowed", "_home")

    def __init__(
        self,
        rules: Mapping[str, str | Iterable[str]] | None = None,
        *,
        defaults: bool = True,
        home: str | Mapping[str, str | None] | None = None,
    ) -> None:
        merged: dict[str, Any] = dict(DEFAULT_DATA_CLASSES) if defaults else {}
        for name, value in (rules or {}).items():
            if not isinstance(name, str) or not name.strip():
                raise ConfigurationError(
                    f"data class names must be non-empty strings, got {name!r}"
                )
            merged[name.strip()] = value
        self._allowed: dict[str, frozenset[str] | None] = {
            name: _jurisdictions(name, value) for name, value in merged.items()
        }
        homes: dict[str, str | None] = {
            name: (None if name == "public" else DEFAULT_HOME) for name in self._allowed
        }
        if isinstance(home, str):
            homes = {name: (None if name == "public" else home.upper()) for name in self._allowed}
        elif home is not None:
            for name, code in home.items():
                if name not in self._allowed:
                    raise UnknownDataClassError(name, tuple(self._allowed))
                homes[name] = None if code is None else code.strip().upper()
        self._home = homes

    @classmethod
    def coerce(cls, value: DataClassRules | Mapping[str, Any] | None) -> DataClassRules:
        if value is None:
            return cls()
        if isinstance(value, DataClassRules):
            return value
        if isinstance(value, Mapping):
            return cls(value)
        raise ConfigurationError(
            f"data_classes must be a DataClassRules or a dict, got {type(value).__name__}"
        )

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._allowed)

    def __contains__(self, name: object) -> bool:
        return name in self._allowed

    def check(self, name: str) -> None:
        """Raise :class:`UnknownDataClassError` for a name the rules do not know."""
        if name not in self._allowed:
            raise UnknownDataClassError(name, tuple(self._allowed))

    def allowed(self, name: str) -> frozenset[str] | None:
        """Allowed jurisdictions of a class (None = any). Unknown class -> error."""
        try:
            return self._allowed[name]
        except KeyError:
            raise UnknownDataClassError(name, tuple(self._allowed)) from None

    def allows(self, name: str, jurisdiction: str) -> bool:
        allowed = self.allowed(name)
        return allowed is None or jurisdiction.upper() in allowed

    def describe(self, name: str) -> str:
        allowed = self.allowed(name)
        return "any" if allowed is None else (", ".join(sorted(allowed)) or "nowhere")

    def home(self, name: str) -> str | None:
        self.check(name)
        return self._home.get(name)

    def leaves_home(self, name: str, jurisdiction: str) -> bool:
        """True when sending data of class ``name`` to ``jurisdiction`` leaves its home."""
        home = self.home(name)
        if home is None:
            return False
        jurisdiction = jurisdiction.upper()
        return jurisdiction != home and jurisdiction != "LOCAL"

    def unknown_jurisdictions(self) -> list[tuple[str, str]]:
        """(class, code) pairs naming a jurisdiction outside the known list (likely typos)."""
        return [
            (name, code)
            for name, allowed in self._allowed.items()
            for code in sorted(allowed or ())
            if code not in KNOWN_JURISDICTIONS
        ]

    def to_dict(self) -> dict[str, list[str]]:
        return {
            name: ([ANY] if allowed is None else sorted(allowed))
            for name, allowed in self._allowed.items()
        }

    def __repr__(self) -> str:
        body = ", ".join(f"{n}: {self.describe(n)}" for n in self._allowed)
        return f"DataClassRules({body})"


# --- redaction --------------------------------------------------------------------------

REDACTION_KINDS = ("email", "iban", "national_id", "card", "ssn", "phone")

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}(?![\w@-])"
)
# Greedy over space-separated groups; the callback backs off group by group until the
# checksum holds (so "DE89 3704 0044 0532 0130 00 EUR" still finds the IBAN).
_IBAN = re.compile(r"(?<![\w])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![\w])")
_CN_ID = re.compile(r"(?<![\w-])\d{17}[\dXx](?![\w-])")
_CARD = re.compile(r"(?<![\w/-])(?<!\d[ .,])\d(?:[ -]?\d){12,18}(?![\w/-]|[.,]\d|[ -]\d)")
_SSN = re.compile(r"(?<![\w-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-])")
_NINO = re.compile(
    r"(?<![\w])(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
    r" ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![\w])"
)
_PHONE_INTL = re.compile(r"(?<![\w+])\+[1-9]\d{0,3}(?:[ .-]?(?:\(\d{1,4}\)|\d{1,5})){1,6}(?![\w])")
_PHONE_NANP = re.compile(
    r"(?<![\w.+/-])(?:\([2-9]\d{2}\) ?|[2-9]\d{2}[-.])[2-9]\d{2}[-.]\d{4}(?![\w/-]|\.\d)"
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
    """Issuer prefixes: Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro."""
    n = len(d)
    two, four = int(d[:2]), int(d[:4])
    if d[0] == "4":
        return n in (13, 16, 19)
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return n == 16
    if two in (34, 37):
        return n == 15
    if d.startswith(("6011", "65")) or 644 <= int(d[:3]) <= 649 or two == 62:
        return 16 <= n <= 19
    if 3528 <= four <= 3589:
        return 16 <= n <= 19
    if two in (36, 38, 39) or 300 <= int(d[:3]) <= 305:
        return 14 <= n <= 19
    if two in (50, 56, 57, 58, 63, 67):
        return 12 <= n <= 19
    return False


def _is_card(text: str) -> bool:
    digits = text.replace(" ", "").replace("-", "")
    if not 13 <= len(digits) <= 19:
        return False
    # Mixed separators ("4111 1111-1111 1111") are not how cards are written.
    if " " in text and "-" in text:
        return False
    return _card_prefix_ok(digits) and _luhn_ok(digits)


def _iban_ok(compact: str) -> bool:
    country = compact[:2]
    expected = _IBAN_LENGTHS.get(country)
    if expected is not None and len(compact) != expected:
        return False
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


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


def _phone_digits_ok(text: str) -> bool:
    return 8 <= sum(ch.isdigit() for ch in text) <= 15


class _Redactor:
    """Replaces matches with numbered placeholders; one instance per request."""

    __slots__ = ("counts", "kinds", "seen")

    def __init__(self, kinds: Iterable[str] | None) -> None:
        chosen = tuple(REDACTION_KINDS if kinds is None else kinds)
        unknown = [k for k in chosen if k not in REDACTION_KINDS]
        if unknown:
            raise ConfigurationError(
                f"unknown redaction kind(s) {unknown}; known: {', '.join(REDACTION_KINDS)}"
            )
        self.kinds = frozenset(chosen)
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

    def _sub(
        self, pattern: re.Pattern[str], kind: str, text: str, ok: Callable[[str], bool]
    ) -> str:
        def replace(match: re.Match[str]) -> str:
            value = match.group(0)
            return self._placeholder(kind, _normalise(kind, value)) if ok(value) else value

        return pattern.sub(replace, text)

    def _sub_iban(self, text: str) -> str:
        def replace(match: re.Match[str]) -> str:
            value = match.group(0)
            # Back off whole space-separated groups from the right until the checksum holds.
            candidate = value
            while True:
                compact = candidate.replace(" ", "")
                if len(compact) >= 15 and _iban_ok(compact):
                    return self._placeholder("iban", compact) + value[len(candidate) :]
                if " " not in candidate:
                    return value
                candidate = candidate.rsplit(" ", 1)[0]

        return _IBAN.sub(replace, text)

    def text(self, text: str) -> str:
        if not text:
            return text
        kinds = self.kinds
        # Cheap pre-checks keep the common case (no digits, no "@") fast.
        has_at = "@" in text
        has_digit = any(ch.isdigit() for ch in text)
        if "email" in kinds and has_at:
            text = self._sub(_EMAIL, "email", text, lambda _: True)
        if not has_digit:
            return text
        if "iban" in kinds:
            text = self._sub_iban(text)
        if "national_id" in kinds:
            text = self._sub(_CN_ID, "national_id", text, _cn_id_ok)
        if "card" in kinds:
            text = self._sub(_CARD, "card", text, _is_card)
        if "ssn" in kinds:
            text = self._sub(_SSN, "ssn", text, lambda _: True)
        if "national_id" in kinds:
            text = self._sub(_NINO, "national_id", text, lambda _: True)
        if "phone" in kinds:
            text = self._sub(_PHONE_INTL, "phone", text, _phone_digits_ok)
            text = self._sub(_PHONE_NANP, "phone", text, lambda _: True)
        return text

    def value(self, value: Any) -> Any:
        """Redact strings inside JSON-like values (tool-call arguments)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.value(v) for v in value)
        return value


def _normalise(kind: str, value: str) -> str:
    """The same number written two ways gets one placeholder."""
    if kind == "email":
        return value.lower()
    if kind in ("card", "phone", "iban", "ssn", "national_id"):
        return "".join(ch for ch in value if ch.isalnum()).upper()
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
