"""hybridstack.routing.skills: what a request needs, and which families serve it.

* :mod:`~hybridstack.routing.skills.vocabulary`: the skill names (:data:`SKILLS`), once.
* :mod:`~hybridstack.routing.skills.table`: :class:`SkillTable`, skill -> ranked families.
* :mod:`~hybridstack.routing.skills.classifier`: the offline classifier
  (:func:`classify_skill`, :func:`guess_skill`, :class:`SkillClassifier`).
* :mod:`~hybridstack.routing.skills.cascade`: :class:`LLMSkillClassifier` (rules first,
  a model only when unsure).
* :mod:`~hybridstack.routing.skills.language`: :func:`detect_language`.

The classifier's names load lazily: compiling its regexes costs tens of milliseconds, and
``import hybridstack`` must stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hybridstack.routing.skills.table import DEFAULT_SKILL_TABLE, SkillTable
from hybridstack.routing.skills.vocabulary import DEFAULT_SKILL, SKILLS, Skill

if TYPE_CHECKING:
    from hybridstack.routing.skills.cascade import CascadeStats, LLMSkillClassifier
    from hybridstack.routing.skills.classifier import (
        Classification,
        SkillClassifier,
        SkillGuess,
        classify,
        classify_skill,
        guess_skill,
    )
    from hybridstack.routing.skills.language import (
        detect_language,
        is_mostly_english,
        language_name,
    )

_LAZY = {
    "CascadeStats": "cascade",
    "LLMSkillClassifier": "cascade",
    "Classification": "classifier",
    "SkillClassifier": "classifier",
    "SkillGuess": "classifier",
    "classify": "classifier",
    "classify_skill": "classifier",
    "guess_skill": "classifier",
    "detect_language": "language",
    "is_mostly_english": "language",
    "language_name": "language",
}

__all__ = [
    "DEFAULT_SKILL",
    "DEFAULT_SKILL_TABLE",
    "SKILLS",
    "CascadeStats",
    "Classification",
    "LLMSkillClassifier",
    "Skill",
    "SkillClassifier",
    "SkillGuess",
    "SkillTable",
    "classify",
    "classify_skill",
    "detect_language",
    "guess_skill",
    "is_mostly_english",
    "language_name",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
