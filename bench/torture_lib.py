"""Shared parts of the torture scripts (`torture_*.py`): a hermetic environment, real repositories
with a backlog of `### Patch` phases, the real CLI, and the checks of gitforge's trust promises
(no orphan processes, every landing noted, no stuck git locks, nothing landed twice, a board that
agrees with what landed, a clean checkout). Stdlib only."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

GITFORGE = [sys.executable, "-m", "gitforge"]
MARK_VAR = "GITFORGE_PROC"   # gitforge/infra/proc.py: the token every command gitforge starts carries
TAG_VAR = "TORTURE_TAG"      # ours: every process of one torture run carries it (gitforge passes it on)
CRASH_LOG = re.compile(r"the traceback is in (\S+)")


# -- environment and repositories -----------------------------------------------------------------

def hermetic_env(tmp: Path) -> dict[str, str]:
    """A throwaway HOME, no system git config, a fixed identity, and this run's tag."""
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    (home / ".gitconfig").write_text("[user]\n\tname = Torture\n\temail = torture@example.com\n"
                                     "[init]\n\tdefaultBranch = main\n")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GIT_", "GITFORGE_")) and k != "ANTHROPIC_API_KEY"}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), GIT_CONFIG_NOSYSTEM="1",
               PYTHONPYCACHEPREFIX=str(tmp / "pycache"))
    env[TAG_VAR] = f"{os.getpid()}-{secrets.token_hex(6)}"
    return env


def git(args: list[str], cwd: Path, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {cwd}: {proc.stderr.strip()}")
    return proc


def new_file_diffs(tmp: Path, env: dict[str, str], files: dict[str, str]) -> dict[str, str]:
    """{path: the real `git diff` that adds that one file to an empty tree}."""
    scratch = tmp / "scratch"
    scratch.mkdir(exist_ok=True)
    git(["init", "-q"], scratch, env)
    out = {}
    for rel, content in files.items():
        (scratch / rel).write_text(content)
        git(["add", rel], scratch, env)
        out[rel] = git(["diff", "--cached"], scratch, env).stdout
        git(["rm", "-q", "--cached", rel], scratch, env)
        (scratch / rel).unlink()
    return out


def phase_md(pid: str, title: str, *, checks: tuple[str, ...] = (), patch: str | None = None) -> str:
    parts = [f"## Phase {pid}: {title}", "**Status:** Not started", "**Dependencies:** None",
             "**Priority:** medium", "", "### Tasks", "1. Do it.", ""]
    if checks:
        parts += ["### Verification", *[f"- `{c}`" for c in checks], ""]
    if patch is not None:
        parts += ["### Patch", "````diff", patch.rstrip("\n"), "````", ""]
    return "\n".join(parts) + "\n"


def make_repo(root: Path, env: dict[str, str], phases: list[str], otto: str,
              files: dict[str, str] | None = None) -> None:
    root.mkdir(parents=True)
    git(["init", "-q", "-b", "main"], root, env)
    content = {"README.md": "# torture\n", **(files or {}), "otto.yaml": otto,
               "BACKLOG.md": "# Backlog\n\n" + "\n".join(phases)}
    for rel, text in content.items():
        (root / rel).write_text(text)
    git(["add", "-A"], root, env)
    git(["commit", "-q", "-m", "initial"], root, env)


# -- running gitforge -------------------------------------------------------------------------------

@dataclass
class Result:
    args: list[str]
    code: int
    stdout: str
    stderr: str
    seconds: float


def run_cli(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> Result:
    start = time.monotonic()
    try:
        proc = subprocess.run([*GITFORGE, *args], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout, start_new_session=True)
    except subprocess.TimeoutExpired as e:
        return Result(args, -999, _text(e.stdout), _text(e.stderr) + f"\n[torture] timed out after {timeout}s",
                      time.monotonic() - start)
    return Result(args, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)


def _text(data) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else (data or "")


def gist(stderr: str) -> str:
    """What a failed run said: its failure, error and hint lines (not its gate chatter)."""
    keep = [line for line in stderr.splitlines()
            if line.lstrip().startswith(("✗", "gitforge:", "hint:", "!", "[torture]"))]
    return "\n".join(keep[-12:]) or stderr.strip()[-1500:]


def crash_report(res: Result) -> str:
    """For an exit 3: the command, its stderr and the traceback from the crash log it names."""
    found = CRASH_LOG.search(res.stderr)
    trace = ""
    if found:
        try:
            trace = Path(found.group(1)).read_text(errors="replace")
        except OSError as e:
            trace = f"(could not read {found.group(1)}: {e})"
    return f"$ gitforge {' '.join(res.args)}  -> exit {res.code}\n{res.stderr.strip()}\n{trace}"


# -- processes --------------------------------------------------------------------------------------

def _environ(pid: str) -> dict[str, str] | None:
    try:
        data = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    out = {}
    for item in data.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            out[key.decode(errors="replace")] = value.decode(errors="replace")
    return out


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def tagged(tag: str) -> list[tuple[int, dict[str, str]]]:
    """Live processes (not zombies) carrying this torture run's tag."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        env = _environ(pid)
        if env is None or env.get(TAG_VAR) != tag:
            continue
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            found.append((int(pid), env))
    return found


def orphans(tag: str) -> list[tuple[int, str, str]]:
    """(pid, token, command) of processes a gitforge started (they carry GITFORGE_PROC) whose
    gitforge is dead (the token's "<pid>-" part names it; see gitforge/infra/proc.py owner_pid)."""
    out = []
    for pid, env in tagged(tag):
        token = env.get(MARK_VAR)
        if not token:
            continue
        head = token.partition("-")[0]
        owner = int(head) if head.isdigit() else None
        if owner is None or not alive(owner) or _is_zombie(owner):
            out.append((pid, token, cmdline(pid)))
    return out


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def kill_tagged(tag: str) -> list[tuple[int, str]]:
    """End every process of this torture run (we leave nothing running); returns what was ended."""
    ended = []
    for pid, _ in tagged(tag):
        try:
            os.kill(pid, signal.SIGKILL)
            ended.append((pid, cmdline(pid)))
        except (ProcessLookupError, PermissionError):
            pass
    return ended


# -- the repository's state -------------------------------------------------------------------------

@dataclass
class Landed:
    commit: str
    phase: str
    run: str
    status: str  # "Done", or the Forge-Status of a bookkeeping commit
    subject: str


def forge_commits(root: Path, env: dict[str, str], ref: str = "main") -> list[Landed]:
    """Commits on `ref` (first parent) carrying a Forge-Run trailer, newest first."""
    fmt = "%H%x1f%s%x1f%(trailers:key=Forge-Phase,valueonly,separator=%x2c)%x1f" \
          "%(trailers:key=Forge-Run,valueonly,separator=%x2c)%x1f%(trailers:key=Forge-Status,valueonly,separator=%x2c)%x1e"
    out = git(["log", "--first-parent", f"--format={fmt}", ref], root, env).stdout
    found = []
    for rec in out.split("\x1e"):
        rec = rec.strip("\n")
        if not rec:
            continue
        sha, subject, phase, run, status = (rec.split("\x1f") + [""] * 5)[:5]
        if run.strip():
            found.append(Landed(sha, phase.strip(), run.strip(), status.strip() or "Done", subject))
    return found


def notes_by_commit(root: Path, env: dict[str, str]) -> dict[str, str]:
    proc = git(["notes", "--ref=forge/runs", "list"], root, env, check=False)
    if proc.returncode != 0:
        return {}
    pairs = [line.split() for line in proc.stdout.splitlines() if line.strip()]
    out = {}
    for blob, commit in pairs:
        out[commit] = git(["cat-file", "blob", blob], root, env).stdout
    return out


def missing_notes(root: Path, env: dict[str, str], commits: list[Landed] | None = None) -> list[Landed]:
    """Landed commits whose run has no line on refs/notes/forge/runs."""
    commits = forge_commits(root, env) if commits is None else commits
    notes = notes_by_commit(root, env)
    return [c for c in commits if f'"run_id": "{c.run}"' not in notes.get(c.commit, "")]


def landed_twice(commits: list[Landed]) -> dict[str, int]:
    counts = Counter(c.phase for c in commits if c.status == "Done")
    return {p: n for p, n in counts.items() if n > 1}


STATUS_RE = re.compile(r"^## Phase (\S+?):.*?^\*\*Status:\*\* *(.+?) *$", re.MULTILINE | re.DOTALL)


def board(root: Path, env: dict[str, str], ref: str = "main") -> dict[str, str]:
    """{phase id: Status} of BACKLOG.md as committed on `ref`."""
    text = git(["show", f"{ref}:BACKLOG.md"], root, env).stdout
    out = {}
    for block in re.split(r"(?m)^(?=## Phase )", text):
        m = STATUS_RE.match(block)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def board_disagreements(root: Path, env: dict[str, str], commits: list[Landed]) -> list[str]:
    """Phases whose committed Status disagrees with what landed: Done without a landing, or a
    landing whose phase is not Done."""
    done = {c.phase for c in commits if c.status == "Done"}
    out = []
    for phase, status in board(root, env).items():
        if (status == "Done") != (phase in done):
            out.append(f"phase {phase}: BACKLOG.md says {status!r}, "
                       f"{'landed' if phase in done else 'not landed'}")
    return out


def git_locks(root: Path) -> list[Path]:
    """Every git lock file under .git/ (gitforge's own flock files live under .forge/)."""
    return sorted(p for p in (root / ".git").rglob("*.lock") if p.is_file())


def dirty(root: Path, env: dict[str, str]) -> str:
    return git(["status", "--porcelain"], root, env).stdout


@dataclass
class Tally:
    """What broke, with the evidence, for the report."""
    counts: Counter = field(default_factory=Counter)
    evidence: list[str] = field(default_factory=list)

    def add(self, kind: str, n: int, what: str) -> None:
        if n:
            self.counts[kind] += n
            self.evidence.append(f"[{kind}] {what}")
            print(f"  !! {kind}: {what}", file=sys.stderr, flush=True)
