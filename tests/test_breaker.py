"""Circuit breakers per deployment and per quota scope, driven by a fake monotonic clock."""

from __future__ import annotations

from datetime import date

import pytest

from hybridstack.catalog.models import Deployment, Price
from hybridstack.errors import (
    ContentRefusedError,
    FailoverError,
    FatalError,
    RetryableError,
)
from hybridstack.resilience import (
    BreakerBlock,
    BreakerInfo,
    BreakerRegistry,
    BreakerSettings,
    CircuitBreaker,
)

PRICE = Price(input_per_mtok=1.0, output_per_mtok=2.0, as_of=date(2025, 1, 1))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def dep(site: str, scope: str = "") -> Deployment:
    return Deployment(
        family="fam",
        site=site,
        protocol="openai",
        model="fam",
        base_url="http://127.0.0.1:9",
        region=f"region-{site}",
        jurisdiction="US",
        operator="test",
        price=PRICE,
        quota_scope=scope,
    )


def server_error(d: Deployment) -> RetryableError:
    return RetryableError("boom", deployment=d.id, status=500, code="server_error")


def throttle(d: Deployment, retry_after: float | None = None) -> RetryableError:
    return RetryableError(
        "slow down",
        deployment=d.id,
        status=429,
        code="rate_limit_exceeded",
        retry_after=retry_after,
    )


SETTINGS = BreakerSettings(
    failure_threshold=3,
    cooldown_s=10.0,
    cooldown_multiplier=2.0,
    max_cooldown_s=35.0,
    failover_cooldown_s=100.0,
    probe_timeout_s=50.0,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def registry(clock: FakeClock) -> BreakerRegistry:
    return BreakerRegistry(SETTINGS, clock=clock)


def test_closed_until_threshold_then_open(registry: BreakerRegistry) -> None:
    a = dep("a")
    for _ in range(2):
        assert registry.acquire(a) == "closed"
        registry.record_failure(a, server_error(a))
    assert registry.health(a) == "closed"
    assert registry.acquire(a) == "closed"
    opened = registry.record_failure(a, server_error(a))
    assert opened == [a.id]
    assert registry.health(a) == "open"
    info = registry.state(a)
    assert info.state == "open"
    assert info.consecutive_failures == 3
    assert info.times_opened == 1
    assert info.retry_in_s == pytest.approx(10.0)
    assert "server_error" not in (info.last_error or "")  # message, not code
    assert "boom" in (info.last_error or "")


def test_success_resets_the_streak(registry: BreakerRegistry) -> None:
    a = dep("a")
    for _ in range(2):
        registry.record_failure(a, server_error(a))
    registry.record_success(a)
    for _ in range(2):
        registry.record_failure(a, server_error(a))
    assert registry.health(a) == "closed"


def test_open_breaker_refuses_without_a_call(registry: BreakerRegistry, clock: FakeClock) -> None:
    a = dep("a")
    for _ in range(3):
        registry.record_failure(a, server_error(a))
    block = registry.acquire(a)
    assert isinstance(block, BreakerBlock)
    assert block.reason == "open"
    assert block.retry_in_s == pytest.approx(10.0)
    clock.advance(4)
    block = registry.acquire(a)
    assert isinstance(block, BreakerBlock)
    assert block.retry_in_s == pytest.approx(6.0)
    assert "open" in block.describe()


def test_half_open_lets_exactly_one_probe(registry: BreakerRegistry, clock: FakeClock) -> None:
    a = dep("a")
    for _ in range(3):
        registry.record_failure(a, server_error(a))
    clock.advance(10)
    assert registry.health(a) == "half_open"
    assert registry.acquire(a) == "half_open"  # the probe
    second = registry.acquire(a)
    assert isinstance(second, BreakerBlock)
    assert second.reason == "half_open"
    assert second.retry_in_s is None
    # A cancelled probe frees the slot for the next caller.
    registry.release(a)
    assert registry.acquire(a) == "half_open"


def test_probe_success_closes(registry: BreakerRegistry, clock: FakeClock) -> None:
    a = dep("a")
    for _ in range(3):
        registry.record_failure(a, server_error(a))
    clock.advance(10)
    assert registry.acquire(a) == "half_open"
    registry.record_success(a)
    assert registry.health(a) == "closed"
    assert registry.acquire(a) == "closed"
    assert registry.acquire(a) == "closed"  # no probe gate any more
    assert registry.state(a).cooldown_s == 10.0


def test_probe_failure_reopens_with_doubled_cooldown_up_to_max(
    registry: BreakerRegistry, clock: FakeClock
) -> None:
    a = dep("a")
    for _ in range(3):
        registry.record_failure(a, server_error(a))
    for want in (20.0, 35.0, 35.0):  # 10 -> 20 -> 40 capped at 35 -> stays 35
        clock.advance(registry.state(a).retry_in_s or 0.0)
        assert registry.health(a) == "half_open"
        assert registry.acquire(a) == "half_open"
        assert registry.record_failure(a, server_error(a)) == [a.id]
        info = registry.state(a)
        assert info.state == "open"
        assert info.cooldown_s == want
        assert info.retry_in_s == pytest.approx(want)
        clock.advance(want - 0.5)
        assert registry.health(a) == "open"
    # After a successful probe the next opening starts from the base cool-down again.
    clock.advance(0.5)
    assert registry.acquire(a) == "half_open"
    registry.record_success(a)
    for _ in range(3):
        registry.record_failure(a, server_error(a))
    assert registry.state(a).cooldown_s == 10.0


def test_stuck_probe_expires(registry: BreakerRegistry, clock: FakeClock) -> None:
    a = dep("a")
    for _ in range(3):
        registry.record_failure(a, server_error(a))
    clock.advance(10)
    assert registry.acquire(a) == "half_open"
    assert isinstance(registry.acquire(a), BreakerBlock)
    clock.advance(SETTINGS.probe_timeout_s)
    assert registry.acquire(a) == "half_open"


def test_failover_error_opens_at_once_for_longer(
    registry: BreakerRegistry, clock: FakeClock
) -> None:
    a, b = dep("a", "shared"), dep("b", "shared")
    # A retired model: only this deployment, not the scope.
    gone = FailoverError("model retired", deployment=a.id, status=404, code="model_not_found")
    assert registry.record_failure(a, gone) == [a.id]
    assert registry.health(a) == "open"
    assert registry.state(a).retry_in_s == pytest.approx(100.0)
    assert registry.health(b) == "closed"
    # An exhausted quota: the whole key, so the twin cools down too.
    quota = FailoverError("quota", deployment=b.id, status=429, code="insufficient_quota")
    opened = registry.record_failure(b, quota)
    assert opened == [b.id, "scope:shared"]
    assert registry.health(b) == "open"
    clock.advance(60)
    assert registry.health(a) == "open"
    clock.advance(40)
    assert registry.health(a) == "half_open"


def test_quota_scope_is_shared_by_twins(registry: BreakerRegistry) -> None:
    a, b, c = dep("a", "key-1"), dep("b", "key-1"), dep("c", "key-2")
    # Throttles on either twin count towards the one scope breaker.
    registry.record_failure(a, throttle(a))
    registry.record_failure(b, throttle(b))
    registry.record_failure(a, throttle(a))
    assert registry.health(b) == "open"  # b itself failed once, but its scope is open
    assert registry.state(b).state == "open"
    assert registry.breaker(b).state == "closed"
    assert registry.health(c) == "closed"
    block = registry.acquire(b)
    assert isinstance(block, BreakerBlock)
    assert block.scope
    assert "quota scope key-1" in block.describe()


def test_retry_after_holds_the_scope_until_it_elapses(
    registry: BreakerRegistry, clock: FakeClock
) -> None:
    a, b = dep("a", "key-1"), dep("b", "key-1")
    opened = registry.record_failure(a, throttle(a, retry_after=2.5))
    assert opened == ["scope:key-1"]
    for d in (a, b):
        assert registry.health(d) == "open"
        block = registry.acquire(d)
        assert isinstance(block, BreakerBlock)
        assert block.reason == "hold"
        assert block.retry_in_s == pytest.approx(2.5)
    assert registry.state(b).held_for_s == pytest.approx(2.5)
    clock.advance(2.5)
    # The provider said when: no probe needed, both flow again.
    assert registry.health(b) == "closed"
    assert registry.acquire(a) == "closed"
    assert registry.acquire(b) == "closed"


def test_retry_after_on_a_5xx_holds_only_the_deployment(
    registry: BreakerRegistry, clock: FakeClock
) -> None:
    a, b = dep("a", "key-1"), dep("b", "key-1")
    busy = RetryableError("busy", deployment=a.id, status=503, retry_after=1.0)
    registry.record_failure(a, busy)
    assert registry.health(a) == "open"
    assert registry.health(b) == "closed"
    clock.advance(1.0)
    assert registry.health(a) == "closed"


def test_answers_about_the_request_count_as_alive(
    registry: BreakerRegistry, clock: FakeClock
) -> None:
    a = dep("a")
    for _ in range(3):
        registry.record_failure(a, server_error(a))
    clock.advance(10)
    assert registry.acquire(a) == "half_open"
    registry.record_failure(a, ContentRefusedError("no", deployment=a.id, code="content_filter"))
    assert registry.health(a) == "closed"
    registry.record_failure(a, FatalError("bad", deployment=a.id, status=400))
    assert registry.health(a) == "closed"


def test_snapshot_lists_deployments_and_scopes(registry: BreakerRegistry, clock: FakeClock) -> None:
    a, b = dep("a", "key-1"), dep("b", "key-1")
    registry.acquire(a)
    registry.acquire(b)
    for _ in range(3):
        registry.record_failure(a, server_error(a))
    snap = registry.snapshot()
    assert set(snap) == {a.id, b.id, "scope:key-1"}
    assert all(isinstance(v, BreakerInfo) for v in snap.values())
    assert snap[a.id].state == "open"
    assert snap[a.id].scope == "key-1"
    assert snap[b.id].state == "closed"
    assert snap["scope:key-1"].kind == "quota_scope"
    assert set(snap["scope:key-1"].members) == {a.id, b.id}
    assert snap[a.id].failures == 3
    assert "not_closed=['fam@a']" in repr(registry)


def test_unknown_deployment_is_closed(registry: BreakerRegistry) -> None:
    assert registry.health("nothing@here") == "closed"
    assert registry.state("nothing@here").state == "closed"


def test_reset(registry: BreakerRegistry) -> None:
    a = dep("a")
    for _ in range(3):
        registry.record_failure(a, server_error(a))
    registry.reset(a)
    assert registry.health(a) == "closed"
    for _ in range(3):
        registry.record_failure(a, server_error(a))
    registry.reset()
    assert registry.health(a) == "closed"


def test_bare_breaker_with_clock(clock: FakeClock) -> None:
    breaker = CircuitBreaker("x", BreakerSettings(failure_threshold=1, cooldown_s=1.0), clock=clock)
    assert breaker.try_acquire() == "closed"
    assert breaker.on_failure("e") is True
    assert breaker.state == "open"
    clock.advance(1.0)
    assert breaker.state == "half_open"
    assert breaker.try_acquire() == "half_open"
    breaker.on_success()
    assert breaker.state == "closed"


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        BreakerSettings(failure_threshold=0)
    with pytest.raises(ValueError, match="cooldown_multiplier"):
        BreakerSettings(cooldown_multiplier=0.5)


def test_an_unproven_deployment_takes_only_a_few_requests_at_once() -> None:
    breaker = CircuitBreaker("new@site", BreakerSettings(warmup_max_in_flight=2))
    assert breaker.try_acquire() == "closed"
    assert breaker.try_acquire() == "closed"
    block = breaker.try_acquire()
    assert isinstance(block, BreakerBlock)
    assert block.reason == "warmup"
    assert "not answered yet" in block.describe()
    breaker.release()  # a cancelled attempt frees its place
    assert breaker.try_acquire() == "closed"
    breaker.on_success()  # proven: the cap no longer applies
    assert all(breaker.try_acquire() == "closed" for _ in range(10))


def test_the_warmup_cap_can_be_switched_off_and_is_validated() -> None:
    breaker = CircuitBreaker("new@site", BreakerSettings(warmup_max_in_flight=None))
    assert all(breaker.try_acquire() == "closed" for _ in range(20))
    with pytest.raises(ValueError, match="warmup_max_in_flight"):
        BreakerSettings(warmup_max_in_flight=0)
