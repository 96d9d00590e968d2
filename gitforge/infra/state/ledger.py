"""The ledger of a batch (one `gitforge run`): what every worker process of it spent, which
attempts failed and why, so that the budgets with `per_run` in their name hold across workers.

    .forge/batches/<batch-id>/ledger.jsonl      (batch id: a ULID, as run ids are)

One JSON object per line (ASCII, no blank lines), never rewritten. Every entry has
`v` (1), `kind`, `at` (UTC time), `pid`, `phase` and `phase_run` (the phase's run id, or null);
then, by kind:

    reserve   id, role, model, usd      a call about to be made, at its worst-case estimate
    call      settles, role, model, usd, input/output/cache_write/cache_read_tokens, estimated
              a call made (`settles`: the id of its reservation, or null)
    release   settles                   a reserved call that was not made or not billed
    failure   signature                 a failed attempt (pilot.signature, or null)

A reservation that is never settled (its worker died mid-call) keeps counting at its estimate:
the call may have been billed, and the error is on the side of stopping early.

Writes: each entry is one line, written with O_APPEND while holding the ledger's file lock
(`.forge/locks/ledger-<batch-id>.lock`) and fsynced before the lock is let go. A writer killed
mid-write leaves a torn last line with no newline; the next writer, holding the lock, ends it
with a newline before its own entry, so the torn line never swallows a good one.

Reads are incremental: a Ledger remembers how far it has read and the totals so far, so the
check before each model call reads only what was appended since. A line is taken only once
its newline is there (it may be being written); a line that is not a valid entry (a torn one,
ended by the next writer) is skipped and counted in `Totals.skipped`.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitforge.errors import UsageError
from gitforge.infra.state.files import new_id, now_iso, set_aside
from gitforge.infra.state.leases import plain_name

if TYPE_CHECKING:
    from gitforge.infra.state import Store

VERSION = 1
KINDS = ("reserve", "call", "release", "failure")
POLL = 0.002  # seconds between tries for a busy lock (filelock polls; an append holds it ~1 ms)


def micro(usd: float) -> int:
    """Dollars as whole millionths: totals are then exact whatever order the lines come in."""
    return round(usd * 1_000_000)


@dataclass
class Totals:
    """What a batch's ledger adds up to. Money in millionths of a dollar (`*_usd` in dollars)."""

    settled_micro: int = 0  # calls made
    calls: int = 0
    pilot_calls: int = 0
    failures: int = 0
    signatures: dict[str, dict[str, int]] = field(default_factory=dict)  # signature -> {phase: failures}
    open: dict[str, tuple[int, str]] = field(default_factory=dict)  # reservation id -> (micro usd, role)
    entries: int = 0
    skipped: int = 0  # lines that are not entries (torn by a killed writer, or foreign)

    @property
    def usd(self) -> float:
        """Spent on calls made, by every worker."""
        return self.settled_micro / 1_000_000

    @property
    def in_flight_usd(self) -> float:
        """Reserved for calls being made now (at their estimates)."""
        return sum(m for m, _ in self.open.values()) / 1_000_000

    def in_flight(self, role: str | None = None) -> int:
        """How many calls (of `role`) are being made now."""
        return sum(1 for _, r in self.open.values() if role is None or r == role)

    def phases_with(self, signature: str) -> list[str]:
        """The phases that failed with `signature`, in the order they first did."""
        return list(self.signatures.get(signature, {}))

    def add(self, e: Any) -> bool:
        """Count entry `e`; False (and nothing counted) when it is not a valid entry."""
        if not (isinstance(e, dict) and e.get("v") == VERSION and e.get("kind") in KINDS):
            return False
        kind, phase, settles = e["kind"], e.get("phase"), e.get("settles")
        if not all(v is None or isinstance(v, str) for v in (phase, settles)):
            return False
        if kind == "reserve":
            if not (isinstance(e.get("id"), str) and _money(e.get("usd"))):
                return False
            self.open[e["id"]] = (micro(e["usd"]), str(e.get("role")))
        elif kind == "call":
            if not _money(e.get("usd")):
                return False
            self.open.pop(settles, None)
            self.settled_micro += micro(e["usd"])
            self.calls += 1
            self.pilot_calls += e.get("role") == "pilot"
        elif kind == "release":
            self.open.pop(settles, None)
        else:
            sig = e.get("signature")
            if sig is not None and not isinstance(sig, str):
                return False
            self.failures += 1
            if sig is not None and phase is not None:
                seen = self.signatures.setdefault(sig, {})
                seen[phase] = seen.get(phase, 0) + 1
        self.entries += 1
        return True


def _money(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1e9


class Ledger:
    """The ledger of batch `batch_id` in `store`'s `.forge/`; nothing is created until the first append."""

    def __init__(self, store: Store, batch_id: str) -> None:
        if not plain_name(batch_id):
            raise UsageError(f"not a batch id: {batch_id!r}")
        self.store = store
        self.batch_id = batch_id
        self.path: Path = store.dir / "batches" / batch_id / "ledger.jsonl"
        self._totals = Totals()
        self._offset = 0  # bytes read and counted: always just after a newline
        self._file: tuple[int, int] | None = None  # (device, inode) of the file read so far

    @classmethod
    def new(cls, store: Store) -> Ledger:
        """The ledger of a new batch (a new ULID)."""
        return cls(store, new_id())

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the ledger's lock: no other writer appends meanwhile (re-entrant in a thread)."""
        lock = self.store.lock(f"ledger-{self.batch_id}")  # creates `.forge/` (a run is writing)
        lock.acquire(poll_interval=POLL)
        try:
            yield
        finally:
            lock.release()

    def append(self, kind: str, *, phase: str | None = None, phase_run: str | None = None,
               **fields: Any) -> dict[str, Any]:
        """Append one entry (see the module docstring); durable when this returns."""
        if kind not in KINDS:
            raise ValueError(f"unknown ledger entry kind {kind!r}")
        entry = {"v": VERSION, "kind": kind, "at": now_iso(), "pid": os.getpid(), "phase": phase,
                 "phase_run": phase_run, **fields}
        line = (json.dumps(entry, separators=(",", ":"), allow_nan=False) + "\n").encode("ascii")
        with self.locked():
            self._write(line)
        return entry

    def _write(self, line: bytes) -> None:
        folder = self.path.parent
        created = not folder.is_dir()
        folder.mkdir(parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags, 0o600)
        except IsADirectoryError:
            set_aside(self.path, "not a file")
            fd = os.open(self.path, flags, 0o600)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line  # end the line a killed writer tore (readers skip it)
            view = memoryview(line)
            while view:  # a write may be short; under the lock nothing comes between the pieces
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        if created or size == 0:  # the file's name is durable too
            for d in (folder, folder.parent) if created else (folder,):
                dir_fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)

    def totals(self) -> Totals:
        """The totals, brought up to date by reading only what was appended since the last
        call. The object is this Ledger's own running sum: read it, do not change it."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            return self._totals
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):  # set aside by the next append
                return self._totals
            if self._file != (st.st_dev, st.st_ino) or st.st_size < self._offset:  # a new file: start over
                self._totals, self._offset, self._file = Totals(), 0, (st.st_dev, st.st_ino)
            data = os.pread(fd, st.st_size - self._offset, self._offset) if st.st_size > self._offset else b""
        finally:
            os.close(fd)
        end = data.rfind(b"\n") + 1  # what follows the last newline may be mid-write: not yet
        for raw in data[:end].split(b"\n")[:-1]:
            try:
                entry = json.loads(raw)
            except ValueError:  # torn, or not ours (not JSON, not UTF-8)
                entry = None
            if not self._totals.add(entry):
                self._totals.skipped += 1
        self._offset += end
        return self._totals

    @property
    def read_offset(self) -> int:
        """How many bytes of the file `totals()` has read and counted."""
        return self._offset
