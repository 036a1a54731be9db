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
from typing import Any

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


def warn_routes(stack: Any) -> None:
    """Print the router's build-time warnings (typos in the skill table, empty routes)."""
    for warning in getattr(stack.router, "warnings", ()):
        print(f"hybridstack: warning: {warning}", file=sys.stderr)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _console():  # type: ignore[no-untyped-def]
    from rich.console import Console

    # Tables in a pipe or a log would be cut to 80 columns; give them room.
    return Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 160)


def _load_config(args: argparse.Namespace):  # type: ignore[no-untyped-def]
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
    from hybridstack.providers import create_provider, load_adapters
    from hybridstack.testing import Emulator, emulator_config_for, offline_catalog
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
            cost = deployment.price.cost(
                reply.usage.input_tokens, reply.usage.output_tokens, reply.usage.cached_input_tokens
            )
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
    from pathlib import Path

    from hybridstack.testing import emulator as emulator_module

    # Without --port the config's port applies (else a free one): never force 0 over it.
    argv = [] if args.port is None else ["--port", str(args.port)]
    if args.config:
        return emulator_module.main([*argv, "--config", args.config]) or EXIT_OK
    # Without a config: every deployment of the bundled catalog, named by its catalog id.
    from hybridstack.catalog import Catalog
    from hybridstack.testing import emulator_config_for

    config = emulator_config_for(Catalog.default())
    with tempfile.TemporaryDirectory(prefix="hybridstack-emulator-") as folder:
        path = Path(folder) / "emulator.json"
        path.write_text(config.model_dump_json(), encoding="utf-8")
        return emulator_module.main([*argv, "--config", str(path)]) or EXIT_OK


# --- route -----------------------------------------------------------------------------------


def cmd_route(args: argparse.Namespace) -> int:
    config = _load_config(args)
    options = config.stack_options()
    if args.policy:
        options["policy"] = args.policy
    if args.seed is not None:
        options["seed"] = args.seed
    from hybridstack.stack import Stack

    # Routing needs no keys: explain every route as if each key were set, and say so.
    stack = Stack(config.build_catalog(), **options)
    warn_routes(stack)
    stack.router.key_available = lambda deployment: True  # type: ignore[attr-defined]
    classification = None
    skill = args.skill
    if skill is None:
        from hybridstack.graph.classifier import classify

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
    from rich.table import Table

    table = Table(title=f"{len(rows)} deployment(s)  (USD per 1M tokens)")
    for column in (
        "deployment",
        "jurisdiction",
        "region",
        "protocol",
        "in",
        "out",
        "context",
        "status",
    ):
        table.add_column(column, no_wrap=column == "deployment")
    marked = {"tiers": False, "windows": False}
    for row in rows:
        status = "retired" if row["retired"] else ("disabled" if not row["enabled"] else "ok")
        # Base rates; a mark says the request may pay more (longer prompt, peak hour).
        mark = ("+" if row["price_tiers"] else "") + ("*" if row["price_windows"] else "")
        marked["tiers"] |= bool(row["price_tiers"])
        marked["windows"] |= bool(row["price_windows"])
        table.add_row(
            row["id"],
            row["jurisdiction"],
            row["region"],
            row["protocol"],
            f"{row['input_per_mtok']:g}{mark}",
            f"{row['output_per_mtok']:g}{mark}",
            f"{row['context_window']:,}",
            status,
        )
    console = _console()
    console.print(table)
    if marked["tiers"]:
        console.print("+ base tier: longer prompts pay more (price_tiers in --json)")
    if marked["windows"]:
        console.print("* off-peak rate: peak hours cost more (price_windows in --json)")
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
    from pathlib import Path

    from hybridstack.cli.run import default_ledger_path
    from hybridstack.ledger import SQLiteLedger

    path = args.path
    if path is None:
        config = _load_config(args)
        path = (
            str(config._relative(config.ledger.path))
            if config.ledger.path != "memory"
            else str(default_ledger_path())
        )
    if not Path(path).is_file():
        raise ConfigurationError(
            f"no ledger at {path}: run with a SQLite ledger first, or pass --path"
        )
    groups = args.by or ["jurisdiction", "family", "outcome"]
    with SQLiteLedger(path, create=False, read_only=True) as ledger:
        runs = ledger.runs()
        totals = {by: ledger.totals(run_id=args.run, by=by) for by in groups}
        overall = ledger.totals(run_id=args.run)["all"]
        attempts = ledger.attempts(run_id=args.run) if args.attempts else []
    if args.json:
        _print_json(
            {
                "path": path,
                "run": args.run,
                "runs": [r.model_dump(mode="json") for r in runs],
                "totals": overall.model_dump(mode="json"),
                "by": {
                    by: {k: v.model_dump(mode="json") for k, v in rows.items()}
                    for by, rows in totals.items()
                },
                "attempts": [a.model_dump(mode="json") for a in attempts],
            }
        )
        return EXIT_OK
    from rich.table import Table

    console = _console()
    console.print(
        f"ledger {path}: {len(runs)} run(s); {overall.calls} call(s), "
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
            "outcome",
            "latency",
            "cost",
        ):
            table.add_column(column)
        for a in attempts:
            table.add_row(
                a.started_at.strftime("%H:%M:%S"),
                a.call_id,
                a.deployment,
                a.jurisdiction,
                a.outcome,
                f"{a.latency_s * 1000:.0f} ms",
                f"${a.cost_usd:.6f}",
            )
        console.print(table)
    return EXIT_OK


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
