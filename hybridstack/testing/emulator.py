"""A loopback HTTP server that impersonates many LLM deployments, with injectable faults.

One :class:`Emulator` serves any number of named deployments, each speaking one wire
protocol (``openai`` chat completions, ``anthropic`` messages or ``dashscope`` native
generation) under its own path prefix ``/d/{quoted name}``, so the real provider SDKs
can be pointed at it with :meth:`Emulator.base_url`. Replies are deterministic
simulated text (or tool calls, or JSON matching a requested schema); faults (rate
limits, 5xx, hangs, resets, malformed bodies, cut streams, refusals, context limits,
outages, bad keys, exhausted quota) are drawn from a seeded RNG or scripted exactly.

Run it in-process (``async with Emulator(cfg)`` or, from sync code, ``with
Emulator(cfg)`` on a background thread) or as a CLI::

    python -m hybridstack.testing.emulator --config emulator.toml [--port 8400]

Only aiohttp, pydantic and the standard library are imported: the emulator is a server
and never needs a provider SDK.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import itertools
import json
import math
import os
import random
import signal
import socket
import struct
import sys
import threading
import time
import tomllib
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, NamedTuple
from urllib.parse import quote, unquote

from aiohttp import web
from aiohttp.http import RawRequestMessage
from aiohttp.streams import StreamReader
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hybridstack.testing._wire_anthropic import AnthropicWire
from hybridstack.testing._wire_common import (
    BadRequest,
    ChatRequest,
    ErrorInfo,
    ErrorKind,
    RequestContext,
    Turn,
    WireAdapter,
    dumps,
    refusal_turn,
    synthesize,
)
from hybridstack.testing._wire_dashscope import DashScopeWire
from hybridstack.testing._wire_openai import OpenAIWire

__all__ = [
    "OUTCOMES",
    "AttemptRecord",
    "EmulatedDeployment",
    "Emulator",
    "EmulatorConfig",
    "EmulatorConfigError",
    "EmulatorCounters",
    "FaultProfile",
    "main",
]

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
_WIRES: dict[str, WireAdapter] = {
    "openai": OpenAIWire(),
    "anthropic": AnthropicWire(),
    "dashscope": DashScopeWire(),
}
_MESSAGE_PREFIX = {"openai": "chatcmpl-emu", "anthropic": "msg_emu", "dashscope": "emu-"}
_MAX_BODY = 64 * 1024 * 1024  # big prompts are how context_limit_tokens gets exercised


def _quote_name(name: str) -> str:
    return quote(name, safe="@-._~")


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


class EmulatorConfigError(ValueError):
    """A config file could not be read; the message names the file and the field."""


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


#: How many requests' headers each deployment keeps for :meth:`Emulator.received_headers`.
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


# =========================================================================== the server


class Emulator:
    """Serves every configured deployment on one loopback port.

    ``async with Emulator(cfg) as emu`` runs it on the current event loop;
    ``with Emulator(cfg) as emu`` runs it on a background thread with its own loop.
    All control methods (faults, scripts, counters, deployments) are thread-safe.
    ``clock`` (monotonic seconds) times flapping deployments; tests may drive it.
    """

    def __init__(
        self,
        config: EmulatorConfig | Iterable[EmulatedDeployment] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if config is None:
            config = EmulatorConfig()
        elif not isinstance(config, EmulatorConfig):
            config = EmulatorConfig(deployments=list(config))
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._by_name: dict[str, _Deployment] = {}
        self._by_quoted: dict[str, _Deployment] = {}
        for spec in config.deployments:
            self._insert(spec)
        self._runner: web.ServerRunner | None = None
        self._port: int | None = None
        self._stopping: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._seq = itertools.count(1)
        self._run_id = f"{os.getpid() % 10000:04d}{int(time.time()) % 100000:05d}"

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        return self._runner is not None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the emulator is not running; start it first")
        return self._port

    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:8400``."""
        host = self.config.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    async def start(self) -> Emulator:
        """Bind and start serving on the running event loop."""
        if self._runner is not None:
            raise RuntimeError("the emulator is already running")
        host = self.config.host
        if not self.config.allow_non_loopback and not _is_loopback(host):
            raise ValueError(f"refusing to bind non-loopback host {host!r}")
        loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()

        def make_request(
            message: RawRequestMessage,
            payload: StreamReader,
            protocol: Any,
            writer: Any,
            task: asyncio.Task[None],
        ) -> web.BaseRequest:
            return web.BaseRequest(
                message, payload, protocol, writer, task, loop, client_max_size=_MAX_BODY
            )

        server = web.Server(self._handle, request_factory=make_request, access_log=None)
        runner = web.ServerRunner(server, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, self.config.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._loop = loop
        self._port = runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        """Stop serving; hung requests are released and open connections closed."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        if self._stopping is not None:
            self._stopping.set()
        await runner.cleanup()
        self._port = None

    async def __aenter__(self) -> Emulator:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def __enter__(self) -> Emulator:
        """Run on a daemon thread with its own event loop (for sync code and notebooks)."""
        if self._runner is not None or self._thread is not None:
            raise RuntimeError("the emulator is already running")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(
            target=self._thread_main, args=(loop,), name="hybridstack-emulator", daemon=True
        )
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.start(), loop).result(timeout=30)
        except BaseException:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            raise
        self._thread = thread
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop a server started with ``with Emulator(...)`` and join its thread."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout=30)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
            self._thread = None

    @staticmethod
    def _thread_main(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    # ------------------------------------------------------------------ deployments

    def _insert(self, spec: EmulatedDeployment) -> _Deployment:
        if spec.name in self._by_name:
            raise ValueError(f"deployment {spec.name!r} already exists")
        dep = _Deployment(spec, self.config.seed, self.config.reply_words, self._clock())
        self._by_name[spec.name] = dep
        self._by_quoted[dep.quoted] = dep
        return dep

    def add_deployment(
        self, deployment: EmulatedDeployment | None = None, /, **fields: Any
    ) -> EmulatedDeployment:
        """Add a deployment (also while running): pass a model or its fields."""
        spec = deployment if deployment is not None else EmulatedDeployment(**fields)
        with self._lock:
            self._insert(spec)
        return spec

    def remove_deployment(self, name: str) -> None:
        with self._lock:
            dep = self._by_name.pop(name)
            self._by_quoted.pop(dep.quoted, None)

    def deployment_names(self) -> list[str]:
        with self._lock:
            return list(self._by_name)

    def deployments(self) -> list[EmulatedDeployment]:
        with self._lock:
            return [
                dep.spec.model_copy(update={"faults": dep.faults}) for dep in self._by_name.values()
            ]

    def base_url(self, name: str) -> str:
        """The base URL the deployment's SDK wants (``…/v1``, bare, or ``…/api/v1``)."""
        with self._lock:
            dep = self._by_name.get(name)
        if dep is None:
            raise KeyError(f"no emulated deployment named {name!r}")
        return f"{self.url}/d/{dep.quoted}{dep.wire.base_suffix}"

    def _resolve(self, names: str | Iterable[str]) -> list[_Deployment]:
        wanted = [names] if isinstance(names, str) else list(names)
        missing = [n for n in wanted if n not in self._by_name]
        if missing:
            raise KeyError(f"no emulated deployment named {', '.join(map(repr, missing))}")
        return [self._by_name[n] for n in wanted]

    # ------------------------------------------------------------------ run-time control

    def set_faults(
        self, names: str | Iterable[str], profile: FaultProfile | None = None, /, **fields: Any
    ) -> None:
        """Replace (``profile``) and/or update (``fields``) the faults of named deployments."""
        with self._lock:
            for dep in self._resolve(names):
                base = profile if profile is not None else dep.faults
                new = (
                    FaultProfile.model_validate({**base.model_dump(), **fields}) if fields else base
                )
                dep.apply_faults(new, self._clock())

    def faults(self, name: str) -> FaultProfile:
        with self._lock:
            return self._resolve(name)[0].faults

    def is_down(self, name: str) -> bool:
        """Whether ``name`` answers with an outage now (``outage``, or flapping and down)."""
        with self._lock:
            dep = self._resolve(name)[0]
            return dep.faults.outage or dep.flapped_down(self._clock())

    def set_outage(
        self,
        names: str | Iterable[str],
        on: bool = True,
        *,
        mode: Literal["503", "reset"] | None = None,
    ) -> None:
        fields: dict[str, Any] = {"outage": on}
        if mode is not None:
            fields["outage_mode"] = mode
        self.set_faults(names, **fields)

    def set_stream_usage(self, names: str | Iterable[str], on: bool = True) -> None:
        """Whether openai-protocol streams of ``names`` end with a usage frame when asked
        (``on=False``: never, like a llama.cpp server)."""
        with self._lock:
            for dep in self._resolve(names):
                dep.spec = dep.spec.model_copy(update={"stream_usage": on})

    def script(self, names: str | Iterable[str], outcomes: Iterable[str | int]) -> None:
        """Queue exact outcomes, consumed one per request before any probability applies.

        Outcomes: ``ok 429 500 503 529 hang reset malformed stream_cut refusal
        context_length mid_stream_error auth quota outage``. Requests refused first for
        a bad key, an outage, exhausted quota or an over-long prompt do not consume one.
        """
        queued = [str(o) for o in outcomes]
        unknown = [o for o in queued if o not in SCRIPTABLE]
        if unknown:
            raise ValueError(
                f"unknown scripted outcomes {unknown}; choose from {sorted(SCRIPTABLE)}"
            )
        with self._lock:
            for dep in self._resolve(names):
                dep.script.extend(queued)

    def clear_script(self, names: str | Iterable[str]) -> None:
        with self._lock:
            for dep in self._resolve(names):
                dep.script.clear()

    def pending_script(self, name: str) -> list[str]:
        with self._lock:
            return list(self._resolve(name)[0].script)

    # ------------------------------------------------------------------ counters

    @staticmethod
    def _snapshot(dep: _Deployment) -> EmulatorCounters:
        t = dep.tally
        return EmulatorCounters.model_construct(
            name=dep.name,
            requests=t.requests,
            streamed=t.streamed,
            by_outcome=dict(t.by_outcome),
            input_tokens=t.input_tokens,
            output_tokens=t.output_tokens,
            attempts=list(t.attempts),
        )

    def counters(self, name: str) -> EmulatorCounters:
        with self._lock:
            return self._snapshot(self._resolve(name)[0])

    def all_counters(self) -> dict[str, EmulatorCounters]:
        with self._lock:
            return {name: self._snapshot(dep) for name, dep in self._by_name.items()}

    def received_headers(self, name: str) -> list[dict[str, str]]:
        """The HTTP headers of the latest requests to ``name`` (up to 256, oldest first).

        Names are lower-cased; credentials (``Authorization``, ``x-api-key`` …) are never
        kept. Cleared by :meth:`reset_counters`.
        """
        with self._lock:
            return [dict(h) for h in self._resolve(name)[0].tally.headers]

    def reset_counters(self, names: str | Iterable[str] | None = None) -> None:
        with self._lock:
            deps = self._by_name.values() if names is None else self._resolve(names)
            for dep in deps:
                dep.tally = _Tally()

    def total(self, outcome: str | None = None) -> int:
        """Requests across all deployments, or those that ended with ``outcome``."""
        if outcome is not None and outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}; choose from {list(OUTCOMES)}")
        with self._lock:
            if outcome is None:
                return sum(dep.tally.requests for dep in self._by_name.values())
            return sum(dep.tally.by_outcome[outcome] for dep in self._by_name.values())

    # ------------------------------------------------------------------ request handling

    def _decide(self, dep: _Deployment, req: ChatRequest, api_key: str | None) -> str:
        """Pick the outcome. Caller holds the lock (the RNG and script are shared state)."""
        f = dep.faults
        if f.auth_key is not None and api_key != f.auth_key:
            return "auth"
        if f.outage or (f.flapping and dep.flapped_down(self._clock())):
            return "outage"
        if f.quota_exhausted:
            return "quota"
        if f.context_limit_tokens is not None and req.input_tokens > f.context_limit_tokens:
            return "context_length"
        if dep.script:
            return dep.script.popleft()
        if dep.any_probability:
            r = dep.rng.random()
            for threshold, outcome in dep.thresholds:
                if r < threshold:
                    # A cut or broken stream needs a stream; a plain request just succeeds.
                    if outcome in _STREAM_ONLY and not req.stream:
                        return "ok"
                    return outcome
        return "ok"

    def _record(self, dep: _Deployment, headers: Mapping[str, str], outcome: str) -> None:
        dep.tally.headers.append(
            {k.lower(): v for k, v in headers.items() if k.lower() not in _SECRET_HEADERS}
        )
        call_id = headers.get("x-hybridstack-call")
        attempt_id = headers.get("x-hybridstack-attempt")
        if call_id is not None or attempt_id is not None:
            dep.tally.attempts.append(AttemptRecord(call_id, attempt_id, outcome))

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.raw_path
        cut = path.find("?")
        if cut >= 0:
            path = path[:cut]
        if not path.startswith("/d/"):
            return self._root(path)
        rest = path[3:]
        slash = rest.find("/")
        quoted, suffix = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
        dep = self._by_quoted.get(quoted) or self._by_name.get(unquote(quoted))
        if dep is None:
            return self._unknown_deployment(unquote(quoted), suffix)
        wire = dep.wire
        seq = next(self._seq)
        rid = f"{self._run_id}{seq:07d}"
        ctx = RequestContext(
            deployment=dep.name,
            model=dep.model,
            request_id=f"req_emu{rid}",
            message_id=_MESSAGE_PREFIX[wire.protocol] + rid,
            created=int(time.time()),
        )
        if suffix.rstrip("/") != wire.endpoint:
            return self._error(wire, "not_found", ctx, ErrorInfo(f"No route for {suffix!r}"))
        if request.method != "POST":
            info = ErrorInfo(f"Method {request.method} not allowed; use POST")
            return self._error(wire, "bad_request", ctx, info, status=405)

        headers = request.headers
        try:
            body = json.loads(await request.read())
            if not isinstance(body, dict):
                raise BadRequest("The request body must be a JSON object.")
            req = wire.parse(body, headers)
            if not dep.spec.stream_usage:
                req.include_usage = False
        except (ValueError, BadRequest) as exc:
            message = (
                exc.message if isinstance(exc, BadRequest) else "Could not parse the JSON body."
            )
            param = exc.param if isinstance(exc, BadRequest) else None
            with self._lock:
                dep.tally.requests += 1
                dep.tally.by_outcome["bad_request"] += 1
                self._record(dep, headers, "bad_request")
            return self._error(wire, "bad_request", ctx, ErrorInfo(message, param=param))

        with self._lock:
            tally = dep.tally
            tally.requests += 1
            if req.stream:
                tally.streamed += 1
            faults = dep.faults
            outcome = self._decide(dep, req, _api_key(headers))
            tally.by_outcome[outcome] += 1
            self._record(dep, headers, outcome)

        try:
            return await self._respond(request, dep, faults, req, ctx, outcome)
        except ConnectionError:
            # The client went away mid-response; nothing useful is left to send.
            return web.Response(status=499)

    async def _respond(
        self,
        request: web.BaseRequest,
        dep: _Deployment,
        faults: FaultProfile,
        req: ChatRequest,
        ctx: RequestContext,
        outcome: str,
    ) -> web.StreamResponse:
        wire = dep.wire
        if outcome == "reset" or (outcome == "outage" and faults.outage_mode == "reset"):
            return self._drop(request, reset=True)
        if outcome == "hang":
            await self._wait(faults.hang_s)
            return self._drop(request, reset=False)
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)

        kind = _ERROR_KIND.get(outcome)
        if outcome == "refusal" and wire.refusal_is_error(dep.refusal_style):
            kind = "refusal"
        if outcome == "mid_stream_error" and not req.stream:
            kind = "server_error"  # scripted on a plain request: the whole request fails
        if kind is not None:
            message = faults.error_messages.get(outcome)
            if kind == "auth" and message is None:
                message = wire.auth_message(_api_key(request.headers))
            info = ErrorInfo(code=faults.error_codes.get(outcome), message=message)
            if kind == "context_length":
                # Scripted without a configured limit: pretend the limit is just below the prompt.
                info.limit = faults.context_limit_tokens or max(1, req.input_tokens - 1)
                info.input_tokens = req.input_tokens
            return self._error(wire, kind, ctx, info, faults=faults)

        if outcome == "malformed":
            ctype = wire.sse_content_type if req.stream else wire.json_content_type
            return web.Response(
                body=wire.malformed(ctx, req.stream),
                headers={"Content-Type": ctype, wire.request_id_header: ctx.request_id},
            )

        if outcome == "refusal":
            turn = refusal_turn(req)
        else:
            turn = synthesize(req, dep.name, dep.reply_words)
        if outcome in ("ok", "refusal"):
            with self._lock:
                dep.tally.input_tokens += turn.input_tokens
                dep.tally.output_tokens += turn.output_tokens
        if req.stream:
            return await self._stream(request, wire, faults, req, ctx, turn, outcome)

        # A plain request takes as long as the stream would have.
        generation_ms = faults.ttft_ms + faults.inter_token_ms * max(0, len(turn.pieces) - 1)
        if generation_ms:
            await asyncio.sleep(generation_ms / 1000)
        body = wire.render(ctx, req, turn)
        headers = {"Content-Type": wire.json_content_type, wire.request_id_header: ctx.request_id}
        if outcome == "stream_cut":
            # Scripted on a plain request: the body stops halfway and the connection drops.
            resp = web.StreamResponse(headers=headers)
            resp.content_length = len(body)
            await resp.prepare(request)
            await resp.write(body[: len(body) // 2])
            self._drop(request, reset=False)
            return resp
        return web.Response(body=body, headers=headers)

    async def _stream(
        self,
        request: web.BaseRequest,
        wire: WireAdapter,
        faults: FaultProfile,
        req: ChatRequest,
        ctx: RequestContext,
        turn: Turn,
        outcome: str,
    ) -> web.StreamResponse:
        plan = wire.stream_plan(ctx, req, turn)
        tokens = plan.tokens
        broken = outcome in _STREAM_ONLY
        if broken:
            tokens = tokens[: len(tokens) // 2]
        if outcome == "mid_stream_error":
            ending = [wire.mid_stream_error(ctx)]
        elif outcome == "stream_cut":
            ending = []
        else:
            ending = plan.tail
        resp = web.StreamResponse(
            headers={
                "Content-Type": wire.sse_content_type,
                "Cache-Control": "no-cache",
                wire.request_id_header: ctx.request_id,
            }
        )
        if broken:
            resp.force_close()  # a broken stream never leaves a reusable connection
        await resp.prepare(request)
        ttft, gap = faults.ttft_ms / 1000, faults.inter_token_ms / 1000
        if not ttft and not gap:
            # No pacing: one write per response keeps the per-request cost low under load.
            await resp.write(b"".join(itertools.chain(plan.head, tokens, ending)))
        else:
            if plan.head:
                await resp.write(b"".join(plan.head))
            if ttft:
                await asyncio.sleep(ttft)
            for i, frame in enumerate(tokens):
                if i and gap:
                    await asyncio.sleep(gap)
                await resp.write(frame)
            if ending:
                await resp.write(b"".join(ending))
        if outcome == "stream_cut" and faults.stream_cut_mode == "abort":
            self._drop(request, reset=False)
            return resp
        await resp.write_eof()
        return resp

    def _error(
        self,
        wire: WireAdapter,
        kind: ErrorKind,
        ctx: RequestContext,
        info: ErrorInfo,
        *,
        faults: FaultProfile | None = None,
        status: int | None = None,
    ) -> web.Response:
        code, body = wire.error(kind, ctx, info)
        headers = {"Content-Type": wire.json_content_type, wire.request_id_header: ctx.request_id}
        if kind == "rate_limit" and faults is not None:
            seconds = faults.retry_after_s
            # retry-after in whole seconds, rounded up; retry-after-ms keeps the precision.
            headers["retry-after"] = str(math.ceil(seconds))
            headers["retry-after-ms"] = str(round(seconds * 1000))
        return web.Response(status=status or code, body=body, headers=headers)

    async def _wait(self, seconds: float) -> None:
        """Sleep, but wake up early when the emulator stops (so hangs never block shutdown)."""
        stopping = self._stopping
        if stopping is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), seconds)

    @staticmethod
    def _drop(request: web.BaseRequest, *, reset: bool) -> web.StreamResponse:
        """Close the connection without (the rest of) a response; ``reset`` sends a TCP RST."""
        transport = request.transport
        if transport is not None:
            if reset:
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    with contextlib.suppress(OSError):
                        # Linger 0: close() sends RST instead of FIN, a true "connection reset".
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
            transport.abort()
        # aiohttp needs a response object; nothing can be written any more.
        return web.Response(status=499)

    def _root(self, path: str) -> web.Response:
        if path in ("/", "/healthz"):
            with self._lock:
                deps = [(d.name, d.spec.protocol) for d in self._by_name.values()]
            body = {
                "status": "ok",
                "deployments": [
                    {"name": n, "protocol": p, "base_url": self.base_url(n)} for n, p in deps
                ],
            }
            return web.Response(body=dumps(body).encode(), content_type="application/json")
        return web.Response(
            status=404,
            body=dumps(
                {"error": f"unknown path {path!r}; deployments live under /d/{{name}}"}
            ).encode(),
            content_type="application/json",
        )

    def _unknown_deployment(self, name: str, suffix: str) -> web.Response:
        # Answer in the format the caller's SDK expects, guessed from the endpoint path.
        message = f"Unknown emulated deployment {name!r}."
        for wire in _WIRES.values():
            if suffix.rstrip("/") == wire.endpoint:
                ctx = RequestContext(name, name, "req_emu_unknown", "unknown", int(time.time()))
                return self._error(wire, "not_found", ctx, ErrorInfo(message))
        return web.Response(
            status=404, body=dumps({"error": message}).encode(), content_type="application/json"
        )


# =========================================================================== CLI


def _default_config() -> EmulatorConfig:
    return EmulatorConfig(
        deployments=[
            EmulatedDeployment(name="gpt-4o-mini@openai", protocol="openai", model="gpt-4o-mini"),
            EmulatedDeployment(
                name="claude-haiku@anthropic", protocol="anthropic", model="claude-haiku-4-5"
            ),
            EmulatedDeployment(
                name="qwen-plus@dashscope-sg", protocol="dashscope", model="qwen-plus"
            ),
        ]
    )


async def _serve(config: EmulatorConfig, ready: Callable[[Emulator], None]) -> None:
    emulator = Emulator(config)
    await emulator.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows
            loop.add_signal_handler(sig, stop.set)
    try:
        ready(emulator)
        await stop.wait()
    finally:
        await emulator.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hybridstack.testing.emulator --config FILE [--port N]``."""
    parser = argparse.ArgumentParser(
        prog="python -m hybridstack.testing.emulator",
        description="Serve emulated LLM deployments on loopback until SIGINT/SIGTERM.",
    )
    parser.add_argument(
        "--config", type=Path, help="TOML/JSON/YAML file (default: 3 demo deployments)"
    )
    parser.add_argument("--port", type=int, help="port to bind (default: from config, else free)")
    parser.add_argument("--host", help="address to bind (loopback unless the config allows more)")
    parser.add_argument("--seed", type=int, help="fault RNG seed")
    args = parser.parse_args(argv)
    try:
        config = EmulatorConfig.from_file(args.config) if args.config else _default_config()
        overrides = {
            k: v
            for k, v in (("port", args.port), ("host", args.host), ("seed", args.seed))
            if v is not None
        }
        if overrides:
            config = EmulatorConfig.model_validate({**config.model_dump(), **overrides})
    except (EmulatorConfigError, ValidationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def ready(emulator: Emulator) -> None:
        n = len(config.deployments)
        print(f"hybridstack emulator listening on {emulator.url} ({n} deployments)", flush=True)
        for spec in config.deployments:
            print(f"  {spec.name} [{spec.protocol}] {emulator.base_url(spec.name)}", flush=True)

    try:
        asyncio.run(_serve(config, ready))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"error: cannot serve: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
