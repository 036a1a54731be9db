"""The skill table: which model families serve a skill, best first.

A skill (``code``, ``multilingual``, ``reasoning``, ``general`` or one of your own) maps
to a ranked list of references. A reference is a family (``deepseek-flash``: every
deployment of it, filtered by the router), a pinned deployment (``qwen-plus@dashscope-sg``)
or a provider model (``openai:gpt-4o-mini``).

Defaults (:data:`DEFAULT_SKILL_TABLE`): DeepSeek for code, Qwen for multilingual work,
Llama for reasoning, a spread of cheap generalists for ``general``. Your table replaces
the default list *per skill* (other skills keep their defaults unless ``defaults=False``).

Families you did not list are appended after the listed ones, ranked by their catalog
``skills`` strength for that skill (``fallback_by_strength=True``, strength at least
``min_strength``), so a skill never loses a route just because a table is short. Families
with no strength for the skill are not appended.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING

from hybridstack.errors import ConfigurationError
from hybridstack.routing.skills.vocabulary import SKILLS

if TYPE_CHECKING:
    from hybridstack.catalog.catalog import Catalog

__all__ = ["DEFAULT_SKILL_TABLE", "SkillTable"]

_RANKING: dict[str, tuple[str, ...]] = {
    "code": (
        "deepseek-flash",
        "deepseek-v4-pro",
        "qwen3-coder-plus",
        "claude-haiku-4.5",
        "gpt-4o-mini",
    ),
    "multilingual": (
        "qwen-plus",
        "qwen-mt-turbo",
        "deepseek-flash",
        "gpt-4o-mini",
        "llama-3.3-70b",
    ),
    "reasoning": (
        "llama-3.3-70b",
        "deepseek-v4-pro",
        "qwen-plus",
        "claude-haiku-4.5",
        "gpt-4o-mini",
    ),
    "general": (
        "qwen-plus",
        "deepseek-flash",
        "llama-3.3-70b",
        "gpt-4o-mini",
        "claude-haiku-4.5",
    ),
}
#: The built-in ranking, one entry per skill of the vocabulary (:data:`SKILLS`).
#: Families missing from a catalog are skipped silently.
DEFAULT_SKILL_TABLE: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {skill: _RANKING[skill] for skill in SKILLS}
)


def _refs(skill: str, value: str | Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    refs: list[str] = []
    for ref in value:
        if not isinstance(ref, str) or not ref.strip():
            raise ConfigurationError(
                f"skill table entry for {skill!r} must be a list of family names or "
                f"'family@site' references, got {ref!r}"
            )
        ref = ref.strip()
        if ref not in refs:
            refs.append(ref)
    return tuple(refs)


class SkillTable:
    """Skill -> ranked family references, with catalog-strength fall-backs.

    Args:
        table: ``{"code": ["deepseek-flash", "qwen3-coder-plus"], ...}``; replaces the
            default list of each skill it names.
        defaults: start from :data:`DEFAULT_SKILL_TABLE` (True) or from nothing.
        fallback_by_strength: append unlisted families by their catalog strength.
        min_strength: the least strength (0-1) an unlisted family needs to be appended.
    """

    __slots__ = ("_table", "fallback_by_strength", "min_strength", "user_skills")

    def __init__(
        self,
        table: Mapping[str, str | Sequence[str]] | None = None,
        *,
        defaults: bool = True,
        fallback_by_strength: bool = True,
        min_strength: float = 0.0,
    ) -> None:
        if not 0.0 <= min_strength <= 1.0:
            raise ConfigurationError(f"min_strength must be between 0 and 1, got {min_strength}")
        merged: dict[str, tuple[str, ...]] = dict(DEFAULT_SKILL_TABLE) if defaults else {}
        user: set[str] = set()
        for skill, refs in (table or {}).items():
            if not isinstance(skill, str) or not skill.strip():
                raise ConfigurationError(f"skill names must be non-empty strings, got {skill!r}")
            merged[skill.strip()] = _refs(skill, refs)
            user.add(skill.strip())
        self._table = merged
        #: Skills whose list came from the user (validate() warns about unknown names there).
        self.user_skills = frozenset(user)
        self.fallback_by_strength = fallback_by_strength
        self.min_strength = min_strength

    @classmethod
    def coerce(cls, value: SkillTable | Mapping[str, str | Sequence[str]] | None) -> SkillTable:
        if value is None:
            return cls()
        if isinstance(value, SkillTable):
            return value
        if isinstance(value, Mapping):
            return cls(value)
        raise ConfigurationError(
            f"skill_table must be a SkillTable or a dict, got {type(value).__name__}"
        )

    def with_overrides(self, table: Mapping[str, str | Sequence[str]]) -> SkillTable:
        """A new table with some skills' lists replaced."""
        new = SkillTable(
            None,
            defaults=False,
            fallback_by_strength=self.fallback_by_strength,
            min_strength=self.min_strength,
        )
        merged = dict(self._table)
        for skill, refs in table.items():
            merged[skill] = _refs(skill, refs)
        new._table = merged
        new.user_skills = self.user_skills | frozenset(table)
        return new

    @property
    def skills(self) -> tuple[str, ...]:
        return tuple(self._table)

    def ranked(self, skill: str) -> tuple[str, ...]:
        """The explicit references for a skill (no fall-backs); empty when unlisted."""
        return self._table.get(skill, ())

    def __contains__(self, skill: object) -> bool:
        return skill in self._table

    def fallbacks(self, skill: str, catalog: Catalog) -> list[tuple[str, float]]:
        """Unlisted families with a strength for ``skill``: ``[(family, strength)]``, best first."""
        if not self.fallback_by_strength:
            return []
        listed = {ref.split("@", 1)[0] for ref in self.ranked(skill)}
        found = [
            (name, fam.skills[skill])
            for name, fam in catalog.families.items()
            if name not in listed
            and skill in fam.skills
            and fam.skills[skill] > 0.0
            and fam.skills[skill] >= self.min_strength
        ]
        found.sort(key=lambda item: (-item[1], item[0]))
        return found

    def known_skills(self, catalog: Catalog | None = None) -> tuple[str, ...]:
        """Skills in the table plus skills any catalog family has a strength for."""
        names = dict.fromkeys(self._table)
        if catalog is not None:
            for fam in catalog.families.values():
                names.update(dict.fromkeys(fam.skills))
        return tuple(names)

    def to_dict(self) -> dict[str, list[str]]:
        return {skill: list(refs) for skill, refs in self._table.items()}

    def __repr__(self) -> str:
        body = ", ".join(f"{s}: {list(r)}" for s, r in self._table.items())
        return f"SkillTable({{{body}}})"
