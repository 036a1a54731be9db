"""No key set and no local server: one error that says so and lists what to set; and a
``hybridstack doctor`` that reports it as a problem (exit 1), never "no problems found".

Local servers are pointed at a loopback port nothing listens on (a port this test bound
and released), so the result does not depend on what runs on the machine.
"""

from __future__ import annotations

import contextlib
import json
import socket
from pathlib import Path

import pytest

from hybridstack import Catalog, NoProviderError, Stack
from hybridstack.cli import EXIT_FAILED, EXIT_OK, main
from hybridstack.testing import EmulatedDeployment, Emulator


def _closed_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _catalog_with_dead_local_servers() -> Catalog:
    """The bundled catalog, its keyless (local) deployments moved to a closed port."""
    base = Catalog.default()
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    moved = [
        d.model_copy(update={"base_url": url}) for d in base if d.enabled and d.api_key_env is None
    ]
    return base.with_entries(deployments=moved, source="<test>")


def test_complete_with_no_key_and_no_local_server_says_so() -> None:
    stack = Stack(_catalog_with_dead_local_servers())
    with pytest.raises(NoProviderError) as info:
        stack.complete_sync("Why is the sky blue?")
    error = info.value
    text = str(error)
    assert text.startswith("no provider key is set and no local server answered")
    # What to set: the key variables of hosted deployments the plan left out.
    assert error.variables
    for variable in error.variables[:3]:
        assert variable in text
    assert "DEEPSEEK_API_KEY" in error.variables or "OPENAI_API_KEY" in error.variables
    assert "hybridstack doctor" in text
    assert error.tried
    assert all("@" in d for d in error.tried)
    # It is a configuration problem (the CLI's exit 2), and the attempts are kept.
    assert isinstance(error, ValueError)
    assert error.__cause__ is not None
    assert {a.outcome for a in stack.ledger.attempts()} == {"retry_here"}


async def test_stream_with_no_key_and_no_local_server_says_so() -> None:
    async with Stack(_catalog_with_dead_local_servers()) as stack:
        with pytest.raises(NoProviderError, match="no provider key is set"):
            async for _ in stack.stream("Why is the sky blue?"):
                pass


def test_a_key_set_changes_the_wording(monkeypatch: pytest.MonkeyPatch) -> None:
    # OPENAI_API_KEY is set but personal data may only go to EU/LOCAL deployments.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-real-0000")
    stack = Stack(_catalog_with_dead_local_servers())
    with pytest.raises(NoProviderError) as info:
        stack.complete_sync("Summarise Ana's complaint", data_class="personal")
    text = str(info.value)
    assert text.startswith("none of the keys for the hosted deployments this request may use")
    assert "OPENAI_API_KEY" not in info.value.variables
    assert "SCW_SECRET_KEY" in info.value.variables


def test_a_local_server_that_answers_with_an_error_is_not_reported_as_silent() -> None:
    # A 500 from a local server is a failure of that server, not "nothing answered".
    with Emulator(
        [EmulatedDeployment(name="local", protocol="openai", model="m", faults={"p_500": 1.0})]
    ) as emulator:
        base = Catalog.default()
        moved = [
            d.model_copy(update={"base_url": emulator.base_url("local")})
            for d in base
            if d.enabled and d.api_key_env is None
        ]
        stack = Stack(base.with_entries(deployments=moved, source="<test>"))
        with pytest.raises(Exception) as info:
            stack.complete_sync("Why is the sky blue?")
        assert not isinstance(info.value, NoProviderError)


# --- doctor ----------------------------------------------------------------------------------


def _config(tmp_path: Path, local_url: str) -> Path:
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(
        f"""
[families.tiny]
vendor = "test"
context_window = 8192
skills = {{ general = 0.5 }}

[deployments."tiny@local-box"]
protocol = "openai"
model = "tiny"
base_url = "{local_url}"
region = "local"
jurisdiction = "LOCAL"
operator = "me"
price.input_per_mtok = 0
price.output_per_mtok = 0
price.as_of = 2026-11-15

[deployments."tiny@hosted"]
protocol = "openai"
model = "tiny"
base_url = "https://api.hosted.example/v1"
region = "us-east-1"
jurisdiction = "US"
operator = "hosted"
api_key_env = "HOSTED_API_KEY"
price.input_per_mtok = 1
price.output_per_mtok = 1
price.as_of = 2026-11-15
"""
    )
    config = tmp_path / "hybridstack.toml"
    config.write_text(
        f'[catalog]\nbundled = false\nfiles = ["{catalog.name}"]\n[skills]\ngeneral = ["tiny"]\n'
    )
    return config


def _doctor(capsys: pytest.CaptureFixture[str], config: Path) -> tuple[int, dict]:
    code = main(["doctor", "--config", str(config), "--timeout", "2", "--json"])
    out, _ = capsys.readouterr()
    return code, json.loads(out)


def test_doctor_with_no_key_and_no_local_server_is_a_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, f"http://127.0.0.1:{_closed_port()}/v1")
    code, report = _doctor(capsys, config)
    assert code == EXIT_FAILED
    assert report["ok"] is False
    [problem] = [p for p in report["problems"] if p.startswith("nothing can answer")]
    assert "no provider key is set" in problem
    assert "HOSTED_API_KEY" in problem
    assert {row["status"] for row in report["endpoints"]} == {"unreachable"}
    # The human-readable report says so too, and never "no problems found".
    assert main(["doctor", "--config", str(config), "--timeout", "2"]) == EXIT_FAILED
    out, _ = capsys.readouterr()
    assert "no problems found" not in out
    assert "nothing can answer" in out


def test_doctor_with_a_key_but_no_endpoint_answering_is_a_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOSTED_API_KEY", "sk-test-not-real-1111")
    # The hosted endpoint is not loopback: the test network guard makes it unreachable.
    code, report = _doctor(capsys, _config(tmp_path, f"http://127.0.0.1:{_closed_port()}/v1"))
    assert code == EXIT_FAILED
    assert any("none of the 2 endpoint(s)" in p for p in report["problems"]), report["problems"]


def test_doctor_with_a_local_server_answering_finds_no_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Emulator([EmulatedDeployment(name="tiny", protocol="openai", model="tiny")]) as emulator:
        code, report = _doctor(capsys, _config(tmp_path, emulator.base_url("tiny")))
    assert code == EXIT_OK, report["problems"]
    assert any(row["status"] == "reachable" for row in report["endpoints"])
