"""The emulator under its older name: re-exports :mod:`hybridstack.emulator` for tests
(``python -m hybridstack.testing.emulator`` still serves, as ``python -m hybridstack.emulator``)."""

from __future__ import annotations

import sys

from hybridstack.emulator.__main__ import main
from hybridstack.emulator.config import (
    OUTCOMES,
    AttemptRecord,
    EmulatedDeployment,
    EmulatorConfig,
    EmulatorCounters,
    FaultProfile,
)
from hybridstack.emulator.server import Emulator
from hybridstack.errors import EmulatorConfigError

__all__ = [
    "OUTCOMES",
    "AttemptRecord",
    "EmulatedDeployment",
    "Emulator",
    "EmulatorConfig",
    "EmulatorConfigError",
    "EmulatorCounters",
    "FaultProfile",
    "main",
]

if __name__ == "__main__":
    sys.exit(main())
