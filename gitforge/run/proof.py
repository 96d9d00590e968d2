"""The tree that lands is the tree the gates saw (DESIGN.md §2 steps 8 and 10).

A gate may edit files: a formatter run as `ruff --fix` or `sed -i` rewrites what the next gate
then tests. Landing the tree from before the edits would land something no gate passed. So
after the gates, the worktree is compared with the tree under test; tracked files a gate
changed are either refused (otto.yaml `gates.edits: refuse`, the default, with the list of
files) or adopted (`gates.edits: land`): the gates run once more, all of them, on the tree
with the edits, and that tree lands only if that round changes nothing more.
"""

from __future__ import annotations

import difflib
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gitforge.infra.gates import GateResult, GateSpec, run_gates
from gitforge.git import Change, Git

# What an agent or a gate leaves behind that is not part of a change (used when capturing a
# worktree's edits as a diff; ignored files never count either).
CAPTURE_EXCLUDE = ("**/__pycache__/**", "**/*.pyc", "**/.pytest_cache/**", "**/.mypy_cache/**",
                   "**/.ruff_cache/**", "**/node_modules/**", "**/.venv/**")
SHOWN_FILES = 3
SHOWN_LINES = 20


@dataclass
class Proof:
    gates: list[GateResult]
    extra: list[Change] = field(default_factory=list)  # gate edits adopted into the tree that lands
    edited: list[str] = field(default_factory=list)    # tracked files the gates changed
    refused: str | None = None                         # why a green round still proves nothing
    details: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.refused is None and all(g.ok for g in self.gates)


def prove(git: Git, path: Path, tree: str, specs: Sequence[GateSpec], log_dir: Path, env: dict[str, str],
          on_gate, isolation, reset: Callable[[list[Change]], None]) -> Proof:
    """Run the gates in the worktree at `path`, which holds `tree`; then make sure they tested
    exactly that tree. `reset(extra)` puts the worktree back at `tree` plus `extra` (for the
    second round of `gates.edits: land`)."""
    mode = getattr(isolation, "edits", "refuse")
    results = run_gates(specs, path, log_dir, env, on_gate, isolation)
    if not all(g.ok for g in results):
        return Proof(results)
    extra = gate_edits(git, path, tree)
    if not extra:
        return Proof(results)
    edited = sorted(c.path for c in extra)
    shown = ", ".join(edited[:10]) + (f" and {len(edited) - 10} more" if len(edited) > 10 else "")
    details = _show_edits(git, path, tree, extra)
    if mode != "land":
        return Proof(results, edited=edited, details=details,
                     refused=f"the gates changed files they were testing ({shown}), so the tree that would land "
                             f"is not the tree they passed (gates.edits: refuse)")
    reset(extra)
    again = run_gates(specs, path, log_dir / "with-gate-edits", env, on_gate, isolation)
    if not all(g.ok for g in again):
        return Proof(again, extra, edited, details=details)
    more = gate_edits(git, path, git.build_tree(tree, extra))
    if more:
        return Proof(again, extra, edited, details=details,
                     refused=f"the gates changed files again on the tree with their own edits "
                             f"({', '.join(sorted(c.path for c in more)[:10])}); they never settle")
    return Proof(again, extra, edited, details=details)


def gate_edits(git: Git, path: Path, tree: str) -> list[Change]:
    """Tracked files of `tree` that differ on disk (changed, deleted, mode flipped), as the
    Changes that would make `tree` what is on disk. New untracked files are leftovers, not edits."""
    snap = git.snapshot_tree(path, CAPTURE_EXCLUDE)
    if snap == tree:
        return []
    view = git.view(tree)
    out = []
    for rel in git.changed_paths(tree, snap):
        kind = view.kind(rel)
        if kind not in ("file", "exec", "link"):
            continue  # not in the tree under test: something a gate left, never landed
        target = path / rel
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            out.append(Change(rel, None))
            continue
        if stat.S_ISLNK(st.st_mode) or kind == "link":
            now = os.readlink(target).encode() if stat.S_ISLNK(st.st_mode) else None
            if now != view.read(rel):
                out.append(Change(rel, target.read_bytes() if now is None else now, "file"))
            continue
        data = target.read_bytes()
        now_kind = "exec" if st.st_mode & 0o111 else "file"
        if data != view.read(rel) or now_kind != kind:
            out.append(Change(rel, data, now_kind))
    return out


def _show_edits(git: Git, path: Path, tree: str, extra: list[Change]) -> list[str]:
    """The first lines of what the gates changed, for the feedback and the record."""
    view = git.view(tree)
    lines = []
    for ch in extra[:SHOWN_FILES]:
        old = (view.read(ch.path) or b"").decode("utf-8", "replace").splitlines()
        new = (ch.data or b"").decode("utf-8", "replace").splitlines()
        diff = list(difflib.unified_diff(old, new, f"a/{ch.path}", f"b/{ch.path}" if ch.data is not None
                                         else "/dev/null", lineterm="", n=1))
        lines += diff[:SHOWN_LINES] + ([f"... ({len(diff) - SHOWN_LINES} more lines)"] if len(diff) > SHOWN_LINES else [])
    return lines
