"""Progress and messages for people: to stderr, so stdout stays clean for --json."""

from __future__ import annotations

import sys

import typer


def _symbols() -> tuple[str, str, str, str]:
    enc = (getattr(sys.stderr, "encoding", None) or "").lower().replace("-", "")
    return ("→", "✓", "✗", "!") if enc.startswith("utf") else ("->", "ok", "x", "!")


class UI:
    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.arrow, self.check, self.cross, self.bang = _symbols()

    def _err(self, text: str, **style) -> None:
        typer.echo(typer.style(text, **style) if style else text, err=True)

    def step(self, text: str) -> None:
        if not self.quiet:
            self._err(f"{self.arrow} {text}", bold=True)

    def ok(self, text: str) -> None:
        if not self.quiet:
            self._err(f"{self.check} {text}", fg="green")

    def fail(self, text: str) -> None:
        self._err(f"{self.cross} {text}", fg="red")

    def warn(self, text: str) -> None:
        self._err(f"{self.bang} {text}", fg="yellow")

    def info(self, text: str) -> None:
        if not self.quiet:
            self._err(f"  {text}")

    def block(self, text: str, indent: str = "    ") -> None:
        if not self.quiet:
            for line in text.splitlines():
                self._err(indent + line, dim=True)

    @staticmethod
    def out(text: str = "") -> None:
        typer.echo(text)


def print_json(data: dict) -> None:
    """A --json report: one object on stdout, always with its schema_version."""
    import json

    typer.echo(json.dumps({"schema_version": 1, **data}, indent=2, default=str))


def gate_printer(ui: UI, where: str = "", detail: bool = False, label: str = "gate"):
    """The callback `run_gates` reports each gate to: its command as it starts, then passed or
    how it failed (with `detail`, the output's tail and the log path too)."""
    from gitforge.infra.gates import describe_failure

    def show(spec, result) -> None:
        if result is None:
            ui.info(f"{label} {spec.name}{where}: {spec.run}")
        elif result.ok:
            ui.ok(f"gate {spec.name} passed ({result.duration:.2f}s)")
        else:
            ui.fail(describe_failure(result))
            if detail:
                ui.block(result.tail)
                ui.info(f"log: {result.log}")
    return show
