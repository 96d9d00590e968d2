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
from gitforge.land.landing import Work, land
from gitforge.run.recover import recover
from gitforge.ui import UI
from gitforge.infra.worktree import Pool

BASE = {"app.py": "x = 1\n"}


def engine(root) -> Engine:
    return Engine(Context.open(root), UI(quiet=True))


def entry(work) -> dict:
    return {"phase": "1", "title": "One", "status": "Done", "run_id": "R", "when": "now", "attempts": 1,
            "builder": "patch", "patch": None, "gates": [], "reason": "", "usd": None}


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
        return g.commit(merged, [tip], "rebased"), []
    phase = ctx.backlog().get("1")
    landing = land(ctx, phase, "RUN1", "Done", lambda w: {"phase": "1", "title": "One", "status": "Done",
                                                         "run_id": "RUN1", "when": "now", "attempts": 1,
                                                         "builder": "patch", "patch": None, "gates": [],
                                                         "reason": "", "usd": None},
                   lambda w: {"run_id": "RUN1"}, work=Work(base, tree, candidate, [], reverify))
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
    with pytest.raises(WorkFailed, match="conflicts with it in: app.py"):
        land(ctx, ctx.backlog().get("1"), "RUN2", "Done", lambda w: {}, lambda w: {},
             work=Work(base, tree, g.commit(tree, [base], "c"), [], None))


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
        return g.commit(merged, [tip], "rebased"), []
    write(root, {"user.txt": "first\n"})
    git("add", "user.txt", cwd=root)
    git("commit", "-qm", "user", cwd=root)
    with pytest.raises(LockBusy, match="kept moving during the landing"):
        land(ctx, ctx.backlog().get("1"), "RUN3", "Done", entry, lambda w: {"run_id": "RUN3"},
             work=Work(base, tree, g.commit(tree, [base], "c"), [], reverify))
    assert "Forge-Run" not in git("log", "--format=%B", "main", cwd=root)
    assert "**Status:** Not started" in git("show", "main:BACKLOG.md", cwd=root)
