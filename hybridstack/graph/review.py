"""Code review for code subtasks: ``compile()`` the Python, ask a second family, revise once.

One job: given a finished code subtask, decide whether it passes and, if not, buy one
revision from a family other than the author's. The checks are

* ``compile()`` on every fenced Python block (syntax only: nothing is executed), and
* a structured verdict (:class:`ReviewVerdict`) from a reviewer of another family.

A failed review triggers one revision, on a family different from the author's (a
third family when one is allowed, else the reviewer's). Families are forced with the
stack's ``model=`` argument, so each still fails over across its own regions, and the
subtask's data class still limits where the code may go.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hybridstack.errors import HybridStackError
from hybridstack.graph.ports import AgentStack, EventCallback
from hybridstack.graph.records import call_record
from hybridstack.graph.state import ReviewRecord, SubtaskRecord
from hybridstack.graph.subtasks import Subtask, call_route_key

__all__ = ["ReviewVerdict", "compile_errors", "python_blocks", "review_code", "reviewer_families"]

_PY_BLOCK_RE = re.compile(r"```[ \t]*(?:python3?|py)\b[ \t]*\n?(.*?)```", re.DOTALL | re.IGNORECASE)


def python_blocks(text: str) -> list[str]:
    """The Python code blocks of a Markdown reply (fenced and tagged python/py)."""
    return [m.group(1) for m in _PY_BLOCK_RE.finditer(text)]


def compile_errors(text: str) -> list[str]:
    """``compile()`` every Python block; the syntax errors found (never executes code)."""
    errors = []
    for index, block in enumerate(python_blocks(text), 1):
        try:
            compile(block, f"<block {index}>", "exec")
        except (SyntaxError, ValueError) as error:
            line = getattr(error, "lineno", None)
            where = f"block {index}" + (f" line {line}" if line else "")
            errors.append(f"{where}: {type(error).__name__}: {getattr(error, 'msg', error)}")
    return errors


class ReviewVerdict(BaseModel):
    """What the reviewing model returns (structured output)."""

    model_config = ConfigDict(extra="ignore")

    approved: bool = Field(description="True if the code is correct and complete.")
    issues: list[str] = Field(description="Concrete problems found; [] if none.")


def _quote(text: str) -> str:
    # Quoted so the model reads the instruction as material, not as orders to follow.
    return "\n".join("> " + line for line in text.splitlines()) or "> "


def reviewer_families(stack: AgentStack, subtask: Subtask, exclude: set[str]) -> list[str]:
    """Families allowed to do code under the subtask's data class, best first, minus ``exclude``."""
    try:
        route = stack.route(
            [{"role": "user", "content": subtask.instruction}],
            skill="code",
            data_class=subtask.data_class or "public",
        )
    except HybridStackError:
        return []
    families: list[str] = []
    for candidate in route.candidates:
        family = candidate.deployment.family
        if family not in exclude and family not in families:
            families.append(family)
    return families


async def review_code(
    stack: AgentStack,
    subtask: Subtask,
    record: SubtaskRecord,
    *,
    run_id: str | None,
    on_event: EventCallback | None = None,
) -> tuple[ReviewRecord, str | None, list[dict[str, Any]]]:
    """Review one code subtask: (the review, the revised output or None, CallRecord dicts)."""
    calls: list[dict[str, Any]] = []
    author = record.family or ""
    errors = compile_errors(record.output)
    review = ReviewRecord(author_family=author, compile_errors=errors)
    others = reviewer_families(stack, subtask, {author})
    data_class = subtask.data_class or "public"
    if not others:
        review.error = "no other family may review this subtask under its data class"
        review.approved = not errors
        return review, None, calls
    reviewer = others[0]
    prompt = (
        "Review the code another model wrote for this instruction:\n"
        f"{_quote(subtask.instruction)}\n\n"
        f"The code:\n{record.output}\n\n"
        + (f"compile() reported: {'; '.join(errors)}\n\n" if errors else "")
        + "Is it correct and complete? Reply with JSON: approved (bool) and issues (list)."
    )
    try:
        response = await stack.complete(
            [{"role": "user", "content": prompt}],
            skill="code",
            model=reviewer,
            data_class=data_class,
            response_schema=ReviewVerdict,
            run_id=run_id,
            metadata={"subtask": subtask.id, "stage": "review"},
            on_event=on_event,
            route_key=call_route_key(subtask.instruction, subtask.id, "review"),
        )
        calls.append(call_record("review", response, subtask.id))
        review.reviewer = response.deployment
        review.reviewer_family = response.family or reviewer
        review.cost_usd += response.cost_usd
        try:
            verdict = ReviewVerdict.model_validate_json(response.text)
            review.approved = verdict.approved
            review.issues = [str(i) for i in verdict.issues]
        except ValueError:
            # An unreadable verdict is not a rejection; compile() still decides.
            review.issues = ["the reviewer's verdict was not valid JSON"]
    except HybridStackError as error:
        calls.append(_failed_call("review", subtask.id, error))
        review.error = f"review call failed: {type(error).__name__}"
    if review.approved and not errors:
        return review, None, calls
    # One revision, on a family other than the author's (and other than the reviewer's
    # when a third is allowed): a second opinion, not the same model again.
    revisers = [f for f in others if f != review.reviewer_family] or others
    reviser = revisers[0]
    issues = [*errors, *review.issues]
    prompt = (
        "Revise this code so it meets the instruction and fixes the problems.\n\n"
        f"Instruction:\n{_quote(subtask.instruction)}\n\nCode:\n{record.output}\n\n"
        "Problems:\n"
        + "\n".join(f"- {i}" for i in issues)
        + "\n\nReply with the full corrected code."
    )
    try:
        response = await stack.complete(
            [{"role": "user", "content": prompt}],
            skill="code",
            model=reviser,
            data_class=data_class,
            run_id=run_id,
            metadata={"subtask": subtask.id, "stage": "revise"},
            on_event=on_event,
            route_key=call_route_key(subtask.instruction, subtask.id, "revise"),
        )
    except HybridStackError as error:
        calls.append(_failed_call("revise", subtask.id, error))
        review.error = f"revision call failed: {type(error).__name__}"
        return review, None, calls
    calls.append(call_record("revise", response, subtask.id))
    review.revised = True
    review.reviser = response.deployment
    review.reviser_family = response.family or reviser
    review.revision_compile_errors = compile_errors(response.text)
    review.original_output = record.output
    review.cost_usd += response.cost_usd
    return review, response.text, calls


def _failed_call(stage: str, subtask_id: str, error: BaseException) -> dict[str, Any]:
    return {
        "stage": stage,
        "subtask_id": subtask_id,
        "ok": False,
        "error": f"{type(error).__name__}: {str(error).splitlines()[0][:300]}",
    }
