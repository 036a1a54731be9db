"""HybridChatModel: a hybridstack Stack as a LangChain chat model, inside LangGraph's ReAct agent.

Everything but the message-mapping unit tests runs on the real Stack over the emulator
(``offline_stack``), so routing, fail-over and the ledger are the production paths.
"""

from __future__ import annotations

import warnings

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from pydantic import BaseModel

from hybridstack.graph import HybridChatModel
from hybridstack.graph.langchain import from_langchain_messages, to_ai_message
from hybridstack.testing import offline_stack, offline_stack_sync
from hybridstack.types import ChatResponse, ToolCall, Usage


@tool
def get_weather(city: str) -> str:
    """Return today's weather for a city."""
    return f"It is sunny in {city}."


@tool
def get_time(zone: str) -> str:
    """Return the current time in a time zone."""
    return f"12:00 in {zone}"


class Person(BaseModel):
    """A person mentioned in the text."""

    name: str
    age: int


def _react_agent(model: HybridChatModel, tools: list) -> object:
    # langgraph 1.x still ships create_react_agent (it points to langchain.agents, which
    # this project does not depend on); silence only that deprecation notice.
    from langgraph.prebuilt import create_react_agent

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return create_react_agent(model, tools)


def test_messages_map_both_ways() -> None:
    history = [
        SystemMessage("be brief"),
        HumanMessage([{"type": "text", "text": "weather in "}, {"type": "text", "text": "Oslo?"}]),
        AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Oslo"}, "id": "c1"}]),
        ToolMessage("sunny", tool_call_id="c1", name="get_weather"),
    ]
    mapped = from_langchain_messages(history)
    assert [m.role for m in mapped] == ["system", "user", "assistant", "tool"]
    assert mapped[1].text == "weather in Oslo?"
    assert mapped[2].tool_calls == (
        ToolCall(id="c1", name="get_weather", arguments={"city": "Oslo"}),
    )
    assert mapped[3].tool_call_id == "c1"
    assert mapped[3].name == "get_weather"

    reply = ChatResponse(
        text="",
        tool_calls=(ToolCall(id="c2", name="get_time", arguments={"zone": "UTC"}),),
        finish_reason="tool_calls",
        usage=Usage(input_tokens=10, output_tokens=5, cached_input_tokens=4),
        deployment="qwen-plus@dashscope-sg",
        family="qwen-plus",
        region="ap-southeast-1",
        jurisdiction="SG",
        cost_usd=0.002,
        attempts=2,
    )
    message = to_ai_message(reply)
    assert message.tool_calls == [
        {"name": "get_time", "args": {"zone": "UTC"}, "id": "c2", "type": "tool_call"}
    ]
    assert message.usage_metadata["total_tokens"] == 15
    assert message.usage_metadata["input_token_details"] == {"cache_read": 4}
    meta = message.response_metadata
    assert meta["deployment"] == "qwen-plus@dashscope-sg"
    assert (meta["jurisdiction"], meta["cost_usd"], meta["attempts"]) == ("SG", 0.002, 2)


async def test_react_agent_calls_a_tool_and_answers_over_the_real_stack() -> None:
    async with offline_stack(seed=3, run_id="react-1") as stack:
        model = HybridChatModel(stack=stack, skill="general", data_class="public")
        agent = _react_agent(model, [get_weather, get_time])
        out = await agent.ainvoke(
            {"messages": [("user", "What is the weather in Paris? Use get_weather.")]}
        )
        messages = out["messages"]
        assert [type(m).__name__ for m in messages] == [
            "HumanMessage",
            "AIMessage",
            "ToolMessage",
            "AIMessage",
        ]
        call = messages[1].tool_calls[0]
        assert call["name"] == "get_weather"
        assert messages[2].tool_call_id == call["id"]
        assert messages[2].content.startswith("It is sunny in")
        final = messages[3]
        assert final.content.startswith("[simulated reply from ")
        assert not final.tool_calls
        for ai in (messages[1], messages[3]):
            meta = ai.response_metadata
            assert meta["deployment"] in {d.id for d in stack.catalog}
            assert meta["jurisdiction"]
            assert meta["cost_usd"] > 0
            assert ai.usage_metadata["output_tokens"] > 0
        # Both model calls went through the stack's ledger under its run id.
        ok = [a for a in stack.ledger.attempts(run_id="react-1") if a.outcome == "ok"]
        assert len(ok) == 2


async def test_react_agent_fails_over_when_a_region_is_down() -> None:
    async with offline_stack(seed=3, policy="cheapest") as stack:
        plan = stack.route("What is the weather in Rome? Use get_weather.", skill="general")
        down = [c.deployment.id for c in plan.candidates[:2]]
        stack.emulator.set_faults(down, quota_exhausted=True)
        model = HybridChatModel(stack=stack, skill="general")
        out = await _react_agent(model, [get_weather]).ainvoke(
            {"messages": [("user", "What is the weather in Rome? Use get_weather.")]}
        )
        first = out["messages"][1]
        assert first.tool_calls
        assert first.response_metadata["deployment"] not in down
        assert first.response_metadata["attempts"] >= 2


async def test_astream_chunks_add_up_with_usage_and_routing_metadata() -> None:
    async with offline_stack(seed=3) as stack:
        model = HybridChatModel(stack=stack, skill="general")
        chunks = [c async for c in model.astream("Tell me about routing.")]
        assert len(chunks) > 3
        total = chunks[0]
        for chunk in chunks[1:]:
            total = total + chunk
        assert total.content.startswith("[simulated reply from ")
        assert total.usage_metadata["output_tokens"] > 0
        assert total.response_metadata["deployment"] in total.content
        assert chunks[-1].chunk_position == "last"


async def test_structured_output_both_methods_and_raw() -> None:
    async with offline_stack(seed=3) as stack:
        model = HybridChatModel(stack=stack, skill="general")
        person = await model.with_structured_output(Person).ainvoke(
            "Extract the person: Bob is three."
        )
        assert isinstance(person, Person)
        # json_schema: pinned to a family whose hosts enforce schemas (json_object-only
        # hosts get the schema as an instruction, which the emulator does not follow).
        strict = HybridChatModel(stack=stack, skill="general", model="gpt-4o-mini")
        person = await strict.with_structured_output(Person, method="json_schema").ainvoke(
            "Extract the person: Bob is three."
        )
        assert isinstance(person, Person)
        raw = await model.with_structured_output(Person, include_raw=True).ainvoke(
            "Extract the person: Bob is three."
        )
        assert isinstance(raw["parsed"], Person)
        assert raw["parsing_error"] is None
        assert raw["raw"].tool_calls[0]["name"] == "Person"
        as_dict = await model.with_structured_output(Person.model_json_schema()).ainvoke(
            "Extract the person: Bob is three."
        )
        assert set(as_dict) == {"name", "age"}


async def test_bind_tools_with_a_named_choice_offers_only_that_tool() -> None:
    async with offline_stack(seed=3) as stack:
        model = HybridChatModel(stack=stack, skill="general")
        bound = model.bind_tools([get_weather, get_time], tool_choice="get_time")
        reply = await bound.ainvoke("Hello!")  # no tool named: the choice forces one
        assert [c["name"] for c in reply.tool_calls] == ["get_time"]
        free = await model.bind_tools([get_weather]).ainvoke("Just say hello.")
        assert free.tool_calls == []


async def test_data_class_keeps_calls_in_allowed_jurisdictions() -> None:
    async with offline_stack(seed=3) as stack:
        allowed = stack.router.data_classes.allowed("personal")
        model = HybridChatModel(stack=stack, skill="general", data_class="personal")
        for _ in range(3):
            reply = await model.ainvoke("Summarise: Anna Schmidt, born 1980, lives in Berlin.")
            assert allowed is None or reply.response_metadata["jurisdiction"] in allowed


def test_sync_invoke_and_stream() -> None:
    with offline_stack_sync(seed=3) as stack:
        model = HybridChatModel(stack=stack, skill="general")
        reply = model.invoke("Say hello.")
        assert reply.content.startswith("[simulated reply from ")
        assert reply.response_metadata["jurisdiction"]
        text = "".join(chunk.content for chunk in model.stream("Say hello again."))
        assert text.startswith("[simulated reply from ")


def test_unsupported_arguments_are_refused() -> None:
    model = HybridChatModel(stack=object())
    with pytest.raises(ValueError, match="unsupported arguments"):
        model.with_structured_output(Person, nonsense=True)
    with pytest.raises(ValueError, match="method must be"):
        model.with_structured_output(Person, method="xml")  # type: ignore[arg-type]
