"""Install and remove gitforge's pre-push hook the way pre-commit does: a script carrying a
marker, a foreign hook kept as `pre-push.legacy` and run first, never a user's hook lost.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from gitforge.errors import UsageError
from gitforge.git import Git
from gitforge.git import settings
from gitforge.infra.resources import data_dir
from gitforge.infra.state import atomic_write

MARKER = "gitforge-pre-push-v1"
MARKERS = (MARKER,)  # every version's marker: an older gitforge hook is ours to rewrite
PYTHON_PLACEHOLDER = "__GITFORGE_PYTHON__"
HOOK = "pre-push"
LEGACY = "pre-push.legacy"


@dataclass
class HookPlace:
    """Where git runs hooks from for this repository, and why."""

    dir: Path
    hooks_path: str | None  # core.hooksPath when it is set


@dataclass
class Installed:
    path: Path
    action: str  # "installed" | "updated" | "unchanged"
    legacy: Path | None  # the hook that runs first, when there is one
    moved_foreign: bool  # a foreign hook was moved to pre-push.legacy just now
    hooks_path: str | None


@dataclass
class Removed:
    path: Path
    removed: bool
    legacy_restored: bool


def render() -> str:
    """The hook script, pointing at the interpreter running now (so a venv's gitforge is used)."""
    text = (data_dir("hooks") / HOOK).read_text(encoding="utf-8")
    if MARKER not in text or PYTHON_PLACEHOLDER not in text:
        raise UsageError(f"gitforge's packaged hook template ({data_dir('hooks') / HOOK}) is damaged",
                         hint="reinstall gitforge (pip install --force-reinstall gitforge)")
    return text.replace(PYTHON_PLACEHOLDER, shlex.quote(os.path.abspath(sys.executable)))


def is_ours(path: Path) -> bool:
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return False
    return any(m.encode() in data for m in MARKERS)


def hooks_dir(git: Git) -> HookPlace:
    """core.hooksPath (any config level) if set, else the common git dir's hooks/ (shared by
    linked worktrees). A relative hooksPath is relative to the checkout, as git resolves it."""
    value = settings.get(git.here, "core.hooksPath")
    if value:
        folder = Path(value).expanduser()
        return HookPlace(folder if folder.is_absolute() else git.here / folder, value)
    return HookPlace(git.common_dir / "hooks", None)


def _hooks_path_refusal(place: HookPlace) -> UsageError:
    return UsageError(
        f"core.hooksPath is set to {place.hooks_path}: git runs hooks from that folder, so a hook in "
        f".git/hooks would never run (`git config --show-origin core.hooksPath` shows where it is set)",
        hint="unset it (git config --unset core.hooksPath; add --global if it is set there) and install "
             "again, or install into that folder: gitforge hooks install --force")


def install(git: Git, force: bool = False) -> Installed:
    place = hooks_dir(git)
    if place.hooks_path is not None and not force:
        raise _hooks_path_refusal(place)
    folder = place.dir
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder} is not a folder, so no hook can be installed there",
                         hint="point core.hooksPath at a folder, or unset it (git config --unset core.hooksPath)")
    hook, legacy = folder / HOOK, folder / LEGACY
    script = render()
    moved = False
    if os.path.lexists(hook) and not is_ours(hook):
        if os.path.lexists(legacy):
            raise UsageError(
                f"{hook} is a pre-push hook that is not gitforge's, and {legacy} exists too: gitforge keeps a "
                "hook it replaces as pre-push.legacy, and that would overwrite it",
                hint=f"combine the two into one {HOOK} (or remove the one you no longer need), then run "
                     "gitforge hooks install again")
        os.rename(hook, legacy)
        moved = True
    if os.path.lexists(hook):
        old = hook.read_text(encoding="utf-8", errors="replace")
        action = "unchanged" if old == script and os.access(hook, os.X_OK) else "updated"
    else:
        action = "installed"
    if action != "unchanged":
        atomic_write(hook, script.encode("utf-8"), mode=0o755)  # a push meanwhile runs old or new
    return Installed(hook, action, legacy if os.path.lexists(legacy) else None, moved, place.hooks_path)


def uninstall(git: Git) -> Removed:
    """Remove our hook wherever it is (core.hooksPath's folder or .git/hooks) and put the hook
    it replaced back. A foreign hook is never touched."""
    place = hooks_dir(git)
    folders = [place.dir] + ([git.common_dir / "hooks"] if place.hooks_path is not None else [])
    hook = next((f / HOOK for f in folders if is_ours(f / HOOK)), None)
    if hook is None:
        foreign = next((f / HOOK for f in folders if os.path.lexists(f / HOOK)), None)
        if foreign is not None:
            raise UsageError(f"{foreign} is not gitforge's pre-push hook (it has no gitforge marker); "
                             "left untouched",
                             hint=f"remove it by hand if you no longer want it: rm {foreign}")
        hook = folders[0] / HOOK
    removed = os.path.lexists(hook)
    if removed:
        hook.unlink()
    legacy = hook.parent / LEGACY
    restored = os.path.lexists(legacy)
    if restored:
        os.rename(legacy, hook)
    return Removed(hook, removed, restored)
