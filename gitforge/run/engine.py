"""The loop of one phase (DESIGN.md §2): select -> claim -> worktree -> build -> pipeline ->
land -> record -> clean. Every step is recorded in the run record before it starts, so a
run killed anywhere is recovered by the next one (see recover.py)."""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path
from dataclasses import dataclass, field

from gitforge.backlog import Phase, select_next
from gitforge.builders import make_builder
from gitforge.builders.base import Job
from gitforge.run.calls import Caller, api_key
from gitforge.context import Context
from gitforge.errors import ForgeError, UsageError, WorkFailed
from gitforge.infra.gates import GateResult, describe_failure, gate_specs
from gitforge.run.proof import CAPTURE_EXCLUDE, prove
from gitforge.land.landing import Landing, Work, land
from gitforge.llm import Client
from gitforge.run.loop import FixLoop
from gitforge.run.pipeline import Attempt
from gitforge.run.recover import landed_phases, recover, retryable_phases
from gitforge.infra.redact import secrets_from
from gitforge.run.spend import BudgetExceeded, Meter, by_role
from gitforge.infra.state import atomic_write, new_id, now_iso
from gitforge.ui import UI, gate_printer
from gitforge.infra.worktree import Pool, write_files



@dataclass
class Outcome:
    status: str  # "landed" | "failed" | "skipped" | "nothing"
    reason: str = ""
    phase: Phase | None = None
    run_id: str | None = None
    commit: str | None = None
    details: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.status in ("failed", "skipped") else 0

    def to_json(self) -> dict:
        return {"status": self.status, "reason": self.reason, "run_id": self.run_id, "commit": self.commit,
                "phase": self.phase.id if self.phase else None,
                "title": self.phase.title if self.phase else None, "details": self.details,
                "notices": self.notices}


class Engine:
    def __init__(self, ctx: Context, ui: UI) -> None:
        self.ctx = ctx
        self.ui = ui
        self.store = ctx.store  # .forge/ is created by the first write (a run record), not here
        self.meter = Meter(ctx.cfg.budgets, ctx.cfg.prices, warn=ui.warn)  # spend across this invocation

    # -- selection and claim ----------------------------------------------------------------
    def next(self, phase_id: str | None = None, again: bool = False) -> Outcome:
        with self.store.locked("state", what="the state lock"):
            for message in recover(self.ctx):
                self.ui.warn(message)
        if self.ctx.backlog_is_dirty():
            self.ui.warn(f"{self.ctx.cfg.backlog} has uncommitted edits; gitforge works from the version "
                         f"committed on {self.ctx.target}. Commit them to include them.")
        with contextlib.ExitStack() as stack:
            with self.store.locked("state", what="the state lock"):
                phase = self._select(phase_id, again)
                if phase is None:
                    return Outcome("nothing", self._nothing_reason)
                builder = make_builder(self.ctx.cfg, phase)
                self._check_prices(builder)
                run_id = new_id()
                stack.enter_context(self.store.lease(phase.id, run_id))
            return self._run(phase, builder, run_id)

    def _check_prices(self, builder) -> None:
        """Say now, before any call, which models this run may call have no price (they are
        counted at the most expensive known one, and their cost is marked estimated)."""
        cfg = self.ctx.cfg
        if api_key(os.environ) is None:
            return
        models = [cfg.builder.model] if builder.kind == "anthropic" else []
        models += [cfg.planner.model] if cfg.planner.enabled else []
        models += [cfg.llm.pilot_model, cfg.llm.pilot_strong_model] if cfg.pilot else []
        for model in models:
            self.meter.price(model)

    def _select(self, phase_id: str | None, again: bool = False) -> Phase | None:
        backlog = self.ctx.backlog()
        busy = set(self.store.live_leases())
        retryable = retryable_phases(self.store, self.ctx.cfg.max_attempts)
        landed = landed_phases(self.ctx, backlog)
        if phase_id is None:
            sel = select_next(backlog, busy=busy, retryable=retryable, landed=landed)
            self._nothing_reason = sel.reason
            return sel.phase
        phase = backlog.get(phase_id)
        if again:
            landed.pop(phase.id, None)
        sel = select_next(backlog, busy=busy, retryable=retryable, landed=landed)
        runnable = phase.status == "Not started" or (phase.status == "Failed" and phase.id in retryable)
        waiting = [d for d in phase.dependencies if backlog.get(d).status != "Done"]
        if phase.id in busy:
            raise self.store.busy_error(phase.id, self.store.live_leases().get(phase.id))
        if phase.id in landed:
            raise UsageError(f"phase {phase.id} cannot run now: it landed already ({landed[phase.id]}) although "
                             f"{self.ctx.cfg.backlog} says {phase.status}",
                             hint=f"if its landing was undone on purpose, run it anew: gitforge next {phase.id} --again")
        if not runnable or waiting:
            why = sel.blocked.get(phase.id) or (
                f"it waits on phase {', '.join(waiting)}" if waiting else f"its status is {phase.status}")
            raise UsageError(f"phase {phase.id} cannot run now: {why}",
                             hint="run `gitforge status` to see the board")
        return phase

    # -- one run ----------------------------------------------------------------------------
    def _run(self, phase: Phase, builder, run_id: str) -> Outcome:
        ctx, cfg, ui = self.ctx, self.ctx.cfg, self.ui
        base = ctx.tip
        run_dir = self.store.run_dir(run_id)
        record = {"run_id": run_id, "phase": phase.id, "title": phase.title, "status": "running",
                  "step": "worktree", "target": ctx.target, "base": base,
                  "branch": f"forge/{phase.id}-{phase.slug}", "builder": builder.describe(),
                  "pid": os.getpid(), "host": socket.gethostname(), "started": now_iso(), "attempts": [],
                  "run_dir": str(run_dir)}
        self.store.save_run(record)
        self.store.event("run.started", run_id=run_id, phase=phase.id, base=base)
        ui.step(f"Phase {phase.id}: {phase.title}  (run {run_id})")
        specs = gate_specs(cfg.verify, phase.verification)
        env = {"GITFORGE_RUN": run_id, "GITFORGE_PHASE": phase.id}
        pool = Pool(ctx.git, self.store, cfg.worktrees.setup, cfg.worktrees.include, cfg.worktrees.pool_size)
        attempts: list[Attempt] = []
        self.meter.start_phase(phase.id)
        self._loop = None
        try:
            with pool.acquire(record["branch"], base, run_id, run_dir) as wt:
                record.update(worktree=str(wt.path), step="build")
                self.store.save_run(record)
                ui.info(f"worktree {wt.path} ({'reused' if wt.reused else 'new'}) on {wt.branch}")
                env["GITFORGE_WORKTREE"] = str(wt.path)
                loop = FixLoop(git=ctx.git, cfg=cfg, ui=ui, builder=builder, job=self._job(phase, wt, run_dir, env),
                               wt=wt, specs=specs, env=env, caller=self._caller(run_dir, record), meter=self.meter,
                               on_attempt=self._attempt_saver(record, attempts), on_gate=self._gate_printer(record),
                               commit_message=f"Phase {phase.id}: {phase.title} (candidate)")
                self._loop = loop
                end = loop.run()
                if not end.ok:
                    wt.keep, wt.keep_reason = True, end.reason
                    return self._fail(phase, record, attempts, end.reason, retryable=end.retryable,
                                      status=end.status)
                last = attempts[-1]
                record["step"] = "land"
                self.store.save_run(record)
                work = Work(base, last.tree, last.commit, list(last.gates),
                            self._reverifier(wt, specs, run_dir, env))
                try:
                    landing = self._land(phase, record, attempts, work)
                except WorkFailed as e:
                    wt.keep, wt.keep_reason = True, e.message
                    return self._fail(phase, record, attempts, e.message, retryable=True)
                return self._landed(phase, record, landing)
        except ForgeError as e:
            if isinstance(e, WorkFailed):  # a budget, the API out of reach, a landing conflict
                return self._fail(phase, record, attempts, e.message, retryable=getattr(e, "retryable", True)
                                  and not isinstance(e, BudgetExceeded))
            self._close(record, "failed", e.message)
            raise
        except (KeyboardInterrupt, Exception) as exc:
            # After the ref move ("landing") the record stays open: recovery checks what landed.
            if record["status"] == "running" and record["step"] != "landing":
                why = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"stopped by an internal error ({exc!r})"
                record["retryable"] = True
                self._close(record, "crashed", f"{why} during '{record['step']}'; nothing landed")
            raise

    def _job(self, phase: Phase, wt, run_dir: Path, env: dict) -> Job:
        git = self.ctx.git
        return Job(phase=phase, workdir=wt.path, base=wt.base, view=git.view(wt.base), files=git.list_files(wt.base),
                   run_dir=run_dir, env=dict(env), protected=tuple(self.ctx.cfg.policy.protected_paths),
                   capture=lambda: git.capture_worktree(wt.path, wt.branch, wt.base, CAPTURE_EXCLUDE),
                   reset=lambda: git.worktree_reset(wt.path, wt.branch, wt.base))

    def _caller(self, run_dir: Path, record: dict) -> Caller | None:
        """Model calls for the builder, planner and pilot: only when there is a key."""
        key = api_key(os.environ)
        if key is None:
            return None
        llm = self.ctx.cfg.llm

        def saved(call: dict) -> None:
            record["llm"] = by_role(self.meter.phase_calls())
            self.store.save_run(record)
            self.ui.info(f"{call['role']} {call['model']}: {call['input_tokens']} in, {call['output_tokens']} out, "
                         f"cache {call['cache_read_tokens']} read / {call['cache_write_tokens']} written — "
                         f"${call['usd']:.4f} (phase ${self.meter.phase_usd():.4f})")
        client = Client(key, max_retries=llm.max_retries, timeout=llm.timeout)
        return Caller(client, self.meter, run_dir, secrets_from(), on_call=saved)

    def _attempt_saver(self, record: dict, attempts: list[Attempt]):
        def save(att: Attempt) -> None:
            if att not in attempts:
                attempts.append(att)
                self.store.event("attempt.finished", run_id=record["run_id"], attempt=att.number, ok=att.ok,
                                 stage=att.stage, reason=att.reason)
            record["attempts"] = [a.to_json() for a in attempts]
            if record.get("step") == "gates":
                record["step"] = "build"
            self.store.save_run(record)
        return save

    def _gate_printer(self, record: dict | None = None):
        """Prints each gate; with `record`, the run's step says "gates" while they run (an
        interrupt then says so), and the attempt saver sets it back."""
        show = gate_printer(self.ui)
        if record is None:
            return show

        def on_gate(spec, result) -> None:
            if result is None and record.get("step") == "build":
                record["step"] = "gates"
                self.store.save_run(record)
            show(spec, result)
        return on_gate

    def _reverifier(self, wt, specs, run_dir, env):
        def reverify(tip: str, merged_tree: str) -> tuple[str, list[GateResult]]:
            git = self.ctx.git
            self.ui.step(f"{self.ctx.target} moved to {tip[:12]}: re-verifying the change on the new tip")
            commit = git.commit(merged_tree, [tip], "gitforge candidate (rebased)")
            git.worktree_reset(wt.path, wt.branch, commit)

            def reset(extra):
                git.worktree_reset(wt.path, wt.branch, commit)
                write_files(wt.path, extra)
            proof = prove(git, wt.path, merged_tree, specs, run_dir / "reverify", env, self._gate_printer(),
                          self.ctx.cfg.gates, reset)
            failed = next((g for g in proof.gates if not g.ok), None)
            if failed is not None:
                raise WorkFailed(f"after {self.ctx.target} moved, {describe_failure(failed)}:\n{failed.tail}")
            if proof.refused:
                raise WorkFailed(f"after {self.ctx.target} moved, {proof.refused}")
            if proof.extra:
                commit = git.commit(git.build_tree(merged_tree, proof.extra), [tip], "gitforge candidate (rebased)")
            return commit, proof.gates
        return reverify

    # -- endings ----------------------------------------------------------------------------
    def _entry(self, record: dict, attempts: list[Attempt], status: str, reason: str = ""):
        def entry(work: Work | None) -> dict:
            usage = by_role(self.meter.phase_calls()) if self.meter.phase_calls() else None
            last = attempts[-1] if attempts else None
            gates = work.gates if work is not None else (last.gates if last else [])
            return {"phase": record["phase"], "title": record["title"], "status": status,
                    "run_id": record["run_id"], "when": now_iso()[:16].replace("T", " ") + " UTC",
                    "attempts": len(attempts),
                    "builder": " ".join(str(v) for v in record["builder"].values()),
                    "patch": _patch_summary(last), "gates": [g.to_json() for g in gates], "reason": reason,
                    "usd": usage["total_usd"] if usage else None, "usd_estimated": bool(usage and usage.get("estimated"))}
        return entry

    def _note(self, record: dict, attempts: list[Attempt], status: str):
        def note(work: Work | None) -> dict:
            last = attempts[-1] if attempts else None
            gates = work.gates if work is not None else (last.gates if last else [])
            return {"schema_version": 1, "run_id": record["run_id"], "phase": record["phase"], "status": status,
                    "attempts": len(attempts), "builder": record["builder"],
                    "gates": [{"name": g.name, "exit_code": g.exit_code, "duration": g.duration,
                               "timed_out": g.timed_out} for g in gates],
                    "patch": _patch_summary(last), "started": record["started"], "ended": now_iso(),
                    "llm": by_role(self.meter.phase_calls()), "plan": record.get("plan"),
                    "decisions": record.get("decisions", [])}
        return note

    def _loop_state(self, record: dict) -> None:
        """The plan and the pilot's decisions, however the loop ended (a budget stop raises)."""
        loop = getattr(self, "_loop", None)
        if loop is not None:
            record.update(plan=loop.job.plan.to_json() if loop.job.plan else None, decisions=loop.decisions)

    def _land(self, phase: Phase, record: dict, attempts: list[Attempt], work: Work) -> Landing:
        self.ui.step(f"landing on {self.ctx.target}")
        self._loop_state(record)
        note = self._note(record, attempts, "landed")

        def before_move(commit: str) -> None:
            record.update(step="landing", landing_commit=commit, note=note(work))
            self.store.save_run(record)

        return land(self.ctx, phase, record["run_id"], "Done", self._entry(record, attempts, "Done"),
                    note, work=work, before_move=before_move)

    def _landed(self, phase: Phase, record: dict, landing: Landing) -> Outcome:
        record.update(commit=landing.commit, reverified=landing.reverified)
        self._close(record, "landed")
        self.store.event("run.landed", run_id=record["run_id"], phase=phase.id, commit=landing.commit)
        self.ui.ok(f"Phase {phase.id} landed on {self.ctx.target} as {landing.commit[:12]}")
        out = Outcome("landed", phase=phase, run_id=record["run_id"], commit=landing.commit)
        for path, how in landing.checkouts:
            if how:
                self.ui.warn(how)
                out.notices.append(how)
        return out

    def _fail(self, phase: Phase, record: dict, attempts: list[Attempt], reason: str, retryable: bool,
              status: str = "Failed") -> Outcome:
        record.update(retryable=retryable, reason=reason, llm=by_role(self.meter.phase_calls()))
        self._loop_state(record)
        verb = "was skipped" if status == "Skipped" else "failed"
        self.ui.fail(f"Phase {phase.id} {verb}: {reason.splitlines()[0] if reason else ''}")
        out = Outcome("skipped" if status == "Skipped" else "failed", reason, phase=phase, run_id=record["run_id"],
                      details=attempts[-1].details if attempts else [])
        try:
            note = self._note(record, attempts, status.lower())

            def before_move(commit: str) -> None:  # recovery writes the note from here if need be
                record.update(landing_commit=commit, note=note(None))
                self.store.save_run(record)
            landing = land(self.ctx, phase, record["run_id"], status,
                           self._entry(record, attempts, status, reason), note, before_move=before_move)
            record["commit"] = landing.commit
            out.commit = landing.commit
            out.notices += [how for _, how in landing.checkouts if how]
        except ForgeError as e:  # the failure itself is what matters; say the bookkeeping did not land
            self.ui.warn(f"could not record the failure on {self.ctx.target}: {e.message}")
        self._close(record, status.lower(), reason)
        self.store.event(f"run.{status.lower()}", run_id=record["run_id"], phase=phase.id, reason=reason)
        return out

    def _close(self, record: dict, status: str, reason: str | None = None) -> None:
        record.update(status=status, step="done", ended=now_iso())
        if reason is not None:
            record["reason"] = reason
        self.store.save_run(record)
        write_diff_log(record)


def _patch_summary(attempt: Attempt | None) -> dict | None:
    """Files, lines and how the hunks were placed ("2 exact, 1 relocated +3"), without the
    per-hunk list the run record keeps."""
    if attempt is None or not attempt.stats:
        return None
    return {k: v for k, v in attempt.stats.items() if k != "placements"}


def write_diff_log(record: dict) -> None:
    """`runs/<id>/diff-log.md`: what a reviewer wants on one page (DESIGN.md §2 step 11)."""
    lines = [f"# Run {record['run_id']}: phase {record['phase']} — {record['status']}", "",
             f"- Title: {record.get('title', '')}", f"- Branch: {record.get('branch')}",
             f"- Target: {record.get('target')} (base {record.get('base')})",
             f"- Head: {record.get('commit') or '-'}", f"- Builder: {record.get('builder', {}).get('kind')}",
             f"- Started: {record.get('started')}; ended: {record.get('ended')}"]
    if record.get("reason"):
        lines.append(f"- Reason: {record['reason'].splitlines()[0]}")
    for att in record.get("attempts", []):
        stats = att.get("stats") or {}
        lines += ["", f"## Attempt {att['number']}: {'ok' if att['ok'] else 'failed at ' + att['stage']}", "",
                  f"- Patch: {att['ledger'].get('patch')} (sha256 {att['ledger'].get('sha256', '')[:16]})",
                  f"- Files: {', '.join(att.get('files', [])) or '-'}",
                  f"- Hunks: {stats.get('hunks', '-')}; +{stats.get('added', 0)} -{stats.get('removed', 0)}",
                  "- Ledger: " + " → ".join(t["state"] for t in att["ledger"].get("transitions", []))]
        for g in att.get("gates", []):
            verdict = "timed out" if g["timed_out"] else f"exit {g['exit_code']}"
            lines.append(f"- Gate `{g['name']}` (`{g['run']}`): {verdict} in {g['duration']:.2f}s — log {g['log']}")
    path = Path(record["run_dir"]) / "diff-log.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, ("\n".join(lines) + "\n").encode())
