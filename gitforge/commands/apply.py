"""gitforge apply <patch>: like `git apply`, with the policy and the audit; never commits.

The patch is validated, applied in memory against the working tree's files (so uncommitted
work is the preimage, as with git apply) and audited; only then are the changed files written.
A refusal writes nothing and exits 1 with the reasons."""

from __future__ import annotations

import sys
from pathlib import Path

from gitforge.config import load_config
from gitforge.errors import PatchRefused, UsageError
from gitforge.git import Change, Git
from gitforge.patch import apply_patches, audit, check_policy, parse_patch
from gitforge.ui import UI, print_json
from gitforge.worktree import FsTree, write_files


def _read(patch: Path) -> str:
    if str(patch) == "-":
        return sys.stdin.read()
    try:
        return patch.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as e:
        raise UsageError(f"cannot read {patch}: {e.strerror}") from None


def apply(repo: Path, patch: Path, check: bool = False, as_json: bool = False) -> int:
    git = Git.open(repo)
    cfg = load_config(git.root)
    text = _read(patch)
    tree = FsTree(git.root)
    ui = UI()
    try:
        patches = parse_patch(text)
        p = cfg.policy
        reasons = check_policy(patches, tree, max_files=p.max_files, max_lines=p.max_lines,
                               max_file_bytes=p.max_file_bytes, protected=p.protected_paths,
                               forbid_binary=p.forbid_binary)
        if reasons:
            raise PatchRefused("the patch was refused by the policy", reasons)
        applied = apply_patches(patches, tree, max_file_bytes=p.max_file_bytes)
        problems = audit(applied)
        if problems:
            raise PatchRefused("the patched files failed the audit", problems)
    except PatchRefused as e:
        if as_json:
            print_json({"command": "apply", "ok": False, "reason": e.message, "details": e.reasons})
        else:
            ui.fail(f"{patch}: {e.message}; nothing was written")
            ui.block("\n".join(e.reasons), indent="  ")
        return 1
    changes = [Change(c.path, c.data, c.mode, c.old_path) for c in applied]
    if not check:
        write_files(git.root, changes)
    files = [{"path": c.path, "deleted": c.data is None, "old_path": c.old_path} for c in changes]
    if as_json:
        print_json({"command": "apply", "ok": True, "checked_only": check, "files": files})
    else:
        verb = "would change" if check else "changed"
        ui.out(f"{verb} {len(files)} file(s): " + ", ".join(f["path"] for f in files))
    return 0
