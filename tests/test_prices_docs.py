"""The prices page, the sources it cites, and ``hybridstack models`` on a narrow terminal.

Issue 9.11: at 80 columns every column of ``models`` was cut short, the date and source of
a price showed only in ``--json``, and catalog sources cited sections of a document that
is not in the repository.
"""

from __future__ import annotations

import importlib.util
import io
import re
from pathlib import Path
from types import ModuleType

import pytest
from rich.console import Console

from hybridstack.catalog import Catalog
from hybridstack.cli.models_table import print_models

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "render_prices_docs.py"
CITATION = re.compile(r"docs/([a-z_-]+\.md)#([a-z0-9-]+)")


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_prices_docs", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _anchors(page: Path) -> set[str]:
    """GitHub/mkdocs-style anchors of a Markdown page's headings."""
    anchors = set()
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^a-z0-9 -]", "", title).replace(" ", "-"))
    return anchors


def test_prices_page_matches_the_catalog() -> None:
    expected = _script().render()
    assert (ROOT / "docs" / "prices.md").read_text(encoding="utf-8") == expected, (
        "docs/prices.md is out of date: run python scripts/render_prices_docs.py"
    )


def test_prices_page_lists_every_deployment_with_date_and_source() -> None:
    page = (ROOT / "docs" / "prices.md").read_text(encoding="utf-8")
    for row in Catalog.default().to_rows():
        line = next(line for line in page.splitlines() if f"`{row['id']}`" in line)
        assert row["price_as_of"] in line
        assert row["price_source"].replace("|", "\\|")[:40] in line


def test_every_cited_section_exists() -> None:
    texts = {
        "catalog": (ROOT / "hybridstack" / "catalog" / "data" / "catalog.toml").read_text(
            encoding="utf-8"
        ),
        **{
            str(p.relative_to(ROOT)): p.read_text(encoding="utf-8")
            for p in [*(ROOT / "hybridstack").rglob("*.py"), *(ROOT / "docs").glob("*.md")]
        },
    }
    cited = 0
    for where, text in texts.items():
        # The team's notes are not shipped: a citation must name a page that is.
        assert not re.search(r"providers\.md`? §", text), f"{where} cites providers.md §…"
        for page, anchor in CITATION.findall(text):
            cited += 1
            assert (ROOT / "docs" / page).is_file(), f"{where} cites missing docs/{page}"
            assert anchor in _anchors(ROOT / "docs" / page), f"{where}: no #{anchor} in {page}"
    assert cited > 10


@pytest.mark.parametrize("width", [80, 100])
def test_models_fits_a_narrow_terminal_without_cutting_cells(width: int) -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, highlight=False)
    rows = Catalog.default().to_rows()
    print_models(console, rows, sources=False)
    lines = buffer.getvalue().splitlines()
    assert max(len(line) for line in lines) <= width
    assert not any("…" in line for line in lines)  # nothing truncated
    for row in rows:
        # Each deployment's row shows its whole id, price and month of the price.
        line = next(line for line in lines if line.startswith(row["id"] + " "))
        assert row["jurisdiction"] in line
        assert row["price_as_of"][:7] in line
        assert f"{row['output_per_mtok']:g}" in line


def test_models_wide_shows_region_protocol_and_date() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=160, color_system=None, highlight=False)
    rows = Catalog.default().to_rows()
    print_models(console, rows, sources=False)
    text = buffer.getvalue()
    assert "protocol" in text
    assert "region" in text
    for row in rows:
        line = next(line for line in text.splitlines() if f" {row['id']} " in line)
        assert row["price_as_of"] in line
        assert row["region"] in line


def test_models_sources_lists_each_source() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=80, color_system=None, highlight=False)
    rows = Catalog.default().to_rows()
    print_models(console, rows, sources=True)
    text = "".join(buffer.getvalue().split())  # folded lines (even mid-URL) joined again
    for row in rows:
        expected = f"{row['id']} ({row['price_as_of']}): {row['price_source']}"
        assert "".join(expected.split()) in text
