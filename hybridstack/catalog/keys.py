"""Where a deployment's API key comes from: the one place that answers it.

A deployment's key is, in this order:

1. a key given in code for the deployment's id (``Stack(api_keys={"qwen-plus@dashscope-sg":
   ...})``);
2. the deployment's own ``api_key`` (set in code, never in a catalog file);
3. no key at all when the deployment names no key variable (a local server):
   :data:`KEYLESS` is sent, because the SDKs insist on one;
4. a key given in code for the deployment's variable (``api_keys={"DEEPSEEK_API_KEY": ...}``);
5. the variable in the environment, read when asked (so a key exported later counts).

Keys given in code are held in a :class:`~hybridstack._secrets.SecretMapping`: its repr
shows the names only, it refuses to be pickled, and every value is registered for
scrubbing as soon as it is given.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from hybridstack._secrets import SecretMapping
from hybridstack.errors import MissingAPIKeyError

if TYPE_CHECKING:
    from hybridstack.catalog.models import Deployment

__all__ = ["ENVIRONMENT_KEYS", "KEYLESS", "KeyResolver", "key_variable", "needs_key"]

#: Sent as the key to endpoints that need none (local servers): the SDKs insist on one.
KEYLESS = "not-needed"


def needs_key(deployment: Deployment) -> bool:
    """Whether the deployment's key must come from outside it (a variable or ``api_keys``)."""
    return deployment.api_key is None and deployment.api_key_env is not None


def key_variable(deployment: Deployment) -> str | None:
    """The variable whose value is the deployment's key, or None (key in code, or none
    needed): the one a plan names when the key is missing."""
    return deployment.api_key_env if deployment.api_key is None else None


class KeyResolver:
    """Resolves deployments' keys (see the module docstring for the order).

    Args:
        api_keys: keys given in code, by deployment id or by variable name.
        environ: where variables are read (default: ``os.environ`` at each look-up).
    """

    __slots__ = ("_environ", "_keys")

    def __init__(
        self,
        api_keys: Mapping[str, str] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._keys = api_keys if isinstance(api_keys, SecretMapping) else SecretMapping(api_keys)
        self._environ = environ

    def __repr__(self) -> str:
        return f"KeyResolver(names={sorted(self._keys)!r})"

    @property
    def names(self) -> tuple[str, ...]:
        """The deployment ids and variable names keys were given for in code."""
        return tuple(sorted(self._keys))

    def lookup(self, deployment: Deployment) -> str | None:
        """The deployment's key, :data:`KEYLESS` when it needs none, or None when missing."""
        given = self._keys.get(deployment.id)
        if given:
            return given
        if deployment.api_key is not None:
            secret = deployment.api_key.get_secret_value()
            if secret:
                return secret
        variable = deployment.api_key_env
        if variable is None:
            return KEYLESS
        environ = os.environ if self._environ is None else self._environ
        return self._keys.get(variable) or environ.get(variable) or None

    def available(self, deployment: Deployment) -> bool:
        """Whether :meth:`resolve` would find a key (or none is needed)."""
        return self.lookup(deployment) is not None

    def resolve(self, deployment: Deployment, api_key: str | None = None) -> str:
        """The key to send: ``api_key`` when given, else :meth:`lookup`'s.

        Raises :class:`~hybridstack.errors.MissingAPIKeyError` naming the variable to set.
        """
        key = api_key or self.lookup(deployment)
        if key is None:
            raise MissingAPIKeyError(deployment.id, deployment.api_key_env or "")
        return key


#: Keys from the deployment and the environment only (no keys given in code).
ENVIRONMENT_KEYS = KeyResolver()
