"""Leases: who works on which phase. A process lease is live exactly while its holder has the
phase's lock (the OS drops a dead holder's flock); a host agent's claim (`gitforge start`)
outlives its process until it submits, fails or is abandoned. Mixed into state.Store."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from filelock import Timeout

from gitforge.errors import LockBusy
from gitforge.infra.state import shapes
from gitforge.infra.state.files import atomic_write_json, now_iso
from gitforge.infra.state.locks import HELD

if TYPE_CHECKING:
    from filelock import FileLock

@dataclass(frozen=True)
class Lease:
    phase: str
    run_id: str
    pid: int
    host: str
    started: str
    # "process": live while its process holds the phase lock (gitforge next).
    # "session": a host agent's claim (gitforge start); live until submit lands or fails, or abandon.
    kind: str = "process"


def plain_name(name: str) -> bool:
    """A name that stays inside its folder (run ids and phase ids can come from the command line)."""
    return bool(name) and "/" not in name and "\\" not in name and name not in (".", "..")


class Leases:
    """The lease methods of state.Store (which provides lock, _load, leases_dir and the rest)."""

    def _take_phase_lock(self, phase: str) -> FileLock:
        lock = self.lock(f"phase-{phase}")
        try:
            if lock.lock_file in HELD:
                raise Timeout(lock.lock_file)
            lock.acquire(timeout=0)
        except Timeout:
            other = self.read_lease(phase)
            if other is not None and other.kind == "session":
                raise LockBusy(f"phase {phase}: a submission of host-agent run {other.run_id} is in progress",
                               hint="wait for it to finish (gitforge status shows the run)") from None
            raise self.busy_error(phase, other) from None
        return lock

    @staticmethod
    def busy_error(phase: str, other: Lease | None) -> LockBusy:
        if other is not None and other.kind == "session":
            return LockBusy(f"phase {phase} is claimed by host-agent run {other.run_id} (gitforge start, "
                            f"{other.started} on {other.host})",
                            hint=f"let that session submit, or release it: gitforge abandon {other.run_id}")
        who = f"run {other.run_id} (pid {other.pid} on {other.host})" if other else "another process"
        return LockBusy(f"phase {phase} is already being worked on by {who}",
                        hint="wait for that run to finish, or pick another phase")

    @contextlib.contextmanager
    def lease(self, phase: str, run_id: str) -> Iterator[Lease]:
        """Work on a phase. Live exactly while this process holds `locks/phase-<id>.lock`. A
        host agent's claim on the phase refuses it, except for that claim's own run (submit)."""
        lock = self._take_phase_lock(phase)
        path = self.leases_dir / f"{phase}.json"
        claim = self.read_lease(phase)
        if claim is not None and claim.kind == "session":
            if claim.run_id != run_id:
                lock.release()
                raise self.busy_error(phase, claim)
            lease, own_file = claim, False
        else:
            lease, own_file = Lease(phase, run_id, os.getpid(), socket.gethostname(), now_iso()), True
        HELD.add(lock.lock_file)
        try:
            if own_file:
                atomic_write_json(path, lease.__dict__)
            yield lease
        finally:
            if own_file:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            HELD.discard(lock.lock_file)
            lock.release()

    def claim(self, phase: str, run_id: str) -> Lease:
        """A host agent's claim on a phase: it outlives this process, until `release_claim`."""
        held = self.lock(f"phase-{phase}").lock_file in HELD  # this process works on it (submit)
        lock = None if held else self._take_phase_lock(phase)
        try:
            other = self.read_lease(phase)
            if other is not None and other.kind == "session" and other.run_id != run_id:
                raise self.busy_error(phase, other)
            lease = Lease(phase, run_id, os.getpid(), socket.gethostname(), now_iso(), "session")
            atomic_write_json(self.leases_dir / f"{phase}.json", lease.__dict__)
            return lease
        finally:
            if lock is not None:
                lock.release()

    def release_claim(self, phase: str, run_id: str) -> bool:
        """Drop a host agent's claim (the caller holds the phase, or the claim is its own)."""
        lease = self.read_lease(phase)
        if lease is None or lease.kind != "session" or lease.run_id != run_id:
            return False
        with contextlib.suppress(FileNotFoundError):
            (self.leases_dir / f"{phase}.json").unlink()
        return True

    def read_lease(self, phase: str) -> Lease | None:
        if not plain_name(phase):
            return None
        data = self._load(self.leases_dir / f"{phase}.json", shapes.LEASE, "lease")
        return None if data is None else Lease(**data)

    def live_leases(self) -> dict[str, Lease]:
        """Leases whose holder is alive, and host agents' claims; stale process lease files
        (holder died) are removed."""
        live: dict[str, Lease] = {}
        if not (self._forge_is_dir() and self._folder(self.leases_dir)):
            return live
        for path in sorted(self.leases_dir.glob("*.json")):
            phase = path.stem
            lease = self.read_lease(phase)
            if lease is None and not path.exists():
                continue  # set aside as unreadable
            if lease is not None and lease.kind == "session":
                live[phase] = lease
                continue
            held_here = str(self._lock_path(f"phase-{phase}")) in HELD
            if held_here or self.is_locked_elsewhere(f"phase-{phase}"):
                if lease is not None:
                    live[phase] = lease
            else:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        return live

    def claims(self) -> list[Lease]:
        """Host agents' open claims, oldest first."""
        return sorted((lease for lease in self.live_leases().values() if lease.kind == "session"),
                      key=lambda lease: lease.started)
