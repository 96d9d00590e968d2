"""Mutated otto.yaml files for the config fuzzer (tests/test_config_fuzz.py) and the CLI
torture run (bench/torture_config.py): the template `gitforge init` writes, changed by
deterministic random edits and hostile snippets (alias bombs, deep nesting, recursive
aliases, control characters, invalid UTF-8, paths outside the repository, wrong types,
numbers that overflow, tags that build nothing safe).

`mutations(n, seed)` gives the same `n` (label, bytes) pairs for the same seed: first one of
each named hazard, then random combinations of edits.
"""

from __future__ import annotations

import random
import re

from gitforge.config_template import render_default_config


def template() -> str:
    return render_default_config("main", [{"name": "tests", "run": "pytest -q", "timeout": 60}])


def _laughs(levels: int, width: int = 9) -> str:
    """The billion laughs: each level a list of `width` aliases of the one before."""
    lines = ["verify: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"pre_push{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def _nested_alias_depth(levels: int) -> str:
    """Depth made of aliases: each anchor wraps the previous one in 15 more lists."""
    out = ["a0: &d0 " + "[" * 15 + "x" + "]" * 15]
    for i in range(1, levels):
        out.append(f"a{i}: &d{i} " + "[" * 15 + f"*d{i - 1}" + "]" * 15)
    return "\n".join(out) + "\n"


# Whole documents, each a known way to crash or hang a YAML reader.
DOCUMENTS: dict[str, str | bytes] = {
    "alias bomb": _laughs(9),
    "alias bomb (wide)": _laughs(5, 40),
    "alias depth": _nested_alias_depth(8),
    "deep flow lists": "verify: " + "[" * 5000 + "]" * 5000 + "\n",
    "deep flow maps": "builder: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n",
    "deep block maps": "".join(" " * i + f"k{i}:\n" for i in range(400)) + " " * 400 + "v: 1\n",
    "deep block lists": "verify:\n" + "".join(" " * (2 * i) + "- \n" for i in range(300)),
    "recursive list": "verify: &a [*a]\n",
    "recursive map": "builder: &b {model: *b}\n",
    "recursive merge": "builder: &c\n  <<: *c\n",
    "recursive via sibling": "verify: &v\n  - {name: t, run: x, timeout: 5}\n  - *v\n",
    "undefined alias": "builder: *nope\n",
    "merge used normally": ("verify:\n  - &gate {name: unit, run: pytest -q, timeout: 300}\n"
                            "  - {<<: *gate, name: lint, run: ruff check .}\npre_push:\n  - *gate\n"),
    "many values": "policy:\n  protected_paths: [" + ", ".join(f"p{i}" for i in range(20000)) + "]\n",
    "huge file": "# " + "x" * 200_000 + "\n",
    "long scalar": "builder: {model: " + "m" * 100_000 + "}\n",
    "many documents": "pilot: true\n---\npilot: false\n",
    "python tag": "builder: !!python/object/apply:os.system ['echo pwned']\n",
    "custom tag": "builder: !include other.yaml\n",
    "binary tag": "builder: {model: !!binary '!!!'}\n",
    "bad timestamp": "target_branch: 2024-13-45\n",
    "bad float tag": "max_attempts: !!float abc\n",
    "bad int tag": "max_attempts: !!int twelve\n",
    "set tag": "verify: !!set {a, b}\n",
    "huge integer": "max_attempts: " + "9" * 5000 + "\n",
    "huge hex integer": "parallel: 0x" + "f" * 5000 + "\n",
    "nul escape": 'backlog: "BACK\\0LOG.md"\n',
    "nul in a gate": 'verify:\n  - {name: t, run: "pytest\\0 -q"}\n',
    "control character": "backlog: BACK\x01LOG.md\n",
    "escape character": "verify:\n  - {name: t, run: \x1b[31mpytest}\n",
    "del character": "builder: {model: m\x7f}\n",
    "c1 control": "builder: {model: m\x9b}\n",
    "nul byte": "pilot: true\x00\n",
    "invalid utf-8": b"builder:\n  model: caf\xe9\n",
    "truncated utf-8": b"builder:\n  model: \xc3\n",
    "encoded surrogate": b"target_branch: \xed\xa0\x80\n",
    "overlong utf-8": b"backlog: \xc0\xaf\n",
    "utf-16": "pilot: true\n".encode("utf-16"),
    "bom": "\ufeffpilot: true\n",
    "backlog ../x": "backlog: ../x\n",
    "progress ../x": "progress: ../x\n",
    "progress absolute": "progress: /tmp/PROGRESS.md\n",
    "progress in .git": "progress: .git/PROGRESS.md\n",
    "progress in .git (case)": "progress: .Git/hooks/pre-commit\n",
    "backlog in .forge": "backlog: .forge/BACKLOG.md\n",
    "backlog deep ..": "backlog: docs/../../BACKLOG.md\n",
    "backlog home": "backlog: ~/BACKLOG.md\n",
    "backlog drive": "backlog: 'C:/BACKLOG.md'\n",
    "backlog folder": "backlog: docs/\n",
    "backlog dot": "backlog: .\n",
    "backlog empty": "backlog: ''\n",
    "progress is backlog": "progress: BACKLOG.md\n",
    "progress is otto.yaml": "progress: otto.yaml\n",
    "include .git": "worktrees: {include: [.git/config]}\n",
    "pythonpath absolute": "gates: {pythonpath: [/usr/lib]}\n",
    "timeout inf": "verify:\n  - {name: t, run: x, timeout: .inf}\n",
    "timeout 1e308": "verify:\n  - {name: t, run: x, timeout: 1.0e+308}\n",
    "timeout nan": "builder: {timeout: .nan}\n",
    "builder timeout inf": "builder: {timeout: .inf}\n",
    "llm timeout huge": "llm: {timeout: 1.0e+300}\n",
    "budget nan": "budgets: {usd_per_phase: .nan}\n",
    "budget inf": "budgets: {usd_per_run: .inf}\n",
    "price inf": "prices: {m: {input: .inf, output: 1, cache_write: 1, cache_read: 1}}\n",
    "price huge": "prices: {m: {input: 1.0e+300, output: 1, cache_write: 1, cache_read: 1}}\n",
    "max_tokens huge": "builder: {max_tokens: 100000000000000000000}\n",
    "pool_size huge": "worktrees: {pool_size: 1000000000}\n",
    "attempts huge": "max_attempts: 4294967297\n",
    "negative timeout": "verify:\n  - {name: t, run: x, timeout: -1}\n",
    "zero timeout": "verify:\n  - {name: t, run: x, timeout: 0}\n",
    "wrong type verify": "verify: 3\n",
    "wrong type builder": "builder: []\n",
    "quoted int": "max_attempts: '3'\n",
    "yes for a bool": "pilot: yes please\n",
    "top-level list": "- pilot\n",
    "top-level scalar": "just text\n",
    "non-string key": "policy:\n  on: 1\n",
    "complex key": "? [a, b]\n: 1\n",
    "duplicate key": "pilot: true\npilot: false\n",
    "tab indent": "builder:\n\tkind: patch\n",
    "unclosed quote": 'backlog: "BACKLOG.md\n',
    "directive": "%YAML 1.3\n---\npilot: true\n",
    "empty": "",
    "comment only": "# nothing\n",
}

# Values put in place of a setting's value in the template.
VALUES = [
    ".inf", "-.inf", ".nan", "1.0e+308", "-1", "0", "99999999999999999999999999", "0x7fffffffffffffff",
    "[]", "{}", "null", "~", "''", "../x", "/etc/passwd", ".git/config", ".forge/x", "*nope",
    "&a [*a]", "!!python/name:os.system", "2024-13-45", '"\\0"', "!!binary xx", "yes", "no",
    "[" * 60 + "]" * 60, "{a: {b: {c: {d: 1}}}}", "'\x07'", "\t", "- a\n- b", "!!float nope",
    '"\\x1b[2J"', "1_000_000_000_000_000_000", "0o777777777777777777777777", "12:30:45",
    "C:/x", "a\\..\\b", ">-\n  folded", "|\n  literal",
]

_BYTES = [b"\x00", b"\x01", b"\x1b", b"\x7f", b"\x85", b"\xa0", b"\xc0", b"\xe9", b"\xff", b"\xfe\xff",
          b"\xed\xa0\x80", b"&", b"*", b"!", b"%", b"@", b"`", b"|", b">", b"{", b"[", b"]", b"}",
          b":", b"-", b"#", b"'", b'"', b"\t", b"\r", b"\n", b"  ", b"<<: *x\n"]

_SETTING = re.compile(r"^(\s*(?:- )?)([A-Za-z_]+):\s*(.*?)(\s+#.*)?$")


def _set_value(text: str, rng: random.Random) -> str:
    lines = text.split("\n")
    spots = [i for i, line in enumerate(lines) if _SETTING.match(line) and not line.lstrip().startswith("#")]
    i = rng.choice(spots)
    indent, key, _, _ = _SETTING.match(lines[i]).groups()
    value = rng.choice(VALUES)
    if "\n" in value:  # a block value goes on the lines below, indented
        pad = indent.replace("-", " ") + "  "
        value = "\n" + "\n".join(pad + part for part in value.split("\n"))
    lines[i] = f"{indent}{key}: {value}" if not value.startswith("\n") else f"{indent}{key}:{value}"
    return "\n".join(lines)


def _insert_document(text: str, rng: random.Random) -> str:
    snippet = rng.choice([d for d in DOCUMENTS.values() if isinstance(d, str) and len(d) < 20_000])
    lines = text.split("\n")
    at = rng.randrange(len(lines) + 1)
    return "\n".join(lines[:at] + snippet.rstrip("\n").split("\n") + lines[at:])


def _line_edit(text: str, rng: random.Random) -> str:
    lines = text.split("\n")
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    kind = rng.choice(["delete", "duplicate", "swap", "indent", "dedent", "truncate"])
    if kind == "delete":
        del lines[i]
    elif kind == "duplicate":
        lines.insert(i, lines[i])
    elif kind == "swap":
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == "indent":
        lines[i] = " " * rng.randint(1, 6) + lines[i]
    elif kind == "dedent":
        lines[i] = lines[i].lstrip()
    else:
        return text[:rng.randrange(len(text) + 1)]
    return "\n".join(lines)


def _byte_edit(data: bytes, rng: random.Random) -> bytes:
    at = rng.randrange(len(data) + 1)
    junk = rng.choice(_BYTES)
    if rng.random() < 0.5:
        return data[:at] + junk + data[at:]
    return data[:at] + junk + data[at + len(junk):]


def mutate(base: str, rng: random.Random) -> tuple[str, bytes]:
    """One to three edits of `base`; returns what was done and the file's bytes."""
    done, text = [], base
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(["value", "value", "document", "line"])
        text = {"value": _set_value, "document": _insert_document, "line": _line_edit}[kind](text, rng)
        done.append(kind)
    data = text.encode("utf-8", "surrogatepass")
    if rng.random() < 0.35:
        for _ in range(rng.randint(1, 4)):
            data = _byte_edit(data, rng)
        done.append("bytes")
    return "+".join(done), data


def _top_keys(text: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"^([A-Za-z_][A-Za-z_0-9]*):", text, re.M)}


def _without(text: str, keys: set[str]) -> str:
    """`text` without the top-level settings `keys` (each key's line and the lines under it)."""
    kept, dropping = [], False
    for line in text.splitlines(keepends=True):
        if line[:1].isalpha() or line[:1] == "_":
            dropping = line.split(":")[0] in keys
        if not dropping:
            kept.append(line)
    return "".join(kept)


def mutations(n: int, seed: int = 20260115) -> list[tuple[str, bytes]]:
    """`n` otto.yaml files: every named hazard once (alone, then inside the template), then
    random mutations of the template."""
    rng = random.Random(seed)
    base = template()
    out: list[tuple[str, bytes]] = []
    for name, doc in DOCUMENTS.items():
        out.append((name, doc if isinstance(doc, bytes) else doc.encode("utf-8")))
    for name, doc in DOCUMENTS.items():  # the same hazard with a whole, valid file around it
        if isinstance(doc, str) and len(doc) < 20_000 and not doc.startswith(("%", "-", "?", "\ufeff")):
            out.append((f"template + {name}", (_without(base, _top_keys(doc)) + doc).encode("utf-8")))
    out = out[:n]
    count = 0
    while len(out) < n:
        count += 1
        label, data = mutate(base, rng)
        out.append((f"random {count}: {label}", data))
    return out
