"""Import time of hybridstack and of each heavy SDK, each in a fresh interpreter.

Prints a line per module and ends with one JSON line:
{"hybridstack_s": ..., "openai_s": ..., "anthropic_s": ..., "dashscope_s": ..., "langgraph_s": ...,
 "hybridstack_imports_sdks": false}
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

MODULES = {
    "hybridstack": "hybridstack",
    "openai": "openai",
    "anthropic": "anthropic",
    "dashscope": "dashscope",
    "langgraph": "langgraph.graph",
}
REPEATS = 5

PROBE = """
import sys, time
t0 = time.perf_counter()
import {module}
elapsed = time.perf_counter() - t0
heavy = [m for m in ("openai", "anthropic", "dashscope", "langgraph") if m in sys.modules]
print(elapsed, ",".join(heavy))
"""


def measure(module: str) -> tuple[float, list[str]]:
    times = []
    heavy: list[str] = []
    for _ in range(REPEATS):
        out = subprocess.run(
            [sys.executable, "-c", PROBE.format(module=module)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        times.append(float(out[0]))
        heavy = out[1].split(",") if len(out) > 1 and out[1] else []
    return statistics.median(times), heavy


def main() -> None:
    result: dict[str, object] = {}
    for name, module in MODULES.items():
        seconds, heavy = measure(module)
        result[f"{name}_s"] = round(seconds, 4)
        print(f"import {module:<16} {seconds * 1000:8.1f} ms (median of {REPEATS})")
        if name == "hybridstack":
            result["hybridstack_imports_sdks"] = bool(heavy)
            if heavy:
                print(f"  WARNING: import hybridstack also imported {heavy}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
