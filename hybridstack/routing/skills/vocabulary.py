"""The skill vocabulary: the built-in skill names, defined once for routing and the agent.

A skill is what a request needs (DESIGN.md). The skill table ranks families for each of
these, the classifier labels prompts with one of them, and the planner offers them to a
model; a stack's own table and catalog may add more (``Stack.known_skills()``).
"""

from __future__ import annotations

from typing import TypeAlias

__all__ = ["DEFAULT_SKILL", "SKILLS", "Skill"]

Skill: TypeAlias = str
"""A skill name: one of :data:`SKILLS`, or one a skill table or catalog adds."""

#: The built-in skills, in the classifier's order of precedence.
SKILLS: tuple[Skill, ...] = ("code", "multilingual", "reasoning", "general")

#: The skill of a request nothing else marks (and of a route probe).
DEFAULT_SKILL: Skill = "general"
