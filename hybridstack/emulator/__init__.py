"""The provider emulator: a loopback HTTP server that impersonates many LLM deployments.

One :class:`Emulator` serves any number of named deployments, each speaking one wire
protocol (``openai`` chat completions, ``anthropic`` messages or ``dashscope`` native
generation) under its own path prefix ``/d/{quoted name}``, so the real provider SDKs
can be pointed at it with :meth:`Emulator.base_url`. Replies are deterministic
simulated text (or tool calls, or JSON matching a requested schema); faults (rate
limits, 5xx, hangs, resets, malformed bodies, cut streams, refusals, context limits,
outages, bad keys, exhausted quota) are drawn from a seeded RNG or scripted exactly.

Run it in-process (``async with Emulator(cfg)`` or, from sync code, ``with
Emulator(cfg)`` on a background thread) or as a CLI::

    python -m hybridstack.emulator --config emulator.toml [--port 8400]

Only aiohttp, pydantic and the standard library are imported (and the catalog, to
emulate its deployments): the emulator is a server and never needs a provider SDK.
Stacks over an emulator are :mod:`hybridstack.emulator.offline`; pytest helpers are
:mod:`hybridstack.testing`.

=========================  =====================================================
module                     its one job
=========================  =====================================================
``config``                 deployments, fault profiles, config files, counters
``state``                  the run-time state of one emulated deployment
``server``                 the server's lifecycle and thread-safe controls
``handling``               answering one request: outcome, then reply or fault
``synthesis``              simulated replies: text, tool calls, schema JSON
``schema_examples``        an example value for a JSON schema
``wire.*``                 the OpenAI, Anthropic and DashScope wire formats
``catalogs``               emulator configs and catalogs for a catalog's deployments
``offline``                stacks over an in-process emulator (the offline default)
``__main__``               ``python -m hybridstack.emulator``
=========================  =====================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hybridstack._lazy import lazy_exports
from hybridstack.errors import EmulatorConfigError

if TYPE_CHECKING:
    from hybridstack.emulator.catalogs import OFFLINE_API_KEY, emulator_config_for, offline_catalog
    from hybridstack.emulator.config import (
        OUTCOMES,
        AttemptRecord,
        EmulatedDeployment,
        EmulatorConfig,
        EmulatorCounters,
        FaultProfile,
    )
    from hybridstack.emulator.server import Emulator

__all__ = [
    "OFFLINE_API_KEY",
    "OUTCOMES",
    "AttemptRecord",
    "EmulatedDeployment",
    "Emulator",
    "EmulatorConfig",
    "EmulatorConfigError",
    "EmulatorCounters",
    "FaultProfile",
    "emulator_config_for",
    "main",
    "offline_catalog",
]

# name -> submodule; the server (aiohttp) loads on first use.
_EXPORTS = {
    "OFFLINE_API_KEY": "hybridstack.emulator.catalogs",
    "emulator_config_for": "hybridstack.emulator.catalogs",
    "offline_catalog": "hybridstack.emulator.catalogs",
    "OUTCOMES": "hybridstack.emulator.config",
    "AttemptRecord": "hybridstack.emulator.config",
    "EmulatedDeployment": "hybridstack.emulator.config",
    "EmulatorConfig": "hybridstack.emulator.config",
    "EmulatorCounters": "hybridstack.emulator.config",
    "FaultProfile": "hybridstack.emulator.config",
    "Emulator": "hybridstack.emulator.server",
    "main": "hybridstack.emulator.__main__",
}

__getattr__ = lazy_exports(__name__, _EXPORTS)
