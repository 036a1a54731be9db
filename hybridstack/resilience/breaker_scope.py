"""Which provider errors reach past one deployment to its quota scope.

A *throttle* (:func:`is_throttle`: HTTP 429 or a rate-limit code) slows the whole key
or account down; a *scope-wide* fail-over error (:func:`is_scope_wide`: 401, 402, quota,
balance, arrears) is about the shared key or account, so every deployment using it is
affected. :class:`~hybridstack.resilience.breaker_registry.BreakerRegistry` and the
scheduler read these to decide which breaker an error moves.
"""

from __future__ import annotations

from hybridstack.errors import ProviderError

__all__ = ["is_scope_wide", "is_throttle"]

_THROTTLE_CODES = ("rate_limit", "ratelimit", "throttl", "burstrate", "ratequota", "too_many")
_SCOPE_WIDE_CODES = (
    "quota",
    "arrear",
    "billoverdue",
    "balance",
    "invalid_api_key",
    "invalidapikey",
    "authentication",
    "unauthorized",
    "payment",
    "spend_limit",
    "spendlimit",
    "commoditynotpurchased",
    "freetieronly",
)


def is_throttle(error: ProviderError) -> bool:
    """A retry-here error that means *the key or account is sending too fast* (a 429)."""
    if error.status == 429:
        return True
    code = (error.code or "").lower()
    return bool(code) and any(part in code for part in _THROTTLE_CODES)


def is_scope_wide(error: ProviderError) -> bool:
    """A fail-over error about the shared key or account rather than one deployment."""
    if error.status in (401, 402, 429):
        return True
    code = (error.code or "").lower().replace(".", "")
    return bool(code) and any(part in code for part in _SCOPE_WIDE_CODES)
