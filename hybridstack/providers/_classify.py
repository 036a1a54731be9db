"""Translate a provider failure's fields into exactly one taxonomy class.

Pure functions over plain values (HTTP status, provider code, error type, message,
response headers), so the mapping is unit-testable without an SDK and shared by all
three adapters. Each adapter only *extracts* those fields from its SDK's exception or
returned error and calls :func:`classify` and :func:`make_error`.

Check order (docs/sources.md#error-taxonomy): content refused, context too long, fatal, fail over,
retry. Codes are checked before HTTP statuses because providers reuse statuses
(DashScope's ``Arrearage`` is a 400 but means "pay or go elsewhere", OpenAI's
``insufficient_quota`` is a 429 but waiting never helps).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hybridstack._secrets import scrub_exception, scrub_secrets
from hybridstack.errors import (
    ERROR_KINDS,
    ContextTooLongError,
    ErrorKind,
    ProviderError,
    parse_retry_after,
)

__all__ = [
    "classify",
    "classify_status",
    "make_error",
    "normalise_code",
    "parse_context_limit",
    "scrub_exception",
]


def normalise_code(code: str | None) -> str:
    """``DataInspectionFailed`` and ``data_inspection_failed`` compare equal."""
    if not code:
        return ""
    return code.lower().replace("_", "").replace("-", "")


def _n(*codes: str) -> frozenset[str]:
    return frozenset(normalise_code(c) for c in codes)


# --- codes (provider ``code``, Anthropic ``error_code``, DashScope ``code``) -------------

#: The provider's moderation refused the input or output: another jurisdiction may not.
REFUSED_CODES = _n(
    "data_inspection_failed",  # DashScope native + compatible mode
    "IPInfringementSuspect",  # DashScope
    "content_filter",  # Azure OpenAI / compatible hosts
    "content_policy_violation",  # OpenAI
    "refusal",
)

#: The prompt does not fit the window: only a larger window helps.
CONTEXT_CODES = _n(
    "context_length_exceeded",  # OpenAI and most compatible hosts
    "exceed_context_size_error",  # llama.cpp (sent as the error *type*)
    "model_context_window_exceeded",  # Anthropic stop reason, also seen as a code
)

#: Message fragments that mean "too long" on hosts without a code (vLLM, Anthropic,
#: DashScope's InvalidParameter "Range of input length should be [1, N]").
_CONTEXT_RE = re.compile(
    r"maximum context length|context[ _]length[ _]exceeded|prompt is too long"
    r"|range of input length|exceed_context_size|exceeds? (?:the )?(?:model'?s? )?context window"
    r"|input (?:is )?too long|too many input tokens",
    re.IGNORECASE,
)

#: The request is wrong for every deployment: stop. Exact codes, then prefixes.
FATAL_CODES = _n(
    "InvalidParameter",  # DashScope (after the input-length check above)
    "invalid_parameter_error",  # DashScope compatible mode
    "InputRequired",
    "ModelRequired",
    "CustomRoleBlocked",  # the customer's own content rules: moving region would bypass them
    "FaqRuleBlocked",
    "invalid_request_error",
)
FATAL_PREFIXES = ("badrequest.", "invalidurl", "invalidfile")

#: This deployment (or its key, quota scope, region) cannot serve now: go elsewhere.
FAILOVER_CODES = _n(
    "insufficient_quota",  # OpenAI 429: billing quota gone (DashScope compat: see below)
    "Arrearage",  # DashScope 400: overdue payment
    "InvalidApiKey",
    "invalid_api_key",
    "Model.AccessDenied",
    "ModelNotFound",
    "model_not_found",
    "model_not_supported",
    "CommodityNotPurchased",
    "PrepaidBillOverdue",
    "PostpaidBillOverdue",
    "unsupported_region",  # Anthropic 400
    "region_not_supported",
    "unsupported_country_region_territory",  # OpenAI 403 blocked country
    "enforced_spend_limit_reached",  # Anthropic 429 subclasses that are not transient
    "contract_spend_limit_reached",
    "ramp_limit_exceeded",
    "linked_organization_spend_limit_reached",
    "linked_organization_billing_unavailable",
    "organization_on_hold",
    "insufficient_balance",  # DeepSeek 402 wording
    "authentication_error",
    "permission_error",
    "billing_error",
    "not_found_error",
    "model_retired",
    "model_deprecated",
)
#: ``allocationquota`` is DashScope's 403 ``AllocationQuota.FreeTierOnly``: the free
#: quota is used up and the account is set to free tier only: no paid quota to wait for.
FAILOVER_PREFIXES = ("accessdenied", "allocationquota")

# DashScope's ``Throttling.AllocationQuota`` (a 429; some gateways relay it as 529) has two
# meanings on its error-code page (help.aliyun.com/zh/model-studio/error-code, as copied in
# docs/sources.md#dashscope-error-codes — "TPM cap or free quota gone" — and in public
# copies of the table, which list both messages): "Allocated quota exceeded, please increase
# your quota limit." is the per-minute (TPM/RPM) allocation of the key, a rate limit that
# refills within the minute: retry here, with the quota scope held briefly (a throttle, see
# the breakers), not removed for minutes. "Free allocated quota exceeded." is the free quota
# gone: waiting never helps, fail over. DashScope's compatible mode reports the same cap as
# ``insufficient_quota`` (docs/sources.md#dashscope-error-codes), which on OpenAI means the
# billing quota is gone, so that code stays fail-over unless the text is DashScope's
# "allocated quota".
_ALLOCATION_THROTTLE_CODES = _n("Throttling.AllocationQuota", "insufficient_quota")
_FREE_QUOTA_RE = re.compile(r"\bfree\b", re.IGNORECASE)
_ALLOCATED_QUOTA_RE = re.compile(r"allocated quota exceeded", re.IGNORECASE)

#: Transient: back off and retry this deployment.
RETRY_CODES = _n(
    "Throttling",
    "Throttling.RateQuota",
    "Throttling.BurstRate",
    "limit_requests",
    "rate_limit_exceeded",
    "rate_limit_error",
    "dynamic_request_limited",  # Together
    "dynamic_token_limited",
    "SystemError",
    "ModelServiceFailed",
    "RequestTimeOut",
    "ModelServingError",
    "ModelUnavailable",
    "server_error",
    "api_error",
    "overloaded_error",
    "service_unavailable",
    "timeout",
    "timeout_error",
    "stream_cut",
    "malformed_response",
    "connection_error",
)
RETRY_PREFIXES = ("internalerror", "throttling")

# --- error *types* (Anthropic ``error.type``, OpenAI body ``type``) ------------------------
# Only consulted when there is no error status, i.e. for errors that arrive inside a
# 200 stream (Anthropic ``event: error``, OpenAI ``{"error": ...}`` frames). With a real
# status the status is more reliable: OpenAI sends ``invalid_request_error`` on a 404.

_RETRY_TYPES = _n(
    "overloaded_error", "api_error", "rate_limit_error", "server_error", "timeout_error"
)
_FAILOVER_TYPES = _n(
    "authentication_error",
    "permission_error",
    "billing_error",
    "not_found_error",
    "insufficient_quota",
)
_FATAL_TYPES = _n("invalid_request_error", "request_too_large", "invalid_parameter_error")

_FATAL_STATUSES = frozenset({400, 405, 411, 412, 413, 414, 415, 422, 431})
_FAILOVER_STATUSES = frozenset({401, 402, 403, 404, 410})
_RETRY_STATUSES = frozenset({408, 409, 425, 429, 499})


def _in(code: str, exact: frozenset[str], prefixes: tuple[str, ...] = ()) -> bool:
    return code in exact or (bool(prefixes) and code.startswith(prefixes))


def classify_status(status: int) -> ErrorKind:
    """The class an HTTP error status implies when no code says otherwise."""
    if status >= 500:
        return "retry_here"  # 500, 502, 503, 504 and Anthropic's 529 overloaded
    if status in _RETRY_STATUSES:
        return "retry_here"
    if status in _FAILOVER_STATUSES:
        return "fail_over"
    if status in _FATAL_STATUSES or 400 <= status < 500:
        return "fatal"
    return "retry_here"


def classify(
    *,
    status: int | None = None,
    code: str | None = None,
    type_: str | None = None,
    message: str | None = None,
) -> ErrorKind:
    """The one taxonomy kind for a provider failure.

    ``status`` is the HTTP status (``None`` or 200 for errors inside a stream or with no
    response), ``code`` the provider's error code, ``type_`` its error type, ``message``
    its human text (only used for the context-length wording some hosts lack a code for,
    and for Groq's "request too large" 429).
    """
    c = normalise_code(code)
    t = normalise_code(type_)
    error_status = status if status is not None and status >= 400 else None

    # 1. content refused
    if c in REFUSED_CODES or t in REFUSED_CODES:
        return "content_refused"
    # 2. context too long
    if c in CONTEXT_CODES or t in CONTEXT_CODES:
        return "context_too_long"
    if (
        message
        and (error_status is None or (error_status < 500 and error_status != 429))
        and _CONTEXT_RE.search(message)
    ):
        return "context_too_long"
    # 3. fatal (by code; statuses come after the code tables)
    # OpenAI puts invalid_request_error in ``type``, but a few compatible hosts put it in
    # ``code`` on 401/404 too: let the status decide those.
    if (
        c
        and _in(c, FATAL_CODES, FATAL_PREFIXES)
        and not (c == "invalidrequesterror" and error_status in _FAILOVER_STATUSES)
    ):
        return "fatal"
    # 4. fail over (DashScope's allocated-quota throttle first: it is usually a rate limit)
    if c in _ALLOCATION_THROTTLE_CODES:
        text = message or ""
        if _FREE_QUOTA_RE.search(text):
            return "fail_over"
        if c == "throttling.allocationquota" or _ALLOCATED_QUOTA_RE.search(text):
            return "retry_here"
    if c and _in(c, FAILOVER_CODES, FAILOVER_PREFIXES):
        return "fail_over"
    if error_status == 429 and message and "request too large" in message.lower():
        # Groq: a request bigger than the per-minute token limit never fits: waiting won't help.
        return "fail_over"
    # 5. retry
    if c and _in(c, RETRY_CODES, RETRY_PREFIXES):
        return "retry_here"
    # No code decided it: the status does, else the type (errors inside a 200 stream).
    if error_status is not None:
        return classify_status(error_status)
    if t:
        if t in _FATAL_TYPES:
            return "fatal"
        if t in _FAILOVER_TYPES:
            return "fail_over"
        if t in _RETRY_TYPES:
            return "retry_here"
    # An unknown failure after the provider accepted the request (mid-stream, no status)
    # is most likely transient on its side.
    return "retry_here"


_LIMIT_RES = (
    re.compile(r"maximum context length is (\d+)", re.IGNORECASE),  # OpenAI, vLLM
    re.compile(r"range of input length should be \[\d+,\s*(\d+)\]", re.IGNORECASE),  # DashScope
    re.compile(r">\s*(\d+)\s*maximum", re.IGNORECASE),  # Anthropic "N tokens > M maximum"
    re.compile(r"n_ctx\D{0,4}(\d+)", re.IGNORECASE),  # llama.cpp
    re.compile(r"context (?:window|limit) (?:of|is) (\d+)", re.IGNORECASE),
)


def parse_context_limit(message: str | None) -> int | None:
    """The window size in tokens, when the provider's message states it."""
    if not message:
        return None
    for pattern in _LIMIT_RES:
        match = pattern.search(message)
        if match:
            return int(match.group(1))
    return None


def make_error(
    kind: ErrorKind,
    message: str,
    *,
    deployment: str,
    provider: str,
    secret: str | None,
    status: int | None = None,
    code: str | None = None,
    request_id: str | None = None,
    headers: Mapping[str, str] | None = None,
    retry_after: float | None = None,
    partial_text: str = "",
    cause: BaseException | None = None,
) -> ProviderError:
    """Build the taxonomy exception, with every key scrubbed from the provider's text.

    This is the boundary where provider text enters hybridstack: ``secret`` (the key
    this attempt sent), every other registered key and anything key-shaped is hidden.
    ``cause`` becomes ``__cause__`` after it and its whole chain are scrubbed in place
    (messages, bodies, kept request headers, notes), so a traceback of the chain does
    not print a key the provider echoed back.
    """
    text = scrub_secrets(message or "provider error", (secret,))
    if retry_after is None and headers:
        retry_after = parse_retry_after(headers)
    cls = ERROR_KINDS[kind]
    fields: dict[str, Any] = {
        "deployment": deployment,
        "status": status,
        "code": code,
        "request_id": request_id,
        "retry_after": retry_after,
        "provider": provider,
        "partial_text": partial_text,
    }
    error: ProviderError
    if cls is ContextTooLongError:
        error = ContextTooLongError(text, limit_tokens=parse_context_limit(text), **fields)
    else:
        error = cls(text, **fields)
    if cause is not None:
        scrub_exception(cause, (secret,))
        error.__cause__ = cause
    return error
