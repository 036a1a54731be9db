"""``Stack(skill_classifier=...)`` with async classifiers and the offline-first cascade.

The cascade's model is a real stack over the provider emulator (real HTTP on loopback,
real SDK clients): ``ask`` calls ``llm_stack.complete`` with a system directive that
makes the emulator answer a fixed label, and the emulator's request counters show when
the model was consulted.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import pytest

from hybridstack.errors import ConfigurationError
from hybridstack.routing.skills import (
    LLMSkillClassifier,
    SkillClassifier,
    SkillGuess,
    guess_skill,
)
from hybridstack.stack import Stack
from hybridstack.testing import offline_stack, offline_stack_sync

# Confident offline (a code fence) and unsure offline (confidence below the threshold).
CONFIDENT = "Fix this:\n```python\ndef f(x):\n    return x +\n```"
UNSURE = "Is Arabic written from right to left?"
THRESHOLD = 0.7


def test_the_prompts_sit_on_either_side_of_the_threshold() -> None:
    assert guess_skill(CONFIDENT).confidence >= THRESHOLD
    assert guess_skill(CONFIDENT).skill == "code"
    unsure = guess_skill(UNSURE)
    assert unsure.confidence < THRESHOLD
    assert unsure.skill == "general"


@contextlib.asynccontextmanager
async def llm_cascade(label: str) -> AsyncIterator[tuple[LLMSkillClassifier, Stack]]:
    """A cascade whose model is an emulated deployment that always answers ``label``."""
    async with offline_stack(seed=5) as llm_stack:

        async def ask(prompt: str) -> str:
            reply = await llm_stack.complete(
                [
                    {"role": "system", "content": f"EMULATOR_REPLY: {label}"},
                    {"role": "user", "content": prompt},
                ],
                skill="general",  # never classify the classifier's own prompt
            )
            return reply.text

        yield LLMSkillClassifier(ask, threshold=THRESHOLD), llm_stack


async def test_the_model_is_called_only_for_low_confidence_prompts() -> None:
    async with (
        llm_cascade("reasoning") as (cascade, llm_stack),
        offline_stack(seed=1, skill_classifier=cascade) as stack,
    ):
        await stack.complete(CONFIDENT)
        assert llm_stack.emulator.total() == 0  # confident: no model call
        assert stack.ledger.attempts()[-1].skill == "code"

        await stack.complete(UNSURE)
        assert llm_stack.emulator.total() == 1  # unsure: exactly one model call
        # The model's label decided the route, not the offline "general".
        assert stack.ledger.attempts()[-1].skill == "reasoning"
        assert (cascade.stats.guesses, cascade.stats.llm_calls) == (2, 1)
        assert cascade.stats.llm_failures == 0


async def test_a_failing_model_falls_back_to_the_offline_answer_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with (
        llm_cascade("reasoning") as (cascade, llm_stack),
        offline_stack(seed=1, skill_classifier=cascade) as stack,
    ):
        llm_stack.emulator.set_outage(llm_stack.emulator.deployment_names())
        with caplog.at_level(logging.WARNING, logger="hybridstack.classifier"):
            reply = await stack.complete(UNSURE)
        assert reply.text  # the user's call still succeeded
        assert stack.ledger.attempts()[-1].skill == "general"  # the offline answer
        assert cascade.stats.llm_failures == 1
        # Recorded: the warning, and the model's failed attempts in its stack's ledger.
        assert any("using the offline answer 'general'" in r.message for r in caplog.records)
        assert llm_stack.ledger.attempts()
        assert all(a.outcome != "ok" for a in llm_stack.ledger.attempts())

        guess = await cascade.guess(UNSURE)  # the guess itself carries the reason
        assert guess.source == "rules"
        assert guess.llm_error is not None
        assert guess.llm_error.startswith("llm failed:")
        assert guess.llm_error in guess.reasons


async def test_route_never_calls_the_model_and_uses_the_offline_stage() -> None:
    async with (
        llm_cascade("reasoning") as (cascade, llm_stack),
        offline_stack(seed=1, skill_classifier=cascade) as stack,
    ):
        assert stack.route(UNSURE).skill == "general"
        assert llm_stack.emulator.total() == 0


async def test_stream_awaits_an_async_classifier() -> None:
    async with (
        llm_cascade("reasoning") as (cascade, llm_stack),
        offline_stack(seed=1, skill_classifier=cascade) as stack,
    ):
        async with contextlib.aclosing(stack.stream(UNSURE)) as events:
            kinds = [event.type async for event in events]
        assert "finish" in kinds
        assert llm_stack.emulator.total() == 1
        assert stack.ledger.attempts()[-1].skill == "reasoning"


async def test_a_plain_async_function_is_accepted_but_route_needs_an_offline_stage() -> None:
    calls: list[str] = []

    async def always_code(text: str) -> str:
        calls.append(text)
        return "code"

    async with offline_stack(seed=1, skill_classifier=always_code) as stack:
        await stack.complete("Bonjour, comment allez-vous ?")
        assert calls == ["Bonjour, comment allez-vous ?"]
        assert stack.ledger.attempts()[-1].skill == "code"
        with pytest.raises(ConfigurationError, match="offline_guess"):
            stack.route("Bonjour")
        assert stack.route("Bonjour", skill="general").skill == "general"


def test_a_sync_classifier_may_return_a_guess() -> None:
    custom = SkillClassifier(extra_code_keywords=["frobnicator"])
    with offline_stack_sync(seed=1, skill_classifier=custom) as stack:
        assert stack.route("Please tune the frobnicator settings").skill == "code"
    with offline_stack_sync(seed=1, skill_classifier=custom.guess) as stack:
        assert stack.route("Please tune the frobnicator settings").skill == "code"


def test_a_bad_classifier_gets_a_clear_error() -> None:
    with pytest.raises(ConfigurationError, match="must be a callable"):
        Stack(skill_classifier="code")  # type: ignore[arg-type]
    with (
        offline_stack_sync(seed=1, skill_classifier=lambda text: 42) as stack,
        pytest.raises(ConfigurationError, match="skill name"),
    ):
        stack.route("hello")


def test_guess_is_typed_and_keeps_the_old_tuple() -> None:
    guess = guess_skill("Habari yako? Umeamkaje leo?")
    assert isinstance(guess, SkillGuess)
    assert (guess.skill, guess.language, guess.source) == ("multilingual", "sw", "rules")
    assert 0.0 <= guess.confidence <= 1.0
    skill, confidence, reasons = guess.as_classification()
    assert (skill, confidence, reasons) == (guess.skill, guess.confidence, guess.reasons)
