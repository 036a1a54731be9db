"""Count or estimate the tokens of a request for a given model family: one module, one job.

Every count says how it was made (:attr:`TokenCount.method`):

``tokenizer:qwen``
    Exact, for every Qwen family: Qwen's byte-level BPE, read from the vocabulary file
    that the ``dashscope`` dependency bundles (``dashscope/resources/qwen.tiktoken``) with
    tiktoken. It is the tokenizer ``dashscope.get_tokenizer("qwen-plus")`` returns (a test
    checks they agree), built without importing dashscope itself, which costs about
    0.6 s. No network is used.
``estimate:script-aware``
    Everywhere else, and for Qwen while its tokenizer loads or if it is missing: the
    characters of each script (Latin, accented Latin, Cyrillic, Greek, Arabic, Hebrew,
    Devanagari, Bengali, Tamil and other Indic, Thai, Ethiopic, Hangul, Kana, Han …) are
    counted in a few C-speed passes over the UTF-8 bytes and weighted by tokens per
    character calibrated against real tokenizers (``benchmarks/calibrate_tokens.py``
    fits them; ``benchmarks/bench_tokens.py`` reports the error per language). Two
    weight sets: ``qwen`` (fitted to the Qwen tokenizer) and ``generic`` (fitted to
    tiktoken's ``cl100k_base``, whose counts are an upper bound for Llama 3, whose
    vocabulary extends it, and for GPT-4o's ``o200k``), so a budget is not under-counted
    on a host whose tokenizer is unknown.

The four-characters-a-token rule this replaces under-counts Chinese about 2x, Thai and
Korean 2.1x, Japanese 2.3x and Hindi 3.5x (Qwen tokenizer), exactly the text Qwen routes
carry.

A request is counted as the model sees it: each message with its chat-template framing
(``<|im_start|>role … <|im_end|>``), tool calls and tool results in their template
wrappers, the tool schemas with the tool-use preamble a chat template adds, and the
structured-output schema. The framing is Qwen's template; other hosts frame messages
alike (three to five tokens a message), so the same rendering is estimated for them.

Where it sits: at the bottom with ``types`` (it imports nothing from hybridstack), so
``ChatRequest``, the catalog and the router can all use it.

Loading is lazy and off the hot path: ``import hybridstack`` reads no vocabulary. The
first count that wants the Qwen tokenizer starts loading it in a background thread
(0.2-0.5 s, see benchmarks/bench_tokens.py) and is answered by the estimate meanwhile.
tiktoken builds its encoder holding the GIL (about 0.1 s), so load at start-up to keep
that pause off a serving loop: :func:`load` blocks until the tokenizer is ready and
``await`` :func:`aload` loads it in a worker thread. ``HYBRIDSTACK_TOKENIZERS``
= ``background`` (default) | ``sync`` (the first count waits: deterministic scripts and
tests) | ``off`` (estimates only).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol

from hybridstack._token_estimate import WEIGHTS, estimate_text, script_counts

__all__ = [
    "ESTIMATE",
    "QWEN",
    "WEIGHTS",
    "TokenCount",
    "TokenCounter",
    "aload",
    "count_request",
    "count_text",
    "default_counter",
    "estimate_text",
    "load",
    "script_counts",
    "tokenizer_for",
]

#: Method names, as plans and the CLI show them.
ESTIMATE = "estimate:script-aware"
QWEN = "qwen"

# --- exact tokenizers -------------------------------------------------------------------------


class Encoder(Protocol):
    """What an exact tokenizer must offer (tiktoken's ``Encoding`` does)."""

    def encode_ordinary(self, text: str) -> list[int]: ...


#: Qwen's pre-tokenizer pattern (dashscope/tokenizers/qwen_tokenizer.py PAT_STR; the same as
#: Qwen2/2.5/3's tokenizer.json) and the first id after the 151,643 regular tokens.
_QWEN_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
_QWEN_SPECIAL_START = 151643
_QWEN_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")


def qwen_vocab_path() -> str | None:
    """Where the dashscope dependency keeps Qwen's vocabulary, found without importing it."""
    # A plain walk of sys.path: importlib's find_spec would ask every import hook about
    # "dashscope", which watchers (and some tools) take for an import of the SDK.
    for root in sys.path:
        path = os.path.join(root or ".", "dashscope", "resources", "qwen.tiktoken")
        if os.path.isfile(path):
            return path
    return None


class _NormalisingEncoder:
    """dashscope's QwenTokenizer NFC-normalises before encoding; so does this."""

    __slots__ = ("_encoding",)

    def __init__(self, encoding: Any) -> None:
        self._encoding = encoding

    def encode_ordinary(self, text: str) -> list[int]:
        if not text.isascii():
            text = unicodedata.normalize("NFC", text)
        ids: list[int] = self._encoding.encode_ordinary(text)
        return ids


def _read_ranks(path: str) -> dict[bytes, int]:
    """A ``.tiktoken`` file (one ``base64-token rank`` a line) as tiktoken wants it.

    The same result as ``tiktoken.load.load_tiktoken_bpe``, in about half the time.
    """
    import binascii

    with open(path, "rb") as file:
        lines = file.read().splitlines()
    decode = binascii.a2b_base64
    ranks: dict[bytes, int] = {}
    for number, line in enumerate(lines, 1):
        if not line:
            continue
        try:
            token, rank = line.split()
            ranks[decode(token)] = int(rank)
        except (ValueError, binascii.Error):
            raise ValueError(f"{path}, line {number}: expected 'base64-token rank'") from None
    return ranks


def load_qwen_encoder() -> Encoder:
    """Build the exact Qwen tokenizer from the bundled vocabulary (0.2-0.5 s, no network)."""
    path = qwen_vocab_path()
    if path is None:
        raise FileNotFoundError(
            "dashscope/resources/qwen.tiktoken not found: install the dashscope package "
            "(a hybridstack dependency) to count Qwen tokens exactly"
        )
    import tiktoken

    ranks = _read_ranks(path)
    specials = {t: _QWEN_SPECIAL_START + i for i, t in enumerate(_QWEN_SPECIALS)}
    encoding = tiktoken.Encoding(
        "qwen", pat_str=_QWEN_PATTERN, mergeable_ranks=ranks, special_tokens=specials
    )
    return _NormalisingEncoder(encoding)


#: Exact tokenizers that ship offline: name -> loader.
LOADERS: dict[str, Callable[[], Encoder]] = {QWEN: load_qwen_encoder}


def tokenizer_for(family: str, vendor: str = "") -> str | None:
    """The exact tokenizer for a family, or None when only an estimate is possible.

    Qwen families (vendor ``alibaba`` or a name starting with ``qwen``) share one BPE
    vocabulary from Qwen 1 to Qwen 3.
    """
    if vendor.lower() in ("alibaba", "qwen") or family.lower().startswith("qwen"):
        return QWEN
    return None


class TokenCount(NamedTuple):
    """A token count and how it was made (``tokenizer:qwen`` or ``estimate:script-aware``)."""

    tokens: int
    method: str

    @property
    def exact(self) -> bool:
        return self.method.startswith("tokenizer:")


class _Slot:
    __slots__ = ("encoder", "error", "ready", "seconds", "started")

    def __init__(self) -> None:
        self.encoder: Encoder | None = None
        self.error: str | None = None
        self.started = False
        self.ready = threading.Event()
        self.seconds: float | None = None


def _check_mode(mode: str) -> str:
    if mode not in ("background", "sync", "off"):
        from hybridstack.errors import ConfigurationError  # only on this path

        raise ConfigurationError(
            f"token counting mode must be 'background', 'sync' or 'off' (got {mode!r}; "
            "check HYBRIDSTACK_TOKENIZERS)"
        )
    return mode


class TokenCounter:
    """Counts requests for families: exact where a tokenizer loads, else the estimate.

    Args:
        loaders: tokenizer name -> zero-argument loader (default: :data:`LOADERS`).
        mode: ``"background"`` (the first count starts a loading thread and estimates
            meanwhile), ``"sync"`` (the first count waits for the load) or ``"off"``
            (estimates only). Default: ``HYBRIDSTACK_TOKENIZERS``, else background.
    """

    def __init__(
        self,
        loaders: Mapping[str, Callable[[], Encoder]] | None = None,
        *,
        mode: str | None = None,
    ) -> None:
        if mode is not None:
            _check_mode(mode)
        self._mode = mode
        self._loaders = dict(LOADERS if loaders is None else loaders)
        self._slots: dict[str, _Slot] = {}
        self._lock = threading.Lock()

    @property
    def mode(self) -> str:
        """``background``, ``sync`` or ``off``; unset, ``HYBRIDSTACK_TOKENIZERS`` decides
        (read on each use, so setting it after import works)."""
        if self._mode is not None:
            return self._mode
        return _check_mode(
            os.environ.get("HYBRIDSTACK_TOKENIZERS", "").strip().lower() or "background"
        )

    @mode.setter
    def mode(self, value: str | None) -> None:
        self._mode = None if value is None else _check_mode(value)

    # --- loading ------------------------------------------------------------------------

    def _slot(self, name: str) -> _Slot:
        slot = self._slots.get(name)
        if slot is None:
            with self._lock:
                slot = self._slots.setdefault(name, _Slot())
        return slot

    def _run_loader(self, name: str, slot: _Slot) -> None:
        started = time.perf_counter()
        try:
            slot.encoder = self._loaders[name]()
        except Exception as exc:  # a missing file or a broken install: estimates go on
            slot.error = f"{type(exc).__name__}: {exc}"
            import logging  # only on this rare path: importing logging costs milliseconds

            logging.getLogger("hybridstack.tokens").warning(
                "the %s tokenizer could not be loaded (%s); estimating instead", name, exc
            )
        finally:
            slot.seconds = time.perf_counter() - started
            slot.ready.set()

    def _start(self, name: str, slot: _Slot, *, thread: bool) -> None:
        with self._lock:
            if slot.started:
                return
            slot.started = True
        if name not in self._loaders:
            slot.error = f"no loader for tokenizer {name!r}"
            slot.ready.set()
        elif thread:
            threading.Thread(
                target=self._run_loader, args=(name, slot), name=f"hybridstack-{name}-tokenizer",
                daemon=True,
            ).start()  # fmt: skip
        else:
            self._run_loader(name, slot)

    def preload(self, name: str = QWEN) -> None:
        """Start loading ``name`` in a background thread; returns at once."""
        if self.mode != "off":
            self._start(name, self._slot(name), thread=True)

    def load(self, name: str = QWEN, timeout: float | None = None) -> bool:
        """Load ``name`` now (or wait for the load under way); True when it is usable."""
        if self.mode == "off":
            return False
        slot = self._slot(name)
        self._start(name, slot, thread=False)
        slot.ready.wait(timeout)
        return slot.encoder is not None

    async def aload(self, name: str = QWEN) -> bool:
        """:meth:`load` in a worker thread, so the event loop keeps running meanwhile."""
        import asyncio  # here, not at import: hybridstack.types imports this module

        return await asyncio.to_thread(self.load, name)

    def status(self, name: str = QWEN) -> str:
        """``ready``, ``loading``, ``not loaded``, ``off`` or ``unavailable: <why>``."""
        if self.mode == "off":
            return "off"
        slot = self._slots.get(name)
        if slot is None or not slot.started:
            return "not loaded"
        if not slot.ready.is_set():
            return "loading"
        return "ready" if slot.encoder is not None else f"unavailable: {slot.error}"

    def load_seconds(self, name: str = QWEN) -> float | None:
        """How long the load of ``name`` took, once it finished."""
        slot = self._slots.get(name)
        return None if slot is None else slot.seconds

    def encoder(self, name: str) -> Encoder | None:
        """The tokenizer if it is ready; otherwise start loading it (per ``mode``) and None."""
        slot = self._slots.get(name)
        if slot is not None and slot.encoder is not None:
            return slot.encoder
        if self.mode == "off":
            return None
        slot = slot or self._slot(name)
        if not slot.started:
            self._start(name, slot, thread=self.mode == "background")
        return slot.encoder

    # --- counting -----------------------------------------------------------------------

    def count_text(self, text: str, tokenizer: str | None = None) -> TokenCount:
        """Tokens of plain ``text`` with ``tokenizer`` (exact) or the estimate."""
        if tokenizer is not None:
            enc = self.encoder(tokenizer)
            if enc is not None:
                return TokenCount(len(enc.encode_ordinary(text)), f"tokenizer:{tokenizer}")
        profile = "qwen" if tokenizer == QWEN else "generic"
        return TokenCount(estimate_text(text, profile) if text else 0, ESTIMATE)

    def count_request(self, request: Any, tokenizer: str | None = None) -> TokenCount:
        """Prompt tokens of a :class:`~hybridstack.types.ChatRequest` as the model sees it:
        messages in their chat-template framing, tool calls and results, tool schemas
        with the tool-use preamble, and a structured-output schema."""
        text, specials = render_prompt(request)
        counted = self.count_text(text, tokenizer)
        return TokenCount(counted.tokens + specials, counted.method)


# --- rendering a request as the model sees it --------------------------------------------------

# Qwen2.5/3's chat template (tokenizer_config.json): the tool-use preamble it adds to the
# system message, and the wrappers of tool calls and tool results. Other families' templates
# add text of about this size.
_TOOLS_HEAD = (
    "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
)
_TOOLS_TAIL = (
    "\n</tools>\n\nFor each function call, return a json object with function name and "
    "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)
_SCHEMA_HEAD = "\n\nReply with JSON that validates against this schema:\n"


class _Message(Protocol):
    role: str

    @property
    def text(self) -> str: ...

    @property
    def all_tool_calls(self) -> tuple[Any, ...]: ...


def render_prompt(request: Any) -> tuple[str, int]:
    """``(text, special tokens)``: the prompt as a chat template lays it out.

    Each message is ``<|im_start|>role\\n{text}<|im_end|>\\n`` (two special tokens), and
    the reply is primed with ``<|im_start|>assistant\\n`` (one more).
    """
    parts: list[str] = []
    specials = 0
    messages: tuple[_Message, ...] = tuple(request.messages)
    tools = tuple(getattr(request, "tools", ()) or ())
    tools_after_system = bool(tools) and bool(messages) and messages[0].role == "system"
    if tools and not tools_after_system:
        parts += ("system\n", _tools_text(tools).lstrip("\n"), "\n")
        specials += 2
    for index, message in enumerate(messages):
        role = message.role
        parts.append("user\n<tool_response>\n" if role == "tool" else f"{role}\n")
        parts.append(message.text)
        for call in message.all_tool_calls:
            parts += ('\n<tool_call>\n{"name": "', call.name, '", "arguments": ')
            parts += (call.arguments_json, "}\n</tool_call>")
        if role == "tool":
            parts.append("\n</tool_response>")
        if index == 0 and tools_after_system:
            parts.append(_tools_text(tools))
        parts.append("\n")
        specials += 2
    schema = getattr(request, "response_schema", None)
    if schema is not None:
        parts.append(_SCHEMA_HEAD)
        parts.append(json.dumps(schema, ensure_ascii=False))
    parts.append("assistant\n")
    specials += 1
    return "".join(parts), specials


def _tools_text(tools: tuple[Any, ...]) -> str:
    lines = [_TOOLS_HEAD]
    for tool in tools:
        spec = {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.parameters,
            },
        }
        lines.append("\n" + json.dumps(spec, ensure_ascii=False))
    lines.append(_TOOLS_TAIL)
    return "".join(lines)


# --- the process-wide counter ------------------------------------------------------------------

#: The counter the router and ``ChatRequest.estimated_prompt_tokens`` use.
default_counter = TokenCounter()


def count_request(request: Any, tokenizer: str | None = None) -> TokenCount:
    """:meth:`TokenCounter.count_request` on :data:`default_counter`."""
    return default_counter.count_request(request, tokenizer)


def count_text(text: str, tokenizer: str | None = None) -> TokenCount:
    """:meth:`TokenCounter.count_text` on :data:`default_counter`."""
    return default_counter.count_text(text, tokenizer)


def load(name: str = QWEN, timeout: float | None = None) -> bool:
    """Load an exact tokenizer now (blocking); True when it is usable."""
    return default_counter.load(name, timeout)


async def aload(name: str = QWEN) -> bool:
    """Load an exact tokenizer in a worker thread; the event loop keeps running."""
    return await default_counter.aload(name)
