"""The `gitforge run` coordinator (DESIGN.md §2b): it starts K worker processes
(scheduler/worker.py), shows what they do, stops them cleanly when told to (Ctrl-C, SIGTERM),
and ends with the run's report. The workers choose their phases themselves, under the state
lock, and land through the merge queue (land/queue.py), so the coordinator holds no state a
crash could lose: `gitforge resume` starts a new coordinator for the same run."""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

from gitforge.context import Context
from gitforge.errors import UsageError
from gitforge.infra.state import new_id, now_iso
from gitforge.infra.state.batches import all_batches, load_batch, save_batch, worker_log
from gitforge.run.record import RunRecord, all_runs
from gitforge.run.select import recover_now
from gitforge.run.selection import select_next
from gitforge.scheduler.events import parse

STOP_GRACE = 10.0  # seconds a worker has to end its phase's gates and close its record


@dataclass
class Report:
    batch_id: str
    status: str                      # done | stopped
    landed: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    blocked: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    usd: float = 0.0
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        if self.status == "stopped":
            return 130
        if self.errors:
            return 3 if any("internal error" in e for e in self.errors) else 2
        return 1 if self.failed or self.skipped else 0

    def to_json(self) -> dict:
        return {"run": self.batch_id, "status": self.status, "landed": self.landed, "failed": self.failed,
                "skipped": self.skipped, "blocked": self.blocked, "errors": self.errors, "usd": round(self.usd, 6),
                "seconds": round(self.seconds, 3), "exit_code": self.exit_code}


@dataclass
class Worker:
    n: int
    proc: subprocess.Popen
    phase: str | None = None
    run_id: str | None = None
    since: float = 0.0
    last: str = ""
    buffer: bytes = b""


class Coordinator:
    def __init__(self, ctx: Context, board, parallel: int | None, max_phases: int | None,
                 overrides: dict | None = None) -> None:
        self.ctx, self.board, self.parallel, self.max_phases = ctx, board, parallel, max_phases
        self.overrides = overrides or {}
        self.workers: list[Worker] = []
        self.errors: list[str] = []

    # -- the two ways in ----------------------------------------------------------------------
    def start(self) -> Report:
        self.parallel = self.parallel or self.ctx.cfg.parallel
        record = {"batch_id": new_id(), "status": "running", "pid": os.getpid(), "host": socket.gethostname(),
                  "started": now_iso(), "parallel": self.parallel, "max_phases": self.max_phases,
                  "target": self.ctx.target, "workers": []}
        return self._go(record)

    def resume(self, batch_id: str | None) -> Report:
        record = find_batch(self.ctx, batch_id)
        record.setdefault("resumed", []).append(now_iso())
        record.update(status="running", pid=os.getpid(), host=socket.gethostname(), ended=None)
        self.max_phases = record.get("max_phases")
        self.parallel = self.parallel or record.get("parallel") or self.ctx.cfg.parallel
        return self._go(record)

    # -- the run --------------------------------------------------------------------------------
    def _go(self, record: dict) -> Report:
        ctx = self.ctx
        began = time.monotonic()
        ctx.store.ensure()  # before the run's lock: a lock taken where `.forge/` is missing holds every other
        with ctx.store.locked(f"batch-{record['batch_id']}", timeout=0, what=f"run {record['batch_id']}"):
            return self._going(record, began)

    def _going(self, record: dict, began: float) -> Report:
        """While the run's lock is held: it says the coordinator is alive (the OS drops it when
        the coordinator dies, however it dies)."""
        ctx = self.ctx
        recover_now(ctx, self.board)
        save_batch(ctx.store, record)
        self.board.started(record["batch_id"], self.parallel)
        status = "done"
        try:
            for n in range(1, self.parallel + 1):
                self.workers.append(self._spawn(record, n))
            record["workers"] = [{"n": w.n, "pid": w.proc.pid} for w in self.workers]
            save_batch(ctx.store, record)
            self._watch()
        except KeyboardInterrupt:
            status = "stopped"
            self.board.note("stopping: every worker ends its phase's gates and closes its record")
            self._stop_workers()
        finally:
            self._reap()
        record.update(status=status, ended=now_iso())
        save_batch(ctx.store, record)
        report = self._report(record["batch_id"], status, time.monotonic() - began)
        return report

    def _spawn(self, record: dict, n: int) -> Worker:
        argv = [sys.executable, "-m", "gitforge.scheduler.worker", "--root", str(self.ctx.git.root),
                "--batch", record["batch_id"], "--worker", str(n), "--overrides", json.dumps(self.overrides),
                "--parent", str(os.getpid())]
        if self.max_phases is not None:
            argv += ["--max-phases", str(self.max_phases)]
        with worker_log(self.ctx.store, record["batch_id"], n) as log:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                                    cwd=str(self.ctx.git.here), start_new_session=True)
        return Worker(n, proc)

    def _watch(self) -> None:
        sel = selectors.DefaultSelector()
        for w in self.workers:
            os.set_blocking(w.proc.stdout.fileno(), False)
            sel.register(w.proc.stdout, selectors.EVENT_READ, w)
        open_ = len(self.workers)
        while open_:
            for key, _ in sel.select(timeout=0.5):
                w: Worker = key.data
                chunk = w.proc.stdout.read()
                if not chunk:
                    sel.unregister(key.fileobj)
                    open_ -= 1
                    w.proc.wait()
                    self._ended(w)
                    continue
                w.buffer += chunk
                *lines, w.buffer = w.buffer.split(b"\n")
                for line in lines:
                    self._event(w, line.decode("utf-8", "replace"))
            self.board.tick(self.workers)

    def _event(self, w: Worker, line: str) -> None:
        event = parse(line)
        if event is None:
            return
        kind = event["kind"]
        if kind == "phase":
            w.phase, w.run_id, w.since = event.get("phase"), event.get("run_id"), time.monotonic()
        elif kind == "outcome":
            w.phase = None
        elif kind == "error":
            self.errors.append(f"worker {w.n}: {event.get('text')}")
        if event.get("text"):
            w.last = event["text"]
        self.board.event(w, event)

    def _ended(self, w: Worker) -> None:
        code = w.proc.returncode
        if code not in (0, 130, -signal.SIGTERM) and not any(e.startswith(f"worker {w.n}:") for e in self.errors):
            self.errors.append(f"worker {w.n}: exited with code {code} (its log: "
                               f"{self.ctx.store.dir / 'batches'}/…/worker-{w.n}.log)")
        self.board.worker_done(w)

    def _stop_workers(self) -> None:
        for w in self.workers:
            if w.proc.poll() is None:
                w.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for w in self.workers:
            try:
                w.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(w.proc.pid, signal.SIGKILL)
                w.proc.wait()

    def _reap(self) -> None:
        """No worker outlives the coordinator's return (an error in the watch loop included)."""
        for w in self.workers:
            if w.proc.poll() is None:
                w.proc.send_signal(signal.SIGTERM)
        for w in self.workers:
            try:
                w.proc.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                os.killpg(w.proc.pid, signal.SIGKILL)
                w.proc.wait()
            if w.proc.stdout:
                w.proc.stdout.close()

    def _report(self, batch_id: str, status: str, seconds: float) -> Report:
        ctx = self.ctx
        report = Report(batch_id, status, errors=list(self.errors), seconds=seconds)
        runs: dict[str, RunRecord] = {}
        for rec in all_runs(ctx.store):
            if rec.batch == batch_id:
                runs[rec.phase] = rec  # the last run of each phase
                report.usd += ((rec.llm or {}).get("total_usd") or 0.0)
        for phase, rec in runs.items():
            item = {"phase": phase, "title": rec.title, "run_id": rec.run_id, "commit": rec.commit,
                    "reason": (rec.reason or "").splitlines()[0] if rec.reason else ""}
            {"landed": report.landed, "failed": report.failed, "skipped": report.skipped,
             "crashed": report.failed}.get(rec.status, report.failed).append(item)
        try:
            report.blocked = select_next(ctx.backlog()).blocked
        except UsageError:
            pass
        return report


def find_batch(ctx: Context, batch_id: str | None) -> dict:
    """The run to resume: the one named (by a prefix of its id), or the latest that did not end."""
    batches = all_batches(ctx.store)
    if batch_id:
        found = [b for b in batches if b["batch_id"].startswith(batch_id.upper())]
        if len(found) != 1:
            raise UsageError(f"no run matches '{batch_id}'" if not found else f"'{batch_id}' matches {len(found)} runs",
                             hint="gitforge status lists the runs")
        record = found[0]
    else:
        open_ = [b for b in batches if b["status"] == "running"]
        if not open_:
            raise UsageError("there is no unfinished run to resume", hint="start one: gitforge run")
        record = open_[-1]
    if record["status"] == "running" and ctx.store.is_locked_elsewhere(f"batch-{record['batch_id']}"):
        raise UsageError(f"run {record['batch_id']} is still going (its coordinator, pid {record['pid']}, is alive)",
                         hint="wait for it, or stop it with Ctrl-C (or kill -TERM) first")
    return load_batch(ctx.store, record["batch_id"]) or record

