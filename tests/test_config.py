"""otto.yaml loading: defaults, layering, and error messages that say where and what."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gitforge.config import CONFIG_FILE, BuilderConfig, Config, Gate, load_config
from gitforge.config_template import render_default_config
from gitforge.errors import EXIT_USAGE, ConfigError


def write(root: Path, text: str) -> Path:
    path = root / CONFIG_FILE
    path.write_text(text, encoding="utf-8")
    return path


def load(root: Path, text: str | None = None, **kwargs: object) -> Config:
    if text is not None:
        write(root, text)
    kwargs.setdefault("environ", {})
    return load_config(root, **kwargs)  # type: ignore[arg-type]


def error(root: Path, text: str | None = None, **kwargs: object) -> str:
    with pytest.raises(ConfigError) as info:
        load(root, text, **kwargs)
    assert info.value.exit_code == EXIT_USAGE
    assert info.value.hint and "README.md" in info.value.hint
    return info.value.message


# --- defaults ---------------------------------------------------------------------------

def test_no_file_gives_defaults(tmp_path: Path) -> None:
    cfg = load(tmp_path)
    assert cfg == Config()
    assert cfg.source is None


def test_empty_and_comment_only_files_give_defaults(tmp_path: Path) -> None:
    assert load(tmp_path, "") == Config()
    cfg = load(tmp_path, "# nothing yet\n")
    assert cfg == Config()
    assert cfg.source == str(tmp_path / CONFIG_FILE)


def test_every_default_value(tmp_path: Path) -> None:
    cfg = load(tmp_path)
    assert cfg.target_branch is None
    assert (cfg.backlog, cfg.progress, cfg.verify) == ("BACKLOG.md", "PROGRESS.md", [])
    assert (cfg.builder.kind, cfg.builder.model, cfg.builder.command) == (
        "patch", "claude-sonnet-5-5", None)
    assert cfg.builder.timeout == 1800
    assert cfg.builder.env_allowlist == ["PATH", "HOME", "LANG", "LC_ALL", "TERM", "TMPDIR",
                                         "USER", "ANTHROPIC_API_KEY"]
    assert (cfg.planner.enabled, cfg.planner.model) == (False, "claude-haiku-5-5")
    assert (cfg.builder.max_turns, cfg.builder.max_tokens, cfg.llm.max_retries, cfg.llm.timeout) == (16, 16000, 4, 600)
    assert (cfg.llm.pilot_model, cfg.llm.pilot_strong_model, cfg.policy.scope) == (
        "claude-haiku-5-5", "claude-opus-5-5", "warn")
    assert (cfg.pilot, cfg.max_attempts, cfg.parallel) == (True, 3, 1)
    b = cfg.budgets
    assert (b.usd_per_phase, b.usd_per_run, b.doctor_calls_per_phase, b.doctor_calls_per_run,
            b.failures_per_run) == (5, 50, 2, 10, 25)
    assert cfg.merge.strategy == "squash"
    p = cfg.policy
    assert (p.max_files, p.max_lines, p.max_file_bytes, p.forbid_binary) == (
        25, 1500, 1_000_000, True)
    assert p.protected_paths == [".git/", ".forge/", "otto.yaml", ".env*", "**/*.pem"]
    assert (cfg.worktrees.setup, cfg.worktrees.include, cfg.worktrees.pool_size) == (None, [], 4)
    assert (cfg.execute_fix.enabled, cfg.execute_fix.commands) == (False, [])


def test_partial_nested_sections_keep_other_defaults(tmp_path: Path) -> None:
    cfg = load(tmp_path, "builder:\n  kind: anthropic\npolicy: {max_files: 3}\n"
                         "verify:\n  - {name: tests, run: pytest -q}\nworktrees:\n")
    assert cfg.builder.kind == "anthropic"
    assert cfg.builder.model == "claude-sonnet-5-5"
    assert cfg.policy.max_files == 3
    assert cfg.policy.max_lines == 1500
    assert cfg.verify == [Gate(name="tests", run="pytest -q", timeout=600)]
    assert cfg.worktrees.pool_size == 4  # an empty section means all defaults


def test_int_accepted_for_float_and_config_is_frozen(tmp_path: Path) -> None:
    cfg = load(tmp_path, "budgets: {usd_per_run: 12}\nbuilder: {timeout: 2.5}\n")
    assert cfg.budgets.usd_per_run == 12.0
    assert isinstance(cfg.budgets.usd_per_run, float)
    assert cfg.builder.timeout == 2.5
    with pytest.raises(ValidationError):
        cfg.max_attempts = 9  # type: ignore[misc]


# --- file errors ------------------------------------------------------------------------

def test_unknown_top_level_key_names_line_and_nearest(tmp_path: Path) -> None:
    msg = error(tmp_path, "backlog: BACKLOG.md\npilot: true\n\nverfy:\n  - {name: t, run: x}\n")
    assert msg == "otto.yaml:4: unknown key 'verfy' — did you mean 'verify'?"


def test_unknown_nested_key_names_line_and_nearest_sibling(tmp_path: Path) -> None:
    msg = error(tmp_path, "policy:\n  max_lines: 10\n  max_file: 3\n")
    assert msg == "otto.yaml:3: unknown key 'policy.max_file' — did you mean 'policy.max_files'?"


def test_unknown_key_with_nothing_close_lists_valid_keys(tmp_path: Path) -> None:
    msg = error(tmp_path, "merge:\n  zzz: 1\n")
    assert msg == "otto.yaml:2: unknown key 'merge.zzz' — valid keys: merge.strategy"


def test_unknown_key_in_a_gate(tmp_path: Path) -> None:
    msg = error(tmp_path, "verify:\n  - name: t\n    run: x\n    timout: 5\n")
    assert msg == "otto.yaml:4: unknown key 'verify[0].timout' — did you mean 'verify[0].timeout'?"


def test_int_given_as_string(tmp_path: Path) -> None:
    msg = error(tmp_path, "# gitforge\n" + "\n" * 5 + "max_attempts: three\n")
    assert msg == "otto.yaml:7: 'max_attempts' must be an integer, got 'three' (a string)"
    msg = error(tmp_path, "max_attempts: '3'\n")
    assert msg == "otto.yaml:1: 'max_attempts' must be an integer, got '3' (a string)"


def test_nested_int_given_as_string(tmp_path: Path) -> None:
    msg = error(tmp_path, "policy:\n  max_files: many\n")
    assert msg == "otto.yaml:2: 'policy.max_files' must be an integer, got 'many' (a string)"


def test_bool_given_as_quoted_yes(tmp_path: Path) -> None:
    msg = error(tmp_path, 'policy:\n  forbid_binary: "yes"\n')
    assert msg == "otto.yaml:2: 'policy.forbid_binary' must be true or false, got 'yes' (a string)"


def test_list_given_as_scalar(tmp_path: Path) -> None:
    msg = error(tmp_path, "policy:\n  protected_paths: .env\n")
    assert msg == "otto.yaml:2: 'policy.protected_paths' must be a list, got '.env' (a string)"


def test_number_in_list_item(tmp_path: Path) -> None:
    msg = error(tmp_path, "verify:\n  - {name: t, run: x}\n  - {name: u, run: y, timeout: soon}\n")
    assert msg == "otto.yaml:3: 'verify[1].timeout' must be a number, got 'soon' (a string)"


def test_gate_missing_run(tmp_path: Path) -> None:
    msg = error(tmp_path, "verify:\n  - name: tests\n")
    assert msg == "otto.yaml:2: 'verify[0]' is missing the required key 'run'"


def test_section_given_as_scalar(tmp_path: Path) -> None:
    msg = error(tmp_path, "builder: anthropic\n")
    assert msg == "otto.yaml:1: 'builder' must be a mapping, got 'anthropic' (a string)"


def test_bounds(tmp_path: Path) -> None:
    msg = error(tmp_path, "max_attempts: 0\nverify: [{name: t, run: x, timeout: 0}]\n")
    assert msg.splitlines() == [
        "otto.yaml:2: 'verify[0].timeout' must be greater than 0, got 0 (an integer)",
        "otto.yaml:1: 'max_attempts' must be at least 1, got 0 (an integer)",
    ]


def test_literal_choice_with_suggestion(tmp_path: Path) -> None:
    msg = error(tmp_path, "builder:\n  model: x\n  kind: antropic\n")
    assert msg == ("otto.yaml:3: 'builder.kind' must be one of anthropic, command, patch; "
                   "got 'antropic' (a string) — did you mean 'anthropic'?")


def test_literal_choice_without_close_match(tmp_path: Path) -> None:
    msg = error(tmp_path, "merge: {strategy: 3}\n")
    assert msg == "otto.yaml:1: 'merge.strategy' must be one of squash, merge; got 3 (an integer)"


def test_every_error_is_reported(tmp_path: Path) -> None:
    msg = error(tmp_path, "pilot: 1\nparallel: two\n")
    assert msg.splitlines() == [
        "otto.yaml:1: 'pilot' must be true or false, got 1 (an integer)",
        "otto.yaml:2: 'parallel' must be an integer, got 'two' (a string)",
    ]


def test_invalid_yaml_names_line_and_column(tmp_path: Path) -> None:
    msg = error(tmp_path, "backlog: BACKLOG.md\nverify: [\n  {name: t\nmerge: x\n")
    assert msg.startswith("otto.yaml:4:")
    assert "invalid YAML" in msg
    msg = error(tmp_path, "pilot: true\nbuilder:\n  kind: patch\n   model: x\n")
    assert msg.startswith("otto.yaml:4:") and "mapping values are not allowed" in msg


def test_unclosed_quote_names_where_it_opened(tmp_path: Path) -> None:
    msg = error(tmp_path, 'pilot: true\nbacklog: "BACKLOG.md\n')
    assert msg == ("otto.yaml:3:1: invalid YAML: found unexpected end of stream "
                   "(while scanning a quoted scalar at line 2, column 10)")


def test_key_that_yaml_reads_as_a_boolean(tmp_path: Path) -> None:
    msg = error(tmp_path, "policy:\n  max_files: 3\n  on: 1\n")
    assert msg == "otto.yaml:3: key 'policy.on' must be a plain name; quote it if it is meant as one"


def test_duplicate_key(tmp_path: Path) -> None:
    msg = error(tmp_path, "pilot: true\nmax_attempts: 2\npilot: false\n")
    assert msg == "otto.yaml:3: duplicate key 'pilot' (first set on line 1)"


def test_top_level_list(tmp_path: Path) -> None:
    msg = error(tmp_path, "- target_branch: main\n")
    assert msg.startswith("otto.yaml:1: the top level must be a mapping")
    assert msg.endswith("got a list")


# --- environment and flags ---------------------------------------------------------------

def test_env_overrides_file(tmp_path: Path) -> None:
    cfg = load(tmp_path, "max_attempts: 2\nbuilder: {kind: anthropic, model: m}\n",
               environ={"GITFORGE_MAX_ATTEMPTS": "5", "GITFORGE_BUILDER__KIND": "command",
                        "GITFORGE_BUILDER__COMMAND": "claude -p"})
    assert cfg.max_attempts == 5
    assert (cfg.builder.kind, cfg.builder.model, cfg.builder.command) == ("command", "m",
                                                                          "claude -p")


def test_env_values_are_yaml(tmp_path: Path) -> None:
    cfg = load(tmp_path, environ={"GITFORGE_POLICY__MAX_FILES": "10", "GITFORGE_PILOT": "false",
                                  "GITFORGE_WORKTREES__INCLUDE": "[.env, secrets.json]",
                                  "GITFORGE_planner__enabled": "true"})
    assert cfg.policy.max_files == 10
    assert cfg.pilot is False
    assert cfg.worktrees.include == [".env", "secrets.json"]
    assert cfg.planner.enabled is True


def test_env_string_settings_are_taken_verbatim(tmp_path: Path) -> None:
    cfg = load(tmp_path, environ={"GITFORGE_TARGET_BRANCH": "1.0",
                                  "GITFORGE_WORKTREES__SETUP": "make deps: all"})
    assert cfg.target_branch == "1.0"
    assert cfg.worktrees.setup == "make deps: all"


def test_env_whole_section(tmp_path: Path) -> None:
    cfg = load(tmp_path, environ={"GITFORGE_VERIFY": "[{name: t, run: make test}]"})
    assert cfg.verify == [Gate(name="t", run="make test")]


def test_flag_overrides_env_and_none_flags_are_skipped(tmp_path: Path) -> None:
    cfg = load(tmp_path, "max_attempts: 2\ntarget_branch: main\n",
               environ={"GITFORGE_MAX_ATTEMPTS": "5", "GITFORGE_BUILDER__KIND": "command"},
               overrides={"max_attempts": 7, "target_branch": None, "builder.kind": "patch"})
    assert cfg.max_attempts == 7
    assert cfg.target_branch == "main"
    assert cfg.builder.kind == "patch"


def test_env_type_error_names_the_variable(tmp_path: Path) -> None:
    msg = error(tmp_path, "max_attempts: 2\n", environ={"GITFORGE_MAX_ATTEMPTS": "three"})
    assert msg == ("environment variable GITFORGE_MAX_ATTEMPTS: 'max_attempts' must be an "
                   "integer, got 'three' (a string)")


def test_env_error_inside_a_structured_value(tmp_path: Path) -> None:
    msg = error(tmp_path, environ={"GITFORGE_BUILDER": "{knd: command}"})
    assert msg == ("environment variable GITFORGE_BUILDER: unknown key 'builder.knd' — "
                   "did you mean 'builder.kind'?")


def test_env_literal_error(tmp_path: Path) -> None:
    msg = error(tmp_path, "builder: {kind: patch}\n", environ={"GITFORGE_BUILDER__KIND": "comand"})
    assert msg == ("environment variable GITFORGE_BUILDER__KIND: 'builder.kind' must be one of "
                   "anthropic, command, patch; got 'comand' (a string) — did you mean 'command'?")


def test_file_error_outside_env_setting_still_names_the_file(tmp_path: Path) -> None:
    msg = error(tmp_path, "builder:\n  kind: patch\n  timeout: slow\n",
                environ={"GITFORGE_BUILDER__KIND": "command"})
    assert msg == "otto.yaml:3: 'builder.timeout' must be a number, got 'slow' (a string)"


def test_env_setting_under_a_broken_file_section_keeps_the_file_error(tmp_path: Path) -> None:
    msg = error(tmp_path, "pilot: true\nbuilder: anthropic\n",
                environ={"GITFORGE_BUILDER__KIND": "command"})
    assert msg == "otto.yaml:2: 'builder' must be a mapping, got 'anthropic' (a string)"


def test_env_unknown_variable_suggests_nearest(tmp_path: Path) -> None:
    msg = error(tmp_path, environ={"GITFORGE_MAX_ATTEMPT": "5"})
    assert msg == ("environment variable GITFORGE_MAX_ATTEMPT: not a gitforge setting — "
                   "did you mean 'GITFORGE_MAX_ATTEMPTS'?")
    msg = error(tmp_path, environ={"GITFORGE_POLICY_MAX_FILES": "5"})
    assert "did you mean 'GITFORGE_POLICY__MAX_FILES'?" in msg


def test_env_unknown_variable_with_nothing_close_names_the_nearest(tmp_path: Path) -> None:
    msg = error(tmp_path, environ={"GITFORGE_QQQQQQQQQQQQQQ": "1"})
    assert msg.startswith("environment variable GITFORGE_QQQQQQQQQQQQQQ: not a gitforge setting")
    assert "the nearest is 'GITFORGE_" in msg


def test_env_invalid_yaml_value(tmp_path: Path) -> None:
    msg = error(tmp_path, environ={"GITFORGE_VERIFY": "[unclosed"})
    assert msg.startswith("environment variable GITFORGE_VERIFY: cannot read '[unclosed'")


def test_reserved_and_foreign_env_names_are_ignored(tmp_path: Path) -> None:
    environ = {name: "x" for name in ("GITFORGE", "GITFORGE_RUN", "GITFORGE_PHASE",
                                      "GITFORGE_WORKTREE", "GITFORGE_HOME", "GITFORGE_DEBUG",
                                      "gitforge_debug", "PATH", "GITFORGEX")}
    assert load(tmp_path, environ=environ) == Config()


def test_unknown_flag(tmp_path: Path) -> None:
    msg = error(tmp_path, overrides={"builder.kinds": "patch"})
    assert msg == "command line: unknown setting 'builder.kinds' — did you mean 'builder.kind'?"


def test_flag_type_error(tmp_path: Path) -> None:
    msg = error(tmp_path, "parallel: 2\n", overrides={"parallel": "4"})
    assert msg == "command line: 'parallel' must be an integer, got '4' (a string)"


def test_real_environment_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("GITFORGE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("GITFORGE_PARALLEL", "3")
    assert load_config(tmp_path).parallel == 3


# --- render_default_config ----------------------------------------------------------------

def test_render_round_trip_without_gates(tmp_path: Path) -> None:
    write(tmp_path, render_default_config("main"))
    cfg = load(tmp_path)
    assert cfg == Config(target_branch="main")
    text = render_default_config("main")
    assert "kind: patch" in text and "anthropic" in text and "command:" in text
    assert "#  - {name: tests" in text


def test_render_round_trip_with_gates(tmp_path: Path) -> None:
    gates = [{"name": "tests", "run": "pytest -q", "timeout": 30},
             {"name": "lint", "run": "ruff check . # not a comment: really"}]
    write(tmp_path, render_default_config("1.0", gates))
    cfg = load(tmp_path)
    assert cfg.target_branch == "1.0"
    assert cfg == Config(target_branch="1.0", verify=[Gate(**g) for g in gates])  # type: ignore[arg-type]


def test_schema_objects_validate_directly() -> None:
    assert BuilderConfig(kind="command", command="claude -p").command == "claude -p"
    with pytest.raises(ValidationError):
        Gate(name="t", run="x", timeout=-1)


NO_NUL = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")  # a NUL is refused: no process can take one


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(branch=st.text(NO_NUL, min_size=1, max_size=20),
       gates=st.lists(st.fixed_dictionaries({"name": st.text(NO_NUL, min_size=1, max_size=15),
                                             "run": st.text(NO_NUL, min_size=1, max_size=30)}),
                      max_size=3))
def test_render_round_trips_any_strings(tmp_path: Path, branch: str,
                                        gates: list[dict[str, str]]) -> None:
    write(tmp_path, render_default_config(branch, gates))
    assert load(tmp_path) == Config(target_branch=branch, verify=[Gate(**g) for g in gates])


def test_worktree_include_must_stay_inside_the_repository(tmp_path):
    for bad in ("/etc/hostname", "../secrets/*", "~/x"):
        (tmp_path / "otto.yaml").write_text(f"worktrees:\n  include: [{bad!r}]\n")
        with pytest.raises(ConfigError) as err:
            load_config(tmp_path, environ={})
        assert "otto.yaml:2: 'worktrees.include'" in str(err.value) and "relative" in str(err.value)


def test_prices_add_to_the_built_in_table(tmp_path):
    (tmp_path / "otto.yaml").write_text("prices:\n  my-model: {input: 1, output: 2, cache_write: 1.25, cache_read: 0.1}\n")
    cfg = load_config(tmp_path, environ={})
    assert cfg.prices["my-model"].output == 2
    assert cfg.prices["claude-sonnet-5-5"].input == 2  # the built-in entries stay


def test_a_mistyped_price_key_names_the_nearest(tmp_path):
    (tmp_path / "otto.yaml").write_text("prices:\n  m: {input: 1, outptu: 2, cache_write: 1, cache_read: 0}\n")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path, environ={})
    assert "otto.yaml:2" in str(err.value) and "did you mean 'prices.m.output'" in str(err.value)


def test_llm_section_and_scope(tmp_path):
    (tmp_path / "otto.yaml").write_text("llm: {max_retries: 1, escalate_below: 0.5}\npolicy: {scope: refuse}\n")
    cfg = load_config(tmp_path, environ={})
    assert cfg.llm.max_retries == 1 and cfg.llm.escalate_below == 0.5 and cfg.policy.scope == "refuse"
    (tmp_path / "otto.yaml").write_text("policy: {scope: refuze}\n")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path, environ={})
    assert "did you mean 'refuse'" in str(err.value)
