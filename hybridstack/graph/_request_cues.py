"""Request cues for the heuristic planner: which sentences ask for something, and which
refer back to an earlier piece, in English and in several other languages.

The word lists and patterns are data; the functions (:func:`_is_request`, :func:`_lead`,
:func:`_ml_refers_back`, :func:`_step_refs`) are the logic the splitter uses.
"""

from __future__ import annotations

import re
import unicodedata

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
