"""The one exit path: ForgeError -> its exit code with a hint; anything else -> 3 with a log."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import typer

from gitforge.errors import EXIT_INTERNAL, ForgeError


def log_folder() -> Path:
    """Where crash logs go outside a repository: a folder of this user's only,
    $XDG_STATE_HOME/gitforge/logs (by default ~/.local/state/gitforge/logs)."""
    base = os.environ.get("XDG_STATE_HOME", "")
    if not os.path.isabs(base):  # unset, or relative (which the XDG spec says to ignore)
        base = str(Path.home() / ".local" / "state")
    return Path(base) / "gitforge" / "logs"


def _write_new(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as f:
        f.write(text)
    return path


def _crash_log(exc: BaseException) -> Path:
    """Write the traceback where only this user can read it: the repository's .forge/logs/ when
    gitforge runs in one, else log_folder() (made 0700); never a shared, predictable /tmp path."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    name = f"crash-{stamp}-{os.getpid()}.log"
    text = f"gitforge crashed: {exc!r}\nargv: {sys.argv}\n\n" + "".join(traceback.format_exception(exc))
    forge = Path.cwd() / ".forge"
    if forge.is_dir() and not forge.is_symlink():
        with contextlib.suppress(OSError):
            (forge / "logs").mkdir(mode=0o700, exist_ok=True)
            return _write_new(forge / "logs", name, text)
    with contextlib.suppress(OSError, RuntimeError):  # RuntimeError: no home folder to be found
        folder = log_folder()
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.mkdir(mode=0o700, exist_ok=True)
        return _write_new(folder, name, text)
    with contextlib.suppress(OSError):
        return _write_new(Path(tempfile.mkdtemp(prefix="gitforge-logs-")), name, text)  # 0700, unpredictable
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
