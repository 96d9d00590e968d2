"""The hostile-patch corpus (bench/torture_corpus.py), in process through the pipeline's
`patch_changes` on a real repository: each one is refused, for its own reason, before anything is
written. bench/torture_patches.py runs the same corpus through `gitforge next`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from gitforge.config import PolicyConfig
from gitforge.errors import PatchRefused
from gitforge.git import Git
from gitforge.run.pipeline import patch_changes

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import torture_corpus as tc  # noqa: E402

WHY = {  # what each kind's refusal must say (not a parse error that refuses it by accident)
    "traversal": r"leaves the repository|backslash",
    "absolute": r"absolute path|backslash",
    "symlink": r"symlink",
    "dotgit": r"inside a git directory \('\.git'\)",
    "dotgit-hfs": r"is '\.git' on HFS\+ .*core\.protectHFS",
    "dotgit-ntfs": r"is '\.git' on NTFS .*core\.protectNTFS|backslash",
    "dotfile-disguise": r"in disguise|cannot be a symlink",
    "protected": r"protected path|gitforge's own state|inside a git directory",
    "protected-mode": r"protected path",
    "binary": r"binary patch refused \(forbid_binary\)",
    "size": r"max_file_bytes|max_lines|max_files",
    "submodule": r"submodule",
    "name": r"not valid UTF-8|bytes long, over the|control character",
    "windows": r"Windows",
}
NAMES = [c.name for c in tc.corpus("/outside")]


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    """The base repository, its commit, the folder its `outside` link points at, the corpus."""
    tmp = tmp_path_factory.mktemp("torture")
    outside = tmp / "outside"
    outside.mkdir()
    base = tc.make_repo(tmp / "repo", outside)
    return tmp / "repo", base, outside, {c.name: c for c in tc.corpus(str(outside))}


def test_the_corpus_is_large_and_covers_every_kind():
    cases = tc.corpus("/outside")
    assert len(cases) >= 75 and len(set(NAMES)) == len(NAMES)
    assert {c.kind for c in cases} == set(WHY)


@pytest.mark.parametrize("name", NAMES)
def test_each_hostile_patch_is_refused_before_anything_is_written(target, name):
    root, base, outside, cases = target
    case = cases[name]
    git = Git.open(root)
    with pytest.raises(PatchRefused) as err:
        patch_changes(git.view(base), case.diff, PolicyConfig(**tc.POLICY))
    assert err.value.stage in ("validate", "apply")  # in memory: nothing was written
    reasons = "\n".join(err.value.reasons)
    assert re.search(WHY[case.kind], reasons), reasons
    assert not any(outside.iterdir())
    status = subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=root, capture_output=True,
                            text=True, check=True).stdout
    assert status == "" and git.branch_tip("main") == base
