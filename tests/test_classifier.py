"""Tests for the deterministic skill classifier (hybridstack.routing.skills).

Accuracy floors sit a little below the measured figures, so a regression in the rules
fails here. The figure that counts is the frozen holdout of the skill evaluation set
(tests/data/skill_eval/, 307 prompts in 27 languages, never tuned on; its sha256 is pinned
in tests/test_skill_eval_data.py): 0.964 (code 0.964, multilingual 0.976, reasoning 0.892,
general 1.0). The rules were tuned on skill_eval/dev.jsonl (0.998) and the older sets
(skill_prompts.jsonl 1.0, skill_prompts_holdout.jsonl 0.986, which was a holdout until
this round). See benchmarks/bench_classifier.py for the full report.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import pytest

from hybridstack.routing.skills import (
    SKILLS,
    Classification,
    LLMSkillClassifier,
    SkillClassifier,
    classify,
    classify_skill,
    detect_language,
    guess_skill,
    is_mostly_english,
)

DATA = Path(__file__).parent / "data"


def _load(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


MAIN = _load("skill_prompts.jsonl")
HOLDOUT = _load("skill_prompts_holdout.jsonl")
EVAL_DEV = _load("skill_eval/dev.jsonl")
EVAL_HOLDOUT = _load("skill_eval/holdout.jsonl")


def _accuracy(rows: list[dict[str, str]], skill: str | None = None) -> float:
    rows = [r for r in rows if skill is None or r["skill"] == skill]
    return sum(classify_skill(r["text"]) == r["skill"] for r in rows) / len(rows)


# --- the datasets themselves ---------------------------------------------------------


@pytest.mark.parametrize(("rows", "minimum"), [(MAIN, 240), (HOLDOUT, 60)])
def test_dataset_shape(rows: list[dict[str, str]], minimum: int) -> None:
    assert len(rows) >= minimum
    for row in rows:
        assert set(row) == {"text", "skill", "lang"}
        assert row["skill"] in SKILLS
        assert row["text"].strip()
    texts = [r["text"] for r in rows]
    assert len(set(texts)) == len(texts), "duplicate prompts"


def test_main_dataset_is_balanced_and_multilingual() -> None:
    per_skill = Counter(r["skill"] for r in MAIN)
    assert all(per_skill[s] >= 50 for s in SKILLS), per_skill
    langs = Counter(r["lang"] for r in MAIN)
    for lang in ("zh", "id", "ms", "th", "ar", "vi", "es", "en", "ja", "ko", "fr", "hi"):
        assert langs[lang] >= 1, lang


def test_holdout_does_not_overlap_main() -> None:
    assert not {r["text"] for r in MAIN} & {r["text"] for r in HOLDOUT}


# --- accuracy floors -----------------------------------------------------------------


def test_main_accuracy_floor() -> None:
    assert _accuracy(MAIN) >= 0.95  # measured 0.994


@pytest.mark.parametrize(
    ("skill", "floor"),
    [("code", 0.95), ("multilingual", 0.95), ("reasoning", 0.95), ("general", 0.95)],
)
def test_main_per_skill_floor(skill: str, floor: float) -> None:
    # Measured recall: code 0.989, multilingual 0.988, reasoning 1.0, general 1.0.
    assert _accuracy(MAIN, skill) >= floor


def test_old_holdout_accuracy_floor() -> None:
    # 0.875 when it was a holdout; tuned on since (measured 0.986).
    assert _accuracy(HOLDOUT) >= 0.95


def test_frozen_holdout_accuracy_floor() -> None:
    # The honest figure: prompts the rules were never tuned on (measured 0.964).
    assert _accuracy(EVAL_HOLDOUT) >= 0.95


@pytest.mark.parametrize(
    ("skill", "floor"),
    [("code", 0.93), ("multilingual", 0.95), ("reasoning", 0.85), ("general", 0.95)],
)
def test_frozen_holdout_per_skill_floor(skill: str, floor: float) -> None:
    # Measured recall: code 0.964, multilingual 0.976, reasoning 0.892, general 1.0.
    assert _accuracy(EVAL_HOLDOUT, skill) >= floor


def test_eval_dev_accuracy_floor() -> None:
    assert _accuracy(EVAL_DEV) >= 0.98  # measured 0.998 (tuned on)


# --- hard cases (the reasons the rules exist) ------------------------------------------

HARD_CASES = [
    # code, whatever the human language
    ("帮我写一个Python函数，判断一个字符串是不是回文。", "code"),
    ("帮我写一个正则表达式，匹配中国大陆的手机号。", "code"),
    ("Tolong buatkan fungsi Python untuk menghitung jumlah kata dalam sebuah kalimat.", "code"),
    ("Escribe una función en JavaScript que elimine los elementos duplicados de un array.", "code"),
    ("ช่วยเขียนฟังก์ชัน JavaScript สำหรับตรวจสอบรูปแบบอีเมลหน่อย", "code"),
    ("Give me a regex that matches UK postcodes like SW1A 1AA and EC2V 7HH.", "code"),
    ("Write a SQL query to count users who signed up each month in 2024.", "code"),
    ("How do I find all files larger than 100MB under /var and delete them, in bash?", "code"),
    (
        'Traceback (most recent call last):\n  File "app.py", line 14, in <module>\n'
        "    main()\nKeyError: 'name'",
        "code",
    ),
    (
        'Exception in thread "main" java.lang.NullPointerException\n'
        "\tat com.acme.Main.main(Main.java:11)",
        "code",
    ),
    # "translate" a program is code, not a translation request
    (
        "Translate this Python function into idiomatic JavaScript:\n"
        "def chunk(xs, n):\n    return [xs[i:i+n] for i in range(0, len(xs), n)]",
        "code",
    ),
    # translation requests written in English
    ("How do you say 'Where is the nearest train station?' in Thai?", "multilingual"),
    ("What does 'terima kasih banyak' mean in English?", "multilingual"),
    ("Localise our onboarding text for the Vietnamese market: 'Welcome aboard!'", "multilingual"),
    # not English, not code
    (
        "แม่ค้าซื้อมะม่วงมา 120 ลูก ขายไปวันแรก 45 ลูก วันที่สองขายได้มากกว่าวันแรก 10 ลูก เหลือมะม่วงกี่ลูก",
        "multilingual",
    ),
    ("Hai, saya nak tanya kenapa bil elektrik saya bulan ini naik sampai RM300?", "multilingual"),
    ("我们的 marketing budget 应该怎么分配给 Google Ads 和 TikTok？", "multilingual"),
    # English that names a language or technology but is neither translation nor code
    ("Is Spanish hard to learn for English speakers?", "general"),
    ("What is Python used for?", "general"),
    ("What does 'GDP' mean?", "general"),
    ("What is a bug bounty program?", "general"),
    (
        "Should our 4-person team rewrite the backend in Rust or keep Python, given we ship "
        "weekly and nobody knows Rust yet?",
        "reasoning",
    ),
    (
        "Our support team gets 40% of tickets in Spanish. Should we hire a bilingual agent or "
        "rely on machine translation? Weigh cost and quality.",
        "reasoning",
    ),
    # policy applied to a case
    (
        "Our refund policy says items can be returned within 30 days if unused, and "
        "electronics within 14 days. A customer bought headphones 20 days ago and they're "
        "unopened. Are they eligible for a refund?",
        "reasoning",
    ),
    (
        "If it rains, the match is cancelled. The match was not cancelled. What can we "
        "conclude about the weather, and why?",
        "reasoning",
    ),
    # the misses issue 9 reported: code asked in another language without fences
    ("Ich brauche einen regulären Ausdruck für Uhrzeiten im Format HH:MM.", "code"),
    ("ログファイルを日付ごとに圧縮するシェルスクリプトを書いて", "code"),
    ("Flutter'da butona basınca sayfa neden yenilenmiyor?", "code"),
    ("Vue 的 v-model 怎么绑定到子组件？", "code"),
    # short code asks
    ("Python: reverse a dict?", "code"),
    ("PowerShell: restart a service on a remote machine?", "code"),
    ("kubectl: scale a deployment to 5 replicas", "code"),
    ("SQL: the newest order for each customer", "code"),
    # puzzles and proofs are reasoning, technology choices too
    ("Prove that the sum of two odd numbers is even.", "reasoning"),
    (
        "A says B lies, B says C lies, C says both A and B lie. Who tells the truth?",
        "reasoning",
    ),
    ("Redis or Memcached for our session cache? We run three app servers.", "reasoning"),
    # Swahili and Hausa are not English
    ("Habari za asubuhi, unaweza kunisaidia leo?", "multilingual"),
    ("Ina kwana? Don Allah ka taimake ni.", "multilingual"),
    ("Nieleze jinsi ya kutumia git rebase.", "code"),
    # casual / single-step
    ("Hi!", "general"),
    ("Thanks, that's really helpful!", "general"),
    ("Write a short email to my landlord saying the kitchen tap is leaking.", "general"),
    ("What is the capital of Australia?", "general"),
]


@pytest.mark.parametrize(("text", "expected"), HARD_CASES)
def test_hard_cases(text: str, expected: str) -> None:
    result = classify(text)
    assert result.skill == expected, result


# --- language detection ---------------------------------------------------------------

LANGUAGE_SAMPLES = [
    ("Please review the attached contract before Friday.", "en"),
    ("请帮我总结一下这份报告的主要内容。", "zh"),
    ("会議は午後三時に始まります。よろしくお願いします。", "ja"),
    ("안녕하세요, 배송이 언제 도착하는지 알 수 있을까요?", "ko"),
    ("สวัสดีครับ อยากสอบถามเรื่องการคืนสินค้าครับ", "th"),
    ("مرحبا، أريد أن أعرف مواعيد عمل الفرع في الرياض.", "ar"),
    ("नमस्ते, मेरा ऑर्डर अभी तक नहीं आया है, कृपया स्थिति बताएं।", "hi"),
    ("Здравствуйте, когда будет доставлен мой заказ?", "ru"),
    ("Xin chào, tôi muốn đổi mật khẩu tài khoản ngân hàng thì làm thế nào?", "vi"),
    ("Selamat pagi, saya mau tanya status pesanan saya, sudah dikirim belum ya?", "id"),
    ("Saya nak tukar tarikh penerbangan saya. Ada caj tambahan tak?", "ms"),
    ("Hola, ¿me puedes recomendar un buen libro de ciencia ficción?", "es"),
    ("Olá, gostaria de saber como cancelar minha assinatura.", "pt"),
    ("Bonjour, pouvez-vous m'expliquer la différence entre un CDD et un CDI ?", "fr"),
    ("Kannst du mir erklären, wie die Mülltrennung in Deutschland funktioniert?", "de"),
    ("", "und"),
    ("12345 + 678", "und"),
]


@pytest.mark.parametrize(("text", "lang"), LANGUAGE_SAMPLES)
def test_detect_language(text: str, lang: str) -> None:
    assert detect_language(text) == lang


def test_detect_language_ignores_code_blocks() -> None:
    text = "这段代码为什么报错？\n```python\nnums = [1, 2, 3]\nprint(nums[3])\n```"
    assert detect_language(text) == "zh"


def test_is_mostly_english() -> None:
    assert is_mostly_english("Can you check this invoice for me?")
    assert is_mostly_english("Translate the Chinese below into English: 我们下周一开会。")
    assert is_mostly_english("")  # no evidence of another language
    assert not is_mostly_english("Apa perbedaan antara asuransi jiwa dan asuransi kesehatan?")
    assert not is_mostly_english("我们的 marketing budget 应该怎么分配？")


# --- API contract ----------------------------------------------------------------------


def test_classification_shape() -> None:
    result = classify("Write a Python function that reverses a string.")
    assert isinstance(result, Classification)
    assert result.skill == "code"
    assert 0.0 <= result.confidence <= 1.0
    assert result.reasons
    assert all(isinstance(r, str) for r in result.reasons)
    skill, confidence, reasons = result  # a plain 3-tuple for callers that unpack
    assert (skill, confidence, reasons) == tuple(result)


def test_reasons_are_human_readable() -> None:
    assert "code fence" in classify("Fix:\n```js\nlet x = 1\n```").reasons
    assert "translate request" in classify("Translate 'good morning' into Thai.").reasons
    thai = classify("สวัสดีครับ อยากสอบถามเรื่องการคืนสินค้าครับ")
    assert any(r.startswith("script: Thai") for r in thai.reasons)


def test_every_result_is_valid() -> None:
    for row in MAIN + HOLDOUT:
        result = classify(row["text"])
        assert result.skill in SKILLS
        assert 0.0 <= result.confidence <= 1.0
        assert result.reasons


def test_deterministic() -> None:
    first = [classify(r["text"]) for r in MAIN]
    second = [SkillClassifier()(r["text"]) for r in MAIN]
    assert first == second


def test_edge_inputs() -> None:
    assert classify("").skill == "general"
    assert classify("   \n").skill == "general"
    assert classify("🙂🙂").skill == "general"
    with pytest.raises(TypeError):
        classify(None)  # type: ignore[arg-type]


def test_huge_input_is_bounded() -> None:
    # Speed is reported by benchmarks/bench_classifier.py; here: only the first 4,000
    # characters decide, so a huge paste classifies like its head.
    log = "Traceback (most recent call last):\n" + '  File "x.py", line 1, in f\n' * 50_000
    assert classify(log) == classify(log[:4000])
    assert classify(log).skill == "code"


# --- configuration ----------------------------------------------------------------------


def test_extra_code_keywords() -> None:
    text = "Please update the Frobnicator settings for the Berlin team."
    assert classify(text).skill != "code"
    custom = SkillClassifier(extra_code_keywords=["frobnicator"])
    assert custom(text).skill == "code"


def test_extra_translate_keywords() -> None:
    text = "Please transcreate this slogan for the Brazilian market: 'Move fast.'"
    assert classify(text).skill != "multilingual"
    assert SkillClassifier(extra_translate_keywords=["transcreate"])(text).skill == "multilingual"


def test_extra_reasoning_and_general_keywords() -> None:
    text = "Triage the incident queue for me."
    assert classify(text).skill == "general"
    assert SkillClassifier(extra_reasoning_keywords=["triage"])(text).skill == "reasoning"
    text2 = "If it is sunny, should we have the picnic?"
    assert SkillClassifier(extra_general_keywords=["picnic"])(text2).skill == "general"


def test_thresholds_are_respected() -> None:
    text = "Write a Python function that returns the n-th Fibonacci number."
    assert classify(text).skill == "code"
    assert SkillClassifier(code_threshold=100.0)(text).skill != "code"
    mixed = "Translate the Chinese below into English: 我们下周一开会讨论预算。"
    # English share is below 0.99, so a strict instance treats it as not-English even
    # without the translate cue.
    strict = SkillClassifier(english_threshold=0.99)
    assert strict(mixed).skill == "multilingual"


def test_max_chars_truncates() -> None:
    text = "Hello there, hope you are well. " * 5 + "\n```python\ndef f(): pass\n```"
    assert classify(text).skill == "code"
    assert SkillClassifier(max_chars=60)(text).skill == "general"


# --- LLM fallback -------------------------------------------------------------------------


class FakeAsk:
    """Async callable standing in for a model; records the prompts it was given."""

    def __init__(self, reply: str = "reasoning", *, error: Exception | None = None) -> None:
        self.reply = reply
        self.error = error
        self.prompts: list[str] = []

    async def __call__(self, prompt: str) -> str:
        self.prompts.append(prompt)
        if self.error is not None:
            raise self.error
        return self.reply


CONFIDENT = "Traceback (most recent call last):\n  File \"a.py\", line 1\nKeyError: 'x'"
UNSURE = "Is Arabic written from right to left?"  # general, but near a translation topic


async def test_llm_not_consulted_when_confident() -> None:
    ask = FakeAsk("general")
    result = await LLMSkillClassifier(ask)(CONFIDENT)
    assert result.skill == "code"
    assert ask.prompts == []


async def test_llm_threshold_boundary() -> None:
    det = guess_skill(UNSURE)
    ask = FakeAsk("reasoning")
    # Confidence equal to the threshold is confident enough: no call.
    assert await LLMSkillClassifier(ask, threshold=det.confidence)(UNSURE) == det
    assert ask.prompts == []


async def test_llm_consulted_when_unsure() -> None:
    det = classify(UNSURE)
    assert det.confidence < 0.65  # the default threshold would consult the model
    ask = FakeAsk("  Reasoning\n")
    result = await LLMSkillClassifier(ask)(UNSURE)
    assert len(ask.prompts) == 1
    assert UNSURE in ask.prompts[0]
    assert result.skill == "reasoning"
    assert "llm: reasoning" in result.reasons


async def test_llm_agreement_raises_confidence() -> None:
    det = classify(UNSURE)
    result = await LLMSkillClassifier(FakeAsk(det.skill), threshold=1.0)(UNSURE)
    assert result.skill == det.skill
    assert result.confidence >= max(det.confidence, 0.85)
    assert "llm agrees" in result.reasons


@pytest.mark.parametrize(
    ("ask", "reason"),
    [
        (FakeAsk(error=RuntimeError("boom")), "llm failed: RuntimeError"),
        (FakeAsk("I am not sure, sorry"), "llm reply unparseable"),
    ],
)
async def test_llm_failures_fall_back_to_rules(ask: FakeAsk, reason: str) -> None:
    det = classify(UNSURE)
    result = await LLMSkillClassifier(ask, threshold=1.0)(UNSURE)
    assert (result.skill, result.confidence) == (det.skill, det.confidence)
    assert reason in result.reasons


async def test_llm_timeout_falls_back_to_rules() -> None:
    async def slow(prompt: str) -> str:
        await asyncio.sleep(5)
        return "code"

    result = await LLMSkillClassifier(slow, threshold=1.0, timeout=0.01)(UNSURE)
    assert result.skill == classify(UNSURE).skill
    assert "llm failed: TimeoutError" in result.reasons


async def test_llm_uses_given_base_classifier() -> None:
    base = SkillClassifier(extra_code_keywords=["frobnicator"])
    ask = FakeAsk("general")
    result = await LLMSkillClassifier(ask, base=base, threshold=0.0)("Fix the frobnicator")
    assert result.skill == "code"
    assert ask.prompts == []


# --- internal invariant: gating never hides a match -----------------------------------


def test_cue_needles_are_sound() -> None:
    """Each cue's regex only runs when a needle occurs; a match without one is a bug."""
    from hybridstack.routing.skills import _code_cues as code
    from hybridstack.routing.skills import _prose_cues as prose

    samples = [r["text"] for r in MAIN + HOLDOUT] + [
        "x = [a for a in b]",
        "SELECT id\nFROM t",
        "FROM python:3.12\nRUN pip install -r requirements.txt",
        "ls -la | grep foo && awk -F, '{print $1}' a.csv",
        "see /etc/nginx/nginx.conf and ./build/out.log",
        "Error: EADDRINUSE address already in use :::3000",
    ]
    cased = (*code._HARD_CODE_CUES, *code._SOFT_CODE_CUES)
    lowered = (*code._HARD_CODE_CUES_LC, *prose._REASONING_CUES, *prose._GENERAL_CUES)
    for text in samples:
        for cues, subject in ((cased, text), (lowered, text.lower())):
            for cue in cues:
                if cue.needles and cue.pattern.search(subject):
                    assert any(n in subject for n in cue.needles), (cue.reason, subject)
        low = text.lower()
        for gated in (
            code._CODE_ASK_RE,
            code._FOREIGN_CODE_LATIN_RE,
            code._FOREIGN_INTENT_LATIN_RE,
        ):
            assert bool(gated.pattern.search(low)) == bool(gated.search(low))
