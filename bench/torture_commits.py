#!/usr/bin/env python3
"""A person committing in the main checkout while gitforge lands phases on the branch checked out
there: no user commit may revert a landing, no landing may drop a user commit, nothing lands twice,
and a user commit that git refuses must be refused by git's own lock ("index.lock" or "cannot lock
ref"), to be run again.

    python bench/torture_commits.py [--phases 20] [--editor-share 0.1] [--keep]

One loop runs `gitforge next` until "Nothing to do" over `--phases` `### Patch` phases (each adds
its own file, one `sleep 0.3` gate). Meanwhile another loop, in the main checkout, writes
user.txt and runs `git commit -a -m "user N"` with 50-150 ms pauses (`--pause`); a share of those commits
(`--editor-share`) runs `git commit -a -e` with GIT_EDITOR="sleep 1; true", which holds the
index lock for a second. When gitforge is done, the user's last edit is committed (retried).
Then: every "user N" commit on main touches user.txt alone (else it reverted a landing), every
commit git reported is on main, every phase landed once with its file and its note, BACKLOG.md
says Done for all, `git status` is clean. Prints one summary line; exits 1 when a promise broke.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import torture_lib as T

LOCK_WORDS = ("index.lock", "cannot lock ref")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--phases", type=int, default=20)
    p.add_argument("--editor-share", type=float, default=0.1, help="share of commits through a 1 s editor")
    p.add_argument("--pause", type=float, nargs=2, default=(0.05, 0.15), metavar=("MIN", "MAX"),
                   help="seconds between two user commits, drawn uniformly (default 0.05 0.15)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = p.parse_args()
    rng = random.Random(args.seed)

    tmp = Path(tempfile.mkdtemp(prefix="torture-commits-"))
    env = T.hermetic_env(tmp)
    tag = env[T.TAG_VAR]
    root = tmp / "repo"
    files = {f"f{n}.txt": f"phase {n}\n" for n in range(1, args.phases + 1)}
    diffs = T.new_file_diffs(tmp, env, files)
    phases = [T.phase_md(str(n), f"Add f{n}", checks=("sleep 0.3",), patch=diffs[f"f{n}.txt"])
              for n in range(1, args.phases + 1)]
    T.make_repo(root, env, phases, 'verify:\n  - {name: quick, run: "true", timeout: 120}\n',
                files={"user.txt": "start\n"})
    print(f"torture_commits: {root} (tag {tag})", file=sys.stderr, flush=True)

    tally = T.Tally()
    stop = threading.Event()
    attempts: list[tuple[int, str, int, str]] = []  # (n, how, exit code, stderr)
    editor_env = {**env, "GIT_EDITOR": "sleep 1; true"}

    def commit(n: int, how: str) -> subprocess.CompletedProcess[str]:
        if how == "editor":
            cmd, e = ["git", "commit", "-q", "-a", "-e", "-m", f"user {n}"], editor_env
        else:
            cmd, e = ["git", "commit", "-q", "-a", "-m", f"user {n}"], env
        proc = subprocess.run(cmd, cwd=root, env=e, capture_output=True, text=True)
        attempts.append((n, how, proc.returncode, proc.stderr.strip()))
        return proc

    def user() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            (root / "user.txt").write_text(f"user edit {n}\n")
            commit(n, "editor" if rng.random() < args.editor_share else "m")
            time.sleep(rng.uniform(*args.pause))
        for _ in range(20):  # the last edit, once gitforge is done
            if not T.dirty(root, env):
                return
            n += 1
            if commit(n, "final").returncode == 0:
                return
            time.sleep(0.5)

    runs: list[T.Result] = []
    start = time.monotonic()
    person = threading.Thread(target=user)
    person.start()
    try:
        for _ in range(args.phases + 10):
            res = T.run_cli(["next"], root, env)
            runs.append(res)
            first = (res.stdout.strip() or res.stderr.strip()).splitlines()[:1]
            print(f"  gitforge next: exit {res.code} in {res.seconds:.1f}s: {first[0][:100] if first else ''}; "
                  f"{len(attempts)} user commits so far", file=sys.stderr, flush=True)
            if res.code == 3:
                tally.add("exit 3", 1, T.crash_report(res))
            elif res.code != 0:
                tally.add("failed runs", 1, f"exit {res.code}: {T.gist(res.stderr)}")
            for line in res.stderr.splitlines():
                if "moved to" in line and "checkout" in line:  # a landing that left the checkout alone
                    tally.add("checkout left behind", 1, line.strip())
            if "Nothing to do" in res.stdout or res.code not in (0, 1):
                break
    finally:
        stop.set()
        person.join(timeout=120)
        T.kill_tagged(tag)
    elapsed = time.monotonic() - start

    # user commits: what they touched, and that none was lost
    log = T.git(["log", "--format=%H%x1f%s", "main"], root, env).stdout.splitlines()
    user_commits = {}
    for line in log:
        sha, subject = line.split("\x1f", 1)
        if subject.startswith("user "):
            user_commits[subject] = sha
            touched = T.git(["show", "--name-only", "--format=", sha], root, env).stdout.split()
            if touched != ["user.txt"]:
                diff = T.git(["show", "--stat", "--format=%s", sha], root, env).stdout
                tally.add("reverted", 1, f"{subject} ({sha[:12]}) touched {touched}:\n{diff}")
    ok = [(n, how) for n, how, code, _ in attempts if code == 0]
    lost = [f"user {n}" for n, _ in ok if f"user {n}" not in user_commits]
    tally.add("lost user commits", len(lost), f"git said committed, not on main: {lost}")
    refused = [(n, how, err) for n, how, code, err in attempts if code != 0]
    by_lock = [r for r in refused if any(w in r[2] for w in LOCK_WORDS)]
    other = [r for r in refused if r not in by_lock]
    for n, how, err in other:
        tally.add("refused otherwise", 1, f"user {n} ({how}): {err}")
    last_ok = max((n for n, _ in ok), default=None)
    if last_ok is not None:
        content = T.git(["show", "main:user.txt"], root, env).stdout
        if content != f"user edit {last_ok}\n":
            tally.add("reverted", 1, f"main:user.txt is {content!r}, the last user commit wrote 'user edit {last_ok}'")

    # landings
    commits = T.forge_commits(root, env)
    landed = Counter(c.phase for c in commits if c.status == "Done")
    wanted = [str(n) for n in range(1, args.phases + 1)]
    twice = {p: k for p, k in landed.items() if k > 1}
    tally.add("landed twice", len(twice), f"{twice}")
    never = [p for p in wanted if not landed[p]]
    tally.add("lost landings", len(never), f"phases never landed: {never}")
    tree = set(T.git(["ls-tree", "-r", "--name-only", "main"], root, env).stdout.split())
    gone = [f"f{p}.txt" for p in wanted if landed[p] and f"f{p}.txt" not in tree]
    tally.add("reverted", len(gone), f"files of landed phases missing on main: {gone}")
    missing = T.missing_notes(root, env, commits)
    tally.add("missing notes", len(missing), ", ".join(f"{c.commit[:12]} (phase {c.phase})" for c in missing))
    not_done = {p: s for p, s in T.board(root, env).items() if s != "Done"}
    tally.add("board not Done", len(not_done), f"BACKLOG.md on main: {not_done}")
    status = T.dirty(root, env)
    tally.add("dirty checkouts", 1 if status else 0, f"git status --porcelain at the end:\n{status}")
    locks = T.git_locks(root)
    tally.add("stuck locks", len(locks), ", ".join(str(p.relative_to(root)) for p in locks))

    c = tally.counts
    hows = Counter(how for _, how, _, _ in attempts)
    print(f"torture_commits: {elapsed:.0f}s, {len(runs)} gitforge runs; user commits by kind {dict(hows)}; "
          f"{len(ok)} committed; refused: {len(by_lock)} by git's lock, {len(other)} otherwise", file=sys.stderr)
    print(f"{len(attempts)} user commits: {c['reverted']} reverted, {c['landed twice']} landed twice, "
          f"{len(by_lock)} refused by git's lock, {c['refused otherwise']} refused otherwise, "
          f"{c['lost user commits']} lost, {c['lost landings']} phases not landed, {c['missing notes']} missing notes, "
          f"{c['dirty checkouts']} dirty checkouts, {c['failed runs']} failed runs")
    broke = any(c[k] for k in ("reverted", "landed twice", "refused otherwise", "lost user commits", "lost landings",
                               "missing notes", "board not Done", "dirty checkouts", "stuck locks", "exit 3"))
    if broke or args.keep:
        (tmp / "evidence.txt").write_text("\n\n".join(tally.evidence))
        print(f"torture_commits: kept {tmp} (evidence in {tmp / 'evidence.txt'})", file=sys.stderr)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if broke else 0


if __name__ == "__main__":
    sys.exit(main())
