"""typer wiring only: each command is a typed function in gitforge/commands/ returning an int."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from gitforge import __version__
from gitforge.error_handler import handle

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
                                                       help="Show the version and exit.")] = False) -> None:
    """Turn the phases of BACKLOG.md into verified, merged commits."""


@app.command("init")
def init_cmd(repo: Repo = Path("."), target: Target = None) -> None:
    """Write otto.yaml and a starter BACKLOG.md (never overwrites). Example: gitforge init"""
    from gitforge.commands.init import init

    _exit(handle(lambda: init(repo, target)))


@app.command("next")
def next_cmd(phase: Annotated[Optional[str], typer.Argument(help="Run this phase instead of the next one.")] = None,
             repo: Repo = Path("."), target: Target = None, json: Json = False,
             max_attempts: Annotated[Optional[int], typer.Option("--max-attempts", min=1,
                                                                     help="Attempts for this run (overrides otto.yaml).")] = None) -> None:
    """Take the next runnable phase to a verified commit on the target. Example: gitforge next"""
    from gitforge.commands.next import next_phase

    overrides = {"target_branch": target, "max_attempts": max_attempts}
    _exit(handle(lambda: next_phase(repo, phase, overrides, json), json))


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


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt  # the same clean stop as Ctrl-C: gates killed, records closed


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `gitforge show 1 | head` ends quietly, like git
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
