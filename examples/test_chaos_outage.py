"""The chaos scenario of chaos_outage.py as a pytest test: copy it next to your agent's tests.

It uses the fixtures of ``hybridstack.testing.pytest_plugin``: ``emulator_factory``
starts an emulator on the test's event loop and stops it afterwards. Every SG
deployment is down and US fails 30% of requests; the test asserts that the agent
still answers every ticket, that no request reaches a downed deployment once its
breaker is open, and that the ledger agrees with what the emulator saw.

Run it:
    pytest examples/test_chaos_outage.py        # needs pytest and pytest-asyncio
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
import pytest_asyncio
from chaos_outage import my_agent  # the agent under test (yours goes here)

import hybridstack as hs
from hybridstack.testing import emulator_config_for, offline_catalog

# Registers the emulator fixtures; in your project this line can live in conftest.py.
pytest_plugins = ["hybridstack.testing.pytest_plugin"]

TICKETS = ["Pesanan saya belum sampai", "พัสดุของฉันเสียหาย", "我的订单还没到", "الطلب وصل متأخرا"]


@pytest_asyncio.fixture
async def emulated(emulator_factory):
    """A stack whose every catalog deployment is served by a fresh emulator."""
    catalog = hs.Catalog.default()
    emulator = await emulator_factory(emulator_config_for(catalog))
    stack = hs.Stack(
        offline_catalog(catalog, emulator),
        seed=11,
        retry=hs.RetrySettings(backoff_initial_s=0.01, backoff_jitter_s=0.01),
        breakers=hs.BreakerSettings(failure_threshold=2, cooldown_s=60),
    )
    yield stack, emulator
    await stack.aclose()


@pytest.mark.asyncio
async def test_agent_survives_sg_outage_and_flaky_us(emulated):
    stack, emulator = emulated
    down = [d for d in stack.catalog if d.jurisdiction == "SG"]
    emulator.set_outage([d.id for d in down])
    emulator.set_faults([d.id for d in stack.catalog if d.jurisdiction == "US"], p_500=0.3)

    # The outage begins: every ticket is still answered (gather raises on any failure).
    answers = await asyncio.gather(*(my_agent(stack, t) for t in TICKETS * 3))
    assert all(answers)
    opened = [d.id for d in down if stack.breakers.health(d) == "open"]
    assert opened, "the outage should have opened at least one SG breaker"
    before = {name: emulator.counters(name).requests for name in opened}

    # With the breakers open, the downed deployments get no request at all.
    answers = await asyncio.gather(*(my_agent(stack, t) for t in TICKETS * 3))
    assert all(answers)
    assert {name: emulator.counters(name).requests for name in opened} == before

    # The ledger agrees with the emulator, and every call was answered exactly once.
    sent = [a for a in stack.ledger.attempts() if a.outcome != "skipped"]
    counters = emulator.all_counters()
    assert Counter(a.deployment for a in sent) == Counter(
        {name: c.requests for name, c in counters.items() if c.requests}
    )
    answered = Counter()
    for c in counters.values():
        answered.update(c.ok_by_call())
    assert answered == Counter({call_id: 1 for call_id in {a.call_id for a in sent}})
