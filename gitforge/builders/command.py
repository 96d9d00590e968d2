"""The command builder: a coding-agent CLI (`claude -p`, `aider --message {prompt}`, `codex exec`)
edits the task worktree, and whatever it changed or committed there becomes the attempt's diff.

The agent is untrusted: it runs without a shell, in its own process group (killed at the
timeout), with only allowlisted environment variables, and its output is redacted before any
of it is kept or shown.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

from gitforge.backlog import Phase
from gitforge.builders.base import Built, Job
from gitforge.config import BuilderConfig
from gitforge.errors import ConfigError
from gitforge.infra.proc import ProcResult, run_logged
from gitforge.infra.redact import redact, redact_file, secrets_from

PLACEHOLDERS = ("{prompt}", "{prompt_file}")
ALWAYS_PROTECTED = (".forge/", ".git/", "otto.yaml")
CONFIG_HINT = ('set builder.command in otto.yaml to an agent CLI, e.g. "claude -p --permission-mode acceptEdits", '
               '"aider --yes --message {prompt}" or "codex exec"')


def allowed_env(environ: Mapping[str, str], allowlist: Iterable[str]) -> dict[str, str]:
    """The variables of `environ` whose names match an allowlist entry (an exact name or an
    fnmatch pattern such as `LC_*`): an agent never sees tokens it was not meant to have."""
    patterns = list(allowlist)
    return {k: v for k, v in environ.items() if any(fnmatch.fnmatchcase(k, p) for p in patterns)}


def _split(command: str | None) -> list[str]:
    """The configured command as an argv, or a ConfigError saying what is wrong with it."""
    if command is None or not command.strip():
        raise ConfigError("builder.kind is 'command' but builder.command is not set", hint=CONFIG_HINT)
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ConfigError(f"builder.command cannot be parsed ({exc}): {command}",
                          hint="check its quotes: it is split like a shell command line, but never run by a "
                               "shell") from None
    if not argv:
        raise ConfigError("builder.command is empty", hint=CONFIG_HINT)
    return argv


def check_command(cfg: BuilderConfig, environ: Mapping[str, str] | None = None) -> None:
    """Fail before any worktree is claimed when the agent command cannot possibly run: unset,
    unparsable, or its executable missing from the PATH the agent will actually get."""
    argv = _split(cfg.command)
    exe = argv[0]
    env = allowed_env(os.environ if environ is None else environ, cfg.env_allowlist)
    if "/" in exe:
        if os.path.isabs(exe) and not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
            raise ConfigError(f"builder.command: {exe} does not exist or is not executable",
                              hint="install the agent CLI there, or fix the path in builder.command")
        return  # a relative path is resolved in the worktree, which does not exist yet
    search = os.pathsep.join(os.get_exec_path(env))
    if shutil.which(exe, path=search) is None:
        if "PATH" in env:  # the agent gets this PATH already: widening the allowlist changes nothing
            where, fix = "PATH", f"install {exe} into a folder on that PATH, or put its absolute path in builder.command"
        else:
            where = "the default PATH (PATH is not in builder.env_allowlist)"
            fix = (f"install {exe}, put its absolute path in builder.command, or add PATH to "
                   "builder.env_allowlist so the agent sees your PATH")
        raise ConfigError(f"builder.command: '{exe}' was not found on {where}: {search}", hint=fix)


def command_argv(command: str, prompt: str, prompt_file: Path) -> list[str]:
    """Split first, then fill placeholders inside each argument: the prompt stays one argument
    whatever quotes or spaces it holds, and no shell ever sees it. Without a placeholder the
    prompt is the last argument (how `claude -p` and `codex exec` take it)."""
    argv = _split(command)
    if not any(p in arg for arg in argv for p in PLACEHOLDERS):
        return [*argv, prompt]
    return [arg.replace("{prompt_file}", str(prompt_file)).replace("{prompt}", prompt) for arg in argv]


def _phase_section(job: Job) -> list[str]:
    phase = job.phase
    lines = [f"# Task: phase {phase.id} -- {phase.title}", "", "The phase to implement, as written in the backlog:",
             "", phase.text.rstrip("\n"), ""]
    if job.plan is not None:
        lines += ["## Plan", "", job.plan.render(), ""]
    return lines


def _rules(job: Job) -> list[str]:
    protected = list(dict.fromkeys([*ALWAYS_PROTECTED, *job.protected]))
    return ["## Rules", "",
            "- Work only inside the current directory (a git worktree of the project).",
            "- Make the change this phase asks for, and nothing unrelated to it.",
            "- Do not touch these protected paths (create, edit or delete them); running git commands is fine: "
            + ", ".join(protected) + ".",
            "- Committing is optional: everything you change or commit here is captured as one diff.",
            "- The project's tests and checks will be run on your change afterwards; make sure it works.", ""]


def _feedback(attempt: int, feedback: str | None, fresh: str | None = None) -> list[str]:
    if fresh:
        return [f"## Attempt {attempt}: a fresh start", "", "The worktree was reset to the base commit: the "
                "previous approach was judged wrong. Start over.", "", fresh.rstrip("\n"), ""]
    if attempt <= 1:
        return []
    lines = [f"## Attempt {attempt}: the previous attempt failed", "",
             "The worktree still holds the previous attempt's changes. Fix them rather than starting over.", ""]
    if feedback:
        fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", feedback)), default=0))
        lines += ["Why it failed:", "", fence, feedback.rstrip("\n"), fence, ""]
    return lines


def build_prompt(job: Job, attempt: int, feedback: str | None, fresh: str | None = None) -> str:
    """Everything the agent is told: the phase, the plan, the rules and, on a retry, why the last try failed."""
    return "\n".join([*_phase_section(job), *_rules(job), *_feedback(attempt, feedback, fresh)])


class CommandBuilder:
    kind = "command"

    def __init__(self, cfg: BuilderConfig, phase: Phase, environ: Mapping[str, str] | None = None) -> None:
        check_command(cfg, environ)
        self.cfg = cfg
        self.phase = phase
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.job: Job | None = None
        self._fresh: str | None = None  # why the next attempt starts over (the pilot's replan)

    def describe(self) -> dict:
        return {"kind": self.kind, "command": self.cfg.command}

    def start(self, job: Job, caller=None) -> None:
        """`caller` (model calls) is unused: the agent brings its own model."""
        self.job = job
        (job.run_dir / "agent").mkdir(parents=True, exist_ok=True)

    def replan(self, plan, why: str) -> None:
        """Start over: the worktree back at the base, the new plan (if any) and the reason in the prompt."""
        assert self.job is not None
        self.job.plan = plan
        self.job.reset()
        self._fresh = why

    def _env(self, job: Job) -> dict[str, str]:
        return {**allowed_env(self.environ, self.cfg.env_allowlist), **job.env}

    def build(self, attempt: int, feedback: str | None) -> Built:
        """Run the agent once in the worktree and capture what it changed (even if it exited
        non-zero: the pipeline and the gates judge the diff, not the agent's exit code)."""
        job = self.job
        if job is None:
            raise RuntimeError("CommandBuilder.build() called before start()")
        secrets = secrets_from(self.environ)
        agent_dir = job.run_dir / "agent"
        prompt = redact(build_prompt(job, attempt, feedback, self._fresh), secrets)
        self._fresh = None
        prompt_file = agent_dir / f"prompt-{attempt}.md"
        agent_dir.mkdir(parents=True, exist_ok=True)
        prompt_file.write_text(prompt, encoding="utf-8")
        argv = command_argv(self.cfg.command or "", prompt, prompt_file)
        header = f"$ {self.cfg.command}\n# prompt: {prompt_file}\n"
        result = run_logged(argv, job.workdir, self._env(job), agent_dir / f"attempt-{attempt}.log",
                            self.cfg.timeout, header=header)
        redact_file(result.log, secrets)
        return self._outcome(job, result, redact(result.tail, secrets))

    def _outcome(self, job: Job, result: ProcResult, output: str) -> Built:
        if result.error:
            return Built.failed(f"the agent command could not be started: {result.error}",
                                details=[f"builder.command: {self.cfg.command}"], final=True)
        if result.timed_out:
            return Built.failed(f"the agent command timed out after {self.cfg.timeout:g}s; "
                                f"its process group was killed", details=[output], final=True)
        diff = job.capture()
        if not diff.strip():
            why = "" if result.exit_code == 0 else f" (it exited with code {result.exit_code})"
            return Built.failed("the agent made no changes" + why, details=[output])
        summary = f"agent exited with code {result.exit_code}"
        if result.exit_code != 0:
            summary += " (the agent exited with an error; its changes are still judged by the pipeline and gates)"
        return Built(diff=diff, summary=summary)
