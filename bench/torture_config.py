"""Torture the real command line with mutated otto.yaml files.

Each of N files from tests/config_mutations.py (the `gitforge init` template mutated, plus
alias bombs, deep nesting, recursive aliases, control characters, invalid UTF-8, paths
outside the repository, wrong types) is written into a temporary repository, and
`python -m gitforge check` and `python -m gitforge status` run there, each with a 20 s
timeout. Exit 3 (an internal error) and a hang are bugs; exit 2 (a configuration error)
and 0/1 are answers. Prints one summary line, e.g.

    300 files: 0 exit 3, 0 hangs, 279 exit 2, 21 exit 0

(a file counts once, by its worst command: a hang, then exit 3, then the highest exit code),
then the first few bad cases with their stderr; `--keep DIR` saves every bad file there.

    python bench/torture_config.py              # 300 files, 2 at a time
    python bench/torture_config.py -n 50 --jobs 1
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from config_mutations import mutations  # noqa: E402

COMMANDS = (("check",), ("status",))
BACKLOG = "# Backlog\n\n## Phase 1: Add a file\n**Status:** Not started\n**Dependencies:** None\n\n### Tasks\n1. Do it.\n"


def sealed_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GITFORGE", "GIT_", "ANTHROPIC_"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), GIT_CONFIG_NOSYSTEM="1",
               GIT_AUTHOR_NAME="Torture", GIT_AUTHOR_EMAIL="t@example.com",
               GIT_COMMITTER_NAME="Torture", GIT_COMMITTER_EMAIL="t@example.com")
    return env


def make_repo(path: Path, env: dict[str, str]) -> None:
    path.mkdir(parents=True)
    run = lambda *a: subprocess.run(["git", *a], cwd=path, env=env, check=True, capture_output=True)  # noqa: E731
    run("init", "-q", "-b", "main")
    (path / "README.md").write_text("# torture\n")
    (path / "BACKLOG.md").write_text(BACKLOG)
    run("add", "-A")
    run("commit", "-q", "-m", "initial")


def run_one(repo: Path, data: bytes, env: dict[str, str], timeout: float) -> list[tuple[str, int | None, str]]:
    """(command, exit code or None for a hang, stderr tail) for each command on this file."""
    (repo / "otto.yaml").write_bytes(data)
    out = []
    for args in COMMANDS:
        try:
            proc = subprocess.run([sys.executable, "-m", "gitforge", *args], cwd=repo, env=env,
                                  capture_output=True, timeout=timeout)
            out.append((args[0], proc.returncode, proc.stderr.decode("utf-8", "replace")[-600:]))
        except subprocess.TimeoutExpired:
            out.append((args[0], None, f"no answer within {timeout:g}s"))
    return out


def worst(results: list[tuple[str, int | None, str]]) -> int | None:
    codes = [code for _, code, _ in results]
    if None in codes:
        return None
    return 3 if 3 in codes else max(codes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=300, help="how many files (default 300)")
    parser.add_argument("--seed", type=int, default=20260115)
    parser.add_argument("--jobs", type=int, default=2, help="files at a time (default 2)")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per command (default 20)")
    parser.add_argument("--keep", type=Path, help="save each file that crashed or hung here")
    args = parser.parse_args()

    cases = mutations(args.n, args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="gitforge-torture-"))
    env = sealed_env(tmp / "home")
    (tmp / "home").mkdir()
    repos = []
    for i in range(args.jobs):
        make_repo(tmp / f"repo{i}", env)
        repos.append(tmp / f"repo{i}")
    free = list(repos)
    lock = threading.Lock()

    def one(case: tuple[str, bytes]) -> tuple[str, bytes, list]:
        with lock:
            repo = free.pop()
        try:
            return case[0], case[1], run_one(repo, case[1], env, args.timeout)
        finally:
            with lock:
                free.append(repo)

    start = time.monotonic()
    try:
        with ThreadPoolExecutor(args.jobs) as pool:
            done = list(pool.map(one, cases))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    counts = collections.Counter(worst(results) for _, _, results in done)
    bad = [(label, data, results) for label, data, results in done if worst(results) in (None, 3)]
    others = ", ".join(f"{counts[c]} exit {c}" for c in sorted(c for c in counts if c not in (None, 3)))
    print(f"{len(cases)} files: {counts[3]} exit 3, {counts[None]} hangs, {others}"
          f"   ({time.monotonic() - start:.0f}s, {len(COMMANDS)} commands each)")
    for label, data, results in bad[:5]:
        print(f"\n--- {label}: {data[:200]!r}")
        for command, code, err in results:
            print(f"  {command}: {'hang' if code is None else f'exit {code}'}\n    " + err.replace("\n", "\n    "))
    if args.keep and bad:
        args.keep.mkdir(parents=True, exist_ok=True)
        for n, (label, data, _) in enumerate(bad):
            (args.keep / f"{n:03d}.yaml").write_bytes(data)
            (args.keep / f"{n:03d}.txt").write_text(label + "\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
