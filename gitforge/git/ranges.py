"""The commits a push sends: its range, how many, and which ones carry a given trailer.

git gives a pre-push hook `<local ref> <local sha> <remote ref> <remote sha>` per ref; the
commits the push adds are those reachable from the local sha that the remote does not have.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gitforge.git import settings
from gitforge.git.run import run_git


def is_null(sha: str) -> bool:
    """git's all-zeros object id (SHA-1 or SHA-256): a deletion, or a ref the remote lacks."""
    return bool(sha) and set(sha) == {"0"}


def has_commit(cwd: Path, sha: str) -> bool:
    return run_git(["cat-file", "-e", f"{sha}^{{commit}}"], cwd, check=False).returncode == 0


def peel_commit(cwd: Path, sha: str) -> str | None:
    """The commit `sha` names (a commit, or a tag of one); None for a tag of a tree or blob."""
    proc = run_git(["rev-parse", "--verify", "--quiet", f"{sha}^{{commit}}"], cwd, check=False)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def head_ref(cwd: Path) -> str | None:
    """The branch ref HEAD points at in the checkout at `cwd` (a linked worktree has its own)."""
    proc = run_git(["symbolic-ref", "-q", "HEAD"], cwd, check=False)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


@dataclass(frozen=True)
class PushRange:
    """rev-list arguments for the commits a push adds, and a description for people."""

    args: tuple[str, ...]
    description: str


def push_range(cwd: Path, local_sha: str, remote_sha: str, remote: str | None) -> PushRange:
    """`remote_sha..local_sha` when the remote's old value is known here; otherwise (a new
    branch, or a remote sha this clone never saw) what local_sha reaches beyond the remote's
    tracking refs (every remote's, when the push goes to a URL no remote uses)."""
    if not is_null(remote_sha) and has_commit(cwd, remote_sha):
        return PushRange((f"{remote_sha}..{local_sha}",), f"{remote_sha[:9]}..{local_sha[:9]}")
    why = "a new ref on the remote" if is_null(remote_sha) else f"the remote's {remote_sha[:9]} is unknown here"
    known = "--remotes" if remote is None else f"--remotes={remote}"
    return PushRange((local_sha, "--not", known), f"{local_sha[:9]} --not {known}; {why}")


def remote_name(cwd: Path, remote: str, url: str) -> str | None:
    """The configured remote a push goes to: git passes its name, or, for `git push URL`, the
    URL twice; a URL that a configured remote uses is that remote. None: no remote matches."""
    names = settings.remotes(cwd)
    if remote in names:
        return remote
    for name in names:
        urls = [run_git(["remote", "get-url", *flag, name], cwd, check=False, hooks_off=False).stdout.strip()
                for flag in ([], ["--push"])]
        if url in urls or remote in urls:
            return name
    return None


def count_commits(cwd: Path, rng: PushRange) -> int:
    return int(run_git(["rev-list", "--count", *rng.args], cwd).stdout.strip() or 0)


@dataclass(frozen=True)
class TrailerCommit:
    sha: str
    subject: str
    trailers: dict[str, str] = field(default_factory=dict)  # the last value of each key


def commits_with_trailer(cwd: Path, rng: PushRange, key: str) -> list[TrailerCommit]:
    """The commits of `rng` whose message has a `key:` trailer, newest first. `--grep` lets git
    skip every other commit cheaply; git's own trailer parser then decides."""
    fmt = "%H%x00%s%x00%(trailers:only,unfold)%x00"
    out = run_git(["log", "-z", "--no-color", f"--format={fmt}", f"--grep=^{key}:", "-i", *rng.args, "--"],
                  cwd).stdout
    found: list[TrailerCommit] = []
    fields = out.split("\0")
    for i in range(0, len(fields) - 2, 4):
        sha, subject, block = fields[i].strip(), fields[i + 1], fields[i + 2]
        trailers: dict[str, str] = {}
        for line in block.splitlines():
            name, sep, value = line.partition(":")
            if sep:
                trailers[name.strip().lower()] = value.strip()
        if key.lower() in trailers and sha:
            found.append(TrailerCommit(sha, subject, trailers))
    return found


def remotes_with_commit(cwd: Path, sha: str) -> list[str]:
    """The configured remotes that have `sha`, as far as this clone knows: one of their
    remote-tracking branches contains it."""
    names = sorted(settings.remotes(cwd), key=len, reverse=True)  # "a/b" before "a"
    refs = run_git(["for-each-ref", "--contains", sha, "--format=%(refname)", "refs/remotes/"], cwd,
                   check=False).stdout.split()
    found: list[str] = []
    for ref in refs:
        rest = ref.removeprefix("refs/remotes/")
        name = next((n for n in names if rest.startswith(n + "/")), None)
        if name is not None and name not in found:
            found.append(name)
    return found
