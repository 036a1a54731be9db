"""``hybridstack models`` as text: the catalog's deployments in a table that fits the terminal.

The full table (region and protocol included) needs about 120 columns; on a narrower
terminal the compact layout leaves those two out (``--json`` has every field) rather
than cutting every cell short. Prices are per 1M tokens with the date they were read,
and ``--sources`` lists where each came from.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

#: Below this width the compact layout is used.
WIDE_COLUMNS = 120


def price_text(row: dict[str, Any]) -> tuple[str, str]:
    """Input and output base rates, marked when a request may pay more."""
    # Base rates; a mark says the request may pay more (longer prompt, peak hour).
    mark = ("+" if row["price_tiers"] else "") + ("*" if row["price_windows"] else "")
    return f"{row['input_per_mtok']:g}{mark}", f"{row['output_per_mtok']:g}{mark}"


def context_text(tokens: int) -> str:
    """128,000 -> 128K, 1,000,000 -> 1M: short enough for the compact layout."""
    if tokens >= 1_000_000 and tokens % 1_000_000 == 0:
        return f"{tokens // 1_000_000}M"
    if tokens >= 1_000:
        return f"{round(tokens / 1_000)}K"
    return str(tokens)


_SHORT_STATUS = {"disabled": "off"}


def status_text(row: dict[str, Any]) -> str:
    return "retired" if row["retired"] else ("disabled" if not row["enabled"] else "ok")


def print_models(console: Console, rows: list[dict[str, Any]], *, sources: bool) -> None:
    """Print the deployments table (and the sources list) sized to ``console.width``."""
    wide = console.width >= WIDE_COLUMNS
    title = f"{len(rows)} deployment(s)  (USD per 1M tokens)"
    if wide:
        table = Table(title=title)
        columns = ["deployment", "jurisdiction", "region", "protocol", "in", "out", "context"]
    else:
        # No borders, short headers: every column keeps its full text at 80 columns.
        table = Table(title=title, box=None, pad_edge=False, collapse_padding=True)
        columns = ["deployment", "jur.", "in", "out", "ctx"]
    for column in [*columns, "as of", "status"]:
        table.add_column(column, no_wrap=column != "deployment", overflow="fold")
    for row in rows:
        price_in, price_out = price_text(row)
        if wide:
            cells = [
                row["id"],
                row["jurisdiction"],
                row["region"],
                row["protocol"],
                price_in,
                price_out,
                f"{row['context_window']:,}",
            ]
        else:
            cells = [
                row["id"],
                row["jurisdiction"],
                price_in,
                price_out,
                context_text(row["context_window"]),
            ]
        # The compact layout gives the month a price was read (the day: wide or --sources).
        as_of = row["price_as_of"] if wide else row["price_as_of"][:7]
        status = status_text(row)
        table.add_row(*cells, as_of, status if wide else _SHORT_STATUS.get(status, status))
    console.print(table)
    if any(row["price_tiers"] for row in rows):
        console.print("+ base tier: longer prompts pay more (price_tiers in --json)")
    if any(row["price_windows"] for row in rows):
        console.print("* off-peak rate: peak hours cost more (price_windows in --json)")
    if not wide:
        console.print("region and protocol: on a terminal of 120 columns or more, or --json")
    if sources:
        console.print()
        console.print("price sources ([doc] provider docs, [3p] third party, [guess] unverified;")
        console.print("notes they cite: docs/sources.md)")
        for row in rows:
            console.print(
                f"{row['id']} ({row['price_as_of']}): {row['price_source'] or '(none given)'}",
                markup=False,
                highlight=False,
                soft_wrap=False,
                overflow="fold",
            )
    elif not wide:
        console.print("where each price comes from: --sources")
