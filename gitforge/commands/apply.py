"""gitforge apply <patch>: like `git apply`, with the policy and the audit; never commits.

The patch is validated, applied in memory against the working tree's files (so uncommitted
work is the preimage, as with git apply) and audited; only then are the changed files written.
A refusal writes nothing and exits 1 with the reasons."""

from __future__ import annotations

import sys
from pathlib import Path

from gitforge.config import load_config
from gitforge.errors import PatchRefused, UsageError
from gitforge.git import Git
from gitforge.run.pipeline import patch_changes
from gitforge.ui import UI, print_json
from gitforge.infra.worktree import FsTree, write_files


def _read(patch: Path) -> str:
    # bytes, not text mode: universal newlines would turn a CRLF patch into an LF one
    if str(patch) == "-":
        return sys.stdin.buffer.read().decode("utf-8", "surrogateescape")
    try:
        return patch.read_bytes().decode("utf-8", "surrogateescape")
    except OSError as e:
        raise UsageError(f"cannot read {patch}: {e.strerror}") from None


def apply(repo: Path, patch: Path, check: bool = False, as_json: bool = False) -> int:
    git = Git.open(repo)
    cfg = load_config(git.here)
    text = _read(patch)
    ui = UI()
    try:
        changes, _ = patch_changes(FsTree(git.here), text, cfg.policy)
    except PatchRefused as e:
        if as_json:
            print_json({"command": "apply", "ok": False, "reason": e.message, "details": e.reasons})
        else:
            ui.fail(f"{patch}: {e.message}; nothing was written")
            ui.block("\n".join(e.reasons), indent="  ")
        return 1
    if not check:
        write_files(git.here, changes)
    files = [{"path": c.path, "deleted": c.data is None, "old_path": c.old_path} for c in changes]
    if as_json:
        print_json({"command": "apply", "ok": True, "checked_only": check, "files": files})
    else:
        verb = "would change" if check else "changed"
        ui.out(f"{verb} {len(files)} file(s): " + ", ".join(f["path"] for f in files))
    return 0
