"""The thread-lease seam: the lease, the six storage primitives, and the decisions over them.

At most one run drives a thread at a time; a dead holder's lease runs out.

Two processes resuming one thread would each send its unfinished subtasks and its
synthesis. The agent therefore takes a lease on the thread before it runs it, renews
the lease while the run goes on (a heartbeat), and releases it at the end. A second run
of the thread is refused with :class:`ThreadBusyError` (naming the holder and when its
lease runs out) before it sends anything. A holder that was killed stops renewing; once
its lease has expired, the thread can be resumed. On the holder's own machine a dead
holder is recognised at once (its pid is gone), so a crash is resumable immediately.

The seam is :class:`ThreadLeases`. Its public methods (``acquire``, ``renew``,
``release``, ``holder``, ``hold``) are written once, here, over six storage primitives;
every decision is a compare-and-set on a per-thread ``token`` that grows with each new
holder, so the stores need no locks of their own::

    _now()                         the store's clock (a database server uses its own)
    _get(thread_id)                the lease row, or None
    _insert(lease)                 add a row if the thread has none       -> bool
    _swap(thread_id, token, new)   replace the row if its token is token  -> bool
    _extend(lease, expires_at)     move expiry if owner and token match   -> bool
    _expire(lease, at)             end it now if owner and token match    -> bool

:class:`InMemoryThreadLeases` serves one process (the ``"memory"`` checkpointer);
:class:`SQLiteThreadLeases` keeps a table in the checkpoint file and holds across the
processes of one machine; :class:`PostgresThreadLeases` keeps the same table in a Postgres
database and holds across hosts: a row per thread with its owner, token and expiry (not
advisory locks, which a transaction pooler does not keep), every primitive one
autocommit statement, and the *server's* clock, so hosts whose clocks disagree still
agree on when a lease ran out.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

from hybridstack.graph.subtasks import (
    LeaseLostError,
    ThreadBusyError,
)

__all__ = ["DEFAULT_LEASE_TTL_S", "HeldLease", "ThreadLease", "ThreadLeases", "new_owner_id"]

# The stores' module name: what people filter their logs by.
log = logging.getLogger("hybridstack.graph.leases")

#: Seconds a lease lasts without renewal. The holder renews every third of it.
DEFAULT_LEASE_TTL_S = 30.0
_MAX_RACES = 5


def _pid_namespace() -> str:
    """This process's pid namespace (Linux), so a pid is only judged in its own one."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return ""


_HOST = socket.gethostname()
_PID_NS = _pid_namespace()
#: Owners in this process that hold a lease (acquired, not yet released or lost). A
#: lease of this process whose owner is not here was abandoned (its release failed, e.g.
#: the file was locked) and is reclaimed like a dead process's.
_LIVE_OWNERS: set[str] = set()


def new_owner_id() -> str:
    """A fresh owner id: host, pid and a random part (unique per run, even in one process)."""
    return f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    except OSError:
        return True  # cannot tell: assume alive (the safe side)
    return True


class ThreadLease(BaseModel):
    """Who holds a thread, and until when (renewed by the holder while it runs)."""

    model_config = ConfigDict(frozen=True)

    thread_id: str
    owner: str
    #: Grows by one with every new holder: the compare-and-set key.
    token: int
    host: str
    pid: int
    #: Pid namespace of the holder (Linux); "" where unknown.
    pid_namespace: str = ""
    acquired_at: datetime
    expires_at: datetime

    def expired(self, now: float) -> bool:
        return self.expires_at.timestamp() <= now

    def held_by_this_process(self) -> bool:
        return self.host == _HOST and self.pid == os.getpid() and self.pid_namespace == _PID_NS

    def holder_is_dead(self) -> bool:
        """True only when the holder ran on this machine (same host and pid namespace)
        and its pid no longer exists. A reused pid reads as alive: the safe side."""
        if self.host != _HOST or self.pid_namespace != _PID_NS:
            return False
        if self.pid == os.getpid():
            return self.owner not in _LIVE_OWNERS
        return not _pid_alive(self.pid)


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


class ThreadLeases(abc.ABC):
    """The lease seam: see the module docstring for the six primitives a store provides.

    Args:
        reclaim_dead_holders: take over at once a lease whose holder ran on this machine
            and is gone (its pid no longer exists), instead of waiting for it to expire.
    """

    def __init__(self, *, reclaim_dead_holders: bool = True) -> None:
        self.reclaim_dead_holders = reclaim_dead_holders

    # --- the primitives a store implements -----------------------------------------------

    @abc.abstractmethod
    async def _now(self) -> float:
        """Seconds since the epoch, by the store's clock."""

    @abc.abstractmethod
    async def _get(self, thread_id: str) -> ThreadLease | None: ...

    @abc.abstractmethod
    async def _insert(self, lease: ThreadLease) -> bool: ...

    @abc.abstractmethod
    async def _swap(self, thread_id: str, token: int, lease: ThreadLease) -> bool: ...

    @abc.abstractmethod
    async def _extend(self, lease: ThreadLease, expires_at: float) -> bool: ...

    @abc.abstractmethod
    async def _expire(self, lease: ThreadLease, at: float) -> bool: ...

    # --- the public API --------------------------------------------------------------------

    def _new(self, thread_id: str, owner: str, token: int, now: float, ttl: float) -> ThreadLease:
        return ThreadLease(
            thread_id=thread_id,
            owner=owner,
            token=token,
            host=_HOST,
            pid=os.getpid(),
            pid_namespace=_PID_NS,
            acquired_at=_at(now),
            expires_at=_at(now + ttl),
        )

    @staticmethod
    def _check_ttl(ttl: float) -> None:
        if not (isinstance(ttl, int | float) and math.isfinite(ttl) and ttl > 0):
            raise ValueError(f"a lease TTL must be a positive number of seconds, not {ttl!r}")

    async def acquire(
        self, thread_id: str, *, owner: str | None = None, ttl: float = DEFAULT_LEASE_TTL_S
    ) -> ThreadLease:
        """Take the thread's lease for ``ttl`` seconds, or raise :class:`ThreadBusyError`.

        Succeeds when the thread has no lease, its lease expired or was released, its
        holder is dead (same machine, see ``reclaim_dead_holders``), or ``owner`` already
        holds it (then it is renewed).
        """
        self._check_ttl(ttl)
        owner = owner or new_owner_id()
        # The owner is live *before* its row can be seen: a rival in this process that
        # reads the row between the write and this coroutine resuming must not take it
        # for an abandoned lease of this process (see ``holder_is_dead``) and reclaim it.
        was_live = owner in _LIVE_OWNERS
        _LIVE_OWNERS.add(owner)
        try:
            return await self._take(thread_id, owner, ttl)
        except BaseException:
            if not was_live:
                _LIVE_OWNERS.discard(owner)
            raise

    async def _take(self, thread_id: str, owner: str, ttl: float) -> ThreadLease:
        current: ThreadLease | None = None
        for _ in range(_MAX_RACES):  # each retry means another acquirer changed the row
            now = await self._now()
            current = await self._get(thread_id)
            if current is None:
                lease = self._new(thread_id, owner, 1, now, ttl)
                if await self._insert(lease):
                    return lease
                continue
            free = (
                current.owner == owner
                or current.expired(now)
                or (self.reclaim_dead_holders and current.holder_is_dead())
            )
            if not free:
                raise ThreadBusyError(
                    thread_id, current, same_process=current.held_by_this_process()
                )
            lease = self._new(thread_id, owner, current.token + 1, now, ttl)
            if await self._swap(thread_id, current.token, lease):
                if current.owner != owner and not current.expired(now):
                    log.warning(
                        "took over the lease of thread %r from %s (pid %s on %s): its "
                        "holder is gone",
                        thread_id,
                        current.owner,
                        current.pid,
                        current.host,
                    )
                return lease
        holder = await self._get(thread_id) or current
        assert holder is not None
        raise ThreadBusyError(thread_id, holder, same_process=holder.held_by_this_process())

    async def renew(self, lease: ThreadLease, *, ttl: float = DEFAULT_LEASE_TTL_S) -> ThreadLease:
        """Extend a held lease by ``ttl`` from now; :class:`LeaseLostError` if another
        holder took it over (a lease that expired but was not taken is still renewed)."""
        self._check_ttl(ttl)
        now = await self._now()
        if await self._extend(lease, now + ttl):
            return lease.model_copy(update={"expires_at": _at(now + ttl)})
        _LIVE_OWNERS.discard(lease.owner)
        raise LeaseLostError(lease.thread_id, lease.owner, await self._get(lease.thread_id))

    async def release(self, lease: ThreadLease) -> bool:
        """End a held lease now (the thread is free at once). False if it was no longer ours.

        Should the store fail here, the lease runs out on its own within its TTL (and
        this process may reclaim it at once: its owner is no longer live)."""
        _LIVE_OWNERS.discard(lease.owner)
        return await self._expire(lease, await self._now())

    async def holder(self, thread_id: str) -> ThreadLease | None:
        """The lease in force on the thread, or None if it is free."""
        lease = await self._get(thread_id)
        if lease is None or lease.expired(await self._now()):
            return None
        return lease

    @contextlib.asynccontextmanager
    async def hold(
        self,
        thread_id: str,
        *,
        ttl: float = DEFAULT_LEASE_TTL_S,
        owner: str | None = None,
        renew_every: float | None = None,
    ) -> AsyncIterator[HeldLease]:
        """Hold the thread's lease for the block: acquired on entry (or
        :class:`ThreadBusyError`), renewed every ``renew_every`` seconds (default a
        third of ``ttl``) while the block runs, released on exit."""
        lease = await self.acquire(thread_id, owner=owner, ttl=ttl)
        held = HeldLease(self, lease, ttl=ttl, renew_every=renew_every or ttl / 3)
        held._start()
        try:
            yield held
        finally:
            await held._stop()


class HeldLease:
    """A lease being held: renewed in the background; :meth:`ensure` before sending work."""

    def __init__(
        self, store: ThreadLeases, lease: ThreadLease, *, ttl: float, renew_every: float
    ) -> None:
        self.store = store
        self.lease = lease
        self.ttl = ttl
        self.renew_every = renew_every
        #: Set when the lease was taken over; :meth:`ensure` raises it.
        self.lost: LeaseLostError | None = None
        self._renewed_at = time.monotonic()
        self._task: asyncio.Task[None] | None = None

    @property
    def thread_id(self) -> str:
        return self.lease.thread_id

    def _start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._heartbeat(), name=f"lease heartbeat {self.thread_id}"
        )

    async def _renew(self) -> None:
        try:
            self.lease = await self.store.renew(self.lease, ttl=self.ttl)
        except LeaseLostError as error:
            self.lost = error
            raise
        self._renewed_at = time.monotonic()

    async def _heartbeat(self) -> None:
        while self.lost is None:
            await asyncio.sleep(self.renew_every)
            try:
                await self._renew()
            except LeaseLostError:
                log.warning("%s", self.lost)
                return
            except Exception as error:  # the store hiccuped: try again next beat
                log.warning("could not renew the lease of thread %r: %s", self.thread_id, error)

    async def ensure(self) -> None:
        """Raise :class:`LeaseLostError` unless this run still holds the thread.

        Called before every model call: one read of the store (not a write), and a
        renewal when the heartbeat is late (a stalled loop), so work is only sent under
        a live lease.
        """
        if self.lost is not None:
            raise self.lost
        since = time.monotonic() - self._renewed_at
        try:
            current = await self.store._get(self.thread_id)
            if current is None or (current.owner, current.token) != (
                self.lease.owner,
                self.lease.token,
            ):
                self.lost = LeaseLostError(self.thread_id, self.lease.owner, current)
                _LIVE_OWNERS.discard(self.lease.owner)
                raise self.lost
            if since >= self.renew_every * 1.5:
                await self._renew()
        except LeaseLostError:
            raise
        except Exception as error:
            # The store is failing. Within the TTL nobody can have taken the thread
            # over, so the work may go on; past it, someone may have: stop.
            if since < self.ttl * 0.9:
                log.warning("could not check the lease of thread %r: %s", self.thread_id, error)
                return
            self.lost = LeaseLostError(self.thread_id, self.lease.owner)
            raise self.lost from error

    async def _stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.lost is None:
            try:
                await self.store.release(self.lease)
            except Exception as error:  # it runs out on its own within one TTL
                log.warning("could not release the lease of thread %r: %s", self.thread_id, error)
