"""A gate tests the worktree's own code (DESIGN.md §2 step 8).

A Python project installed in editable mode (`pip install -e .`) puts its main checkout on
every interpreter's `sys.path` through a `.pth` file, so a gate run in a task worktree would
import the package from the checkout, not from the change under test, and pass for code it
never ran. Two defences:

- `isolate`: the worktree's import roots (its root, and `src/` when present; otto.yaml
  `gates.pythonpath` overrides) go first on PYTHONPATH, ahead of any `.pth` entry;
- `outside_imports`: before a gate runs, the interpreter it will use says where the
  project's top-level packages resolve; any that resolve outside the worktree make the gate
  unprovable (`GateUnprovable`, exit 2) instead of green.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from gitforge.errors import ConfigError

SRC_ROOTS = (".", "src")
_PYTHON = re.compile(r"python(?:[0-9]+(?:\.[0-9]+)*)?")
_ASSIGN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
# Where each name resolves, without importing it (find_spec runs no package code). The first
# sys.path entry of `python -c` is the working directory: a console script such as `pytest`
# does not have it, so it is dropped to see what such a gate sees.
_PROBE = """\
import importlib.util, json, sys
if sys.path and sys.path[0] in ('', '.'):
    sys.path.pop(0)
out = {}
for name in sys.argv[1:]:
    try:
        spec = importlib.util.find_spec(name)
    except Exception:
        spec = None
    if spec is None:
        out[name] = None
    else:
        out[name] = spec.origin if spec.origin not in (None, 'namespace') else \
            (list(spec.submodule_search_locations or []) or [None])[0]
print(json.dumps(out))
"""
PROBE_TIMEOUT = 30.0


class GateUnprovable(ConfigError):
    """A gate would run code from outside the worktree: its result proves nothing."""


def import_roots(worktree: Path, pythonpath: Sequence[str] | None) -> list[Path]:
    """The folders to put first on PYTHONPATH: otto.yaml's list, or the root and src/ when present."""
    if pythonpath is not None:
        return [worktree / p for p in pythonpath]
    return [worktree / p for p in SRC_ROOTS if (worktree / p).is_dir()]


def isolate(env: Mapping[str, str], worktree: Path, pythonpath: Sequence[str] | None) -> dict[str, str]:
    """`env` with the worktree's import roots first on PYTHONPATH."""
    out = dict(env)
    roots = [str(p.resolve()) for p in import_roots(worktree, pythonpath)]
    if roots:
        out["PYTHONPATH"] = os.pathsep.join(roots + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return out


def project_packages(worktree: Path, pythonpath: Sequence[str] | None) -> list[str]:
    """Top-level regular packages (folders with an __init__.py) the worktree defines in its
    import roots, and in src/ (where a src layout keeps them even when it is not on the path)."""
    folders = {p.resolve() for p in import_roots(worktree, pythonpath)} | {(worktree / "src").resolve()}
    names = set()
    for folder in folders:
        try:
            children = list(folder.iterdir())
        except OSError:
            continue
        for child in children:
            if child.name.isidentifier() and (child / "__init__.py").is_file():
                names.add(child.name)
    return sorted(names)


def interpreter(command: str, env: Mapping[str, str], cwd: Path) -> str | None:
    """The Python a gate command runs: its first word when that is a python, the interpreter in
    the first word's `#!` line when that is a Python script (pytest, tox...), else `python3`."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    words = [w for w in words if not _ASSIGN.match(w)]
    while words and words[0] in ("env", "exec", "command", "time", "nice"):
        words = words[1:]
    path = env.get("PATH", os.defpath)
    first = words[0] if words else ""
    found = _which(first, path, cwd) if first else None
    if found and _PYTHON.fullmatch(Path(first).name):
        return found
    if found:
        try:
            with open(found, "rb") as f:
                line = f.readline(512)
        except OSError:
            line = b""
        if line.startswith(b"#!") and b"python" in line:
            shebang = line[2:].decode("utf-8", "replace").split()
            if shebang and Path(shebang[0]).name == "env" and len(shebang) > 1:
                return _which(shebang[1], path, cwd)
            return shebang[0] if shebang and os.access(shebang[0], os.X_OK) else None
    return _which("python3", path, cwd)


def _which(word: str, path: str, cwd: Path) -> str | None:
    if "/" in word:
        p = Path(word) if Path(word).is_absolute() else cwd / word
        return str(p) if p.is_file() and os.access(p, os.X_OK) else None
    return shutil.which(word, path=path)


def outside_imports(python: str, packages: Sequence[str], worktree: Path,
                    env: Mapping[str, str]) -> dict[str, str]:
    """{package: where it resolves} for each package that `python`, run in the worktree with
    `env`, would import from outside the worktree. Empty when all is well or nothing can be told."""
    if not packages:
        return {}
    try:
        proc = subprocess.run([python, "-c", _PROBE, *packages], cwd=worktree, env=dict(env), capture_output=True,
                              text=True, timeout=PROBE_TIMEOUT, stdin=subprocess.DEVNULL)
        found = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else {}
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return {}  # not a Python we can ask (a wrapper, a broken venv): the gate itself will say
    root = worktree.resolve()
    outside = {}
    for name, origin in (found.items() if isinstance(found, dict) else []):
        if isinstance(origin, str) and origin:
            where = Path(origin).resolve()
            if where != root and root not in where.parents:
                outside[name] = str(where)
    return outside


def unprovable(gate: str, python: str, outside: Mapping[str, str], worktree: Path,
               pythonpath: Sequence[str] | None) -> GateUnprovable:
    shown = "; ".join(f"{name} from {where}" for name, where in sorted(outside.items()))
    now = "auto (the worktree root and src/)" if pythonpath is None else json.dumps(list(pythonpath))
    return GateUnprovable(
        f"gate '{gate}' would test code outside the worktree {worktree}: its interpreter {python} imports "
        f"{shown}. A pass would prove nothing about the change, so gitforge does not run it.",
        hint=f"the usual cause is an editable install (pip install -e .) or a .pth file; put the folder holding "
             f"these packages on gates.pythonpath in otto.yaml (now {now}), or install the project without -e "
             f"in that environment, or run the gate so that it imports from its working directory "
             f"(python -m pytest)")


def check_gate(gate: str, command: str, worktree: Path, env: Mapping[str, str],
               pythonpath: Sequence[str] | None, seen: dict[str, dict[str, str]]) -> None:
    """Raise GateUnprovable when the gate's interpreter would import the project from elsewhere.
    `seen` caches the answer per interpreter for one round of gates."""
    packages = project_packages(worktree, pythonpath)
    if not packages:
        return
    python = interpreter(command, env, worktree)
    if python is None:
        return
    if python not in seen:
        seen[python] = outside_imports(python, packages, worktree, env)
    if seen[python]:
        raise unprovable(gate, python, seen[python], worktree, pythonpath)
