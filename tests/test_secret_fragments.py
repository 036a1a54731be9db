"""No 4-character fragment of any realistic key, anywhere a stack shows, stores or logs.

Realistic random keys (``sk-proj-…``, ``sk-ant-api03-…``, DashScope ``sk-`` + 32 hex, keys
with no prefix; see :mod:`secret_helpers`) are planted three ways — on the deployment,
in ``Stack(api_keys=...)`` and in environment variables — for deployments of all three
wire formats on the emulator. Half of the deployments want another key (401: the key is
sent and refused, and the OpenAI wire quotes its head and tail like api.openai.com);
the other half accept their key and fail in every scripted way (429, 5xx, reset,
malformed bodies, refusals, cut streams …). With DEBUG logging captured, the test scans
exceptions (str, repr, ``traceback.format_exception``, ``__notes__``, every chained
exception and every ExceptionGroup member), ledger rows (memory and SQLite, the file
bytes too), log records and pickles. It also checks that everything that holds a key
refuses to be pickled and shows no key in copy / model_dump / repr / str / JSON.
"""

from __future__ import annotations

import copy
import datetime
import json
import logging
import pickle
import random
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from secret_helpers import (
    KEY_KINDS,
    exception_texts,
    find_fragments,
    key_material,
    realistic_key,
    realistic_keys,
)

from hybridstack import scrub
from hybridstack._secrets import register_secret
from hybridstack.catalog import Catalog, Deployment, Family, Price
from hybridstack.errors import HybridStackError, InvalidRequestError, SecretPickleError
from hybridstack.ledger import Ledger, MemoryLedger, SQLiteLedger
from hybridstack.providers import create_provider
from hybridstack.resilience import Budget, RetrySettings
from hybridstack.stack import Stack
from hybridstack.testing.emulator import EmulatedDeployment, Emulator

FAMILY = "leak-llm"
PROTOCOLS = ("openai", "anthropic", "dashscope")
#: How each protocol's deployments get their key.
HOW = {"openai": "deployment", "anthropic": "api_keys", "dashscope": "environment"}
SITES = [f"{p}-{role}" for p in PROTOCOLS for role in ("wrongkey", "faulty")]
KEYS = realistic_keys(20261203, SITES)
FAULTS = ["429", "500", "503", "529", "reset", "malformed", "refusal", "context_length", "quota"]
STREAM_FAULTS = ["stream_cut", "mid_stream_error", "500", "refusal"]


def env_var(site: str) -> str:
    return f"LEAKCHECK_{site.upper().replace('-', '_')}_API_KEY"


def read_files(folder: Path, pattern: str) -> dict[str, str]:
    return {f"file {f.name}": f.read_bytes().decode("latin-1") for f in folder.glob(pattern)}


def build_catalog(emulator: Emulator) -> Catalog:
    family = Family(name=FAMILY, vendor="test", context_window=32_000, skills={"general": 0.9})
    price = Price(input_per_mtok=1, output_per_mtok=2, as_of=datetime.date(2026, 1, 1))
    deployments = []
    for site in SITES:
        protocol = site.split("-")[0]
        deployments.append(
            Deployment(
                family=FAMILY,
                site=site,
                protocol=protocol,  # type: ignore[arg-type]
                model=f"model-{site}",
                base_url=emulator.base_url(site),
                region="us-east-1",
                jurisdiction="US",
                operator="test",
                api_key_env=env_var(site),
                api_key=SecretStr(KEYS[site]) if HOW[protocol] == "deployment" else None,
                price=price,
            )
        )
    return Catalog([family], deployments)


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for site in SITES:
        if HOW[site.split("-")[0]] == "environment":
            monkeypatch.setenv(env_var(site), KEYS[site])
    return KEYS


async def start_emulator(factory: Callable[..., Awaitable[Emulator]]) -> Emulator:
    specs = []
    for site in SITES:
        protocol = site.split("-")[0]
        # A faulty deployment answers only its own key: a reply proves the key was sent.
        wanted = KEYS[site] if site.endswith("faulty") else "sk-some-other-key-entirely"
        specs.append(
            EmulatedDeployment(
                name=site, protocol=protocol, model=f"model-{site}", faults={"auth_key": wanted}
            )
        )
    return await factory(specs)


@pytest.mark.parametrize("ledger_kind", ["memory", "sqlite"])
async def test_no_key_fragment_anywhere(
    ledger_kind: str,
    planted: dict[str, str],
    emulator_factory: Callable[..., Awaitable[Emulator]],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    emulator = await start_emulator(emulator_factory)
    catalog = build_catalog(emulator)
    ledger: Ledger = (
        MemoryLedger() if ledger_kind == "memory" else SQLiteLedger(tmp_path / "ledger.sqlite")
    )
    api_keys = {
        f"{FAMILY}@{site}": KEYS[site] for site in SITES if HOW[site.split("-")[0]] == "api_keys"
    }
    stacks: list[Stack] = []

    def fresh_stack() -> Stack:
        # A new stack per call: no breaker or fail-over hold from the previous fault
        # skips the next one. All share the ledger.
        stack = Stack(
            catalog,
            ledger=ledger,
            api_keys=api_keys,
            retry=RetrySettings(max_retries=0, backoff_initial_s=0.01, backoff_jitter_s=0.0),
            budget=Budget(deadline_s=30, max_attempts=20),
        )
        stacks.append(stack)
        return stack

    texts: dict[str, str] = {}
    errors: list[BaseException] = []
    try:
        for site in SITES:
            model = f"{FAMILY}@{site}"
            faulty = site.endswith("faulty")
            for fault in ["ok", *FAULTS] if faulty else ["auth"]:
                if fault not in ("ok", "auth"):
                    emulator.script(site, [fault])
                try:
                    reply = await fresh_stack().complete("Say hello", model=model)
                    texts[f"reply {model} {fault}"] = reply.model_dump_json() + repr(reply)
                except HybridStackError as error:
                    errors.append(error)
            for fault in STREAM_FAULTS if faulty else ["auth"]:
                if fault != "auth":
                    emulator.script(site, [fault])
                try:
                    async for event in fresh_stack().stream("Say hello", model=model):
                        texts[f"event {model}"] = repr(event)
                except HybridStackError as error:
                    errors.append(error)
        # Routed over every deployment at once: the wrong keys fail, then the faulty ones
        # fail too, and the ExceptionGroup holds them all.
        for site in SITES:
            if site.endswith("faulty"):
                emulator.script(site, ["500"])
        stack = fresh_stack()
        with pytest.raises(HybridStackError) as info:
            await stack.complete("Say hello", model=FAMILY)
        errors.append(info.value)
        assert any(isinstance(e, ExceptionGroup) for e in errors)
        # Proof that the keys were really sent and refused or accepted.
        by_outcome = {site: emulator.counters(site).by_outcome for site in SITES}
        assert all(by_outcome[s]["auth"] > 0 for s in SITES if s.endswith("wrongkey"))
        assert all(by_outcome[s]["ok"] > 0 for s in SITES if s.endswith("faulty")), by_outcome

        statuses = {a.status for a in ledger.attempts()}
        assert {401, 429, 500} <= statuses, statuses
        openai_401 = [a for a in ledger.attempts() if a.status == 401 and a.protocol == "openai"]
        assert openai_401
        assert all("Incorrect API key provided: ***" in (a.error_message or "") for a in openai_401)

        for n, error in enumerate(errors):
            for m, text in enumerate(exception_texts(error)):
                texts[f"error {n}.{m} {type(error).__name__}"] = text
        rows = ledger.attempts()
        texts["ledger rows"] = "\n".join(a.model_dump_json() + repr(a) for a in rows)
        texts["ledger pickle"] = pickle.dumps(rows).decode("latin-1")
        texts["stack"] = repr(stack) + str(stack) + repr(vars(stack))
        providers = getattr(stack._pool, "_providers", {})
        texts["providers"] = repr(dict(providers))
        assert len(providers) == len(SITES)
    finally:
        for made in stacks:
            await made.aclose()
        ledger.close()
    if ledger_kind == "sqlite":
        texts.update(read_files(tmp_path, "ledger.sqlite*"))  # with -wal / -shm
    texts["caplog"] = caplog.text
    texts["records"] = "\n".join(
        f"{r.name} {r.getMessage()} {r.args!r} {r.exc_text or ''} {r.__dict__!r}"
        for r in caplog.records
    )
    assert caplog.records, "DEBUG logging was captured"
    assert any(r.name.startswith(("openai", "anthropic", "dashscope")) for r in caplog.records)

    leaks = find_fragments(texts, KEYS.values())
    assert not leaks, "key fragments leaked:\n" + "\n".join(leaks[:20])


# --- objects that hold a key ----------------------------------------------------------------


def keyed_deployment(key: str) -> Deployment:
    return Deployment(
        family=FAMILY,
        site="keyed",
        protocol="openai",
        model="m",
        base_url="http://127.0.0.1:9/v1",
        region="local",
        jurisdiction="LOCAL",
        operator="test",
        api_key=SecretStr(key),
        price=Price(input_per_mtok=0, output_per_mtok=0, as_of=datetime.date(2026, 1, 1)),
    )


def test_objects_holding_a_key_refuse_pickle_and_show_nothing() -> None:
    key = KEYS["openai-faulty"]
    deployment = keyed_deployment(key)
    family = Family(name=FAMILY, vendor="test", context_window=1000)
    catalog = Catalog([family], [deployment])
    provider = create_provider(deployment)
    stack = Stack(catalog, api_keys={"OTHER_API_KEY": KEYS["anthropic-faulty"]})

    refusals: dict[str, str] = {}
    for label, obj in {
        "deployment": deployment,
        "catalog": catalog,
        "provider": provider,
        "stack": stack,
    }.items():
        with pytest.raises(TypeError) as info:
            pickle.dumps(obj)
        refusals[label] = "".join(traceback.format_exception(info.value))
    # A deployment or provider is refused by hybridstack, saying what to do (a catalog
    # and a stack do not pickle at all).
    for label in ("deployment", "provider"):
        assert "SecretPickleError" in refusals[label], refusals[label]
    assert isinstance(SecretPickleError("x", "y"), TypeError)

    # In-memory copies keep the key (they never leave the process) and still hide it.
    for clone in (copy.copy(deployment), copy.deepcopy(deployment), deployment.model_copy()):
        assert clone.api_key is not None
        assert clone.api_key.get_secret_value() == key
    # Without its key the deployment pickles, and comes back keyless.
    keyless = pickle.loads(pickle.dumps(deployment.model_copy(update={"api_key": None})))
    assert keyless.api_key is None
    assert keyless.id == deployment.id

    shown = {
        "refusals": "\n".join(refusals.values()),
        "deployment": repr(deployment) + str(deployment) + repr(deployment.api_key),
        "dump": repr(deployment.model_dump()) + deployment.model_dump_json(),
        "dump json mode": json.dumps(deployment.model_dump(mode="json")),
        "copies": repr(copy.deepcopy(deployment).model_dump()),
        "catalog": repr(catalog) + str(catalog),
        "provider": repr(provider) + str(provider) + repr(vars(provider).get("deployment")),
        "stack": repr(stack) + str(stack) + repr(vars(stack)),
        "keyless pickle": pickle.dumps(keyless).decode("latin-1"),
    }
    assert "api_key" not in deployment.model_dump()
    leaks = find_fragments(shown, [KEYS["openai-faulty"], KEYS["anthropic-faulty"]])
    assert not leaks, "\n".join(leaks)


def assert_scrubs_every_piece(key: str) -> None:
    material = key_material(key)
    texts = [
        f"Incorrect API key provided: {key[:8]}{'*' * 20}{key[-4:]}.",
        f"key {key[:12]}… expired",
        f"the key ending in {material[-4:]} is revoked",
        f"Bearer {key}",
        f'{{"x-api-key": "{key}"}}',
        f"fragment {material[5:15]} glued",
    ]
    for text in texts:
        clean = scrub(text, [key])
        assert not find_fragments({"scrubbed": clean}, [key]), (text, clean)


def test_scrub_hides_every_piece_of_a_known_key() -> None:
    for kind in KEY_KINDS:
        key = realistic_key(random.Random(kind), kind)
        assert_scrubs_every_piece(key)
    # Keys hybridstack was never given are still hidden by their shape.
    unknown = "sk-proj-" + "Ab1x" * 12
    assert scrub(f"Incorrect API key provided: {unknown[:8]}****{unknown[-4:]}") == (
        "Incorrect API key provided: ***"
    )
    assert scrub(f"auth failed for {unknown}") == "auth failed for ***"
    assert scrub("Authorization: Bearer abc123def456ghi") == "Authorization: Bearer ***"
    # Ordinary text is left as it is.
    for text in ("Loading...", "see the task-list", "bearer of bad news", "api_key=..."):
        assert scrub(text) == text


def test_sdk_log_records_are_scrubbed(caplog: pytest.LogCaptureFixture) -> None:
    # The DashScope SDK logs provider messages at ERROR ("Request: … failed, message: …"),
    # and any SDK may log an exception: records of the SDK loggers are scrubbed too.
    key = KEYS["dashscope-wrongkey"]
    create_provider(keyed_deployment(key))  # registers the key, installs the filter
    caplog.set_level(logging.DEBUG)
    for name in ("dashscope", "openai._base_client", "anthropic", "httpx", "hybridstack.x"):
        logger = logging.getLogger(name)
        logger.error("Request: %s failed, status: %s, message: %s", "url", 401, f"bad {key}")
        try:
            raise RuntimeError(f"upstream said key ...{key[-6:]} is wrong")
        except RuntimeError:
            logger.debug("failed", exc_info=True)
    assert len(caplog.records) == 10
    texts = {"caplog": caplog.text}
    texts.update({f"record {i}": repr(vars(r)) for i, r in enumerate(caplog.records)})
    assert not find_fragments(texts, [key]), find_fragments(texts, [key])


def test_words_and_numbers_that_a_key_contains_are_left_alone() -> None:
    # The emulator's readable fake key and the local placeholder are hidden whole, but
    # their words are words; a random key holding "2026" does not blank out the year.
    readable = ("sk-hybridstack-offline-emulator", "not-needed")
    hex_key = "sk-9f3a2026c1d4e5f60718293a4b5c6d7e"
    text = "not a hybridstack ledger: the offline answer, as needed, in 2026 (emulator)"
    assert scrub(text, [*readable, hex_key]) == text
    assert scrub(f"key {readable[0]} refused", readable) == "key *** refused"
    assert scrub(f"key …{hex_key[-6:]} refused", [hex_key]) == "key …*** refused"


def test_word_pieces_of_other_registered_keys_stay_readable() -> None:
    # Keys registered by other code in this process (fake keys often hold words) must
    # not blank out those words in ordinary messages.
    for fake in ("sk-hybridstack-bench-1", "test-ledger-key-42", "sk-answer-offline-2026"):
        register_secret(fake)
    text = "not a hybridstack ledger: the offline answer, in 2026"
    assert scrub(text) == text
    assert scrub("sk-hybridstack-bench-1 failed") == "*** failed"


#: A key hybridstack was never given (hidden by its shape) and, registered as a provider
#: would register it, one realistic key of every kind (the bare one has no shape at all).
_UNGIVEN_KEY = "sk-" + "9f3a1c0e7b5d" * 3 + "2e4c"
_GIVEN_KEYS = [realistic_key(random.Random(f"bad-input-{kind}"), kind) for kind in KEY_KINDS]


def _bad_request_arguments(key: str) -> list[dict[str, Any]]:
    """Arguments that build_request refuses, each quoting a value or name holding ``key``."""
    return [
        {"metadata": {"ticket": [key]}},  # the bad value, quoted
        {"metadata": {key: 5}},  # the field path: a metadata key
        {"metadata": {"ticket": 5, key: 3}},  # the "also check" list
        {"metadata": [("ticket", "T-1"), ("x", key)]},  # a quote cut at 60 characters
        {"extra_headers": {f"Authorization {key}": "x"}},  # a validator's own words
        {"tool_choice": key},  # an unknown literal, with did-you-mean
        {"max_tokens": key},
        {"tools": [{"name": f"{key}!"}]},  # a pattern mismatch
        {"messages": [{"role": key, "content": "hi"}]},
        # A built request with headers added: check_extra_headers' words, not pydantic's.
        {"messages": Stack.build_request("Hi"), "extra_headers": {f"Authorization {key}": "x"}},
    ]


@pytest.mark.parametrize("key", [_UNGIVEN_KEY, *_GIVEN_KEYS], ids=["ungiven", *KEY_KINDS])
def test_invalid_request_errors_quote_no_key_fragment(key: str) -> None:
    # A key pasted into the wrong argument (metadata, extra_headers, stop ...) is quoted
    # back by the error that names the field: never a fragment of it.
    if key is not _UNGIVEN_KEY:
        register_secret(key)
    for arguments in _bad_request_arguments(key):
        messages = arguments.pop("messages", "Hi")
        with pytest.raises(InvalidRequestError) as info:
            Stack.build_request(messages, **arguments)
        error = info.value
        texts = {f"text {i}": text for i, text in enumerate(exception_texts(error))}
        texts["field"] = str(error.field)
        leaks = find_fragments(texts, [key])
        assert not leaks, (arguments, "\n".join(leaks))
        assert str(error).startswith("invalid request: "), str(error)
