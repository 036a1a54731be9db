"""``python -m hybridstack.emulator --config FILE [--port N]``: serve until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import ValidationError

from hybridstack.emulator.config import EmulatedDeployment, EmulatorConfig
from hybridstack.emulator.server import Emulator
from hybridstack.errors import EmulatorConfigError


def _default_config() -> EmulatorConfig:
    return EmulatorConfig(
        deployments=[
            EmulatedDeployment(name="gpt-4o-mini@openai", protocol="openai", model="gpt-4o-mini"),
            EmulatedDeployment(
                name="claude-haiku@anthropic", protocol="anthropic", model="claude-haiku-4-5"
            ),
            EmulatedDeployment(
                name="qwen-plus@dashscope-sg", protocol="dashscope", model="qwen-plus"
            ),
        ]
    )


async def _serve(config: EmulatorConfig, ready: Callable[[Emulator], None]) -> None:
    emulator = Emulator(config)
    await emulator.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows
            loop.add_signal_handler(sig, stop.set)
    try:
        ready(emulator)
        await stop.wait()
    finally:
        await emulator.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hybridstack.emulator --config FILE [--port N]``."""
    parser = argparse.ArgumentParser(
        prog="python -m hybridstack.emulator",
        description="Serve emulated LLM deployments on loopback until SIGINT/SIGTERM.",
    )
    parser.add_argument(
        "--config", type=Path, help="TOML/JSON/YAML file (default: 3 demo deployments)"
    )
    parser.add_argument("--port", type=int, help="port to bind (default: from config, else free)")
    parser.add_argument("--host", help="address to bind (loopback unless the config allows more)")
    parser.add_argument("--seed", type=int, help="fault RNG seed")
    args = parser.parse_args(argv)
    try:
        config = EmulatorConfig.from_file(args.config) if args.config else _default_config()
        overrides = {
            k: v
            for k, v in (("port", args.port), ("host", args.host), ("seed", args.seed))
            if v is not None
        }
        if overrides:
            config = EmulatorConfig.model_validate({**config.model_dump(), **overrides})
    except (EmulatorConfigError, ValidationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def ready(emulator: Emulator) -> None:
        n = len(config.deployments)
        print(f"hybridstack emulator listening on {emulator.url} ({n} deployments)", flush=True)
        for spec in config.deployments:
            print(f"  {spec.name} [{spec.protocol}] {emulator.base_url(spec.name)}", flush=True)

    try:
        asyncio.run(_serve(config, ready))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"error: cannot serve: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
