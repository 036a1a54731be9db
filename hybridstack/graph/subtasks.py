"""Subtasks and the plan that orders them: a validated DAG.

A :class:`TaskPlan` is what the planner produces and what the dispatcher walks: a list
of :class:`Subtask` values whose ``depends_on`` edges must name known subtasks and must
not form a cycle. Validation happens when the plan is built, so a bad plan (from a user,
an approver's edit or a model) fails before anything is sent anywhere, with a message
naming the offending ids.

The graph layer's exceptions (:class:`GraphError` and its subclasses) live in
:mod:`hybridstack.errors` with every other one; they are re-exported here. Nothing here
imports LangGraph.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from hybridstack.errors import (
    CheckpointError,
    CheckpointStoreError,
    CheckpointUnavailableError,
    EmptyTaskError,
    GraphError,
    LeaseLostError,
    PlanRejectedError,
    PlanValidationError,
    ThreadBusyError,
    UnknownThreadError,
    UnroutableSubtaskError,
)

__all__ = [
    "CheckpointError",
    "CheckpointStoreError",
    "CheckpointUnavailableError",
    "EmptyTaskError",
    "GraphError",
    "LeaseLostError",
    "PlanInput",
    "PlanRejectedError",
    "PlanValidationError",
    "Subtask",
    "TaskPlan",
    "ThreadBusyError",
    "UnknownThreadError",
    "UnroutableSubtaskError",
    "find_cycle",
]

_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
_SKILL_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"


# --- subtasks -------------------------------------------------------------------------


class Subtask(BaseModel):
    """One unit of work: what to do, which skill it needs and how sensitive its data is."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=_ID_PATTERN, description="Short unique id, e.g. 's1'.")
    instruction: str = Field(min_length=1, description="What this subtask must produce.")
    skill: str = Field(
        default="general",
        pattern=_SKILL_PATTERN,
        description="code, multilingual, reasoning or general (extensible).",
    )
    #: ``None`` inherits the run's data class (see :meth:`TaskPlan.with_data_class`).
    data_class: str | None = Field(default=None, description="Sensitivity; omit to inherit.")
    depends_on: tuple[str, ...] = Field(
        default=(), description="Ids of subtasks whose outputs this one needs."
    )
    #: JSON schema the output must match; the worker asks for structured output.
    output_schema: dict[str, Any] | None = None
    #: Pin the subtask to a family or deployment (``qwen-mt-turbo``, ``family@site``)
    #: instead of the skill table; sovereignty rules still apply.
    model: str | None = None

    @field_validator("instruction")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("instruction must not be blank")
        return value

    @field_validator("depends_on", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        # "depends_on": "s1" is a common slip; accept it rather than split the string.
        return (value,) if isinstance(value, str) else value


class TaskPlan(BaseModel):
    """An ordered list of subtasks forming a DAG (validated on construction)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    subtasks: tuple[Subtask, ...]

    @model_validator(mode="after")
    def _check_dag(self) -> TaskPlan:
        problems = dag_problems(self.subtasks)
        if problems is not None:
            # A ValueError so pydantic reports it inside ValidationError like any field
            # error; TaskPlan.parse turns that into PlanValidationError.
            raise ValueError(problems.args[0])
        return self

    # --- construction -----------------------------------------------------------------

    @classmethod
    def parse(
        cls, value: TaskPlan | Iterable[Subtask | Mapping[str, Any]] | Mapping[str, Any]
    ) -> TaskPlan:
        """A plan from the shapes people pass, or :class:`PlanValidationError`.

        Accepts a ``TaskPlan``, a list of ``Subtask``/dicts, or ``{"subtasks": [...]}``.
        """
        if isinstance(value, TaskPlan):
            return value
        raw = value.get("subtasks", value) if isinstance(value, Mapping) else value
        try:
            items = list(raw)
        except TypeError:
            raise PlanValidationError(
                f"a plan is a list of subtasks, not {type(value).__name__}"
            ) from None
        subtasks: list[Subtask] = []
        for index, item in enumerate(items):
            try:
                subtasks.append(item if isinstance(item, Subtask) else Subtask.model_validate(item))
            except ValidationError as error:
                ident = item.get("id", index) if isinstance(item, Mapping) else index
                raise PlanValidationError(
                    f"subtask {ident!r} is invalid: {_first_errors(error)}",
                    problems=[_first_errors(error)],
                ) from None
        problem = dag_problems(subtasks)
        if problem is not None:
            raise problem
        return cls.model_construct(subtasks=tuple(subtasks))

    @classmethod
    def single(cls, instruction: str, *, skill: str = "general") -> TaskPlan:
        """A one-subtask plan (the whole task as one unit of work)."""
        return cls(subtasks=(Subtask(id="s1", instruction=instruction, skill=skill),))

    def with_data_class(self, data_class: str) -> TaskPlan:
        """Every subtask without its own data class inherits ``data_class``."""
        return TaskPlan.model_construct(
            subtasks=tuple(
                s if s.data_class is not None else s.model_copy(update={"data_class": data_class})
                for s in self.subtasks
            )
        )

    # --- reading ----------------------------------------------------------------------

    def __iter__(self) -> Iterator[Subtask]:  # type: ignore[override]
        return iter(self.subtasks)

    def __len__(self) -> int:
        return len(self.subtasks)

    def __getitem__(self, subtask_id: str) -> Subtask:
        for subtask in self.subtasks:
            if subtask.id == subtask_id:
                return subtask
        raise KeyError(f"no subtask {subtask_id!r} in the plan (ids: {', '.join(self.ids)})")

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.subtasks]

    def dependants(self, subtask_id: str) -> set[str]:
        """Every subtask that needs ``subtask_id``, directly or through others."""
        found: set[str] = set()
        frontier = [subtask_id]
        while frontier:
            current = frontier.pop()
            for s in self.subtasks:
                if current in s.depends_on and s.id not in found:
                    found.add(s.id)
                    frontier.append(s.id)
        return found

    def waves(self) -> list[list[str]]:
        """The subtasks grouped by dependency depth: each wave only needs earlier ones."""
        depth: dict[str, int] = {}
        by_id = {s.id: s for s in self.subtasks}

        def level(subtask_id: str) -> int:
            if subtask_id not in depth:
                deps = by_id[subtask_id].depends_on
                depth[subtask_id] = 1 + max((level(d) for d in deps), default=-1)
            return depth[subtask_id]

        out: list[list[str]] = []
        for s in self.subtasks:
            d = level(s.id)
            while len(out) <= d:
                out.append([])
            out[d].append(s.id)
        return out

    def to_mermaid(self, statuses: Mapping[str, str] | None = None) -> str:
        """The DAG as a Mermaid flowchart, nodes coloured by status when given."""
        lines = ["flowchart TD"]
        statuses = statuses or {}
        for s in self.subtasks:
            label = _mermaid_label(f"{s.id} · {s.skill}<br/>{_shorten(s.instruction, 48)}")
            lines.append(f'    {_mermaid_id(s.id)}["{label}"]')
        for s in self.subtasks:
            for dep in s.depends_on:
                lines.append(f"    {_mermaid_id(dep)} --> {_mermaid_id(s.id)}")
        styles = {
            "done": "fill:#d4f7d4,stroke:#2b8a3e",
            "failed": "fill:#ffd8d8,stroke:#c92a2a",
            "skipped": "fill:#eeeeee,stroke:#868e96,stroke-dasharray: 4 2",
            "pending": "fill:#fff3bf,stroke:#e67700",
        }
        used = sorted({statuses[s.id] for s in self.subtasks if s.id in statuses} & set(styles))
        for status in used:
            lines.append(f"    classDef {status} {styles[status]}")
            members = ",".join(
                _mermaid_id(s.id) for s in self.subtasks if statuses.get(s.id) == status
            )
            lines.append(f"    class {members} {status}")
        return "\n".join(lines)

    @classmethod
    def llm_schema(cls) -> dict[str, Any]:
        """The JSON schema a model is asked to fill: ids, instructions, skills, edges.

        Data classes are left out on purpose: a model must not be able to lower the
        sensitivity of the data it plans over, so every subtask inherits the run's.
        """
        return _PlanDraft.model_json_schema()


class _SubtaskDraft(BaseModel):
    """What the LLM planner fills for one subtask (no data class: see llm_schema)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Short unique id: s1, s2, ...")
    instruction: str = Field(description="A self-contained instruction for one specialist model.")
    skill: str = Field(description="One of: code, multilingual, reasoning, general.")
    depends_on: list[str] = Field(
        description="Ids of earlier subtasks whose output this one needs; [] if none."
    )


class _PlanDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subtasks: list[_SubtaskDraft] = Field(
        description="Between 1 and 8 subtasks; independent ones run in parallel."
    )


# --- validation -----------------------------------------------------------------------


def find_cycle(edges: Mapping[str, Sequence[str]]) -> list[str]:
    """One cycle in ``edges`` (node -> nodes it depends on) as ids, first repeated; or []."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(edges, white)
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        colour[node] = grey
        stack.append(node)
        for nxt in edges.get(node, ()):
            if nxt not in colour:
                continue
            if colour[nxt] == grey:
                return [*stack[stack.index(nxt) :], nxt]
            if colour[nxt] == white:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        colour[node] = black
        return []

    for node in edges:
        if colour[node] == white:
            found = visit(node)
            if found:
                return found
    return []


def dag_problems(subtasks: Sequence[Subtask]) -> PlanValidationError | None:
    """The plan's defects as one error (empty, duplicate ids, unknown deps, cycle), or None."""
    if not subtasks:
        return PlanValidationError("a plan needs at least one subtask", problems=["empty plan"])
    problems: list[str] = []
    counts: dict[str, int] = {}
    for subtask in subtasks:
        counts[subtask.id] = counts.get(subtask.id, 0) + 1
    duplicates = sorted(i for i, n in counts.items() if n > 1)
    if duplicates:
        problems.append(f"duplicate subtask ids: {', '.join(duplicates)}")
    ids = {s.id for s in subtasks}
    unknown = {s.id: [d for d in s.depends_on if d not in ids] for s in subtasks}
    unknown = {k: v for k, v in unknown.items() if v}
    for sid, deps in unknown.items():
        problems.append(
            f"subtask {sid!r} depends on unknown id(s) {', '.join(repr(d) for d in deps)} "
            f"(known ids: {', '.join(sorted(ids))})"
        )
    cycle = find_cycle({s.id: list(s.depends_on) for s in subtasks})
    if cycle:
        if len(cycle) == 2:
            problems.append(f"subtask {cycle[0]!r} depends on itself")
        else:
            problems.append(f"dependency cycle: {' -> '.join(cycle)}")
    if not problems:
        return None
    return PlanValidationError(
        "invalid plan: " + "; ".join(problems),
        problems=problems,
        unknown=unknown,
        cycle=cycle,
        duplicates=duplicates,
    )


def _first_errors(error: ValidationError, limit: int = 3) -> str:
    parts = []
    for item in error.errors()[:limit]:
        where = ".".join(str(p) for p in item.get("loc", ())) or "value"
        parts.append(f"{where}: {item.get('msg')}")
    return "; ".join(parts)


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _mermaid_id(subtask_id: str) -> str:
    # Mermaid node ids may not contain '.', ':' or '-' in every renderer; keep them plain.
    return "t_" + "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in subtask_id)


def _mermaid_label(text: str) -> str:
    return text.replace('"', "#quot;").replace("[", "(").replace("]", ")")


#: A plan as callers give one: a TaskPlan, or subtasks (models or dicts) in order.
PlanInput = TaskPlan | Sequence[Subtask | Mapping[str, Any]]


def call_route_key(task: str, subtask_id: str | None, stage: str) -> str:
    """The stable identity of one agent call, for the stack's ``route_key=``.

    The task text, the subtask and the stage (``work``, ``plan:0``, ``synthesize`` …): the
    same seeded run replays the same routes whatever the concurrency, and the route
    preflight shows for a subtask is the one its worker draws.
    """
    import hashlib

    digest = hashlib.blake2b(task.encode(), digest_size=8).hexdigest()
    return f"task-{digest}/{subtask_id or '-'}/{stage}"
