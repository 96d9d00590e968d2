"""What the pre-push hook and host-agent mode cost, measured with the real CLI and real git.

1. `git push` of one new commit to a local bare remote, on a repository of --files files
   whose history holds --landings gitforge landings (each with its note): without the hook,
   with `gitforge hooks install`, and with the hook and one trivial `pre_push` gate (which
   runs in a pooled worktree at the pushed tip).
2. One phase taken to a landed commit by `gitforge next` (a ### Patch) against the same
   change made through `gitforge start` + an edit + `gitforge submit` (what Claude Code
   runs), on the same repository size.

    python bench/bench_hooks.py [--files 2000] [--landings 20] [--runs 7] [--out docs/hooks.md]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PY = sys.executable


def sh(*args: str, cwd: Path, check: bool = True) -> str:
    return subprocess.run(args, cwd=cwd, check=check, capture_output=True, text=True).stdout


def forge(*args: str, cwd: Path) -> str:
    proc = subprocess.run([PY, "-m", "gitforge", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"gitforge {' '.join(args)} failed:\n{proc.stderr}")
    return proc.stdout


def phase(pid: int, patch: str | None) -> str:
    text = f"## Phase {pid}: Step {pid}\n**Status:** Not started\n**Dependencies:** None\n\n### Tasks\n1. Do it.\n"
    return text + (f"\n### Patch\n````diff\n{patch}````\n" if patch else "")


def add_file_patch(name: str) -> str:
    return f"--- /dev/null\n+++ b/{name}\n@@ -0,0 +1 @@\n+{name}\n"


def make_repo(root: Path, files: int, landings: int, otto: str) -> Path:
    root.mkdir(parents=True)
    sh("git", "init", "-q", "-b", "main", cwd=root)
    for i in range(files):
        p = root / f"pkg{i // 100}" / f"m{i}.py"
        p.parent.mkdir(exist_ok=True)
        p.write_text(f"X = {i}\n")
    (root / "otto.yaml").write_text(otto)
    (root / "BACKLOG.md").write_text("# Backlog\n\n" + "\n".join(phase(i, add_file_patch(f"land{i}.txt"))
                                                                    for i in range(1, landings + 1)))
    sh("git", "add", "-A", cwd=root)
    sh("git", "commit", "-qm", "initial", cwd=root)
    for _ in range(landings):
        forge("next", cwd=root)
    return root


def timed(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def push_times(root: Path, runs: int) -> list[float]:
    bare = root.parent / f"{root.name}-remote.git"
    if not bare.exists():
        sh("git", "init", "-q", "--bare", str(bare), cwd=root.parent)
        sh("git", "remote", "add", "origin", str(bare), cwd=root)
        sh("git", "push", "-q", "origin", "main", "--no-verify", cwd=root)
        sh("git", "push", "-q", "origin", "refs/notes/forge/*:refs/notes/forge/*", "--no-verify", cwd=root)
    counter = [0]

    def one() -> None:
        counter[0] += 1
        (root / "work.txt").write_text(f"{time.time()} {counter[0]}\n")
        sh("git", "add", "work.txt", cwd=root)
        sh("git", "commit", "-qm", f"work {counter[0]}", cwd=root)
        sh("git", "push", "-q", "origin", "main", cwd=root)
    return timed(one, runs)


def summary(xs: list[float]) -> str:
    return f"{statistics.median(xs):.3f} s (min {min(xs):.3f}, max {max(xs):.3f})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--landings", type=int, default=20)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    lines = [f"# Pre-push hook and host-agent mode: {a.files} files, {a.landings} landings, {a.runs} runs", ""]
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"  # its own git identity and config, nothing of the user's
        home.mkdir()
        (home / ".gitconfig").write_text("[user]\n\tname = bench\n\temail = bench@localhost\n")
        os.environ.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1")
        root = make_repo(Path(tmp) / "repo", a.files, a.landings, "verify: []\n")
        plain = push_times(root, a.runs)
        forge("hooks", "install", cwd=root)
        hooked = push_times(root, a.runs)
        (root / "otto.yaml").write_text("verify: []\npre_push:\n  - {name: quick, run: \"true\"}\n")
        sh("git", "commit", "-qam", "pre_push gate", cwd=root)
        gated = push_times(root, a.runs)
        lines += ["| `git push` of one commit | median (min, max) |", "| --- | --- |",
                  f"| no hook | {summary(plain)} |", f"| gitforge hook | {summary(hooked)} |",
                  f"| gitforge hook + one `pre_push` gate (`true`) | {summary(gated)} |", ""]

        next_root = make_repo(Path(tmp) / "next", a.files, 0, "verify: []\n")
        (next_root / "BACKLOG.md").write_text("# Backlog\n\n" + "\n".join(
            phase(i, add_file_patch(f"n{i}.txt")) for i in range(1, a.runs + 2)))
        sh("git", "commit", "-qam", "phases", cwd=next_root)
        forge("next", cwd=next_root)  # the pool's first worktree, outside the timing
        nexts = timed(lambda: forge("next", cwd=next_root), a.runs)

        host = make_repo(Path(tmp) / "host", a.files, 0, "verify: []\n")
        (host / "BACKLOG.md").write_text("# Backlog\n\n" + "\n".join(phase(i, None) for i in range(1, a.runs + 2)))
        sh("git", "commit", "-qam", "phases", cwd=host)
        starts: list[float] = []
        submits: list[float] = []
        for i in range(a.runs + 1):
            t = time.perf_counter()
            s = json.loads(forge("start", "--json", cwd=host))
            t1 = time.perf_counter()
            Path(s["worktree"], f"h{i}.txt").write_text("x\n")
            t2 = time.perf_counter()
            forge("submit", s["run_id"], "--json", cwd=host)
            t3 = time.perf_counter()
            if i:  # the first claims a new worktree; later ones reuse the pool's
                starts.append(t1 - t)
                submits.append(t3 - t2)
        lines += ["| one phase to a landed commit | median (min, max) |", "| --- | --- |",
                  f"| `gitforge next` (patch phase) | {summary(nexts)} |",
                  f"| `gitforge start --json` | {summary(starts)} |",
                  f"| `gitforge submit --json` | {summary(submits)} |", ""]
    text = "\n".join(lines)
    print(text)
    if a.out:
        a.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
