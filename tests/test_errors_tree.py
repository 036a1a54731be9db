"""Every public exception lives in hybridstack.errors, and its docstring's tree names each."""

from __future__ import annotations

import ast
import inspect
import pickle
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
        if path.is_relative_to(ROOT / "errors"):  # the package and its family submodules
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


def test_every_exception_names_hybridstack_errors_as_its_home() -> None:
    """Defined in private submodules by family, each class says ``hybridstack.errors``:
    tracebacks and docs name the public home, and pickles stay as they were."""
    exported = [getattr(errors, name) for name in errors.__all__]
    classes = [obj for obj in exported if isinstance(obj, type)]
    assert len(classes) > 30
    assert [c.__name__ for c in classes if c.__module__ != "hybridstack.errors"] == []


#: Pickles written by hybridstack when errors.py was one file (protocol 4): they load
#: into the same classes with the same fields, and today's pickles are byte-identical.
_OLD_PICKLES = {
    "RetryableError": (
        b"\x80\x04\x95\xd0\x00\x00\x00\x00\x00\x00\x00\x8c\x12hybridstack.errors\x94"
        b"\x8c\x17_rebuild_provider_error\x94\x93\x94h\x00\x8c\x0eRetryableError\x94\x93\x94"
        b"\x8c\tslow down\x94}\x94(\x8c\x07message\x94h\x05\x8c\ndeployment\x94\x8c\x02d1\x94"
        b"\x8c\x06status\x94M\xad\x01\x8c\x04code\x94N\x8c\nrequest_id\x94N\x8c\x0bretry_after"
        b"\x94G@\x00\x00\x00\x00\x00\x00\x00\x8c\x08provider\x94N\x8c\x0cpartial_text\x94"
        b"\x8c\x00\x94u\x87\x94R\x94."
    ),
    "LedgerError": (
        b"\x80\x04\x95T\x00\x00\x00\x00\x00\x00\x00\x8c\x12hybridstack.errors\x94\x8c\x0b"
        b"LedgerError\x94\x93\x94\x8c\tdisk full\x94\x85\x94R\x94}\x94(\x8c\x04path\x94\x8c"
        b"\x02/x\x94\x8c\tunwritten\x94)ub."
    ),
    "PlanRejectedError": (
        b"\x80\x04\x955\x00\x00\x00\x00\x00\x00\x00\x8c\x12hybridstack.errors\x94\x8c\x11"
        b"PlanRejectedError\x94\x93\x94\x8c\x02no\x94\x85\x94R\x94."
    ),
}


def test_pickles_from_the_single_file_errors_module_still_load() -> None:
    made = {
        "RetryableError": errors.RetryableError(
            "slow down", deployment="d1", status=429, retry_after=2.0
        ),
        "LedgerError": errors.LedgerError("disk full", path="/x"),
        "PlanRejectedError": errors.PlanRejectedError("no"),
    }
    for name, old in _OLD_PICKLES.items():
        # Dumped first: reading ``__dict__`` creates it, and a pickle then carries it.
        assert pickle.dumps(made[name], protocol=4) == old, name
        loaded = pickle.loads(old)
        assert type(loaded) is getattr(errors, name)
        assert str(loaded) == str(made[name])
        assert loaded.__dict__ == made[name].__dict__
