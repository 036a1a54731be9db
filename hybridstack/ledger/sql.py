"""The ledger's SQL, shared by every SQL backend: columns, row codec and queries.

Nothing here talks to a database. The statements are portable SQL (no ``TOTAL()``, no
boolean sums, no SQLite pragmas), and every placeholder is written by the caller's
``param`` (``"?"`` for ``sqlite3``, ``"%s"`` for a DB-API driver such as psycopg), so a
second backend can run the same queries over the same numbered migrations and hand
back the same :class:`~hybridstack.ledger.base.Totals` and
:class:`~hybridstack.ledger.base.RunSummary`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from hybridstack.ledger.base import GroupBy, RunSummary, Totals, check_group_by, run_summaries
from hybridstack.types import Attempt, Usage

#: The ``attempts`` columns the ledger writes and reads, in :func:`to_row` order.
COLUMNS: tuple[str, ...] = (
    "call_id",
    "run_id",
    "attempt_index",
    "retry_index",
    "deployment",
    "family",
    "model",
    "protocol",
    "region",
    "jurisdiction",
    "quota_scope",
    "started_at",
    "ttft_s",
    "latency_s",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cost_usd",
    "outcome",
    "error_type",
    "error_message",
    "status",
    "provider_code",
    "request_id",
    "retry_after_s",
    "breaker_state",
    "hedged",
    "streamed",
    "skill",
    "data_class",
    "reasons",
    "redactions",
    "usage_estimated",
)

COLUMN_LIST = ", ".join(COLUMNS)

Row = tuple[Any, ...]


def insert_sql(param: str = "?") -> str:
    return f"INSERT INTO attempts ({COLUMN_LIST}) VALUES ({', '.join([param] * len(COLUMNS))})"


def where(*, call_id: str | None, run_id: str | None, param: str = "?") -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if call_id is not None:
        clauses.append(f"call_id = {param}")
        params.append(call_id)
    if run_id is not None:
        clauses.append(f"run_id = {param}")
        params.append(run_id)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def attempts_query(
    *, call_id: str | None, run_id: str | None, limit: int | None, param: str = "?"
) -> tuple[str, list[Any]]:
    """``SELECT`` of the matching attempts in recording order (``limit``: the newest)."""
    clause, params = where(call_id=call_id, run_id=run_id, param=param)
    if limit is None:
        return f"SELECT {COLUMN_LIST} FROM attempts{clause} ORDER BY id", params
    params.append(limit)
    return (
        f"SELECT {COLUMN_LIST} FROM (SELECT id, {COLUMN_LIST} FROM attempts{clause} "
        f"ORDER BY id DESC LIMIT {param}) AS newest ORDER BY id"
    ), params


_SUMS = (
    "COUNT(*), "
    "SUM(CASE WHEN outcome = 'ok' THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN outcome = 'cancelled' THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN outcome = 'skipped' THEN 1 ELSE 0 END), "
    "SUM(input_tokens), SUM(output_tokens), SUM(cached_input_tokens), "
    "SUM(cost_usd), SUM(latency_s), COUNT(DISTINCT call_id)"
)


def totals_query(
    *, call_id: str | None, run_id: str | None, by: GroupBy | None, param: str = "?"
) -> tuple[str, list[Any]]:
    check_group_by(by)
    clause, params = where(call_id=call_id, run_id=run_id, param=param)
    if by is None:
        return f"SELECT 'all', {_SUMS} FROM attempts{clause}", params
    # ``by`` is one of GROUP_BY (checked above): safe to name as a column.
    return f"SELECT {by}, {_SUMS} FROM attempts{clause} GROUP BY {by} ORDER BY {by}", params


def totals_from_rows(rows: Iterable[Row]) -> dict[str, Totals]:
    result: dict[str, Totals] = {}
    for key, count, ok, cancelled, skipped, tin, tout, tcached, cost, latency, calls in rows:
        # SUM over no rows is NULL in SQL: an empty ledger totals to zeros. Postgres
        # sums BIGINT columns as NUMERIC (a Decimal): back to int.
        ok, cancelled, skipped = int(ok or 0), int(cancelled or 0), int(skipped or 0)
        result[key] = Totals(
            attempts=count,
            ok=ok,
            failed=count - ok - cancelled - skipped,
            cancelled=cancelled,
            skipped=skipped,
            input_tokens=int(tin or 0),
            output_tokens=int(tout or 0),
            cached_input_tokens=int(tcached or 0),
            cost_usd=float(cost or 0.0),
            latency_s=float(latency or 0.0),
            calls=calls,
        )
    return dict(sorted(result.items()))


RUNS_QUERY = (
    "SELECT run_id, MIN(started_at), COUNT(*), COUNT(DISTINCT call_id), SUM(cost_usd), "
    "COUNT(DISTINCT CASE WHEN outcome = 'ok' THEN call_id END) "
    "FROM attempts WHERE run_id IS NOT NULL GROUP BY run_id"
)


def runs_from_rows(rows: Iterable[Row]) -> list[RunSummary]:
    return run_summaries(
        (run_id, parse_time(started), count, calls, float(cost or 0.0), ok_calls)
        for run_id, started, count, calls, cost, ok_calls in rows
    )


# --- rows ----------------------------------------------------------------------------


def format_time(moment: datetime) -> str:
    # Fixed width and always UTC, so the text sorts in time order (MIN() in runs()).
    # Ledger.record has already made it UTC; convert only what came another way.
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="microseconds")


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@functools.lru_cache(maxsize=512)
def _reasons_json(reasons: tuple[str, ...]) -> str:
    # Retries and hedges of one call repeat the plan's reasons: encode them once.
    return json.dumps(list(reasons), ensure_ascii=False)


def to_row(a: Attempt) -> Row:
    usage = a.usage
    return (
        a.call_id,
        a.run_id,
        a.attempt_index,
        a.retry_index,
        a.deployment,
        a.family,
        a.model,
        a.protocol,
        a.region,
        a.jurisdiction,
        a.quota_scope,
        format_time(a.started_at),
        a.ttft_s,
        a.latency_s,
        usage.input_tokens,
        usage.output_tokens,
        usage.cached_input_tokens,
        a.cost_usd,
        a.outcome,
        a.error_type,
        a.error_message,
        a.status,
        a.provider_code,
        a.request_id,
        a.retry_after_s,
        a.breaker_state,
        int(a.hedged),
        int(a.streamed),
        a.skill,
        a.data_class,
        _reasons_json(a.reasons) if a.reasons else "[]",
        json.dumps(a.redactions, ensure_ascii=False, sort_keys=True) if a.redactions else "{}",
        int(a.usage_estimated),
    )


def from_row(row: Row) -> Attempt:
    (
        call_id,
        run_id,
        attempt_index,
        retry_index,
        deployment,
        family,
        model,
        protocol,
        region,
        jurisdiction,
        quota_scope,
        started_at,
        ttft_s,
        latency_s,
        input_tokens,
        output_tokens,
        cached_input_tokens,
        cost_usd,
        outcome,
        error_type,
        error_message,
        status,
        provider_code,
        request_id,
        retry_after_s,
        breaker_state,
        hedged,
        streamed,
        skill,
        data_class,
        reasons,
        redactions,
        usage_estimated,
    ) = row
    return Attempt(
        call_id=call_id,
        run_id=run_id,
        attempt_index=attempt_index,
        retry_index=retry_index,
        deployment=deployment,
        family=family,
        model=model,
        protocol=protocol,
        region=region,
        jurisdiction=jurisdiction,
        quota_scope=quota_scope,
        started_at=parse_time(started_at),
        ttft_s=ttft_s,
        latency_s=latency_s,
        usage=Usage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_input_tokens=cached_input_tokens,
        ),
        usage_estimated=bool(usage_estimated),
        cost_usd=cost_usd,
        outcome=outcome,
        error_type=error_type,
        error_message=error_message,
        status=status,
        provider_code=provider_code,
        request_id=request_id,
        retry_after_s=retry_after_s,
        breaker_state=breaker_state,
        hedged=bool(hedged),
        streamed=bool(streamed),
        skill=skill,
        data_class=data_class,
        reasons=tuple(json.loads(reasons)),
        redactions=json.loads(redactions),
    )
