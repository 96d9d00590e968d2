"""The core in-process (no CLI child, no interpreter start-up): the engine, landing, recovery
and the worktree pool on real temporary repositories."""

from __future__ import annotations

import json

import pytest
from conftest import git, make_diff, phase_md, write

from gitforge.context import Context
from gitforge.run.engine import Engine
from gitforge.errors import WorkFailed
from gitforge.git import Change
from gitforge.run.lander import Candidate, LandConflict, Lander
from gitforge.run.record import RunRecord
from gitforge.run.spend import Meter
from gitforge.run.tracker import Tracker
from gitforge.run.recover import recover
from gitforge.ui import UI
from gitforge.infra.worktree import Pool

BASE = {"app.py": "x = 1\n"}


def engine(root) -> Engine:
    return Engine(Context.open(root), UI(quiet=True))


def land(ctx, cand, reverify=None, run_id="RUN1"):
    """The shared landing, as a driver calls it: a run record at step `land`, a Candidate."""
    ui = UI(quiet=True)
    phase = ctx.backlog().get("1")
    rec = RunRecord.begin(ctx.store, run_id, phase, target=ctx.target, base=cand.base, builder={"kind": "patch"})
    rec.to("build").to("land")
    tracker = Tracker(ctx.store, ui, Meter(ctx.cfg.budgets, ctx.cfg.prices), rec)
    tracker.save()
    return Lander(ctx, ui).land(tracker, phase, "Done", cand, reverify=reverify)


def note_of(root, rev: str = "main") -> dict:
    return json.loads(git("notes", "--ref=forge/runs", "show", rev, cwd=root).splitlines()[-1])


def test_engine_lands_a_phase_and_records_it(make_repo, tmp_path):
    root = make_repo(BASE, [phase_md("1", "One", patch=make_diff(BASE, {"a.txt": "a\n"}, tmp_path),
                                     checks=("test -f a.txt",))])
    out = engine(root).next()
    assert out.status == "landed" and out.exit_code == 0
    assert git("rev-parse", "main", cwd=root).strip() == out.commit
    note = note_of(root)
    assert note["run_id"] == out.run_id and [g["name"] for g in note["gates"]] == ["phase-check-1"]
    record = json.loads((root / ".forge/runs" / f"{out.run_id}.json").read_text())
    assert record["status"] == "landed" and record["step"] == "done" and record["commit"] == out.commit
    assert (root / "a.txt").read_text() == "a\n"  # the checkout followed
    assert engine(root).next().status == "nothing"


def test_engine_failure_lands_only_bookkeeping(make_repo, tmp_path):
    root = make_repo(BASE, [phase_md("1", "One", patch=make_diff(BASE, {"a.txt": "a\n"}, tmp_path),
                                     checks=("exit 4",))])
    before = git("rev-parse", "main", cwd=root).strip()
    out = engine(root).next()
    assert out.status == "failed" and "exited with code 4" in out.reason
    assert git("rev-parse", "main~1", cwd=root).strip() == before
    assert set(git("show", "--name-only", "--format=", "main", cwd=root).split()) == {"BACKLOG.md", "PROGRESS.md"}
    assert note_of(root)["status"] == "failed"


def test_land_re_verifies_on_a_moved_target_and_lands_the_merged_tree(make_repo, tmp_path):
    root = make_repo(BASE, [phase_md("1", "One")])
    ctx = Context.open(root)
    g = ctx.git
    base = ctx.tip
    tree = g.build_tree(g.tree_of(base), [Change("a.txt", b"a\n")])
    candidate = g.commit(tree, [base], "candidate")
    write(root, {"other.txt": "o\n"})
    git("add", "other.txt", cwd=root)
    git("commit", "-qm", "someone else", cwd=root)
    seen = []

    def reverify(tip, merged):
        seen.append((tip, merged))
        return Candidate(tip, merged, g.commit(merged, [tip], "rebased"), [])
    landing = land(ctx, Candidate(base, tree, candidate, []), reverify)
    assert landing.reverified and seen and seen[0][0] == g.parents(landing.commit)[0]
    files = set(git("ls-tree", "-r", "--name-only", "main", cwd=root).split())
    assert {"a.txt", "other.txt"} <= files
    assert "RUN1" in git("notes", "--ref=forge/runs", "show", "main", cwd=root)


def test_land_refuses_a_conflict_with_the_moved_target(make_repo):
    root = make_repo(BASE, [phase_md("1", "One")])
    ctx = Context.open(root)
    g = ctx.git

    base = ctx.tip
    tree = g.build_tree(g.tree_of(base), [Change("app.py", b"x = 2\n")])
    write(root, {"app.py": "x = 3\n"})
    git("commit", "-qam", "conflicting", cwd=root)
    with pytest.raises(LandConflict, match="conflicts with it in: app.py") as caught:
        land(ctx, Candidate(base, tree, g.commit(tree, [base], "c"), []), run_id="RUN2")
    assert caught.value.files == ["app.py"] and isinstance(caught.value, WorkFailed)


def test_recover_closes_a_dead_landing_and_restores_its_note(make_repo, tmp_path):
    root = make_repo(BASE, [phase_md("1", "One", patch=make_diff(BASE, {"a.txt": "a\n"}, tmp_path))])
    out = engine(root).next()
    path = root / ".forge/runs" / f"{out.run_id}.json"
    record = json.loads(path.read_text())
    record.update(status="running", step="landing")
    path.write_text(json.dumps(record))
    git("notes", "--ref=forge/runs", "remove", "main", cwd=root)
    ctx = Context.open(root)
    with ctx.store.locked("state"):
        messages = recover(ctx)
    assert any("it had landed as" in m for m in messages)
    assert any("wrote the missing run note" in m for m in messages)
    assert json.loads(path.read_text())["status"] == "landed"
    assert note_of(root)["run_id"] == out.run_id
    with ctx.store.locked("state"):
        assert recover(ctx) == []  # nothing left to do: recovery is idempotent


def test_pool_reuses_keeps_and_releases_worktrees(make_repo, tmp_path):
    root = make_repo(BASE, [])
    ctx = Context.open(root)
    pool = Pool(ctx.git, ctx.store, None, [], size=1)
    with pool.acquire("forge/t-1", ctx.tip, "R1", tmp_path / "logs") as wt:
        assert not wt.reused and (wt.path / "app.py").exists()
        (wt.path / "junk.txt").write_text("left behind")
    with pool.acquire("forge/t-2", ctx.tip, "R2", tmp_path / "logs") as wt2:
        assert wt2.reused and wt2.name == wt.name and not (wt2.path / "junk.txt").exists()
    with pytest.raises(RuntimeError):
        with pool.acquire("forge/t-3", ctx.tip, "R3", tmp_path / "logs") as wt3:
            raise RuntimeError("boom")
    assert [m["run_id"] for m in pool.kept()] == ["R3"]
    assert wt3.keep and "boom" in wt3.keep_reason


def test_a_target_that_never_stops_moving_lands_nothing_and_fails_nothing(make_repo):
    """Someone commits faster than the change can be re-verified: after CAS_ATTEMPTS the landing
    gives up without marking the phase Failed (it is not the change's fault)."""
    from gitforge.errors import LockBusy

    root = make_repo(BASE, [phase_md("1", "One")])
    ctx = Context.open(root)
    g = ctx.git
    base = ctx.tip
    tree = g.build_tree(g.tree_of(base), [Change("a.txt", b"a\n")])
    n = iter(range(100))

    def reverify(tip, merged):  # a person commits again while the gates run
        write(root, {"user.txt": f"{next(n)}\n"})
        git("add", "user.txt", cwd=root)
        git("commit", "-qm", "user", cwd=root)
        return Candidate(tip, merged, g.commit(merged, [tip], "rebased"), [])
    write(root, {"user.txt": "first\n"})
    git("add", "user.txt", cwd=root)
    git("commit", "-qm", "user", cwd=root)
    with pytest.raises(LockBusy, match="kept moving during the landing"):
        land(ctx, Candidate(base, tree, g.commit(tree, [base], "c"), []), reverify, run_id="RUN3")
    assert "Forge-Run" not in git("log", "--format=%B", "main", cwd=root)
    assert "**Status:** Not started" in git("show", "main:BACKLOG.md", cwd=root)


def _merge_lock_free(root) -> bool:
    """Whether another process could take the merge lock right now (a process of our own
    would re-enter it: filelock is re-entrant within a process)."""
    import subprocess
    import sys
    code = ("import sys; from filelock import FileLock, Timeout\n"
            "try:\n    FileLock(sys.argv[1]).acquire(timeout=0)\nexcept Timeout:\n    sys.exit(1)")
    return subprocess.run([sys.executable, "-c", code, str(root / ".forge/locks/merge.lock")]).returncode == 0


def test_re_verification_runs_outside_the_merge_lock(make_repo):
    """Other landings go on while a moved-onto change is re-verified (its gates take seconds)."""
    root = make_repo(BASE, [phase_md("1", "One")])
    ctx = Context.open(root)
    g = ctx.git
    base = ctx.tip
    tree = g.build_tree(g.tree_of(base), [Change("a.txt", b"a\n")])
    write(root, {"other.txt": "o\n"})
    git("add", "other.txt", cwd=root)
    git("commit", "-qm", "someone else", cwd=root)
    free = []

    def reverify(tip, merged):
        free.append(_merge_lock_free(root))
        return Candidate(tip, merged, g.commit(merged, [tip], "rebased"), [])
    landing = land(ctx, Candidate(base, tree, g.commit(tree, [base], "c"), []), reverify)
    assert free == [True] and landing.reverified


def test_a_target_moved_only_by_bookkeeping_lands_without_re_verifying(make_repo, tmp_path):
    """Another phase's failure moved the target with BACKLOG.md/PROGRESS.md alone: the code the
    gates ran on is the code that lands, so the change lands with no second gate run, and the
    other phase's bookkeeping is kept."""
    base_files = dict(BASE)
    root = make_repo(base_files, [phase_md("1", "One"), phase_md("2", "Two", checks=("exit 3",),
                                                                  patch=make_diff(BASE, {"b.txt": "b\n"}, tmp_path))])
    ctx = Context.open(root)
    g = ctx.git
    base = ctx.tip
    tree = g.build_tree(g.tree_of(base), [Change("a.txt", b"a\n")])
    assert engine(root).next("2").status == "failed"  # lands phase 2's Failed status only
    ctx = Context.open(root)
    assert ctx.tip != base

    def reverify(tip, merged):
        raise AssertionError("re-verified although only the bookkeeping moved")
    landing = land(ctx, Candidate(base, tree, g.commit(tree, [base], "c"), []), reverify)
    assert not landing.reverified
    board = git("show", "main:BACKLOG.md", cwd=root)
    assert "**Status:** Failed" in board and "**Status:** Done" in board
    assert git("show", "main:a.txt", cwd=root) == "a\n"
