"""gitforge demo: a small project with a backlog of patch phases, landed offline."""

from __future__ import annotations

import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from gitforge.context import Context
from gitforge.run.engine import Engine, Outcome
from gitforge.errors import UsageError
from gitforge.git import init_repo
from gitforge.infra.resources import template
from gitforge.ui import UI, print_json

_RENAMES = {"gitignore": ".gitignore"}  # dotfiles are stored without the dot in templates/


def create_project(dest: Path) -> None:
    """Copy templates/demo into `dest`, fill in this interpreter, and commit it on main."""
    if dest.exists() and any(dest.iterdir()):
        raise UsageError(f"{dest} exists and is not empty", hint="give the demo a new or empty folder")
    src = template("demo")
    python = shlex.quote(sys.executable)
    files: dict[str, bytes] = {}
    for path in sorted(p for p in src.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        rel = path.relative_to(src).as_posix()
        rel = _RENAMES.get(rel, rel)
        data = path.read_bytes()
        if rel in ("BACKLOG.md", "otto.yaml"):
            python_text = python.replace("\\", "\\\\").replace('"', '\\"') if rel == "otto.yaml" else python
            data = data.replace(b"__PYTHON__", python_text.encode())
        files[rel] = data
    init_repo(dest, "main", files, "Start the textkit demo")


def demo(directory: Path | None, as_json: bool = False) -> int:
    dest = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="gitforge-demo-"))
    dest = dest.resolve()
    ui = UI()
    ui.step(f"creating the demo project in {dest}")
    create_project(dest)
    ctx = Context.open(dest)
    engine = Engine(ctx, ui)
    outcomes: list[Outcome] = []
    while True:
        outcome = engine.next()
        if outcome.status == "nothing":
            break
        outcomes.append(outcome)
        ui.info("")
    landed = [o for o in outcomes if o.status == "landed"]
    failed = [o for o in outcomes if o.status == "failed"]
    blocked = {p["id"]: p["blocked"] for p in _blocked(ctx)}
    if as_json:
        print_json({"command": "demo", "directory": str(dest), "runs": [o.to_json() for o in outcomes],
                    "blocked": blocked, "nothing_reason": outcome.reason})
        return 0
    out = UI.out
    out(f"\ngitforge demo in {dest}")
    for o in landed:
        out(f"  landed  phase {o.phase.id}: {o.phase.title}  ({o.commit[:12]})")
    for o in failed:
        out(f"  failed  phase {o.phase.id}: {o.phase.title}")
        out(f"          reason: {o.reason.splitlines()[0]}")
        for line in _evidence(o.details):
            out(f"          | {line}")
    for pid, why in blocked.items():
        out(f"  blocked phase {pid}: {why}")
    out("\nLook around:")
    out(f"  cd {shlex.quote(str(dest))}")
    out("  git log --notes=forge/runs --stat    # each landed phase, with its run note")
    me = invoked_as()
    out(f"  {me} status".ljust(40) + "# the board")
    out(f"  {me} show {failed[0].phase.id if failed else '1'}".ljust(40) + "# a run: ledger, gates, logs")
    if me != "gitforge":
        out(f"  (`gitforge` is not on your PATH: use {me}, add {Path(me).parent} to PATH, or `pipx install .`)")
    return 0


def invoked_as() -> str:
    """How to run this gitforge again: `gitforge` when that name on PATH is this very program,
    else the path it was started by (a venv's bin), else `python -m gitforge`."""
    argv0 = Path(sys.argv[0])
    on_path = shutil.which("gitforge")
    if argv0.name == "gitforge" and argv0.exists():
        if on_path and Path(on_path).resolve() == argv0.resolve():
            return "gitforge"
        return shlex.quote(str(argv0.resolve()))
    if on_path and Path(on_path).resolve().parent == Path(sys.executable).parent.resolve():
        return "gitforge"
    return f"{shlex.quote(sys.executable)} -m gitforge"


def _evidence(details: list[str], limit: int = 4) -> list[str]:
    """The lines of a gate's output tail that say what went wrong."""
    lines = [line for d in details for line in d.splitlines()]
    keys = ("Error", "error:", "assert", "FAIL", "!=", "Traceback")
    return [line.strip() for line in lines if any(k in line for k in keys)][:limit]


def _blocked(ctx: Context) -> list[dict]:
    from gitforge.commands.status import board

    return [p for p in board(ctx)["phases"] if p["blocked"]]
