"""Fake personal data for testing redaction: valid-looking, never real.

Generators take a :class:`random.Random`, so a seed replays a sample and property-based
tests can drive them (``hypothesis.strategies.randoms()``). Each returns the value as a
person would write it:

* :func:`fake_card` — a Luhn-valid card number of a real network (Visa, Mastercard, Amex,
  Discover, JCB, Diners, UnionPay, Maestro, Mir) in a common written style;
* :func:`fake_phone` — a phone number in one of many countries' international or
  national formats (:data:`PHONE_FORMATS`); formats that need a cue word to be told
  from an ordinary number come with one (``"tel: 9123 4567"``);
* :func:`fake_email`, :func:`fake_iban` (valid mod-97), :func:`fake_ssn`,
  :func:`fake_nino`, :func:`fake_cn_id` (valid birth date and checksum).

:data:`ORDINARY_TEXTS` is a fixed corpus of text with numbers that are not personal data
(order ids, prices, dates, versions …): a redactor should leave every one unchanged.
:func:`surviving_pieces` tells which pieces of a value survived redaction.
"""

from __future__ import annotations

import random
import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date, timedelta

__all__ = [
    "CARD_NETWORKS",
    "CUE_PHONE_FORMATS",
    "ORDINARY_TEXTS",
    "PHONE_FORMATS",
    "adjacent_cases",
    "fake_card",
    "fake_cn_id",
    "fake_email",
    "fake_iban",
    "fake_nino",
    "fake_phone",
    "fake_pii",
    "fake_ssn",
    "fuzz_case",
    "luhn_complete",
    "surviving_pieces",
]


# --- cards ---------------------------------------------------------------------------------


def luhn_complete(body: str) -> str:
    """``body`` plus the check digit that makes it pass the Luhn test."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        n = int(ch)
        if i % 2 == 0:  # doubled once the check digit is appended
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return body + str((10 - total % 10) % 10)


#: network -> (issuer prefixes, lengths).
CARD_NETWORKS: dict[str, tuple[tuple[str, ...], tuple[int, ...]]] = {
    "visa": (("4",), (13, 16, 19)),
    "mastercard": (("51", "52", "53", "54", "55", "2221", "2500", "2720"), (16,)),
    "amex": (("34", "37"), (15,)),
    "discover": (("6011", "644", "649", "65"), (16, 19)),
    "jcb": (("3528", "3589"), (16,)),
    "diners": (("36", "38", "300", "305"), (14,)),
    "unionpay": (("62",), (16, 17, 18, 19)),
    "maestro": (("50", "56", "58", "6759"), (16, 19)),
    "mir": (("2200", "2204"), (16,)),
}


def _grouped(digits: str, sizes: Sequence[int], sep: str) -> str:
    parts, at = [], 0
    for size in sizes:
        parts.append(digits[at : at + size])
        at += size
    if at < len(digits):
        parts.append(digits[at:])
    return sep.join(p for p in parts if p)


def fake_card(rng: random.Random, network: str | None = None) -> str:
    """A Luhn-valid card number, written plain, in groups of four, or the Amex/Diners way."""
    name = network or rng.choice(sorted(CARD_NETWORKS))
    prefixes, lengths = CARD_NETWORKS[name]
    prefix, length = rng.choice(prefixes), rng.choice(lengths)
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    digits = luhn_complete(body)
    sep = rng.choice((" ", "-"))
    styles: list[tuple[int, ...]]
    if length == 15:
        styles = [(4, 6, 5)]
    elif length == 14:
        styles = [(4, 6, 4)]
    else:
        styles = [(4,) * 5]
    style = rng.choice([None, *styles])
    return digits if style is None else _grouped(digits, style, sep)


# --- phones --------------------------------------------------------------------------------

#: Written formats: ``#`` any digit, ``N`` 2-9, ``M`` 6-9; ``(country, format)``.
PHONE_FORMATS: tuple[tuple[str, str], ...] = (
    ("GB", "+44 20 #### ####"),
    ("GB", "+44 7### ######"),
    ("GB", "+44 (0)20 #### ####"),
    ("GB", "+447#########"),
    ("GB", "020 #### ####"),
    ("GB", "07### ######"),
    ("GB", "(020) #### ####"),
    ("GB", "0044 20 #### ####"),
    ("US", "+1 (N##) N##-####"),
    ("US", "+1 N##-N##-####"),
    ("US", "+1 N## N## ####"),
    ("US", "+1N##N######"),
    ("US", "(N##) N##-####"),
    ("US", "N##-N##-####"),
    ("US", "N##.N##.####"),
    ("US", "1-N##-N##-####"),
    ("US", "N## N## ####"),
    ("DE", "+49 30 ########"),
    ("DE", "+49 151 ########"),
    ("DE", "+49 (0)30 #######"),
    ("DE", "030 ########"),
    ("DE", "0151 ########"),
    ("DE", "089 #######"),
    ("FR", "+33 6 ## ## ## ##"),
    ("FR", "+33 1 ## ## ## ##"),
    ("FR", "06 ## ## ## ##"),
    ("FR", "06.##.##.##.##"),
    ("CN", "+86 138 #### ####"),
    ("CN", "+86 10 #### ####"),
    ("CN", "+86-755-####-####"),
    ("CN", "+86139########"),
    ("CN", "0086 138 #### ####"),
    ("CN", "138 #### ####"),
    ("CN", "139-####-####"),
    ("CN", "010-########"),
    ("CN", "0755-########"),
    ("JP", "+81 3-####-####"),
    ("JP", "+81 90-####-####"),
    ("JP", "03-####-####"),
    ("JP", "090-####-####"),
    ("IN", "+91 98### #####"),
    ("IN", "+91-70###-#####"),
    ("AU", "+61 2 #### ####"),
    ("AU", "+61 4## ### ###"),
    ("AU", "02 #### ####"),
    ("AU", "04## ### ###"),
    ("BR", "+55 11 9####-####"),
    ("BR", "(11) 9####-####"),
    ("BR", "(21) ####-####"),
    ("ES", "+34 6## ## ## ##"),
    ("ES", "6## ## ## ##"),
    ("IT", "+39 06 #### ####"),
    ("IT", "+39 3## ### ####"),
    ("IT", "06 #### ####"),
    ("NL", "+31 6 ########"),
    ("NL", "06-########"),
    ("NL", "020 ### ####"),
    ("KR", "+82 10-####-####"),
    ("KR", "010-####-####"),
    ("KR", "02-###-####"),
    ("SG", "+65 9### ####"),
    ("SG", "+65 6### ####"),
    ("HK", "+852 9### ####"),
    ("RU", "+7 495 ###-##-##"),
    ("RU", "+7 (912) ###-##-##"),
    ("RU", "8 (495) ###-##-##"),
    ("RU", "8 912 ###-##-##"),
    ("MX", "+52 55 #### ####"),
    ("CH", "+41 44 ### ## ##"),
    ("CH", "044 ### ## ##"),
    ("SE", "+46 70 ### ## ##"),
    ("SE", "070-### ## ##"),
    ("AE", "+971 50 ### ####"),
    ("ZA", "+27 82 ### ####"),
    ("ZA", "082 ### ####"),
    ("ID", "+62 812-####-####"),
    ("TR", "+90 5## ### ## ##"),
    ("PL", "+48 N## ### ###"),
)

#: Formats that are only a phone number because a word says so (``tel``, ``电话`` …):
#: written alone they are indistinguishable from an ordinary number.
CUE_PHONE_FORMATS: tuple[tuple[str, str], ...] = (
    ("SG", "9### ####"),
    ("HK", "6### ####"),
    ("IN", "98### #####"),
    ("MX", "55 #### ####"),
    ("CN", "138########"),
    ("GB", "07#########"),
    ("US", "N##N######"),
)

_CUES = ("tel: ", "Tel. ", "phone ", "call me on ", "mobile: ", "Handy ", "电话", "手机号", "電話 ")


def _fill(template: str, rng: random.Random) -> str:
    out = []
    for ch in template:
        if ch == "#":
            out.append(rng.choice(string.digits))
        elif ch == "N":
            out.append(rng.choice("23456789"))
        elif ch == "M":
            out.append(rng.choice("6789"))
        else:
            out.append(ch)
    return "".join(out)


def fake_phone(rng: random.Random, *, cue: bool | None = None) -> str:
    """A phone number in one of :data:`PHONE_FORMATS` (or, with its cue, a cue format).

    ``cue=None`` picks either kind; True always gives a cue format with its cue word.
    """
    if cue is None:
        cue = rng.random() < 0.15
    if cue:
        _, template = rng.choice(CUE_PHONE_FORMATS)
        return rng.choice(_CUES) + _fill(template, rng)
    _, template = rng.choice(PHONE_FORMATS)
    return _fill(template, rng)


# --- the rest ------------------------------------------------------------------------------


def fake_email(rng: random.Random) -> str:
    first = rng.choice(("jane", "li.wei", "o'brien", "max", "a", "ZHANG_Wei", "m.müller"))
    first = first.replace("'", "").replace("ü", "u")
    local = first + rng.choice(("", ".doe", "+work", "_99", str(rng.randint(1, 9999))))
    host = rng.choice(
        ("example.com", "mail.example.co.uk", "corp.example", "163.com", "ex-ample.org")
    )
    return f"{local}@{host}"


_IBAN_LAYOUTS = {"DE": 18, "GB": 18, "FR": 23, "NL": 14, "ES": 20, "IT": 23, "CH": 17}


def fake_iban(rng: random.Random) -> str:
    country = rng.choice(sorted(_IBAN_LAYOUTS))
    bban = "".join(rng.choice(string.digits) for _ in range(_IBAN_LAYOUTS[country]))
    if country in ("GB", "NL"):
        bban = "".join(rng.choice(string.ascii_uppercase) for _ in range(4)) + bban[4:]
    numeric = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    check = 98 - int(numeric) % 97
    compact = f"{country}{check:02d}{bban}"
    if rng.random() < 0.5:
        return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))
    return compact


def fake_ssn(rng: random.Random) -> str:
    area = rng.choice([n for n in range(1, 900) if n != 666])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def fake_nino(rng: random.Random) -> str:
    first = rng.choice("ABCEGHJKLMNPRSTWXYZ")
    second = rng.choice("ABCEGHJKLMNPRSTWXYZ")
    if first + second in ("BG", "GB", "KN", "NK", "NT", "TN", "ZZ"):
        first, second = "A", "B"
    digits = "".join(rng.choice(string.digits) for _ in range(6))
    suffix = rng.choice("ABCD")
    if rng.random() < 0.5:
        return f"{first}{second} {digits[:2]} {digits[2:4]} {digits[4:]} {suffix}"
    return f"{first}{second}{digits}{suffix}"


_CN_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def fake_cn_id(rng: random.Random) -> str:
    region = rng.choice(("110105", "310104", "440305", "510107", "650102"))
    born = date(1950, 1, 1) + timedelta(days=rng.randint(0, 365 * 60))
    body = f"{region}{born:%Y%m%d}{rng.randint(0, 999):03d}"
    total = sum(int(ch) * w for ch, w in zip(body, _CN_ID_WEIGHTS, strict=True))
    return body + "10X98765432"[total % 11]


#: kind -> generator, for :func:`fake_pii`.
_GENERATORS: dict[str, Callable[[random.Random], str]] = {
    "card": fake_card,
    "phone": fake_phone,
    "email": fake_email,
    "iban": fake_iban,
    "ssn": fake_ssn,
    "national_id": lambda rng: (fake_nino if rng.random() < 0.5 else fake_cn_id)(rng),
}


def fake_pii(rng: random.Random, kind: str | None = None) -> tuple[str, str]:
    """``(kind, value)``: one fake value of ``kind`` (any kind when None)."""
    chosen = kind or rng.choice(sorted(_GENERATORS))
    return chosen, _GENERATORS[chosen](rng)


# --- judging the output --------------------------------------------------------------------

_DIGIT_GROUPS = re.compile(r"[0-9]+")
_PLACEHOLDER = re.compile(r"\[[A-Z_]+_\d+\]")


def _cue_free(value: str) -> str:
    for cue in _CUES:
        if value.startswith(cue):
            return value[len(cue) :]
    return value


def surviving_pieces(value: str, context: str, output: str) -> list[str]:
    """Pieces of ``value`` still readable in ``output`` (empty: it was fully redacted).

    ``context`` is the input text without the value. A piece is the whole value, its
    address part (e-mails) or one of its digit groups (numbers); a digit group survives
    when the output shows it more often than the context alone does, so neighbours that
    happen to share digits do not count.
    """
    written = _cue_free(value)
    shown = _PLACEHOLDER.sub(" ", output)
    pieces: list[str] = []
    if written in shown:
        pieces.append(written)
    if "@" in written:
        local = written.split("@", 1)[0]
        if len(local) >= 4 and local.lower() in shown.lower():
            pieces.append(local)
        return pieces
    out_groups = Counter(_DIGIT_GROUPS.findall(shown))
    ctx_groups = Counter(_DIGIT_GROUPS.findall(_PLACEHOLDER.sub(" ", context)))
    for group in _DIGIT_GROUPS.findall(written):
        if len(group) >= 2 and out_groups[group] > ctx_groups[group]:
            pieces.append(group)
    return pieces


# --- test sets -----------------------------------------------------------------------------

#: Numbers and words that sit next to personal data in real text.
NEIGHBOURS: tuple[str, ...] = (
    "12345", "2026", "#100234", "$12.50", "3", "4111", "07", "1 000", "20", "0958",
    "15/01/2024", "v3.11", "99%", "order 12345", "ref 2024-0042", "x2",
)  # fmt: skip
#: How a neighbour is joined to the value (never a bare "-" or ".": those make one token).
JOINERS: tuple[str, ...] = (" ", ", ", "; ", ": ", " / ", "\n", "\t", " - ", " (", ") ")
#: Text without spaces around it (CJK), glued directly to the value.
CJK: tuple[str, ...] = (
    "卡号",
    "电话",
    "谢谢。",
    "订单12345，",
    "お問い合わせ",
    "연락처",
    "，",
    "）",
)

Case = tuple[str, list[tuple[str, str]]]


def _join(rng: random.Random, left: str, right: str) -> str:
    return left + rng.choice(JOINERS) + right


def adjacent_cases(seed: int = 8, per_kind: int = 24) -> list[Case]:
    """``(text, [(kind, value)])``: each value with a number, word or CJK text beside it.

    Deterministic for a seed. Cards and phones get most of the cases (they are the
    values a neighbouring number can be confused with), including a phone and a card
    side by side both ways round.
    """
    rng = random.Random(seed)
    cases: list[Case] = []
    kinds = ("card", "phone", "card", "phone", "email", "iban", "ssn", "national_id")
    for kind in kinds:
        for _ in range(per_kind):
            _, value = fake_pii(rng, kind)
            number = rng.choice(NEIGHBOURS)
            glue = rng.choice(CJK)
            for text in (
                _join(rng, number, value),
                _join(rng, value, number),
                _join(rng, _join(rng, number, value), rng.choice(NEIGHBOURS)),
                glue + value + rng.choice(CJK),
            ):
                cases.append((text, [(kind, value)]))
    for _ in range(per_kind):
        phone, card = fake_phone(rng, cue=False), fake_card(rng)
        cases.append((_join(rng, phone, card), [("phone", phone), ("card", card)]))
        cases.append((_join(rng, card, phone), [("card", card), ("phone", phone)]))
    return cases


def _is_cjk(ch: str) -> bool:
    return ch > "\u2e7f"  # CJK scripts, kana, hangul and full-width punctuation


_WORDS = ("please", "call", "the", "order", "refund", "and", "账单", "请", "ありがとう", "Kunde")


def fuzz_case(rng: random.Random, max_values: int = 3) -> Case:
    """A random request text: words, numbers, CJK and 1..``max_values`` personal values."""
    values = [fake_pii(rng) for _ in range(rng.randint(1, max_values))]
    pieces: list[str] = []
    for kind, value in values:
        for _ in range(rng.randint(0, 3)):
            pieces.append(rng.choice((*_WORDS, *NEIGHBOURS)))
        pieces.append(value)
        del kind
    pieces.extend(rng.choice(NEIGHBOURS) for _ in range(rng.randint(0, 2)))
    text = ""
    for piece in pieces:
        if not text:
            text = piece
        elif _is_cjk(text[-1]) or _is_cjk(piece[0]):
            text += rng.choice(("", " ")) + piece
        else:
            text = _join(rng, text, piece)
    return text, values


#: Ordinary text with numbers that are not personal data: a redactor changes none of it.
ORDINARY_TEXTS: tuple[str, ...] = (
    "Order #100234 shipped on 2024-01-15 at 10:30:00",
    "order 12345 of 2026, 3 items, total $1,234.56",
    "Invoice INV-2024-000123 for $1,234.56 due 15/01/2024",
    "order number 1234567890123456",
    "tracking 1Z999AA10123456784 and PO 4500012345",
    "Reference 4111111111111112",
    "timestamp 2024-01-15T10:00:00+01:00 and version 3.11.4",
    "IP 192.168.100.200 port 8080; ISBN 978-3-16-148410-0",
    "ISBN 0-306-40615-2 and ISBN-13 978-0-306-40615-7",
    "amount 1 000 000 EUR, score +5, temp +12.5C, year +2024",
    "Ticket ABCD-1234-5678-9012; build 20240115.1234",
    "deploy qwen-plus@dashscope-sg and @mention someone; pkg@1.2.3",
    "SSN-like 000-12-3456 and 666-12-3456 are invalid",
    "DE00 1234 5678 9012 3456 78 is not a real IBAN",
    "an 18 digit id 110105194912310021 with a bad checksum",
    "dates 01.02.2024, 2024/01/15, 15 Jan 2024; times 12:30-13:45",
    "phone-like order 123-456-7890-55 and ORD-415-555-2671",
    "the years 1999 2000 2001 2002 2003 were good",
    "prices: 9.99, 19.99, 199.00 and 1999.99 USD",
    "meeting 09:00-10:30, room 4.12, floor 3",
    "coordinates 51.5074, -0.1278 and 40.7128, -74.0060",
    "the 2026 budget is 12 345 678 EUR (up 4.5%)",
    "batch 20260115 contains 2048 rows in 16 files",
    "error code 0x80070005 at offset 1024",
    "uuid 550e8400-e29b-41d4-a716-446655440000",
    "sha 3f786850e387550fdab836ed7e6dc881de23001b",
    "flight LH 400 departs 13:45 from gate B12",
    "zip codes 10115, 80331 and 20095",
    "Chapter 3.2.1, page 145, lines 10-20",
    "temperatures ranged from -5 to 12 degrees",
    "scored 98 out of 100 in 2025 and 87 in 2024",
    "the model has 70 billion parameters and a 128000 token window",
    "pi is 3.14159265358979 and e is 2.71828182845904",
    "population 1 412 000 000 in 2023",
    "screen 1920x1080 at 144 Hz, 27 inches",
    "account 0001 has 12 open tickets",
    "version 0.12.3 replaces 0.11.9",
    "ratio 16:9, resolution 3840 2160",
    "serial SN-2024-00012345",
    "batch ids 0001 0002 0003 0004",
    "the range is 100-200-300 units",
    "sizes 38, 40, 42 and 44 in stock",
    "price list 0.50 0.75 1.00 1.25",
    "订单号 12345，金额 299.00 元，2024年1月15日发货",
    "第 3 章 第 12 节，共 256 页",
    "注文番号 2024-0115-001、合計 3,980 円",
    "총 12개 상품, 합계 45,000원",
    "the invoice total was 4 111 EUR after a 1 111 EUR discount",
    "build 4111 of release 2026.1",
    "tests: 1024 passed, 3 failed, 12 skipped in 45.67s",
    "between 300 and 400 people attended in 2019",
    "set max_tokens to 4096 and temperature to 0.7",
    "the vote was 52 to 48 with 3 abstentions",
    "dimensions 120 x 80 x 45 cm, weight 12.5 kg",
    "call 3 of 10 took 250 ms",
    "Room 101, Building 7, 221B Baker Street",
    "lot 2024-05-17-0042 expires 2027-05",
    "it costs 1,299.99 or 12 payments of 108.33",
)
