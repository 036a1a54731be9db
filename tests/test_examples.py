"""The example programs run as a user runs them (a subprocess, ``--offline``) and say true things.

Each test reads facts from the example's stdout (routes, jurisdictions, fail-overs,
ledger rows) and checks them, so an example that still exits 0 but stopped showing
what it is for fails here. Without ``--offline`` and without keys, an example must
stop with a clear message, not a traceback.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import hybridstack as hs

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith(("_API_KEY", "_SECRET_KEY")) and k != "HYBRIDSTACK_CONFIG"
    }
    env.update(PYTHONIOENCODING="utf-8", **extra)
    return env


def run_example(name: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=ROOT,
        env=_env(**env),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=90,
    )


def ok(name: str) -> str:
    result = run_example(name, "--offline")
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    assert "SIMULATED" in result.stdout.strip().splitlines()[-1]
    return result.stdout


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), EXAMPLES / name)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- ecommerce_support.py ---------------------------------------------------------------

STEP_RE = re.compile(r"^  (\w+)\s+(\S+) \((\w+)\)\s+(\w+)\s+\$(\d+\.\d+)$", re.M)


def test_ecommerce_support_routes_each_skill_to_its_family():
    out = ok("ecommerce_support.py")
    blocks = re.split(r"^== ", out, flags=re.M)[1:]
    assert [b.split(" ", 1)[0] for b in blocks] == ["Indonesian", "Thai", "Arabic", "Chinese"]
    family_for = {"code": "deepseek", "reasoning": "llama", "multilingual": "qwen"}
    used: set[str] = set()
    for block in blocks:
        # The rows come from the ledger (run_id = the ticket): skill, deployment, outcome.
        steps = STEP_RE.findall(block)
        assert [skill for skill, *_ in steps] == ["code", "reasoning", "multilingual"], block
        for skill, deployment, jurisdiction, outcome, cost in steps:
            assert deployment.split("-")[0] == family_for[skill]
            assert jurisdiction in {"CN", "SG", "US", "EU", "LOCAL"}
            assert outcome == "ok"
            assert float(cost) > 0
            used.add(jurisdiction)
        message_cost = float(re.match(r"\w+ \(\$(\S+)\)", block).group(1))
        assert message_cost == pytest.approx(sum(float(s[-1]) for s in steps), abs=2e-6)
        assert "order:    {'id': 'A10" in block  # the generated SQL found the order
    # The customer answer is in the customer's language.
    assert "Pesanan A1001 kami refund penuh" in blocks[0]
    assert "退款" in blocks[3]
    ledger = dict(re.findall(r"^  (\w+)\s+\d+ calls\s+\d+ attempts\s+\$(\S+)$", out, re.M))
    assert set(ledger) == used
    total = float(re.search(r"^total: \$(\S+)$", out, re.M).group(1))
    assert total == pytest.approx(sum(map(float, ledger.values())), abs=2e-6)


# --- code_review.py -----------------------------------------------------------------------

LEDGER_ROW_RE = re.compile(r"^(c\w+)\s+(\S+@\S+)\s+(\w+)\s+(\w+)\s+(\S+)\s+(\S+)\s+\$(\S+)$", re.M)


def test_code_review_fails_over_from_throttled_cn_and_gets_a_second_family():
    out = ok("code_review.py")
    rows = LEDGER_ROW_RE.findall(out)
    first_call = [r for r in rows if r[0] == rows[0][0]]
    # DeepSeek in CN was tried first and throttled with the emulator's Retry-After.
    assert first_call[0][1] == "deepseek-flash@deepseek-cn"
    assert all(r[2] == "CN" and r[4] == "429" and r[5] == "20s" for r in first_call[:-1])
    assert first_call[-1][2] != "CN"
    assert first_call[-1][3] == "ok"
    assert not [r for r in rows if r[2] == "CN" and r[3] == "ok"]
    fail_over = re.search(r"^fail-over: (\S+) \(CN\) -> (\S+) \((\w+)\)$", out, re.M)
    assert fail_over
    assert fail_over[2] == first_call[-1][1]
    assert fail_over[3] != "CN"
    # The held quota scope kept DeepSeek's twin from being sent a request at all.
    assert (
        "quota scope deepseek-cn held by Retry-After, not sent: deepseek-v4-pro@deepseek-cn" in out
    )
    assert "deepseek-v4-pro" not in {r[1].split("@")[0] for r in rows}
    first = re.search(r"^first review: (\S+) \((\w+)\) after (\d+) attempt", out, re.M)
    second = re.search(r"^second opinion: (\S+) \((\w+)\) after (\d+) attempt", out, re.M)
    assert first
    assert second
    assert first[1] == first_call[-1][1]
    assert int(first[3]) == len(first_call)
    family = {d.id: d.family for d in hs.Catalog.default()}
    assert family[second[1]] != family[first[1]]
    assert "issues=['quantity dropped" in out


# --- sovereign_research_brief.py ----------------------------------------------------------

TRACE_RE = re.compile(r"^(\S+)\s+(public|personal)\s+(\S+@\S+)\s+([A-Z]+)\s+(\w+)\s+(.+)$", re.M)


def test_sovereign_brief_keeps_personal_data_in_eu_or_local():
    out = ok("sovereign_research_brief.py")
    rows = TRACE_RE.findall(out)
    personal = [r for r in rows if r[1] == "personal"]
    assert {r[0] for r in personal} == {"interviews", "brief", "(synthesis)"}
    assert all(r[3] in {"EU", "LOCAL"} for r in personal)
    assert all(r[5] == "-" for r in personal)  # home is the EU: nothing to redact there
    # The EU was down: personal work failed over, and only to LOCAL.
    assert any(r[3] == "EU" and r[4] == "retry_here" for r in personal)
    assert all(r[3] == "LOCAL" for r in personal if r[4] == "ok")
    # Public desk research left the EU, with the e-mail and phone number redacted first.
    china = [r for r in rows if r[0] == "china" and r[4] == "ok"]
    assert china
    assert china[0][3] not in {"EU", "LOCAL"}
    assert "email x1" in china[0][5]
    assert "phone x1" in china[0][5]
    assert "subtask 'brief' runs as 'personal'" in out
    passed = re.search(r"^check passed: all (\d+) personal attempts stayed in EU/LOCAL", out, re.M)
    assert passed
    assert int(passed[1]) == len(personal)


def test_sovereign_brief_check_fails_when_rules_let_personal_data_out(capsys):
    module = load("sovereign_research_brief.py")
    module.RULES = hs.DataClassRules({"personal": "*"})  # a misconfiguration
    # The EU is down and the requirement is the EU alone: whichever deployment the seeded
    # draw picks, the personal subtask is answered outside the zone, so the check fails.
    module.PERSONAL_ZONES = ("EU",)
    assert asyncio.run(module.run(offline=True)) == 1
    assert "SOVEREIGNTY VIOLATION: personal data sent to" in capsys.readouterr().out


# --- bring_your_own_model.py --------------------------------------------------------------


def test_bring_your_own_model_routes_to_the_local_deployment():
    out = ok("bring_your_own_model.py")
    assert re.search(r"^emulating qwen2.5-7b@my-ollama at http://127\.0\.0\.1:\d+/", out, re.M)
    assert "data class 'regulated': ['qwen2.5-7b@my-ollama']" in out
    assert "pinned deployment qwen2.5-7b@my-ollama" in out
    ledger = re.findall(r"^ledger: (.*)$", out, re.M)
    assert len(ledger) == 1
    assert ledger[0].startswith("qwen2.5-7b@my-ollama model=qwen2.5:7b region=local ")
    assert "jurisdiction=LOCAL" in ledger[0]
    assert ledger[0].endswith("outcome=ok cost=$0.000000")


def test_bring_your_own_model_explains_how_to_start_the_server():
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run_example("bring_your_own_model.py", LOCAL_BASE_URL=f"http://127.0.0.1:{port}/v1")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert f"no answer from http://127.0.0.1:{port}/v1" in result.stderr
    assert "ollama serve" in result.stderr


# --- chaos_outage.py and test_chaos_outage.py ---------------------------------------------


def test_chaos_outage_checks_pass_and_match_the_counters():
    out = ok("chaos_outage.py")
    checks = re.findall(r"^check: (.+): (PASS|FAIL)$", out, re.M)
    assert len(checks) == 4
    assert all(v == "PASS" for _, v in checks)
    assert re.search(r"SG breakers open: qwen-plus@dashscope-sg", out)
    assert "requests to open SG deployments: 0" in out
    rows = re.findall(r"^(\S+@\S+)\s+([A-Z]+)\s+(\d+)\s+(\d+)  (\{.*\})$", out, re.M)
    assert rows
    assert all(emulator == ledger for _, _, emulator, ledger, _ in rows)
    sg = [r for r in rows if r[1] == "SG"]
    assert sg
    assert all(set(ast.literal_eval(r[4])) == {"outage"} for r in sg)
    assert any("'500'" in r[4] for r in rows if r[1] == "US")  # the flaky region did fail


def test_chaos_outage_pytest_example_passes():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "examples/test_chaos_outage.py",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b1 passed\b", result.stdout)


# --- without --offline and without keys -----------------------------------------------------


@pytest.mark.parametrize(
    "name", ["ecommerce_support.py", "code_review.py", "sovereign_research_brief.py"]
)
def test_without_keys_an_example_says_what_to_do(name):
    result = run_example(name)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "no provider API key is set" in result.stderr
    assert "--offline" in result.stderr
