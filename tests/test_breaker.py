"""Circuit breakers per deployment and per quota scope, driven by a fake monotonic clock."""

from __future__ import annotations

import random
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


# --- judging by rate and by send order -----------------------------------------------------


def test_a_30_percent_failing_deployment_is_not_benched_by_chance(clock: FakeClock) -> None:
    rng = random.Random(8)
    breaker = CircuitBreaker("flaky", BreakerSettings(), clock=clock)
    breaker.on_success()  # answered once: past the warm-up cap
    for _ in range(400):
        # Eight requests out at once; the failures (instant 5xx) come back before the
        # successes sent with them. Runs of 5 failures happen, but it keeps answering.
        tickets = [breaker.admit() for _ in range(8)]
        fails = [rng.random() < 0.3 for _ in tickets]
        for ticket, failed in zip(tickets, fails, strict=True):
            assert not isinstance(ticket, BreakerBlock)
            if failed:
                breaker.on_failure("500", ticket)
        for ticket, failed in zip(tickets, fails, strict=True):
            if not failed:
                breaker.on_success(ticket)  # type: ignore[arg-type]
        clock.advance(0.05)
    assert breaker.times_opened == 0
    info = breaker.info()
    assert info.window_requests == 100
    assert info.failure_rate is not None
    assert 0.15 < info.failure_rate < 0.45


def test_a_dead_deployment_is_found_in_a_few_requests(clock: FakeClock) -> None:
    breaker = CircuitBreaker("dead", BreakerSettings(failure_threshold=5), clock=clock)
    for i in range(5):
        ticket = breaker.admit()
        assert not isinstance(ticket, BreakerBlock)
        assert breaker.on_failure("503", ticket) is (i == 4)
    assert breaker.state == "open"


def test_one_that_was_answering_opens_after_a_long_failure_run(clock: FakeClock) -> None:
    settings = BreakerSettings(failure_threshold=5, minimum_requests=20)
    breaker = CircuitBreaker("died", settings, clock=clock)
    for _ in range(60):
        breaker.on_success()
    # It answered a moment ago, so 5 failures in a row are not yet enough ...
    for _ in range(19):
        assert breaker.on_failure("503") is False
    assert breaker.state == "closed"
    assert breaker.info().consecutive_failures == 19
    # ... but a run of minimum_requests is.
    assert breaker.on_failure("503") is True
    assert breaker.state == "open"


def test_runs_are_counted_in_send_order_not_completion_order(clock: FakeClock) -> None:
    settings = BreakerSettings(minimum_requests=20)
    breaker = CircuitBreaker("died", settings, clock=clock)
    for _ in range(30):
        breaker.on_success(breaker.admit())  # type: ignore[arg-type]
    slow = breaker.admit()  # a slow success, sent before the deployment died
    failures = [breaker.admit() for _ in range(20)]
    for ticket in failures[:19]:  # the instant 5xx overtake it ...
        assert breaker.on_failure("500", ticket) is False  # type: ignore[arg-type]
    breaker.on_success(slow)  # type: ignore[arg-type]
    # ... and its late success does not wipe out the 19 failures sent after it: in send
    # order the last 20 requests all failed (in completion order the run would be 1).
    assert breaker.on_failure("500", failures[19]) is True  # type: ignore[arg-type]
    assert breaker.state == "open"


def test_a_mostly_failing_deployment_opens_on_its_failure_rate(clock: FakeClock) -> None:
    settings = BreakerSettings(minimum_requests=20, failure_rate_threshold=0.6)
    breaker = CircuitBreaker("bad", settings, clock=clock)
    opened_at = None
    for i in range(60):
        if i % 3 == 2:  # fail, fail, succeed: never a run of 5, but 2/3 fail
            breaker.on_success()
        elif breaker.on_failure("500"):
            opened_at = i
            break
    assert opened_at is not None
    assert opened_at >= 19  # not before the window holds minimum_requests outcomes
    info = breaker.info()
    assert info.window_requests >= 20
    assert info.failure_rate is not None
    assert info.failure_rate >= 0.6


def test_the_window_forgets_outcomes_older_than_window_s(clock: FakeClock) -> None:
    breaker = CircuitBreaker("x", BreakerSettings(window_s=10.0, window_size=50), clock=clock)
    for _ in range(3):
        breaker.on_failure("500")
    clock.advance(5)
    breaker.on_success()
    assert (breaker.info().window_requests, breaker.info().window_failures) == (4, 3)
    clock.advance(6)
    info = breaker.info()
    assert (info.window_requests, info.window_failures, info.failure_rate) == (1, 0, 0.0)
    for _ in range(60):
        breaker.on_success()
    assert breaker.info().window_requests == 50  # and count-bounded


def test_answers_to_requests_sent_before_a_state_change_are_stale(clock: FakeClock) -> None:
    breaker = CircuitBreaker("x", BreakerSettings(failure_threshold=3), clock=clock)
    slow = breaker.admit()
    assert not isinstance(slow, BreakerBlock)
    for _ in range(3):
        breaker.on_failure("500", breaker.admit())  # type: ignore[arg-type]
    assert breaker.state == "open"
    breaker.on_success(slow)  # sent before it opened: counted, but does not close it
    assert breaker.state == "open"
    assert breaker.successes_total == 1
    clock.advance(30)
    probe = breaker.admit()
    old = breaker.admit()  # a second caller is refused while the probe is out
    assert isinstance(old, BreakerBlock)
    assert old.reason == "half_open"
    assert not isinstance(probe, BreakerBlock)
    assert probe.probe
    breaker.on_success(probe)
    assert breaker.state == "closed"
    assert breaker.info().window_requests == 0  # a fresh window after closing


def test_a_call_with_nothing_else_left_becomes_an_early_probe(clock: FakeClock) -> None:
    settings = BreakerSettings(failure_threshold=1, cooldown_s=30.0, probe_interval_s=2.0)
    breaker = CircuitBreaker("x", settings, clock=clock)
    breaker.on_failure("500", breaker.admit())  # type: ignore[arg-type]
    block = breaker.admit(last_resort=True)
    assert isinstance(block, BreakerBlock)
    assert (block.reason, block.last_resort_in_s) == ("open", pytest.approx(2.0))
    clock.advance(2.0)
    assert isinstance(breaker.admit(), BreakerBlock)  # an ordinary call still skips it
    probe = breaker.admit(last_resort=True)
    assert not isinstance(probe, BreakerBlock)
    assert (probe.state, probe.probe) == ("half_open", True)
    busy = breaker.admit(last_resort=True)  # one probe at a time: ask again soon
    assert isinstance(busy, BreakerBlock)
    assert busy.last_resort_in_s is not None
    assert busy.last_resort_in_s < 1.0
    # A failed early probe leaves the cool-down as it was; the next one waits an interval.
    assert breaker.on_failure("500", probe) is False
    assert breaker.state == "open"
    assert breaker.retry_in() == pytest.approx(28.0)
    assert isinstance(breaker.admit(last_resort=True), BreakerBlock)
    clock.advance(2.0)
    probe = breaker.admit(last_resort=True)
    assert not isinstance(probe, BreakerBlock)
    breaker.on_success(probe)
    assert breaker.state == "closed"


def test_a_failover_trip_takes_no_early_probe(clock: FakeClock) -> None:
    breaker = CircuitBreaker("x", BreakerSettings(probe_interval_s=1.0), clock=clock)
    breaker.trip(300.0, "bad key")
    clock.advance(5)
    block = breaker.admit(last_resort=True)
    assert isinstance(block, BreakerBlock)
    assert block.last_resort_in_s == pytest.approx(295.0)
    assert breaker.info().failover is True


def test_several_half_open_probes_when_configured(clock: FakeClock) -> None:
    settings = BreakerSettings(failure_threshold=1, cooldown_s=1.0, half_open_max_probes=2)
    breaker = CircuitBreaker("x", settings, clock=clock)
    breaker.on_failure("500")
    clock.advance(1.0)
    first, second = breaker.admit(), breaker.admit()
    assert not isinstance(first, BreakerBlock)
    assert not isinstance(second, BreakerBlock)
    assert isinstance(breaker.admit(), BreakerBlock)
    assert breaker.info().probes_in_flight == 2
    breaker.release(first)
    assert not isinstance(breaker.admit(), BreakerBlock)


def test_a_throttle_without_retry_after_holds_the_scope_briefly(clock: FakeClock) -> None:
    registry = BreakerRegistry(BreakerSettings(throttle_hold_s=0.5), clock=clock)
    a, b = dep("a", "key-1"), dep("b", "key-1")
    assert registry.record_failure(a, throttle(a)) == ["scope:key-1"]
    block = registry.admit(b)
    assert isinstance(block, BreakerBlock)
    assert (block.reason, block.retry_in_s) == ("hold", pytest.approx(0.5))
    clock.advance(0.5)
    assert registry.health(b) == "closed"


def test_admissions_carry_both_tickets(registry: BreakerRegistry) -> None:
    a = dep("a", "key-1")
    admission = registry.admit(a)
    assert not isinstance(admission, BreakerBlock)
    assert admission.state == "closed"
    assert admission.own.seq == 0
    assert admission.scope.seq == 0
    registry.record_success(a, admission)
    assert registry.state(a).successes == 1


def test_new_settings_are_validated() -> None:
    for bad in (
        {"minimum_requests": 0},
        {"window_size": 0},
        {"half_open_max_probes": 0},
        {"failure_rate_threshold": 0},
        {"failure_rate_threshold": 1.5},
        {"window_s": 0},
        {"probe_interval_s": -1},
        {"last_resort_wait_s": -1},
        {"throttle_hold_s": -0.1},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            BreakerSettings(**bad)  # type: ignore[arg-type]
