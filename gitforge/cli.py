"""typer wiring only: each command is a typed function in gitforge/commands/ returning an int."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from gitforge import __version__
from gitforge.error_handler import handle, report
from gitforge.errors import EXIT_USAGE, UsageError

app = typer.Typer(
    name="gitforge",
    help="Turn the phases of BACKLOG.md into verified, merged commits.\n\n"
         "Example: gitforge demo   (a self-contained tour, offline)",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

Repo = Annotated[Path, typer.Option("-C", "--repo", help="Run as if started in this directory.",
                                    show_default=False)]
Json = Annotated[bool, typer.Option("--json", help="Print a JSON report on stdout.")]
Target = Annotated[Optional[str], typer.Option("--target", help="Target branch (overrides otto.yaml).")]


def _exit(code: int) -> None:
    raise typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gitforge {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_options(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                       help="Show the version and exit.")] = False,
                 chdir: Annotated[Optional[list[Path]], typer.Option(
                     "-C", metavar="DIR", show_default=False,
                     help="Run as if gitforge was started in DIR (before the command, like git -C; "
                          "-C a -C b means a/b).")] = None) -> None:
    """Turn the phases of BACKLOG.md into verified, merged commits."""
    for folder in chdir or []:
        if not str(folder):
            continue  # git -C "" changes nothing
        try:
            os.chdir(folder)
        except OSError as e:
            report(UsageError(f"cannot change to {folder}: {e.strerror or e}",
                              hint="give -C an existing directory (a path relative to the one before it)"))
            raise typer.Exit(EXIT_USAGE) from None


@app.command("init")
def init_cmd(repo: Repo = Path("."), target: Target = None,
             claude: Annotated[bool, typer.Option("--claude", help="Also install the /forge-next slash command "
                                                  "for Claude Code (.claude/commands/forge-next.md).")] = False
             ) -> None:
    """Write otto.yaml and a starter BACKLOG.md (never overwrites). Example: gitforge init --claude"""
    from gitforge.commands.init import init

    _exit(handle(lambda: init(repo, target, claude)))


@app.command("next")
def next_cmd(phase: Annotated[Optional[str], typer.Argument(help="Run this phase instead of the next one.")] = None,
             repo: Repo = Path("."), target: Target = None, json: Json = False,
             max_attempts: Annotated[Optional[int], typer.Option("--max-attempts", min=1,
                                                                     help="Attempts for this run (overrides otto.yaml).")] = None,
             again: Annotated[bool, typer.Option("--again", help="Run PHASE even though the target's history shows "
                                                 "it landed (its landing was undone).")] = False) -> None:
    """Take the next runnable phase to a verified commit on the target. Example: gitforge next"""
    from gitforge.commands.next import next_phase

    overrides = {"target_branch": target, "max_attempts": max_attempts}
    _exit(handle(lambda: next_phase(repo, phase, overrides, json, again), json))


@app.command("run")
def run_cmd(repo: Repo = Path("."), target: Target = None, json: Json = False,
            parallel: Annotated[Optional[int], typer.Option("--parallel", "-j", min=1, max=64,
                                                            help="Worker processes (default: parallel in "
                                                                 "otto.yaml).")] = None,
            max_phases: Annotated[Optional[int], typer.Option("--max-phases", min=1,
                                                              help="Start at most this many phases.")] = None,
            max_attempts: Annotated[Optional[int], typer.Option("--max-attempts", min=1,
                                                                help="Attempts per phase (overrides otto.yaml).")] = None
            ) -> None:
    """Run phases until nothing is runnable: K workers, one merge queue. Example: gitforge run --parallel 4"""
    from gitforge.commands.run import run

    overrides = {"target_branch": target, "max_attempts": max_attempts}
    _exit(handle(lambda: run(repo, parallel, max_phases, overrides, json), json))


@app.command("resume")
def resume_cmd(batch: Annotated[Optional[str], typer.Argument(metavar="RUN", help="The run to continue (a prefix "
                                                              "of its id); default: the latest unfinished one.")] = None,
               repo: Repo = Path("."), target: Target = None, json: Json = False,
               parallel: Annotated[Optional[int], typer.Option("--parallel", "-j", min=1, max=64,
                                                               help="Worker processes (default: as before).")] = None
               ) -> None:
    """Continue a `gitforge run` that was stopped or whose coordinator died. Example: gitforge resume"""
    from gitforge.commands.run import resume

    _exit(handle(lambda: resume(repo, batch, parallel, {"target_branch": target}, json), json))


@app.command("status")
def status_cmd(repo: Repo = Path("."), target: Target = None, json: Json = False) -> None:
    """Show the board: phases, dependencies, last runs, kept worktrees. Example: gitforge status --json"""
    from gitforge.commands.status import status

    _exit(handle(lambda: status(repo, {"target_branch": target}, json), json))


@app.command("show")
def show_cmd(what: Annotated[str, typer.Argument(help="A run id (or its prefix) or a phase id.")],
             repo: Repo = Path("."), json: Json = False,
             transcript: Annotated[bool, typer.Option("--transcript",
                                                      help="Also print the model calls (redacted).")] = False) -> None:
    """Show a run: plan, attempts, ledger, gates, pilot, cost, landing. Example: gitforge show 3 --transcript"""
    from gitforge.commands.show import show

    _exit(handle(lambda: show(repo, what, json, transcript), json))


@app.command("apply")
def apply_cmd(patch: Annotated[Path, typer.Argument(help="A unified diff file, or - for stdin.")],
              repo: Repo = Path("."), check: Annotated[bool, typer.Option("--check",
                                                        help="Validate only; write nothing.")] = False,
              json: Json = False) -> None:
    """Validate, apply and audit a diff on the working tree (no commit). Example: gitforge apply fix.diff"""
    from gitforge.commands.apply import apply

    _exit(handle(lambda: apply(repo, patch, check, json), json))


@app.command("verify")
def verify_cmd(repo: Repo = Path("."), json: Json = False) -> None:
    """Run the otto.yaml gates on the current working tree. Example: gitforge verify"""
    from gitforge.commands.verify import verify

    _exit(handle(lambda: verify(repo, json), json))


@app.command("gc")
def gc_cmd(repo: Repo = Path("."), json: Json = False) -> None:
    """Remove kept (failed) and idle worktrees. Example: gitforge gc"""
    from gitforge.commands.gc import gc

    _exit(handle(lambda: gc(repo, json), json))


@app.command("demo")
def demo_cmd(directory: Annotated[Optional[Path], typer.Argument(help="Where to create the demo "
                                                                 "(default: a new temporary folder).")] = None,
             json: Json = False) -> None:
    """Create a small project with a backlog and land its phases, offline. Example: gitforge demo /tmp/d"""
    from gitforge.commands.demo import demo

    _exit(handle(lambda: demo(directory, json), json))


@app.command("start")
def start_cmd(phase: Annotated[Optional[str], typer.Argument(help="Claim this phase instead of the next one "
                                                             "(or resume its open session).")] = None,
              repo: Repo = Path("."), target: Target = None, json: Json = False) -> None:
    """Claim a phase for a host agent (Claude Code) and prepare its worktree. Example: gitforge start --json"""
    from gitforge.commands.session import start

    _exit(handle(lambda: start(repo, phase, {"target_branch": target}, json), json))


@app.command("submit")
def submit_cmd(run: Annotated[Optional[str], typer.Argument(help="The run to submit (default: the only "
                                                            "open session).")] = None,
               repo: Repo = Path("."), json: Json = False) -> None:
    """Send a host agent's edits through policy, gates and landing. Example: gitforge submit --json"""
    from gitforge.commands.session import submit

    _exit(handle(lambda: submit(repo, run, json), json))


@app.command("abandon")
def abandon_cmd(run: Annotated[str, typer.Argument(help="The run to release (gitforge status lists them).")],
                repo: Repo = Path("."), json: Json = False) -> None:
    """Release a phase a host agent claimed; its worktree is kept for gc. Example: gitforge abandon 01J9"""
    from gitforge.commands.session import abandon

    _exit(handle(lambda: abandon(repo, run, json), json))


@app.command("check")
def check_cmd(repo: Repo = Path("."), target: Target = None, json: Json = False,
              full: Annotated[bool, typer.Option("--full", help="Also run the gates on the target's tip and "
                                                 "look for uncommitted changes a landing would touch.")] = False
              ) -> None:
    """Health checks: repository, config, backlog, state, builder, locks. Example: gitforge check --full"""
    from gitforge.commands.check import check

    _exit(handle(lambda: check(repo, full, {"target_branch": target}, json), json))


hooks_app = typer.Typer(help="Install or remove gitforge's git pre-push hook.", no_args_is_help=True)
app.add_typer(hooks_app, name="hooks")


@hooks_app.command("install")
def hooks_install_cmd(repo: Repo = Path("."), json: Json = False,
                      force: Annotated[bool, typer.Option("--force", help="Install even though core.hooksPath "
                                                          "is set (into that folder).")] = False) -> None:
    """Install the pre-push hook; an existing hook is kept and run first. Example: gitforge hooks install"""
    from gitforge.commands.hooks import install

    _exit(handle(lambda: install(repo, force, json), json))


@hooks_app.command("uninstall")
def hooks_uninstall_cmd(repo: Repo = Path("."), json: Json = False) -> None:
    """Remove the pre-push hook and restore the one it replaced. Example: gitforge hooks uninstall"""
    from gitforge.commands.hooks import uninstall

    _exit(handle(lambda: uninstall(repo, json), json))


hook_app = typer.Typer(help="What the installed git hooks run (git calls these).", no_args_is_help=True)
app.add_typer(hook_app, name="hook")


@hook_app.command("pre-push")
def hook_pre_push_cmd(remote: Annotated[str, typer.Argument(help="The remote's name (or its URL).")],
                      url: Annotated[Optional[str], typer.Argument(help="The remote's URL.")] = None,
                      repo: Repo = Path(".")) -> None:
    """Check a push (refs on stdin, as git gives them). Example: gitforge hook pre-push origin URL < refs"""
    from gitforge.commands.prepush import pre_push

    _exit(handle(lambda: pre_push(repo, remote, url or remote, sys.stdin)))


notes_app = typer.Typer(help="Share run notes (refs/notes/forge/*) through a remote.", no_args_is_help=True)
app.add_typer(notes_app, name="notes")


@notes_app.command("push")
def notes_push_cmd(remote: Annotated[str, typer.Argument(help="The remote.")] = "origin",
                   repo: Repo = Path("."), json: Json = False) -> None:
    """Merge the remote's run notes into yours, then push them. Example: gitforge notes push origin"""
    from gitforge.commands.notes import push

    _exit(handle(lambda: push(repo, remote, json), json))


@notes_app.command("fetch")
def notes_fetch_cmd(remote: Annotated[str, typer.Argument(help="The remote.")] = "origin",
                    repo: Repo = Path("."), json: Json = False) -> None:
    """Fetch the remote's run notes and merge them into yours. Example: gitforge notes fetch origin"""
    from gitforge.commands.notes import fetch

    _exit(handle(lambda: fetch(repo, remote, json), json))


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt  # the same clean stop as Ctrl-C: gates killed, records closed


def main() -> None:
    from gitforge.infra.secrets_guard import guard
    from gitforge.infra.streams import guard_std_streams

    guard()  # before anything runs: the API key out of reach of the processes gitforge starts
    guard_std_streams()  # `gitforge next | head -3`: the run goes on, the output goes nowhere, quietly
    signal.signal(signal.SIGTERM, _terminate)
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
