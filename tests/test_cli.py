"""The ``hybridstack`` command line, in-process through ``hybridstack.cli.main`` (and a few
commands as real subprocesses, to prove the console entry works).

Exit codes are the documented ones: 0 ok, 1 the work failed, 2 bad usage or
configuration, 3 no allowed route. ``HOME`` points at a temporary directory in every test,
so checkpoints and ledgers never touch the developer's ``~/.hybridstack``.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from hybridstack import __version__
from hybridstack.cli import (
    EXIT_CODES,
    EXIT_FAILED,
    EXIT_NO_ROUTE,
    EXIT_OK,
    EXIT_USAGE,
    build_parser,
    main,
)

ROOT = Path(__file__).resolve().parent.parent
DOCS_PAGE = ROOT / "docs" / "cli.md"
RENDER_SCRIPT = ROOT / "scripts" / "render_cli_docs.py"

CODE_TASK = "Write a Python function that reverses a list"
#: Brackets that Rich would read as markup: they must be shown, not swallowed or fatal.
BRACKET_TASK = "Fix items[idx] in my Python function [/INST] and explain the bug"


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh HOME and working directory; plain (uncoloured) output."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "HYBRIDSTACK_CHECKPOINTS"):
        monkeypatch.delenv(name, raising=False)
    return home


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``hybridstack ARGV`` in-process: (exit code, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code, out, err = cli(capsys, *argv, "--json")
    try:
        return code, json.loads(out), err
    except json.JSONDecodeError as error:  # pragma: no cover - shows what came out instead
        raise AssertionError(
            f"stdout is not JSON ({error}):\n{out[:2000]}\nstderr:\n{err}"
        ) from None


def run_subprocess(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hybridstack", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "100"},
    )


# --- docs/cli.md --------------------------------------------------------------------------


def _render_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_cli_docs", RENDER_SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_docs_match() -> None:
    expected = _render_module().render()
    actual = DOCS_PAGE.read_text(encoding="utf-8") if DOCS_PAGE.is_file() else ""
    if actual != expected:
        diff = "".join(
            list(
                difflib.unified_diff(
                    actual.splitlines(keepends=True),
                    expected.splitlines(keepends=True),
                    "docs/cli.md",
                    "rendered from build_parser()",
                )
            )[:60]
        )
        pytest.fail(
            "docs/cli.md is out of date with the CLI parser: run "
            f"`python scripts/render_cli_docs.py`\n{diff}"
        )


def test_cli_docs_cover_every_command_and_exit_code() -> None:
    page = DOCS_PAGE.read_text(encoding="utf-8")
    for name in _render_module().subcommands(build_parser()):
        assert f"## `hybridstack {name}`" in page
        assert f"usage: hybridstack {name}" in page
    for code, meaning in EXIT_CODES.items():
        assert f"| {code} | {meaning} |" in page


def test_every_command_has_a_description_and_every_option_help() -> None:
    parser = build_parser()
    commands = _render_module().subcommands(parser)
    assert set(commands) == {
        "demo",
        "run",
        "batch",
        "route",
        "models",
        "doctor",
        "ledger",
        "emulator",
        "smoke",
    }
    summaries = _render_module().summaries(parser)
    missing: list[str] = []
    for name, sub in {"": parser, **commands}.items():
        if name and not (sub.description or "").strip():
            missing.append(f"{name}: no description")
        if name and not summaries.get(name, "").strip():
            missing.append(f"{name}: no one-line help in `hybridstack --help`")
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            if not action.help or action.help == argparse.SUPPRESS or not action.help.strip():
                missing.append(f"hybridstack {name} {'/'.join(action.option_strings)}: no help")
    assert not missing, "\n".join(missing)


def test_render_script_check_mode(capsys: pytest.CaptureFixture[str]) -> None:
    assert _render_module().main(["--check"]) == 0
    assert "up to date" in capsys.readouterr().out


# --- --help / --version / usage errors ----------------------------------------------------


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: hybridstack")
    for name in ("demo", "run", "route", "models", "doctor", "ledger", "emulator", "smoke"):
        assert re.search(rf"^\s+{name}\s+\S", out, re.M), name
    assert "Exit codes" in out


@pytest.mark.parametrize("command", ["demo", "run", "route", "models", "doctor", "ledger"])
def test_command_help(capsys: pytest.CaptureFixture[str], command: str) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: hybridstack {command}")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"hybridstack {__version__}"


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys)
    assert code == EXIT_USAGE
    assert "usage: hybridstack" in out


def test_unknown_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["models", "--no-such-option"])
    assert info.value.code == EXIT_USAGE
    assert "unrecognized arguments" in capsys.readouterr().err


# --- demo ---------------------------------------------------------------------------------


def test_demo_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "demo", "--no-progress")
    assert code == EXIT_OK, err
    lines = out.splitlines()
    assert "Plan (heuristic planner)" in out
    assert any(line.startswith("route ") for line in lines)
    fails = [line for line in lines if line.startswith("fail ")]
    assert fails
    # The error class is labelled as such, and the action is a line of its own (9.11):
    # "retry_here" must not read as the action taken.
    assert all("[error class: " in line for line in fails), fails
    assert not any(re.search(r"— (retry_here|fail_over|fatal):", line) for line in fails)
    overs = [line for line in lines if line.startswith("action ") and "failed over" in line]
    assert overs, "the CN outage must show a fail-over"
    assert "→" in overs[0]
    assert "Final answer (simulated text)" in out
    # The simulated reply starts with "[simulated reply from …]": shown, not eaten as markup.
    assert "[simulated reply from" in out
    assert "Cost and latency by jurisdiction" in out
    assert "SIMULATED" in out
    assert "Traceback" not in err


def test_demo_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, data, err = cli_json(capsys, "demo")
    assert code == EXIT_OK, err
    assert data["status"] == "completed"
    assert data["simulated"] is True
    assert data["outage"]["target"] == "CN"
    assert data["outage"]["deployments"]
    assert data["final_answer"]
    retried = any(s["attempts"] > 1 for s in data["subtasks"])
    cn_failed = data["totals"]["by_jurisdiction"].get("CN", {}).get("failed", 0) > 0
    assert retried or cn_failed
    for subtask in data["subtasks"]:
        assert subtask["status"] == "done"
        assert subtask["jurisdiction"] != "CN"


def test_demo_unknown_outage_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "demo", "--json", "--outage", "MARS")
    assert code == EXIT_USAGE
    assert out == ""  # no half-written JSON
    assert "MARS" in err
    assert "CN" in err


# --- run, ledger, resume ------------------------------------------------------------------


def test_run_offline_then_ledger_then_resume(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    code, out, err = cli(capsys, "run", "--offline", "--no-progress", BRACKET_TASK)
    assert code == EXIT_OK, err
    assert "Traceback" not in err
    # The task's brackets reach the plan table as text (Rich markup would eat or choke).
    assert "[idx]" in out
    assert "[/INST]" in out
    assert "Final answer (simulated text: --offline)" in out
    found = re.search(r"thread (\S+) \(completed\)", out)
    assert found, out[-2000:]
    thread = found.group(1)
    checkpoints = home / ".hybridstack" / "checkpoints.sqlite"
    # Simulated runs are kept apart from real spend (issue 9.8).
    ledger_file = home / ".hybridstack" / "ledger.offline.sqlite"
    assert checkpoints.is_file()
    assert ledger_file.is_file()
    assert not (home / ".hybridstack" / "ledger.sqlite").exists()
    code, _out, err = cli(capsys, "ledger")
    assert code == EXIT_USAGE
    assert "only simulated runs" in err
    assert "hybridstack ledger --offline" in err

    code, ledger, err = cli_json(capsys, "ledger", "--offline")
    assert code == EXIT_OK, err
    assert ledger["simulated"] is True
    assert ledger["path"] == str(ledger_file)
    assert ledger["totals"]["attempts"] > 0
    assert ledger["totals"]["calls"] > 0
    assert ledger["totals"]["cost_usd"] > 0
    assert ledger["totals"]["input_tokens"] > 0
    assert [r["run_id"] for r in ledger["runs"]] == [thread]
    assert set(ledger["by"]) == {"jurisdiction", "family", "outcome"}
    attempts_before = ledger["totals"]["attempts"]

    code, resumed, err = cli_json(capsys, "run", "--offline", "--thread", thread)
    assert code == EXIT_OK, err
    assert resumed["thread_id"] == thread
    assert resumed["status"] == "completed"
    assert resumed["final_answer"]
    assert resumed["offline"] is True
    # A finished thread is read back, not run again.
    code, again, _ = cli_json(capsys, "ledger", "--offline")
    assert again["totals"]["attempts"] == attempts_before

    code, out, err = cli(
        capsys, "ledger", "--offline", "--run", thread, "--attempts", "--by", "outcome"
    )
    assert code == EXIT_OK, err
    assert "by outcome" in out
    assert "attempts" in out


def test_run_unknown_thread(capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = cli(capsys, "run", "--offline", "--no-progress", "--thread", "unknown-id")
    assert code == EXIT_USAGE
    assert "unknown-id" in err
    assert "no checkpoint" in err
    assert "Traceback" not in err


def test_run_with_checkpoints_that_are_not_sqlite(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bogus = tmp_path / "not-sqlite.file"
    bogus.write_text("name,price\nwidget,3\n" * 50)
    for args in (["Write a haiku"], ["--thread", "t-1"]):
        code, _out, err = cli(
            capsys, "run", "--offline", "--no-progress", "--checkpoints", str(bogus), *args
        )
        assert code == EXIT_USAGE, err
        assert "Traceback" not in err
        assert f"{bogus} cannot hold agent checkpoints: it is not an SQLite database" in err
        assert "--checkpoints" in err
    assert bogus.read_text().startswith("name,price")


@pytest.mark.parametrize("task", ["", "   "])
def test_run_empty_task(capsys: pytest.CaptureFixture[str], task: str) -> None:
    code, _, err = cli(capsys, "run", "--offline", task)
    assert code == EXIT_USAGE
    assert "the task is empty" in err


def test_run_without_task_or_thread(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "run", "--offline")
    assert code == EXIT_USAGE
    assert "--thread" in err


def test_run_unknown_data_class_fails_before_planning(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "run", "--offline", "--data-class", "nonsense", CODE_TASK)
    assert code == EXIT_USAGE
    assert "unknown data class 'nonsense'" in err
    assert "public, internal, personal, regulated" in err
    assert "Plan (" not in out  # nothing was planned or sent


def test_run_approve_plan_rejected(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    code, data, err = cli_json(capsys, "run", "--offline", "--approve-plan", CODE_TASK)
    assert code == EXIT_FAILED
    assert data["status"] == "rejected"
    assert "[y/N]" in err  # the question goes to stderr with --json, brackets intact
    assert "plan rejected" in err
    assert data["subtasks"]
    assert all(s["attempts"] == 0 for s in data["subtasks"])
    assert all(s["skill"] == "code" for s in data["subtasks"])

    code, ledger, _ = cli_json(capsys, "ledger", "--offline", "--run", data["run_id"], "--attempts")
    assert code == EXIT_OK
    # Only the planner's calls (skill "reasoning") were sent; no code subtask went out.
    assert ledger["attempts"], "the planner's calls are recorded"
    assert {a["skill"] for a in ledger["attempts"]} == {"reasoning"}


def test_run_approve_plan_text_prompt(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("no\n"))
    code, out, err = cli(capsys, "run", "--offline", "--no-progress", "--approve-plan", CODE_TASK)
    assert code == EXIT_FAILED, err
    assert "Dispatch this plan" in out
    assert "[y/N]" in out
    assert "(rejected)" in out


# --- route ----------------------------------------------------------------------------------


def test_route_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, plan, err = cli_json(capsys, "route", "Write a Python function that sorts a list")
    assert code == EXIT_OK, err
    assert plan["skill"] == "code"
    assert plan["classification"]["skill"] == "code"
    assert plan["classification"]["reasons"]
    assert plan["candidates"]
    for candidate in plan["candidates"]:
        assert candidate["deployment"]
        assert candidate["jurisdiction"]
        assert candidate["reasons"]
    assert plan["excluded"]
    assert all(isinstance(reason, str) and reason for reason in plan["excluded"].values())


def test_route_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "route", "hello there", "--skill", "general", "--seed", "3")
    assert code == EXIT_OK, err
    assert "forced with --skill" in out
    assert "no model was called" in out


def test_route_personal_stays_in_eu_and_local(capsys: pytest.CaptureFixture[str]) -> None:
    code, plan, err = cli_json(
        capsys, "route", "Summarise this customer complaint", "--data-class", "personal"
    )
    assert code == EXIT_OK, err
    assert plan["candidates"]
    assert {c["jurisdiction"] for c in plan["candidates"]} <= {"EU", "LOCAL"}
    reasons = " ".join(plan["excluded"].values())
    assert "not allowed for data class 'personal'" in reasons


def test_route_unknown_data_class(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "route", "hello", "--data-class", "nonsense")
    # A data class the rules do not know is bad usage (2), not "no route" (3).
    assert code == EXIT_USAGE
    assert out == ""
    assert "unknown data class 'nonsense'" in err
    for known in ("public", "internal", "personal", "regulated"):
        assert known in err


def test_route_pinned_model_outside_data_class_is_no_route(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = cli(
        capsys, "route", "hello", "--model", "deepseek-flash", "--data-class", "personal"
    )
    assert code == EXIT_NO_ROUTE
    assert "no deployment can serve model 'deepseek-flash'" in err


def test_route_unknown_policy(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "route", "hello", "--policy", "bestest")
    assert code == EXIT_USAGE
    assert "unknown policy 'bestest'" in err


# --- models ---------------------------------------------------------------------------------


def test_models_filters(capsys: pytest.CaptureFixture[str]) -> None:
    code, everything, _ = cli_json(capsys, "models")
    assert code == EXIT_OK
    assert everything

    code, rows, _ = cli_json(capsys, "models", "--jurisdiction", "EU")
    assert code == EXIT_OK
    assert rows
    assert {r["jurisdiction"] for r in rows} == {"EU"}
    code, lower, _ = cli_json(capsys, "models", "--jurisdiction", "eu")
    assert lower == rows

    code, rows, _ = cli_json(capsys, "models", "--protocol", "dashscope")
    assert code == EXIT_OK
    assert rows
    assert {r["protocol"] for r in rows} == {"dashscope"}

    code, rows, _ = cli_json(capsys, "models", "--skill", "code")
    assert code == EXIT_OK
    assert rows
    assert all(r["skills"].get("code", 0) > 0 for r in rows)

    code, rows, _ = cli_json(capsys, "models", "--max-price", "0.5")
    assert code == EXIT_OK
    assert rows
    assert all(r["output_per_mtok"] <= 0.5 for r in rows)
    assert len(rows) < len(everything)


def test_models_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "models", "--jurisdiction", "LOCAL")
    assert code == EXIT_OK
    assert "deployment(s)" in out
    assert "ollama-local" in out


@pytest.mark.parametrize(
    ("option", "value", "listed"),
    [("--skill", "nonsense", "code"), ("--jurisdiction", "MARS", "EU")],
)
def test_models_unknown_filter_value(
    capsys: pytest.CaptureFixture[str], option: str, value: str, listed: str
) -> None:
    code, out, err = cli(capsys, "models", option, value)
    assert code == EXIT_USAGE
    assert out == ""
    assert value in err
    assert listed in err


def test_models_bad_protocol_is_an_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["models", "--protocol", "grpc"])
    assert info.value.code == EXIT_USAGE


# --- doctor ---------------------------------------------------------------------------------

FAKE_DEEPSEEK = "sk-doctor-deepseek-5c1f0a9e77d2"
FAKE_DASHSCOPE = "sk-doctor-dashscope-91b3e6f2a4c8"


def test_doctor_never_prints_keys(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEEPSEEK_API_KEY", FAKE_DEEPSEEK)
    monkeypatch.setenv("DASHSCOPE_INTL_API_KEY", FAKE_DASHSCOPE)
    code, report, err = cli_json(capsys, "doctor", "--no-network")
    assert code == EXIT_OK, report["problems"]
    assert report["ok"] is True
    assert report["keys"]["DEEPSEEK_API_KEY"]["set"] is True
    assert report["keys"]["DASHSCOPE_INTL_API_KEY"]["set"] is True
    assert report["keys"]["OPENAI_API_KEY"]["set"] is False
    assert report["endpoints"] == []
    code, out, err2 = cli(capsys, "doctor", "--no-network")
    assert code == EXIT_OK
    assert "values are never shown" in out
    everything = json.dumps(report) + err + out + err2
    for value in (FAKE_DEEPSEEK, FAKE_DASHSCOPE, FAKE_DEEPSEEK[-12:], FAKE_DASHSCOPE[-12:]):
        assert value not in everything


def test_doctor_same_dashscope_key_in_two_regions(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASHSCOPE_API_KEY", FAKE_DASHSCOPE)
    monkeypatch.setenv("DASHSCOPE_INTL_API_KEY", FAKE_DASHSCOPE)
    code, report, err = cli_json(capsys, "doctor", "--no-network")
    assert code == EXIT_FAILED
    assert report["ok"] is False
    assert len(report["problems"]) == 1
    problem = report["problems"][0]
    assert "DASHSCOPE_INTL_API_KEY" in problem
    assert "DASHSCOPE_API_KEY" in problem
    assert "regional" in problem
    code, out, err2 = cli(capsys, "doctor", "--no-network")
    assert code == EXIT_FAILED
    assert "1 problem(s)" in out
    for text in (json.dumps(report), err, out, err2):
        assert FAKE_DASHSCOPE not in text


def test_doctor_with_network_blocked(capsys: pytest.CaptureFixture[str]) -> None:
    # conftest refuses every non-loopback connection: the probes must say "unreachable".
    code, report, err = cli_json(capsys, "doctor", "--timeout", "2")
    assert code in (EXIT_OK, EXIT_FAILED), err
    assert "Traceback" not in err
    assert report["endpoints"]
    remote = [
        row
        for row in report["endpoints"]
        if not re.match(r"https?://(localhost|127\.|\[::1\])", row["endpoint"])
    ]
    assert remote
    for row in remote:
        assert row["status"] == "unreachable", row
        assert row["detail"], row
    code, out, _ = cli(capsys, "doctor", "--timeout", "2")
    assert "Endpoints" in out
    assert "unreachable" in out


# --- emulator, smoke --------------------------------------------------------------------------


class EmulatorProcess:
    """``hybridstack emulator …`` as a subprocess: its banner, then terminate it."""

    def __init__(self, *argv: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hybridstack", "emulator", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def readline(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line and self.process.poll() is not None:  # pragma: no cover - shows why
            assert self.process.stderr is not None
            raise AssertionError(f"the emulator exited: {self.process.stderr.read()}")
        return line

    def stop(self) -> int:
        self.process.terminate()
        try:
            return self.process.wait(timeout=15)
        finally:
            if self.process.poll() is None:  # pragma: no cover
                self.process.kill()


@pytest.mark.timeout(60)
def test_emulator_without_config_serves_the_bundled_catalog() -> None:
    from hybridstack.catalog import Catalog

    emulator = EmulatorProcess()
    try:
        first = emulator.readline()
        names = {emulator.readline().split()[0] for _ in range(len(Catalog.default()))}
    finally:
        code = emulator.stop()
    assert f"({len(Catalog.default())} deployments)" in first
    assert names == {d.id for d in Catalog.default()}
    assert code == 0


@pytest.mark.timeout(60)
def test_emulator_keeps_the_config_port_without_port_option(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a port that is free right now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "emulator.toml"
    config.write_text(
        f'port = {port}\n[[deployments]]\nname = "a@b"\nprotocol = "anthropic"\n',
        encoding="utf-8",
    )
    emulator = EmulatorProcess("--config", str(config))
    try:
        first = emulator.readline()
    finally:
        emulator.stop()
    assert f"listening on http://127.0.0.1:{port} " in first


@pytest.mark.timeout(60)
def test_emulator_subprocess(tmp_path: Path) -> None:
    config = tmp_path / "emulator.toml"
    config.write_text(
        '[[deployments]]\nname = "echo@test"\nprotocol = "openai"\nmodel = "echo-model"\n',
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "hybridstack", "emulator", "--config", str(config), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        found = re.match(r"hybridstack emulator listening on (http://127\.0\.0\.1:\d+) \(1 ", first)
        assert found, first + (process.stderr.read() if process.poll() is not None else "")
        listed = process.stdout.readline()
        assert "echo@test [openai]" in listed
        base_url = listed.split()[-1]
        request = urllib.request.Request(
            base_url + "/chat/completions",
            data=json.dumps(
                {"model": "echo-model", "messages": [{"role": "user", "content": "hi"}]}
            ).encode(),
            headers={"Content-Type": "application/json", "Authorization": "Bearer sk-test"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.load(response)
        assert body["choices"][0]["message"]["content"]
        assert body["usage"]["completion_tokens"] > 0
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        finally:
            if process.poll() is None:  # pragma: no cover
                process.kill()
    assert process.returncode == 0


def test_emulator_bad_config_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = cli(capsys, "emulator", "--config", str(tmp_path / "missing.toml"))
    assert code == EXIT_USAGE
    assert "missing.toml" in err


def test_smoke_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, rows, err = cli_json(capsys, "smoke")
    assert code == EXIT_OK, err
    assert {r["protocol"] for r in rows} == {"openai", "anthropic", "dashscope"}
    for row in rows:
        assert row["output_tokens"] > 0
        assert row["cost_usd"] >= 0
        assert row["text"]


# --- the console entry, as a real process -------------------------------------------------------


def test_subprocess_version_and_help() -> None:
    version = run_subprocess("--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"hybridstack {__version__}"
    helped = run_subprocess("route", "--help")
    assert helped.returncode == 0
    assert helped.stdout.startswith("usage: hybridstack route")


def test_subprocess_exit_codes_without_tracebacks() -> None:
    empty = run_subprocess("run", "--offline", "")
    assert empty.returncode == EXIT_USAGE
    assert empty.stderr.startswith("hybridstack: error: the task is empty")
    assert "Traceback" not in empty.stderr
    no_route = run_subprocess(
        "route", "hi", "--model", "deepseek-flash", "--data-class", "regulated", "--json"
    )
    assert no_route.returncode == EXIT_NO_ROUTE
    assert "Traceback" not in no_route.stderr


def test_run_without_keys_or_local_server_fails_with_a_hint(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # conftest removed every *_API_KEY: only LOCAL deployments (no key) are routable,
    # and nothing listens on their loopback ports here.
    code, _out, err = cli(capsys, "run", "--no-progress", "Write a haiku about rain")
    assert code == EXIT_FAILED
    assert "only LOCAL deployments were tried" in err
    assert "--offline" in err


# --- task input, exit codes, pipes (issue 9.7) ---------------------------------------------


def test_run_reads_the_task_from_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    task = "Schreibe eine Python-Funktion, die eine Liste umkehrt. " * 40  # a long task
    stdin = io.TextIOWrapper(io.BytesIO(task.encode("utf-8")), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", stdin)
    code, data, err = cli_json(capsys, "run", "--offline", "-")
    assert code == EXIT_OK, err
    assert data["task"] == task


def test_run_reads_the_task_from_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    task = "编写一个反转列表的 Python 函数。\n" * 30
    path = tmp_path / "task.txt"
    path.write_text(task, encoding="utf-8")
    code, data, err = cli_json(capsys, "run", "--offline", "--file", str(path))
    assert code == EXIT_OK, err
    assert data["task"] == task


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (b"\xff\xfe broken", ["--file", "{path}"], "is not UTF-8 text (byte 0 is 0xff)"),
        (None, ["--file", "{path}"], "no task file at"),
        (b"x", ["--file", "{dir}"], "is a directory"),
        (b"x", ["--file", "{path}", "a task as well"], "not both"),
        (b"   \n", ["--file", "{path}"], "the task is empty"),
    ],
)
def test_run_task_input_errors(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    content: bytes | None,
    args: list[str],
    message: str,
) -> None:
    path = tmp_path / "task.txt"
    if content is not None:
        path.write_bytes(content)
    argv = [a.format(path=path, dir=tmp_path) for a in args]
    code, out, err = cli(capsys, "run", "--offline", *argv)
    assert code == EXIT_USAGE, err
    assert message in err
    assert "Traceback" not in err
    assert "Plan (" not in out


def test_run_stdin_task_with_approve_plan_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("a task\n"))
    code, _, err = cli(capsys, "run", "--offline", "--approve-plan", "-")
    assert code == EXIT_USAGE
    assert "--file" in err


def test_ledger_unknown_run_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _data, err = cli_json(capsys, "run", "--offline", "--thread", "run-alpha", CODE_TASK)
    assert code == EXIT_OK, err
    code, out, err = cli(capsys, "ledger", "--offline", "--run", "run-alpah")
    assert code == EXIT_USAGE
    assert "no run 'run-alpah'" in err
    assert "did you mean 'run-alpha'" in err
    assert out == ""
    code, _, err = cli(capsys, "ledger", "--offline", "--run", "zzz")
    assert code == EXIT_USAGE
    assert "run-alpha" in err  # the known runs are named


def test_ledger_attempts_show_error_class_and_action(capsys: pytest.CaptureFixture[str]) -> None:
    # The offline demo's failover, but through `run`, so the attempts reach the ledger.
    code, _data, err = cli_json(capsys, "run", "--offline", "--thread", "t-act", CODE_TASK)
    assert code == EXIT_OK, err
    code, ledger, _ = cli_json(capsys, "ledger", "--offline", "--attempts")
    actions = {a["action"] for a in ledger["attempts"]}
    assert actions <= {"answered", "retried", "failed over", "gave up", "cancelled", "not sent"}
    assert "answered" in actions
    for attempt in ledger["attempts"]:
        assert (attempt["action"] == "answered") == (attempt["outcome"] == "ok")
    code, out, _ = cli(capsys, "ledger", "--offline", "--attempts")
    assert "error class" in out
    assert "action" in out


def test_a_closed_pipe_is_not_an_error(tmp_path: Path) -> None:
    """`hybridstack … | head`: the reader leaves early; no traceback, the real exit code."""
    env = {**os.environ, "HOME": str(tmp_path)}
    for argv in (["models", "--json"], ["models"], ["--help"]):
        # The reader closes its end at once, so every write meets a broken pipe.
        reader = subprocess.Popen(["true"], stdin=subprocess.PIPE)
        reader.wait()
        proc = subprocess.run(
            [sys.executable, "-m", "hybridstack", *argv],
            stdout=reader.stdin,
            stderr=subprocess.PIPE,
            env=env,
            timeout=60,
            check=False,
        )
        assert reader.stdin is not None
        reader.stdin.close()
        assert "Traceback" not in proc.stderr.decode(), argv
        assert "BrokenPipe" not in proc.stderr.decode(), argv
        assert proc.returncode == EXIT_OK, argv
