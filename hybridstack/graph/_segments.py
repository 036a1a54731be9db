"""Segmentation for the heuristic planner: prose and code chunks, sentences, "then" splits.

Code blocks (fenced or indented) are never split; inline code is never cut.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from hybridstack.graph._request_cues import (
    _ABBREVIATIONS,
    _BREAK_RE,
    _CASELESS_RE,
    _FENCE_AFTER_TEXT_RE,
    _FENCE_OPEN_RE,
    _HARD_STOPS,
    _INDENTED_RE,
    _INLINE_CODE_RE,
    _ITEM_RE,
    _ML_LEAD_RE,
    _ML_THEN_SPLIT_RE,
    _THAI_RE,
    _THEN_SPLIT_RE,
    _is_request,
    _opens_ml,
)

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
