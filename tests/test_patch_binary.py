"""`GIT binary patch` (literal and delta) applies when the policy allows binary patches."""

from __future__ import annotations

import random

import pytest

from conftest import commit_all, git, run_cli, write
from gitforge.errors import PatchRefused
from gitforge.patch import DictTree, apply_patches, parse_patch


def binary_diff(tmp_path):
    rng = random.Random(7)
    old = bytes(rng.randrange(256) for _ in range(3000))
    new = old[:1000] + b"CHANGED" * 10 + old[1200:]
    made = bytes(rng.randrange(256) for _ in range(500))
    repo = tmp_path / "scratch"
    repo.mkdir()
    git("init", "-q", cwd=repo)
    write(repo, {"img.bin": old, "gone.bin": b"x\0\1\2"})
    commit_all(repo, "base")
    write(repo, {"img.bin": new, "new.bin": made, "gone.bin": None})
    git("add", "-A", cwd=repo)
    return git("diff", "--cached", "--binary", cwd=repo), old, new, made


def test_literal_delta_and_delete(tmp_path):
    diff, old, new, made = binary_diff(tmp_path)
    assert "delta " in diff and "literal " in diff
    changes = {c.path: c for c in apply_patches(parse_patch(diff), DictTree({"img.bin": old, "gone.bin": b"x\0\1\2"}))}
    assert changes["img.bin"].data == new
    assert changes["new.bin"].data == made
    assert changes["gone.bin"].data is None


def test_a_delta_for_another_file_is_refused(tmp_path):
    diff, old, _, _ = binary_diff(tmp_path)
    with pytest.raises(PatchRefused) as err:
        apply_patches(parse_patch(diff), DictTree({"img.bin": old[:-1], "gone.bin": b"x\0\1\2"}))
    assert "img.bin: the binary patch does not fit this file" in err.value.reasons[0]


def test_binary_without_data_is_refused_with_a_hint():
    text = "diff --git a/a.png b/a.png\nindex 1..2 100644\nBinary files a/a.png and b/a.png differ\n"
    with pytest.raises(PatchRefused) as err:
        apply_patches(parse_patch(text), DictTree({"a.png": b"\x89PNG"}))
    assert "git diff --binary" in err.value.reasons[0]


def test_the_policy_decides(make_repo, tmp_path):
    diff, old, new, made = binary_diff(tmp_path)
    (tmp_path / "b.diff").write_text(diff)
    root = make_repo({}, [], otto="verify: []\n")
    write(root, {"img.bin": old, "gone.bin": b"x\0\1\2"})
    commit_all(root, "binaries")
    refused = run_cli("apply", str(tmp_path / "b.diff"), cwd=root)
    assert refused.returncode == 1 and "binary" in refused.stderr
    write(root, {"otto.yaml": "policy: {forbid_binary: false}\n"})
    allowed = run_cli("apply", str(tmp_path / "b.diff"), cwd=root)
    assert allowed.returncode == 0, allowed.stderr
    assert (root / "img.bin").read_bytes() == new and (root / "new.bin").read_bytes() == made
    assert not (root / "gone.bin").exists()
