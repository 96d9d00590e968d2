"""The one error hierarchy. Each error knows its exit code and carries a hint."""

from __future__ import annotations

EXIT_OK = 0
EXIT_WORK_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


class ForgeError(Exception):
    """An expected failure: a message for the user and a hint saying what to do."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(ForgeError):
    """Bad arguments, or a repository gitforge cannot work in (exit 2)."""


class ConfigError(ForgeError):
    """otto.yaml is invalid (exit 2)."""


class BacklogError(ForgeError):
    """BACKLOG.md cannot be parsed (exit 2). The message names the line."""

    def __init__(self, message: str, line: int | None = None, path: str = "BACKLOG.md",
                 hint: str | None = None) -> None:
        where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message, hint)
        self.line = line
        self.path = path


class RepoError(ForgeError):
    """The git repository is not in a state gitforge can work with (exit 2)."""


class GitFailed(ForgeError):
    """A git command gitforge ran failed unexpectedly (exit 3); the message carries git's words."""

    exit_code = EXIT_INTERNAL


class WorkFailed(ForgeError):
    """The work itself failed: a gate, a refused patch, a conflict (exit 1)."""

    exit_code = EXIT_WORK_FAILED


class PatchRefused(WorkFailed):
    """A patch was refused by the policy, could not be applied, or failed the audit."""

    def __init__(self, message: str, reasons: list[str] | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.reasons = list(reasons or [])


class LockBusy(ForgeError):
    """Another gitforge process holds a lock we need (exit 1: nothing was done)."""

    exit_code = EXIT_WORK_FAILED


class StaleRecord(ForgeError):
    """A record on disk was saved by another writer since this copy was read (exit 3: two
    writers of one record is a bug; nothing was overwritten)."""

    exit_code = EXIT_INTERNAL


class BadTransition(ForgeError):
    """A run record was asked to move where its state machine does not go (exit 3: a bug)."""

    exit_code = EXIT_INTERNAL
