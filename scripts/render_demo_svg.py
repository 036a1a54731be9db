"""Render `hybridstack demo`'s output to docs/demo.svg (the picture in the README).

python scripts/render_demo_svg.py
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from rich.console import Console

from hybridstack.cli.demo import run_demo

OUT = Path(__file__).resolve().parent.parent / "docs" / "demo.svg"


def main() -> None:
    console = Console(record=True, width=132, force_terminal=True, color_system="truecolor")
    asyncio.run(run_demo(console, seed=7, outage="CN", progress=False))
    console.save_svg(str(OUT), title="hybridstack demo")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
