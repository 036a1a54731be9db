"""The README teaches what works: its code runs, its commands are the ones CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, re.S)


def test_quickstart_has_exactly_two_setup_commands_and_ci_runs_the_test_one() -> None:
    section = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = [b.strip() for b in re.findall(r"```bash\n(.*?)```", section, re.S)]
    assert len(commands) == 2
    install_and_demo, install_and_test = commands
    assert install_and_demo.endswith("hybridstack demo")
    assert "pytest" in install_and_test
    assert install_and_test in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_the_readme_code_example_runs(capsys) -> None:  # type: ignore[no-untyped-def]
    [code] = _blocks("python")
    exec(compile(code, "README.md", "exec"), {"__name__": "__main__"})
    printed = capsys.readouterr().out.splitlines()
    assert "$" in printed[0]
    assert printed[1] in ("EU", "LOCAL")
