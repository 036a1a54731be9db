"""Unit tests of the error taxonomy mapping, with SDK exceptions built by hand.

The pure mapping (:func:`hybridstack.providers._classify.classify`) is checked against
docs/sources.md#error-taxonomy row by row; each adapter's extraction is checked with
exception objects (or, for DashScope, returned error responses) shaped exactly as the SDKs
build them.
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import json
import pickle
import time
from typing import Any

import aiohttp
import anthropic
import httpx2
import openai
import pytest
from dashscope.api_entities.dashscope_response import GenerationResponse
from dashscope.common.error import InputRequired
from pydantic import SecretStr

from hybridstack.catalog.models import Deployment, Price
from hybridstack.errors import (
    ContentRefusedError,
    ContextTooLongError,
    FailoverError,
    FatalError,
    ProviderError,
    RetryableError,
)
from hybridstack.providers import create_provider
from hybridstack.providers._classify import classify, make_error, parse_context_limit
from hybridstack.providers.anthropic import AnthropicProvider
from hybridstack.providers.dashscope import DashScopeProvider, SendFailedError
from hybridstack.providers.openai import OpenAIProvider

KEY = "sk-unit-test-key-9876543210"


def _deployment(protocol: str) -> Deployment:
    return Deployment(
        family="fam",
        site="unit",
        protocol=protocol,  # type: ignore[arg-type]
        model="m",
        base_url="http://127.0.0.1:9/v1",
        region="r",
        jurisdiction="LOCAL",
        operator="o",
        api_key=SecretStr(KEY),
        price=Price(input_per_mtok=0, output_per_mtok=0, as_of=datetime.date(2026, 1, 1)),
    )


@pytest.fixture
def oai() -> OpenAIProvider:
    provider = create_provider(_deployment("openai"))
    assert isinstance(provider, OpenAIProvider)
    return provider


@pytest.fixture
def ant() -> AnthropicProvider:
    provider = create_provider(_deployment("anthropic"))
    assert isinstance(provider, AnthropicProvider)
    return provider


@pytest.fixture
def dsc() -> DashScopeProvider:
    provider = create_provider(_deployment("dashscope"))
    assert isinstance(provider, DashScopeProvider)
    return provider


# --- the pure mapping ------------------------------------------------------------------

R, F, C, X, Z = "retry_here", "fail_over", "content_refused", "context_too_long", "fatal"

MAPPING: list[tuple[int | None, str | None, str | None, str | None, str]] = [
    # status, code, type, message -> kind
    # OpenAI and compatible hosts
    (429, "rate_limit_exceeded", "requests", "Rate limit reached", R),
    (429, "insufficient_quota", "insufficient_quota", "You exceeded your current quota", F),
    (429, None, None, "Rate limit", R),
    (401, "invalid_api_key", "invalid_request_error", "Incorrect API key", F),
    (403, "unsupported_country_region_territory", "request_forbidden", "Country not supported", F),
    (403, None, None, "Forbidden", F),
    (404, "model_not_found", "invalid_request_error", "The model does not exist", F),
    (402, None, None, "Insufficient Balance", F),  # DeepSeek
    (400, "context_length_exceeded", "invalid_request_error", "maximum context length is 8", X),
    (400, None, "invalid_request_error", "This model's maximum context length is 4096 tokens", X),
    (400, None, "exceed_context_size_error", "the request exceeds the available context size", X),
    (400, "data_inspection_failed", "data_inspection_failed", "inappropriate content", C),
    (400, "content_filter", None, "filtered", C),
    (400, "invalid_value", "invalid_request_error", "Invalid value for 'temperature'", Z),
    (400, None, None, "bad", Z),
    (422, None, None, "Unprocessable", Z),
    (413, None, None, "Payload too large", Z),
    (408, None, None, "Request timeout", R),
    (409, None, None, "Conflict", R),
    (500, None, "server_error", "boom", R),
    (502, None, None, "bad gateway", R),
    (503, "service_unavailable", "server_error", "overloaded", R),
    (529, "overloaded", None, "overloaded", R),
    (429, "rate_limit_exceeded", "tokens", "Request too large for model on tokens per min", F),
    (429, "dynamic_request_limited", None, "slow down", R),  # Together
    (None, "server_error", "server_error", "error mid-stream", R),  # stream APIError, no status
    (None, "data_inspection_failed", None, "mid-stream moderation", C),
    # Anthropic (code = error_code, type = error.type)
    (429, None, "rate_limit_error", "rate limited", R),
    (429, "enforced_spend_limit_reached", "rate_limit_error", "spend limit", F),
    (429, "ramp_limit_exceeded", "rate_limit_error", "ramp", F),
    (400, "unsupported_region", "invalid_request_error", "region", F),
    (400, None, "invalid_request_error", "prompt is too long: 250000 tokens > 200000 maximum", X),
    (400, None, "invalid_request_error", "messages: roles must alternate", Z),
    (401, None, "authentication_error", "invalid x-api-key", F),
    (402, None, "billing_error", "credit balance too low", F),
    (403, None, "permission_error", "no access", F),
    (404, None, "not_found_error", "model: claude-x", F),
    (413, None, "request_too_large", "too large", Z),
    (500, None, "api_error", "internal", R),
    (529, None, "overloaded_error", "Overloaded", R),
    (None, None, "overloaded_error", "Overloaded", R),  # event: error inside a 200 stream
    (None, None, "api_error", "internal", R),
    (None, None, "invalid_request_error", "bad", Z),
    (None, None, "authentication_error", "bad key", F),
    (None, None, None, "unknown failure mid-stream", R),
    # DashScope native
    (429, "Throttling", None, "throttled", R),
    (429, "Throttling.RateQuota", None, "rate", R),
    (429, "Throttling.BurstRate", None, "burst", R),
    # Throttling.AllocationQuota: the key's per-minute allocation (a rate limit), unless
    # the text says the free quota is gone (DashScope's error-code page lists both).
    (429, "Throttling.AllocationQuota", None, "TPM exhausted", R),
    (429, "Throttling.AllocationQuota", None, "Allocated quota exceeded, please increase", R),
    (529, "Throttling.AllocationQuota", None, "Allocated quota exceeded", R),
    (429, "Throttling.AllocationQuota", None, "Free allocated quota exceeded.", F),
    (429, "insufficient_quota", None, "Allocated quota exceeded, please increase", R),
    (429, "CommodityNotPurchased", None, "not purchased", F),
    (429, "PrepaidBillOverdue", None, "overdue", F),
    (400, "Arrearage", None, "Access denied, account in arrears", F),
    (401, "InvalidApiKey", None, "Invalid API-key provided.", F),
    (403, "AccessDenied", None, "denied", F),
    (403, "AccessDenied.Unpurchased", None, "denied", F),
    (403, "Model.AccessDenied", None, "denied", F),
    (403, "AllocationQuota.FreeTierOnly", None, "free tier only", F),
    (404, "ModelNotFound", None, "Model not exist.", F),
    (404, "model_not_supported", None, "unsupported model", F),
    (400, "DataInspectionFailed", None, "inappropriate content", C),
    (400, "IPInfringementSuspect", None, "IP infringement", C),
    (400, "CustomRoleBlocked", None, "your own rule", Z),
    (400, "InvalidParameter", None, "Range of input length should be [1, 30720]", X),
    (400, "InvalidParameter", None, "Temperature should be in [0, 2)", Z),
    (400, "invalid_parameter_error", None, "Range of input length should be [1, 98304]", X),
    (400, "BadRequest.TooLarge", None, "too large", Z),
    (400, "InputRequired", None, "input required", Z),
    (500, "InternalError", None, "internal", R),
    (500, "InternalError.Algo", None, "algo", R),
    (500, "SystemError", None, "system", R),
    (500, "ModelServiceFailed", None, "failed", R),
    (500, "RequestTimeOut", None, "timed out", R),
    (503, "ModelServingError", None, "saturated", R),
    (503, "ModelUnavailable", None, "unavailable", R),
]


@pytest.mark.parametrize(("status", "code", "type_", "message", "kind"), MAPPING)
def test_classify(
    status: int | None, code: str | None, type_: str | None, message: str | None, kind: str
) -> None:
    assert classify(status=status, code=code, type_=type_, message=message) == kind


def test_codes_compare_across_spellings() -> None:
    assert classify(status=400, code="DataInspectionFailed") == classify(
        status=400, code="data_inspection_failed"
    )
    assert classify(status=401, code="invalid_api_key") == classify(
        status=401, code="InvalidApiKey"
    )


@pytest.mark.parametrize(
    ("message", "limit"),
    [
        ("This model's maximum context length is 8192 tokens. However, you asked for 9000", 8192),
        ("Range of input length should be [1, 30720]", 30720),
        ("prompt is too long: 250000 tokens > 200000 maximum", 200000),
        ("request (5000 tokens) exceeds the available context size (n_ctx: 4096)", 4096),
        ("something else", None),
        (None, None),
    ],
)
def test_parse_context_limit(message: str | None, limit: int | None) -> None:
    assert parse_context_limit(message) == limit


# --- error construction ----------------------------------------------------------------


def _make(**kw: Any) -> ProviderError:
    base: dict[str, Any] = {"deployment": "d@s", "provider": "openai", "secret": KEY}
    return make_error(**{**base, **kw})


def test_make_error_fields_and_one_class_per_kind() -> None:
    error = _make(kind="retry_here", message="slow down", status=429, code="rate", request_id="r1")
    assert type(error) is RetryableError
    assert (error.deployment, error.status, error.code, error.request_id, error.provider) == (
        "d@s",
        429,
        "rate",
        "r1",
        "openai",
    )
    assert str(error) == "slow down (deployment=d@s, status=429, code=rate, request_id=r1)"
    kinds = {
        "retry_here": RetryableError,
        "fail_over": FailoverError,
        "content_refused": ContentRefusedError,
        "context_too_long": ContextTooLongError,
        "fatal": FatalError,
    }
    for kind, cls in kinds.items():
        assert type(_make(kind=kind, message="m")) is cls


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "7"}, 7.0),
        ({"Retry-After": "3", "retry-after-ms": "250"}, 0.25),  # ms wins
        ({}, None),
        ({"retry-after": "soon"}, None),
    ],
)
def test_retry_after_from_headers(headers: dict[str, str], expected: float | None) -> None:
    assert _make(kind="retry_here", message="m", headers=headers).retry_after == expected


def test_retry_after_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    retry_after = _make(kind="retry_here", message="m", headers={"retry-after": when}).retry_after
    assert retry_after is not None
    assert 25 <= retry_after <= 31


def test_make_error_scrubs_the_key_from_message_and_cause() -> None:
    cause = ValueError(f"Incorrect API key provided: {KEY}")
    error = _make(kind="fail_over", message=f"bad key {KEY} and {KEY[:10]}...", cause=cause)
    assert KEY not in str(error)
    assert KEY[:8] not in str(error)
    assert error.__cause__ is cause
    assert KEY not in str(cause)


def test_context_error_carries_limit() -> None:
    error = _make(kind="context_too_long", message="Range of input length should be [1, 6000]")
    assert isinstance(error, ContextTooLongError)
    assert error.limit_tokens == 6000


def test_provider_errors_pickle() -> None:
    error = _make(kind="retry_here", message="m", status=503, partial_text="abc")
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is RetryableError
    assert (clone.status, clone.partial_text, str(clone)) == (503, "abc", str(error))


# --- openai: exceptions built the way the SDK builds them -------------------------------

_OAI_URL = "http://127.0.0.1:9/v1/chat/completions"


def _oai_status(
    cls: type[openai.APIStatusError], status: int, error: dict[str, Any], **headers: str
) -> openai.APIStatusError:
    request = httpx2.Request("POST", _OAI_URL)
    response = httpx2.Response(
        status, headers={"x-request-id": "req_1", **headers}, json={"error": error}, request=request
    )
    # The SDK passes the inner "error" object as body and "Error code: N - message" as text.
    return cls(f"Error code: {status} - {error.get('message')}", response=response, body=error)


@pytest.mark.parametrize(
    ("exc", "expected", "code"),
    [
        (
            _oai_status(
                openai.RateLimitError,
                429,
                {"message": "quota", "type": "insufficient_quota", "code": "insufficient_quota"},
            ),
            FailoverError,
            "insufficient_quota",
        ),
        (
            _oai_status(
                openai.RateLimitError,
                429,
                {"message": "slow", "type": "requests", "code": "rate_limit_exceeded"},
                **{"retry-after-ms": "1200"},
            ),
            RetryableError,
            "rate_limit_exceeded",
        ),
        (
            _oai_status(
                openai.AuthenticationError, 401, {"message": "bad", "code": "invalid_api_key"}
            ),
            FailoverError,
            "invalid_api_key",
        ),
        (
            _oai_status(openai.PermissionDeniedError, 403, {"message": "Country not supported"}),
            FailoverError,
            None,
        ),
        (
            _oai_status(
                openai.NotFoundError, 404, {"message": "no model", "code": "model_not_found"}
            ),
            FailoverError,
            "model_not_found",
        ),
        (
            _oai_status(openai.APIStatusError, 402, {"message": "Insufficient Balance"}),
            FailoverError,
            None,
        ),
        (
            _oai_status(
                openai.BadRequestError,
                400,
                {
                    "message": "maximum context length is 8192 tokens",
                    "type": "invalid_request_error",
                    "code": "context_length_exceeded",
                },
            ),
            ContextTooLongError,
            "context_length_exceeded",
        ),
        (
            _oai_status(
                openai.BadRequestError,
                400,
                {
                    "message": "inappropriate",
                    "type": "data_inspection_failed",
                    "code": "data_inspection_failed",
                },
            ),
            ContentRefusedError,
            "data_inspection_failed",
        ),
        (
            _oai_status(
                openai.BadRequestError,
                400,
                {"message": "bad temperature", "type": "invalid_request_error"},
            ),
            FatalError,
            "invalid_request_error",
        ),
        (_oai_status(openai.UnprocessableEntityError, 422, {"message": "bad"}), FatalError, None),
        (_oai_status(openai.ConflictError, 409, {"message": "conflict"}), RetryableError, None),
        (_oai_status(openai.InternalServerError, 500, {"message": "boom"}), RetryableError, None),
        (_oai_status(openai.InternalServerError, 503, {"message": "busy"}), RetryableError, None),
    ],
)
def test_openai_status_errors(
    oai: OpenAIProvider, exc: openai.APIStatusError, expected: type[ProviderError], code: str | None
) -> None:
    error = oai._translate(exc)
    assert type(error) is expected
    assert error.status == exc.status_code
    assert error.request_id == "req_1"
    assert error.__cause__ is exc
    assert error.deployment == "fam@unit"
    assert error.provider == "openai"
    if code is not None:
        assert error.code == code
    if "retry-after-ms" in exc.response.headers:
        assert error.retry_after == pytest.approx(1.2)


def test_openai_mid_stream_error_frame(oai: OpenAIProvider) -> None:
    # An {"error": ...} SSE frame: a plain APIError, no status, code/type from the body.
    request = httpx2.Request("POST", _OAI_URL)
    body = {"message": "The server had an error", "type": "server_error", "code": "server_error"}
    error = oai._translate(
        openai.APIError("The server had an error", request, body=body),
        partial_text="Hello wor",
        request_id="req_s",
    )
    assert type(error) is RetryableError
    assert (error.status, error.code, error.partial_text, error.request_id) == (
        None,
        "server_error",
        "Hello wor",
        "req_s",
    )
    moderated = {"message": "inappropriate", "type": "x", "code": "data_inspection_failed"}
    refused = oai._translate(openai.APIError("m", request, body=moderated))
    assert type(refused) is ContentRefusedError


def test_openai_transport_errors(oai: OpenAIProvider) -> None:
    request = httpx2.Request("POST", _OAI_URL)
    timeout = oai._translate(openai.APITimeoutError(request=request))
    assert type(timeout) is RetryableError
    assert timeout.code == "timeout"
    conn = oai._translate(openai.APIConnectionError(request=request))
    assert type(conn) is RetryableError
    assert conn.code == "connection_error"
    raw = oai._translate(httpx2.RemoteProtocolError("peer closed connection"))
    assert type(raw) is RetryableError
    malformed = oai._translate(json.JSONDecodeError("Expecting value", "{", 1))
    assert type(malformed) is RetryableError
    assert malformed.code == "malformed_response"


def test_unknown_exceptions_are_fatal_and_keep_their_cause(oai: OpenAIProvider) -> None:
    class Strange(Exception):
        pass

    cause = Strange("what is this")
    error = oai._translate(cause)
    assert type(error) is FatalError
    assert error.__cause__ is cause
    assert oai._translate(ConnectionResetError(104, "reset")).kind == "retry_here"


@pytest.mark.parametrize("provider_name", ["oai", "ant"])
def test_shape_errors_are_malformed_only_once_a_response_is_read(
    provider_name: str, request: pytest.FixtureRequest
) -> None:
    provider = request.getfixturevalue(provider_name)
    # Before any response: a bad argument or a bug, not worth a retry.
    before = provider._translate(TypeError("Missing required arguments"))
    assert type(before) is FatalError
    # While reading a stream: a frame without the expected fields is a malformed reply.
    during = provider._translate(AttributeError("no choices"), responded=True)
    assert type(during) is RetryableError
    assert during.code == "malformed_response"
    # Invalid JSON is malformed whenever it happens.
    assert provider._translate(json.JSONDecodeError("x", "{", 0)).code == "malformed_response"


# --- anthropic ---------------------------------------------------------------------------

_ANT_URL = "http://127.0.0.1:9/v1/messages"


def _ant_status(
    cls: type[anthropic.APIStatusError],
    status: int,
    etype: str,
    message: str,
    error_code: str | None = None,
    **headers: str,
) -> anthropic.APIStatusError:
    error: dict[str, Any] = {"type": etype, "message": message}
    if error_code:
        error["details"] = {"error_code": error_code}
    body = {"type": "error", "error": error, "request_id": "req_a"}
    request = httpx2.Request("POST", _ANT_URL)
    response = httpx2.Response(
        status, headers={"request-id": "req_a", **headers}, json=body, request=request
    )
    return cls(f"Error code: {status} - {body}", response=response, body=body)


@pytest.mark.parametrize(
    ("exc", "expected", "status"),
    [
        (
            _ant_status(anthropic.RateLimitError, 429, "rate_limit_error", "slow", retry_after="4"),
            RetryableError,
            429,
        ),
        (
            _ant_status(
                anthropic.RateLimitError,
                429,
                "rate_limit_error",
                "spend",
                "enforced_spend_limit_reached",
            ),
            FailoverError,
            429,
        ),
        (
            _ant_status(anthropic.OverloadedError, 529, "overloaded_error", "Overloaded"),
            RetryableError,
            529,
        ),
        (
            _ant_status(anthropic.InternalServerError, 500, "api_error", "internal"),
            RetryableError,
            500,
        ),
        (
            _ant_status(anthropic.AuthenticationError, 401, "authentication_error", "bad key"),
            FailoverError,
            401,
        ),
        (
            _ant_status(anthropic.PaymentRequiredError, 402, "billing_error", "pay"),
            FailoverError,
            402,
        ),
        (
            _ant_status(anthropic.PermissionDeniedError, 403, "permission_error", "no"),
            FailoverError,
            403,
        ),
        (_ant_status(anthropic.NotFoundError, 404, "not_found_error", "model"), FailoverError, 404),
        (
            _ant_status(
                anthropic.BadRequestError,
                400,
                "invalid_request_error",
                "prompt is too long: 9 tokens > 5 maximum",
            ),
            ContextTooLongError,
            400,
        ),
        (
            _ant_status(anthropic.BadRequestError, 400, "invalid_request_error", "roles"),
            FatalError,
            400,
        ),
        (
            _ant_status(anthropic.ContentTooLargeError, 413, "request_too_large", "big"),
            FatalError,
            413,
        ),
        (
            _ant_status(
                anthropic.BadRequestError,
                400,
                "invalid_request_error",
                "region",
                "unsupported_region",
            ),
            FailoverError,
            400,
        ),
        # ``event: error`` inside a stream: the SDK raises APIStatusError with status 200.
        (
            _ant_status(anthropic.APIStatusError, 200, "overloaded_error", "Overloaded"),
            RetryableError,
            None,
        ),
        (_ant_status(anthropic.APIStatusError, 200, "api_error", "Internal"), RetryableError, None),
        (
            _ant_status(anthropic.APIStatusError, 200, "invalid_request_error", "bad"),
            FatalError,
            None,
        ),
    ],
)
def test_anthropic_status_errors(
    ant: AnthropicProvider,
    exc: anthropic.APIStatusError,
    expected: type[ProviderError],
    status: int | None,
) -> None:
    error = ant._translate(exc, partial_text="part")
    assert type(error) is expected, error
    assert error.status == status
    assert error.request_id == "req_a"
    assert error.partial_text == "part"
    assert error.__cause__ is exc
    assert error.code  # error_code, else the type
    if "retry-after" in exc.response.headers:
        assert error.retry_after == 4.0


def test_anthropic_transport_errors(ant: AnthropicProvider) -> None:
    request = httpx2.Request("POST", _ANT_URL)
    assert ant._translate(anthropic.APITimeoutError(request=request)).code == "timeout"
    assert ant._translate(anthropic.APIConnectionError(request=request)).kind == "retry_here"
    # Not wrapped by the SDK while a stream is read:
    cut = ant._translate(httpx2.RemoteProtocolError("incomplete chunked read"), partial_text="ab")
    assert type(cut) is RetryableError
    assert cut.partial_text == "ab"
    assert ant._translate(httpx2.ReadTimeout("slow")).code == "timeout"


def test_anthropic_stop_reasons_raise(ant: AnthropicProvider) -> None:
    details = type("Details", (), {"category": "cyber"})()
    with pytest.raises(ContentRefusedError, match="cyber"):
        ant._check_stop("refusal", details, "req", "partial")
    with pytest.raises(ContextTooLongError):
        ant._check_stop("model_context_window_exceeded", None, "req", "")
    ant._check_stop("end_turn", None, "req", "")  # no error


# --- dashscope: errors are returned, not raised ------------------------------------------


def _ds(status: int, code: str, message: str, **headers: str) -> GenerationResponse:
    return GenerationResponse(
        status_code=status,
        request_id="req_d",
        code=code,
        message=message,
        headers={"Content-Type": "application/json", **headers},
    )


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (_ds(429, "Throttling.RateQuota", "rate", **{"Retry-After": "2"}), RetryableError),
        (_ds(429, "Throttling.AllocationQuota", "TPM"), RetryableError),
        (_ds(429, "Throttling.AllocationQuota", "Free allocated quota exceeded."), FailoverError),
        (_ds(400, "Arrearage", "arrears"), FailoverError),
        (_ds(401, "InvalidApiKey", "Invalid API-key provided."), FailoverError),
        (_ds(403, "AccessDenied.Unpurchased", "denied"), FailoverError),
        (_ds(404, "ModelNotFound", "Model not exist."), FailoverError),
        (_ds(400, "DataInspectionFailed", "inappropriate"), ContentRefusedError),
        (_ds(400, "IPInfringementSuspect", "ip"), ContentRefusedError),
        (
            _ds(400, "InvalidParameter", "Range of input length should be [1, 129024]"),
            ContextTooLongError,
        ),
        (_ds(400, "InvalidParameter", "temperature out of range"), FatalError),
        (_ds(500, "InternalError.Algo", "algo"), RetryableError),
        (_ds(500, "RequestTimeOut", "timeout"), RetryableError),
        (_ds(503, "ModelServingError", "busy"), RetryableError),
        (_ds(500, "Unknown", "{not json"), RetryableError),  # the SDK's non-JSON stand-in
    ],
)
def test_dashscope_returned_errors(
    dsc: DashScopeProvider, response: GenerationResponse, expected: type[ProviderError]
) -> None:
    error = dsc._returned_error(response, partial_text="so far")
    assert type(error) is expected
    assert error.request_id == "req_d"
    assert error.partial_text == "so far"
    if response["code"] != "Unknown":
        assert error.status == response["status_code"]
        assert error.code == response["code"]
    if "Retry-After" in response["headers"]:
        assert error.retry_after == 2.0
    if expected is ContextTooLongError:
        assert isinstance(error, ContextTooLongError)
        assert error.limit_tokens == 129024


def test_dashscope_raised_errors(dsc: DashScopeProvider) -> None:
    timeout = dsc._translate(TimeoutError())
    assert timeout.kind == "retry_here"
    assert timeout.code == "timeout"
    dropped = aiohttp.ServerDisconnectedError()
    assert dsc._translate(SendFailedError(dropped)).code == "connection_error"
    read_timeout = aiohttp.SocketTimeoutError("Timeout on reading data from socket")
    assert dsc._translate(SendFailedError(read_timeout)).code == "timeout"
    assert dsc._translate(aiohttp.ClientPayloadError("cut")).kind == "retry_here"
    assert dsc._translate(json.JSONDecodeError("Expecting", "{", 1)).code == "malformed_response"
    fatal = dsc._translate(InputRequired("prompt or messages is required!"))
    assert type(fatal) is FatalError
    assert fatal.code == "InputRequired"


def test_dashscope_no_resend_middleware_retypes_connection_errors() -> None:
    from hybridstack.providers.dashscope import _no_resend

    async def failing(_request: Any) -> Any:
        raise aiohttp.ServerDisconnectedError()

    with pytest.raises(SendFailedError) as info:
        asyncio.run(_no_resend(None, failing))  # type: ignore[arg-type]
    assert not isinstance(info.value, aiohttp.ClientConnectionError)
    assert isinstance(info.value.error, aiohttp.ServerDisconnectedError)


def test_scrub_hides_whole_head_and_masked_tail_echoes() -> None:
    from hybridstack.errors import contains_secret, scrub

    key = "sk-live-ABCDEFGH1234567890wxyz"
    for echoed in (
        f"Incorrect API key provided: {key}.",
        f"Incorrect API key provided: {key[:8]}... check it",
        f"Incorrect API key provided: sk-****************************{key[-4:]}.",
        f"key ending in {key[-8:]} was revoked",
    ):
        cleaned = scrub(echoed, [key])
        assert not contains_secret(cleaned, key), cleaned
        assert "***" in cleaned
    assert scrub("nothing secret here", [key]) == "nothing secret here"


def test_no_route_error_lists_the_telling_exclusions_first_and_counts_the_rest() -> None:
    from hybridstack.errors import NoRouteError

    exclusions = {f"f{i}@s": "not named by model 'x'" for i in range(30)}
    exclusions["qwen-plus@dashscope-cn"] = "jurisdiction CN not allowed for data class 'personal'"
    text = str(NoRouteError("no route", exclusions))
    lines = text.splitlines()
    assert lines[2].startswith("  - qwen-plus@dashscope-cn: jurisdiction CN")
    assert len(lines) == 2 + NoRouteError.MAX_LISTED + 1
    assert "and 19 more (19 × not named)" in lines[-1]
    assert len(NoRouteError("no route", exclusions).exclusions) == 31
