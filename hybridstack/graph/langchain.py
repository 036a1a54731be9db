"""A LangChain ``BaseChatModel`` over a hybridstack Stack, so routing, fail-over and the
ledger drop into existing LangChain / LangGraph code.

    model = HybridChatModel(stack=stack, skill="reasoning", data_class="internal")
    agent = create_react_agent(model, tools)          # langgraph.prebuilt

One job: translate at the boundary. LangChain messages become hybridstack
:class:`~hybridstack.types.Message` values (``AIMessage.tool_calls`` ↔ ``ToolCall``,
``ToolMessage.tool_call_id`` ↔ ``tool_call_id``), and a
:class:`~hybridstack.types.ChatResponse` becomes an ``AIMessage`` with
``usage_metadata`` and ``response_metadata`` (deployment, family, region,
jurisdiction, cost, attempts). Every call goes through ``stack.complete`` /
``stack.stream``, so the stack decides where it runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from operator import itemgetter
from typing import Any, Literal, cast

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import (
    JsonOutputKeyToolsParser,
    PydanticToolsParser,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from pydantic import BaseModel, ConfigDict, Field, SkipValidation

from hybridstack.graph.ports import AgentStack, SyncStack
from hybridstack.types import ChatRequest, ChatResponse, Message, StreamEvent, Tool, ToolCall

__all__ = ["HybridChatModel", "from_langchain_messages", "to_ai_message"]


# --- message mapping ----------------------------------------------------------------------


def _text_of(content: Any) -> str:
    """Plain text of LangChain content (a string or a list of content blocks)."""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content or ():
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") in ("text", None) and "text" in block:
            parts.append(str(block["text"]))
    return "".join(parts)


def _tool_calls_of(message: AIMessage) -> list[ToolCall]:
    calls = []
    for index, call in enumerate(message.tool_calls or ()):
        args = call.get("args") or {}
        if not isinstance(args, dict):
            args = {"value": args}
        calls.append(
            ToolCall(id=call.get("id") or f"call_{index}", name=call["name"], arguments=args)
        )
    return calls


def from_langchain_messages(messages: Sequence[BaseMessage]) -> list[Message]:
    """LangChain messages as hybridstack messages (system, user, assistant, tool)."""
    out: list[Message] = []
    for message in messages:
        if isinstance(message, SystemMessage):
            out.append(Message.system(_text_of(message.content)))
        elif isinstance(message, HumanMessage):
            out.append(Message.user(_text_of(message.content)))
        elif isinstance(message, AIMessage):
            out.append(Message.assistant(_text_of(message.content), _tool_calls_of(message)))
        elif isinstance(message, ToolMessage):
            out.append(
                Message.tool(
                    _text_of(message.content),
                    tool_call_id=message.tool_call_id,
                    name=getattr(message, "name", None),
                )
            )
        elif isinstance(message, FunctionMessage):
            # Legacy function results have no call id; name them so the pair still matches.
            out.append(
                Message.tool(
                    _text_of(message.content), tool_call_id=message.name, name=message.name
                )
            )
        elif isinstance(message, ChatMessage):
            role = {"human": "user", "ai": "assistant"}.get(message.role, message.role)
            if role not in ("system", "user", "assistant"):
                raise ValueError(f"unsupported chat message role {message.role!r}")
            out.append(Message(role=role, content=_text_of(message.content)))
        else:
            raise ValueError(f"unsupported LangChain message type {type(message).__name__}")
    return out


def _usage_metadata(response: ChatResponse) -> dict[str, Any]:
    usage = response.usage
    meta: dict[str, Any] = {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }
    if usage.cached_input_tokens:
        meta["input_token_details"] = {"cache_read": usage.cached_input_tokens}
    return meta


def _response_metadata(response: ChatResponse) -> dict[str, Any]:
    return {
        "model_name": response.model or response.family or response.deployment,
        "model_provider": "hybridstack",
        "deployment": response.deployment,
        "family": response.family,
        "region": response.region,
        "jurisdiction": response.jurisdiction,
        "cost_usd": response.cost_usd,
        "attempts": response.attempts,
        "latency_s": response.latency_s,
        "request_id": response.request_id,
        "finish_reason": response.finish_reason,
    }


def to_ai_message(response: ChatResponse) -> AIMessage:
    """A hybridstack reply as an ``AIMessage`` with tool calls, usage and routing metadata."""
    return AIMessage(
        content=response.text,
        tool_calls=[
            {"name": c.name, "args": dict(c.arguments), "id": c.id, "type": "tool_call"}
            for c in response.tool_calls
        ],
        usage_metadata=_usage_metadata(response),
        response_metadata=_response_metadata(response),
        additional_kwargs={"reasoning_content": response.reasoning} if response.reasoning else {},
    )


def _to_tool(tool: Any) -> Tool:
    spec = convert_to_openai_tool(tool)["function"]
    return Tool(
        name=spec["name"],
        description=spec.get("description", "") or "",
        parameters=spec.get("parameters") or {"type": "object", "properties": {}},
    )


# --- the model ------------------------------------------------------------------------------


class HybridChatModel(BaseChatModel):
    """A LangChain chat model whose every call goes through a hybridstack ``Stack``.

    Args:
        stack: the :class:`hybridstack.Stack` (routing, fail-over, ledger).
        skill: the skill to route by; ``None`` lets the stack classify each request.
        data_class: the sensitivity of the data sent (decides allowed jurisdictions).
        model: force a family / deployment reference instead of the skill table.
        policy, max_tokens, temperature: passed through to the stack.
        run_id: tags the ledger attempts (default: the stack's run id).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    stack: SkipValidation[AgentStack] = Field(exclude=True, repr=False)
    skill: str | None = None
    data_class: str = "public"
    model: str | None = None
    policy: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    run_id: str | None = None

    @property
    def _llm_type(self) -> str:
        return "hybridstack"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "skill": self.skill,
            "data_class": self.data_class,
            "model": self.model,
            "policy": self.policy,
        }

    # --- request building -----------------------------------------------------------------

    def _request(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> ChatRequest:
        tools = [
            t if isinstance(t, Tool) else Tool.model_validate(t) for t in kwargs.get("tools") or ()
        ]
        tool_choice = kwargs.get("tool_choice")
        if tool_choice in ("any", True):
            tool_choice = "required"
        elif isinstance(tool_choice, str) and tool_choice not in ("auto", "none", "required"):
            # A named tool: hybridstack requests carry no forced name, so narrow the tool
            # list to that one tool and require a call.
            tools = [t for t in tools if t.name == tool_choice] or tools
            tool_choice = "required"
        elif isinstance(tool_choice, dict):
            name = (tool_choice.get("function") or {}).get("name") or tool_choice.get("name")
            tools = [t for t in tools if t.name == name] or tools
            tool_choice = "required"
        schema = kwargs.get("response_schema")
        return ChatRequest(
            messages=tuple(from_langchain_messages(messages)),
            tools=tuple(tools),
            tool_choice=cast(Any, tool_choice) if tools else None,
            response_schema=schema,
            response_schema_name=kwargs.get("response_schema_name") or "response",
            max_tokens=kwargs.get("max_tokens", self.max_tokens),
            temperature=kwargs.get("temperature", self.temperature),
            stop=tuple(stop or ()),
            metadata={"source": "langchain"},
        )

    def _call_options(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        options: dict[str, Any] = {
            "skill": kwargs.get("skill", self.skill),
            "data_class": kwargs.get("data_class", self.data_class),
            "model": kwargs.get("model", self.model),
            "run_id": kwargs.get("run_id", self.run_id),
        }
        policy = kwargs.get("policy", self.policy)
        if policy is not None:
            options["policy"] = policy
        return options

    # --- generation -----------------------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        request = self._request(messages, stop, kwargs)
        if isinstance(self.stack, SyncStack):
            response = self.stack.complete_sync(request, **self._call_options(kwargs))
        else:
            from hybridstack._sync import run_sync

            response = run_sync(
                self.stack.complete(request, **self._call_options(kwargs)), name="invoke"
            )
        return ChatResult(generations=[ChatGeneration(message=to_ai_message(response))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        request = self._request(messages, stop, kwargs)
        response = await self.stack.complete(request, **self._call_options(kwargs))
        return ChatResult(generations=[ChatGeneration(message=to_ai_message(response))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        request = self._request(messages, stop, kwargs)
        events: Iterator[StreamEvent]
        if isinstance(self.stack, SyncStack):
            events = self.stack.stream_sync(request, **self._call_options(kwargs))
        else:
            from hybridstack._sync import iterate_sync

            events = iterate_sync(
                self.stack.stream(request, **self._call_options(kwargs)), name="stream"
            )
        seen: set[str] = set()
        for event in events:
            chunk = _chunk_of(event, seen)
            if chunk is None:
                continue
            if run_manager is not None and chunk.text:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        request = self._request(messages, stop, kwargs)
        seen: set[str] = set()
        async for event in self.stack.stream(request, **self._call_options(kwargs)):
            chunk = _chunk_of(event, seen)
            if chunk is None:
                continue
            if run_manager is not None and chunk.text:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    # --- tools and structured output ------------------------------------------------------

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Offer ``tools`` on every call (LangChain tools, functions, pydantic classes, dicts)."""
        converted = [_to_tool(t).model_dump() for t in tools]
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return super().bind(tools=converted, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        include_raw: bool = False,
        method: Literal["function_calling", "json_schema"] = "function_calling",
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """Replies parsed into ``schema`` via a forced tool call (default) or a JSON schema."""
        kwargs.pop("strict", None)
        if kwargs:
            raise ValueError(f"unsupported arguments {sorted(kwargs)}")
        is_model = isinstance(schema, type) and issubclass(schema, BaseModel)
        parser: Runnable[Any, Any]
        llm: Runnable[Any, Any]
        if method == "json_schema":
            json_schema = convert_to_json_schema(schema)
            name = json_schema.get("title") or (
                schema.__name__ if isinstance(schema, type) else "response"
            )
            llm = self.bind(response_schema=json_schema, response_schema_name=name)
            parser = (
                PydanticOutputParser(pydantic_object=cast(Any, schema))
                if is_model
                else JsonOutputParser()
            )
        elif method == "function_calling":
            name = convert_to_openai_tool(schema)["function"]["name"]
            llm = self.bind_tools([schema], tool_choice=name)
            parser = (
                PydanticToolsParser(tools=[schema], first_tool_only=True)
                if is_model
                else JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
            )
        else:
            raise ValueError(f"method must be 'function_calling' or 'json_schema', not {method!r}")
        if not include_raw:
            return llm | parser
        with_parsed = RunnablePassthrough.assign(
            parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
        )
        without = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | with_parsed.with_fallbacks(
            [without], exception_key="parsing_error"
        )


def _chunk_of(event: Any, seen: set[str]) -> ChatGenerationChunk | None:
    """The LangChain chunk for one stream event (``seen`` remembers a usage event)."""
    kind = getattr(event, "type", None)
    if kind == "text":
        return ChatGenerationChunk(message=AIMessageChunk(content=event.text))
    if kind == "tool_call":
        return ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                tool_call_chunks=[
                    tool_call_chunk(
                        name=event.name, args=event.arguments, id=event.id, index=event.index
                    )
                ],
            )
        )
    if kind == "resumed":
        # The stream broke and continued elsewhere: say so in the text rather than splice
        # two answers silently (what follows is a fresh answer from another deployment).
        marker = (
            f"\n[stream resumed on {event.to_deployment} after {event.from_deployment} failed]\n"
        )
        return ChatGenerationChunk(message=AIMessageChunk(content=marker))
    if kind == "usage":
        seen.add("usage")
        usage = event.usage
        return ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata={
                    "input_tokens": usage.input_tokens,
                    "output_tokens": usage.output_tokens,
                    "total_tokens": usage.total_tokens,
                },
            )
        )
    if kind == "finish":
        return ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                response_metadata=_response_metadata(event.response),
                # Usage arrives once: from a usage event, else from the assembled reply.
                usage_metadata=None if "usage" in seen else _usage_metadata(event.response),
                chunk_position="last",
            )
        )
    return None
