"""A new repository with a first commit (the demo's project)."""

from __future__ import annotations

from pathlib import Path

import pygit2

from gitforge.git.repo import Change, Git


def init_repo(path: Path, branch: str, files: dict[str, bytes], message: str) -> Git:
    """A new repository at `path` whose first commit on `branch` holds `files`, checked out."""
    path.mkdir(parents=True, exist_ok=True)
    repo = pygit2.init_repository(str(path), initial_head=branch)
    git = Git(repo)
    tree = git.build_tree(str(repo.TreeBuilder().write()),
                          [Change(p, d, "exec" if d.startswith(b"#!") else "file") for p, d in files.items()])
    sig = git.signature()
    repo.create_commit(f"refs/heads/{branch}", sig, sig, message, pygit2.Oid(hex=tree), [])
    repo.checkout_head(strategy=pygit2.enums.CheckoutStrategy.FORCE)
    return git
