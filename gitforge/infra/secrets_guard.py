"""Keep gitforge's own API key out of reach of the processes it starts (gates, setup and fix
commands, which run code a model wrote).

Those processes never get the key in their environment (`redact.without_own_secrets`), but on
Linux a process can read another's *initial* environment, `/proc/<pid>/environ`: the bytes
the kernel copied in at exec, which stay as they were whatever the program later does with
its variables. So at start-up, before anything runs, `guard()`:

- overwrites the values of ANTHROPIC_API_KEY and ANTHROPIC_AUTH_TOKEN in that block in place
  (the memory between `env_start` and `env_end` of /proc/self/stat) with `*`; Python's
  `os.environ`, copied from it when the interpreter started, keeps the key for gitforge's own
  use (the SDK, the command builder's explicit allowlist);
- removes them from the C library's environment (`unsetenv`), so nothing started without an
  explicit environment inherits them;
- marks the process not dumpable (`prctl(PR_SET_DUMPABLE, 0)`): its /proc files then belong to
  root, so a process of the same (non-root) user cannot read its memory (`/proc/<pid>/mem`,
  where `os.environ` lives), attach a debugger to it, or get a core dump with the key. The
  processes gitforge starts are dumpable again (execve resets the flag), so gitforge can still
  read `/proc/<gate>/cwd` (`gates.end_orphans`). Root can read any process: this guards
  against the user's own processes, not against root.

Elsewhere it does nothing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

from gitforge.infra.redact import OWN_VARS

PR_SET_DUMPABLE = 4
MASK_BYTE = b"*"


def guard(names: Iterable[str] = OWN_VARS) -> list[str]:
    """Scrub those of `names` that are set from this process's initial environment block and
    the C environment, and make the process non-dumpable; without any, do nothing. Returns
    the names scrubbed from the block."""
    names = [name for name in names if name in os.environ]
    if not names or not sys.platform.startswith("linux"):
        return []
    scrubbed = scrub_initial_environ(names)
    for name in names:
        os.unsetenv(name)  # the C library's copy only: os.environ keeps it
    _non_dumpable()
    return scrubbed


def env_block() -> tuple[int, int] | None:
    """The address range of this process's initial environment (fields 50 and 51 of
    /proc/self/stat), or None where the kernel does not say."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()  # the command name may hold spaces and ')'
        start, end = int(fields[50 - 3]), int(fields[51 - 3])
    except (OSError, IndexError, ValueError):
        return None
    return (start, end) if 0 < start < end else None


def scrub_initial_environ(names: Iterable[str]) -> list[str]:
    """Overwrite the value of every `NAME=value` entry for `names` in the initial environment
    block with `*` (same length, so every other entry stays where the C library points)."""
    import ctypes

    block = env_block()
    if block is None:
        return []
    start, end = block
    data = ctypes.string_at(start, end - start)
    prefixes = {name.encode() + b"=" for name in names}
    scrubbed, offset = [], 0
    for entry in data.split(b"\0"):
        prefix = next((p for p in prefixes if entry.startswith(p)), None)
        if prefix is not None and len(entry) > len(prefix):
            where, length = start + offset + len(prefix), len(entry) - len(prefix)
            ctypes.memmove(where, MASK_BYTE * length, length)
            scrubbed.append(prefix[:-1].decode())
        offset += len(entry) + 1
    return scrubbed


def _non_dumpable() -> None:
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):  # no prctl: nothing more to do
        pass
