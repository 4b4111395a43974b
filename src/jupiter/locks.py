"""One writer per target: the exclusive lock a run holds for its apply phase.

A :class:`TargetLock` is two locks taken in order:

1. **a lease row** in the workspace (``target_leases``, keyed by the target's
   canonical name): who holds it (purpose, run, actor, host, pid), since
   when, until when. The holder's heartbeat thread extends it; a row whose
   lease expired, or whose process is gone from this host, is taken over and
   the takeover audited. Two processes of one workspace (or of several hosts
   sharing a PostgreSQL workspace) exclude each other here, and the loser
   learns exactly who holds the target.
2. **a lock the target carries** (:class:`~jupiter.targets.base.LockableTarget`):
   ``flock`` on the root directory, locally or through a remote command over
   SSH. Processes of *different* workspaces or machines exclude each other
   here; the kernel drops it when its holder dies.

A run that cannot get both within ``timeout`` seconds gets :class:`LockBusy`
(exit 2) naming the holder. Any workflow that changes a target (``fix``,
``rollback``, ``runs recover`` and, later, a fleet deploy stage per target)
takes the lock the same way::

    with TargetLock(db, target, Holder.current("deploy", actor), timeout=30) as lock:
        lock.bind_run(run_id)
        ...            # lock.ensure_held() before each change
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from jupiter import audit
from jupiter.errors import ConflictError, StoreError, TargetError
from jupiter.states import RunState
from jupiter.store.db import Database
from jupiter.store.tables import RunRow, TargetLeaseRow, utcnow
from jupiter.targets.base import LockableTarget, TargetLockHandle, TargetView

DEFAULT_TTL = 60.0
"""Seconds a lease lives without a heartbeat (heartbeats come every third of it)."""
_POLL = 0.1


class LockBusy(ConflictError):
    """Another run holds the target; nothing was changed."""

    def __init__(self, message: str, holder: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.holder = holder or {}


@dataclass(frozen=True)
class Holder:
    """Who asks for the lock."""

    purpose: str  # fix | rollback | recover | deploy
    actor: str
    host: str
    pid: int

    @classmethod
    def current(cls, purpose: str, actor: str) -> Holder:
        return cls(purpose, actor, socket.gethostname(), os.getpid())


def describe_lease(row: TargetLeaseRow) -> str:
    who = f"run {row.run_id}" if row.run_id is not None else f"a {row.purpose} not yet started"
    return (
        f"{who} ({row.purpose}; actor {row.actor}, host {row.host}, pid {row.pid}, since "
        f"{row.acquired_at.isoformat(timespec='seconds')})"
    )


def lease_json(row: TargetLeaseRow) -> dict[str, Any]:
    return {
        "target": row.target,
        "purpose": row.purpose,
        "run": row.run_id,
        "actor": row.actor,
        "host": row.host,
        "pid": row.pid,
        "since": row.acquired_at.isoformat(),
        "heartbeat": row.heartbeat_at.isoformat(),
        "expires": row.expires_at.isoformat(),
    }


def _pid_gone(host: str, pid: int) -> bool:
    """True only when ``pid`` certainly no longer runs (on this host)."""
    if host != socket.gethostname() or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class TargetLock:
    """The exclusive lock on one target; use as a context manager."""

    def __init__(
        self,
        db: Database,
        target: TargetView,
        holder: Holder,
        *,
        timeout: float = 0.0,
        ttl: float = DEFAULT_TTL,
    ) -> None:
        if timeout < 0:
            from jupiter.errors import InputError

            raise InputError(f"lock timeout {timeout:g} must be 0 or more seconds")
        self.db, self.target, self.holder = db, target, holder
        self.name = target.describe()
        self.timeout, self.ttl = timeout, ttl
        self.token = secrets.token_hex(16)
        self.run_id: int | None = None
        self.taken_over: dict[str, Any] | None = None
        self._handle: TargetLockHandle | None = None
        self._held = False
        self._lost: str | None = None
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    # -- acquiring ----------------------------------------------------------
    def acquire(self) -> TargetLock:
        import time

        deadline = time.monotonic() + self.timeout
        while True:
            busy = self._try_lease()
            if busy is None:
                break
            if time.monotonic() >= deadline:
                raise LockBusy(
                    f"target {self.name} is locked by {busy[0]}; wait for it to finish, or pass "
                    "--lock-timeout SECONDS to wait",
                    busy[1],
                )
            time.sleep(min(_POLL, max(deadline - time.monotonic(), 0.01)))
        self._held = True
        try:
            self._take_target_lock(max(deadline - time.monotonic(), 0.0))
        except BaseException:
            self._delete_lease()
            self._held = False
            raise
        self._beat = threading.Thread(
            target=self._heartbeat, name=f"jupiter-lease-{self.name}", daemon=True
        )
        self._beat.start()
        return self

    def _take_target_lock(self, timeout: float) -> None:
        if not isinstance(self.target, LockableTarget):
            return
        handle = self.target.acquire_lock(timeout)
        if handle is None:
            owner = self.target.lock_owner()
            who = (
                owner
                if owner
                else "another Jupiter process (another workspace or another machine; its "
                "workspace knows which run)"
            )
            raise LockBusy(
                f"target {self.name} is locked on the target itself by {who}; wait for it to "
                "finish, or pass --lock-timeout SECONDS to wait"
            )
        self._handle = handle
        handle.note(self._owner_text())

    def _owner_text(self) -> str:
        run = f"run {self.run_id}" if self.run_id is not None else f"a {self.holder.purpose}"
        return (
            f"{run} of workspace database {self.db.display_url} ({self.holder.purpose}; actor "
            f"{self.holder.actor}, host {self.holder.host}, pid {self.holder.pid}, since "
            f"{utcnow().isoformat(timespec='seconds')})"
        )

    def _try_lease(self) -> tuple[str, dict[str, Any]] | None:
        """Insert our lease, or take over a stale one; the holder otherwise."""
        now = utcnow()
        try:
            with self.db.transaction() as s:
                s.add(self._row(now))
        except StoreError as exc:
            if not isinstance(exc.__cause__, IntegrityError):
                raise
        else:
            return None
        with self.db.transaction() as s:
            row = s.get(TargetLeaseRow, self.name)
            if row is None:
                return self._try_lease_again()
            stale = self._stale_reason(row, now)
            if stale is None:
                return describe_lease(row), lease_json(row)
            self._refuse_over_interrupted_run(s, row)
            old = lease_json(row)
            result = s.execute(
                update(TargetLeaseRow)
                .where(TargetLeaseRow.target == self.name, TargetLeaseRow.token == row.token)
                .values(**self._values(now))
            )
            if getattr(result, "rowcount", 0) != 1:
                return describe_lease(row), old  # someone else took it over first
            self.taken_over = {**old, "reason": stale}
            audit.record(
                s,
                self.holder.actor,
                "lock.taken_over",
                f"target:{self.name}",
                {"previous": old, "reason": stale, "by": self._holder_json()},
            )
        return None

    def _try_lease_again(self) -> tuple[str, dict[str, Any]] | None:
        # The row vanished between our insert and our read: its holder released.
        return self._try_lease()

    def _stale_reason(self, row: TargetLeaseRow, now: datetime) -> str | None:
        if row.expires_at <= now:
            return f"its lease expired at {row.expires_at.isoformat(timespec='seconds')}"
        if _pid_gone(row.host, row.pid):
            return f"its process {row.pid} on {row.host} is gone"
        return None

    def _refuse_over_interrupted_run(self, s: Any, row: TargetLeaseRow) -> None:
        """A dead holder whose run is still marked running left the target
        half-changed: recover that run first (recover itself may take over)."""
        if row.run_id is None or self.holder.purpose == "recover":
            return
        run = s.get(RunRow, row.run_id)
        if run is not None and run.status == RunState.RUNNING:
            raise LockBusy(
                f"target {self.name} was locked by run {row.run_id}, whose process died while "
                f"it was running; run `jupiter runs recover {row.run_id}` first, which restores "
                "what it left half-applied",
                lease_json(row),
            )

    def _values(self, now: datetime) -> dict[str, Any]:
        return {
            "token": self.token,
            "purpose": self.holder.purpose,
            "run_id": self.run_id,
            "actor": self.holder.actor,
            "host": self.holder.host,
            "pid": self.holder.pid,
            "acquired_at": now,
            "heartbeat_at": now,
            "expires_at": now + timedelta(seconds=self.ttl),
        }

    def _row(self, now: datetime) -> TargetLeaseRow:
        return TargetLeaseRow(target=self.name, **self._values(now))

    def _holder_json(self) -> dict[str, Any]:
        return {
            "purpose": self.holder.purpose,
            "actor": self.holder.actor,
            "host": self.holder.host,
            "pid": self.holder.pid,
        }

    # -- holding ------------------------------------------------------------
    def bind_run(self, run_id: int) -> None:
        """Name the run that holds the lock (shown to anyone who waits)."""
        self.run_id = run_id
        if self._handle is not None:
            self._handle.note(self._owner_text())
        with self.db.transaction() as s:
            s.execute(
                update(TargetLeaseRow)
                .where(TargetLeaseRow.target == self.name, TargetLeaseRow.token == self.token)
                .values(run_id=run_id)
            )

    def lost(self) -> str | None:
        """Why the lock is no longer held, or ``None`` while it is."""
        if self._lost is None and self._handle is not None and not self._handle.alive():
            self._lost = "the lock on the target itself ended (connection lost)"
        return self._lost

    def ensure_held(self) -> None:
        why = self.lost()
        if why is not None:
            raise TargetError(f"lost the lock on {self.name}: {why}; stopping before any change")

    def _heartbeat(self) -> None:
        interval = max(self.ttl / 3, 0.05)
        while not self._stop.wait(interval):
            now = utcnow()
            try:
                with self.db.transaction() as s:
                    result = s.execute(
                        update(TargetLeaseRow)
                        .where(
                            TargetLeaseRow.target == self.name, TargetLeaseRow.token == self.token
                        )
                        .values(heartbeat_at=now, expires_at=now + timedelta(seconds=self.ttl))
                    )
                    gone = getattr(result, "rowcount", 0) != 1
            except StoreError:
                continue  # the database is busy or away: try again next beat
            if gone:
                self._lost = "its lease was taken over after it expired"
                return

    # -- releasing ----------------------------------------------------------
    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
            self._beat = None
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.release()
        if self._held:
            self._held = False
            self._delete_lease()

    def _delete_lease(self) -> None:
        with self.db.transaction() as s:
            s.execute(
                delete(TargetLeaseRow).where(
                    TargetLeaseRow.target == self.name, TargetLeaseRow.token == self.token
                )
            )

    def __enter__(self) -> TargetLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
