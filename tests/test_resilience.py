"""The executor over real HTTP: real SDK clients against the emulator, faults injected.

Every scenario checks what the emulator saw (its per-deployment counters) as well as
what the executor returned and recorded, so "skipped without a request" and "asked
exactly once" are measured, not assumed.
"""

from __future__ import annotations

import asyncio
import importlib
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import date
from typing import Any

import pytest
from pydantic import SecretStr

from hybridstack.catalog.models import Deployment, Price
from hybridstack.errors import (
    AllAttemptsFailedError,
    BudgetExceededError,
    FatalError,
    ProviderError,
    RetryableError,
    StreamInterruptedError,
)
from hybridstack.ledger.memory import MemoryLedger
from hybridstack.plan import Candidate, Plan
from hybridstack.resilience import (
    BreakerRegistry,
    BreakerSettings,
    Budget,
    DeploymentSkippedError,
    ExecutionEvent,
    Executor,
    HedgeSettings,
    LatencyTracker,
    ProviderPool,
    RetrySettings,
)
from hybridstack.routing.sovereignty import redact
from hybridstack.testing.emulator import EmulatedDeployment, Emulator, EmulatorConfig
from hybridstack.types import (
    ChatRequest,
    ChatResponse,
    FinishEvent,
    Message,
    StreamResumed,
    TextDelta,
    Usage,
)

# Import both SDKs up front: a first import costs a second, which would blur the timings.
importlib.import_module("hybridstack.providers.openai")
importlib.import_module("hybridstack.providers.anthropic")

FAMILY = "fam"
KEY = "sk-test-emulator-0123456789"
PRICE = Price(input_per_mtok=2.0, output_per_mtok=8.0, as_of=date(2025, 1, 1))

#: site -> (protocol, region, jurisdiction, quota scope, context window)
SITES: dict[str, tuple[str, str, str, str, int]] = {
    "cn-a": ("openai", "cn-beijing", "CN", "cn-key", 32_000),
    "cn-b": ("openai", "cn-beijing", "CN", "cn-key", 32_000),  # twin of cn-a: same key
    "cn-c": ("openai", "cn-shanghai", "CN", "", 32_000),  # another CN key
    "sg": ("openai", "ap-southeast-1", "SG", "", 16_000),
    "us": ("anthropic", "us-east-1", "US", "", 128_000),
    "eu": ("openai", "eu-central-1", "EU", "", 64_000),
    "bad": ("openai", "eu-west-1", "EU", "", 64_000),  # sends an empty model name: a 400
}

REQUEST = ChatRequest(messages=[Message.user("Say hello to the test suite")])

FAST_RETRY = RetrySettings(
    max_retries=2,
    backoff_initial_s=0.02,
    backoff_max_s=0.1,
    backoff_jitter_s=0.01,
    retry_after_cap_s=1.0,
)
FAST_BREAKERS = BreakerSettings(
    failure_threshold=3, cooldown_s=0.5, max_cooldown_s=2.0, failover_cooldown_s=0.5
)

#: Emulator outcome -> the taxonomy kind the adapters must turn it into.
EMULATOR_KIND = {
    "ok": "ok",
    "429": "retry_here",
    "500": "retry_here",
    "503": "retry_here",
    "529": "retry_here",
    "hang": "retry_here",
    "reset": "retry_here",
    "malformed": "retry_here",
    "stream_cut": "retry_here",
    "mid_stream_error": "retry_here",
    "outage": "retry_here",
    "refusal": "content_refused",
    "context_length": "context_too_long",
    "auth": "fail_over",
    "quota": "fail_over",
    "bad_request": "fatal",
}


def name(site: str) -> str:
    return f"{FAMILY}@{site}"


class Env:
    """The emulator, the deployments pointing at it, and executors built for a test."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.dep: dict[str, Deployment] = {}
        for site, (protocol, region, jurisdiction, scope, _window) in SITES.items():
            self.dep[site] = Deployment(
                family=FAMILY,
                site=site,
                protocol=protocol,  # type: ignore[arg-type]
                model="" if site == "bad" else FAMILY,
                base_url=emu.base_url(name(site)),
                region=region,
                jurisdiction=jurisdiction,
                operator="emulator",
                api_key=SecretStr(KEY),
                price=PRICE,
                quota_scope=scope,
            )
        self._pools: list[ProviderPool] = []

    def plan(
        self,
        *sites: str,
        windows: dict[str, int] | None = None,
        expected_cost: float = 0.0,
    ) -> Plan:
        windows = windows or {}
        return Plan(
            skill="general",
            data_class="public",
            policy="test",
            candidates=tuple(
                Candidate(
                    self.dep[s],
                    reasons=(f"test plan position {i}",),
                    expected_cost_usd=expected_cost,
                    context_window=windows.get(s, SITES[s][4]),
                )
                for i, s in enumerate(sites)
            ),
            excluded={name("eu"): "not in this test's plan"},
        )

    def executor(
        self,
        *,
        retry: RetrySettings = FAST_RETRY,
        breakers: BreakerSettings | BreakerRegistry = FAST_BREAKERS,
        hedge: HedgeSettings | None = None,
        stream_failover: str = "raise",
        latency: LatencyTracker | None = None,
        on_success: Callable[[Deployment], Any] | None = None,
    ) -> Executor:
        pool = ProviderPool()
        self._pools.append(pool)
        registry = breakers if isinstance(breakers, BreakerRegistry) else BreakerRegistry(breakers)
        return Executor(
            providers=pool,
            ledger=MemoryLedger(),
            retry=retry,
            breakers=registry,
            hedge=hedge,
            stream_failover=stream_failover,  # type: ignore[arg-type]
            latency=latency if latency is not None else LatencyTracker(),
            on_success=on_success,
        )

    def requests(self, site: str) -> int:
        return self.emu.counters(name(site)).requests

    def total_requests(self) -> int:
        return self.emu.total()

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    config = EmulatorConfig(
        deployments=[
            EmulatedDeployment(name=name(site), protocol=spec[0], model=FAMILY)  # type: ignore[arg-type]
            for site, spec in SITES.items()
        ],
        seed=7,
        reply_words=20,
    )
    async with Emulator(config) as emu:
        environment = Env(emu)
        try:
            yield environment
        finally:
            await environment.aclose()


def kinds(events: list[ExecutionEvent]) -> list[tuple[str, str, str | None]]:
    return [(e.kind, e.deployment, e.to_deployment) for e in events]


# --- the success path ----------------------------------------------------------------------------


async def test_success_is_one_attempt_priced_and_tagged(env: Env) -> None:
    answered: list[Deployment] = []
    ex = env.executor(on_success=answered.append)
    resp = await ex.execute(env.plan("sg", "us"), REQUEST, call_id="call-ok", run_id="run-1")

    assert resp.deployment == name("sg")
    assert resp.attempts == 1
    [attempt] = ex.ledger.attempts(call_id="call-ok")
    assert attempt.outcome == "ok"
    assert attempt.run_id == "run-1"
    assert attempt.attempt_index == 0
    assert attempt.retry_index == 0
    assert (attempt.region, attempt.jurisdiction, attempt.protocol) == (
        "ap-southeast-1",
        "SG",
        "openai",
    )
    assert attempt.quota_scope == name("sg")
    assert attempt.reasons == ("test plan position 0",)
    assert (attempt.skill, attempt.data_class) == ("general", "public")
    assert attempt.breaker_state == "closed"
    assert attempt.usage.input_tokens > 0
    assert attempt.usage.output_tokens > 0
    expected_cost = PRICE.cost(attempt.usage.input_tokens, attempt.usage.output_tokens)
    assert attempt.cost_usd == pytest.approx(expected_cost)
    assert resp.cost_usd == pytest.approx(expected_cost)
    assert attempt.started_at.tzinfo is not None
    # The emulator saw the call and attempt headers exactly once.
    [record] = env.emu.counters(name("sg")).attempts
    assert (record.call_id, record.attempt_id, record.outcome) == ("call-ok", "call-ok-0", "ok")
    assert env.requests("us") == 0
    assert answered == [env.dep["sg"]]
    assert ex.latency is not None
    assert ex.latency.p95(name("sg")) is not None


# --- retry here: Retry-After, cap, quota scopes --------------------------------------------------


async def test_retry_after_is_waited_when_no_other_deployment(env: Env) -> None:
    env.emu.set_faults(name("sg"), retry_after_s=0.3)
    env.emu.script(name("sg"), ["429", "ok"])
    ex = env.executor()
    events: list[ExecutionEvent] = []
    started = time.perf_counter()
    resp = await ex.execute(env.plan("sg"), REQUEST, call_id="c-ra", on_event=events.append)
    elapsed = time.perf_counter() - started

    assert resp.deployment == name("sg")
    assert elapsed >= 0.3
    assert env.requests("sg") == 2
    first, second = ex.ledger.attempts(call_id="c-ra")
    assert (first.outcome, first.status, first.retry_after_s) == (
        "retry_here",
        429,
        pytest.approx(0.3),
    )
    assert (second.outcome, second.retry_index, second.attempt_index) == ("ok", 1, 1)
    retry = [e for e in events if e.kind == "retry"]
    assert retry
    assert retry[0].deployment == name("sg")
    assert retry[0].delay_s is not None
    assert retry[0].delay_s >= 0.29
    assert resp.attempts == 2


async def test_retry_after_beyond_the_cap_fails_over_at_once(env: Env) -> None:
    env.emu.set_faults(name("sg"), retry_after_s=5.0)
    env.emu.script(name("sg"), ["429", "429"])
    # Alone: fails at once with the reason instead of sleeping 5 s.
    started = time.perf_counter()
    with pytest.raises(AllAttemptsFailedError) as info:
        await env.executor().execute(env.plan("sg"), REQUEST, call_id="c-cap0")
    assert time.perf_counter() - started < 2.0
    [error] = info.value.exceptions
    assert isinstance(error, RetryableError)
    assert error.retry_after == pytest.approx(5.0)
    assert "retry_after=5.0" in str(info.value)
    assert env.requests("sg") == 1

    # With another deployment: fails over to it at once.
    ex = env.executor()
    started = time.perf_counter()
    resp = await ex.execute(env.plan("sg", "us"), REQUEST, call_id="c-cap")
    assert time.perf_counter() - started < 2.0
    assert resp.deployment == name("us")
    assert env.requests("sg") == 2

    # The provider asked for 5 s: the next calls do not even ask it.
    events: list[ExecutionEvent] = []
    resp = await ex.execute(env.plan("sg", "us"), REQUEST, call_id="c-cap2", on_event=events.append)
    assert resp.deployment == name("us")
    assert ("breaker_open", name("sg"), None) in kinds(events)
    started = time.perf_counter()
    with pytest.raises(AllAttemptsFailedError) as info:
        await ex.execute(env.plan("sg"), REQUEST, call_id="c-cap3")
    assert time.perf_counter() - started < 2.0
    [skipped] = info.value.exceptions
    assert isinstance(skipped, DeploymentSkippedError)
    assert "Retry-After" in str(info.value)
    assert env.requests("sg") == 2


async def test_throttle_on_one_twin_is_not_sprayed_at_the_other(env: Env) -> None:
    env.emu.set_faults(name("cn-a"), retry_after_s=0.4)
    env.emu.script(name("cn-a"), ["429"])
    ex = env.executor()
    events: list[ExecutionEvent] = []
    resp = await ex.execute(
        env.plan("cn-a", "cn-b", "sg"), REQUEST, call_id="c-twin", on_event=events.append
    )
    assert resp.deployment == name("sg")
    assert env.requests("cn-a") == 1
    assert env.requests("cn-b") == 0  # same key: cooled down together, never asked
    assert ex.breakers.health(env.dep["cn-b"]) == "open"

    # Next call, while the scope is held: the twin is skipped without a request.
    resp = await ex.execute(env.plan("cn-b", "sg"), REQUEST, call_id="c-twin2")
    assert resp.deployment == name("sg")
    assert env.requests("cn-b") == 0

    # Once the Retry-After has elapsed the twin serves again.
    await asyncio.sleep(0.4)
    assert ex.breakers.health(env.dep["cn-b"]) == "closed"
    resp = await ex.execute(env.plan("cn-b", "sg"), REQUEST, call_id="c-twin3")
    assert resp.deployment == name("cn-b")
    assert env.requests("cn-b") == 1


async def test_twins_alone_wait_for_the_retry_after_then_retry_the_throttled_one(env: Env) -> None:
    env.emu.set_faults(name("cn-a"), retry_after_s=0.3)
    env.emu.script(name("cn-a"), ["429"])
    ex = env.executor()
    started = time.perf_counter()
    resp = await ex.execute(env.plan("cn-a", "cn-b"), REQUEST, call_id="c-twins")
    assert time.perf_counter() - started >= 0.3
    assert resp.deployment == name("cn-a")
    assert env.requests("cn-a") == 2
    assert env.requests("cn-b") == 0


class ThrottledProvider:
    """A provider whose 429s carry no Retry-After (the emulator always sends one)."""

    def __init__(self, deployment: Deployment, calls: list[str]) -> None:
        self.deployment = deployment
        self.calls = calls

    async def complete(self, request: ChatRequest, *, extra_headers: Any = None) -> ChatResponse:
        self.calls.append(self.deployment.id)
        if self.deployment.site == "cn-a":
            raise RetryableError(
                "rate limited",
                deployment=self.deployment.id,
                status=429,
                code="rate_limit_exceeded",
            )
        return ChatResponse(text="ok", deployment=self.deployment.id, usage=Usage(input_tokens=3))

    async def aclose(self) -> None:
        pass


async def test_throttle_without_retry_after_defers_the_twins_in_the_call(env: Env) -> None:
    calls: list[str] = []
    ex = Executor(
        providers=ProviderPool(lambda d: ThrottledProvider(d, calls)),
        ledger=MemoryLedger(),
        retry=FAST_RETRY,
        breakers=BreakerRegistry(BreakerSettings(failure_threshold=10)),
    )
    resp = await ex.execute(env.plan("cn-a", "cn-b", "sg"), REQUEST)
    assert resp.deployment == name("sg")
    assert calls == [name("cn-a"), name("sg")]
    # Alone with its twin: the throttled one is retried after its backoff and the twin
    # held back with it, so the throttled key sees one request at a time.
    calls.clear()
    resp = await ex.execute(env.plan("cn-a", "cn-b"), REQUEST)
    assert resp.deployment == name("cn-b")
    assert calls == [name("cn-a")] * 3 + [name("cn-b")]


async def test_retry_here_fails_over_at_once_and_comes_back_last(env: Env) -> None:
    # No jitter: with equal backoffs the deployment that failed first is ready first, so
    # the order below does not depend on how fast the machine answers.
    ex = env.executor(
        retry=RetrySettings(
            max_retries=2, backoff_initial_s=0.05, backoff_max_s=0.1, backoff_jitter_s=0.0
        )
    )
    env.emu.script(name("sg"), ["500"])
    events: list[ExecutionEvent] = []
    resp = await ex.execute(env.plan("sg", "us"), REQUEST, call_id="c-fo", on_event=events.append)
    assert resp.deployment == name("us")
    assert kinds(events) == [
        ("attempt_failed", name("sg"), None),
        ("failover", name("sg"), name("us")),
    ]
    assert events[0].error_kind == "retry_here"
    assert events[1].delay_s == 0.0  # no backoff before moving on
    first, second = ex.ledger.attempts(call_id="c-fo")
    assert (first.deployment, second.deployment) == (name("sg"), name("us"))

    # Both fail: the executor returns to the first after its backoff.
    env.emu.script(name("sg"), ["500", "ok"])
    env.emu.script(name("us"), ["503"])
    resp = await ex.execute(env.plan("sg", "us"), REQUEST, call_id="c-back")
    assert resp.deployment == name("sg")
    outcomes = [
        (a.deployment, a.outcome, a.retry_index) for a in ex.ledger.attempts(call_id="c-back")
    ]
    assert outcomes == [
        (name("sg"), "retry_here", 0),
        (name("us"), "retry_here", 0),
        (name("sg"), "ok", 1),
    ]
    assert resp.attempts == 3


async def test_prefer_failover_off_retries_the_same_deployment_first(env: Env) -> None:
    retry = RetrySettings(
        max_retries=2, backoff_initial_s=0.02, backoff_max_s=0.05, prefer_failover=False
    )
    ex = env.executor(retry=retry)
    env.emu.script(name("sg"), ["500", "ok"])
    events: list[ExecutionEvent] = []
    resp = await ex.execute(env.plan("sg", "us"), REQUEST, call_id="c-same", on_event=events.append)
    assert resp.deployment == name("sg")
    assert env.requests("us") == 0
    assert ("retry", name("sg"), None) in kinds(events)


# --- circuit breakers across calls ---------------------------------------------------------------


async def test_breaker_opens_skips_then_half_opens_and_closes(env: Env) -> None:
    settings = BreakerSettings(failure_threshold=2, cooldown_s=0.3, max_cooldown_s=1.0)
    ex = env.executor(retry=RetrySettings(max_retries=0), breakers=settings)
    cn = env.dep["cn-c"]
    env.emu.set_outage(name("cn-c"))
    plan = env.plan("cn-c", "sg")

    for i in range(2):
        resp = await ex.execute(plan, REQUEST, call_id=f"c-br{i}")
        assert resp.deployment == name("sg")
    assert env.requests("cn-c") == 2
    assert ex.breakers.health(cn) == "open"

    events: list[ExecutionEvent] = []
    resp = await ex.execute(plan, REQUEST, call_id="c-br2", on_event=events.append)
    assert resp.deployment == name("sg")
    assert env.requests("cn-c") == 2  # skipped without a request
    assert ("breaker_open", name("cn-c"), None) in kinds(events)
    assert [a.deployment for a in ex.ledger.attempts(call_id="c-br2")] == [name("sg")]

    await asyncio.sleep(0.3)
    assert ex.breakers.health(cn) == "half_open"
    # The probe fails: open again, cool-down doubled.
    resp = await ex.execute(plan, REQUEST, call_id="c-br3")
    assert env.requests("cn-c") == 3
    probe = ex.ledger.attempts(call_id="c-br3")[0]
    assert (probe.deployment, probe.breaker_state) == (name("cn-c"), "half_open")
    info = ex.breakers.state(cn)
    assert info.state == "open"
    assert info.cooldown_s == pytest.approx(0.6)

    await asyncio.sleep(0.6)
    env.emu.set_outage(name("cn-c"), False)
    resp = await ex.execute(plan, REQUEST, call_id="c-br4")
    assert resp.deployment == name("cn-c")
    assert ex.breakers.health(cn) == "closed"
    assert ex.breakers.snapshot()[name("cn-c")].times_opened == 2


# --- the other taxonomy classes ------------------------------------------------------------------


async def test_failover_error_skips_the_whole_quota_scope(env: Env) -> None:
    env.emu.set_faults(name("cn-a"), quota_exhausted=True)
    ex = env.executor()
    events: list[ExecutionEvent] = []
    resp = await ex.execute(
        env.plan("cn-a", "cn-b", "sg"), REQUEST, call_id="c-quota", on_event=events.append
    )
    assert resp.deployment == name("sg")
    assert env.requests("cn-a") == 1
    assert env.requests("cn-b") == 0
    failed = ex.ledger.attempts(call_id="c-quota")[0]
    assert failed.outcome == "fail_over"
    assert ("skipped", name("cn-b"), None) in kinds(events)
    # A quota error is about the key: both twins' breakers are open now.
    assert ex.breakers.health(env.dep["cn-a"]) == "open"
    assert ex.breakers.health(env.dep["cn-b"]) == "open"


async def test_bad_key_fails_over(env: Env) -> None:
    env.emu.set_faults(name("sg"), auth_key="some-other-key")
    ex = env.executor()
    resp = await ex.execute(env.plan("sg", "us"), REQUEST, call_id="c-auth")
    assert resp.deployment == name("us")
    failed = ex.ledger.attempts(call_id="c-auth")[0]
    assert (failed.outcome, failed.status) == ("fail_over", 401)
    assert KEY not in (failed.error_message or "")


async def test_refusal_moves_to_another_jurisdiction_only(env: Env) -> None:
    env.emu.script(name("cn-a"), ["refusal"])
    ex = env.executor()
    events: list[ExecutionEvent] = []
    resp = await ex.execute(
        env.plan("cn-a", "cn-c", "sg"), REQUEST, call_id="c-refused", on_event=events.append
    )
    assert resp.deployment == name("sg")
    assert env.requests("cn-c") == 0  # another CN key, but the same jurisdiction
    assert ex.ledger.attempts(call_id="c-refused")[0].outcome == "content_refused"
    [skip] = [e for e in events if e.kind == "skipped"]
    assert skip.deployment == name("cn-c")
    assert "jurisdiction CN" in skip.message


async def test_context_too_long_tries_only_larger_windows(env: Env) -> None:
    env.emu.set_faults(name("cn-a"), context_limit_tokens=1000)
    long_request = ChatRequest(messages=[Message.user("lorem ipsum dolor " * 350)])  # ~1.5k tokens
    windows = {"cn-a": 1000, "sg": 800, "cn-c": 1000, "us": 128_000}
    ex = env.executor()
    resp = await ex.execute(
        env.plan("cn-a", "sg", "cn-c", "us", windows=windows), long_request, call_id="c-ctx"
    )
    assert resp.deployment == name("us")
    assert env.requests("sg") == 0
    assert env.requests("cn-c") == 0
    assert [a.outcome for a in ex.ledger.attempts(call_id="c-ctx")] == ["context_too_long", "ok"]


async def test_fatal_is_raised_at_once_with_one_request(env: Env) -> None:
    ex = env.executor()
    with pytest.raises(FatalError) as info:
        await ex.execute(env.plan("bad", "sg", "us"), REQUEST, call_id="c-fatal")
    assert not isinstance(info.value, ExceptionGroup)
    assert info.value.deployment == name("bad")
    assert env.requests("bad") == 1
    assert env.requests("sg") == 0
    assert env.requests("us") == 0
    [attempt] = ex.ledger.attempts(call_id="c-fatal")
    assert (attempt.outcome, attempt.status) == ("fatal", 400)


# --- budgets -------------------------------------------------------------------------------------


async def test_deadline_cuts_a_hanging_attempt(env: Env) -> None:
    env.emu.set_faults(name("sg"), p_hang=1.0, hang_s=5.0)
    ex = env.executor()
    started = time.perf_counter()
    with pytest.raises(BudgetExceededError) as info:
        await ex.execute(
            env.plan("sg", "us"), REQUEST, call_id="c-dl", budget=Budget(deadline_s=0.4)
        )
    assert 0.35 <= time.perf_counter() - started < 1.5
    assert info.value.budget == "deadline"
    assert "deadline" in str(info.value)
    assert name("sg") in str(info.value)
    [attempt] = ex.ledger.attempts(call_id="c-dl")
    assert attempt.outcome == "cancelled"
    assert env.requests("sg") == 1
    assert env.requests("us") == 0


async def test_stream_deadline_cuts_a_hanging_stream(env: Env) -> None:
    env.emu.set_faults(name("sg"), p_hang=1.0, hang_s=5.0)
    ex = env.executor()
    started = time.perf_counter()
    with pytest.raises(BudgetExceededError) as info:
        async for _ in ex.stream(
            env.plan("sg", "us"), REQUEST, call_id="c-sdl", budget=Budget(deadline_s=0.4)
        ):
            pass
    assert 0.35 <= time.perf_counter() - started < 1.5
    assert info.value.budget == "deadline"
    [attempt] = ex.ledger.attempts(call_id="c-sdl")
    assert attempt.outcome == "cancelled"
    assert env.requests("us") == 0


async def test_stream_deadline_passing_while_the_caller_is_busy_never_cancels_the_caller(
    env: Env,
) -> None:
    env.emu.set_faults(name("sg"), inter_token_ms=20)
    ex = env.executor()
    texts: list[str] = []

    async def slow_consumer() -> None:
        async for event in ex.stream(
            env.plan("sg"), REQUEST, call_id="c-busy", budget=Budget(deadline_s=0.3)
        ):
            if event.type == "text":
                texts.append(event.text)
                # The caller's own await outlives the deadline: it must finish undisturbed.
                await asyncio.sleep(0.4)

    with pytest.raises(BudgetExceededError):
        await slow_consumer()
    assert len(texts) == 1


async def test_deadline_is_never_slept_past(env: Env) -> None:
    env.emu.set_faults(name("sg"), retry_after_s=4.0)
    env.emu.script(name("sg"), ["429"])
    # A cap above the Retry-After: the only thing stopping the wait is the deadline.
    ex = env.executor(retry=RetrySettings(retry_after_cap_s=10.0))
    started = time.perf_counter()
    with pytest.raises(BudgetExceededError) as info:
        await ex.execute(env.plan("sg"), REQUEST, call_id="c-dl2", budget=Budget(deadline_s=3.0))
    # Sleeping for the Retry-After would take the whole 3 s deadline; it must give up at once.
    assert time.perf_counter() - started < 2.0
    assert info.value.budget == "deadline"
    cause = info.value.__cause__
    assert isinstance(cause, AllAttemptsFailedError)
    [error] = cause.exceptions
    assert isinstance(error, RetryableError)
    assert error.status == 429
    assert env.requests("sg") == 1


async def test_attempt_budget_counts_network_attempts(env: Env) -> None:
    for site in ("cn-c", "sg", "us"):
        env.emu.set_outage(name(site))
    ex = env.executor()
    with pytest.raises(BudgetExceededError) as info:
        await ex.execute(
            env.plan("cn-c", "sg", "us"), REQUEST, call_id="c-att", budget=Budget(max_attempts=2)
        )
    assert info.value.budget == "attempts"
    assert name("cn-c") in str(info.value)
    assert name("sg") in str(info.value)
    assert env.total_requests() == 2
    assert len(ex.ledger.attempts(call_id="c-att")) == 2


async def test_cost_budget_refuses_an_attempt_it_cannot_afford(env: Env) -> None:
    ex = env.executor()
    with pytest.raises(BudgetExceededError) as info:
        await ex.execute(
            env.plan("sg", expected_cost=0.5),
            REQUEST,
            call_id="c-cost",
            budget=Budget(max_cost_usd=0.1),
        )
    assert info.value.budget == "cost"
    assert env.total_requests() == 0
    # Affordable: goes through.
    resp = await ex.execute(
        env.plan("sg", expected_cost=0.01), REQUEST, budget=Budget(max_cost_usd=0.1)
    )
    assert resp.deployment == name("sg")


# --- hedging -------------------------------------------------------------------------------------


async def test_hedge_races_another_region_and_cancels_the_loser(env: Env) -> None:
    env.emu.set_faults(name("cn-a"), latency_ms=3000)
    ex = env.executor(hedge=HedgeSettings(enabled=True, delay_s=0.1))
    events: list[ExecutionEvent] = []
    started = time.perf_counter()
    resp = await ex.execute(
        env.plan("cn-a", "cn-b", "sg"), REQUEST, call_id="c-hedge", on_event=events.append
    )
    assert time.perf_counter() - started < 2.0  # the loser alone takes 3 s
    assert resp.deployment == name("sg")  # cn-b is in the same region: not a hedge
    attempts = {a.deployment: a for a in ex.ledger.attempts(call_id="c-hedge")}
    assert set(attempts) == {name("cn-a"), name("sg")}
    loser, winner = attempts[name("cn-a")], attempts[name("sg")]
    assert (loser.outcome, loser.hedged, loser.cost_usd) == ("cancelled", True, 0.0)
    assert (winner.outcome, winner.hedged) == ("ok", True)
    assert winner.cost_usd > 0
    assert resp.cost_usd == pytest.approx(loser.cost_usd + winner.cost_usd)
    assert resp.attempts == 2
    # The provider still saw the loser's request.
    assert env.requests("cn-a") == 1
    assert env.requests("cn-b") == 0
    [hedge] = [e for e in events if e.kind == "hedge"]
    assert (hedge.deployment, hedge.to_deployment) == (name("cn-a"), name("sg"))
    assert hedge.delay_s is not None
    assert 0.09 <= hedge.delay_s < 0.5


async def test_hedge_delay_follows_measured_p95(env: Env) -> None:
    env.emu.set_faults(name("cn-a"), latency_ms=700)
    latency = LatencyTracker()
    for _ in range(20):
        latency.observe(name("cn-a"), 0.15)
    hedge = HedgeSettings(enabled=True, min_delay_s=0.01, fallback_delay_s=5.0)
    ex = env.executor(hedge=hedge, latency=latency)
    events: list[ExecutionEvent] = []
    resp = await ex.execute(env.plan("cn-a", "us"), REQUEST, on_event=events.append)
    assert resp.deployment == name("us")
    [event] = [e for e in events if e.kind == "hedge"]
    assert event.delay_s is not None
    assert 0.14 <= event.delay_s < 0.6


async def test_fast_first_answer_starts_no_hedge(env: Env) -> None:
    ex = env.executor(hedge=HedgeSettings(enabled=True, delay_s=0.5))
    resp = await ex.execute(env.plan("sg", "us"), REQUEST, call_id="c-nohedge")
    assert resp.deployment == name("sg")
    [attempt] = ex.ledger.attempts(call_id="c-nohedge")
    assert not attempt.hedged
    assert env.requests("us") == 0


# --- streams -------------------------------------------------------------------------------------


async def collect(stream: AsyncIterator[Any]) -> list[Any]:
    return [event async for event in stream]


async def test_stream_failure_before_first_token_is_invisible(env: Env) -> None:
    env.emu.script(name("cn-a"), ["503"])
    ex = env.executor()
    events = await collect(ex.stream(env.plan("cn-a", "sg"), REQUEST, call_id="c-s0"))
    assert not any(isinstance(e, StreamResumed) for e in events)
    finish = events[-1]
    assert isinstance(finish, FinishEvent)
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == finish.response.text
    assert finish.response.deployment == name("sg")
    assert text.startswith(f"[simulated reply from {name('sg')}]")
    failed, ok = ex.ledger.attempts(call_id="c-s0")
    assert (failed.outcome, failed.streamed) == ("retry_here", True)
    assert (ok.outcome, ok.streamed) == ("ok", True)
    assert ok.ttft_s is not None
    assert ok.cost_usd > 0
    assert finish.response.cost_usd == pytest.approx(ok.cost_usd)


async def test_stream_break_after_first_token_raises_with_partial_text(env: Env) -> None:
    env.emu.script(name("sg"), ["mid_stream_error"])
    ex = env.executor(stream_failover="raise")
    received: list[str] = []

    async def read() -> None:
        async for event in ex.stream(env.plan("sg", "us"), REQUEST, call_id="c-s1"):
            if isinstance(event, TextDelta):
                received.append(event.text)

    with pytest.raises(StreamInterruptedError) as info:
        await read()
    assert received
    assert info.value.partial_text == "".join(received)
    assert isinstance(info.value.cause, ProviderError)
    assert info.value.__cause__ is info.value.cause
    assert env.requests("us") == 0
    [attempt] = ex.ledger.attempts(call_id="c-s1")
    assert attempt.outcome == "retry_here"
    assert attempt.ttft_s is not None


async def test_stream_resume_marks_the_switch_and_never_duplicates(env: Env) -> None:
    env.emu.script(name("cn-a"), ["stream_cut"])
    ex = env.executor(stream_failover="resume")
    notes: list[ExecutionEvent] = []
    events = await collect(
        ex.stream(env.plan("cn-a", "cn-b", "sg"), REQUEST, call_id="c-s2", on_event=notes.append)
    )
    markers = [i for i, e in enumerate(events) if isinstance(e, StreamResumed)]
    assert len(markers) == 1
    marker = events[markers[0]]
    before = "".join(e.text for e in events[: markers[0]] if isinstance(e, TextDelta))
    after = "".join(e.text for e in events[markers[0] :] if isinstance(e, TextDelta))
    # Same family in another region first: sg, not cn-b (same region as the broken one).
    assert (marker.from_deployment, marker.to_deployment) == (name("cn-a"), name("sg"))
    assert marker.chars_before == len(before) > 0
    assert before.startswith(f"[simulated reply from {name('cn-a')}]")
    finish = events[-1]
    assert isinstance(finish, FinishEvent)
    # After the marker: one fresh, complete answer, exactly once.
    assert after == finish.response.text
    assert after.startswith(f"[simulated reply from {name('sg')}]")
    assert after.count("[simulated reply from") == 1
    assert [a.outcome for a in ex.ledger.attempts(call_id="c-s2")] == ["retry_here", "ok"]
    assert env.requests("cn-b") == 0
    assert ("resumed", name("cn-a"), name("sg")) in kinds(notes)


async def test_stream_consumer_stopping_early_is_recorded_as_cancelled(env: Env) -> None:
    ex = env.executor()
    stream = ex.stream(env.plan("sg"), REQUEST, call_id="c-s3")
    async for event in stream:
        if isinstance(event, TextDelta):
            break
    await stream.aclose()  # type: ignore[attr-defined]
    [attempt] = ex.ledger.attempts(call_id="c-s3")
    assert attempt.outcome == "cancelled"
    assert env.requests("sg") == 1


# --- everything fails ----------------------------------------------------------------------------


async def test_total_outage_raises_one_group_with_every_error(env: Env) -> None:
    for site in ("cn-c", "sg", "us"):
        env.emu.set_outage(name(site))
    retry = RetrySettings(max_retries=1, backoff_initial_s=0.01, backoff_max_s=0.02)
    ex = env.executor(retry=retry, breakers=BreakerSettings(failure_threshold=10))
    with pytest.raises(AllAttemptsFailedError) as info:
        await ex.execute(env.plan("cn-c", "sg", "us"), REQUEST, call_id="c-all")
    group = info.value
    assert len(group.exceptions) == 6 == env.total_requests()
    assert len(ex.ledger.attempts(call_id="c-all")) == 6
    assert all(isinstance(e, RetryableError) for e in group.exceptions)
    message = str(group)
    for site in ("cn-c", "sg", "us"):
        assert name(site) in message
    assert "excluded by the plan" in message
    assert name("eu") in message
    assert Counter(e.deployment for e in group.exceptions) == {
        name("cn-c"): 2,
        name("sg"): 2,
        name("us"): 2,
    }


async def test_everything_skipped_says_so_without_a_request(env: Env) -> None:
    env.emu.set_outage(name("sg"))
    # No waiting on open breakers (last_resort_wait_s=0): skipped at once, unasked.
    ex = env.executor(
        retry=RetrySettings(max_retries=0),
        breakers=BreakerSettings(failure_threshold=1, last_resort_wait_s=0),
    )
    with pytest.raises(AllAttemptsFailedError):
        await ex.execute(env.plan("sg"), REQUEST)
    with pytest.raises(AllAttemptsFailedError) as info:
        await ex.execute(env.plan("sg"), REQUEST)
    assert env.requests("sg") == 1
    [skipped] = info.value.exceptions
    assert isinstance(skipped, DeploymentSkippedError)
    assert "no request was sent" in str(info.value)


async def test_an_open_breaker_is_a_last_resort_the_call_waits_and_probes(env: Env) -> None:
    env.emu.set_outage(name("sg"))
    settings = BreakerSettings(failure_threshold=1, cooldown_s=30.0, probe_interval_s=0.2)
    ex = env.executor(retry=RetrySettings(max_retries=0), breakers=settings)
    with pytest.raises(AllAttemptsFailedError):
        await ex.execute(env.plan("sg"), REQUEST)
    assert ex.breakers.health(env.dep["sg"]) == "open"  # for 30 s
    # With another candidate, the open breaker is not asked at all.
    resp = await ex.execute(env.plan("sg", "us"), REQUEST)
    assert resp.deployment == name("us")
    assert env.requests("sg") == 1
    # Nothing else in the plan: instead of failing unasked, the call waits for the breaker
    # to take an early probe, and it is that probe. The deployment is back: answered.
    env.emu.set_outage(name("sg"), False)
    events: list[ExecutionEvent] = []
    resp = await ex.execute(env.plan("sg"), REQUEST, call_id="c-lr", on_event=events.append)
    assert resp.deployment == name("sg")
    assert env.requests("sg") == 2
    [probe] = ex.ledger.attempts(call_id="c-lr")
    assert probe.breaker_state == "half_open"
    assert ex.breakers.health(env.dep["sg"]) == "closed"  # closed for every later call
    assert any("last resort" in e.message for e in events if e.kind == "breaker_open")


# --- conservation under a long randomised fault run ----------------------------------------------


@pytest.mark.slow
async def test_conservation_every_call_answered_once_and_ledger_matches_emulator(env: Env) -> None:
    emu = env.emu
    emu.set_faults(name("cn-c"), p_429=0.2, retry_after_s=0.05, p_500=0.15, p_reset=0.05)
    emu.set_faults(name("sg"), p_503=0.2, p_529=0.05, p_stream_cut=0.08, p_mid_stream_error=0.07)
    emu.set_faults(name("us"), p_500=0.15, p_429=0.1, retry_after_s=0.05, p_refusal=0.04)
    emu.set_outage(name("eu"))  # fully down: the calls planned only there must fail
    sites = ("cn-c", "sg", "us", "eu")
    breakers = BreakerSettings(failure_threshold=5, cooldown_s=0.2, max_cooldown_s=0.5)
    ex = env.executor(breakers=breakers, stream_failover="resume")
    rng = random.Random(1234)
    plans = [
        ["eu"] if i % 25 == 0 else rng.sample(["cn-c", "sg", "us", "eu"], 3) for i in range(300)
    ]
    semaphore = asyncio.Semaphore(16)
    answered: dict[str, Any] = {}
    failed: dict[str, BaseException] = {}

    async def one(i: int) -> None:
        call_id = f"cons-{i:03d}"
        plan = env.plan(*plans[i])
        budget = Budget(max_attempts=5)
        async with semaphore:
            try:
                if i % 3 == 0:
                    events = await collect(ex.stream(plan, REQUEST, call_id=call_id, budget=budget))
                    finish = events[-1]
                    assert isinstance(finish, FinishEvent)
                    text = [e for e in events if isinstance(e, TextDelta)]
                    markers = [e for e in events if isinstance(e, StreamResumed)]
                    if not markers:
                        assert "".join(e.text for e in text) == finish.response.text
                    answered[call_id] = finish.response
                else:
                    answered[call_id] = await ex.execute(
                        plan, REQUEST, call_id=call_id, budget=budget
                    )
            except (AllAttemptsFailedError, BudgetExceededError) as exc:
                failed[call_id] = exc

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(300)))
    assert time.perf_counter() - started < 60
    assert len(answered) + len(failed) == 300
    assert len(answered) > 200  # the faults are survivable most of the time
    assert {f"cons-{i:03d}" for i in range(0, 300, 25)} <= set(failed)

    attempts = ex.ledger.attempts()
    counters = emu.all_counters()
    # 1. Every request the emulator saw is exactly one ledger attempt, and vice versa.
    emulator_ids = Counter(
        rec.attempt_id for site in sites for rec in counters[name(site)].attempts
    )
    ledger_ids = Counter(f"{a.call_id}-{a.attempt_index}" for a in attempts)
    assert emulator_ids == ledger_ids
    assert max(ledger_ids.values()) == 1
    for site in sites:
        seen = counters[name(site)]
        mine = [a for a in attempts if a.deployment == name(site)]
        assert seen.requests == len(mine), site
        # 2. ... and each one with the same outcome class.
        expected: Counter[str] = Counter()
        for outcome, count in seen.by_outcome.items():
            if count:
                expected[EMULATOR_KIND[outcome]] += count
        assert Counter(a.outcome for a in mine) == expected, site
    # 3. Every answered call was answered exactly once; failed calls never.
    ok_by_call: Counter[str] = Counter()
    for site in sites:
        ok_by_call.update(counters[name(site)].ok_by_call())
    assert set(ok_by_call) == set(answered)
    assert set(ok_by_call.values()) == {1}
    # 4. Each reply carries its call's attempt count and whole priced cost; each failure
    #    holds one error per failed attempt (plus the deployments skipped unasked).
    by_call: dict[str, list[Any]] = {}
    for a in attempts:
        by_call.setdefault(a.call_id, []).append(a)
    for call_id, resp in answered.items():
        mine = by_call[call_id]
        assert resp.attempts == len(mine)
        assert resp.cost_usd == pytest.approx(sum(a.cost_usd for a in mine))
        assert [a.outcome for a in mine].count("ok") == 1
    for call_id, exc in failed.items():
        mine = by_call.get(call_id, [])
        assert all(a.outcome != "ok" for a in mine)
        group = exc if isinstance(exc, AllAttemptsFailedError) else exc.__cause__
        assert isinstance(group, AllAttemptsFailedError)
        real = [e for e in group.exceptions if not isinstance(e, DeploymentSkippedError)]
        assert len(real) == len(mine)
        assert [e.deployment for e in real] == [a.deployment for a in mine]


# --- plumbing: callbacks, pool, keys, redaction --------------------------------------------------


async def test_event_callback_errors_are_logged_not_raised(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: ExecutionEvent) -> None:
        raise RuntimeError("callback bug")

    def bad_success(deployment: Deployment) -> None:
        raise RuntimeError("router bug")

    env.emu.script(name("sg"), ["500"])
    ex = env.executor(on_success=bad_success)
    with caplog.at_level("ERROR", logger="hybridstack.resilience"):
        resp = await ex.execute(env.plan("sg", "us"), REQUEST, on_event=broken)
    assert resp.deployment == name("us")
    assert "on_event callback raised" in caplog.text
    assert "on_success callback raised" in caplog.text
    assert KEY not in caplog.text


async def test_pool_builds_one_provider_per_deployment(env: Env) -> None:
    pool = ProviderPool()
    first = pool.get(env.dep["sg"])
    assert pool.get(env.dep["sg"]) is first
    assert env.dep["sg"] in pool
    assert len(pool) == 1
    moved = env.dep["sg"].model_copy(update={"timeout_s": 5.0})
    assert pool.get(moved) is not first  # a changed definition gets a fresh client
    await pool.aclose()
    assert len(pool) == 0


async def test_deployment_without_key_is_skipped_without_a_request(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HYBRIDSTACK_TEST_MISSING_KEY", raising=False)
    keyless = env.dep["cn-c"].model_copy(
        update={"api_key": None, "api_key_env": "HYBRIDSTACK_TEST_MISSING_KEY"}
    )
    plan = Plan(
        skill="general",
        data_class="public",
        policy="test",
        candidates=(Candidate(keyless, context_window=32_000), Candidate(env.dep["sg"])),
    )
    ex = env.executor()
    events: list[ExecutionEvent] = []
    resp = await ex.execute(plan, REQUEST, call_id="c-key", on_event=events.append)
    assert resp.deployment == name("sg")
    assert env.requests("cn-c") == 0
    assert [a.deployment for a in ex.ledger.attempts(call_id="c-key")] == [name("sg")]
    [skip] = [e for e in events if e.kind == "skipped"]
    assert "HYBRIDSTACK_TEST_MISSING_KEY" in skip.message


async def test_redaction_applies_where_data_leaves_home(env: Env) -> None:
    request = ChatRequest(messages=[Message.user("Mail ana@example.com about the invoice")])
    plan = Plan(
        skill="general",
        data_class="personal",
        policy="test",
        candidates=(Candidate(env.dep["sg"], leaves_home=True),),
    )
    ex = env.executor()

    def redactor(req: ChatRequest, deployment: object) -> tuple[ChatRequest, dict[str, int]]:
        return redact(req)

    await ex.execute(plan, request, call_id="c-red", redact=redactor, redactions={"name": 1})
    [attempt] = ex.ledger.attempts(call_id="c-red")
    assert attempt.redactions == {"name": 1, "email": 1}
    home = Plan(
        skill="general",
        data_class="personal",
        policy="test",
        candidates=(Candidate(env.dep["sg"], leaves_home=False),),
    )
    await ex.execute(home, request, call_id="c-home", redact=redactor)
    [attempt] = ex.ledger.attempts(call_id="c-home")
    assert attempt.redactions == {}
