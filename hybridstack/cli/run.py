"""``hybridstack run``: the agent on a task, with real providers or ``--offline``.

Runs are durable: checkpoints go to a SQLite file, so ``--thread ID`` resumes a run that
was interrupted (only unfinished subtasks are sent again). Attempts go to the SQLite
ledger (``hybridstack ledger`` reads it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from hybridstack.cli.agent_view import AgentView, jurisdiction_table, result_summary
from hybridstack.errors import InvalidRequestError


def warn_routes(stack: Any) -> None:
    """Print the router's build-time warnings (typos in the skill table, empty routes)."""
    for warning in getattr(stack.router, "warnings", ()):
        print(f"hybridstack: warning: {warning}", file=sys.stderr)


def default_checkpoint_path() -> Path:
    return Path.home() / ".hybridstack" / "checkpoints.sqlite"


def default_ledger_path() -> Path:
    return Path.home() / ".hybridstack" / "ledger.sqlite"


def offline_ledger_path(path: Path) -> Path:
    """Where simulated runs (``--offline``, ``demo``) are recorded: beside the real ledger.

    Kept apart so that ``hybridstack ledger`` totals only real spend; ``hybridstack ledger
    --offline`` reads this file.
    """
    return path.with_name(f"{path.stem}.offline{path.suffix or '.sqlite'}")


def offline_ledger_location(where: str) -> str:
    """Where simulated runs go when real runs go to ``where`` (a path or a URL)."""
    from hybridstack.ledger.opening import is_postgres_url

    if is_postgres_url(where):  # a database keeps real spend only: simulated runs stay local
        return str(offline_ledger_path(default_ledger_path()))
    return str(offline_ledger_path(Path(where).expanduser()))


def ledger_path(config: Any, *, offline: bool) -> Path:
    """The ledger file a command writes or reads: the config's, else the default."""
    path = (
        config._relative(config.ledger.path)
        if config.ledger.path != "memory"
        else default_ledger_path()
    )
    return offline_ledger_path(Path(path)) if offline else Path(path)


@contextlib.asynccontextmanager
async def _stack(args: Any) -> AsyncIterator[Any]:
    from hybridstack.config import load_config
    from hybridstack.ledger import open_ledger

    config = load_config(args.config)
    options = config.stack_options()
    if args.policy:
        options["policy"] = args.policy
    if args.seed is not None:
        options["seed"] = args.seed
    # --ledger, else the config's, else the default file (a run's costs are kept).
    explicit = getattr(args, "ledger", None)
    where = explicit or config.ledger_location()
    if where == "memory":
        where = str(default_ledger_path())
    if args.offline and not explicit:
        # Simulated runs never mix with real spend in the configured or default ledger
        # (their own file, see offline_ledger_path); an explicit --ledger is obeyed.
        where = offline_ledger_location(where)
    catalog = config.build_catalog()
    options["ledger"] = open_ledger(where)
    try:
        if args.offline:
            from hybridstack.emulator.offline import offline_stack

            async with offline_stack(catalog, **options) as stack:
                warn_routes(stack)
                await stack.warm_up()
                yield stack
        else:
            from hybridstack.stack import Stack

            async with Stack(catalog, **options) as stack:
                warn_routes(stack)
                await stack.warm_up()
                yield stack
    finally:
        options["ledger"].close()


def read_task(args: Any) -> str | None:
    """The task as given: TASK, ``-`` (standard input) or ``--file PATH``, as text."""
    path = getattr(args, "file", None)
    if path is not None and args.task is not None:
        raise InvalidRequestError("give the task either as TASK or with --file, not both")
    if path is not None:
        return _decode(_read_file(Path(path).expanduser()), f"the task file {path}")
    if args.task != "-":
        task: str | None = args.task
        return task
    if args.approve_plan:
        raise InvalidRequestError(
            "--approve-plan asks for the answer on standard input, which `run -` reads the "
            "task from: put the task in a file and use --file PATH"
        )
    if sys.stdin is None:
        raise InvalidRequestError("`run -` reads the task from standard input, but there is none")
    if sys.stdin.isatty():
        print(
            "hybridstack: reading the task from standard input; end it with Ctrl-D", file=sys.stderr
        )
    try:
        data = sys.stdin.buffer.read()
    except (OSError, ValueError, AttributeError) as error:
        raise InvalidRequestError(f"cannot read the task from standard input: {error}") from None
    return _decode(data, "standard input")


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InvalidRequestError(f"no task file at {path}: check the --file path") from None
    except IsADirectoryError:
        raise InvalidRequestError(f"{path} is a directory: --file takes a text file") from None
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise InvalidRequestError(f"cannot read the task file {path}: {reason}") from None


def _decode(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InvalidRequestError(
            f"{where} is not UTF-8 text (byte {error.start} is 0x{data[error.start]:02x}): "
            "save or pipe it as UTF-8"
        ) from None


def _ask_approval(console: Console, thread_id: str) -> bool:
    # markup=False: "[y/N]" would otherwise be read as a style tag and vanish.
    console.print(f"Dispatch this plan (thread {thread_id})? [y/N] ", end="", markup=False)
    try:
        answer = sys.stdin.readline()
        interactive = sys.stdin.isatty()
    except (OSError, ValueError):
        answer, interactive = "", False
    if not interactive:  # nobody's Enter key ended the line
        console.print(answer.strip(), markup=False, highlight=False)
    return answer.strip().lower() in ("y", "yes")


async def run_agent(args: Any, console: Console) -> int:
    from hybridstack.graph import Agent

    args.task = read_task(args)
    if args.task is not None and not args.task.strip():
        raise InvalidRequestError("the task is empty: give the agent something to do")
    if not args.task and not args.thread:
        raise InvalidRequestError(
            'give a TASK (hybridstack run "…", `hybridstack run -` to read it from standard '
            "input, or --file PATH) or --thread ID to resume one"
        )
    checkpoints = checkpoint_path(args)
    if args.checkpoints is None:
        from hybridstack.config import load_config

        checkpoints = load_config(args.config).checkpoint_location() or checkpoints
    quiet = Console(quiet=True)
    async with _stack(args) as stack:
        if args.task:
            # Fail before planning: an unknown class is a usage error, not a failed run.
            stack.router.data_classes.check(args.data_class)
        agent = Agent(stack, require_approval=args.approve_plan, checkpoint_path=checkpoints)
        view = AgentView(quiet if args.json else console, progress=not args.no_progress)
        if args.task:
            events = agent.stream(args.task, data_class=args.data_class, thread_id=args.thread)
        else:
            events = agent.stream_resume(args.thread)
        result = await view.follow(events)
        if result is not None and result.status == "awaiting_approval":
            # With --json, stdout is the JSON document: ask on stderr.
            asker = Console(stderr=True, highlight=False) if args.json else console
            approved = _ask_approval(asker, result.thread_id)
            if not approved:
                asker.print("plan rejected: no subtask was dispatched", markup=False)
            result = await view.follow(agent.stream_resume(result.thread_id, approve=approved))
    if result is None:
        console.print("the run produced no result")
        return 1
    if args.json:
        summary = result_summary(result)
        summary["offline"] = bool(args.offline)
        print(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        title = "Final answer" + (" (simulated text: --offline)" if args.offline else "")
        answer = Text(result.final_answer or f"(no answer: {result.status})")
        console.print(Panel(answer, title=title))
        console.print(jurisdiction_table(result))
        console.print(
            f"thread {result.thread_id} ({result.status}); resume or inspect with "
            f"`hybridstack run --thread {result.thread_id}`; costs in `hybridstack ledger"
            + (" --offline`" if args.offline else "`"),
            markup=False,
            highlight=False,
        )
    if result.status != "completed" and not args.offline:
        hint = _no_keys_hint(result)
        if hint:
            print(f"hybridstack: hint: {hint}", file=sys.stderr)
    return 0 if result.status == "completed" else 1


def _no_keys_hint(result: Any) -> str | None:
    """Why a real run may have had nowhere to go: no key set, only LOCAL tried."""
    tried = {attempt.jurisdiction for attempt in result.ledger}
    if tried and tried <= {"LOCAL"}:
        return (
            "only LOCAL deployments were tried, which usually means no provider key is set "
            "(`hybridstack doctor` lists them) and no local server is running (Ollama: "
            "`ollama serve`); `hybridstack run --offline` uses the built-in emulator"
        )
    return None


def checkpoint_path(args: Any) -> Path | str:
    """``--checkpoints``: an SQLite file or a ``postgresql://`` URL (default: the file)."""
    from hybridstack.ledger.opening import is_postgres_url

    if is_postgres_url(args.checkpoints):
        return str(args.checkpoints)
    return Path(args.checkpoints).expanduser() if args.checkpoints else default_checkpoint_path()


def main_run(args: Any, console: Console) -> int:
    # The agent checks the checkpoint path (and makes its directory) itself, with a
    # hybridstack error for a path that cannot hold checkpoints.
    return asyncio.run(run_agent(args, console))
