"""The one exit path: ForgeError -> its exit code with a hint; anything else -> 3 with a log."""

from __future__ import annotations

import contextlib
import sys
import tempfile
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import typer

from gitforge.errors import EXIT_INTERNAL, ForgeError


def _crash_log(exc: BaseException) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    text = f"gitforge crashed: {exc!r}\nargv: {sys.argv}\n\n" + "".join(traceback.format_exception(exc))
    for folder in (Path.cwd() / ".forge" / "logs", Path(tempfile.gettempdir()) / "gitforge-logs"):
        with contextlib.suppress(OSError):
            if folder.parent.is_dir() or folder.parent.name != ".forge":
                folder.mkdir(parents=True, exist_ok=True)
                path = folder / f"crash-{stamp}.log"
                path.write_text(text, encoding="utf-8")
                return path
    return Path("(could not write a log)")


def report(err: ForgeError) -> None:
    typer.echo(typer.style("gitforge: ", bold=True) + err.message, err=True)
    if err.hint:
        typer.echo(typer.style("  hint: ", fg="cyan") + err.hint, err=True)


def handle(fn: Callable[[], int], as_json: bool = False) -> int:
    """Run a command body and turn every outcome into an exit code. With --json, an error is
    also reported on stdout as one object, so a script always has something to parse."""
    try:
        return fn()
    except ForgeError as err:
        report(err)
        if as_json:
            from gitforge.ui import print_json

            print_json({"ok": False, "error": err.message, "hint": err.hint, "exit_code": err.exit_code})
        return err.exit_code
    except KeyboardInterrupt:
        typer.echo("gitforge: interrupted", err=True)
        return 130
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except Exception as exc:  # a bug: keep the evidence
        log = _crash_log(exc)
        typer.echo(f"gitforge: internal error: {exc!r}\n  the traceback is in {log}; please report it", err=True)
        return EXIT_INTERNAL
