"""The Agent's old ``a``-prefixed coroutine names, kept one release, each warning when used.

``Agent.run`` is now the coroutine (``run_sync`` its blocking twin), as ``Stack.complete``
is; ``arun``, ``astream``, ``aresume``, ``astream_resume``, ``aapprove``, ``areject``,
``aresult`` and ``athreads`` still work and raise a :class:`DeprecationWarning`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["DEPRECATED_NAMES", "deprecated_alias"]

#: Old name -> new name.
DEPRECATED_NAMES: dict[str, str] = {
    "arun": "run",
    "astream": "stream",
    "aresume": "resume",
    "astream_resume": "stream_resume",
    "aapprove": "approve",
    "areject": "reject",
    "aresult": "result",
    "athreads": "threads",
}


def deprecated_alias(old: str) -> Callable[..., Any]:
    """A method named ``old`` that warns, then returns what the new method returns (the
    coroutine or async iterator, so ``await agent.arun(...)`` keeps working)."""
    new = DEPRECATED_NAMES[old]

    def alias(self: object, *args: Any, **kwargs: Any) -> Any:
        warnings.warn(
            f"Agent.{old}() is deprecated and will be removed in the next release: use "
            f"`await agent.{new}(...)` (or agent.{new}_sync(...) from blocking code)",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(self, new)(*args, **kwargs)

    alias.__name__ = alias.__qualname__ = old
    alias.__doc__ = f"Deprecated alias of :meth:`{new}` (warns); removed in the next release."
    return alias
