#!/usr/bin/env python3
"""Many `gitforge next` at once on one repository: every phase must land exactly once, with its run
note, and the board must say Done for all of them.

    python bench/torture_concurrency.py [--workers 8] [--phases 40] [--gate "sleep 0.2"] [--keep]

A repository with a backlog of `--phases` independent `### Patch` phases (each adds its own file,
with a phase gate `--gate`). `--workers` workers each loop `gitforge next` (a process each time)
until it says "Nothing to do" (or exits with 2 or 3). Then: landings per phase (0 lost, 0
duplicated), a run note for every landing, BACKLOG.md on main says Done for every phase, no exit 3,
no git lock file left, a clean main checkout, nothing left running. Prints one summary line; exits 1
when a promise broke (the evidence is on stderr; the repository is kept).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import torture_lib as T


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--phases", type=int, default=40)
    p.add_argument("--gate", default="sleep 0.2", help="each phase's own gate (default: sleep 0.2)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="torture-conc-"))
    env = T.hermetic_env(tmp)
    tag = env[T.TAG_VAR]
    root = tmp / "repo"
    files = {f"f{n}.txt": f"phase {n}\n" for n in range(1, args.phases + 1)}
    diffs = T.new_file_diffs(tmp, env, files)
    phases = [T.phase_md(str(n), f"Add f{n}", checks=(args.gate,), patch=diffs[f"f{n}.txt"])
              for n in range(1, args.phases + 1)]
    T.make_repo(root, env, phases, 'verify:\n  - {name: quick, run: "true", timeout: 120}\n')
    print(f"torture_concurrency: {root} (tag {tag})", file=sys.stderr, flush=True)

    tally = T.Tally()
    results: list[tuple[int, T.Result]] = []
    lock = threading.Lock()

    def worker(w: int) -> None:
        for _ in range(args.phases + 10):
            res = T.run_cli(["next"], root, env)
            with lock:
                results.append((w, res))
            first = (res.stdout.strip() or res.stderr.strip()).splitlines()[:1]
            print(f"  worker {w}: exit {res.code} in {res.seconds:.1f}s: {first[0][:100] if first else ''}",
                  file=sys.stderr, flush=True)
            if "Nothing to do" in res.stdout or res.code not in (0, 1):
                return

    start = time.monotonic()
    threads = [threading.Thread(target=worker, args=(w,)) for w in range(1, args.workers + 1)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - start

        codes = Counter(res.code for _, res in results)
        for w, res in results:
            if res.code == 3:
                tally.add("exit 3", 1, f"worker {w}: " + T.crash_report(res))
            elif res.code != 0:
                tally.add("failed runs", 1, f"worker {w}: exit {res.code}: {T.gist(res.stderr)}")
        commits = T.forge_commits(root, env)
        landed = Counter(c.phase for c in commits if c.status == "Done")
        wanted = [str(n) for n in range(1, args.phases + 1)]
        lost = [p for p in wanted if landed[p] == 0]
        dup = {p: n for p, n in landed.items() if n > 1}
        tally.add("lost", len(lost), f"phases never landed: {lost}")
        tally.add("duplicated", len(dup), f"phases landed more than once: {dup}")
        missing = T.missing_notes(root, env, commits)
        tally.add("missing notes", len(missing), ", ".join(f"{c.commit[:12]} (phase {c.phase}, run {c.run})"
                                                           for c in missing))
        statuses = T.board(root, env)
        not_done = {p: s for p, s in statuses.items() if s != "Done"}
        tally.add("board not Done", len(not_done), f"BACKLOG.md on main: {not_done}")
        tally.add("board disagrees", len(T.board_disagreements(root, env, commits)),
                  "; ".join(T.board_disagreements(root, env, commits)))
        locks = T.git_locks(root)
        tally.add("stuck locks", len(locks), ", ".join(str(p.relative_to(root)) for p in locks))
        status = T.dirty(root, env)
        tally.add("dirty checkouts", 1 if status else 0, f"git status --porcelain:\n{status}")
        orphans = T.orphans(tag)
        tally.add("orphan processes", len(orphans), str(orphans))
        bookkeeping = [c for c in commits if c.status != "Done"]
        print(f"torture_concurrency: {len(results)} gitforge runs, exit codes {dict(codes)}; "
              f"{len(bookkeeping)} bookkeeping commits ({Counter(c.status for c in bookkeeping)})", file=sys.stderr)
    finally:
        T.kill_tagged(tag)

    c = tally.counts
    print(f"{args.workers} workers x {args.phases} phases: {sum(1 for p in wanted if landed[p])} landed, "
          f"{c['lost']} lost, {c['duplicated']} duplicated, {c['missing notes']} missing notes, {c['exit 3']} exit 3, "
          f"{c['board not Done']} not Done on the board, {c['stuck locks']} stuck locks, "
          f"{c['failed runs']} failed runs, {elapsed:.0f} s")
    broke = any(c[k] for k in ("lost", "duplicated", "missing notes", "exit 3", "board not Done", "board disagrees",
                               "stuck locks", "dirty checkouts", "orphan processes"))
    if broke or args.keep:
        (tmp / "evidence.txt").write_text("\n\n".join(tally.evidence))
        print(f"torture_concurrency: kept {tmp} (evidence in {tmp / 'evidence.txt'})", file=sys.stderr)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if broke else 0


if __name__ == "__main__":
    sys.exit(main())
