"""Realistic fake API keys and a scanner for any 4-character fragment of one.

The keys look like real ones (``sk-proj-`` + 64 characters, ``sk-ant-api03-…``, DashScope's
``sk-`` + 32 hex digits, keys with no prefix) and are drawn from a seeded generator. Their
*material* (the key minus its public prefix) is built so that every 4-character window
holds an upper-case letter and a digit (hex keys: a letter a-f and a digit): such a
window does not turn up in English, code, timestamps or counters by chance, so finding
one in a text means the key leaked, not a coincidence.

:func:`find_fragments` looks for every 4-character window of each key's material in each
text. For hex keys, a window inside a longer run of hex digits that is not itself part of
the key (a uuid, a request id, a hash) is another id and not counted.
"""

from __future__ import annotations

import pickle
import random
import re
import string
import traceback
from collections.abc import Iterable, Mapping

from hybridstack.errors import HybridStackError

__all__ = [
    "KEY_KINDS",
    "exception_texts",
    "find_fragments",
    "key_material",
    "realistic_key",
    "realistic_keys",
]

_PREFIXES = {
    "openai-project": "sk-proj-",
    "openai-legacy": "sk-",
    "anthropic": "sk-ant-api03-",
    "dashscope": "sk-",
    "bare": "",
}
KEY_KINDS = tuple(_PREFIXES)
_ALNUM = string.ascii_letters + string.digits


def _material(rng: random.Random, length: int, hexadecimal: bool) -> str:
    out = []
    for i in range(length):
        if hexadecimal:
            pool = "abcdef" if i % 4 == 1 else string.digits if i % 4 == 3 else "0123456789abcdef"
        else:
            pool = string.ascii_uppercase if i % 4 == 0 else string.digits if i % 4 == 2 else _ALNUM
        out.append(rng.choice(pool))
    return "".join(out)


def realistic_key(rng: random.Random, kind: str) -> str:
    """A fake key of ``kind`` (one of :data:`KEY_KINDS`)."""
    if kind == "dashscope":
        return "sk-" + _material(rng, 32, True)
    if kind == "anthropic":
        # sk-ant-api03-<91>-<8>: the dash sits where every window still has U and D.
        return "sk-ant-api03-" + _material(rng, 91, False) + "-" + _material(rng, 8, False)
    length = {"openai-project": 64, "openai-legacy": 48, "bare": 40}[kind]
    return _PREFIXES[kind] + _material(rng, length, False)


def realistic_keys(seed: int, names: Iterable[str]) -> dict[str, str]:
    """One key per name, cycling through the kinds; the same seed gives the same keys."""
    rng = random.Random(seed)
    return {name: realistic_key(rng, KEY_KINDS[i % len(KEY_KINDS)]) for i, name in enumerate(names)}


def key_material(key: str) -> str:
    for prefix in sorted(_PREFIXES.values(), key=len, reverse=True):
        if prefix and key.startswith(prefix):
            return key[len(prefix) :]
    return key


_HEX_RUN = re.compile(r"[0-9a-f]+")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _is_hex(material: str) -> bool:
    return all(ch in "0123456789abcdef" for ch in material)


def _other_id(text: str, at: int, material: str) -> bool:
    """The hit lies in a hex id of its own (a longer hex run not from the key, a uuid)."""
    for match in _UUID.finditer(text, max(0, at - 36), at + 40):
        if match.start() <= at < match.end():
            return True
    start = at
    while start > 0 and text[start - 1] in "0123456789abcdef":
        start -= 1
    end = at
    while end < len(text) and text[end] in "0123456789abcdef":
        end += 1
    run = text[start:end]
    return len(run) >= 8 and run not in material


def find_fragments(texts: Mapping[str, str], keys: Iterable[str], size: int = 4) -> list[str]:
    """Where any ``size``-character piece of any key's material appears, with context."""
    leaks: list[str] = []
    for key in keys:
        material = key_material(key)
        hexadecimal = _is_hex(material)
        windows = {material[i : i + size] for i in range(len(material) - size + 1)}
        for label, text in texts.items():
            for window in windows:
                at = text.find(window)
                while at != -1:
                    if not (hexadecimal and _other_id(text, at, material)):
                        context = text[max(0, at - 50) : at + size + 30]
                        leaks.append(f"{label}: {window!r} in …{context!r}…")
                        break
                    at = text.find(window, at + 1)
                else:
                    continue
                break  # one report per key and text is enough
    return leaks


def exception_texts(error: BaseException) -> list[str]:
    """Everything an exception shows, for it, its chain and its group members: str, repr,
    the traceback, ``__notes__``, its attributes, the request / response / body an SDK
    exception keeps (headers and the read body too) and, for hybridstack's own, a pickle.
    """
    texts = ["".join(traceback.format_exception(error))]
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        e = pending.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        texts += [str(e), repr(e), repr(getattr(e, "__notes__", None))]
        texts.append(repr(getattr(e, "__dict__", {})))
        for attr in ("body", "response", "request"):
            value = getattr(e, attr, None)
            if value is not None:
                texts.append(repr(value))
                texts.append(repr(getattr(value, "headers", None)))
                content = getattr(value, "_content", None)
                if isinstance(content, bytes):
                    texts.append(content.decode("latin-1"))
        if isinstance(e, HybridStackError):
            texts.append(pickle.dumps(e).decode("latin-1"))
        pending += [e.__cause__, e.__context__, *getattr(e, "exceptions", ())]
    return texts
