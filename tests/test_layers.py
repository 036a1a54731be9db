"""The layers hold: every import in hybridstack/ points down, and no import forms a cycle.

Imports are read with :mod:`ast`, not by importing anything, so the check sees every
kind: module-level imports, imports inside functions (the lazy ones that keep
``import hybridstack`` fast) and ``if TYPE_CHECKING:`` imports (which may point only
down too: a type that needs an upward import is a seam in the wrong place).

The table below is the layering; docs/index.md ("The layers") shows the same table
to readers. Change both together.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "hybridstack"


@dataclass(frozen=True)
class Layer:
    """Modules (by dotted prefix; the longest prefix wins) that share one place."""

    name: str
    prefixes: tuple[str, ...]
    #: A side layer is imported only by the layers that name it in ``sees``.
    side: bool = False
    #: For a side layer: the highest main layer it may import (and everything below).
    up_to: str = ""
    #: Side layers this layer may import.
    sees: tuple[str, ...] = ()


#: The main layers, lowest first: a module may import its own layer and the ones above
#: it in this list (which are lower in the stack), never one below it.
MAIN: tuple[Layer, ...] = (
    Layer("errors", ("hybridstack.errors",)),
    Layer(
        "base",
        (
            "hybridstack._secrets",
            "hybridstack._http",
            "hybridstack._lazy",
            "hybridstack._sync",
            "hybridstack._token_estimate",
            "hybridstack._validation",
            "hybridstack._postgres",
            "hybridstack.tokens",
        ),
    ),
    Layer("types", ("hybridstack.types",)),
    Layer("catalog", ("hybridstack.catalog",)),
    Layer("ledger", ("hybridstack.ledger",)),
    Layer("plan", ("hybridstack.plan",)),
    Layer("providers", ("hybridstack.providers",)),
    Layer("resilience", ("hybridstack.resilience",)),
    Layer("routing", ("hybridstack.routing",)),
    # OpenTelemetry spans of Stack calls: reads plans, attempts and errors, sends nothing.
    Layer("telemetry", ("hybridstack.telemetry",)),
    # The facade and its private parts: request building, the skill of a call, how a
    # call runs, the no-provider explanation, start-up and shut-down.
    Layer(
        "stack",
        (
            "hybridstack.stack",
            "hybridstack._requests",
            "hybridstack._call_skill",
            "hybridstack._stack_calls",
            "hybridstack._no_provider",
            "hybridstack._stack_lifecycle",
            "hybridstack.config",
        ),
    ),
    Layer("graph", ("hybridstack.graph",)),
    # many agent tasks on one process or a Ray actor pool, each through a graph Agent
    Layer("batch", ("hybridstack.batch",), sees=("emulator", "offline")),
    Layer("cli", ("hybridstack.cli", "hybridstack.__main__"), sees=("emulator", "offline")),
    # The package's front door re-exports the public names of every layer.
    Layer("front", ("hybridstack",), sees=("emulator", "offline", "testing")),
)

#: Layers at the side: a simulated world for tests, demos and the CLI.
SIDE: tuple[Layer, ...] = (
    # The emulator server, its wire formats and faults: standalone but for the catalog.
    Layer("emulator", ("hybridstack.emulator",), side=True, up_to="catalog"),
    # Stacks over an emulator (the offline default of the CLI and of tests).
    Layer(
        "offline",
        ("hybridstack.emulator.offline",),
        side=True,
        up_to="stack",
        sees=("emulator",),
    ),
    # pytest helpers for users' own tests: fixtures, the plugin, the PII generator.
    Layer(
        "testing",
        ("hybridstack.testing",),
        side=True,
        up_to="stack",
        sees=("emulator", "offline"),
    ),
)

LAYERS = {layer.name: layer for layer in (*MAIN, *SIDE)}
_RANK = {layer.name: index for index, layer in enumerate(MAIN)}

#: Known upward imports on main, to shrink to empty: (importer, imported module).
#: An entry that no longer occurs fails the test too, so the list only ever shrinks.
KNOWN_VIOLATIONS: frozenset[tuple[str, str]] = frozenset()

#: Known import cycles (each as the sorted tuple of its modules), to shrink to empty.
KNOWN_CYCLES: frozenset[tuple[str, ...]] = frozenset()


def layer_of(module: str) -> Layer:
    best: tuple[int, Layer] | None = None
    for layer in LAYERS.values():
        for prefix in layer.prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (
                best is None or len(prefix) > best[0]
            ):
                best = (len(prefix), layer)
    assert best is not None, f"{module} is in no layer: add it to the table in {__file__}"
    return best[1]


def may_import(importer: Layer, imported: Layer) -> bool:
    if importer is imported:
        return True
    if imported.side:
        return imported.name in importer.sees
    limit = importer.up_to if importer.side else importer.name
    return _RANK[imported.name] < _RANK[limit] or (
        importer.side and imported.name == importer.up_to
    )


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int
    #: ``module``: runs at import time; ``lazy``: inside a function; ``typing``: only
    #: under ``if TYPE_CHECKING:``.
    when: str


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(name: str, names: list[str]) -> list[str]:
    # ``from pkg import sub`` imports the submodule pkg.sub when there is one.
    found = [f"{name}.{n}" for n in names if f"{name}.{n}" in MODULES]
    return found if len(found) == len(names) else [*found, name]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(module: str) -> list[Import]:
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, when: str) -> None:
        for child in ast.iter_child_nodes(node):
            here = when
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                here = "lazy" if when == "module" else when
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    visit_one(stmt, "typing")
                for stmt in child.orelse:
                    visit_one(stmt, when)
                continue
            visit_one(child, here)

    def visit_one(node: ast.AST, when: str) -> None:
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                name = ".".join([*base, *([node.module] if node.module else [])])
            else:
                name = node.module or ""
            names = [alias.name for alias in node.names]
            # ``__version__`` is a constant of the front door that imports nothing.
            if name == "hybridstack" and names == ["__version__"]:
                return
            targets = _resolve(name, names)
        for target in targets:
            if target == "hybridstack" or target.startswith("hybridstack."):
                found.append(Import(module, target, getattr(node, "lineno", 0), when))
        if not isinstance(node, ast.Import | ast.ImportFrom):
            visit(node, when)

    visit(tree, "module")
    return found


ALL_IMPORTS: list[Import] = [imp for module in MODULES for imp in imports_of(module)]


def upward_imports() -> list[Import]:
    return [
        imp for imp in ALL_IMPORTS if not may_import(layer_of(imp.importer), layer_of(imp.imported))
    ]


def test_every_module_has_a_layer() -> None:
    unplaced = []
    for module in MODULES:
        try:
            layer_of(module)
        except AssertionError:
            unplaced.append(module)
    assert unplaced == []


def test_no_import_points_up_the_layers() -> None:
    found = upward_imports()
    new = [
        f"{imp.importer}:{imp.line} imports {imp.imported} ({imp.when}): "
        f"{layer_of(imp.importer).name} may not import {layer_of(imp.imported).name}"
        for imp in found
        if (imp.importer, imp.imported) not in KNOWN_VIOLATIONS
    ]
    assert new == [], "imports pointing up the layers:\n" + "\n".join(new)


def test_known_violations_still_exist() -> None:
    """The allow-list only shrinks: a fixed violation must leave it."""
    present = {(imp.importer, imp.imported) for imp in upward_imports()}
    stale = sorted(KNOWN_VIOLATIONS - present)
    assert stale == [], f"fixed, remove from KNOWN_VIOLATIONS in {__file__}: {stale}"


def _cycles(edges: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[tuple[str, ...]] = []
    counter = 0

    def connect(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(tuple(sorted(component)))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return found


def _edges(kinds: set[str]) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for imp in ALL_IMPORTS:
        if imp.when in kinds and imp.imported != imp.importer:
            # A package's __init__ re-exporting its submodules is not a cycle with them.
            if imp.importer.startswith(imp.imported + "."):
                continue
            edges.setdefault(imp.importer, set()).add(imp.imported)
    return edges


@pytest.mark.parametrize("kinds", [{"module"}, {"module", "lazy"}], ids=["eager", "with-lazy"])
def test_no_import_cycle(kinds: set[str]) -> None:
    cycles = [c for c in _cycles(_edges(kinds)) if c not in KNOWN_CYCLES]
    assert cycles == [], "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_table_catches_an_upward_import() -> None:
    """The checker itself: an import from routing into graph is refused, one down is not."""
    assert not may_import(LAYERS["routing"], LAYERS["graph"])
    assert may_import(LAYERS["graph"], LAYERS["routing"])
    assert not may_import(LAYERS["stack"], LAYERS["emulator"])
    assert may_import(LAYERS["cli"], LAYERS["emulator"])
    assert not may_import(LAYERS["cli"], LAYERS["testing"])
    assert not may_import(LAYERS["emulator"], LAYERS["providers"])
    assert may_import(LAYERS["offline"], LAYERS["stack"])
    assert not may_import(LAYERS["testing"], LAYERS["graph"])
