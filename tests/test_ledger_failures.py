"""Ledger failures a user meets: nothing recorded is lost without a typed error or a count.

Every failure here is real, none is mocked: a database that hits SQLite's own size limit
(``PRAGMA max_page_count``: the same ``SQLITE_FULL`` a full disk gives), files deleted,
moved or replaced under an open ledger, an immutable file or directory (``chattr +i``
when the tests run as root, ``chmod`` otherwise), a read-only filesystem (a tmpfs in a
user namespace, skipped where unshare is unavailable), a second writer holding the lock,
and two processes writing one file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_ledger import full_attempt

from hybridstack.errors import ConfigurationError, HybridStackError, LedgerError
from hybridstack.ledger import SQLiteLedger
from hybridstack.types import Attempt

ROOT = Path(__file__).resolve().parents[1]


def rows_on_disk(path: Path) -> list[int]:
    """The attempt_index of every row in the file, read by a fresh connection."""
    db = sqlite3.connect(path)
    try:
        return [r[0] for r in db.execute("SELECT attempt_index FROM attempts ORDER BY id")]
    finally:
        db.close()


def attempts(n: int, start: int = 0) -> list[Attempt]:
    # A long message so that a full database fails within a few records.
    return [full_attempt(attempt_index=i, error_message="x" * 400) for i in range(start, start + n)]


@contextlib.contextmanager
def disk_full(ledger: SQLiteLedger) -> Iterator[None]:
    """Cap the file at its current size, as a full disk would, then lift the cap."""
    conn = ledger._conn
    assert conn is not None
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")
    try:
        yield
    finally:
        # The ledger may have reconnected; lift the cap on whatever connection it has now.
        current = ledger._conn
        if current is not None:
            current.execute("PRAGMA max_page_count = 1073741823")


def ledger_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "hybridstack.ledger" and r.levelno >= logging.WARNING
    ]


# --- a full disk -----------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 50])
def test_full_disk_holds_every_attempt_and_writes_them_when_space_returns(
    tmp_path: Path, batch_size: int, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "l.db"
    ledger = SQLiteLedger(path, batch_size=batch_size)
    data = attempts(600)
    with caplog.at_level(logging.WARNING, logger="hybridstack.ledger"), disk_full(ledger):
        for a in data:
            ledger.record(a)  # never raises: the executor's call must not fail
        assert ledger.pending > 500
        assert ledger.dropped == 0
        with pytest.raises(LedgerError, match=r"full") as caught:
            ledger.flush()
        assert isinstance(caught.value, HybridStackError)
        assert len(caught.value.unwritten) == ledger.pending
        assert caught.value.unwritten[-1] == data[-1]
        # A read would miss the held attempts: it says so instead of answering short.
        with pytest.raises(LedgerError, match=r"not written"):
            ledger.totals()
    warned = ledger_warnings(caplog)
    # Loud but not one line per record: the first failure, then at 10, 100 … held.
    assert 1 <= len(warned) <= 6
    assert "disk or database is full" in warned[0]
    assert "pending" in warned[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hybridstack.ledger"):
        ledger.flush()
    assert ledger.pending == 0
    assert any("wrote" in m and "held" in m for m in ledger_warnings(caplog))
    ledger.close()
    assert rows_on_disk(path) == list(range(600))


def test_held_attempts_are_retried_by_the_next_record(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    ledger = SQLiteLedger(path, retry_interval_s=0.0)
    with disk_full(ledger):
        for a in attempts(20):
            ledger.record(a)
        held = ledger.pending
    assert held >= 15
    ledger.record(full_attempt(attempt_index=20))  # space is back: this one writes them all
    assert ledger.pending == 0
    assert rows_on_disk(path) == list(range(21))
    ledger.close()


def test_close_raises_a_ledger_error_carrying_the_unwritten_attempts(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    ledger = SQLiteLedger(path, batch_size=50)
    data = attempts(120)
    with disk_full(ledger):
        for a in data:
            ledger.record(a)
        with pytest.raises(LedgerError, match=r"could not write 120 attempts") as caught:
            ledger.close()
    error = caught.value
    assert list(error.unwritten) == data
    assert error.path == str(path)
    assert "cannot rollback" not in str(error)
    ledger.close()  # closed now; a second close is a no-op
    with pytest.raises(LedgerError, match="closed"):
        ledger.record(data[0])
    # What the error carries can go to another ledger: nothing was lost.
    with SQLiteLedger(tmp_path / "rescue.db") as rescue:
        for a in error.unwritten:
            rescue.record(a)
    assert rows_on_disk(tmp_path / "rescue.db") == list(range(120))


def test_pending_is_bounded_and_what_is_dropped_is_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "l.db"
    ledger = SQLiteLedger(path, max_pending=10)
    with caplog.at_level(logging.WARNING, logger="hybridstack.ledger"), disk_full(ledger):
        for a in attempts(40):
            ledger.record(a)
        written = len(rows_on_disk(path))  # the last free page took a few
        assert ledger.pending == 10
        assert ledger.dropped == 40 - 10 - written > 0
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert errors
        assert "dropped" in errors[0]
        assert len(errors) <= 3  # at 1, 10, 100 … dropped, not one line each
        with pytest.raises(LedgerError, match=rf"{ledger.dropped} more were dropped") as caught:
            ledger.close()
    assert [a.attempt_index for a in caught.value.unwritten] == list(range(30, 40))
    assert rows_on_disk(path) == list(range(written))


@pytest.mark.parametrize("batch_size", [1, 3])
def test_an_attempt_sqlite_cannot_store_does_not_hold_up_the_rest(
    tmp_path: Path, batch_size: int, caplog: pytest.LogCaptureFixture
) -> None:
    from hybridstack.types import Usage

    path = tmp_path / "l.db"
    ledger = SQLiteLedger(path, batch_size=batch_size)
    too_big = full_attempt(attempt_index=1, usage=Usage(input_tokens=10**30))  # > 64 bits
    with caplog.at_level(logging.ERROR, logger="hybridstack.ledger"):
        for a in (full_attempt(attempt_index=0), too_big, full_attempt(attempt_index=2)):
            ledger.record(a)
        ledger.flush()
    assert ledger.dropped == 1
    assert ledger.pending == 0
    assert "cannot store" in caplog.records[0].getMessage()
    ledger.record(full_attempt(attempt_index=3))
    ledger.close()
    assert rows_on_disk(path) == [0, 2, 3]


def test_a_closed_ledger_counts_what_it_refuses(tmp_path: Path) -> None:
    ledger = SQLiteLedger(tmp_path / "l.db")
    ledger.close()
    with pytest.raises(LedgerError, match="closed"):
        ledger.record(full_attempt())
    with pytest.raises(LedgerError, match="closed"):
        ledger.attempts()
    assert ledger.dropped == 1


# --- the executor's view ------------------------------------------------------------------


async def test_a_call_succeeds_while_its_ledger_cannot_write(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from hybridstack.testing import offline_stack

    path = tmp_path / "l.db"
    ledger = SQLiteLedger(path)
    with caplog.at_level(logging.WARNING, logger="hybridstack"), disk_full(ledger):
        filler = 0
        while ledger.pending == 0:  # the last free page takes a few, then it is full
            ledger.record(full_attempt(attempt_index=filler, error_message="x" * 400))
            filler += 1
        async with offline_stack(policy="cheapest", ledger=ledger, run_id="r") as stack:
            reply = await stack.complete("Hello", model="qwen-plus")
        assert reply.text
        assert reply.attempts >= 1
        assert ledger.pending == 1 + reply.attempts
    # The executor saw no error: no stack trace per attempt, one warning from the ledger.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(ledger_warnings(caplog)) == 1
    assert "pending" in ledger_warnings(caplog)[0]
    ledger.close()
    with SQLiteLedger(path, read_only=True) as reader:
        assert len(reader.attempts(run_id="r")) == reply.attempts
        assert len(reader.attempts()) == filler + reply.attempts


# --- the file deleted, moved or replaced while open --------------------------------------


@pytest.mark.parametrize("remove", ["db", "db-wal-shm"])
def test_deleted_file_is_restored_with_every_attempt(
    tmp_path: Path, remove: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "l.db"
    ledger = SQLiteLedger(path)
    for a in attempts(3):
        ledger.record(a)
    for suffix in ("", "-wal", "-shm") if remove == "db-wal-shm" else ("",):
        Path(f"{path}{suffix}").unlink()
    with caplog.at_level(logging.WARNING, logger="hybridstack.ledger"):
        for a in attempts(3, start=3):
            ledger.record(a)
    warned = ledger_warnings(caplog)
    assert len(warned) == 1
    assert "was deleted while open" in warned[0]
    assert "restored" in warned[0]
    assert path.exists()
    assert rows_on_disk(path) == [0, 1, 2, 3, 4, 5]  # visible to other readers right away
    ledger.close()
    assert ledger.dropped == 0
    assert rows_on_disk(path) == [0, 1, 2, 3, 4, 5]
    with SQLiteLedger(path, read_only=True) as again:
        assert len(again.attempts()) == 6


def test_moved_file_is_completed_and_a_new_one_started(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Log rotation: mv ledger.db ledger.db.1 while the process writes.
    path = tmp_path / "l.db"
    rotated = tmp_path / "l.db.1"
    ledger = SQLiteLedger(path)
    for a in attempts(3):
        ledger.record(a)
    path.rename(rotated)
    with caplog.at_level(logging.WARNING, logger="hybridstack.ledger"):
        for a in attempts(2, start=3):
            ledger.record(a)
    (warned,) = ledger_warnings(caplog)
    assert "moved" in warned
    ledger.close()
    # The moved file holds everything recorded before the move (its WAL was checkpointed
    # into it); the new file at the path holds what came after.
    assert rows_on_disk(rotated) == [0, 1, 2]
    assert rows_on_disk(path) == [3, 4]


def test_moved_file_with_a_reader_in_the_way_is_saved_whole(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A reader holding a snapshot stops the checkpoint from folding the journal into the
    # moved file: then a complete copy is saved next to it.
    path = tmp_path / "l.db"
    ledger = SQLiteLedger(path, timeout_s=0.05)
    for a in attempts(3):
        ledger.record(a)
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM attempts").fetchone()
    path.rename(tmp_path / "l.db.1")
    with caplog.at_level(logging.WARNING, logger="hybridstack.ledger"):
        ledger.record(full_attempt(attempt_index=3))
    (warned,) = ledger_warnings(caplog)
    (saved,) = tmp_path.glob("l.db.orphan-*")
    assert "may lack the last of them" in warned
    assert str(saved) in warned
    reader.execute("COMMIT")
    reader.close()
    ledger.close()
    assert rows_on_disk(saved) == [0, 1, 2]
    assert rows_on_disk(path) == [3]


def test_file_replaced_by_a_foreign_one(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "l.db"
    ledger = SQLiteLedger(path)
    for a in attempts(2):
        ledger.record(a)
    other = tmp_path / "other.db"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE notes (x)")
    db.commit()
    db.close()
    other.replace(path)  # the ledger's file is unlinked: only the open ledger still has it
    with caplog.at_level(logging.WARNING, logger="hybridstack.ledger"):
        ledger.record(full_attempt(attempt_index=2))
    assert ledger.pending == 1
    warned = " ".join(ledger_warnings(caplog))
    assert "replaced" in warned
    assert "not a hybridstack ledger" in warned
    # The attempts of the replaced file are saved next to it, not lost.
    (saved,) = tmp_path.glob("l.db.orphan-*")
    assert str(saved) in warned
    assert rows_on_disk(saved) == [0, 1]
    with pytest.raises(LedgerError, match="not a hybridstack ledger") as caught:
        ledger.close()
    assert [a.attempt_index for a in caught.value.unwritten] == [2]
    db = sqlite3.connect(path)
    assert db.execute("SELECT name FROM sqlite_master").fetchall() == [("notes",)]  # untouched
    db.close()


# --- unwritable files, directories, filesystems -------------------------------------------


def _can_chattr(probe: Path) -> bool:
    if shutil.which("chattr") is None:
        return False
    probe.touch()
    ok = subprocess.run(["chattr", "+i", str(probe)], capture_output=True).returncode == 0
    subprocess.run(["chattr", "-i", str(probe)], capture_output=True)
    probe.unlink()
    return ok


@pytest.fixture
def make_unwritable(tmp_path: Path) -> Iterator[object]:
    """``make_unwritable(path)``: no one, root included, may write ``path`` afterwards."""
    done: list[Path] = []
    root = os.geteuid() == 0
    if root and not _can_chattr(tmp_path / "probe"):
        pytest.skip("running as root without chattr: a file cannot be made unwritable")

    def make(path: Path) -> None:
        if root:
            subprocess.run(["chattr", "+i", str(path)], check=True)
        else:
            path.chmod(0o555 if path.is_dir() else 0o444)
        done.append(path)

    yield make
    for path in reversed(done):
        if not path.exists():
            continue
        if root:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        else:
            path.chmod(0o755 if path.is_dir() else 0o644)


def test_unwritable_file_is_reported_as_such(tmp_path: Path, make_unwritable) -> None:
    path = tmp_path / "l.db"
    with SQLiteLedger(path) as ledger:
        ledger.record(full_attempt())
    make_unwritable(path)
    with pytest.raises(ConfigurationError, match=r"cannot write ledger file") as caught:
        SQLiteLedger(path)
    message = str(caught.value)
    assert "corrupt" not in message
    assert "read_only=True" in message  # how to read it anyway
    with SQLiteLedger(path, read_only=True) as reader:
        assert len(reader.attempts()) == 1


def test_unwritable_directory_is_reported_as_such(tmp_path: Path, make_unwritable) -> None:
    folder = tmp_path / "runs"
    folder.mkdir()
    with SQLiteLedger(folder / "l.db") as ledger:
        ledger.record(full_attempt())
    make_unwritable(folder)
    for path in (folder / "l.db", folder / "new.db"):
        with pytest.raises(ConfigurationError, match=r"cannot write ledger file") as caught:
            SQLiteLedger(path)
        assert "corrupt" not in str(caught.value)
        assert "directory" in str(caught.value)


def test_file_made_unwritable_mid_run(
    tmp_path: Path, make_unwritable, caplog: pytest.LogCaptureFixture
) -> None:
    if os.geteuid() != 0:
        pytest.skip("an open file stays writable after chmod; chattr +i needs root")
    path = tmp_path / "l.db"
    ledger = SQLiteLedger(path)
    ledger.record(full_attempt(attempt_index=0))
    make_unwritable(Path(f"{path}-wal"))
    with caplog.at_level(logging.WARNING, logger="hybridstack.ledger"):
        ledger.record(full_attempt(attempt_index=1))
    assert ledger.pending == 1
    assert "cannot write" in ledger_warnings(caplog)[0]
    subprocess.run(["chattr", "-i", f"{path}-wal"], check=True)
    ledger.close()
    assert rows_on_disk(path) == [0, 1]


def test_read_only_filesystem(tmp_path: Path) -> None:
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-rm", "true"]).returncode != 0:
        pytest.skip("no user namespaces here: cannot mount a read-only filesystem")
    mount = tmp_path / "mnt"
    mount.mkdir()
    script = textwrap.dedent(
        f"""
        set -e
        mount -t tmpfs -o size=1m tmpfs {mount}
        {sys.executable} -c "import hybridstack.ledger as l; l.SQLiteLedger('{mount}/l.db').close()"
        mount -o remount,ro {mount}
        {sys.executable} - <<'EOF'
        from hybridstack.errors import ConfigurationError
        from hybridstack.ledger import SQLiteLedger
        for name in ("l.db", "new.db"):
            try:
                SQLiteLedger("{mount}/" + name)
            except ConfigurationError as exc:
                print(name, "::", exc)
        EOF
        """
    )
    out = subprocess.run(
        [unshare, "-rm", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2, out.stdout
    for line in lines:
        assert "cannot write ledger file" in line
        assert "read-only filesystem" in line
        assert "corrupt" not in line


# --- other path problems --------------------------------------------------------------------


def test_path_problems_say_what_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="is a directory"):
        SQLiteLedger(tmp_path)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    with pytest.raises(ConfigurationError, match=r"cannot create the directory .*notes\.txt"):
        SQLiteLedger(a_file / "ledger.db")
    with pytest.raises(ConfigurationError, match="no ledger at"):
        SQLiteLedger(tmp_path / "missing" / "ledger.db", create=False)
    assert not (tmp_path / "missing").exists()


# --- other writers ------------------------------------------------------------------------


def test_lock_held_by_another_writer(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "l.db"
    ledger = SQLiteLedger(path, timeout_s=0.05)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process in the middle of a long write
    with caplog.at_level(logging.WARNING, logger="hybridstack.ledger"):
        ledger.record(full_attempt(attempt_index=0))
    assert ledger.pending == 1
    assert "locked by another connection or process" in ledger_warnings(caplog)[0]
    other.execute("COMMIT")
    other.close()
    ledger.flush()
    assert rows_on_disk(path) == [0]
    ledger.close()


def test_locked_while_opening(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # a fresh file, mid-creation by another process
    other.execute("CREATE TABLE t (x)")
    try:
        with pytest.raises(LedgerError, match=r"locked by another connection or process"):
            SQLiteLedger(path, timeout_s=0.05)
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_two_processes_write_one_file(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    SQLiteLedger(path).close()  # created once, so both writers only append
    writer = textwrap.dedent(
        """
        import sys
        from datetime import UTC, datetime
        from hybridstack.ledger import SQLiteLedger
        from hybridstack.types import Attempt
        base, batch = int(sys.argv[2]), int(sys.argv[3])
        with SQLiteLedger(sys.argv[1], batch_size=batch) as ledger:
            for i in range(base, base + 300):
                ledger.record(Attempt(call_id=f"c{i}", attempt_index=i, deployment="d",
                                      family="f", started_at=datetime.now(UTC), outcome="ok"))
            ledger.flush()
            assert ledger.pending == 0 and ledger.dropped == 0
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", writer, str(path), str(base), str(batch)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for base, batch in ((0, 1), (1000, 7))
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert sorted(rows_on_disk(path)) == [*range(300), *range(1000, 1300)]


# --- this process's other connections to the file ------------------------------------------

# SQLite's shared-lock byte range on a database file (os_unix.c: SHARED_FIRST, SHARED_SIZE).
_SHARED_FIRST, _SHARED_SIZE = 0x40000002, 510

_PROBE = textwrap.dedent(
    """
    import fcntl, os, sys
    fd = os.open(sys.argv[1], os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, int(sys.argv[3]), int(sys.argv[2]))
    except OSError:
        print("held")
    else:
        print("free")
    """
)


def shared_lock_seen_by_another_process(path: Path) -> bool:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path), str(_SHARED_FIRST), str(_SHARED_SIZE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.strip() == "held"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX advisory locks")
@pytest.mark.parametrize("o_path", [True, False], ids=["O_PATH", "no-O_PATH"])
def test_closing_a_ledger_keeps_the_locks_of_other_connections_in_the_process(
    tmp_path: Path, o_path: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Closing any descriptor of a file drops every POSIX lock the process holds on it.
    # The ledger's own descriptor (to tell a deleted file from a moved one) must not cost
    # a reader of the same file in this process its shared lock: without that lock,
    # another process may take the write lock, or delete the WAL, under the reader.
    from hybridstack.ledger import sqlite as sqlite_ledger

    if not o_path:  # macOS and others: the descriptor is kept open instead of closed
        monkeypatch.setattr(sqlite_ledger, "_O_PATH", None)
    elif sqlite_ledger._O_PATH is None:
        pytest.skip("no O_PATH on this platform")
    path = tmp_path / "l.db"
    with SQLiteLedger(path) as ledger:
        ledger.record(full_attempt())
    reader = sqlite3.connect(path, isolation_level=None)
    try:
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM attempts").fetchone() == (1,)
        assert shared_lock_seen_by_another_process(path)
        for options in ({}, {"read_only": True}):
            other = SQLiteLedger(path, **options)
            if options:
                other.attempts()
            else:
                other.record(full_attempt())
            other.close()
            assert shared_lock_seen_by_another_process(path), options
        # The file moved under a writer: it lets go of the old file (and its descriptor).
        writer = SQLiteLedger(path)
        path.rename(tmp_path / "l.db.1")
        writer.record(full_attempt())
        writer.close()
        assert shared_lock_seen_by_another_process(tmp_path / "l.db.1")
        reader.execute("COMMIT")
    finally:
        reader.close()
    assert not shared_lock_seen_by_another_process(tmp_path / "l.db.1")
