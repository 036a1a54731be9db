"""Shared health state through a real Redis (127.0.0.1:6379): breakers, holds, probes, outage.

Every test uses its own key prefix and deletes its keys afterwards. Skipped (with the
reason) only when no Redis answers on 127.0.0.1:6379.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import date
from pathlib import Path

import pytest
from pydantic import SecretStr

from hybridstack import Stack
from hybridstack.catalog import Catalog, Deployment, Family, Price
from hybridstack.config import load_config
from hybridstack.errors import ConfigurationError, ProviderError, RetryableError
from hybridstack.resilience import (
    BreakerRegistry,
    BreakerSettings,
    LatencyTracker,
    MemoryHealthStore,
    RedisHealthStore,
    RetrySettings,
)
from hybridstack.routing import Router
from hybridstack.testing.emulator import EmulatedDeployment, Emulator, EmulatorConfig

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
FAMILY = "shared"
KEY = "sk-test-shared-0123456789"
PRICE = Price(input_per_mtok=1.0, output_per_mtok=2.0, as_of=date(2026, 1, 1))
FAST_RETRY = RetrySettings(backoff_initial_s=0.01, backoff_max_s=0.05, backoff_jitter_s=0.01)
ROOT = Path(__file__).resolve().parents[1]


def _redis_up() -> bool:
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


pytestmark = pytest.mark.skipif(
    not _redis_up(), reason=f"no Redis answers PING on {REDIS_HOST}:{REDIS_PORT}"
)
URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


@pytest.fixture
def prefix() -> Iterator[str]:
    name = f"redis-test-{secrets.token_hex(4)}"
    yield name
    cleaner = RedisHealthStore(URL, prefix=name)
    try:
        cleaner.close()
        cleaner.clear()
    finally:
        pass


def settle(*stores: RedisHealthStore) -> None:
    """Every store pushed what it had, then pulled what the others pushed."""
    for s in (*stores, *stores):
        assert s.sync_now(), f"{s!r} could not reach Redis"


def store(prefix: str, url: str = URL, **options: float) -> RedisHealthStore:
    return RedisHealthStore(url, prefix=prefix, **options)


def dep(site: str, scope: str = "", base_url: str = "http://127.0.0.1:9/v1") -> Deployment:
    return Deployment(
        family=FAMILY,
        site=site,
        protocol="openai",
        model=FAMILY,
        base_url=base_url,
        region=f"region-{site}",
        jurisdiction={"dead": "CN", "ok": "SG", "ok2": "EU"}.get(site, "US"),
        operator="emulator",
        api_key=SecretStr(KEY),
        price=PRICE,
        quota_scope=scope,
    )


def failure(status: int, retry_after: float | None = None) -> ProviderError:
    return RetryableError(f"HTTP {status}", status=status, retry_after=retry_after)


# --------------------------------------------------------------------------- breakers


def test_a_breaker_opened_by_one_process_is_open_in_another(prefix: str) -> None:
    a, b = store(prefix), store(prefix)
    try:
        here, there = BreakerRegistry(store=a), BreakerRegistry(store=b)
        down = dep("dead")
        for _ in range(3):  # fewer than failure_threshold (5): neither opens alone
            here.record_failure(down, failure(503), here.admit(down))  # type: ignore[arg-type]
            there.record_failure(down, failure(503), there.admit(down))  # type: ignore[arg-type]
        settle(a, b)
        # Six failures in the shared window: the fleet's breaker opened (Redis decided).
        assert here.health(down) == "open"
        assert there.health(down) == "open"
        # A third process that never called it sees it open before its first request.
        c = store(prefix)
        try:
            assert c.sync_now()
            fresh = BreakerRegistry(store=c)
            assert fresh.health(down) == "open"
            assert fresh.admit(down).__class__.__name__ == "BreakerBlock"
        finally:
            c.close()
    finally:
        a.close()
        b.close()


def test_retry_after_hold_and_opening_reach_another_process(prefix: str) -> None:
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from tests.test_health_redis import dep, failure
        from hybridstack.resilience import BreakerRegistry, RedisHealthStore
        s = RedisHealthStore({URL!r}, prefix={prefix!r})
        reg = BreakerRegistry(store=s)
        throttled, down = dep("ok", scope="shared-key"), dep("dead")
        reg.record_failure(throttled, failure(429, retry_after=30.0), reg.admit(throttled))
        for _ in range(5):
            reg.record_failure(down, failure(503), reg.admit(down))
        assert s.sync_now(), "could not reach Redis"
        s.close()
        print("done")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-2000:]
    mine = store(prefix)
    try:
        assert mine.sync_now()
        registry = BreakerRegistry(store=mine)
        twin = dep("ok2", scope="shared-key")  # never used anywhere: same key as "ok"
        info = registry.state(twin)
        assert info.state == "open"  # the other process's 429 holds the whole quota scope
        assert 25 < info.held_for_s <= 30
        assert registry.health(dep("dead")) == "open"
        assert registry.state(dep("dead")).retry_in_s > 25  # type: ignore[operator]
    finally:
        mine.close()


def test_only_one_process_sends_the_half_open_probe(prefix: str) -> None:
    settings = BreakerSettings(cooldown_s=0.3)
    stores = [store(prefix) for _ in range(3)]
    try:
        registries = [BreakerRegistry(settings, store=s) for s in stores]
        down = dep("dead")
        for _ in range(5):
            registries[0].record_failure(down, failure(503), registries[0].admit(down))  # type: ignore[arg-type]
        settle(*stores)
        assert all(r.health(down) == "open" for r in registries)
        time.sleep(0.35)  # the cool-down ends everywhere
        probes: dict[int, object] = {}
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and not probes:
            for i, registry in enumerate(registries):
                gate = registry.admit(down)
                if gate.__class__.__name__ == "BreakerAdmission":
                    probes[i] = gate
            time.sleep(0.02)
        # Keep asking for a while: nobody else gets a probe while it is out.
        for _ in range(10):
            for i, registry in enumerate(registries):
                if i not in probes:
                    gate = registry.admit(down)
                    assert gate.__class__.__name__ == "BreakerBlock", (i, gate)
            time.sleep(0.02)
        assert len(probes) == 1, probes
        (owner, admission) = next(iter(probes.items()))
        registries[owner].record_success(down, admission)  # type: ignore[arg-type]
        settle(*stores)
        # The probe's verdict closed the breaker for the fleet.
        assert [r.health(down) for r in registries] == ["closed"] * 3
    finally:
        for s in stores:
            s.close()


# --------------------------------------------------------------------------- latency, shares


def test_latency_ewma_and_jurisdiction_shares_are_the_fleets(prefix: str) -> None:
    a, b = store(prefix), store(prefix)
    try:
        seen_here, seen_there = LatencyTracker(store=a), LatencyTracker(store=b)
        seen_here.observe("x@one", 0.2)
        assert a.sync_now()
        seen_there.observe("x@one", 0.4)
        catalog = Catalog(
            [Family(name=FAMILY, vendor="t", context_window=8000, skills={"general": 1})],
            [dep("dead"), dep("ok")],
        )
        router_a = Router(catalog, share_store=a, policy="diversified")
        router_b = Router(catalog, share_store=b, policy="diversified")
        for _ in range(3):
            router_a.record_choice(f"{FAMILY}@dead")
        router_b.record_choice(f"{FAMILY}@ok")
        router_b.jurisdiction_shares()  # asks for the window: the next pull carries it
        settle(a, b)
        # 0.2 first, then 0.3 * 0.4 + 0.7 * 0.2 (arrival order in Redis).
        assert seen_there.ewma("x@one") == pytest.approx(0.26)
        assert seen_here.ewma("x@one") == pytest.approx(0.26)
        assert router_b.jurisdiction_shares() == {"CN": 0.75, "SG": 0.25}
    finally:
        a.close()
        b.close()


# --------------------------------------------------------------------------- stacks


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    names = [f"{FAMILY}@{site}" for site in ("dead", "ok")]
    config = EmulatorConfig(
        deployments=[EmulatedDeployment(name=n, protocol="openai", model=FAMILY) for n in names],
        seed=5,
        reply_words=3,
    )
    async with Emulator(config) as emu:
        emu.set_faults(f"{FAMILY}@dead", outage=True)
        yield emu


def emulated_catalog(emu: Emulator) -> Catalog:
    family = Family(name=FAMILY, vendor="t", context_window=8000, skills={"general": 1})
    return Catalog(
        [family],
        [dep(site, base_url=emu.base_url(f"{FAMILY}@{site}")) for site in ("dead", "ok")],
    )


async def test_two_stacks_in_one_process_share_a_dead_region(
    emulator: Emulator, prefix: str
) -> None:
    catalog = emulated_catalog(emulator)
    shared_a, shared_b = store(prefix), store(prefix)
    first = Stack(catalog, seed=1, retry=FAST_RETRY, health_store=shared_a)
    second = Stack(catalog, seed=2, retry=FAST_RETRY, health_store=shared_b)
    dead = f"{FAMILY}@dead"
    try:
        for _ in range(60):
            await first.complete("hello", skill="general")
            if first.breakers.health(dead) == "open":
                break
        assert first.breakers.health(dead) == "open"
        await asyncio.to_thread(shared_b.sync_now)
        before = emulator.counters(dead).requests
        for _ in range(10):
            reply = await second.complete("hello", skill="general")
            assert reply.deployment == f"{FAMILY}@ok"
        # The second stack learnt of the outage from the first: no request of its own.
        assert emulator.counters(dead).requests == before
    finally:
        await first.aclose()
        await second.aclose()
        shared_a.close()
        shared_b.close()


class _Proxy:
    """A TCP proxy to Redis in its own thread, which can be stopped (a Redis outage)."""

    def __init__(self) -> None:
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        threading.Thread(target=self._loop.run_forever, daemon=True).start()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(REDIS_HOST, REDIS_PORT)
        except OSError:
            writer.close()
            return
        if self._server is None or not self._server.is_serving():
            # Stopped while this connection was being made: it must not outlive the stop.
            writer.transport.abort()
            up_writer.transport.abort()
            return
        self._writers.add(up_writer)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()

    def start(self) -> None:
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(5)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(5)

    def shutdown(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)


async def test_a_redis_outage_degrades_with_one_warning_and_fails_no_call(
    emulator: Emulator, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = _Proxy()
    proxy.start()
    shared = store(prefix, f"redis://127.0.0.1:{proxy.port}/0", timeout_s=0.2, retry_s=0.2)
    stack = Stack(emulated_catalog(emulator), seed=3, retry=FAST_RETRY, health_store=shared)
    caplog.set_level(logging.INFO, logger="hybridstack.health")
    failed = 0

    async def calls(n: int) -> None:
        nonlocal failed
        for _ in range(n):
            try:
                reply = await stack.complete("hello", skill="general")
                assert reply.deployment.endswith("@ok")
            except Exception:  # counted: the assertion says how many
                failed += 1

    try:
        assert await asyncio.to_thread(shared.sync_now)
        await calls(10)
        proxy.stop()  # Redis is gone mid-run
        await calls(20)
        await asyncio.sleep(0.5)  # several retries fail meanwhile
        await calls(20)
        assert shared.degraded
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
        assert "unreachable" in warnings[0].getMessage()
        proxy.start()  # back on the same port
        for _ in range(50):
            if not shared.degraded:
                break
            await asyncio.sleep(0.1)
        assert not shared.degraded
        await calls(10)
        assert failed == 0
        assert any("reachable again" in r.getMessage() for r in caplog.records)
        assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    finally:
        await stack.aclose()
        shared.close()
        proxy.shutdown()


# --------------------------------------------------------------------------- selection


def test_the_store_is_chosen_by_argument_or_config(prefix: str, tmp_path: Path) -> None:
    assert isinstance(Stack().health_store, MemoryHealthStore)
    config = tmp_path / "hybridstack.toml"
    config.write_text(f'[health]\nurl = "{URL}"\nprefix = "{prefix}"\n', encoding="utf-8")
    stack = load_config(config).build_stack()
    try:
        assert isinstance(stack.health_store, RedisHealthStore)
        assert stack.health_store.prefix == prefix
    finally:
        stack.health_store.close()
    config.write_text('[health]\nurl = "postgres://nope"\n', encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"health\.url: expected 'memory' or a Redis"):
        load_config(config)
    with pytest.raises(ConfigurationError, match="prefix"):
        RedisHealthStore(URL, prefix="has space")
    with pytest.raises(ConfigurationError, match="Redis URL"):
        Stack(health_store="http://127.0.0.1:6379")


def test_a_password_in_the_url_never_shows() -> None:
    shared = RedisHealthStore("redis://:hunter2-secret@127.0.0.1:1/0", prefix="redis-pw-test")
    try:
        assert "hunter2" not in repr(shared)
    finally:
        shared.close()
