"""Simulated replies: deterministic text, a tool call, or JSON that fits a schema, chosen
from the request (``EMULATOR_REPLY:`` / ``EMULATOR_TOOL:`` directives steer it).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from functools import lru_cache
from typing import Any

from hybridstack.emulator.schema_examples import example_for_schema
from hybridstack.emulator.wire.common import (
    ChatRequest,
    Finish,
    ToolCall,
    ToolSpec,
    Turn,
    dumps,
    estimate_tokens,
)

# --------------------------------------------------------------------------- directives

_REPLY_RE = re.compile(r"^[ \t]*EMULATOR_REPLY:(.*)$", re.MULTILINE)
_TOOL_RE = re.compile(r"^[ \t]*EMULATOR_TOOL:[ \t]*([^\s{]*)[ \t]*(\{.*\})?[ \t]*$", re.MULTILINE)
_TOOL_WORD_RE = re.compile(r"\btools?\b", re.IGNORECASE)


def _directive(regex: re.Pattern[str], req: ChatRequest) -> re.Match[str] | None:
    # The last user message wins over the system prompt, so one test can override a
    # scripted default without rewriting the system prompt.
    for text in (req.last_user_text, req.system_text):
        if text and "EMULATOR_" in text:
            match = regex.search(text)
            if match:
                return match
    return None


# --------------------------------------------------------------------------- synthesis

_VOCAB_TEXT = (
    "the system routes each request to a suitable model while keeping data inside its "
    "region and the ledger records every token with its price so that operators can "
    "audit cost latency and quality across providers in one place careful planning "
    "reduces failures because a fallback deployment answers when the primary endpoint "
    "is slow overloaded or refuses the prompt this reply is deterministic text produced "
    "for tests benchmarks and demos without any real model behind it"
)
_VOCAB = tuple(_VOCAB_TEXT.split())


def _seed_of(*parts: str) -> int:
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big")


@lru_cache(maxsize=4096)
def simulated_text(deployment: str, seed_text: str, words: int) -> str:
    """``[simulated reply from NAME] …`` followed by ``words`` hash-chosen words in sentences."""
    rng = random.Random(_seed_of(deployment, seed_text))
    out: list[str] = []
    remaining = max(0, words)
    while remaining > 0:
        n = min(remaining, rng.randint(6, 11))
        sentence = [rng.choice(_VOCAB) for _ in range(n)]
        sentence[0] = sentence[0].capitalize()
        out.append(" ".join(sentence) + ".")
        remaining -= n
    prefix = f"[simulated reply from {deployment}]"
    return f"{prefix} {' '.join(out)}" if out else prefix


_PIECE_RE = re.compile(r"\S+\s*")


def word_pieces(text: str) -> list[str]:
    """Split ``text`` into word-sized stream deltas whose concatenation is exactly ``text``."""
    pieces = _PIECE_RE.findall(text)
    if not pieces:
        return [text] if text else []
    lead = len(text) - len(text.lstrip())
    if lead:
        pieces[0] = text[:lead] + pieces[0]
    return pieces


def fixed_pieces(text: str, size: int = 12) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _choose_tool(req: ChatRequest) -> tuple[ToolSpec, dict[str, Any] | None] | None:
    """The tool to call (and scripted arguments), or None for a text reply."""
    if not req.tools or req.last_is_tool_result or req.tool_choice == "none":
        return None
    by_name = {t.name: t for t in req.tools}
    if req.forced_tool is not None:
        return by_name.get(req.forced_tool, req.tools[0]), None
    directive = _directive(_TOOL_RE, req)
    if directive is not None:
        args: dict[str, Any] | None = None
        if directive.group(2):
            try:
                parsed = json.loads(directive.group(2))
            except ValueError:
                parsed = None
            args = parsed if isinstance(parsed, dict) else None
        return by_name.get(directive.group(1), req.tools[0]), args
    text = req.last_user_text.lower()
    for tool in req.tools:
        if len(tool.name) >= 3 and tool.name.lower() in text:
            return tool, None
    if req.tool_choice == "required" or _TOOL_WORD_RE.search(req.last_user_text):
        return req.tools[0], None
    return None


def synthesize(req: ChatRequest, deployment: str, reply_words: int) -> Turn:
    """The deterministic assistant turn for ``req`` on deployment ``deployment``."""
    input_tokens = req.input_tokens
    seed_text = req.last_user_text + "\x00" + req.tool_result_text
    chosen = _choose_tool(req)
    if chosen is not None:
        tool, scripted_args = chosen
        args = scripted_args if scripted_args is not None else example_for_schema(tool.parameters)
        arguments = dumps(args)
        call = ToolCall(
            id_hex=hashlib.sha256(
                f"{deployment}\x1f{seed_text}\x1f{tool.name}".encode()
            ).hexdigest()[:24],
            name=tool.name,
            arguments=arguments,
        )
        return Turn(
            text=None,
            tool_call=call,
            finish="tool_calls",
            input_tokens=input_tokens,
            output_tokens=estimate_tokens(len(tool.name) + len(arguments)),
            pieces=fixed_pieces(arguments),
        )

    directive = _directive(_REPLY_RE, req)
    if directive is not None:
        text = directive.group(1).strip()
    elif req.json_schema is not None:
        text = dumps(example_for_schema(req.json_schema))
    elif req.json_object:
        text = dumps({"result": simulated_text(deployment, seed_text, reply_words)})
    else:
        text = simulated_text(deployment, seed_text, reply_words)

    finish: Finish = "stop"
    output_tokens = estimate_tokens(len(text))
    if req.max_tokens is not None and 0 < req.max_tokens < output_tokens:
        # Same truncation a real model shows: cut at the budget, finish "length".
        text = text[: req.max_tokens * 4]
        output_tokens = req.max_tokens
        finish = "length"
    return Turn(
        text=text,
        tool_call=None,
        finish=finish,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        pieces=word_pieces(text),
    )


def refusal_turn(req: ChatRequest) -> Turn:
    """A turn the provider refused to produce: no content, no output tokens."""
    return Turn(
        text=None,
        tool_call=None,
        finish="refusal",
        input_tokens=req.input_tokens,
        output_tokens=0,
        pieces=[],
    )
