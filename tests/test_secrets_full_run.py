"""No fragment of an API key leaks from a whole agent run: not in the terminal, logs,
ledger, checkpoints, errors, the run's result or the stack's repr.

``tests/test_secrets_providers.py`` covers the provider layer alone. Here the keys go
through everything above it: ``hybridstack run --offline`` in-process, with a SQLite
ledger and SQLite checkpoints under a temporary HOME, DEBUG logging captured, and an
emulator that makes deployments fail in every way a key can meet: 401 for a wrong key
(the key *is* sent, and rejected), 429 with Retry-After, refusals and 500s. Errors
raised straight from the stack (one per kind and wire protocol) are scanned too.

The offline stack normally gives every deployment the emulator's own fake key. To make
the real variables flow, the test swaps in a stack over the same emulator whose
deployments have no ``api_key``, so :meth:`Stack._key_for` reads each one's
``api_key_env`` from the environment, where a distinctive fake value is set. Some
deployments only accept that exact value (``auth_key``), so a successful answer from them
proves the key was really sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import pickle
import traceback
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest
from secret_helpers import find_fragments, realistic_keys

import hybridstack.cli.run as cli_run
import hybridstack.testing
from hybridstack.catalog import Catalog
from hybridstack.cli import EXIT_FAILED, EXIT_OK, main
from hybridstack.cli.agent_view import AgentView
from hybridstack.errors import HybridStackError
from hybridstack.resilience import Budget, RetrySettings
from hybridstack.stack import Stack
from hybridstack.testing import Emulator, emulator_config_for, offline_catalog

CATALOG = Catalog.default()
KEY_VARIABLES = sorted({d.api_key_env for d in CATALOG if d.api_key_env})


#: One realistic fake key per key variable the catalog uses (sk-proj-…, sk-ant-api03-…,
#: DashScope hex, no prefix …): a leak is any 4-character fragment of one.
KEYS = realistic_keys(8, KEY_VARIABLES)
WRONG_KEY = "sk-the-emulator-wants-another-key"

TASK = (
    "1. Write a Python function that reverses a string.\n"
    "2. Translate 'good morning, thank you' into German and Indonesian.\n"
    "3. Explain in two sentences why the sky is blue."
)


def _faults() -> dict[str, dict[str, Any]]:
    """The fault mix, by the key variable each deployment uses."""
    by_variable: dict[str | None, dict[str, Any]] = {
        # Wrong key: the emulator wants another one, so ours is sent and rejected (401).
        "DEEPSEEK_API_KEY": {"auth_key": WRONG_KEY},
        "DASHSCOPE_API_KEY": {"auth_key": WRONG_KEY},
        "TOGETHER_API_KEY": {"auth_key": WRONG_KEY},
        "ANTHROPIC_API_KEY": {"auth_key": WRONG_KEY},
        # Refuses everything (content inspection).
        "OPENAI_API_KEY": {"p_refusal": 1.0},
        # No key at all (LOCAL servers): down.
        None: {"outage": True},
    }
    faults: dict[str, dict[str, Any]] = {}
    for deployment in CATALOG:
        variable = deployment.api_key_env
        if variable in by_variable:
            faults[deployment.id] = by_variable[variable]
        else:
            # Answers only when the exact value from the environment arrives, so an
            # answer from it proves the key was read from the environment and sent.
            faults[deployment.id] = {"auth_key": KEYS[variable], "retry_after_s": 0.01}
    return faults


#: Deployments that answer only when the environment's own key arrives.
ACCEPTING = frozenset(
    d.id
    for d in CATALOG
    if d.api_key_env and _faults()[d.id].get("auth_key") == KEYS[d.api_key_env]
)

#: Each accepting deployment of the run fails its first request in its own way.
RUN_SCRIPTS = {
    "llama-3.3-70b@fireworks-us": ["429"],
    "llama-3.3-70b@openrouter": ["500"],
    "qwen-plus@dashscope-us": ["refusal"],
}

#: Scripted failures for errors raised straight from the stack (two tries per deployment).
PROVOKE_SCRIPTS = {
    "llama-3.3-70b@fireworks-us": ["429", "429"],
    "llama-3.3-70b@openrouter": ["500", "500"],
    "qwen-flash@dashscope-sg": ["429", "429"],  # DashScope's native protocol
    "qwen3-max@dashscope-sg": ["refusal"],
}

#: The run stays in the US and ranks llama-3.3-70b, then qwen-plus, for every skill. So
#: the first call (the planner's) deterministically meets all three llama deployments
#: (together: 401 for the wrong key; fireworks: 429; openrouter: 500) and then
#: qwen-plus@dashscope-us, which refuses (that closes the US, so the planner falls back
#: to its heuristic). The subtasks and the synthesis then get answers from fireworks,
#: openrouter and dashscope-us, which accept only the environment's keys.
RANKED = '["llama-3.3-70b", "qwen-plus"]'
RUN_CONFIG = """\
[routing]
seed = 7
allow_jurisdictions = ["US"]

[budget]
deadline_s = 30
max_attempts = 10

[retry]
max_retries = 1
backoff_initial_s = 0.01
backoff_max_s = 0.02
backoff_jitter_s = 0.0

[ledger]
path = "state/ledger.sqlite"

[skills]
""" + "".join(
    f"{skill} = {RANKED}\n"
    for skill in ("reasoning", "code", "multilingual", "general", "translation")
)


def _without_key(catalog: Catalog) -> Catalog:
    """The catalog with every ``api_key`` removed: keys come from ``api_key_env``."""
    keyless = [d.model_copy(update={"api_key": None}) for d in catalog]
    return catalog.with_entries(deployments=keyless, source="<keys from the environment>")


class Seen:
    """Everything the run produced that a key could hide in."""

    def __init__(self) -> None:
        self.stacks: list[Stack] = []
        self.results: list[Any] = []
        self.texts: dict[str, str] = {}

    def add(self, label: str, value: Any) -> None:
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        self.texts[label] = value if isinstance(value, str) else repr(value)


@contextlib.asynccontextmanager
async def keyed_offline_stack(
    catalog: Catalog | None = None,
    *,
    seen: Seen | None = None,
    scripts: dict[str, list[str]] | None = None,
    **options: Any,
) -> AsyncIterator[Stack]:
    """Like :func:`hybridstack.testing.offline_stack`, with keys from the environment."""
    base = catalog if catalog is not None else CATALOG
    config = emulator_config_for(base, faults=_faults(), seed=5)
    options.setdefault("budget", Budget(deadline_s=20, max_attempts=8))
    options.setdefault(
        "retry",
        RetrySettings(
            max_retries=1, backoff_initial_s=0.01, backoff_max_s=0.02, backoff_jitter_s=0.0
        ),
    )
    async with Emulator(config) as emulator:
        stack = Stack(_without_key(offline_catalog(base, emulator)), **options)
        stack.emulator = emulator  # type: ignore[attr-defined]
        for name, outcomes in (scripts or {}).items():
            emulator.script(name, outcomes)
        if seen is not None:
            seen.stacks.append(stack)
        try:
            yield stack
        finally:
            if seen is not None:
                _record_stack(seen, stack, f"stack{len(seen.stacks)}")
            await stack.aclose()


def _record_stack(seen: Seen, stack: Stack, label: str) -> None:
    seen.add(f"{label}: repr(stack)", repr(stack))
    seen.add(f"{label}: str(stack)", str(stack))
    seen.add(f"{label}: repr(router)", repr(stack.router))
    seen.add(f"{label}: repr(executor)", repr(stack.executor))
    seen.add(f"{label}: repr(catalog)", repr(stack.catalog))
    seen.add(f"{label}: deployments", [repr(d) for d in stack.catalog])
    seen.add(f"{label}: deployment dumps", [d.model_dump(mode="json") for d in stack.catalog])
    seen.add(f"{label}: vars(stack)", {k: repr(v) for k, v in vars(stack).items()})
    providers = getattr(stack._pool, "_providers", {})
    seen.add(f"{label}: providers", {k: repr(v) for k, v in dict(providers).items()})
    emulator = stack.emulator  # type: ignore[attr-defined]
    seen.add(
        f"{label}: outcomes",
        {name: emulator.counters(name).by_outcome for name in emulator.deployment_names()},
    )


def _exception_texts(error: BaseException) -> list[str]:
    texts = [str(error), repr(error), "".join(traceback.format_exception(error))]
    with contextlib.suppress(Exception):
        texts.append(repr(pickle.loads(pickle.dumps(error)).__dict__))
    texts.append(repr(getattr(error, "__dict__", {})))
    for inner in getattr(error, "exceptions", ()):
        texts += _exception_texts(inner)
    return texts


def find_leaks(texts: dict[str, str], keys: Iterable[str]) -> list[str]:
    """Where any 4-character fragment of a key appears (see :mod:`secret_helpers`)."""
    return find_fragments(texts, keys)


def test_leak_finder_finds_leaks() -> None:
    key = KEYS["OPENAI_API_KEY"]
    assert find_leaks({"clean": "Authorization: Bearer sk-***"}, [key]) == []
    assert find_leaks({"log": f"header Bearer {key}"}, [key])
    assert find_leaks({"log": f"key …{key[-4:]}"}, [key])  # a tail
    assert find_leaks({"log": f"key {key[:12]}…"}, [key])  # a head
    assert len(set(KEYS.values())) == len(KEYS) >= 8


@pytest.fixture
def keys_in_environment(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for variable, value in KEYS.items():
        monkeypatch.setenv(variable, value)
    return KEYS


@pytest.mark.timeout(90)
def test_no_key_leaks_from_a_full_run(
    keys_in_environment: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    seen = Seen()

    @contextlib.asynccontextmanager
    async def patched(catalog: Catalog | None = None, **options: Any) -> AsyncIterator[Stack]:
        async with keyed_offline_stack(catalog, seen=seen, scripts=RUN_SCRIPTS, **options) as stack:
            yield stack

    class RecordingView(AgentView):
        async def follow(self, events: Any) -> Any:
            result = await super().follow(events)
            if result is not None:
                seen.results.append(result)
            return result

    monkeypatch.setattr(hybridstack.testing, "offline_stack", patched)
    monkeypatch.setattr(cli_run, "AgentView", RecordingView)

    config = tmp_path / "hybridstack.toml"
    config.write_text(RUN_CONFIG, encoding="utf-8")
    monkeypatch.setenv("HYBRIDSTACK_CONFIG", str(config))

    # (a) the full run, as a person would type it (text output, live view off).
    code = main(["run", "--offline", "--no-progress", "--thread", "leakcheck", TASK])
    out, err = capsys.readouterr()
    seen.add("run: stdout", out)
    seen.add("run: stderr", err)
    assert code in (EXIT_OK, EXIT_FAILED), err
    assert "Traceback" not in err
    assert seen.results, "the run produced a result"

    # (b) the same thread read back as JSON, and the ledger as JSON.
    code = main(["run", "--offline", "--thread", "leakcheck", "--json"])
    out, err = capsys.readouterr()
    seen.add("resume: stdout", out)
    seen.add("resume: stderr", err)
    summary = json.loads(out)
    assert summary["thread_id"] == "leakcheck"
    code = main(["ledger", "--offline", "--json", "--attempts"])
    out, err = capsys.readouterr()
    seen.add("ledger: stdout", out)
    seen.add("ledger: stderr", err)
    ledger = json.loads(out)

    # The run met every kind of error, and the environment's keys were really sent.
    assert ledger["path"] == str(tmp_path / "state" / "ledger.offline.sqlite")
    attempts = ledger["attempts"]
    assert {a["run_id"] for a in attempts} == {"leakcheck"}
    statuses = {a["status"] for a in attempts}
    assert {401, 429, 500} <= statuses, statuses
    assert any(a["outcome"] == "content_refused" for a in attempts), attempts
    answered = {a["deployment"] for a in attempts if a["outcome"] == "ok"}
    assert answered, attempts
    assert answered <= ACCEPTING, "only deployments that demand the environment's key answer"
    counters = seen.stacks[0].emulator.counters  # type: ignore[attr-defined]
    assert counters("llama-3.3-70b@together-us").by_outcome["auth"] > 0
    assert summary["status"] == "completed"
    assert summary["subtasks"]
    assert all(s["deployment"] in ACCEPTING for s in summary["subtasks"])

    # (c) the RunResult itself, and every exception a subtask failed with.
    for index, result in enumerate(seen.results):
        seen.add(f"result{index}: json", result.model_dump_json())
        seen.add(f"result{index}: repr", repr(result))
        seen.add(f"result{index}: str", str(result))
        seen.add(f"result{index}: markdown", result.to_markdown())
        seen.add(f"result{index}: html", result._repr_html_())
        for subtask in result.failed:
            error = result.exception(subtask.id)
            if error is not None:
                seen.add(f"result{index}: {subtask.id} exception", _exception_texts(error))

    # (d) errors raised straight from the stack, one per kind of failure.
    async def provoke() -> None:
        async with keyed_offline_stack(seen=seen, scripts=PROVOKE_SCRIPTS) as stack:
            for model in (
                "deepseek-flash@deepseek-cn",  # 401, wrong key (OpenAI protocol)
                "claude-haiku-4.5@anthropic-us",  # 401 over the Anthropic protocol
                "qwen-plus@dashscope-cn",  # 401 over DashScope's native protocol
                "qwen-flash@dashscope-sg",  # 429 twice (DashScope native)
                "qwen3-max@dashscope-sg",  # refusal (DashScope native)
                "llama-3.3-70b@fireworks-us",  # 429
                "llama-3.3-70b@openrouter",  # 500
                "gpt-4o-mini@openai-us",  # refusal
            ):
                with pytest.raises(HybridStackError) as info:
                    await stack.complete("Say hello", model=model)
                seen.add(f"error from {model}", _exception_texts(info.value))
            for model in ("gpt-4o-mini@openai-eu", "qwen-plus@dashscope-sg"):
                reply = await stack.complete("Say hello", model=model)
                assert reply.deployment == model
                seen.add(f"reply from {model}", reply.model_dump_json())
                seen.add(f"repr(reply from {model})", repr(reply))
            for model in ("qwen-plus@dashscope-us", "gpt-4o-mini@openai-us"):
                events: list[str] = []
                try:
                    async for event in stack.stream("Say hello", model=model):
                        events.append(repr(event))
                except HybridStackError as error:
                    events += _exception_texts(error)
                seen.add(f"stream from {model}", events)

    asyncio.run(provoke())

    # (e) the files: ledger and checkpoints, with their WAL and shared-memory files.
    files = sorted([*(home / ".hybridstack").iterdir(), *(tmp_path / "state").iterdir()])
    assert {f.name for f in files} >= {"ledger.offline.sqlite", "checkpoints.sqlite"}
    for file in files:
        seen.add(f"file {file}", file.read_bytes())

    # (f) everything logged at DEBUG, messages, arguments and tracebacks.
    assert caplog.records, "DEBUG logging was captured"
    seen.add("caplog.text", caplog.text)
    seen.add(
        "log records",
        [(r.name, r.getMessage(), repr(r.args), r.exc_text or "") for r in caplog.records],
    )
    stdout, stderr = capsys.readouterr()
    seen.add("late stdout", stdout)
    seen.add("late stderr", stderr)

    leaks = find_leaks(seen.texts, keys_in_environment.values())
    assert not leaks, "API keys leaked:\n" + "\n".join(leaks[:20])
