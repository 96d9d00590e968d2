"""gitforge init: write otto.yaml and a starter BACKLOG.md where they are absent; never overwrite."""

from __future__ import annotations

import tempfile
from pathlib import Path

from gitforge.infra import gate_env
from gitforge.land import notesync
from gitforge.config import CONFIG_FILE, load_config
from gitforge.config_template import render_default_config
from gitforge.errors import RepoError
from gitforge.git import Git, clean_env
from gitforge.infra.resources import template
from gitforge.infra.state import Store
from gitforge.ui import UI

_DETECT = (  # (file that suggests the stack, the gate that usually tests it)
    ("pyproject.toml", "python -m pytest -q"), ("setup.py", "python -m pytest -q"),
    ("pytest.ini", "python -m pytest -q"), ("package.json", "npm test"), ("Cargo.toml", "cargo test"),
    ("go.mod", "go test ./..."),
)


def detect_gates(root: Path) -> list[dict]:
    """The usual test command of the stack the repository looks like. A Python `src/` layout
    needs nothing more: gates get the worktree's root and src/ first on PYTHONPATH."""
    for marker, command in _DETECT:
        if (root / marker).exists():
            return [{"name": "tests", "run": command, "timeout": 600}]
    if gate_env.project_packages(root, None):
        return [{"name": "tests", "run": "python -m pytest -q", "timeout": 600}]
    return []


def warn_imports(root: Path, cfg, ui: UI) -> None:
    """Say so now when a gate would import this project from the main checkout instead of the
    worktree it tests: a package that resolves into this checkout without gitforge's help (an
    editable install) from a folder that `gates.pythonpath` does not put first."""
    pythonpath = cfg.gates.pythonpath
    covered = {p.resolve() for p in gate_env.import_roots(root, pythonpath)}
    packages = gate_env.project_packages(root, pythonpath)
    env = clean_env()
    seen: set[str] = set()
    for gate in cfg.verify:
        python = gate_env.interpreter(gate.run, env, root)
        if python is None or python in seen:
            continue
        seen.add(python)
        with tempfile.TemporaryDirectory() as elsewhere:  # as a worktree sees it: not from this checkout
            found = gate_env.outside_imports(python, packages, Path(elsewhere), env)
        here = {name: where for name, where in found.items()
                if Path(where).resolve().is_relative_to(root) and _home(Path(where), name) not in covered}
        if here:
            e = gate_env.unprovable(gate.name, python, here, root / ".forge/worktrees/wt-N", pythonpath)
            ui.warn(f"{e.message}\n  {e.hint}")
            return


def _home(origin: Path, package: str) -> Path:
    """The folder that holds a package (the import root it was found in)."""
    origin = origin.resolve()
    for parent in origin.parents:
        if parent.name == package:
            return parent.parent
    return origin.parent


SLASH_COMMAND = ".claude/commands/forge-next.md"


def install_slash_command(root: Path, ui: UI) -> None:
    """`/forge-next` for Claude Code in this project; a file the user already has is kept."""
    dest = root / SLASH_COMMAND
    shipped = template(SLASH_COMMAND).read_bytes()
    if dest.exists() or dest.is_symlink():
        same = dest.is_file() and dest.read_bytes() == shipped
        ui.info(f"{SLASH_COMMAND} exists; left as it is" + ("" if same else
                f" (yours differs from gitforge's; compare with {template(SLASH_COMMAND)})"))
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(shipped)
    ui.ok(f"wrote {SLASH_COMMAND}: run /forge-next in Claude Code to build and land the next phase")


def init(repo: Path, target: str | None = None, claude: bool = False) -> int:
    git = Git.open(repo)
    root = git.root
    ui = UI()
    branch = target or git.head_branch()
    if branch is None:
        raise RepoError("HEAD is detached: gitforge cannot tell which branch phases should land on",
                        hint="check out your main branch first, or pass --target BRANCH")
    config_path = root / CONFIG_FILE
    if config_path.exists():
        load_config(root)  # an invalid existing file is reported, never replaced
        ui.info(f"{CONFIG_FILE} exists; left as it is")
    else:
        gates = detect_gates(root)
        config_path.write_text(render_default_config(branch, gates), encoding="utf-8")
        ui.ok(f"wrote {CONFIG_FILE} (target_branch: {branch}"
              + (f", gate: {gates[0]['run']})" if gates else "; add your test command under verify)"))
    cfg = load_config(root)
    if cfg.gates.import_check:
        warn_imports(root, cfg, ui)
    backlog_path = root / cfg.backlog
    if backlog_path.exists():
        ui.info(f"{cfg.backlog} exists; left as it is")
    else:
        backlog_path.write_bytes(template("BACKLOG.md").read_bytes())
        ui.ok(f"wrote a starter {cfg.backlog}")
    if claude:
        install_slash_command(root, ui)
    Store(root, git.common_dir).ensure()
    ui.info(".forge/ is kept out of git through .git/info/exclude")
    for setting in notesync.configure(git):
        ui.info(setting)
    ui.out(f"Next: describe phases in {cfg.backlog}, commit both files on {branch}, then run `gitforge next`.")
    return 0
