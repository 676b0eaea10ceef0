"""Best of N: one spec run by N candidate workflows in N worktrees (`<stem>-1 … <stem>-N`), compared on what
each change breaks and adds, and one of them picked: merged through the merge preview, the others archived.

Only the build phase differs between candidates (their agent and model, `BestOf`); plan, test, review and
document run as configured, so every candidate is judged by the same checks against the same base commit.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import get_args

from pydantic import BaseModel

from adw.config import AdwConfig, AgentKind
from adw.errors import AdwError, WorktreeError
from adw.git.checkpoints import Checkpoints, ref_id
from adw.git.refs import ARCHIVE_NS, list_refs
from adw.git.repo import Repo
from adw.git.runner import git
from adw.git.worktrees import MergeResult, Strategy, Worktrees
from adw.sdlc.pipeline import sdlc_workflow, worktree_name
from adw.workflow.engine import new_workflow_id
from adw.workflow.models import BEST_OF_PHASE, BestOf, Severity, Task, TaskState, Workflow
from adw.workflow.store import Store

MAX_CANDIDATES = 10
AGENTS: tuple[str, ...] = get_args(AgentKind)


class Candidate(BaseModel):
    """One row of `adw compare`: what a candidate's change breaks and adds, its size, cost and time."""

    number: int
    workflow: str
    worktree: str
    agent: str
    model: str
    state: TaskState
    reason: str = ""
    new_test_failures: int | None  # None: the test phase did not run (or has not yet)
    new_findings: int | None  # new review findings; None: the review did not run
    files: int = 0
    insertions: int = 0
    deletions: int = 0
    cost_usd: float | None = None
    seconds: float | None = None
    rank: int = 0
    reasons: list[str] = []


class Comparison(BaseModel):
    group: str
    spec: str | None
    candidates: list[Candidate]  # best first


class Archived(BaseModel):
    number: int
    worktree: str
    path: Path
    archive_ref: str | None  # None: its worktree was already gone


class PickResult(BaseModel):
    group: str
    picked: int
    worktree: str
    merge: MergeResult | None  # None: the branch was merged already (a pick run again)
    archived: list[Archived]
    message: str


def best_of_workflows(
    repo_root: Path, spec: Path, config: AdwConfig, count: int, agents: list[str] | None = None,
    models: list[str] | None = None, existing: set[str] | None = None,
) -> list[Workflow]:
    """`count` SDLC workflows of `spec` in worktrees `<stem>-1 … <stem>-count`, candidate i's build phase run by
    `agents[i]` and `models[i]` (a shorter list is repeated; none: as configured). `existing` holds the names of
    the worktrees already there: any of them refuses the run. Nothing is created here."""
    if not 2 <= count <= MAX_CANDIDATES:
        raise AdwError(f"--best-of {count}: expected a number from 2 to {MAX_CANDIDATES}", "e.g. --best-of 3")
    unknown = [agent for agent in agents or [] if agent not in AGENTS]
    if unknown:
        raise AdwError(f"--agents: unknown agent {', '.join(unknown)}", f"the agents are {', '.join(AGENTS)}")
    for flag, values in (("--agents", agents), ("--models", models)):
        if values is not None and (not values or len(values) > count or not all(values)):
            raise AdwError(f"{flag}: expected 1 to {count} comma-separated names, got {','.join(values)!r}",
                           f"e.g. {flag} {'claude,codex' if flag == '--agents' else 'opus,sonnet'}")
    if not spec.is_file():
        raise AdwError(f"no such spec: {spec}", "pass a Markdown file, e.g. `adw sdlc specs/a.md --best-of 3`")
    stem = worktree_name(spec)
    if not stem:
        raise AdwError(f"no worktree name can be made from spec {spec.name}", "rename it with letters or digits")
    names = [f"{stem}-{number}" for number in range(1, count + 1)]
    there = [name for name in names if name in (existing or set())]
    if there:
        raise AdwError(f"worktree(s) {', '.join(there)} already exist, from an earlier best-of run of {spec.name}",
                       "compare and pick it (`adw compare ID`, `adw pick ID N`), or remove those worktrees")
    group = new_workflow_id(f"{stem}-best")
    workflows = []
    for number, name in enumerate(names, start=1):
        workflow = sdlc_workflow(repo_root, spec, config, name)
        best_of = BestOf(group=group, number=number, agent=agents[(number - 1) % len(agents)] if agents else None,
                         model=models[(number - 1) % len(models)] if models else None)
        build = workflow.task(BEST_OF_PHASE)
        assert build.config is not None
        build.config = best_of.build_config(build.config)
        build.agent = build.config.agent
        workflow.best_of = best_of
        workflows.append(workflow)
    return workflows


def candidates_of(store: Store, ident: str) -> list[Workflow]:
    found = store.best_of(ident)
    if not found:
        raise AdwError(f"no best-of run {ident!r}", "pass the id `adw sdlc --best-of` printed, or one of its "
                       "workflows' ids (see `adw status`)")
    return found


async def compare(store: Store, ident: str) -> Comparison:
    workflows = candidates_of(store, ident)
    rows = [await _row(workflow) for workflow in workflows]
    ranked = sorted(rows, key=lambda row: (*_key(row), row.number))
    for rank, row in enumerate(ranked, start=1):
        row.rank = rank
        row.reasons = _facts(row) + ([_versus(row, ranked[rank - 2])] if rank > 1 else ["best of the candidates"])
    first = workflows[0]
    assert first.best_of is not None
    return Comparison(group=first.best_of.group, spec=first.spec, candidates=ranked)


def chosen_candidate(workflows: list[Workflow], number: int) -> Workflow:
    """Candidate `number`, if it can be picked: it succeeded (its work is committed) and no candidate still runs."""
    chosen = next((wf for wf in workflows if wf.best_of and wf.best_of.number == number), None)
    numbers = ", ".join(str(wf.best_of.number) for wf in workflows if wf.best_of)
    if chosen is None or chosen.worktree is None:
        raise AdwError(f"no candidate {number} in this best-of run", f"its candidates are {numbers}")
    running = [wf.name for wf in workflows if wf.state in (TaskState.RUNNING, TaskState.PENDING)]
    if running:
        raise AdwError(
            f"candidate(s) {', '.join(running)} still running", "wait for them, or `adw cancel` them",
            "wait for them, or cancel them in the Workflows view",
        )
    if chosen.state is not TaskState.SUCCEEDED:
        raise AdwError(f"candidate {number} ({chosen.name}) did not finish: {chosen.state.value}"
                       + (f" ({chosen.reason})" if chosen.reason else "") + "; its work is not committed",
                       f"resume it (`adw resume {chosen.id}`) or pick another; `adw compare` ranks them",
                       "resume it or pick another", chosen.next_steps())
    return chosen


async def pick(store: Store, ident: str, number: int, strategy: Strategy = "merge", merge: bool = True) -> PickResult:
    """Merge candidate `number` (its merge preview must be clean; `merge=False` keeps its branch as it is, for a
    pull request) and archive every other candidate's worktree (`adw worktree restore NAME` brings one back).
    Run again after an interruption, it finishes the job."""
    workflows = candidates_of(store, ident)
    chosen = chosen_candidate(workflows, number)
    assert chosen.worktree is not None
    manager = await Worktrees.open(chosen.repo)
    preview = await manager.merge_preview(chosen.worktree)
    merged: MergeResult | None = None
    if merge and preview.files:  # nothing to bring: merged already by an earlier pick that was interrupted
        if not preview.clean:
            raise WorktreeError(f"candidate {number} conflicts with {preview.target} in "
                                f"{', '.join(preview.conflicts)}; nothing was merged or archived",
                                f"merge it by hand (`adw worktree merge {chosen.worktree}`) or pick another")
        merged = await manager.merge(chosen.worktree, strategy=strategy)
    present = {info.name for info in await manager.all()}
    archived = []
    for workflow in workflows:
        if workflow is chosen or workflow.worktree is None or workflow.best_of is None:
            continue
        ref = None
        if workflow.worktree in present:
            ref = (await manager.remove(workflow.worktree, archive=True)).archive_ref
        archived.append(Archived(number=workflow.best_of.number, worktree=workflow.worktree,
                                 path=Path(workflow.cwd), archive_ref=ref))
    target = merged.preview.target if merged else preview.target
    message = f"picked candidate {number} ({chosen.worktree}): " + (
        merged.message if merged else f"already merged into {target}" if merge else f"kept {preview.source} as it is")
    saved = [a.worktree for a in archived if a.archive_ref]
    if saved:
        message += f"; archived {', '.join(saved)} (bring one back with `adw worktree restore NAME`)"
    assert chosen.best_of is not None
    return PickResult(group=chosen.best_of.group, picked=number, worktree=chosen.worktree, merge=merged,
                      archived=archived, message=message)


async def _row(workflow: Workflow) -> Candidate:
    assert workflow.best_of is not None and workflow.worktree is not None
    build = workflow.task(BEST_OF_PHASE)
    test, review = _ran(workflow, "test"), _ran(workflow, "review")
    files, insertions, deletions = await _size(workflow)
    started, finished = workflow.started_at, workflow.finished_at
    return Candidate(
        number=workflow.best_of.number, workflow=workflow.id, worktree=workflow.worktree, agent=build.agent,
        model=build.config.model if build.config else "", state=workflow.state, reason=workflow.reason,
        new_test_failures=sum(f.severity is Severity.ERROR for f in test.findings) if test else None,
        new_findings=len(review.findings) if review else None, files=files, insertions=insertions,
        deletions=deletions, cost_usd=workflow.usage.cost_usd,
        seconds=finished - started if started is not None and finished is not None else None,
    )


def _ran(workflow: Workflow, task_id: str) -> Task | None:
    task = workflow.task(task_id)
    return task if task.state in (TaskState.SUCCEEDED, TaskState.FAILED) else None


async def _size(workflow: Workflow) -> tuple[int, int, int]:
    """Files and lines the candidate changed since its base commit: its worktree's files as they are now,
    committed or not (a candidate that failed its tests committed nothing); its branch once the worktree is gone."""
    if workflow.base_commit is None or workflow.worktree is None:
        return 0, 0, 0
    path = Path(workflow.cwd)
    if path.is_dir():
        state, _ = await (await Checkpoints.open(path)).snapshot()
        target = state.tree
    else:  # archived (by a pick): the archive holds all of it; else what its branch holds
        repo = await Repo.discover(workflow.repo)
        archives = sorted(list_refs(repo.common_dir, f"{ARCHIVE_NS}/{ref_id(workflow.worktree)}/").items())
        branch = workflow.task("worktree").outputs.get("branch")
        if archives:
            target = archives[-1][1]
        elif branch and (found := await git("rev-parse", "-q", "--verify", f"refs/heads/{branch}",
                                            cwd=workflow.repo, ok_codes=(0, 1))).returncode == 0:
            target = found.stdout.strip()
        else:
            return 0, 0, 0
        path = repo.root
    out = await git("diff", "--numstat", "-z", "--no-renames", workflow.base_commit, target, cwd=path)
    files = insertions = deletions = 0
    for record in out.stdout.split("\0"):
        added, _, rest = record.partition("\t")
        removed, _, name = rest.partition("\t")
        if name:
            files += 1
            insertions += int(added) if added.isdigit() else 0
            deletions += int(removed) if removed.isdigit() else 0
    return files, insertions, deletions


def _key(row: Candidate) -> tuple[float, float, float]:
    """Regressions first, then findings, then size; a check that did not run counts as the worst."""
    failures = math.inf if row.new_test_failures is None else row.new_test_failures
    findings = math.inf if row.new_findings is None else row.new_findings
    return failures, findings, row.insertions + row.deletions


def _facts(row: Candidate) -> list[str]:
    facts = [
        "tests did not run" + (f" ({row.state.value}: {row.reason})" if row.reason else "")
        if row.new_test_failures is None else _count(row.new_test_failures, "new test failure"),
        "review did not run" if row.new_findings is None else _count(row.new_findings, "new review finding"),
        f"+{row.insertions} -{row.deletions} in {row.files} file(s)",
    ]
    return facts


def _versus(row: Candidate, above: Candidate) -> str:
    for (mine, theirs), what in zip(zip(_key(row), _key(above), strict=True),
                                    ("new test failures", "new review findings", "changed lines"), strict=True):
        if mine != theirs:
            return f"below #{above.number}: more {what} ({_shown(mine)} vs {_shown(theirs)})"
    return f"tied with #{above.number}; listed by number"


def _count(number: int, noun: str) -> str:
    return f"no {noun}s" if number == 0 else f"{number} {noun}{'' if number == 1 else 's'}"


def _shown(value: float) -> str:
    return "not run" if value == math.inf else str(int(value))
