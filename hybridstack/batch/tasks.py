"""The batch task file: JSON lines validated one by one, each task with a stable thread id.

A line looks like ``{"id": "t1", "task": "Translate the README into Thai"}``; optional
fields are ``data_class`` (default ``public``), ``plan`` (a list of subtasks: skips the
planner) and ``metadata`` (copied into the task's result line). Blank lines are skipped.

Every problem in the file is reported at once, each with its line number and what to
fix (:class:`~hybridstack.errors.BatchFileError`), before any task runs.

The thread id is what makes a batch resumable: ``batch-<id>`` when the line has an id,
else ``batch-<hash>`` of the task's content (task, data class, plan), so running the
same file again finds every task's checkpoint.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hybridstack._validation import first_problem
from hybridstack.errors import BatchFileError

__all__ = ["DEFAULT_THREAD_PREFIX", "BatchTask", "load_tasks", "parse_tasks"]

#: What every batch thread id starts with (``Batch(thread_prefix=...)`` changes it).
DEFAULT_THREAD_PREFIX = "batch-"
#: Problems listed in one error before "… and N more".
_MAX_LISTED = 20
_EXAMPLE = '{"id": "t1", "task": "Summarise the release notes in German"}'
_MAX_ID_LENGTH = 200


class BatchTask(BaseModel):
    """One task of a batch: what to run, and how to find its thread again."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The task's name in the results file; also names its thread (default: a content hash).
    id: str | None = None
    #: What the agent should do, in any language.
    task: str
    #: Sensitivity of the task's data: decides which jurisdictions may see it.
    data_class: str = "public"
    #: Subtasks to run instead of asking the planner (same shape as ``Agent.run(plan=...)``).
    plan: list[dict[str, Any]] | None = None
    #: Copied as given into the task's result line (your own keys: ticket, customer …).
    metadata: dict[str, Any] = Field(default_factory=dict)

    def content_hash(self) -> str:
        """A hash of what the task does (task, data class, plan), stable across runs."""
        canonical = json.dumps(
            {"task": self.task, "data_class": self.data_class, "plan": self.plan},
            sort_keys=True,
            ensure_ascii=False,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]

    @property
    def key(self) -> str:
        """The task's name in the results file: its id, else its content hash."""
        return self.id if self.id is not None else self.content_hash()

    def thread_id(self, prefix: str = DEFAULT_THREAD_PREFIX) -> str:
        """The checkpoint thread this task runs in: the same on every run of the file."""
        return f"{prefix}{self.key}"


_FIELDS = list(BatchTask.model_fields)


def _check_line(value: Any) -> str | None:
    """What is wrong with one decoded line before pydantic sees it (None: nothing)."""
    if not isinstance(value, dict):
        return f"expected a JSON object such as {_EXAMPLE}, got a JSON {_json_kind(value)}"
    for key in value:
        if key not in _FIELDS:
            close = difflib.get_close_matches(str(key), _FIELDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            return f"unknown field {key!r}{hint}; a task line has: {', '.join(_FIELDS)}"
    if "task" not in value:
        return f"missing the 'task' field (what the agent should do), e.g. {_EXAMPLE}"
    task = value["task"]
    if not isinstance(task, str) or not task.strip():
        return "'task' must be a non-empty string: give the agent something to do"
    ident = value.get("id")
    if ident is not None:
        if isinstance(ident, bool) or not isinstance(ident, str | int):
            return f"'id' must be a string or an integer, not {_json_kind(ident)}"
        text = str(ident)
        if not text.strip() or len(text) > _MAX_ID_LENGTH or text != text.strip():
            return (
                f"'id' must be 1 to {_MAX_ID_LENGTH} characters without leading or trailing spaces"
            )
    return None


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "boolean",
        int: "number",
        float: "number",
        str: "string",
        list: "array",
        dict: "object",
    }.get(type(value), type(value).__name__)


def _parse_one(value: Any) -> BatchTask:
    """A task from one decoded line; ValueError with what to fix."""
    problem = _check_line(value)
    if problem is not None:
        raise ValueError(problem)
    if "id" in value and isinstance(value["id"], int):
        value = {**value, "id": str(value["id"])}
    try:
        task = BatchTask.model_validate(value)
    except ValidationError as error:
        where, message = first_problem(error, BatchTask)
        raise ValueError(f"{where!r}: {message}" if where else message) from None
    if task.plan is not None:
        from hybridstack.graph.subtasks import TaskPlan

        try:
            TaskPlan.parse(task.plan)
        except ValueError as error:  # PlanValidationError is an InvalidRequestError
            raise ValueError(f"'plan': {error}") from None
    return task


def parse_tasks(
    lines: Iterable[str] | Iterable[BatchTask | Mapping[str, Any]], *, source: str = "<tasks>"
) -> list[BatchTask]:
    """Tasks from JSONL text lines, or from dicts/``BatchTask`` objects (numbered from 1).

    Raises :class:`~hybridstack.errors.BatchFileError` listing every bad line and every
    id or content hash used twice (two lines would share one thread).
    """
    tasks: list[BatchTask] = []
    lines_of: list[int] = []
    problems: list[tuple[int, str]] = []
    for number, item in enumerate(lines, start=1):
        if isinstance(item, BatchTask):
            tasks.append(item)
            lines_of.append(number)
            continue
        if isinstance(item, str):
            text = item.strip()
            if not text:
                continue
            try:
                value: Any = json.loads(text)
            except json.JSONDecodeError as error:
                problems.append(
                    (
                        number,
                        f"not valid JSON ({error.msg} at column {error.colno}); each "
                        f"line is one JSON object such as {_EXAMPLE}",
                    )
                )
                continue
        else:
            value = dict(item) if isinstance(item, Mapping) else item
        try:
            tasks.append(_parse_one(value))
            lines_of.append(number)
        except ValueError as error:
            problems.append((number, str(error)))
    seen: dict[str, int] = {}
    for task, number in zip(tasks, lines_of, strict=True):
        first = seen.setdefault(task.key, number)
        if first != number:
            what = f"id {task.id!r}" if task.id is not None else "the same task (no id)"
            problems.append(
                (
                    number,
                    f"{what} is also on line {first}: each task needs its own id, "
                    "because the id names its checkpoint thread",
                )
            )
    if problems:
        problems.sort()
        listed = [f"{source}:{n}: {message}" for n, message in problems[:_MAX_LISTED]]
        if len(problems) > _MAX_LISTED:
            listed.append(f"… and {len(problems) - _MAX_LISTED} more")
        raise BatchFileError(
            f"{len(problems)} problem(s) in the task file {source}:\n" + "\n".join(listed),
            path=source,
            problems=problems,
        )
    return tasks


def load_tasks(path: str | os.PathLike[str]) -> list[BatchTask]:
    """The tasks of a JSONL file, validated (see :func:`parse_tasks`)."""
    file = Path(path).expanduser()
    if not file.is_file():
        what = "a directory" if file.is_dir() else "missing"
        raise BatchFileError(
            f"task file {file} is {what}: give a JSONL file with one task per line, e.g. "
            f"{_EXAMPLE}",
            path=str(file),
        )
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BatchFileError(
            f"task file {file} is not UTF-8 text (save it as UTF-8)", path=str(file)
        ) from None
    tasks = parse_tasks(text.splitlines(), source=str(file))
    if not tasks:
        raise BatchFileError(
            f"task file {file} holds no task: add one JSON object per line, e.g. {_EXAMPLE}",
            path=str(file),
        )
    return tasks
