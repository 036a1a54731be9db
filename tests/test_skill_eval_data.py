"""The skill evaluation set (tests/data/skill_eval/) is well formed and its holdout frozen.

The holdout is only worth something while nobody tunes on it: its sha256 is pinned here,
so an edit to it fails this test (change the hash only with a new, never-tuned-on set),
and the split must be the seeded random one that ``scripts/split_skill_eval.py`` makes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from hybridstack.routing.skills import SKILLS

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "skill_eval"
DEV_PATH = DATA / "dev.jsonl"
HOLDOUT_PATH = DATA / "holdout.jsonl"
#: sha256 of holdout.jsonl as split off before the classifier was tuned (never edit it).
HOLDOUT_SHA256 = "ba4fbd9e2ebc096f39f355987d275e7bc6b3e319a10515983a5d40ed131b6f5a"


# Every language the issue names must be in the set.
REQUIRED_LANGS = ("sw", "ha", "yo", "am", "hi", "bn", "ta", "th", "vi", "id", "tl", "ar", "fa")
REQUIRED_LANGS += ("tr", "ru", "uk", "pl", "de", "fr", "es", "pt", "it", "ja", "ko", "zh", "en")


def _load(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


DEV = _load(DEV_PATH)
HOLDOUT = _load(HOLDOUT_PATH)


def _split_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "split_skill_eval", ROOT / "scripts" / "split_skill_eval.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_holdout_is_frozen() -> None:
    digest = hashlib.sha256(HOLDOUT_PATH.read_bytes()).hexdigest()
    assert digest == HOLDOUT_SHA256, (
        "tests/data/skill_eval/holdout.jsonl changed. The holdout is frozen: tune on "
        "dev.jsonl only, and replace the holdout only with a new set nobody tuned on."
    )


def test_split_is_the_seeded_random_one() -> None:
    split = _split_module()
    assert split.split(DEV + HOLDOUT) == (DEV, HOLDOUT)


@pytest.mark.parametrize("rows", [DEV, HOLDOUT], ids=["dev", "holdout"])
def test_rows_are_well_formed(rows: list[dict[str, str]]) -> None:
    for row in rows:
        assert set(row) == {"text", "skill", "lang"}, row
        assert row["skill"] in SKILLS, row
        assert row["text"].strip(), row
        # The guideline: outside English only code and multilingual exist.
        if row["lang"] != "en":
            assert row["skill"] in ("code", "multilingual"), row


def test_sizes_languages_and_skills() -> None:
    everything = DEV + HOLDOUT
    assert len(everything) >= 800
    assert len(HOLDOUT) >= 250
    texts = [r["text"] for r in everything]
    assert len(set(texts)) == len(texts), "duplicate prompts"
    langs = Counter(r["lang"] for r in everything)
    assert len(langs) >= 20
    for lang in REQUIRED_LANGS:
        assert langs[lang] >= 15, (lang, langs[lang])
        assert any(r["lang"] == lang for r in HOLDOUT), lang
    for skill in SKILLS:
        assert sum(r["skill"] == skill for r in HOLDOUT) >= 30, skill


def test_new_set_shares_no_prompt_with_the_old_sets() -> None:
    old = {
        r["text"].strip().lower()
        for name in ("skill_prompts.jsonl", "skill_prompts_holdout.jsonl")
        for r in _load(ROOT / "tests" / "data" / name)
    }
    assert not old & {r["text"].strip().lower() for r in DEV + HOLDOUT}
