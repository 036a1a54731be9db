"""The skill of a call that names none: the Stack's ``skill_classifier`` (or the offline
default) run on the request's user text, awaited when it is async, its answer checked.

``route()`` decides without awaiting anything (:func:`skill_of`); ``complete()`` and
``stream()`` await an async classifier (:func:`skill_of_async`).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

from hybridstack.errors import ConfigurationError
from hybridstack.types import ChatRequest

__all__ = [
    "DEFAULT_CLASSIFIER",
    "SkillClassifierLike",
    "classified_text",
    "is_async_callable",
    "skill_name",
    "skill_of",
    "skill_of_async",
]

#: ``text -> skill``: a skill name, or anything with a ``.skill`` str (``SkillGuess``,
#: ``Classification``), returned directly or awaited (``LLMSkillClassifier``).
SkillClassifierLike: TypeAlias = Callable[[str], Any | Awaitable[Any]]

#: The module of the offline skill classifier used when a Stack is given none.
DEFAULT_CLASSIFIER = "hybridstack.routing.skills.classifier"


def skill_of(
    classifier: SkillClassifierLike | None,
    is_async: bool,
    request: ChatRequest,
    skill: str | None,
    model: str | None = None,
) -> str | None:
    """The skill, without awaiting anything (route(), and the sync classifier case).
    None when ``model=`` pins the route: no classifier runs for a skill nobody reads.

    ``is_async``: :func:`is_async_callable` of ``classifier``, worked out once by the Stack.
    """
    if skill is not None or model is not None:
        return skill
    text = classified_text(request)
    if classifier is None:
        from hybridstack.routing.skills.classifier import classify_skill

        return classify_skill(text)
    if is_async:
        offline = getattr(classifier, "offline_guess", None)
        if not callable(offline):
            raise ConfigurationError(
                "skill_classifier is async, and route() decides without calling a model: "
                "pass skill=..., or give the classifier an offline_guess(text) method "
                "(LLMSkillClassifier has one)"
            )
        return skill_name(offline(text), classifier)
    result = classifier(text)
    if inspect.isawaitable(result):
        if inspect.iscoroutine(result):
            result.close()  # never awaited: avoid the "was never awaited" warning
        raise ConfigurationError(
            "skill_classifier returned an awaitable where a skill was needed right "
            "away (route()); make it an async def so the stack knows to await it, or "
            "pass skill=..."
        )
    return skill_name(result, classifier)


async def skill_of_async(
    classifier: SkillClassifierLike | None, is_async: bool, request: ChatRequest, skill: str | None
) -> str | None:
    """The skill for complete()/stream(): awaits an async classifier."""
    if skill is not None or not is_async:
        return skill_of(classifier, is_async, request, skill)
    assert classifier is not None  # is_async implies a classifier
    result = classifier(classified_text(request))
    if inspect.isawaitable(result):
        result = await result
    return skill_name(result, classifier)


def is_async_callable(obj: object) -> bool:
    """An ``async def`` function, or an instance whose ``__call__`` is one."""
    if obj is None:
        return False
    return inspect.iscoroutinefunction(obj) or inspect.iscoroutinefunction(
        getattr(obj, "__call__", None)  # noqa: B004 - instances with an async __call__
    )


def classified_text(request: ChatRequest) -> str:
    """What the classifier reads: the user's messages, else the whole prompt."""
    user_text = "\n".join(m.text for m in request.messages if m.role == "user")
    return user_text or request.prompt_text


def skill_name(result: object, classifier: object) -> str:
    """The skill a classifier returned: a name, or a SkillGuess / Classification
    (anything with a .skill str); a ConfigurationError for anything else."""
    skill = result if isinstance(result, str) else getattr(result, "skill", None)
    if not isinstance(skill, str) or not skill.strip():
        raise ConfigurationError(
            f"skill_classifier {classifier!r} returned {result!r}: it must return a skill "
            "name (str) or an object with a .skill str, such as a SkillGuess"
        )
    return skill
