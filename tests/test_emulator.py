"""Tests of the provider emulator over real HTTP with the real openai/anthropic/dashscope SDKs."""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

import aiohttp
import anthropic
import dashscope
import openai
import pydantic
import pytest
import pytest_asyncio

from hybridstack.emulator.schema_examples import example_for_schema
from hybridstack.testing.emulator import (
    OUTCOMES,
    EmulatedDeployment,
    Emulator,
    EmulatorConfig,
    EmulatorConfigError,
    FaultProfile,
)

OA = "gpt-4o-mini@openai-us"
AN = "claude-haiku@anthropic-eu"
DS = "qwen-plus@dashscope-sg"
COMPAT = "qwen-plus@dashscope-compat"

DEPLOYMENTS = [
    EmulatedDeployment(name=OA, protocol="openai", model="gpt-4o-mini"),
    EmulatedDeployment(name=AN, protocol="anthropic", model="claude-haiku-4-5"),
    EmulatedDeployment(name=DS, protocol="dashscope", model="qwen-plus"),
    EmulatedDeployment(
        name=COMPAT, protocol="openai", model="qwen-plus", refusal_style="dashscope-compat"
    ),
]

WEATHER_TOOL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 2},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
        "options": {
            "type": "object",
            "properties": {"hourly": {"type": "boolean"}, "radius_km": {"type": "number"}},
            "required": ["hourly"],
        },
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
    },
    "required": ["city", "unit", "days"],
    "additionalProperties": False,
}
OPENAI_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather forecast",
            "parameters": WEATHER_TOOL_SCHEMA,
        },
    },
    {
        "type": "function",
        "function": {"name": "lookup_stock", "parameters": {"type": "object", "properties": {}}},
    },
]
ANTHROPIC_TOOLS = [
    {"name": "get_weather", "description": "Weather forecast", "input_schema": WEATHER_TOOL_SCHEMA}
]


class Step(pydantic.BaseModel):
    title: str
    minutes: int = pydantic.Field(ge=5, le=90)
    done: bool


class Plan(pydantic.BaseModel):
    goal: str
    priority: Literal["low", "high"]
    steps: list[Step] = pydantic.Field(min_length=2)
    owner: str | None
    score: float


def validate(instance: Any, schema: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(instance, schema)


@pytest_asyncio.fixture
async def emu(emulator_factory: Callable[..., Awaitable[Emulator]]) -> Emulator:
    return await emulator_factory(DEPLOYMENTS, seed=7)


@pytest_asyncio.fixture
async def ds_session() -> AsyncIterator[None]:
    """dashscope keeps one aiohttp session per loop; close it before the loop goes away."""
    yield
    from dashscope.api_entities.aio_session import close_shared_aio_session

    await close_shared_aio_session()


def oai(emu: Emulator, name: str = OA, **kw: Any) -> openai.AsyncOpenAI:
    kw.setdefault("api_key", "test")
    return openai.AsyncOpenAI(base_url=emu.base_url(name), max_retries=0, **kw)


def ant(emu: Emulator, name: str = AN, **kw: Any) -> anthropic.AsyncAnthropic:
    kw.setdefault("api_key", "test")
    return anthropic.AsyncAnthropic(base_url=emu.base_url(name), max_retries=0, **kw)


async def ds_call(
    emu: Emulator, messages: list[dict[str, Any]], *, stream: bool = False, **kw: Any
) -> Any:
    return await dashscope.AioGeneration.call(
        model="qwen-plus",
        messages=messages,
        api_key=kw.pop("api_key", "test"),
        result_format="message",
        base_address=emu.base_url(kw.pop("name", DS)),
        stream=stream,
        incremental_output=True,
        **kw,
    )


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


async def drain(stream: Any, seen: list[str], pick: Callable[[Any], str]) -> None:
    """Read a stream to its end, keeping what ``pick`` takes from each item."""
    async for item in stream:
        seen.append(pick(item))


# =========================================================================== layout


async def test_base_url_layout_and_quoted_names(emu: Emulator) -> None:
    root = f"http://127.0.0.1:{emu.port}"
    assert emu.url == root
    assert emu.base_url(OA) == f"{root}/d/gpt-4o-mini@openai-us/v1"
    assert emu.base_url(AN) == f"{root}/d/claude-haiku@anthropic-eu"
    assert emu.base_url(DS) == f"{root}/d/qwen-plus@dashscope-sg/api/v1"
    with pytest.raises(KeyError):
        emu.base_url("nope")

    emu.add_deployment(name="team a/b", protocol="openai")
    assert emu.base_url("team a/b") == f"{root}/d/team%20a%2Fb/v1"
    async with oai(emu, "team a/b") as client:
        reply = await client.chat.completions.create(model="m", messages=user("hi"))
    assert reply.choices[0].message.content.startswith("[simulated reply from team a/b]")
    assert emu.counters("team a/b").ok == 1

    async with aiohttp.ClientSession() as http:
        async with http.get(f"{root}/healthz") as resp:
            health = await resp.json()
        async with http.post(f"{root}/d/ghost/v1/chat/completions", json={}) as resp:
            assert resp.status == 404
            assert (await resp.json())["error"]["code"] == "model_not_found"
    assert {d["name"] for d in health["deployments"]} == {
        *(d.name for d in DEPLOYMENTS),
        "team a/b",
    }


# =========================================================================== openai


async def test_openai_plain_reply_is_deterministic(emu: Emulator) -> None:
    async with oai(emu) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=user("Summarise the quarterly report.")
        )
        first = raw.parse()
        again = await client.chat.completions.create(
            model="gpt-4o-mini", messages=user("Summarise the quarterly report.")
        )
        other = await client.chat.completions.create(model="gpt-4o-mini", messages=user("Other."))
    assert raw.headers["x-request-id"].startswith("req_")
    text = first.choices[0].message.content
    assert text.startswith(f"[simulated reply from {OA}] ")
    assert 25 <= len(text.split()) - 4 <= 35  # ~30 words after the prefix
    assert again.choices[0].message.content == text
    assert other.choices[0].message.content != text
    assert first.model == "gpt-4o-mini"
    assert first.choices[0].finish_reason == "stop"
    usage = first.usage
    assert usage.prompt_tokens == math.ceil(len("Summarise the quarterly report.") / 4)
    assert usage.completion_tokens == math.ceil(len(text) / 4)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details.cached_tokens == 0


async def test_openai_stream_with_usage_matches_plain(emu: Emulator) -> None:
    messages = [{"role": "system", "content": "Be brief."}, *user("Plan a trip to Lisbon.")]
    async with oai(emu) as client:
        plain = await client.chat.completions.create(model="m", messages=messages)
        stream = await client.chat.completions.create(
            model="m", messages=messages, stream=True, stream_options={"include_usage": True}
        )
        chunks = [chunk async for chunk in stream]
    deltas = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert len(deltas) > 10  # word-sized deltas, not one blob
    assert "".join(deltas) == plain.choices[0].message.content
    assert finishes == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage == plain.usage
    assert all(c.usage is None for c in chunks[:-1])
    counters = emu.counters(OA)
    assert (counters.requests, counters.streamed, counters.ok) == (2, 1, 2)
    assert counters.input_tokens == 2 * plain.usage.prompt_tokens
    assert counters.output_tokens == 2 * plain.usage.completion_tokens


@pytest.mark.parametrize("stream", [False, True])
async def test_openai_tool_call_then_text(emu: Emulator, stream: bool) -> None:
    messages: list[dict[str, Any]] = user("What's the weather in Paris? Use the tool.")
    async with oai(emu) as client:
        if stream:
            chunks = [
                c
                async for c in await client.chat.completions.create(
                    model="m", messages=messages, tools=OPENAI_TOOLS, stream=True
                )
            ]
            fragments = [
                tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []
            ]
            assert len(fragments) > 1
            assert fragments[0].id
            assert fragments[0].function.name == "get_weather"
            assert all(f.id is None and f.function.name is None for f in fragments[1:])
            call_id, name = fragments[0].id, fragments[0].function.name
            arguments = "".join(f.function.arguments for f in fragments)
            finish = [c.choices[0].finish_reason for c in chunks if c.choices][-1]
        else:
            reply = await client.chat.completions.create(
                model="m", messages=messages, tools=OPENAI_TOOLS
            )
            call = reply.choices[0].message.tool_calls[0]
            call_id, name, arguments = call.id, call.function.name, call.function.arguments
            finish = reply.choices[0].finish_reason
            assert reply.choices[0].message.content is None
        assert finish == "tool_calls"
        assert name == "get_weather"
        validate(json.loads(arguments), WEATHER_TOOL_SCHEMA)

        messages += [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": name, "arguments": arguments},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": call_id, "content": '{"temp_c": 21}'},
        ]
        after = await client.chat.completions.create(
            model="m", messages=messages, tools=OPENAI_TOOLS, tool_choice="required"
        )
    assert after.choices[0].finish_reason == "stop"
    assert after.choices[0].message.tool_calls is None
    assert after.choices[0].message.content.startswith("[simulated reply from")


async def test_openai_tool_choice_and_name_mention(emu: Emulator) -> None:
    async with oai(emu) as client:
        named = await client.chat.completions.create(
            model="m",
            messages=user("hello"),
            tools=OPENAI_TOOLS,
            tool_choice={"type": "function", "function": {"name": "lookup_stock"}},
        )
        mention = await client.chat.completions.create(
            model="m", messages=user("please lookup_stock for ACME"), tools=OPENAI_TOOLS
        )
        plain = await client.chat.completions.create(
            model="m", messages=user("just chat"), tools=OPENAI_TOOLS
        )
        scripted = await client.chat.completions.create(
            model="m",
            messages=user(
                'EMULATOR_TOOL: get_weather {"city": "Oslo", "unit": "celsius", "days": 2}'
            ),
            tools=OPENAI_TOOLS,
        )
    assert named.choices[0].message.tool_calls[0].function.name == "lookup_stock"
    assert mention.choices[0].message.tool_calls[0].function.name == "lookup_stock"
    assert plain.choices[0].finish_reason == "stop"
    args = json.loads(scripted.choices[0].message.tool_calls[0].function.arguments)
    assert args == {"city": "Oslo", "unit": "celsius", "days": 2}


async def test_openai_structured_output(emu: Emulator) -> None:
    async with oai(emu) as client:
        parsed = await client.chat.completions.parse(
            model="m", messages=user("Make a plan"), response_format=Plan
        )
        mode = await client.chat.completions.create(
            model="m", messages=user("Answer in json"), response_format={"type": "json_object"}
        )
    plan = parsed.choices[0].message.parsed
    assert isinstance(plan, Plan)
    assert len(plan.steps) >= 2
    assert plan.priority == "low"
    result = json.loads(mode.choices[0].message.content)
    assert set(result) == {"result"}
    assert result["result"].startswith("[simulated reply from")


async def test_emulator_reply_directive(emu: Emulator) -> None:
    scripted = "Paris is the capital of France."
    async with oai(emu) as client:
        by_system = await client.chat.completions.create(
            model="m",
            messages=[{"role": "system", "content": f"EMULATOR_REPLY: {scripted}"}, *user("q?")],
        )
        by_user = await client.chat.completions.create(
            model="m", messages=user("Question?\nEMULATOR_REPLY: override")
        )
        truncated = await client.chat.completions.create(
            model="m", messages=user("tell me a story"), max_tokens=5
        )
    assert by_system.choices[0].message.content == scripted
    assert by_system.usage.completion_tokens == math.ceil(len(scripted) / 4)
    assert by_user.choices[0].message.content == "override"
    assert truncated.choices[0].finish_reason == "length"
    assert truncated.usage.completion_tokens == 5


@pytest.mark.parametrize(
    ("outcome", "exc", "status", "code"),
    [
        ("429", openai.RateLimitError, 429, "rate_limit_exceeded"),
        ("500", openai.InternalServerError, 500, None),
        ("503", openai.InternalServerError, 503, "service_unavailable"),
        ("529", openai.InternalServerError, 529, "overloaded"),
        ("quota", openai.RateLimitError, 429, "insufficient_quota"),
        ("auth", openai.AuthenticationError, 401, "invalid_api_key"),
        ("context_length", openai.BadRequestError, 400, "context_length_exceeded"),
        ("outage", openai.InternalServerError, 503, "service_unavailable"),
    ],
)
async def test_openai_error_statuses(
    emu: Emulator, outcome: str, exc: type[openai.APIStatusError], status: int, code: str | None
) -> None:
    emu.set_faults(OA, retry_after_s=1.5)
    emu.script(OA, [outcome])
    async with oai(emu) as client:
        with pytest.raises(exc) as info:
            await client.chat.completions.create(model="m", messages=user("hi"))
        ok = await client.chat.completions.create(model="m", messages=user("hi"))  # script used up
    err = info.value
    assert err.status_code == status
    assert err.code == code
    assert err.request_id
    assert err.request_id.startswith("req_")
    if outcome == "429":
        assert err.response.headers["retry-after"] == "2"
        assert err.response.headers["retry-after-ms"] == "1500"
    assert ok.choices[0].finish_reason == "stop"
    assert emu.counters(OA).by_outcome[outcome] == 1


async def test_openai_stream_faults(emu: Emulator) -> None:
    async with oai(emu) as client:
        full = (await client.chat.completions.create(model="m", messages=user("long"))).choices[0]
        emu.script(OA, ["stream_cut", "mid_stream_error"])

        cut = [
            c
            async for c in await client.chat.completions.create(
                model="m", messages=user("long"), stream=True
            )
        ]
        text = "".join(c.choices[0].delta.content or "" for c in cut if c.choices)
        assert all(c.choices[0].finish_reason is None for c in cut if c.choices)
        assert 0 < len(text) < len(full.message.content)
        assert full.message.content.startswith(text)

        seen: list[str] = []
        stream = await client.chat.completions.create(model="m", messages=user("long"), stream=True)
        with pytest.raises(openai.APIError) as info:
            await drain(stream, seen, lambda c: c.choices[0].delta.content or "")
        assert not isinstance(info.value, openai.APIStatusError)
        assert info.value.code == "server_error"
        assert info.value.type == "server_error"
        assert "".join(seen)
        assert full.message.content.startswith("".join(seen))

        emu.set_faults(OA, stream_cut_mode="abort")
        emu.script(OA, ["stream_cut"])
        stream = await client.chat.completions.create(model="m", messages=user("long"), stream=True)
        with pytest.raises(openai.APIConnectionError):
            await drain(stream, [], str)
    assert emu.counters(OA).by_outcome["stream_cut"] == 2


async def test_openai_refusal_forms(emu: Emulator) -> None:
    emu.script([OA, COMPAT], ["refusal", "refusal"])
    async with oai(emu) as client, oai(emu, COMPAT) as compat:
        plain = await client.chat.completions.create(model="m", messages=user("x"))
        chunks = [
            c
            async for c in await client.chat.completions.create(
                model="m", messages=user("x"), stream=True
            )
        ]
        with pytest.raises(openai.BadRequestError) as info:
            await compat.chat.completions.create(model="qwen-plus", messages=user("x"))
    assert plain.choices[0].finish_reason == "content_filter"
    assert plain.choices[0].message.content is None
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "content_filter"
    assert info.value.code == "data_inspection_failed"
    assert emu.counters(OA).by_outcome["refusal"] == 2


async def test_openai_transport_faults(emu: Emulator) -> None:
    emu.set_faults(OA, hang_s=10)
    emu.script(OA, ["reset", "hang", "malformed"])
    async with oai(emu, timeout=0.4) as client:
        with pytest.raises(openai.APIConnectionError):
            await client.chat.completions.create(model="m", messages=user("hi"))
        started = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            await client.chat.completions.create(model="m", messages=user("hi"))
        assert time.monotonic() - started < 3
        with pytest.raises((json.JSONDecodeError, openai.APIResponseValidationError)):
            await client.chat.completions.create(model="m", messages=user("hi"))
    by = emu.counters(OA).by_outcome
    assert (by["reset"], by["hang"], by["malformed"], by["ok"]) == (1, 1, 1, 0)


# =========================================================================== anthropic


async def test_anthropic_message_and_stream(emu: Emulator) -> None:
    kwargs: dict[str, Any] = {
        "model": "claude-haiku-4-5",
        "max_tokens": 512,
        "system": "You are terse.",
        "messages": user("Explain queues."),
    }
    async with ant(emu) as client:
        raw = await client.messages.with_raw_response.create(**kwargs)
        message = await raw.parse()
        async with client.messages.stream(**kwargs) as stream:
            pieces = [text async for text in stream.text_stream]
            final = await stream.get_final_message()
    assert raw.headers["request-id"].startswith("req_")
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.model == "claude-haiku-4-5"
    assert message.stop_reason == "end_turn"
    assert message.stop_sequence is None
    text = message.content[0].text
    assert text.startswith(f"[simulated reply from {AN}]")
    assert len(pieces) > 10
    assert "".join(pieces) == text
    assert final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == message.usage.output_tokens == math.ceil(len(text) / 4)
    assert final.usage.input_tokens == message.usage.input_tokens
    assert message.usage.input_tokens == math.ceil(len("You are terse.Explain queues.") / 4)
    assert message.usage.cache_read_input_tokens == 0

    # The raw event order, including the ping the SDK hides.
    async with (
        aiohttp.ClientSession() as http,
        http.post(emu.base_url(AN) + "/v1/messages", json={**kwargs, "stream": True}) as resp,
    ):
        events = re.findall(r"^event: (\w+)$", await resp.text(), re.MULTILINE)
    assert events[:4] == ["message_start", "ping", "content_block_start", "content_block_delta"]
    assert events[-3:] == ["content_block_stop", "message_delta", "message_stop"]


async def test_anthropic_tool_use_and_structured_output(emu: Emulator) -> None:
    async with ant(emu) as client:
        first = await client.messages.create(
            model="m",
            max_tokens=256,
            messages=user("Forecast please"),
            tools=ANTHROPIC_TOOLS,
            tool_choice={"type": "any"},
        )
        async with client.messages.stream(
            model="m", max_tokens=256, messages=user("Use a tool for Rome"), tools=ANTHROPIC_TOOLS
        ) as stream:
            streamed = await stream.get_final_message()
        block = first.content[0]
        assert first.stop_reason == "tool_use"
        assert block.type == "tool_use"
        assert block.id.startswith("toolu_")
        assert block.name == "get_weather"
        validate(block.input, WEATHER_TOOL_SCHEMA)
        assert streamed.stop_reason == "tool_use"
        assert streamed.content[0].input == block.input

        follow_up = await client.messages.create(
            model="m",
            max_tokens=256,
            messages=[
                *user("Forecast please"),
                {"role": "assistant", "content": [block.model_dump(exclude_none=True)]},
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "21C"}],
                },
            ],
            tools=ANTHROPIC_TOOLS,
            tool_choice={"type": "any"},
        )
        assert follow_up.stop_reason == "end_turn"
        assert follow_up.content[0].type == "text"

        schema = Plan.model_json_schema()
        structured = await client.messages.create(
            model="m",
            max_tokens=512,
            messages=user("plan"),
            output_config={"format": {"type": "json_schema", "schema": schema}},
        )
    plan = Plan.model_validate_json(structured.content[0].text)
    assert len(plan.steps) >= 2


@pytest.mark.parametrize(
    ("outcome", "exc", "status", "etype"),
    [
        ("429", anthropic.RateLimitError, 429, "rate_limit_error"),
        ("500", anthropic.InternalServerError, 500, "api_error"),
        ("503", anthropic.ServiceUnavailableError, 503, "api_error"),
        ("529", anthropic.OverloadedError, 529, "overloaded_error"),
        ("quota", anthropic.PaymentRequiredError, 402, "billing_error"),
        ("auth", anthropic.AuthenticationError, 401, "authentication_error"),
        ("context_length", anthropic.BadRequestError, 400, "invalid_request_error"),
    ],
)
async def test_anthropic_error_statuses(
    emu: Emulator, outcome: str, exc: type[anthropic.APIStatusError], status: int, etype: str
) -> None:
    emu.script(AN, [outcome])
    async with ant(emu) as client:
        with pytest.raises(exc) as info:
            await client.messages.create(model="m", max_tokens=64, messages=user("hi"))
    err = info.value
    assert (err.status_code, err.type) == (status, etype)
    assert err.request_id
    assert err.body["request_id"] == err.request_id
    if outcome == "429":
        assert err.response.headers["retry-after"] == "1"
        assert err.response.headers["retry-after-ms"] == "1000"
    if outcome == "context_length":
        assert re.fullmatch(r"prompt is too long: \d+ tokens > \d+ maximum", err.api_message)


async def test_anthropic_stream_faults_and_refusal(emu: Emulator) -> None:
    emu.script(AN, ["stream_cut", "mid_stream_error", "refusal", "refusal"])
    kwargs: dict[str, Any] = {"model": "m", "max_tokens": 256, "messages": user("story")}
    async with ant(emu) as client:
        cut = [e.type async for e in await client.messages.create(**kwargs, stream=True)]
        assert cut[0] == "message_start"
        assert "content_block_delta" in cut
        assert "message_delta" not in cut
        assert "message_stop" not in cut

        seen: list[str] = []
        stream = await client.messages.create(**kwargs, stream=True)
        with pytest.raises(anthropic.APIStatusError) as info:
            await drain(stream, seen, lambda event: event.type)
        assert "content_block_delta" in seen
        assert info.value.status_code == 200
        assert info.value.type == "overloaded_error"

        refused = await client.messages.create(**kwargs)
        refused_events = [e async for e in await client.messages.create(**kwargs, stream=True)]
    assert refused.stop_reason == "refusal"
    assert refused.content == []
    assert refused.stop_details is not None
    assert refused.stop_details.type == "refusal"
    deltas = [e for e in refused_events if e.type == "message_delta"]
    assert deltas[0].delta.stop_reason == "refusal"


async def test_anthropic_context_limit_and_auth_from_config(emu: Emulator) -> None:
    prompt = "word " * 200  # 1000 chars → 250 tokens
    emu.set_faults(AN, context_limit_tokens=100)
    async with ant(emu) as client, ant(emu, api_key="wrong") as bad_key:
        with pytest.raises(anthropic.BadRequestError) as info:
            await client.messages.create(model="m", max_tokens=64, messages=user(prompt))
        assert info.value.api_message == "prompt is too long: 250 tokens > 100 maximum"
        short = await client.messages.create(model="m", max_tokens=64, messages=user("short"))
        assert short.stop_reason == "end_turn"

        emu.set_faults(AN, auth_key="test")
        assert (await client.messages.create(model="m", max_tokens=64, messages=user("a"))).content
        with pytest.raises(anthropic.AuthenticationError):
            await bad_key.messages.create(model="m", max_tokens=64, messages=user("a"))
    by = emu.counters(AN).by_outcome
    assert (by["context_length"], by["auth"], by["ok"]) == (1, 1, 2)


# =========================================================================== dashscope


@pytest.mark.usefixtures("ds_session")
async def test_dashscope_reply_and_incremental_stream(emu: Emulator) -> None:
    messages = [{"role": "system", "content": "Be kind."}, *user("Describe Hangzhou.")]
    plain = await ds_call(emu, messages)
    assert plain.status_code == 200
    assert plain.code == ""
    assert plain.request_id.startswith("req_")
    choice = plain.output.choices[0]
    text = choice.message.content
    assert text.startswith(f"[simulated reply from {DS}]")
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert plain.usage.input_tokens == math.ceil(len("Be kind.Describe Hangzhou.") / 4)
    assert plain.usage.output_tokens == math.ceil(len(text) / 4)
    assert plain.usage["total_tokens"] == plain.usage.input_tokens + plain.usage.output_tokens

    frames = [r async for r in await ds_call(emu, messages, stream=True)]
    assert all(r.status_code == 200 for r in frames)
    assert len(frames) > 10
    assert "".join(r.output.choices[0].message.content for r in frames) == text
    assert [r.output.choices[0].finish_reason for r in frames][-2:] == ["null", "stop"]
    assert frames[-1].usage == plain.usage
    assert emu.counters(DS).streamed == 1


@pytest.mark.usefixtures("ds_session")
async def test_dashscope_tools_and_json(emu: Emulator) -> None:
    call = await ds_call(emu, user("weather in Beijing via the tool"), tools=OPENAI_TOOLS)
    choice = call.output.choices[0]
    assert choice.finish_reason == "tool_calls"
    tool_call = choice.message.tool_calls[0]
    assert tool_call["function"]["name"] == "get_weather"
    assert tool_call["id"].startswith("call_")
    validate(json.loads(tool_call["function"]["arguments"]), WEATHER_TOOL_SCHEMA)

    frames = [
        r async for r in await ds_call(emu, user("use the tool"), tools=OPENAI_TOOLS, stream=True)
    ]
    pieces = [f.output.choices[0].message.tool_calls[0] for f in frames[:-1]]
    assert pieces[0]["function"]["name"] == "get_weather"
    assert json.loads("".join(p["function"]["arguments"] for p in pieces)) == json.loads(
        tool_call["function"]["arguments"]
    )
    assert frames[-1].output.choices[0].finish_reason == "tool_calls"

    after = await ds_call(
        emu,
        [
            *user("weather in Beijing via the tool"),
            {"role": "assistant", "content": "", "tool_calls": [dict(tool_call)]},
            {"role": "tool", "content": "sunny", "tool_call_id": tool_call["id"]},
        ],
        tools=OPENAI_TOOLS,
    )
    assert after.output.choices[0].finish_reason == "stop"

    as_json = await ds_call(emu, user("reply in json"), response_format={"type": "json_object"})
    assert "result" in json.loads(as_json.output.choices[0].message.content)
    schema = Plan.model_json_schema()
    as_schema = await ds_call(
        emu,
        user("plan"),
        response_format={"type": "json_schema", "json_schema": {"name": "plan", "schema": schema}},
    )
    Plan.model_validate_json(as_schema.output.choices[0].message.content)


@pytest.mark.usefixtures("ds_session")
@pytest.mark.parametrize(
    ("outcome", "status", "code"),
    [
        ("429", 429, "Throttling.RateQuota"),
        ("500", 500, "InternalError"),
        ("503", 503, "ModelServingError"),
        ("quota", 400, "Arrearage"),
        ("auth", 401, "InvalidApiKey"),
        ("context_length", 400, "InvalidParameter"),
        ("refusal", 400, "DataInspectionFailed"),
        ("outage", 503, "ModelUnavailable"),
    ],
)
async def test_dashscope_errors_are_returned(
    emu: Emulator, outcome: str, status: int, code: str
) -> None:
    emu.script(DS, [outcome, outcome])
    plain = await ds_call(emu, user("hi"))
    streamed = [r async for r in await ds_call(emu, user("hi"), stream=True)]
    for response in (plain, streamed[-1]):
        assert (response.status_code, response.code) == (status, code)
        assert response.request_id.startswith("req_")
    assert len(streamed) == 1
    if outcome == "context_length":
        assert re.fullmatch(r"Range of input length should be \[1, \d+\]", plain.message)


@pytest.mark.usefixtures("ds_session")
async def test_dashscope_stream_faults(emu: Emulator) -> None:
    emu.script(DS, ["stream_cut", "mid_stream_error", "malformed"])
    cut = [r async for r in await ds_call(emu, user("long"), stream=True)]
    assert cut
    assert all(r.status_code == 200 for r in cut)
    assert all(r.output.choices[0].finish_reason == "null" for r in cut)

    broken = [r async for r in await ds_call(emu, user("long"), stream=True)]
    assert broken[0].status_code == 200
    assert (broken[-1].status_code, broken[-1].code) == (500, "InternalError")

    malformed = [r async for r in await ds_call(emu, user("long"), stream=True)]
    assert (malformed[-1].status_code, malformed[-1].code) == (500, "Unknown")


@pytest.mark.usefixtures("ds_session")
async def test_dashscope_reset_is_retried_once_by_the_sdk(emu: Emulator) -> None:
    # dashscope resends once when a connection drops before any response.
    emu.script(DS, ["reset", "ok"])
    assert (await ds_call(emu, user("hi"))).status_code == 200
    emu.script(DS, ["reset", "reset"])
    with pytest.raises(aiohttp.ClientError):
        await ds_call(emu, user("hi"))
    assert emu.counters(DS).by_outcome["reset"] == 3


# =========================================================================== counters & control


async def test_counters_scripts_and_attempt_headers(emu: Emulator) -> None:
    emu.script(OA, ["429", "ok"])
    assert emu.pending_script(OA) == ["429", "ok"]
    async with oai(emu) as client:
        for attempt in ("1", "2"):
            headers = {"x-hybridstack-call": "call-1", "x-hybridstack-attempt": attempt}
            try:
                reply = await client.chat.completions.create(
                    model="m", messages=user("count me"), extra_headers=headers
                )
            except openai.RateLimitError:
                continue
        await client.chat.completions.create(
            model="m", messages=user("count me"), extra_headers={"x-hybridstack-call": "call-2"}
        )
    counters = emu.counters(OA)
    assert counters.requests == 3
    assert counters.ok == 2
    assert counters.attempts == [
        ("call-1", "1", "429"),
        ("call-1", "2", "ok"),
        ("call-2", None, "ok"),
    ]
    assert counters.ok_by_call() == {"call-1": 1, "call-2": 1}
    assert counters.input_tokens == 2 * reply.usage.prompt_tokens
    assert counters.output_tokens == 2 * reply.usage.completion_tokens
    assert set(counters.by_outcome) == set(OUTCOMES)
    assert emu.total() == 3
    assert emu.total("429") == 1
    assert emu.total("ok") == 2
    assert set(emu.all_counters()) == {d.name for d in DEPLOYMENTS}

    emu.reset_counters()
    assert emu.counters(OA).requests == 0
    assert emu.total() == 0
    with pytest.raises(ValueError, match="unknown scripted outcomes"):
        emu.script(OA, ["418"])
    with pytest.raises(ValueError, match="unknown outcome"):
        emu.total("teapot")


async def _outcomes(emu: Emulator, name: str, n: int, *, stream: bool = False) -> list[int]:
    statuses = []
    async with aiohttp.ClientSession() as http:
        for _ in range(n):
            body = {"model": "m", "messages": user("x"), "stream": stream}
            async with http.post(emu.base_url(name) + "/chat/completions", json=body) as resp:
                await resp.read()
                statuses.append(resp.status)
    return statuses


async def test_seeded_probabilities_are_reproducible(
    emulator_factory: Callable[..., Awaitable[Emulator]],
) -> None:
    flaky = [EmulatedDeployment(name="flaky", protocol="openai", faults=FaultProfile(p_429=0.5))]
    first = await emulator_factory(flaky, seed=3)
    second = await emulator_factory(flaky, seed=3)
    other = await emulator_factory(flaky, seed=4)
    a, b, c = [await _outcomes(e, "flaky", 24) for e in (first, second, other)]
    assert a == b
    assert a != c
    assert set(a) == {200, 429}
    assert first.counters("flaky").by_outcome["429"] == a.count(429)

    # Stream-only faults leave plain requests alone.
    first.set_faults("flaky", FaultProfile(p_stream_cut=1.0))
    assert await _outcomes(first, "flaky", 3) == [200, 200, 200]
    assert first.counters("flaky").by_outcome["stream_cut"] == 0

    with pytest.raises(pydantic.ValidationError, match="sum to at most 1"):
        FaultProfile(p_429=0.7, p_500=0.6)
    with pytest.raises(pydantic.ValidationError):
        first.set_faults("flaky", p_teapot=0.1)


async def test_runtime_outage_and_quota(emu: Emulator) -> None:
    emu.set_outage([OA, COMPAT])
    async with oai(emu) as client:
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(model="m", messages=user("hi"))
        emu.set_outage(OA, mode="reset")
        with pytest.raises(openai.APIConnectionError):
            await client.chat.completions.create(model="m", messages=user("hi"))
        emu.set_outage(OA, False)
        emu.set_faults(OA, quota_exhausted=True)
        with pytest.raises(openai.RateLimitError) as info:
            await client.chat.completions.create(model="m", messages=user("hi"))
        assert info.value.code == "insufficient_quota"
        emu.set_faults(OA, quota_exhausted=False)
        assert (await client.chat.completions.create(model="m", messages=user("hi"))).choices
    assert emu.faults(COMPAT).outage is True
    assert emu.counters(OA).by_outcome["outage"] == 2


class StepClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


async def test_flapping_deployment_goes_down_and_up_on_its_cycle() -> None:
    clock = StepClock()
    spec = EmulatedDeployment(
        name=OA, protocol="openai", faults=FaultProfile(flap_up_s=2.0, flap_down_s=1.0)
    )
    async with Emulator([spec], clock=clock) as emu, oai(emu) as client:
        seen: list[bool] = []
        for offset in (0.0, 1.9, 2.0, 2.9, 3.0, 4.5, 5.2, 6.1):  # up 0-2, down 2-3, up 3-5 …
            clock.now = 500.0 + offset
            assert emu.is_down(OA) is (offset % 3.0 >= 2.0)
            try:
                await client.chat.completions.create(model="m", messages=user("hi"))
                seen.append(True)
            except openai.InternalServerError as error:
                seen.append(error.status_code != 503)  # a 503 outage is "down" (False)
        assert seen == [True, True, False, False, True, True, False, True]
        assert emu.counters(OA).by_outcome["outage"] == 3
        # Setting flapping again starts a new cycle (up) from now; other changes keep it.
        clock.now = 502.5  # inside a down phase of the old cycle
        emu.set_faults(OA, flap_up_s=1.0, flap_down_s=1.0)
        assert not emu.is_down(OA)
        clock.now += 1.5
        assert emu.is_down(OA)
        emu.set_faults(OA, latency_ms=1)
        assert emu.is_down(OA)
        emu.set_faults(OA, flap_up_s=0, flap_down_s=0)
        assert not emu.is_down(OA)
    with pytest.raises(pydantic.ValidationError, match="flap_up_s and flap_down_s"):
        FaultProfile(flap_up_s=1.0)


@pytest.mark.usefixtures("ds_session")
async def test_error_codes_and_messages_can_be_overridden(emu: Emulator) -> None:
    emu.set_faults(
        DS,
        error_codes={"429": "Throttling.AllocationQuota", "529": "Throttling.AllocationQuota"},
        error_messages={"429": "Allocated quota exceeded, please increase your quota limit."},
    )
    emu.script(DS, ["429", "529", "500"])
    throttled = await ds_call(emu, user("hi"))
    assert (throttled.status_code, throttled.code) == (429, "Throttling.AllocationQuota")
    assert throttled.message == "Allocated quota exceeded, please increase your quota limit."
    overloaded = await ds_call(emu, user("hi"))
    assert (overloaded.status_code, overloaded.code) == (529, "Throttling.AllocationQuota")
    assert overloaded.message == "Model serving is overloaded (simulated)."  # not overridden
    untouched = await ds_call(emu, user("hi"))
    assert (untouched.status_code, untouched.code) == (500, "InternalError")

    emu.set_faults(OA, error_codes={"500": "upstream_gone"})
    emu.script(OA, ["500"])
    async with oai(emu) as client:
        with pytest.raises(openai.InternalServerError) as info:
            await client.chat.completions.create(model="m", messages=user("hi"))
    assert info.value.code == "upstream_gone"
    with pytest.raises(pydantic.ValidationError, match="not error outcomes"):
        FaultProfile(error_codes={"hang": "x"})


async def test_latency_and_token_pacing(emu: Emulator) -> None:
    emu.set_faults(OA, latency_ms=120, ttft_ms=150, inter_token_ms=5)
    async with oai(emu) as client:
        started = time.monotonic()
        stream = await client.chat.completions.create(model="m", messages=user("x"), stream=True)
        first_token_at = None
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content and first_token_at is None:
                first_token_at = time.monotonic() - started
        total = time.monotonic() - started
        assert first_token_at is not None
        assert first_token_at >= 0.26
        assert total >= first_token_at + 0.05  # ~30 further tokens at 5 ms each

        started = time.monotonic()
        await client.chat.completions.create(model="m", messages=user("x"))
        assert time.monotonic() - started >= 0.3  # a plain request waits as long as the stream


async def test_concurrent_clients(emu: Emulator) -> None:
    async with oai(emu) as client:
        replies = await asyncio.gather(
            *(client.chat.completions.create(model="m", messages=user(f"q{i}")) for i in range(64))
        )
    assert len({r.choices[0].message.content for r in replies}) == 64
    assert emu.counters(OA).ok == 64


async def test_hung_request_does_not_block_stop(
    emulator_factory: Callable[..., Awaitable[Emulator]],
) -> None:
    emu = await emulator_factory([EmulatedDeployment(name="h", protocol="openai")])
    emu.script("h", ["hang"])
    async with oai(emu, "h", timeout=10) as client:
        pending = asyncio.create_task(client.chat.completions.create(model="m", messages=user("x")))
        await asyncio.sleep(0.2)
        started = time.monotonic()
        await emu.stop()
        assert time.monotonic() - started < 3
        with pytest.raises(openai.APIConnectionError):
            await pending


# =========================================================================== sync thread mode & CLI


def test_sync_thread_mode() -> None:
    config = EmulatorConfig(deployments=[EmulatedDeployment(name="sync@openai", protocol="openai")])
    with Emulator(config) as emu:
        client = openai.OpenAI(base_url=emu.base_url("sync@openai"), api_key="test", max_retries=0)
        reply = client.chat.completions.create(model="m", messages=user("hi"))
        assert reply.choices[0].message.content.startswith("[simulated reply from sync@openai]")
        emu.script("sync@openai", ["500"])
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="m", messages=user("hi"))
        emu.add_deployment(name="late@anthropic", protocol="anthropic")
        late = anthropic.Anthropic(
            base_url=emu.base_url("late@anthropic"), api_key="t", max_retries=0
        )
        assert late.messages.create(model="m", max_tokens=9, messages=user("x")).content
        client.close()
        late.close()
        assert emu.counters("sync@openai").by_outcome == {
            **dict.fromkeys(OUTCOMES, 0),
            "ok": 1,
            "500": 1,
        }
    assert not emu.running


def test_sync_emulator_factory_fixture(sync_emulator_factory: Callable[..., Emulator]) -> None:
    emu = sync_emulator_factory([{"name": "f", "protocol": "openai"}])
    client = openai.OpenAI(base_url=emu.base_url("f"), api_key="t", max_retries=0)
    assert client.chat.completions.create(model="m", messages=user("x")).choices
    client.close()


def test_cli_serves_until_terminated(tmp_path: Path) -> None:
    config = tmp_path / "emulator.toml"
    config.write_text(
        'seed = 1\n[[deployments]]\nname = "gpt@cli"\nprotocol = "openai"\nmodel = "gpt-4o-mini"\n'
        '[[deployments]]\nname = "qwen@cli"\nprotocol = "dashscope"\n',
        encoding="utf-8",
    )
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hybridstack.testing.emulator",
            "--config",
            str(config),
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=root,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        match = re.fullmatch(
            r"hybridstack emulator listening on (http://127\.0\.0\.1:\d+) \(2 deployments\)\n",
            first,
        )
        assert match, first
        lines = [proc.stdout.readline().split() for _ in range(2)]
        assert lines[0] == ["gpt@cli", "[openai]", f"{match.group(1)}/d/gpt@cli/v1"]
        assert lines[1] == ["qwen@cli", "[dashscope]", f"{match.group(1)}/d/qwen@cli/api/v1"]
        client = openai.OpenAI(base_url=lines[0][2], api_key="t", max_retries=0)
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=user("hi"))
        client.close()
        assert reply.model == "gpt-4o-mini"
        assert reply.choices[0].message.content.startswith("[simulated reply from gpt@cli]")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0


def test_cli_reports_bad_config(tmp_path: Path) -> None:
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"deployments": [{"name": "x", "protocol": "grpc"}]}))
    result = subprocess.run(
        [sys.executable, "-m", "hybridstack.testing.emulator", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=Path(__file__).resolve().parents[1],
        check=False,
    )
    assert result.returncode == 2
    assert "bad.json" in result.stderr
    assert "deployments[0].protocol" in result.stderr


# =========================================================================== config & schema


def test_config_files_and_errors(tmp_path: Path) -> None:
    toml = tmp_path / "e.toml"
    toml.write_text(
        '[[deployments]]\nname = "a"\nprotocol = "anthropic"\n[deployments.faults]\np_429 = 0.25\n'
    )
    yaml_file = tmp_path / "e.yaml"
    yaml_file.write_text("seed: 5\ndeployments:\n  - name: d\n    protocol: dashscope\n")
    assert EmulatorConfig.from_file(toml).deployments[0].faults.p_429 == 0.25
    loaded = EmulatorConfig.from_file(yaml_file)
    assert loaded.seed == 5
    assert loaded.deployments[0].model == "d"

    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[deployments]]\nname = "a"\nprotocol = "openai"\n[deployments.faults]\np_429 = 2\n'
    )
    with pytest.raises(EmulatorConfigError, match=r"bad\.toml: deployments\[0\]\.faults\.p_429"):
        EmulatorConfig.from_file(bad)
    typo = tmp_path / "typo.json"
    typo.write_text('{"deployments": [{"name": "a", "protocol": "openai", "fautls": {}}]}')
    with pytest.raises(EmulatorConfigError, match=r"typo\.json: deployments\[0\]\.fautls"):
        EmulatorConfig.from_file(typo)
    with pytest.raises(EmulatorConfigError, match=r"missing\.toml"):
        EmulatorConfig.from_file(tmp_path / "missing.toml")

    with pytest.raises(pydantic.ValidationError, match="loopback"):
        EmulatorConfig(host="0.0.0.0")
    assert EmulatorConfig(host="0.0.0.0", allow_non_loopback=True).host == "0.0.0.0"
    with pytest.raises(pydantic.ValidationError, match="duplicate"):
        EmulatorConfig(deployments=[{"name": "a", "protocol": "openai"}] * 2)


@pytest.mark.parametrize(
    "schema",
    [
        Plan.model_json_schema(),
        WEATHER_TOOL_SCHEMA,
        {"type": ["string", "null"], "maxLength": 3},
        {"type": "array", "items": {"type": "integer", "multipleOf": 5, "exclusiveMinimum": 7}},
        {"type": "array", "uniqueItems": True, "minItems": 3, "items": {"type": "string"}},
        {
            "allOf": [
                {"properties": {"a": {"type": "string"}}, "required": ["a"]},
                {"required": ["b"]},
            ]
        },
        {"oneOf": [{"type": "null"}, {"type": "number", "minimum": 10, "maximum": 11}]},
        {"type": "string", "format": "date-time"},
        {
            "$defs": {
                "node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/node"}}}
            },
            "$ref": "#/$defs/node",
        },
    ],
)
def test_schema_examples_validate(schema: dict[str, Any]) -> None:
    validate(example_for_schema(schema), schema)
    assert example_for_schema(schema) == example_for_schema(schema)
