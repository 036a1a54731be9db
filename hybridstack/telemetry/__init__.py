"""Telemetry settings and the switch that turns it on: ``Stack(telemetry=...)`` or
``hybridstack.instrument()``.

This module is light on purpose (no OpenTelemetry import): a Stack asks it, once per
call, whether telemetry is on, and only then loads :mod:`hybridstack.telemetry.otel`,
which emits OpenTelemetry GenAI spans and metrics. Off is the default and costs one
attribute read per call.

Like pydantic-ai's ``Agent(instrument=...)`` / ``Agent.instrument_all()`` and the
OpenTelemetry contrib instrumentors, telemetry is opt-in, and it uses the global
tracer and meter providers unless given others, so the exporter stays the user's
choice::

    import hybridstack

    hybridstack.instrument()                       # every Stack, global providers
    stack = hybridstack.Stack(telemetry=False)     # ...but not this one
    stack = hybridstack.Stack(telemetry=hybridstack.Telemetry(tracer_provider=tp))
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Literal

from hybridstack.errors import ConfigurationError

if TYPE_CHECKING:
    from hybridstack.telemetry.otel import Instrumentation

__all__ = ["CAPTURE_CONTENT_ENV", "Telemetry", "instrument", "uninstrument"]

#: The standard OpenTelemetry variable that opts in to recording message content.
CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_CAPTURE_ON = frozenset({"true", "1", "yes", "on", "span_only", "span_and_event"})


class Telemetry:
    """How a Stack reports to OpenTelemetry.

    Args:
        tracer_provider: where spans go (default: the global one, looked up per call,
            so a provider configured after the Stack was built is used).
        meter_provider: where the ``gen_ai.client.*`` histograms go (default: global).
        capture_content: record messages (``gen_ai.input.messages``,
            ``gen_ai.output.messages``, ``gen_ai.system_instructions``) on the call span,
            after personal-data redaction and key scrubbing. ``None`` (default) reads
            ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` at each call; off
            unless it is ``true``.
        max_content_chars: longest text part recorded when capturing (longer ones are
            cut and end in ``…``).
    """

    __slots__ = (
        "_instrumentation",
        "capture_content",
        "max_content_chars",
        "meter_provider",
        "tracer_provider",
    )

    def __init__(
        self,
        *,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        capture_content: bool | None = None,
        max_content_chars: int = 8192,
    ) -> None:
        if capture_content is not None and not isinstance(capture_content, bool):
            raise ConfigurationError(
                "Telemetry(capture_content=...) must be True, False or None (None reads "
                f"{CAPTURE_CONTENT_ENV}), got {capture_content!r}"
            )
        if isinstance(max_content_chars, bool) or not isinstance(max_content_chars, int):
            raise ConfigurationError(
                f"Telemetry(max_content_chars=...) must be a whole number, got "
                f"{max_content_chars!r}"
            )
        if max_content_chars < 1:
            raise ConfigurationError(
                f"Telemetry(max_content_chars=...) must be at least 1, got {max_content_chars}"
            )
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.capture_content = capture_content
        self.max_content_chars = max_content_chars
        self._instrumentation: Instrumentation | None = None

    def captures_content(self) -> bool:
        """Whether message content is recorded now (the flag, else the variable)."""
        if self.capture_content is not None:
            return self.capture_content
        return os.environ.get(CAPTURE_CONTENT_ENV, "").strip().lower() in _CAPTURE_ON

    def instrumentation(self) -> Instrumentation:
        """The tracer and instruments for these settings (imports OpenTelemetry once)."""
        built = self._instrumentation
        if built is None:
            from hybridstack.telemetry.otel import Instrumentation

            built = self._instrumentation = Instrumentation(self)
        return built

    def __repr__(self) -> str:
        def name(provider: Any) -> str:
            return "global" if provider is None else type(provider).__name__

        return (
            f"Telemetry(tracer_provider={name(self.tracer_provider)}, "
            f"meter_provider={name(self.meter_provider)}, "
            f"capture_content={self.capture_content!r})"
        )


#: The process-wide default that ``instrument()`` sets (None: off).
_default: Telemetry | None = None


def instrument(
    *,
    tracer_provider: Any = None,
    meter_provider: Any = None,
    capture_content: bool | None = None,
    max_content_chars: int = 8192,
) -> Telemetry:
    """Turn telemetry on for every Stack that was not built with ``telemetry=False``
    or its own :class:`Telemetry` (those built before this call too). Returns the
    settings in force; calling it again replaces them."""
    global _default
    _default = Telemetry(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        capture_content=capture_content,
        max_content_chars=max_content_chars,
    )
    return _default


def uninstrument() -> None:
    """Undo :func:`instrument`: Stacks without their own settings stop reporting."""
    global _default
    _default = None


def coerce(value: Telemetry | bool | None) -> Telemetry | Literal[False] | None:
    """Check ``Stack(telemetry=...)``: None (the ``instrument()`` default), a bool or a
    :class:`Telemetry`; True becomes ``Telemetry()``."""
    if value is None or isinstance(value, Telemetry):
        return value
    if value is False:
        return False
    if value is True:
        return Telemetry()
    raise ConfigurationError(
        "telemetry must be True (global OpenTelemetry providers), False (off), None "
        "(follow hybridstack.instrument()) or a hybridstack.Telemetry(...), got "
        f"{type(value).__name__}"
    )
