"""Planners: turn a task into a :class:`~hybridstack.graph.subtasks.TaskPlan`.

Two planners share one interface (:class:`Planner`):

* :class:`HeuristicPlanner` needs no model. It splits explicit lists and steps, and
  sentences that ask for separate things, links pieces that refer back ("then translate
  it") to what they refer to, and labels each piece with the skill classifier.
* :class:`LLMPlanner` asks the ``reasoning`` skill for a plan as structured output (the
  JSON schema of the plan model), validates it, retries once with the validation error,
  and then falls back to the heuristic planner. Every step is recorded in the notes, so
  a run's trace shows which planner produced its plan and why.

Neither planner sets data classes: every subtask inherits the run's, so no model can
lower the sensitivity of the data it plans over.
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import ValidationError

from hybridstack.errors import ConfigurationError, HybridStackError
from hybridstack.graph.subtasks import (
    EmptyTaskError,
    PlanValidationError,
    Subtask,
    TaskPlan,
    call_route_key,
)

__all__ = [
    "DEFAULT_SKILLS",
    "HeuristicPlanner",
    "LLMPlanner",
    "PlanResult",
    "Planner",
    "resolve_planner",
]

#: Skills a plan may use when the stack cannot say which it knows.
DEFAULT_SKILLS: tuple[str, ...] = ("code", "multilingual", "reasoning", "general")


@dataclass
class PlanResult:
    """A plan and how it was made."""

    plan: TaskPlan
    #: "llm", "heuristic", "llm→heuristic", or a custom planner's name.
    planner: str
    notes: list[str] = field(default_factory=list)
    #: CallRecord dicts for the model calls the planner made (for the run's totals).
    calls: list[dict[str, Any]] = field(default_factory=list)


@runtime_checkable
class Planner(Protocol):
    """Anything that can plan a task. ``stack`` is the run's Stack (planners may ignore it)."""

    name: str

    async def plan(
        self,
        task: str,
        *,
        stack: Any,
        data_class: str,
        run_id: str | None = None,
        on_event: Callable[[Any], None] | None = None,
    ) -> PlanResult: ...


def resolve_planner(planner: Planner | str | None) -> Planner:
    """``None``/"auto"/"llm" → LLMPlanner (heuristic fall-back); "heuristic" → HeuristicPlanner."""
    if planner is None or planner in ("auto", "llm"):
        return LLMPlanner()
    if planner == "heuristic":
        return HeuristicPlanner()
    if isinstance(planner, str):
        raise ValueError(f"unknown planner {planner!r}; use 'llm', 'heuristic' or a Planner")
    if not isinstance(planner, Planner):
        raise TypeError(
            f"planner must have a name and an async plan(task, *, stack, data_class, ...) "
            f"method; got {type(planner).__name__}"
        )
    return planner


def known_skills(stack: Any) -> tuple[str, ...]:
    """The skills the stack's skill table knows, else :data:`DEFAULT_SKILLS`."""
    table = getattr(getattr(stack, "router", None), "skill_table", None)
    try:
        skills = tuple(table.known_skills(getattr(stack, "catalog", None)))  # type: ignore[union-attr]
    except Exception:
        try:
            skills = tuple(table.skills)  # type: ignore[union-attr]
        except Exception:
            skills = ()
    return skills or DEFAULT_SKILLS


# --- the heuristic planner --------------------------------------------------------------

# "1. ...", "1) ...", "(1) ...", "Step 1: ...", "- ...", "* ...", "• ...", "a) ...", "1、..."
_ITEM_RE = re.compile(
    r"""^\s*(?:
        (?:step\s*)?(?P<num>\d{1,2})\s*(?:[.)、:．]|\s-)
      | \((?P<pnum>\d{1,2})\)
      | (?P<bullet>[-*•·–])
      | (?P<letter>[a-hA-H])[.)]
    )\s*(?P<text>\S.*)$""",
    re.IGNORECASE | re.VERBOSE,
)
_THEN_SPLIT_RE = re.compile(r",?\s+and\s+then\s+|,\s*then\s+|;\s*then\s+", re.IGNORECASE)
_LEAD_RE = re.compile(
    r"^(?:(?:please|also|and|then|finally|next|first|second|third|lastly|now|after\s+that|"
    r"afterwards|additionally|separately|in\s+addition)[,:]?\s+)+",
    re.IGNORECASE,
)
_IMPERATIVES = frozenset(
    """
    add analyse analyze answer assess audit brainstorm build calculate check classify
    combine compare compile compose compute convert count create debug define derive
    describe design detect determine develop diagnose draft draw edit estimate evaluate
    explain extract find fix format generate give implement improve list localise
    localize make map name optimise optimize outline paraphrase plan port predict prepare
    propose prove provide rank recommend refactor rephrase reply respond review rewrite
    run score show simplify sketch solve sort specify suggest summarise summarize tell
    test translate turn update validate verify write
    """.split()  # noqa: SIM905 - a word list reads better as prose
)
_ASK_RE = re.compile(
    r"^(?:can|could|would|will)\s+you\b|^i\s+(?:need|want|would\s+like)\s+(?:you\s+to|a|an|the)\b"
    r"|^help\s+me\b|^let'?s\b",
    re.IGNORECASE,
)
_REFERS_BACK_RE = re.compile(
    r"^(?:then|next|finally|after\s+that|afterwards|lastly)\b"
    r"|\b(?:using|use|based\s+on|from|with)\s+(?:the|that|this|those|these|its|their)\s+"
    r"(?:result|results|output|outputs|answer|answers|summary|code|function|text|"
    r"translation|list|above|previous|findings|draft)\b"
    r"|\b(?:the\s+above|the\s+previous\s+(?:step|answer|result)|the\s+result|the\s+output)\b"
    r"|^\w+\s+(?:it|them|that|this)\b",
    re.IGNORECASE,
)
_STEP_REF_RE = re.compile(r"\b(?:step|item|part|task)\s*#?(\d{1,2})\b|\(#?(\d{1,2})\)", re.I)


# --- multilingual cues ------------------------------------------------------------------
# Small word lists, matched case-insensitively at the start of a sentence (after greetings
# and lead words such as "lalu"/"然后" are set aside). Words of spaced scripts need a word
# boundary after them; Chinese, Japanese and Thai have no spaces, so theirs are prefixes.
# Words that are also common English words are left out, so English splits as before.


def _words(text: str) -> frozenset[str]:
    return frozenset(w.strip().lower() for w in text.split(",") if w.strip())


#: Words that open a request in scripts written with spaces.
_REQUEST_OPENERS: dict[str, frozenset[str]] = {
    "id/ms": _words(
        """tolong, mohon, minta, sila, silakan, harap, coba, bisakah, dapatkah, bisa kamu,
        bisa anda, bisa tolong, saya ingin kamu, saya mau kamu, aku mau kamu, perbaiki,
        betulkan, jelaskan, terangkan, buatkan, buat, tulis, tuliskan, terjemahkan, periksa,
        semak, cek, hitung, kirakan, bandingkan, ringkas, ringkaskan, rangkum, rangkumkan,
        balas, jawab, sebutkan, berikan, ubah, tambahkan, carikan, susun, analisis"""
    ),
    "es": _words(
        """por favor, puedes, podrías, podrias, me puedes, me podrías, quiero que, necesito
        que, me gustaría que, ayúdame, ayudame, arregla, corrige, explica, explícame,
        explicame, escribe, escríbeme, traduce, tradúceme, resume, resúmeme, calcula, compara,
        responde, contesta, revisa, crea, genera, haz, dame un, dame una, dame el, dame la,
        dime qué, dime cómo, dime por qué, enumera, analiza, optimiza, convierte, mejora"""
    ),
    "pt": _words(
        """você pode, voce pode, poderia, pode me, preciso que, quero que, gostaria que,
        me ajude, ajude-me, corrija, conserte, explique, me explique, escreva, traduza,
        resuma, calcule, responda, revise, crie, gere, faça, me dê, me diga, liste, analise,
        melhore, converta"""
    ),
    "fr": _words(
        """s'il vous plaît, s'il te plaît, peux-tu, pouvez-vous, pourriez-vous, pourrais-tu,
        merci de, veuillez, je voudrais que, j'aimerais que, aide-moi, aidez-moi, corrigez,
        expliquez, écris, écrivez, traduis, traduisez, résume, résumez, calculez, comparez,
        réponds, répondez, vérifie, vérifiez, crée, créez, génère, générez, fais, faites,
        donne-moi, donnez-moi, dis-moi, dites-moi, rédige, rédigez, listez, analysez,
        améliore, améliorez"""
    ),
    "de": _words(
        """bitte, kannst du, könntest du, können sie, könnten sie, würdest du, würden sie,
        ich möchte, ich brauche, hilf mir, helfen sie mir, erkläre, erklär, erklären sie,
        schreibe, schreib, übersetze, übersetz, fasse, korrigiere, behebe, repariere,
        berechne, vergleiche, beantworte, antworte, prüfe, überprüfe, erstelle, erzeuge,
        gib mir, nenne, analysiere, mache, mach mir, verbessere, formuliere"""
    ),
    "vi": _words(
        """hãy, vui lòng, làm ơn, xin hãy, xin vui lòng, giúp tôi, giúp mình, giúp em,
        bạn có thể, bạn hãy, tôi muốn bạn, tôi cần bạn, cho tôi, giải thích, sửa, viết, dịch,
        tóm tắt, tính, so sánh, trả lời, kiểm tra, tạo, liệt kê, phân tích, đưa ra,
        cải thiện"""
    ),
    "ar": _words(
        """من فضلك, لو سمحت, يرجى, رجاء, أرجو, ارجو, هل يمكنك, هل تستطيع, أريد, اريد,
        أريدك, ساعدني, اشرح, وضح, أصلح, اصلح, صحح, ترجم, اكتب, لخص, احسب, قارن, راجع,
        أنشئ, انشئ, حلل, أجب, اجب, أعطني, اعطني, اذكر"""
    ),
}
#: Prefixes that open a request in scripts without spaces (Chinese, Thai).
_NOSPACE_OPENERS = _words(
    """请, 帮我, 帮忙, 麻烦, 能不能, 能否, 可不可以, 可以帮, 你能, 您能, 你可以, 您可以, 修复,
    修改, 修正, 改正, 解释, 说明, 翻译, 写, 编写, 总结, 概括, 计算, 比较, 对比, 回复, 回答,
    生成, 列出, 列举, 分析, 检查, 优化, 实现, 给我, 告诉我, 创建, 重写, 改写, 设计, 找出, 描述,
    請, 幫我, 幫忙, 麻煩, 修復, 解釋, 說明, 翻譯, 寫, 編寫, 總結, 計算, 比較, 對比, 回覆,
    列舉, 檢查, 優化, 實現, 給我, 告訴我, 創建, 重寫, 改寫, 設計, 描述,
    ช่วย, กรุณา, โปรด, รบกวน, ขอ, แก้, อธิบาย, แปล, เขียน, สรุป, คำนวณ, เปรียบเทียบ, ตอบ,
    ตรวจสอบ, สร้าง, บอก, วิเคราะห์, ยกตัวอย่าง"""
)
#: Chinese verbs that make "用中文解释…" / "把它翻译成…" ("explain it in…") a request.
_ZH_VERBS = _words(
    "修复, 修改, 修正, 解释, 说明, 翻译, 译成, 写, 总结, 概括, 计算, 比较, 回复, 回答, 生成, "
    "列出, 分析, 检查, 优化, 实现, 重写, 改写, 描述, 修復, 解釋, 說明, 翻譯, 譯成, 寫, 總結, "
    "計算, 比較, 回覆, 檢查, 優化, 實現, 重寫, 改寫"
)
#: Sentence endings that make a request in Japanese, Korean and Thai.
_REQUEST_ENDINGS = _words(
    """ください, 下さい, てくれますか, てくれませんか, てほしい, てほしいです, てもらえますか,
    ていただけますか, お願いします, お願い, しなさい, して, 書いて, 教えて, 作って, まとめて,
    調べて, 答えて, 比べて, 考えて, 見せて, 読んで, 주세요, 주십시오, 줘, 줘요, 주실래요,
    주시겠어요, 하세요, 하십시오, 해라, 부탁합니다, 부탁해요, 부탁드립니다, หน่อย, ให้หน่อย,
    หน่อยครับ, หน่อยค่ะ, หน่อยนะ"""
)
#: Sentence starts that look like an opener but are not ("xin chào" is "hello").
_NOT_OPENERS = _words(
    """xin chào, dịch vụ, dịch bệnh, tính năng, tính cách, kira-kira, buat apa, buat info,
    计算机, 说明书, 写得, 分析结果, 检查结果, ขอบ, ขอโทษ, แก้ว, แปลก"""
)
#: Politeness words that start a request after a clause: "Mi código falla, por favor…".
_POLITE_IN_CLAUSE = _words(
    """por favor, tolong, mohon, s'il vous plaît, s'il te plaît, bitte, vui lòng, làm ơn, hãy,
    من فضلك, يرجى, 请, 麻烦, 帮我, 能不能, กรุณา, โปรด"""
)

#: "Then" words: the piece they start uses the previous one. Also stripped like "then".
_THEN_WORDS = _words(
    """lalu, kemudian, setelah itu, sesudah itu, setelahnya, terus, selanjutnya, berikutnya,
    terakhir, akhirnya, dan lalu, dan kemudian, dan setelah itu,
    luego, después, despues, y luego, y después, entonces, a continuación, por último,
    finalmente, después de eso, depois, em seguida, e depois, então, depois disso, por fim,
    puis, ensuite, et puis, et ensuite, après ça, après cela, enfin, finalement,
    dann, danach, anschließend, und dann, schließlich, zuletzt, zum schluss,
    sau đó, rồi, và sau đó, tiếp theo, tiếp đó, cuối cùng,
    ثم, بعد ذلك, وبعد ذلك, بعدها, ثم بعد ذلك, أخيرا, أخيراً, وأخيرا,
    그 다음에, 그다음에, 그런 다음, 그런 다음에, 그리고 나서, 다음으로, 마지막으로"""
)
_THEN_WORDS_NOSPACE = _words(
    """然后, 接着, 之后, 随后, 接下来, 最后, 再, 然後, 接著, 之後, 隨後, 接下來, 最後,
    それから, 次に, その後, 最後に, 続いて,
    จากนั้น, หลังจากนั้น, แล้ว, ต่อไป, ต่อมา, สุดท้าย"""
)
#: "Then" words that also mean something else ("minggu lalu" is "last week"): they only
#: split a sentence after a comma.
_THEN_AFTER_COMMA_ONLY = _words(
    """lalu, terus, terakhir, akhirnya, berikutnya, selanjutnya, entonces, então, enfin,
    finalmente, dann, zuletzt, schließlich, cuối cùng, tiếp theo, rồi, أخيرا, أخيراً, بعدها"""
)
#: "Also"/"first" words: stripped, but the piece does not depend on the one before.
_ALSO_WORDS = _words(
    """dan juga, juga, selain itu, pertama, también, además, y también, y además, primero,
    também, além disso, primeiro, aussi, et aussi, de plus, d'abord, auch, außerdem,
    und auch, ebenfalls, zuerst, và, cũng, ngoài ra, trước tiên, أيضا, أيضاً, وأيضا, كذلك,
    أولا, 그리고, 또한, 먼저"""
)
_ALSO_WORDS_NOSPACE = _words(
    "另外, 还有, 同时, 并且, 此外, 首先, そして, また, まず, さらに, และ, นอกจากนี้, ก่อนอื่น"
)
_GREETINGS = _words(
    """hi, hello, hey, hiya, good morning, good afternoon, good evening, halo, hai, hallo,
    selamat pagi, selamat siang, selamat sore, selamat malam, assalamualaikum, hola,
    buenos días, buenas tardes, buenas noches, olá, ola, oi, bom dia, boa tarde, boa noite,
    bonjour, bonsoir, salut, guten tag, guten morgen, moin, xin chào, chào, 你好, 您好, 大家好,
    こんにちは, こんばんは, おはようございます, 안녕하세요, 안녕, สวัสดี, สวัสดีครับ, สวัสดีค่ะ,
    مرحبا, مرحباً, أهلا, اهلا, السلام عليكم"""
)
_ADDRESSES = _words(
    """kak, gan, bro, sis, min, pak, bu, mas, mbak, there, all, everyone, team, amigo, amiga,
    bạn, anh, chị, em"""
)


def _alt(words: frozenset[str]) -> str:
    # Longest first so "y luego" wins over "luego"; a space matches any run of spaces.
    return "|".join(
        re.escape(w).replace(r"\ ", r"\s+") for w in sorted(words, key=lambda w: (-len(w), w))
    )


_OPENER_RE = re.compile(
    rf"^(?:{_alt(frozenset().union(*(v for k, v in _REQUEST_OPENERS.items() if k != 'ar')))})"
    r"(?!\w)"
    # Arabic: "و"/"ف" ("and") may lead, and a pronoun may follow ("ترجمها", "translate it").
    rf"|^[وف]?(?:{_alt(_REQUEST_OPENERS['ar'])})(?:ها|هم|هما|ه|ني|نا)?(?!\w)"
    # Spanish imperatives with a pronoun: "tradúcelo", "explícamelo", "arréglalo", "hazlo".
    r"|^(?:tradú|explí|resú|escrí|corrí|arré|reví|compá|calcú|analí|mejó|convié|respó|enumé)"
    r"\w*?(?:lo|la|los|las|me|nos|le|les)(?!\w)|^(?:hazlo|dímelo|dámelo)(?!\w)",
    re.IGNORECASE,
)
_NOSPACE_OPENER_RE = re.compile(
    rf"^(?:{_alt(_NOSPACE_OPENERS)})|^(?:用|使用|把|将|將|给|給|对|對|以)[^，。！？,.!?]{{0,20}}?"
    rf"(?:{_alt(_ZH_VERBS)})"
)
_ENDING_RE = re.compile(rf"(?:{_alt(_REQUEST_ENDINGS)})$")
_NOT_OPENER_RE = re.compile(rf"^(?:{_alt(_NOT_OPENERS)})", re.IGNORECASE)
_POLITE_CLAUSE_RE = re.compile(
    rf"[,，、;；]\s*(?P<polite>{_alt(_POLITE_IN_CLAUSE)})(?=(?P<rest>.*))",
    re.IGNORECASE | re.DOTALL,
)
_NOSPACE_SCRIPT_RE = re.compile("[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")
_ML_LEAD_RE = re.compile(
    rf"^(?:(?P<then>{_alt(_THEN_WORDS)})|(?P<also>{_alt(_ALSO_WORDS)}))(?:\s*[,:،]\s*|\s+)"
    rf"|^(?:(?P<then_ns>{_alt(_THEN_WORDS_NOSPACE)})|(?P<also_ns>{_alt(_ALSO_WORDS_NOSPACE)}))"
    r"[，,、：:\s]*",
    re.IGNORECASE,
)
# "X, lalu Y", "X y luego Y", "X，然后Y", "X แล้วY": the connector stays with Y.
_ML_THEN_SPLIT_RE = re.compile(
    rf"\s*[,;،]\s*(?=(?:{_alt(_THEN_WORDS)})(?!\w))"
    rf"|\s+(?=(?:{_alt(_THEN_WORDS - _THEN_AFTER_COMMA_ONLY)})(?!\w))"
    rf"|[\s，,、；;]*(?=(?:{_alt(_THEN_WORDS_NOSPACE - {'再', 'แล้ว'})}|แล้ว(?!แต่)))"
    r"|\s*[，,、；;]\s*(?=再)",
    re.IGNORECASE,
)
_GREETING_RE = re.compile(
    rf"^(?:{_alt(_GREETINGS)})(?:\s+(?:{_alt(_ADDRESSES)}))?(?![^\W\d_])[\s,，、!！.。~]*",
    re.IGNORECASE,
)
# Whole sentences that ask for nothing yet: "can you help me?", "apa kabar?", "谢谢帮忙".
_SMALL_TALK_RE = re.compile(
    r"(?:(?:can|could|would) you (?:please )?help(?: me)?(?: out| please)?"
    r"|(?:please )?help(?: me)?(?: please)?|how are you(?: doing| today)?|what'?s up"
    r"|(?:mohon|minta|tolong) (?:bantuan(?:nya)?|dibantu|bantu(?: saya| aku)?)"
    r"(?: ya| dong| kak| gan)*|(?:bisa|bisakah|boleh) (?:minta )?(?:tolong|bantu|dibantu)"
    r"(?: saya| aku)?(?: ya| dong| kak| gan)*|apa kabar(?: kak| gan)?"
    r"|(?:me puedes|puedes|podrías|me podrías) ayudar(?:me)?(?:,? por favor)?"
    r"|ayúdame(?:,? por favor)?|cómo estás|(?:você pode|pode) me ajudar|me ajude|tudo bem"
    r"|(?:请|麻烦你?|能不能|可以|你能)?帮帮?(?:我|忙)(?:一下)?(?:吗|吧)?(?:[，,]?谢谢)?|你好吗"
    r"|助けて(?:ください)?|手伝って(?:ください)?|(?:よろしく)?お願いします|お元気ですか"
    r"|(?:bạn )?(?:có thể )?giúp (?:tôi|mình|em)(?: với)?(?: được không| không)?(?: nhé| nha)?"
    r"|bạn (?:có )?khỏe không|ช่วย(?:ด้วย|หน่อย)(?:ครับ|ค่ะ|คะ|นะ)*|สบายดีไหม(?:ครับ|คะ)?"
    r"|(?:من فضلك )?ساعدني|هل يمكنك مساعدتي|كيف حالك"
    r"|(?:peux-tu|pouvez-vous) m'aider|aide-moi|aidez-moi|ça va|comment ça va"
    r"|(?:kannst du|können sie) mir helfen|hilf mir|wie geht'?s(?: dir)?|wie geht es dir"
    r"|도와주세요|도와줘|잘 지내세요)",
    re.IGNORECASE,
)
# Pieces that use an earlier result ("el resultado", "把它…", "hasilnya").
_ML_RESULT_RE = re.compile(
    r"\bhasil(?:nya|\s+(?:itu|tersebut|tadi|di\s+atas|sebelumnya))\b|\bdi\s+atas\b"
    r"|\b(?:el|los|o|os)\s+resultados?\b|\blo\s+anterior\b|\ble\s+résultat\b|\bci-dessus\b"
    r"|\bdas\s+ergebnis\b|\bkết\s+quả\b|\bở\s+trên\b|\btrên\s+đây\b|结果|上面|上述|結果|上記"
    r"|ผลลัพธ์|ข้างต้น|النتيجة|أعلاه|اعلاه|결과",
    re.IGNORECASE,
)
_ML_PRONOUN_RE = re.compile(
    r"^(?:terjemahkan|jelaskan|ringkas(?:kan)?|rangkum(?:kan)?|perbaiki|periksa|ubah|"
    r"tulis(?:kan)?|buat(?:kan)?)nya\b|\b(?:kode|fungsi|teks|jawaban|terjemahan|puisi|daftar)"
    r"(?:nya)?\s+(?:itu|tersebut|tadi)\b|^\w*[áéíóú]\w*(?:lo|la|los|las)\b|^(?:hazlo|dilo)\b"
    r"|^\w+-(?:o|a|os|as|le|la|les)\b|^\w+\s+es\b|\bnó\b|它|それ(?:を|が|は|に)|มัน|그것",
    re.IGNORECASE,
)
_ML_STEP_REF_RE = re.compile(
    r"\b(?:langkah|poin|nomor|butir|paso|punto|passo|étape|schritt|punkt|bước|mục)"
    r"\s*(?:ke-?\s*|#|no\.?\s*)?(\d{1,2})\b|(?:ข้อ|ขั้นตอน(?:ที่)?|الخطوة|البند)\s*(\d{1,2})"
    r"|第\s*(\d{1,2})\s*(?:步|项|点|条)|(?:步骤|手順|ステップ)\s*(\d{1,2})|(\d{1,2})\s*단계",
    re.IGNORECASE,
)

# Sentence ends: "。" etc. end a sentence wherever they are; "." only before a new sentence.
_HARD_STOPS = "。！？；．｡؟۔"
_BREAK_RE = re.compile(rf";\s+|؛\s*|(?<=[{_HARD_STOPS}])\s*|\s+")
_CASELESS_RE = re.compile(
    "[\u0590-\u08ff\u0900-\u0dff\u0e00-\u0eff\u1000-\u109f\u1100-\u11ff\u1780-\u17ff"
    "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]"
)
_THAI_RE = re.compile("[\u0e00-\u0e7f]")
_ABBREVIATIONS = frozenset(
    "e.g i.e etc vs cf ca approx dll dsb dst mis ej p.ej z.b bzw usw ggf vgl".split()  # noqa: SIM905
)
_INLINE_CODE_RE = re.compile(r"(`+)[^`\n]+?\1")
_FIRST_SENTENCE_RE = re.compile(r"[^\n]*?(?:[.!?…](?=\s|$)|[。！？؟]|(?=\n)|$)")

# Code: fenced blocks (``` or ~~~) and indented blocks after a blank line or a ":".
_FENCE_OPEN_RE = re.compile(r"^[ \t]{0,3}(?P<fence>`{3,}|~{3,})[^`\n]*$")
_FENCE_AFTER_TEXT_RE = re.compile(
    r"^(?P<prose>.*?\S)[ \t]*(?P<fence>`{3,}|~{3,})(?P<info>[\w+#.-]*)[ \t]*$"
)
_INDENTED_RE = re.compile(r"^(?: {4}|\t)")


def _strip_lead(text: str) -> str:
    return _lead(text)[0]


def _lead(text: str) -> tuple[str, bool]:
    """``text`` without its lead words, and whether a non-English "then" was among them.

    A non-English lead word is only stripped before a request: "Terus terang, …" ("frankly")
    and "再见" ("goodbye") keep theirs.
    """
    text = text.strip()
    then = False
    while True:
        stripped = _LEAD_RE.sub("", text)
        match = _ML_LEAD_RE.match(stripped)
        if match and match.end() < len(stripped):
            rest = stripped[match.end() :]
            first = _FIRST_SENTENCE_RE.match(rest)
            if _is_request(first.group(0) if first else rest):
                stripped = rest
                then = then or bool(match["then"] or match["then_ns"])
        if stripped == text:
            return text, then
        text = stripped


def _normalise(text: str) -> str:
    return unicodedata.normalize("NFC", text).replace("’", "'").strip()


def _is_small_talk(text: str) -> bool:
    core = _normalise(text).strip("¿¡ ").rstrip(" ?？؟!！.。,，…~")
    return bool(_SMALL_TALK_RE.fullmatch(re.sub(r"\s+", " ", core)))


def _is_request(sentence: str) -> bool:
    text = _normalise(sentence)
    if not text:
        return False
    # "Halo kak, …" / "Hi, …": the greeting neither makes nor hides a request.
    text = _GREETING_RE.sub("", text, count=1)
    if not text or _is_small_talk(text):
        return False
    if text.endswith(("?", "？", "؟")):
        return True
    core = _strip_lead(text)
    if _ASK_RE.search(core):
        return True
    first = re.match(r"[A-Za-z']+", core)
    if first and first.group(0).lower() in _IMPERATIVES:
        return True
    return _is_ml_request(core)


def _is_ml_request(core: str) -> bool:
    if _NOT_OPENER_RE.match(core):
        return False
    if _OPENER_RE.match(core) or _NOSPACE_OPENER_RE.match(core):
        return True
    if _ENDING_RE.search(core.rstrip(" \t\n:：。．.!！~")):
        return True
    for polite in _POLITE_CLAUSE_RE.finditer(core):
        word, rest = polite["polite"], polite["rest"]
        if rest[:1].isalnum() and not _NOSPACE_SCRIPT_RE.match(word[-1]):
            continue  # "tolongan" is not "tolong"
        clause = core[polite.start("polite") :]
        # "…, por favor." asks for nothing new; "…, mohon dibantu" is small talk.
        if re.search(r"\w", rest) and not _is_small_talk(clause):
            return True
    return False


def _opens_ml(text: str) -> bool:
    """Whether ``text`` starts with a non-English request or connector word."""
    return not _NOT_OPENER_RE.match(text) and bool(
        _ML_LEAD_RE.match(text) or _OPENER_RE.match(text) or _NOSPACE_OPENER_RE.match(text)
    )


def _ml_refers_back(request: str) -> bool:
    core, then = _lead(request)
    return then or bool(_ML_RESULT_RE.search(core) or _ML_PRONOUN_RE.search(core))


def _step_refs(prose: str) -> tuple[int, ...]:
    refs = [int(a or b) for a, b in _STEP_REF_RE.findall(prose) if (a or b)]
    refs += [int(next(g for g in groups if g)) for groups in _ML_STEP_REF_RE.findall(prose)]
    return tuple(refs)


# --- code-aware segmentation -------------------------------------------------------------


def _segments(text: str) -> list[tuple[str, bool]]:
    """``text`` as prose and code chunks, in order; ``True`` marks code (kept verbatim)."""
    lines = text.split("\n")
    out: list[tuple[str, bool]] = []
    prose: list[str] = []

    def flush() -> None:
        if prose:
            out.append(("\n".join(prose), False))
            prose.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        opener = _FENCE_OPEN_RE.match(line)
        lead = ""
        if not opener:
            # "Fix this: ```" / "Fix this ```python": a fence opened at the end of a line.
            after_text = _FENCE_AFTER_TEXT_RE.match(line)
            if (
                after_text
                and "```" not in after_text["prose"]
                and "~~~" not in after_text["prose"]
                and (after_text["info"] or after_text["prose"].endswith((":", "：")))
            ):
                opener, lead = after_text, after_text["prose"]
        if opener:
            fence = opener["fence"]
            if lead:
                prose.append(lead)
            flush()
            block = [line[len(lead) :].lstrip() if lead else line]
            i += 1
            while i < len(lines):
                block.append(lines[i])
                i += 1
                if lines[i - 1].rstrip().endswith(fence[0] * len(fence)):
                    break
            out.append(("\n".join(block), True))
            continue
        before = lines[i - 1] if i else ""
        if (
            _INDENTED_RE.match(line)
            and line.strip()
            and (not before.strip() or before.rstrip().endswith((":", "：")))
            and not _ITEM_RE.match(line)
        ):
            flush()
            end = i + 1
            last = i
            while end < len(lines) and (not lines[end].strip() or _INDENTED_RE.match(lines[end])):
                if lines[end].strip():
                    last = end
                end += 1
            out.append(("\n".join(lines[i : last + 1]), True))
            i = last + 1
            continue
        prose.append(line)
        i += 1
    flush()
    return out


def _join(parts: Sequence[tuple[str, bool]]) -> str:
    """Prose joined with spaces; code blocks on their own lines."""
    out: list[str] = []
    prev_code = False
    for i, (text, code) in enumerate(parts):
        if i:
            # An indented block needs a blank line around it to stay a code block.
            indented = (code and not _is_fenced(text)) or (
                prev_code and not _is_fenced(parts[i - 1][0])
            )
            out.append("\n\n" if indented else "\n" if code or prev_code else " ")
        out.append(text)
        prev_code = code
    return "".join(out)


def _is_fenced(code: str) -> bool:
    return code.lstrip().startswith(("```", "~~~"))


def _prose(parts: Sequence[tuple[str, bool]]) -> str:
    return " ".join(text for text, code in parts if not code)


def _is_break(prose: str, match: re.Match[str], last: int) -> bool:
    """Whether the gap ``match`` ends a sentence; ``last`` is the end of the prose's text."""
    start, end = match.span()
    if end >= last:
        return False
    gap = match.group(0)
    if gap.startswith((";", "؛")) or (start and prose[start - 1] in _HARD_STOPS):
        return True
    if gap.count("\n") >= 2:
        return True
    before = prose[start - 1] if start else ""
    following = prose[end : end + 80]  # enough to see the next word
    if before and before in ".!?…":
        body = following.lstrip("\"'“‘(¿¡«")
        first = body[:1]
        if first.isupper() or first.isdigit() or _CASELESS_RE.match(first):
            return True
        # Lower case after "." only when a non-English request or "then" word follows
        # ("… ini. lalu jelaskan …"), and not after an abbreviation ("dll. buat").
        if first.islower() and _opens_ml(body):
            word = re.search(r"([\w.]+)\.$", prose[max(0, start - 12) : start])
            return not (word and word.group(1).lower() in _ABBREVIATIONS)
        return False
    if "\n" in gap and _opens_ml(following):
        return True
    # Thai puts a space, not a full stop, between sentences.
    return bool(_THAI_RE.match(before) and _THAI_RE.match(following) and _opens_ml(following))


def _sentences(prose: str) -> list[str]:
    """Sentences of a prose chunk (no code blocks in it); inline code is never split."""
    protected = [m.span() for m in _INLINE_CODE_RE.finditer(prose)]
    out: list[str] = []
    start = 0
    last = len(prose.rstrip())
    for match in _BREAK_RE.finditer(prose):
        if any(a < match.start() < b for a, b in protected) or not _is_break(prose, match, last):
            continue
        out.append(prose[start : match.start()])
        start = match.end()
    out.append(prose[start:])
    return [s.strip() for s in out if s.strip()]


def _split_then(sentence: str) -> list[str]:
    """Two requests in one sentence: "Write X, and then translate it", "Tulis X, lalu Y"."""
    parts = _THEN_SPLIT_RE.split(sentence)
    if len(parts) > 1 and all(_is_request(p) for p in parts[1:]):
        pieces = [parts[0], *("Then " + p for p in parts[1:])]
    else:
        pieces = [sentence]
    out: list[str] = []
    for piece in pieces:
        # From the right: a cut is kept when the text after it (up to the next kept cut)
        # is a request; the connector stays with that text so it still links back.
        candidates: list[re.Match[str]] = []
        for match in _ML_THEN_SPLIT_RE.finditer(piece):
            # "y luego": one connector, not a cut before "y" and another before "luego".
            if candidates:
                prev = candidates[-1]
                lead = _ML_LEAD_RE.match(piece[prev.end() :])
                if match.start() < prev.end() + (lead.end() if lead else 1):
                    continue
            candidates.append(match)
        cuts: list[tuple[int, int]] = []
        end = len(piece)
        for match in reversed(candidates):
            if match.start() > 0 and _is_request(piece[match.end() : end]):
                cuts.append(match.span())
                end = match.start()
        start = 0
        for a, b in reversed(cuts):
            out.append(piece[start:a].strip())
            start = b
        out.append(piece[start:].strip())
    return [p for p in out if p]


@dataclass
class _Piece:
    text: str
    refers_back: bool = False
    step_refs: tuple[int, ...] = ()
    #: Indices of pieces this one depends on (filled by _link).
    deps: set[int] = field(default_factory=set)
    #: The text without its code blocks (what refers back or names a step).
    prose: str = ""


class HeuristicPlanner:
    """Split a task without a model: lists, steps, then separate requests.

    Code blocks (fenced or indented) are never split and stay with the request that
    introduces them. Requests and "then" words are recognised in English and in several
    other languages (Indonesian/Malay, Spanish, Portuguese, French, German, Vietnamese,
    Chinese, Japanese, Korean, Thai, Arabic).

    Args:
        max_subtasks: at most this many subtasks; extra pieces are merged into the last.
        classify: ``text -> skill`` (default: the skill classifier).
    """

    name = "heuristic"

    def __init__(
        self, *, max_subtasks: int = 8, classify: Callable[[str], str] | None = None
    ) -> None:
        if max_subtasks < 1:
            raise ValueError("max_subtasks must be at least 1")
        self.max_subtasks = max_subtasks
        self._classify = classify

    def __repr__(self) -> str:
        return f"HeuristicPlanner(max_subtasks={self.max_subtasks})"

    async def plan(
        self,
        task: str,
        *,
        stack: Any = None,
        data_class: str = "public",
        run_id: str | None = None,
        on_event: Callable[[Any], None] | None = None,
    ) -> PlanResult:
        notes: list[str] = []
        plan = self.split(task, notes=notes)
        return PlanResult(plan=plan, planner=self.name, notes=notes)

    # The split is synchronous and pure, so it can be unit-tested and reused.
    def split(self, task: str, *, notes: list[str] | None = None) -> TaskPlan:
        """The plan for ``task`` (one subtask when nothing asks for separate things)."""
        notes = notes if notes is not None else []
        text = task.strip()
        if not text:
            raise EmptyTaskError("the task is empty: give the agent something to do")
        segments = _segments(text)
        pieces = self._list_pieces(segments, notes) or self._sentence_pieces(segments, notes)
        if len(pieces) <= 1:
            notes.append("heuristic: one subtask (no list or separate requests found)")
            return TaskPlan(subtasks=(self._subtask(1, text, ()),))
        pieces = self._cap(pieces, notes)
        self._link(pieces)
        subtasks = [
            self._subtask(i + 1, p.text, tuple(f"s{d + 1}" for d in sorted(p.deps)))
            for i, p in enumerate(pieces)
        ]
        return TaskPlan(subtasks=tuple(subtasks))

    # --- splitting --------------------------------------------------------------------

    def _list_pieces(self, segments: list[tuple[str, bool]], notes: list[str]) -> list[_Piece]:
        items: list[list[tuple[str, bool]]] = []
        lead_code: list[tuple[str, bool]] = []  # code before the first item
        after: list[tuple[str, bool]] = []
        for chunk, is_code in segments:
            if is_code:
                # A code block belongs to the item (or closing text) above it.
                (after if after else items[-1] if items else lead_code).append((chunk, True))
                continue
            for line in chunk.split("\n"):
                match = _ITEM_RE.match(line)
                if match:
                    if items and any(code for _, code in after):
                        items[-1].extend(after)  # "Here is the code:" + code, under an item
                    after = []
                    items.append([(match.group("text").strip(), False)])
                elif not line.strip():
                    continue
                elif items and line[:1].isspace():
                    items[-1].append((line.strip(), False))  # an indented continuation
                elif items:
                    after.append((line.strip(), False))
        if len(items) < 2:
            return []
        if lead_code:
            items[0] = [*lead_code, *items[0]]
        pieces = [_Piece(_join(parts), prose=_prose(parts)) for parts in items]
        notes.append(f"heuristic: split an explicit list into {len(pieces)} items")
        # A closing request after the list ("Then combine them into a table.") needs
        # every item; plain remarks after the list are context, kept in the task.
        closing = _prose(after)
        if closing and _is_request(closing):
            pieces.append(_Piece(_join(after), refers_back=True, prose=closing))
            pieces[-1].deps = set(range(len(pieces) - 1))
            notes.append("heuristic: the request after the list depends on every item")
        elif any(code for _, code in after):
            pieces[-1].text = _join([(pieces[-1].text, False), *after])
        for piece in pieces:
            piece.refers_back = piece.refers_back or bool(_REFERS_BACK_RE.search(piece.prose))
            piece.step_refs = _step_refs(piece.prose)
            # List items are independent unless they say otherwise (runs them in parallel).
            if not piece.step_refs and not piece.deps:
                piece.refers_back = bool(
                    re.match(r"^(?:then|next|finally|after\s+that|afterwards)\b", piece.prose, re.I)
                    or re.search(
                        r"\b(?:the\s+above|the\s+previous|the\s+result)\b", piece.prose, re.I
                    )
                    or _lead(piece.prose)[1]
                    or _ML_RESULT_RE.search(piece.prose)
                )
        return pieces

    def _sentence_pieces(self, segments: list[tuple[str, bool]], notes: list[str]) -> list[_Piece]:
        units: list[tuple[str, bool]] = []
        for chunk, is_code in segments:
            if is_code:
                units.append((chunk, True))
                continue
            for sentence in _sentences(chunk):
                units.extend((part, False) for part in _split_then(sentence))
        requests = {i for i, (s, code) in enumerate(units) if not code and _is_request(s)}
        if len(requests) < 2:
            return []
        parts: list[list[tuple[str, bool]]] = []
        asks: list[str] = []
        context: list[tuple[str, bool]] = []
        for i, unit in enumerate(units):
            if i in requests:
                parts.append([*context, unit])
                asks.append(unit[0])
                context = []
            elif unit[1] and parts:
                # A code block goes with the request before it ("Fix this function:"),
                # together with any remark that introduces it.
                parts[-1].extend([*context, unit])
                context = []
            else:
                context.append(unit)
        if context:  # trailing context belongs to the last request
            parts[-1].extend(context)
        pieces = []
        for piece_parts, ask in zip(parts, asks, strict=True):
            prose = _prose(piece_parts)
            pieces.append(
                _Piece(
                    _join(piece_parts),
                    refers_back=bool(
                        _REFERS_BACK_RE.search(prose)
                        or _REFERS_BACK_RE.search(ask)
                        or _ml_refers_back(ask)
                    ),
                    step_refs=_step_refs(prose),
                    prose=prose,
                )
            )
        notes.append(f"heuristic: split {len(pieces)} separate requests out of the sentences")
        return pieces

    def _cap(self, pieces: list[_Piece], notes: list[str]) -> list[_Piece]:
        if len(pieces) <= self.max_subtasks:
            return pieces
        keep = pieces[: self.max_subtasks - 1]
        rest = pieces[self.max_subtasks - 1 :]
        merged = _Piece(
            "\n".join(p.text for p in rest),
            refers_back=rest[0].refers_back,
            step_refs=tuple(r for p in rest for r in p.step_refs),
        )
        merged.deps = {d for p in rest for d in p.deps if d < len(keep)}
        notes.append(
            f"heuristic: {len(pieces)} pieces exceed max_subtasks={self.max_subtasks}; "
            f"merged the last {len(rest)} into one subtask"
        )
        return [*keep, merged]

    @staticmethod
    def _link(pieces: list[_Piece]) -> None:
        for i, piece in enumerate(pieces):
            for ref in piece.step_refs:
                if 1 <= ref <= len(pieces) and ref - 1 < i:
                    piece.deps.add(ref - 1)
            if piece.refers_back and i > 0 and not piece.deps:
                piece.deps.add(i - 1)

    def _subtask(self, index: int, text: str, deps: tuple[str, ...]) -> Subtask:
        text = _strip_lead(text) or text
        text = text[:1].upper() + text[1:]
        return Subtask(
            id=f"s{index}",
            instruction=text,
            skill=self._skill(text),
            depends_on=deps,
        )

    def _skill(self, text: str) -> str:
        if self._classify is not None:
            return self._classify(text)
        from hybridstack.graph.classifier import classify_skill

        return classify_skill(text)


# --- the LLM planner --------------------------------------------------------------------

_PLANNER_SYSTEM = """You are the planner of an agent that sends each subtask to a specialist \
model. Split the user's task into the fewest self-contained subtasks that can each be done \
by one model call, at most {max_subtasks}. Skills: {skills}. Use "code" for writing, fixing \
or reviewing code; "multilingual" for translation or text in languages other than English; \
"reasoning" for maths, logic, planning and trade-offs; "general" for everything else. \
Subtasks run in parallel unless depends_on lists the ids of subtasks whose output they \
need; never create cycles. If the task is simple, return a single subtask. Do not answer \
the task. Reply with JSON only, matching the schema."""


class LLMPlanner:
    """Ask a model for the plan; validate, retry once with the error, then fall back.

    Args:
        fallback: used when the model's plan stays invalid or the call fails (default:
            :class:`HeuristicPlanner`; ``None`` raises instead).
        retries: corrective retries after an invalid plan (default 1).
        skill: the skill asked to plan (default ``reasoning``).
        max_subtasks: plans with more subtasks are invalid.
        max_tokens, temperature: passed to the stack.
    """

    name = "llm"

    def __init__(
        self,
        *,
        fallback: Planner | None = None,
        use_fallback: bool = True,
        retries: int = 1,
        skill: str = "reasoning",
        max_subtasks: int = 8,
        max_tokens: int | None = 2048,
        temperature: float | None = 0.0,
    ) -> None:
        self.fallback: Planner | None = (
            fallback
            if fallback is not None
            else (HeuristicPlanner(max_subtasks=max_subtasks) if use_fallback else None)
        )
        self.retries = max(0, retries)
        self.skill = skill
        self.max_subtasks = max_subtasks
        self.max_tokens = max_tokens
        self.temperature = temperature

    def __repr__(self) -> str:
        return (
            f"LLMPlanner(skill={self.skill!r}, retries={self.retries}, fallback={self.fallback!r})"
        )

    async def plan(
        self,
        task: str,
        *,
        stack: Any,
        data_class: str,
        run_id: str | None = None,
        on_event: Callable[[Any], None] | None = None,
    ) -> PlanResult:
        if not task.strip():
            raise EmptyTaskError("the task is empty: give the agent something to do")
        skills = known_skills(stack)
        notes: list[str] = []
        calls: list[dict[str, Any]] = []
        messages: list[dict[str, Any]] = [
            {
                "role": "system",
                "content": _PLANNER_SYSTEM.format(
                    max_subtasks=self.max_subtasks, skills=", ".join(skills)
                ),
            },
            {"role": "user", "content": task},
        ]
        for attempt in range(self.retries + 1):
            started = time.perf_counter()
            try:
                # The planner sees the whole task, so it runs under the run's data class.
                response = await stack.complete(
                    messages,
                    skill=self.skill,
                    data_class=data_class,
                    response_schema=TaskPlan.llm_schema(),
                    max_tokens=self.max_tokens,
                    temperature=self.temperature,
                    run_id=run_id,
                    metadata={"stage": "plan"},
                    on_event=on_event,
                    route_key=call_route_key(task, None, f"plan:{attempt}"),
                )
            except ConfigurationError:
                # A wrong set-up (unknown data class, bad route) is the user's to fix,
                # not a planning failure to paper over with the heuristic planner.
                raise
            except HybridStackError as error:
                calls.append(
                    {
                        "stage": "plan",
                        "ok": False,
                        "error": f"{type(error).__name__}: {str(error).splitlines()[0]}",
                        "latency_s": time.perf_counter() - started,
                    }
                )
                notes.append(f"llm planner: the planning call failed ({type(error).__name__})")
                return await self._fall_back(
                    task, stack, data_class, run_id, on_event, notes, calls, error
                )
            calls.append(call_record("plan", response))
            try:
                plan = self._validate(response.text, skills, notes)
            except PlanValidationError as error:
                notes.append(f"llm planner: attempt {attempt + 1} gave an invalid plan: {error}")
                if attempt < self.retries:
                    messages += [
                        {"role": "assistant", "content": response.text[:4000]},
                        {
                            "role": "user",
                            "content": f"That plan is invalid: {error}\nReply with a corrected "
                            "plan as JSON only, matching the schema.",
                        },
                    ]
                    continue
                return await self._fall_back(
                    task, stack, data_class, run_id, on_event, notes, calls, error
                )
            notes.append(
                f"llm planner: {len(plan)} subtask(s) from {response.deployment}"
                + (f" after {attempt} retry" if attempt else "")
            )
            return PlanResult(plan=plan, planner=self.name, notes=notes, calls=calls)
        raise AssertionError("unreachable")  # pragma: no cover

    def _validate(self, text: str, skills: Sequence[str], notes: list[str]) -> TaskPlan:
        try:
            data = json.loads(_strip_fences(text))
        except ValueError as error:
            raise PlanValidationError(f"the reply is not JSON ({error})") from None
        if isinstance(data, list):
            data = {"subtasks": data}
        if not isinstance(data, dict) or not isinstance(data.get("subtasks"), list):
            raise PlanValidationError('the reply must be an object {"subtasks": [...]}')
        raw = data["subtasks"]
        if len(raw) > self.max_subtasks:
            raise PlanValidationError(
                f"{len(raw)} subtasks is more than the maximum of {self.max_subtasks}"
            )
        cleaned = []
        for item in raw:
            if not isinstance(item, dict):
                raise PlanValidationError("each subtask must be an object")
            item = {
                k: v for k, v in item.items() if k in ("id", "instruction", "skill", "depends_on")
            }
            skill = str(item.get("skill", "")).strip().lower()
            if skill not in skills:
                # A model that invents a skill ("math") still gave a usable subtask:
                # label it with the classifier instead of rejecting the whole plan.
                from hybridstack.graph.classifier import classify_skill

                fixed = classify_skill(str(item.get("instruction", "")))
                notes.append(
                    f"llm planner: subtask {item.get('id')!r} had unknown skill {skill!r}; "
                    f"classified as {fixed!r}"
                )
                skill = fixed
            item["skill"] = skill
            cleaned.append(item)
        try:
            return TaskPlan.parse(cleaned)
        except ValidationError as error:  # pragma: no cover - parse converts these
            raise PlanValidationError(str(error)) from None

    async def _fall_back(
        self,
        task: str,
        stack: Any,
        data_class: str,
        run_id: str | None,
        on_event: Callable[[Any], None] | None,
        notes: list[str],
        calls: list[dict[str, Any]],
        error: Exception,
    ) -> PlanResult:
        if self.fallback is None:
            raise error
        result = await self.fallback.plan(
            task, stack=stack, data_class=data_class, run_id=run_id, on_event=on_event
        )
        notes.append(f"llm planner: fell back to the {result.planner} planner")
        return PlanResult(
            plan=result.plan,
            planner=f"{self.name}→{result.planner}",
            notes=notes + result.notes,
            calls=calls + result.calls,
        )


def _strip_fences(text: str) -> str:
    text = text.strip()
    match = re.match(r"^```(?:json)?\s*(.*?)\s*```$", text, re.DOTALL)
    return match.group(1) if match else text


def call_record(stage: str, response: Any, subtask_id: str | None = None) -> dict[str, Any]:
    """A CallRecord dict for one ChatResponse."""
    usage = getattr(response, "usage", None)
    return {
        "stage": stage,
        "subtask_id": subtask_id,
        "deployment": getattr(response, "deployment", None),
        "family": getattr(response, "family", None),
        "jurisdiction": getattr(response, "jurisdiction", None),
        "attempts": int(getattr(response, "attempts", 1) or 1),
        "input_tokens": int(getattr(usage, "input_tokens", 0) or 0),
        "output_tokens": int(getattr(usage, "output_tokens", 0) or 0),
        "cost_usd": float(getattr(response, "cost_usd", 0.0) or 0.0),
        "latency_s": float(getattr(response, "latency_s", 0.0) or 0.0),
        "ok": True,
    }
