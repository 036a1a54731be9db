"""The root of the tree and the errors raised before anything is sent.

:class:`HybridStackError` (the base of every hybridstack error), a wrong set-up
(:class:`ConfigurationError` and its branches: catalog, model reference, data class, key,
no provider, sovereignty, emulator config), an object holding a key that was to be
pickled, and a request hybridstack refuses to send (:class:`InvalidRequestError`).
Import them from :mod:`hybridstack.errors`, whose docstring draws the whole tree.
"""

from __future__ import annotations

from collections.abc import Sequence


class HybridStackError(Exception):
    """Base class of every error hybridstack raises on purpose."""


class ConfigurationError(HybridStackError, ValueError):
    """The set-up is wrong: a catalog, a config file, a route. Says what to fix."""


class CatalogError(ConfigurationError):
    """A catalog file or entry is invalid. Nothing of the file was loaded."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        entry: str | None = None,
        field: str | None = None,
    ) -> None:
        self.source = source
        self.entry = entry
        self.field = field
        where = ", ".join(
            part
            for part in (
                f"file {source}" if source else "",
                f"entry {entry!r}" if entry else "",
                f"field {field!r}" if field else "",
            )
            if part
        )
        super().__init__(f"{where}: {message}" if where else message)


class UnknownModelError(ConfigurationError, LookupError):
    """A model reference (``family``, ``family@site``, ``provider:model``) matched nothing."""

    def __init__(self, reference: str, suggestions: Sequence[str] = (), hint: str = "") -> None:
        self.reference = reference
        self.suggestions = tuple(suggestions)
        message = f"unknown model {reference!r}"
        if self.suggestions:
            message += "; did you mean " + " or ".join(repr(s) for s in self.suggestions) + "?"
        if hint:
            message += f" {hint}"
        super().__init__(message)


class MissingAPIKeyError(ConfigurationError):
    """A deployment needs a key from an environment variable that is not set."""

    def __init__(self, deployment: str, variable: str) -> None:
        self.deployment = deployment
        self.variable = variable
        super().__init__(
            f"deployment {deployment!r} needs an API key: set the environment variable "
            f"{variable} (or pass api_key=...), or use the offline emulator"
        )


class NoProviderError(ConfigurationError):
    """Nothing could answer: no key is set for the hosted deployments a request may use,
    and none of the local servers (which need no key) answered.

    ``variables`` are the key variables that would make hosted deployments usable;
    ``tried`` the local deployments that did not answer.
    """

    def __init__(self, message: str, *, variables: Sequence[str], tried: Sequence[str]) -> None:
        self.variables = tuple(variables)
        self.tried = tuple(tried)
        super().__init__(message)


class SovereigntyError(ConfigurationError):
    """A route could send a data class to a jurisdiction it is not allowed in."""

    def __init__(self, message: str, *, route: str = "", deployment: str = "") -> None:
        self.route = route
        self.deployment = deployment
        super().__init__(message)


class UnknownDataClassError(ConfigurationError, LookupError):
    """A data class name the rules do not know (routing fails closed)."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.data_class = name
        self.known = tuple(known)
        super().__init__(
            f"unknown data class {name!r}; known classes: {', '.join(self.known)}. "
            "Unknown classes are refused rather than treated as public: add it with "
            f"data_classes={{{name!r}: ['EU', 'LOCAL']}}"
        )


class EmulatorConfigError(ConfigurationError):
    """An emulator config file could not be read; the message names the file and field."""


class SecretPickleError(HybridStackError, TypeError):
    """An object holding an API key was asked to be pickled: refused, keys stay in memory.

    A pickle is a file or a message to another process; the key would be in it in clear.
    """

    def __init__(self, what: str, hint: str) -> None:
        self.what = what
        super().__init__(
            f"{what} holds an API key and is not pickled (a pickle would carry the key in "
            f"clear). {hint}"
        )


class InvalidRequestError(HybridStackError, ValueError):
    """A request that hybridstack will not send, with what to change."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        #: The request field at fault (``max_tokens``, ``messages[0].role`` …), when known.
        self.field = field
        super().__init__(message)


class BatchFileError(InvalidRequestError):
    """A batch task file (or list of tasks) is invalid; nothing of it ran.

    ``problems`` holds ``(line number, what to fix)`` for every bad line.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        problems: Sequence[tuple[int, str]] = (),
    ) -> None:
        self.path = path
        self.problems = list(problems)
        super().__init__(message)
