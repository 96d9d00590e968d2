"""Run notes between repositories: fetch, merge, push and the config that keeps them.

A remote's notes (`refs/notes/forge/*` there) are fetched to remote-tracking notes refs,
`refs/notes/remotes/<remote>/forge/*` here, the way branches land in `refs/remotes/<remote>/`:

- under `refs/notes/`, because `git notes merge` merges only notes refs;
- outside `refs/notes/forge/`, so the push refspec `refs/notes/forge/*` never sends them back,
  and `git log --notes=forge/*` never shows a remote's notes twice;
- one namespace per remote, so two remotes never overwrite each other's copy.

They are then merged into the local ref with `cat_sort_uniq` (a note is one JSON line per
run: the union of both sides' lines, each once), and pushed without force.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from gitforge.errors import GitFailed, RepoError
from gitforge.git import settings
from gitforge.git.repo import NOTES_REF, Git
from gitforge.git.run import run_git

FORGE_NOTES = "refs/notes/forge/"
STRATEGY = "cat_sort_uniq"
PUSH_REFSPEC = f"{FORGE_NOTES}*:{FORGE_NOTES}*"
# `git push --porcelain` reasons that mean "the remote moved since you looked": fetch, merge, retry.
_MOVED = ("fetch first", "non-fast-forward")


def tracking_prefix(remote: str) -> str:
    return f"refs/notes/remotes/{remote}/forge/"


def tracking_ref(remote: str, ref: str = NOTES_REF) -> str:
    """refs/notes/forge/runs -> refs/notes/remotes/<remote>/forge/runs."""
    return tracking_prefix(remote) + ref.removeprefix(FORGE_NOTES)


def local_ref(remote: str, tracking: str) -> str:
    """refs/notes/remotes/<remote>/forge/runs -> refs/notes/forge/runs."""
    return FORGE_NOTES + tracking.removeprefix(tracking_prefix(remote))


def remotes(git: Git) -> list[str]:
    return settings.remotes(git.root)


def remote_url(git: Git, remote: str) -> str:
    return settings.get(git.root, f"remote.{remote}.url") or "(no url)"


def refs(git: Git, prefix: str) -> dict[str, str]:
    """{ref: commit} for every ref under `prefix`."""
    out = run_git(["for-each-ref", "--format=%(objectname) %(refname)", prefix], git.root).stdout
    return {name: sha for sha, name in (line.split(" ", 1) for line in out.splitlines())}


def fetch(git: Git, remote: str) -> None:
    """Bring the remote's forge notes to its tracking refs (forced: they mirror the remote;
    pruned: a ref gone there is gone here). A remote without notes fetches nothing, quietly."""
    args = ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--prune", remote,
            f"+{FORGE_NOTES}*:{tracking_prefix(remote)}*"]
    proc = run_git(args, git.root, check=False)
    if proc.returncode != 0:
        raise RepoError(f"could not fetch run notes from '{remote}' ({remote_url(git, remote)}): "
                        f"{proc.stderr.strip() or proc.stdout.strip()}",
                        hint=f"check the remote's address and your access (git remote -v; git ls-remote {remote}), "
                             f"then run the command again")


def _ident_env(git: Git) -> dict[str, str]:
    """A notes merge makes a commit: the identity gitforge commits with, where git has none set."""
    sig = git.signature()
    env = {}
    for role in ("AUTHOR", "COMMITTER"):
        for part, value in (("NAME", sig.name), ("EMAIL", sig.email)):
            if f"GIT_{role}_{part}" not in os.environ:
                env[f"GIT_{role}_{part}"] = value
    return env


def merge(git: Git, local: str, tracking: str, remote: str) -> None:
    """Merge `tracking` into `local` (cat_sort_uniq). The caller holds the notes lock.
    Without a local ref yet, the local ref is created at the fetched commit."""
    if local not in refs(git, local):
        run_git(["update-ref", "-m", f"gitforge: run notes from {remote}", local, tracking, ""], git.root)
        return
    proc = run_git(["notes", f"--ref={local}", "merge", "--quiet", "-s", STRATEGY, tracking], git.root,
                   check=False, env=_ident_env(git))
    if proc.returncode != 0:
        partial = "NOTES_MERGE_PARTIAL" in proc.stderr
        raise GitFailed(f"could not merge {remote}'s run notes ({tracking}) into {local}: "
                        f"{proc.stderr.strip() or proc.stdout.strip()}",
                        hint="a notes merge of your own is unfinished: conclude it with `git notes merge --commit` "
                             "or `git notes merge --abort`, then run the command again" if partial else
                             "run the command again; if it keeps failing, please report it")


def set_ref(git: Git, ref: str, new: str, old: str | None) -> bool:
    """Move `ref` to `new` only if it is still `old` (None: absent); False when it had moved."""
    proc = run_git(["update-ref", "-m", "gitforge: run notes pushed", ref, new, old or ""], git.root, check=False)
    return proc.returncode == 0


@dataclass(frozen=True)
class PushedRef:
    """One line of `git push --porcelain`: flag ' ' fast-forward, '*' new, '=' up to date,
    '!' rejected; summary as git words it ('1a2b..3c4d', '[rejected] (fetch first)')."""

    ref: str
    flag: str
    summary: str

    @property
    def moved(self) -> bool:
        return self.flag in (" ", "*", "+")

    @property
    def remote_moved(self) -> bool:
        return self.flag == "!" and any(reason in self.summary for reason in _MOVED)


def push(git: Git, remote: str) -> list[PushedRef]:
    """Push every local forge notes ref, never forced. Rejections come back as PushedRefs
    (the caller decides whether to merge and retry); a transport failure raises RepoError (exit 2: the remote's address or access)."""
    proc = run_git(["push", "--porcelain", "--no-follow-tags", remote, PUSH_REFSPEC], git.root, check=False)
    lines = []
    for line in proc.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and len(parts[0]) == 1:
            lines.append(PushedRef(parts[1].partition(":")[2], parts[0], parts[2]))
    if proc.returncode != 0 and not any(p.flag == "!" for p in lines):
        raise RepoError(f"could not push run notes to '{remote}' ({remote_url(git, remote)}): "
                        f"{proc.stderr.strip() or proc.stdout.strip()}",
                        hint="check the remote's address and your write access (git remote -v), "
                             "then run the command again")
    return lines


REWRITE_KEY = "notes.rewriteRef"
STRATEGY_KEY = f"notes.{NOTES_REF.removeprefix('refs/notes/')}.mergeStrategy"


def configure(git: Git) -> list[str]:
    """Local config so plain git keeps run notes: `git rebase` and `git commit --amend` copy
    them to the rewritten commits, and a plain `git notes --ref=forge/runs merge` unions them.
    Idempotent; returns what it set."""
    done = []
    if settings.add_local(git.root, REWRITE_KEY, NOTES_REF):
        done.append(f"git config {REWRITE_KEY} += {NOTES_REF} (rebase and commit --amend keep run notes)")
    if settings.set_local(git.root, STRATEGY_KEY, STRATEGY):
        done.append(f"git config {STRATEGY_KEY} = {STRATEGY} (a notes merge keeps both sides' runs)")
    return done
