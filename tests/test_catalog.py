"""The catalog: bundled data, user files (TOML/YAML/JSON), patches, errors, references."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from pydantic import SecretStr

from hybridstack.catalog import Catalog, Deployment, Family, Price
from hybridstack.catalog.refs import RetiredName
from hybridstack.errors import CatalogError, ConfigurationError, UnknownModelError
from hybridstack.routing.skills import SKILLS

DATA = Path(__file__).parent / "data" / "catalogs"

JURISDICTIONS = ("CN", "SG", "US", "EU", "LOCAL")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.default()


def snapshot(c: Catalog) -> tuple:
    """Everything observable about a catalog, to prove it did not change."""
    return (
        {k: v.model_dump() for k, v in c.families.items()},
        {k: v.model_dump() for k, v in c.deployments.items()},
        {k: dict(v) for k, v in c.sites.items()},
        dict(c.retired),
        c.sources,
    )


# --- the bundled catalog ---------------------------------------------------------------------


def test_default_is_cached_and_sized(catalog: Catalog) -> None:
    assert Catalog.default() is catalog
    assert 12 <= len(catalog.families) <= 20
    assert 35 <= len(catalog) <= 55
    assert list(catalog) == list(catalog.deployments.values())


def test_default_covers_four_jurisdictions_and_local(catalog: Catalog) -> None:
    assert set(JURISDICTIONS) <= set(catalog.jurisdictions())
    regions = {d.region for d in catalog}
    assert {"cn-beijing", "ap-southeast-1", "us-east-1", "eu-central-1", "local"} <= regions


@pytest.mark.parametrize("skill", SKILLS)
@pytest.mark.parametrize("jurisdiction", JURISDICTIONS)
def test_every_skill_has_a_usable_deployment_in_every_jurisdiction(
    catalog: Catalog, skill: str, jurisdiction: str
) -> None:
    found = catalog.filter(skill=skill, jurisdiction=jurisdiction, min_strength=0.6)
    assert found, f"no enabled {jurisdiction} deployment is decent at {skill}"
    assert all(d.enabled and not d.retired for d in found)


@pytest.mark.parametrize(
    ("skill", "vendor"), [("code", "deepseek"), ("multilingual", "alibaba"), ("reasoning", "meta")]
)
def test_strongest_family_per_skill_follows_the_design(
    catalog: Catalog, skill: str, vendor: str
) -> None:
    best = max(catalog.families.values(), key=lambda f: f.skills.get(skill, 0.0))
    assert best.vendor == vendor


def test_every_price_is_dated_and_sourced(catalog: Catalog) -> None:
    for d in catalog:
        assert isinstance(d.price.as_of, date), d.id
        assert d.price.as_of <= date(2026, 12, 31), d.id
        assert d.price.source.strip(), d.id
        assert any(tag in d.price.source for tag in ("[doc", "[3p", "[guess", "local server")), d.id
        if d.jurisdiction == "LOCAL":
            assert d.price.input_per_mtok == d.price.output_per_mtok == 0
            assert d.api_key_env is None
        else:
            assert d.api_key_env, d.id
    for name, entry in catalog.retired.items():
        assert entry.replacement in catalog.families, name


def test_required_families_and_sites(catalog: Catalog) -> None:
    for name in (
        "deepseek-flash",
        "deepseek-v4-pro",
        "qwen-plus",
        "qwen-flash",
        "qwen3-max",
        "qwen-mt-turbo",
        "qwen-mt-plus",
        "qwen3-coder-plus",
        "qwen3-coder-next",
        "llama-3.3-70b",
        "llama-3.1-8b",
        "gpt-4o-mini",
        "claude-haiku-4.5",
    ):
        assert name in catalog.families
    llama_sites = {d.site for d in catalog.deployments_of("llama-3.3-70b")}
    assert {"groq-us", "together-us", "fireworks-us", "openrouter", "scaleway-eu"} <= llama_sites
    assert "ollama-local" in llama_sites
    assert catalog.deployment("llama-3.1-8b@vllm-local").jurisdiction == "LOCAL"
    groq = catalog.deployment("llama-3.3-70b@groq-us")
    assert groq.retired
    assert not groq.enabled
    assert catalog.deployment("gpt-4o-mini@openai-eu").base_url == "https://eu.api.openai.com/v1"
    ollama = catalog.deployment("llama-3.3-70b@ollama-local")
    assert ollama.base_url == "http://localhost:11434/v1"
    assert ollama.api_key_env is None


def test_dashscope_regions_keys_and_scopes(catalog: Catalog) -> None:
    native = catalog.deployment("qwen-plus@dashscope-cn")
    compat = catalog.deployment("qwen-plus@dashscope-cn-compat")
    assert native.protocol == "dashscope"
    assert native.base_url == "https://dashscope.aliyuncs.com/api/v1"
    assert compat.protocol == "openai"
    assert "compatible-mode" in compat.base_url
    # One key, one limit: both modes cool down together; other regions do not.
    assert native.quota_scope == compat.quota_scope == "dashscope-cn"
    assert native.api_key_env == compat.api_key_env == "DASHSCOPE_API_KEY"
    sg = catalog.deployment("qwen-plus@dashscope-sg")
    assert sg.base_url == "https://dashscope-intl.aliyuncs.com/api/v1"
    assert sg.quota_scope == "dashscope-sg"
    assert sg.api_key_env != native.api_key_env
    all_cn = [d for d in catalog if d.site in ("dashscope-cn", "dashscope-cn-compat")]
    assert {d.quota_scope for d in all_cn} == {"dashscope-cn"}
    # Deployments without a declared scope only share limits with themselves.
    vllm = catalog.deployment("llama-3.1-8b@vllm-local")
    assert vllm.quota_scope == vllm.id


def test_translation_models_lack_tools_and_system_prompt(catalog: Catalog) -> None:
    for name in ("qwen-mt-turbo", "qwen-mt-plus"):
        for d in catalog.deployments_of(name):
            assert "tools" not in catalog.features(d)
            assert "system_prompt" not in catalog.features(d)


def test_bundled_data_is_read_through_package_resources() -> None:
    from importlib.resources import files

    resource = files("hybridstack.catalog").joinpath("data", "catalog.toml")
    assert resource.is_file()
    assert "schema_version = 1" in resource.read_text("utf-8")


def test_import_is_cheap() -> None:
    code = (
        "import sys, hybridstack.catalog as c\n"
        "from hybridstack.catalog import catalog as m\n"
        "assert m._bundled.cache_info().currsize == 0, 'parsed at import'\n"
        "assert 'yaml' not in sys.modules, 'yaml imported at import'\n"
        "c.Catalog.default()\n"
        "assert 'yaml' not in sys.modules, 'yaml imported for the bundled TOML'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- user files ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["good.toml", "good.yaml", "good.json"])
def test_user_file_adds_and_replaces(catalog: Catalog, name: str) -> None:
    merged = catalog.with_file(DATA / name)
    assert merged is not catalog
    assert merged.sources[-1] == str(DATA / name)
    assert len(merged) == len(catalog) + 2
    new = merged.deployment("mistral-small@acme-eu")
    assert (new.jurisdiction, new.region, new.quota_scope) == ("EU", "eu-west-3", "acme")
    assert new.price.as_of == date(2026, 11, 1)
    # A new deployment of a bundled family at the new site inherits the site's fields.
    llama = merged.deployment("llama-3.3-70b@acme-eu")
    assert llama.base_url == "https://llm.acme.example/v1"
    assert llama.api_key_env == "ACME_API_KEY"
    # Same id without override replaces the bundled one, inheriting the bundled site.
    replaced = merged.deployment("qwen-plus@dashscope-sg")
    assert replaced.model == "qwen-plus-2026-09-01"
    assert replaced.weight == 2.0
    assert replaced.base_url == "https://dashscope-intl.aliyuncs.com/api/v1"
    assert replaced.quota_scope == "dashscope-sg"
    assert list(merged.deployments).index("qwen-plus@dashscope-sg") == list(
        catalog.deployments
    ).index("qwen-plus@dashscope-sg")
    assert merged.family("mistral-small-3.2").name == "mistral-small"
    with pytest.raises(UnknownModelError, match="retired on 2026-06-30; use mistral-small"):
        merged.resolve("mistral-small-3.1")
    # the original is untouched
    assert catalog.deployment("qwen-plus@dashscope-sg").model == "qwen-plus"
    assert "mistral-small" not in catalog.families


def test_the_three_formats_load_the_same_catalog(catalog: Catalog) -> None:
    loaded = [
        snapshot(catalog.with_file(DATA / n))[:4] for n in ("good.toml", "good.yaml", "good.json")
    ]
    assert loaded[0] == loaded[1] == loaded[2]


def test_from_file_on_an_empty_base_needs_its_families() -> None:
    with pytest.raises(CatalogError) as info:
        Catalog.from_file(DATA / "good.toml")
    # An empty catalog has no dashscope-sg site to inherit protocol, base_url … from.
    assert (info.value.entry, info.value.field) == (
        "deployments.qwen-plus@dashscope-sg",
        "protocol",
    )
    only_mine = DATA / "good.toml"
    with pytest.raises(CatalogError, match=r"unknown family 'llama-3\.3-70b'"):
        Catalog.from_file(only_mine, base=Catalog.default().without("llama-3.3-70b"))
    base = Catalog.default().without(*[d.id for d in Catalog.default()])
    assert len(base) == 0
    assert "llama-3.3-70b" in base.families
    loaded = Catalog.from_file(DATA / "good.toml", base=base)
    assert len(loaded) == 3


def test_patch_override_changes_only_given_fields(catalog: Catalog) -> None:
    patched = catalog.with_file(DATA / "patch.toml")
    before = catalog.deployment("deepseek-flash@deepseek-cn")
    after = patched.deployment("deepseek-flash@deepseek-cn")
    assert (after.weight, after.timeout_s) == (5.0, 30.0)
    assert after.model_dump(exclude={"weight", "timeout_s"}) == before.model_dump(
        exclude={"weight", "timeout_s"}
    )
    assert patched.deployment("llama-3.3-70b@groq-us").enabled
    # family patch merges skills key by key
    skills = patched.family("qwen-plus").skills
    assert skills["code"] == 0.8
    assert skills["multilingual"] == catalog.family("qwen-plus").skills["multilingual"]
    # site patch reaches the deployments already at the site
    eu = patched.deployment("qwen-plus@dashscope-eu")
    assert eu.enabled
    assert eu.base_url.startswith("https://ws-1234.eu-central-1")
    assert patched.sites["dashscope-eu"]["enabled"] is True
    assert not catalog.deployment("qwen-plus@dashscope-eu").enabled


def test_list_form_of_deployments(catalog: Catalog) -> None:
    merged = catalog.with_file(DATA / "list_form.toml")
    assert merged.deployment("qwen-plus@dashscope-us").weight == 0.5
    added = merged.deployment("qwen3-max@dashscope-us")
    assert added.jurisdiction == "US"
    assert added.quota_scope == "dashscope-us"


def test_yaml_suffix_yml_works(catalog: Catalog, tmp_path: Path) -> None:
    target = tmp_path / "mine.yml"
    target.write_text((DATA / "good.yaml").read_text())
    assert "mistral-small@acme-eu" in catalog.with_file(target)


def test_loading_the_same_file_twice_is_idempotent(catalog: Catalog) -> None:
    once = catalog.with_file(DATA / "good.toml")
    twice = once.with_file(DATA / "good.toml")
    assert snapshot(once)[:4] == snapshot(twice)[:4]


# --- entries in code ---------------------------------------------------------------------------


def _price(**kw: object) -> dict:
    return {"input_per_mtok": 1, "output_per_mtok": 2, "as_of": "2026-11-01", **kw}


def test_with_entries_models_and_dicts(catalog: Catalog) -> None:
    family = Family(name="tiny", vendor="me", context_window=4096, skills={"general": 0.3})
    deployment = Deployment(
        family="tiny",
        site="lab",
        protocol="openai",
        model="tiny-1",
        base_url="http://10.0.0.5:8000/v1",
        region="local",
        jurisdiction="LOCAL",
        operator="lab",
        price=Price(input_per_mtok=0, output_per_mtok=0, as_of=date(2026, 11, 1)),
    )
    merged = catalog.with_entries(
        families=[family],
        deployments=[
            deployment,
            {"family": "tiny", "site": "ollama-local", "model": "tiny", "price": _price()},
            {"family": "qwen-plus", "site": "dashscope-us", "override": True, "weight": 0.0},
        ],
    )
    assert merged.deployment("tiny@lab") is deployment
    assert merged.deployment("tiny@ollama-local").context_window == 32768  # site default
    assert merged.deployment("qwen-plus@dashscope-us").weight == 0.0
    assert merged.sources[-1] == "<code>"


def test_api_key_given_in_code_survives_a_patch(catalog: Catalog) -> None:
    with_key = catalog.with_entries(
        deployments=[
            {"family": "qwen-plus", "site": "dashscope-us", "override": True, "api_key": "sk-1"}
        ]
    )
    patched = with_key.with_entries(
        deployments=[{"family": "qwen-plus", "site": "dashscope-us", "override": True, "weight": 2}]
    )
    key = patched.deployment("qwen-plus@dashscope-us").api_key
    assert isinstance(key, SecretStr)
    assert key.get_secret_value() == "sk-1"
    assert "sk-1" not in repr(patched.deployment("qwen-plus@dashscope-us"))


def test_constructor_validates_the_whole() -> None:
    fam = Family(name="solo", vendor="me", context_window=1000)
    dep = Deployment(
        family="solo",
        site="here",
        protocol="openai",
        model="solo",
        base_url="http://localhost:9/v1",
        region="local",
        jurisdiction="LOCAL",
        operator="me",
        price=Price(input_per_mtok=0, output_per_mtok=0, as_of=date(2026, 1, 1)),
    )
    built = Catalog([fam], [dep])
    assert built.deployment("solo") is dep
    assert len(built) == 1
    assert len(Catalog()) == 0
    with pytest.raises(CatalogError, match="unknown family 'solo'") as info:
        Catalog([], [dep])
    assert (info.value.source, info.value.entry, info.value.field) == (
        "<code>",
        "deployments.solo@here",
        "family",
    )
    with pytest.raises(CatalogError, match="given twice"):
        Catalog([fam, fam])
    retired = RetiredName(name="old-solo", retired_on=date(2026, 1, 1), replacement="solo")
    with pytest.raises(UnknownModelError, match="old-solo was retired on 2026-01-01; use solo"):
        Catalog([fam], [dep], retired=[retired]).resolve("old-solo")


def test_without(catalog: Catalog) -> None:
    smaller = catalog.without("qwen-plus@dashscope-eu", "groq-us", "gpt-4o-mini")
    assert "qwen-plus@dashscope-eu" not in smaller.deployments
    assert not [d for d in smaller if d.site == "groq-us"]
    assert "gpt-4o-mini" not in smaller.families
    assert not [d for d in smaller if d.family == "gpt-4o-mini"]
    assert len(catalog) - len(smaller) == 1 + 2 + 2
    # removing the family a retired name points to drops the retired entry too
    no_flash = catalog.without("deepseek-flash")
    assert "deepseek-chat" not in no_flash.retired
    with pytest.raises(UnknownModelError):
        catalog.without("no-such-thing")


def test_catalog_mappings_are_read_only(catalog: Catalog) -> None:
    with pytest.raises(TypeError):
        catalog.deployments["x@y"] = catalog.deployment("qwen-plus@dashscope-sg")  # type: ignore[index]
    with pytest.raises(TypeError):
        catalog.families["x"] = catalog.family("qwen-plus")  # type: ignore[index]


# --- bad input: one error naming file, entry and field ------------------------------------------

BAD = [
    # file, entry, field, words the message must contain
    ("bad_syntax.toml", None, None, "invalid TOML"),
    ("bad_syntax.yaml", None, None, "invalid YAML at line 5"),
    ("bad_syntax.json", None, None, "invalid JSON at line 3"),
    ("empty.toml", None, None, "empty"),
    ("comment_only.yaml", None, None, "empty"),
    ("bad_version.toml", None, "schema_version", "unsupported schema_version 2"),
    ("bad_top_level.toml", None, "deployment", "did you mean 'deployments'"),
    ("bad_type.toml", "families.big-model", "context_window", "expected a whole number"),
    ("bad_typo.toml", "deployments.qwen-plus@dashscope-us", "api_key_var", "'api_key_env'"),
    ("bad_price.yaml", "deployments.qwen-plus@dashscope-us", "price.input_per_mtok", ">= 0"),
    ("bad_as_of.json", "deployments.qwen-plus@dashscope-us", "price.as_of", "is required"),
    ("bad_jurisdiction.toml", "deployments.qwen-plus@my-host", "jurisdiction", "'EU'"),
    ("bad_base_url.toml", "sites.my-host", "base_url", "http:// or https://"),
    ("bad_protocol.yaml", "deployments.qwen-plus@my-host", "protocol", "openai, anthropic"),
    ("bad_family.toml", "deployments.qwen-pluss@dashscope-us", "family", "'qwen-plus'"),
    ("bad_feature.toml", "families.qwen-plus", "features[1]", "did you mean 'json_schema'"),
    (
        "bad_override.toml",
        "deployments.qwen-plus@dashscope-uk",
        "override",
        "'qwen-plus@dashscope-us'",
    ),
    ("bad_dotted_name.toml", "families.llama-4", "1-8b", '[families."llama-4.1-8b"]'),
    ("bad_secret.toml", "deployments.qwen-plus@dashscope-us", "api_key", "api_key_env"),
    ("bad_duplicate.toml", "deployments.qwen-plus@dashscope-us", None, "twice"),
    ("bad_duplicate.yaml", "qwen-plus@dashscope-us", None, "appears twice"),
    ("bad_duplicate.json", "qwen-plus@dashscope-us", None, "appears twice"),
    ("bad_duplicate_list.toml", "deployments.qwen-plus@dashscope-us", None, "appears twice"),
    ("bad_late.toml", "deployments.early-bird@ollama-local", "price.as_of", "is required"),
    ("wrong_suffix.txt", None, None, "unsupported file type '.txt'"),
    ("missing.toml", None, None, "file not found"),
]


@pytest.mark.parametrize(("name", "entry", "field", "words"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_raises_one_precise_error(
    catalog: Catalog, name: str, entry: str | None, field: str | None, words: str
) -> None:
    before = snapshot(catalog)
    path = DATA / name
    with pytest.raises(CatalogError) as info:
        catalog.with_file(path)
    error = info.value
    message = str(error)
    assert isinstance(error, ConfigurationError)
    assert isinstance(error, ValueError)
    assert error.source == str(path)
    assert f"file {path}" in message
    assert error.entry == entry
    assert error.field == field
    if entry:
        assert repr(entry) in message
    if field:
        assert repr(field) in message
    assert words in message
    assert snapshot(catalog) == before


def test_a_failed_load_applies_nothing(catalog: Catalog) -> None:
    before = snapshot(catalog)
    with pytest.raises(CatalogError):
        catalog.with_file(DATA / "bad_late.toml")
    assert snapshot(catalog) == before
    assert snapshot(Catalog.default()) == before
    assert "early-bird" not in Catalog.default().families
    assert Catalog.default().deployment("qwen-plus@dashscope-sg").weight == 1.0


FAM = {"name": "x", "vendor": "v", "context_window": 9}
HOST = {
    "family": "qwen-plus",
    "site": "x",
    "protocol": "openai",
    "model": "m",
    "base_url": "https://llm.example/v1",
    "region": "r",
    "jurisdiction": "SG",
    "operator": "o",
    "price": _price(),
}
PATCH_SG = {"family": "qwen-plus", "site": "dashscope-sg", "override": True}
DS_COMPAT = "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"
SG = "deployments.qwen-plus@dashscope-sg"
CODE_BAD = [
    # families, deployments, entry, field, words the message must contain
    pytest.param([{"vendor": "x"}], [], "families[0]", "name", "is required", id="no-name"),
    pytest.param(
        # the misspelling is reported, not the "missing vendor" it causes
        [{"name": "x", "vendr": "v", "context_window": 9}],
        [],
        "families.x",
        "vendr",
        "did you mean 'vendor'",
        id="typo-first",
    ),
    pytest.param(
        [{**FAM, "context_window": 0}], [], "families.x", "context_window", "> 0", id="window"
    ),
    pytest.param(
        [{**FAM, "skills": {"code": 2}}], [], "families.x", "skills", "between 0", id="skill"
    ),
    pytest.param(
        [{**FAM, "aliases": ["qwen-plus"]}], [], "families.x", "aliases", "already", id="alias"
    ),
    pytest.param(
        [{**FAM, "aliases": ["deepseek-v4-flash"]}],
        [],
        "families.x",
        "aliases",
        "also an alias",
        id="alias-twice",
    ),
    pytest.param([], [{"site": "s"}], "deployments[0]", "family", "is required", id="no-family"),
    pytest.param(
        [],
        [{**HOST, "family": "deepseek-v4-flash", "site": "deepseek-cn"}],
        "deployments.deepseek-v4-flash@deepseek-cn",
        "family",
        "alias of 'deepseek-flash'",
        id="family-alias",
    ),
    pytest.param(
        [],
        [{"family": "qwen-plus", "site": "dashscope-sg", "price": {"input_per_mtok": 1}}],
        SG,
        "model",
        "is required",
        id="no-model",
    ),
    pytest.param(
        [],
        [{**HOST, "protocol": "dashscope", "base_url": DS_COMPAT}],
        "deployments.qwen-plus@x",
        "base_url",
        "protocol = 'openai'",
        id="native-vs-compat",
    ),
    pytest.param(
        [],
        [{**HOST, "base_url": "https:///v1"}],
        "deployments.qwen-plus@x",
        "base_url",
        "no valid host",
        id="no-host",
    ),
    pytest.param(
        [],
        [{**PATCH_SG, "price": _price(as_of="2026-11-01T10:00:00")}],
        SG,
        "price.as_of",
        "a date",
        id="datetime",
    ),
    pytest.param(
        [],
        [{**PATCH_SG, "jurisdiction": "eu-central-1"}],
        SG,
        "jurisdiction",
        "looks like a region",
        id="region-as-jurisdiction",
    ),
]


@pytest.mark.parametrize(("families", "deployments", "entry", "field", "words"), CODE_BAD)
def test_bad_entries_in_code(
    catalog: Catalog, families: list, deployments: list, entry: str, field: str, words: str
) -> None:
    before = snapshot(catalog)
    with pytest.raises(CatalogError) as info:
        catalog.with_entries(families=families, deployments=deployments, source="settings.py")
    assert (info.value.source, info.value.entry, info.value.field) == ("settings.py", entry, field)
    assert words in str(info.value)
    assert snapshot(catalog) == before


def test_error_in_an_inherited_site_field_names_the_site(catalog: Catalog, tmp_path: Path) -> None:
    bad = tmp_path / "site.toml"
    bad.write_text(
        '[sites.dashscope-sg]\noverride = true\njurisdiction = "Singapore"\n', encoding="utf-8"
    )
    with pytest.raises(CatalogError) as info:
        catalog.with_file(bad)
    assert (info.value.entry, info.value.field) == ("sites.dashscope-sg", "jurisdiction")
    assert "did you mean 'SG'" in str(info.value)
    unknown = tmp_path / "site2.toml"
    unknown.write_text('[sites.new-host]\nprotocol = "openai"\nmodel = "x"\n', encoding="utf-8")
    with pytest.raises(CatalogError, match="set it on each deployment") as info:
        catalog.with_file(unknown)
    assert (info.value.entry, info.value.field) == ("sites.new-host", "model")


# --- references -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("qwen-plus@dashscope-sg", ["qwen-plus@dashscope-sg"]),
        ("  QWEN-PLUS@DashScope-SG ", ["qwen-plus@dashscope-sg"]),
        ("gpt-4o-mini", ["gpt-4o-mini@openai-us", "gpt-4o-mini@openai-eu"]),
        ("openai:gpt-4o-mini", ["gpt-4o-mini@openai-us", "gpt-4o-mini@openai-eu"]),
        ("deepseek:deepseek-flash", ["deepseek-flash@deepseek-cn"]),
        ("groq:llama-3.3-70b-versatile", ["llama-3.3-70b@groq-us"]),
        ("together:meta-llama/Llama-3.3-70B-Instruct-Turbo", ["llama-3.3-70b@together-us"]),
        ("together:llama-3.3-70b", ["llama-3.3-70b@together-us"]),  # family after the colon
        ("ollama:llama3.1:8b", ["llama-3.1-8b@ollama-local"]),  # model id with a colon
        ("anthropic:claude-haiku-4-5", ["claude-haiku-4.5@anthropic-us"]),
        ("dashscope-sg:qwen-plus", ["qwen-plus@dashscope-sg"]),  # a site as provider
        ("deepseek-v4-flash", ["deepseek-flash@deepseek-cn"]),  # live alias
        ("deepseek-v4-flash@deepseek-cn", ["deepseek-flash@deepseek-cn"]),
        ("groq-us", ["llama-3.3-70b@groq-us", "llama-3.1-8b@groq-us"]),  # a site
    ],
)
def test_resolve_forms(catalog: Catalog, ref: str, expected: list[str]) -> None:
    assert [d.id for d in catalog.resolve(ref)] == expected


def test_provider_forms_by_operator_and_protocol(catalog: Catalog) -> None:
    by_operator = {d.id for d in catalog.resolve("dashscope:qwen-plus")}
    assert by_operator == {d.id for d in catalog.deployments_of("qwen-plus")}
    by_protocol = {d.id for d in catalog.resolve("openai:qwen-plus")}
    assert by_protocol == {
        d.id for d in catalog.deployments_of("qwen-plus") if d.protocol == "openai"
    }
    assert catalog.deployment("dashscope:qwen-plus").id == "qwen-plus@dashscope-cn"  # first match


def test_deployment_needs_exactly_one(catalog: Catalog) -> None:
    assert catalog.deployment("claude-haiku-4.5").id == "claude-haiku-4.5@anthropic-us"
    with pytest.raises(UnknownModelError, match="names 6; pick one of qwen-plus@dashscope-cn"):
        catalog.deployment("qwen-plus")


@pytest.mark.parametrize(
    ("ref", "suggestion"),
    [
        ("qwen-pluss", "qwen-plus"),
        ("gpt4o-mini", "gpt-4o-mini"),
        ("claude-haiku-4-5", "claude-haiku-4.5"),
        ("qwen-plus@dashscope-xx", "qwen-plus@dashscope-us"),
        ("opnai:gpt-4o-mini", "openai:gpt-4o-mini"),
        ("openai:gpt-4o-mni", "openai:gpt-4o-mini"),
        ("llama-3.3-70", "llama-3.3-70b"),
    ],
)
def test_did_you_mean(catalog: Catalog, ref: str, suggestion: str) -> None:
    with pytest.raises(UnknownModelError) as info:
        catalog.resolve(ref)
    assert info.value.reference == ref
    assert suggestion in info.value.suggestions
    assert len(info.value.suggestions) <= 3
    assert f"did you mean {suggestion!r}" in str(info.value) or suggestion in str(info.value)


def test_unknown_site_lists_where_the_family_runs(catalog: Catalog) -> None:
    with pytest.raises(UnknownModelError, match="qwen-plus is deployed at: dashscope-cn"):
        catalog.resolve("qwen-plus@dashscope-xx")


def test_unknown_without_anything_close(catalog: Catalog) -> None:
    with pytest.raises(UnknownModelError) as info:
        catalog.resolve("zzzzzzzz")
    assert info.value.suggestions == ()
    with pytest.raises(UnknownModelError, match="must not be empty"):
        catalog.resolve("   ")


@pytest.mark.parametrize(
    "ref",
    [
        "deepseek-chat",
        "deepseek-reasoner",
        "deepseek-chat@deepseek-cn",
        "deepseek:deepseek-chat",
        "DeepSeek-Chat",
    ],
)
def test_retired_names_raise_with_the_replacement(catalog: Catalog, ref: str) -> None:
    with pytest.raises(UnknownModelError, match=r"was retired on 2026-07-24; use deepseek-flash"):
        catalog.resolve(ref)


def test_family_lookup(catalog: Catalog) -> None:
    assert catalog.family("deepseek-v4-flash") is catalog.family("deepseek-flash")
    assert "deepseek-chat" in catalog.family("deepseek-flash").aliases
    with pytest.raises(UnknownModelError, match="deepseek-chat was retired on 2026-07-24"):
        catalog.family("deepseek-chat")
    with pytest.raises(UnknownModelError) as info:
        catalog.family("qwen3-maxx")
    assert "qwen3-max" in info.value.suggestions
    with pytest.raises(UnknownModelError):
        catalog.deployments_of("nope")
    assert "qwen-plus" in catalog
    assert "qwen-plus@dashscope-sg" in catalog
    assert "deepseek-v4-flash" in catalog
    assert "nope" not in catalog


# --- derived figures ---------------------------------------------------------------------------


def test_context_window_and_features_fallbacks(catalog: Catalog) -> None:
    cloud = catalog.deployment("llama-3.3-70b@together-us")
    local = catalog.deployment("llama-3.3-70b@ollama-local")
    assert cloud.context_window is None
    assert cloud.features is None
    assert catalog.context_window(cloud) == catalog.family("llama-3.3-70b").context_window
    assert catalog.features(cloud) == catalog.family("llama-3.3-70b").features
    assert local.context_window == catalog.context_window(local) == 32768
    vllm = catalog.deployment("llama-3.1-8b@vllm-local")
    assert "tools" not in catalog.features(vllm)
    assert "tools" in catalog.family("llama-3.1-8b").features
    stranger = cloud.model_copy(update={"family": "not-here"})
    with pytest.raises(UnknownModelError):
        catalog.context_window(stranger)


def test_filter(catalog: Catalog) -> None:
    eu = catalog.filter(jurisdiction="eu")
    assert eu
    assert all(d.jurisdiction == "EU" for d in eu)
    assert "qwen-plus@dashscope-eu" not in {d.id for d in eu}  # disabled
    everything = catalog.filter(include_unavailable=True)
    assert len(everything) == len(catalog)
    assert "llama-3.3-70b@groq-us" not in {d.id for d in catalog.filter()}
    two = catalog.filter(jurisdiction=["CN", "SG"], protocol="dashscope")
    assert two
    assert {d.jurisdiction for d in two} == {"CN", "SG"}
    assert all(d.protocol == "dashscope" for d in two)
    cheap = catalog.filter(max_price=0.2)
    assert cheap
    assert all(Catalog.blended_price(d) <= 0.2 for d in cheap)
    assert "claude-haiku-4.5@anthropic-us" not in {d.id for d in cheap}
    schema = catalog.filter(features=["json_schema", "tools"])
    assert {"gpt-4o-mini@openai-us", "claude-haiku-4.5@anthropic-us"} <= {d.id for d in schema}
    assert not [d for d in schema if d.family.startswith("qwen-mt")]
    big = catalog.filter(min_context=500_000)
    assert big
    assert all(catalog.context_window(d) >= 500_000 for d in big)
    translation = catalog.filter(skill="translation", min_strength=0.9)
    assert {d.family for d in translation} == {"qwen-mt-turbo", "qwen-mt-plus"}
    assert catalog.filter(skill="no-such-skill") == []
    ordered = [d.id for d in catalog.filter(jurisdiction="LOCAL")]
    assert ordered == [d.id for d in catalog if d.jurisdiction == "LOCAL" and d.enabled]


def test_blended_price_and_rows(catalog: Catalog) -> None:
    flash = catalog.deployment("deepseek-flash@deepseek-cn")
    assert Catalog.blended_price(flash) == pytest.approx((3 * 0.30 + 1.20) / 4)
    rows = catalog.to_rows()
    assert len(rows) == len(catalog)
    row = next(r for r in rows if r["id"] == "qwen-mt-plus@dashscope-sg")
    assert row["jurisdiction"] == "SG"
    assert row["skills"]["translation"] == 0.95
    assert row["features"] == ["streaming"]
    assert row["price_as_of"] == "2026-07-01"
    assert row["context_window"] == 16384
    assert row["vendor"] == "alibaba"
    subset = catalog.to_rows(catalog.filter(jurisdiction="LOCAL"))
    assert {r["jurisdiction"] for r in subset} == {"LOCAL"}
    assert {r["input_per_mtok"] for r in subset} == {0.0}
    assert catalog.skills() == ["code", "general", "multilingual", "reasoning", "translation"]
