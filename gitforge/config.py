"""otto.yaml -> a frozen, strictly validated Config; every error says where and what.

Layers, highest first: command-line flags > GITFORGE_* environment > otto.yaml > defaults.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, ValidationInfo,
                      field_validator)

from gitforge import safeyaml
from gitforge.config_messages import KeyPath, describe, dotted, show, suggest
from gitforge.errors import ConfigError

CONFIG_FILE = "otto.yaml"
ENV_PREFIX = "GITFORGE_"
# Variables gitforge sets for its own children; they are not settings.
RESERVED_ENV = frozenset({"GITFORGE", "GITFORGE_RUN", "GITFORGE_PHASE", "GITFORGE_WORKTREE",
                          "GITFORGE_HOME", "GITFORGE_DEBUG"})
HINT = "See the otto.yaml reference in README.md."



WEEK = 7 * 24 * 3600  # the longest timeout: a value past it is a typo (or .inf), and overflows timers
MANY = 1_000_000      # a ceiling for counts and sizes no real setting reaches
MAX_PRICE = 100_000   # USD per million tokens; larger is a typo, and products with tokens overflow


def repo_path_problem(path: str, root_ok: bool = False) -> str | None:
    """Why `path` is not a path inside the repository gitforge may use, or None: relative,
    without '..', not under .git/ (anywhere) or .forge/ (gitforge's own state), printable."""
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if not path.strip():
        return "is empty"
    if not parts and not root_ok:
        return "names the repository itself"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        return "contains a control character"
    if path.startswith(("/", "\\", "~")) or re.match(r"[A-Za-z]:", path):
        return "is absolute"
    if ".." in parts:
        return "leaves the repository ('..')"
    if any(p.lower() == ".git" for p in parts):
        return "is under .git/"
    if parts[0].lower() == ".forge":
        return "is under .forge/ (gitforge's own state)"
    return None


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        """A NUL cannot pass to a process, a path or git: refuse it here, not at run time."""
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str) and "\x00" in text:
                raise ValueError("must not contain a NUL character (\\0)")
        return value


class Gate(_Section):
    name: str = Field(min_length=1)
    run: str = Field(min_length=1)
    timeout: float = Field(default=600.0, gt=0, le=WEEK)


class BuilderConfig(_Section):
    kind: Literal["anthropic", "command", "patch"] = "patch"
    model: str = Field(default="claude-sonnet-5-5", min_length=1)
    command: str | None = None
    timeout: float = Field(default=1800.0, gt=0, le=WEEK)
    env_allowlist: list[str] = Field(default_factory=lambda: [
        "PATH", "HOME", "LANG", "LC_ALL", "TERM", "TMPDIR", "USER", "ANTHROPIC_API_KEY"])
    max_turns: int = Field(default=16, ge=1, le=1000)       # model calls per attempt (tool loop)
    max_tokens: int = Field(default=16000, ge=256, le=MANY)  # per reply


class PlannerConfig(_Section):
    enabled: bool = False
    model: str = Field(default="claude-haiku-5-5", min_length=1)


class LLMConfig(_Section):
    max_retries: int = Field(default=4, ge=0, le=100)  # the SDK's own retries: 429, 529, 5xx, connection
    timeout: float = Field(default=600.0, gt=0, le=WEEK)  # seconds per request (16,000 tokens can take 5 minutes)
    pilot_model: str = Field(default="claude-haiku-5-5", min_length=1)
    pilot_strong_model: str = Field(default="claude-opus-5-5", min_length=1)
    escalate_below: float = Field(default=0.6, ge=0, le=1)  # pilot confidence that asks the strong model


class Price(_Section):
    """USD per million tokens."""
    input: float = Field(ge=0, le=MAX_PRICE)
    output: float = Field(ge=0, le=MAX_PRICE)
    cache_write: float = Field(ge=0, le=MAX_PRICE)
    cache_read: float = Field(ge=0, le=MAX_PRICE)


def _price(i: float, o: float, w: float, r: float) -> dict[str, float]:
    return {"input": i, "output": o, "cache_write": w, "cache_read": r}


# Anthropic's list prices (platform.claude.com/docs/en/about-claude/pricing, November 2026); the
# cache write is the 5-minute one. otto.yaml `prices:` adds models or overrides these.
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "claude-opus-5-5": _price(4, 20, 5, 0.20), "claude-sonnet-5-5": _price(2, 10, 2.5, 0.10),
    "claude-haiku-5-5": _price(0.10, 0.50, 0.125, 0.01), "claude-opus-5": _price(5, 25, 6.25, 0.50),
    "claude-sonnet-5": _price(2, 10, 2.5, 0.20), "claude-opus-4-8": _price(5, 25, 6.25, 0.50),
    "claude-opus-4-7": _price(5, 25, 6.25, 0.50), "claude-opus-4-6": _price(5, 25, 6.25, 0.50),
    "claude-opus-4-5": _price(5, 25, 6.25, 0.50), "claude-sonnet-4-6": _price(3, 15, 3.75, 0.30),
    "claude-sonnet-4-5": _price(3, 15, 3.75, 0.30), "claude-haiku-4-5": _price(1, 5, 1.25, 0.10),
}


class Budgets(_Section):
    usd_per_phase: float = Field(default=5.0, ge=0, le=MANY)
    usd_per_run: float = Field(default=50.0, ge=0, le=MANY)
    doctor_calls_per_phase: int = Field(default=2, ge=0, le=MANY)
    doctor_calls_per_run: int = Field(default=10, ge=0, le=MANY)
    failures_per_run: int = Field(default=25, ge=0, le=MANY)


class MergeConfig(_Section):
    strategy: Literal["squash", "merge"] = "squash"


class PolicyConfig(_Section):
    max_files: int = Field(default=25, ge=0, le=MANY)
    max_lines: int = Field(default=1500, ge=0, le=100 * MANY)
    max_file_bytes: int = Field(default=1_000_000, ge=0, le=1 << 40)
    protected_paths: list[str] = Field(default_factory=lambda: [
        ".git/", ".forge/", "otto.yaml", ".env*", "**/*.pem"])
    forbid_binary: bool = True
    scope: Literal["warn", "refuse"] = "warn"  # a patch touching files outside the plan


class WorktreesConfig(_Section):
    setup: str | None = None
    include: list[str] = Field(default_factory=list)
    pool_size: int = Field(default=4, ge=1, le=64)

    @field_validator("include")
    @classmethod
    def _relative_globs(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            if why := repo_path_problem(pattern):
                raise ValueError(f"{pattern!r} {why}; give a glob relative to the repository")
        return patterns


class GatesConfig(_Section):
    """How gates run: on the worktree's own code, and on exactly the tree that lands."""
    # Prepended to PYTHONPATH, relative to the worktree; None: the worktree root, and src/ when
    # the worktree has one (a Python project's import roots). [] leaves PYTHONPATH alone.
    pythonpath: list[str] | None = None
    import_check: bool = True   # a passing gate whose interpreter imports the project from elsewhere is not green
    edits: Literal["refuse", "land"] = "refuse"  # gates that change tracked files: refuse, or land what they tested

    @field_validator("pythonpath")
    @classmethod
    def _relative_dirs(cls, paths: list[str] | None) -> list[str] | None:
        for path in paths or []:
            if why := repo_path_problem(path, root_ok=True):
                raise ValueError(f"{path!r} {why}; give a folder relative to the worktree")
        return paths


class ExecuteFixConfig(_Section):
    enabled: bool = False
    commands: list[str] = Field(default_factory=list)


class NotesConfig(_Section):
    push_with: bool = False  # the pre-push hook also pushes refs/notes/forge/* to the same remote


class Config(_Section):
    target_branch: str | None = Field(default=None, min_length=1)  # None: the branch HEAD is on
    backlog: str = Field(default="BACKLOG.md", min_length=1)
    progress: str = Field(default="PROGRESS.md", min_length=1)
    verify: list[Gate] = Field(default_factory=list)
    gates: GatesConfig = Field(default_factory=GatesConfig)
    pre_push: list[Gate] = Field(default_factory=list)  # gates the pre-push hook runs on a pushed tip
    builder: BuilderConfig = Field(default_factory=BuilderConfig)
    planner: PlannerConfig = Field(default_factory=PlannerConfig)
    pilot: bool = True
    llm: LLMConfig = Field(default_factory=LLMConfig)
    prices: dict[str, Price] = Field(default_factory=lambda: {m: Price(**p) for m, p in DEFAULT_PRICES.items()})
    max_attempts: int = Field(default=3, ge=1, le=100)
    parallel: int = Field(default=1, ge=1, le=64)
    budgets: Budgets = Field(default_factory=Budgets)
    merge: MergeConfig = Field(default_factory=MergeConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    worktrees: WorktreesConfig = Field(default_factory=WorktreesConfig)
    execute_fix: ExecuteFixConfig = Field(default_factory=ExecuteFixConfig)
    notes: NotesConfig = Field(default_factory=NotesConfig)

    _source: str | None = PrivateAttr(default=None)

    @field_validator("backlog", "progress")
    @classmethod
    def _file_in_repository(cls, path: str, info: ValidationInfo) -> str:
        """BACKLOG.md and PROGRESS.md are read and committed at this path on the target branch:
        a file inside the repository, written as git spells it (`./docs/B.md` -> `docs/B.md`)."""
        why = repo_path_problem(path) or ("names a folder" if path.endswith("/") else None)
        if why:
            raise ValueError(f"{path!r} {why}; give a file path relative to the repository, e.g. docs/BACKLOG.md")
        clean = "/".join(part for part in path.split("/") if part not in ("", "."))
        if clean == CONFIG_FILE or clean == info.data.get("backlog"):
            raise ValueError(f"{path!r} is {'otto.yaml' if clean == CONFIG_FILE else 'the backlog'} itself; "
                             f"landing a phase would overwrite it with the {info.field_name} file")
        return clean

    @field_validator("prices", mode="before")
    @classmethod
    def _merge_prices(cls, value: object) -> object:
        """A model priced in otto.yaml is added to (or overrides) the built-in table."""
        return {**DEFAULT_PRICES, **value} if isinstance(value, dict) else value

    @field_validator("builder", "planner", "llm", "budgets", "merge", "policy", "worktrees",
                     "execute_fix", "notes", "gates", mode="before")
    @classmethod
    def _empty_section(cls, value: object) -> object:
        """`builder:` with every line under it commented out means "all defaults"."""
        return {} if value is None else value

    @property
    def source(self) -> str | None:
        """The otto.yaml this came from, or None when there was none."""
        return self._source

    def __eq__(self, other: object) -> bool:
        """Equal settings make equal configs, wherever they were read from."""
        if not isinstance(other, Config):
            return NotImplemented
        return self.__dict__ == other.__dict__


def load_config(root: Path, *, overrides: Mapping[str, object] | None = None,
                environ: Mapping[str, str] | None = None) -> Config:
    """Read root/otto.yaml (absent or empty: defaults), apply environment and flags, validate."""
    path = Path(root) / CONFIG_FILE
    source = str(path) if path.is_file() else None
    data, origins = _read_file(path) if source else ({}, {})
    settings = _settings_paths()
    for key_path, value, where in _from_environ(os.environ if environ is None else environ,
                                                settings):
        _put(data, origins, key_path, value, where)
    for key, value in (overrides or {}).items():
        if value is not None:
            key_path = tuple(key.split("."))
            if key_path not in settings:
                raise ConfigError(f"command line: unknown setting '{key}' — "
                                  + suggest(key, [".".join(p) for p in settings]), HINT)
            _put(data, origins, key_path, value, "command line")
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("\n".join(describe(error, origins, Config, CONFIG_FILE) for error in exc.errors()),
                          HINT) from None
    config._source = source
    return config


def _read_file(path: Path) -> tuple[dict[str, Any], dict[KeyPath, str]]:
    """Parse otto.yaml once, within bounds; return its data and the 'otto.yaml:<line>' of every key path."""
    lines: dict[KeyPath, int] = {}
    try:
        with open(path, "rb") as file:
            raw = file.read(safeyaml.MAX_BYTES + 1)  # a bigger file is refused, not read whole
        loaded = safeyaml.load(safeyaml.decode(raw), lambda node: _map_lines(node, (), lines))
    except OSError as exc:
        raise ConfigError(f"{CONFIG_FILE}: cannot read: {exc}", HINT) from None
    except safeyaml.YAMLProblem as exc:
        raise ConfigError(exc.at(CONFIG_FILE), HINT) from None
    data, node = loaded.data, loaded.node
    if node is None or data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise ConfigError(f"{CONFIG_FILE}:{node.start_mark.line + 1}: the top level must be a "
                          f"mapping of settings (key: value), got {show(data)}", HINT)
    return data, {key_path: f"{CONFIG_FILE}:{line}" for key_path, line in lines.items()}


def _map_lines(node: yaml.Node, key_path: KeyPath, lines: dict[KeyPath, int]) -> None:
    """Record the 1-based line of every key and list item; refuse duplicate keys."""
    lines.setdefault(key_path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.tag == "tag:yaml.org,2002:merge":
                continue
            child = (*key_path, key.value)
            line = key.start_mark.line + 1
            if key.tag != "tag:yaml.org,2002:str":  # `on:` is a boolean, `1:` an integer
                raise ConfigError(f"{CONFIG_FILE}:{line}: key '{dotted(child)}' must be a "
                                  "plain name; quote it if it is meant as one", HINT)
            if child in lines:
                raise ConfigError(f"{CONFIG_FILE}:{line}: duplicate key '{dotted(child)}' "
                                  f"(first set on line {lines[child]})", HINT)
            lines[child] = line
            _map_lines(value, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _map_lines(item, (*key_path, index), lines)


def _settings_paths(model: type[BaseModel] = Config,
                    prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], bool]:
    """Every settable key path (sections and leaves) -> whether its value is a plain string."""
    paths: dict[tuple[str, ...], bool] = {}
    for name, field in model.model_fields.items():
        key_path = (*prefix, name)
        paths[key_path] = field.annotation in (str, str | None)
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            paths.update(_settings_paths(field.annotation, key_path))
    return paths


def _from_environ(environ: Mapping[str, str], settings: Mapping[tuple[str, ...], bool]
                  ) -> list[tuple[tuple[str, ...], object, str]]:
    """GITFORGE_MAX_ATTEMPTS=5, GITFORGE_BUILDER__KIND=command -> (key path, value, origin)."""
    names = {ENV_PREFIX + "__".join(p).upper(): p for p in settings}
    found = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX):
            continue
        upper = ENV_PREFIX + name[len(ENV_PREFIX):].upper()  # case-insensitive after the prefix
        if upper in RESERVED_ENV:
            continue
        where = f"environment variable {name}"
        if upper not in names:
            raise ConfigError(f"{where}: not a gitforge setting — {suggest(upper, names)}",
                              "Rename or unset it; settings are GITFORGE_<KEY>, with __ "
                              "between nested keys (GITFORGE_BUILDER__KIND). " + HINT)
        raw = environ[name]
        if settings[names[upper]]:  # a string setting: a branch named 1.0 stays "1.0"
            found.append((names[upper], raw, where))
            continue
        try:
            found.append((names[upper], safeyaml.load(raw).data, where))
        except safeyaml.YAMLProblem as exc:
            shown = repr(raw) if len(raw) <= 60 else repr(raw[:60]) + "…"
            column = f" (column {exc.column})" if exc.column and "\n" not in raw else ""
            raise ConfigError(f"{where}: cannot read {shown} as a YAML value: "
                              f"{exc.message.removeprefix('invalid YAML: ')}{column}", HINT) from None
    return found


def _put(data: dict[str, Any], origins: dict[KeyPath, str], key_path: tuple[str, ...],
         value: object, where: str) -> None:
    """Set one setting over whatever a lower layer said, and remember where it came from."""
    node = data
    for depth, key in enumerate(key_path[:-1], start=1):
        if node.get(key) is None:
            node[key] = {}
            origins[key_path[:depth]] = where
        elif not isinstance(node[key], dict):
            return  # `builder: x` below us is reported as not a mapping, where it was written
        node = node[key]
    node[key_path[-1]] = value
    for stale in [p for p in origins if p[:len(key_path)] == key_path]:
        del origins[stale]
    origins[key_path] = where
