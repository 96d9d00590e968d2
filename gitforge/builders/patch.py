"""The patch builder: a phase that carries its own `### Patch` needs no AI."""

from __future__ import annotations

from gitforge.backlog import Phase


class PatchBuilder:
    kind = "patch"

    def __init__(self, phase: Phase) -> None:
        self.phase = phase

    def describe(self) -> dict:
        return {"kind": self.kind}

    def build(self, attempt: int, feedback: str | None = None) -> str | None:
        """The phase's patch on the first attempt. A fixed patch cannot answer feedback, so a
        second attempt has nothing new to offer: None ends the phase."""
        return self.phase.patch if attempt == 1 else None
