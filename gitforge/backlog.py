"""BACKLOG.md <-> Phase objects.

The parser keeps every line of the file exactly as it was and each phase points at its
lines by index, so `parse_backlog(t).render() == t` byte for byte, and `with_status`
changes exactly one line (or inserts one). Phase selection lives in `selection.py`.
"""

from __future__ import annotations

import bisect
import difflib
import graphlib
import itertools
import re
import unicodedata
from dataclasses import dataclass, field as dataclass_field
from typing import Any

from gitforge.errors import BacklogError
from gitforge.mdblocks import LINE, Fence, atx_heading, find_fences, first_code_span, split_ending

STATUSES: tuple[str, ...] = ("Not started", "In progress", "Awaiting review", "Done",
                             "Failed", "Blocked", "Skipped", "Proposed")
PRIORITIES: tuple[str, ...] = ("critical", "high", "medium", "low")
_KNOWN_FIELDS = ("status", "checkpoint", "dependencies", "priority", "goal")
_BOOLS = {"true": True, "yes": True, "false": False, "no": False}
_NO_DEPS = {"", "none", "-", "n/a"}
_HEADING_FORM = '"## Phase <N>: <title>", e.g. "## Phase 3: Add a login page"'

_PHASE_WORD = re.compile(r"phase(?![a-z])", re.I)
_PHASE_HEADING = re.compile(r"phase[ \t]+([0-9]+(?:\.[0-9]+)*)[ \t]*:[ \t]*(\S.*)", re.I)
_FIELD = re.compile(r" {0,3}(?:[-*+][ \t]+)?\*\*([^*]+?)(?::\*\*|\*\*[ \t]*:)"  # value: no
                    r"[ \t]*+((?:[ \t]*+[^ \t])*+)[ \t]*\Z")  # backtracking over spaces and tabs
_ITEM = re.compile(r" {0,3}(?:[-*+]|[0-9]{1,9}[.)])(?:[ \t]+(.*))?\Z")
_RULE = re.compile(r" {0,3}(?:(?:-[ \t]*){3,}|(?:\*[ \t]*){3,}|(?:_[ \t]*){3,})\Z")
_ID = re.compile(r"(?:phase[ \t]*)?#?[ \t]*([0-9]+(?:\.[0-9]+)*)", re.I)

__all__ = ["STATUSES", "PRIORITIES", "Phase", "Backlog", "parse_backlog", "normalize_phase_id",
           "Selection", "select_next"]


def normalize_phase_id(s: str) -> str:
    """"Phase 3" / "phase 3" / "3" / "03" -> "3"; anything else raises ValueError."""
    m = _ID.fullmatch(s.strip())
    if not m:
        raise ValueError(f"not a phase id: {s!r} (expected e.g. 3, 12.1 or Phase 3)")
    return ".".join(part.lstrip("0") or "0" for part in m.group(1).split("."))


@dataclass(frozen=True)
class Phase:
    id: str
    title: str
    status: str
    dependencies: tuple[str, ...]
    priority: str
    checkpoint: bool
    goal: str | None
    tasks: str
    verification: tuple[str, ...]
    patch: str | None
    fields: tuple[tuple[str, str], ...]
    line: int
    text: str = dataclass_field(repr=False)

    @property
    def slug(self) -> str:
        ascii_title = unicodedata.normalize("NFKD", self.title).encode("ascii", "ignore").decode()
        slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
        return slug[:40].rstrip("-") or "phase"


class Backlog:
    """A parsed BACKLOG.md: the original lines plus the phases found in them."""

    def __init__(self, path: str, phases: tuple[Phase, ...], lines: tuple[str, ...],
                 status_lines: dict[str, int | None]) -> None:
        self.path = path
        self.phases = phases
        self._lines = lines
        self._status_lines = status_lines

    def __repr__(self) -> str:
        return f"Backlog({self.path!r}, phases={[p.id for p in self.phases]})"

    def render(self) -> str:
        return "".join(self._lines)

    def get(self, phase_id: str) -> Phase:
        wanted = _ID.fullmatch(phase_id.strip()) and normalize_phase_id(phase_id)
        for phase in self.phases:
            if phase.id == wanted:
                return phase
        known = ", ".join(p.id for p in self.phases) or "none"
        raise BacklogError(f"no phase {phase_id}; phases are: {known}", path=self.path)

    def status_line(self, phase_id: str) -> int:
        """The 1-based line of the phase's Status field, or of its heading when it has none."""
        phase = self.get(phase_id)
        index = self._status_lines[phase.id]
        return phase.line if index is None else index + 1

    def with_status(self, phase_id: str, status: str) -> Backlog:
        """A new Backlog whose text differs from this one only in the phase's Status line."""
        if status not in STATUSES:
            raise ValueError(f"not a canonical status: {status!r}; expected one of {STATUSES}")
        phase = self.get(phase_id)
        lines = list(self._lines)
        index = self._status_lines[phase.id]
        if index is not None:  # never line 0, so no BOM to step over
            body, ending = split_ending(lines[index])
            m = _FIELD.match(body)
            assert m is not None
            start, end = m.start(2), m.end(2)
            sep = "" if body[start - 1:start].isspace() else " "
            lines[index] = body[:start] + sep + status + body[end:] + ending
        else:
            heading = phase.line - 1
            body, ending = split_ending(lines[heading])
            if ending:
                lines.insert(heading + 1, f"**Status:** {status}{ending}")
            else:  # the heading is the last line and has no newline: keep it that way
                first = next((split_ending(x)[1] for x in lines if split_ending(x)[1]), "\n")
                lines[heading] = body + first
                lines.insert(heading + 1, f"**Status:** {status}")
        return parse_backlog("".join(lines), self.path)


def parse_backlog(text: str, path: str = "BACKLOG.md") -> Backlog:
    lines = tuple(LINE.findall(text))
    doc = _Doc(lines, path)
    phases: list[Phase] = []
    status_lines: dict[str, int | None] = {}
    dep_lines: dict[str, int] = {}
    first_seen: dict[str, int] = {}
    for start, end, pid, title in doc.phase_spans():
        if pid in first_seen:
            raise doc.error(f"duplicate phase id {pid} (also on line {first_seen[pid] + 1})",
                            start, hint="give each phase its own number")
        first_seen[pid] = start
        phase, status_line, dep_line = doc.parse_phase(start, end, pid, title)
        phases.append(phase)
        status_lines[pid] = status_line
        if dep_line is not None:
            dep_lines[pid] = dep_line
    _check_dependencies(phases, dep_lines, path)
    return Backlog(path, tuple(phases), lines, status_lines)


def __getattr__(name: str) -> Any:  # `from gitforge.backlog import select_next` works too
    if name in ("Selection", "select_next"):
        from gitforge.run import selection
        return getattr(selection, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Doc:
    """The lines of one file, with fenced blocks found once; a block left open is an error
    (CommonMark would run it to the end of the file, hiding every phase after it)."""

    def __init__(self, lines: tuple[str, ...], path: str) -> None:
        self.lines = lines
        self.path = path
        self.body = [split_ending(line)[0] for line in lines]
        if self.body and self.body[0].startswith("\ufeff"):
            self.body[0] = self.body[0][1:]
        self.fences = find_fences(self.body)
        self.fenced = [False] * len(lines)
        for fence in self.fences:
            if fence.end is None:
                raise self._unclosed(fence)
            self.fenced[fence.start:fence.end + 1] = [True] * (fence.end + 1 - fence.start)
        self._fence_starts = [f.start for f in self.fences]

    def heading(self, i: int) -> tuple[int, str] | None:
        """(level, text) when line i is an ATX heading outside any fence."""
        return None if self.fenced[i] else atx_heading(self.body[i])

    def _unclosed(self, fence: Fence) -> BacklogError:
        above = next((h for i in range(fence.start - 1, -1, -1)
                      if (h := self.heading(i)) and h[0] <= 3), None)
        patch = above is not None and above[0] == 3 and _section(above[1]) == "patch"
        hidden = self._phase_heading_in(fence)
        hides = "" if hidden is None else (f" and hides the heading on line {hidden + 1} "
                                           f"({self.body[hidden].strip()!r})")
        return self.error(f"the {'### Patch' if patch else fence.marker} block opened on line "
                          f"{fence.start + 1} is never closed{hides}; end it with a line of "
                          f"{fence.marker}", fence.start,
                          hint="close every ``` or ~~~ block: an open one hides the phases after it")

    def _phase_heading_in(self, fence: Fence) -> int | None:
        """The first line inside `fence` that, at the block's own indent, is a `## Phase`
        heading: never a diff line (those start with a space, +, -, @ or a letter)."""
        for j in fence.inner(len(self.body)):
            line = self.body[j]
            line = line[min(len(line) - len(line.lstrip(" ")), fence.indent):]
            heading = atx_heading(line) if line.startswith("#") else None
            if heading is not None and heading[0] == 2 and _PHASE_WORD.match(heading[1]):
                return j
        return None

    def error(self, message: str, i: int, hint: str | None = None) -> BacklogError:
        return BacklogError(message, line=i + 1, path=self.path, hint=hint)

    def phase_spans(self) -> list[tuple[int, int, str, str]]:
        """(start, end, id, title) of each phase: its heading to the next level 1-2 heading."""
        bounds: list[int] = []  # every level 1-2 heading ends the phase before it
        starts: list[tuple[int, str, str]] = []
        for i in range(len(self.body)):
            heading = self.heading(i)
            if heading is None or heading[0] > 2:
                continue
            bounds.append(i)
            if heading[0] == 2 and _PHASE_WORD.match(heading[1]):
                m = _PHASE_HEADING.fullmatch(heading[1])
                if not m:
                    raise self.error(f"bad phase heading {self.body[i].strip()!r}; expected "
                                     + _HEADING_FORM, i, hint="a level-2 heading starting "
                                     "with 'Phase' must be a phase heading")
                starts.append((i, normalize_phase_id(m.group(1)), m.group(2).rstrip(" \t")))
        bounds.append(len(self.body))
        return [(i, bounds[bisect.bisect_right(bounds, i)], pid, title)
                for i, pid, title in starts]

    def parse_phase(self, start: int, end: int, pid: str,
                    title: str) -> tuple[Phase, int | None, int | None]:
        headings = [(i, h) for i in range(start + 1, end) if (h := self.heading(i))]
        header_end = next((i for i, (level, _) in headings if level >= 3), end)
        fields: list[tuple[str, str]] = []
        known: dict[str, tuple[int, str]] = {}
        for i in range(start + 1, header_end):
            m = None if self.fenced[i] else _FIELD.match(self.body[i])
            if not m:
                continue
            name, value = m.group(1).strip(), m.group(2)
            fields.append((name, value))
            key = name.lower()
            if key in known:
                raise self.error(f"duplicate **{name}:** field in phase {pid} "
                                 f"(also on line {known[key][0] + 1})", i)
            if key in _KNOWN_FIELDS:
                known[key] = (i, value)
        sections: dict[str, list[tuple[int, int, int]]] = {}
        level3 = [(i, text) for i, (level, text) in headings if level == 3]
        for n, (i, text) in enumerate(level3):
            stop = level3[n + 1][0] if n + 1 < len(level3) else end
            sections.setdefault(_section(text), []).append((i, i + 1, stop))

        phase = Phase(
            id=pid, title=title, status=self._status(known.get("status")),
            dependencies=self._dependencies(known.get("dependencies")),
            priority=self._lookup(known.get("priority"), "Priority",
                                  {p: p for p in PRIORITIES}, "medium"),
            checkpoint=self._lookup(known.get("checkpoint"), "Checkpoint", _BOOLS, False),
            goal=self._goal(known.get("goal"), header_end),
            tasks=self._tasks(sections.get("tasks", [])),
            verification=self._verification(sections.get("verification", [])),
            patch=self._patch(sections.get("patch", []), pid),
            fields=tuple(fields), line=start + 1, text="".join(self.lines[start:end]))
        dep_line = known["dependencies"][0] if "dependencies" in known else None
        return phase, known["status"][0] if "status" in known else None, dep_line

    def _status(self, field: tuple[int, str] | None) -> str:
        if field is None or not field[1]:
            return "Not started"
        i, value = field
        canon = {s.lower(): s for s in STATUSES}
        key = re.sub(r"[\s_-]+", " ", value).strip().lower()
        if key in canon:
            return canon[key]
        nearest = difflib.get_close_matches(key, list(canon), n=1, cutoff=0.0)
        suggestion = f'did you mean "{canon[nearest[0]]}"? ' if nearest else ""
        raise self.error(f'unknown Status "{value}"; {suggestion}'
                         f"valid values: {', '.join(STATUSES)}", i)

    def _lookup(self, field: tuple[int, str] | None, name: str, table: dict[str, Any],
                default: Any) -> Any:
        if field is None or not field[1]:
            return default
        if field[1].lower() in table:
            return table[field[1].lower()]
        raise self.error(f'unknown {name} "{field[1]}"; expected one of: {", ".join(table)}',
                         field[0])

    def _dependencies(self, field: tuple[int, str] | None) -> tuple[str, ...]:
        if field is None or field[1].lower() in _NO_DEPS:
            return ()
        deps: list[str] = []
        for item in field[1].split(","):
            try:
                dep = normalize_phase_id(item)
            except ValueError:
                raise self.error(f'bad Dependencies item "{item.strip()}"; expected None or '
                                 'phase ids such as "Phase 3, Phase 5" or "3, 5"',
                                 field[0]) from None
            if dep not in deps:
                deps.append(dep)
        return tuple(deps)

    def _goal(self, field: tuple[int, str] | None, header_end: int) -> str | None:
        if field is None:
            return None
        i, value = field
        parts = [value]
        for j in range(i + 1, header_end):  # a wrapped paragraph continues the goal
            if self.fenced[j] or not self.body[j].strip() or _FIELD.match(self.body[j]) \
                    or self.heading(j):
                break
            parts.append(self.body[j].strip())
        return "\n".join(parts).strip()

    def _tasks(self, ranges: list[tuple[int, int, int]]) -> str:
        body = [self.body[j] for _, a, b in ranges for j in range(a, b)]
        while body and (not body[-1].strip() or _RULE.match(body[-1])):
            body.pop()
        return "\n".join(body).strip()

    def _verification(self, ranges: list[tuple[int, int, int]]) -> tuple[str, ...]:
        items: list[list[str]] = []
        continuing = False
        for _, a, b in ranges:
            for j in range(a, b):
                m = None if self.fenced[j] else _ITEM.match(self.body[j])
                if m:
                    items.append([m.group(1) or ""])
                    continuing = True
                elif continuing and not self.fenced[j] and self.body[j].strip():
                    items[-1].append(self.body[j].strip())
                else:
                    continuing = False
        gates = (first_code_span("\n".join(item)) for item in items)
        return tuple(g.strip() for g in gates if g is not None and g.strip())

    def _patch(self, ranges: list[tuple[int, int, int]], pid: str) -> str | None:
        if not ranges:
            return None
        if len(ranges) > 1:
            raise self.error(f"phase {pid} has a second ### Patch section "
                             f"(the first is on line {ranges[0][0] + 1})", ranges[1][0])
        _, a, b = ranges[0]
        first = bisect.bisect_left(self._fence_starts, a)
        fences = list(itertools.takewhile(lambda f: f.start < b, self.fences[first:]))
        for f in fences:
            if (hidden := self._phase_heading_in(f)) is not None:
                raise self.error(f"{self.body[hidden].strip()!r} is inside the ### Patch block "
                                 f"opened on line {f.start + 1}; is the block's closing "
                                 f"{f.marker} missing?", hidden,
                                 hint=f"end the patch with a line of {f.marker} before the "
                                 "next phase's heading")
        if not fences:
            return None
        fence = fences[0]
        assert fence.end is not None  # _Doc refuses a block left open
        info = fence.info.split()[0].lower() if fence.info else ""
        if info not in ("", "diff", "patch"):
            raise self.error(f"the ### Patch block is marked {fence.marker}{info}; expected "
                             f"{fence.marker}diff, {fence.marker}patch or a bare "
                             f"{fence.marker}", fence.start)
        body = []
        for line in self.lines[fence.start + 1:fence.end]:
            indent = len(line) - len(line.lstrip(" "))
            body.append(line[min(indent, fence.indent):])
        if body and all(line.endswith("\r\n") for line in body):
            return "".join(line[:-2] + "\n" for line in body)
        return "".join(body)


def _section(heading_text: str) -> str:
    return heading_text.rstrip(":").strip().lower()


def _check_dependencies(phases: list[Phase], dep_lines: dict[str, int], path: str) -> None:
    by_id = {p.id: p for p in phases}
    for p in phases:
        for dep in p.dependencies:
            if dep == p.id:
                raise BacklogError(f"phase {p.id} depends on itself", line=dep_lines[p.id] + 1,
                                   path=path)
            if dep not in by_id:
                raise BacklogError(f"phase {p.id} depends on phase {dep}, which does not exist; "
                                   f"phases are: {', '.join(by_id)}",
                                   line=dep_lines[p.id] + 1, path=path)
    try:
        graphlib.TopologicalSorter({p.id: p.dependencies for p in phases}).prepare()
    except graphlib.CycleError as e:
        cycle = list(reversed(e.args[1]))  # each phase, then the phase it depends on
        order = {p.id: n for n, p in enumerate(phases)}
        first = min(cycle[:-1], key=order.__getitem__)
        cycle = cycle[cycle.index(first):-1] + cycle[:cycle.index(first) + 1]
        raise BacklogError("dependency cycle: " + " -> ".join(f"phase {c}" for c in cycle),
                           line=dep_lines[first] + 1, path=path,
                           hint="remove one of these dependencies") from None
