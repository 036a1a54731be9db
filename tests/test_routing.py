"""Router unit tests: skill table, constraints, policies, health, replay (in-test catalogs)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date

import pytest

from hybridstack.catalog.catalog import Catalog
from hybridstack.catalog.models import Deployment, Family, Price
from hybridstack.errors import ConfigurationError, NoRouteError, UnknownModelError
from hybridstack.resilience.latency import LatencyTracker
from hybridstack.routing import (
    DEFAULT_SKILL_TABLE,
    Plan,
    Policy,
    RouteConstraints,
    Router,
    SkillTable,
)
from hybridstack.types import ChatRequest, Message, Tool

ALL = frozenset({"tools", "json_schema", "json_object", "streaming", "system_prompt"})


def fam(name: str, skills: dict[str, float], *, cw: int = 128_000, features=ALL) -> Family:
    return Family(
        name=name,
        vendor=name.split("-")[0],
        context_window=cw,
        features=frozenset(features),
        skills=skills,
    )


def dep(
    family: str,
    site: str,
    jurisdiction: str,
    *,
    region: str | None = None,
    operator: str | None = None,
    inp: float = 0.5,
    out: float = 1.0,
    **extra,
) -> Deployment:
    extra.setdefault("api_key_env", f"{site.split('-')[0].upper()}_API_KEY")
    return Deployment(
        family=family,
        site=site,
        protocol=extra.pop("protocol", "openai"),
        model=extra.pop("model", family),
        base_url="http://127.0.0.1:9/v1",
        region=region or f"{jurisdiction.lower()}-1",
        jurisdiction=jurisdiction,
        operator=operator or site.split("-")[0],
        price=Price(input_per_mtok=inp, output_per_mtok=out, as_of=date(2025, 1, 1)),
        **extra,
    )


FAMILIES = [
    fam("deepseek-flash", {"code": 0.9, "general": 0.7}, features=ALL - {"json_schema"}),
    fam("qwen-plus", {"multilingual": 0.9, "general": 0.8, "code": 0.6}),
    fam("qwen3-coder-plus", {"code": 0.85}),
    fam("llama-3.3-70b", {"reasoning": 0.8, "general": 0.7}, features={"tools", "streaming"}),
    fam("gpt-4o-mini", {"general": 0.6, "code": 0.5}),
    fam("tiny-local", {"general": 0.3}, cw=8_192, features={"system_prompt"}),
]

DEPLOYMENTS = [
    dep("deepseek-flash", "deepseek-cn", "CN", region="cn-hangzhou", inp=0.27, out=1.10),
    dep("deepseek-flash", "together-us", "US", region="us-east-1", inp=0.60, out=1.70),
    dep("deepseek-flash", "nebius-eu", "EU", region="eu-west-1", inp=0.40, out=1.20),
    dep(
        "qwen-plus",
        "dashscope-cn",
        "CN",
        region="cn-beijing",
        operator="alibaba",
        inp=0.11,
        out=0.28,
    ),
    dep(
        "qwen-plus",
        "dashscope-sg",
        "SG",
        region="ap-southeast-1",
        operator="alibaba",
        inp=0.40,
        out=1.20,
    ),
    dep(
        "qwen-plus",
        "dashscope-eu",
        "EU",
        region="eu-central-1",
        operator="alibaba",
        inp=0.45,
        out=1.30,
    ),
    dep(
        "qwen3-coder-plus",
        "dashscope-sg",
        "SG",
        region="ap-southeast-1",
        operator="alibaba",
        inp=1.0,
        out=5.0,
    ),
    dep("llama-3.3-70b", "groq-us", "US", region="us-west-2", inp=0.59, out=0.79),
    dep("llama-3.3-70b", "scaleway-eu", "EU", region="fr-par", inp=0.90, out=0.90),
    dep("gpt-4o-mini", "openai-us", "US", region="us-east-1", inp=0.15, out=0.60),
    dep("tiny-local", "ollama-local", "LOCAL", region="local", inp=0.0, out=0.0, api_key_env=None),
]


def make_catalog(families=FAMILIES, deployments=DEPLOYMENTS) -> Catalog:
    return Catalog(families=families, deployments=deployments)


@pytest.fixture
def catalog() -> Catalog:
    return make_catalog()


def router(catalog: Catalog, **kwargs) -> Router:
    kwargs.setdefault("key_available", lambda d: True)
    kwargs.setdefault("seed", 7)
    return Router(catalog, **kwargs)


def req(text: str = "hello", **kwargs) -> ChatRequest:
    return ChatRequest(messages=(Message.user(text),), **kwargs)


def families_in_order(plan: Plan) -> list[str]:
    seen: list[str] = []
    for c in plan.candidates:
        if c.deployment.family not in seen:
            seen.append(c.deployment.family)
    return seen


# --- skill table ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("skill", "first_family"),
    [
        ("code", "deepseek-flash"),
        ("multilingual", "qwen-plus"),
        ("reasoning", "llama-3.3-70b"),
        ("general", "qwen-plus"),
    ],
)
def test_default_skill_table_picks_the_specialist(catalog, skill, first_family):
    plan = router(catalog).plan(req(), skill=skill)
    assert plan.first.family == first_family
    assert plan.candidates[0].reasons[0] == f"skill {skill}: family {first_family} ranked 1"


def test_default_table_names_the_design_families():
    assert DEFAULT_SKILL_TABLE["code"][0] == "deepseek-flash"
    assert DEFAULT_SKILL_TABLE["multilingual"][0] == "qwen-plus"
    assert DEFAULT_SKILL_TABLE["reasoning"][0] == "llama-3.3-70b"
    assert DEFAULT_SKILL_TABLE["general"][:2] == ("qwen-plus", "deepseek-flash")


def test_skill_table_override_replaces_that_skill_only(catalog):
    r = router(catalog, skill_table={"code": ["qwen3-coder-plus", "deepseek-flash"]})
    code = r.plan(req(), skill="code")
    assert families_in_order(code)[:2] == ["qwen3-coder-plus", "deepseek-flash"]
    # other skills keep their defaults
    assert r.plan(req(), skill="reasoning").first.family == "llama-3.3-70b"


def test_unlisted_families_are_appended_by_strength(catalog):
    r = router(catalog, skill_table={"code": ["qwen3-coder-plus"]})
    plan = r.plan(req(), skill="code")
    # listed first, then by catalog strength: deepseek 0.9, qwen-plus 0.6, gpt-4o-mini 0.5
    assert families_in_order(plan) == [
        "qwen3-coder-plus",
        "deepseek-flash",
        "qwen-plus",
        "gpt-4o-mini",
    ]
    reasons = plan.candidate("gpt-4o-mini@openai-us").reasons
    assert (
        reasons[0] == "skill code: family gpt-4o-mini ranked 4 (fallback by catalog strength 0.50)"
    )
    assert (
        plan.excluded["llama-3.3-70b@groq-us"] == "family llama-3.3-70b not ranked for skill 'code'"
    )


def test_fallback_by_strength_can_be_switched_off(catalog):
    table = SkillTable({"code": ["qwen3-coder-plus"]}, fallback_by_strength=False)
    plan = router(catalog, skill_table=table).plan(req(), skill="code")
    assert families_in_order(plan) == ["qwen3-coder-plus"]
    assert "not ranked for skill 'code'" in plan.excluded["deepseek-flash@deepseek-cn"]


def test_user_defined_skill_and_unknown_skill(catalog):
    r = router(catalog, skill_table={"translate": ["qwen-plus", "gpt-4o-mini"]})
    assert families_in_order(r.plan(req(), skill="translate"))[0] == "qwen-plus"
    with pytest.raises(ConfigurationError, match=r"unknown skill 'cdoe'.*known skills"):
        r.plan(req(), skill="cdoe")


def test_pinned_entry_in_skill_table(catalog):
    r = router(catalog, skill_table={"code": ["qwen-plus@dashscope-sg", "deepseek-flash"]})
    plan = r.plan(req(), skill="code")
    assert plan.first.id == "qwen-plus@dashscope-sg"
    assert (
        plan.candidates[0].reasons[0]
        == "skill code: pinned deployment qwen-plus@dashscope-sg ranked 1"
    )


# --- constraints -------------------------------------------------------------------------------


def test_data_class_excludes_jurisdictions(catalog):
    plan = router(catalog).plan(req(), skill="general", data_class="personal")
    assert {c.deployment.jurisdiction for c in plan.candidates} <= {"EU", "LOCAL"}
    assert plan.excluded["qwen-plus@dashscope-cn"] == (
        "jurisdiction CN not allowed for data class 'personal' (allowed: EU, LOCAL)"
    )
    assert plan.allowed_jurisdictions == ("EU", "LOCAL")


@pytest.mark.parametrize(
    ("constraints", "victim", "reason"),
    [
        (
            {"allow_jurisdictions": ["EU", "SG"]},
            "qwen-plus@dashscope-cn",
            "jurisdiction CN not in allowed jurisdictions (EU, SG)",
        ),
        ({"deny_jurisdictions": ["cn"]}, "qwen-plus@dashscope-cn", "jurisdiction CN is denied"),
        (
            {"allow_operators": ["alibaba"]},
            "llama-3.3-70b@groq-us",
            "operator groq not in allowed operators (alibaba)",
        ),
        ({"deny_operators": ["alibaba"]}, "qwen-plus@dashscope-sg", "operator alibaba is denied"),
        (
            {"allow_deployments": ["qwen-plus"]},
            "gpt-4o-mini@openai-us",
            "not in allowed deployments (qwen-plus)",
        ),
        (
            {"deny_deployments": ["qwen-plus@dashscope-sg"]},
            "qwen-plus@dashscope-sg",
            "deployment qwen-plus@dashscope-sg is denied",
        ),
        (
            {"deny_deployments": ["gpt-4o-mini"]},
            "gpt-4o-mini@openai-us",
            "family gpt-4o-mini is denied",
        ),
        (
            {"max_price_per_mtok": 0.5},
            "qwen-plus@dashscope-eu",
            "price $0.66/1M tokens (blended 3:1 input:output) over the maximum $0.50/1M",
        ),
        (
            {"max_price_per_mtok": 0.42, "price_basis": "input"},
            "qwen-plus@dashscope-eu",
            "price $0.45/1M tokens (input) over the maximum $0.42/1M",
        ),
        (
            {"min_context_window": 100_000},
            "tiny-local@ollama-local",
            "context window 8,192 below the required minimum 100,000",
        ),
        (
            {"require_features": ["json_schema"]},
            "llama-3.3-70b@groq-us",
            "lacks required feature(s): json_schema",
        ),
    ],
)
def test_each_constraint_excludes_with_its_reason(catalog, constraints, victim, reason):
    r = router(catalog)
    plan = r.plan(req(), skill="general", constraints=constraints)
    assert plan.excluded[victim] == reason
    assert victim not in plan.deployment_ids
    # router-level constraints behave the same
    plan2 = router(catalog, constraints=RouteConstraints(**constraints)).plan(
        req(), skill="general"
    )
    assert plan2.excluded[victim] == reason


def test_disabled_and_retired_are_excluded(catalog):
    cat = make_catalog(
        deployments=[
            *DEPLOYMENTS,
            dep("qwen-plus", "old-us", "US", retired=True),
            dep("qwen-plus", "off-us", "US", enabled=False),
        ]
    )
    plan = router(cat).plan(req(), skill="general")
    assert plan.excluded["qwen-plus@old-us"] == "retired: the host no longer serves this model"
    assert plan.excluded["qwen-plus@off-us"] == "disabled in the catalog (enabled = false)"


def test_request_features_filter(catalog):
    r = router(catalog)
    tool = Tool(name="lookup", parameters={"type": "object", "properties": {}})
    plan = r.plan(req(tools=(tool,)), skill="general")
    assert plan.excluded["tiny-local@ollama-local"] == "no tool calling (the request has 1 tool(s))"
    assert all("tools" in catalog.families[c.deployment.family].features for c in plan.candidates)

    plan = r.plan(req(response_schema={"type": "object"}), skill="general")
    assert plan.excluded["llama-3.3-70b@groq-us"] == (
        "no structured output (response_schema needs json_schema or json_object)"
    )
    # json_object-only hosts stay, with a note that the schema is not enforced
    ds = plan.candidate("deepseek-flash@deepseek-cn")
    assert ds is not None
    assert any("json_object" in r for r in ds.reasons)

    plan = r.plan(req(), skill="general", stream=True)
    assert (
        plan.excluded["tiny-local@ollama-local"] == "no streaming support (a stream was requested)"
    )


def test_context_window_uses_prompt_estimate_plus_max_tokens(catalog):
    r = router(catalog)
    text = "Ship the parcels before noon, then file the note. " * 720
    # ~7,400 estimated tokens: fits 8,192 alone, not with max_tokens=1,000
    assert 7_000 < req(text).estimated_prompt_tokens() < 8_192 - 100
    assert "tiny-local@ollama-local" in r.plan(req(text), skill="general").deployment_ids
    plan = r.plan(req(text, max_tokens=1_000), skill="general")
    why = plan.excluded["tiny-local@ollama-local"]
    assert why.startswith("context window 8,192 < ")
    assert "+ 1,000 max_tokens" in why


def test_missing_key_is_excluded_and_injectable(catalog, monkeypatch):
    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    monkeypatch.setenv("SCALEWAY_API_KEY", "k")
    r = Router(catalog, seed=1)  # default key check reads the environment
    plan = r.plan(req(), skill="reasoning")
    assert plan.excluded["llama-3.3-70b@groq-us"] == "key variable GROQ_API_KEY is not set"
    assert "llama-3.3-70b@scaleway-eu" in plan.deployment_ids
    assert (
        "tiny-local@ollama-local" in r.plan(req(), skill="general").deployment_ids
    )  # no key needed
    # the key is read per call: setting it later admits the deployment
    monkeypatch.setenv("GROQ_API_KEY", "k")
    assert "llama-3.3-70b@groq-us" in r.plan(req(), skill="reasoning").deployment_ids
    # a key given in code counts
    cat = make_catalog(deployments=[dep("llama-3.3-70b", "keyed-us", "US", api_key="sk-test")])
    assert Router(cat).plan(req(), skill="reasoning").deployment_ids == ["llama-3.3-70b@keyed-us"]
    # injected check wins
    r2 = Router(catalog, key_available=lambda d: d.jurisdiction == "EU")
    assert {c.deployment.jurisdiction for c in r2.plan(req(), skill="general").candidates} == {"EU"}


def test_no_route_lists_every_exclusion(catalog):
    r = router(catalog)
    with pytest.raises(NoRouteError) as info:
        r.plan(req(), skill="code", data_class="regulated")
    err = info.value
    assert "data class 'regulated'" in str(err)
    assert err.exclusions["deepseek-flash@nebius-eu"] == (
        "jurisdiction EU not allowed for data class 'regulated' (allowed: LOCAL)"
    )
    assert len(err.exclusions) == len(DEPLOYMENTS)


# --- policies ------------------------------------------------------------------------------------


def test_policy_parsing_and_canonical_strings():
    assert Policy.parse("weighted") == Policy()
    assert Policy.parse("diversified") == Policy("weighted", 0.5, 100)
    assert Policy.parse("cheapest+diversified") == Policy("cheapest", 0.5, 100)
    assert Policy.parse("diversified+fastest") == Policy("fastest", 0.5, 100)
    assert Policy.parse("diversified:0.3:200") == Policy("weighted", 0.3, 200)
    for text in [
        "weighted",
        "cheapest",
        "fastest",
        "diversified",
        "cheapest+diversified",
        "diversified:0.3:200",
    ]:
        assert Policy.parse(str(Policy.parse(text))) == Policy.parse(text)
    assert str(Policy("cheapest", 0.5)) == "cheapest+diversified"
    for bad in ["random", "cheapest+fastest", "diversified:x", ""]:
        with pytest.raises(ConfigurationError):
            Policy.parse(bad)
    with pytest.raises(ConfigurationError):
        Policy(max_jurisdiction_share=1.5)


def sequence(r: Router, n: int = 30) -> list[str]:
    return [r.plan(req(), skill="general").first.id for _ in range(n)]


def test_weighted_replays_with_the_same_seed(catalog):
    a = sequence(router(catalog, seed=42))
    b = sequence(router(catalog, seed=42))
    c = sequence(router(catalog, seed=43))
    assert a == b
    assert a != c
    assert len(set(a)) > 1  # it does spread


def test_single_plan_rederived_from_seed_and_draw_index(catalog):
    r = router(catalog, seed=42)
    plans = [r.plan(req(), skill="general") for _ in range(5)]
    target = plans[3]
    assert target.seed == 42
    assert target.draw_index == 3
    assert set(target.draws) == set(target.deployment_ids)
    fresh = router(catalog, seed=42)  # a new process: no history needed
    again = fresh.replay(target, req())
    assert again.deployment_ids == target.deployment_ids
    assert again.draws == target.draws
    with pytest.raises(ConfigurationError, match="seed 42"):
        router(catalog, seed=1).replay(target, req())


def test_weighted_spread_matches_weights(catalog):
    cat = make_catalog(
        deployments=[
            dep("qwen-plus", "a-cn", "CN", weight=3.0),
            dep("qwen-plus", "b-sg", "SG", weight=1.0),
            dep("qwen-plus", "c-eu", "EU", weight=0.0),
        ]
    )
    r = router(cat, seed=2024)
    n = 2_000
    firsts = Counter(r.plan(req(), skill="general").first.id for _ in range(n))
    share = firsts["qwen-plus@a-cn"] / n
    # expected 0.75; binomial sd = sqrt(.75*.25/2000) ~ 0.0097 -> 5 sd bound
    assert abs(share - 0.75) < 0.05
    assert firsts["qwen-plus@c-eu"] == 0  # weight 0 is a fall-back only
    plan = r.plan(req(), skill="general")
    assert plan.deployment_ids[-1] == "qwen-plus@c-eu"
    assert "weight 0: fall-back only" in plan.candidates[-1].reasons[1]
    assert plan.candidates[0].reasons[1].startswith("weighted draw ")


def test_cheapest_uses_the_token_estimate():
    cat = make_catalog(
        deployments=[
            dep("qwen-plus", "cheapin-us", "US", inp=0.10, out=4.00),
            dep("qwen-plus", "cheapout-eu", "EU", inp=2.00, out=0.20),
        ]
    )
    r = router(cat, policy="cheapest")
    long_prompt = r.plan(req("x" * 40_000, max_tokens=10), skill="general")
    assert long_prompt.first.id == "qwen-plus@cheapin-us"
    long_answer = r.plan(req("hi", max_tokens=20_000), skill="general")
    assert long_answer.first.id == "qwen-plus@cheapout-eu"
    cand = long_answer.candidates[0]
    assert cand.reasons[1].startswith("cheapest: $0.00")
    assert "20,000 out tokens" in cand.reasons[1]
    expected = (long_answer.estimated_prompt_tokens * 2.00 + 20_000 * 0.20) / 1e6
    assert cand.expected_cost_usd == pytest.approx(expected)
    # without max_tokens the router's default output estimate is used
    assert r.plan(req("hi"), skill="general").estimated_output_tokens == 512


def test_cheapest_orders_families_by_their_cheapest_deployment(catalog):
    plan = router(catalog, policy="cheapest").plan(req(), skill="general")
    # tiny-local is free, qwen-plus@dashscope-cn next; same-family deployments stay together
    fams = families_in_order(plan)
    assert fams[0] == "tiny-local"
    assert fams[1] == "qwen-plus"
    ids = plan.deployment_ids
    assert ids[1:4] == [
        "qwen-plus@dashscope-cn",
        "qwen-plus@dashscope-sg",
        "qwen-plus@dashscope-eu",
    ]


def test_fastest_uses_the_tracker_and_explores_unmeasured(catalog):
    tracker = LatencyTracker()
    for _ in range(5):
        tracker.observe("qwen-plus@dashscope-cn", 2.0)
        tracker.observe("qwen-plus@dashscope-sg", 0.3)
    r = router(catalog, policy="fastest", latency=tracker)
    plan = r.plan(req(), skill="general")
    ids = plan.deployment_ids[:3]
    # unmeasured dashscope-eu first (optimistic prior), then measured by EWMA
    assert ids == ["qwen-plus@dashscope-eu", "qwen-plus@dashscope-sg", "qwen-plus@dashscope-cn"]
    assert "not measured yet" in plan.candidates[0].reasons[1]
    assert plan.candidates[1].reasons[1] == "fastest: EWMA 300 ms over 5 call(s)"
    tracker.observe("qwen-plus@dashscope-eu", 5.0)
    assert r.plan(req(), skill="general").first.id == "qwen-plus@dashscope-sg"


def test_diversified_caps_a_jurisdiction_over_the_window():
    cat = make_catalog(
        deployments=[
            dep("qwen-plus", "a-cn", "CN", weight=100.0),
            dep("qwen-plus", "b-sg", "SG", weight=1.0),
            dep("llama-3.3-70b", "c-us", "US"),
        ]
    )
    plain = router(cat, policy="weighted", seed=5)
    assert plain.plan(req(), skill="general").first.id == "qwen-plus@a-cn"

    r = router(cat, policy="diversified:0.5:10", seed=5)
    for _ in range(6):
        r.record_choice(cat.deployments["qwen-plus@a-cn"])
    for _ in range(4):
        r.record_choice("qwen-plus@b-sg")
    assert r.jurisdiction_shares(10) == {"CN": 0.6, "SG": 0.4}
    plan = r.plan(req(), skill="general")
    assert plan.policy == "diversified:0.5:10"
    assert plan.deployment_ids == ["qwen-plus@b-sg", "llama-3.3-70b@c-us", "qwen-plus@a-cn"]
    capped = plan.candidates[-1].reasons
    assert any(
        x.startswith("diversified: CN had 60% of the last 10 calls (cap 50%): moved behind")
        and "kept as fall-back" in x
        for x in capped
    )
    # the window slides: ten SG calls push CN out and cap SG instead
    for _ in range(10):
        r.record_choice("qwen-plus@b-sg")
    assert r.plan(req(), skill="general").first.id == "qwen-plus@a-cn"


def test_record_plans_counts_first_choices():
    cat = make_catalog(deployments=[dep("qwen-plus", "a-cn", "CN"), dep("qwen-plus", "b-sg", "SG")])
    r = router(cat, policy="diversified", record_plans=True, seed=11)
    firsts = Counter(r.plan(req(), skill="general").first.jurisdiction for _ in range(200))
    # the cap at 50% forces an even split
    assert abs(firsts["CN"] - firsts["SG"]) <= 2


def test_composition_cheapest_then_cap_then_health():
    cat = make_catalog(
        deployments=[
            dep("qwen-plus", "a-cn", "CN", inp=0.1, out=0.1),
            dep("qwen-plus", "b-sg", "SG", inp=0.2, out=0.2),
            dep("qwen-plus", "c-eu", "EU", inp=0.3, out=0.3),
        ]
    )
    health = {"qwen-plus@b-sg": "open"}
    r = router(cat, health=lambda d: health.get(d.id, "closed"))
    r.record_choice("qwen-plus@a-cn")
    plan = r.plan(req(), skill="general", policy="cheapest+diversified")
    # cheapest: cn, sg, eu; cap moves CN behind; open breaker moves SG last
    assert plan.deployment_ids == ["qwen-plus@c-eu", "qwen-plus@a-cn", "qwen-plus@b-sg"]
    assert plan.policy == "cheapest+diversified"
    assert plan.candidates[-1].reasons[-1] == "breaker open: moved last"
    assert plan.candidates[-1].health == "open"


# --- ordering across families ------------------------------------------------------------------


def test_same_family_in_other_regions_comes_before_other_families(catalog):
    for seed in range(10):
        plan = router(catalog, seed=seed).plan(req(), skill="code")
        fams = [c.deployment.family for c in plan.candidates]
        assert fams[:3] == ["deepseek-flash"] * 3
        # families are contiguous blocks
        blocks = [f for i, f in enumerate(fams) if i == 0 or fams[i - 1] != f]
        assert len(blocks) == len(set(blocks))
        second = plan.candidates[1]
        assert any(
            r.startswith("same family as first choice, other region (") for r in second.reasons
        )


def test_open_breakers_move_last_and_half_open_stays(catalog):
    states = {"deepseek-flash@deepseek-cn": "open", "deepseek-flash@together-us": "half_open"}
    r = router(catalog, health=lambda d: states.get(d.id, "closed"))
    plan = r.plan(req(), skill="code")
    assert plan.deployment_ids[-1] == "deepseek-flash@deepseek-cn"
    assert plan.candidates[-1].reasons[-1] == "breaker open: moved last"
    half = plan.candidate("deepseek-flash@together-us")
    assert "breaker half-open: trial call allowed" in half.reasons
    assert plan.deployment_ids.index("deepseek-flash@together-us") < 3


# --- model= override --------------------------------------------------------------------------


def test_model_overrides_the_skill_table(catalog):
    r = router(catalog)
    plan = r.plan(req(), skill="code", model="qwen-plus")
    assert {c.deployment.family for c in plan.candidates} == {"qwen-plus"}
    assert plan.candidates[0].reasons[0] == "model 'qwen-plus' requested"
    assert plan.excluded["deepseek-flash@deepseek-cn"] == "not named by model 'qwen-plus'"
    assert r.plan(req(), model="qwen-plus@dashscope-sg").deployment_ids == [
        "qwen-plus@dashscope-sg"
    ]
    assert r.plan(req(), model="openai:gpt-4o-mini").deployment_ids == ["gpt-4o-mini@openai-us"]
    with pytest.raises(UnknownModelError):
        r.plan(req(), model="qwen-nonexistent")


def test_model_override_is_still_filtered_by_sovereignty_and_constraints(catalog):
    r = router(catalog)
    plan = r.plan(req(), model="qwen-plus", data_class="personal")
    assert plan.deployment_ids == ["qwen-plus@dashscope-eu"]
    with pytest.raises(NoRouteError) as info:
        r.plan(req(), model="qwen-plus@dashscope-cn", data_class="personal")
    assert info.value.exclusions["qwen-plus@dashscope-cn"].startswith("jurisdiction CN not allowed")
    with pytest.raises(NoRouteError):
        r.plan(req(), model="qwen-plus@dashscope-sg", constraints={"deny_operators": ["alibaba"]})


# --- plan value --------------------------------------------------------------------------------


def test_plan_to_dict_is_json_and_explain_is_readable(catalog):
    plan = router(catalog).plan(req(max_tokens=100), skill="code", data_class="personal")
    data = json.loads(json.dumps(plan.to_dict()))
    assert data["skill"] == "code"
    assert data["candidates"][0]["deployment"] == plan.first.id
    assert data["excluded"] == plan.excluded
    assert data["seed"] == 7
    assert "api_key" not in json.dumps(data)
    text = plan.explain()
    assert "Plan for skill 'code', data class 'personal' (allowed: EU, LOCAL)" in text
    assert "policy weighted (seed 7, draw #0)" in text
    assert "1. deepseek-flash@nebius-eu" in text
    assert "excluded (" in text
    assert "jurisdiction CN not allowed for data class 'personal'" in text


def test_static_filtering_is_cached_and_invalidated(catalog):
    r = router(catalog)
    r.plan(req(), skill="code")
    assert len(r._cache) == 1
    r.plan(req(), skill="code")
    assert len(r._cache) == 1
    r.catalog = make_catalog(deployments=DEPLOYMENTS[:3])
    assert r._cache == {}
    assert len(r.plan(req(), skill="code").excluded) == 0


# --- latency tracker --------------------------------------------------------------------------


def test_latency_tracker_ewma_and_p95():
    t = LatencyTracker(alpha=0.5, window=20)
    assert t.ewma("x") is None
    assert t.p95("x") is None
    t.observe("x", 1.0)
    assert t.ewma("x") == 1.0
    t.observe("x", 3.0)
    assert t.ewma("x") == pytest.approx(2.0)
    for i in range(1, 101):  # the ring keeps the last 20: 81..100 ms
        t.observe("y", i / 1000)
    assert t.count("y") == 100
    assert t.p95("y") == pytest.approx(0.099)
    assert t.percentile("y", 50) == pytest.approx(0.090)
    t.observe("y", float("nan"))  # ignored
    assert t.count("y") == 100
    t.reset("y")
    assert t.ewma("y") is None
    assert set(t.snapshot()) == {"x"}


def test_draws_are_stable_across_versions_and_processes(catalog):
    # Recorded plans must replay after an upgrade: pin the draw function's output.
    r = router(catalog, seed=42)
    firsts = [r.plan(req(), skill="general").first.id for _ in range(6)]
    assert firsts == [
        "qwen-plus@dashscope-sg",
        "qwen-plus@dashscope-eu",
        "qwen-plus@dashscope-eu",
        "qwen-plus@dashscope-sg",
        "qwen-plus@dashscope-cn",
        "qwen-plus@dashscope-eu",
    ]
    draws = router(catalog, seed=42).plan(req(), skill="general").draws
    assert draws["qwen-plus@dashscope-sg"] == pytest.approx(0.719018, abs=1e-6)
    assert draws["gpt-4o-mini@openai-us"] == pytest.approx(0.052207, abs=1e-6)


def test_record_choice_accepts_what_the_executor_has(catalog):
    from hybridstack.types import ChatResponse

    r = router(catalog)
    r.record_choice(catalog.deployments["qwen-plus@dashscope-cn"])
    r.record_choice("qwen-plus@dashscope-sg")
    r.record_choice(ChatResponse(text="ok", deployment="llama-3.3-70b@groq-us", jurisdiction="US"))
    r.record_choice("no-such@deployment")  # ignored, never raises
    assert r.jurisdiction_shares() == pytest.approx({"CN": 1 / 3, "SG": 1 / 3, "US": 1 / 3})


def test_bundled_catalog_routes_every_default_skill():
    bundled = Catalog.default()
    assert [
        f for refs in DEFAULT_SKILL_TABLE.values() for f in refs if f not in bundled.families
    ] == []
    r = Router(bundled, seed=1, key_available=lambda d: True)
    r.validate()  # no SovereigntyError with the defaults
    for skill, refs in DEFAULT_SKILL_TABLE.items():
        plan = r.plan(req(), skill=skill)
        assert plan.first.family == refs[0]
        personal = r.plan(req(), skill=skill, data_class="personal")
        assert {c.deployment.jurisdiction for c in personal.candidates} <= {"EU", "LOCAL"}
