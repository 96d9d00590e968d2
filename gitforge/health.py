"""Health checks (`gitforge check`, and the quick tier before every `gitforge next`).

Checks report findings instead of raising, so one broken thing does not hide the others; a
check that needs what an earlier one found broken is reported as skipped. T0 is cheap (no
gate runs, no network, never imports anthropic); T1 (`--full`) runs the gates on the tip.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from gitforge.backlog import Backlog, Phase, select_next
from gitforge.run.selection import runnable_phases
from gitforge.run.calls import api_key
from gitforge.infra.clip import middle
from gitforge.config import Config, load_config
from gitforge.context import Context
from gitforge.errors import ConfigError, ForgeError, LockBusy, RepoError
from gitforge.git import Git
from gitforge.git import locks as git_locks
from gitforge.run.recover import dead_runs, retryable_phases
from gitforge.infra.state import Lease, Store, set_aside
from gitforge.infra.worktree import Pool

T0, T1 = "T0", "T1"
CLAIM_MAX_HOURS = 12
ORDER = ("repo", "commits", "config", "target", "backlog", "forge-writable", "builder", "leases", "claims",
         "locks", "git-locks", "runs", "worktrees", "gates", "uncommitted")
NEEDS_STATE = ("leases", "claims", "locks", "runs", "worktrees")
STATE_WAIT = 10.0  # seconds to wait for the state lock before skipping the state checks


@dataclass(frozen=True)
class Finding:
    id: str
    tier: str
    level: str  # "ok" | "warn" | "error" | "skip" (could not run: an earlier check failed)
    message: str
    fix: str = ""
    detail: str = ""  # a failing gate's output tail

    def to_json(self) -> dict:
        return asdict(self)


def exit_code(findings: list[Finding]) -> int:
    """2 for a configuration or repository error, 1 when only the gates failed, else 0."""
    errors = {f.id for f in findings if f.level == "error"}
    return 2 if errors - {"gates"} else (1 if errors else 0)


def _few(items: list[str], limit: int = 5) -> str:
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


@dataclass
class Checkup:
    """One pass over a repository; later checks use what earlier ones found."""

    findings: list[Finding] = field(default_factory=list)
    git: Git | None = None
    cfg: Config | None = None
    ctx: Context | None = None
    store: Store | None = None
    forge_ok: bool = False
    live: dict[str, Lease] | None = None  # live leases, once the stale ones are gone
    runnable: list[Phase] | None = None
    backlog: Backlog | None = None

    def add(self, id: str, level: str, message: str, fix: str = "", tier: str = T0, detail: str = "") -> None:
        self.findings.append(Finding(id, tier, level, message, fix, detail))

    def skip(self, ids: tuple[str, ...] | list[str], why: str, tier: str = T0) -> None:
        for id in ids:
            self.add(id, "skip", f"skipped: {why}", tier=tier)

    def sorted(self) -> list[Finding]:
        return sorted(self.findings, key=lambda f: ORDER.index(f.id) if f.id in ORDER else len(ORDER))

    # -- the repository, its configuration and the target ----------------------------------
    def open(self, repo: Path, overrides: Mapping[str, object]) -> None:
        try:
            git = Git.open(repo)
        except Exception as e:  # a check reports what it cannot open (unsafe ownership, a corrupt .git)
            message, hint = (e.message, e.hint) if isinstance(e, ForgeError) else (
                f"cannot open the repository at {Path(repo).resolve()}: {e}", None)
            self.add("repo", "error", message, hint or "run `git status` there to see what git says about it")
            self.skip(ORDER[1:ORDER.index("gates")], "needs a git repository")
            return
        self.git = git
        self.add("repo", "ok", f"git repository at {git.here}")
        try:
            git.require_commits()
            commits = True
            self.add("commits", "ok", "the repository has commits")
        except RepoError as e:
            commits = False
            self.add("commits", "error", e.message, e.hint or "")
        try:
            self.cfg = load_config(git.here, overrides=overrides)
            self.add("config", "ok", f"{self.cfg.source} is valid" if self.cfg.source
                     else "no otto.yaml: the defaults apply (`gitforge init` writes one)")
        except ConfigError as e:
            self.add("config", "error", e.message, e.hint or "fix otto.yaml")
        self.store = Store(git.root, git.common_dir)
        if not commits or self.cfg is None:
            why = "needs a first commit" if not commits else "needs a valid otto.yaml"
            self.skip(["target", "backlog"], why)
            return
        try:
            self.ctx = Context.open(repo, overrides)
        except ForgeError as e:
            self.add("target", "error", e.message, e.hint or "")
            self.skip(["backlog"], "needs the target branch")
            return
        how = "from otto.yaml or --target" if self.cfg.target_branch else "the branch HEAD is on"
        self.add("target", "ok", f"target branch {self.ctx.target} at {self.ctx.tip[:12]} ({how})")

    # -- .forge/ ---------------------------------------------------------------------------
    def forge(self, store: Store) -> None:
        """`.forge/` must be a folder gitforge can write in. Nothing is created: where it does
        not exist yet, the folder that will hold it must be writable; each of its folders that
        exists gets a real write (a temporary file, removed at once)."""
        self.store, forge = store, store.dir
        problem = fix = ""
        if not forge.is_dir() and (forge.exists() or forge.is_symlink()):
            problem, fix = f"{forge} is not a folder", (f"move the file {forge} away: gitforge keeps its run "
                                                        "state in a folder of that name")
        elif not forge.is_dir():
            parent = next(p for p in forge.parents if p.is_dir())
            if not os.access(parent, os.W_OK | os.X_OK):
                problem, fix = (f"cannot create {forge}: {parent} is not writable by you",
                                f"make it writable (chmod u+w {parent}), or fix its owner")
        else:
            try:
                for where in (forge, store.runs_dir, store.locks_dir, store.leases_dir, store.worktrees_dir):
                    if where.exists() and not where.is_dir():
                        set_aside(where, "not a folder")
                    if where.is_dir():  # a missing one is created by the first write that needs it
                        fd, tmp = tempfile.mkstemp(dir=where, prefix=".check-", suffix=".tmp")
                        os.write(fd, b"gitforge check\n")
                        os.close(fd)
                        os.unlink(tmp)
            except OSError as e:
                problem, fix = (f"cannot write in {e.filename or where}: {e.strerror or e}",
                                f"make it writable by you (chmod -R u+w {forge}), or fix its owner")
        if problem:
            self.add("forge-writable", "error", problem, fix)
            self.skip(NEEDS_STATE, "needs a writable .forge/")
            return
        self.forge_ok = True
        self.add("forge-writable", "ok", f"{forge} is writable" if forge.is_dir() else
                 f"{forge} does not exist yet; the first run creates it ({forge.parent} is writable)")

    def state(self, for_next: bool = False) -> None:
        """Leases, claims and dead runs under the state lock (as recovery reads them), then locks
        and kept worktrees. `next` recovers dead runs itself and probes no lock."""
        store = self.store
        assert store is not None and self.git is not None
        try:
            with store.locked("state", timeout=STATE_WAIT, what="the state lock"):
                self._leases(store)
                if not for_next:
                    self._runs(store)
        except LockBusy as e:
            self.skip(["leases", "claims"] + ([] if for_next else ["runs"]), f"{e.message}; try again")
        if not for_next:
            self._locks(store)
            self._git_locks()
        self._worktrees(store)

    def _leases(self, store: Store) -> None:
        before = {p.stem: lease for p in sorted(store.leases_dir.glob("*.json"))
                  if (lease := store.read_lease(p.stem)) is not None}  # an unreadable one is set aside
        self.live = live = store.live_leases()
        stale = [phase for phase in before if phase not in live
                 and not (store.leases_dir / f"{phase}.json").exists()]
        running = [f"phase {p} (run {lease.run_id}, pid {lease.pid})" for p, lease in live.items()
                   if lease.kind != "session"]
        if stale:
            who = [f"phase {p} (run {before[p].run_id}, pid {before[p].pid} on {before[p].host})" for p in stale]
            self.add("leases", "ok", f"removed {len(stale)} stale lease(s) whose process had died: {_few(who)}")
        else:
            self.add("leases", "ok", f"{len(running)} live lease(s): {_few(running)}" if running else "no leases")
        now = datetime.now(timezone.utc)
        claims = sorted((lease for lease in live.values() if lease.kind == "session"), key=lambda c: c.started)
        young = []
        for claim in claims:
            hours = _age_hours(claim.started, now)
            if hours is not None and hours < CLAIM_MAX_HOURS:
                young.append(f"run {claim.run_id} on phase {claim.phase}")
                continue
            age = f"{hours:.0f} hours ago" if hours is not None else "at an unknown time"
            self.add("claims", "warn", f"host-agent run {claim.run_id} claimed phase {claim.phase} {age} "
                     f"(gitforge start on {claim.host}, {claim.started}) and has not submitted",
                     f"if that session is over, release the phase: gitforge abandon {claim.run_id}")
        if young or not claims:
            self.add("claims", "ok", f"{len(young)} open host-agent session(s): {_few(young)}" if young
                     else "no host-agent sessions")

    def _runs(self, store: Store) -> None:
        """Run records left "running" whose lease is gone: the rule `recover.recover` applies."""
        dead = dead_runs(store, self.live or {})
        if not dead:
            self.add("runs", "ok", "no run was left running by a dead process")
            return
        named = [f"run {r.run_id} (phase {r.phase}, pid {r.pid}, during '{r.step}')"
                 for r in dead]
        self.add("runs", "warn", f"{len(dead)} run(s) recorded as running whose process died: {_few(named)}",
                 "`gitforge next` recovers them first: it closes each record, completes any landing "
                 "that happened, and the phase can run again")

    def _locks(self, store: Store) -> None:
        held = [p.stem for p in sorted(store.locks_dir.glob("*.lock")) if store.is_locked_elsewhere(p.stem)]
        self.add("locks", "ok", f"held by a live gitforge process (a run in progress): {_few(held)}" if held
                 else "no lock is held")

    def _git_locks(self) -> None:
        """git's own `.lock` files that would stop a landing: held by a live process, or left
        behind by one that died (recovery removes those)."""
        if self.ctx is None or self.git is None:
            return
        found = git_locks.inspect(self.git.common_dir, self.ctx.target, [self.git.root, *self.git.worktree_paths()])
        if not found:
            self.add("git-locks", "ok", "no git lock files")
            return
        for lock in found:
            if lock.open_by or lock.git_running:
                who = f"process {', '.join(map(str, lock.open_by or lock.git_running))}"
                self.add("git-locks", "warn", f"{lock.path} is held by a live {who}",
                         "let that git command finish; a landing waits for it")
            else:
                self.add("git-locks", "warn", f"{lock.path} was left behind ({lock.age:.0f}s old, no process "
                         f"holds it): git commands that need it fail until it is gone",
                         f"`gitforge next` removes it before it works; or remove it yourself: rm {lock.path}")

    def _worktrees(self, store: Store) -> None:
        assert self.git is not None
        sessions = {c.run_id for c in store.claims()}  # a host agent's worktree is in use, not kept
        kept = [m for m in Pool(self.git, store, None, []).kept() if m.get("run_id") not in sessions]
        if not kept:
            self.add("worktrees", "ok", "no kept worktrees")
            return
        named = [f"{m.get('path')} ({m.get('branch')}, run {m.get('run_id')}: "
                 f"{middle(m['reason'].splitlines()[0], 80) if m.get('reason') else 'failed'})" for m in kept]
        self.add("worktrees", "warn", f"{len(kept)} worktree(s) kept from failed runs: {_few(named, 3)}",
                 "look at them if useful, then `gitforge gc` removes them (a new run of the same phase "
                 "reuses its own)")

    # -- the backlog and the builder -------------------------------------------------------
    def plan(self, count: bool = True) -> None:
        ctx = self.ctx
        if ctx is None:
            return
        try:
            self.backlog = backlog = ctx.backlog()
        except ForgeError as e:
            fix = e.hint or f"fix {ctx.cfg.backlog} there and commit it"
            if (ctx.git.here / ctx.cfg.backlog).is_file() and "not committed" in e.message:
                fix = f"commit it: git add {ctx.cfg.backlog} && git commit -m 'Add the backlog'"
            self.add("backlog", "error", e.message, fix)
            return
        if not count:
            return
        busy, retryable = set(), set()  # without a usable .forge/, as if no run had happened
        if self.forge_ok:
            busy = set(self.live) if self.live is not None else {p.stem for p in ctx.store.leases_dir.glob("*.json")}
            retryable = retryable_phases(ctx.store, ctx.cfg.max_attempts)
        self.runnable = runnable = runnable_phases(backlog, busy=busy, retryable=retryable)
        first = select_next(backlog, busy=busy, retryable=retryable)
        then = f" (next: phase {first.phase.id})" if first.phase else f"; {first.reason.splitlines()[0]}"
        self.add("backlog", "ok", f"{ctx.cfg.backlog} on {ctx.target}: {len(backlog.phases)} phase(s), "
                 f"{len(runnable)} runnable{then}")

    def builder(self, environ: Mapping[str, str] | None = None) -> None:
        cfg = self.cfg
        if cfg is None:
            self.skip(["builder"], "needs a valid otto.yaml")
            return
        environ = os.environ if environ is None else environ
        b = cfg.builder
        needy = None if self.runnable is None else [p.id for p in self.runnable if p.patch is None]
        later = [] if self.backlog is None else [p.id for p in self.backlog.phases
                                                 if p.patch is None and p.status not in ("Done", "Skipped")
                                                 and p.id not in (needy or [])]
        if b.kind == "patch":
            if needy:
                self.add("builder", "warn", f"builder.kind is 'patch' and runnable phase(s) {_few(needy)} have no "
                         "### Patch block: `gitforge next` will refuse them",
                         "write the change as a ```diff block under '### Patch' in each, or set builder.kind "
                         "to anthropic or command in otto.yaml")
            else:
                self.add("builder", "ok", "patch (each phase carries its own ### Patch)" if needy is None
                         else "patch (every runnable phase carries its own ### Patch)")
            return
        if b.kind == "anthropic":
            if api_key(environ) is not None:
                self.add("builder", "ok", f"anthropic ({b.model}); ANTHROPIC_API_KEY is set")
                return
            problem = "builder.kind is 'anthropic' and ANTHROPIC_API_KEY is not set"
            fix = ("export ANTHROPIC_API_KEY=... ; or set builder: {kind: command, command: \"claude -p "
                   "--permission-mode acceptEdits\"} in otto.yaml; or give each phase a ### Patch block")
        else:
            from gitforge.builders.command import check_command

            try:
                check_command(b, environ)
            except ConfigError as e:
                problem, fix = e.message, e.hint or "fix builder.command in otto.yaml"
            else:
                self.add("builder", "ok", f"command ({b.command})")
                return
        if needy is None or needy:
            now = f"; runnable phase(s) {_few(needy)} need it" if needy else ""
            self.add("builder", "error", problem + now, fix)
        elif later:
            self.add("builder", "warn", f"{problem}; no phase runnable now needs it, but phase(s) {_few(later)} "
                     "will", fix)
        else:
            self.add("builder", "ok", f"{problem}, but every remaining phase carries its own ### Patch")


def _age_hours(started: str, now: datetime) -> float | None:
    try:
        when = datetime.fromisoformat(started.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return (now - when).total_seconds() / 3600


def quick(repo: Path, overrides: Mapping[str, object], environ: Mapping[str, str] | None = None) -> Checkup:
    """Every T0 check, for `gitforge check`."""
    c = Checkup()
    c.open(repo, overrides)
    if c.git is None or c.store is None:
        return c
    c.forge(c.store)
    if c.forge_ok:
        c.state()
    c.plan()
    c.builder(environ)
    return c


def before_next(ctx: Context) -> list[Finding]:
    """T0 for `gitforge next` on a context it opened: what the engine would trip over or stay
    silent about. The builder and dead runs are left to the engine, which reports them better."""
    c = Checkup(git=ctx.git, cfg=ctx.cfg, ctx=ctx)
    c.forge(ctx.store)
    if c.forge_ok:
        c.state(for_next=True)
    c.plan(count=False)
    return c.sorted()
