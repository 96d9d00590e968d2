"""Host-agent sessions (DESIGN.md §3 `start`/`submit`): an agent such as Claude Code is the
builder. `start` claims a phase and prepares its worktree, and the claim outlives the process;
the agent edits that worktree; `submit` captures the edits as one diff and sends it through
the same pipeline (policy, apply, audit, gates) and landing as `gitforge next`, or hands the
feedback back with the edits left in place; `abandon` releases the claim.

Each submit is one attempt. The run ends when it lands, when `max_attempts` are spent, or
when the same error comes back three times.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from gitforge.backlog import Phase
from gitforge.context import Context
from gitforge.errors import BacklogError, ForgeError, UsageError, WorkFailed
from gitforge.git import rebase
from gitforge.infra.gates import GateResult, end_orphans, gate_specs
from gitforge.infra.state import new_id
from gitforge.infra.worktree import Pool, restore
from gitforge.run import endings
from gitforge.run.lander import Candidate, Lander
from gitforge.run.loop import SAME_ERROR_LIMIT, feedback_for
from gitforge.run.pilot import signature
from gitforge.run.pipeline import Attempt, run_attempt
from gitforge.run.proof import CAPTURE_EXCLUDE
from gitforge.run.record import RunRecord
from gitforge.run.record import find as find_records
from gitforge.run.record import load as load_record
from gitforge.run.recover import recover
from gitforge.run.reverify import Reverifier
from gitforge.run.select import select
from gitforge.run.spend import Meter
from gitforge.run.tracker import Tracker
from gitforge.ui import UI


@dataclass
class Session:
    """What an agent needs to do its part, and what `start`/`submit` report."""

    status: str                 # started | resumed | nothing | landed | retry | failed | skipped | abandoned
    run_id: str | None = None
    phase: Phase | None = None
    worktree: str | None = None
    branch: str | None = None
    base: str | None = None
    target: str | None = None
    gates: list[dict] = field(default_factory=list)
    attempts_used: int = 0
    attempts_left: int = 0
    reason: str = ""
    feedback: str = ""
    commit: str | None = None
    notices: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.status in ("retry", "failed", "skipped") else 0

    def to_json(self) -> dict:
        phase = None if self.phase is None else {"id": self.phase.id, "title": self.phase.title,
                                                 "text": self.phase.text}
        return {"status": self.status, "run_id": self.run_id, "phase": phase, "worktree": self.worktree,
                "branch": self.branch, "base": self.base, "target": self.target, "gates": self.gates,
                "attempts_used": self.attempts_used, "attempts_left": self.attempts_left,
                "reason": self.reason, "feedback": self.feedback, "commit": self.commit, "notices": self.notices}


def agent_name() -> str:
    """Who the host agent is, for the trail (Claude Code marks the shells it runs)."""
    return os.environ.get("GITFORGE_AGENT") or ("claude-code" if os.environ.get("CLAUDECODE") else "host-agent")


class HostSession:
    """`start`, `submit` and `abandon`, composed of the pieces `next` uses: selection, the run
    record and its tracker, the pipeline, the lander and the endings."""

    def __init__(self, ctx: Context, ui: UI) -> None:
        self.ctx, self.ui, self.store = ctx, ui, ctx.store
        self.meter = Meter(ctx.cfg.budgets, ctx.cfg.prices, warn=ui.warn)
        self.lander = Lander(ctx, ui)

    # -- start ------------------------------------------------------------------------------
    def start(self, phase_id: str | None) -> Session:
        with self.store.locked("state", what="the state lock"):
            for message in recover(self.ctx):
                self.ui.warn(message)
            claims = {c.phase: c for c in self.store.claims()}
            if phase_id is not None and phase_id in claims:
                return self._resume(claims[phase_id].run_id)
            phase, why = select(self.ctx, phase_id)
            if phase is None:
                return Session("nothing", reason=why, target=self.ctx.target, notices=self._open_sessions(claims))
            run_id = new_id()
            self.store.claim(phase.id, run_id)
        try:
            return self._prepare(phase, run_id, self._open_sessions(claims))
        except BaseException:
            self.store.release_claim(phase.id, run_id)
            raise

    @staticmethod
    def _open_sessions(claims: dict) -> list[str]:
        return [f"run {c.run_id} still holds phase {c.phase} (since {c.started}): `gitforge start {c.phase}` "
                f"resumes it, `gitforge abandon {c.run_id}` releases it" for c in claims.values()]

    def _prepare(self, phase: Phase, run_id: str, notices: list[str]) -> Session:
        ctx = self.ctx
        record = RunRecord.begin(self.store, run_id, phase, mode="host", target=ctx.target, base=ctx.tip,
                                 builder={"kind": "host", "agent": agent_name()})
        tracker = self._tracker(record)
        tracker.save()
        tracker.event("run.started", base=record.base, mode="host")
        try:
            with self._pool().acquire(record.branch, record.base, run_id, record.folder) as wt:
                wt.keep, wt.keep_reason = True, f"host-agent session {run_id}: gitforge submit or gitforge abandon"
                record.worktree, record.worktree_name = str(wt.path), wt.name
                record.to("edit")
        except BaseException as exc:
            tracker.close("failed", f"could not prepare the worktree: {exc}")
            raise
        tracker.save()
        self.ui.ok(f"claimed phase {phase.id}: {phase.title} (run {run_id})")
        return self._session("started", record, phase, notices=notices)

    def _resume(self, run_id: str) -> Session:
        record = self._record(run_id)
        phase = self._phase(record)
        self.ui.info(f"phase {phase.id} is already claimed by run {run_id}: resuming it")
        return self._session("resumed", record, phase)

    def _session(self, status: str, record: RunRecord, phase: Phase, **extra) -> Session:
        specs = gate_specs(self.ctx.cfg.verify, phase.verification)
        used = len(record.attempts)
        return Session(status, record.run_id, phase, record.worktree, record.branch, record.base,
                       record.target, [{"name": s.name, "run": s.run, "timeout": s.timeout} for s in specs],
                       used, max(self.ctx.cfg.max_attempts - used, 0), **extra)

    # -- submit -----------------------------------------------------------------------------
    def submit(self, run: str | None) -> Session:
        run_id = self._open_run(run)
        record = self._record(run_id)
        phase = self._phase(record)
        with self.store.lease(phase.id, run_id):
            record = self._record(run_id)  # as it is now that no other submit can run
            if record.step == "landing":  # a submit died while moving the target
                return self._recover_landing(phase, record)
            self.meter.start_phase(phase.id)
            return self._submit(phase, record)

    def _recover_landing(self, phase: Phase, record: RunRecord) -> Session:
        """Let recovery decide whether the dead submit's commit reached the target."""
        self.store.release_claim(phase.id, record.run_id)
        with self.store.locked("state", what="the state lock"):
            for message in recover(self.ctx):
                self.ui.warn(message)
        record = load_record(self.store, record.run_id) or record
        if record.status == "landed":
            return self._session("landed", record, phase, commit=record.commit)
        self.store.claim(phase.id, record.run_id)  # nothing landed: the session goes on
        record.reopen("edit").save(self.store)
        return self._submit(phase, record)

    def _submit(self, phase: Phase, record: RunRecord) -> Session:
        ctx, cfg, ui = self.ctx, self.ctx.cfg, self.ui
        run_id, run_dir = record.run_id, self.store.run_dir(record.run_id)
        tracker = self._tracker(record, [_restored(a) for a in record.attempts])
        specs = gate_specs(cfg.verify, phase.verification)
        env = {"GITFORGE_RUN": run_id, "GITFORGE_PHASE": phase.id, "GITFORGE_WORKTREE": record.worktree}
        for pid in end_orphans(run_dir, record.worktree):  # a killed submit's gates (we hold the phase)
            ui.warn(f"ended process {pid} left running by an earlier submit of run {run_id}")
        try:
            with self._pool().resume(record.worktree_name, record.branch, record.base, run_id) as wt:
                wt.keep_reason = f"host-agent session {run_id}: gitforge submit or gitforge abandon"
                diff = ctx.git.capture_worktree(wt.path, wt.branch, wt.base, CAPTURE_EXCLUDE)
                if not diff.strip():
                    return self._session("retry", record, phase, reason="nothing to submit: the worktree has no "
                                         "changes yet")
                n = len(tracker.attempts) + 1
                record.to("submit")
                ui.step(f"submission {n}/{cfg.max_attempts}: validate, apply, audit, gates")
                att = run_attempt(ctx.git, wt, diff, cfg.policy, specs, run_dir, n, env, tracker.gate_printer(False),
                                  f"Phase {phase.id}: {phase.title} (candidate)",
                                  keep_phase=(cfg.backlog, phase.id), isolation=cfg.gates)
                if att.stage == "gates":  # what the gates left is not the agent's: its edits stay
                    restore(ctx.git, wt, att.changes)
                att.summary = f"submitted by {record.builder.get('agent', 'the host agent')}"
                tracker.on_attempt(att)
                if att.ok:
                    return self._land_session(phase, tracker, wt, Reverifier(ctx, ui, wt, specs, run_dir, env))
                return self._after_failure(phase, tracker, wt)
        except WorkFailed as e:
            if record.open and record.step == "land":
                return self._end_failed(phase, tracker, e.message)
            raise

    def _land_session(self, phase: Phase, tracker: Tracker, wt, reverify: Reverifier) -> Session:
        record, last = tracker.record, tracker.attempts[-1]
        tracker.step("land")
        cand = Candidate(wt.base, last.tree, last.commit, list(last.gates))
        try:
            self.ui.step(f"landing on {self.ctx.target}")
            landing = self.lander.land(tracker, phase, "Done", cand, reverify=reverify)
        except WorkFailed as e:  # the target moved and the change conflicts or fails there
            return self._target_moved(phase, tracker, wt, e.message)
        except BacklogError as e:  # the phase was removed or broken on the target meanwhile
            why = f"cannot land on {self.ctx.target}: {e.message}"
            self._not_landed(tracker, why)
            wt.keep_reason = why
            return self._end_failed(phase, tracker, why, retryable=False)
        wt.keep = False  # back to the pool
        self.store.release_claim(phase.id, record.run_id)
        out = endings.landed(self.ui, tracker, phase, landing, self.ctx.target)
        return self._session("landed", record, phase, commit=out.commit, notices=out.notices)

    def _target_moved(self, phase: Phase, tracker: Tracker, wt, why: str) -> Session:
        """The change passed on its base but not on the target's new tip: like a rebase that
        stops, move the session onto the tip with the change carried over, and hand it back."""
        record = tracker.record
        att, tip, target = self._not_landed(tracker, why), self.ctx.tip, self.ctx.target
        if att.number >= self.ctx.cfg.max_attempts or tip == wt.base:
            wt.keep_reason = why
            return self._end_failed(phase, tracker, why)
        conflicts = rebase.onto(self.ctx.git, wt.path, wt.branch, wt.base, tip, Path(att.ledger["patch"]))
        if conflicts is None:
            wt.keep_reason = why
            return self._end_failed(phase, tracker, f"{why}\n(the change could not be carried onto {tip[:12]})")
        tracker.step("edit", base=tip)
        tracker.event("session.rebased", base=tip, conflicts=conflicts)
        now = (f"The worktree is now on the new tip with your change applied; resolve the conflict markers "
               f"(<<<<<<<) in: {', '.join(conflicts)}." if conflicts else
               "The worktree is now on the new tip with your change applied on top; make it pass there.")
        return self._session("retry", record, phase, reason=f"{target} moved to {tip[:12]}: {att.reason}",
                             feedback=f"Submission {att.number}: your change passed on its base, but {target} "
                                      f"moved while you worked and it cannot land on the new tip:\n{why}\n\n{now}")

    @staticmethod
    def _not_landed(tracker: Tracker, why: str) -> Attempt:
        """The last submission passed its gates but did not land: record it as failed."""
        att = tracker.attempts[-1]
        att.ok, att.stage, att.reason, att.details = False, "land", why.splitlines()[0], why.splitlines()[1:]
        tracker.on_attempt(att)
        return att

    def _after_failure(self, phase: Phase, tracker: Tracker, wt) -> Session:
        attempts = tracker.attempts
        att = attempts[-1]
        self.ui.fail(f"submission {att.number}: {att.reason}")
        if att.details:
            self.ui.block("\n".join(str(d) for d in att.details[-40:]))
        seen = Counter(signature(a) for a in attempts if not a.ok)
        if seen[signature(att)] >= SAME_ERROR_LIMIT:
            wt.keep_reason = f"the same error {SAME_ERROR_LIMIT} times"
            return self._end_failed(phase, tracker, f"the same error {SAME_ERROR_LIMIT} times: {att.reason}",
                                    retryable=False)
        if att.number >= self.ctx.cfg.max_attempts:
            wt.keep_reason = f"all {att.number} attempts failed"
            return self._end_failed(phase, tracker, att.reason)
        tracker.step("edit")
        return self._session("retry", tracker.record, phase, reason=att.reason, feedback=feedback_for(att))

    def _end_failed(self, phase: Phase, tracker: Tracker, reason: str, retryable: bool = True) -> Session:
        out = endings.failed(self.ui, self.lander, tracker, phase, reason, retryable)
        self.store.release_claim(phase.id, tracker.run_id)
        last = tracker.attempts[-1] if tracker.attempts else None
        return self._session(out.status, tracker.record, phase, reason=reason, commit=out.commit,
                             notices=out.notices, feedback=feedback_for(last) if last and not last.ok else "")

    # -- abandon ----------------------------------------------------------------------------
    def abandon(self, run: str) -> Session:
        run_id = self._open_run(run)
        record = load_record(self.store, run_id)
        lease = next(c for c in self.store.claims() if c.run_id == run_id)
        with self.store.lease(lease.phase, run_id):
            if record is not None and record.worktree_name:
                with contextlib.suppress(ForgeError):
                    with self._pool().resume(record.worktree_name, record.branch, record.base, run_id) as wt:
                        wt.keep_reason = "its host-agent session was abandoned; the agent's edits are still here"
            if record is not None and record.open:
                self._tracker(record).close("abandoned", "released by gitforge abandon; nothing landed")
            self.store.release_claim(lease.phase, run_id)
        self.store.event("run.abandoned", run_id=run_id, phase=lease.phase)
        where = record.worktree if record else None
        self.ui.ok(f"released phase {lease.phase} (run {run_id})" + (
            f"; its worktree {where} is kept until the phase runs again or `gitforge gc`" if where else ""))
        session = Session("abandoned", run_id, target=self.ctx.target, worktree=where,
                          reason="released; nothing landed")
        with contextlib.suppress(ForgeError, KeyError):
            session.phase = self.ctx.backlog().get(lease.phase)
        return session

    # -- lookups ----------------------------------------------------------------------------
    def _tracker(self, record: RunRecord, attempts: list[Attempt] | None = None) -> Tracker:
        return Tracker(self.store, self.ui, self.meter, record, attempts)

    def _pool(self) -> Pool:
        w = self.ctx.cfg.worktrees
        return Pool(self.ctx.git, self.store, w.setup, w.include, w.pool_size)

    def _open_run(self, run: str | None) -> str:
        """The open session a (prefix of a) run id names, or the only open one."""
        claims = self.store.claims()
        if run is None:
            if len(claims) == 1:
                return claims[0].run_id
            if not claims:
                raise UsageError("there is no open host-agent session", hint="claim a phase first: gitforge start")
            listed = ", ".join(f"{c.run_id} (phase {c.phase})" for c in claims)
            raise UsageError(f"{len(claims)} sessions are open: {listed}", hint="name one: gitforge submit RUN")
        found = [c for c in claims if c.run_id.startswith(run.upper())]
        if len(found) == 1:
            return found[0].run_id
        if found:
            raise UsageError(f"'{run}' matches {len(found)} open sessions", hint="give more of the run id")
        rec = next(iter(find_records(self.store, run)), None)
        if rec is not None:
            raise UsageError(f"run {rec.run_id} is not an open session (its status is {rec.status})",
                             hint=f"see it with gitforge show {rec.run_id}; claim a phase with gitforge start")
        raise UsageError(f"no open session matches '{run}'", hint="gitforge status lists the open sessions")

    def _record(self, run_id: str) -> RunRecord:
        record = load_record(self.store, run_id)
        if record is None or record.mode != "host" or not record.worktree_name:
            raise UsageError(f"run {run_id} has no session record in {self.store.runs_dir}",
                             hint=f"release it (gitforge abandon {run_id}) and start the phase again")
        return record

    def _phase(self, record: RunRecord) -> Phase:
        """The phase as it was on the commit the session started from."""
        return self.ctx.backlog(record.base).get(record.phase)


@dataclass
class SavedAttempt(Attempt):
    """An earlier submission, read back from the run record: enough for the same-error rule
    and the landing's records, and written back exactly as it was saved."""

    saved: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return self.saved


def _restored(saved: dict) -> Attempt:
    return SavedAttempt(saved["number"], ok=saved["ok"], stage=saved["stage"], reason=saved["reason"],
                        details=list(saved.get("details", [])),
                        gates=[GateResult(**g) for g in saved.get("gates", [])], tree=saved.get("tree"),
                        commit=saved.get("commit"), stats=saved.get("stats") or {}, ledger=saved.get("ledger") or {},
                        summary=saved.get("summary", ""), notices=list(saved.get("notices", [])),
                        decision=saved.get("decision"), saved=saved)
