"""gitforge verify: run the otto.yaml gates on the current working tree."""

from __future__ import annotations

from pathlib import Path

from gitforge.context import Context
from gitforge.infra.gates import describe_failure, gate_specs, run_gates
from gitforge.infra.state import new_id
from gitforge.ui import UI, gate_printer, print_json


def verify(repo: Path, as_json: bool = False) -> int:
    ctx = Context.open(repo)
    ui = UI()
    specs = gate_specs(ctx.cfg.verify, [])
    if not specs:
        ui.warn("otto.yaml configures no `verify` gates: nothing to run")
    log_dir = ctx.store.ensure().runs_dir / f"verify-{new_id()}"
    results = run_gates(specs, ctx.git.here, log_dir, {"GITFORGE_WORKTREE": str(ctx.git.here)}, gate_printer(ui),
                        ctx.cfg.gates)
    failed = next((r for r in results if not r.ok), None)
    if as_json:
        print_json({"command": "verify", "ok": failed is None, "gates": [r.to_json() for r in results]})
    elif failed is not None:
        ui.block(failed.tail)
        ui.out(f"verify failed: {describe_failure(failed)} (log: {failed.log})")
    else:
        ui.out(f"verify passed: {len(results)} gate(s)")
    return 0 if failed is None else 1
