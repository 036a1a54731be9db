"""The agent's prompts: what a worker and the synthesis step are asked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hybridstack.graph.subtasks import Subtask
from hybridstack.types import Message

__all__ = ["Messages", "synthesis_messages", "worker_messages"]

#: A chat as the graph builds it (a list the stack accepts as ``messages``).
Messages = list[Message | dict[str, Any]]

_WORKER_SYSTEM = (
    "You are one specialist in a team of models working on a larger task. Do only your "
    "subtask, completely and concisely; other specialists handle the rest and a final "
    "step combines the results."
)


def worker_messages(task: str, subtask: Subtask, inputs: Mapping[str, str]) -> Messages:
    """The prompt for one subtask: the overall task for context, the subtask, its inputs."""
    parts = [
        f"Overall task (for context):\n{task}",
        f"Your subtask ({subtask.id}):\n{subtask.instruction}",
    ]
    if inputs:
        blocks = "\n\n".join(f"### Output of {dep}\n{text}" for dep, text in inputs.items())
        parts.append(f"Results of the subtasks yours depends on:\n\n{blocks}")
    if subtask.output_schema is not None:
        parts.append("Reply with JSON only, matching the requested schema.")
    return [
        {"role": "system", "content": _WORKER_SYSTEM},
        {"role": "user", "content": "\n\n".join(parts)},
    ]


def synthesis_messages(
    task: str, language: str, records: Sequence[tuple[Subtask, Mapping[str, Any]]]
) -> Messages:
    blocks = []
    for subtask, record in records:
        head = f"### {subtask.id}: {subtask.instruction}"
        if record.get("status") == "done":
            blocks.append(f"{head}\n{record.get('output', '')}")
        elif record.get("status") == "failed":
            blocks.append(f"{head}\n(this subtask failed; say what is missing)")
        else:
            blocks.append(f"{head}\n(skipped: {record.get('skip_reason', '')})")
    system = (
        "You combine the work of several specialist models into one final answer for the "
        f"user. Answer in {language}, the language of the user's task. Keep code blocks "
        "intact. Do not mention the specialists or the subtasks."
    )
    user = f"The user's task:\n{task}\n\nResults of the subtasks:\n\n" + "\n\n".join(blocks)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
