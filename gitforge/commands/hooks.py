"""gitforge hooks install|uninstall: the pre-push hook that runs `gitforge hook pre-push`."""

from __future__ import annotations

from pathlib import Path

from gitforge import hookinstall
from gitforge.git import Git
from gitforge.ui import UI, print_json


def install(repo: Path, force: bool = False, as_json: bool = False) -> int:
    done = hookinstall.install(Git.open(repo), force)
    if as_json:
        print_json({"command": "hooks install", "path": str(done.path), "action": done.action,
                    "legacy": str(done.legacy) if done.legacy else None, "legacy_kept": done.legacy is not None,
                    "moved_foreign_hook": done.moved_foreign, "hooks_path": done.hooks_path})
        return 0
    ui = UI()
    said = {"installed": "installed the gitforge pre-push hook at",
            "updated": "updated the gitforge pre-push hook (it was installed already) at",
            "unchanged": "the gitforge pre-push hook is installed already (unchanged) at"}[done.action]
    UI.out(f"{said} {done.path}")
    if done.hooks_path is not None:
        ui.info(f"installed into core.hooksPath ({done.hooks_path}), where git runs hooks from")
    if done.moved_foreign:
        ui.info(f"your existing pre-push hook was kept as {done.legacy}; it runs first, with the same "
                "arguments and input, and a push stops if it fails")
    elif done.legacy is not None:
        ui.info(f"{done.legacy} (kept as it is) runs first, with the same arguments and input")
    ui.info("every push is now checked; GITFORGE=0 git push skips the check; gitforge hooks uninstall removes it")
    return 0


def uninstall(repo: Path, as_json: bool = False) -> int:
    done = hookinstall.uninstall(Git.open(repo))
    if as_json:
        print_json({"command": "hooks uninstall", "path": str(done.path), "removed": done.removed,
                    "legacy_restored": done.legacy_restored})
        return 0
    if done.removed:
        UI.out(f"removed the gitforge pre-push hook from {done.path}")
    else:
        UI.out(f"no gitforge pre-push hook was installed at {done.path}")
    if done.legacy_restored:
        UI().info(f"restored the hook it had replaced (pre-push.legacy) as {done.path}")
    return 0
