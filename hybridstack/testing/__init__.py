"""Testing helpers shipped with hybridstack: offline stacks, the emulator, pytest fixtures.

Use these to test your own agent apps without network or keys: the emulator
(:mod:`hybridstack.emulator`) speaks the OpenAI, Anthropic and DashScope wire formats on
loopback, so the real SDK clients, and hybridstack's retries, breakers and fail-over,
run their production code paths. Only the model text is simulated. This package adds
the pytest side: the plugin and its fixtures (:mod:`hybridstack.testing.pytest_plugin`)
and a generator of fake personal data (:mod:`hybridstack.testing.pii`), and re-exports
what tests use.

    async with offline_stack() as stack:
        stack.emulator.set_outage(["qwen-plus@dashscope-cn"], True)   # a regional outage
        reply = await stack.complete("Terjemahkan ke bahasa Inggris: terima kasih")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hybridstack._lazy import lazy_exports

if TYPE_CHECKING:
    from hybridstack.emulator.catalogs import OFFLINE_API_KEY, emulator_config_for, offline_catalog
    from hybridstack.emulator.config import (
        EmulatedDeployment,
        EmulatorConfig,
        EmulatorCounters,
        FaultProfile,
    )
    from hybridstack.emulator.offline import OfflineStack, offline_stack, offline_stack_sync
    from hybridstack.emulator.server import Emulator

__all__ = [
    "OFFLINE_API_KEY",
    "EmulatedDeployment",
    "Emulator",
    "EmulatorConfig",
    "EmulatorCounters",
    "FaultProfile",
    "OfflineStack",
    "emulator_config_for",
    "offline_catalog",
    "offline_stack",
    "offline_stack_sync",
]

# name -> module. The emulator (aiohttp) loads on first use, so the pytest plugin is cheap.
_EXPORTS = {
    "OFFLINE_API_KEY": "hybridstack.emulator.catalogs",
    "emulator_config_for": "hybridstack.emulator.catalogs",
    "offline_catalog": "hybridstack.emulator.catalogs",
    "EmulatedDeployment": "hybridstack.emulator.config",
    "EmulatorConfig": "hybridstack.emulator.config",
    "EmulatorCounters": "hybridstack.emulator.config",
    "FaultProfile": "hybridstack.emulator.config",
    "Emulator": "hybridstack.emulator.server",
    "OfflineStack": "hybridstack.emulator.offline",
    "offline_stack": "hybridstack.emulator.offline",
    "offline_stack_sync": "hybridstack.emulator.offline",
}

__getattr__ = lazy_exports(__name__, _EXPORTS)
