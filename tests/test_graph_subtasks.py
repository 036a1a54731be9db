"""Subtask and TaskPlan: the DAG model, its validation messages, waves and Mermaid."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from hybridstack.errors import HybridStackError, InvalidRequestError
from hybridstack.graph import GraphError, PlanValidationError, Subtask, TaskPlan
from hybridstack.graph.subtasks import find_cycle


def _plan(*specs: tuple[str, tuple[str, ...]]) -> list[dict[str, object]]:
    return [{"id": i, "instruction": f"do {i}", "depends_on": list(d)} for i, d in specs]


def test_valid_plan_orders_waves_by_dependency_depth() -> None:
    plan = TaskPlan.parse(_plan(("a", ()), ("b", ()), ("c", ("a",)), ("d", ("c", "b"))))
    assert plan.ids == ["a", "b", "c", "d"]
    assert plan.waves() == [["a", "b"], ["c"], ["d"]]
    assert plan.dependants("a") == {"c", "d"}
    assert plan["c"].depends_on == ("a",)


def test_unknown_dependency_names_the_subtask_and_the_missing_ids() -> None:
    with pytest.raises(PlanValidationError) as info:
        TaskPlan.parse(_plan(("a", ()), ("b", ("a", "zz", "yy"))))
    message = str(info.value)
    assert "'b'" in message
    assert "'zz'" in message
    assert "'yy'" in message
    assert info.value.unknown == {"b": ("zz", "yy")}
    # One error type for callers: a graph error, a request error and a ValueError.
    assert isinstance(info.value, GraphError | InvalidRequestError | HybridStackError | ValueError)


def test_cycle_is_reported_as_a_path() -> None:
    with pytest.raises(PlanValidationError) as info:
        TaskPlan.parse(_plan(("a", ("c",)), ("b", ("a",)), ("c", ("b",)), ("d", ())))
    assert "dependency cycle" in str(info.value)
    cycle = info.value.cycle
    assert cycle[0] == cycle[-1]
    assert set(cycle) == {"a", "b", "c"}
    assert " -> " in str(info.value)


def test_self_dependency_and_duplicate_ids() -> None:
    with pytest.raises(PlanValidationError, match="'a' depends on itself"):
        TaskPlan.parse(_plan(("a", ("a",))))
    with pytest.raises(PlanValidationError, match="duplicate subtask ids: a"):
        TaskPlan.parse(_plan(("a", ()), ("a", ())))


def test_empty_plan_and_bad_subtask_fields() -> None:
    with pytest.raises(PlanValidationError, match="at least one subtask"):
        TaskPlan.parse([])
    with pytest.raises(PlanValidationError, match=r"subtask 'x' is invalid.*instruction"):
        TaskPlan.parse([{"id": "x", "instruction": "   "}])
    with pytest.raises(PlanValidationError, match="list of subtasks"):
        TaskPlan.parse(42)  # type: ignore[arg-type]


def test_direct_construction_validates_too() -> None:
    a = Subtask(id="a", instruction="x", depends_on=("b",))
    with pytest.raises(ValidationError, match="unknown id"):
        TaskPlan(subtasks=(a,))


def test_parse_accepts_models_dicts_and_mappings() -> None:
    subtask = Subtask(id="s1", instruction="Write code", skill="code", depends_on="s0")  # type: ignore[arg-type]
    assert subtask.depends_on == ("s0",)  # a lone string is one id, not characters
    plan = TaskPlan.parse({"subtasks": [{"id": "s0", "instruction": "Plan"}, subtask]})
    assert plan.ids == ["s0", "s1"]
    assert TaskPlan.parse(plan) is plan


def test_data_class_is_inherited_unless_set() -> None:
    plan = TaskPlan.parse(
        [
            {"id": "a", "instruction": "x"},
            {"id": "b", "instruction": "y", "data_class": "regulated"},
        ]
    ).with_data_class("internal")
    assert plan["a"].data_class == "internal"
    assert plan["b"].data_class == "regulated"


def test_mermaid_draws_edges_and_statuses() -> None:
    plan = TaskPlan.parse(_plan(("a", ()), ("b.1", ("a",))))
    text = plan.to_mermaid({"a": "done", "b.1": "failed"})
    assert text.startswith("flowchart TD")
    assert "t_a --> t_b_1" in text
    assert "class t_a done" in text
    assert "class t_b_1 failed" in text


def test_llm_schema_leaves_out_data_classes() -> None:
    schema = TaskPlan.llm_schema()
    draft = schema["$defs"]["_SubtaskDraft"]
    assert set(draft["required"]) == {"id", "instruction", "skill", "depends_on"}
    assert "data_class" not in draft["properties"]
    assert draft["additionalProperties"] is False


def test_find_cycle_on_acyclic_graph_is_empty() -> None:
    assert find_cycle({"a": ["b"], "b": [], "c": ["a", "b"]}) == []
