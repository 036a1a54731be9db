"""Batch runs on the local engine: the task file, stable threads, resume, results, costs, CLI."""

from __future__ import annotations

import asyncio
import inspect
import json
from pathlib import Path
from typing import Any

import pytest

from hybridstack.batch import (
    Batch,
    BatchTask,
    LocalEngine,
    ResultsFile,
    TaskRecord,
    TaskWorker,
    load_tasks,
    parse_tasks,
    run_batch,
)
from hybridstack.cli import main
from hybridstack.errors import BatchFileError, ConfigurationError
from hybridstack.testing import offline_stack

FAST = "deepseek-flash@deepseek-cn"
MT = "qwen-mt-turbo@dashscope-sg"
EU = "llama-3.3-70b@scaleway-eu"


def _task(ident: str, text: str, model: str = FAST, skill: str = "code") -> dict[str, Any]:
    plan = [{"id": "s1", "instruction": text, "skill": skill, "model": model}]
    return {"id": ident, "task": text, "plan": plan}


def _write(path: Path, tasks: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(t) + "\n" for t in tasks), encoding="utf-8")
    return path


# --- the task file -------------------------------------------------------------------------


def test_every_bad_line_is_reported_with_its_number_and_the_fix(tmp_path: Path) -> None:
    lines = [
        '{"id": "a", "task": "fine"}',
        "",
        '{"id": "b", "tsk": "typo"}',
        "not json",
        '{"id": "c"}',
        '{"id": "d", "task": "   "}',
        '["a", "list"]',
        '{"id": "a", "task": "same id again"}',
        '{"id": true, "task": "boolean id"}',
        '{"id": "e", "task": "bad plan", "plan": [{"id": "s1"}]}',
        '{"id": "f", "task": "bad class", "data_class": 3}',
    ]
    path = tmp_path / "tasks.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(BatchFileError) as info:
        load_tasks(path)
    error = info.value
    by_line = dict(error.problems)
    assert sorted(by_line) == [3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert "unknown field 'tsk' (did you mean 'task'?)" in by_line[3]
    assert "not valid JSON" in by_line[4]
    assert "missing the 'task' field" in by_line[5]
    assert "non-empty string" in by_line[6]
    assert "got a JSON array" in by_line[7]
    assert "also on line 1" in by_line[8]
    assert "'id' must be a string or an integer" in by_line[9]
    assert by_line[10].startswith("'plan':")
    assert "data_class" in by_line[11]
    # The message names the file and line of each problem, for a person to fix.
    assert f"{path}:3: unknown field 'tsk'" in str(error)
    assert error.path == str(path)


def test_a_missing_or_empty_task_file_says_what_it_should_hold(tmp_path: Path) -> None:
    with pytest.raises(BatchFileError, match="is missing: give a JSONL file"):
        load_tasks(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(BatchFileError, match="holds no task"):
        load_tasks(tmp_path / "empty.jsonl")


def test_thread_ids_are_stable_from_the_id_or_the_content() -> None:
    named, numbered, anonymous, other_class = parse_tasks(
        [
            {"id": "t1", "task": "x"},
            {"id": 7, "task": "y"},
            {"task": "Translate this"},
            {"task": "Translate this", "data_class": "personal"},
        ]
    )
    assert named.thread_id() == "batch-t1"
    assert numbered.id == "7"
    assert numbered.thread_id("run-") == "run-7"
    again = BatchTask(task="Translate this")
    assert anonymous.thread_id() == again.thread_id()  # the same content, the same thread
    assert anonymous.thread_id() != other_class.thread_id()
    with pytest.raises(BatchFileError, match="the same task"):
        parse_tasks([{"task": "twice"}, {"task": "twice"}])


def test_a_torn_last_line_is_cut_and_appends_stay_whole(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    record = TaskRecord(id="t1", thread_id="batch-t1", status="completed")
    path.write_text(json.dumps(record.model_dump(mode="json")) + "\n" + '{"id": "t2", "thr')
    results = ResultsFile(path)
    assert list(results.read()) == ["t1"]  # the torn line is not a record
    with results.open() as out:
        out.write(TaskRecord(id="t2", thread_id="batch-t2", status="error", error="x"))
    assert list(results.read()) == ["t1", "t2"]
    assert path.read_text().count("\n") == 2
    path.write_text("garbage\n" + path.read_text())
    with pytest.raises(ConfigurationError, match=r"results.jsonl:1: not a batch result line"):
        results.read()


# --- running -------------------------------------------------------------------------------


async def test_a_batch_runs_every_task_and_a_rerun_sends_nothing(tmp_path: Path) -> None:
    tasks = _write(
        tmp_path / "tasks.jsonl",
        [
            _task("t1", "Write a slugify function"),
            _task("t2", "Translate 'thank you' into Thai", MT, "multilingual"),
            {**_task("t3", "Weigh two designs", EU, "reasoning"), "metadata": {"ticket": 9}},
        ],
    )
    async with offline_stack() as stack:
        db = tmp_path / "checkpoints.sqlite"
        report = await run_batch(tasks, stack=stack, checkpoints=db)
        sent = stack.emulator.total()

        assert report.output == str(tmp_path / "tasks.results.jsonl")
        assert (report.total, report.ran, report.skipped, report.completed) == (3, 3, 0, 3)
        assert report.ok
        by_id = {r.id: r for r in report.records}
        assert by_id["t1"].thread_id == "batch-t1"
        assert by_id["t3"].metadata == {"ticket": 9}
        assert by_id["t2"].subtasks[0].deployment == MT
        assert by_id["t3"].subtasks[0].jurisdiction == "EU"
        assert all(r.final_answer for r in report.records)
        # The cost table is the ledger's attempts per jurisdiction.
        ledger = stack.ledger.totals(by="jurisdiction")
        assert set(report.costs) == set(ledger) == {"CN", "SG", "EU"}
        for code, cost in report.costs.items():
            assert cost.calls == ledger[code].calls
            assert cost.input_tokens == ledger[code].input_tokens
            assert cost.cost_usd == pytest.approx(ledger[code].cost_usd)
        assert report.cost_usd > 0
        assert sent == 3

        again = await Batch(tasks, stack=stack, checkpoints=db).run()
        assert (again.ran, again.skipped, again.completed) == (0, 3, 3)
        assert again.costs == report.costs  # from the results file: the whole batch
        assert stack.emulator.total() == sent  # nothing sent again


async def test_concurrency_bounds_the_tasks_in_flight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_flight = 0
    peak = 0
    original = TaskWorker.run

    async def counting(self: TaskWorker, task: BatchTask) -> TaskRecord:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            return await original(self, task)
        finally:
            in_flight -= 1

    monkeypatch.setattr(TaskWorker, "run", counting)
    tasks = [_task(f"t{i}", f"Write function number {i}") for i in range(6)]
    async with offline_stack(default_faults={"latency_ms": 30}) as stack:
        report = await Batch(
            tasks,
            output=tmp_path / "out.jsonl",
            engine=LocalEngine(concurrency=2, stack=stack),
            checkpoints=tmp_path / "cp.sqlite",
        ).run()
    assert report.completed == 6
    assert peak == 2


async def test_a_thread_holding_another_task_is_refused_not_reused(tmp_path: Path) -> None:
    db = tmp_path / "checkpoints.sqlite"
    out = tmp_path / "out.jsonl"
    async with offline_stack() as stack:
        await Batch(
            [_task("t1", "Write a slugify function")], output=out, stack=stack, checkpoints=db
        ).run()
        out.unlink()  # a new batch, same ids, same checkpoint store
        sent = stack.emulator.total()
        report = await Batch(
            [_task("t1", "Something else entirely")], output=out, stack=stack, checkpoints=db
        ).run()
        assert stack.emulator.total() == sent
        (record,) = report.records
        assert record.status == "error"
        assert "holds another task" in (record.error or "")
        assert "own id" in (record.error or "")
        assert not report.ok
        # Another prefix gives the new batch its own threads.
        fresh = await Batch(
            [_task("t1", "Something else entirely")],
            output=out,
            stack=stack,
            checkpoints=db,
            thread_prefix="b2-",
        ).run()
        assert fresh.ok
        assert fresh.records[0].thread_id == "b2-t1"


async def test_a_task_that_cannot_run_is_an_error_record_and_runs_again_next_time(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out.jsonl"
    tasks = [
        _task("ok", "Write a slugify function"),
        {"id": "bad", "task": "Say hi", "data_class": "no-such-class"},
    ]
    async with offline_stack() as stack:
        report = await Batch(
            tasks, output=out, stack=stack, checkpoints=tmp_path / "cp.sqlite"
        ).run()
        records = {r.id: r for r in report.records}
        assert records["ok"].status == "completed"
        assert records["bad"].status == "error"
        assert "no-such-class" in (records["bad"].error or "")
        again = await Batch(
            tasks, output=out, stack=stack, checkpoints=tmp_path / "cp.sqlite"
        ).run()
        assert (again.skipped, again.ran) == (1, 1)  # only the unfinished one again


async def test_an_unexpected_exception_in_one_task_does_not_stop_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hybridstack.graph import Agent

    original = Agent.run

    async def flaky(self: Agent, task: str, **kwargs: Any) -> Any:
        if "explode" in task:
            raise RuntimeError("boom")
        return await original(self, task, **kwargs)

    monkeypatch.setattr(Agent, "run", flaky)
    tasks = [_task("a", "Write a slugify function"), _task("b", "explode here")]
    async with offline_stack() as stack:
        report = await Batch(
            tasks, output=tmp_path / "o.jsonl", stack=stack, checkpoints=tmp_path / "cp.sqlite"
        ).run()
    records = {r.id: r for r in report.records}
    assert records["a"].status == "completed"
    assert records["b"].status == "error"
    assert records["b"].error == "unexpected RuntimeError: boom (a bug: please report it)"


async def test_settings_pass_through_and_unknown_options_are_clear(tmp_path: Path) -> None:
    tasks = [_task("t1", "Write a slugify function")]
    with pytest.raises(ConfigurationError, match="Stack does not take no_such_option="):
        await run_batch(
            tasks,
            output=tmp_path / "o.jsonl",
            offline=True,
            stack_options={"no_such_option": 1},
            ledger="memory",
            checkpoints=tmp_path / "cp.sqlite",
        )
    with pytest.raises(ConfigurationError, match=r"mongodb:// URLs are not supported"):
        await run_batch(
            tasks,
            output=tmp_path / "o.jsonl",
            offline=True,
            ledger="memory",
            checkpoints="mongodb://127.0.0.1/test",
        )
    with pytest.raises(ConfigurationError, match="a Stack object cannot be sent"):
        Batch(tasks, output=tmp_path / "o.jsonl", engine="ray", stack=object())
    with pytest.raises(ConfigurationError, match="give output="):
        Batch(tasks)
    with pytest.raises(ConfigurationError, match="unknown batch engine 'spark'"):
        Batch(tasks, output=tmp_path / "o.jsonl", engine="spark")
    with pytest.raises(ConfigurationError, match="expected 'module:function'"):
        await run_batch(tasks, output=tmp_path / "o.jsonl", stack="no_colon")


def test_the_blocking_twin_refuses_inside_an_event_loop(tmp_path: Path) -> None:
    batch = Batch([_task("t1", "x")], output=tmp_path / "o.jsonl", offline=True)

    async def inside() -> None:
        with pytest.raises(RuntimeError, match="await"):
            batch.run_sync()

    asyncio.run(inside())


# --- the command line ------------------------------------------------------------------------


def test_cli_batch_offline_runs_resumes_and_prints_the_cost_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tasks = _write(
        tmp_path / "tasks.jsonl",
        [
            _task("t1", "Write a slugify function"),
            _task("t2", "Translate 'thank you' into Thai", MT, "multilingual"),
        ],
    )
    common = [
        "batch",
        str(tasks),
        "--offline",
        "--no-progress",
        "--checkpoints",
        str(tmp_path / "cp.sqlite"),
        "--ledger",
        str(tmp_path / "ledger.sqlite"),
    ]
    assert main(common) == 0
    out = capsys.readouterr().out
    assert "Cost by jurisdiction" in out
    for column in ("jurisdiction", "calls", "tokens in/out", "cost USD", "CN", "SG", "total"):
        assert column in out
    assert "2/2 task(s) completed: 2 run now" in out
    assert (tmp_path / "tasks.results.jsonl").exists()

    assert main([*common, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["total"], report["skipped"], report["ran"]) == (2, 2, 0)
    assert set(report["costs"]) == {"CN", "SG"}
    assert report["offline"] is True


def test_cli_batch_bad_file_exits_2_naming_the_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "task": "ok"}\n{"id": "b", "prompt": "x"}\n')
    assert main(["batch", str(bad), "--offline", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2: unknown field 'prompt'" in err
    assert "Traceback" not in err
    assert main(["batch", str(tmp_path / "t.jsonl"), "--concurrency", "0"]) == 2
    assert "--concurrency must be at least 1" in capsys.readouterr().err


def test_cli_batch_health_store_is_handed_to_the_stack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hybridstack.stack import Stack

    tasks = _write(tmp_path / "tasks.jsonl", [_task("t1", "Write a slugify function")])
    code = main(
        [
            "batch",
            str(tasks),
            "--offline",
            "--no-progress",
            "--ledger",
            "memory",
            "--checkpoints",
            str(tmp_path / "cp.sqlite"),
            "--health-store",
            "redis://127.0.0.1:6379/15",
        ]
    )
    if "health_store" in inspect.signature(Stack).parameters:
        assert code == 0  # a hybridstack with shared health state takes it
    else:
        assert code == 2
        assert "Stack does not take health_store=" in capsys.readouterr().err
