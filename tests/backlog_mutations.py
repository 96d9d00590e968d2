"""Hostile BACKLOG.md files, for the parser's fuzz test and bench/torture_backlog.py.

`base_backlog(rng)` writes a real backlog of phase_md phases (fields, tasks, gates, patches,
dependencies); each mutation in `MUTATIONS` is a pure `(lines, rng) -> lines` on its physical
lines (endings kept); `mutated_backlogs(seed, count)` gives the same files for the same seed.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator

from conftest import phase_md

Mutation = Callable[[list[str], random.Random], list[str]]
MUTATIONS: dict[str, Mutation] = {}

STATUSES = ("Not started", "In progress", "Awaiting review", "Done", "Failed", "Blocked",
            "Skipped", "Proposed")
HEADING = re.compile(r" {0,3}#{1,6}[ \t]")
FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
FIELD = re.compile(r"\*\*(Status|Dependencies|Priority|Checkpoint|Goal):\*\*")
WEIRD = ["\x00", "\x01", "\x07", "\x08", "\x0b", "\x0c", "\x1b", "\x1f", "\x7f", "\x85", "\u2028",
         "\u2029", "\ufeff", "\u200b", "\u202e", "\ud800", "\udcff", "\U0010ffff", "\r", "\n",
         "\t", "`", "*", "#", "~", ":", "ſ", "K", "ı", "İ", "ß"]
DIGITS = ["٣", "３", "²", "३", "𝟑", "③", "Ⅲ", "߃", "᠓", "\u0663\u0664", "1\u0301", "¹"]


def mutation(fn: Mutation) -> Mutation:
    MUTATIONS[fn.__name__] = fn
    return fn


def base_backlog(rng: random.Random) -> str:
    """A valid backlog: 1 to 6 phases with patches, gates and dependencies on earlier ones."""
    ids = sorted(rng.sample(range(1, 30), rng.randint(1, 6)))
    ids = [f"{i}.{rng.randint(1, 3)}" if rng.random() < 0.15 else str(i) for i in ids]
    phases = []
    for k, pid in enumerate(ids):
        deps = rng.sample(ids[:k], rng.randint(0, min(2, k)))
        patch = rng.choice([None, _new_file(pid), _backlog_edit(ids), _fenced_edit()])
        checks = tuple(f"python -m pytest -q tests/test_{pid.replace('.', '_')}_{n}.py"
                       for n in range(rng.randint(0, 2)))
        text = phase_md(pid, rng.choice(["Add a slugify helper", "Café ☕ 日本語", "C# ##", "x"]),
                        status=rng.choice(STATUSES), deps=", ".join(f"Phase {d}" for d in deps) or "None",
                        priority=rng.choice(["critical", "high", "medium", "low"]), checks=checks,
                        patch=patch)
        if rng.random() < 0.5:
            text = text.replace("\n\n### Tasks", "\n**Goal:** One paragraph\n  that wraps.\n"
                                "**Owner:** ana\n\n### Tasks", 1)
        phases.append(text)
    preamble = rng.choice(["# Backlog\n\n", "", "# Backlog\n\nIntro.\n\n```markdown\n"
                                                "## Phase 99: an example\n```\n\n"])
    return preamble + "\n".join(phases) + rng.choice(["", "---\n", "## Notes\n\nfree text\n"])


def _new_file(pid: str) -> str:
    return f"--- /dev/null\n+++ b/src/p{pid}.py\n@@ -0,0 +1,2 @@\n+x = 1\n+y = 2\n"


def _backlog_edit(ids: list[str]) -> str:
    return (f"--- a/BACKLOG.md\n+++ b/BACKLOG.md\n@@ -1,3 +1,4 @@\n # Backlog\n \n"
            f" ## Phase {ids[0]}: x\n+## Phase 77: added\n")


def _fenced_edit() -> str:
    return "--- a/README.md\n+++ b/README.md\n@@ -1,3 +1,3 @@\n ```\n-old\n+new\n ```\n"


def mutated_backlogs(seed: int, count: int) -> Iterator[tuple[str, str]]:
    """`count` (description, text) pairs: each a base backlog with 1 to 4 mutations."""
    names = sorted(MUTATIONS)
    for n in range(count):
        rng = random.Random(f"{seed}-{n}")
        lines = re.findall(r"[^\n]*\n|[^\n]+\Z", base_backlog(rng))
        applied = [names[n % len(names)]] + rng.sample(names, rng.randint(0, 3))
        for name in applied:
            lines = MUTATIONS[name](lines, rng)
        yield f"#{n} {'+'.join(applied)}", "".join(lines)


def _ending(line: str) -> str:
    return line[len(line.rstrip("\r\n")):]


def _pick(lines: list[str], rng: random.Random, pattern: re.Pattern[str] | None = None) -> int | None:
    found = [i for i, line in enumerate(lines) if pattern is None or pattern.match(line)]
    return rng.choice(found) if found else None


@mutation
def delete_lines(lines, rng):
    for _ in range(rng.randint(1, 3)):
        if lines:
            del lines[rng.randrange(len(lines))]
    return lines


@mutation
def duplicate_lines(lines, rng):
    for _ in range(rng.randint(1, 3)):
        i = _pick(lines, rng, rng.choice([None, HEADING, FIELD, FENCE]))
        if i is not None:
            lines.insert(i, lines[i])
    return lines


@mutation
def truncate_fence(lines, rng):
    """Drop a fence line (opening or closing), shorten one, or end the file inside one."""
    i = _pick(lines, rng, FENCE)
    if i is None:
        return lines
    how = rng.randrange(3)
    if how == 0:
        del lines[i]
    elif how == 1:
        lines[i] = re.sub(r"([`~])\1\1+", lambda m: m.group(0)[:-1], lines[i], count=1)
    else:
        lines = lines[:i + rng.randint(1, 3)]
    return lines


@mutation
def swap_headings(lines, rng):
    heads = [i for i, line in enumerate(lines) if HEADING.match(line)]
    if len(heads) >= 2:
        a, b = rng.sample(heads, 2)
        lines[a], lines[b] = lines[b].rstrip("\r\n") + _ending(lines[a]), \
            lines[a].rstrip("\r\n") + _ending(lines[b])
    return lines


@mutation
def swap_lines(lines, rng):
    if len(lines) >= 2:
        a, b = rng.sample(range(len(lines)), 2)
        lines[a], lines[b] = lines[b], lines[a]
    return lines


@mutation
def control_characters(lines, rng):
    for _ in range(rng.randint(1, 6)):
        if lines:
            i = rng.randrange(len(lines))
            at = rng.randint(0, len(lines[i]))
            lines[i] = lines[i][:at] + rng.choice(WEIRD) + lines[i][at:]
    return lines


@mutation
def line_endings(lines, rng):
    choice = rng.choice(["\r\n", "\r", "mixed", "none"])
    out = []
    for line in lines:
        body = line.rstrip("\r\n")
        end = rng.choice(["\n", "\r\n", "\r", "\n\r"]) if choice == "mixed" else choice
        out.append(body + ("" if end == "none" else end))
    return out


@mutation
def byte_order_marks(lines, rng):
    for _ in range(rng.randint(1, 3)):
        i = rng.choice([0, rng.randrange(len(lines))]) if lines else 0
        if lines:
            lines[i] = "\ufeff" + lines[i]
        else:
            lines = ["\ufeff"]
    return lines


@mutation
def huge_line(lines, rng):
    size = rng.choice([10_000, 100_000, 300_000])
    unit = rng.choice([" ", " \t", "#", "`", "*", "- ", "~", "a", "1.", "**", "🙂", "\x00", "``` "])
    filler = (unit * (size // len(unit) + 1))[:size]
    line = rng.choice([
        "**Goal:** a" + filler + "x", "**Status:**" + filler + "Done", "## Notes a" + filler + "b",
        "## Phase 1" + filler + ": t", "## Phase 50: " + filler + " ##", "- `" + filler + "`",
        "**" + filler, filler, "```" + filler, "## Phase " + "1" * size + ": t",
        "**Dependencies:** " + ", ".join(["1"] * (size // 3)), "1. " + filler])
    at = rng.randint(0, len(lines))
    return lines[:at] + [line + "\n"] + lines[at:]


@mutation
def nested_list(lines, rng):
    depth = rng.choice([50, 500, 2000])
    marker = rng.choice(["- ", "* ", "1. ", "> ", "- `x` "])
    block = [" " * (2 * d % 1000) + marker * (1 if d % 7 else 3) + f"item {d}\n"
             for d in range(depth)]
    i = _pick(lines, rng, re.compile(r"### (Tasks|Verification|Patch)")) or 0
    return lines[:i + 1] + block + lines[i + 1:]


@mutation
def dependency_cycle(lines, rng):
    heads = [(i, m.group(1)) for i, line in enumerate(lines)
             if (m := re.match(r"## Phase ([0-9.]+):", line))]
    deps = [i for i, line in enumerate(lines) if line.startswith("**Dependencies:**")]
    if not heads or not deps:
        return lines
    ids = [pid for _, pid in heads]
    for n, i in enumerate(deps):
        target = rng.choice([ids[(n + 1) % len(ids)], ids[n % len(ids)], "999", ids[0]])
        lines[i] = f"**Dependencies:** Phase {target}" + _ending(lines[i])
    return lines


@mutation
def unicode_digits(lines, rng):
    i = _pick(lines, rng, re.compile(r"(## Phase |\*\*Dependencies:\*\*)"))
    if i is not None:
        lines[i] = re.sub(r"[0-9]", lambda m: rng.choice(DIGITS + [m.group(0)]), lines[i], count=2)
    return lines


@mutation
def field_values(lines, rng):
    i = _pick(lines, rng, FIELD)
    if i is not None:
        name = FIELD.match(lines[i]).group(1)
        value = rng.choice(["", "Done", "DONE", "done ", "Dоne", "Not_started", "not-started", "Don",
                            "ſkipped", "true", "maybe", "None", "Phase", "Phase 1, Phase 1",
                            "1,,2", "#3", "Phase 1.", "phase\t2", "-", "n/a", "\x00", "**", "✓"])
        lines[i] = f"**{name}:** {value}" + _ending(lines[i])
    return lines


@mutation
def heading_forms(lines, rng):
    i = _pick(lines, rng, re.compile(r"## Phase"))
    if i is not None:
        lines[i] = rng.choice([
            "## Phase", "##Phase 1: x", "## Phase 1.2.3.4.5.6.7.8.9: deep", "# Phase 1: one",
            "### Phase 1: three", "## Phase 0: zero", "## Phase 00: zero", "## phase 1 :   ",
            "## Phase 1: x ##", "   ## Phase 2: indented", "    ## Phase 3: code",
            "## Phase 99999999999999999999999999: big", "## Phase -1: neg", "## Phases: plural",
            "## Phase 1:\t\t", "## Phase #4: hash", "## Phase 4 : x : y"]) + _ending(lines[i])
    return lines


@mutation
def many_phases(lines, rng):
    count = rng.choice([200, 2000])
    chain = rng.random() < 0.5
    extra = [f"## Phase {1000 + n}: p{n}\n**Status:** Not started\n"
             + (f"**Dependencies:** {999 + n}\n" if chain and n else "")
             + "### Verification\n- `true`\n" for n in range(count)]
    return lines + extra


@mutation
def truncate_text(lines, rng):
    text = "".join(lines)
    cut = rng.randint(0, len(text))
    return [text[:cut]]


@mutation
def indent_lines(lines, rng):
    for _ in range(rng.randint(1, 5)):
        if lines:
            i = rng.randrange(len(lines))
            lines[i] = rng.choice([" ", "   ", "    ", "\t", "> ", "- ", "  - "]) + lines[i]
    return lines


@mutation
def fences_in_patches(lines, rng):
    i = _pick(lines, rng, re.compile(r"(````diff|\+|-|@@| )"))
    if i is not None:
        lines.insert(i + 1, rng.choice(["```\n", "````\n", "~~~\n", "`````\n", "```diff\n",
                                         "## Phase 42: inside\n", " ## Phase 42: context\n"]))
    return lines


@mutation
def second_sections(lines, rng):
    i = _pick(lines, rng, re.compile(r"### "))
    if i is not None:
        lines.insert(rng.randint(i, len(lines)), rng.choice(["### Patch\n", "### Verification\n",
                                                             "### Tasks\n", "### patch:\n"]))
    return lines
