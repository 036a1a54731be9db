"""docs/notebooks/quickstart.ipynb runs top to bottom on a fresh kernel and shows what it says.

The notebook is executed with nbclient on a kernel started from this interpreter (a
kernelspec written to a temporary directory, so it works in a fresh venv where only
``pip install -e ".[test]"`` was run and ignores any ``python3`` kernel installed
elsewhere). The kernel gets ``MPLBACKEND=Agg``, no provider keys, a temporary IPython
directory, and, through a setup cell run before the notebook's own cells, a socket
guard that refuses every connection that is not to loopback: the conftest guard patches
only this process, and the kernel is another one. The notebook talks to its own emulator
on 127.0.0.1. ZMQ traffic between this process and the kernel is loopback too.

The checks read the cells' outputs, found by their tags (``metadata.tags``), so editing
the prose or adding cells does not break them, but losing a fact the notebook is meant
to show does.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parent.parent / "docs" / "notebooks" / "quickstart.ipynb"
KERNEL_NAME = "hybridstack-notebook-test"
CELL_TIMEOUT_S = 60
PLOT_EXTRA_HINT = 'pip install "hybridstack[plot]"'
HAVE_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

# Run in the kernel before the notebook: only loopback connections, and no names left behind.
NETWORK_GUARD = """
def _loopback_only():
    import ipaddress
    import socket

    def loopback(host):
        if host in ("localhost", "ip6-localhost"):
            return True
        try:
            return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
        except ValueError:
            return False

    def check(sock, address):
        if sock.family == getattr(socket, "AF_UNIX", None):
            return
        host = address[0] if isinstance(address, tuple) else address
        if not loopback(host):
            raise OSError(f"the notebook test allows loopback connections only, not {address!r}")

    connect, connect_ex, getaddrinfo = (
        socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo
    )

    def guarded_connect(self, address):
        check(self, address)
        return connect(self, address)

    def guarded_connect_ex(self, address):
        check(self, address)
        return connect_ex(self, address)

    def guarded_getaddrinfo(host, *args, **kwargs):
        if host is not None and not loopback(host if isinstance(host, str) else str(host)):
            raise OSError(f"the notebook test may not resolve {host!r}")
        return getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = guarded_connect
    socket.socket.connect_ex = guarded_connect_ex
    socket.getaddrinfo = guarded_getaddrinfo


_loopback_only()
del _loopback_only
"""

# Run in the kernel before the notebook to simulate an install without the plot extra.
HIDE_MATPLOTLIB = """
def _hide_matplotlib():
    import sys

    class NotInstalled:
        def find_spec(self, name, path=None, target=None):
            if name == "matplotlib" or name.startswith("matplotlib."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    assert "matplotlib" not in sys.modules, "matplotlib was imported before the notebook ran"
    sys.meta_path.insert(0, NotInstalled())


_hide_matplotlib()
del _hide_matplotlib
"""


def _kernel_env(ipython_dir: Path) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        # Like conftest's _no_real_keys (which has not run yet for a module fixture).
        if not name.endswith(("_API_KEY", "_SECRET_KEY"))
        and name not in ("HYBRIDSTACK_CONFIG", "HYBRIDSTACK_CHECKPOINTS", "MPLBACKEND")
    }
    env["MPLBACKEND"] = "Agg"
    env["IPYTHONDIR"] = str(ipython_dir)
    return env


def execute_notebook(workdir: Path, *, hide_matplotlib: bool = False) -> nbformat.NotebookNode:
    """Run the notebook on a fresh kernel of this interpreter and return it with outputs."""
    kernels = workdir / "kernels"
    (kernels / KERNEL_NAME).mkdir(parents=True)
    (kernels / KERNEL_NAME / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [
                    sys.executable,
                    "-m",
                    "ipykernel_launcher",
                    "-f",
                    "{connection_file}",
                    "--InteractiveShell.colors=nocolor",  # plain tracebacks in failures
                ],
                "display_name": "hybridstack test kernel",
                "language": "python",
            }
        ),
        encoding="utf-8",
    )
    nb = nbformat.read(NOTEBOOK, as_version=4)
    setup = NETWORK_GUARD + (HIDE_MATPLOTLIB if hide_matplotlib else "")
    nb.cells.insert(0, nbformat.v4.new_code_cell(setup, metadata={"tags": ["test-setup"]}))
    manager = KernelManager(
        kernel_name=KERNEL_NAME,
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]),
        connection_file=str(workdir / "connection.json"),
    )
    client = NotebookClient(
        nb,
        km=manager,
        timeout=CELL_TIMEOUT_S,
        startup_timeout=60,
        allow_errors=False,  # a failing cell raises CellExecutionError with its traceback
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute(env=_kernel_env(workdir / "ipython"))
    return nb


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> nbformat.NotebookNode:
    return execute_notebook(tmp_path_factory.mktemp("notebook"))


@pytest.fixture(scope="module")
def executed_without_matplotlib(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> nbformat.NotebookNode:
    if not HAVE_MATPLOTLIB:  # e.g. CI, where only the test extra is installed
        return request.getfixturevalue("executed")
    return execute_notebook(tmp_path_factory.mktemp("notebook-no-mpl"), hide_matplotlib=True)


# --- reading outputs ------------------------------------------------------------------


def cell(nb: nbformat.NotebookNode, tag: str) -> Any:
    found = [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]
    assert len(found) == 1, f"expected one cell tagged {tag!r}, found {len(found)}"
    return found[0]


def stdout(nb: nbformat.NotebookNode, tag: str) -> str:
    return "".join(
        o["text"]
        for o in cell(nb, tag).outputs
        if o["output_type"] == "stream" and o["name"] == "stdout"
    )


def rich(nb: nbformat.NotebookNode, tag: str, mime: str) -> list[str]:
    return [
        o["data"][mime]
        for o in cell(nb, tag).outputs
        if o["output_type"] in ("execute_result", "display_data") and mime in o["data"]
    ]


def plan_section(explanation: str) -> list[tuple[str, str]]:
    """(deployment, jurisdiction) of each candidate in the first plan of an explain() text."""
    lines = explanation.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("try in order ("))
    expected = int(re.match(r"try in order \((\d+)\):", lines[start])[1])
    candidates = []
    for line in lines[start + 1 :]:
        if not line.startswith(" "):
            break  # "excluded (…):" or the end of this plan
        match = re.match(r"\s+\d+\. (\S+)\s+\S+ \(([A-Z]+)\)", line)
        if match:
            candidates.append((match[1], match[2]))
    assert len(candidates) == expected, f"parsed {len(candidates)} of {expected} candidates"
    return candidates


# --- the saved notebook ---------------------------------------------------------------


def test_saved_notebook_has_no_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.outputs]
    assert not dirty, f"clear the outputs of cells {dirty} before saving"
    assert all(c.execution_count is None for c in code), "clear the execution counts too"
    assert nb.metadata["kernelspec"]["name"] == "python3"
    source = "\n".join(c.source for c in code)
    assert "asyncio.run(" not in source, "use top-level await: Jupyter already runs a loop"
    assert 'matplotlib.use("Agg")' not in source, "the backend is the test kernel's business"


# --- the executed notebook ------------------------------------------------------------


def test_every_cell_runs_cleanly(executed: nbformat.NotebookNode) -> None:
    for index, c in enumerate(executed.cells):
        if c.cell_type != "code":
            continue
        assert c.execution_count is not None, f"cell {index} did not run"
        for output in c.outputs:
            assert output["output_type"] != "error", f"cell {index}: {output.get('ename')}"
            if output["output_type"] == "stream":
                assert output["name"] != "stderr", (
                    f"cell {index} wrote to stderr:\n{output['text']}"
                )


def test_prompts_route_by_skill(executed: nbformat.NotebookNode) -> None:
    text = stdout(executed, "route-skills")
    skills = re.findall(r"^Plan for skill '(\w+)', data class 'public'", text, re.MULTILINE)
    assert skills == ["code", "multilingual", "reasoning"]
    # the helper cut each plan short and said so
    assert len(re.findall(r"^  … \d+ more candidates", text, re.MULTILINE)) == 3


def test_personal_data_stays_in_eu_and_local(executed: nbformat.NotebookNode) -> None:
    text = stdout(executed, "route-personal")
    assert "data class 'personal' (allowed: EU, LOCAL)" in text
    jurisdictions = {j for _, j in plan_section(text)}
    assert jurisdictions == {"EU", "LOCAL"}
    assert "jurisdictions this plan can use: ['EU', 'LOCAL']" in text
    # the rest of the world is excluded, with the reason
    for j in ("CN", "SG", "US"):
        assert f"jurisdiction {j} not allowed for data class 'personal'" in text
    # and the real call went there too
    answered = re.search(
        r"personal: answered by \S+ in \S+ \((\w+)\)", stdout(executed, "complete")
    )
    assert answered is not None
    assert answered[1] in ("EU", "LOCAL")


def test_agent_result_renders_as_html(executed: nbformat.NotebookNode) -> None:
    run = stdout(executed, "agent-run")
    assert run.startswith("completed")
    rows = re.findall(r"^  (s\d+) (\w+)\s+(\w+)\s+(\S+@\S+) \((\w+)\)$", run, re.MULTILINE)
    assert [(sid, skill, status) for sid, skill, status, _, _ in rows] == [
        ("s1", "code", "done"),
        ("s2", "reasoning", "done"),
        ("s3", "multilingual", "done"),
    ]
    (page,) = rich(executed, "agent-result", "text/html")  # the last expression's display
    assert 'class="hybridstack-run"' in page
    assert "<table" in page
    assert ">completed<" in page
    for sid, _, _, deployment, _ in rows:
        assert f"<b>{sid}</b>" in page
        assert deployment in page


def test_plot_shows_latency_and_cost_by_jurisdiction(executed: nbformat.NotebookNode) -> None:
    images = rich(executed, "plot", "image/png")
    if not HAVE_MATPLOTLIB:
        assert not images
        assert PLOT_EXTRA_HINT in stdout(executed, "plot")
        return
    assert len(images) == 1, "one chart, drawn once"
    assert base64.b64decode(images[0]).startswith(b"\x89PNG\r\n\x1a\n")
    assert PLOT_EXTRA_HINT not in stdout(executed, "plot")


def test_plot_cell_explains_a_missing_plot_extra(
    executed_without_matplotlib: nbformat.NotebookNode,
) -> None:
    # the whole notebook still runs (nbclient raises on any failing cell) …
    assert not rich(executed_without_matplotlib, "plot", "image/png")
    # … and the plot cell says what to install
    assert PLOT_EXTRA_HINT in stdout(executed_without_matplotlib, "plot")


def test_outage_fails_over_out_of_the_jurisdiction(executed: nbformat.NotebookNode) -> None:
    text = stdout(executed, "outage")
    calls = [line for line in text.splitlines() if " ✓" in line or " ✗" in line]
    assert len(calls) == 10
    for line in calls:
        hops = line.split(" → ")
        *failed, answered = hops
        assert answered.endswith(" ✓"), line
        assert "(CN)" not in answered, line
        assert all("(CN) ✗" in hop for hop in failed), line
    summary = re.search(
        r"(\d+) of (\d+) calls failed over; (\d+) answered, (\d+) of them from CN", text
    )
    assert summary is not None
    failed_over, total, answered, from_cn = map(int, summary.groups())
    assert failed_over >= 1
    assert failed_over == sum(" ✗" in line for line in calls)
    assert (total, answered, from_cn) == (10, 10, 0)


def test_outage_opens_breakers(executed: nbformat.NotebookNode) -> None:
    text = stdout(executed, "breakers")
    rows = re.findall(r"^(\S+@\S+)\s+(closed|open|half_open)\s+(\d+)", text, re.MULTILINE)
    assert rows, text
    assert all(re.search(r"@\S*-cn\b", name) for name, _, _ in rows), "only CN failed"
    opened = {name for name, state, _ in rows if state == "open"}
    assert opened
    moved = re.findall(r"^\s+\d+ of \d+\s+(\S+): breaker open: moved last$", text, re.MULTILINE)
    assert set(moved) == opened
