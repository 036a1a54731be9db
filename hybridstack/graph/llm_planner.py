"""The LLM planner: ask a model for the plan, validate it, retry once, then fall back."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from hybridstack.errors import ConfigurationError, HybridStackError
from hybridstack.graph.heuristic_planner import HeuristicPlanner
from hybridstack.graph.planner import Planner, PlanResult
from hybridstack.graph.ports import AgentStack, EventCallback
from hybridstack.graph.prompts import Messages
from hybridstack.graph.records import call_record
from hybridstack.graph.subtasks import EmptyTaskError, PlanValidationError, TaskPlan, call_route_key
from hybridstack.routing.skills.vocabulary import SKILLS

__all__ = ["LLMPlanner"]


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
        stack: AgentStack,
        data_class: str,
        run_id: str | None = None,
        on_event: EventCallback | None = None,
    ) -> PlanResult:
        if not task.strip():
            raise EmptyTaskError("the task is empty: give the agent something to do")
        skills = stack.known_skills() or SKILLS
        notes: list[str] = []
        calls: list[dict[str, Any]] = []
        messages: Messages = [
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
                from hybridstack.routing.skills.classifier import classify_skill

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
        stack: AgentStack,
        data_class: str,
        run_id: str | None,
        on_event: EventCallback | None,
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
