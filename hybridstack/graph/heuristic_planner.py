"""The heuristic planner: split a task into subtasks without a model (lists, steps, requests)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from hybridstack.graph._request_cues import (
    _ITEM_RE,
    _ML_RESULT_RE,
    _REFERS_BACK_RE,
    _is_request,
    _lead,
    _ml_refers_back,
    _step_refs,
    _strip_lead,
)
from hybridstack.graph._segments import _join, _prose, _segments, _sentences, _split_then
from hybridstack.graph.planner import PlanResult
from hybridstack.graph.ports import AgentStack, EventCallback
from hybridstack.graph.subtasks import EmptyTaskError, Subtask, TaskPlan

__all__ = ["HeuristicPlanner"]


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
        stack: AgentStack | None = None,
        data_class: str = "public",
        run_id: str | None = None,
        on_event: EventCallback | None = None,
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
        from hybridstack.routing.skills.classifier import classify_skill

        return classify_skill(text)
