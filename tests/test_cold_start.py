"""Cold start: the first call of each protocol must not stall the event loop, and the
time an SDK takes to import is never recorded as an attempt (let alone a timeout).

The SDKs are already imported in the test process, so each scenario runs in a fresh
interpreter. Nothing here asserts a duration: the event loop is judged by whether a
ticker task ran *while* an SDK module was still executing its import, which the old
code (the import on the loop's thread) made impossible.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from hybridstack.errors import ConfigurationError
from hybridstack.providers import _ADAPTERS, load_adapter

#: Shared by the subprocess scripts: a ticker that counts the ticks during which a
#: watched SDK module was mid-import, and a finder noting on which thread each
#: SDK module was imported.
_PRELUDE = """
import asyncio, json, sys, threading, time
from importlib.abc import MetaPathFinder

SDKS = ("openai", "anthropic", "dashscope")
WATCHED = SDKS + ("httpx2", "anyio", "hybridstack.providers.")
MAIN = threading.main_thread()
on_loop_thread = []

class Watch(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.startswith(WATCHED) and threading.current_thread() is MAIN:
            on_loop_thread.append(name)
        return None  # only watching: the normal finders import the module

sys.meta_path.insert(0, Watch())

def importing():
    for name in SDKS:
        module = sys.modules.get(name)
        spec = getattr(module, "__spec__", None)
        if module is not None and getattr(spec, "_initializing", False):
            return name
    return None

class Ticker:
    def __init__(self):
        self.ticks = 0
        self.during_import = 0
        self.max_gap = 0.0
        self._stop = False

    async def run(self):
        last = time.perf_counter()
        while not self._stop:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            self.max_gap = max(self.max_gap, now - last)
            last = now
            self.ticks += 1
            if importing():
                self.during_import += 1

    def __enter__(self):
        self.task = asyncio.get_running_loop().create_task(self.run())
        return self

    def __exit__(self, *exc):
        self._stop = True
"""

_FIRST_CALLS = """
from hybridstack.testing import offline_stack

DEPLOYMENTS = {
    "openai": "gpt-4o-mini@openai-us",
    "anthropic": "claude-haiku-4.5@anthropic-us",
    "dashscope": "qwen-plus@dashscope-cn",
}

async def main():
    report = {}
    async with offline_stack() as stack:
        for protocol, deployment in DEPLOYMENTS.items():
            assert protocol not in sys.modules, f"{protocol} imported before its first call"
            with Ticker() as ticker:
                await asyncio.sleep(0.02)
                on_loop_thread.clear()
                if STREAM:
                    async for event in stack.stream("hi", model=deployment, skill="general"):
                        pass
                else:
                    await stack.complete("hi", model=deployment, skill="general")
                await asyncio.sleep(0.02)
            await ticker.task
            report[protocol] = {
                "ticks_during_import": ticker.during_import,
                "max_loop_stall_ms": round(ticker.max_gap * 1000, 1),
                "sdk_imports_on_loop_thread": list(on_loop_thread),
                "attempts": [
                    a.outcome for a in stack.ledger.attempts() if a.deployment == deployment
                ],
            }
    print(json.dumps(report))

asyncio.run(main())
"""


def _run(script: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_PRELUDE) + textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_the_first_call_of_each_protocol_keeps_the_event_loop_running(stream: bool) -> None:
    report = _run(f"STREAM = {stream}\n" + _FIRST_CALLS)
    for protocol, seen in report.items():
        # The old code imported the SDK on the loop's thread: no tick could run while
        # the import was in progress. Now it runs on a worker thread.
        assert seen["ticks_during_import"] >= 1, (protocol, seen)
        assert not [
            name for name in seen["sdk_imports_on_loop_thread"] if name.split(".")[0] in _ADAPTERS
        ], (protocol, seen)
        assert seen["attempts"] == ["ok"], (protocol, seen)


def test_warm_up_imports_every_sdk_and_builds_clients_off_the_loop() -> None:
    report = _run(
        """
        from hybridstack.testing import offline_stack

        async def main():
            async with offline_stack() as stack:
                with Ticker() as ticker:
                    warmed = await stack.warm_up()
                await ticker.task
                on_loop_thread.clear()
                for deployment in ("gpt-4o-mini@openai-us", "claude-haiku-4.5@anthropic-us",
                                   "qwen-plus@dashscope-cn"):
                    await stack.complete("hi", model=deployment)
                clients = sum(1 for p in stack._pool.providers().values() if p._clients._last)
                print(json.dumps({
                    "warmed": len(warmed),
                    "deployments": len(stack.catalog),
                    "clients": clients,
                    "ticks_during_import": ticker.during_import,
                    "imports_during_calls": list(on_loop_thread),
                    "loaded": [m for m in SDKS if m in sys.modules],
                }))

        asyncio.run(main())
        """
    )
    assert report["loaded"] == ["openai", "anthropic", "dashscope"]
    assert report["ticks_during_import"] >= 1, report
    # Every enabled deployment got its provider and (for the three calls' loop) a client.
    assert 0 < report["warmed"] <= report["deployments"]
    assert report["clients"] >= report["warmed"] - 3
    # After warm_up, the first calls import nothing of the SDKs on the loop's thread.
    assert report["imports_during_calls"] == [], report


def test_an_attempt_is_never_recorded_for_a_request_that_was_not_sent() -> None:
    # A deadline shorter than the SDK import: the old code imported on the loop, then
    # entered the attempt's timeout context past the deadline and recorded a
    # "cancelled" attempt with TimeoutError for a request that never left.
    report = _run(
        """
        from hybridstack.errors import BudgetExceededError
        from hybridstack.resilience import Budget
        from hybridstack.testing import offline_stack

        async def main():
            async with offline_stack() as stack:
                name = "claude-haiku-4.5@anthropic-us"
                try:
                    await stack.complete("hi", model=name, budget=Budget(deadline_s=0.01))
                    error = None
                except BudgetExceededError as exc:
                    error = {"budget": exc.budget, "message": str(exc)}
                print(json.dumps({
                    "error": error,
                    "recorded": [a.model_dump(mode="json") for a in stack.ledger.attempts()],
                    "sent": stack.emulator.counters(name).requests,
                }))

        asyncio.run(main())
        """
    )
    assert report["sent"] == 0
    assert report["recorded"] == []
    assert report["error"]["budget"] == "deadline"
    assert "before any request was sent" in report["error"]["message"]


# --- load_adapter: one import, shared, off the loop -----------------------------------------


@pytest.fixture
def slow_protocol(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake protocol whose adapter module takes a while to import and logs each run."""
    log = tmp_path / "imports.log"
    (tmp_path / "fake_slow_adapter.py").write_text(
        textwrap.dedent(
            f"""
            import threading, time
            with open({str(log)!r}, "a") as f:
                f.write(threading.current_thread().name + "\\n")
            time.sleep(0.3)
            from hybridstack.providers.base import Provider

            class FakeProvider(Provider):
                protocol = "fake"
                async def complete(self, request, *, extra_headers=None): ...
                def stream(self, request, *, extra_headers=None): ...
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(_ADAPTERS, "fake", ("fake_slow_adapter", "FakeProvider", "fakesdk"))
    yield log
    sys.modules.pop("fake_slow_adapter", None)
    from hybridstack import providers

    providers._loading.pop("fake", None)


def _imports(log: Path) -> list[str]:
    """The threads the fake adapter module was imported on, one per import."""
    return log.read_text().split()


async def test_concurrent_first_loads_share_one_import_on_a_worker_thread(
    slow_protocol: Path,
) -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        classes = await asyncio.gather(*(load_adapter("fake") for _ in range(8)))
    finally:
        ticker.cancel()
    assert len(set(classes)) == 1
    threads = _imports(slow_protocol)
    assert len(threads) == 1  # one import for eight concurrent callers
    assert threads[0] != threading.main_thread().name
    assert ticks >= 1  # the loop ran while the module slept in its import


async def test_a_cancelled_first_caller_does_not_cancel_the_import(slow_protocol: Path) -> None:
    first = asyncio.create_task(load_adapter("fake"))
    await asyncio.sleep(0.05)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    cls = await load_adapter("fake")
    assert cls.__name__ == "FakeProvider"
    assert len(_imports(slow_protocol)) == 1


async def test_a_missing_sdk_is_a_configuration_error_naming_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "fake_broken_adapter.py").write_text("import fakesdk_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(_ADAPTERS, "broken", ("fake_broken_adapter", "X", "fakesdk"))
    with pytest.raises(ConfigurationError, match="pip install fakesdk"):
        await load_adapter("broken")
    with pytest.raises(ConfigurationError, match="unknown protocol 'nope'"):
        await load_adapter("nope")


@pytest.mark.slow
def test_bench_cold_start_quick_prints_one_json_line() -> None:
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "bench_cold_start.py"), "--quick"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    final = json.loads(lines[-1])
    assert not any(line.lstrip().startswith("{") for line in lines[:-1])
    for scenario in ("lazy", "warm"):
        assert set(final[scenario]) == {"openai", "anthropic", "dashscope"}
        for row in final[scenario].values():
            assert row["first_call_ms"] > 0
            assert row["max_loop_stall_ms"] >= 0
    assert final["warm_up_s"] > 0
    assert final["checkout"] == str(root)
