"""The patch builder: a phase that carries its own `### Patch` needs no AI."""

from __future__ import annotations

from gitforge.backlog import Phase
from gitforge.builders.base import Built, Job


class PatchBuilder:
    kind = "patch"

    def __init__(self, phase: Phase) -> None:
        self.phase = phase

    def describe(self) -> dict:
        return {"kind": self.kind}

    def start(self, job: Job, caller=None) -> None:
        """Nothing to prepare: the patch is in the phase."""

    def build(self, attempt: int, feedback: str | None = None) -> Built | None:
        """The phase's patch on the first attempt. A fixed patch cannot answer feedback, so a
        second attempt has nothing new to offer: None ends the phase."""
        return Built(diff=self.phase.patch) if attempt == 1 else None
