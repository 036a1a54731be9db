"""Per-call ``extra_headers=`` reach the provider over real HTTP, for every wire protocol."""

from __future__ import annotations

import logging

import pytest

from hybridstack import InvalidRequestError
from hybridstack.testing import offline_stack
from hybridstack.types import ChatRequest, Message

#: One deployment per wire protocol (real openai, anthropic and dashscope SDK clients).
BY_PROTOCOL = {
    "openai": "gpt-4o-mini@openai-us",
    "anthropic": "claude-haiku-4.5@anthropic-us",
    "dashscope": "qwen-plus@dashscope-cn",
}


@pytest.mark.parametrize("protocol", sorted(BY_PROTOCOL))
@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_extra_headers_are_sent_with_the_request(protocol: str, streamed: bool) -> None:
    deployment = BY_PROTOCOL[protocol]
    headers = {"x-trace-id": f"trace-{protocol}", "Idempotency-Key": "order-42"}
    async with offline_stack(seed=1) as stack:
        assert stack.catalog.deployments[deployment].protocol == protocol
        if streamed:
            events = [e async for e in stack.stream("Hi", model=deployment, extra_headers=headers)]
            reply = events[-1].response  # type: ignore[union-attr]
        else:
            reply = await stack.complete("Hi", model=deployment, extra_headers=headers)
        assert reply.deployment == deployment
        [seen] = stack.emulator.received_headers(deployment)
        assert seen["x-trace-id"] == f"trace-{protocol}"
        assert seen["idempotency-key"] == "order-42"
        # hybridstack's own attempt ids still go with it
        assert seen["x-hybridstack-attempt"].endswith("-0")


async def test_extra_headers_go_with_every_attempt_of_a_fail_over() -> None:
    async with offline_stack(seed=1, policy="cheapest") as stack:
        plan = stack.route("Hi", model="qwen-plus")
        first = plan.deployment_ids[0]
        stack.emulator.set_outage(first, True)
        reply = await stack.complete("Hi", model="qwen-plus", extra_headers={"x-trace-id": "t1"})
        assert reply.deployment != first
        assert [h["x-trace-id"] for h in stack.emulator.received_headers(first)] == ["t1"]
        assert [h["x-trace-id"] for h in stack.emulator.received_headers(reply.deployment)] == [
            "t1"
        ]


@pytest.mark.parametrize(
    ("headers", "needle"),
    [
        ({"Authorization": "Bearer sk-mine"}, "cannot be set per call"),
        ({"x-api-key": "k"}, "cannot be set per call"),
        ({"X-Hybridstack-Attempt": "a-0"}, "cannot be set per call"),
        ({"x-trace": "a\r\nX-Evil: 1"}, "line break"),
        ({"x-trace": 7}, "must be text"),
        ({"bad name": "v"}, "not a valid HTTP header name"),
        (["x-trace", "v"], "dict of header name"),
    ],
)
async def test_bad_extra_headers_are_refused_before_routing(headers: object, needle: str) -> None:
    async with offline_stack(seed=1) as stack:
        with pytest.raises(InvalidRequestError, match=needle) as info:
            await stack.complete("Hi", extra_headers=headers)  # type: ignore[arg-type]
        assert info.value.field == "extra_headers"  # type: ignore[attr-defined]
        assert stack.emulator.total() == 0


def test_extra_headers_are_never_in_a_repr_or_a_dump() -> None:
    secret = "tok-9f8e7d6c5b4a39281706"
    request = ChatRequest(messages=[Message.user("Hi")], extra_headers={"x-session-token": secret})
    assert request.extra_headers == {"x-session-token": secret}
    assert secret not in repr(request)
    assert secret not in request.model_dump_json()
    assert "extra_headers" not in request.model_dump()


async def test_extra_headers_with_a_request_object_are_merged() -> None:
    async with offline_stack(seed=1) as stack:
        base = ChatRequest(messages=[Message.user("Hi")], extra_headers={"x-a": "1"})
        deployment = BY_PROTOCOL["openai"]
        await stack.complete(base, model=deployment, extra_headers={"x-b": "2"})
        [seen] = stack.emulator.received_headers(deployment)
        assert (seen["x-a"], seen["x-b"]) == ("1", "2")


async def test_a_secret_looking_header_never_reaches_a_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "sess-4f1c9a7e2b8d6035c1e9"
    deployment = BY_PROTOCOL["openai"]
    with caplog.at_level(logging.DEBUG):
        async with offline_stack(seed=1) as stack:
            await stack.complete("Hi", model=deployment, extra_headers={"x-session-token": secret})
            [seen] = stack.emulator.received_headers(deployment)
    assert seen["x-session-token"] == secret  # sent as given …
    assert caplog.records  # (the SDKs and hybridstack did log at DEBUG) …
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert secret not in logged  # … but never the value
    # … and a log record that would show it has it scrubbed
    record = logging.getLogger("hybridstack.test").makeRecord(
        "hybridstack.test", logging.DEBUG, __file__, 1, "headers: %s", (secret,), None
    )
    assert secret not in record.getMessage()
