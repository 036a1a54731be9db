"""pytest fixtures that start the provider emulator for one test and stop it afterwards.

Enable with ``pytest_plugins = ["hybridstack.testing.pytest_plugin"]`` (hybridstack's own
``tests/conftest.py`` does). Fixtures:

* ``emulator_factory`` (async): ``emu = await emulator_factory(spec, **config_fields)``
  where ``spec`` is an :class:`EmulatorConfig` or a list of :class:`EmulatedDeployment`
  (or dicts of their fields); every emulator made is stopped at teardown.
* ``emulator`` (async): a started emulator with :data:`DEFAULT_DEPLOYMENTS`, one per protocol.
* ``sync_emulator_factory``: the same for sync tests; each emulator runs on its own thread.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest
import pytest_asyncio

from hybridstack.emulator.config import EmulatedDeployment, EmulatorConfig
from hybridstack.emulator.server import Emulator

EmulatorSpec = EmulatorConfig | Sequence[EmulatedDeployment | Mapping[str, Any]]

#: One deployment per wire protocol, used by the ``emulator`` fixture.
DEFAULT_DEPLOYMENTS: tuple[EmulatedDeployment, ...] = (
    EmulatedDeployment(name="openai-emu", protocol="openai", model="gpt-4o-mini"),
    EmulatedDeployment(name="anthropic-emu", protocol="anthropic", model="claude-haiku-4-5"),
    EmulatedDeployment(name="dashscope-emu", protocol="dashscope", model="qwen-plus"),
)


def build_config(spec: EmulatorSpec = (), **config_fields: Any) -> EmulatorConfig:
    """An :class:`EmulatorConfig` from a config or a list of deployments plus overrides."""
    if isinstance(spec, EmulatorConfig):
        if not config_fields:
            return spec
        return EmulatorConfig.model_validate({**spec.model_dump(), **config_fields})
    deployments = [
        d if isinstance(d, EmulatedDeployment) else EmulatedDeployment.model_validate(d)
        for d in spec
    ]
    return EmulatorConfig(deployments=deployments, **config_fields)


@pytest_asyncio.fixture
async def emulator_factory() -> AsyncIterator[Callable[..., Awaitable[Emulator]]]:
    """Start emulators on the test's event loop; all are stopped at teardown."""
    started: list[Emulator] = []

    async def make(spec: EmulatorSpec = (), /, **config_fields: Any) -> Emulator:
        emulator = Emulator(build_config(spec, **config_fields))
        await emulator.start()
        started.append(emulator)
        return emulator

    yield make
    for emulator in reversed(started):
        await emulator.stop()


@pytest_asyncio.fixture
async def emulator(emulator_factory: Callable[..., Awaitable[Emulator]]) -> Emulator:
    """A started emulator serving :data:`DEFAULT_DEPLOYMENTS`."""
    return await emulator_factory(DEFAULT_DEPLOYMENTS)


@pytest.fixture
def sync_emulator_factory() -> Iterator[Callable[..., Emulator]]:
    """Start emulators on background threads (for sync tests); all are closed at teardown."""
    started: list[Emulator] = []

    def make(spec: EmulatorSpec = (), /, **config_fields: Any) -> Emulator:
        emulator = Emulator(build_config(spec, **config_fields))
        emulator.__enter__()
        started.append(emulator)
        return emulator

    yield make
    for emulator in reversed(started):
        emulator.close()
