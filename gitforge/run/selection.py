"""Pick the next runnable phase of a backlog, or say why there is none (DESIGN §2 step 2).

Pure: reads a Backlog, never changes a status.
"""

from __future__ import annotations

import graphlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from gitforge.backlog import PRIORITIES, Backlog, Phase, normalize_phase_id

_STOPPERS = ("Failed", "Blocked", "Skipped")  # a dependency in one of these blocks its dependents
_FINISHED = ("Done", "Skipped")
_MAX_LINES = 10  # of the "nothing to run" reason; Selection.blocked has every blocked phase


@dataclass(frozen=True)
class Selection:
    phase: Phase | None
    reason: str
    blocked: dict[str, str] = field(default_factory=dict)


def select_next(backlog: Backlog, *, busy: Collection[str] = (),
                retryable: Collection[str] = (), landed: Mapping[str, str] | None = None) -> Selection:
    """`landed`: phase id -> where it landed, for phases the target's history shows landed
    although the backlog does not say Done (a landing reverted under it): never run again."""
    by_id = {p.id: p for p in backlog.phases}
    blocked = _blocked(backlog.phases, by_id)
    landed = dict(landed or {})
    ready = runnable_phases(backlog, busy=busy, retryable=retryable, landed=landed)
    if ready:
        phase = ready[0]
        return Selection(phase, f"phase {phase.id} is next ({phase.priority} priority)", blocked)
    return Selection(None, _nothing_to_do(backlog, by_id, blocked, _ids(busy), _ids(retryable), landed), blocked)


def runnable_phases(backlog: Backlog, *, busy: Collection[str] = (),
                    retryable: Collection[str] = (), landed: Mapping[str, str] | None = None) -> list[Phase]:
    """Every phase that can run now, in the order select_next picks them (priority, then
    document order): what repeated select_next calls, each adding its pick to `busy`, give."""
    busy_ids = _ids(busy)
    retry_ids = _ids(retryable)
    landed = dict(landed or {})
    by_id = {p.id: p for p in backlog.phases}

    def runnable(p: Phase) -> bool:
        return ((p.status == "Not started" or (p.status == "Failed" and p.id in retry_ids))
                and all(by_id[d].status == "Done" for d in p.dependencies)
                and p.id not in busy_ids and p.id not in landed)

    ready = [(PRIORITIES.index(p.priority), n, p) for n, p in enumerate(backlog.phases) if runnable(p)]
    return [p for _, _, p in sorted(ready, key=lambda c: c[:2])]


def _ids(ids: Collection[str]) -> set[str]:
    out = set()
    for pid in ids:
        try:
            out.add(normalize_phase_id(str(pid)))
        except ValueError:
            continue
    return out


def _blocked(phases: tuple[Phase, ...], by_id: dict[str, Phase]) -> dict[str, str]:
    """Phase id -> why it is blocked, for every unfinished phase with a stuck dependency."""
    root: dict[str, str] = {}  # blocked phase id -> the stopped phase at the bottom
    why: dict[str, str] = {}
    for pid in graphlib.TopologicalSorter({p.id: p.dependencies for p in phases}).static_order():
        if by_id[pid].status in _FINISHED:
            continue
        for dep in by_id[pid].dependencies:
            if by_id[dep].status in _STOPPERS:
                root[pid], why[pid] = dep, f"waiting on phase {dep} ({by_id[dep].status})"
                break
            if dep in root:
                root[pid] = root[dep]
                why[pid] = f"waiting on phase {dep}, which is blocked by phase {root[dep]}"
                break
    return {p.id: why[p.id] for p in phases if p.id in why}  # in document order


def _nothing_to_do(backlog: Backlog, by_id: dict[str, Phase], blocked: dict[str, str],
                   busy: set[str], retry: set[str], landed: Mapping[str, str]) -> str:
    phases = backlog.phases
    if not phases:
        return f"{backlog.path} has no phases"
    if all(p.status in _FINISHED for p in phases):
        skipped = sum(p.status == "Skipped" for p in phases)
        counts = f" ({len(phases) - skipped} Done, {skipped} Skipped)" if skipped else ""
        if len(phases) == 1:
            return f"the only phase is {'finished (Skipped)' if skipped else 'done'}"
        return f"all {len(phases)} phases are {'finished' if skipped else 'done'}{counts}"
    lines = [_why_waiting(p, by_id, blocked, busy, retry, landed)
             for p in phases if p.status not in _FINISHED]
    if len(lines) == 1:
        return lines[0]
    count = len(lines)
    if count > _MAX_LINES:
        lines[_MAX_LINES - 1:] = [f"and {count - _MAX_LINES + 1} more phases not runnable"]
    return f"{count} phases cannot run:\n" + "\n".join(f"- {line}" for line in lines)


def _why_waiting(p: Phase, by_id: dict[str, Phase], blocked: dict[str, str],
                 busy: set[str], retry: set[str], landed: Mapping[str, str]) -> str:
    name = f"phase {p.id}"
    if p.id in busy:
        return f"{name} is in progress in another run"
    if p.id in landed:
        return (f"{name} landed already ({landed[p.id]}) although the backlog says {p.status} (was the "
                f"landing reverted?); `gitforge next {p.id} --again` runs it anew")
    if p.status == "Awaiting review":
        return f"{name} is awaiting review; set its Status to Done once reviewed"
    if p.status == "Proposed":
        return f"{name} is Proposed; change its Status to Not started to run it"
    if p.status == "In progress":
        return (f"{name} is marked In progress but no live run holds it; "
                "set its Status to Not started to run it")
    if p.id in blocked:
        return f"{name} is blocked, {blocked[p.id]}"
    if p.status == "Failed" and p.id not in retry:
        return f"{name} Failed with no attempts left; set its Status to Not started to retry"
    if p.status == "Blocked":
        return f"{name} is Blocked; set its Status to Not started to run it"
    waiting = [d for d in p.dependencies if by_id[d].status != "Done"]
    deps = ", ".join(f"phase {d} ({'in progress in another run' if d in busy else by_id[d].status})"
                     for d in waiting)
    return f"{name} is waiting on {deps}"
