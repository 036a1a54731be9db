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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import ValidationError

from hybridstack.errors import HybridStackError
from hybridstack.graph.subtasks import (
    EmptyTaskError,
    PlanValidationError,
    Subtask,
    TaskPlan,
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
_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?])\s+(?=[\"'“(]?[A-Z0-9])|(?<=[。！？；])|;\s+|\n{2,}")
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


def _strip_lead(text: str) -> str:
    return _LEAD_RE.sub("", text.strip())


def _is_request(sentence: str) -> bool:
    text = sentence.strip()
    if not text:
        return False
    if text.endswith(("?", "？")):
        return True
    core = _strip_lead(text)
    if _ASK_RE.search(core):
        return True
    first = re.match(r"[A-Za-z']+", core)
    return bool(first and first.group(0).lower() in _IMPERATIVES)


@dataclass
class _Piece:
    text: str
    refers_back: bool = False
    step_refs: tuple[int, ...] = ()
    #: Indices of pieces this one depends on (filled by _link).
    deps: set[int] = field(default_factory=set)


class HeuristicPlanner:
    """Split a task without a model: lists, steps, then separate requests.

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
        pieces = self._list_pieces(text, notes) or self._sentence_pieces(text, notes)
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

    def _list_pieces(self, text: str, notes: list[str]) -> list[_Piece]:
        lines = text.splitlines()
        items: list[list[str]] = []
        preamble: list[str] = []
        after: list[str] = []
        for line in lines:
            match = _ITEM_RE.match(line)
            if match:
                after.clear()
                items.append([match.group("text").strip()])
            elif not line.strip():
                continue
            elif items and line[:1].isspace():
                items[-1].append(line.strip())  # an indented continuation of the item
            elif items:
                after.append(line.strip())
            else:
                preamble.append(line.strip())
        if len(items) < 2:
            return []
        pieces = [_Piece(" ".join(parts)) for parts in items]
        notes.append(f"heuristic: split an explicit list into {len(pieces)} items")
        # A closing request after the list ("Then combine them into a table.") needs
        # every item; plain remarks after the list are context, kept in the task.
        closing = " ".join(after)
        if closing and _is_request(closing):
            pieces.append(_Piece(closing, refers_back=True, step_refs=()))
            pieces[-1].deps = set(range(len(pieces) - 1))
            notes.append("heuristic: the request after the list depends on every item")
        for piece in pieces:
            piece.refers_back = piece.refers_back or bool(_REFERS_BACK_RE.search(piece.text))
            piece.step_refs = tuple(
                int(a or b) for a, b in _STEP_REF_RE.findall(piece.text) if (a or b)
            )
            # List items are independent unless they say otherwise (runs them in parallel).
            if not piece.step_refs and not piece.deps:
                piece.refers_back = bool(
                    re.match(r"^(?:then|next|finally|after\s+that|afterwards)\b", piece.text, re.I)
                    or re.search(
                        r"\b(?:the\s+above|the\s+previous|the\s+result)\b", piece.text, re.I
                    )
                )
        return pieces

    def _sentence_pieces(self, text: str, notes: list[str]) -> list[_Piece]:
        sentences = [s.strip() for s in _SENTENCE_SPLIT_RE.split(text) if s and s.strip()]
        expanded: list[str] = []
        for sentence in sentences:
            # "Write X, and then translate it": two requests in one sentence.
            parts = _THEN_SPLIT_RE.split(sentence)
            if len(parts) > 1 and all(_is_request(p) for p in parts[1:]):
                expanded.append(parts[0])
                expanded.extend("Then " + p for p in parts[1:])
            else:
                expanded.append(sentence)
        requests = [i for i, s in enumerate(expanded) if _is_request(s)]
        if len(requests) < 2:
            return []
        pieces: list[_Piece] = []
        context: list[str] = []
        for i, sentence in enumerate(expanded):
            if i in requests:
                pieces.append(_Piece(" ".join([*context, sentence])))
                context = []
            else:
                context.append(sentence)
        if context:  # trailing context belongs to the last request
            pieces[-1].text = " ".join([pieces[-1].text, *context])
        for piece in pieces:
            piece.refers_back = bool(_REFERS_BACK_RE.search(piece.text))
            piece.step_refs = tuple(
                int(a or b) for a, b in _STEP_REF_RE.findall(piece.text) if (a or b)
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
                )
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
