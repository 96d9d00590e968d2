"""Share run notes through a remote: fetch and merge theirs into ours, push ours.

Used by `gitforge notes fetch|push` and by the pre-push hook (`notes.push_with`). The merge
runs under the notes lock, the one every local note writer holds, so a landing that appends a
note at the same moment is never lost. The network steps run outside it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

from gitforge.errors import LockBusy, RepoError, WorkFailed
from gitforge.git import Git, notes
from gitforge.infra.state import Store

PUSH_ATTEMPTS = 5
LOCK_WAIT = 60.0  # seconds; a note append or a merge holds the lock for milliseconds


@dataclass
class Move:
    """A ref that changed: `where` is "fetched" (our copy of the remote's), "merged" (ours)
    or "pushed" (the remote's); `old` None means it was created."""

    where: str
    ref: str
    old: str | None
    new: str | None


@dataclass
class NotesSync:
    remote: str
    fetched: bool
    merged: bool
    pushed: bool
    summary: str
    remote_has_notes: bool = True
    attempts: int = 0  # pushes tried (a rejected one is fetched, merged and tried again)
    moves: list[Move] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


def configure(git: Git) -> list[str]:
    """What `gitforge init` sets so that plain git keeps run notes (see git.notes.configure)."""
    return notes.configure(git)


def _require_remote(git: Git, remote: str) -> None:
    have = notes.remotes(git)
    if remote not in have:
        raise RepoError(f"'{remote}' is not a remote of this repository (remotes: {', '.join(have) or 'none'})",
                        hint="name one of them, or add it first: git remote add NAME URL")


@contextlib.contextmanager
def _notes_lock(store: Store, wait: float, on_wait: Callable[[str], None] | None) -> Iterator[None]:
    """The notes lock, waiting up to `wait` seconds (and saying so) before giving up."""
    if on_wait is not None and store.is_locked_elsewhere("notes"):
        on_wait(f"waiting for the notes lock (another gitforge process is writing run notes; up to {wait:g}s)")
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(store.locked("notes", timeout=wait, what="the notes lock"))
        except LockBusy as e:
            raise LockBusy(f"the notes lock is still held by another gitforge process after {wait:g}s; "
                           "nothing was merged", hint=e.hint) from None
        yield


def _moves(where: str, before: dict[str, str], after: dict[str, str]) -> list[Move]:
    return [Move(where, ref, before.get(ref), after.get(ref))
            for ref in sorted(before.keys() | after.keys()) if before.get(ref) != after.get(ref)]


def _fetch_merge(git: Git, store: Store, remote: str, sync: NotesSync, wait: float,
                 on_wait: Callable[[str], None] | None) -> None:
    prefix = notes.tracking_prefix(remote)
    before = notes.refs(git, prefix)
    notes.fetch(git, remote)
    theirs = notes.refs(git, prefix)
    fetched = _moves("fetched", before, theirs)
    sync.moves += fetched
    sync.fetched = sync.fetched or bool(fetched)
    sync.remote_has_notes = bool(theirs)
    with _notes_lock(store, wait, on_wait):
        ours = notes.refs(git, notes.FORGE_NOTES)
        for tracking, commit in theirs.items():
            local = notes.local_ref(remote, tracking)
            if ours.get(local) != commit:
                notes.merge(git, local, tracking, remote)
        merged = _moves("merged", ours, notes.refs(git, notes.FORGE_NOTES))
    sync.moves += merged
    sync.merged = sync.merged or bool(merged)


def _describe(moves: list[Move], where: str) -> str:
    def one(m: Move) -> str:
        if m.old and m.new:
            return f"{m.old[:7]}..{m.new[:7]}"
        return "created" if m.new else "updated" if where == "pushed" else "deleted"

    return ", ".join(f"{m.ref.removeprefix('refs/notes/')} {one(m)}" for m in moves if m.where == where)


def fetch(git: Git, store: Store, remote: str, *, wait: float = LOCK_WAIT,
          on_wait: Callable[[str], None] | None = None) -> NotesSync:
    """Fetch `remote`'s run notes and merge them into ours (under the notes lock)."""
    _require_remote(git, remote)
    sync = NotesSync(remote, False, False, False, "")
    _fetch_merge(git, store, remote, sync, wait, on_wait)
    if not sync.remote_has_notes:
        sync.summary = f"{remote}: the remote has no run notes yet"
    elif sync.merged:
        sync.summary = f"{remote}: merged the remote's run notes into yours ({_describe(sync.moves, 'merged')})"
    else:
        sync.summary = f"{remote}: you already have all of the remote's run notes"
    return sync


def push(git: Git, store: Store, remote: str, *, wait: float = LOCK_WAIT,
         on_wait: Callable[[str], None] | None = None) -> NotesSync:
    """Fetch and merge `remote`'s run notes, then push ours (never forced). When the remote
    moved in between, fetch, merge and push again, up to PUSH_ATTEMPTS times."""
    _require_remote(git, remote)
    sync = NotesSync(remote, False, False, False, "")
    rejected: list[notes.PushedRef] = []
    for attempt in range(1, PUSH_ATTEMPTS + 1):
        sync.attempts = attempt
        _fetch_merge(git, store, remote, sync, wait, on_wait)
        ours = notes.refs(git, notes.FORGE_NOTES)
        theirs = notes.refs(git, notes.tracking_prefix(remote))
        result = notes.push(git, remote)
        rejected = [p for p in result if p.flag == "!"]
        if any(not p.remote_moved for p in rejected):
            refused = "; ".join(f"{p.ref}: {p.summary}" for p in rejected)
            raise WorkFailed(f"{remote} refused the run notes ({refused})",
                             hint=f"your notes are safe here; check what the remote allows to be pushed "
                                  f"(git push {remote} '{notes.PUSH_REFSPEC}' shows git's words)")
        if rejected:
            continue
        after = notes.refs(git, notes.FORGE_NOTES)
        for p in result:
            if not p.moved:
                continue
            tracking = notes.tracking_ref(remote, p.ref)
            sure = ours.get(p.ref) == after.get(p.ref)  # not moved during the push: that is what went
            sync.moves.append(Move("pushed", p.ref, theirs.get(tracking), ours.get(p.ref) if sure else None))
            if sure:
                notes.set_ref(git, tracking, ours[p.ref], theirs.get(tracking))
            sync.pushed = True
        break
    else:
        raise WorkFailed(f"the run notes on {remote} kept moving while gitforge pushed ({PUSH_ATTEMPTS} tries, "
                         f"each rejected: {rejected[0].summary}); yours are merged here, nothing is lost",
                         hint=f"run `gitforge notes push {remote}` again in a moment")
    retried = f" (after {sync.attempts} tries: the remote moved meanwhile)" if sync.attempts > 1 else ""
    merged = "merged the remote's run notes into yours, then " if sync.merged else ""
    if sync.pushed:
        sync.summary = f"{remote}: {merged}pushed run notes ({_describe(sync.moves, 'pushed')}){retried}"
    elif not notes.refs(git, notes.FORGE_NOTES):
        sync.summary = f"{remote}: no run notes to push (none here, none on the remote)"
    else:
        sync.summary = f"{remote}: {merged}nothing to push, the remote has all of your run notes"
    return sync
