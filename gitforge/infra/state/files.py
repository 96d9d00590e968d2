"""Files of `.forge/` one at a time: atomic writes, lenient reads, and setting aside a file
that is not what it should be (renamed next to itself, never deleted)."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gitforge.errors import UsageError


class Corrupt(Exception):
    """A state file that exists but cannot be what it should be; the message says what it is."""


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id() -> str:
    from ulid import ULID  # ~20 ms; only paid when something is written

    return str(ULID())


def _umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # no /proc: read it the only other way there is
    os.umask(mask)
    return mask


def atomic_write(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write `data` to `path` so that a reader sees the old or the new file, never a torn one
    (nor one without its permissions). A file that is replaced keeps its mode unless `mode`
    is given; a new one gets 0666 less the umask, as `open` would give it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode is None:
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except (FileNotFoundError, NotADirectoryError):
            mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load_json(path: Path) -> Any:
    """The JSON value in `path`. FileNotFoundError when there is none; Corrupt when the file
    is a folder, not UTF-8 or not JSON; UsageError when it cannot be read (permissions)."""
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise Corrupt("a folder where a file belongs") from None
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFoundError(path) from None
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror or e}",
                         hint=f"fix its permissions (chmod u+rw {path}) or its owner, then run the command again"
                         ) from None
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise Corrupt(f"not UTF-8 text (byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise Corrupt(f"not valid JSON (line {e.lineno}: {e.msg})") from None


def append_jsonl(path: Path, obj: Any) -> None:
    """Append one JSON line with a single O_APPEND write: concurrent writers never interleave,
    and a line torn by a crash is skipped by `read_jsonl`."""
    line = (json.dumps(obj, sort_keys=False) + "\n").encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_jsonl(path: Path) -> list[Any]:
    """Every line of `path` that is a JSON object (a torn or foreign line is skipped)."""
    out = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(line)
                if isinstance(value, dict):
                    out.append(value)
    return out


def _stderr_warning(message: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(f"! {message}\n")
        sys.stderr.flush()


# Where warnings about state files go (a command may point it at its own UI).
warn: Callable[[str], None] = _stderr_warning


def set_aside(path: Path, why: str) -> Path | None:
    """Rename `path` (a file or a folder that is not what it should be) to
    `<name>.corrupt-<UTC time>` beside it, and warn naming both. None when another process
    moved it first."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    dest, n = path.with_name(f"{path.name}.corrupt-{stamp}"), 1
    while dest.exists() or dest.is_symlink():
        dest, n = path.with_name(f"{path.name}.corrupt-{stamp}-{n}"), n + 1
    try:
        os.rename(path, dest)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise UsageError(f"{path} is {why}, and could not be set aside: {e.strerror or e}",
                         hint=f"move it away yourself (mv {path} {dest}), then run the command again") from None
    warn(f"{path} was {why}: set aside as {dest.name} (nothing was deleted); gitforge goes on without it")
    return dest
