"""Answering one HTTP request: pick its outcome (script, outage, key, fault draw), then
write the reply, the stream or the fault in the deployment's wire format.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from urllib.parse import unquote

from aiohttp import web

from hybridstack.emulator.config import (
    _ERROR_KIND,
    _STREAM_ONLY,
    AttemptRecord,
    EmulatorConfig,
    FaultProfile,
)
from hybridstack.emulator.state import (
    _MESSAGE_PREFIX,
    _SECRET_HEADERS,
    _WIRES,
    _api_key,
    _Deployment,
)
from hybridstack.emulator.synthesis import refusal_turn, synthesize
from hybridstack.emulator.wire.common import (
    BadRequest,
    ChatRequest,
    ErrorInfo,
    ErrorKind,
    RequestContext,
    Turn,
    WireAdapter,
    dumps,
)


class RequestHandling:
    """The request path of :class:`~hybridstack.emulator.Emulator` (a mixin).

    The emulator's state it reads, set by ``Emulator.__init__`` and ``start``:
    """

    config: EmulatorConfig
    _clock: Callable[[], float]
    _lock: threading.Lock
    _by_name: dict[str, _Deployment]
    _by_quoted: dict[str, _Deployment]
    _stopping: asyncio.Event | None
    _seq: Iterator[int]
    _run_id: str

    def base_url(self, name: str) -> str:
        raise NotImplementedError

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
