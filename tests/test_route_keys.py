"""Routes keyed on the call's identity, orders as values, routing at catalog scale.

* a weighted draw keyed by ``route_key`` is a function of the seed, the key and the
  deployment: the route preflight shows is the one the worker takes, and a seeded agent
  run gives the same routes at any concurrency (#9.1);
* orders are pluggable values (#11.4);
* a pinned plan does not copy the catalog's exclusions, ``model=`` skips the skill
  classifier, unknown default-table families cost no "did you mean" (#9.9);
* a call that cannot route still awaits; a NaN or infinite price cap is refused.
"""

from __future__ import annotations

import asyncio
import math
from datetime import date
from typing import Any

import pytest

from hybridstack import Stack
from hybridstack.catalog import Catalog, Deployment, Family, Price
from hybridstack.errors import ConfigurationError, NoRouteError
from hybridstack.graph import Agent
from hybridstack.routing import Policy, RouteConstraints, Router
from hybridstack.routing.orders import KeyOrder, Ranked, get_order, register_order
from hybridstack.testing import offline_stack
from hybridstack.types import ChatRequest

WAREHOUSE = (
    "A warehouse ships 1,240 parcels a day. Write a Python function that estimates the "
    "monthly shipping cost, then explain the approach in Chinese, step by step."
)
#: Six independent subtasks: at concurrency 8 their workers run in any order.
WIDE_PLAN = [
    {"id": "c1", "instruction": "Write a Python function that reverses a list", "skill": "code"},
    {"id": "c2", "instruction": "Write a SQL query counting orders per day", "skill": "code"},
    {
        "id": "m1",
        "instruction": "Translate 'the parcel is late' into Thai",
        "skill": "multilingual",
    },
    {"id": "m2", "instruction": "Translate 'thank you' into Korean", "skill": "multilingual"},
    {
        "id": "r1",
        "instruction": "Prove that the square root of 2 is irrational",
        "skill": "reasoning",
    },
    {"id": "g1", "instruction": "Summarise why unit tests are worth writing", "skill": "general"},
]


def user_catalog(n_families: int, sites: int = 5) -> Catalog:
    price = Price(input_per_mtok=0.4, output_per_mtok=1.2, as_of=date(2026, 1, 1))
    codes = ("US", "EU", "SG", "CN", "LOCAL")
    families = [
        Family(name=f"user-llm-{i}", vendor="user", context_window=128_000, skills={"general": 0.5})
        for i in range(n_families)
    ]
    deployments = [
        Deployment(
            family=f.name,
            site=f"site-{k}",
            protocol="openai",
            model=f.name,
            base_url="http://127.0.0.1:9/v1",
            region=f"region-{k}",
            jurisdiction=codes[k % len(codes)],
            operator=f"op-{k}",
            api_key="sk-test-route-keys",
            price=price,
        )
        for f in families
        for k in range(sites)
    ]
    return Catalog(families, deployments)


# --- #9.1: the route shown is the route taken, at any concurrency --------------------------


async def _agent_routes(
    task: str,
    *,
    concurrency: int,
    outage: str | None = None,
    plan: list[dict[str, Any]] | None = None,
    planner: str | None = None,
) -> tuple[dict[str, str], dict[str, str]]:
    """(preflight route per subtask, first attempt's deployment per subtask)."""
    async with offline_stack(seed=7) as stack:
        if outage is not None:
            down = [d.id for d in stack.catalog if d.jurisdiction == outage]
            stack.emulator.set_outage(down, True)
        kwargs: dict[str, Any] = {"checkpointer": "memory", "max_concurrency": concurrency}
        if planner is not None:
            kwargs["planner"] = planner
        agent = Agent(stack, **kwargs)
        events = [
            e
            async for e in agent.stream(
                task, plan=plan, thread_id=f"run-keys-{concurrency}", stream_tokens=False
            )
        ]
    shown = {e.subtask_id: e.deployment for e in events if e.type == "route_chosen"}
    result = events[-1].result
    taken = {s.id: s.route_taken[0] for s in result.subtasks if s.route_taken}
    return shown, taken


async def test_warehouse_run_takes_the_route_it_shows_at_any_concurrency() -> None:
    one = await _agent_routes(WAREHOUSE, concurrency=1)
    eight = await _agent_routes(WAREHOUSE, concurrency=8)
    for shown, taken in (one, eight):
        assert shown
        assert set(shown) == set(taken)
        assert shown == taken  # every `route` line is the first attempt's deployment
    assert one == eight


async def test_demo_with_an_sg_outage_shows_the_route_it_takes() -> None:
    from hybridstack.cli.demo import DEMO_TASK

    one = await _agent_routes(DEMO_TASK, concurrency=1, outage="SG", planner="heuristic")
    eight = await _agent_routes(DEMO_TASK, concurrency=8, outage="SG", planner="heuristic")
    for shown, taken in (one, eight):
        assert shown == taken
    assert one == eight


async def test_wide_plan_routes_do_not_depend_on_concurrency() -> None:
    one = await _agent_routes("Six small jobs", concurrency=1, plan=WIDE_PLAN)
    eight = await _agent_routes("Six small jobs", concurrency=8, plan=WIDE_PLAN)
    assert set(one[0]) == {s["id"] for s in WIDE_PLAN}
    assert one[0] == one[1]
    assert eight[0] == eight[1]
    assert one == eight


async def test_stack_route_with_a_key_is_the_plan_complete_runs() -> None:
    async with offline_stack(seed=7) as stack:
        for i in range(12):
            key = f"run-x/s{i}/work"
            shown = stack.route("Summarise a ticket", skill="general", route_key=key)
            stack.route("an unrelated call in between", skill="general")  # draws the counter
            reply = await stack.complete("Summarise a ticket", skill="general", route_key=key)
            assert reply.deployment == shown.first.id
            assert shown.route_key == key
            assert shown.draw_index is None


def test_a_keyed_draw_ignores_what_ran_before_and_replays() -> None:
    catalog = Catalog.default()
    request = ChatRequest(messages="Explain why the sky is blue")
    a, b = Router(catalog, seed=42), Router(catalog, seed=42)
    for _ in range(5):
        b.plan(request, skill="reasoning")  # b's counter moves on; keyed draws do not care
    keys = [f"task/s{i}/work" for i in range(20)]
    plans_a = [a.plan(request, skill="reasoning", route_key=k) for k in keys]
    plans_b = [b.plan(request, skill="reasoning", route_key=k) for k in reversed(keys)][::-1]
    assert [p.deployment_ids for p in plans_a] == [p.deployment_ids for p in plans_b]
    assert len({tuple(p.deployment_ids) for p in plans_a}) > 1  # keys still spread traffic
    plan = plans_a[3]
    assert plan.to_dict()["route_key"] == keys[3]
    assert "route key 'task/s3/work'" in plan.explain()
    again = Router(catalog, seed=42).replay(plan, request)
    assert again.deployment_ids == plan.deployment_ids
    assert again.draws == plan.draws
    other_seed = Router(catalog, seed=43).plan(request, skill="reasoning", route_key=keys[3])
    assert other_seed.draws != plan.draws


@pytest.mark.parametrize("bad", ["", "   ", 7])
def test_a_bad_route_key_is_refused(bad: Any) -> None:
    router = Router(Catalog.default(), seed=1)
    with pytest.raises(ConfigurationError, match="route_key must be a non-empty str"):
        router.plan(ChatRequest(messages="hi"), route_key=bad)


# --- #11.4: orders are values -------------------------------------------------------------


class ByRegionName(KeyOrder):
    name = "by-region-name"

    def value(self, entry, count, ctx):  # type: ignore[no-untyped-def]
        return entry.region, f"region {entry.region} in alphabetical order"


def test_a_custom_order_object_orders_the_plan() -> None:
    catalog = Catalog.default()
    request = ChatRequest(messages="Summarise this")
    order = ByRegionName()
    router = Router(catalog, seed=1, policy=order, key_available=lambda d: True)
    plan = router.plan(request, skill="general")
    assert plan.policy == "by-region-name"
    first_family = plan.first.family
    regions = [c.deployment.region for c in plan.candidates if c.deployment.family == first_family]
    assert regions == sorted(regions)
    assert "region" in plan.candidates[0].reasons[1]
    # Per call too, composed with the jurisdiction cap.
    capped = router.plan(request, skill="general", policy=Policy(order, 0.5))
    assert capped.policy == "by-region-name+diversified"


def test_a_registered_order_parses_by_name_and_replaces_need_consent() -> None:
    class Reverse:
        name = "reverse-catalog"

        def rank(self, survivors, ctx):  # type: ignore[no-untyped-def]
            return [Ranked((e.group, -e.index), e, count, "reverse") for e, count in survivors]

    order = register_order(Reverse(), replace=True)
    assert get_order("reverse-catalog") is order
    policy = Policy.parse("reverse-catalog+diversified:0.4")
    assert policy.order is order
    assert str(policy) == "reverse-catalog+diversified:0.4"
    with pytest.raises(ConfigurationError, match="already registered"):
        register_order(Reverse())
    with pytest.raises(ConfigurationError, match="replace=True"):
        register_order(type("W", (), {"name": "weighted", "rank": Reverse.rank})())
    router = Router(Catalog.default(), seed=1, key_available=lambda d: True)
    plan = router.plan(ChatRequest(messages="hi"), skill="general", policy="reverse-catalog")
    assert plan.policy == "reverse-catalog"


def test_builtin_orders_are_registered_values() -> None:
    for name in ("weighted", "cheapest", "fastest"):
        assert get_order(name).name == name
        assert Policy.parse(name).order is get_order(name)


@pytest.mark.parametrize("bad", [object(), "nope", type("N", (), {"name": "", "rank": 1})()])
def test_something_that_is_not_an_order_is_refused(bad: Any) -> None:
    with pytest.raises(ConfigurationError):
        Policy(primary=bad)


# --- #9.9: routing cost at scale (behaviour only: timings are in bench_routing.py) ----------


def test_stack_on_a_user_catalog_builds_no_did_you_mean(monkeypatch: pytest.MonkeyPatch) -> None:
    import hybridstack.catalog.refs as refs

    def refuse(*_: Any, **__: Any) -> list[str]:
        raise AssertionError("a 'did you mean' hint was built that nobody reads")

    monkeypatch.setattr(refs, "close_matches", refuse)
    stack = Stack(user_catalog(40), seed=1)  # the default skill table names none of them
    plan = stack.route("Summarise this", skill="general")
    assert plan.first.family.startswith("user-llm-")


def test_a_pinned_plan_shares_the_static_exclusions_instead_of_copying() -> None:
    router = Router(user_catalog(200), seed=1)
    request = ChatRequest(messages="hi")
    first = router.plan(request, model="user-llm-0")
    second = router.plan(request, model="user-llm-0")
    assert len(first.candidates) == 5
    assert first.excluded is second.excluded  # one mapping for every plan of the route
    assert len(first.excluded) == 995
    assert first.excluded["user-llm-7@site-1"] == "not named by model 'user-llm-0'"
    assert "user-llm-0@site-1" not in first.excluded
    as_dict = dict(first.excluded)
    assert first.excluded == as_dict
    assert len(as_dict) == 995
    assert first.to_dict()["excluded"] == as_dict
    with pytest.raises(KeyError):
        first.excluded["user-llm-0@site-1"]


def test_request_exclusions_layer_over_the_static_ones() -> None:
    catalog = user_catalog(3)
    small = catalog.deployments["user-llm-0@site-0"].model_copy(update={"context_window": 1_000})
    catalog = Catalog(list(catalog.families.values()), [small, *list(catalog)[1:]])
    router = Router(catalog, seed=1)
    plan = router.plan(ChatRequest(messages="hi", max_tokens=4_000), model="user-llm-0")
    assert "user-llm-0@site-0" not in plan.deployment_ids
    assert plan.excluded["user-llm-0@site-0"].startswith("context window 1,000 <")
    assert len(plan.excluded) == 11 == len(dict(plan.excluded))
    assert list(plan.excluded)[-1] == "user-llm-0@site-0"  # after the static ones
    unbounded = router.plan(ChatRequest(messages="hi"), model="user-llm-0")
    assert len(unbounded.excluded) == 10  # the static exclusions were not written to
    assert "user-llm-0@site-0" in unbounded.deployment_ids


def test_model_pin_skips_the_skill_classifier() -> None:
    seen: list[str] = []

    def classifier(text: str) -> str:
        seen.append(text)
        return "general"

    stack = Stack(user_catalog(3), seed=1, skill_classifier=classifier)
    plan = stack.route("Write a Python function", model="user-llm-1")
    assert seen == []
    assert plan.skill is None
    assert plan.model == "user-llm-1"
    assert plan.explain().startswith("Plan for model 'user-llm-1'")
    stack.route("Write a Python function")
    assert seen == ["Write a Python function"]  # without model= it still classifies


async def test_model_pin_does_not_await_an_async_classifier() -> None:
    calls = 0

    class Slow:
        async def __call__(self, text: str) -> str:
            nonlocal calls
            calls += 1
            return "general"

        def offline_guess(self, text: str) -> str:
            return "general"

    async with offline_stack(seed=3, skill_classifier=Slow()) as stack:
        reply = await stack.complete("hello", model="qwen-plus")
        assert reply.family == "qwen-plus"
        assert calls == 0
        await stack.complete("hello")
        assert calls == 1


# --- follow-ups -----------------------------------------------------------------------------


async def test_a_call_that_cannot_route_yields_to_the_event_loop() -> None:
    stack = Stack(user_catalog(2), seed=1)
    nowhere = RouteConstraints(allow_jurisdictions={"XX"})
    loop = asyncio.get_running_loop()
    ticks = 0
    stop = False

    async def ticker() -> None:
        nonlocal ticks
        while not stop:
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    refused = 0
    end = loop.time() + 0.3
    while loop.time() < end:
        try:
            await stack.complete("hi", skill="general", constraints=nowhere)
        except NoRouteError:
            refused += 1
    stop = True
    await ticking
    assert refused > 0
    assert ticks >= 3  # was 0: the refusing loop never let the timer run


@pytest.mark.parametrize("cap", [math.nan, math.inf, -math.inf, -0.5, "1.0", True])
def test_a_price_cap_that_is_not_a_finite_amount_is_refused(cap: Any) -> None:
    with pytest.raises(ConfigurationError, match="max_price_per_mtok"):
        RouteConstraints(max_price_per_mtok=cap)
    with pytest.raises(ConfigurationError, match="max_price_per_mtok"):
        Router(Catalog.default(), constraints={"max_price_per_mtok": cap})


def test_a_finite_price_cap_still_works() -> None:
    assert RouteConstraints(max_price_per_mtok=0).max_price_per_mtok == 0
    assert RouteConstraints(max_price_per_mtok=2).max_price_per_mtok == 2
