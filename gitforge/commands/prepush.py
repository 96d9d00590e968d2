"""gitforge hook pre-push REMOTE URL: what the installed hook runs; refuses a push that would
carry an unproven gitforge landing, race a landing, or fail the `pre_push` gates."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TextIO

from gitforge import safeyaml
from gitforge.config import CONFIG_FILE, Config, load_config
from gitforge.context import Context
from gitforge.errors import ConfigError, ForgeError, RepoError
from gitforge.infra.gates import GateResult, GateSpec, describe_failure
from gitforge.git import Git
from gitforge.git import notes
from gitforge.git.ranges import remote_name, remotes_with_commit
from gitforge.prepush import Finding, PushCheck, RefCheck, check_push, parse_refs
from gitforge.infra.state import Store
from gitforge.ui import UI, gate_printer

SKIP = ("to push anyway: GITFORGE=0 git push (skips gitforge's check only) "
        "or git push --no-verify (skips every pre-push hook)")


def pre_push(repo: Path, remote: str, url: str, stdin: TextIO) -> int:
    refs = parse_refs(stdin.read())
    if os.environ.get("GITFORGE") == "0":
        return 0
    ui = UI()
    git = Git.open(repo)
    cfg, target, broken = _settings(repo, git)
    store = Store(git.root, git.common_dir)

    def on_gate(tip: str, spec: GateSpec, r: GateResult | None) -> None:
        gate_printer(ui, f" on {tip[:9]}", detail=True, label="pre_push gate")(spec, r)

    push = check_push(git, store, cfg, target, refs, remote_name(git.here, remote, url), on_gate)
    push.url = url
    for check in push.refs:
        _report_ref(ui, check)
    if broken is not None:
        if push.forge_commits or _may_have_pre_push(git.here):
            why = ("this push carries gitforge commits" if push.forge_commits
                   else "otto.yaml names pre_push gates")
            raise ConfigError(f"otto.yaml is invalid, and {why}, which gitforge cannot check without it:\n"
                              f"{broken.message}",
                              hint=f"fix otto.yaml (`gitforge check` shows the problem), then push again; {SKIP}")
        ui.warn(f"otto.yaml is invalid ({broken.message.splitlines()[0]}); this push carries no gitforge "
                "commits and no pre_push gates are named, so it goes ahead. Fix otto.yaml: gitforge check")
    if not push.ok:
        _advise(ui, git, push, target)
        return 1
    _notes(ui, git, store, cfg, push)
    return 0


def _settings(repo: Path, git: Git) -> tuple[Config | None, str | None, ConfigError | None]:
    """(config, target branch, config error). A repository gitforge cannot fully open still gets
    the note check, which needs only git: a push is never blocked for an unrelated reason."""
    try:
        ctx = Context.open(repo)
        return ctx.cfg, ctx.target, None
    except ConfigError as e:
        return None, None, e
    except RepoError:  # detached HEAD and no target_branch, or the target does not exist here
        cfg = load_config(git.here)
        return cfg, None, None


def _may_have_pre_push(root: Path) -> bool:
    """Whether an otto.yaml that does not validate still names pre_push gates (or cannot be read
    well enough to tell): then its gates may be the point of the hook, and the push stops."""
    if os.environ.get("GITFORGE_PRE_PUSH"):
        return True
    path = root / CONFIG_FILE
    if not path.is_file():
        return False
    try:
        with open(path, "rb") as file:
            data = safeyaml.load(safeyaml.decode(file.read(safeyaml.MAX_BYTES + 1))).data
    except (OSError, safeyaml.YAMLProblem):
        return True
    if data is None:
        return False
    return not isinstance(data, dict) or bool(data.get("pre_push"))


def _report_ref(ui: UI, check: RefCheck) -> None:
    ref = check.ref
    name = f"{_short(ref.local_ref)} -> {_short(ref.remote_ref)}"
    if ref.deletes:
        ui.info(f"{name}: deletes the remote ref; nothing to check")
        return
    if check.range is None:
        ui.info(f"{name}: run notes; nothing to check")
        return
    what = (f"{name}: {check.commits} new commit(s) ({check.range.description}), "
            f"{check.forge} by gitforge")
    problems = []
    if check.findings:
        problems.append(f"{len(check.findings)} without a passing run note")
    if check.landing_busy:
        problems.append("a landing is in progress on this branch")
    failed = check.gates_failed
    if failed is not None:
        problems.append(f"pre_push {describe_failure(failed)}")
    if problems:
        ui.fail(f"{what}: refused: {'; '.join(problems)}")
    else:
        gates = f", {len(check.gates)} pre_push gate(s) passed" if check.gates else ""
        ui.ok(f"{what}: ok{gates}")
    if check.gates_skipped:
        ui.info(f"pre_push gates on {check.tip[:9] if check.tip else ref.local_sha[:9]}: {check.gates_skipped}")
    for f in check.findings:
        ui.info(f"{f.sha[:9]} \"{f.subject}\": {f.reason}")


def _advise(ui: UI, git: Git, push: PushCheck, target: str | None) -> None:
    """How to proceed, for each kind of refusal found."""
    findings = [f for r in push.refs for f in r.findings]
    missing = [f for f in findings if f.missing]
    if missing:
        ui.warn("gitforge commits without their run notes:")
        ui.info(_fetch_advice(git, missing, push))
        ui.info("if they were rebased or amended before notes.rewriteRef was set, copy each note: "
                "git notes --ref=forge/runs copy OLD NEW")
    if any(not f.missing for f in findings):
        ui.warn("gitforge commits whose run notes do not record a passing landing: look at them "
                "(gitforge show RUN) before they reach the remote")
    if any(r.landing_busy for r in push.refs):
        ui.warn(f"a landing on {target} is in progress (it holds the merge lock): wait for it to finish, "
                "then push again")
    failed = [r for r in push.refs if r.gates_failed is not None]
    if failed:
        ui.warn("a pre_push gate failed on the pushed tip: fix it and push again "
                "(the log path is shown above)")
    ui.info(SKIP)


def _notes(ui: UI, git: Git, store: Store, cfg: Config | None, push: PushCheck) -> None:
    """notes.push_with: send the run notes along; otherwise offer to, when the push has landings."""
    if cfg is not None and cfg.notes.push_with:
        from gitforge.land.notesync import push as push_notes

        if push.remote is None:
            ui.warn(f"notes.push_with: the run notes were not pushed, because {push.url} is not a configured "
                    f"remote; {_notes_cmd('push', push)}")
            return
        try:
            push.notes_pushed = push_notes(git, store, push.remote).summary
        except ForgeError as e:  # the branches are fine to push; the notes can follow
            ui.warn(f"the run notes were not pushed: {e.message}")
            ui.info(f"push them by hand: gitforge notes push {push.remote}")
            return
        ui.ok(push.notes_pushed)
    elif push.forge_commits:
        ui.info(f"run notes are not pushed with branches: {_notes_cmd('push', push)}, "
                "or set notes.push_with: true in otto.yaml")


def _fetch_advice(git: Git, missing: list[Finding], push: PushCheck) -> str:
    """Where to fetch the missing notes from: a remote whose notes, fetched earlier, have them;
    else the remotes that have the commits (their notes went where the commits did); else,
    when no remote has them, the remote the push goes to, where clones usually share notes."""
    names = notes.remotes(git)
    noted = [r for r in names if all(f.run_id in (git.read_note(f.sha, notes.tracking_ref(r)) or "")
                                     for f in missing)]
    if noted:
        return (f"your copy of {noted[0]}'s run notes has them, not merged into yours yet: "
                f"gitforge notes fetch {noted[0]}")
    having = [r for r in names if all(r in remotes_with_commit(git.here, f.sha) for f in missing)]
    if having:
        also = f" (or {', '.join(having[1:])})" if len(having) > 1 else ""
        return (f"these commits came from {having[0]}{also}: fetch the run notes from there: "
                f"gitforge notes fetch {having[0]}")
    return f"if they came from another clone, fetch the notes from where it pushed them: {_notes_cmd('fetch', push)}"


def _notes_cmd(verb: str, push: PushCheck) -> str:
    """The notes command to suggest; notes sync needs a named remote, not a bare URL."""
    if push.remote is not None:
        return f"gitforge notes {verb} {push.remote}"
    return f"add the URL as a remote (git remote add NAME {push.url}), then gitforge notes {verb} NAME"


def _short(ref: str) -> str:
    for prefix in ("refs/heads/", "refs/tags/"):
        if ref.startswith(prefix):
            return ref[len(prefix):]
    return ref
