"""No piece of the API key leaks from the provider layer: reprs, errors, tracebacks, logs.

Two servers provoke every failure: the emulator (each fault kind, including a 401 for a
wrong key, which it answers the way api.openai.com does: the key's head and tail with
stars between) and a small echo server that, like some real providers and proxies,
quotes the caller's key in its error messages — whole, masked in several styles, by its
tail, inside streams and in broken bodies — so the scrubbing is exercised, not just the
absence of the key.

The keys are realistic (``sk-proj-…``, ``sk-ant-api03-…``, DashScope ``sk-`` + 32 hex,
no prefix; :mod:`secret_helpers`), and a leak is any 4-character fragment of one.
"""

from __future__ import annotations

import datetime
import json
import logging
import pickle
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from pydantic import SecretStr
from secret_helpers import KEY_KINDS, exception_texts, find_fragments, realistic_key

from hybridstack.catalog.models import Deployment, Price
from hybridstack.errors import ProviderError
from hybridstack.providers import Provider, create_provider
from hybridstack.testing.emulator import EmulatedDeployment, Emulator
from hybridstack.types import ChatRequest

#: One realistic key per kind; the tests below run with each.
KEYS = {kind: realistic_key(random.Random(f"providers-{kind}"), kind) for kind in KEY_KINDS}
PROTOCOLS = ("openai", "anthropic", "dashscope")
NAME = "fam@secret"


@pytest.fixture(params=KEY_KINDS)
def key(request: pytest.FixtureRequest) -> str:
    return KEYS[request.param]


def _deployment(protocol: str, base_url: str, key: str) -> Deployment:
    return Deployment(
        family="fam",
        site="secret",
        protocol=protocol,  # type: ignore[arg-type]
        model=f"model-{protocol}",
        base_url=base_url,
        region="local",
        jurisdiction="LOCAL",
        operator="test",
        api_key=SecretStr(key),
        price=Price(input_per_mtok=0, output_per_mtok=0, as_of=datetime.date(2026, 1, 1)),
    )


def assert_clean(key: str, *texts: str) -> None:
    leaks = find_fragments({f"text{i}": t for i, t in enumerate(texts)}, [key])
    assert not leaks, "key fragments leaked:\n" + "\n".join(leaks)


def assert_error_clean(error: ProviderError, caplog: pytest.LogCaptureFixture, key: str) -> None:
    assert_clean(
        key,
        error.message,
        *exception_texts(error),
        repr(pickle.loads(pickle.dumps(error)).__dict__),
        caplog.text,
        *(repr(r.__dict__) for r in caplog.records),
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
async def test_provider_repr_hides_the_key(protocol: str, key: str) -> None:
    provider = create_provider(_deployment(protocol, "http://127.0.0.1:9/v1", key))
    assert_clean(key, repr(provider), str(provider), repr(provider.deployment))
    # The SDK client (built lazily) is not part of the provider's text either.
    provider._clients.get()  # type: ignore[attr-defined]
    assert_clean(key, repr(provider), str(provider))
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
    key: str,
    emulator_factory: Callable[..., Awaitable[Emulator]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    emu = await emulator_factory([EmulatedDeployment(name=NAME, protocol=protocol)])
    provider = create_provider(_deployment(protocol, emu.base_url(NAME), key), timeout_s=3)
    try:
        for fault in EMULATOR_FAULTS:
            for streamed in (False, True):
                if fault in ("stream_cut", "mid_stream_error") and not streamed:
                    continue
                emu.script(NAME, [fault])
                assert_error_clean(await provoke(provider, streamed), caplog, key)
        # A real key mismatch (not a scripted one): the 401 path; the OpenAI wire quotes
        # the key's head and tail, as api.openai.com does.
        emu.set_faults(NAME, auth_key="some-other-key")
        for streamed in (False, True):
            error = await provoke(provider, streamed)
            assert error.status == 401
            assert_error_clean(error, caplog, key)
            if protocol == "openai":
                assert "Incorrect API key provided: ***" in error.message, error.message
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
            if mode.startswith("401"):
                shown = {
                    "401": key,
                    # api.openai.com: first 8, stars, last 4.
                    "401-openai": key[:8] + "*" * (len(key) - 12) + key[-4:],
                    "401-head": f"{key[:12]}***...{key[-4:]}",
                    "401-ellipsis": f"{key[:10]}…{key[-6:]}",
                    "401-bullets": f"{key[:6]}••••••{key[-4:]}",
                    "401-tail": f"a key ending in {key[-4:]}",
                    "401-header": f"header Authorization: Bearer {key}",
                    "401-json": json.dumps({"api_key": key, "hint": key[-5:]}),
                }[mode]
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
@pytest.mark.parametrize(
    "mode",
    [
        "401",
        "401-openai",
        "401-head",
        "401-ellipsis",
        "401-bullets",
        "401-tail",
        "401-header",
        "401-json",
        "400",
        "429",
        "malformed",
        "stream",
    ],
)
async def test_echoed_key_is_scrubbed(
    protocol: str, mode: str, key: str, echo: EchoServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    echo.mode = mode
    provider = create_provider(_deployment(protocol, echo.url + ECHO_BASES[protocol], key))
    try:
        for streamed in (False, True):
            if mode == "stream" and not streamed:
                continue
            error = await provoke(provider, streamed)
            assert_error_clean(error, caplog, key)
            if mode != "malformed":
                # The provider's message survives, minus the key.
                assert "***" in error.message, error.message
    finally:
        await provider.aclose()
