"""Hostile BACKLOG.md files through the real CLI: `gitforge check` and `gitforge status`.

Each of N mutated backlogs (tests/backlog_mutations.py, the files the parser's fuzz test
uses, same seed, same files) is committed to a temporary repository and both commands run
in a child process with a timeout. A file's outcome is its worst: a hang, then exit 3 (a
bug: gitforge crashed), then the highest other exit code. Where the CLI and an in-process
parse disagree (exit 2 for a backlog that parses, or 0 for one that does not) it is counted
too. Failures are saved under --repros. Its own HOME and git identity, in a temporary
directory removed at the end.

    python bench/torture_backlog.py            # 300 files
    python bench/torture_backlog.py -n 30      # a quick check
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from backlog_mutations import mutated_backlogs  # noqa: E402

from gitforge.backlog import parse_backlog  # noqa: E402
from gitforge.errors import BacklogError  # noqa: E402

OTTO = 'verify: []\nbuilder: {kind: command, command: "true"}\n'
COMMANDS = (("check",), ("status",))


def git(*args: str, cwd: Path, env: dict[str, str]) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def sealed_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GITFORGE", "GIT_")) and k != "ANTHROPIC_API_KEY"}
    (home / ".gitconfig").write_text("[user]\n\tname = Torture\n\temail = torture@example.com\n"
                                     "[core]\n\tautocrlf = false\n")
    return {**env, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
            "GIT_CONFIG_NOSYSTEM": "1", "PYTHONIOENCODING": "utf-8"}


def in_process(text: str) -> bool:
    """Whether the backlog parses, as the CLI reads it (bytes decoded as UTF-8)."""
    try:
        parse_backlog(text.encode("utf-8", "surrogatepass").decode("utf-8"))
    except (BacklogError, UnicodeDecodeError):
        return False
    return True


def run_one(repo: Path, env: dict[str, str], text: str, timeout: float) -> tuple[list[int | None], tuple | None]:
    """Commit `text` as BACKLOG.md, run each command; (exit codes, None if a hang), the first failure."""
    (repo / "BACKLOG.md").write_bytes(text.encode("utf-8", "surrogatepass"))
    git("add", "BACKLOG.md", cwd=repo, env=env)
    git("commit", "-q", "--allow-empty", "-m", "backlog", cwd=repo, env=env)
    codes: list[int | None] = []
    failure = None
    for args in COMMANDS:
        try:
            proc = subprocess.run([sys.executable, "-m", "gitforge", *args], cwd=repo, env=env,
                                  capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            codes.append(None)
            failure = failure or (args, None)
            continue
        codes.append(proc.returncode)
        if proc.returncode == 3:
            failure = failure or (args, proc)
    return codes, failure


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--count", type=int, default=300)
    ap.add_argument("--seed", type=int, default=20250611)
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds per command")
    ap.add_argument("--repros", type=Path, default=Path("/tmp/torture-repros"))
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # still remove the temporary directory
    outcomes: collections.Counter[str] = collections.Counter()
    per_command: dict[str, collections.Counter[str]] = {a[0]: collections.Counter() for a in COMMANDS}
    disagreements: list[str] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="torture-") as tmp:
        home, repo = Path(tmp) / "home", Path(tmp) / "repo"
        home.mkdir()
        repo.mkdir()
        env = sealed_env(home)
        git("init", "-q", "-b", "main", cwd=repo, env=env)
        (repo / "otto.yaml").write_text(OTTO)
        git("add", "otto.yaml", cwd=repo, env=env)
        for n, (name, text) in enumerate(mutated_backlogs(args.seed, args.count), 1):
            codes, failure = run_one(repo, env, text, args.timeout)
            for (command,), code in zip(COMMANDS, codes):
                per_command[command]["hang" if code is None else f"exit {code}"] += 1
            if None in codes:
                outcome = "hang"
            elif 3 in codes:
                outcome = "exit 3"
            else:
                outcome = f"exit {max(codes)}"
            outcomes[outcome] += 1
            parses = in_process(text)
            if (parses and 2 in codes) or (not parses and codes[0] == 0):
                disagreements.append(f"{name}: parses={parses}, exit codes {codes}")
            if failure is not None:
                save(args.repros, n, name, text, failure)
            if n % 25 == 0:
                print(f"  {n}/{args.count} files, {time.monotonic() - started:.0f} s", file=sys.stderr)
    rest = ", ".join(f"{outcomes[k]} {k}" for k in sorted(outcomes) if k not in ("exit 3", "hang"))
    print(f"{args.count} files: {outcomes['exit 3']} exit 3, {outcomes['hang']} hangs, {rest}"
          f" ({time.monotonic() - started:.0f} s)")
    for command, counts in per_command.items():
        print(f"  gitforge {command}: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    print(f"  CLI and in-process parse disagree on {len(disagreements)} file(s)")
    for line in disagreements[:20]:
        print(f"    {line}")
    return 1 if outcomes["exit 3"] or outcomes["hang"] or disagreements else 0


def save(repros: Path, n: int, name: str, text: str, failure) -> None:
    args, proc = failure
    repros.mkdir(parents=True, exist_ok=True)
    (repros / f"{n:04d}-BACKLOG.md").write_bytes(text.encode("utf-8", "surrogatepass"))
    report = f"{name}\ngitforge {' '.join(args)}: " + ("hung" if proc is None else
                                                       f"exit {proc.returncode}\n{proc.stderr.decode(errors='replace')}")
    (repros / f"{n:04d}-report.txt").write_text(report)
    print(f"  saved {repros}/{n:04d}-*: {name}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
