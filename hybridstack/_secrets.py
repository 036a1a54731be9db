"""Keeping API keys out of every text hybridstack shows, stores or logs.

One mechanism, applied once where foreign text comes in: provider error translation
(the provider's message and the SDK exception chain), the ledger's ``error_message``
and log records of the hybridstack and SDK loggers, scrubbed as they are made
(:func:`install_log_filter`; :class:`SecretFilter` does the work and can also be put on
a handler). It hides:

* **the configured keys**, which every provider registers when it is built
  (:func:`register_secret`): the whole value, and every piece of it — pieces of 8 or more
  characters wherever they stand, pieces of 4 to 7 characters when they stand alone or
  beside a mask (``sk-proj-****…abcd``, ``sk-abc1•••••wxyz``);
* **key shapes**, for keys hybridstack was never given: ``sk-…`` and other vendor
  prefixes, masked echoes (``sk-PMafP****E873``), ``Bearer …``, ``x-api-key: …`` and
  ``api_key=…``.

Everything hidden becomes ``***``. A key's public prefix (``sk-proj-``, ``sk-ant-api03-``,
``sk-``) is not key material: it may stay, the rest of the key never does.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

__all__ = [
    "MASK",
    "SecretFilter",
    "SecretMapping",
    "contains_secret",
    "install_log_filter",
    "register_secret",
    "scrub",
    "scrub_exception",
    "scrub_secrets",
]

MASK = "***"

#: Public prefixes, longest first: the part of a key that is the same for everyone.
PUBLIC_PREFIXES = (
    "sk-ant-admin01-", "sk-ant-api03-", "sk-svcacct-", "sk-or-v1-", "sk-admin-", "sk-proj-",
    "sk-ant-", "nvapi-", "pplx-", "gsk_", "xai-", "sk-", "hf_", "r8_", "fw_",
)  # fmt: skip

#: Shortest piece of a known key that is hidden when it stands alone or beside a mask.
MIN_PIECE = 4
#: Shortest piece of a known key that is hidden wherever it stands, glued or not.
LONG_PIECE = 8

_KEY_CHARS = r"A-Za-z0-9_\-"
_MASK_RUN = r"(?:\*+|•+|…|·{2,}|\.{3,})"
#: (words one of which the text must hold, pattern, replacement): the words are a cheap
#: test that skips the regex for most texts.
_PATTERNS: tuple[tuple[tuple[str, ...], re.Pattern[str], str], ...] = (
    # Authorization headers and bearer tokens.
    # (A token has a digit: "bearer authentication" in prose is not one.)
    (
        ("bearer", "basic", "token"),
        re.compile(r"(?i)(\b(?:bearer|basic|token)\s+)(?=\S*[0-9])[A-Za-z0-9._~+/=\-]{8,}"),
        rf"\1{MASK}",
    ),
    # Header / keyword values: x-api-key: …, api_key=…, "Authorization": "…".
    (
        ("key", "authorization", "token"),
        re.compile(
            r"(?i)(\b(?:x-api-key|api[-_]?key|x-goog-api-key|authorization|access[-_]?token"
            r"|secret[-_]?key|dashscope[-_]api[-_]key)[\"']?\s*[:=]\s*[\"']?)"
            r"(?!bearer\b)(?!\*\*\*)[^\s\"',;}\]]{8,}"
        ),
        rf"\1{MASK}",
    ),
    # Vendor-prefixed keys, whole or masked ("sk-PMafP****E873", "sk-proj-abc…wxyz").
    (
        (
            "sk-",
            "sk_",
            "rk-",
            "rk_",
            "pk-",
            "pk_",
            "gsk",
            "xai",
            "pplx",
            "nvapi",
            "hf_",
            "r8_",
            "fw_",
        ),
        re.compile(
            rf"(?<![A-Za-z0-9])(?:sk|rk|pk|gsk|xai|pplx|nvapi|hf|r8|fw)[-_]"
            rf"(?:[{_KEY_CHARS}]*{_MASK_RUN}[{_KEY_CHARS}]*(?:{_MASK_RUN}[{_KEY_CHARS}]*)*"
            rf"|[{_KEY_CHARS}]{{16,}})"
        ),
        MASK,
    ),
    # A masked echo without a prefix: head, three or more mask characters, tail.
    (
        ("***", "•••"),
        re.compile(r"(?<![A-Za-z0-9*•])[A-Za-z0-9]{2,}(?:\*{3,}|•{3,})[A-Za-z0-9]{2,}"),
        MASK,
    ),
)


class _Registry:
    """The keys this process was given, and a finder for the pieces of them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values: tuple[str, ...] = ()  # longest first
        self.materials: tuple[str, ...] = ()
        #: every 4-character piece of every key's material: where a piece may start
        self.quads: frozenset[str] = frozenset()

    def add(self, value: str) -> None:
        if len(value) < MIN_PIECE:
            return
        with self._lock:
            if value in self.values:
                return
            material = _material(value)
            self.values = tuple(sorted({*self.values, value}, key=len, reverse=True))
            # Pieces only of keys that look random: a readable placeholder such as
            # "not-needed" or "sk-hybridstack-offline-emulator" is hidden whole, but its
            # words ("offline", "needed") are words, not key material.
            if len(material) >= MIN_PIECE and _looks_random(material):
                self.materials = (*self.materials, material)
                self.quads = self.quads | _quads(material)


def _quads(text: str) -> frozenset[str]:
    return frozenset(text[i : i + MIN_PIECE] for i in range(len(text) - MIN_PIECE + 1))


_REGISTRY = _Registry()


def _looks_random(material: str) -> bool:
    """Letters and digits mixed, as in every generated key (a 40-character random key
    without a digit has odds of about 1 in 1,300)."""
    return any(ch.isdigit() for ch in material) and any(ch.isalpha() for ch in material)


def _material(value: str) -> str:
    for prefix in PUBLIC_PREFIXES:
        if value.startswith(prefix) and len(value) > len(prefix) + MIN_PIECE:
            return value[len(prefix) :]
    return value


def register_secret(value: str | None) -> None:
    """Remember a key so that it, and any piece of it, is hidden from now on."""
    if value:
        _REGISTRY.add(value)


class SecretMapping(Mapping[str, str]):
    """Keys by name (``{"OPENAI_API_KEY": "sk-…"}``) that show only their names.

    Its repr lists the names, it refuses to be pickled, and every value is registered
    for scrubbing as soon as the mapping is made.
    """

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values = dict(values or {})
        for value in self._values.values():
            register_secret(value)

    def __getitem__(self, name: str) -> str:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"SecretMapping(names={sorted(self._values)!r})"

    def __reduce_ex__(self, protocol: object) -> tuple[object, ...]:
        from hybridstack.errors import SecretPickleError

        raise SecretPickleError(
            f"the API keys for {sorted(self._values)}",
            "Pass them again where they are used, or use environment variables.",
        )


_MASK_CHARS = "*•…·."


def _word_like(piece: str) -> bool:
    """A word or a number ("offline", "LEDGER", "2026", "hybridstack-bench"): text any
    key may happen to contain, so it is hidden only where it stands like a key."""
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", piece) if p]
    return all(p.isdigit() or (p.isalpha() and (p.islower() or p.isupper())) for p in parts)


def _piece_hidden(text: str, start: int, end: int) -> bool:
    """Whether a piece of a registered key is hidden where it stands.

    8 or more characters of key material (letters and digits mixed) are hidden wherever
    they stand. A shorter piece, or one that reads as a word or a number, must not be
    glued to other letters or digits (then it is part of another word or id), and must
    sit beside a mask or a key prefix ("****abcd", "sk-ab12…") or look like key material
    itself ("ending in 9b1c"). So "2026" or "offline" in ordinary text stay, even when a
    key happens to contain them.
    """
    piece = text[start:end]
    word = _word_like(piece)
    if len(piece) >= LONG_PIECE and not word:
        return True
    before = text[start - 1] if start else " "
    after = text[end] if end < len(text) else " "
    if (before.isascii() and before.isalnum()) or (after.isascii() and after.isalnum()):
        return False
    if before in _MASK_CHARS or after in _MASK_CHARS:
        return True
    if any(text[:start].endswith(prefix) for prefix in PUBLIC_PREFIXES):
        return True
    return not word and _looks_random(piece)


def _scrub_known(text: str, values: Iterable[str], materials: tuple[str, ...]) -> str:
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    quads, known = _REGISTRY.quads, _REGISTRY.materials
    extra = tuple(m for m in materials if m not in known)
    if extra:  # a key passed for this call that no provider registered (rare)
        known = (*known, *extra)
        quads = quads.union(*map(_quads, extra))
    # The common case, a text with no piece of any key, costs one set intersection.
    if quads.isdisjoint(_quads(text)):
        return text
    spans: list[tuple[int, int]] = []
    i, n = 0, len(text)
    while i <= n - MIN_PIECE:
        if text[i : i + MIN_PIECE] not in quads:
            i += 1
            continue
        # The longest piece of some key that starts here.
        end = i + MIN_PIECE
        while end < n and any(text[i : end + 1] in m for m in known):
            end += 1
        if _piece_hidden(text, i, end):
            spans.append((i, end))
            i = end
        else:
            i += 1
    for start, end in reversed(spans):
        text = text[:start] + MASK + text[end:]
    return text


def scrub_secrets(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` without any key: the registered ones, ``secrets``, and key shapes."""
    if not text:
        return text
    extra = [s for s in secrets if s and len(s) >= MIN_PIECE]
    values = sorted({*_REGISTRY.values, *extra}, key=len, reverse=True)
    materials = tuple(m for m in map(_material, extra) if len(m) >= MIN_PIECE and _looks_random(m))
    text = _scrub_known(text, values, materials)
    lowered = text.lower()
    for words, pattern, replacement in _PATTERNS:
        if any(word in lowered for word in words):
            text = pattern.sub(replacement, text)
            lowered = text.lower()
    return text


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` without any API key: ``secrets``, every key hybridstack was given, and
    anything shaped like a key (whole, by a head or tail, or masked with a few real
    characters); each becomes ``***``. Public as :func:`hybridstack.scrub`.
    """
    return scrub_secrets(text, secrets)


def contains_secret(text: str, secret: str | None) -> bool:
    """Whether ``text`` holds ``secret`` or a fragment :func:`scrub` would hide."""
    return bool(secret) and scrub(text, (secret,)) != text


# --- exceptions ---------------------------------------------------------------------------

#: Request headers that carry a key (httpx and aiohttp requests kept on SDK exceptions).
_KEY_HEADERS = ("authorization", "x-api-key", "api-key", "x-goog-api-key", "proxy-authorization")


def _scrub_value(value: Any, secrets: Iterable[str | None]) -> Any:
    if isinstance(value, str):
        return scrub_secrets(value, secrets)
    if isinstance(value, bytes):
        text = value.decode("utf-8", "replace")
        clean = scrub_secrets(text, secrets)
        return value if clean == text else clean.encode()
    if isinstance(value, Mapping):
        return {k: _scrub_value(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub_value(v, secrets) for v in value)
    return value


def _scrub_body(content: bytes, secrets: Iterable[str | None]) -> bytes:
    """A response body: JSON is scrubbed value by value (escapes like \\u2026 decoded)."""
    try:
        parsed = json.loads(content)
    except ValueError:
        scrubbed: bytes = _scrub_value(content, secrets)
        return scrubbed
    clean = _scrub_value(parsed, secrets)
    return content if clean == parsed else json.dumps(clean, ensure_ascii=False).encode()


def _scrub_headers(holder: Any) -> None:
    headers = getattr(holder, "headers", None)
    if headers is None:
        return
    try:
        for name in _KEY_HEADERS:
            if name in headers:
                headers[name] = MASK
    except TypeError:  # a read-only view (aiohttp's RequestInfo): nothing to overwrite
        pass


def _scrub_request_info(error: BaseException) -> None:
    """aiohttp's ``ClientResponseError.request_info`` is immutable: swap in a clean copy."""
    info = _try_get(error, "request_info")
    headers = getattr(info, "headers", None)
    if headers is None or not hasattr(info, "_replace"):
        return
    if not any(name in headers for name in _KEY_HEADERS):
        return
    from multidict import CIMultiDict, CIMultiDictProxy

    clean = CIMultiDict(headers)
    for name in _KEY_HEADERS:
        if name in clean:
            clean[name] = MASK
    try:
        error.request_info = info._replace(headers=CIMultiDictProxy(clean))  # type: ignore[attr-defined]
    except AttributeError:
        pass


def _try_get(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name, None)
    except Exception:  # httpx raises RuntimeError for a request that was never set
        return None


def scrub_exception(exc: BaseException, secrets: Iterable[str | None] = ()) -> None:
    """Remove keys from an exception and everything chained to it, in place.

    Covers ``args``, the SDKs' ``message`` / ``body`` fields, ``__notes__``, the request
    headers and response body an SDK exception keeps, ``__cause__`` / ``__context__``
    and the members of exception groups.
    """
    secrets = tuple(secrets)
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        clean_args = _scrub_value(error.args, secrets)
        if clean_args != error.args:
            error.args = clean_args
        # Every text the exception keeps (json's JSONDecodeError keeps the whole body in
        # ``doc``; the SDKs keep ``message`` and ``body``), plus the SDKs' properties.
        names = {*getattr(error, "__dict__", {}), "message", "api_message", "body"}
        for attr in sorted(names):
            value = _try_get(error, attr)
            if isinstance(value, str | bytes | Mapping | list | tuple):
                clean = _scrub_value(value, secrets)
                if clean != value:
                    try:
                        setattr(error, attr, clean)
                    except (AttributeError, TypeError):  # a read-only property
                        pass
        notes = getattr(error, "__notes__", None)
        if isinstance(notes, list):
            notes[:] = [_scrub_value(n, secrets) for n in notes]
        request = _try_get(error, "request")
        if request is not None:
            _scrub_headers(request)
        _scrub_request_info(error)
        response = _try_get(error, "response")
        if response is not None:
            _scrub_headers(_try_get(response, "request"))
            content = getattr(response, "_content", None)  # httpx keeps the read body here
            if isinstance(content, bytes):
                response._content = _scrub_body(content, secrets)
        pending += [error.__cause__, error.__context__, *getattr(error, "exceptions", ())]


# --- logging ------------------------------------------------------------------------------

#: Loggers that may carry foreign text: hybridstack's own and the SDKs' (with children).
LOGGER_ROOTS = (
    "hybridstack", "openai", "anthropic", "dashscope", "httpx", "httpx2", "httpcore",
    "httpcore2", "aiohttp",
)  # fmt: skip


class SecretFilter(logging.Filter):
    """Scrubs each record's message, arguments, traceback and stack text in place.

    Never drops a record. :func:`install_log_filter` applies it to the hybridstack and
    SDK loggers; add it to a handler of your own to cover other loggers.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler to report
            return True
        clean = scrub_secrets(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            scrub_exception(record.exc_info[1])
            record.exc_text = scrub_secrets(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = scrub_secrets(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub_secrets(record.stack_info)
        return True


_FILTER = SecretFilter()
_install_lock = threading.Lock()
_installed = False


def _is_watched(name: str | None) -> bool:
    return name is not None and name.split(".", 1)[0] in LOGGER_ROOTS


def install_log_filter() -> None:
    """Scrub every record of the hybridstack and SDK loggers as it is made.

    A logger's filter sees only records logged to that very logger, and the SDKs make
    child loggers as they go ("httpcore.http11" on the first request), so the scrub
    runs in the log-record factory instead: it wraps whatever factory is in place and
    touches only records whose logger name starts with one of :data:`LOGGER_ROOTS`.
    Idempotent; the first provider built calls it.
    """
    global _installed
    with _install_lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            if _is_watched(record.name):
                _FILTER.filter(record)
            return record

        logging.setLogRecordFactory(factory)
        _installed = True
