"""What the emulator serves and how it misbehaves: deployments, fault profiles, the
config file, and the counters it keeps. Pure data (pydantic), no server here.
"""

from __future__ import annotations

import ipaddress
import json
import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hybridstack.emulator.wire.common import (
    ErrorKind,
)
from hybridstack.errors import EmulatorConfigError

Protocol = Literal["openai", "anthropic", "dashscope"]

#: Every outcome a request can have; keys of ``EmulatorCounters.by_outcome``.
OUTCOMES: tuple[str, ...] = (
    "ok",
    "429",
    "500",
    "503",
    "529",
    "hang",
    "reset",
    "malformed",
    "stream_cut",
    "refusal",
    "context_length",
    "mid_stream_error",
    "auth",
    "quota",
    "outage",
    "bad_request",
)
#: What :meth:`Emulator.script` accepts (``bad_request`` is the client's doing, not a fault).
SCRIPTABLE: frozenset[str] = frozenset(OUTCOMES) - {"bad_request"}
_STREAM_ONLY = frozenset({"stream_cut", "mid_stream_error"})
_ERROR_KIND: dict[str, ErrorKind] = {
    "429": "rate_limit",
    "500": "server_error",
    "503": "unavailable",
    "529": "overloaded",
    "auth": "auth",
    "quota": "quota",
    "context_length": "context_length",
    "outage": "outage",
}
# Order in which one uniform draw is matched against the cumulative probabilities.
_PROBABILITY_FIELDS: tuple[tuple[str, str], ...] = (
    ("p_reset", "reset"),
    ("p_hang", "hang"),
    ("p_429", "429"),
    ("p_500", "500"),
    ("p_503", "503"),
    ("p_529", "529"),
    ("p_malformed", "malformed"),
    ("p_refusal", "refusal"),
    ("p_stream_cut", "stream_cut"),
    ("p_mid_stream_error", "mid_stream_error"),
)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# =========================================================================== configuration


class FaultProfile(BaseModel):
    """How one deployment misbehaves. Probabilities are exclusive slices of one draw (sum ≤ 1)."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(
        default=0.0, ge=0, description="delay before the response's first byte"
    )
    ttft_ms: float = Field(default=0.0, ge=0, description="further delay before the first token")
    inter_token_ms: float = Field(default=0.0, ge=0, description="delay between streamed tokens")
    p_429: float = Field(default=0.0, ge=0, le=1)
    retry_after_s: float = Field(
        default=1.0, ge=0, description="sent as retry-after and retry-after-ms"
    )
    p_500: float = Field(default=0.0, ge=0, le=1)
    p_503: float = Field(default=0.0, ge=0, le=1)
    p_529: float = Field(default=0.0, ge=0, le=1)
    p_hang: float = Field(default=0.0, ge=0, le=1)
    hang_s: float = Field(
        default=30.0, ge=0, description="how long a hung request waits before closing"
    )
    p_reset: float = Field(default=0.0, ge=0, le=1)
    p_malformed: float = Field(default=0.0, ge=0, le=1)
    p_stream_cut: float = Field(default=0.0, ge=0, le=1)
    stream_cut_mode: Literal["close", "abort"] = Field(
        default="close",
        description="close: the stream ends cleanly with no finish frame; abort: the TCP "
        "connection drops mid-body",
    )
    p_refusal: float = Field(default=0.0, ge=0, le=1)
    p_mid_stream_error: float = Field(default=0.0, ge=0, le=1)
    context_limit_tokens: int | None = Field(default=None, ge=1)
    outage: bool = False
    outage_mode: Literal["503", "reset"] = "503"
    flap_up_s: float = Field(
        default=0.0,
        ge=0,
        description="with flap_down_s: a flapping deployment, up for this long ...",
    )
    flap_down_s: float = Field(
        default=0.0,
        ge=0,
        description="... then down (an outage, see outage_mode) for this long, over and over; "
        "the cycle starts (up) when flapping is set",
    )
    auth_key: str | None = None
    quota_exhausted: bool = False
    error_codes: dict[str, str] = Field(
        default_factory=dict,
        description="the provider error code sent for an error outcome instead of the wire's "
        "own, e.g. {'429': 'Throttling.AllocationQuota'} (Anthropic: the error type)",
    )
    error_messages: dict[str, str] = Field(
        default_factory=dict, description="the error message sent for an error outcome"
    )

    @model_validator(mode="after")
    def _probabilities_fit_one_draw(self) -> FaultProfile:
        total = sum(getattr(self, name) for name, _ in _PROBABILITY_FIELDS)
        if total > 1.0 + 1e-9:
            raise ValueError(f"fault probabilities add up to {total:g}; they must sum to at most 1")
        if (self.flap_up_s > 0) != (self.flap_down_s > 0):
            raise ValueError(
                "flap_up_s and flap_down_s go together: set both (a flapping deployment) or neither"
            )
        for field_name in ("error_codes", "error_messages"):
            unknown = sorted(set(getattr(self, field_name)) - set(_ERROR_KIND))
            if unknown:
                raise ValueError(
                    f"{field_name}: {unknown} are not error outcomes; "
                    f"choose from {sorted(_ERROR_KIND)}"
                )
        return self

    @property
    def flapping(self) -> bool:
        return self.flap_up_s > 0


class EmulatedDeployment(BaseModel):
    """One named deployment the emulator impersonates."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    protocol: Protocol
    model: str | None = Field(default=None, description="model id it answers as (default: name)")
    faults: FaultProfile = Field(default_factory=FaultProfile)
    refusal_style: Literal["native", "dashscope-compat"] = Field(
        default="native",
        description="dashscope-compat: an openai-protocol deployment refuses with 400 "
        "data_inspection_failed like DashScope's compatible mode",
    )
    reply_words: int | None = Field(
        default=None, ge=0, description="override EmulatorConfig.reply_words"
    )
    stream_usage: bool = Field(
        default=True,
        description="False: an openai-protocol stream never ends with a usage frame, even "
        "when asked (stream_options.include_usage), like a llama.cpp server",
    )

    @model_validator(mode="after")
    def _default_model(self) -> EmulatedDeployment:
        if self.model is None:
            self.model = self.name
        return self


class EmulatorConfig(BaseModel):
    """Everything needed to start an :class:`Emulator`."""

    model_config = ConfigDict(extra="forbid")

    deployments: list[EmulatedDeployment] = Field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535, description="0 picks a free port")
    seed: int = 0
    reply_words: int = Field(default=30, ge=0)
    allow_non_loopback: bool = False

    @model_validator(mode="after")
    def _check(self) -> EmulatorConfig:
        names = [d.name for d in self.deployments]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate deployment names: {', '.join(dupes)}")
        if not self.allow_non_loopback and not _is_loopback(self.host):
            raise ValueError(
                f"host {self.host!r} is not a loopback address; set allow_non_loopback=true "
                "to expose the emulator beyond this machine"
            )
        return self

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> EmulatorConfig:
        """Load a ``.toml``, ``.json``, ``.yaml`` or ``.yml`` file.

        Raises :class:`EmulatorConfigError` naming the file and the offending field.
        """
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise EmulatorConfigError(f"{file}: cannot read: {exc.strerror or exc}") from exc
        suffix = file.suffix.lower()
        try:
            if suffix == ".toml":
                data: Any = tomllib.loads(text)
            elif suffix == ".json":
                data = json.loads(text)
            elif suffix in (".yaml", ".yml"):
                import yaml  # deferred: only YAML configs need PyYAML

                data = yaml.safe_load(text)
            else:
                raise EmulatorConfigError(
                    f"{file}: unsupported config type {suffix!r} (use .toml, .json, .yaml)"
                )
        except EmulatorConfigError:
            raise
        except Exception as exc:  # each parser has its own error class
            raise EmulatorConfigError(f"{file}: not valid {suffix[1:].upper()}: {exc}") from exc
        if not isinstance(data, Mapping):
            raise EmulatorConfigError(f"{file}: top level must be a table/object")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{_loc(err['loc'])}: {err['msg']}" for err in exc.errors(include_url=False)
            )
            raise EmulatorConfigError(f"{file}: {problems}") from exc


def _loc(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


# =========================================================================== counters


class AttemptRecord(NamedTuple):
    """One request that carried ``x-hybridstack-call`` / ``x-hybridstack-attempt`` headers."""

    call_id: str | None
    attempt_id: str | None
    outcome: str


class EmulatorCounters(BaseModel):
    """A snapshot of what one deployment has seen since start or the last reset."""

    name: str
    requests: int = 0
    streamed: int = 0
    by_outcome: dict[str, int] = Field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    attempts: list[AttemptRecord] = Field(default_factory=list)

    @property
    def ok(self) -> int:
        return self.by_outcome.get("ok", 0)

    def ok_by_call(self) -> dict[str, int]:
        """How many times each ``x-hybridstack-call`` id was answered with outcome ``ok``."""
        out: dict[str, int] = {}
        for rec in self.attempts:
            if rec.call_id is not None and rec.outcome == "ok":
                out[rec.call_id] = out.get(rec.call_id, 0) + 1
        return out
