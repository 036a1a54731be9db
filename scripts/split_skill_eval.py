"""Split the skill evaluation set into a development set and a frozen holdout.

One job: a seeded, language-stratified random split of labelled prompts, so the holdout
is chosen by the seed, not by hand. ``tests/test_classifier.py`` re-runs :func:`split` on
the union of the two files and checks it reproduces them.

    python scripts/split_skill_eval.py all.jsonl          # write dev.jsonl + holdout.jsonl
    python scripts/split_skill_eval.py --check            # re-split the union, compare

See ``tests/data/skill_eval/README.md`` for the labelling guideline.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "skill_eval"
SEED = 20260301
HOLDOUT_SHARE = 0.33
Row = dict[str, str]


def split(
    rows: list[Row], seed: int = SEED, share: float = HOLDOUT_SHARE
) -> tuple[list[Row], list[Row]]:
    """``(dev, holdout)``: per language, a seeded shuffle; the first ``share`` is holdout.

    The input order does not matter (rows are sorted first), so the split of a set is a
    function of its content and the seed alone. Each part is returned sorted by
    (lang, skill, text), which keeps diffs of the files readable.
    """
    by_lang: dict[str, list[Row]] = defaultdict(list)
    for row in sorted(rows, key=_key):
        by_lang[row["lang"]].append(row)
    rng = random.Random(seed)
    dev: list[Row] = []
    holdout: list[Row] = []
    for lang in sorted(by_lang):
        group = by_lang[lang]
        rng.shuffle(group)
        cut = round(len(group) * share)
        holdout.extend(group[:cut])
        dev.extend(group[cut:])
    return sorted(dev, key=_key), sorted(holdout, key=_key)


def _key(row: Row) -> tuple[str, str, str]:
    return (row["lang"], row["skill"], row["text"])


def load(path: Path) -> list[Row]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def dump(rows: list[Row], path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", type=Path, help="all labelled prompts (JSONL)")
    parser.add_argument("--check", action="store_true", help="verify the committed split")
    args = parser.parse_args(argv)
    dev_path, holdout_path = DATA / "dev.jsonl", DATA / "holdout.jsonl"
    if args.check:
        dev, holdout = load(dev_path), load(holdout_path)
        again = split(dev + holdout)
        ok = again == (dev, holdout)
        print("split reproduces the files" if ok else "split does NOT reproduce the files")
        return 0 if ok else 1
    if args.source is None:
        parser.error("give the source JSONL, or --check")
    dev, holdout = split(load(args.source))
    dump(dev, dev_path)
    dump(holdout, holdout_path)
    print(f"dev {len(dev)}, holdout {len(holdout)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
