"""``hybridstack.toml``: where it is found, every section reaching the built Stack, and
errors that name the file, the key and what is expected.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from hybridstack.cli import EXIT_OK, EXIT_USAGE, main
from hybridstack.config import CONFIG_ENV, find_config, load_config
from hybridstack.errors import ConfigurationError
from hybridstack.ledger import MemoryLedger, SQLiteLedger
from hybridstack.resilience import BreakerSettings, Budget, HedgeSettings, RetrySettings

EXTRA_CATALOG = """\
[sites.example-eu]
protocol = "openai"
base_url = "https://api.example.eu/v1"
region = "eu-west-1"
jurisdiction = "EU"
operator = "example"
api_key_env = "EXAMPLE_API_KEY"
quota_scope = "example-eu"

[families.my-coder]
vendor = "example"
context_window = 131072
features = ["tools", "json_object", "streaming", "system_prompt"]
skills = { code = 0.85, general = 0.6 }

[deployments."my-coder@example-eu"]
model = "my-coder-2"
price.input_per_mtok = 0.2
price.output_per_mtok = 0.8
price.as_of = 2026-11-15
price.source = "test"
"""

FULL_CONFIG = """\
[routing]
policy = "cheapest"
seed = 11
deny_jurisdictions = ["CN"]
deny_deployments = ["llama-3.3-70b@openrouter"]
redact_personal_data = true
stream_failover = "resume"

[skills]
code = ["my-coder", "qwen3-coder-plus"]
legal = ["qwen3-max"]

[data_classes]
health = ["LOCAL"]
internal = ["eu", "LOCAL"]

[budget]
deadline_s = 12.5
max_attempts = 3
max_cost_usd = 0.02

[retry]
max_retries = 1
backoff_initial_s = 0.1
prefer_failover = false

[breakers]
failure_threshold = 2
cooldown_s = 4

[hedge]
enabled = true
delay_s = 0.5
max_hedges = 2

[catalog]
files = ["catalogs/extra.toml"]

[ledger]
path = "runs/ledger.sqlite"
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A directory holding hybridstack.toml and the catalog file it names."""
    root = tmp_path / "project"
    write(root / "catalogs" / "extra.toml", EXTRA_CATALOG)
    write(root / "hybridstack.toml", FULL_CONFIG)
    return root


@pytest.fixture(autouse=True)
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from an empty directory, so no ./hybridstack.toml is picked up by accident."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return cwd


# --- where the file is found ------------------------------------------------------------------


def test_no_file_anywhere_gives_defaults() -> None:
    assert find_config() is None
    config = load_config()
    assert config.source is None
    assert config.routing.policy == "weighted"
    assert config.stack_options()["policy"] == "weighted"


def test_explicit_path(project: Path) -> None:
    config = load_config(project / "hybridstack.toml")
    assert config.source == project / "hybridstack.toml"
    assert config.routing.policy == "cheapest"


def test_from_environment(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONFIG_ENV, str(project / "hybridstack.toml"))
    assert find_config() == project / "hybridstack.toml"
    assert load_config().routing.seed == 11


def test_from_working_directory(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    assert find_config() == project / "hybridstack.toml"
    assert load_config().routing.seed == 11


def test_precedence_explicit_then_env_then_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workdir: Path
) -> None:
    here = write(workdir / "hybridstack.toml", "[routing]\nseed = 1\n")
    env = write(tmp_path / "env.toml", "[routing]\nseed = 2\n")
    explicit = write(tmp_path / "explicit.toml", "[routing]\nseed = 3\n")
    assert load_config().source == here
    monkeypatch.setenv(CONFIG_ENV, str(env))
    assert load_config().routing.seed == 2
    assert load_config(explicit).routing.seed == 3


def test_cli_reads_config_option(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["models", "--config", str(project / "hybridstack.toml"), "--jurisdiction", "EU"])
    out = capsys.readouterr().out
    assert code == EXIT_OK
    assert "my-coder@example-eu" in out  # from the catalog file, relative to the config


def test_cli_reads_config_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / "only" / "mine.toml", EXTRA_CATALOG)
    config = write(
        tmp_path / "only" / "cfg.toml", '[catalog]\nbundled = false\nfiles = ["mine.toml"]\n'
    )
    monkeypatch.setenv(CONFIG_ENV, str(config))
    assert main(["models", "--json"]) == EXIT_OK
    import json

    rows = json.loads(capsys.readouterr().out)
    assert [row["id"] for row in rows] == ["my-coder@example-eu"]


def test_cli_route_uses_config_from_working_directory(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    monkeypatch.chdir(project)
    assert main(["route", "Write a Python function that sorts a list", "--json"]) == EXIT_OK
    plan = json.loads(capsys.readouterr().out)
    assert plan["policy"] == "cheapest"
    assert plan["seed"] == 11
    assert "my-coder@example-eu" in {c["deployment"] for c in plan["candidates"]}
    assert "CN" not in {c["jurisdiction"] for c in plan["candidates"]}


def test_ledger_command_reads_the_configured_ledger(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["ledger", "--config", str(project / "hybridstack.toml")])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert str(project / "runs" / "ledger.sqlite") in err  # relative to the config file


# --- every section reaches the Stack ------------------------------------------------------------


def test_every_section_applied_to_the_stack(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXAMPLE_API_KEY", "sk-example-test")  # the extra deployment's key
    config = load_config(project / "hybridstack.toml")
    stack = config.build_stack()
    try:
        # [routing]
        assert str(stack.router.policy) == "cheapest"
        assert stack.router.seed == 11
        assert stack.redact_personal_data is True
        assert stack.executor.stream_failover == "resume"
        constraints = stack.router.constraints
        assert constraints is not None
        assert constraints.deny_jurisdictions == frozenset({"CN"})
        assert constraints.deny_deployments == frozenset({"llama-3.3-70b@openrouter"})
        plan = stack.route("Write a Python function that sorts a list", skill="code")
        assert plan.policy == "cheapest"
        assert plan.seed == 11
        costs = [c.expected_cost_usd for c in plan.candidates]
        assert costs == sorted(costs)  # cheapest first
        assert "my-coder@example-eu" in {c.deployment.id for c in plan.candidates}
        assert all(c.deployment.jurisdiction != "CN" for c in plan.candidates)
        assert "llama-3.3-70b@openrouter" not in {c.deployment.id for c in plan.candidates}
        # [skills]
        assert stack.router.skill_table.ranked("code") == ("my-coder", "qwen3-coder-plus")
        assert stack.router.skill_table.ranked("legal") == ("qwen3-max",)
        # [data_classes]: merged over the defaults, codes upper-cased
        rules = stack.router.data_classes
        assert rules.allowed("health") == frozenset({"LOCAL"})
        assert rules.allowed("internal") == frozenset({"EU", "LOCAL"})
        assert rules.allowed("personal") == frozenset({"EU", "LOCAL"})
        # [budget] [retry] [breakers] [hedge]
        assert stack.budget == Budget(deadline_s=12.5, max_attempts=3, max_cost_usd=0.02)
        assert stack.executor.retry == RetrySettings(
            max_retries=1, backoff_initial_s=0.1, prefer_failover=False
        )
        assert stack.breakers.settings == BreakerSettings(failure_threshold=2, cooldown_s=4)
        assert stack.executor.hedge == HedgeSettings(enabled=True, delay_s=0.5, max_hedges=2)
        # [catalog]: the file is found relative to hybridstack.toml, not the cwd
        assert "my-coder@example-eu" in {d.id for d in stack.catalog}
        assert len(stack.catalog) > 1  # bundled underneath
        # [ledger]: relative to hybridstack.toml
        assert isinstance(stack.ledger, SQLiteLedger)
        assert stack.ledger.path == project / "runs" / "ledger.sqlite"
        assert stack.ledger.path.is_file()
    finally:
        stack.ledger.close()


def test_overrides_win_and_none_is_ignored(project: Path) -> None:
    config = load_config(project / "hybridstack.toml")
    stack = config.build_stack(policy="fastest", seed=None, ledger=MemoryLedger())
    assert str(stack.router.policy) == "fastest"
    assert stack.router.seed == 11


def test_bundled_false_uses_only_the_files(tmp_path: Path) -> None:
    write(tmp_path / "c.toml", EXTRA_CATALOG)
    config = load_config(
        write(tmp_path / "h.toml", '[catalog]\nbundled = false\nfiles = ["c.toml"]\n')
    )
    assert [d.id for d in config.build_catalog()] == ["my-coder@example-eu"]
    assert isinstance(config.build_ledger(), MemoryLedger)


def test_lowercase_and_two_letter_jurisdictions_are_accepted(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path / "h.toml",
            """\
            [routing]
            allow_jurisdictions = ["eu", "ch", "LOCAL"]
            [data_classes]
            swiss = ["CH", "local"]
            open = ["*"]
            """,
        )
    )
    stack = config.build_stack()
    assert stack.router.data_classes.allowed("swiss") == frozenset({"CH", "LOCAL"})
    assert stack.router.data_classes.allowed("open") is None
    assert stack.router.constraints is not None
    assert stack.router.constraints.allow_jurisdictions == frozenset({"EU", "CH", "LOCAL"})


# --- errors: the file, the key, what is expected ------------------------------------------------

BAD_CONFIGS = [
    pytest.param(
        'rouitng = { policy = "cheapest" }\n',
        ["rouitng", "unknown key"],
        id="typo-top",
    ),
    pytest.param(
        "[routing]\npolcy = 'cheapest'\n",
        ["routing.polcy", "unknown key"],
        id="typo-key",
    ),
    pytest.param(
        "[routing]\nseed = 'seven'\n",
        ["routing.seed", "integer"],
        id="wrong-type",
    ),
    pytest.param(
        "[routing]\nredact_personal_data = 'yes'\n",
        ["routing.redact_personal_data", "boolean"],
        id="bool",
    ),
    pytest.param(
        "[routing]\nstream_failover = 'retry'\n",
        ["routing.stream_failover", "'raise' or 'resume'"],
        id="literal",
    ),
    pytest.param(
        "skills = ['code']\n",
        ["skills", "dictionary"],
        id="section-type",
    ),
    pytest.param(
        "[routing\npolicy = 'x'\n",
        ["not valid TOML", "line 1"],
        id="toml-syntax",
    ),
    pytest.param(
        "[routing]\npolicy = 'bestest'\n",
        ["routing.policy", "unknown policy 'bestest'", "weighted, cheapest, fastest"],
        id="policy",
    ),
    pytest.param(
        "[budget]\ndeadline = 30\n",
        ["budget.deadline", "unknown key", "deadline_s, max_attempts, max_cost_usd"],
        id="budget-typo",
    ),
    pytest.param(
        "[budget]\ndeadline_s = 'soon'\n",
        ["budget.deadline_s", "expected a number", "'soon'"],
        id="budget-type",
    ),
    pytest.param(
        "[budget]\nmax_attempts = 0\n",
        ["budget.max_attempts", "positive integer"],
        id="budget-range",
    ),
    pytest.param(
        "[budget]\nmax_attempts = 2.5\n",
        ["budget.max_attempts", "expected an integer"],
        id="budget-float",
    ),
    pytest.param(
        "[retry]\nprefer_failover = 'no'\n",
        ["retry.prefer_failover", "true or false"],
        id="retry-bool",
    ),
    pytest.param(
        "[retry]\nwait = 2\n",
        ["retry.wait", "unknown key", "max_retries"],
        id="retry-wait",
    ),
    pytest.param(
        "[breakers]\ncooldown_multiplier = 0.5\n",
        ["breakers.cooldown_multiplier", ">= 1"],
        id="breakers",
    ),
    pytest.param(
        "[hedge]\nmax_hedges = -1\n",
        ["hedge.max_hedges", "non-negative integer"],
        id="hedge",
    ),
    pytest.param(
        "[data_classes]\npersonal = ['EU', 'MARS']\n",
        ["data_classes.personal", "'MARS'", "two-letter country code"],
        id="data-class-jurisdiction",
    ),
    pytest.param(
        "[data_classes]\npersonal = 'EU'\n",
        ["data_classes.personal", "list"],
        id="data-class-type",
    ),
    pytest.param(
        "[routing]\ndeny_jurisdictions = ['Europe']\n",
        ["routing.deny_jurisdictions", "'Europe'"],
        id="deny-jurisdiction",
    ),
    pytest.param(
        "[routing]\nallow_jurisdictions = ['*']\n",
        ["routing.allow_jurisdictions", "'*'"],
        id="allow-star",
    ),
    pytest.param(
        "[ledger]\npath = 5\n",
        ["ledger.path", "string"],
        id="ledger-path",
    ),
    pytest.param(
        "[catalog]\nfiles = ['nope.toml']\n",
        ["nope.toml"],
        id="catalog-missing",
    ),
]


@pytest.mark.parametrize(("text", "expected"), BAD_CONFIGS)
def test_errors_name_file_key_and_expectation(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    path = write(tmp_path / "conf" / "hybridstack.toml", text)
    with pytest.raises(ConfigurationError) as info:
        load_config(path).build_catalog()
    message = str(info.value)
    assert str(path.parent) in message, message
    for part in expected:
        assert part in message, message


@pytest.mark.parametrize(
    "text",
    [
        'api_key = "sk-cfg-SECRET-1111"\n',
        '[routing]\napi_key = "sk-cfg-SECRET-1111"\n',
        '[retry]\nopenai_api_key = "sk-cfg-SECRET-1111"\n',
        '[skills]\ncode = ["qwen-plus"]\n[skills.extra]\napi_key = "sk-cfg-SECRET-1111"\n',
        '[catalog]\nfiles = []\n[catalog.deployment]\napi_key = "sk-cfg-SECRET-1111"\n',
    ],
    ids=["top", "routing", "retry-prefixed", "nested", "catalog"],
)
def test_api_key_anywhere_is_refused(tmp_path: Path, text: str) -> None:
    path = write(tmp_path / "hybridstack.toml", text)
    with pytest.raises(ConfigurationError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert "api_key_env" in message
    assert "never" in message
    assert "sk-cfg-SECRET-1111" not in message
    assert "SECRET" not in repr(info.value)


def test_api_key_env_in_a_catalog_file_is_fine_but_api_key_is_not(tmp_path: Path) -> None:
    write(
        tmp_path / "cat.toml", EXTRA_CATALOG.replace("quota_scope", 'api_key = "sk-x"\nquota_scope')
    )
    config = load_config(write(tmp_path / "h.toml", '[catalog]\nfiles = ["cat.toml"]\n'))
    with pytest.raises(ConfigurationError) as info:
        config.build_catalog()
    assert "cat.toml" in str(info.value)
    assert "api_key_env" in str(info.value)
    assert "sk-x" not in str(info.value)


def test_missing_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match=r"nope\.toml does not exist \(from --config\)"):
        load_config(tmp_path / "nope.toml")
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "gone.toml"))
    with pytest.raises(ConfigurationError, match=r"gone\.toml does not exist .*HYBRIDSTACK_CONFIG"):
        load_config()


@pytest.mark.parametrize("command", [["models"], ["route", "hi"], ["doctor", "--no-network"]])
def test_cli_reports_config_errors_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    path = write(tmp_path / "bad.toml", "[budget]\ndeadline_s = 'soon'\n")
    code = main([*command, "--config", str(path)])
    out, err = capsys.readouterr()
    assert code == EXIT_USAGE
    assert err.startswith("hybridstack: error: ")
    assert str(path) in err
    assert "budget.deadline_s" in err
    assert "Traceback" not in err
    assert out == ""


def test_cli_warns_about_unknown_skill_table_entries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "h.toml", '[skills]\ncode = ["deepseek-flsh", "qwen3-coder-plus"]\n')
    assert main(["route", "Write a Python function", "--config", str(path), "--json"]) == EXIT_OK
    err = capsys.readouterr().err
    assert "hybridstack: warning:" in err
    assert "deepseek-flsh" in err
