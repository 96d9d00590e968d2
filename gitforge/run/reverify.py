"""Proving a change again on a target that moved: the merged tree is committed on the new tip,
the run's worktree is reset to it, and the gates run there (with the same isolation and
gate-edit rules as the first time). What passes is the Candidate that lands."""

from __future__ import annotations

from pathlib import Path

from gitforge.context import Context
from gitforge.errors import WorkFailed
from gitforge.infra.gates import GateSpec, describe_failure
from gitforge.infra.worktree import write_files
from gitforge.run.lander import Candidate
from gitforge.run.proof import prove
from gitforge.ui import UI, gate_printer


class Reverifier:
    def __init__(self, ctx: Context, ui: UI, wt, specs: list[GateSpec], run_dir: Path, env: dict) -> None:
        self.ctx, self.ui, self.wt, self.specs, self.run_dir, self.env = ctx, ui, wt, specs, run_dir, env

    def __call__(self, tip: str, merged_tree: str) -> Candidate:
        git, wt, target = self.ctx.git, self.wt, self.ctx.target
        commit = git.commit(merged_tree, [tip], "gitforge candidate (rebased)")
        git.worktree_reset(wt.path, wt.branch, commit)

        def reset(extra):
            git.worktree_reset(wt.path, wt.branch, commit)
            write_files(wt.path, extra)
        proof = prove(git, wt.path, merged_tree, self.specs, self.run_dir / "reverify", self.env,
                      gate_printer(self.ui), self.ctx.cfg.gates, reset)
        failed = next((g for g in proof.gates if not g.ok), None)
        if failed is not None:
            raise WorkFailed(f"after {target} moved, {describe_failure(failed)}:\n{failed.tail}")
        if proof.refused:
            raise WorkFailed(f"after {target} moved, {proof.refused}")
        tree = merged_tree
        if proof.extra:
            tree = git.build_tree(merged_tree, proof.extra)
            commit = git.commit(tree, [tip], "gitforge candidate (rebased)")
        return Candidate(tip, tree, commit, list(proof.gates))
