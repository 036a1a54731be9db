"""Sovereignty: data-class rules, fail-closed validation, no leaks at call time, redaction."""

from __future__ import annotations

from datetime import date

import pytest

from hybridstack.catalog.catalog import Catalog
from hybridstack.catalog.models import Deployment, Family, Price
from hybridstack.errors import ConfigurationError, NoRouteError, SovereigntyError
from hybridstack.routing import (
    DataClassRules,
    Router,
    UnknownDataClassError,
    redact,
    redact_text,
)
from hybridstack.types import ChatRequest, Message, TextPart, ToolCall, ToolCallPart

ALL = frozenset({"tools", "json_schema", "json_object", "streaming", "system_prompt"})


def fam(name: str, skills: dict[str, float]) -> Family:
    return Family(name=name, vendor="v", context_window=64_000, features=ALL, skills=skills)


def dep(family: str, site: str, jurisdiction: str) -> Deployment:
    return Deployment(
        family=family,
        site=site,
        protocol="openai",
        model=family,
        base_url="http://127.0.0.1:9/v1",
        region=f"{jurisdiction.lower()}-1",
        jurisdiction=jurisdiction,
        operator=site.split("-")[0],
        api_key_env=None,
        price=Price(input_per_mtok=0.5, output_per_mtok=1.0, as_of=date(2025, 1, 1)),
    )


@pytest.fixture
def catalog() -> Catalog:
    return Catalog(
        families=[
            fam("qwen-plus", {"general": 0.8, "multilingual": 0.9}),
            fam("deepseek-flash", {"code": 0.9, "general": 0.7}),
            fam("llama-3.3-70b", {"reasoning": 0.8, "general": 0.6}),
        ],
        deployments=[
            dep("qwen-plus", "dashscope-cn", "CN"),
            dep("qwen-plus", "dashscope-sg", "SG"),
            dep("qwen-plus", "dashscope-eu", "EU"),
            dep("deepseek-flash", "deepseek-cn", "CN"),
            dep("deepseek-flash", "nebius-eu", "EU"),
            dep("llama-3.3-70b", "groq-us", "US"),
            dep("llama-3.3-70b", "ollama-local", "LOCAL"),
        ],
    )


def req(text: str = "hi") -> ChatRequest:
    return ChatRequest(messages=(Message.user(text),))


# --- data-class rules ----------------------------------------------------------------------


def test_default_data_classes():
    rules = DataClassRules()
    assert rules.names == ("public", "internal", "personal", "regulated")
    assert rules.allowed("public") is None
    assert rules.allowed("internal") is None
    assert rules.allowed("personal") == {"EU", "LOCAL"}
    assert rules.allowed("regulated") == {"LOCAL"}
    assert rules.allows("personal", "eu")
    assert not rules.allows("personal", "CN")


def test_rules_are_overridable_and_extendable():
    rules = DataClassRules(
        {"personal": ["EU", "UK", "LOCAL"], "health": "local", "internal": ["EU", "US"]}
    )
    assert rules.allowed("personal") == {"EU", "UK", "LOCAL"}
    assert rules.allowed("health") == {"LOCAL"}
    assert rules.allowed("internal") == {"EU", "US"}
    assert rules.allowed("regulated") == {"LOCAL"}  # untouched default
    only = DataClassRules({"secret": ["LOCAL"]}, defaults=False)
    assert only.names == ("secret",)
    assert DataClassRules({"open": "*"}).allowed("open") is None


def test_unknown_data_class_fails_closed(catalog):
    rules = DataClassRules()
    with pytest.raises(
        UnknownDataClassError, match="known classes: public, internal, personal, regulated"
    ):
        rules.allowed("secret")
    r = Router(catalog)
    with pytest.raises(ConfigurationError, match="unknown data class 'pubic'"):
        r.plan(req(), data_class="pubic")
    with pytest.raises(ConfigurationError, match="'\\*' for any"):
        DataClassRules({"internal": None})  # None never means "anywhere"


# --- validate(): fail closed at build time --------------------------------------------------------


def test_validate_accepts_families_that_are_filtered_per_call(catalog):
    r = Router(catalog, skill_table={"code": ["deepseek-flash", "qwen-plus"]})
    assert r.validate() == [
        # nothing at all is LOCAL for code, so regulated has no route: a warning, not an error
        "route code/regulated: no allowed deployment (data class 'regulated' may go to: LOCAL)"
    ]


def test_validate_raises_on_a_skill_table_pin_outside_the_data_class(catalog):
    r = Router(catalog, skill_table={"code": ["deepseek-flash@deepseek-cn", "deepseek-flash"]})
    with pytest.raises(SovereigntyError) as info:
        r.validate()
    err = info.value
    assert err.route == "code/personal"
    assert err.deployment == "deepseek-flash@deepseek-cn"
    assert "deepseek-flash@deepseek-cn" in str(err)
    assert "code/personal" in str(err)


def test_validate_raises_on_a_pinned_route(catalog):
    r = Router(catalog, routes={"personal": ["qwen-plus@dashscope-cn"]})
    with pytest.raises(SovereigntyError) as info:
        r.validate()
    assert info.value.route == "personal"
    assert info.value.deployment == "qwen-plus@dashscope-cn"
    # a pin scoped to a class that allows it is fine
    ok = Router(
        catalog,
        routes={
            "code/public": ["deepseek-flash@deepseek-cn"],
            "personal": ["qwen-plus@dashscope-eu"],
        },
    )
    ok.validate()
    assert ok.plan(req(), skill="code").deployment_ids == ["deepseek-flash@deepseek-cn"]
    assert ok.plan(req(), skill="general", data_class="personal").deployment_ids == [
        "qwen-plus@dashscope-eu"
    ]


def test_validate_strict_raises_no_route(catalog):
    rules = {"secret": ["KR"]}
    r = Router(catalog, data_classes=rules)
    warnings = r.validate()
    assert any("route general/secret: no allowed deployment" in w for w in warnings)
    assert r.warnings == warnings
    only_secret = DataClassRules(rules, defaults=False)
    with pytest.raises(NoRouteError, match=r"route \w+/secret: no allowed deployment") as info:
        Router(catalog, data_classes=only_secret).validate(strict=True)
    assert (
        "jurisdiction CN not allowed for data class 'secret' (allowed: KR)"
        in info.value.exclusions.values()
    )


def test_validate_warns_about_unknown_names(catalog):
    r = Router(catalog, skill_table={"code": ["deepseek-flsh"]}, data_classes={"personal": ["EUR"]})
    warnings = r.validate()
    assert any("skill table 'code'" in w and "deepseek-flsh" in w for w in warnings)
    assert any("'EUR'" in w for w in warnings)


def test_unknown_route_key_is_a_configuration_error(catalog):
    with pytest.raises(ConfigurationError, match="unknown data class 'code'"):
        Router(catalog, routes={"code": ["qwen-plus"]})


# --- call time: never leak -----------------------------------------------------------------------


def test_total_outage_of_allowed_deployments_never_admits_others(catalog):
    # every allowed deployment's breaker is open; the disallowed ones are healthy
    health = lambda d: "open" if d.jurisdiction in ("EU", "LOCAL") else "closed"  # noqa: E731
    r = Router(catalog, health=health, seed=3)
    for policy in ("weighted", "cheapest", "fastest", "diversified"):
        plan = r.plan(req(), skill="general", data_class="personal", policy=policy)
        assert {c.deployment.jurisdiction for c in plan.candidates} <= {"EU", "LOCAL"}
        assert all(c.health == "open" for c in plan.candidates)
        for dep_id in ("qwen-plus@dashscope-cn", "qwen-plus@dashscope-sg", "llama-3.3-70b@groq-us"):
            assert dep_id in plan.excluded
            assert plan.excluded[dep_id].startswith("jurisdiction ")


def test_no_allowed_deployment_raises_no_route(catalog):
    r = Router(catalog, data_classes={"korea": ["KR"]})
    with pytest.raises(NoRouteError) as info:
        r.plan(req(), skill="general", data_class="korea")
    excl = info.value.exclusions
    assert (
        excl["qwen-plus@dashscope-cn"]
        == "jurisdiction CN not allowed for data class 'korea' (allowed: KR)"
    )
    assert set(excl) == set(catalog.deployments)
    assert "nothing outside them is ever tried" in str(info.value)


def test_constraints_can_only_narrow_a_data_class(catalog):
    r = Router(catalog)
    plan = r.plan(
        req(),
        skill="general",
        data_class="personal",
        constraints={"allow_jurisdictions": ["CN", "EU"]},
    )
    assert {c.deployment.jurisdiction for c in plan.candidates} == {"EU"}
    assert plan.allowed_jurisdictions == ("EU",)


def test_leaves_home_flags_candidates_for_redaction(catalog):
    r = Router(catalog, data_classes=DataClassRules(home={"personal": "EU"}), seed=1)
    plan = r.plan(req(), skill="general", data_class="personal")
    flags = {c.deployment.id: c.leaves_home for c in plan.candidates}
    assert flags["qwen-plus@dashscope-eu"] is False
    assert flags["llama-3.3-70b@ollama-local"] is False
    # default home is LOCAL: anything leaving the machine is flagged, except public data
    default = Router(catalog, seed=1)
    internal = default.plan(req(), skill="general", data_class="internal")
    assert {c.deployment.id: c.leaves_home for c in internal.candidates}[
        "qwen-plus@dashscope-sg"
    ] is True
    public = default.plan(req(), skill="general", data_class="public")
    assert not any(c.leaves_home for c in public.candidates)
    assert public.home_jurisdiction is None


# --- redaction -----------------------------------------------------------------------------------

POSITIVE = [
    ("Mail me at jane.doe+work@example.co.uk today", "email", "[EMAIL_1]"),
    ("contact: ZHANG_Wei@mail.163.com.", "email", "[EMAIL_1]"),
    ("Call +44 20 7946 0958 now", "phone", "[PHONE_1]"),
    ("Call +44 (0)20 7946 0958 now", "phone", "[PHONE_1]"),
    ("tel +1 (415) 555-2671.", "phone", "[PHONE_1]"),
    ("tel: +1-415-555-2671", "phone", "[PHONE_1]"),
    ("mobile +8613800138000", "phone", "[PHONE_1]"),
    ("Handy +49 151 23456789", "phone", "[PHONE_1]"),
    ("tel. +33 6 12 34 56 78", "phone", "[PHONE_1]"),
    ("US line (415) 555-2671", "phone", "[PHONE_1]"),
    ("US line 415-555-2671.", "phone", "[PHONE_1]"),
    ("card 4111 1111 1111 1111 exp 12/27", "card", "[CARD_1]"),
    ("card 4111-1111-1111-1111", "card", "[CARD_1]"),
    ("card 5500005555555559.", "card", "[CARD_1]"),
    ("amex 3782 822463 10005", "card", "[CARD_1]"),
    ("IBAN DE89 3704 0044 0532 0130 00 EUR", "iban", "[IBAN_1]"),
    ("iban:GB82WEST12345698765432", "iban", "[IBAN_1]"),
    ("FR14 2004 1010 0505 0001 3M02 606", "iban", "[IBAN_1]"),
    ("SSN 123-45-6789.", "ssn", "[SSN_1]"),
    ("NI number AB 12 34 56 C", "national_id", "[NATIONAL_ID_1]"),
    ("NINO: AB123456C", "national_id", "[NATIONAL_ID_1]"),
    ("身份证 11010519491231002X", "national_id", "[NATIONAL_ID_1]"),
]


@pytest.mark.parametrize(("text", "kind", "placeholder"), POSITIVE)
def test_redacts_each_format(text, kind, placeholder):
    out, counts = redact_text(text)
    assert counts == {kind: 1}, out
    assert placeholder in out


# Ordinary text that must be left alone: tests/test_redaction.py (the shared corpus).


def test_same_value_same_placeholder_and_counts():
    text = "a@x.io, b@y.io, again a@x.io; call +44 20 7946 0958 or +442079460958"
    out, counts = redact_text(text)
    assert out == "[EMAIL_1], [EMAIL_2], again [EMAIL_1]; call [PHONE_1] or [PHONE_1]"
    assert counts == {"email": 3, "phone": 2}


def test_redact_kinds_filter():
    out, counts = redact_text("jane@example.com +44 20 7946 0958", kinds=["phone"])
    assert out == "jane@example.com [PHONE_1]"
    assert counts == {"phone": 1}
    with pytest.raises(ConfigurationError):
        redact_text("x", kinds=["passport"])


def test_redact_request_is_pure_and_covers_parts_and_tool_calls():
    original = ChatRequest(
        messages=(
            Message.system("Support bot. Escalate to ops@corp.example."),
            Message(role="user", content=[TextPart(text="My card is 4111 1111 1111 1111")]),
            Message.assistant(
                "",
                tool_calls=[
                    ToolCall(
                        id="t1", name="lookup", arguments={"email": "jane@example.com", "n": 3}
                    )
                ],
            ),
            Message.tool("found jane@example.com", tool_call_id="t1"),
            Message(
                role="assistant",
                content=[
                    ToolCallPart(
                        tool_call=ToolCall(
                            id="t2", name="sms", arguments={"to": ["+44 20 7946 0958"]}
                        )
                    )
                ],
            ),
            Message.user("thanks"),
        ),
        metadata={"user": "jane@example.com"},
    )
    before = original.model_dump()
    new, counts = redact(original)
    assert original.model_dump() == before  # pure
    assert counts == {"email": 3, "card": 1, "phone": 1}
    assert new.messages[0].text == "Support bot. Escalate to [EMAIL_1]."
    assert new.messages[1].text == "My card is [CARD_1]"
    assert new.messages[2].tool_calls[0].arguments == {"email": "[EMAIL_2]", "n": 3}
    assert new.messages[3].text == "found [EMAIL_2]"
    assert new.messages[4].all_tool_calls[0].arguments == {"to": ["[PHONE_1]"]}
    assert new.messages[5] is original.messages[5]
    assert new.metadata == original.metadata  # never sent upstream, left alone
    same, none = redact(req("nothing personal here, order 100234"))
    assert none == {}
    assert same.messages[0].text == "nothing personal here, order 100234"
