"""One attempt of the patch pipeline, with its ledger entry (DESIGN.md §2 step 7–8):

    created -> validated -> applied -> verified -> committed
    or quarantined (refused by the policy), apply_failed, rolled_back (audit or gate failed)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gitforge.backlog import Backlog, parse_backlog
from gitforge.errors import BacklogError, PatchRefused
from gitforge.infra.gates import GateResult, GateSpec, describe_failure
from gitforge.run.proof import prove
from gitforge.git import Change, Git
from gitforge.patch import TreeView, apply_patches, audit, check_policy, parse_patch, summarize
from gitforge.infra.state import now_iso
from gitforge.infra.worktree import Worktree, restore, write_files


@dataclass
class Attempt:
    number: int
    ok: bool = False
    stage: str = "created"
    reason: str = ""
    details: list[str] = field(default_factory=list)
    gates: list[GateResult] = field(default_factory=list)
    changes: tuple[Change, ...] = ()
    tree: str | None = None
    commit: str | None = None
    stats: dict = field(default_factory=dict)
    ledger: dict = field(default_factory=dict)
    base: str | None = None                            # the commit the gates ran on (None: the run's base)
    summary: str = ""                                  # the builder's own words for the change
    notices: list[str] = field(default_factory=list)   # flagged, not refused (e.g. outside the plan)
    decision: dict | None = None                       # what the pilot decided after this attempt

    @property
    def feedback(self) -> str:
        """What a builder needs to fix its next patch: the reason, then the details."""
        return "\n".join([self.reason, *self.details]).strip()

    def to_json(self) -> dict:
        return {"number": self.number, "ok": self.ok, "stage": self.stage, "reason": self.reason,
                "details": self.details, "gates": [g.to_json() for g in self.gates], "stats": self.stats,
                "files": [c.path for c in self.changes], "tree": self.tree, "commit": self.commit, "base": self.base,
                "ledger": self.ledger, "summary": self.summary, "notices": self.notices, "decision": self.decision}


def dropped(number: int, reason: str, details: list[str]) -> Attempt:
    """An attempt whose builder produced no usable diff (cut off, malformed, timed out): it is
    recorded and fed back, and nothing was applied."""
    entry: dict = {"patch": None, "sha256": "", "state": "created", "transitions": []}
    _move(entry, "created", "no diff")
    _move(entry, "dropped", reason)
    return Attempt(number, stage="build", reason=reason, details=list(details), ledger=entry)


def _move(entry: dict, state: str, reason: str = "") -> None:
    entry["state"] = state
    entry["transitions"].append({"state": state, "at": now_iso(), "reason": reason})


def backlog_problems(changes: Sequence[Change], backlog: str, phase_id: str,
                     before: bytes | None = None) -> list[str]:
    """A patch may edit BACKLOG.md, but what it leaves must still parse and hold its phase, and
    (against `before`, the base's backlog) keep the board: only gitforge writes Status lines."""
    for ch in changes:
        if ch.old_path == backlog and ch.path != backlog:
            return [f"{backlog}: the patch renames the backlog away"]
        if ch.path != backlog:
            continue
        if ch.data is None:
            return [f"{backlog}: the patch deletes the backlog"]
        try:
            after = parse_backlog(ch.data.decode("utf-8"), path=backlog)
            after.get(phase_id)
        except UnicodeDecodeError:
            return [f"{backlog}: the patched backlog is not UTF-8"]
        except BacklogError as e:
            return [f"after the patch, {e.message}"]
        try:
            base = parse_backlog((before or b"").decode("utf-8"), path=backlog)
        except (UnicodeDecodeError, BacklogError):
            return []  # a run never starts from such a base; nothing to compare with
        return _board_changes(base, after)
    return []


def _board_changes(base: Backlog, after: Backlog) -> list[str]:
    """What a patch did to the board that only gitforge (Status) or a person (the phases) may do."""
    new = {p.id: p for p in after.phases}
    old_ids = {p.id for p in base.phases}
    added = [p for p in after.phases if p.id not in old_ids]
    problems = []
    for old in base.phases:
        where = f"{base.path}:{old.line}: the patch"
        if old.id in new and new[old.id].status != old.status:
            problems.append(f"{after.path}:{after.status_line(old.id)}: the patch changes phase {old.id}'s "
                            f"Status from {old.status} to {new[old.id].status}; only gitforge writes Status lines")
        elif old.id not in new and (same := [p for p in added if p.title == old.title]):
            problems.append(f"{where} changes the id of phase {old.id} ({old.title}) to {same[0].id}; "
                            "only a person renumbers a phase")
            added.remove(same[0])
        elif old.id not in new:
            problems.append(f"{where} removes phase {old.id} ({old.title}); only a person removes a phase")
    problems += [f"{after.path}:{after.status_line(p.id)}: the patch adds phase {p.id} with Status {p.status}; "
                 "a new phase starts Not started" for p in added if p.status != "Not started"]
    return problems


def patch_changes(view: TreeView, diff: str, policy, scope=None,
                  keep_phase: tuple[str, str] | None = None) -> tuple[tuple[Change, ...], dict]:
    """Parse, validate and apply `diff` against `view` (a commit's tree or a working tree) in
    memory, then audit. Raises PatchRefused (with `.stage` set) before anything is written.
    `keep_phase` = (backlog path, phase id): the backlog must still parse and hold that phase, and
    no phase's Status, id or presence may differ from the backlog in `view` (backlog_problems)."""
    try:
        patches = parse_patch(diff)
    except PatchRefused as e:
        e.stage = "validate"
        raise
    reasons = check_policy(patches, view, max_files=policy.max_files, max_lines=policy.max_lines,
                           max_file_bytes=policy.max_file_bytes, protected=policy.protected_paths,
                           forbid_binary=policy.forbid_binary, scope=scope)
    if reasons:
        err = PatchRefused("the patch was refused by the policy", reasons)
        err.stage = "validate"
        raise err
    try:
        applied = apply_patches(patches, view, max_file_bytes=policy.max_file_bytes)
    except PatchRefused as e:
        e.stage = "apply"
        raise
    changes = tuple(Change(c.path, c.data, c.mode, c.old_path) for c in applied)
    problems = audit(applied) + (backlog_problems(changes, *keep_phase, view.read(keep_phase[0]))
                                 if keep_phase else [])
    if problems:
        err = PatchRefused("the patched files failed the audit", problems)
        err.stage = "audit"
        raise err
    stats = {"files": len(patches), "added": sum(p.added for p in patches),
             "removed": sum(p.removed for p in patches),
             "hunks": summarize([p for c in applied for p in c.hunks]),
             "placements": [{"file": c.path, "hunk": n, "strategy": p.strategy, "offset": p.offset}
                            for c in applied for n, p in enumerate(c.hunks, 1)]}
    return changes, stats


def run_attempt(git: Git, wt: Worktree, diff: str, policy, specs: Sequence[GateSpec], run_dir: Path,
                number: int, env: dict[str, str],
                on_gate: Callable[[GateSpec, GateResult | None], None] | None = None,
                commit_message: str = "candidate", keep_phase: tuple[str, str] | None = None,
                scope: Sequence[str] | None = None, isolation=None, verify=None) -> Attempt:
    """Take one diff through validate -> apply -> audit -> gates -> candidate commit. With
    `verify` (run/queued.py), the gates run through the merge queue, on the tree the change is
    predicted to land as, instead of on the worktree's base."""
    patch_file = run_dir / "patches" / f"attempt-{number}.diff"
    patch_file.parent.mkdir(parents=True, exist_ok=True)
    patch_file.write_text(diff, encoding="utf-8", errors="surrogateescape")
    entry = {"patch": str(patch_file), "sha256": hashlib.sha256(diff.encode("utf-8", "surrogateescape")).hexdigest(),
             "state": "created", "transitions": []}
    att = Attempt(number, ledger=entry)
    _move(entry, "created", f"{len(diff)} bytes")
    try:
        changes, stats = patch_changes(git.view(wt.base), diff, policy, scope=scope, keep_phase=keep_phase)
    except PatchRefused as e:
        stage = getattr(e, "stage", "validate")
        att.stage, att.reason, att.details = stage, e.message, list(e.reasons)
        if stage == "validate":
            _move(entry, "quarantined", e.message)
        elif stage == "apply":
            _move(entry, "validated")
            _move(entry, "apply_failed", e.message)
        else:
            _move(entry, "validated")
            _move(entry, "applied")
            _move(entry, "rolled_back", e.message)
        return att
    att.changes, att.stats = changes, stats
    _move(entry, "validated")
    if number > 1:  # the previous attempt left its files: back to the base first
        restore(git, wt, changes)
    else:
        write_files(wt.path, changes)
    _move(entry, "applied", f"{stats['files']} file(s), +{stats['added']} -{stats['removed']}; "
                            f"hunks: {stats['hunks']}")
    entry["hunks"] = stats["placements"]
    tree = git.build_tree(git.tree_of(wt.base), changes)
    log_dir = run_dir / f"attempt-{number}"
    base = wt.base
    if verify is None:
        proof = prove(git, wt.path, tree, specs, log_dir, env, on_gate, isolation,
                      lambda extra: restore(git, wt, (*changes, *extra)))
    else:
        done = verify(wt.base, tree, log_dir)
        if done.conflict:
            att.stage, att.reason = "merge", f"the change conflicts with what landed on the target in: " \
                                             f"{', '.join(done.conflict)}"
            att.details = [f"the target is now at {done.tip}; the run moves there for the next attempt"]
            att.base = done.tip
            _move(entry, "rolled_back", att.reason)
            return att
        proof, tree, base = done.proof, done.tree, done.base
    att.gates, att.base = proof.gates, base
    failed = next((g for g in att.gates if not g.ok), None)
    if failed is not None:
        att.stage, att.reason = "gates", describe_failure(failed)
        att.details = [f"last lines of its output ({failed.log}):", failed.tail]
        _move(entry, "rolled_back", att.reason)
        return att
    if proof.refused:
        att.stage, att.reason = "gates", proof.refused
        att.details = ["set gates.edits: land in otto.yaml to land what the gates produce, or make the gate "
                       "only check (e.g. `ruff format --check` instead of `ruff format`). What they changed:",
                       *proof.details]
        _move(entry, "rolled_back", att.reason)
        return att
    if proof.extra:
        changes = _merged(changes, proof.extra)
        att.changes = changes
        att.notices.append(f"the gates changed {', '.join(proof.edited)}; landing the tree they tested "
                           f"(gates.edits: land)")
        tree = git.build_tree(tree, proof.extra)
    _move(entry, "verified", f"{len(att.gates)} gate(s) passed")
    att.tree = tree
    att.commit = git.commit_worktree(wt.path, wt.branch, att.tree, [base], commit_message)
    _move(entry, "committed", att.commit)
    att.ok, att.stage = True, "committed"
    return att


def _merged(changes: Sequence[Change], extra: Sequence[Change]) -> tuple[Change, ...]:
    """The change plus what the gates edited on top of it (a later edit of a path wins)."""
    by_path = {c.path: c for c in changes}
    for c in extra:
        old = by_path.get(c.path)
        by_path[c.path] = Change(c.path, c.data, c.mode, old.old_path if old else None)
    return tuple(by_path.values())
