"""The ledger: every attempt recorded, read back exactly, totalled, durable and migratable."""

from __future__ import annotations

import json
import logging
import random
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path

import pytest
from postgres_fixtures import url_for
from pydantic import SecretStr

from hybridstack import scrub
from hybridstack.catalog.models import Deployment, Price
from hybridstack.errors import ConfigurationError, LedgerError
from hybridstack.ledger import (
    GROUP_BY,
    Ledger,
    MemoryLedger,
    PostgresLedger,
    RunSummary,
    SQLiteLedger,
    Totals,
    price_usage,
    time_window_multiplier,
)
from hybridstack.ledger import migrations as mig
from hybridstack.ledger.base import aggregate, summarize_runs
from hybridstack.ledger.sql import COLUMNS
from hybridstack.types import Attempt, Usage

T0 = datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)


class ListLedger(Ledger):
    """The smallest third-party ledger: only _write and attempts; totals/runs from the base."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[Attempt] = []

    def _write(self, attempt: Attempt) -> None:
        self.items.append(attempt)

    def attempts(self, *, call_id=None, run_id=None, limit=None) -> list[Attempt]:
        found = [
            a
            for a in self.items
            if (call_id is None or a.call_id == call_id) and (run_id is None or a.run_id == run_id)
        ]
        return found[len(found) - limit :] if limit else ([] if limit == 0 else found)


def make_ledger(kind: str, tmp_path: Path, request: pytest.FixtureRequest, **options) -> Ledger:
    if kind == "memory":
        return MemoryLedger()
    if kind == "sqlite":
        return SQLiteLedger(tmp_path / "ledger.db", **options)
    if kind == "postgres":
        schema = request.getfixturevalue("pg_schema")
        return PostgresLedger(url_for(schema), **options)
    return ListLedger()


@pytest.fixture(params=["memory", "sqlite", "postgres", "base"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path):
    with make_ledger(request.param, tmp_path, request) as made:
        yield made


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def real_ledger(request: pytest.FixtureRequest, tmp_path: Path):
    with make_ledger(request.param, tmp_path, request) as made:
        yield made


def full_attempt(**changes: object) -> Attempt:
    """An attempt whose every field differs from its default."""
    fields: dict[str, object] = {
        "call_id": "call-1",
        "run_id": "run-1",
        "attempt_index": 2,
        "retry_index": 1,
        "deployment": "qwen-plus@sg",
        "family": "qwen-plus",
        "model": "qwen-plus-2025-04-28",
        "protocol": "dashscope",
        "region": "ap-southeast-1",
        "jurisdiction": "SG",
        "quota_scope": "dashscope-intl",
        "started_at": T0,
        "ttft_s": 0.1234567,
        "latency_s": 1.5000001,
        "usage": Usage(input_tokens=1000, output_tokens=200, cached_input_tokens=300),
        "usage_estimated": True,
        "cost_usd": 0.000421337,
        "outcome": "content_refused",
        "error_type": "ContentRefusedError",
        "error_message": "Input data may contain inappropriate content. — 数据检查失败",
        "status": 400,
        "provider_code": "DataInspectionFailed",
        "request_id": "req-7f3a",
        "retry_after_s": 2.5,
        "breaker_state": "half_open",
        "hedged": True,
        "streamed": True,
        "skill": "multilingual",
        "data_class": "personal",
        "reasons": ("skill multilingual: rank 1 of 3", "jurisdiction SG allowed for personal"),
        "redactions": {"email": 2, "phone": 1},
    }
    fields.update(changes)
    return Attempt(**fields)


def test_full_attempt_sets_every_field() -> None:
    # Guards the round-trip tests: a new Attempt field must be given a value here.
    a = full_attempt()
    for name, field in Attempt.model_fields.items():
        if field.is_required():
            continue
        assert getattr(a, name) != field.get_default(call_default_factory=True), name


# --- round trip ------------------------------------------------------------------------


def test_round_trip_all_fields(ledger: Ledger) -> None:
    a = full_attempt()
    b = full_attempt(call_id="call-2", run_id=None, outcome="ok", ttft_s=None, error_type=None)
    ledger.record(a)
    ledger.record(b)
    got = ledger.attempts()
    assert got == [a, b]
    assert got[0].model_dump() == a.model_dump()
    assert got[0].started_at.utcoffset() == timedelta(0)
    assert got[0].started_at.microsecond == 123456
    assert isinstance(got[0].reasons, tuple)
    assert got[1].run_id is None
    assert got[1].ttft_s is None


def test_sqlite_round_trip_survives_reopen(tmp_path: Path) -> None:
    a = full_attempt()
    with SQLiteLedger(tmp_path / "l.db") as first:
        first.record(a)
    with SQLiteLedger(tmp_path / "l.db", create=False) as again:
        assert again.attempts() == [a]
    with SQLiteLedger(tmp_path / "l.db", read_only=True) as reader:
        assert reader.attempts() == [a]
        with pytest.raises(ConfigurationError, match="read-only"):
            reader.record(a)


def test_times_are_stored_as_utc(real_ledger: Ledger) -> None:
    plus8 = timezone(timedelta(hours=8))
    real_ledger.record(
        full_attempt(call_id="aware", started_at=datetime(2025, 1, 1, 8, tzinfo=plus8))
    )
    real_ledger.record(full_attempt(call_id="naive", started_at=datetime(2025, 1, 1, 3)))
    aware, naive = real_ledger.attempts()
    assert aware.started_at == datetime(2025, 1, 1, 0, tzinfo=UTC)
    assert aware.started_at.utcoffset() == timedelta(0)
    assert aware.started_at.hour == 0
    assert naive.started_at == datetime(2025, 1, 1, 3, tzinfo=UTC)


def test_ledger_keeps_its_own_copy(real_ledger: Ledger) -> None:
    a = full_attempt()
    real_ledger.record(a)
    a.redactions["iban"] = 9
    a.cost_usd = 99.0
    (stored,) = real_ledger.attempts()
    assert stored.redactions == {"email": 2, "phone": 1}
    assert stored.cost_usd == 0.000421337


def test_record_rejects_other_types(ledger: Ledger) -> None:
    with pytest.raises(TypeError, match="Attempt"):
        ledger.record(full_attempt().model_dump())  # type: ignore[arg-type]
    assert ledger.attempts() == []


# --- filters and totals ----------------------------------------------------------------

# run, call, deployment, region, jurisdiction, outcome, in, out, cached, cost, latency, start
ROWS = [
    ("r1", "c1", "qwen-plus@cn", "cn-beijing", "CN", "retry_here", 0, 0, 0, 0.0, 0.5, 0),
    ("r1", "c1", "qwen-plus@cn", "cn-beijing", "CN", "ok", 100, 50, 0, 0.25, 1.0, 1),
    ("r1", "c2", "deepseek-flash@cn", "cn-hangzhou", "CN", "fail_over", 0, 0, 0, 0.0, 0.25, 2),
    ("r1", "c2", "llama-3.3-70b@us", "us-east-1", "US", "ok", 200, 100, 50, 0.5, 2.0, 3),
    ("r1", "c2", "qwen-plus@sg", "ap-southeast-1", "SG", "cancelled", 10, 0, 0, 0.125, 0.75, 4),
    ("r2", "c3", "llama-3.3-70b@us", "us-east-1", "US", "content_refused", 0, 0, 0, 0.0, 0.25, 5),
    ("r2", "c3", "llama-3.3-70b@eu", "eu-central-1", "EU", "ok", 1000, 10, 0, 1.0, 4.0, 6),
    ("r2", "c4", "qwen-plus@sg", "ap-southeast-1", "SG", "skipped", 0, 0, 0, 0.0, 0.0, -1),
    ("r2", "c4", "llama-3.3-70b@eu", "eu-central-1", "EU", "fatal", 0, 0, 0, 0.0, 0.5, 8),
    (None, "c5", "qwen-plus@sg", "ap-southeast-1", "SG", "ok", 40, 20, 8, 0.0625, 1.0, 9),
]


def dataset() -> list[Attempt]:
    out = []
    for i, (
        run,
        call,
        dep,
        region,
        jur,
        outcome,
        tin,
        tout,
        cached,
        cost,
        lat,
        minute,
    ) in enumerate(ROWS):
        out.append(
            Attempt(
                call_id=call,
                run_id=run,
                attempt_index=i,
                deployment=dep,
                family=dep.split("@")[0],
                region=region,
                jurisdiction=jur,
                started_at=T0 + timedelta(minutes=minute),
                latency_s=lat,
                usage=Usage(input_tokens=tin, output_tokens=tout, cached_input_tokens=cached),
                cost_usd=cost,
                outcome=outcome,
                hedged=outcome == "cancelled",
            )
        )
    return out


def record_dataset(ledger: Ledger) -> list[Attempt]:
    data = dataset()
    for a in data:
        ledger.record(a)
    return data


def T(attempts, ok, failed, cancelled, skipped, tin, tout, cached, cost, latency, calls) -> Totals:
    return Totals(
        attempts=attempts,
        ok=ok,
        failed=failed,
        cancelled=cancelled,
        skipped=skipped,
        input_tokens=tin,
        output_tokens=tout,
        cached_input_tokens=cached,
        cost_usd=cost,
        latency_s=latency,
        calls=calls,
    )


def test_attempt_filters(ledger: Ledger) -> None:
    data = record_dataset(ledger)
    assert ledger.attempts() == data
    assert ledger.attempts(call_id="c2") == data[2:5]
    assert ledger.attempts(run_id="r2") == data[5:9]
    assert ledger.attempts(run_id="r2", call_id="c4") == data[7:9]
    assert ledger.attempts(run_id="r1", call_id="c3") == []
    assert ledger.attempts(call_id="nope") == []
    assert ledger.attempts(limit=2) == data[8:10]
    assert ledger.attempts(run_id="r1", limit=3) == data[2:5]
    assert ledger.attempts(limit=100) == data
    assert ledger.attempts(limit=0) == []


def test_totals_overall_per_run_and_per_call(ledger: Ledger) -> None:
    assert ledger.totals() == {"all": Totals()}
    record_dataset(ledger)
    assert ledger.totals() == {"all": T(10, 4, 4, 1, 1, 1350, 180, 58, 1.9375, 10.25, 5)}
    assert ledger.totals(run_id="r1") == {"all": T(5, 2, 2, 1, 0, 310, 150, 50, 0.875, 4.5, 2)}
    assert ledger.totals(run_id="r2") == {"all": T(4, 1, 2, 0, 1, 1000, 10, 0, 1.0, 4.75, 2)}
    assert ledger.totals(call_id="c2") == {"all": T(3, 1, 1, 1, 0, 210, 100, 50, 0.625, 3.0, 1)}
    assert ledger.totals(run_id="r2", call_id="c3") == {
        "all": T(2, 1, 1, 0, 0, 1000, 10, 0, 1.0, 4.25, 1)
    }
    assert ledger.totals(run_id="r1", call_id="c3") == {"all": Totals()}
    assert ledger.totals(run_id="r1", by="outcome")["cancelled"].cancelled == 1


EXPECTED_BY = {
    "jurisdiction": {
        "CN": T(3, 1, 2, 0, 0, 100, 50, 0, 0.25, 1.75, 2),
        "EU": T(2, 1, 1, 0, 0, 1000, 10, 0, 1.0, 4.5, 2),
        "SG": T(3, 1, 0, 1, 1, 50, 20, 8, 0.1875, 1.75, 3),
        "US": T(2, 1, 1, 0, 0, 200, 100, 50, 0.5, 2.25, 2),
    },
    "family": {
        "deepseek-flash": T(1, 0, 1, 0, 0, 0, 0, 0, 0.0, 0.25, 1),
        "llama-3.3-70b": T(4, 2, 2, 0, 0, 1200, 110, 50, 1.5, 6.75, 3),
        "qwen-plus": T(5, 2, 1, 1, 1, 150, 70, 8, 0.4375, 3.25, 4),
    },
    "deployment": {
        "deepseek-flash@cn": T(1, 0, 1, 0, 0, 0, 0, 0, 0.0, 0.25, 1),
        "llama-3.3-70b@eu": T(2, 1, 1, 0, 0, 1000, 10, 0, 1.0, 4.5, 2),
        "llama-3.3-70b@us": T(2, 1, 1, 0, 0, 200, 100, 50, 0.5, 2.25, 2),
        "qwen-plus@cn": T(2, 1, 1, 0, 0, 100, 50, 0, 0.25, 1.5, 1),
        "qwen-plus@sg": T(3, 1, 0, 1, 1, 50, 20, 8, 0.1875, 1.75, 3),
    },
    "outcome": {
        "cancelled": T(1, 0, 0, 1, 0, 10, 0, 0, 0.125, 0.75, 1),
        "content_refused": T(1, 0, 1, 0, 0, 0, 0, 0, 0.0, 0.25, 1),
        "fail_over": T(1, 0, 1, 0, 0, 0, 0, 0, 0.0, 0.25, 1),
        "fatal": T(1, 0, 1, 0, 0, 0, 0, 0, 0.0, 0.5, 1),
        "ok": T(4, 4, 0, 0, 0, 1340, 180, 58, 1.8125, 8.0, 4),
        "retry_here": T(1, 0, 1, 0, 0, 0, 0, 0, 0.0, 0.5, 1),
        "skipped": T(1, 0, 0, 0, 1, 0, 0, 0, 0.0, 0.0, 1),
    },
    "region": {
        "ap-southeast-1": T(3, 1, 0, 1, 1, 50, 20, 8, 0.1875, 1.75, 3),
        "cn-beijing": T(2, 1, 1, 0, 0, 100, 50, 0, 0.25, 1.5, 1),
        "cn-hangzhou": T(1, 0, 1, 0, 0, 0, 0, 0, 0.0, 0.25, 1),
        "eu-central-1": T(2, 1, 1, 0, 0, 1000, 10, 0, 1.0, 4.5, 2),
        "us-east-1": T(2, 1, 1, 0, 0, 200, 100, 50, 0.5, 2.25, 2),
    },
}


@pytest.mark.parametrize("by", GROUP_BY)
def test_totals_by_dimension(ledger: Ledger, by: str) -> None:
    assert ledger.totals(by=by) == {}  # type: ignore[arg-type]
    record_dataset(ledger)
    got = ledger.totals(by=by)  # type: ignore[arg-type]
    assert got == EXPECTED_BY[by]
    assert list(got) == sorted(got)


def test_totals_by_dimension_within_a_run(ledger: Ledger) -> None:
    record_dataset(ledger)
    assert ledger.totals(run_id="r1", by="jurisdiction") == {
        "CN": T(3, 1, 2, 0, 0, 100, 50, 0, 0.25, 1.75, 2),
        "SG": T(1, 0, 0, 1, 0, 10, 0, 0, 0.125, 0.75, 1),
        "US": T(1, 1, 0, 0, 0, 200, 100, 50, 0.5, 2.0, 1),
    }


def test_totals_rejects_unknown_dimension(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="jurisdiction"):
        ledger.totals(by="model")  # type: ignore[arg-type]


def test_runs(ledger: Ledger) -> None:
    assert ledger.runs() == []
    record_dataset(ledger)
    # r2's skipped attempt started before r1's first one, though it was recorded later.
    assert ledger.runs() == [
        RunSummary(
            run_id="r2",
            started_at=T0 - timedelta(minutes=1),
            attempts=4,
            calls=2,
            cost_usd=1.0,
            ok_calls=1,
            failed_calls=1,
        ),
        RunSummary(
            run_id="r1",
            started_at=T0,
            attempts=5,
            calls=2,
            cost_usd=0.875,
            ok_calls=2,
            failed_calls=0,
        ),
    ]
    assert all(r.started_at.utcoffset() == timedelta(0) for r in ledger.runs())


def test_memory_ledger_keeps_the_newest_attempts_and_exact_totals() -> None:
    ledger = MemoryLedger(max_attempts=4)
    data = record_dataset(ledger)
    assert ledger.attempts() == data[6:]
    assert ledger.evicted == 6
    assert ledger.recorded == 10
    assert len(ledger) == 4
    assert ledger.dropped == 0  # evicted attempts are not lost: the totals keep them
    assert ledger.attempts(call_id="c3") == [data[6]]
    assert ledger.attempts(run_id="r1") == []
    # The same totals as a ledger that kept everything (test_totals_* above).
    assert ledger.totals() == {"all": T(10, 4, 4, 1, 1, 1350, 180, 58, 1.9375, 10.25, 5)}
    for by in GROUP_BY:
        assert ledger.totals(by=by) == EXPECTED_BY[by]  # type: ignore[arg-type]
    assert ledger.totals(run_id="r1") == {"all": T(5, 2, 2, 1, 0, 310, 150, 50, 0.875, 4.5, 2)}
    assert ledger.totals(run_id="r1", by="jurisdiction") == {
        "CN": T(3, 1, 2, 0, 0, 100, 50, 0, 0.25, 1.75, 2),
        "SG": T(1, 0, 0, 1, 0, 10, 0, 0, 0.125, 0.75, 1),
        "US": T(1, 1, 0, 0, 0, 200, 100, 50, 0.5, 2.0, 1),
    }
    full = MemoryLedger(max_attempts=None)
    record_dataset(full)
    assert ledger.runs() == full.runs()
    assert "holding 4 of 10 attempts" in repr(ledger)
    assert "keeps the newest" in repr(ledger)
    ledger.clear()
    assert ledger.totals() == {"all": Totals()}
    assert (len(ledger), ledger.recorded, ledger.evicted, ledger.runs()) == (0, 0, 0, [])
    with pytest.raises(ValueError, match="max_attempts"):
        MemoryLedger(max_attempts=0)
    with pytest.raises(ValueError, match="max_runs"):
        MemoryLedger(max_runs=-1)


def test_memory_ledger_is_bounded_by_default() -> None:
    ledger = MemoryLedger()
    assert ledger.max_attempts == 10_000
    template = full_attempt(run_id=None)
    for i in range(10_005):
        ledger.record(template.model_copy(update={"call_id": f"c{i}"}), owned=True)
    assert len(ledger) == 10_000
    assert ledger.evicted == 5
    assert ledger.attempts(limit=1)[0].call_id == "c10004"
    overall = ledger.totals()["all"]
    assert (overall.attempts, overall.calls) == (10_005, 10_005)
    assert "max_attempts=10000" in repr(ledger)

    unbounded = MemoryLedger(max_attempts=None)
    for i in range(10_005):
        unbounded.record(template.model_copy(update={"call_id": f"c{i}"}), owned=True)
    assert len(unbounded) == 10_005
    assert unbounded.evicted == 0
    assert "unbounded" in repr(unbounded)


@pytest.mark.parametrize("max_attempts", [1, 7, 64, 1_000])
def test_memory_totals_equal_a_full_recount(max_attempts: int) -> None:
    # Interleaved calls (as concurrent calls record them) over many runs, with fail-over
    # across deployments: the running sums must match counting every attempt afresh.
    rng = random.Random(max_attempts)
    deployments = [
        ("qwen-plus@cn", "qwen-plus", "cn-beijing", "CN"),
        ("qwen-plus@sg", "qwen-plus", "ap-southeast-1", "SG"),
        ("llama-3.3-70b@us", "llama-3.3-70b", "us-east-1", "US"),
        ("llama-3.3-70b@eu", "llama-3.3-70b", "eu-central-1", "EU"),
    ]
    outcomes = ["ok", "ok", "ok", "retry_here", "fail_over", "cancelled", "skipped"]
    made: list[Attempt] = []
    open_calls: list[tuple[str, str | None]] = []
    for i in range(1_500):
        if not open_calls or (len(open_calls) < 4 and rng.random() < 0.4):
            run = rng.choice([None, *(f"r{n}" for n in range(i // 200, i // 200 + 3))])
            open_calls.append((f"c{i}", run))
        call, run = rng.choice(open_calls)
        dep, family, region, jur = rng.choice(deployments)
        outcome = rng.choice(outcomes)
        made.append(
            Attempt(
                call_id=call,
                run_id=run,
                attempt_index=i,
                deployment=dep,
                family=family,
                region=region,
                jurisdiction=jur,
                started_at=T0 + timedelta(seconds=rng.randint(0, 10_000)),
                latency_s=rng.random(),
                usage=Usage(input_tokens=rng.randint(0, 900), output_tokens=rng.randint(0, 90)),
                cost_usd=rng.random() / 1000,
                outcome=outcome,
            )
        )
        if outcome == "ok" or rng.random() < 0.2:
            open_calls.remove((call, run))
    bounded = MemoryLedger(max_attempts=max_attempts)
    for a in made:
        bounded.record(a)
    assert len(bounded) == min(max_attempts, len(made))
    # Overall sums are added in recording order, as the recount does: equal to the bit.
    assert bounded.totals() == aggregate(made)
    for by in GROUP_BY:
        assert_same_totals(bounded.totals(by=by), aggregate(made, by))  # type: ignore[arg-type]
    runs = {a.run_id for a in made if a.run_id is not None}
    assert len(runs) >= 8
    for run_id in runs:
        in_run = [a for a in made if a.run_id == run_id]
        assert bounded.totals(run_id=run_id) == aggregate(in_run)
        assert_same_totals(
            bounded.totals(run_id=run_id, by="deployment"), aggregate(in_run, "deployment")
        )
    assert bounded.runs() == summarize_runs(made)


def assert_same_totals(got: dict[str, Totals], want: dict[str, Totals]) -> None:
    """Counts and tokens equal; float sums equal but for the order they were added in."""
    assert list(got) == list(want)
    for key, totals in got.items():
        expected = want[key].model_dump()
        for name, value in totals.model_dump().items():
            if isinstance(value, float):
                assert value == pytest.approx(expected[name], rel=1e-12, abs=1e-15), (key, name)
            else:
                assert value == expected[name], (key, name)


def test_memory_ledger_keeps_the_newest_runs() -> None:
    ledger = MemoryLedger(max_runs=2)
    for run in ("r1", "r2", "r3"):
        ledger.record(full_attempt(call_id=f"call-{run}", run_id=run, cost_usd=1.0))
    assert [r.run_id for r in ledger.runs()] == ["r2", "r3"]
    assert ledger.totals()["all"].cost_usd == 3.0  # the overall totals keep every run
    # A forgotten run is recounted from the attempts still kept (here: all of them).
    assert ledger.totals(run_id="r1")["all"].attempts == 1


# --- subscribers -----------------------------------------------------------------------


def test_subscribe_and_unsubscribe(ledger: Ledger) -> None:
    seen: list[Attempt] = []
    stop = ledger.subscribe(seen.append)
    a = full_attempt()
    ledger.record(a)
    assert seen == [a]
    stop()
    stop()  # twice is harmless
    ledger.record(full_attempt(call_id="later"))
    assert seen == [a]


def test_same_callback_twice_unsubscribes_one(ledger: Ledger) -> None:
    seen: list[Attempt] = []
    first = ledger.subscribe(seen.append)
    ledger.subscribe(seen.append)
    first()
    ledger.record(full_attempt())
    assert len(seen) == 1


def test_raising_subscriber_is_logged_and_recording_continues(
    ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(attempt: Attempt) -> None:
        raise RuntimeError("display went away")

    seen: list[str] = []
    ledger.subscribe(broken)
    ledger.subscribe(lambda a: seen.append(a.call_id))
    with caplog.at_level(logging.ERROR, logger="hybridstack.ledger"):
        ledger.record(full_attempt(call_id="x"))
        ledger.record(full_attempt(call_id="y"))
    assert [a.call_id for a in ledger.attempts()] == ["x", "y"]
    assert seen == ["x", "y"]
    errors = [r for r in caplog.records if r.name == "hybridstack.ledger"]
    assert len(errors) == 2
    assert "display went away" in errors[0].exc_text
    assert "recorded" in errors[0].getMessage()


def test_subscribers_dropped_on_close() -> None:
    seen: list[Attempt] = []
    ledger = MemoryLedger()
    ledger.subscribe(seen.append)
    ledger.close()
    ledger.record(full_attempt())
    assert seen == []


# --- concurrency -----------------------------------------------------------------------


@pytest.fixture
def busy_threads():
    # Switch threads far more often than the default 5 ms, so that races show up.
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


@pytest.mark.parametrize(
    ("kind", "batch_size"),
    [("memory", 1), ("sqlite", 1), ("sqlite", 64), ("postgres", 1), ("postgres", 64)],
)
@pytest.mark.usefixtures("busy_threads")
def test_threads_record_exactly(
    tmp_path: Path, kind: str, batch_size: int, request: pytest.FixtureRequest
) -> None:
    options = {} if kind == "memory" else {"batch_size": batch_size}
    ledger = make_ledger(kind, tmp_path, request, **options)
    events: list[Attempt] = []
    ledger.subscribe(events.append)
    start = threading.Barrier(9)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        start.wait()
        for i in range(125):
            # Every worker writes to the same 25 calls: the indexes are contended.
            ledger.record(
                full_attempt(call_id=f"call-{i // 5}", run_id=f"w{worker}", attempt_index=i)
            )

    def read() -> None:
        start.wait()
        try:
            for _ in range(50):
                ledger.totals(by="jurisdiction")
                ledger.attempts(limit=5)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    threads.append(threading.Thread(target=read))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(ledger.attempts()) == 1000
    assert len(events) == 1000
    totals = ledger.totals()["all"]
    assert (totals.attempts, totals.calls) == (1000, 25)
    assert totals.input_tokens == 1000 * 1000
    for worker in range(8):
        mine = ledger.attempts(run_id=f"w{worker}")
        assert [a.attempt_index for a in mine] == list(range(125))
    for call in range(25):
        assert len(ledger.attempts(call_id=f"call-{call}")) == 40
    ledger.close()
    if kind != "memory":
        with make_ledger(kind, tmp_path, request) as reopened:
            assert reopened.totals()["all"].attempts == 1000


# --- SQLite specifics ------------------------------------------------------------------


def test_schema_has_a_column_per_field(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    SQLiteLedger(path).close()
    db = sqlite3.connect(path)
    columns = {row[1] for row in db.execute("PRAGMA table_info(attempts)")}
    indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    journal = db.execute("PRAGMA journal_mode").fetchone()[0]
    db.close()
    fields = set(Attempt.model_fields) - {"usage"} | set(Usage.model_fields)
    # Only Attempt fields (and the row id) are written: nothing else can reach the file.
    assert columns == fields | {"id"} == set(COLUMNS) | {"id"}
    assert {"attempts_call_id", "attempts_run_id", "attempts_started_at"} <= indexes
    assert journal == "wal"


def test_sql_aggregation_matches_python(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    with SQLiteLedger(path) as ledger:
        ledger.record(full_attempt())
    db = sqlite3.connect(path)
    row = db.execute(
        "SELECT jurisdiction, sum(cost_usd), reasons, redactions, hedged, started_at FROM attempts"
    ).fetchone()
    db.close()
    assert row[0] == "SG"
    assert row[1] == 0.000421337
    assert json.loads(row[2]) == list(full_attempt().reasons)
    assert json.loads(row[3]) == {"email": 2, "phone": 1}
    assert row[4] == 1
    assert row[5] == "2025-06-01T12:00:00.123456+00:00"


def test_no_secret_reaches_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_key = "sk-hybridstack-test-0123456789abcdef"
    monkeypatch.setenv("DASHSCOPE_API_KEY", fake_key)
    deployment = Deployment(
        family="qwen-plus",
        site="sg",
        protocol="dashscope",
        model="qwen-plus",
        base_url="https://dashscope-intl.aliyuncs.com/api/v1",
        region="ap-southeast-1",
        jurisdiction="SG",
        operator="alibaba",
        api_key_env="DASHSCOPE_API_KEY",
        api_key=SecretStr(fake_key),
        price=Price(input_per_mtok=0.4, output_per_mtok=1.2, as_of=date(2025, 6, 1)),
    )
    message = scrub(f"Invalid API-key provided: {fake_key}", [fake_key])
    with SQLiteLedger(tmp_path / "l.db", batch_size=2) as ledger:
        ledger.record(
            full_attempt(deployment=deployment.id, outcome="fail_over", error_message=message)
        )
        ledger.flush()
        # Scan while the WAL still holds the row, then again after the checkpoint on close.
        blobs = b"".join(p.read_bytes() for p in tmp_path.iterdir())
        assert b"qwen-plus@sg" in blobs
        assert b"Invalid API-key provided: ***" in blobs
        assert fake_key.encode() not in blobs
        assert fake_key[:8].encode() not in blobs
    blobs = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"Invalid API-key provided: ***" in blobs
    assert fake_key.encode() not in blobs


def test_batched_writes_reach_the_file_on_flush_read_and_close(tmp_path: Path) -> None:
    path = tmp_path / "l.db"

    def on_disk() -> int:
        db = sqlite3.connect(path)
        try:
            return db.execute("SELECT count(*) FROM attempts").fetchone()[0]
        finally:
            db.close()

    ledger = SQLiteLedger(path, batch_size=10)
    for i in range(4):
        ledger.record(full_attempt(attempt_index=i))
    assert on_disk() == 0
    ledger.flush()
    assert on_disk() == 4
    for i in range(3):
        ledger.record(full_attempt(attempt_index=10 + i))
    assert len(ledger.attempts()) == 7  # a read flushes first
    assert on_disk() == 7
    for i in range(10):
        ledger.record(full_attempt(attempt_index=20 + i))
    assert on_disk() == 17  # the tenth buffered record flushed the batch
    ledger.record(full_attempt(attempt_index=99))
    ledger.close()
    assert on_disk() == 18


def test_another_process_reads_while_writing(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    script = (
        "import json, sys\n"
        "from hybridstack.ledger import SQLiteLedger\n"
        "with SQLiteLedger(sys.argv[1], read_only=True) as ledger:\n"
        "    t = ledger.totals(by='jurisdiction')\n"
        "    print(json.dumps({k: [v.attempts, v.cost_usd] for k, v in t.items()}))\n"
    )
    with SQLiteLedger(path) as writer:
        record_dataset(writer)
        out = subprocess.run(
            [sys.executable, "-c", script, str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        writer.record(full_attempt())  # the writer is not blocked by the reader
        assert len(writer.attempts()) == 11
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {k: [v.attempts, v.cost_usd] for k, v in EXPECTED_BY["jurisdiction"].items()}


def test_closed_ledger(tmp_path: Path) -> None:
    ledger = SQLiteLedger(tmp_path / "l.db")
    ledger.close()
    ledger.close()
    with pytest.raises(LedgerError, match="closed"):
        ledger.record(full_attempt())
    with pytest.raises(LedgerError, match="closed"):
        ledger.attempts()


# --- migrations ------------------------------------------------------------------------


def applied_rows(path: Path) -> list[tuple[str, str]]:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT name, applied_at FROM _migrations ORDER BY name").fetchall()
    finally:
        db.close()


def test_migrations_idempotent_on_reopen(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    with SQLiteLedger(path) as ledger:
        assert ledger.schema == [fn.__name__ for fn in mig.MIGRATIONS]
        ledger.record(full_attempt())
    first = applied_rows(path)
    assert [name for name, _ in first] == [fn.__name__ for fn in mig.MIGRATIONS]
    for _ in range(2):
        with SQLiteLedger(path) as ledger:
            assert len(ledger.attempts()) == 1
    assert applied_rows(path) == first  # nothing re-applied, applied_at unchanged
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(mig.MIGRATIONS)
    assert db.execute("PRAGMA application_id").fetchone()[0] == mig.APPLICATION_ID
    db.close()


# The schema as hybridstack's first release wrote it (m001 only), frozen here on purpose:
# it must not follow later edits of migrations.py.
V1_SCHEMA = """
CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL);
INSERT INTO _migrations VALUES ('m001_create_attempts', '2025-05-01T00:00:00.000000+00:00');
CREATE TABLE attempts (
    id INTEGER PRIMARY KEY, call_id TEXT NOT NULL, run_id TEXT,
    attempt_index INTEGER NOT NULL DEFAULT 0, retry_index INTEGER NOT NULL DEFAULT 0,
    deployment TEXT NOT NULL, family TEXT NOT NULL, model TEXT NOT NULL DEFAULT '',
    protocol TEXT NOT NULL DEFAULT '', region TEXT NOT NULL DEFAULT '',
    jurisdiction TEXT NOT NULL DEFAULT '', quota_scope TEXT NOT NULL DEFAULT '',
    started_at TEXT NOT NULL, ttft_s REAL, latency_s REAL NOT NULL DEFAULT 0,
    input_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0,
    cached_input_tokens INTEGER NOT NULL DEFAULT 0, cost_usd REAL NOT NULL DEFAULT 0,
    outcome TEXT NOT NULL, error_type TEXT, error_message TEXT, status INTEGER,
    provider_code TEXT, request_id TEXT, retry_after_s REAL,
    breaker_state TEXT NOT NULL DEFAULT 'closed', hedged INTEGER NOT NULL DEFAULT 0,
    streamed INTEGER NOT NULL DEFAULT 0, skill TEXT, data_class TEXT,
    reasons TEXT NOT NULL DEFAULT '[]', redactions TEXT NOT NULL DEFAULT '{}'
);
INSERT INTO attempts (call_id, run_id, deployment, family, jurisdiction, started_at,
                      input_tokens, output_tokens, cost_usd, outcome, reasons)
VALUES ('old-call', 'old-run', 'qwen-plus@cn', 'qwen-plus', 'CN',
        '2025-05-01T10:00:00.000000+00:00', 12, 34, 0.5, 'ok', '["cheapest"]');
PRAGMA application_id = 1213809228;
PRAGMA user_version = 1;
"""


def test_version_1_file_is_migrated_forward(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    db = sqlite3.connect(path)
    db.executescript(V1_SCHEMA)
    db.close()
    assert mig.APPLICATION_ID == 1213809228

    with SQLiteLedger(path) as ledger:
        assert ledger.schema == [fn.__name__ for fn in mig.MIGRATIONS]
        (old,) = ledger.attempts()
        assert old == Attempt(
            call_id="old-call",
            run_id="old-run",
            deployment="qwen-plus@cn",
            family="qwen-plus",
            jurisdiction="CN",
            started_at=datetime(2025, 5, 1, 10, tzinfo=UTC),
            usage=Usage(input_tokens=12, output_tokens=34),
            cost_usd=0.5,
            reasons=("cheapest",),
        )
        ledger.record(full_attempt())
        assert ledger.totals()["all"].attempts == 2
    db = sqlite3.connect(path)
    indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    version = db.execute("PRAGMA user_version").fetchone()[0]
    db.close()
    assert "attempts_run_id" in indexes
    assert version == len(mig.MIGRATIONS)
    assert applied_rows(path)[0] == ("m001_create_attempts", "2025-05-01T00:00:00.000000+00:00")


def test_read_only_refuses_a_file_that_needs_migrating(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    db = sqlite3.connect(path)
    db.executescript(V1_SCHEMA)
    db.close()
    with pytest.raises(ConfigurationError, match="without read_only"):
        SQLiteLedger(path, read_only=True)


def test_migrate_applies_only_new_migrations_in_order(tmp_path: Path) -> None:
    calls: list[str] = []

    def m099_add_note(db: sqlite3.Connection) -> None:
        calls.append("m099")
        db.execute("ALTER TABLE attempts ADD COLUMN note TEXT NOT NULL DEFAULT ''")

    db = sqlite3.connect(tmp_path / "l.db", isolation_level=None)
    assert mig.migrate(db) == [fn.__name__ for fn in mig.MIGRATIONS]
    assert mig.migrate(db) == []
    assert mig.migrate(db, [*mig.MIGRATIONS, m099_add_note]) == ["m099_add_note"]
    assert mig.migrate(db, [*mig.MIGRATIONS, m099_add_note]) == []
    assert calls == ["m099"]
    assert db.execute("PRAGMA user_version").fetchone()[0] == 99
    db.close()


def test_failed_migration_rolls_back(tmp_path: Path) -> None:
    def m003_broken(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("boom")

    db = sqlite3.connect(tmp_path / "l.db", isolation_level=None)
    with pytest.raises(RuntimeError, match="boom"):
        mig.migrate(db, [*mig.MIGRATIONS, m003_broken])
    assert mig.applied(db) == []
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == set()
    db.close()


def test_migration_numbers_must_follow() -> None:
    def m001_again(db: sqlite3.Connection) -> None: ...

    def not_numbered(db: sqlite3.Connection) -> None: ...

    before = list(mig.MIGRATIONS)
    with pytest.raises(ValueError, match=f"m{len(before) + 1:03d}"):
        mig.migration(m001_again)
    with pytest.raises(ValueError, match="m001_create_attempts"):
        mig.migration(not_numbered)
    assert before == mig.MIGRATIONS


# --- files that are not (current) ledgers ----------------------------------------------


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    SQLiteLedger(path).close()
    db = sqlite3.connect(path)
    db.execute("INSERT INTO _migrations VALUES ('m099_from_the_future', 'x')")
    db.commit()
    db.close()
    with pytest.raises(
        ConfigurationError, match=r"newer hybridstack.*m099_from_the_future.*upgrade"
    ):
        SQLiteLedger(path)


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 20)
    with pytest.raises(
        ConfigurationError, match=r"not a readable hybridstack ledger.*move the file"
    ):
        SQLiteLedger(path)
    assert path.read_text().startswith("these are my notes")  # left untouched


def test_corrupt_ledger(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    with SQLiteLedger(path) as ledger:
        ledger.record(full_attempt())
    raw = bytearray(path.read_bytes())
    raw[100:3000] = b"\xab" * 2900  # the schema page, after the file header
    path.write_bytes(bytes(raw))
    with pytest.raises(ConfigurationError, match="corrupt"):
        SQLiteLedger(path)


def test_foreign_sqlite_database(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE logs (x)")
    db.commit()
    db.close()
    with pytest.raises(ConfigurationError, match=r"not a hybridstack ledger \(.*tables: logs"):
        SQLiteLedger(path)


def test_missing_file_without_create(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no ledger at"):
        SQLiteLedger(tmp_path / "absent.db", create=False)
    with pytest.raises(ConfigurationError, match="no ledger at"):
        SQLiteLedger(tmp_path / "absent.db", read_only=True)
    assert not (tmp_path / "absent.db").exists()
    with pytest.raises(ConfigurationError, match="directory"):
        SQLiteLedger(tmp_path)


def test_creates_parent_directories(tmp_path: Path) -> None:
    with SQLiteLedger(tmp_path / "a" / "b" / "ledger.db") as ledger:
        ledger.record(full_attempt())
    assert (tmp_path / "a" / "b" / "ledger.db").is_file()


# --- pricing ---------------------------------------------------------------------------


def test_price_usage() -> None:
    price = Price(
        input_per_mtok=0.4, output_per_mtok=1.2, cached_input_per_mtok=0.1, as_of=date(2025, 6, 1)
    )
    usage = Usage(input_tokens=1_000_000, output_tokens=500_000, cached_input_tokens=200_000)
    expected = 0.8 * 0.4 + 0.2 * 0.1 + 0.5 * 1.2
    assert price_usage(price, usage) == pytest.approx(expected)
    assert price_usage(price, usage) == price.cost(1_000_000, 500_000, 200_000)
    assert price_usage(price, usage, multiplier=0.5) == pytest.approx(expected / 2)
    assert price_usage(price, Usage()) == 0.0
    with pytest.raises(ValueError, match="negative"):
        price_usage(price, usage, multiplier=-1)


def test_time_window_multiplier_wraps_midnight() -> None:
    off_peak = time_window_multiplier(time(16, 30), time(0, 30), 0.25)
    day = datetime(2025, 6, 1, tzinfo=UTC)
    assert off_peak(day.replace(hour=17)) == 0.25
    assert off_peak(day.replace(hour=0, minute=15)) == 0.25
    assert off_peak(day.replace(hour=0, minute=30)) == 1.0
    assert off_peak(day.replace(hour=12)) == 1.0
    assert off_peak(datetime(2025, 6, 2, 1, 0, tzinfo=timezone(timedelta(hours=8)))) == 0.25
    price = Price(input_per_mtok=1.0, output_per_mtok=1.0, as_of=date(2025, 6, 1))
    usage = Usage(input_tokens=1_000_000)
    assert price_usage(price, usage, at=day.replace(hour=20), multiplier=off_peak) == 0.25
    assert price_usage(price, usage, at=day.replace(hour=9), multiplier=off_peak) == 1.0
    inside_day = time_window_multiplier(time(9), time(17), 2.0)
    assert inside_day(day.replace(hour=9)) == 2.0
    assert inside_day(day.replace(hour=17)) == 1.0
