"""The batch results file: one JSON line per finished task, written so a crash loses nothing.

Each task's line (:class:`TaskRecord`) holds its status, answer, subtasks and what it
cost per jurisdiction (:class:`JurisdictionCost`, from the ledger's attempt records).
Lines are appended and flushed to disk one at a time; a process killed mid-write leaves
at most a torn last line, which :class:`ResultsFile` cuts off when it opens the file
again. Reading a results file back tells a re-run which tasks are already finished.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hybridstack.errors import ConfigurationError

__all__ = [
    "FINISHED_STATUSES",
    "JurisdictionCost",
    "ResultsFile",
    "SubtaskLine",
    "TaskRecord",
    "TaskStatus",
    "costs_by_jurisdiction",
]

#: ``error``: the task could not run to an end this time (busy thread, store down, a
#: worker died); a re-run tries it again. The others are the agent's run statuses.
TaskStatus = Literal[
    "completed", "partial", "failed", "rejected", "incomplete", "awaiting_approval", "error"
]
#: Statuses a re-run skips: the agent's run over that thread is over.
FINISHED_STATUSES: frozenset[str] = frozenset({"completed", "partial", "failed", "rejected"})


class JurisdictionCost(BaseModel):
    """What the calls to one jurisdiction's deployments cost (failed attempts included)."""

    model_config = ConfigDict(extra="forbid")

    #: Distinct stack calls (one per subtask, planner or synthesis step).
    calls: int = 0
    #: Attempts on deployments, retries and fail-overs included.
    attempts: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def plus(self, other: JurisdictionCost) -> JurisdictionCost:
        return JurisdictionCost(
            calls=self.calls + other.calls,
            attempts=self.attempts + other.attempts,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cost_usd=self.cost_usd + other.cost_usd,
        )


class SubtaskLine(BaseModel):
    """One subtask of a task, as the results file shows it."""

    id: str
    status: str
    skill: str = ""
    deployment: str | None = None
    jurisdiction: str | None = None
    error: str | None = None


class TaskRecord(BaseModel):
    """One line of the results file: a task's outcome."""

    id: str
    thread_id: str
    status: TaskStatus
    task: str = ""
    final_answer: str = ""
    subtasks: list[SubtaskLine] = Field(default_factory=list)
    #: Cost per jurisdiction of every attempt of the task's thread (its ledger run).
    by_jurisdiction: dict[str, JurisdictionCost] = Field(default_factory=dict)
    #: The run went on from a checkpoint an earlier (interrupted) run left.
    resumed: bool = False
    #: Why the task did not finish (status ``error``), in words.
    error: str | None = None
    #: Which worker ran it (``local:<pid>`` or ``ray:<actor>:<pid>``).
    worker: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def cost_usd(self) -> float:
        return sum(c.cost_usd for c in self.by_jurisdiction.values())


def costs_by_jurisdiction(records: Iterable[TaskRecord]) -> dict[str, JurisdictionCost]:
    """The cost table: every record's per-jurisdiction costs added up, sorted by code."""
    table: dict[str, JurisdictionCost] = {}
    for record in records:
        for code, cost in record.by_jurisdiction.items():
            table[code] = table.get(code, JurisdictionCost()).plus(cost)
    return dict(sorted(table.items()))


class ResultsFile:
    """Reads and appends the results JSONL; the last line for a task id wins."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        if self.path.is_dir():
            raise ConfigurationError(
                f"the results path {self.path} is a directory: give a file path such as "
                f"{self.path / 'results.jsonl'}"
            )

    def read(self) -> dict[str, TaskRecord]:
        """Every task's latest record (by id). A torn or foreign last line is ignored;
        a bad line in the middle is an error naming it (the file is not a results file)."""
        if not self.path.exists():
            return {}
        records: dict[str, TaskRecord] = {}
        lines = self.path.read_text(encoding="utf-8", errors="replace").split("\n")
        complete = lines[:-1]  # after the last newline: a line still being written
        for number, line in enumerate(complete, start=1):
            if not line.strip():
                continue
            try:
                record = TaskRecord.model_validate(json.loads(line))
            except (json.JSONDecodeError, ValidationError) as error:
                raise ConfigurationError(
                    f"{self.path}:{number}: not a batch result line ({type(error).__name__}); "
                    "give --output a new file, or the results file of this batch"
                ) from None
            records[record.id] = record
        return records

    def _repair(self) -> None:
        """Cut a torn last line (a process killed mid-write) so appends stay line-aligned."""
        if not self.path.exists():
            return
        with self.path.open("rb+") as fh:
            data = fh.read()
            if data and not data.endswith(b"\n"):
                fh.truncate(data.rfind(b"\n") + 1)

    def open(self) -> _Appender:
        """An appender; the file and its directory are made if missing."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._repair()
            return _Appender(self.path.open("a", encoding="utf-8"))
        except OSError as error:
            raise ConfigurationError(
                f"cannot write the results file {self.path} ({error.strerror or error}); "
                "give --output a writable path"
            ) from error


class _Appender:
    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def write(self, record: TaskRecord) -> None:
        line = json.dumps(record.model_dump(mode="json"), ensure_ascii=False)
        self._handle.write(line + "\n")
        self._handle.flush()
        # On disk before the task counts as done: a crash right after must not lose it.
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> _Appender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def record_from_result(
    task_id: str,
    result: Any,
    *,
    resumed: bool,
    worker: str,
    metadata: Mapping[str, Any],
) -> TaskRecord:
    """A results line from an agent :class:`~hybridstack.graph.RunResult`."""
    subtasks = [
        SubtaskLine(
            id=s.id,
            status=s.status,
            skill=s.skill,
            deployment=s.deployment,
            jurisdiction=s.jurisdiction,
            error=(s.error.message if s.error is not None else s.skip_reason),
        )
        for s in result.subtasks
    ]
    return TaskRecord(
        id=task_id,
        thread_id=result.thread_id,
        status=result.status,
        task=result.task,
        final_answer=result.final_answer or "",
        subtasks=subtasks,
        by_jurisdiction=_costs_of(result),
        resumed=resumed,
        worker=worker,
        metadata=dict(metadata),
    )


def _costs_of(result: Any) -> dict[str, JurisdictionCost]:
    """Per-jurisdiction cost of a run: from its ledger attempts when the ledger has them,
    else from what the checkpointed state recorded (a memory ledger after a resume)."""
    rows: dict[str, dict[str, Any]] = {}
    if result.ledger:
        for attempt in result.ledger:
            row = rows.setdefault(attempt.jurisdiction or "?", {"calls": set(), "attempts": 0})
            row["calls"].add(attempt.call_id)
            row["attempts"] += 1
            row["in"] = row.get("in", 0) + attempt.usage.input_tokens
            row["out"] = row.get("out", 0) + attempt.usage.output_tokens
            row["cost"] = row.get("cost", 0.0) + attempt.cost_usd
    else:
        done = [s for s in result.subtasks if s.status == "done"]
        for index, item in enumerate([*done, *result.calls]):
            row = rows.setdefault(item.jurisdiction or "?", {"calls": set(), "attempts": 0})
            row["calls"].add(index)
            row["attempts"] += item.attempts
            row["in"] = row.get("in", 0) + item.input_tokens
            row["out"] = row.get("out", 0) + item.output_tokens
            row["cost"] = row.get("cost", 0.0) + item.cost_usd
    return {
        code: JurisdictionCost(
            calls=len(row["calls"]),
            attempts=row["attempts"],
            input_tokens=row.get("in", 0),
            output_tokens=row.get("out", 0),
            cost_usd=row.get("cost", 0.0),
        )
        for code, row in sorted(rows.items())
    }
