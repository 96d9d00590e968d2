"""The pre-push check: a push must not carry a gitforge landing without the run note that
proves it, must not race a landing in progress on the target, and must pass otto.yaml's
`pre_push` gates on each pushed tip. Printing is the command's job (commands/prepush.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from gitforge.config import Config
from gitforge.errors import UsageError
from gitforge.infra.gates import GateResult, GateSpec, gate_specs
from gitforge.git import Git
from gitforge.git.ranges import (PushRange, commits_with_trailer, count_commits, head_ref, is_null, peel_commit,
                                 push_range)
from gitforge.infra.state import Store
from gitforge.infra.worktree import Pool

RUN_TRAILER = "Forge-Run"
STATUS_TRAILER = "Forge-Status"


@dataclass(frozen=True)
class PushedRef:
    """One line of what git gives a pre-push hook on stdin."""

    local_ref: str
    local_sha: str
    remote_ref: str
    remote_sha: str

    @property
    def deletes(self) -> bool:
        return is_null(self.local_sha)


def parse_refs(text: str) -> list[PushedRef]:
    refs = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 4:
            raise UsageError(f"pre-push input line {n} is not `<local ref> <local sha> <remote ref> <remote sha>`: "
                             f"{line!r}", hint="git runs this command itself; to try it by hand, give it such lines")
        refs.append(PushedRef(*parts))
    return refs


@dataclass(frozen=True)
class Finding:
    """A gitforge commit in the push whose run note does not prove it."""

    sha: str
    subject: str
    run_id: str
    reason: str
    missing: bool  # True: no note for the run at all (fetch or copy it); False: the note says it failed


def judge_note(run_id: str, status: str, note: str | None) -> tuple[str, bool] | None:
    """None when `note` proves the commit; else (why, missing). A landing (status Done) needs
    a note line for its run with status "landed" and every gate passed; a bookkeeping commit
    of a failed or skipped phase needs a note line for its run, whatever it says."""
    entries = []
    for line in (note or "").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and entry.get("run_id") == run_id:
            entries.append(entry)
    if not entries:
        return (f"no run note for run {run_id}" if note is None
                else f"its run note has no entry for run {run_id}"), True
    if status != "Done":
        return None
    why = f"run {run_id}'s note does not record a passing landing"
    for entry in entries:
        if entry.get("status") != "landed":
            why = f"run {run_id}'s note says status {entry.get('status')!r}, not 'landed'"
            continue
        gates = entry.get("gates")
        if not isinstance(gates, list):
            why = f"run {run_id}'s note has no gate results"
            continue
        bad = [g for g in gates if not isinstance(g, dict) or g.get("exit_code") != 0 or g.get("timed_out")]
        if not bad:
            return None
        why = f"run {run_id}'s note records failed gate(s): " + ", ".join(_gate_failure(g) for g in bad)
    return why, False


def _gate_failure(gate: object) -> str:
    if not isinstance(gate, dict):
        return "an unreadable gate entry"
    name = gate.get("name", "?")
    if gate.get("timed_out"):
        return f"'{name}' timed out"
    return f"'{name}' exited {gate.get('exit_code')}"


@dataclass
class RefCheck:
    ref: PushedRef
    range: PushRange | None = None  # None for a deletion
    commits: int = 0
    forge: int = 0  # gitforge commits in the range
    findings: list[Finding] = field(default_factory=list)
    landing_busy: bool = False
    tip: str | None = None  # the commit the gates check (None: a deletion, or not a commit)
    gates: list[GateResult] = field(default_factory=list)
    gates_skipped: str = ""  # why the pre_push gates did not run on this tip

    @property
    def gates_failed(self) -> GateResult | None:
        return next((r for r in self.gates if not r.ok), None)

    @property
    def ok(self) -> bool:
        return not self.findings and not self.landing_busy and self.gates_failed is None


def check_notes(git: Git, ref: PushedRef, remote: str | None) -> RefCheck:
    """The range a ref's push adds, and every gitforge commit in it judged by its run note."""
    check = RefCheck(ref)
    if ref.deletes or ref.remote_ref.startswith("refs/notes/"):  # notes carry no landings
        return check
    cwd = git.here
    check.range = push_range(cwd, ref.local_sha, ref.remote_sha, remote)
    check.commits = count_commits(cwd, check.range)
    check.tip = peel_commit(cwd, ref.local_sha)
    for commit in commits_with_trailer(cwd, check.range, RUN_TRAILER):
        check.forge += 1
        run_id = commit.trailers[RUN_TRAILER.lower()]
        status = commit.trailers.get(STATUS_TRAILER.lower(), "Done")
        verdict = judge_note(run_id, status, git.read_note(commit.sha))
        if verdict is not None:
            check.findings.append(Finding(commit.sha, commit.subject, run_id, verdict[0], verdict[1]))
    return check


def landing_busy(git: Git, store: Store, target: str | None, ref: PushedRef) -> bool:
    """True when the push sends the target branch while a landing holds the merge lock. A
    repository where gitforge never ran has no lock file, and gets none from this check."""
    if ref.deletes or not (store.locks_dir / "merge.lock").exists():
        return False
    pushed = ref.local_ref
    if pushed == "HEAD":
        pushed = head_ref(git.here) or pushed
    if not store.is_locked_elsewhere("merge"):
        return False
    if target is None:  # HEAD detached and no target_branch: the landing's own record says where
        targets = {r.get("target") for r in store.runs() if r.get("status") == "running"}
        return pushed in {f"refs/heads/{t}" for t in targets if t}
    return pushed == f"refs/heads/{target}"


def run_tip_gates(git: Git, store: Store, cfg: Config, tip: str,
                  on_gate: Callable[[GateSpec, GateResult | None], None] | None = None) -> list[GateResult]:
    """otto.yaml's `pre_push` gates at `tip`, not in the user's working tree (it may hold
    something else)."""
    specs = gate_specs(cfg.pre_push, [])
    if not specs:
        return []
    w = cfg.worktrees
    return Pool(git, store.ensure(), w.setup, w.include, w.pool_size).gates_at(tip, specs, "pre-push", on_gate,
                                                                                       cfg.gates)


@dataclass
class PushCheck:
    remote: str | None  # the configured remote; None for a URL that no remote uses
    refs: list[RefCheck]
    url: str = ""
    notes_pushed: str | None = None  # notes sync summary when notes.push_with pushed them

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.refs)

    @property
    def forge_commits(self) -> int:
        return sum(r.forge for r in self.refs)


def check_push(git: Git, store: Store, cfg: Config | None, target: str | None, refs: list[PushedRef],
               remote: str | None, on_gate: Callable[[str, GateSpec, GateResult | None], None] | None = None) -> PushCheck:
    """Every check on every pushed ref. The `pre_push` gates run once per distinct tip, and
    only when nothing else already refuses the push (a slow suite would be wasted)."""
    checks = [check_notes(git, ref, remote) for ref in refs]
    for check in checks:
        check.landing_busy = landing_busy(git, store, target, check.ref)
    push = PushCheck(remote, checks)
    if cfg is None or not cfg.pre_push:
        return push
    results: dict[str, list[GateResult]] = {}
    for check in checks:
        if check.tip is None or not check.ref.remote_ref.startswith("refs/heads/"):
            if not check.ref.deletes:
                check.gates_skipped = "not a commit" if check.tip is None else "not a branch"
            continue
        if not push.ok and check.tip not in results:
            check.gates_skipped = "not run: the push is refused already"
            continue
        if check.tip not in results:
            tip = check.tip
            results[tip] = run_tip_gates(git, store, cfg, tip,
                                         (lambda spec, r, tip=tip: on_gate(tip, spec, r)) if on_gate else None)
        check.gates = results[check.tip]
    return push
