"""A fault storm: every fault class at once, and whether anything is lost, duplicated or stuck.

One family (``bench-llm``) with eight emulated deployments in four jurisdictions, over
all three wire protocols (real ``openai``, ``anthropic`` and ``dashscope`` clients):

* six *stormy* ones, each drawing a random mix of every fault class per request:
  429 with Retry-After, 500, 503, 529 (DashScope's as ``Throttling.AllocationQuota``),
  hangs (cut by the deployment's timeout), TCP resets, malformed bodies, streams cut
  halfway, refusals, and context-length errors (two hosts accept fewer tokens than the
  catalog says, and some calls send a long prompt); two of them share a DashScope key;
* ``bench-llm@eu-flap`` — flapping: up and down in turns (``flap_up_s``/``flap_down_s``);
* ``bench-llm@us-refused`` — refuses our key outright (401).

A ``Stack`` with default resilience settings (``stream_failover="resume"``, an
unbounded in-memory ledger, a seed) sends ``--complete`` non-streamed and ``--stream``
streamed calls, randomly interleaved, at ``--concurrency``. Every call has a live
deployment, so every call should be answered. A ticker task on the client's event
loop measures how long the loop was ever kept from running it. The emulator runs in
its own process by default (``--emulator thread``: in-process) and its per-request
log (the ``x-hybridstack-attempt`` header of each request) is compared with the
ledger, attempt by attempt.

Two more scenarios:

* **meltdown** (issue 8): three deployments each answering 30% of requests with an
  instant HTTP 500 (successes take ``ttft_ms`` longer), ``--meltdown-calls`` calls with
  default settings: the share answered, and the largest share one deployment took;
* **starvation**: every breaker open by a revoked key, calls retried in a tight loop for
  a second: whether the event loop still runs a 10 ms timer.

Final JSON keys: ``success_rate`` (answered / calls), ``lost`` (calls that failed
although the emulator answered one of their requests ``ok``, plus calls that never
ended), ``duplicated`` (calls the emulator answered ``ok`` more than once),
``answered_without_upstream_ok``, ``sent_without_record`` / ``recorded_without_send``
(emulator requests with no ledger attempt of the same id, and the reverse),
``untranslated_exceptions`` (errors reaching the caller that are not hybridstack
errors), ``max_loop_stall_ms``, ``meltdown_success_rate``, ``meltdown_max_share``,
``starvation`` and ``targets``.

Run from the repo root: ``python benchmarks/bench_storm.py [--quick] [--complete N]
[--stream N] [--concurrency C] [--seed S] [--emulator subprocess|thread]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from _common import (
    FAMILY,
    EmulatorProcess,
    Site,
    add_emulator_option,
    bench_catalog,
    emulated,
    final_line,
    log,
    percentile,
    print_table,
    run_facts,
)

from hybridstack import Stack
from hybridstack.errors import FailoverError, HybridStackError
from hybridstack.ledger.memory import MemoryLedger
from hybridstack.testing.emulator import Emulator, EmulatorConfig
from hybridstack.types import FinishEvent, StreamResumed

#: site -> (protocol, region, jurisdiction, quota scope)
STORMY: dict[str, tuple[str, str, str, str]] = {
    "cn-native": ("dashscope", "cn-beijing", "CN", "dashscope-cn"),
    "cn-compat": ("openai", "cn-beijing", "CN", "dashscope-cn"),  # same key as cn-native
    "sg-openai": ("openai", "ap-southeast-1", "SG", ""),
    "sg-claude": ("anthropic", "ap-southeast-1", "SG", ""),
    "eu-claude": ("anthropic", "eu-central-1", "EU", ""),
    "us-openai": ("openai", "us-east-1", "US", ""),
}
FLAP, REFUSED = "eu-flap", "us-refused"
SPECIAL: dict[str, tuple[str, str, str, str]] = {
    FLAP: ("openai", "eu-west-1", "EU", ""),
    REFUSED: ("openai", "us-west-2", "US", ""),
}
#: Hosts that accept fewer tokens than the catalog's window (a context-length error).
SHORT_WINDOW = ("cn-compat", "us-openai")
SHORT_LIMIT_TOKENS = 1000
SHORT = [{"role": "user", "content": "Summarise in one sentence why unit tests are worth writing."}]
LONG = [{"role": "user", "content": "Summarise this: " + "lorem ipsum dolor sit amet " * 260}]
MELTDOWN_SITES = (
    ("a", "cn-hangzhou", "CN"),
    ("b", "ap-southeast-1", "SG"),
    ("c", "eu-central-1", "EU"),
)


def name(site: str) -> str:
    return f"{FAMILY}@{site}"


def storm_faults(args: argparse.Namespace, site: str) -> dict[str, Any]:
    """Every fault class at once, about ``args.fault_rate`` of requests in all."""
    share = args.fault_rate / 10  # ten classes drawn per request (context length aside)
    faults: dict[str, Any] = {
        "latency_ms": args.latency_ms,
        "p_429": share,
        "retry_after_s": 0.2,
        "p_500": share,
        "p_503": share,
        "p_529": share,
        "p_hang": share / 4,  # each one costs a whole timeout
        "hang_s": 30.0,
        "p_reset": share,
        "p_malformed": share,
        "p_stream_cut": share * 2,  # only streams draw it
        "p_mid_stream_error": share,
        "p_refusal": share / 2,
    }
    if STORMY[site][0] == "dashscope":
        # DashScope's allocated-quota throttle, relayed as a 529 (issue 8, item 9).
        faults["error_codes"] = {"529": "Throttling.AllocationQuota"}
        faults["error_messages"] = {
            "529": "Allocated quota exceeded, please increase your quota limit."
        }
    if site in SHORT_WINDOW:
        faults["context_limit_tokens"] = SHORT_LIMIT_TOKENS
    return faults


def storm_config(args: argparse.Namespace) -> dict[str, Any]:
    deployments = [
        emulated(name(s), spec[0], **storm_faults(args, s)) for s, spec in STORMY.items()
    ]
    deployments.append(
        emulated(
            name(FLAP),
            "openai",
            latency_ms=args.latency_ms,
            flap_up_s=args.flap_s,
            flap_down_s=args.flap_s,
        )
    )
    deployments.append(
        emulated(name(REFUSED), "openai", latency_ms=args.latency_ms, auth_key="sk-not-yours")
    )
    return {"seed": args.seed, "reply_words": 20, "deployments": deployments}


def sites_for(
    emulator: Emulator | EmulatorProcess, specs: dict[str, tuple[str, str, str, str]]
) -> list[Site]:
    return [
        Site(site, region, j, emulator.base_url(name(site)), protocol, scope, timeout_s=2.0)
        for site, (protocol, region, j, scope) in specs.items()
    ]


def start_emulator(args: argparse.Namespace, config: dict[str, Any]) -> Any:
    if args.emulator == "subprocess":
        return EmulatorProcess(config, control=True)
    return Emulator(EmulatorConfig.model_validate(config))  # a background thread


# --------------------------------------------------------------------------- the loop ticker


class Ticker:
    """A task that sleeps 10 ms at a time and records how late it woke up."""

    #: Stalls longer than this are kept, with when they happened.
    NOTABLE_S = 0.05

    def __init__(self, period_s: float = 0.01) -> None:
        self.period_s = period_s
        self.ticks = 0
        self.max_stall_s = 0.0
        #: (seconds since start, stall seconds) of every stall over NOTABLE_S
        self.notable: list[tuple[float, float]] = []
        self._task: asyncio.Task[None] | None = None
        self._running = False
        # Garbage-collector pauses in the same time, to tell them from a busy loop.
        self.gc_pauses = 0
        self.gc_total_s = 0.0
        self.gc_max_s = 0.0
        self._gc_started: float | None = None
        self.cpu_s = 0.0
        self.wall_s = 0.0

    async def _run(self) -> None:
        perf = time.perf_counter
        start = last = perf()
        while self._running:
            await asyncio.sleep(self.period_s)
            now = perf()
            stall = now - last - self.period_s
            if stall > self.NOTABLE_S:
                self.notable.append((last - start, stall))
            self.max_stall_s = max(self.max_stall_s, stall)
            last = now
            self.ticks += 1

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._gc_started is not None:
            pause = time.perf_counter() - self._gc_started
            self.gc_pauses += 1
            self.gc_total_s += pause
            self.gc_max_s = max(self.gc_max_s, pause)
            self._gc_started = None

    def worst(self, n: int = 5) -> list[list[float]]:
        """The ``n`` longest stalls as [at s, stall ms]."""
        top = sorted(self.notable, key=lambda x: -x[1])[:n]
        return [[round(at, 2), round(1000 * stall, 1)] for at, stall in top]

    def start(self) -> None:
        self._running = True
        gc.callbacks.append(self._on_gc)
        self._cpu0, self._wall0 = time.process_time(), time.perf_counter()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self._running = False
        if self._task is not None:
            await self._task
        gc.callbacks.remove(self._on_gc)
        self.cpu_s = time.process_time() - self._cpu0
        self.wall_s = time.perf_counter() - self._wall0


# --------------------------------------------------------------------------- freezes


class Freezer:
    """What a loaded machine does, on purpose: the emulator's process, or the client's
    event loop, gets no CPU for ``--freeze-s`` seconds every ``--freeze-every-s`` seconds.

    ``--freeze emulator`` stops the emulator subprocess (SIGSTOP, then SIGCONT): the
    kernel still accepts connections and buffers requests, nothing answers them.
    ``--freeze client`` blocks the client's loop (``time.sleep`` in a callback): replies
    arrive in the socket buffers and wait there, and every timer falls due at once.
    """

    def __init__(self, args: argparse.Namespace, emulator: Any) -> None:
        self.what: str = args.freeze
        self.freeze_s: float = args.freeze_s
        self.every_s: float = args.freeze_every_s
        self.pid: int | None = getattr(emulator, "pid", None)
        self.count = 0
        self._task: asyncio.Task[None] | None = None
        if self.what == "emulator" and self.pid is None:
            raise SystemExit("--freeze emulator needs --emulator subprocess")

    def start(self) -> None:
        if self.what != "none":
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        import os
        import signal

        while True:
            await asyncio.sleep(self.every_s)
            self.count += 1
            if self.what == "client":
                time.sleep(self.freeze_s)  # noqa: ASYNC251 - blocks the loop on purpose
                continue
            assert self.pid is not None
            os.kill(self.pid, signal.SIGSTOP)
            try:
                # Off the loop: the client keeps running while the emulator is stopped.
                await asyncio.to_thread(time.sleep, self.freeze_s)
            finally:
                os.kill(self.pid, signal.SIGCONT)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        if self.what == "emulator" and self.pid is not None:
            import os
            import signal

            os.kill(self.pid, signal.SIGCONT)  # never leave it stopped


# --------------------------------------------------------------------------- the storm


@dataclass
class Outcome:
    """One call as the caller saw it (``run_id`` tags its ledger attempts: one per call)."""

    run_id: str
    streamed: bool
    ok: bool = False
    ended: bool = False
    error: str = ""
    translated: bool = True
    deployment: str = ""
    resumed: int = 0
    latency_s: float = 0.0


@dataclass
class StormResult:
    outcomes: list[Outcome]
    wall_s: float
    ticker: Ticker
    attempts: list[Any]
    counters: dict[str, Any]
    breakers: dict[str, Any]
    events: Counter[str] = field(default_factory=Counter)
    warm_up_s: float = 0.0


async def storm(args: argparse.Namespace, emulator: Any) -> StormResult:
    sites = sites_for(emulator, {**STORMY, **SPECIAL})
    # Unbounded: every attempt is compared with the emulator's log.
    ledger = MemoryLedger(max_attempts=None, max_runs=None)
    stack = Stack(bench_catalog(sites), seed=args.seed, stream_failover="resume", ledger=ledger)
    # As the docs advise at start-up: SDKs imported and clients built before the storm
    # (off the loop), so the ticker measures the storm, not the cold start.
    warm0 = time.perf_counter()
    await stack.warm_up()
    warm_up_s = time.perf_counter() - warm0
    rng = random.Random(args.seed)
    kinds = [False] * args.complete + [True] * args.stream
    rng.shuffle(kinds)
    prompts = [LONG if rng.random() < args.long_share else SHORT for _ in kinds]
    outcomes = [Outcome(f"storm-{k}", streamed) for k, streamed in enumerate(kinds)]
    events: Counter[str] = Counter()

    def on_event(event: Any) -> None:
        events[event.kind] += 1

    async def one(k: int) -> None:
        out = outcomes[k]
        t0 = time.perf_counter()
        try:
            if out.streamed:
                events = stack.stream(
                    prompts[k], skill="general", run_id=out.run_id, on_event=on_event
                )
                async for event in events:
                    if isinstance(event, StreamResumed):
                        out.resumed += 1
                    elif isinstance(event, FinishEvent):
                        out.ok, out.deployment = True, event.response.deployment
            else:
                response = await stack.complete(
                    prompts[k], skill="general", run_id=out.run_id, on_event=on_event
                )
                out.ok, out.deployment = True, response.deployment
        except Exception as exc:  # every failure is counted and classified below
            out.error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
            out.translated = isinstance(exc, HybridStackError)
        finally:
            out.ended = True
            out.latency_s = time.perf_counter() - t0

    ticker = Ticker()
    ticker.start()
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < len(kinds):
            k = next_index
            next_index += 1
            await one(k)

    started = time.perf_counter()
    freezer = Freezer(args, emulator)
    freezer.start()
    try:
        await asyncio.gather(*(worker() for _ in range(min(args.concurrency, len(kinds)))))
    finally:
        await freezer.stop()
    wall = time.perf_counter() - started
    await ticker.stop()
    breakers = stack.breakers.snapshot()
    await stack.aclose()
    return StormResult(
        outcomes,
        wall,
        ticker,
        ledger.attempts(),
        emulator.all_counters(),
        breakers,
        events,
        warm_up_s,
    )


def reconcile(result: StormResult) -> dict[str, Any]:
    """The emulator's per-request log against the ledger and what the callers got."""
    emu_ids: Counter[str] = Counter()
    ok_by_call: Counter[str] = Counter()
    for counters in result.counters.values():
        for rec in counters.attempts:
            if rec.attempt_id is not None:
                emu_ids[rec.attempt_id] += 1
            if rec.outcome == "ok" and rec.call_id is not None:
                ok_by_call[rec.call_id] += 1
    ledger_ids = Counter(f"{a.call_id}-{a.attempt_index}" for a in result.attempts)
    call_of = {a.run_id: a.call_id for a in result.attempts}  # one call id per run id
    answered = {call_of.get(o.run_id, "") for o in result.outcomes if o.ok}
    failed_calls = {call_of[o.run_id] for o in result.outcomes if not o.ok and o.run_id in call_of}
    offenders = _offenders(result, emu_ids, ledger_ids, ok_by_call)
    # An extra ``ok`` is "answered after the client timed out" when the ledger has that
    # very attempt as given up by the client (timeout, connection lost, cancelled): the
    # server answered a request the client had stopped waiting for. Inherent to retrying
    # after a timeout; counted apart from a true duplicate (two answers both delivered).
    by_id = {f"{a.call_id}-{a.attempt_index}": a for a in result.attempts}
    ok_ids: dict[str, list[str]] = {}
    for counters in result.counters.values():
        for rec in counters.attempts:
            if rec.outcome == "ok" and rec.call_id is not None and rec.attempt_id is not None:
                ok_ids.setdefault(rec.call_id, []).append(rec.attempt_id)
    late = 0
    for ids in ok_ids.values():
        known = [by_id[i] for i in ids if i in by_id]
        if (
            len(ids) > 1
            and all(a.outcome == "ok" or _client_gave_up(a) for a in known)
            and sum(a.outcome == "ok" for a in known) <= 1
        ):
            late += 1
    return {
        "offenders": offenders,
        "sent_without_record": sum((emu_ids - ledger_ids).values()),
        "recorded_without_send": sum((ledger_ids - emu_ids).values()),
        "duplicated": sum(1 for n in ok_by_call.values() if n > 1) - late,
        "answered_after_client_timeout": late,
        "lost": sum(1 for c in failed_calls if ok_by_call.get(c, 0) > 0)
        + sum(1 for o in result.outcomes if not o.ended),
        "answered_without_upstream_ok": sum(1 for c in answered if ok_by_call.get(c, 0) == 0),
        "requests_total": sum(c.requests for c in result.counters.values()),
        "ledger_attempts": len(result.attempts),
    }


def _client_gave_up(attempt: Any) -> bool:
    """The client stopped waiting for this attempt's answer (it may have come all the same)."""
    return attempt.outcome == "cancelled" or attempt.provider_code in (
        "timeout",
        "connection_error",
    )


def _offenders(
    result: StormResult,
    emu_ids: Counter[str],
    ledger_ids: Counter[str],
    ok_by_call: Counter[str],
) -> list[dict[str, Any]]:
    """Every call behind a non-zero counter, with its ledger attempts and emulator requests."""
    flagged: dict[str, set[str]] = {}
    for aid in emu_ids - ledger_ids:
        flagged.setdefault(aid.rsplit("-", 1)[0], set()).add("sent_without_record")
    for aid in ledger_ids - emu_ids:
        flagged.setdefault(aid.rsplit("-", 1)[0], set()).add("recorded_without_send")
    for call_id, n in ok_by_call.items():
        if n > 1:
            flagged.setdefault(call_id, set()).add("duplicated")
    if not flagged:
        return []
    t0 = min(a.started_at for a in result.attempts)
    out = []
    for call_id, why in sorted(flagged.items()):
        ledger = [
            {
                "attempt": a.attempt_index,
                "deployment": a.deployment.split("@")[-1],
                "outcome": a.outcome,
                "code": a.provider_code,
                "error": (a.error_message or "")[:80] or None,
                "start_s": round((a.started_at - t0).total_seconds(), 3),
                "latency_s": round(a.latency_s, 3),
                "streamed": a.streamed,
                "hedged": a.hedged,
            }
            for a in sorted(result.attempts, key=lambda a: a.attempt_index)
            if a.call_id == call_id
        ]
        emulator = [
            {"attempt": rec.attempt_id, "deployment": dep.split("@")[-1], "outcome": rec.outcome}
            for dep, counters in sorted(result.counters.items())
            for rec in counters.attempts
            if rec.call_id == call_id
        ]
        out.append({"call": call_id, "why": sorted(why), "ledger": ledger, "emulator": emulator})
    for entry in out:
        log(json.dumps(entry))
    return out


def _dump(path: str, result: StormResult) -> None:
    """Every ledger attempt and every emulator request of the storm, as JSON (``--dump``)."""
    data = {
        "ledger": [a.model_dump(mode="json") for a in result.attempts],
        "emulator": {
            dep: [rec._asdict() for rec in counters.attempts]
            for dep, counters in sorted(result.counters.items())
        },
        "outcomes": [vars(o) for o in result.outcomes],
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f)
    log(f"storm: dumped {len(result.attempts)} attempts to {path}")


def report_storm(result: StormResult, checks: dict[str, Any]) -> dict[str, Any]:
    outcomes = result.outcomes
    answered = [o for o in outcomes if o.ok]
    rows = []
    by_dep = Counter(o.deployment for o in answered)
    ledger_by_dep = Counter(a.deployment for a in result.attempts)
    for dep_name, counters in sorted(result.counters.items()):
        info = result.breakers.get(dep_name)
        faults = " ".join(
            f"{k}:{v}" for k, v in sorted(counters.by_outcome.items()) if v and k != "ok"
        )
        rows.append(
            [
                dep_name,
                counters.requests,
                ledger_by_dep.get(dep_name, 0),
                counters.ok,
                by_dep.get(dep_name, 0),
                f"{info.state}/{info.times_opened}x" if info is not None else "-",
                faults[:90],
            ]
        )
    lat = [o.latency_s for o in answered]
    title = (
        f"storm: {len(outcomes)} calls ({sum(o.streamed for o in outcomes)} streamed) in "
        f"{result.wall_s:.1f}s, answered {len(answered)}, {checks['requests_total']} requests; "
        f"p50 {1000 * percentile(lat, 50):.0f} ms, p99 {1000 * percentile(lat, 99):.0f} ms"
    )
    print_table(
        ["deployment", "emu req", "ledger", "emu ok", "answered", "breaker", "faults seen"],
        rows,
        title=title,
    )
    errors = Counter(o.error for o in outcomes if not o.ok)
    if errors:
        print_table(["error", "calls"], errors.most_common(8), title="storm: failed calls")
    print_table(["event", "count"], sorted(result.events.items()), title="storm: executor events")
    return {
        "calls": len(outcomes),
        "complete_calls": sum(not o.streamed for o in outcomes),
        "stream_calls": sum(o.streamed for o in outcomes),
        "answered": len(answered),
        "complete_success_rate": _rate([o for o in outcomes if not o.streamed]),
        "stream_success_rate": _rate([o for o in outcomes if o.streamed]),
        "streams_resumed": sum(o.resumed for o in outcomes),
        "errors": dict(errors.most_common(8)),
        "p50_ms": 1000 * percentile(lat, 50),
        "p99_ms": 1000 * percentile(lat, 99),
        "rps": len(outcomes) / result.wall_s if result.wall_s else None,
        "wall_s": result.wall_s,
        "per_deployment": {
            n: {"requests": c.requests, "ok": c.ok, "answered": by_dep.get(n, 0)}
            for n, c in sorted(result.counters.items())
        },
        "breakers_opened": {
            n: i.times_opened for n, i in sorted(result.breakers.items()) if i.times_opened
        },
        "events": dict(result.events),
    }


def _rate(outcomes: list[Outcome]) -> float | None:
    return sum(o.ok for o in outcomes) / len(outcomes) if outcomes else None


# --------------------------------------------------------------------------- meltdown


async def meltdown(args: argparse.Namespace) -> dict[str, Any]:
    """Three deployments, each answering 30% of requests with an instant 500; defaults."""
    config = {
        "seed": args.seed,
        "reply_words": 10,
        "deployments": [
            emulated(name(site), p_500=0.3, ttft_ms=args.meltdown_ttft_ms)
            for site, _, _ in MELTDOWN_SITES
        ],
    }
    with start_emulator(args, config) as emulator:
        sites = [Site(s, r, j, emulator.base_url(name(s))) for s, r, j in MELTDOWN_SITES]
        stack = Stack(bench_catalog(sites), seed=args.seed, ledger=MemoryLedger())
        errors: Counter[str] = Counter()
        semaphore = asyncio.Semaphore(args.concurrency)

        async def one() -> None:
            async with semaphore:
                try:
                    await stack.complete(SHORT, skill="general")
                except Exception as exc:  # counted
                    errors[f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"] += 1

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(args.meltdown_calls)))
        wall = time.perf_counter() - started
        breakers = stack.breakers.snapshot()
        await stack.aclose()
        counters = emulator.all_counters()
    requests = {n: c.requests for n, c in counters.items()}
    total = sum(requests.values())
    out = {
        "calls": args.meltdown_calls,
        "success_rate": 1 - sum(errors.values()) / args.meltdown_calls,
        "max_share": max(requests.values()) / total if total else None,
        "requests": requests,
        "breakers_opened": {n: i.times_opened for n, i in breakers.items() if i.times_opened},
        "errors": dict(errors.most_common(4)),
        "wall_s": wall,
    }
    rows = [[n, r, round(r / total, 3) if total else "-"] for n, r in sorted(requests.items())]
    print_table(
        ["deployment", "requests", "share"],
        rows,
        title=(
            f"meltdown: 3 deployments at 30% HTTP 500, {args.meltdown_calls} calls, success "
            f"{out['success_rate']:.4f}, {wall:.1f}s"
        ),
    )
    return out


# --------------------------------------------------------------------------- starvation


async def starvation(args: argparse.Namespace) -> dict[str, Any]:
    """Every breaker open (revoked keys): calls fail without a request, retried in a loop."""
    sites = [
        Site(s, r, j, "http://127.0.0.1:9/v1")  # never reached: every breaker is open
        for s, r, j in MELTDOWN_SITES
    ]
    catalog = bench_catalog(sites)
    stack = Stack(catalog, seed=args.seed, ledger=MemoryLedger())
    for dep in catalog.deployments_of(FAMILY):
        stack.breakers.record_failure(dep, FailoverError("revoked", deployment=dep.id, status=401))
    ticker = Ticker()
    ticker.start()
    await asyncio.sleep(0)
    failed = 0
    untranslated = 0
    loop = asyncio.get_running_loop()
    end = loop.time() + args.starvation_s
    while loop.time() < end:
        try:
            await stack.complete(SHORT, skill="general")
        except HybridStackError:
            failed += 1
        except Exception:
            untranslated += 1
    await ticker.stop()
    sent = len(stack.ledger.attempts())
    await stack.aclose()
    out = {
        "seconds": args.starvation_s,
        "failed_calls": failed,
        "untranslated": untranslated,
        "requests_sent": sent,
        "ticks": ticker.ticks,
        "expected_ticks": round(args.starvation_s / ticker.period_s),
        "max_loop_stall_ms": 1000 * ticker.max_stall_s,
    }
    print_table(
        list(out),
        [list(out.values())],
        title="starvation: every breaker open, calls retried in a tight loop, a 10 ms ticker",
    )
    return out


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--complete", type=int, default=None, help="non-streamed calls (5000)")
    parser.add_argument("--stream", type=int, default=None, help="streamed calls (1000)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency-ms", type=float, default=20.0, help="emulator latency")
    parser.add_argument("--fault-rate", type=float, default=0.2, help="share of faulty requests")
    parser.add_argument("--long-share", type=float, default=0.03, help="calls with a long prompt")
    parser.add_argument("--flap-s", type=float, default=8.0, help="the flapping one's up/down time")
    parser.add_argument("--meltdown-calls", type=int, default=None, help="(2000)")
    parser.add_argument("--meltdown-ttft-ms", type=float, default=15.0)
    parser.add_argument("--starvation-s", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=7, help="router, fault and mix seed")
    parser.add_argument("--quick", action="store_true", help="a small run (a few seconds)")
    parser.add_argument(
        "--freeze",
        choices=("none", "emulator", "client"),
        default="none",
        help="starve the emulator's process or the client's loop now and then (a loaded machine)",
    )
    parser.add_argument("--dump", default="", help="write every attempt and request to FILE")
    parser.add_argument("--freeze-s", type=float, default=2.5, help="how long each freeze lasts")
    parser.add_argument("--freeze-every-s", type=float, default=1.5, help="time between freezes")
    add_emulator_option(parser, default="subprocess")
    args = parser.parse_args(argv)
    quick = args.quick
    if args.complete is None:
        args.complete = 120 if quick else 5000
    if args.stream is None:
        args.stream = 30 if quick else 1000
    if args.meltdown_calls is None:
        args.meltdown_calls = 100 if quick else 2000
    if quick:
        args.starvation_s = min(args.starvation_s, 0.3)
        args.flap_s = min(args.flap_s, 0.5)
    if min(args.complete, args.stream) < 0 or args.complete + args.stream < 1:
        parser.error("--complete and --stream must not be negative, and not both 0")
    if args.concurrency < 1 or args.meltdown_calls < 1:
        parser.error("--concurrency and --meltdown-calls must be positive")

    t0 = time.perf_counter()

    async def run_storm() -> tuple[StormResult, dict[str, Any]]:
        with start_emulator(args, storm_config(args)) as emulator:
            result = await storm(args, emulator)
        return result, reconcile(result)

    result, checks = asyncio.run(run_storm())
    if args.dump:
        _dump(args.dump, result)
    log(f"storm: {result.wall_s:.0f}s ({time.perf_counter() - t0:.0f}s so far)")
    melt = asyncio.run(meltdown(args))
    log(f"meltdown: {melt['wall_s']:.0f}s ({time.perf_counter() - t0:.0f}s so far)")
    starve = asyncio.run(starvation(args))

    summary = report_storm(result, checks)
    untranslated = sum(1 for o in result.outcomes if not o.ok and not o.translated)
    payload: dict[str, Any] = {
        "success_rate": summary["answered"] / summary["calls"],
        "lost": checks["lost"],
        "duplicated": checks["duplicated"],
        "answered_after_client_timeout": checks["answered_after_client_timeout"],
        "sent_without_record": checks["sent_without_record"],
        "recorded_without_send": checks["recorded_without_send"],
        "answered_without_upstream_ok": checks["answered_without_upstream_ok"],
        "untranslated_exceptions": untranslated + starve["untranslated"],
        "max_loop_stall_ms": 1000 * result.ticker.max_stall_s,
        "meltdown_success_rate": melt["success_rate"],
        "meltdown_max_share": melt["max_share"],
        **{k: v for k, v in summary.items() if k not in ("answered",)},
        "requests_total": checks["requests_total"],
        "ledger_attempts": checks["ledger_attempts"],
        # The calls behind any non-zero counter above (first 20), for diagnosis.
        "offenders": checks["offenders"][:20],
        "attempts_per_call": checks["requests_total"] / summary["calls"],
        "ticker_ticks": result.ticker.ticks,
        # [seconds into the storm, ms]: the longest times the loop could not run the ticker.
        "loop_stalls_over_50ms": len(result.ticker.notable),
        "worst_loop_stalls": result.ticker.worst(),
        # Context for the stalls: the client's CPU share of the wall time (1.0: the loop
        # was never idle; the machine's other load shows as less CPU than wall) and GC.
        "client_cpu_share": result.ticker.cpu_s / result.ticker.wall_s
        if result.ticker.wall_s
        else None,
        "gc_max_pause_ms": 1000 * result.ticker.gc_max_s,
        "gc_total_ms": 1000 * result.ticker.gc_total_s,
        "meltdown": melt,
        "starvation": starve,
    }
    payload["targets"] = {
        "success_rate>=0.999": payload["success_rate"] >= 0.999,
        "meltdown_success_rate>=0.999": payload["meltdown_success_rate"] >= 0.999,
        "meltdown_max_share<=0.5": (payload["meltdown_max_share"] or 1.0) <= 0.5,
        "lost==0": payload["lost"] == 0,
        "duplicated==0": payload["duplicated"] == 0,
        "sent_without_record==0": payload["sent_without_record"] == 0,
        "recorded_without_send==0": payload["recorded_without_send"] == 0,
        "untranslated_exceptions==0": payload["untranslated_exceptions"] == 0,
        "starvation_ticks>=half_expected": starve["ticks"] >= starve["expected_ticks"] / 2,
        "complete>=5000_and_stream>=1000": args.complete >= 5000 and args.stream >= 1000,
    }
    payload["config"] = {
        "complete": args.complete,
        "stream": args.stream,
        "concurrency": args.concurrency,
        "deployments": len(STORMY) + len(SPECIAL),
        "jurisdictions": len({spec[2] for spec in (*STORMY.values(), *SPECIAL.values())}),
        "latency_ms": args.latency_ms,
        "fault_rate": args.fault_rate,
        "long_share": args.long_share,
        "flap_s": args.flap_s,
        "seed": args.seed,
        "quick": quick,
        "emulator": args.emulator,
        "freeze": args.freeze,
        **(
            {"freeze_s": args.freeze_s, "freeze_every_s": args.freeze_every_s}
            if args.freeze != "none"
            else {}
        ),
        "warm_up_s": round(result.warm_up_s, 2),
        **run_facts(t0),
    }
    final_line(payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
