"""The CLI's commands: each turns parsed arguments into work and an exit code.

Errors are translated here, once, into a message on stderr and an exit code; no
command prints a traceback for a problem the user can fix.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybridstack.cli import EXIT_FAILED, EXIT_NO_ROUTE, EXIT_OK, EXIT_USAGE
from hybridstack.errors import (
    AllAttemptsFailedError,
    ConfigurationError,
    HybridStackError,
    InvalidRequestError,
    NoRouteError,
    SovereigntyError,
)
from hybridstack.routing.sovereignty import UnknownDataClassError

if TYPE_CHECKING:
    from rich.console import Console

    from hybridstack.config import HybridStackConfig


def dispatch(args: argparse.Namespace) -> int:
    handler: Callable[[argparse.Namespace], int] = COMMANDS[args.command]
    try:
        return handler(args)
    except (NoRouteError, SovereigntyError) as error:
        _error(str(error))
        return EXIT_NO_ROUTE
    except (ConfigurationError, InvalidRequestError, LookupError) as error:
        # LookupError covers an unknown thread id on resume.
        message = str(error)
        if isinstance(error, UnknownDataClassError):
            message += " (in hybridstack.toml: a [data_classes] entry)"
        _error(message)
        return EXIT_USAGE
    except AllAttemptsFailedError as error:
        _error(str(error))
        return EXIT_FAILED
    except HybridStackError as error:
        _error(f"{type(error).__name__}: {error}")
        return EXIT_FAILED


def _error(message: str) -> None:
    print(f"hybridstack: error: {message}", file=sys.stderr)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _console() -> Console:
    from rich.console import Console

    # Tables in a pipe or a log would be cut to 80 columns; give them room.
    return Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 160)


def _load_config(args: argparse.Namespace) -> HybridStackConfig:
    from hybridstack.config import load_config

    return load_config(getattr(args, "config", None))


# --- smoke -------------------------------------------------------------------------------


def cmd_smoke(args: argparse.Namespace) -> int:
    rows = asyncio.run(_smoke())
    if args.json:
        _print_json(rows)
        return EXIT_OK
    from rich.table import Table

    table = Table(title="One request through each wire protocol (emulator on loopback)")
    for column in (
        "protocol",
        "deployment",
        "region",
        "jurisdiction",
        "latency",
        "tokens in/out",
        "cost",
    ):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["protocol"],
            row["deployment"],
            row["region"],
            row["jurisdiction"],
            f"{row['latency_ms']:.1f} ms",
            f"{row['input_tokens']}/{row['output_tokens']}",
            f"${row['cost_usd']:.6f}",
        )
    console = _console()
    console.print(table)
    console.print("Model text is simulated by the emulator; the SDK clients and HTTP are real.")
    console.print(f"Sample reply: {rows[0]['text'][:100]}…")
    return EXIT_OK


async def _smoke() -> list[dict[str, Any]]:
    from hybridstack.catalog import Catalog
    from hybridstack.emulator import Emulator, emulator_config_for, offline_catalog
    from hybridstack.ledger.pricing import price_usage
    from hybridstack.providers import create_provider, load_adapters
    from hybridstack.types import ChatRequest, Message

    catalog = Catalog.default()
    chosen: dict[str, str] = {}
    for deployment in catalog:
        chosen.setdefault(deployment.protocol, deployment.id)
    config = emulator_config_for(catalog, include=chosen.values())
    rows = []
    # The three SDKs load on worker threads together, so latency_ms is the request's own.
    await load_adapters(chosen)
    async with Emulator(config) as emulator:
        local = offline_catalog(catalog, emulator)
        request = ChatRequest(messages=[Message.user("Say hello from your region.")], max_tokens=64)
        for protocol, deployment_id in sorted(chosen.items()):
            deployment = local.deployment(deployment_id)
            provider = create_provider(deployment)
            try:
                await provider.warm_up()
                reply = await provider.complete(request)
            finally:
                await provider.aclose()
            cost = price_usage(deployment.price, reply.usage)
            rows.append(
                {
                    "protocol": protocol,
                    "deployment": deployment.id,
                    "region": deployment.region,
                    "jurisdiction": deployment.jurisdiction,
                    "latency_ms": reply.latency_s * 1000,
                    "input_tokens": reply.usage.input_tokens,
                    "output_tokens": reply.usage.output_tokens,
                    "cost_usd": cost,
                    "text": reply.text,
                }
            )
    return rows


# --- emulator ------------------------------------------------------------------------------


def cmd_emulator(args: argparse.Namespace) -> int:
    import tempfile

    from hybridstack.emulator.__main__ import main as serve_emulator

    # Without --port the config's port applies (else a free one): never force 0 over it.
    argv = [] if args.port is None else ["--port", str(args.port)]
    if args.config:
        return serve_emulator([*argv, "--config", args.config]) or EXIT_OK
    # Without a config: every deployment of the bundled catalog, named by its catalog id.
    from hybridstack.catalog import Catalog
    from hybridstack.emulator import emulator_config_for

    config = emulator_config_for(Catalog.default())
    with tempfile.TemporaryDirectory(prefix="hybridstack-emulator-") as folder:
        path = Path(folder) / "emulator.json"
        path.write_text(config.model_dump_json(), encoding="utf-8")
        return serve_emulator([*argv, "--config", str(path)]) or EXIT_OK


# --- route -----------------------------------------------------------------------------------


def cmd_route(args: argparse.Namespace) -> int:
    config = _load_config(args)
    options = config.stack_options()
    if args.policy:
        options["policy"] = args.policy
    if args.seed is not None:
        options["seed"] = args.seed
    from hybridstack.cli.run import warn_routes
    from hybridstack.stack import Stack

    # Routing needs no keys: explain every route as if each key were set, and say so.
    stack = Stack(config.build_catalog(), **options)
    warn_routes(stack)
    stack.router.key_available = lambda deployment: True
    classification = None
    skill = args.skill
    if skill is None:
        from hybridstack.routing.skills.classifier import classify

        classification = classify(args.prompt)
        skill = classification.skill
    from hybridstack import tokens

    tokens.load()  # one plan, shown: count Qwen prompts exactly rather than estimate them
    plan = stack.route(args.prompt, skill=skill, data_class=args.data_class, model=args.model)
    if args.json:
        payload = plan.to_dict()
        if classification is not None:
            payload["classification"] = {
                "skill": classification.skill,
                "confidence": classification.confidence,
                "reasons": list(classification.reasons),
            }
        _print_json(payload)
        return EXIT_OK
    console = _console()
    if classification is not None:
        console.print(
            f"skill: [bold]{classification.skill}[/] (confidence {classification.confidence:.2f}; "
            + ", ".join(classification.reasons)
            + ")"
        )
    else:
        console.print(f"skill: [bold]{skill}[/] (forced with --skill)")
    console.print(plan.explain(limit=None if args.all else 8), markup=False)
    console.print("(no model was called; key availability is not checked by `route`)")
    return EXIT_OK


# --- models ----------------------------------------------------------------------------------


def cmd_models(args: argparse.Namespace) -> int:
    from hybridstack.catalog.models import KNOWN_JURISDICTIONS

    config = _load_config(args)
    catalog = config.build_catalog()
    jurisdiction = args.jurisdiction.strip().upper() if args.jurisdiction else None
    if jurisdiction is not None:
        known = sorted(set(catalog.jurisdictions()) | set(KNOWN_JURISDICTIONS))
        if jurisdiction not in known:
            raise InvalidRequestError(
                f"unknown jurisdiction {args.jurisdiction!r}; known: {', '.join(known)}"
            )
    deployments = catalog.filter(
        jurisdiction=jurisdiction, protocol=args.protocol, include_unavailable=True
    )
    if args.skill is not None:
        # Ranked for the skill: a catalog strength above 0, or named in the config's table.
        named = {ref.split("@", 1)[0] for ref in config.skills.get(args.skill, ())}
        named |= set(config.skills.get(args.skill, ()))
        known_skills = list(dict.fromkeys([*catalog.skills(), *config.skills]))
        if args.skill not in known_skills:
            raise InvalidRequestError(
                f"unknown skill {args.skill!r}; known skills: {', '.join(known_skills)}"
            )
        deployments = [
            d
            for d in deployments
            if catalog.families[d.family].skills.get(args.skill, 0.0) > 0
            or d.family in named
            or d.id in named
        ]
    if args.max_price is not None:
        deployments = [d for d in deployments if d.price.rates().output_per_mtok <= args.max_price]
    rows = catalog.to_rows(deployments)
    if args.json:
        _print_json(rows)
        return EXIT_OK
    from hybridstack.cli.models_table import print_models

    print_models(_console(), rows, sources=args.sources)
    return EXIT_OK


# --- doctor ----------------------------------------------------------------------------------


def cmd_doctor(args: argparse.Namespace) -> int:
    from hybridstack.cli.doctor import run_doctor

    config = _load_config(args)
    report = run_doctor(
        config.build_catalog(),
        skill_table=config.skills,
        probe=not args.no_network,
        timeout_s=args.timeout,
    )
    if args.json:
        _print_json(report.to_dict())
    else:
        report.print(_console())
    return EXIT_FAILED if report.problems else EXIT_OK


# --- ledger ----------------------------------------------------------------------------------


def cmd_ledger(args: argparse.Namespace) -> int:
    from hybridstack.cli.run import (
        default_ledger_path,
        offline_ledger_location,
        offline_ledger_path,
    )
    from hybridstack.ledger import PostgresLedger, SQLiteLedger, attempt_actions
    from hybridstack.ledger.base import Ledger
    from hybridstack.ledger.opening import is_postgres_url

    where: str = args.path
    if where is None:
        where = _load_config(args).ledger_location()
        if where == "memory":
            where = str(default_ledger_path())
    if args.offline:
        where = offline_ledger_location(where)
    reader: Ledger
    if is_postgres_url(where):
        reader = PostgresLedger(where, create=False, read_only=True)
        where = reader.url  # shown without the password
    else:
        path = Path(where).expanduser()
        if not path.is_file():
            how = (
                "run `hybridstack run --offline …` first"
                if args.offline
                else "run with a SQLite ledger first, or pass --path"
            )
            if not args.offline and offline_ledger_path(path).is_file():
                how = (
                    f"only simulated runs are recorded, in {offline_ledger_path(path)}: "
                    "`hybridstack ledger --offline` shows them"
                )
            raise ConfigurationError(f"no ledger at {path}: {how}")
        reader = SQLiteLedger(path, create=False, read_only=True)
        where = str(path)
    groups = args.by or ["jurisdiction", "family", "outcome"]
    with reader as ledger:
        runs = ledger.runs()
        if args.run is not None and args.run not in {r.run_id for r in runs}:
            raise InvalidRequestError(_unknown_run(args.run, [r.run_id for r in runs], where))
        totals = {by: ledger.totals(run_id=args.run, by=by) for by in groups}
        overall = ledger.totals(run_id=args.run)["all"]
        attempts = ledger.attempts(run_id=args.run) if args.attempts else []
    simulated = offline_ledger_path(Path(where)) if not is_postgres_url(where) else None
    if not args.offline and simulated is not None and simulated.is_file():
        print(
            f"hybridstack: note: simulated runs (--offline) are kept apart in {simulated}: "
            "`hybridstack ledger --offline` shows them",
            file=sys.stderr,
        )
    if args.json:
        _print_json(
            {
                "path": str(where),
                "simulated": bool(args.offline),
                "run": args.run,
                "runs": [r.model_dump(mode="json") for r in runs],
                "totals": overall.model_dump(mode="json"),
                "by": {
                    by: {k: v.model_dump(mode="json") for k, v in rows.items()}
                    for by, rows in totals.items()
                },
                # outcome is the error class; action is what the executor did next.
                "attempts": [
                    {**a.model_dump(mode="json"), "action": action}
                    for a, action in zip(attempts, attempt_actions(attempts), strict=True)
                ],
            }
        )
        return EXIT_OK
    from rich.table import Table

    console = _console()
    console.print(
        ("simulated " if args.offline else "")
        + f"ledger {where}: {len(runs)} run(s); {overall.calls} call(s), "
        f"{overall.attempts} attempt(s), ${overall.cost_usd:.6f}"
        + (f" (run {args.run})" if args.run else "")
    )
    for by, rows in totals.items():
        table = Table(title=f"by {by}")
        for column in (by, "calls", "attempts", "ok", "failed", "tokens in/out", "cost", "latency"):
            table.add_column(column)
        for key, t in rows.items():
            table.add_row(
                key,
                str(t.calls),
                str(t.attempts),
                str(t.ok),
                str(t.failed),
                f"{t.input_tokens}/{t.output_tokens}",
                f"${t.cost_usd:.6f}",
                f"{t.latency_s:.2f} s",
            )
        console.print(table)
    if attempts:
        table = Table(title="attempts")
        for column in (
            "started",
            "call",
            "deployment",
            "jurisdiction",
            "error class",
            "action",
            "latency",
            "cost",
        ):
            table.add_column(column)
        for a, action in zip(attempts, attempt_actions(attempts), strict=True):
            table.add_row(
                a.started_at.strftime("%H:%M:%S"),
                a.call_id,
                a.deployment,
                a.jurisdiction,
                "-" if a.outcome == "ok" else a.outcome,
                action,
                f"{a.latency_s * 1000:.0f} ms",
                f"${a.cost_usd:.6f}",
            )
        console.print(table)
    return EXIT_OK


def _unknown_run(run_id: str, known: list[str], path: str) -> str:
    import difflib

    message = f"no run {run_id!r} in the ledger {path}"
    close = difflib.get_close_matches(run_id, known, n=1)
    if close:
        return f"{message}: did you mean {close[0]!r}?"
    if not known:
        return f"{message}: it holds no runs yet"
    latest = ", ".join(known[-3:])
    return f"{message}: `hybridstack ledger` lists its {len(known)} run(s) (latest: {latest})"


def cmd_demo(args: argparse.Namespace) -> int:
    from hybridstack.cli.demo import main_demo

    return main_demo(args, _console())


def cmd_run(args: argparse.Namespace) -> int:
    from hybridstack.cli.run import main_run

    return main_run(args, _console())


def cmd_batch(args: argparse.Namespace) -> int:
    from hybridstack.cli.batch import main_batch

    return main_batch(args, _console())


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "demo": cmd_demo,
    "run": cmd_run,
    "batch": cmd_batch,
    "doctor": cmd_doctor,
    "emulator": cmd_emulator,
    "ledger": cmd_ledger,
    "models": cmd_models,
    "route": cmd_route,
    "smoke": cmd_smoke,
}
