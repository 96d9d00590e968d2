#!/usr/bin/env python3
"""Every hostile patch of bench/torture_corpus.py through the real `gitforge next`: one phase per
patch in a temporary repository, each run on its own. After each run the target branch must hold
the base tree (the bookkeeping files BACKLOG.md and PROGRESS.md aside), the phase must be Failed,
the exit code 1 (never 3), and nothing may have appeared outside the repository (the folder the
base's `outside` symlink points at, the absolute paths the patches aim at, the repository's own
.git/hooks). A last `gitforge next` must then exit normally. Needs only git and the Python that
has gitforge installed; everything happens in a temporary folder with its own HOME.

    python bench/torture_patches.py [--only TEXT] [--keep] [--json]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torture_corpus as tc  # noqa: E402

BOOKKEEPING = {"BACKLOG.md", "PROGRESS.md"}


def phase(pid: int, case: tc.Hostile) -> str:
    return (f"## Phase {pid}: {case.name}\n**Status:** Not started\n**Dependencies:** None\n"
            f"**Priority:** medium\n\n### Tasks\n1. Apply the patch.\n\n### Patch\n````diff\n"
            f"{case.diff.rstrip(chr(10))}\n````\n\n")


def sealed_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GIT_", "GITFORGE")) and k != "ANTHROPIC_API_KEY"}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), GIT_CONFIG_NOSYSTEM="1",
               GIT_AUTHOR_NAME="torture", GIT_AUTHOR_EMAIL="torture@localhost",
               GIT_COMMITTER_NAME="torture", GIT_COMMITTER_EMAIL="torture@localhost")
    return env


def git(root: Path, *args: str, env: dict[str, str]) -> str:
    return subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True,
                          text=True).stdout


def escaped(root: Path, outside: Path) -> list[str]:
    """What exists outside the repository that a hostile patch aimed at."""
    found = [str(p) for p in outside.iterdir()] + [p for p in tc.SENTINELS if os.path.lexists(p)]
    hooks = root / ".git" / "hooks"
    return found + [str(p) for p in hooks.iterdir() if not p.name.endswith(".sample")] if hooks.is_dir() else found


def last_record(root: Path) -> dict:
    runs = sorted((root / ".forge" / "runs").glob("*.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(runs[-1].read_text()) if runs else {}


def run_case(pid: int, case: tc.Hostile, root: Path, outside: Path, base_tree: str, env: dict) -> dict:
    """One `gitforge next`; what it landed is what changed on main (bookkeeping aside) in this run."""
    before = git(root, "rev-parse", "main^{tree}", env=env).strip()
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "gitforge", "next", str(pid)], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)
    tree = git(root, "rev-parse", "main^{tree}", env=env).strip()
    changed = [p for p in git(root, "diff", "--name-only", "-z", before, tree, env=env).split("\0")
               if p and p not in BOOKKEEPING]
    drifted = [p for p in git(root, "diff", "--name-only", "-z", base_tree, tree, env=env).split("\0")
               if p and p not in BOOKKEEPING]
    board = git(root, "show", "main:BACKLOG.md", env=env)
    status = board.split(f"## Phase {pid}: ", 1)[1].split("**Status:** ", 1)[1].split("\n", 1)[0]
    attempt = (last_record(root).get("attempts") or [{}])[-1]
    return {"phase": pid, "name": case.name, "kind": case.kind, "exit": proc.returncode, "status": status,
            "landed": changed, "differs": drifted, "escaped": escaped(root, outside), "stage": attempt.get("stage"),
            "reason": (attempt.get("details") or [attempt.get("reason", "")])[0],
            "seconds": round(time.perf_counter() - start, 2),
            "output": (proc.stdout + proc.stderr)[-2000:] if proc.returncode not in (0, 1) else ""}


def report(results: list[dict], final: int) -> tuple[list[str], bool]:
    landed = [r for r in results if r["landed"]]
    escaped_any = [r for r in results if r["escaped"]]
    crashed = [r for r in results if r["exit"] not in (0, 1)]
    not_failed = [r for r in results if r["status"] != "Failed"]
    stages = collections.Counter(r["stage"] for r in results if not r["landed"])
    exits = collections.Counter(r["exit"] for r in results)
    lines = [f"{len(results)} hostile patches: {len(landed)} landed",
             f"  refused (phase Failed): {len(results) - len(not_failed)}; refused at "
             + ", ".join(f"{stage}: {n}" for stage, n in sorted(stages.items(), key=str)),
             "  exit codes: " + ", ".join(f"{code}: {n}" for code, n in sorted(exits.items())),
             f"  written outside the repository: {len(escaped_any)}; the last `gitforge next`: exit {final}; "
             f"main differs from the base tree in {len(results[-1]['differs']) if results else 0} path(s)",
             "", "| kind | patches | refused | landed | exit 3 |", "| --- | ---: | ---: | ---: | ---: |"]
    kinds = collections.defaultdict(list)
    for r in results:
        kinds[r["kind"]].append(r)
    for kind, rows in kinds.items():
        lines.append(f"| {kind} | {len(rows)} | {sum(r['status'] == 'Failed' for r in rows)} | "
                     f"{sum(bool(r['landed']) for r in rows)} | {sum(r['exit'] == 3 for r in rows)} |")
    bad = landed + escaped_any + crashed + not_failed
    for r in {id(r): r for r in bad}.values():
        lines += ["", f"- phase {r['phase']} ({r['name']}): exit {r['exit']}, status {r['status']}, "
                      f"landed {r['landed'][:3]}, outside {r['escaped'][:3]}"]
        lines += [f"  {r['output'][-600:]}"] if r["output"] else []
    return lines, not bad and final == 0 and not (results and results[-1]["differs"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", help="only the patches whose name contains this text")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    ap.add_argument("--json", action="store_true", help="print one JSON object per patch, then the summary")
    args = ap.parse_args()
    began = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="gitforge-torture-"))
    try:
        home, outside, root = tmp / "home", tmp / "outside", tmp / "repo"
        home.mkdir()
        outside.mkdir()
        env = sealed_env(home)
        pre = [p for p in tc.SENTINELS if os.path.lexists(p)]
        if pre:
            print(f"torture: remove {', '.join(pre)} first (the patches aim there)", file=sys.stderr)
            return 2
        tc.make_repo(root, outside)
        cases = [c for c in tc.corpus(str(outside)) if not args.only or args.only in c.name]
        (root / "BACKLOG.md").write_text("# Backlog\n\n" + "".join(phase(i, c) for i, c in enumerate(cases, 1)))
        git(root, "add", "BACKLOG.md", env=env)
        git(root, "commit", "-q", "-m", "phases", env=env)
        base_tree = git(root, "rev-parse", "main^{tree}", env=env).strip()
        results = []
        for pid, case in enumerate(cases, 1):
            results.append(run_case(pid, case, root, outside, base_tree, env))
            if args.json:
                print(json.dumps(results[-1]), flush=True)
            else:
                print(f"torture: {pid}/{len(cases)} {case.name}: exit {results[-1]['exit']}", file=sys.stderr)
        final = subprocess.run([sys.executable, "-m", "gitforge", "next"], cwd=root, env=env,
                               capture_output=True, text=True, timeout=300).returncode
        lines, ok = report(results, final)
        print("\n".join(lines + ["", f"({time.perf_counter() - began:.0f} s; {sys.executable})"]))
        return 0 if ok else 1
    finally:
        if args.keep:
            print(f"torture: kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
