"""A gate is green only if it tested the candidate's own code, exactly as it lands: the
worktree's import roots come first (an editable install of the main checkout cannot answer
for it), and a gate that edits files never lets a different tree land."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import PY, git, make_diff, phase_md, run_cli

from gitforge.infra import gate_env
from gitforge.config import GatesConfig
from gitforge.infra.gates import GateSpec, run_gates

PKG = {"src/pkg/__init__.py": "VALUE = 1\n",
       "tests/test_pkg.py": "import unittest\nimport pkg\n\n\nclass T(unittest.TestCase):\n"
                            "    def test_value(self):\n        self.assertEqual(pkg.VALUE, 1)\n"}


def editable_env(tmp_path: Path, root: Path) -> Path:
    """A virtual environment with the project installed the way `pip install -e .` does it:
    a .pth file putting the main checkout's src/ on every interpreter's path."""
    env = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    (site,) = env.glob("lib/python*/site-packages")
    (site / "__editable__pkg.pth").write_text(str(root / "src") + "\n")
    return env / "bin" / "python"


def broken_repo(make_repo, tmp_path, otto_extra: str = ""):
    root = make_repo(PKG, [phase_md("1", "Break the value", patch=make_diff(PKG, {"src/pkg/__init__.py": "VALUE = 2\n"},
                                                                            tmp_path))], otto=None, name="proj")
    python = editable_env(tmp_path, root)
    (root / "otto.yaml").write_text(
        f"verify:\n  - name: tests\n    run: \"{python} -m unittest discover -s tests -q\"\n{otto_extra}")
    git("add", "-A", cwd=root)
    git("commit", "-qm", "gate", cwd=root)
    return root, python


def test_editable_install_does_not_make_a_breaking_change_green(make_repo, tmp_path):
    root, _ = broken_repo(make_repo, tmp_path)
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "gate 'tests'" in proc.stdout and "exited with code 1" in proc.stdout
    assert "VALUE = 1" in git("show", "main:src/pkg/__init__.py", cwd=root)
    assert "**Status:** Failed" in git("show", "main:BACKLOG.md", cwd=root)


def test_a_gate_that_would_import_from_the_main_checkout_is_refused(make_repo, tmp_path):
    root, python = broken_repo(make_repo, tmp_path, "gates: {pythonpath: []}\n")
    before = git("rev-parse", "main", cwd=root).strip()
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "would test code outside the worktree" in proc.stderr
    assert f"pkg from {root / 'src' / 'pkg' / '__init__.py'}" in proc.stderr
    assert "gates.pythonpath" in proc.stderr
    assert git("rev-parse", "main", cwd=root).strip() == before  # nothing landed, not even bookkeeping
    check = run_cli("check", "--full", cwd=root)
    assert check.returncode == 1 and "would test code outside the worktree" in check.stdout + check.stderr


def test_import_probe_in_process(tmp_path):
    wt = tmp_path / "wt"
    (wt / "src" / "pkg").mkdir(parents=True)
    (wt / "src" / "pkg" / "__init__.py").write_text("")
    (wt / "tool").mkdir()
    (wt / "tool" / "__init__.py").write_text("")
    assert gate_env.project_packages(wt, None) == ["pkg", "tool"]
    elsewhere = tmp_path / "main" / "src"
    (elsewhere / "pkg").mkdir(parents=True)
    (elsewhere / "pkg" / "__init__.py").write_text("")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(elsewhere)}
    assert gate_env.outside_imports(sys.executable, ["pkg"], wt, env) == {"pkg": str(elsewhere / "pkg" / "__init__.py")}
    isolated = gate_env.isolate(env, wt, None)
    assert isolated["PYTHONPATH"].split(":")[:2] == [str(wt.resolve()), str((wt / "src").resolve())]
    assert gate_env.outside_imports(sys.executable, ["pkg"], wt, isolated) == {}
    assert gate_env.interpreter(f"{sys.executable} -m pytest", env, wt) == sys.executable
    assert gate_env.interpreter(f"FOO=1 env {sys.executable} -c 1", env, wt) == sys.executable


def test_gates_see_the_worktree_first_on_pythonpath(tmp_path):
    wt = tmp_path / "wt"
    (wt / "src").mkdir(parents=True)
    spec = GateSpec("path", f"{PY} -c 'import os; print(os.environ[\"PYTHONPATH\"])'", 30)
    (result,) = run_gates([spec], wt, tmp_path / "logs", {"PYTHONPATH": "/elsewhere"})
    assert result.ok
    assert result.tail.strip().splitlines()[-1] == f"{wt.resolve()}:{(wt / 'src').resolve()}:/elsewhere"
    (result,) = run_gates([spec], wt, tmp_path / "logs2", {"PYTHONPATH": "/x"}, isolation=GatesConfig(pythonpath=[]))
    assert result.tail.strip().splitlines()[-1] == "/x"


FORMAT = "sed -i 's/x=1/x = 1/' app.py"
CHECK = "grep -q 'x = 1' app.py"


def formatter_repo(make_repo, tmp_path, edits: str | None):
    base = {"app.py": "y = 0\n"}
    extra = f"gates: {{edits: {edits}}}\n" if edits else ""
    otto = (f"verify:\n  - {{name: format, run: {json.dumps(FORMAT)}}}\n  - {{name: check, run: {json.dumps(CHECK)}}}\n"
            + extra)
    patch = make_diff(base, {"app.py": "y = 0\nx=1\n"}, tmp_path)
    return make_repo(base, [phase_md("1", "Add x", patch=patch)], otto=otto)


def test_gates_that_edit_files_are_refused_by_default(make_repo, tmp_path):
    root = formatter_repo(make_repo, tmp_path, None)
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 1, proc.stderr
    assert "the gates changed files they were testing (app.py)" in proc.stdout + proc.stderr
    assert git("show", "main:app.py", cwd=root) == "y = 0\n"  # the unformatted tree never landed
    assert "**Status:** Failed" in git("show", "main:BACKLOG.md", cwd=root)


def test_gates_edits_land_lands_exactly_the_tree_the_gates_passed(make_repo, tmp_path):
    root = formatter_repo(make_repo, tmp_path, "land")
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    landed = git("show", "main:app.py", cwd=root)
    assert landed == "y = 0\nx = 1\n"
    # the check gate passes on exactly what landed
    assert subprocess.run(CHECK, shell=True, cwd=root).returncode == 0
    note = json.loads(git("notes", "--ref=forge/runs", "show", "main", cwd=root).splitlines()[-1])
    assert [g["name"] for g in note["gates"]] == ["format", "check"]


def test_gates_that_never_settle_are_refused(make_repo, tmp_path):
    base = {"n.txt": "0\n"}
    otto = "verify:\n  - {name: bump, run: \"echo x >> n.txt\"}\ngates: {edits: land}\n"
    root = make_repo(base, [phase_md("1", "Touch", patch=make_diff(base, {"n.txt": "1\n"}, tmp_path))], otto=otto)
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 1
    assert "they never settle" in proc.stdout + proc.stderr
    assert git("show", "main:n.txt", cwd=root) == "0\n"


def test_init_warns_about_a_gate_that_would_import_from_elsewhere_and_guesses_a_src_gate(make_repo, tmp_path):
    root, _ = broken_repo(make_repo, tmp_path, "gates: {pythonpath: []}\n")
    proc = run_cli("init", cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert "would test code outside the worktree" in proc.stderr
    (root / "otto.yaml").write_text((root / "otto.yaml").read_text().replace("gates: {pythonpath: []}\n", ""))
    quiet = run_cli("init", cwd=root)  # the default puts src/ first: nothing to say
    assert quiet.returncode == 0 and "outside the worktree" not in quiet.stderr
    fresh = make_repo({"src/tool/__init__.py": ""}, None, otto=None, name="fresh")
    assert run_cli("init", cwd=fresh).returncode == 0
    assert "python -m pytest -q" in (fresh / "otto.yaml").read_text()
