"""Token counting: the exact Qwen tokenizer, the script-aware estimate, loading, the plan."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hybridstack import tokens
from hybridstack._token_estimate import CODES
from hybridstack.catalog import Catalog, Deployment, Family, Price
from hybridstack.errors import ConfigurationError
from hybridstack.routing import Router
from hybridstack.types import ChatRequest, Message, Tool, ToolCall

DATA = Path(__file__).parent / "data" / "multilingual_tokens.json"
SAMPLES = json.loads(DATA.read_text(encoding="utf-8"))["samples"]
HOLDOUT = {s["lang"]: s["holdout"] for s in SAMPLES}


@pytest.fixture(scope="module")
def qwen() -> tokens.Encoder:
    return tokens.load_qwen_encoder()


def old_rule(text: str) -> int:
    """The estimate this module replaced: about four characters a token."""
    return len(text) // 4 + 1


# --- the exact tokenizer ------------------------------------------------------------------


def test_the_bundled_qwen_vocabulary_is_found_without_importing_dashscope() -> None:
    code = (
        "import sys\n"
        "from hybridstack import tokens\n"
        "path = tokens.qwen_vocab_path()\n"
        "assert path and path.endswith('qwen.tiktoken'), path\n"
        "assert 'dashscope' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_qwen_counts_equal_dashscope_get_tokenizer(qwen: tokens.Encoder) -> None:
    from dashscope.tokenizers import get_tokenizer

    reference = get_tokenizer("qwen-plus")
    texts = [s[part] for s in SAMPLES for part in ("fit", "holdout")]
    texts += ["Cafe\u0301 au lait", "e\u0301te\u0301", "  two  spaces\n\n\tand tabs", "🙂 emoji"]
    for text in texts:
        assert qwen.encode_ordinary(text) == reference.encode(text), text[:40]


# --- the script-aware estimate ---------------------------------------------------------------


def test_script_counts_put_each_character_in_its_script() -> None:
    counts = tokens.script_counts("ab 12\nz! é ử α д ש ب न ব த ก ሰ 한 か 中 、 — 𠀀 🙂")
    assert counts == {
        "latin": 3, "digit": 2, "space": 19, "newline": 1, "punct": 1, "latin_ext": 2,
        "greek": 1, "cyrillic": 1, "hebrew": 1, "arabic": 1, "devanagari": 1, "bengali": 1,
        "tamil": 1, "thai": 1, "hangul": 1, "kana": 1, "han": 2, "cjk_punct": 1,
        "symbol": 1, "other": 2,
    }  # fmt: skip


def test_english_prose_is_weighted_as_english() -> None:
    english = tokens.script_counts(HOLDOUT["en"])
    swahili = tokens.script_counts(HOLDOUT["sw"])
    assert "latin_en" in english
    assert "latin" not in english
    assert "latin" in swahili
    assert "latin_en" not in swahili


@pytest.mark.parametrize("lang", sorted(HOLDOUT))
def test_the_qwen_estimate_is_close_to_the_exact_count(qwen: tokens.Encoder, lang: str) -> None:
    text = HOLDOUT[lang]  # never used to fit the weights
    exact = len(qwen.encode_ordinary(text))
    ratio = tokens.estimate_text(text, "qwen") / exact
    assert 0.7 <= ratio <= 1.3, f"{lang}: estimate/exact = {ratio:.2f}"


@pytest.mark.parametrize(
    ("lang", "at_most"), [("zh", 0.5), ("ja", 0.5), ("ko", 0.5), ("th", 0.55), ("hi", 0.3)]
)
def test_the_old_rule_undercounted_the_languages_qwen_is_routed_for(
    qwen: tokens.Encoder, lang: str, at_most: float
) -> None:
    # What the issue measured: the four-character rule gives under half the real count.
    text = HOLDOUT[lang]
    assert old_rule(text) / len(qwen.encode_ordinary(text)) <= at_most


def test_the_generic_estimate_never_counts_less_than_the_qwen_one_outside_latin() -> None:
    # generic is fitted to cl100k_base: tokenizers that cover a script less well than Qwen.
    for lang in ("zh", "ja", "ko", "th", "ar", "he", "am"):
        text = HOLDOUT[lang]
        assert tokens.estimate_text(text, "generic") > tokens.estimate_text(text, "qwen"), lang


def test_every_class_has_a_weight_in_both_profiles() -> None:
    for profile, weights in tokens.WEIGHTS.items():
        assert set(weights) == set(CODES), profile
        assert all(w >= 0 for w in weights.values()), profile


# --- a request as the model sees it ------------------------------------------------------------


def test_message_framing_tool_schemas_and_schema_count(qwen: tokens.Encoder) -> None:
    counter = tokens.TokenCounter(mode="sync")
    plain = ChatRequest(messages=[Message.system("Be brief."), Message.user("What time is it?")])
    count = counter.count_request(plain, "qwen")
    assert count.method == "tokenizer:qwen"
    assert count.exact
    text = len(qwen.encode_ordinary("Be brief.")) + len(qwen.encode_ordinary("What time is it?"))
    # two messages: role header + newline each, 2 special tokens each, 3 to prime the reply
    assert text + 2 * 2 + 1 + 4 <= count.tokens <= text + 12

    tool = Tool(
        name="get_time",
        description="The current time in a time zone",
        parameters={"type": "object", "properties": {"tz": {"type": "string"}}},
    )
    with_tool = counter.count_request(plain.model_copy(update={"tools": (tool,)}), "qwen")
    schema_tokens = len(qwen.encode_ordinary(json.dumps(tool.parameters)))
    assert with_tool.tokens > count.tokens + schema_tokens + 50  # schema + tool-use preamble

    structured = plain.model_copy(update={"response_schema": {"type": "object"}})
    assert counter.count_request(structured, "qwen").tokens > count.tokens

    call = ToolCall(id="c1", name="get_time", arguments={"tz": "Asia/Singapore"})
    turn = ChatRequest(
        messages=[
            Message.user("Time in Singapore?"),
            Message.assistant(tool_calls=[call]),
            Message.tool({"time": "14:02"}, tool_call_id="c1"),
        ]
    )
    rendered, specials = tokens.render_prompt(turn)
    assert "Asia/Singapore" in rendered
    assert '"time": "14:02"' in rendered
    assert specials == 3 * 2 + 1


def test_estimated_prompt_tokens_is_script_aware() -> None:
    chinese = ChatRequest(messages=HOLDOUT["zh"])
    assert chinese.estimated_prompt_tokens() > 2 * old_rule(HOLDOUT["zh"])


# --- loading: lazy, off the hot path ---------------------------------------------------------


class GatedLoader:
    """A loader that waits for the test to open the gate, to see the 'loading' state."""

    def __init__(self, encoder: tokens.Encoder | None = None, error: Exception | None = None):
        self.gate = threading.Event()
        self.calls = 0
        self.encoder = encoder
        self.error = error

    def __call__(self) -> tokens.Encoder:
        self.calls += 1
        assert self.gate.wait(30)
        if self.error is not None:
            raise self.error
        assert self.encoder is not None
        return self.encoder


def test_background_mode_estimates_while_the_tokenizer_loads(qwen: tokens.Encoder) -> None:
    loader = GatedLoader(qwen)
    counter = tokens.TokenCounter({"qwen": loader}, mode="background")
    assert counter.status() == "not loaded"
    first = counter.count_text("你好，世界", "qwen")
    assert first.method == tokens.ESTIMATE  # answered at once, not blocked by the load
    assert counter.status() == "loading"
    counter.count_text("再来一次", "qwen")
    loader.gate.set()
    assert counter.load("qwen", timeout=30)
    assert counter.status() == "ready"
    assert counter.count_text("你好，世界", "qwen").method == "tokenizer:qwen"
    assert loader.calls == 1  # one load, however many counts asked for it
    assert counter.load_seconds() is not None


def test_sync_mode_loads_on_first_use_and_off_mode_never(qwen: tokens.Encoder) -> None:
    loads: list[int] = []

    def loader() -> tokens.Encoder:
        loads.append(1)
        return qwen

    sync = tokens.TokenCounter({"qwen": loader}, mode="sync")
    assert sync.count_text("hello", "qwen").method == "tokenizer:qwen"
    off = tokens.TokenCounter({"qwen": loader}, mode="off")
    assert off.count_text("hello", "qwen").method == tokens.ESTIMATE
    assert off.status() == "off"
    assert not off.load()
    assert loads == [1]


async def test_aload_keeps_the_event_loop_running(qwen: tokens.Encoder) -> None:
    import asyncio

    loader = GatedLoader(qwen)
    counter = tokens.TokenCounter({"qwen": loader}, mode="background")
    task = asyncio.create_task(counter.aload())
    await asyncio.sleep(0)  # the loop runs while the load waits in its thread
    assert not task.done()
    loader.gate.set()
    assert await asyncio.wait_for(task, 30)


def test_a_tokenizer_that_fails_to_load_falls_back_to_the_estimate() -> None:
    loader = GatedLoader(error=FileNotFoundError("qwen.tiktoken not found"))
    loader.gate.set()
    counter = tokens.TokenCounter({"qwen": loader}, mode="sync")
    assert counter.count_text("hello world", "qwen").method == tokens.ESTIMATE
    assert counter.status().startswith("unavailable: FileNotFoundError")


def test_a_bad_mode_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYBRIDSTACK_TOKENIZERS", "eager")
    with pytest.raises(ConfigurationError, match="HYBRIDSTACK_TOKENIZERS"):
        tokens.TokenCounter().count_text("hi", "qwen")


def test_import_reads_no_vocabulary_and_estimates_need_no_tiktoken() -> None:
    code = (
        "import sys\n"
        "import hybridstack\n"
        "from hybridstack.types import ChatRequest\n"
        "ChatRequest(messages='你好').estimated_prompt_tokens()\n"
        "assert 'tiktoken' not in sys.modules and 'dashscope' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- the router counts per family ---------------------------------------------------------------


def _catalog(window: int) -> Catalog:
    price = Price(input_per_mtok=1.0, output_per_mtok=2.0, as_of="2026-12-01")
    families = [
        Family(name="qwen-plus", vendor="alibaba", context_window=window),
        Family(name="llama-3.3-70b", vendor="meta", context_window=1_000_000),
    ]
    deployments = [
        Deployment(
            family=f,
            site="x",
            protocol="openai",
            model=f,
            base_url="https://x.example/v1",
            region="r",
            jurisdiction="SG",
            operator="x",
            price=price,
        )
        for f in ("qwen-plus", "llama-3.3-70b")
    ]
    return Catalog(families=families, deployments=deployments)


def test_the_context_window_check_uses_the_qwen_count(qwen: tokens.Encoder) -> None:
    text = HOLDOUT["zh"] * 40
    request = ChatRequest(messages=text)
    exact = tokens.TokenCounter(mode="sync").count_request(request, "qwen").tokens
    # A window the old rule said the prompt fits in, which the real count overflows.
    window = (old_rule(text) + exact) // 2
    assert old_rule(text) + 20 < window < exact
    counter = tokens.TokenCounter({"qwen": lambda: qwen}, mode="sync")
    router = Router(
        _catalog(window), skill_table={"general": ["qwen-plus", "llama-3.3-70b"]},
        key_available=lambda d: True, token_counter=counter, seed=1,
    )  # fmt: skip
    plan = router.plan(request)
    assert plan.deployment_ids == ["llama-3.3-70b@x"]
    why = plan.excluded["qwen-plus@x"]
    assert why.startswith(f"context window {window:,} < {exact:,} tokens needed")
    assert "counted by tokenizer:qwen" in why


def test_the_plan_says_how_each_family_was_counted(qwen: tokens.Encoder) -> None:
    counter = tokens.TokenCounter({"qwen": lambda: qwen}, mode="sync")
    router = Router(
        _catalog(131_072), skill_table={"general": ["qwen-plus", "llama-3.3-70b"]},
        key_available=lambda d: True, token_counter=counter, seed=1,
    )  # fmt: skip
    plan = router.plan(ChatRequest(messages=HOLDOUT["ja"], max_tokens=100))
    by_family = {c.deployment.family: c for c in plan.candidates}
    qwen_c, llama_c = by_family["qwen-plus"], by_family["llama-3.3-70b"]
    assert qwen_c.token_method == "tokenizer:qwen"
    assert llama_c.token_method == tokens.ESTIMATE
    assert qwen_c.prompt_tokens != llama_c.prompt_tokens
    # each candidate's expected cost is priced on its own family's count
    for c in (qwen_c, llama_c):
        assert c.expected_cost_usd == pytest.approx((c.prompt_tokens * 1.0 + 100 * 2.0) / 1e6)
    assert plan.token_counts == {
        "tokenizer:qwen": qwen_c.prompt_tokens,
        tokens.ESTIMATE: llama_c.prompt_tokens,
    }
    assert plan.token_method == plan.candidates[0].token_method
    data = plan.to_dict()
    assert data["token_method"] == plan.token_method
    assert data["candidates"][0]["token_method"] == plan.token_method
    text = plan.explain()
    assert f"({plan.token_method})" in text
    assert "other families:" in text
