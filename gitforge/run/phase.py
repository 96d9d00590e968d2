"""One phase's life as `gitforge next` (and a `run` worker) lives it (DESIGN.md §2 steps 4–12):
worktree -> plan/build/pipeline/pilot (the fix loop) -> land -> record -> clean. Every step is
saved in the run record before it starts, so a run killed anywhere is recovered by the next
one (run/recover.py)."""

from __future__ import annotations

import os
from pathlib import Path

from gitforge.backlog import Phase
from gitforge.builders.base import Job
from gitforge.context import Context
from gitforge.errors import ForgeError, WorkFailed
from gitforge.infra.gates import gate_specs
from gitforge.infra.worktree import Pool, write_files
from gitforge.llm import Client
from gitforge.infra.redact import secrets_from
from gitforge.run import endings
from gitforge.run.calls import Caller, api_key
from gitforge.run.endings import Outcome
from gitforge.run.lander import Candidate, Lander
from gitforge.run.loop import FixLoop
from gitforge.run.proof import CAPTURE_EXCLUDE, Proof, prove
from gitforge.run.queued import QueueSlot
from gitforge.run.record import RunRecord
from gitforge.run.reverify import Reverifier
from gitforge.run.spend import BudgetExceeded, Meter, by_role
from gitforge.run.tracker import Tracker
from gitforge.ui import UI


class PhaseRun:
    def __init__(self, ctx: Context, ui: UI, meter: Meter, lander: Lander, phase: Phase, builder, run_id: str,
                 slot: QueueSlot | None = None, batch: str | None = None) -> None:
        """With `slot`, the gates run through the merge queue (a `run` worker)."""
        self.ctx, self.ui, self.meter, self.lander = ctx, ui, meter, lander
        self.phase, self.builder, self.slot = phase, builder, slot
        record = RunRecord.begin(ctx.store, run_id, phase, target=ctx.target, base=ctx.tip, builder=builder.describe(),
                                 batch=batch)
        self.tracker = Tracker(ctx.store, ui, meter, record)
        self.loop: FixLoop | None = None

    def run(self) -> Outcome:
        ctx, cfg, ui, phase, tracker = self.ctx, self.ctx.cfg, self.ui, self.phase, self.tracker
        rec = tracker.record
        tracker.save()
        tracker.event("run.started", base=rec.base)
        ui.step(f"Phase {phase.id}: {phase.title}  (run {rec.run_id})")
        specs = gate_specs(cfg.verify, phase.verification)
        env = {"GITFORGE_RUN": rec.run_id, "GITFORGE_PHASE": phase.id}
        w = cfg.worktrees
        pool = Pool(ctx.git, ctx.store, w.setup, w.include, w.pool_size)
        self.meter.start_phase(phase.id)
        try:
            with pool.acquire(rec.branch, rec.base, rec.run_id, rec.folder) as wt:
                tracker.step("build", worktree=str(wt.path))
                ui.info(f"worktree {wt.path} ({'reused' if wt.reused else 'new'}) on {wt.branch}")
                env["GITFORGE_WORKTREE"] = str(wt.path)
                self.loop = FixLoop(git=ctx.git, cfg=cfg, ui=ui, builder=self.builder, job=self._job(wt, env),
                                    wt=wt, specs=specs, env=env, caller=self._caller(), meter=self.meter,
                                    on_attempt=tracker.on_attempt, on_gate=tracker.gate_printer(),
                                    commit_message=f"Phase {phase.id}: {phase.title} (candidate)",
                                    verify=self._queued(wt, specs, env) if self.slot else None)
                end = self.loop.run()
                if not end.ok:
                    wt.keep, wt.keep_reason = True, end.reason
                    return self._fail(end.reason, retryable=end.retryable, status=end.status)
                last = tracker.attempts[-1]
                tracker.step("land")
                cand = Candidate(last.base or wt.base, last.tree, last.commit, list(last.gates))
                try:
                    landing = self._land(cand, Reverifier(ctx, ui, wt, specs, rec.folder, env))
                except WorkFailed as e:
                    wt.keep, wt.keep_reason = True, e.message
                    return self._fail(e.message, retryable=True)
                return endings.landed(ui, tracker, phase, landing, ctx.target)
        except ForgeError as e:
            if isinstance(e, WorkFailed):  # a budget, the API out of reach, a landing conflict
                return self._fail(e.message, retryable=getattr(e, "retryable", True)
                                  and not isinstance(e, BudgetExceeded))
            tracker.close("failed", e.message)
            raise
        except (KeyboardInterrupt, Exception) as exc:
            # After the ref move ("landing") the record stays open: recovery checks what landed.
            if rec.open and rec.step != "landing":
                why = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"stopped by an internal error ({exc!r})"
                rec.retryable = True
                tracker.close("crashed", f"{why} during '{rec.step}'; nothing landed")
            raise
        finally:
            if self.slot is not None:
                self.slot.leave()

    def _queued(self, wt, specs, env):
        """The gate step through the merge queue: the gates run on the tree the change is
        predicted to land as (the worktree reset to it), with the usual proof rules."""
        git, cfg, on_gate = self.ctx.git, self.ctx.cfg, self.tracker.gate_printer()

        def gates(tree: str, on: str, log_dir: Path) -> Proof:
            commit = git.commit(tree, [on], "gitforge candidate (queued)")
            git.worktree_reset(wt.path, wt.branch, commit)

            def reset(extra):
                git.worktree_reset(wt.path, wt.branch, commit)
                write_files(wt.path, extra)
            return prove(git, wt.path, tree, specs, log_dir, env, on_gate, cfg.gates, reset)

        return lambda base, tree, log_dir: self.slot.verify(base, tree, log_dir, gates)

    def _land(self, cand: Candidate, reverify: Reverifier):
        self.ui.step(f"landing on {self.ctx.target}")
        self._loop_state()
        return self.lander.land(self.tracker, self.phase, "Done", cand, reverify=reverify)

    def _fail(self, reason: str, retryable: bool, status: str = "Failed") -> Outcome:
        self._loop_state()
        return endings.failed(self.ui, self.lander, self.tracker, self.phase, reason, retryable, status)

    def _loop_state(self) -> None:
        """The plan and the pilot's decisions, however the loop ended (a budget stop raises)."""
        if self.loop is not None:
            plan = self.loop.job.plan
            self.tracker.record.plan = plan.to_json() if plan else None
            self.tracker.record.decisions = self.loop.decisions

    def _job(self, wt, env: dict) -> Job:
        git, rec = self.ctx.git, self.tracker.record
        return Job(phase=self.phase, workdir=wt.path, base=wt.base, view=git.view(wt.base),
                   files=git.list_files(wt.base), run_dir=rec.folder, env=dict(env),
                   protected=tuple(self.ctx.cfg.policy.protected_paths),
                   capture=lambda: git.capture_worktree(wt.path, wt.branch, wt.base, CAPTURE_EXCLUDE),
                   reset=lambda: git.worktree_reset(wt.path, wt.branch, wt.base))

    def _caller(self) -> Caller | None:
        """Model calls for the builder, planner and pilot: only when there is a key."""
        key = api_key(os.environ)
        if key is None:
            return None
        llm, meter, ui = self.ctx.cfg.llm, self.meter, self.ui

        def saved(call: dict) -> None:
            self.tracker.save(llm=by_role(meter.phase_calls()))
            ui.info(f"{call['role']} {call['model']}: {call['input_tokens']} in, {call['output_tokens']} out, "
                    f"cache {call['cache_read_tokens']} read / {call['cache_write_tokens']} written — "
                    f"${call['usd']:.4f} (phase ${meter.phase_usd():.4f})")
        client = Client(key, max_retries=llm.max_retries, timeout=llm.timeout)
        return Caller(client, meter, Path(self.tracker.record.run_dir), secrets_from(), on_call=saved)
