#!/usr/bin/env python3
"""gitforge's patch engine on real release-to-release diffs of PyPI packages, next to `git apply`,
`git apply -C1` and GNU `patch --fuzz=2`: identical results on clean diffs, throughput, and success
on the damaged copies that bench/damage.py makes. Stdlib and gitforge only; the sdists are cached
under ~/.cache/gitforge-bench ($GITFORGE_BENCH_CACHE); everything else lives in a temporary folder.

    python bench/bench_patch.py [--out docs/patch-engine.md] [--quick] [--repros DIR]
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import importlib.metadata
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
import urllib.request
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import damage  # noqa: E402

from gitforge.errors import PatchRefused  # noqa: E402
from gitforge.patch import DictTree, apply_patches, parse_patch  # noqa: E402

PAIRS = [("requests", "2.31.0", "2.32.0"), ("click", "8.1.7", "8.1.8"), ("attrs", "23.1.0", "23.2.0"),
         ("packaging", "23.2", "24.0"), ("packaging", "24.0", "24.1"), ("idna", "3.6", "3.7"),
         ("six", "1.15.0", "1.16.0")]
QUICK_PAIRS = [("packaging", "23.2", "24.0"), ("six", "1.15.0", "1.16.0")]
SEED, VARIANTS = 20240603, 6  # VARIANTS: modified files per pair also given as CRLF and as no-final-newline copies
CACHE = Path(os.environ.get("GITFORGE_BENCH_CACHE", "~/.cache/gitforge-bench")).expanduser()
TOOLS = {"gitforge": None, "git apply": ["git", "apply"], "git apply -C1": ["git", "apply", "-C1"],
         "patch --fuzz=2": ["patch", "-p1", "--fuzz=2", "--batch", "--no-backup-if-mismatch", "-i"]}
REPO = Path(__file__).resolve().parent.parent


@dataclass
class Case:
    name: str
    path: str
    pre: bytes | None  # None: the file does not exist before (after, for post)
    post: bytes | None
    diff: str  # UTF-8 with surrogateescape, so any bytes survive


def sdist(pkg: str, version: str) -> Path:
    """The release's sdist, downloaded once into the cache and checked against PyPI's sha256."""
    meta = json.load(urllib.request.urlopen(f"https://pypi.org/pypi/{pkg}/json", timeout=60))
    info = next(f for f in meta["releases"][version] if f["packagetype"] == "sdist")
    path = CACHE / info["filename"]
    if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != info["digests"]["sha256"]:
        url = info["url"]  # some mirrors answer with a relative URL
        if not url.startswith("https://"):
            url = "https://files.pythonhosted.org/packages/" + re.search(r"packages/(\w\w/\w\w/\w+/[^/]+)$", url)[1]
        data = urllib.request.urlopen(url, timeout=120).read()
        assert hashlib.sha256(data).hexdigest() == info["digests"]["sha256"], f"{url}: sha256 mismatch"
        CACHE.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return path


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink()}


def build_corpus(pairs, tmp: Path) -> tuple[list[Case], list[list]]:
    """Per-file `git diff`s of each pair, plus CRLF and no-final-newline copies of a few files."""
    cases, rows = [], []
    for pkg, old, new in pairs:
        work = tmp / f"{pkg}-{old}-{new}"
        for side, version in (("a", old), ("b", new)):
            with tarfile.open(sdist(pkg, version)) as tar:
                tar.extractall(work / "x", filter="data")
            (top,) = (work / "x").iterdir()
            top.rename(work / side)
        a, b = files(work / "a"), files(work / "b")
        modified = [p for p in sorted(a.keys() & b.keys()) if a[p] != b[p] and b"\0" not in a[p] + b[p]]
        rng = random.Random(f"{SEED}/{pkg}/{old}")
        for p in rng.sample(modified, min(VARIANTS, len(modified))):
            if b"\r" not in a[p] + b[p]:
                for side, data in (("a", a[p]), ("b", b[p])):
                    (work / side / "crlf" / p).parent.mkdir(parents=True, exist_ok=True)
                    (work / side / "crlf" / p).write_bytes(data.replace(b"\n", b"\r\n"))
        for p in rng.sample(modified, min(VARIANTS, len(modified))):
            for side, data in (("a", a[p].rstrip(b"\n")), ("b", b[p].rstrip(b"\n") + b"\nlast line")):
                (work / side / "noeol" / p).parent.mkdir(parents=True, exist_ok=True)
                (work / side / "noeol" / p).write_bytes(data)  # the diff ends with the `\ No newline` marker
        a, b = files(work / "a"), files(work / "b")
        out = subprocess.run(["git", "diff", "--no-index", "--no-prefix", "--no-renames", "a", "b"],
                             cwd=work, env=ENV, capture_output=True).stdout.decode("utf-8", "surrogateescape")
        counts = collections.Counter()
        for chunk in re.split(r"^(?=diff --git )", out, flags=re.M)[1:]:
            first, rest = chunk.split("\n", 1)
            names = first[len("diff --git "):]
            path = names[2:2 + (len(names) - 5) // 2]
            if "\nBinary files " in "\n" + rest.split("\n@@", 1)[0] or '"' in first or "@@" not in rest:
                continue  # binary, quoted (unusual) name, or a mode change alone
            kind = "added" if path not in a else "deleted" if path not in b else "modified"
            counts[kind] += 1
            counts["lines"] += sum(1 for line in rest.split("\n") if line[:1] in ("+", "-")) - 2
            cases.append(Case(f"{pkg} {old}..{new}: {path}", path, a.get(path), b.get(path),
                              f"diff --git a/{path} b/{path}\n{rest}"))
        rows.append([pkg, old, new, counts["modified"], counts["added"], counts["deleted"], counts["lines"]])
    return cases, rows


def tree(path: str, data: bytes | None) -> dict[str, bytes]:
    return {path: data} if data is not None else {}


def run_gitforge(diff: str, path: str, pre: bytes | None) -> tuple[str, dict[str, bytes] | str]:
    """("applied", the tree after), ("refused", why) or ("crashed", the traceback)."""
    try:
        changes = apply_patches(parse_patch(diff), DictTree(tree(path, pre)))
    except PatchRefused as e:
        return "refused", "; ".join([e.message] + e.reasons)
    except Exception:  # noqa: BLE001 - a bug in the engine, reported as such
        return "crashed", traceback.format_exc(limit=-3)
    after = tree(path, pre)
    for c in changes:
        after.pop(c.old_path or c.path, None)
        after.update(tree(c.path, c.data))
    return "applied", after


def run_tool(cmd: list[str], diff: str, path: str, pre: bytes | None, tmp: Path) -> tuple[str, object, float]:
    """A command applied in a scratch folder holding the preimage; also the seconds it took."""
    scratch = Path(tempfile.mkdtemp(dir=tmp))
    (scratch / "patch.diff").write_bytes(diff.encode("utf-8", "surrogateescape"))
    target = scratch / "tree" / path
    target.parent.mkdir(parents=True)
    if pre is not None:
        target.write_bytes(pre)
    start = time.perf_counter()
    proc = subprocess.run(cmd + [str(scratch / "patch.diff")], cwd=scratch / "tree", env=ENV, capture_output=True)
    seconds = time.perf_counter() - start
    result = ("applied", files(scratch / "tree")) if proc.returncode == 0 else (
        "refused", proc.stderr.decode(errors="replace")[-300:] or proc.stdout.decode(errors="replace")[-300:])
    shutil.rmtree(scratch)
    return (*result, seconds)


def run(tool: str, diff: str, path: str, pre: bytes | None, tmp: Path) -> tuple[str, object]:
    return run_gitforge(diff, path, pre) if TOOLS[tool] is None else run_tool(TOOLS[tool], diff, path, pre, tmp)[:2]


def save_repro(root: Path, label: str, diff: str, path: str, pre, expected, got) -> Path:
    """patch.diff, tree/<path> (the preimage), expected and got, and how to replay it."""
    folder = root / re.sub(r"[^\w.-]+", "-", label)[:80]
    (folder / "tree" / path).parent.mkdir(parents=True, exist_ok=True)
    (folder / "patch.diff").write_bytes(diff.encode("utf-8", "surrogateescape"))
    if pre is not None:
        (folder / "tree" / path).write_bytes(pre)
    for name, value in (("expected", expected), ("got", got)):
        if isinstance(value, dict) and list(value) == [path]:
            value = value[path]  # else: no file, another file, or the reason it was refused
        data = value if isinstance(value, bytes) else f"<{value!r}>\n".encode("utf-8", "surrogateescape")
        (folder / name).write_bytes(data)
    (folder / "README").write_text(f"{label}\npath: {path}\nreplay: cd {folder} && {sys.executable} -c "
                                   f"\"from gitforge.patch import *; t=DictTree({{'{path}': open('tree/{path}',"
                                   f"'rb').read()}}); print(apply_patches(parse_patch(open('patch.diff','rb')"
                                   f".read()), t))\"\n")
    return folder


def version(cmd: list[str]) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV).stdout.splitlines()[0]


def pct(n: int, total: int) -> str:
    return f"{100 * n / total:.1f}%" if total else "-"


def clean(cases: list[Case], tmp: Path, repros: Path) -> tuple[list[str], float]:
    """Every clean diff through gitforge and `git apply`: identical bytes (or both refusing)?"""
    same = correct = 0
    git_seconds, out = 0.0, []
    for c in cases:
        got = run_gitforge(c.diff, c.path, c.pre)
        status, data, seconds = run_tool(TOOLS["git apply"], c.diff, c.path, c.pre, tmp)
        git_seconds += seconds
        correct += got == ("applied", tree(c.path, c.post))
        if got[0] == status and (status != "applied" or got[1] == data):
            same += 1
            continue
        why = got[1] if got[0] != "applied" else f"git apply {status}" if status != "applied" else "different bytes"
        folder = save_repro(repros, f"clean-{len(out) + 1}-{c.path}", c.diff, c.path, c.pre, tree(c.path, c.post),
                            got[1])
        out.append(f"- {c.name}: gitforge {got[0]}, git apply {status}: {str(why).splitlines()[0][:160]} "
                   f"(`{folder}`)")
    return [f"**{same} of {len(cases)} ({pct(same, len(cases))})** per-file diffs gave the same result "
            f"with gitforge as with `git apply`; gitforge's result was the release's file in {correct}.",
            ""] + (["Not identical:", ""] + out if out else []), git_seconds


def throughput(cases: list[Case], rounds: int, git_seconds: float) -> list[str]:
    """gitforge's parse + apply in process, best of `rounds`, against `git apply` per diff."""
    prepared = [(c.diff, DictTree({c.path: c.pre} if c.pre is not None else {})) for c in cases]
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for diff, tree in prepared:
            try:
                apply_patches(parse_patch(diff), tree)
            except Exception:  # noqa: BLE001,S110 - refusals are counted elsewhere
                pass
        best = min(best, time.perf_counter() - start)
    n = len(cases)
    return ["| | diffs | seconds | diffs/s |", "| --- | ---: | ---: | ---: |",
            f"| gitforge (parse + apply in memory, best of {rounds}) | {n} | {best:.3f} | {n / best:,.0f} |",
            f"| `git apply` (one subprocess per diff) | {n} | {git_seconds:.3f} | {n / git_seconds:,.0f} |", "",
            f"gitforge is **{git_seconds / best:.1f}x** the throughput of `git apply` in a subprocess."]


def damaged(cases: list[Case], tmp: Path, repros: Path) -> list[str]:
    """Each damage of bench/damage.py on every diff it applies to, through the four tools."""
    stats = {kind: {tool: collections.Counter() for tool in TOOLS} for kind in damage.KINDS}
    wrong, refused = [], collections.defaultdict(collections.Counter)
    for kind, fn in damage.KINDS.items():
        print(f"bench: damage: {kind}", file=sys.stderr)
        for c in cases:
            made = fn(c.diff, c.pre, random.Random(f"{SEED}/{kind}/{c.name}"))
            if made is None or made == (c.diff, c.pre):
                continue
            diff, pre = made
            expected = tree(c.path, damage.expected_postimage(c.diff, c.pre, pre, c.post))
            outcome = {}
            for tool in TOOLS:
                status, after = run(tool, diff, c.path, pre, tmp)
                outcome[tool] = status if status != "applied" else "correct" if after == expected else "wrong"
                stats[kind][tool].update([outcome[tool], "cases"] + ["no-op"] * (after == tree(c.path, pre)))
            if outcome["gitforge"] in ("wrong", "crashed"):
                got = run_gitforge(diff, c.path, pre)[1]
                folder = save_repro(repros, f"{outcome['gitforge']}-{len(wrong) + 1}-{c.path}", diff, c.path,
                                    pre, expected, got)
                wrong.append(f"- {kind}, {c.name}: {outcome['gitforge']} (`{folder}`)")
            elif outcome["gitforge"] == "refused":
                others = [tool for tool in TOOLS if outcome[tool] == "correct"]
                refused[kind].update(others)
                if others and refused[kind]["saved"] < 3:
                    refused[kind]["saved"] += 1
                    save_repro(repros, f"refused-{kind}-{refused[kind]['saved']}", diff, c.path, pre, expected,
                               run_gitforge(diff, c.path, pre)[1])
    tools = list(TOOLS)
    out = ["| damage | cases | " + " | ".join(tools) + " |", "| --- | ---: |" + " ---: |" * len(tools)]
    total = {tool: collections.Counter() for tool in tools}
    for kind, row in list(stats.items()) + [("**all**", total)]:
        for tool in tools:
            if row is not total:
                total[tool].update(row[tool])
        rates = {tool: row[tool]["correct"] / row[tool]["cases"] if row[tool]["cases"] else 0 for tool in tools}
        cells = [f"{'**' * (rates[t] == max(rates.values()))}{pct(row[t]['correct'], row[t]['cases'])}"
                 f"{'**' * (rates[t] == max(rates.values()))}, {row[t]['wrong']} wrong"
                 + (f" ({row[t]['no-op']} no-op)" if row[t]["no-op"] else "")
                 + (f", {row[t]['crashed']} crashed" if row[t]["crashed"] else "") for t in tools]
        out.append(f"| {kind} | {row[tools[0]]['cases']} | " + " | ".join(cells) + " |")
    out += ["", "Each cell: applied correctly (the intended file, byte for byte, and no other file), and how "
            "many were applied wrongly (the tool reported success with a different result; *no-op*: it left the "
            "file as it was); the rest were refused.", "",
            "### gitforge applied wrongly or crashed", ""] + (wrong or ["None."])
    out += ["", "### Refused by gitforge, applied correctly by another tool", ""]
    out += [f"- {kind}: " + ", ".join(f"{tool} {n}" for tool, n in counts.items() if tool != "saved")
            for kind, counts in refused.items() if set(counts) - {"saved"}] or ["None."]
    return out


def machine() -> list[str]:
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    return [f"- nproc: {os.cpu_count()}", f"- Python {platform.python_version()} ({sys.executable})",
            f"- {version(['git', '--version'])}, {version(['patch', '--version'])}",
            f"- gitforge {importlib.metadata.version('gitforge')} ({commit or 'not a git checkout'})",
            f"- {platform.system()} {platform.release()} {platform.machine()}"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, help="also write the report to this file")
    ap.add_argument("--quick", action="store_true", help="two small release pairs, one timing round")
    ap.add_argument("--repros", type=Path, default=Path(tempfile.gettempdir()) / "bench-repros",
                    help="where gitforge's wrong or refused cases are saved (default: %(default)s)")
    args = ap.parse_args()
    began = time.perf_counter()
    args.repros.mkdir(parents=True, exist_ok=True)
    for old in args.repros.iterdir():  # the cases this script saved last time
        if re.match(r"(clean|wrong|crashed|refused)-", old.name) and (old / "patch.diff").exists():
            shutil.rmtree(old)
    with tempfile.TemporaryDirectory(prefix="gitforge-bench-") as t:
        tmp = Path(t)
        (tmp / "home").mkdir()
        ENV.update(HOME=str(tmp / "home"), GIT_CEILING_DIRECTORIES=str(tmp))
        cases, rows = build_corpus(QUICK_PAIRS if args.quick else PAIRS, tmp)
        print(f"bench: {len(cases)} per-file diffs", file=sys.stderr)
        identity, git_seconds = clean(cases, tmp, args.repros)
        speed = throughput(cases, 1 if args.quick else 3, git_seconds)
        broken = damaged(cases, tmp, args.repros)
    command = "python bench/bench_patch.py" + (" --quick" if args.quick else "") + (
        f" --out {args.out}" if args.out else "")
    lines = ["# Patch engine benchmark", "", "Produced by `bench/bench_patch.py` (see `bench/README.md`):", "",
             f"    {command}", "", "## Corpus", "",
             "Per-file `git diff --no-renames` between the sdists of consecutive releases on PyPI (text files "
             f"only). In each pair, {VARIANTS} modified files are also diffed as CRLF copies (`crlf/…`) and "
             f"{VARIANTS} as copies without the final newline and with a line added at the end (`noeol/…`).", "",
             "| package | from | to | modified | added | deleted | +/- lines |", "| --- | --- | --- |" + " ---: |" * 4]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    lines += ["", f"{len(cases)} per-file diffs in all.", "", "## Machine", ""] + machine()
    lines += ["", "## Clean diffs: the same result as `git apply`", ""] + identity
    lines += ["", "## Throughput", ""] + speed
    lines += ["", "## Damaged diffs", "", DAMAGED_INTRO, ""] + broken
    lines += ["", f"Saved cases (diff, preimage, expected, got): `{args.repros}`. "
              f"The run took {time.perf_counter() - began:.0f} s."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


DAMAGED_INTRO = ("Copies of the same diffs damaged the ways language models damage them (`bench/damage.py`, "
                 f"seed {SEED}; a damage is used only where it applies, e.g. a `\\ No newline` marker is "
                 "dropped only where the file lacks the final newline before and after). Where a damage also "
                 "changes the file (drift, CRLF), the intended result is the release's file with the same change. "
                 "Tools: gitforge (in memory), `git apply`, `git apply -C1`, and "
                 "`patch -p1 --fuzz=2 --batch --no-backup-if-mismatch`, each in a scratch folder.")
ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "GIT_CONFIG_NOSYSTEM": "1",
       "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_ATTR_NOSYSTEM": "1"}

if __name__ == "__main__":
    main()
