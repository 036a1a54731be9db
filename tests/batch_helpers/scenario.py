"""The kill-mid-task scenario shared by the batch kill tests (local and Ray).

Four tasks with pinned plans, each subtask on its own emulated deployment so the
emulator's per-deployment counters say exactly which subtask was sent: t1, t2 and t4 are
one fast subtask each; t3 has a fast subtask and one on ``SLOW`` (made slow by the test,
so a kill lands while it is in flight), then a synthesis on ``SYNTH``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

CODE = "deepseek-flash@deepseek-cn"
MT = "qwen-mt-turbo@dashscope-sg"
FOURTH = "qwen-plus@dashscope-sg"
T3_FAST = "qwen3-coder-plus@dashscope-sg"
SLOW = "llama-3.3-70b@scaleway-eu"
SYNTH = "gpt-4o-mini@openai-eu"
ALL = [CODE, MT, FOURTH, T3_FAST, SLOW, SYNTH]
SKILL_TABLE = {
    "general": ["gpt-4o-mini"],
    "code": ["deepseek-flash"],
    "multilingual": ["qwen-mt-turbo"],
    "reasoning": ["llama-3.3-70b"],
}
#: Requests per deployment when the kill lands: t1, t2, t4 and t3's s1 answered, s2 in flight.
AT_KILL = {CODE: 1, MT: 1, FOURTH: 1, T3_FAST: 1, SLOW: 1, SYNTH: 0}
#: What resuming may send: t3's unfinished subtask and its synthesis, nothing else.
RESENT = {CODE: 0, MT: 0, FOURTH: 0, T3_FAST: 0, SLOW: 1, SYNTH: 1}


def _one(ident: str, instruction: str, skill: str, model: str) -> dict[str, Any]:
    return {"id": ident, "instruction": instruction, "skill": skill, "model": model}


TASKS = [
    {"id": "t1", "task": "Write a slugify function", "plan": [_one("s1", "Write", "code", CODE)]},
    {"id": "t2", "task": "Say thanks in Thai", "plan": [_one("s1", "Say", "multilingual", MT)]},
    {
        "id": "t3",
        "task": "Write a date parser and weigh two designs for it",
        "plan": [
            _one("s1", "Write the parser", "code", T3_FAST),
            _one("s2", "Weigh the trade-offs of two designs", "reasoning", SLOW),
        ],
    },
    {"id": "t4", "task": "Summarise the notes", "plan": [_one("s1", "Sum", "general", FOURTH)]},
]


def saved_results(store: str | Path, thread_id: str) -> int:
    """Worker results a SQLite checkpoint holds for a thread (pending 'results' writes)."""
    db = Path(store)
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(db, timeout=1)
        try:
            row = conn.execute(
                "SELECT count(*) FROM writes WHERE thread_id = ? AND channel = 'results'",
                (thread_id,),
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.OperationalError:  # tables not made yet, or briefly locked
        return 0
    return int(row[0])
