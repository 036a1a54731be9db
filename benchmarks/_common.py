"""Helpers shared by ``bench_overhead.py``, ``bench_failover.py`` and ``bench_storm.py``.

* :func:`bench_catalog` — a one-family catalog whose deployments point at the emulator;
* :class:`EmulatorProcess` — the emulator CLI (``python -m hybridstack.testing.emulator
  --config FILE``) as a subprocess, so its CPU is not charged to the client;
* :func:`run_batch` — N requests through one async callable at a fixed concurrency,
  timed per request (wall) and per batch (wall + ``time.process_time``);
* :func:`percentile`, :func:`print_table`, :func:`final_line`.

Loopback only: every URL here is ``127.0.0.1``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable from a checkout without installing
    sys.path.insert(0, str(ROOT))

from hybridstack.catalog import Catalog, Deployment, Family, Price  # noqa: E402

FAMILY = "bench-llm"
MODEL = "bench-model"
API_KEY = "sk-hybridstack-bench"
#: The prompt every request sends (a list of role/content dicts, as users pass them).
MESSAGES: list[dict[str, str]] = [
    {"role": "user", "content": "Summarise in one sentence why unit tests are worth writing."}
]


def library_fingerprint() -> str:
    """A short hash of every ``hybridstack/**/*.py`` file, to tie numbers to the code measured."""
    import hashlib

    digest = hashlib.sha256()
    package = ROOT / "hybridstack"
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def open_fds() -> int | None:
    """File descriptors open in this process (Linux), a cheap leak detector."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


def log(*parts: object) -> None:
    """Progress goes to stderr so stdout stays: table(s), then one JSON line."""
    print(*parts, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- catalog


@dataclass(frozen=True)
class Site:
    site: str
    region: str
    jurisdiction: str
    base_url: str
    protocol: str = "openai"
    #: Deployments sharing a key share a scope ("" = only itself).
    quota_scope: str = ""
    #: The per-attempt timeout (a hung request fails after this long).
    timeout_s: float = 60.0

    @property
    def id(self) -> str:
        return f"{FAMILY}@{self.site}"


def bench_catalog(sites: Sequence[Site]) -> Catalog:
    """One family (``bench-llm``, strong at ``general``) with one deployment per site."""
    family = Family(
        name=FAMILY,
        vendor="bench",
        context_window=128_000,
        features=frozenset({"streaming", "system_prompt", "tools", "json_schema"}),
        skills={"general": 0.8},
    )
    price = Price(input_per_mtok=0.4, output_per_mtok=1.2, as_of=date(2026, 1, 1))
    deployments = [
        Deployment(
            family=FAMILY,
            site=s.site,
            protocol=s.protocol,  # type: ignore[arg-type]
            model=MODEL,
            base_url=s.base_url,
            region=s.region,
            jurisdiction=s.jurisdiction,
            operator="bench",
            api_key=API_KEY,
            price=price,
            quota_scope=s.quota_scope,
            timeout_s=s.timeout_s,
        )
        for s in sites
    ]
    return Catalog([family], deployments)


def emulated(name: str, protocol: str = "openai", **faults: Any) -> dict[str, Any]:
    """An emulator deployment entry (a plain dict, as in a JSON config file)."""
    return {"name": name, "protocol": protocol, "model": MODEL, "faults": faults}


# --------------------------------------------------------------------------- emulator


_LISTENING = re.compile(r"listening on (http://\S+)")
_CONTROL = re.compile(r"^control (http://\S+)")
_DEPLOYMENT_LINE = re.compile(r"^\s+(\S+) \[(\w+)\] (http://\S+)\s*$")


class EmulatorProcess:
    """``python -m hybridstack.testing.emulator --config <tmpfile>`` as a child process.

    Its first stdout line names the root URL; the next lines name each deployment's
    base URL (``base_urls``). ``stop()`` (or leaving the ``with``) terminates it.

    ``control=True`` runs this module's ``serve`` command instead: the same emulator
    and output, plus a loopback control endpoint so :meth:`all_counters` can read the
    emulator's counters from the parent process.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        control: bool = False,
        start_timeout_s: float = 30.0,
    ) -> None:
        self.config = dict(config)
        self.control = control
        self.control_url = ""
        self.start_timeout_s = start_timeout_s
        self.url = ""
        self.base_urls: dict[str, str] = {}
        self.pid: int | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    def start(self) -> EmulatorProcess:
        self._dir = tempfile.TemporaryDirectory(prefix="hybridstack-bench-")
        config_path = Path(self._dir.name) / "emulator.json"
        config_path.write_text(json.dumps(self.config), encoding="utf-8")
        stderr_path = Path(self._dir.name) / "emulator.stderr"
        self._stderr = stderr_path.open("w", encoding="utf-8")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        if self.control:
            command = [sys.executable, str(Path(__file__).resolve()), "serve", str(config_path)]
        else:
            command = [sys.executable, "-m", "hybridstack.testing.emulator"]
            command += ["--config", str(config_path)]
        self._proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self.pid = self._proc.pid
        n = len(self.config.get("deployments", ()))
        deadline = time.monotonic() + self.start_timeout_s
        lines: list[str] = []
        try:
            assert self._proc.stdout is not None
            while len(lines) < n + 1 + int(self.control):
                if time.monotonic() > deadline:
                    raise TimeoutError("the emulator did not print its URL in time")
                line = self._proc.stdout.readline()
                if not line:
                    raise RuntimeError(
                        f"the emulator exited (code {self._proc.poll()}): {self._stderr_text()}"
                    )
                lines.append(line.rstrip("\n"))
        except BaseException:
            self.stop()
            raise
        match = _LISTENING.search(lines[0])
        if match is None:
            self.stop()
            raise RuntimeError(f"unexpected first line from the emulator: {lines[0]!r}")
        self.url = match.group(1)
        for line in lines[1:]:
            dep = _DEPLOYMENT_LINE.match(line)
            if dep is not None:
                self.base_urls[dep.group(1)] = dep.group(3)
            ctl = _CONTROL.match(line)
            if ctl is not None:
                self.control_url = ctl.group(1)
        return self

    def base_url(self, name: str) -> str:
        return self.base_urls[name]

    def _control(self, path: str, method: str = "GET") -> Any:
        import urllib.request

        if not self.control_url:
            raise RuntimeError("start the emulator with control=True to read its counters")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only
        request = urllib.request.Request(self.control_url + path, method=method)
        with opener.open(request, timeout=30) as response:
            return json.loads(response.read())

    def all_counters(self) -> dict[str, Any]:
        """``Emulator.all_counters()`` of the child process (``EmulatorCounters`` by name)."""
        from hybridstack.testing.emulator import EmulatorCounters

        data = self._control("/counters")
        return {name: EmulatorCounters.model_validate(c) for name, c in data.items()}

    def reset_counters(self) -> None:
        self._control("/reset", "POST")

    def _stderr_text(self) -> str:
        try:
            self._stderr.flush()
            return Path(self._stderr.name).read_text(encoding="utf-8")[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()  # SIGTERM: the CLI stops its server and exits 0
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
        if getattr(self, "_stderr", None) is not None:
            self._stderr.close()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------- measuring


@dataclass
class Batch:
    """One batch of requests: n, wall seconds, client CPU seconds, per-request latencies."""

    n: int
    wall_s: float
    cpu_s: float
    latencies_s: list[float]
    errors: int = 0
    first_error: str | None = None


@dataclass
class Series:
    """All batches of one (cell, path) across rounds."""

    batches: list[Batch] = field(default_factory=list)

    def add(self, batch: Batch) -> None:
        self.batches.append(batch)

    @property
    def n(self) -> int:
        return sum(b.n for b in self.batches)

    @property
    def errors(self) -> int:
        return sum(b.errors for b in self.batches)

    @property
    def rps(self) -> float:
        wall = sum(b.wall_s for b in self.batches)
        return self.n / wall if wall > 0 else 0.0

    @property
    def cpu_ms_per_req(self) -> float:
        n = self.n
        return 1000.0 * sum(b.cpu_s for b in self.batches) / n if n else 0.0

    def latencies(self) -> list[float]:
        out: list[float] = []
        for b in self.batches:
            out.extend(b.latencies_s)
        return out

    def p(self, q: float) -> float:
        """Latency percentile in milliseconds over every request of every round."""
        return 1000.0 * percentile(self.latencies(), q)

    def round_rps(self) -> list[float]:
        return [b.n / b.wall_s if b.wall_s > 0 else 0.0 for b in self.batches]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation between closest ranks."""
    if not values:
        return math.nan
    data = sorted(values)
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


async def run_batch(
    call: Callable[[int], Awaitable[Any]], n: int, concurrency: int, *, settle_gc: bool = True
) -> Batch:
    """Send ``n`` requests through ``call`` with ``concurrency`` workers in flight.

    Garbage from earlier batches is collected (and frozen) *before* the clock starts,
    so one path's garbage is not charged to the next batch; garbage made during the
    batch is collected during it and counted.
    """
    latencies = [0.0] * n
    next_index = 0
    errors = 0
    first_error: str | None = None
    perf = time.perf_counter

    async def worker() -> None:
        nonlocal next_index, errors, first_error
        while True:
            k = next_index
            if k >= n:
                return
            next_index = k + 1
            t0 = perf()
            try:
                await call(k)
            except Exception as exc:  # counted and reported; a benchmark must not die here
                errors += 1
                if first_error is None:
                    first_error = f"{type(exc).__name__}: {exc}"[:500]
            latencies[k] = perf() - t0

    if settle_gc:
        gc.collect()
        gc.freeze()
    cpu0 = time.process_time()
    wall0 = perf()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, n))))
    wall = perf() - wall0
    cpu = time.process_time() - cpu0
    return Batch(n, wall, cpu, latencies, errors, first_error)


# --------------------------------------------------------------------------- output


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str = "") -> None:
    """A plain fixed-width table on stdout."""

    def fmt(value: Any) -> str:
        if isinstance(value, float):
            if math.isnan(value):
                return "-"
            return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
        return str(value)

    cells = [[fmt(v) for v in row] for row in rows]
    widths = [
        max(len(str(h)), *(len(r[i]) for r in cells)) if cells else len(str(h))
        for i, h in enumerate(headers)
    ]
    if title:
        print(title)
    print("  ".join(str(h).rjust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))
    print(flush=True)


def rounded(value: Any, digits: int = 4) -> Any:
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return None
        return round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v, digits) for v in value]
    return value


def add_emulator_option(parser: Any, *, default: str) -> None:
    """``--emulator thread|subprocess``: where the emulator runs, for an argparse parser."""
    parser.add_argument(
        "--emulator",
        choices=("thread", "subprocess"),
        default=default,
        help="in-process on a background thread (shares the GIL with the client) or a "
        f"separate process with a loopback counters endpoint (default: {default})",
    )


def run_facts(started: float) -> dict[str, Any]:
    """What ties a JSON line to its run: seconds since ``started``, Python, library hash."""
    import platform

    return {
        "elapsed_s": round(time.perf_counter() - started, 1),
        "python": platform.python_version(),
        "library": library_fingerprint(),
    }


def final_line(payload: Mapping[str, Any]) -> None:
    """THE final stdout line: one JSON object."""
    sys.stdout.flush()
    print(json.dumps(rounded(dict(payload)), separators=(", ", ": ")), flush=True)


# --------------------------------------------------------------------------- serve


def _serve(config_path: str) -> int:
    """The emulator CLI's behaviour plus ``GET /counters`` and ``POST /reset`` on loopback."""
    import signal

    from aiohttp import web

    from hybridstack.testing.emulator import Emulator, EmulatorConfig

    async def run() -> None:
        config = EmulatorConfig.from_file(config_path)
        emulator = Emulator(config)
        await emulator.start()

        async def counters(_request: web.Request) -> web.Response:
            data = {n: c.model_dump(mode="json") for n, c in emulator.all_counters().items()}
            return web.json_response(data)

        async def reset(_request: web.Request) -> web.Response:
            emulator.reset_counters()
            return web.json_response({})

        app = web.Application()
        app.router.add_get("/counters", counters)
        app.router.add_post("/reset", reset)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        control_port = runner.addresses[0][1]
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        n = len(config.deployments)
        print(f"hybridstack emulator listening on {emulator.url} ({n} deployments)", flush=True)
        for spec in config.deployments:
            print(f"  {spec.name} [{spec.protocol}] {emulator.base_url(spec.name)}", flush=True)
        print(f"control http://127.0.0.1:{control_port}", flush=True)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()
            await emulator.stop()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        sys.exit(_serve(sys.argv[2]))
    print("usage: python benchmarks/_common.py serve CONFIG.json", file=sys.stderr)
    sys.exit(2)
