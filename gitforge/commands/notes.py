"""gitforge notes push|fetch: share run notes (refs/notes/forge/*) through a remote."""

from __future__ import annotations

from pathlib import Path

from gitforge.land import notesync
from gitforge.git import Git
from gitforge.infra.state import Store
from gitforge.ui import UI, print_json


def _report(command: str, sync: notesync.NotesSync, ui: UI, as_json: bool) -> int:
    if as_json:
        print_json({"command": command, "ok": True, **sync.to_json()})
        return 0
    for move in sync.moves:
        old = (move.old or "")[:12] or "(none)"
        new = (move.new or "")[:12] or ("(a newer tip)" if move.where == "pushed" else "(none)")
        ui.info(f"{move.where:<8} {move.ref}  {old} -> {new}")
    UI.out(sync.summary)
    return 0


def fetch(repo: Path, remote: str, as_json: bool) -> int:
    git = Git.open(repo)
    ui = UI()
    sync = notesync.fetch(git, Store(git.root, git.common_dir), remote, on_wait=ui.info)
    return _report("notes fetch", sync, ui, as_json)


def push(repo: Path, remote: str, as_json: bool) -> int:
    git = Git.open(repo)
    ui = UI()
    sync = notesync.push(git, Store(git.root, git.common_dir), remote, on_wait=ui.info)
    return _report("notes push", sync, ui, as_json)
