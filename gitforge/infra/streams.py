"""Output that may go away: `gitforge next | head -3` must not stop or corrupt the run.

SIGPIPE is ignored, so a write to a pipe nobody reads fails with EPIPE instead of killing
the process; `guard_std_streams` wraps sys.stdout and sys.stderr so that such a stream is
dropped silently from then on (its descriptor is pointed at /dev/null, so nothing pending in
it fails again at exit), and the work goes on.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
from typing import Any

_GONE = (errno.EPIPE, errno.ECONNRESET)


def _gone(exc: BaseException) -> bool:
    return isinstance(exc, BrokenPipeError) or (isinstance(exc, OSError) and exc.errno in _GONE)


class Guarded:
    """A text or binary stream whose writes never raise once its reader has gone."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._buffer: Guarded | None = None
        self.broken = False

    def _drop(self) -> None:
        """The reader is gone: send the descriptor (and whatever is still buffered) to /dev/null."""
        self.broken = True
        try:
            fd = self._stream.fileno()
            null = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(null, fd)
            finally:
                os.close(null)
        except (OSError, ValueError, AttributeError):
            pass

    def _guard(self, call, *args):
        if self.broken:
            return len(args[0]) if args and hasattr(args[0], "__len__") else None
        try:
            return call(*args)
        except (OSError, ValueError) as exc:
            if isinstance(exc, ValueError) and not getattr(self._stream, "closed", False):
                raise
            if isinstance(exc, OSError) and not _gone(exc):
                raise
            self._drop()
            return len(args[0]) if args and hasattr(args[0], "__len__") else None

    def write(self, data):
        return self._guard(self._stream.write, data)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._guard(self._stream.flush)

    @property
    def buffer(self) -> Guarded:
        """The binary stream under a text one (click writes bytes there), guarded the same way."""
        if self._buffer is None:
            self._buffer = Guarded(self._stream.buffer)
        return self._buffer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def guard_std_streams() -> None:
    """Ignore SIGPIPE and guard sys.stdout and sys.stderr (once)."""
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, Guarded):
            setattr(sys, name, Guarded(stream))
