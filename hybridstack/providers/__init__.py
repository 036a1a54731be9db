"""The provider layer's front door: build the right adapter for a deployment.

``create_provider`` picks the adapter by ``deployment.protocol`` and imports its module
only then, so ``import hybridstack.providers`` never imports openai, anthropic or
dashscope (each costs a noticeable start-up time and most stacks use one or two).
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING

from hybridstack._secrets import install_log_filter
from hybridstack.errors import MissingAPIKeyError
from hybridstack.providers.base import DEFAULT_MAX_TOKENS, Provider

if TYPE_CHECKING:
    from hybridstack.catalog.models import Deployment

__all__ = ["DEFAULT_MAX_TOKENS", "Provider", "create_provider", "resolve_api_key"]

#: protocol -> (module, class). Modules are imported on first use.
_ADAPTERS: dict[str, tuple[str, str]] = {
    "openai": ("hybridstack.providers.openai", "OpenAIProvider"),
    "anthropic": ("hybridstack.providers.anthropic", "AnthropicProvider"),
    "dashscope": ("hybridstack.providers.dashscope", "DashScopeProvider"),
}

#: Sent as the key to endpoints that need none (local servers): the SDKs insist on one.
PLACEHOLDER_API_KEY = "not-needed"


def resolve_api_key(deployment: Deployment, api_key: str | None = None) -> str:
    """The key for ``deployment``: the argument, else the deployment's own, else its env var.

    Raises :class:`~hybridstack.errors.MissingAPIKeyError` when the deployment names a
    variable that is unset (or empty).
    """
    if api_key:
        return api_key
    if deployment.api_key is not None:
        secret = deployment.api_key.get_secret_value()
        if secret:
            return secret
    variable = deployment.api_key_env
    if variable is None:
        return PLACEHOLDER_API_KEY
    value = os.environ.get(variable)
    if not value:
        raise MissingAPIKeyError(deployment.id, variable)
    return value


def create_provider(
    deployment: Deployment,
    *,
    api_key: str | None = None,
    timeout_s: float | None = None,
) -> Provider:
    """A :class:`Provider` for ``deployment`` over its wire protocol's official SDK.

    ``timeout_s`` overrides ``deployment.timeout_s`` (per attempt). The SDK client is
    built lazily on first use, once per event loop.
    """
    try:
        module_name, class_name = _ADAPTERS[deployment.protocol]
    except KeyError:
        from hybridstack.errors import ConfigurationError

        raise ConfigurationError(
            f"deployment {deployment.id!r} has unknown protocol {deployment.protocol!r}; "
            f"known: {', '.join(sorted(_ADAPTERS))}"
        ) from None
    key = resolve_api_key(deployment, api_key)
    adapter_cls = getattr(importlib.import_module(module_name), class_name)
    # From the first provider on, hybridstack and SDK log records are scrubbed as made.
    install_log_filter()
    provider: Provider = adapter_cls(deployment, api_key=key, timeout_s=timeout_s)
    return provider
