"""``hybridstack batch``: many agent tasks from a JSONL file, on one process or on Ray.

The grammar (:func:`add_parser`) is here beside the command so the two stay together;
``hybridstack.cli.build_parser`` calls it. Heavy imports wait until the command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["add_parser", "main_batch"]


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add the ``batch`` command to the CLI's subparsers."""
    from hybridstack.cli import _add_config

    batch: argparse.ArgumentParser = commands.add_parser(
        "batch",
        help="run many agent tasks from a JSONL file (resumable; local or Ray)",
        description="Run every task of TASKS (one JSON object per line: "
        '{"id": "t1", "task": "…", "data_class": "public"}) through the agent, each in its '
        "own checkpointed thread. Results go to a JSONL file as each task finishes; running "
        "the same command again skips finished tasks and resumes interrupted ones without "
        "re-sending finished subtasks. Ends with a cost table per jurisdiction.",
    )
    batch.add_argument("tasks", metavar="TASKS", help="the task file (JSONL)")
    batch.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="local: this process; ray: a pool of Ray actors, one Stack each (default: local)",
    )
    batch.add_argument(
        "--output",
        metavar="PATH",
        help="results file, JSONL (default: TASKS with .results.jsonl, beside it)",
    )
    batch.add_argument(
        "--concurrency",
        type=int,
        default=4,
        metavar="N",
        help="tasks at once (local: in the process; ray: per actor; default: 4)",
    )
    batch.add_argument(
        "--offline", action="store_true", help="use the built-in emulator instead of real providers"
    )
    batch.add_argument(
        "--policy",
        metavar="POLICY",
        help="weighted, cheapest, fastest or diversified (default: from config, else weighted)",
    )
    batch.add_argument("--seed", type=int, help="routing seed, to replay the same routes")
    batch.add_argument(
        "--checkpoints",
        metavar="PATH|URL",
        help="checkpoint store: a SQLite file or a URL "
        "(default: ~/.hybridstack/checkpoints.sqlite)",
    )
    batch.add_argument(
        "--ledger",
        metavar="PATH|URL",
        help="ledger: a SQLite file, 'memory' or a URL (default: the config's [ledger] path, "
        "else ~/.hybridstack/ledger.sqlite)",
    )
    batch.add_argument(
        "--health-store",
        metavar="URL",
        help="shared health state for every worker, e.g. redis://127.0.0.1:6379/0 (passed to "
        "Stack(health_store=...))",
    )
    batch.add_argument(
        "--stack",
        metavar="MODULE:FUNC",
        help="build each worker's Stack with this function instead of the config",
    )
    batch.add_argument(
        "--thread-prefix",
        default="batch-",
        metavar="TEXT",
        help="start of every task's thread id (default: batch-)",
    )
    batch.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="Ray cluster to attach to (auto, ray://host:10001); default: start a local Ray",
    )
    batch.add_argument(
        "--ray-cpus",
        type=int,
        default=2,
        metavar="N",
        help="CPUs of the local Ray started when no --ray-address is given (default: 2)",
    )
    batch.add_argument(
        "--actors", type=int, metavar="N", help="Ray actors in the pool (default: the CPUs)"
    )
    batch.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_config(batch)
    batch.add_argument(
        "--json", action="store_true", help="print the report as JSON (records are in the file)"
    )
    return batch


def main_batch(args: argparse.Namespace, console: Any) -> int:
    from hybridstack.batch import Batch
    from hybridstack.batch.display import cost_table
    from hybridstack.cli.run import default_ledger_path
    from hybridstack.config import load_config
    from hybridstack.errors import ConfigurationError

    for name in ("concurrency", "ray_cpus", "actors"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigurationError(f"--{name.replace('_', '-')} must be at least 1")
    stack_options: dict[str, Any] = {}
    if args.policy:
        stack_options["policy"] = args.policy
    if args.seed is not None:
        stack_options["seed"] = args.seed
    if args.health_store:
        stack_options["health_store"] = args.health_store
    ledger = args.ledger
    if ledger is None and args.stack is None:
        config = load_config(args.config)  # checked here too, before any worker starts
        ledger = (
            str(config._relative(config.ledger.path))
            if config.ledger.path != "memory"
            else str(default_ledger_path())
        )
    batch = Batch(
        args.tasks,
        output=args.output,
        engine=args.engine,
        concurrency=args.concurrency,
        stack=args.stack,
        config=args.config,
        offline=args.offline,
        stack_options=stack_options,
        ledger=ledger,
        checkpoints=args.checkpoints,
        thread_prefix=args.thread_prefix,
        ray_address=args.ray_address,
        ray_cpus=args.ray_cpus,
        actors=args.actors,
        progress=not args.no_progress and not args.json,
    )
    report = batch.run_sync()
    not_completed = [r for r in report.records if r.status != "completed"]
    never_ran = report.total - len(report.records)
    if args.json:
        payload = report.model_dump(mode="json", exclude={"records"})
        payload["not_completed"] = [
            {"id": r.id, "status": r.status, "error": r.error} for r in not_completed
        ]
        payload["offline"] = bool(args.offline)
        print(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        title = "Cost by jurisdiction, all tasks" + (" (simulated)" if args.offline else "")
        console.print(cost_table(report.costs, title=title))
        console.print(
            f"{report.completed}/{report.total} task(s) completed: {report.ran} run now "
            f"({report.resumed} resumed from a checkpoint), {report.skipped} finished "
            f"earlier; results in {report.output}",
            markup=False,
            highlight=False,
        )
        for record in not_completed[:10]:
            reason = record.error or ", ".join(
                f"{s.id} {s.status}" for s in record.subtasks if s.status != "done"
            )
            print(f"hybridstack: task {record.id}: {record.status}: {reason}", file=sys.stderr)
        if not_completed:
            print(
                "hybridstack: hint: run the same command again to retry tasks with status "
                "error or incomplete; failed tasks keep their result (give them a new id "
                "to run them again)",
                file=sys.stderr,
            )
    return 0 if not not_completed and not never_ran else 1
