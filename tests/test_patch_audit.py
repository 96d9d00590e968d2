"""audit: syntax and format checks of the files a patch produces."""

from __future__ import annotations

import pytest

from gitforge.patch import FileChange, audit


def one(path: str, data: bytes) -> list[str]:
    return audit([FileChange(path, data, "file")])


@pytest.mark.parametrize("path, data", [
    ("app.py", b"def f(x):\n    return x\n"),
    ("app.py", b"# -*- coding: latin-1 -*-\ns = '\xe9'\n"),
    ("app.py", b"s = '\\d'\n"),  # a SyntaxWarning, not an error
    ("data.json", b'{"a": [1, 2, {"b": null}]}\n'),
    ("conf.yaml", b"a: 1\nb: [x, y]\n---\nsecond: doc\n"),
    ("stack.yml", b"Resources:\n  Bucket: !Ref MyBucket\n  Other: !GetAtt [A, B]\n"),
    ("pyproject.toml", b'[project]\nname = "x"\n'),
    ("README.rst", b"Title\n=======\n\nText\n=======\n"),
    ("notes.md", b"<<<<<<< not a conflict without the closing marker\n"),
    ("tsconfig.json", b'{\n  // comments are allowed here\n  "compilerOptions": {},\n}\n'),
    (".vscode/settings.json", b'{ /* jsonc */ }\n'),
    ("chart/templates/deploy.yaml", b"{{- if .Values.on }}\nkind: Deployment\n{{- end }}\n"),
    ("script.sh", b"echo 'not checked for syntax'\n"),
    ("img.png", b"\x89PNG\r\n\x1a\n\x00<<<<<<< \n>>>>>>> \n"),  # binary: no marker check
])
def test_good_files_pass(path, data):
    assert one(path, data) == []


def test_python_syntax_error_names_the_line():
    assert one("pkg/mod.py", b"def f(:\n    pass\n") == ["pkg/mod.py:1: Python syntax error: invalid syntax"]
    assert one("m.py", b"x = 1\nif x:\nprint(x)\n") == [
        "m.py:3: Python syntax error: expected an indented block after 'if' statement on line 2"]
    assert one("n.py", b"x = 1\0\n")[0].startswith("n.py")


def test_invalid_json():
    assert one("data.json", b'{"a": 1,}\n') == [
        "data.json:1: invalid JSON: Expecting property name enclosed in double quotes (column 9)"]
    assert one("l.json", b'"\xff"') == ["l.json: invalid JSON: not UTF-8 (invalid start byte)"]


def test_invalid_yaml():
    assert one("ci.yml", b"a: 1\nb: [unclosed\n") == [
        "ci.yml:3: invalid YAML: expected ',' or ']', but got '<stream end>'"]
    assert one("x.yaml", b"a: 1\n---\nkey: value: other\n") == [
        "x.yaml:3: invalid YAML: mapping values are not allowed here"]


def test_yaml_python_tags_are_not_constructed():
    assert one("evil.yaml", b"!!python/object/apply:os.system ['echo pwned']\n") == []


def test_invalid_toml():
    (reason,) = one("pyproject.toml", b'[project]\nname = "x\n')
    assert reason.startswith("pyproject.toml: invalid TOML: ") and "line 2" in reason


def test_conflict_markers_in_any_text_file():
    data = b"a\n<<<<<<< HEAD\nmine\n=======\ntheirs\n>>>>>>> feature\nz\n"
    assert one("notes.txt", data) == ["notes.txt:2: unresolved conflict markers (lines 2, 4, 6)"]
    assert one("w.txt", data.replace(b"\n", b"\r\n")) == ["w.txt:2: unresolved conflict markers (lines 2, 4, 6)"]


def test_conflict_markers_in_python_report_both_problems():
    data = b"x = 1\n<<<<<<< HEAD\ny = 2\n=======\ny = 3\n>>>>>>> other\n"
    reasons = one("c.py", data)
    assert reasons[0].startswith("c.py:2: Python syntax error")
    assert reasons[1] == "c.py:2: unresolved conflict markers (lines 2, 4, 6)"


def test_deleted_files_are_not_audited_and_all_files_are_reported():
    changes = [FileChange("gone.py", None, "file"), FileChange("a.json", b"[", "file"),
               FileChange("b.py", b"def\n", "exec", old_path="a.py")]
    assert [r.split(":")[0] for r in audit(changes)] == ["a.json", "b.py"]


def test_yaml_nested_beyond_the_recursion_limit_is_a_finding_not_a_crash():
    from gitforge.patch.audit import _yaml

    deep = b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n"
    assert "nested too deeply" in _yaml("conf.yaml", deep)


def test_json_and_python_nested_beyond_the_parsers_limits_are_findings():
    from gitforge.patch.audit import audit
    from gitforge.patch.apply import FileChange

    deep_json = b"[" * 100000 + b"]" * 100000
    deep_py = b"x = " + b"(" * 100000 + b"1" + b")" * 100000 + b"\n"
    reasons = audit([FileChange("a.json", deep_json, "file"), FileChange("b.py", deep_py, "file")])
    assert any(r.startswith("a.json") for r in reasons) and any(r.startswith("b.py") for r in reasons)
