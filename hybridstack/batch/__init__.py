"""Batch runs: many agent tasks from a JSONL file, resumable, on one process or on Ray.

::

    from hybridstack.batch import Batch, run_batch

    report = await run_batch("tasks.jsonl", engine="local", offline=True)
    report = Batch("tasks.jsonl", engine="ray", checkpoints="runs.sqlite").run_sync()

Each task runs in its own checkpointed thread with a stable id, so running a batch again
skips finished tasks and resumes interrupted ones without re-sending finished subtasks.
See docs/scaling.md. The command line is ``hybridstack batch``.
"""

from __future__ import annotations

from hybridstack.batch.engines import Engine, LocalEngine
from hybridstack.batch.ray_engine import RayEngine
from hybridstack.batch.results import (
    JurisdictionCost,
    ResultsFile,
    TaskRecord,
    costs_by_jurisdiction,
)
from hybridstack.batch.runner import Batch, BatchReport, run_batch, run_batch_sync
from hybridstack.batch.tasks import BatchTask, load_tasks, parse_tasks
from hybridstack.batch.worker import TaskWorker, WorkerSettings
from hybridstack.errors import BatchFileError

__all__ = [
    "Batch",
    "BatchFileError",
    "BatchReport",
    "BatchTask",
    "Engine",
    "JurisdictionCost",
    "LocalEngine",
    "RayEngine",
    "ResultsFile",
    "TaskRecord",
    "TaskWorker",
    "WorkerSettings",
    "costs_by_jurisdiction",
    "load_tasks",
    "parse_tasks",
    "run_batch",
    "run_batch_sync",
]
