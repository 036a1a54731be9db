"""Every public exception lives in hybridstack.errors, and its docstring's tree names each."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import hybridstack.errors as errors

ROOT = Path(__file__).resolve().parent.parent / "hybridstack"
_EXCEPTION_BASES = {"Exception", "ValueError", "TypeError", "LookupError", "RuntimeError"}
#: Exceptions that never leave their module's code path (so no caller can catch them).
INTERNAL = {
    # the emulator turns it into an HTTP 400 for the client under test
    "hybridstack/emulator/wire/common.py: BadRequest",
    # the SQL ledger's store turns them into held or dropped, counted rows (LedgerError)
    "hybridstack/ledger/store.py: Unwritable",
    "hybridstack/ledger/store.py: RowRejected",
    # the executor's control flow within one call (a skipped slot, the deadline's edge)
    "hybridstack/resilience/call.py: Skipped",
    "hybridstack/resilience/call.py: DeadlineHit",
}


def _exception_classes_outside_errors() -> list[str]:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        if path == ROOT / "errors.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef) or node.name.startswith("_"):
                continue
            bases = {
                b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases
            }
            if bases & _EXCEPTION_BASES or any(b.endswith("Error") for b in bases):
                found.append(f"{path.relative_to(ROOT.parent)}: {node.name}")
    return found


def test_no_public_exception_is_defined_outside_errors() -> None:
    assert [c for c in _exception_classes_outside_errors() if c not in INTERNAL] == []


def test_every_exception_is_in_the_tree_docstring() -> None:
    tree = errors.__doc__ or ""
    classes = [
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, errors.HybridStackError) and obj.__module__ == errors.__name__
    ]
    assert len(classes) > 30
    missing = [cls.__name__ for cls in classes if not re.search(rf"\b{cls.__name__}\b", tree)]
    assert missing == []


def test_every_exception_is_a_hybridstack_error() -> None:
    for _, obj in inspect.getmembers(errors, inspect.isclass):
        if issubclass(obj, BaseException) and obj.__module__ == errors.__name__:
            assert issubclass(obj, errors.HybridStackError), obj


def test_the_older_homes_still_name_the_same_classes() -> None:
    from hybridstack.graph import ThreadBusyError
    from hybridstack.resilience import DeploymentSkippedError
    from hybridstack.routing import UnknownDataClassError
    from hybridstack.testing.emulator import EmulatorConfigError

    assert ThreadBusyError is errors.ThreadBusyError
    assert DeploymentSkippedError is errors.DeploymentSkippedError
    assert UnknownDataClassError is errors.UnknownDataClassError
    assert EmulatorConfigError is errors.EmulatorConfigError
    assert issubclass(errors.EmulatorConfigError, errors.ConfigurationError)
