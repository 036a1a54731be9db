"""The ``hybridstack`` command line: argument parsing and exit codes; each command lives apart.

Exit codes scripts can rely on:

====  =====================================================================
0     success
1     the work failed (every deployment failed, a subtask failed, doctor found problems)
2     bad usage or configuration (unknown option, invalid config or catalog file)
3     no allowed route (sovereignty or constraints leave no deployment)
130   interrupted (Ctrl-C)
====  =====================================================================
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hybridstack import __version__

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NO_ROUTE = 3
EXIT_INTERRUPTED = 130

#: Every exit code and its meaning (rendered into docs/cli.md).
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success",
    EXIT_FAILED: "the work failed (every deployment failed, a subtask failed, the plan was "
    "rejected, doctor found problems)",
    EXIT_USAGE: "bad usage or configuration (unknown option, empty task, unknown thread, data "
    "class or skill, invalid config or catalog file)",
    EXIT_NO_ROUTE: "no allowed route (sovereignty or constraints leave no deployment)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}

PROG = "hybridstack"
DESCRIPTION = (
    "Route agent subtasks to specialised model families (Llama, Qwen, DeepSeek, OpenAI, "
    "Anthropic) across jurisdictions, with fail-over, sovereignty rules and a priced ledger."
)
EPILOG = (
    "Exit codes: 0 ok, 1 the work failed, 2 bad usage or configuration, 3 no allowed route, "
    "130 interrupted. Docs: docs/index.md"
)


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="hybridstack.toml to use (default: $HYBRIDSTACK_CONFIG, then ./hybridstack.toml)",
    )


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def build_parser() -> argparse.ArgumentParser:
    """The whole CLI grammar (also rendered into docs/cli.md)."""
    parser = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="run the offline agent demo (simulated models, real fail-over)",
        description=(
            "Run the agent demo offline: a customer message in Indonesian asking for a code "
            "fix and an explanation is planned and routed to DeepSeek and Qwen deployments "
            "across CN, SG, US, EU and LOCAL on the built-in emulator, with one region down. "
            "Model text is simulated; routing, retries and fail-over are real."
        ),
    )
    demo.add_argument("--seed", type=int, default=7, help="routing seed (default: 7)")
    demo.add_argument(
        "--outage",
        default="CN",
        metavar="WHERE",
        help="jurisdiction(s) or region(s), comma-separated, whose deployments are down "
        "during the demo (default: CN)",
    )
    demo.add_argument("--no-progress", action="store_true", help="no live status display")
    _add_json(demo)

    run = commands.add_parser(
        "run",
        help="run the agent on a task with the configured providers",
        description="Plan TASK into subtasks, route each to the best allowed family, run them "
        "with fail-over, and print the synthesised answer.",
    )
    run.add_argument(
        "task",
        metavar="TASK",
        nargs="?",
        help="the task, in any language; `-` reads it from standard input",
    )
    run.add_argument(
        "--file",
        metavar="PATH",
        help="read the task from this UTF-8 text file (for tasks too long for a command line)",
    )
    run.add_argument(
        "--offline", action="store_true", help="use the built-in emulator instead of real providers"
    )
    run.add_argument(
        "--data-class",
        default="public",
        metavar="CLASS",
        help="sensitivity of the task's data: public, internal, personal, regulated … "
        "(default: public)",
    )
    run.add_argument(
        "--policy",
        metavar="POLICY",
        help="weighted, cheapest, fastest or diversified (default: from config, else weighted)",
    )
    run.add_argument("--seed", type=int, help="routing seed, to replay the same routes")
    run.add_argument("--thread", metavar="ID", help="thread id: resume this run, or name a new one")
    run.add_argument(
        "--approve-plan", action="store_true", help="show the plan and ask before dispatching it"
    )
    run.add_argument(
        "--checkpoints",
        metavar="PATH|URL",
        help="SQLite checkpoint file or postgresql:// URL (default: the config's "
        "checkpoints, else ~/.hybridstack/checkpoints.sqlite)",
    )
    run.add_argument(
        "--ledger",
        metavar="PATH|URL",
        help="SQLite ledger file or postgresql:// URL (default: the config's ledger, else "
        "~/.hybridstack/ledger.sqlite)",
    )
    run.add_argument("--no-progress", action="store_true", help="no live status display")
    _add_config(run)
    _add_json(run)

    from hybridstack.cli.batch import add_parser as add_batch_parser

    add_batch_parser(commands)

    route = commands.add_parser(
        "route",
        help="explain the routing decision for a prompt, without calling a model",
        description="Show the skill, the candidate deployments in order and why, and every "
        "excluded deployment with its reason. No model is called.",
    )
    route.add_argument("prompt", metavar="PROMPT", help="the prompt to route")
    route.add_argument("--skill", help="force a skill instead of classifying the prompt")
    route.add_argument(
        "--data-class",
        default="public",
        metavar="CLASS",
        help="sensitivity of the prompt's data: public, internal, personal, regulated … "
        "(default: public)",
    )
    route.add_argument(
        "--policy", metavar="POLICY", help="weighted, cheapest, fastest, diversified"
    )
    route.add_argument("--model", metavar="REF", help="pin a family, family@site or provider:model")
    route.add_argument("--seed", type=int, help="routing seed")
    route.add_argument(
        "--all",
        action="store_true",
        help="explain every fall-back candidate (default: the first 8, then a count)",
    )
    _add_config(route)
    _add_json(route)

    models = commands.add_parser(
        "models",
        help="list the catalog's deployments",
        description="The catalog as a table: deployment, jurisdiction, region, protocol, price "
        "per 1M tokens, context window, the date the price was read, and status. On a narrow "
        "terminal, region and protocol are left out (see --json); --sources adds each price's "
        "source. docs/prices.md has the same table for the bundled catalog.",
    )
    models.add_argument("--skill", help="only families ranked for this skill")
    models.add_argument(
        "--jurisdiction", metavar="CODE", help="only this jurisdiction (CN, SG, US, EU, LOCAL …)"
    )
    models.add_argument(
        "--protocol",
        choices=["openai", "anthropic", "dashscope"],
        help="only deployments spoken to in this wire protocol",
    )
    models.add_argument(
        "--max-price",
        type=float,
        metavar="USD",
        help="only deployments whose output price per 1M tokens is at most USD",
    )
    models.add_argument(
        "--sources",
        action="store_true",
        help="also list where each price comes from, and when it was read",
    )
    _add_config(models)
    _add_json(models)

    doctor = commands.add_parser(
        "doctor",
        help="check keys, reachability, key/region mismatches and retired model names",
        description="Which API-key variables are set (never their values), which deployments "
        "are reachable, DashScope keys bound to another region, and retired model names. "
        "Exits 1 when it finds a problem, including when nothing could answer a call (no key "
        "set and no local server reachable, or no endpoint with a key answering).",
    )
    doctor.add_argument("--no-network", action="store_true", help="skip the reachability probes")
    doctor.add_argument(
        "--timeout",
        type=float,
        default=3.0,
        metavar="S",
        help="probe timeout in seconds (default: 3)",
    )
    _add_config(doctor)
    _add_json(doctor)

    ledger = commands.add_parser(
        "ledger",
        help="show runs and attempts from a SQLite or Postgres ledger",
        description="Totals by jurisdiction, family and outcome from a SQLite or Postgres ledger.",
    )
    ledger.add_argument(
        "--path",
        "--ledger",
        dest="path",
        metavar="PATH|URL",
        help="ledger file or postgresql:// URL (default: the config's ledger, else "
        "~/.hybridstack/ledger.sqlite)",
    )
    ledger.add_argument("--run", metavar="RUN_ID", help="only this run")
    ledger.add_argument(
        "--offline",
        action="store_true",
        help="show the simulated runs (`run --offline`), kept apart in LEDGER.offline.sqlite",
    )
    ledger.add_argument(
        "--by",
        choices=["jurisdiction", "family", "outcome", "deployment", "region"],
        action="append",
        help="group totals by this (repeatable; default: jurisdiction, family and outcome)",
    )
    ledger.add_argument("--attempts", action="store_true", help="list the attempts too")
    _add_config(ledger)
    _add_json(ledger)

    emulator = commands.add_parser(
        "emulator",
        help="start the provider emulator for testing your own app",
        description="Serve simulated deployments in the OpenAI, Anthropic and DashScope wire "
        "formats on loopback, with configurable latency and faults. Without --config, emulates "
        "every deployment of the bundled catalog.",
    )
    emulator.add_argument("--config", metavar="PATH", help="emulator config file (TOML/JSON/YAML)")
    emulator.add_argument(
        "--port", type=int, help="port (default: the config's port, else any free port)"
    )

    smoke = commands.add_parser(
        "smoke",
        help="send one request through each wire protocol on the emulator",
        description="Start the emulator with the bundled catalog and send one request through "
        "each protocol (openai, anthropic, dashscope), printing deployment, region, latency, "
        "tokens and cost.",
    )
    _add_json(smoke)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hybridstack`` console script."""
    from hybridstack.cli.pipes import pipe_safe_stdout

    # `hybridstack … | head` closes the pipe early: not an error, and the work goes on.
    with pipe_safe_stdout():
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        from hybridstack.cli import commands

        try:
            return commands.dispatch(args)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
