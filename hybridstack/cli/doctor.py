"""``hybridstack doctor``: keys set (never their values), reachability, key/region pitfalls.

Checks, in order:

1. which API-key variables the catalog's enabled deployments need, and whether each is set;
2. DashScope keys reused across regions (keys are regional: a Beijing key on the
   international host gets 401 InvalidApiKey) and, when probing, 401s from DashScope;
3. retired model names: enabled deployments marked retired, and retired names used in the
   skill table;
4. reachability of each distinct endpoint (an HTTP request with a short timeout; any HTTP
   answer counts as reachable, a 401 with a key set is reported as a key problem);
5. that something can answer a call at all: an endpoint with its key set (or needing
   none) that answered. When none did, that is a problem (exit 1), never "no problems".
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from hybridstack.catalog import Catalog, Deployment

DASHSCOPE_KEY_VARIABLES = (
    "DASHSCOPE_API_KEY",
    "DASHSCOPE_INTL_API_KEY",
    "DASHSCOPE_US_API_KEY",
    "DASHSCOPE_EU_API_KEY",
)


@dataclass
class DoctorReport:
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    endpoints: list[dict[str, Any]] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "keys": self.keys,
            "endpoints": self.endpoints,
            "retired": self.retired,
            "problems": self.problems,
            "notes": self.notes,
            "ok": not self.problems,
        }

    def print(self, console: Any) -> None:
        from rich.table import Table

        keys = Table(title="API-key variables (values are never shown)")
        for column in ("variable", "set", "deployments"):
            keys.add_column(column)
        for name, info in sorted(self.keys.items()):
            keys.add_row(
                name,
                "yes" if info["set"] else "no",
                ", ".join(info["deployments"][:4]) + (" …" if len(info["deployments"]) > 4 else ""),
            )
        console.print(keys)
        if self.endpoints:
            table = Table(title="Endpoints")
            for column in ("endpoint", "jurisdiction", "status", "detail"):
                table.add_column(column)
            for row in self.endpoints:
                table.add_row(row["endpoint"], row["jurisdiction"], row["status"], row["detail"])
            console.print(table)
        from rich.markup import escape

        for line in self.retired:
            console.print(f"[yellow]retired:[/] {escape(line)}", markup=True)
        for line in self.notes:
            console.print(f"note: {line}", markup=False)
        if self.problems:
            console.print(f"[red]{len(self.problems)} problem(s):[/]")
            for line in self.problems:
                console.print(f"  - {line}", markup=False)
        else:
            console.print("[green]no problems found[/]")


def run_doctor(
    catalog: Catalog,
    *,
    skill_table: dict[str, list[str]] | None = None,
    probe: bool = True,
    timeout_s: float = 3.0,
    environ: dict[str, str] | None = None,
) -> DoctorReport:
    env = dict(os.environ if environ is None else environ)
    report = DoctorReport()
    enabled = [d for d in catalog if d.enabled]

    for deployment in enabled:
        if deployment.api_key_env is None:
            continue
        info = report.keys.setdefault(
            deployment.api_key_env,
            {"set": bool(env.get(deployment.api_key_env)), "deployments": []},
        )
        info["deployments"].append(deployment.id)
    no_key = not any(info["set"] for info in report.keys.values())
    keyless = [d for d in enabled if d.api_key_env is None]
    if no_key and not keyless:
        report.problems.append(
            "nothing can answer: no provider key is set and the catalog has no keyless "
            f"(local) deployment; set one of {_variables(report)}, or use the offline "
            "emulator (`hybridstack demo`, `hybridstack run --offline`)"
        )
    elif no_key:
        report.notes.append(
            "no provider key is set: only LOCAL deployments and the offline emulator "
            "(`hybridstack demo`, `hybridstack run --offline`) can answer"
        )

    # DashScope keys are bound to one region; the same value in two variables is a mistake.
    seen: dict[str, str] = {}
    for name in DASHSCOPE_KEY_VARIABLES:
        value = env.get(name)
        if not value:
            continue
        if value in seen:
            report.problems.append(
                f"{name} holds the same key as {seen[value]}: DashScope keys are regional "
                "(a Beijing key on the international host gets 401 InvalidApiKey); create one "
                "key per region"
            )
        seen.setdefault(value, name)

    for deployment in enabled:
        if deployment.retired:
            report.retired.append(
                f"{deployment.id}: the host no longer serves {deployment.model!r}; "
                "disable it or point it at a current model"
            )
    for skill, refs in (skill_table or {}).items():
        for ref in refs:
            name = ref.split("@", 1)[0].split(":", 1)[-1]
            retired = getattr(catalog, "retired", {}) or {}
            if name in retired:
                entry = retired[name]
                replacement = getattr(entry, "replacement", None)
                report.problems.append(
                    f"skill table [{skill}] uses retired name {ref!r}"
                    + (f"; use {replacement!r}" if replacement else "")
                )
    # Retired catalog entries are warnings (already disabled or flagged), not problems.

    if probe:
        report.endpoints = asyncio.run(_probe_all(enabled, env, timeout_s))
        for row in report.endpoints:
            if row["status"] == "key rejected":
                report.problems.append(f"{row['endpoint']}: {row['detail']}")
        _check_something_answers(report, enabled, env)
    return report


def _variables(report: DoctorReport, limit: int = 6) -> str:
    names = sorted(report.keys, key=lambda n: -len(report.keys[n]["deployments"]))
    return ", ".join(names[:limit]) + (", …" if len(names) > limit else "")


def _check_something_answers(
    report: DoctorReport, enabled: list[Deployment], env: dict[str, str]
) -> None:
    """A problem when no endpoint a call could use (key set, or none needed) answered."""
    usable = {
        d.base_url
        for d in enabled
        if d.api_key_env is None or d.api_key is not None or env.get(d.api_key_env)
    }
    rows = [row for row in report.endpoints if row["endpoint"] in usable]
    if not rows or any(row["status"] == "reachable" for row in rows):
        return
    any_key = any(info["set"] for info in report.keys.values())
    local = [row["endpoint"] for row in rows if row["jurisdiction"] == "LOCAL"]
    if not any_key:
        report.problems.append(
            f"nothing can answer: no provider key is set and none of the {len(local)} local "
            f"endpoint(s) answered ({', '.join(local[:3])}{' …' if len(local) > 3 else ''}); "
            f"set a key ({_variables(report)}; values stay private), start a local server "
            "(Ollama: `ollama serve`), or use the offline emulator (`hybridstack demo`)"
        )
    else:
        report.problems.append(
            f"nothing can answer: none of the {len(rows)} endpoint(s) with a key set or no "
            "key needed answered; check the network, a proxy (HTTPS_PROXY) or a firewall"
        )


async def _probe_all(
    deployments: list[Deployment], env: dict[str, str], timeout_s: float
) -> list[dict[str, Any]]:
    by_endpoint: dict[str, Deployment] = {}
    for deployment in deployments:
        by_endpoint.setdefault(deployment.base_url, deployment)
    results = await asyncio.gather(
        *(_probe(url, dep, env, timeout_s) for url, dep in by_endpoint.items())
    )
    return list(results)


async def _probe(
    url: str, deployment: Deployment, env: dict[str, str], timeout_s: float
) -> dict[str, Any]:
    import aiohttp

    key = env.get(deployment.api_key_env or "", "") if deployment.api_key_env else ""
    headers = {"Authorization": f"Bearer {key}", "x-api-key": key} if key else {}
    probe_url = url + ("/models" if deployment.protocol == "openai" else "")
    row = {
        "endpoint": url,
        "jurisdiction": deployment.jurisdiction,
        "deployment": deployment.id,
        "status": "unreachable",
        "detail": "",
    }
    try:
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(probe_url, headers=headers) as response,
        ):
            row["status"] = "reachable"
            row["detail"] = f"HTTP {response.status}"
            if response.status == 401 and key:
                row["status"] = "key rejected"
                hint = (
                    f" (DashScope keys are regional: is this the key for {urlsplit(url).hostname}?)"
                    if "dashscope" in url
                    else ""
                )
                row["detail"] = f"HTTP 401 with {deployment.api_key_env} set{hint}"
    except Exception as error:  # any failure to connect is "unreachable", with its kind
        row["detail"] = type(error).__name__
    return row
