"""`gitforge init` never overwrites; `gitforge demo` lands its phases with notes."""

from __future__ import annotations

import json
import os

from conftest import git, run_cli, write


def test_init_writes_config_and_backlog_once(make_repo):
    root = make_repo({"pyproject.toml": "[project]\nname = 'x'\n"}, phases=None, otto=None)
    proc = run_cli("init", cwd=root)
    assert proc.returncode == 0, proc.stderr
    config = (root / "otto.yaml").read_text()
    assert "target_branch: main" in config and "python -m pytest -q" in config
    assert "## Phase 1:" in (root / "BACKLOG.md").read_text()
    assert "/.forge/" in (root / ".git/info/exclude").read_text()
    write(root, {"otto.yaml": "max_attempts: 5\n", "BACKLOG.md": "# mine\n"})
    again = run_cli("init", cwd=root)
    assert again.returncode == 0 and "left as it is" in again.stderr
    assert (root / "otto.yaml").read_text() == "max_attempts: 5\n"
    assert (root / "BACKLOG.md").read_text() == "# mine\n"


def test_init_refuses_to_replace_an_invalid_config(make_repo):
    root = make_repo({}, phases=None, otto="verfy: []\n")
    proc = run_cli("init", cwd=root)
    assert proc.returncode == 2 and "did you mean 'verify'" in proc.stderr
    assert (root / "otto.yaml").read_text() == "verfy: []\n"


def test_starter_backlog_parses_and_is_not_runnable_until_a_person_says_so(make_repo):
    root = make_repo({}, phases=None, otto=None)
    run_cli("init", cwd=root)
    git("add", "-A", cwd=root)
    git("commit", "-qm", "gitforge init", cwd=root)
    proc = run_cli("next", cwd=root)
    assert proc.returncode == 0 and "Proposed" in proc.stdout


def test_demo_lands_fails_and_blocks_as_designed(tmp_path):
    dest = tmp_path / "demo"
    proc = run_cli("demo", str(dest), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["schema_version"] == 1
    outcomes = {r["phase"]: r["status"] for r in report["runs"]}
    assert outcomes == {"1": "landed", "2": "landed", "3": "failed", "5": "landed"}
    failed = next(r for r in report["runs"] if r["status"] == "failed")
    assert "gate 'tests'" in failed["reason"] and "Don'T Panic" in "\n".join(failed["details"])
    assert set(report["blocked"]) == {"4"} and "phase 3" in report["blocked"]["4"]
    log = git("log", "--notes=forge/runs", "--format=%s%n%N", "main", cwd=dest)
    for title in ("Phase 1: Add a slugify helper", "Phase 2: Index words by slug", "Phase 5: Document the helpers",
                  "Phase 3: Title-case helper (Failed)"):
        assert title in log
    assert log.count('"status": "landed"') == 3
    assert git("status", "--porcelain", cwd=dest) == ""
    assert (dest / "textkit/slug.py").exists()


def test_demo_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    proc = run_cli("demo", str(tmp_path / "x"), cwd=tmp_path)
    assert proc.returncode == 2 and "not empty" in proc.stderr
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine"


def test_help_and_status_do_not_import_anthropic(make_repo):
    import subprocess
    import sys

    root = make_repo({}, [])
    for args in (["--help"], ["status"]):
        proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "gitforge", *args], cwd=root,
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert not [l for l in proc.stderr.splitlines() if l.rstrip().endswith(" anthropic")]


def test_installed_package_finds_its_hooks_and_templates(tmp_path):
    import subprocess
    import sys

    code = ("from gitforge.infra.resources import data_dir; h = data_dir('hooks'); t = data_dir('templates'); "
            "print((h / 'pre-push').is_file(), (t / 'demo' / 'BACKLOG.md').is_file(), (t / 'BACKLOG.md').is_file(), "
            "(t / '.claude' / 'commands' / 'forge-next.md').is_file())")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert proc.stdout.split() == ["True", "True", "True", "True"], proc.stderr


def test_a_patch_phase_does_not_import_anthropic(make_repo, tmp_path):
    import subprocess
    import sys

    from conftest import make_diff, phase_md

    patch = make_diff({"a.txt": "1\n"}, {"a.txt": "2\n"}, tmp_path)
    root = make_repo({"a.txt": "1\n"}, [phase_md("1", "Bump", patch=patch)],
                     otto="builder: {kind: anthropic}\npilot: true\n")
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "gitforge", "next"], cwd=root,
                          capture_output=True, text=True, env={**os.environ, "ANTHROPIC_API_KEY": "sk-ant-test-000000000"})
    assert proc.returncode == 0, proc.stderr
    assert not [l for l in proc.stderr.splitlines() if l.rstrip().endswith(" anthropic")]
