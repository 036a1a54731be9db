"""The API key never leaks from the provider layer: not in reprs, errors, tracebacks or logs.

Two servers provoke every failure: the emulator (each fault kind, including a 401 for a
wrong key) and a small echo server that, like some real providers, puts the caller's
key (whole, or its head) into its error messages, also inside streams and in broken
bodies, so the scrubbing is exercised, not just the absence of the key.
"""

from __future__ import annotations

import datetime
import logging
import pickle
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from pydantic import SecretStr

from hybridstack.catalog.models import Deployment, Price
from hybridstack.errors import ProviderError
from hybridstack.providers import Provider, create_provider
from hybridstack.testing.emulator import EmulatedDeployment, Emulator
from hybridstack.types import ChatRequest

KEY = "sk-HYBRIDSTACK-SECRET-0f1e2d3c4b5a6978"
SECRET_PARTS = (KEY, KEY[:8], KEY[-12:])
PROTOCOLS = ("openai", "anthropic", "dashscope")
NAME = "fam@secret"


def _deployment(protocol: str, base_url: str) -> Deployment:
    return Deployment(
        family="fam",
        site="secret",
        protocol=protocol,  # type: ignore[arg-type]
        model=f"model-{protocol}",
        base_url=base_url,
        region="local",
        jurisdiction="LOCAL",
        operator="test",
        api_key=SecretStr(KEY),
        price=Price(input_per_mtok=0, output_per_mtok=0, as_of=datetime.date(2026, 1, 1)),
    )


def assert_clean(*texts: str) -> None:
    for text in texts:
        for part in SECRET_PARTS:
            assert part not in text, f"secret fragment {part!r} leaked in: {text[:300]!r}"


def assert_error_clean(error: ProviderError, caplog: pytest.LogCaptureFixture) -> None:
    assert_clean(
        str(error),
        repr(error),
        error.message,
        "".join(traceback.format_exception(error)),  # includes the SDK cause chain
        repr(pickle.loads(pickle.dumps(error)).__dict__),
        caplog.text,
    )


async def provoke(provider: Provider, streamed: bool) -> ProviderError:
    request = ChatRequest(messages="Hello")
    call = _drain(provider.stream(request)) if streamed else provider.complete(request)
    with pytest.raises(ProviderError) as info:
        await call
    return info.value


async def _drain(stream: AsyncIterator[Any]) -> None:
    async for _ in stream:
        pass


# --- reprs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_provider_repr_hides_the_key(protocol: str) -> None:
    provider = create_provider(_deployment(protocol, "http://127.0.0.1:9/v1"))
    assert_clean(repr(provider), str(provider), repr(provider.deployment))
    # The SDK client (built lazily) is not part of the provider's text either.
    provider._clients.get()  # type: ignore[attr-defined]
    assert_clean(repr(provider), str(provider))
    await provider.aclose()


# --- every emulator fault ------------------------------------------------------------------

EMULATOR_FAULTS = (
    "429",
    "500",
    "503",
    "529",
    "reset",
    "malformed",
    "refusal",
    "context_length",
    "auth",
    "quota",
    "outage",
    "stream_cut",
    "mid_stream_error",
)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_emulator_faults_never_show_the_key(
    protocol: str,
    emulator_factory: Callable[..., Awaitable[Emulator]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    emu = await emulator_factory([EmulatedDeployment(name=NAME, protocol=protocol)])
    provider = create_provider(_deployment(protocol, emu.base_url(NAME)), timeout_s=3)
    try:
        for fault in EMULATOR_FAULTS:
            for streamed in (False, True):
                if fault in ("stream_cut", "mid_stream_error") and not streamed:
                    continue
                emu.script(NAME, [fault])
                assert_error_clean(await provoke(provider, streamed), caplog)
        # A real key mismatch (not a scripted one): the 401 path.
        emu.set_faults(NAME, auth_key="some-other-key")
        for streamed in (False, True):
            error = await provoke(provider, streamed)
            assert error.status == 401
            assert_error_clean(error, caplog)
    finally:
        await provider.aclose()
    assert caplog.records, "DEBUG logging was captured"


# --- a server that echoes the key back -------------------------------------------------------

ECHO_PATHS = {
    "openai": "/openai/v1/chat/completions",
    "anthropic": "/anthropic/v1/messages",
    "dashscope": "/dashscope/api/v1/services/aigc/text-generation/generation",
}
ECHO_BASES = {
    "openai": "/openai/v1",
    "anthropic": "/anthropic",
    "dashscope": "/dashscope/api/v1",
}


def _caller_key(request: web.Request) -> str:
    key = request.headers.get("x-api-key") or request.headers.get("Authorization", "")
    return key.removeprefix("Bearer ")


def _error_body(protocol: str, etype: str, message: str) -> dict[str, Any]:
    if protocol == "openai":
        return {"error": {"message": message, "type": etype, "code": etype, "param": None}}
    if protocol == "anthropic":
        return {"type": "error", "error": {"type": etype, "message": message}, "request_id": "r"}
    return {"code": etype, "message": message, "request_id": "r"}


def _stream_error(protocol: str, key: str) -> bytes:
    import json

    message = f"upstream failed for key {key}"
    if protocol == "openai":
        return (
            b"data: "
            + json.dumps(_error_body("openai", "server_error", message)).encode()
            + b"\n\n"
        )
    if protocol == "anthropic":
        body = json.dumps(_error_body("anthropic", "overloaded_error", message))
        return b"event: error\ndata: " + body.encode() + b"\n\n"
    body = json.dumps(_error_body("dashscope", "InternalError", message))
    return b"id:1\nevent:error\nstatus:500\ndata:" + body.encode() + b"\n\n"


class EchoServer:
    """Answers every call with a failure that quotes the caller's key."""

    def __init__(self) -> None:
        self.mode = "401"
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        for protocol, path in ECHO_PATHS.items():
            app.router.add_post(path, self._handler(protocol))
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def _handler(self, protocol: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            key = _caller_key(request)
            await request.read()
            mode = self.mode
            if mode == "401":
                body = _error_body(
                    protocol, "invalid_api_key", f"Incorrect API key provided: {key}"
                )
                return web.json_response(body, status=401)
            if mode == "401-head":
                # Like OpenAI: "sk-abc12***...wxyz" — the head and tail of the key.
                shown = f"{key[:8]}***...{key[-4:]}"
                body = _error_body(
                    protocol, "invalid_api_key", f"Incorrect API key provided: {shown}"
                )
                return web.json_response(body, status=401)
            if mode == "400":
                body = _error_body(protocol, "invalid_request_error", f"bad request from {key}")
                return web.json_response(body, status=400)
            if mode == "429":
                body = _error_body(protocol, "rate_limit_exceeded", f"too many requests for {key}")
                return web.json_response(body, status=429, headers={"retry-after": "1"})
            if mode == "malformed":
                return web.Response(
                    body=f'{{"key": "{key}", "oops'.encode(), content_type="application/json"
                )
            # mode == "stream": a 200 event stream whose only frame is an error quoting the key
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            await response.write(_stream_error(protocol, key))
            await response.write_eof()
            return response

        return handle


@pytest_asyncio.fixture
async def echo() -> AsyncIterator[EchoServer]:
    server = EchoServer()
    await server.start()
    yield server
    await server.stop()


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("mode", ["401", "401-head", "400", "429", "malformed", "stream"])
async def test_echoed_key_is_scrubbed(
    protocol: str, mode: str, echo: EchoServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    echo.mode = mode
    provider = create_provider(_deployment(protocol, echo.url + ECHO_BASES[protocol]))
    try:
        for streamed in (False, True):
            if mode == "stream" and not streamed:
                continue
            error = await provoke(provider, streamed)
            assert_error_clean(error, caplog)
            if mode in ("401", "401-head", "400", "429", "stream"):
                # The provider's message survives, minus the key.
                assert "***" in error.message, error.message
    finally:
        await provider.aclose()
