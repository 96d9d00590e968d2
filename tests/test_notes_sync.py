"""`gitforge notes push|fetch` against real bare remotes and clones, and the notes config of init."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import PY, commit_all, git, run_cli, write
from gitforge.land import notesync
from gitforge.errors import LockBusy
from gitforge.git import Git
from gitforge.infra.state import Store

REF = "refs/notes/forge/runs"
HOLDER = ("import sys\nfrom gitforge.infra.state import Store\n"
          "with Store(sys.argv[1]).locked('notes'):\n    print('held', flush=True)\n    sys.stdin.read()\n")


def note(repo: Path, commit: str) -> list[str]:
    """The lines of the run note on `commit` (a clone or the bare remote); [] without one."""
    return git("notes", f"--ref={REF}", "show", commit, cwd=repo, check=False).splitlines()


def add_note(repo: Path, commit: str, line: str) -> None:
    git("notes", f"--ref={REF}", "append", "-m", line, commit, cwd=repo)


def notes_cli(repo: Path, *args: str) -> tuple[int, dict]:
    proc = run_cli("notes", *args, "--json", cwd=repo)
    return proc.returncode, json.loads(proc.stdout)


def remote_refs(remote: Path) -> list[str]:
    return sorted(line.split("\t")[1] for line in git("ls-remote", str(remote), cwd=remote).splitlines())


@pytest.fixture
def world(tmp_path, make_repo):
    """A bare remote holding main (three commits), and a function that clones it."""
    seed = make_repo(name="seed")
    commits = [git("rev-parse", "HEAD", cwd=seed).strip()]
    for i in (1, 2):
        write(seed, {f"f{i}.txt": f"{i}\n"})
        commits.append(commit_all(seed, f"commit {i}"))
    remote = tmp_path / "remote.git"
    git("init", "-q", "--bare", str(remote), cwd=tmp_path)
    git("push", "-q", str(remote), "main", cwd=seed)

    def clone(name: str) -> Path:
        git("clone", "-q", str(remote), name, cwd=tmp_path)
        return tmp_path / name

    return remote, commits, clone


def upload_pack_wrapper(tmp_path: Path, clone: Path, after: str) -> None:
    """Make `clone`'s fetches from origin run `after` once git has served the fetch: another
    writer pushing at the worst moment, between gitforge's fetch and its push (real git)."""
    script = tmp_path / "upload-pack-then-race.sh"
    script.write_text("#!/bin/sh\ngit-upload-pack \"$@\"\nstatus=$?\n"
                      f"( unset GIT_PROTOCOL; {after} ) >>{tmp_path / 'race.log'} 2>&1 </dev/null\nexit $status\n")
    script.chmod(0o755)
    git("config", "remote.origin.uploadpack", str(script), cwd=clone)


def test_push_from_one_clone_then_fetch_in_another_shares_the_note(world):
    remote, commits, clone = world
    a, b = clone("a"), clone("b")
    store = Store(a)
    line = json.dumps({"run_id": "A", "phase": "1", "status": "landed"}, sort_keys=True)
    with store.locked("notes", what="the notes lock"):
        Git.open(a).append_note(commits[1], line)

    code, out = notes_cli(a, "push", "origin")
    assert (code, out["command"], out["pushed"], out["remote_has_notes"]) == (0, "notes push", True, False)
    assert [m["where"] for m in out["moves"]] == ["pushed"] and out["moves"][0]["old"] is None
    assert note(remote, commits[1]) == [line]
    # Only refs/notes/forge/* travels: the tracking ref stays home.
    assert remote_refs(remote) == ["HEAD", "refs/heads/main", REF]
    assert git("rev-parse", "refs/notes/remotes/origin/forge/runs", cwd=a) == git("rev-parse", REF, cwd=a)

    code, out = notes_cli(b, "fetch", "origin")
    assert (code, out["command"], out["fetched"], out["merged"]) == (0, "notes fetch", True, True)
    assert git("notes", "--ref=forge/runs", "show", commits[1], cwd=b).splitlines() == [line]

    proc = run_cli("notes", "fetch", cwd=b)  # origin is the default; human output
    assert proc.returncode == 0 and "already have all of the remote's run notes" in proc.stdout


def test_concurrent_notes_merge_after_a_rejected_push(world, tmp_path):
    remote, commits, clone = world
    a, b = clone("a"), clone("b")
    add_note(a, commits[0], '{"run_id": "A0"}')
    add_note(a, commits[1], '{"run_id": "A1"}')
    add_note(b, commits[0], '{"run_id": "B0"}')
    add_note(b, commits[2], '{"run_id": "B2"}')
    # A pushes right after B's fetch was served, so B's first push is rejected (fetch first).
    marker = tmp_path / "raced"
    upload_pack_wrapper(tmp_path, b, f"[ -e {marker} ] || {{ touch {marker}; "
                                     f"{PY} -m gitforge notes push origin -C {a}; }}")

    code, out = notes_cli(b, "push", "origin")
    assert code == 0, out
    assert marker.exists() and "pushed run notes" in (tmp_path / "race.log").read_text()
    assert out["attempts"] == 2 and out["pushed"] and out["merged"]
    assert "after 2 tries" in out["summary"]

    for repo in (remote, a, b):
        if repo != remote:
            assert notes_cli(repo, "fetch", "origin")[0] == 0
        assert sorted(note(repo, commits[0])) == ['{"run_id": "A0"}', '{"run_id": "B0"}']
        assert note(repo, commits[1]) == ['{"run_id": "A1"}']
        assert note(repo, commits[2]) == ['{"run_id": "B2"}']
    tips = {git("rev-parse", REF, cwd=repo) for repo in (remote, a, b)}
    assert len(tips) == 1


def test_push_gives_up_when_the_remote_keeps_moving(world, tmp_path):
    remote, commits, clone = world
    b, c = clone("b"), clone("c")
    add_note(b, commits[0], '{"run_id": "B"}')
    counter = tmp_path / "count"
    # Every fetch B makes is followed by another writer's push: B can never catch up.
    upload_pack_wrapper(tmp_path, b, f"echo x >>{counter}; n=$(wc -l <{counter}); "
                                     f"git -C {c} notes --ref={REF} append -m \"C$n\" {commits[1]} && "
                                     f"git -C {c} push origin 'refs/notes/forge/*:refs/notes/forge/*'")

    proc = run_cli("notes", "push", "origin", cwd=b)
    assert proc.returncode == 1, proc.stderr
    assert f"kept moving while gitforge pushed ({notesync.PUSH_ATTEMPTS} tries" in proc.stderr
    assert "gitforge notes push origin" in proc.stderr  # the hint: what to do next
    assert len(counter.read_text().splitlines()) == notesync.PUSH_ATTEMPTS
    assert note(remote, commits[0]) == []  # nothing of B's was forced over C's
    assert note(b, commits[0]) == ['{"run_id": "B"}']  # and B's own note is kept, with C's merged in
    # C1..C4 (`git notes append` separates them with blank lines); C5 came after B's last fetch.
    assert [x for x in note(b, commits[1]) if x] == [f"C{n}" for n in range(1, notesync.PUSH_ATTEMPTS)]


def test_repeated_fetch_and_push_change_nothing(world):
    remote, commits, clone = world
    a, b = clone("a"), clone("b")
    add_note(a, commits[0], '{"run_id": "A"}')
    add_note(b, commits[0], '{"run_id": "B"}')
    assert notes_cli(a, "push")[0] == 0
    assert notes_cli(b, "push")[0] == 0
    assert notes_cli(a, "fetch")[0] == 0
    tip = git("rev-parse", REF, cwd=remote)

    for repo in (a, b):
        for _ in range(2):
            code, out = notes_cli(repo, "push", "origin")
            assert code == 0
            assert (out["fetched"], out["merged"], out["pushed"], out["moves"]) == (False, False, False, [])
            assert "nothing to push" in out["summary"]
            code, out = notes_cli(repo, "fetch", "origin")
            assert code == 0 and (out["fetched"], out["merged"], out["moves"]) == (False, False, [])
        assert sorted(note(repo, commits[0])) == ['{"run_id": "A"}', '{"run_id": "B"}']
    assert git("rev-parse", REF, cwd=remote) == tip


def test_a_remote_without_notes_is_not_an_error(world):
    remote, commits, clone = world
    a = clone("a")
    proc = run_cli("notes", "fetch", "origin", cwd=a)
    assert proc.returncode == 0 and "the remote has no run notes yet" in proc.stdout
    code, out = notes_cli(a, "fetch", "origin")
    assert code == 0 and (out["remote_has_notes"], out["fetched"], out["merged"]) == (False, False, False)

    code, out = notes_cli(a, "push", "origin")
    assert code == 0 and not out["pushed"] and "no run notes to push" in out["summary"]
    assert remote_refs(remote) == ["HEAD", "refs/heads/main"]
    assert git("for-each-ref", "refs/notes", cwd=a) == ""


def test_an_unknown_or_unreachable_remote_exits_2(world, tmp_path):
    remote, commits, clone = world
    a = clone("a")
    for verb in ("fetch", "push"):
        proc = run_cli("notes", verb, "upstream", cwd=a)
        assert proc.returncode == 2
        assert "'upstream' is not a remote of this repository (remotes: origin)" in proc.stderr
        assert "git remote add" in proc.stderr
    code, out = notes_cli(a, "fetch", "upstream")
    assert code == 2 and out["ok"] is False and "upstream" in out["error"]

    git("remote", "add", "gone", str(tmp_path / "no-such.git"), cwd=a)
    proc = run_cli("notes", "push", "gone", cwd=a)
    assert proc.returncode == 2 and "internal error" not in proc.stderr
    assert "could not fetch run notes from 'gone'" in proc.stderr
    assert "does not appear to be a git repository" in proc.stderr  # git's own words


def _hold_notes_lock(root: Path) -> subprocess.Popen:
    holder = subprocess.Popen([PY, "-c", HOLDER, str(root)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    return holder


def test_fetch_waits_for_the_notes_lock_before_merging(world):
    remote, commits, clone = world
    a, b = clone("a"), clone("b")
    add_note(a, commits[0], '{"run_id": "A"}')
    assert notes_cli(a, "push")[0] == 0
    holder = _hold_notes_lock(b)
    try:
        fetch = subprocess.Popen([PY, "-m", "gitforge", "notes", "fetch", "origin"], cwd=b,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        seen = []
        for line in fetch.stderr:
            seen.append(line)
            if "waiting for the notes lock" in line:
                break
        assert "waiting for the notes lock" in "".join(seen), seen
        # Fetched, but not merged while another process holds the lock.
        assert git("for-each-ref", "--format=%(refname)", "refs/notes", cwd=b).split() == \
            ["refs/notes/remotes/origin/forge/runs"]
        assert fetch.poll() is None
    finally:
        holder.stdin.close()
        holder.wait()
    out, err = fetch.communicate(timeout=120)
    assert fetch.returncode == 0, err
    assert "merged the remote's run notes" in out
    assert note(b, commits[0]) == ['{"run_id": "A"}']


def test_a_notes_lock_that_stays_busy_stops_the_merge(world):
    remote, commits, clone = world
    a, b = clone("a"), clone("b")
    add_note(a, commits[0], '{"run_id": "A"}')
    assert notes_cli(a, "push")[0] == 0
    holder = _hold_notes_lock(b)
    try:
        waits: list[str] = []
        with pytest.raises(LockBusy) as info:
            notesync.fetch(Git.open(b), Store(b), "origin", wait=0, on_wait=waits.append)
    finally:
        holder.stdin.close()
        holder.wait()
    assert info.value.exit_code == 1
    assert "notes lock" in info.value.message and "nothing was merged" in info.value.message
    assert waits and "waiting for the notes lock" in waits[0]
    assert note(b, commits[0]) == []
    sync = notesync.fetch(Git.open(b), Store(b), "origin")  # once free, the same call merges
    assert sync.merged and note(b, commits[0]) == ['{"run_id": "A"}']


def test_init_sets_the_notes_config_once(make_repo):
    repo = make_repo()
    git("config", "--add", "notes.rewriteRef", "refs/notes/commits", cwd=repo)
    first = run_cli("init", cwd=repo)
    assert first.returncode == 0, first.stderr
    assert "notes.rewriteRef += refs/notes/forge/runs" in first.stderr
    assert "notes.forge/runs.mergeStrategy = cat_sort_uniq" in first.stderr
    second = run_cli("init", cwd=repo)
    assert second.returncode == 0 and "notes." not in second.stderr
    assert git("config", "--get-all", "notes.rewriteRef", cwd=repo).split() == ["refs/notes/commits", REF]
    assert git("config", "--get-all", "notes.forge/runs.mergeStrategy", cwd=repo).split() == ["cat_sort_uniq"]
    assert notesync.configure(Git.open(repo)) == []

    # A plain `git notes merge` into forge/runs now unions both sides instead of stopping on a conflict.
    head = git("rev-parse", "HEAD", cwd=repo).strip()
    add_note(repo, head, '{"run_id": "ours"}')
    git("notes", "--ref=refs/notes/theirs", "add", "-m", '{"run_id": "theirs"}', head, cwd=repo)
    git("notes", "--ref=forge/runs", "merge", "refs/notes/theirs", cwd=repo)
    assert note(repo, head) == ['{"run_id": "ours"}', '{"run_id": "theirs"}']


def test_amend_and_rebase_carry_the_note_to_the_new_commit(make_repo):
    repo = make_repo()
    write(repo, {"x.txt": "x\n"})
    before = commit_all(repo, "unconfigured")
    add_note(repo, before, '{"run_id": "lost"}')
    git("commit", "-q", "--amend", "-m", "unconfigured, amended", cwd=repo)
    assert note(repo, "HEAD") == []  # plain git drops it: this is what init fixes

    assert run_cli("init", cwd=repo).returncode == 0
    commit_all(repo, "add the backlog")
    write(repo, {"y.txt": "y\n"})
    landed = commit_all(repo, "phase 1")
    with Store(repo).locked("notes", what="the notes lock"):
        Git.open(repo).append_note(landed, '{"run_id": "R1"}')
    git("commit", "-q", "--amend", "-m", "phase 1, reworded", cwd=repo)
    amended = git("rev-parse", "HEAD", cwd=repo).strip()
    assert amended != landed and note(repo, amended) == ['{"run_id": "R1"}']

    git("switch", "-q", "-c", "feature", cwd=repo)
    write(repo, {"z.txt": "z\n"})
    feature = commit_all(repo, "feature work")
    add_note(repo, feature, '{"run_id": "R2"}')
    git("switch", "-q", "main", cwd=repo)
    write(repo, {"w.txt": "w\n"})
    commit_all(repo, "main moves on")
    git("rebase", "-q", "main", "feature", cwd=repo)
    rebased = git("rev-parse", "feature", cwd=repo).strip()
    assert rebased != feature and note(repo, rebased) == ['{"run_id": "R2"}']


def test_notes_push_does_not_run_the_clones_pre_push_hook(world, tmp_path):
    remote, commits, clone = world
    a = clone("a")
    marker = tmp_path / "hook-ran"
    hook = a / ".git" / "hooks" / "pre-push"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\necho 'pre-push hook refuses' >&2\nexit 1\n")
    hook.chmod(0o755)
    add_note(a, commits[0], '{"run_id": "A"}')

    proc = run_cli("notes", "push", "origin", cwd=a)
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()
    assert note(remote, commits[0]) == ['{"run_id": "A"}']

    # The hook is live: a plain git push of the same refs runs it and is refused.
    add_note(a, commits[1], '{"run_id": "A1"}')
    plain = subprocess.run(["git", "push", "origin", "refs/notes/forge/*:refs/notes/forge/*"], cwd=a,
                           capture_output=True, text=True)
    assert plain.returncode != 0 and "pre-push hook refuses" in plain.stderr
    assert marker.exists() and note(remote, commits[1]) == []
