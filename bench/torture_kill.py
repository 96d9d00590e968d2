#!/usr/bin/env python3
"""SIGKILL `gitforge next` at random moments, then let the next `gitforge next` recover, and check
gitforge's crash-safety promises after every recovery and at the end: no orphan processes, every
landing has its run note, no git lock files left, no exit 3, no phase landed twice, a board that
agrees with what landed, a clean main checkout.

    python bench/torture_kill.py [--iterations 40] [--seed N] [--long 30] [--keep]

One repository, a backlog of small `### Patch` phases (each adds its own file), each phase with
one gate of a kind taken in turn: `true`, `sleep 0.5`, `cd / && sleep 30`,
`(sleep 30 &); sleep 1` (its shell exits and leaves a child), `setsid sleep 30 &` (a child in a
session of its own). Each iteration starts `gitforge next` in a session of its own and kills it
with SIGKILL after a delay drawn uniformly over the run's expected duration (some iterations:
aimed at the landing, around the ref move or the checkout's `git read-tree`; some: a second run
killed early, during its recovery), by
`os.killpg` of the whole group or `os.kill` of the gitforge pid alone, in turn. Then up to
`--rounds` `gitforge next` recover and land. Prints one summary line; exits 1 when a promise
broke (the evidence is on stderr; the repository is kept).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torture_lib as T

CHUNK = 10  # phases appended to BACKLOG.md (a commit in the main checkout) when few are left


def kinds(long: float) -> list[tuple[str, str, float]]:
    """(name, gate command, seconds the gate itself takes)."""
    return [("true", "true", 0.0), ("sleep", "sleep 0.5", 0.5), ("cd-away", f"cd / && sleep {long:g}", long),
            ("leaves-child", f"(sleep {long:g} &); sleep 1", 1.0), ("setsid", f"setsid sleep {long:g} &", 0.0)]


class Torture:
    def __init__(self, args) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.tmp = Path(tempfile.mkdtemp(prefix="torture-kill-"))
        self.env = T.hermetic_env(self.tmp)
        self.tag = self.env[T.TAG_VAR]
        self.root = self.tmp / "repo"
        self.logs = self.tmp / "logs"
        self.logs.mkdir()
        self.kinds = kinds(args.long)
        self.tally = T.Tally()
        self.phases = 0
        self.seen_orphans: set[int] = set()
        self.seen_locks: dict[Path, int] = {}
        self.kills = 0
        self.finished_first = 0
        self.steps: dict[str, int] = {}
        self.base = 3.0

    # -- set-up -------------------------------------------------------------------------------
    def phase_text(self, n: int) -> str:
        name, gate, _ = self.kinds[(n - 1) % len(self.kinds)]
        rel = f"f{n}.txt"
        diff = T.new_file_diffs(self.tmp, self.env, {rel: f"phase {n}\n"})[rel]
        return T.phase_md(str(n), f"Add f{n} ({name})", checks=(gate,), patch=diff)

    def setup(self) -> None:
        otto = 'verify:\n  - {name: quick, run: "true", timeout: 120}\n'
        warm = self.tmp / "warm"
        T.make_repo(warm, self.env, [self.phase_text(1)], otto)
        res = T.run_cli(["next"], warm, self.env)
        if res.code != 0:
            sys.exit(f"torture_kill: the warm-up run failed:\n{res.stdout}{res.stderr}")
        self.base = res.seconds
        shutil.rmtree(warm)
        T.make_repo(self.root, self.env, [self.phase_text(n) for n in range(1, CHUNK + 1)], otto)
        self.phases = CHUNK
        print(f"torture_kill: {self.root} (base run {self.base:.1f}s, tag {self.tag})", file=sys.stderr)

    def top_up(self) -> None:
        """Append phases (a person's commit in the main checkout) when few are left to land."""
        done = {c.phase for c in T.forge_commits(self.root, self.env) if c.status == "Done"}
        if self.phases - len(done) >= 2:
            return
        if T.dirty(self.root, self.env):
            return  # counted by the checks; never commit over it
        text = "".join("\n" + self.phase_text(n) for n in range(self.phases + 1, self.phases + CHUNK + 1))
        with open(self.root / "BACKLOG.md", "a") as f:
            f.write(text)
        T.git(["commit", "-q", "-m", f"backlog: phases {self.phases + 1}-{self.phases + CHUNK}", "BACKLOG.md"],
              self.root, self.env)
        self.phases += CHUNK

    def next_phase(self) -> int:
        done = {c.phase for c in T.forge_commits(self.root, self.env) if c.status == "Done"}
        return next((n for n in range(1, self.phases + 1) if str(n) not in done), self.phases)

    # -- one killed run --------------------------------------------------------------------------
    def killed_run(self, i: int, label: str, when: str, delay: float = 0.0) -> None:
        """Start `gitforge next` and SIGKILL it: `when` is "delay" (after `delay` seconds), "landing"
        (`delay` seconds after it prints that it is landing), "ref-move" (`delay` seconds after its
        record says step "landing": around the ref move, the checkout's update and the note) or
        "read-tree" (`delay` seconds after it starts `git read-tree` to update the main checkout)."""
        out, err = self.logs / f"{label}.out", self.logs / f"{label}.err"
        with open(out, "w") as o, open(err, "w") as e:
            proc = subprocess.Popen([*T.GITFORGE, "next"], cwd=self.root, env=self.env, stdout=o, stderr=e,
                                    start_new_session=True)
        how = "killpg" if i % 2 == 0 else "kill-pid"
        start = time.monotonic()
        deadline = start + delay if when == "delay" else float("inf")
        record = None
        while time.monotonic() < deadline and proc.poll() is None and time.monotonic() - start < 600:
            time.sleep(0.002)
            if when == "landing" and deadline == float("inf") and "landing on" in err.read_text(errors="replace"):
                deadline = time.monotonic() + delay
            elif when == "ref-move" and deadline == float("inf"):
                record = record or self.record_path(proc.pid)
                if record is not None and self.read_step(record) == "landing":
                    deadline = time.monotonic() + delay
            elif when == "read-tree" and deadline == float("inf"):
                if any("read-tree" in T.cmdline(c) for c in T.children(proc.pid)):
                    deadline = time.monotonic() + delay
        at = time.monotonic() - start
        if proc.poll() is None:
            (os.killpg if how == "killpg" else os.kill)(proc.pid, signal.SIGKILL)
            proc.wait()
            self.kills += 1
            step = self.step_of(proc.pid)
            self.steps[step] = self.steps.get(step, 0) + 1
            print(f"  {label}: {how} at {at:.2f}s (step {step})", file=sys.stderr, flush=True)
        else:
            self.finished_first += 1
            res = T.Result(["next"], proc.returncode, out.read_text(), err.read_text(), at)
            print(f"  {label}: finished first (exit {proc.returncode}) at {at:.2f}s", file=sys.stderr, flush=True)
            self.check_exit(res)

    def record_path(self, pid: int) -> Path | None:
        runs = self.root / ".forge/runs"
        for path in sorted(runs.glob("*.json"), reverse=True) if runs.is_dir() else []:
            try:
                if json.loads(path.read_text()).get("pid") == pid:
                    return path
            except (OSError, ValueError):
                continue
        return None

    @staticmethod
    def read_step(path: Path) -> str | None:
        try:
            return json.loads(path.read_text()).get("step")
        except (OSError, ValueError):
            return None

    def step_of(self, pid: int) -> str:
        runs = self.root / ".forge/runs"
        for path in sorted(runs.glob("*.json")) if runs.is_dir() else []:
            try:
                rec = json.loads(path.read_text())
            except ValueError:
                return "torn record!"
            if rec.get("pid") == pid:
                return f"{rec.get('step')}"
        return "before its record"

    # -- checks --------------------------------------------------------------------------------
    def check_exit(self, res: T.Result) -> None:
        if res.code == 3:
            self.tally.add("exit 3", 1, T.crash_report(res))
        elif res.code not in (0,):
            self.tally.add("failed runs", 1, f"gitforge next exit {res.code}: {T.gist(res.stderr)}")

    def check(self, when: str, landing: bool) -> None:
        root, env = self.root, self.env
        found = [o for o in T.orphans(self.tag) if o[0] not in self.seen_orphans]
        for pid, token, cmd in found:
            self.seen_orphans.add(pid)
        self.tally.add("orphan processes", len(found), f"{when}: " + "; ".join(
            f"pid {p} `{c}` (token {t})" for p, t, c in found))
        commits = T.forge_commits(root, env)
        missing = T.missing_notes(root, env, commits)
        self.tally.add("missing notes", len(missing), f"{when}: " + ", ".join(
            f"{c.commit[:12]} (phase {c.phase}, run {c.run})" for c in missing))
        twice = T.landed_twice(commits)
        self.tally.add("landed twice", len(twice), f"{when}: {twice}")
        board = T.board_disagreements(root, env, commits)
        self.tally.add("board disagrees", len(board), f"{when}: " + "; ".join(board))
        locks = [p for p in T.git_locks(root) if p not in self.seen_locks]
        for p in locks:
            self.seen_locks[p] = 1
        self.tally.add("stuck locks", len(locks), f"{when}: " + ", ".join(
            f"{p.relative_to(root)} ({p.stat().st_size if p.exists() else '?'} bytes)" for p in locks))
        stray = [p for p in (root / ".git").glob("index.gitforge-*") if p not in self.seen_locks]
        for p in stray:
            self.seen_locks[p] = 1
        self.tally.add("stray index copies", len(stray), f"{when}: " + ", ".join(p.name for p in stray))
        status = T.dirty(root, env)
        if status and landing:
            self.tally.add("dirty checkouts", 1, f"{when}: git status --porcelain:\n{status}")
            # counted once: put it right (nobody edits here) so later iterations are judged on their own
            T.git(["reset", "-q", "--hard", "HEAD"], root, env)
            print("  [torture] reset the checkout to main to go on", file=sys.stderr)
        head = T.git(["symbolic-ref", "HEAD"], root, env).stdout.strip()
        if head != "refs/heads/main":
            self.tally.add("dirty checkouts", 1, f"{when}: HEAD is {head}")

    def recover(self, label: str) -> bool:
        """Up to --rounds `gitforge next`; True when one of them landed or found nothing to do."""
        for r in range(1, self.args.rounds + 1):
            res = T.run_cli(["next"], self.root, self.env)
            (self.logs / f"{label}-r{r}.txt").write_text(f"exit {res.code}\n{res.stdout}\n{res.stderr}")
            self.check_exit(res)
            recovered = [line for line in res.stderr.splitlines() if "gitforge:" not in line and (
                "recovered" in line or "died during" in line or "ended process" in line or "removed the" in line
                or "wrote the missing" in line or "checkout" in line)]
            print(f"  {label} round {r}: exit {res.code} in {res.seconds:.1f}s: {res.stdout.strip()[:90]}"
                  + "".join(f"\n      {line.strip()[:160]}" for line in recovered), file=sys.stderr, flush=True)
            self.check(f"{label} round {r}", landing=res.code == 0)
            if res.code == 0:
                return True
        return False

    # -- the run -------------------------------------------------------------------------------
    def run(self) -> int:
        self.setup()
        started = time.monotonic()
        for i in range(1, self.args.iterations + 1):
            self.top_up()
            n = self.next_phase()
            name, _, gate_seconds = self.kinds[(n - 1) % len(self.kinds)]
            estimate = self.base + gate_seconds
            roll = self.rng.random()
            mode = "landing" if roll < self.args.landing_share else (
                "double" if roll < self.args.landing_share + self.args.double_share else "uniform")
            print(f"[{i}/{self.args.iterations}] phase {n} gate {name} mode {mode} (run ~{estimate:.1f}s)",
                  file=sys.stderr, flush=True)
            if mode == "landing":
                aim = self.rng.choice(["ref-move", "landing", "read-tree"])
                delay = {"ref-move": 0.15, "landing": 0.3, "read-tree": 0.005}[aim]
                self.killed_run(i, f"it{i}", aim, self.rng.uniform(0, delay))
            else:
                self.killed_run(i, f"it{i}", "delay", self.rng.uniform(0, estimate))
            if mode == "double":  # a second run killed early: during its recovery of the first
                self.killed_run(i + 1, f"it{i}b", "delay", self.rng.uniform(0, min(self.base, 3.0)))
            self.recover(f"it{i}")
        # drain, then one more run on an idle repository
        for r in range(self.phases + 5):
            res = T.run_cli(["next"], self.root, self.env)
            self.check_exit(res)
            self.check(f"drain {r}", landing=res.code == 0)
            if "Nothing to do" in res.stdout or res.code not in (0, 1):
                break
        time.sleep(1)
        self.check("end", landing=True)
        commits = T.forge_commits(self.root, self.env)
        done = {c.phase for c in commits if c.status == "Done"}
        lost = [str(n) for n in range(1, self.phases + 1) if str(n) not in done]
        self.tally.add("lost", len(lost), f"phases never landed: {lost}")
        left = T.kill_tagged(self.tag)
        self.tally.add("orphan processes", len([p for p, _ in left if p not in self.seen_orphans]),
                       f"still running at the end: {left}")
        c = self.tally.counts
        print(f"torture_kill: {time.monotonic() - started:.0f}s; kill moments by step: {self.steps}; "
              f"{self.finished_first} runs finished before their kill; "
              f"{self.tally.counts['stray index copies']} stray .git/index.gitforge-* files", file=sys.stderr)
        print(f"{self.kills} kills: {c['orphan processes']} orphan processes, {c['missing notes']} missing notes, "
              f"{c['stuck locks']} stuck locks, {c['exit 3']} exit 3, {c['landed twice']} landed twice, "
              f"{c['dirty checkouts']} dirty checkouts, {c['board disagrees']} board disagreements, "
              f"{c['lost']} lost, {c['failed runs']} failed runs")
        broke = any(c[k] for k in ("orphan processes", "missing notes", "stuck locks", "exit 3", "landed twice",
                                   "dirty checkouts", "board disagrees", "lost"))
        if broke or self.args.keep:
            print(f"torture_kill: kept {self.tmp}", file=sys.stderr)
            if self.tally.evidence:
                (self.tmp / "evidence.txt").write_text("\n\n".join(self.tally.evidence))
                print(f"torture_kill: evidence in {self.tmp / 'evidence.txt'}", file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return 1 if broke else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iterations", type=int, default=40)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--long", type=float, default=30.0, help="seconds of the long sleeps in gates (default 30)")
    p.add_argument("--rounds", type=int, default=3, help="gitforge next runs to recover after a kill")
    p.add_argument("--landing-share", type=float, default=0.2, help="share of kills aimed at the landing")
    p.add_argument("--double-share", type=float, default=0.15, help="share with a second kill during recovery")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = p.parse_args()
    torture = Torture(args)
    try:
        return torture.run()
    finally:
        T.kill_tagged(torture.tag)


if __name__ == "__main__":
    sys.exit(main())
