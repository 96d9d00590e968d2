"""T1 health checks (`gitforge check --full`): the gates on the target's tip, and uncommitted
changes in a checkout that a landing would touch."""

from __future__ import annotations

from collections.abc import Callable

from gitforge.context import Context
from gitforge.errors import ForgeError
from gitforge.infra.gate_env import GateUnprovable
from gitforge.infra.gates import GateResult, GateSpec, describe_failure, gate_specs
from gitforge.health import T1, Checkup, _few
from gitforge.infra.worktree import Pool


def full(c: Checkup, on_gate: Callable[[GateSpec, GateResult | None], None] | None = None) -> None:
    """T1: the gates on the target's tip, and uncommitted changes a landing would touch."""
    if c.ctx is None:
        c.skip(["gates", "uncommitted"], "needs the repository, otto.yaml and the target branch", T1)
        return
    if c.forge_ok:
        _gates(c, c.ctx, on_gate)
    else:
        c.skip(["gates"], "needs a writable .forge/", T1)
    _uncommitted(c, c.ctx)


def _gates(c: Checkup, ctx: Context, on_gate) -> None:
    specs = gate_specs(ctx.cfg.verify, [])
    if not specs:
        c.add("gates", "warn", "otto.yaml configures no `verify` gates: changes land untested",
              "add one, e.g. verify: [{name: tests, run: \"pytest -q\"}]", T1)
        return
    tip, w = ctx.tip, ctx.cfg.worktrees
    try:
        results = Pool(ctx.git, ctx.store, w.setup, w.include, w.pool_size).gates_at(tip, specs, "check", on_gate,
                                                                                    ctx.cfg.gates)
    except GateUnprovable as e:
        c.add("gates", "error", e.message, e.hint or "", T1)
        return
    except ForgeError as e:
        c.add("gates", "error", f"could not prepare a worktree at {ctx.target}'s tip: {e.message}",
              e.hint or "", T1)
        return
    failed = next((r for r in results if not r.ok), None)
    if failed is None:
        took = sum(r.duration for r in results)
        c.add("gates", "ok", f"{len(results)} gate(s) pass on {ctx.target} at {tip[:12]} ({took:.1f}s)", tier=T1)
        return
    c.add("gates", "error", f"{describe_failure(failed)} on {ctx.target} at {tip[:12]} (log: {failed.log})",
          f"the target's own tip fails its gates, so every phase would fail them too: fix {ctx.target} "
          "first (`gitforge verify` runs them on your working tree)", T1, failed.tail)


def _uncommitted(c: Checkup, ctx: Context) -> None:
    own = {ctx.cfg.backlog, ctx.cfg.progress}
    checkouts = ctx.git.checkouts_of(ctx.target)
    if not checkouts:
        c.add("uncommitted", "ok", f"no checkout has {ctx.target} checked out: a landing moves the branch only",
              tier=T1)
        return
    tip = ctx.tip
    for path in checkouts:
        changed = ctx.git.local_changes(path, tip)
        mine = [p for p in changed if p in own]
        other = [p for p in changed if p not in own]
        if mine:
            c.add("uncommitted", "error", f"{path}: uncommitted changes to {', '.join(mine)}, which every "
                  "landing rewrites", "a landing will leave your checkout behind; commit or stash them", T1)
        if other:
            c.add("uncommitted", "ok", f"{path}: local changes to {len(other)} other file(s) ({_few(other)}); "
                  "a landing leaves them alone unless its phase changes them", tier=T1)
        if not changed:
            c.add("uncommitted", "ok", f"{path}: no uncommitted changes", tier=T1)
