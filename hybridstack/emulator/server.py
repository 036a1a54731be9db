"""The emulator server: one loopback port for many deployments, its lifecycle (async or on
a background thread) and the thread-safe controls (faults, outages, scripts, counters).
How one request is answered is :mod:`hybridstack.emulator.handling`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Literal

from aiohttp import web
from aiohttp.http import RawRequestMessage
from aiohttp.streams import StreamReader

from hybridstack.emulator.config import (
    OUTCOMES,
    SCRIPTABLE,
    EmulatedDeployment,
    EmulatorConfig,
    EmulatorCounters,
    FaultProfile,
    _is_loopback,
)
from hybridstack.emulator.handling import RequestHandling
from hybridstack.emulator.state import _MAX_BODY, _Deployment, _Tally

# =========================================================================== the server


class Emulator(RequestHandling):
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

    def received_headers(self, name: str) -> list[dict[str, str]]:
        """The HTTP headers of the latest requests to ``name`` (up to 256, oldest first).

        Names are lower-cased; credentials (``Authorization``, ``x-api-key`` …) are never
        kept. Cleared by :meth:`reset_counters`.
        """
        with self._lock:
            return [dict(h) for h in self._resolve(name)[0].tally.headers]

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
