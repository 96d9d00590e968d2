"""The fix loop (DESIGN.md §2 steps 5–9): plan, build, validate/apply/gates, and between failed
attempts the pilot, until a verified candidate or a reason to stop.

Stops, each with its reason: `max_attempts` spent; the same error signature three times; a
builder failure that retrying cannot help (an agent that hung); the pilot's skip_phase,
rollback_run or mark_fatal; a budget (raised as BudgetExceeded, a WorkFailed).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from gitforge.builders.base import Built, Job, Plan
from gitforge.errors import ConfigError, WorkFailed
from gitforge.run.fixes import execute_fix
from gitforge.llm import LLMError
from gitforge.patch.policy import in_scope
from gitforge.run.pilot import Decision, Pilot, signature
from gitforge.run.pipeline import Attempt, dropped, run_attempt
from gitforge.run.planner import PlanFailed, make_plan
from gitforge.infra.worktree import restore

SAME_ERROR_LIMIT = 3


@dataclass
class LoopEnd:
    ok: bool
    attempts: list[Attempt]
    status: str = "Failed"   # the phase's status when not ok: Failed | Skipped
    reason: str = ""
    retryable: bool = True
    plan: Plan | None = None
    decisions: list[dict] = field(default_factory=list)


class FixLoop:
    def __init__(self, *, git, cfg, ui, builder, job: Job, wt, specs, env: dict, caller, meter,
                 on_attempt: Callable[[Attempt], None], on_gate, commit_message: str, verify=None) -> None:
        self.git, self.cfg, self.ui, self.builder, self.job, self.wt = git, cfg, ui, builder, job, wt
        self.verify = verify  # the merge queue's gate step (run/queued.py), or None: gates on the base
        self.specs, self.env, self.caller, self.meter = specs, env, caller, meter
        self.on_attempt, self.on_gate, self.commit_message = on_attempt, on_gate, commit_message
        llm = cfg.llm
        self.pilot = Pilot(caller, meter, llm.pilot_model, llm.pilot_strong_model, llm.escalate_below,
                           cfg.execute_fix.commands if cfg.execute_fix.enabled else None) if cfg.pilot else None
        self.attempts: list[Attempt] = []
        self.decisions: list[dict] = []

    def run(self) -> LoopEnd:
        try:
            return self._run()
        except LLMError as e:
            raise _llm_failure(e) from None

    def _run(self) -> LoopEnd:
        cfg, job = self.cfg, self.job
        job.plan = self._plan()
        self.builder.start(job, self.caller)
        feedback: str | None = None
        queued: Built | None = None  # a diff an executed fix produced: it skips the builder once
        seen: Counter[str] = Counter()
        for n in range(1, cfg.max_attempts + 1):
            built = queued or self.builder.build(n, feedback)
            queued = None
            if built is None:
                break
            att = self._attempt(n, built)
            if att.ok:
                return self._end(True)
            self.ui.fail(f"attempt {n}: {att.reason}")
            if att.details:
                self.ui.block("\n".join(str(d) for d in att.details[-40:]))
            sig = signature(att)
            self.meter.count_failure(sig)  # the run's failure budget and breaker (across workers)
            seen[sig] += 1
            if seen[sig] >= SAME_ERROR_LIMIT:
                return self._end(False, reason=f"the same error {SAME_ERROR_LIMIT} times: {att.reason}",
                                 retryable=False)
            if built.final:  # e.g. an agent that hung: a later run would only hang again
                return self._end(False, reason=att.reason, retryable=False)
            if n == cfg.max_attempts:
                break
            feedback = feedback_for(att)
            if self.pilot is not None and sum(not a.ok for a in self.attempts) >= 2:
                decision = self.pilot.decide(job.phase.text, self.attempts, job.plan, self._last_diff())
                att.decision = decision.to_json()
                self.decisions.append({"attempt": n, **att.decision})
                self.on_attempt(att)
                self.ui.info(f"pilot ({decision.source}): {decision.action} "
                             f"(confidence {decision.confidence:.2f}) — {decision.reason}")
                end, feedback, queued = self._act(decision, feedback, n)
                if end is not None:
                    return end
        last = self.attempts[-1] if self.attempts else None
        return self._end(False, reason=last.reason if last else "the builder produced no patch",
                         retryable=self.builder.kind != "patch")

    # -- steps ----------------------------------------------------------------------------
    def _plan(self) -> Plan | None:
        if not self.cfg.planner.enabled or self.builder.kind == "patch":  # a written patch needs no plan
            return None
        if self.caller is None:
            self.ui.warn("planner.enabled, but there is no ANTHROPIC_API_KEY: building without a plan")
            return None
        try:
            plan = make_plan(self.caller, self.cfg.planner.model, self.job)
        except PlanFailed as e:
            self.ui.warn(f"{e}: building without a plan")
            return None
        self.ui.info(f"plan: {', '.join(plan.files) or '(no files named)'} — {plan.approach.splitlines()[0]}")
        return plan

    def _attempt(self, n: int, built: Built) -> Attempt:
        self.ui.step(f"attempt {n}/{self.cfg.max_attempts}: validate, apply, audit, gates")
        if built.failure is not None:
            att = dropped(n, built.failure, built.details)
        else:
            plan = self.job.plan
            scope = list(plan.files) if plan and plan.files and self.cfg.policy.scope == "refuse" else None
            att = run_attempt(self.git, self.wt, built.diff, self.cfg.policy, self.specs, self.job.run_dir, n,
                              self.env, self.on_gate, self.commit_message,
                              keep_phase=(self.cfg.backlog, self.job.phase.id), scope=scope,
                              isolation=self.cfg.gates, verify=self.verify)
            if plan and plan.files and scope is None:
                outside = [c.path for c in att.changes if not in_scope(c.path, plan.files)]
                if outside:
                    att.notices.append(f"outside the plan's files: {', '.join(outside)}")
                    self.ui.warn(att.notices[-1])
        if att.stage == "gates":  # drop what the gates left (reports, caches): an agent or a fix
            restore(self.git, self.wt, att.changes)  # command must not capture it
        if att.stage == "merge":  # it conflicts with what landed: the next attempt starts from there
            self._move_base(att.base)
        att.summary = built.summary
        self.attempts.append(att)
        self.on_attempt(att)
        return att

    def _move_base(self, tip: str) -> None:
        """The run moves onto the target's new tip: the worktree, and what the builder sees."""
        job, git = self.job, self.git
        self.wt.base = job.base = tip
        git.worktree_reset(self.wt.path, self.wt.branch, tip)
        job.view, job.files = git.view(tip), git.list_files(tip)
        self.ui.info(f"the run moves onto {tip[:12]}, where the change conflicted")

    def _act(self, d: Decision, feedback: str, n: int) -> tuple[LoopEnd | None, str | None, Built | None]:
        if d.action == "skip_phase":
            return self._end(False, "Skipped", f"the pilot skipped the phase: {d.reason}", False), None, None
        if d.action == "mark_fatal":
            return self._end(False, reason=f"the pilot marked the failure fatal: {d.reason}",
                             retryable=False), None, None
        if d.action == "rollback_run":
            self.git.worktree_reset(self.wt.path, self.wt.branch, self.wt.base)
            return self._end(False, reason=f"the pilot rolled the run back: {d.reason}"), None, None
        if d.action == "replan":
            why = f"Attempt {n} failed and the approach was judged wrong ({d.reason}). What failed:\n{feedback}"
            plan = None
            if self.cfg.planner.enabled:
                try:
                    plan = make_plan(self.caller, self.cfg.planner.model, self.job, feedback, self.job.plan)
                except PlanFailed as e:
                    self.ui.warn(f"replanning failed ({e}); starting over without a plan")
            self.builder.replan(plan, why)  # a fresh start (conversation, or clean worktree) told why
            return None, None, None
        if d.action == "execute_fix":
            built, note = execute_fix(d.commands, self.cfg.execute_fix.commands, self.job, self.wt, self.git,
                                      n, self.env, self.attempts[-1])
            self.ui.info(note)
            return None, f"{feedback}\n\n{note}", built
        hint = f"\n\nHint from the reviewer: {d.hint}" if d.hint else ""
        return None, feedback + hint, None

    def _last_diff(self) -> str:
        patch = self.attempts[-1].ledger.get("patch") if self.attempts else None
        try:
            return open(patch, encoding="utf-8", errors="replace").read() if patch else ""
        except OSError:
            return ""

    def _end(self, ok: bool, status: str = "Failed", reason: str = "", retryable: bool = True) -> LoopEnd:
        return LoopEnd(ok, self.attempts, status, reason, retryable, self.job.plan, self.decisions)


def feedback_for(att: Attempt) -> str:
    """What the builder reads after a failed attempt."""
    body = att.feedback
    if att.stage == "build":
        return body
    if att.stage == "gates":
        return f"Attempt {att.number}: the patch applied, but {body}"
    return f"Attempt {att.number}: the patch was not applied ({att.stage} failed): {body}"


def _llm_failure(e: LLMError) -> Exception:
    if e.kind == "auth":
        return ConfigError(e.message, hint="check ANTHROPIC_API_KEY (console.anthropic.com → API keys)")
    err = WorkFailed(e.message, hint="run the phase again later" if e.kind in ("unavailable", "timeout",
                                                                               "connection") else None)
    err.retryable = e.kind in ("unavailable", "timeout", "connection")
    return err
