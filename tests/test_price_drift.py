"""Drift check: the bundled prices against a maintained price map (genai-prices), offline.

For every bundled deployment that genai-prices knows (found by the deployment's
``base_url`` and provider model id, as genai-prices itself matches providers), both price
the same probe requests: a short prompt, a long one (input-length tiers), one mostly
served from the prompt cache, each on a weekday in and out of DeepSeek-style peak hours.
genai-prices runs on the data snapshot it bundles; nothing is fetched.

A deployment genai-prices has no entry for is skipped. One whose price is meant to differ
carries ``price.override_reason`` in the catalog. Any other difference beyond the
tolerance fails with a table of every mismatch. (genai-prices has no weekday rule, so
weekend hours are not probed: the catalog's Monday-Friday peak follows DeepSeek's docs.)
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from hybridstack.catalog import Catalog, Deployment

genai_prices = pytest.importorskip("genai_prices")

TOLERANCE = 0.01  # relative
#: (label, input tokens, cached input tokens, output tokens)
PROBES = (
    ("short", 2_000, 0, 500),
    ("long", 200_000, 0, 2_000),
    ("cached", 50_000, 40_000, 1_000),
)
TIMES = (
    ("wed 02:30 UTC", datetime(2026, 12, 2, 2, 30, tzinfo=UTC)),
    ("wed 12:00 UTC", datetime(2026, 12, 2, 12, 0, tzinfo=UTC)),
)


def reference_cost(dep: Deployment, inp: int, cached: int, out: int, at: datetime) -> float | None:
    """genai-prices' USD for one request, or None when it has no entry for the deployment."""
    usage = genai_prices.Usage(input_tokens=inp, cache_read_tokens=cached, output_tokens=out)
    try:
        result = genai_prices.calc_price(
            usage, dep.model, provider_api_url=dep.base_url, genai_request_timestamp=at
        )
    except LookupError:
        return None
    return float(Decimal(result.total_price))


def compared(catalog: Catalog) -> tuple[list[str], list[list[str]], list[str]]:
    """(deployments compared, mismatch rows, deployments excused by override_reason)."""
    checked: list[str] = []
    rows: list[list[str]] = []
    excused: list[str] = []
    for dep in catalog:
        found = False
        for label, inp, cached, out in PROBES:
            for when, at in TIMES:
                theirs = reference_cost(dep, inp, cached, out, at)
                if theirs is None:
                    continue
                found = True
                ours = dep.price.cost(inp, out, cached, at=at)
                if abs(ours - theirs) <= TOLERANCE * max(abs(theirs), 1e-12):
                    continue
                if dep.price.override_reason:
                    excused.append(f"{dep.id}: {dep.price.override_reason}")
                    continue
                diff = (ours / theirs - 1) if theirs else float("inf")
                rows.append([dep.id, label, when, f"{ours:.6f}", f"{theirs:.6f}", f"{diff:+.1%}"])
        if found:
            checked.append(dep.id)
    return checked, rows, sorted(set(excused))


def table(rows: list[list[str]]) -> str:
    head = ["deployment", "probe", "at", "ours $", "genai-prices $", "diff"]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [head, *rows]]
    return "\n".join(lines)


def test_bundled_prices_match_genai_prices_where_it_has_the_model() -> None:
    checked, rows, excused = compared(Catalog.default())
    # The map covers DeepSeek, OpenAI, Anthropic, Groq, Together and OpenRouter here; if
    # nothing matched, the lookup itself broke and the check would pass vacuously.
    assert len(checked) >= 8, f"too few deployments compared: {checked}"
    assert {"deepseek-flash@deepseek-cn", "gpt-4o-mini@openai-us"} <= set(checked)
    assert not rows, (
        f"bundled prices differ from genai-prices {genai_prices.__version__} by more than "
        f"{TOLERANCE:.0%}; update hybridstack/catalog/data/catalog.toml (as_of, source) or "
        "set price.override_reason on entries that are knowingly different:\n" + table(rows)
    )
    print(f"compared {len(checked)} deployments; excused: {excused or 'none'}")


def test_a_drifted_price_fails_with_a_table_unless_excused() -> None:
    base = Catalog.default()
    dep = base.deployment("gpt-4o-mini@openai-us")
    stale = dep.price.model_copy(update={"input_per_mtok": 0.30})
    drifted = base.with_entries(deployments=[dep.model_copy(update={"price": stale})])
    _, rows, _ = compared(drifted)
    assert rows
    assert all(r[0] == "gpt-4o-mini@openai-us" for r in rows)
    assert "gpt-4o-mini@openai-us" in table(rows)
    assert rows[0][5].startswith("+")

    reason = "negotiated enterprise rate"
    excused_price = stale.model_copy(update={"override_reason": reason})
    excused = base.with_entries(deployments=[dep.model_copy(update={"price": excused_price})])
    _, rows, notes = compared(excused)
    assert not rows
    assert notes == [f"gpt-4o-mini@openai-us: {reason}"]
