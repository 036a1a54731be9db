"""Every piece of bad input is a hybridstack error that names the field, the bad value and
what is allowed: requests, catalog files and entries, settings and config files.

One parametrised table per entry point; each row is a case from issue 8 item 10 or one
added next to it (NaN and inf wherever a number can be passed).
"""

from __future__ import annotations

import json
import math
import textwrap
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from hybridstack import (
    BreakerSettings,
    Budget,
    Catalog,
    HedgeSettings,
    Message,
    RetrySettings,
    Stack,
)
from hybridstack.catalog import Price
from hybridstack.config import load_config
from hybridstack.errors import (
    CatalogError,
    ConfigurationError,
    HybridStackError,
    InvalidRequestError,
)
from hybridstack.providers import create_provider
from hybridstack.resilience import Executor, ProviderPool
from hybridstack.routing import RouteConstraints
from hybridstack.testing import offline_stack

NAN = float("nan")
INF = float("inf")

# --- requests: Stack.complete / stream / route / build_request ----------------------------

#: (call arguments, field named, words the message must hold)
REQUEST_CASES: list[tuple[dict[str, Any], str, tuple[str, ...]]] = [
    ({"max_tokens": 0}, "max_tokens", ("positive whole number", "got 0")),
    ({"max_tokens": -5}, "max_tokens", ("positive whole number", "got -5")),
    ({"max_tokens": 0.0}, "max_tokens", ("positive whole number",)),
    ({"max_tokens": True}, "max_tokens", ("positive whole number", "got True")),
    ({"max_tokens": 1.5}, "max_tokens", ("whole number", "1.5")),
    ({"max_tokens": "many"}, "max_tokens", ("whole number", "'many'")),
    ({"temperature": NAN}, "temperature", ("from 0 to 2", "got nan")),
    ({"temperature": INF}, "temperature", ("from 0 to 2", "got inf")),
    ({"temperature": -INF}, "temperature", ("from 0 to 2", "got -inf")),
    ({"temperature": 3}, "temperature", ("from 0 to 2", "got 3")),
    ({"temperature": False}, "temperature", ("from 0 to 2", "got False")),
    ({"temperature": "hot"}, "temperature", ("from 0 to 2", "'hot'")),
    ({"tool_choice": "banana"}, "tool_choice", ("'banana'", "auto, none, required")),
    ({"tool_choice": "requried"}, "tool_choice", ("did you mean 'required'",)),
    ({"stop": [""]}, "stop", ("empty",)),
    ({"stop": [1]}, "stop[0]", ("expected text", "1")),
    ({"stop": 5}, "stop", ("expected a list", "5")),
    ({"metadata": {"ticket": 7}}, "metadata.ticket", ("expected text", "7")),
    ({"metadata": ["a"]}, "metadata", ("a dict of text to text",)),
    ({"tools": [{"name": "bad name!"}]}, "tools[0].name", ("must match", "'bad name!'")),
    ({"tools": [{"name": "f", "paramters": {}}]}, "tools[0].paramters", ("did you mean",)),
    ({"tools": ["get_weather"]}, "tools[0]", ("a Tool or a dict",)),
    ({"response_schema": "json"}, "response_schema", ("JSON schema dict",)),
]

#: (messages, field named, words the message must hold)
MESSAGE_CASES: list[tuple[Any, str, tuple[str, ...]]] = [
    ([], "messages", ("at least one message",)),
    (None, "messages", ("a string, a Message", "got None")),
    (5, "messages", ("a string, a Message", "got int")),
    ({"content": "hi"}, "messages[0].role", ("is required", "'user'")),
    ([{"role": "banana", "content": "x"}], "messages[0].role", ("'banana'", "system, user")),
    ([{"role": "usr", "content": "x"}], "messages[0].role", ("did you mean 'user'",)),
    ([None], "messages[0]", ("a Message or a dict", "None")),
    ([{"role": "user", "content": "x", "colour": 1}], "messages[0].colour", ("unknown field",)),
    ([{"role": "tool", "content": "42"}], "messages[0]", ("tool_call_id",)),
    ([Message.system("only a system prompt")], "messages", ("needs a user message",)),
    ({"role", "user"}, "messages", ("got set",)),
]


def _check(error: InvalidRequestError, field: str, words: tuple[str, ...]) -> None:
    text = str(error)
    assert isinstance(error, HybridStackError)
    assert error.field == field, text
    assert text.startswith(f"invalid request: {field}: "), text
    for word in words:
        assert word in text, (word, text)
    assert "errors.pydantic.dev" not in text, text
    assert "[type=" not in text, text


@pytest.mark.parametrize(("kwargs", "field", "words"), REQUEST_CASES)
def test_bad_request_options_are_invalid_request_errors(
    kwargs: dict[str, Any], field: str, words: tuple[str, ...]
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        Stack.build_request("Hi", **kwargs)
    _check(info.value, field, words)


@pytest.mark.parametrize(("messages", "field", "words"), MESSAGE_CASES)
def test_bad_messages_are_invalid_request_errors(
    messages: Any, field: str, words: tuple[str, ...]
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        Stack.build_request(messages)
    _check(info.value, field, words)


async def test_complete_stream_and_route_raise_it_before_any_request() -> None:
    async with offline_stack(seed=1) as stack:
        with pytest.raises(InvalidRequestError, match="max_tokens"):
            await stack.complete("Hi", max_tokens=0)
        with pytest.raises(InvalidRequestError, match="messages"):
            await stack.complete([])
        with pytest.raises(InvalidRequestError, match="messages"):
            await stack.complete(None)  # type: ignore[arg-type]
        with pytest.raises(InvalidRequestError, match="temperature"):
            stack.stream("Hi", temperature=NAN)
        with pytest.raises(InvalidRequestError, match="tool_choice"):
            stack.route("Hi", tool_choice="banana")
        assert stack.ledger.attempts() == []
        assert sum(stack.emulator.counters(d.id).requests for d in stack.catalog) == 0


@pytest.mark.parametrize(
    ("deployment", "wire_field"),
    [
        ("gpt-4o-mini@openai-us", "stop"),
        ("claude-haiku-4.5@anthropic-us", "stop_sequences"),
        ("qwen-plus@dashscope-sg", "stop"),
    ],
)
async def test_one_stop_string_is_one_stop_sequence(deployment: str, wire_field: str) -> None:
    # It used to be sent as ["a", "b", "c"]: three one-letter stop sequences.
    assert Stack.build_request("Hi", stop="abc").stop == ("abc",)
    assert Stack.build_request("Hi", stop=["a", "bc"]).stop == ("a", "bc")
    assert Stack.build_request("Hi", stop=None).stop == ()
    provider = create_provider(Catalog.default().deployment(deployment), api_key="sk-test")
    try:
        built = provider._params(Stack.build_request("Hi", stop="abc"), None)  # type: ignore[attr-defined]
    finally:
        await provider.aclose()
    params = built[0] if isinstance(built, tuple) else built  # anthropic: (params, forced)
    assert params[wire_field] == ["abc"]


# --- catalog entries and files -------------------------------------------------------------

DEPLOYMENT = {
    "family": "gpt-4o-mini",
    "site": "my-host",
    "protocol": "openai",
    "model": "gpt-4o-mini",
    "base_url": "https://example.com/v1",
    "region": "us-east-1",
    "jurisdiction": "US",
    "operator": "me",
    "price": {"input_per_mtok": 0.1, "output_per_mtok": 0.4, "as_of": "2026-11-15"},
}

#: (field, bad value, field named in the error)
CATALOG_NUMBER_CASES = [
    ("price.input_per_mtok", INF, "price.input_per_mtok"),
    ("price.input_per_mtok", NAN, "price.input_per_mtok"),
    ("price.output_per_mtok", INF, "price.output_per_mtok"),
    ("price.cached_input_per_mtok", NAN, "price.cached_input_per_mtok"),
    ("price.input_per_mtok", -1, "price.input_per_mtok"),
    ("timeout_s", INF, "timeout_s"),
    ("timeout_s", NAN, "timeout_s"),
    ("timeout_s", 0, "timeout_s"),
    ("weight", INF, "weight"),
    ("weight", NAN, "weight"),
    ("weight", -INF, "weight"),
    ("context_window", INF, "context_window"),
    ("context_window", 0, "context_window"),
]


def _with(field: str, value: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(DEPLOYMENT))
    target = data
    *parents, leaf = field.split(".")
    for part in parents:
        target = target[part]
    target[leaf] = value
    return data


@pytest.mark.parametrize(("field", "value", "named"), CATALOG_NUMBER_CASES)
def test_inf_nan_and_out_of_range_numbers_are_refused_in_catalog_entries(
    field: str, value: float, named: str
) -> None:
    with pytest.raises(CatalogError) as info:
        Catalog.default().with_entries(deployments=[_with(field, value)])
    assert info.value.field == named
    assert repr(value) in str(info.value) or str(value) in str(info.value)


@pytest.mark.parametrize("value", ["inf", "nan", "-inf", "+inf"])
def test_inf_and_nan_in_a_toml_catalog_file_are_refused(tmp_path: Path, value: str) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            [deployments."gpt-4o-mini@my-host"]
            protocol = "openai"
            model = "gpt-4o-mini"
            base_url = "https://example.com/v1"
            region = "us-east-1"
            jurisdiction = "US"
            operator = "me"
            price.input_per_mtok = {value}
            price.output_per_mtok = 1
            price.as_of = 2026-11-15
            """
        )
    )
    with pytest.raises(CatalogError, match=r"price\.input_per_mtok.*finite number"):
        Catalog.default().with_file(path)


def test_a_price_model_refuses_inf() -> None:
    with pytest.raises(ValueError, match="finite"):
        Price(input_per_mtok=INF, output_per_mtok=1, as_of=date(2026, 11, 15))


#: (suffix, text, words)
FILE_CASES = [
    (".toml", "a = " + "[" * 500 + "]" * 500, "nested too deeply"),
    (".toml", "x = " + "{y = " * 400 + "1" + "}" * 400, "nested too deeply"),
    (".json", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    (".yaml", "a: " + "[" * 5_000 + "]" * 5_000, "nested too deeply"),
    (".json", '{"schema_version": ' + "9" * 5_000 + "}", "more than 4300 digits"),
    (".toml", "schema_version = " + "9" * 5_000, "more than 4300 digits"),
    (".yaml", "schema_version: " + "9" * 5_000, "more than 4300 digits"),
]


@pytest.mark.parametrize(("suffix", "text", "words"), FILE_CASES)
def test_pathological_catalog_files_are_catalog_errors(
    tmp_path: Path, suffix: str, text: str, words: str
) -> None:
    path = tmp_path / f"catalog{suffix}"
    path.write_text(text)
    with pytest.raises(CatalogError, match=words) as info:
        Catalog.default().with_file(path)
    assert info.value.source == str(path)


# --- route constraints that name nothing ---------------------------------------------------

#: (constraints, words)
CONSTRAINT_CASES = [
    ({"deny_deployments": ["gpt-4o-mni@openai-us"]}, "did you mean 'gpt-4o-mini@openai-us'"),
    ({"deny_deployments": ["llama-3.3-70"]}, "did you mean 'llama-3.3-70b'"),
    ({"deny_deployments": ["deepseek-chat"]}, "retired"),
    ({"allow_deployments": ["qwen-plsu"]}, "did you mean 'qwen-plus'"),
    ({"deny_operators": ["dashscop"]}, "did you mean 'dashscope'"),
    ({"allow_operators": ["nobody-at-all"]}, "is not an operator"),
]


@pytest.mark.parametrize(("constraints", "words"), CONSTRAINT_CASES)
def test_deny_and_allow_lists_that_name_nothing_are_refused(
    constraints: dict[str, list[str]], words: str
) -> None:
    with pytest.raises(ConfigurationError, match=r"would (deny|allow) nothing") as info:
        Stack(constraints=RouteConstraints(**constraints))
    assert words in str(info.value)
    # Per call too (a request error there), before any routing.
    stack = Stack()
    with pytest.raises(InvalidRequestError) as per_call:
        stack.route("Hi", constraints=constraints)
    assert words in str(per_call.value)


def test_deny_lists_that_name_real_entries_are_accepted() -> None:
    stack = Stack(
        constraints=RouteConstraints(
            deny_deployments=["gpt-4o-mini", "llama-3.3-70b@openrouter"],
            deny_operators=["openrouter"],
        )
    )
    plan = stack.route("Hi", skill="general")
    assert "llama-3.3-70b@openrouter" not in plan.deployment_ids


def test_a_deny_list_typo_in_the_config_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hybridstack.cli import EXIT_USAGE, main

    config = tmp_path / "hybridstack.toml"
    config.write_text('[routing]\ndeny_deployments = ["llama-3.3-70b@openroutr"]\n')
    with pytest.raises(ConfigurationError, match=rf"{config}: routing\.deny_deployments: "):
        load_config(config)
    assert main(["route", "Hi", "--config", str(config)]) == EXIT_USAGE
    assert "did you mean 'llama-3.3-70b@openrouter'" in capsys.readouterr().err


# --- resilience settings -----------------------------------------------------------------

#: (settings class, field, bad value)
SETTINGS_CASES = [
    (Budget, "deadline_s", NAN),
    (Budget, "deadline_s", INF),
    (Budget, "deadline_s", 0),
    (Budget, "max_cost_usd", NAN),
    (Budget, "max_cost_usd", INF),
    (Budget, "max_cost_usd", -1),
    (Budget, "max_attempts", True),
    (Budget, "max_attempts", 0),
    (Budget, "max_attempts", 2.0),
    (RetrySettings, "max_retries", True),
    (RetrySettings, "max_retries", -1),
    (RetrySettings, "backoff_initial_s", NAN),
    (RetrySettings, "backoff_max_s", INF),
    (RetrySettings, "backoff_jitter_s", -INF),
    (RetrySettings, "retry_after_cap_s", INF),
    (BreakerSettings, "failure_threshold", True),
    (BreakerSettings, "cooldown_s", NAN),
    (BreakerSettings, "cooldown_s", INF),
    (BreakerSettings, "max_cooldown_s", INF),
    (BreakerSettings, "failover_cooldown_s", NAN),
    (BreakerSettings, "probe_timeout_s", INF),
    (BreakerSettings, "cooldown_multiplier", NAN),
    (BreakerSettings, "cooldown_multiplier", INF),
    (BreakerSettings, "warmup_max_in_flight", True),
    (HedgeSettings, "delay_s", NAN),
    (HedgeSettings, "delay_s", INF),
    (HedgeSettings, "min_delay_s", INF),
    (HedgeSettings, "fallback_delay_s", NAN),
    (HedgeSettings, "max_hedges", True),
]


@pytest.mark.parametrize(("cls", "field", "value"), SETTINGS_CASES)
def test_settings_refuse_nan_inf_and_bools(cls: type, field: str, value: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        cls(**{field: value})
    text = str(info.value)
    assert text.startswith(field), text
    assert repr(value) in text, text
    if isinstance(value, float) and math.isinf(value) and field in ("deadline_s", "max_cost_usd"):
        assert "use None for no limit" in text


@pytest.mark.parametrize(
    ("section", "line"),
    [
        ("budget", "deadline_s = inf"),
        ("budget", "max_cost_usd = nan"),
        ("retry", "backoff_max_s = inf"),
        ("breakers", "cooldown_s = nan"),
        ("hedge", "delay_s = -inf"),
    ],
)
def test_inf_and_nan_in_the_config_file_name_the_file_and_key(
    tmp_path: Path, section: str, line: str
) -> None:
    config = tmp_path / "hybridstack.toml"
    config.write_text(f"[{section}]\n{line}\n")
    key = line.split(" = ")[0]
    with pytest.raises(ConfigurationError, match=rf"{config}: {section}\.{key}: .*finite"):
        load_config(config)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("x = " + "[" * 500 + "]" * 500, "nested too deeply"),
        ("[budget]\nmax_attempts = " + "9" * 5_000, "more than 4300 digits"),
    ],
)
def test_pathological_config_files_are_configuration_errors(
    tmp_path: Path, text: str, words: str
) -> None:
    config = tmp_path / "hybridstack.toml"
    config.write_text(text)
    with pytest.raises(ConfigurationError, match=words):
        load_config(config)


# --- a NaN cost never slips past max_cost_usd ----------------------------------------------


async def test_a_nan_expected_cost_is_refused_by_max_cost_usd() -> None:
    # A hand-made plan (validation keeps NaN out of catalogs) whose estimate is NaN:
    # NaN > cap is False, so the old check let the attempt through.
    async with offline_stack(seed=1) as stack:
        plan = stack.route("Hi", model="gpt-4o-mini@openai-us")
        candidate = plan.candidates[0]
        candidate_cls = type(candidate)
        poisoned = candidate_cls(candidate.deployment, (), expected_cost_usd=NAN)
        executor = Executor(providers=ProviderPool(stack._make_provider), catalog=stack.catalog)
        bad_plan = type("P", (), {"candidates": (poisoned,), "excluded": {}})()
        from hybridstack.errors import BudgetExceededError

        try:
            with pytest.raises(BudgetExceededError, match="cost"):
                await executor.execute(
                    bad_plan, Stack.build_request("Hi"), budget=Budget(max_cost_usd=1.0)
                )
        finally:
            await executor.providers.aclose()
        assert stack.emulator.counters("gpt-4o-mini@openai-us").requests == 0
