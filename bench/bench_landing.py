#!/usr/bin/env python3
"""How long gitforge takes to land a one-file patch on a large repository, next to the same
git steps in a plain shell script, plus the CLI's cold start. Stdlib only; gitforge runs as
`sys.executable -m gitforge`; everything happens in a temporary directory, removed at the end.

    python bench/bench_landing.py [--files 20000] [--runs 5] [--out docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GITFORGE = [sys.executable, "-m", "gitforge"]
COLD_RUNS = 10
OTTO_YAML = 'target_branch: main\nverify:\n  - {name: trivial, run: "true"}\n'
PHASE = """
## Phase {n}: Bench edit {n}
**Status:** Not started
**Dependencies:** None

### Patch
```diff
{diff}```
---
"""
SHELL_LANDING = Path(__file__).with_name("landing.sh")  # the baseline: the same git steps in bash


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"bench: {shlex.join(args)} failed ({proc.returncode}) in {cwd}:\n{proc.stdout}{proc.stderr}")
    return proc


def timed(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Wall clock of one subprocess, after flushing the writeback left by the previous one."""
    os.sync()
    start = time.perf_counter()
    proc = run(args, cwd, env)
    return time.perf_counter() - start, proc


def hermetic_env(tmp: Path) -> dict[str, str]:
    """A throwaway HOME, no system git config, a fixed identity, auto gc off. Bytecode is cached
    under tmp (as an installed gitforge has it) even where PYTHONDONTWRITEBYTECODE is set."""
    home = tmp / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[user]\n\tname = Bench\n\temail = bench@example.com\n"
                                     "[gc]\n\tauto = 0\n[maintenance]\n\tauto = false\n")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GIT_", "GITFORGE_")) and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), GIT_CONFIG_NOSYSTEM="1",
               PYTHONPYCACHEPREFIX=str(tmp / "pycache"))
    env.update({f"GIT_{who}_{key}": value for who in ("AUTHOR", "COMMITTER") for key, value in
                (("NAME", "Bench"), ("EMAIL", "bench@example.com"), ("DATE", "2024-01-01T00:00:00Z"))})
    return env


def make_repo(repo: Path, files: int, env: dict[str, str]) -> list[str]:
    """`files` small text files in 100 leaf folders (10 x 10), otto.yaml, BACKLOG.md: one commit
    on main, packed as in a clone (auto gc is off: no background repack during the timings)."""
    paths = [f"d{i % 10}/s{i // 10 % 10}/f{i:05d}.txt" for i in range(files)]
    for i, rel in enumerate(paths):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text("".join(f"file {i} line {k}\n" for k in range(5)))
    (repo / "otto.yaml").write_text(OTTO_YAML)
    (repo / "BACKLOG.md").write_text("# Backlog\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "files"], ["gc", "-q"]):
        run(["git", *args], repo, env)
    return paths


def one_file_diff(repo: Path, rel: str, n: int, env: dict[str, str]) -> str:
    """A real `git diff` that appends a line to `rel`; the checkout is left as it was."""
    (repo / rel).write_text((repo / rel).read_text() + f"edited by bench run {n}\n")
    diff = run(["git", "diff", "--", rel], repo, env).stdout
    run(["git", "checkout", "-q", "--", rel], repo, env)
    return diff


def bench_gitforge(repo: Path, paths: list[str], runs: int, env: dict[str, str]) -> list[float]:
    times = []
    for n in range(1, runs + 1):
        diff = one_file_diff(repo, paths[n * 997 % len(paths)], n, env)
        with open(repo / "BACKLOG.md", "a") as f:
            f.write(PHASE.format(n=n, diff=diff))
        run(["git", "commit", "-q", "-m", f"backlog: phase {n}", "--", "BACKLOG.md"], repo, env)
        seconds, proc = timed([*GITFORGE, "next", "--json"], repo, env)
        if json.loads(proc.stdout)["status"] != "landed":
            sys.exit(f"bench: gitforge next did not land phase {n}:\n{proc.stdout}{proc.stderr}")
        times.append(seconds)
        print(f"  gitforge next #{n}: {seconds:.2f} s", file=sys.stderr)
    return times


def bench_shell(tmp: Path, repo: Path, paths: list[str], runs: int, env: dict[str, str]) -> dict[str, list[float]]:
    """Wall clock of each run of the script ("total"), and of its stages: add, land, remove."""
    times: dict[str, list[float]] = {"total": [], "add": [], "land": [], "remove": []}
    for n in range(1, runs + 1):
        patch = tmp / f"shell-{n}.diff"
        patch.write_text(one_file_diff(repo, paths[(n * 997 + 500) % len(paths)], n, env))
        seconds, proc = timed(["bash", str(SHELL_LANDING), str(repo), str(tmp / f"wt-{n}"), str(patch), str(n)],
                              repo, env)
        times["total"].append(seconds)
        marks = [line.split() for line in proc.stdout.splitlines()]
        for (_, before), (stage, after) in zip(marks, marks[1:]):
            times[stage].append(float(after) - float(before))
        print(f"  shell landing #{n}: {seconds:.2f} s", file=sys.stderr)
    return times


def check_landed(repo: Path, landings: int, env: dict[str, str]) -> None:
    """Every landing left a note, and the checkout of main is clean (gitforge kept it up to date)."""
    notes = run(["git", "notes", "--ref=forge/runs", "list"], repo, env).stdout.splitlines()
    dirty = run(["git", "status", "--porcelain", "--untracked-files=no"], repo, env).stdout
    if len(notes) != landings or dirty:
        sys.exit(f"bench: expected {landings} notes and a clean checkout; got {len(notes)} notes and:\n{dirty}")


def imports_anthropic(args: list[str], repo: Path, env: dict[str, str]) -> bool:
    """True when `python -X importtime -m gitforge ARGS` imports the anthropic package."""
    proc = run([sys.executable, "-X", "importtime", "-m", "gitforge", *args], repo, env)
    return any(line.rstrip().endswith(" anthropic") for line in proc.stderr.splitlines())


def filesystem(path: Path) -> str:
    """The file system under `path` (Linux), and for ext4 whether it has a journal."""
    mounts = [line.split()[:4] for line in Path("/proc/self/mounts").read_text().splitlines()]
    dev, mnt, kind, opts = max((m for m in mounts if path.is_relative_to(m[1])), key=lambda m: len(m[1]))
    if kind == "ext4":
        opts += ", journal" if any(Path("/proc/fs/jbd2").glob(f"{Path(dev).name}-*")) else ", no journal"
    return f"file system of the temporary directory: {kind} on {dev} at {mnt} ({opts})"


def machine(env: dict[str, str], cwd: Path) -> list[str]:
    def out(*args: str) -> str:
        return run(list(args), cwd, env).stdout.strip()
    version = importlib.metadata.version
    return [f"nproc: {out('nproc')}", f"{out(sys.executable, '--version')} ({sys.executable})",
            out("git", "--version"), f"pygit2 {version('pygit2')}, gitforge {version('gitforge')}",
            f"{os.uname().sysname} {os.uname().release} {os.uname().machine}", filesystem(cwd)]


def row(what: str, t: list[float], note: str) -> str:
    return f"| {what} | {len(t)} | {statistics.median(t):.3f} | {min(t):.3f} | {max(t):.3f} | {note} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=20000, help="files in the generated repository")
    ap.add_argument("--runs", type=int, default=5, help="landings for gitforge and for the shell baseline")
    ap.add_argument("--out", type=Path, help="also write the report (Markdown) to this file")
    args = ap.parse_args()
    if args.runs < 2:
        ap.error("--runs must be at least 2 (the first gitforge run is reported apart)")

    with tempfile.TemporaryDirectory(prefix="gitforge-bench-") as tmp_name:
        tmp = Path(tmp_name)
        env = hermetic_env(tmp)
        print("warming up: gitforge demo (fills the bytecode cache, checks gitforge works)", file=sys.stderr)
        run([*GITFORGE, "demo", str(tmp / "demo")], tmp, env)
        repo = tmp / "repo"
        repo.mkdir()
        print(f"generating {args.files} files in {repo}", file=sys.stderr)
        paths = make_repo(repo, args.files, env)
        forge = bench_gitforge(repo, paths, args.runs, env)
        shell = bench_shell(tmp, repo, paths, args.runs, env)
        check_landed(repo, 2 * args.runs, env)
        cold = {name: [timed(cmd, repo, env)[0] for _ in range(COLD_RUNS)]
                for name, cmd in [("help", [*GITFORGE, "--help"]), ("status", [*GITFORGE, "status"]),
                                  ("floor", [sys.executable, "-c", "pass"])]}
        anthropic = {a: imports_anthropic([a], repo, env) for a in ("--help", "status")}
        facts = machine(env, repo)
    said = {a: "imports anthropic!" if bad else "does not import anthropic" for a, bad in anthropic.items()}

    table = "\n".join([
        "| measurement | runs | median s | min s | max s | notes |",
        "|---|---:|---:|---:|---:|---|",
        row("`gitforge next`, first run", forge[:1], "creates the pooled worktree (cold checkout)"),
        row("`gitforge next`, later runs", forge[1:], "pooled worktree reused (checkout -B + clean)"),
        row("shell script, same git steps", shell["total"], "the whole script: the next three rows"),
        row("shell: `git worktree add`", shell["add"], "new branch at main: a cold checkout"),
        row("shell: apply … notes add", shell["land"],
            "`apply --index`, `true`, `commit`, `commit-tree` + `update-ref` + `read-tree -m -u`, `notes add`"),
        row("shell: `git worktree remove`", shell["remove"], "deletes the checkout; then `branch -D`"),
        row("`gitforge --help`", cold["help"], said["--help"]),
        row("`gitforge status`", cold["status"], said["status"]),
        row("`python -c pass`", cold["floor"], "interpreter floor"),
    ])
    print(table)
    if args.out:
        args.out.write_text(report(args, shlex.join([sys.executable, *sys.argv]), facts, table))
        print(f"wrote {args.out}", file=sys.stderr)
    if any(anthropic.values()):
        sys.exit("bench: gitforge imported anthropic on a command that needs no LLM")


def report(args: argparse.Namespace, command: str, facts: list[str], table: str) -> str:
    return f"""# Benchmarks

## Landing a one-file patch on a {args.files:,}-file repository

Produced by `bench/bench_landing.py` (see `bench/README.md`):

    {command}

Wall clock of each subprocess, seen from the caller, with `os.sync()` before each one:

- The repository: {args.files:,} small text files in 100 nested folders, one commit on `main`
  (packed), an `otto.yaml` with one gate (`true`), a `BACKLOG.md`.
- **gitforge**: {args.runs} times, a phase whose `### Patch` is a `git diff` of a one-line edit to
  one file is appended to BACKLOG.md and committed, then `gitforge next` runs end to end: claim,
  worktree, validate/apply/audit, gate, candidate commit, squash landing on `main` with the
  BACKLOG.md/PROGRESS.md bookkeeping, note on `refs/notes/forge/runs`, update of the clean `main`
  checkout. The first run creates the pooled worktree (a cold checkout); later runs reset it.
- **shell baseline**: the same git steps in `bench/landing.sh`, {args.runs} times: `git worktree add`
  (new branch at `main`), `git apply --index`, `true`, `git commit`, a squash onto `main` the way
  gitforge does it (`git commit-tree` on the candidate's tree, compare-and-swap `git update-ref`,
  `git read-tree -m -u` in the `main` checkout), `git notes --ref=forge/runs add`,
  `git worktree remove`, `git branch -D`. No bookkeeping, locks, run records or policy checks.
- **cold start**: {COLD_RUNS} runs each, bytecode cache warm (a `gitforge demo` runs first);
  `python -X importtime -m gitforge …` is checked for an `anthropic` import.

A cold checkout creates every file, so it measures the file system more than git, and it
varies from run to run: read the min and max columns too. On ext4 without a journal (see the
file system line), the inode allocator skips, checking them one by one, the free inodes that
were deleted less than 60 seconds ago (360 while their inode table block is unwritten), so
creating 20,000 files soon after deleting 20,000 costs seconds of kernel time. The shell
baseline deletes its worktree at every landing and pays for it at the next `worktree add`;
gitforge resets its pooled worktree and never deletes it.

Machine:

{chr(10).join(f"- {fact}" for fact in facts)}

{table}
"""


if __name__ == "__main__":
    main()
