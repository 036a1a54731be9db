"""The provider contract: one suite every adapter passes, with the real SDK over loopback.

Each test runs once per wire protocol (openai, anthropic, dashscope) against the
emulator, through the official SDK client and real HTTP: replies, streams, tools,
structured output, and every injectable fault mapped to its one taxonomy class.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import jsonschema
import pytest
import pytest_asyncio
from pydantic import SecretStr, ValidationError

from hybridstack.catalog.models import Deployment, Price
from hybridstack.errors import (
    ContentRefusedError,
    ContextTooLongError,
    FailoverError,
    FatalError,
    MissingAPIKeyError,
    ProviderError,
    RetryableError,
)
from hybridstack.providers import DEFAULT_MAX_TOKENS, Provider, create_provider
from hybridstack.testing.emulator import EmulatedDeployment, Emulator
from hybridstack.types import (
    ChatRequest,
    ChatResponse,
    FinishEvent,
    Message,
    StreamEvent,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
    UsageEvent,
)

PROTOCOLS = ("openai", "anthropic", "dashscope")
KEY = "sk-contract-0123456789abcdef"
NAME = "fam@emu"

WEATHER = Tool(
    name="get_weather",
    description="Current weather for a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
        "required": ["city", "unit"],
    },
)
TIME = Tool(
    name="get_time",
    description="Local time in a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "role": {"enum": ["admin", "user"]},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "address": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
    "required": ["name", "age", "role", "tags", "address"],
    "additionalProperties": False,
}


def deployment(
    protocol: str,
    base_url: str,
    *,
    api_key: str | None = KEY,
    api_key_env: str | None = None,
    features: frozenset[str] | None = None,
) -> Deployment:
    return Deployment(
        family="fam",
        site="emu",
        protocol=protocol,  # type: ignore[arg-type]
        model=f"model-{protocol}",
        base_url=base_url,
        region="local",
        jurisdiction="LOCAL",
        operator="emulator",
        api_key=SecretStr(api_key) if api_key is not None else None,
        api_key_env=api_key_env,
        features=features,  # type: ignore[arg-type]
        price=Price(input_per_mtok=1, output_per_mtok=2, as_of=datetime.date(2026, 11, 1)),
    )


@dataclass
class Rig:
    """One emulated deployment and a provider for it."""

    emu: Emulator
    protocol: str
    provider: Provider

    @property
    def base_url(self) -> str:
        return self.emu.base_url(NAME)

    def script(self, *outcomes: str) -> None:
        self.emu.script(NAME, outcomes)

    def faults(self, **fields: Any) -> None:
        self.emu.set_faults(NAME, **fields)

    @property
    def requests(self) -> int:
        return self.emu.counters(NAME).requests

    def provider_with(self, **kwargs: Any) -> Provider:
        features = kwargs.pop("features", None)
        return create_provider(
            deployment(self.protocol, self.base_url, features=features), **kwargs
        )


EmulatorFactory = Callable[..., Awaitable[Emulator]]


@pytest_asyncio.fixture(params=PROTOCOLS)
async def rig(
    request: pytest.FixtureRequest, emulator_factory: EmulatorFactory
) -> AsyncIterator[Rig]:
    protocol: str = request.param
    emu = await emulator_factory([EmulatedDeployment(name=NAME, protocol=protocol)])
    provider = create_provider(deployment(protocol, emu.base_url(NAME)), timeout_s=5)
    yield Rig(emu, protocol, provider)
    await provider.aclose()


async def collect(provider: Provider, request: ChatRequest, **kw: Any) -> list[StreamEvent]:
    return [event async for event in provider.stream(request, **kw)]


def finish_of(events: list[StreamEvent]) -> ChatResponse:
    assert isinstance(events[-1], FinishEvent), events[-1]
    assert not any(isinstance(e, FinishEvent) for e in events[:-1])
    return events[-1].response


async def answer(rig: Rig, request: ChatRequest, streamed: bool) -> ChatResponse:
    if streamed:
        return finish_of(await collect(rig.provider, request))
    return await rig.provider.complete(request)


async def failure(
    rig: Rig, request: ChatRequest, streamed: bool, provider: Provider | None = None
) -> ProviderError:
    """The ProviderError one call raises (streamed or not)."""
    target = provider or rig.provider
    call = collect(target, request) if streamed else target.complete(request)
    with pytest.raises(ProviderError) as info:
        await call
    return info.value


# --- replies ---------------------------------------------------------------------------


async def test_plain_reply(rig: Rig) -> None:
    reply = await rig.provider.complete(ChatRequest(messages="Say hello."))
    assert "simulated" in reply.text
    assert NAME in reply.text
    assert reply.finish_reason == "stop"
    assert reply.tool_calls == ()
    assert (reply.deployment, reply.family, reply.model) == (NAME, "fam", f"model-{rig.protocol}")
    assert (reply.region, reply.jurisdiction) == ("local", "LOCAL")
    assert reply.usage.input_tokens > 0
    assert reply.usage.output_tokens > 0
    assert reply.request_id
    assert reply.request_id.startswith("req_emu")
    assert reply.latency_s > 0
    assert reply.cost_usd == 0  # the executor prices, not the adapter


async def test_system_prompt_and_scripted_reply(rig: Rig) -> None:
    request = ChatRequest(
        messages=[Message.system("You are terse."), Message.user("EMULATOR_REPLY: bonjour")]
    )
    assert (await rig.provider.complete(request)).text == "bonjour"
    assert finish_of(await collect(rig.provider, request)).text == "bonjour"


async def test_stream_matches_complete(rig: Rig) -> None:
    request = ChatRequest(messages="Explain routing in one paragraph.")
    plain = await rig.provider.complete(request)
    events = await collect(rig.provider, request)
    final = finish_of(events)
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    usages = [e.usage for e in events if isinstance(e, UsageEvent)]
    assert len(deltas) > 1, "a streamed reply arrives in pieces"
    assert all(isinstance(e, TextDelta | UsageEvent) for e in events[:-1])
    assert "".join(deltas) == final.text == plain.text
    assert usages
    assert usages[-1] == final.usage == plain.usage
    assert events[-1].finish_reason == final.finish_reason == "stop"
    assert final.ttft_s is not None
    assert 0 < final.ttft_s <= final.latency_s
    assert final.request_id
    assert final.request_id.startswith("req_emu")
    assert final.deployment == NAME


async def test_max_tokens_truncates_with_length(rig: Rig) -> None:
    for streamed in (False, True):
        reply = await answer(
            rig, ChatRequest(messages="Tell a long story.", max_tokens=3), streamed
        )
        assert reply.finish_reason == "length"
        assert reply.usage.output_tokens == 3


async def test_default_max_tokens_is_positive() -> None:
    assert isinstance(DEFAULT_MAX_TOKENS, int)
    assert DEFAULT_MAX_TOKENS > 0


# --- tools -----------------------------------------------------------------------------


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_tool_call(rig: Rig, streamed: bool) -> None:
    request = ChatRequest(
        messages="What is the weather in Paris? Use get_weather.", tools=(WEATHER, TIME)
    )
    reply = await answer(rig, request, streamed)
    assert reply.finish_reason == "tool_calls"
    assert len(reply.tool_calls) == 1
    call = reply.tool_calls[0]
    assert call.name == "get_weather"
    assert call.id
    assert isinstance(call.arguments, dict)
    jsonschema.validate(call.arguments, WEATHER.parameters)


async def test_streamed_tool_call_deltas_assemble(rig: Rig) -> None:
    request = ChatRequest(messages="Use get_weather for Oslo.", tools=(WEATHER,))
    events = await collect(rig.provider, request)
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert deltas
    assert deltas[0].id
    assert deltas[0].name == "get_weather"
    assert (
        json.loads("".join(d.arguments for d in deltas))
        == finish_of(events).tool_calls[0].arguments
    )


async def test_tool_choice_required_and_none(rig: Rig) -> None:
    forced = await rig.provider.complete(
        ChatRequest(messages="Hello there.", tools=(TIME,), tool_choice="required")
    )
    assert [c.name for c in forced.tool_calls] == ["get_time"]
    free = await rig.provider.complete(
        ChatRequest(messages="Use get_time please.", tools=(TIME,), tool_choice="none")
    )
    assert free.tool_calls == ()
    assert free.text


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_tool_result_round_trip(rig: Rig, streamed: bool) -> None:
    first = await rig.provider.complete(
        ChatRequest(messages="Use get_weather for Lima.", tools=(WEATHER, TIME))
    )
    call = first.tool_calls[0]
    # Two parallel calls answered by two consecutive tool messages (merged into one user
    # turn on the Anthropic wire).
    second_call = ToolCall(id="call_time_1", name="get_time", arguments={"city": "Lima"})
    conversation = [
        Message.system("Answer briefly."),
        Message.user("Use get_weather for Lima."),
        Message.assistant("Checking.", tool_calls=[call, second_call]),
        Message.tool({"temp_c": 19, "sky": "clear"}, tool_call_id=call.id, name=call.name),
        Message.tool("10:42", tool_call_id=second_call.id, name="get_time"),
    ]
    reply = await answer(rig, ChatRequest(messages=conversation, tools=(WEATHER, TIME)), streamed)
    assert reply.finish_reason == "stop"
    assert reply.tool_calls == ()
    assert reply.text


# --- structured output -----------------------------------------------------------------


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_structured_output(rig: Rig, streamed: bool) -> None:
    request = ChatRequest(
        messages="Describe one user.", response_schema=PERSON, response_schema_name="person"
    )
    reply = await answer(rig, request, streamed)
    jsonschema.validate(reply.parsed(), PERSON)
    assert reply.finish_reason == "stop"


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_structured_output_without_native_schema_support(rig: Rig, streamed: bool) -> None:
    # Hosts with JSON mode only (or, for Anthropic, no output_config): the schema goes in
    # the prompt with json_object, or becomes a forced tool whose input is the answer.
    schema = {
        "type": "object",
        "properties": {"result": {"type": "string"}},
        "required": ["result"],
    }
    provider = rig.provider_with(features=frozenset({"json_object", "tools", "streaming"}))
    try:
        request = ChatRequest(messages="Summarise routing.", response_schema=schema)
        if streamed:
            reply = finish_of(await collect(provider, request))
        else:
            reply = await provider.complete(request)
        jsonschema.validate(reply.parsed(), schema)
        assert reply.tool_calls == ()
        assert reply.finish_reason == "stop"
    finally:
        await provider.aclose()


# --- faults: every one maps to exactly one taxonomy class --------------------------------

# outcome -> (class, HTTP status or None, on which protocols the status is None)
FAULTS: dict[str, tuple[type[ProviderError], dict[str, int | None]]] = {
    "429": (RetryableError, {"openai": 429, "anthropic": 429, "dashscope": 429}),
    "500": (RetryableError, {"openai": 500, "anthropic": 500, "dashscope": 500}),
    "503": (RetryableError, {"openai": 503, "anthropic": 503, "dashscope": 503}),
    "529": (RetryableError, {"openai": 529, "anthropic": 529, "dashscope": 529}),
    "reset": (RetryableError, {"openai": None, "anthropic": None, "dashscope": None}),
    "malformed": (RetryableError, {"openai": None, "anthropic": None, "dashscope": None}),
    "outage": (RetryableError, {"openai": 503, "anthropic": 503, "dashscope": 503}),
    "auth": (FailoverError, {"openai": 401, "anthropic": 401, "dashscope": 401}),
    # OpenAI: 429 insufficient_quota; Anthropic: 402 billing; DashScope: 400 Arrearage.
    "quota": (FailoverError, {"openai": 429, "anthropic": 402, "dashscope": 400}),
    "context_length": (ContextTooLongError, {"openai": 400, "anthropic": 400, "dashscope": 400}),
    # OpenAI finish_reason content_filter and Anthropic stop_reason refusal are 200s;
    # DashScope answers 400 DataInspectionFailed.
    "refusal": (ContentRefusedError, {"openai": 200, "anthropic": 200, "dashscope": 400}),
}


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("fault", list(FAULTS))
async def test_fault_maps_to_one_class(rig: Rig, fault: str, streamed: bool) -> None:
    expected, statuses = FAULTS[fault]
    rig.script(fault)
    error = await failure(rig, ChatRequest(messages="Hello?"), streamed)
    assert type(error) is expected, f"{fault}: {type(error).__name__}: {error}"
    assert error.deployment == NAME
    assert error.provider == rig.protocol
    assert error.status == statuses[rig.protocol]
    if error.status is not None and error.status != 200:
        assert error.request_id
        assert error.request_id.startswith("req_emu")
        assert error.code  # the provider's own code or type is kept
    # SDK retries are off: one attempt is one upstream request (retries live in one place).
    assert rig.requests == 1, f"{fault}: {rig.requests} upstream requests"
    # The deployment recovers: the next request succeeds.
    assert (await rig.provider.complete(ChatRequest(messages="Again?"))).text


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_rate_limit_carries_retry_after(rig: Rig, streamed: bool) -> None:
    rig.faults(retry_after_s=2.5)
    rig.script("429")
    error = await failure(rig, ChatRequest(messages="Hi"), streamed)
    assert isinstance(error, RetryableError)
    assert error.retry_after == pytest.approx(2.5)  # retry-after-ms wins over whole seconds
    assert error.code


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_hang_times_out_as_retryable(rig: Rig, streamed: bool) -> None:
    rig.faults(hang_s=10)
    rig.script("hang")
    provider = rig.provider_with(timeout_s=0.4)
    try:
        started = time.perf_counter()
        error = await failure(rig, ChatRequest(messages="Hi"), streamed, provider)
        elapsed = time.perf_counter() - started
    finally:
        await provider.aclose()
    assert isinstance(error, RetryableError)
    assert error.code == "timeout"
    assert elapsed < 2.0, f"the timeout took {elapsed:.2f} s (a hidden SDK retry?)"
    assert rig.requests == 1


@pytest.mark.parametrize("mode", ["close", "abort"])
async def test_stream_cut_keeps_partial_text(rig: Rig, mode: str) -> None:
    request = ChatRequest(messages="Write several sentences about regions.")
    full = (await rig.provider.complete(request)).text
    rig.faults(stream_cut_mode=mode)
    rig.script("stream_cut")
    error = await failure(rig, request, streamed=True)
    assert isinstance(error, RetryableError)
    assert error.partial_text
    assert full.startswith(error.partial_text)
    assert len(error.partial_text) < len(full)
    if mode == "close":
        assert error.code == "stream_cut"


async def test_mid_stream_error_is_retryable_with_partial_text(rig: Rig) -> None:
    request = ChatRequest(messages="Write several sentences about quotas.")
    full = (await rig.provider.complete(request)).text
    rig.script("mid_stream_error")
    error = await failure(rig, request, streamed=True)
    assert isinstance(error, RetryableError), f"{type(error).__name__}: {error}"
    assert error.partial_text
    assert full.startswith(error.partial_text)
    assert error.code  # server_error / overloaded_error / InternalError


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_context_limit(rig: Rig, streamed: bool) -> None:
    rig.faults(context_limit_tokens=40)
    short = await answer(rig, ChatRequest(messages="Short prompt."), streamed)
    assert short.text
    error = await failure(rig, ChatRequest(messages="word " * 200), streamed)
    assert isinstance(error, ContextTooLongError)
    assert error.limit_tokens == 40  # parsed from the provider's message


@pytest.mark.parametrize("mode", ["503", "reset"])
async def test_outage_is_retryable(rig: Rig, mode: str) -> None:
    rig.emu.set_outage(NAME, True, mode=mode)  # type: ignore[arg-type]
    for streamed in (False, True):
        error = await failure(rig, ChatRequest(messages="Anyone there?"), streamed)
        assert isinstance(error, RetryableError)
    rig.emu.set_outage(NAME, False)
    assert (await rig.provider.complete(ChatRequest(messages="Back?"))).text


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_wrong_key_fails_over(rig: Rig, streamed: bool) -> None:
    rig.faults(auth_key="the-right-key")
    error = await failure(rig, ChatRequest(messages="Hi"), streamed)
    assert isinstance(error, FailoverError)
    assert error.status == 401
    right = create_provider(
        deployment(rig.protocol, rig.base_url, api_key=None), api_key="the-right-key"
    )
    try:
        assert (await right.complete(ChatRequest(messages="Hi"))).text
    finally:
        await right.aclose()


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_quota_exhausted_fails_over(rig: Rig, streamed: bool) -> None:
    rig.faults(quota_exhausted=True)
    error = await failure(rig, ChatRequest(messages="Hi"), streamed)
    assert isinstance(error, FailoverError)
    assert error.code in {"insufficient_quota", "billing_error", "Arrearage"}


async def test_openai_compatible_dashscope_refusal(emulator_factory: EmulatorFactory) -> None:
    # DashScope's OpenAI-compatible mode refuses with 400 data_inspection_failed, also
    # as an error frame mid-stream: both are content refusals, not fatal 400s.
    emu = await emulator_factory(
        [EmulatedDeployment(name=NAME, protocol="openai", refusal_style="dashscope-compat")]
    )
    provider = create_provider(deployment("openai", emu.base_url(NAME)))
    try:
        for streamed in (False, True):
            emu.script(NAME, ["refusal"])
            request = ChatRequest(messages="Hi")
            call = collect(provider, request) if streamed else provider.complete(request)
            with pytest.raises(ContentRefusedError) as info:
                await call
            assert info.value.status == 400
            assert info.value.code == "data_inspection_failed"
    finally:
        await provider.aclose()


async def test_unknown_model_path_fails_over(rig: Rig) -> None:
    # A base URL for a deployment the server does not know: 404, model not found.
    provider = create_provider(deployment(rig.protocol, rig.base_url.replace("fam", "gone")))
    try:
        error = await failure(rig, ChatRequest(messages="Hi"), False, provider)
    finally:
        await provider.aclose()
    assert isinstance(error, FailoverError)
    assert error.status == 404


# --- keys ------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_unset_key_variable_raises_missing_api_key(
    protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HYBRIDSTACK_TEST_UNSET_KEY", raising=False)
    dep = deployment(
        protocol, "http://127.0.0.1:9/v1", api_key=None, api_key_env="HYBRIDSTACK_TEST_UNSET_KEY"
    )
    with pytest.raises(MissingAPIKeyError) as info:
        create_provider(dep)
    assert info.value.variable == "HYBRIDSTACK_TEST_UNSET_KEY"
    assert info.value.deployment == NAME
    assert "HYBRIDSTACK_TEST_UNSET_KEY" in str(info.value)
    assert NAME in str(info.value)


async def test_key_resolution_order(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    async def works(**kwargs: Any) -> bool:
        provider = create_provider(
            deployment(
                rig.protocol,
                rig.base_url,
                api_key=kwargs.pop("deployment_key", None),
                api_key_env=kwargs.pop("env", None),
            ),
            **kwargs,
        )
        try:
            await provider.complete(ChatRequest(messages="Hi"))
            return True
        except FailoverError:
            return False
        finally:
            await provider.aclose()

    monkeypatch.setenv("HYBRIDSTACK_TEST_KEY", "from-env")
    rig.faults(auth_key="from-env")
    assert await works(env="HYBRIDSTACK_TEST_KEY")
    assert not await works(env="HYBRIDSTACK_TEST_KEY", deployment_key="from-deployment")
    rig.faults(auth_key="from-deployment")
    assert await works(env="HYBRIDSTACK_TEST_KEY", deployment_key="from-deployment")
    rig.faults(auth_key="explicit")
    assert await works(env="HYBRIDSTACK_TEST_KEY", deployment_key="x", api_key="explicit")
    rig.faults(auth_key="not-needed")  # a local server: no key variable, placeholder key
    assert await works()


# --- requests hybridstack refuses to send ------------------------------------------------


def test_request_without_messages_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least one message"):
        ChatRequest(messages=[])
    with pytest.raises(ValidationError, match="needs a user message"):
        ChatRequest(messages=[Message.system("only a system prompt")])


def test_negative_max_tokens_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"max_tokens\n.*must be a positive whole number"):
        ChatRequest(messages="Hi", max_tokens=-5)
    assert issubclass(ValidationError, ValueError)


# --- sync wrappers ---------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_sync_wrappers_from_sync_code(protocol: str, sync_emulator_factory: Any) -> None:
    emu = sync_emulator_factory([EmulatedDeployment(name=NAME, protocol=protocol)])
    provider = create_provider(deployment(protocol, emu.base_url(NAME)))
    request = ChatRequest(messages="Hello from a script.")
    # Each call runs on a fresh event loop: the client must not be reused across loops.
    first = provider.complete_sync(request)
    second = provider.complete_sync(request)
    assert first.text == second.text
    assert "simulated" in first.text
    events = list(provider.stream_sync(request))
    assert isinstance(events[-1], FinishEvent)
    assert events[-1].response.text == first.text
    emu.script(NAME, ["503"])
    with pytest.raises(RetryableError):
        provider.complete_sync(request)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_each_loops_client_is_closed_when_the_loop_ends(
    protocol: str, sync_emulator_factory: Any
) -> None:
    # What every sync facade does: asyncio.run(provider.complete(...)), no aclose().
    emu = sync_emulator_factory([EmulatedDeployment(name=NAME, protocol=protocol)])
    provider = create_provider(deployment(protocol, emu.base_url(NAME)))
    closed: list[str] = []
    clients = provider._clients  # type: ignore[attr-defined]
    real_closer = clients._closer

    async def spy(client: Any) -> None:
        closed.append(type(client).__name__)
        await real_closer(client)

    clients._closer = spy
    for _ in range(3):
        assert asyncio.run(provider.complete(ChatRequest(messages="Hi"))).text
    provider.complete_sync(ChatRequest(messages="Hi"))
    list(provider.stream_sync(ChatRequest(messages="Hi")))
    assert len(closed) == 5
    assert len(clients._by_loop) == 0


async def test_sync_wrappers_refuse_inside_a_running_loop(rig: Rig) -> None:
    request = ChatRequest(messages="Hi")
    with pytest.raises(RuntimeError, match="await"):
        rig.provider.complete_sync(request)
    with pytest.raises(RuntimeError, match="await"):
        next(iter(rig.provider.stream_sync(request)))
    assert rig.requests == 0


# --- plumbing --------------------------------------------------------------------------


async def test_extra_headers_reach_the_server(rig: Rig) -> None:
    headers = {"x-hybridstack-call": "call-1", "x-hybridstack-attempt": "att-1"}
    await rig.provider.complete(ChatRequest(messages="Hi"), extra_headers=headers)
    await collect(
        rig.provider, ChatRequest(messages="Hi"), extra_headers={"x-hybridstack-call": "c2"}
    )
    records = rig.emu.counters(NAME).attempts
    assert [(r.call_id, r.attempt_id) for r in records] == [("call-1", "att-1"), ("c2", None)]


async def test_provider_works_again_after_aclose(rig: Rig) -> None:
    await rig.provider.complete(ChatRequest(messages="Hi"))
    await rig.provider.aclose()
    assert (await rig.provider.complete(ChatRequest(messages="Hi again"))).text


async def test_one_provider_serves_concurrent_calls(rig: Rig) -> None:
    replies = await asyncio.gather(
        *(rig.provider.complete(ChatRequest(messages=f"Question {i}")) for i in range(12))
    )
    assert len({r.text for r in replies}) == 12
    assert rig.requests == 12


async def test_abandoned_stream_closes_cleanly(rig: Rig) -> None:
    stream = rig.provider.stream(ChatRequest(messages="A long answer please."))
    first = await anext(stream)
    assert isinstance(first, TextDelta)
    await stream.aclose()  # the consumer stops early: the connection is released
    assert (await rig.provider.complete(ChatRequest(messages="Next"))).text


def test_provider_repr_names_the_deployment_only() -> None:
    provider = create_provider(deployment("openai", "http://127.0.0.1:9/v1"))
    assert repr(provider) == "OpenAIProvider(deployment='fam@emu')"


def test_importing_hybridstack_does_not_import_the_sdks() -> None:
    code = (
        "import sys, hybridstack, hybridstack.providers\n"
        "from hybridstack.providers import create_provider, Provider, DEFAULT_MAX_TOKENS\n"
        "loaded = [m for m in ('openai', 'anthropic', 'dashscope') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_malformed_request_is_fatal(rig: Rig, streamed: bool) -> None:
    # No model id: a 400 from the server (or DashScope's local ModelRequired check).
    dep = deployment(rig.protocol, rig.base_url).model_copy(update={"model": ""})
    provider = create_provider(dep)
    try:
        error = await failure(rig, ChatRequest(messages="Hi"), streamed, provider)
    finally:
        await provider.aclose()
    assert isinstance(error, FatalError), f"{type(error).__name__}: {error}"


# --- usage normalisation for wire shapes the emulator does not send ----------------------


def test_openai_usage_cache_and_reasoning_fields() -> None:
    from openai._models import construct_type
    from openai.types.chat import ChatCompletion

    from hybridstack.providers.openai import _reasoning, _usage

    def completion(usage: dict[str, Any], message: dict[str, Any]) -> Any:
        value = {
            "id": "x",
            "object": "chat.completion",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
            "usage": usage,
        }
        return construct_type(type_=ChatCompletion, value=value)

    base = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    deepseek = completion(
        {**base, "prompt_cache_hit_tokens": 7, "prompt_cache_miss_tokens": 3},
        {"role": "assistant", "content": "hi", "reasoning_content": "thinking"},
    )
    assert _usage(deepseek.usage).model_dump() == {
        "input_tokens": 10,
        "output_tokens": 5,
        "cached_input_tokens": 7,
    }
    assert _reasoning(deepseek.choices[0].message) == "thinking"
    openai_cached = completion(
        {**base, "prompt_tokens_details": {"cached_tokens": 4}},
        {"role": "assistant", "content": "x"},
    )
    assert _usage(openai_cached.usage).cached_input_tokens == 4
    assert _reasoning(openai_cached.choices[0].message) is None


def test_anthropic_usage_sums_cache_reads_and_writes() -> None:
    from anthropic._models import construct_type
    from anthropic.types import Usage as AnthropicUsage

    from hybridstack.providers.anthropic import _usage

    raw = construct_type(
        type_=AnthropicUsage,
        value={
            "input_tokens": 5,
            "output_tokens": 9,
            "cache_read_input_tokens": 100,
            "cache_creation_input_tokens": 20,
        },
    )
    usage = _usage(raw)
    assert (usage.input_tokens, usage.output_tokens, usage.cached_input_tokens) == (125, 9, 100)


def test_dashscope_usage_cached_tokens() -> None:
    from hybridstack.providers.dashscope import _usage

    usage = _usage(
        {"input_tokens": 50, "output_tokens": 8, "prompt_tokens_details": {"cached_tokens": 32}}
    )
    assert (usage.input_tokens, usage.output_tokens, usage.cached_input_tokens) == (50, 8, 32)


async def test_anthropic_request_with_temperature_is_sent() -> None:
    """anthropic 2.x's messages.create takes no temperature: the adapter must not pass one."""
    async with Emulator([EmulatedDeployment(name="claude@t", protocol="anthropic")]) as emu:
        deployment = Deployment(
            family="claude",
            site="t",
            protocol="anthropic",
            model="claude-haiku-4-5",
            base_url=emu.base_url("claude@t"),
            region="us",
            jurisdiction="US",
            operator="anthropic",
            price=Price(input_per_mtok=1, output_per_mtok=5, as_of="2026-11-01"),
        )
        provider = create_provider(deployment, api_key="test")
        try:
            reply = await provider.complete(
                ChatRequest(messages=[Message.user("hi")], temperature=1.5)
            )
        finally:
            await provider.aclose()
        assert reply.text
