"""The run-time state of one emulated deployment: its wire, fault thresholds, script,
flapping clock and counters (guarded by the emulator's lock).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

from hybridstack.emulator.config import (
    _PROBABILITY_FIELDS,
    OUTCOMES,
    AttemptRecord,
    EmulatedDeployment,
    FaultProfile,
)
from hybridstack.emulator.wire.anthropic import AnthropicWire
from hybridstack.emulator.wire.common import (
    WireAdapter,
)
from hybridstack.emulator.wire.dashscope import DashScopeWire
from hybridstack.emulator.wire.openai import OpenAIWire

_WIRES: dict[str, WireAdapter] = {
    "openai": OpenAIWire(),
    "anthropic": AnthropicWire(),
    "dashscope": DashScopeWire(),
}
_MESSAGE_PREFIX = {"openai": "chatcmpl-emu", "anthropic": "msg_emu", "dashscope": "emu-"}
_MAX_BODY = 64 * 1024 * 1024  # big prompts are how context_limit_tokens gets exercised


def _quote_name(name: str) -> str:
    return quote(name, safe="@-._~")


@dataclass(slots=True)
class _Tally:
    """The mutable counters behind :class:`EmulatorCounters` (plain ints: hot path)."""

    requests: int = 0
    streamed: int = 0
    by_outcome: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    input_tokens: int = 0
    output_tokens: int = 0
    attempts: list[AttemptRecord] = field(default_factory=list)
    #: The headers of the latest requests (credentials left out), newest last.
    headers: deque[dict[str, str]] = field(default_factory=lambda: deque(maxlen=_KEPT_HEADERS))


#: How many requests' headers each deployment keeps for ``Emulator.received_headers``.
_KEPT_HEADERS = 256
#: Never kept: the credentials a client sends.
_SECRET_HEADERS = frozenset({"authorization", "x-api-key", "proxy-authorization", "cookie"})


class _Deployment:
    """Run-time state of one deployment; every field is guarded by ``Emulator._lock``."""

    __slots__ = (
        "any_probability",
        "faults",
        "flap_origin",
        "model",
        "name",
        "quoted",
        "refusal_style",
        "reply_words",
        "rng",
        "script",
        "spec",
        "tally",
        "thresholds",
        "wire",
    )

    def __init__(self, spec: EmulatedDeployment, seed: int, reply_words: int, now: float) -> None:
        self.spec = spec
        self.name = spec.name
        self.quoted = _quote_name(spec.name)
        self.model = spec.model or spec.name
        self.wire = _WIRES[spec.protocol]
        self.refusal_style = spec.refusal_style
        self.reply_words = spec.reply_words if spec.reply_words is not None else reply_words
        # A string seed hashes with SHA-512, so the sequence is stable across processes.
        self.rng = random.Random(f"{seed}:{spec.name}")
        self.script: deque[str] = deque()
        self.tally = _Tally()
        self.thresholds: tuple[tuple[float, str], ...] = ()
        self.any_probability = False
        self.faults = spec.faults
        self.flap_origin = now
        self.apply_faults(spec.faults, now)

    def apply_faults(self, faults: FaultProfile, now: float) -> None:
        if faults.flapping and (
            faults.flap_up_s != self.faults.flap_up_s
            or faults.flap_down_s != self.faults.flap_down_s
            or not self.faults.flapping
        ):
            self.flap_origin = now  # a new flapping cycle starts up, now
        self.faults = faults
        cumulative = 0.0
        thresholds: list[tuple[float, str]] = []
        for fname, outcome in _PROBABILITY_FIELDS:
            p = getattr(faults, fname)
            if p > 0:
                cumulative += p
                thresholds.append((cumulative, outcome))
        self.thresholds = tuple(thresholds)
        self.any_probability = bool(thresholds)

    def flapped_down(self, now: float) -> bool:
        """True while a flapping deployment is in the down part of its cycle."""
        f = self.faults
        if not f.flapping:
            return False
        return (now - self.flap_origin) % (f.flap_up_s + f.flap_down_s) >= f.flap_up_s


def _api_key(headers: Mapping[str, str]) -> str | None:
    key = headers.get("x-api-key")
    if key is not None:
        return key
    auth = headers.get("Authorization")
    if auth is None:
        return None
    return auth[7:] if auth[:7].lower() == "bearer " else auth
