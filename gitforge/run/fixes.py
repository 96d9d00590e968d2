"""execute_fix: the pilot may run fix commands in the worktree, only when execute_fix.enabled.

Each command must start with one of `execute_fix.commands` (compared word by word after
shlex), may hold no shell metacharacter, and runs without a shell. A savepoint (the worktree's
change as a diff) is taken first; if a command fails, the worktree goes back to it. What the
commands changed is captured as the next attempt's diff, which goes through the pipeline.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

from gitforge.builders.base import Built, Job
from gitforge.git import clean_env
from gitforge.run.pipeline import Attempt
from gitforge.infra.proc import run_logged
from gitforge.infra.redact import redact, redact_file, without_own_secrets
from gitforge.infra.worktree import restore

FIX_TIMEOUT = 600.0
_META = re.compile(r"[;&|$`<>(){}\[\]*?!~#\\\n\r]")


class FixRefused(ValueError):
    pass


def check_fix(command: str, allowed: Sequence[str]) -> list[str]:
    """The argv to run, or FixRefused saying why not."""
    meta = _META.search(command)
    if meta:
        raise FixRefused(f"{command!r}: the shell metacharacter {meta.group()!r} is not allowed")
    try:
        argv = shlex.split(command)
    except ValueError as e:
        raise FixRefused(f"{command!r}: cannot be split into words ({e})") from None
    if not argv:
        raise FixRefused("an empty command")
    for entry in allowed:
        prefix = shlex.split(entry)
        if prefix and argv[:len(prefix)] == prefix:
            return argv
    raise FixRefused(f"{command!r} does not start with an allowed command (execute_fix.commands: "
                     f"{', '.join(allowed) or 'none'})")


def execute_fix(commands: Sequence[str], allowed: Sequence[str], job: Job, wt, git, number: int,
                env: dict[str, str], last: Attempt) -> tuple[Built | None, str]:
    """Run the pilot's fix commands after attempt `number`; return the diff to try next (None
    if nothing usable came of it) and a note saying what happened."""
    if last.stage != "gates" or not last.changes:
        return None, "execute_fix only follows a failing gate on an applied patch; nothing was run"
    try:
        argvs = [check_fix(c, allowed) for c in commands]
    except FixRefused as e:
        return None, f"execute_fix refused: {e}; nothing was run"
    if not argvs:
        return None, "execute_fix named no commands; nothing was run"
    fix_dir = job.run_dir / "fixes"
    fix_dir.mkdir(parents=True, exist_ok=True)
    savepoint = job.capture()
    (fix_dir / f"savepoint-{number}.diff").write_text(savepoint, encoding="utf-8", errors="surrogateescape")
    for k, argv in enumerate(argvs, 1):
        result = run_logged(argv, wt.path, without_own_secrets(clean_env(env)), fix_dir / f"attempt-{number}-{k}.log",
                            FIX_TIMEOUT)
        redact_file(result.log)
        if not result.ok:
            restore(git, wt, last.changes)  # back to the savepoint
            why = result.error or ("timed out" if result.timed_out else f"exited with code {result.exit_code}")
            return None, (f"fix command `{shlex.join(argv)}` {why}; the worktree was restored to the savepoint.\n"
                          f"{redact(result.tail)}")
    diff = job.capture()
    ran = ", ".join(f"`{shlex.join(a)}`" for a in argvs)
    if diff == savepoint:
        return Built(diff=diff, summary=f"unchanged by {ran}"), f"ran {ran} (no file changed); re-running the gates"
    return Built(diff=diff, summary=f"attempt {number}'s change after {ran}"), \
        f"ran {ran}; the next attempt runs the gates on the result"
