"""Planners: the heuristic splitter and the LLM planner's validate → retry → fall back."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from hybridstack.graph import EmptyTaskError, HeuristicPlanner, LLMPlanner, TaskPlan
from hybridstack.graph.builder import resolve_planner

sys.path.insert(0, str(Path(__file__).parent))

from graph_helpers.fake_stack import FakeStack, all_failed


def _split(task: str) -> TaskPlan:
    return HeuristicPlanner().split(task)


def test_numbered_list_items_run_in_parallel_unless_they_refer_back() -> None:
    plan = _split(
        "Please help with the launch:\n"
        "1. Write a Python function that validates coupon codes\n"
        "2. Explain what a coupon stacking rule is\n"
        "3. Translate step 2 into Japanese\n"
    )
    assert [s.skill for s in plan] == ["code", "general", "multilingual"]
    assert [s.depends_on for s in plan] == [(), (), ("s2",)]
    assert plan["s1"].instruction == "Write a Python function that validates coupon codes"


def test_closing_request_after_a_list_depends_on_every_item() -> None:
    plan = _split("- Summarise the Q3 report\n- List the three biggest risks\nThen combine them.")
    assert plan.ids == ["s1", "s2", "s3"]
    assert plan["s3"].depends_on == ("s1", "s2")
    assert plan["s3"].instruction == "Combine them."


def test_sentences_asking_for_separate_things_are_split_and_classified() -> None:
    plan = _split(
        "Write a Python function that parses ISO dates. Translate the README intro into "
        "German. Compare Postgres and MySQL for a small team."
    )
    assert len(plan) == 3
    assert [s.skill for s in plan][:2] == ["code", "multilingual"]
    assert all(not s.depends_on for s in plan)


def test_then_and_pronouns_link_to_the_previous_request() -> None:
    plan = _split("Write a haiku about the sea, and then translate it into French.")
    assert [s.instruction for s in plan] == [
        "Write a haiku about the sea",
        "Translate it into French.",
    ]
    assert plan["s2"].depends_on == ("s1",)
    assert plan["s2"].skill == "multilingual"


def test_context_sentences_stay_with_their_request() -> None:
    plan = _split("I run a bakery in Lyon. Draft a welcome email. Also list five cake names.")
    assert plan["s1"].instruction == "I run a bakery in Lyon. Draft a welcome email."
    assert len(plan) == 2


def test_one_request_stays_one_subtask() -> None:
    notes: list[str] = []
    plan = HeuristicPlanner().split("Summarise this article for me.", notes=notes)
    assert len(plan) == 1
    assert plan["s1"].instruction == "Summarise this article for me."
    assert "one subtask" in notes[0]
    # Prose without a request stays whole (never mangled).
    assert (
        _split("我的代码很慢。你觉得为什么？")["s1"].instruction == "我的代码很慢。你觉得为什么？"
    )


# --- multilingual and code-aware splitting ------------------------------------------------

CHECKOUT_CODE = """```python
def total(items):
    return sum(i["price"] for i in items) * 1.1 + items["shipping"]
```"""
CHECKOUT_TASK = (
    "Halo, aplikasi toko online saya error waktu checkout. Tolong perbaiki fungsi Python ini:\n"
    f"{CHECKOUT_CODE}\n"
    "Lalu jelaskan kenapa error itu terjadi dengan bahasa yang sederhana."
)


def test_indonesian_fix_then_explain_keeps_the_code_and_context_in_s1() -> None:
    plan = _split(CHECKOUT_TASK)
    assert plan.ids == ["s1", "s2"]
    s1, s2 = plan["s1"], plan["s2"]
    assert s1.instruction == (
        "Halo, aplikasi toko online saya error waktu checkout. "
        f"Tolong perbaiki fungsi Python ini:\n{CHECKOUT_CODE}"
    )
    assert s2.instruction == "Jelaskan kenapa error itu terjadi dengan bahasa yang sederhana."
    assert s2.depends_on == ("s1",)  # "Lalu" = "then"
    assert [s1.skill, s2.skill] == ["code", "multilingual"]


def test_chinese_fix_then_explain_and_in_sentence_then() -> None:
    code = (
        "```js\nfunction add(a, b) { return a + b; }\n\nconsole.log(add(1)); // 结果。不对！\n```"
    )
    plan = _split(f"修复这段代码：\n{code}\n然后用中文解释原因。")
    assert [s.instruction for s in plan] == [f"修复这段代码：\n{code}", "用中文解释原因。"]
    assert [s.skill for s in plan] == ["code", "multilingual"]
    assert plan["s2"].depends_on == ("s1",)

    plan = _split("请帮我写一个排序函数，然后解释它的时间复杂度。")
    assert [s.instruction for s in plan] == ["请帮我写一个排序函数", "解释它的时间复杂度。"]
    assert plan["s2"].depends_on == ("s1",)

    plan = _split("请写一个Python函数。然后把它翻译成日文。")
    assert [s.instruction for s in plan] == ["请写一个Python函数。", "把它翻译成日文。"]
    assert plan["s2"].depends_on == ("s1",)

    plan = _split("請修復這段代碼。然後解釋原因。")  # traditional characters
    assert [s.instruction for s in plan] == ["請修復這段代碼。", "解釋原因。"]
    assert plan["s2"].depends_on == ("s1",)
    # "再见" ("goodbye") is not "再" ("then"), and "最后的结果" is not "最后" + a request.
    assert len(_split("最后的结果很好。再见。")) == 1


def test_spanish_list_and_sentences() -> None:
    plan = _split(
        "Por favor:\n"
        "1. Escribe una función en Python que ordene una lista\n"
        "2. Traduce el resultado al inglés\n"
        "3. Resume el texto en dos frases\n"
    )
    assert [s.instruction for s in plan] == [
        "Escribe una función en Python que ordene una lista",
        "Traduce el resultado al inglés",
        "Resume el texto en dos frases",
    ]
    assert [s.skill for s in plan][:2] == ["code", "multilingual"]
    assert [s.depends_on for s in plan] == [(), ("s1",), ()]  # "el resultado" refers back

    plan = _split("Escribe un poema sobre el mar y luego tradúcelo al inglés.")
    assert [s.instruction for s in plan] == [
        "Escribe un poema sobre el mar",
        "Tradúcelo al inglés.",
    ]
    assert plan["s2"].depends_on == ("s1",)


@pytest.mark.parametrize(
    ("task", "first", "second"),
    [
        (
            "Hãy viết một hàm Python để đảo ngược chuỗi. Sau đó giải thích cách nó hoạt động.",
            "Hãy viết một hàm Python để đảo ngược chuỗi.",
            "Giải thích cách nó hoạt động.",
        ),
        (  # Thai separates sentences with a space, not a full stop
            "ช่วยเขียนฟังก์ชัน Python สำหรับเรียงลำดับรายการ จากนั้นอธิบายวิธีการทำงานของมัน",
            "ช่วยเขียนฟังก์ชัน Python สำหรับเรียงลำดับรายการ",
            "อธิบายวิธีการทำงานของมัน",
        ),
        (
            "من فضلك اكتب دالة بايثون لترتيب قائمة. ثم اشرح كيف تعمل.",
            "من فضلك اكتب دالة بايثون لترتيب قائمة.",
            "اشرح كيف تعمل.",
        ),
        (
            "اكتب دالة بايثون لترتيب قائمة ثم ترجمها إلى الإنجليزية.",
            "اكتب دالة بايثون لترتيب قائمة",
            "ترجمها إلى الإنجليزية.",
        ),
        (
            "このコードを修正してください。それから、日本語で説明してください。",
            "このコードを修正してください。",
            "日本語で説明してください。",
        ),
        (
            "이 코드를 고쳐 주세요. 그 다음에 설명해 주세요.",
            "이 코드를 고쳐 주세요.",
            "설명해 주세요.",
        ),
        (
            "Écris une fonction Python qui trie une liste. Ensuite, explique-la en français.",
            "Écris une fonction Python qui trie une liste.",
            "Explique-la en français.",
        ),
        (
            "Schreibe eine Python-Funktion zum Sortieren. Danach erkläre sie auf Deutsch.",
            "Schreibe eine Python-Funktion zum Sortieren.",
            "Erkläre sie auf Deutsch.",
        ),
        (  # no capitals and no full stop: "lalu"/"Lalu" still start the next request
            "tolong perbaiki kode ini. lalu jelaskan errornya.",
            "Tolong perbaiki kode ini.",
            "Jelaskan errornya.",
        ),
        (
            "Tolong perbaiki kode ini\nLalu jelaskan errornya",
            "Tolong perbaiki kode ini",
            "Jelaskan errornya",
        ),
    ],
)
def test_two_requests_in_other_languages(task: str, first: str, second: str) -> None:
    plan = _split(task)
    assert [s.instruction for s in plan] == [first, second]
    assert plan["s2"].depends_on == ("s1",)
    if "Python" in first:
        assert plan["s1"].skill == "code"


def test_also_words_do_not_link_and_non_english_skills_are_classified() -> None:
    plan = _split("이 문서를 요약해 주세요. 그리고 영어로 번역해 주세요.")  # 그리고 = "and"
    assert [s.depends_on for s in plan] == [(), ()]
    plan = _split(
        "Hãy viết một hàm Python để đảo ngược chuỗi. Sau đó giải thích cách nó hoạt động."
    )
    assert [s.skill for s in plan] == ["code", "multilingual"]


def test_fenced_code_with_periods_semicolons_and_blank_lines_is_never_split() -> None:
    code = (
        "```python\nimport os; import sys\nx = 1.5; y = 2\n\n"
        "# Note. This line has a period. Write tests. Then explain.\nprint(x)\n```"
    )
    plan = _split(f"Refactor this script:\n{code}\nThen explain what it does.")
    assert [s.instruction for s in plan] == [
        f"Refactor this script:\n{code}",
        "Explain what it does.",
    ]
    assert plan["s2"].depends_on == ("s1",)
    # "~~~" fences and a fence opened at the end of the request line work the same way.
    tilde = "~~~\na = 1; b = 2.\n\nFix it. Then explain it.\n~~~"
    plan = _split(f"Fix this: {tilde}\nThen write a test for it.")
    assert [s.instruction for s in plan] == [f"Fix this:\n{tilde}", "Write a test for it."]


def test_indented_code_and_inline_code_are_atomic() -> None:
    block = (
        "    def avg(xs):\n        total = sum(xs); return total / len(xs)\n\n"
        "    Fix it. Explain it."
    )
    plan = _split(
        f"My average function fails on empty input:\n\n{block}\n\n"
        "Fix the function. Then explain the bug."
    )
    assert len(plan) == 2
    assert block in plan["s1"].instruction  # the code before the request goes with it
    assert plan["s2"].instruction == "Explain the bug."

    plan = _split("Run `a; b. Then c` in the shell. Then explain the output.")
    assert [s.instruction for s in plan] == [
        "Run `a; b. Then c` in the shell.",
        "Explain the output.",
    ]


def test_code_in_a_list_stays_with_its_item() -> None:
    yaml = "```yaml\nsteps:\n  - run: make; make test\n  - run: echo done.\n\n  - run: deploy\n```"
    plan = _split(f"Please help:\n1. Fix this config:\n{yaml}\n2. Explain what each step does.")
    assert [s.instruction for s in plan] == [
        f"Fix this config:\n{yaml}",
        "Explain what each step does.",
    ]
    # Step numbers inside code ("f(1)") are not references to steps.
    plan = _split("1. Write f:\n```\nprint(f(1))\n```\n2. Write g\n3. Write h")
    assert [s.depends_on for s in plan] == [(), (), ()]


@pytest.mark.parametrize(
    "task",
    [
        "Saya punya toko kue di Bandung. Tolong buatkan deskripsi produk untuk kue lapis. "
        "Terima kasih!",
        "Buat info, aplikasi saya pakai Django. Tolong cek kenapa migrasinya gagal.",
        "Halo kak, apa kabar? Tolong perbaiki kode ini ya.",
        "Terus terang, saya bingung. Tolong jelaskan apa itu rekursi.",
        "Laporan minggu lalu sudah saya kirim. Tolong ringkas laporan itu.",
        "Mohon bantuannya. Tolong perbaiki kode ini:\n```python\nprint('a'); print('b')\n```\n"
        "Terima kasih.",
        "¿Puedes explicarme qué es una mónada? ¡Gracias!",
        "Mi código falla con listas vacías, por favor ayúdame a arreglarlo. "
        "Lo necesito para mañana, por favor.",
        "你好！我是一名学生。我在学习机器学习。请解释一下什么是过拟合。谢谢！",
        "こんにちは。私はエンジニアです。このエラーの原因を教えてください。よろしくお願いします。",
        "Xin chào, tính năng đăng nhập của tôi bị lỗi. Bạn có thể giúp tôi sửa nó không?",
        "สวัสดีครับ ผมเป็นนักเรียน ช่วยอธิบายเรื่องการเรียกซ้ำหน่อยครับ ขอบคุณครับ",
        "مرحبا. أنا مطور ويب. اشرح لي ما هو التعاود. شكرا لك!",
        "Hi, can you help me? Write a haiku about autumn.",
    ],
)
def test_one_request_with_context_stays_one_subtask_in_any_language(task: str) -> None:
    plan = _split(task)
    assert len(plan) == 1
    assert plan["s1"].instruction == task


def test_max_subtasks_merges_the_tail() -> None:
    task = "\n".join(f"{i}. Write function number {i} in Python" for i in range(1, 7))
    notes: list[str] = []
    plan = HeuristicPlanner(max_subtasks=3).split(task, notes=notes)
    assert len(plan) == 3
    assert "function number 6" in plan["s3"].instruction
    assert any("max_subtasks=3" in n for n in notes)


def test_empty_task_is_refused() -> None:
    with pytest.raises(EmptyTaskError):
        _split("   ")


def _plan_json(*subtasks: dict[str, object]) -> str:
    return json.dumps({"subtasks": list(subtasks)})


GOOD = _plan_json(
    {"id": "s1", "instruction": "Write the parser", "skill": "code", "depends_on": []},
    {
        "id": "s2",
        "instruction": "Document it in German",
        "skill": "multilingual",
        "depends_on": ["s1"],
    },
)


async def test_llm_planner_uses_a_valid_plan_and_asks_with_the_plan_schema() -> None:
    stack = FakeStack(scripted={"plan": [GOOD]})
    result = await LLMPlanner().plan("task", stack=stack, data_class="internal", run_id="r1")
    assert result.planner == "llm"
    assert result.plan.ids == ["s1", "s2"]
    assert result.plan["s2"].depends_on == ("s1",)
    call = stack.calls[0]
    assert call["skill"] == "reasoning"
    assert call["data_class"] == "internal"  # the planner sees the task: same data class
    assert call["response_schema"] == TaskPlan.llm_schema()
    assert call["run_id"] == "r1"
    assert result.calls[0]["stage"] == "plan"


async def test_llm_planner_retries_once_with_the_validation_error() -> None:
    cyclic = _plan_json(
        {"id": "a", "instruction": "x", "skill": "general", "depends_on": ["b"]},
        {"id": "b", "instruction": "y", "skill": "general", "depends_on": ["a"]},
    )
    stack = FakeStack(scripted={"plan": [cyclic, GOOD]})
    result = await LLMPlanner().plan("task", stack=stack, data_class="public")
    assert result.planner == "llm"
    assert len(result.plan) == 2
    retry = stack.calls[1]["messages"]
    assert retry[-2].role == "assistant"
    assert "dependency cycle" in retry[-1].text
    assert any("invalid plan" in n for n in result.notes)


async def test_llm_planner_falls_back_to_the_heuristic_after_two_bad_plans() -> None:
    stack = FakeStack(scripted={"plan": ["not json", '{"subtasks": [{"id": "sample id"}]}']})
    task = "Write a Python function that parses dates. Translate the result into Thai."
    result = await LLMPlanner().plan(task, stack=stack, data_class="public")
    assert result.planner == "llm→heuristic"
    assert len(stack.calls) == 2
    assert len(result.plan) == 2
    assert result.plan["s2"].depends_on == ("s1",)
    trace = " | ".join(result.notes)
    assert "not JSON" in trace
    assert "fell back to the heuristic planner" in trace


async def test_llm_planner_falls_back_when_the_call_fails() -> None:
    stack = FakeStack(scripted={"plan": [all_failed()]})
    result = await LLMPlanner().plan("Explain monads.", stack=stack, data_class="public")
    assert result.planner == "llm→heuristic"
    assert result.calls[0]["ok"] is False
    assert "AllAttemptsFailedError" in result.calls[0]["error"]


async def test_llm_planner_without_fallback_raises() -> None:
    stack = FakeStack(scripted={"plan": ["nope", "nope"]})
    with pytest.raises(ValueError, match="not JSON"):
        await LLMPlanner(use_fallback=False).plan("x", stack=stack, data_class="public")


async def test_unknown_skills_from_the_model_are_classified_not_rejected() -> None:
    odd = _plan_json(
        {
            "id": "s1",
            "instruction": "Write a SQL query for churn",
            "skill": "databases",
            "depends_on": [],
        }
    )
    stack = FakeStack(scripted={"plan": [odd]})
    result = await LLMPlanner().plan("x", stack=stack, data_class="public")
    assert result.plan["s1"].skill == "code"
    assert any("unknown skill 'databases'" in n for n in result.notes)


def test_resolve_planner() -> None:
    assert isinstance(resolve_planner(None), LLMPlanner)
    assert isinstance(resolve_planner("heuristic"), HeuristicPlanner)
    with pytest.raises(ValueError, match="unknown planner"):
        resolve_planner("magic")
    with pytest.raises(TypeError):
        resolve_planner(object())  # type: ignore[arg-type]
