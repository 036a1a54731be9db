"""The benchmarks run end to end and end with a valid JSON line.

Tiny ``--quick`` runs as subprocesses (the scripts start their own emulators on
loopback). Nothing here asserts a timing or a target: only that each script works,
prints its table(s) and finishes with ONE JSON object carrying the required keys.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"

pytestmark = pytest.mark.slow


def run_bench(script: str, *args: str, timeout: float = 90.0) -> tuple[list[str], dict[str, Any]]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"{script} failed:\n{proc.stderr[-3000:]}"
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) > 1, f"{script} printed no table before its JSON line:\n{proc.stdout}"
    final = json.loads(lines[-1])
    assert isinstance(final, dict)
    # Exactly one JSON line: nothing before the last line parses as a JSON object.
    for line in lines[:-1]:
        if line.lstrip().startswith("{"):
            with pytest.raises(ValueError):
                json.loads(line)
    return lines, final


def number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def test_bench_overhead_quick() -> None:
    lines, final = run_bench("bench_overhead.py", "--quick")
    for key in (
        "raw_rps",
        "stack_rps",
        "rps_ratio",
        "cpu_ms_per_req_raw",
        "cpu_ms_per_req_stack",
        "added_p50_ms",
        "added_p99_ms",
        "stream_rps_ratio",
    ):
        assert key in final, key
        assert number(final[key]), (key, final[key])
    for key in ("raw_rps", "stack_rps", "cpu_ms_per_req_raw", "cpu_ms_per_req_stack"):
        assert final[key] > 0, key
    assert final["errors"] == 0
    assert len(final["cells"]) == 12  # 3 concurrencies x 2 latencies x 2 modes
    assert any("bench_overhead" in line for line in lines[:-1])  # the table's title


def test_bench_failover_quick() -> None:
    _, final = run_bench("bench_failover.py", "--quick", "--requests", "48")
    for key in ("success_rate", "attempts_per_request", "p50_ms", "p99_ms", "p99_healthy_ms"):
        assert key in final, key
        assert number(final[key]), (key, final[key])
    assert 0.0 <= final["success_rate"] <= 1.0
    assert isinstance(final["requests_to_dead"], int)
    assert final["requests_to_dead"] >= 0
    assert isinstance(final["counters_match_ledger"], bool)
    per = final["per_deployment"]
    names = {"bench-llm@cn", "bench-llm@sg", "bench-llm@eu"}
    assert set(per["emulator"]) == names
    assert set(per["ledger"]) == names
    assert final["requests_to_dead"] == per["emulator"]["bench-llm@cn"]


def test_bench_storm_quick() -> None:
    lines, final = run_bench(
        "bench_storm.py", "--quick", "--complete", "60", "--stream", "20", "--meltdown-calls", "60"
    )
    for key in ("success_rate", "max_loop_stall_ms", "meltdown_success_rate", "meltdown_max_share"):
        assert key in final, key
        assert number(final[key]), (key, final[key])
    for key in (
        "lost",
        "duplicated",
        "sent_without_record",
        "recorded_without_send",
        "untranslated_exceptions",
    ):
        assert isinstance(final[key], int), key
        assert final[key] >= 0, key
    assert 0.0 <= final["success_rate"] <= 1.0
    assert (final["complete_calls"], final["stream_calls"]) == (60, 20)
    assert final["config"]["deployments"] >= 6
    assert final["config"]["jurisdictions"] >= 3
    assert set(final["targets"]) >= {"success_rate>=0.999", "meltdown_success_rate>=0.999"}
    assert all(isinstance(v, bool) for v in final["targets"].values())
    # Every deployment the storm names was asked, the refused one included.
    assert len(final["per_deployment"]) == final["config"]["deployments"]
    assert final["starvation"]["requests_sent"] == 0
    assert any(line.startswith("storm:") for line in lines[:-1])  # the tables' titles


def test_bench_classifier_quick() -> None:
    lines, final = run_bench("bench_classifier.py", "--rounds", "1")
    for key in ("holdout_accuracy", "dev_accuracy", "accuracy", "mean_us", "p99_us"):
        assert key in final, key
        assert number(final[key]), (key, final[key])
    assert 0.0 <= final["holdout_accuracy"] <= 1.0
    assert final["n_holdout"] >= 250
    per_language = final["holdout_per_language"]
    assert len(per_language) >= 20
    assert all(0.0 <= v <= 1.0 for v in per_language.values())
    assert set(final["holdout_per_skill"]) == {"code", "multilingual", "reasoning", "general"}
    assert any("FROZEN HOLDOUT" in line for line in lines[:-1])


def test_bench_tokens_quick() -> None:
    _, final = run_bench("bench_tokens.py", "--quick")
    assert final["languages"] >= 25
    for key in ("before_ratio", "after_ratio", "generic_ratio"):
        assert set(final[key]) == set(final["before_ratio"]), key
        assert all(number(v) and v > 0 for v in final[key].values()), key
    for key in ("after_worst_abs_error", "first_load_ms", "max_loop_stall_ms"):
        assert number(final[key]), (key, final[key])
    assert all(number(v) for v in final["us_per_count"].values())


def test_calibrate_tokens_runs_without_writing() -> None:
    before = (ROOT / "hybridstack" / "tokens.py").read_text(encoding="utf-8")
    _, final = run_bench("calibrate_tokens.py")
    assert final["samples"] >= 25
    assert number(final["qwen_fit_worst_abs_error"])
    assert "written" not in final
    assert (ROOT / "hybridstack" / "tokens.py").read_text(encoding="utf-8") == before


def test_bench_redaction_quick() -> None:
    _lines, final = run_bench("bench_redaction.py", "--fuzz", "200")
    for key in ("adjacent_cases", "adjacent_leaks", "fuzz_cases", "fuzz_leaks", "ordinary_changed"):
        assert isinstance(final[key], int), key
    assert number(final["kb_per_s"])


def test_bench_routing_quick() -> None:
    lines, final = run_bench("bench_routing.py", "--quick")
    assert final["deployments"] == [10, 100]
    for key in ("stack_build_ms", "pinned_plan_us", "route_model_us", "skill_plan_us"):
        assert set(final[key]) == {"10", "100"}, key
        assert all(number(v) and v > 0 for v in final[key].values()), key
    assert all(isinstance(v, bool) for v in final["targets"].values())
    assert any(line.startswith("bench_routing:") for line in lines[:-1])  # the table's title


def test_bench_telemetry_quick() -> None:
    lines, final = run_bench("bench_telemetry.py", "--quick")
    for key in ("added_cpu_us_per_call_sdk", "added_cpu_us_per_call_api", "off_check_ns"):
        assert number(final[key]), (key, final[key])
    assert set(final["cpu_us_per_call"]) == {"off", "api", "sdk"}
    assert final["errors"] == 0
    assert final["spans_exported"] > 0  # the sdk stack really traced its calls
    assert any("bench_telemetry" in line for line in lines[:-1])


def test_bench_batch_quick() -> None:
    _lines, final = run_bench("bench_batch.py", "--quick")
    for key in ("tasks_per_s_c1", "tasks_per_s_c8", "speedup_c8", "rerun_s"):
        assert number(final[key]), key
    assert final["tasks"] == 8
    assert final["rerun_requests"] == 0  # a finished batch sends nothing again
