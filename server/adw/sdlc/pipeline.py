"""The SDLC pipeline: for each spec, worktree → scout → plan → build → (test ‖ review ‖ document) → commit →
merge preview, as one workflow; several specs run as several workflows at once.

Agent phases are checkpointed before and after, so any phase can be undone with `adw undo`.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from adw.config import PHASES, AdwConfig, phase_configs
from adw.errors import Action, AdwError, RerunAction
from adw.git.repo import Repo
from adw.git.runner import git
from adw.git.worktrees import Worktrees
from adw.workflow.engine import new_workflow_id
from adw.workflow.models import Task, TaskState, Workflow
from adw.workflow.store import Store

__all__ = ["PHASES", "ExistingWorktree", "WorktreeExistsError", "phase_configs", "sdlc_workflows", "worktree_name"]

# What to do with a spec whose worktree is already there: see `sdlc_workflows`.
Existing = Literal["refuse", "again"]

_DEPS = {
    "plan": ["scout"],
    "build": ["plan"],
    "test": ["build"],
    "review": ["build"],
    "document": ["build"],
}
_MAX_NAME = 100  # a file name of one component, with room for the `-N` of a rerun


class ExistingWorktree(BaseModel):
    """A spec whose worktree is already there, and the newest stored SDLC workflow that ran in it (None when the
    worktree was made another way, or the store was not given)."""

    spec: str
    worktree: str
    path: str
    workflow_id: str | None = None
    workflow_state: TaskState | None = None


def _rerun_actions(existing: list[ExistingWorktree]) -> list[Action]:
    """The editor's buttons for specs whose worktrees exist: Resume when every one holds a workflow left
    unfinished, else run them in new worktrees, or archive and remove the worktrees and run them again."""
    specs = [entry.spec for entry in existing]
    resumable = all(
        entry.workflow_id and entry.workflow_state not in (None, TaskState.SUCCEEDED, TaskState.RUNNING)
        for entry in existing
    )
    actions: list[Action] = [RerunAction(title="Resume", specs=specs, existing="resume")] if resumable else []
    return [
        *actions,
        RerunAction(title="Run in a New Worktree", specs=specs, existing="again"),
        RerunAction(title="Remove and Rerun", specs=specs, existing="replace"),
    ]


class WorktreeExistsError(AdwError):
    """Raised before anything started: the worktrees of `existing` are already there. Each surface offers its
    choices: resume `workflow_id` (`Engine.prepare_resume`), start again in a new suffixed worktree
    (`existing="again"`), or remove the worktree and start again."""

    def __init__(self, existing: list[ExistingWorktree]) -> None:
        self.existing = existing
        described = "; ".join(
            f"{Path(e.spec).name} has {e.path}"
            + (f" (workflow {e.workflow_id}, {e.workflow_state.value})" if e.workflow_id and e.workflow_state else "")
            for e in existing
        )
        super().__init__(
            f"a worktree exists for {len(existing)} spec(s): {described}", _choices(existing),
            actions=_rerun_actions(existing),
        )


def _choices(existing: list[ExistingWorktree]) -> str:
    """What to do, from each workflow's real state: a succeeded one's worktree is there to be opened or merged (no
    resume: nothing is left to run), a stopped one can be resumed, a running one waited for."""
    states = {entry.workflow_state if entry.workflow_id else None for entry in existing}
    stopped = states - {None, TaskState.SUCCEEDED, TaskState.RUNNING}
    if len(existing) == 1:
        [state] = states
        lead = ("its workflow succeeded: open or merge the worktree, " if state is TaskState.SUCCEEDED
                else "its workflow is still running: wait for it or cancel it, " if state is TaskState.RUNNING
                else "no ADW workflow ran there: " if state is None
                else "resume its workflow, ")
        return lead + "run the spec again in a new worktree, or remove the worktree first"
    leads = [
        *(["open or merge the worktrees whose workflow succeeded"] if TaskState.SUCCEEDED in states else []),
        *(["resume the workflows that stopped"] if stopped else []),
        *(["wait for the running workflows or cancel them"] if TaskState.RUNNING in states else []),
    ]
    return ", ".join([*leads, "run the specs again in new worktrees, or remove the worktrees first"])


def worktree_name(spec: Path) -> str:
    """The worktree and branch name of a spec: its file stem in lower case without accents, every run of
    characters other than letters, digits, '.' and '_' made one '-' (`My Spec.md` → `my-spec`), and nothing
    git refuses in a branch name ('..', a leading '.', a trailing '.lock'). Empty when nothing is left."""
    plain = unicodedata.normalize("NFKD", spec.stem).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"\.{2,}", ".", re.sub(r"[^a-z0-9._]+", "-", plain)).strip("-._")
    return slug.removesuffix(".lock")[:_MAX_NAME].strip("-._")


def sdlc_workflow(repo_root: Path, spec: Path, config: AdwConfig, name: str | None = None) -> Workflow:
    name = name or worktree_name(spec)
    phases = phase_configs(config)
    tasks = [
        Task(id="worktree", phase="worktree", agent="worktree", kind="step"),
        Task(id="scout", phase="scout", agent="scout", kind="step", deps=["worktree"]),
    ]
    tasks += [
        Task(
            id=phase,
            phase=phase,
            agent=phases[phase].agent,
            deps=_DEPS[phase],
            config=phases[phase],
            checkpoint=True,
        )
        for phase in PHASES
    ]
    tasks += [
        Task(id="commit", phase="commit", agent="commit", kind="step", deps=["test", "review", "document"]),
        Task(id="merge-preview", phase="merge-preview", agent="merge-preview", kind="step", deps=["commit"]),
    ]
    return Workflow(
        id=new_workflow_id(name),
        name=name,
        kind="sdlc",
        repo=str(repo_root),
        cwd=str(repo_root),
        spec=str(spec.resolve()),
        worktree=name,
        tasks=tasks,
    )


async def sdlc_workflows(
    repo_root: Path,
    specs: list[Path],
    config: AdwConfig,
    *,
    existing: Existing = "refuse",
    store: Store | None = None,
) -> list[Workflow]:
    """One workflow per spec, each in a worktree named after the spec (`worktree_name`). Everything is decided
    here, before any workflow starts; nothing is created or stored.

    Raises AdwError when a spec is missing, gives no usable name, or two specs give the same name. When the
    worktree of a spec is already there: `existing="refuse"` raises `WorktreeExistsError` listing those specs
    with the newest SDLC workflow `store` holds for each worktree (so the caller can offer to resume it);
    `existing="again"` names the new worktree `<name>-2`, `<name>-3`, …: the first whose worktree and branch
    are both free and that no other spec of this run takes.
    """
    missing = [str(spec) for spec in specs if not spec.is_file()]
    if missing:
        raise AdwError(f"no such spec: {', '.join(missing)}", "pass Markdown files, e.g. `adw sdlc specs/a.md`")
    nameless = [spec.name for spec in specs if not worktree_name(spec)]
    if nameless:
        raise AdwError(
            f"no worktree name can be made from spec {', '.join(nameless)}",
            "rename it with letters or digits, e.g. specs/add-numbers.md",
        )
    by_name: dict[str, list[Path]] = defaultdict(list)
    for spec in specs:
        by_name[worktree_name(spec)].append(spec)
    twins = {name: found for name, found in by_name.items() if len(found) > 1}
    if twins:
        shared = "; ".join(f"{name} ({', '.join(str(spec) for spec in found)})" for name, found in twins.items())
        raise AdwError(
            f"specs share the worktree name {shared}: each spec gets a worktree named after its file name",
            "rename one of them",
        )

    worktrees = Worktrees(await Repo.discover(repo_root), config)
    registered = {info.path for info in await worktrees.all()}

    def exists(name: str) -> bool:
        path = worktrees.root / name
        return path.exists() or path.is_symlink() or path in registered

    names = [worktree_name(spec) for spec in specs]
    there = [(spec, name) for spec, name in zip(specs, names, strict=True) if exists(name)]
    if there and existing == "refuse":
        raise WorktreeExistsError([_existing(spec, name, worktrees.root / name, store) for spec, name in there])
    if there:
        prefix = config.worktree.branch_prefix
        branches = set((await git("for-each-ref", "--format=%(refname:lstrip=2)", "refs/heads", cwd=repo_root)).lines)
        taken = set(names)

        def free(name: str) -> bool:
            return name not in taken and not exists(name) and prefix + name not in branches

        for spec, name in there:
            again = _suffixed(name, free)
            taken.add(again)
            names[specs.index(spec)] = again
    return [sdlc_workflow(repo_root, spec, config, name) for spec, name in zip(specs, names, strict=True)]


def _suffixed(name: str, free: Callable[[str], bool]) -> str:
    number = 2
    while not free(f"{name}-{number}"):
        number += 1
    return f"{name}-{number}"


def _existing(spec: Path, name: str, path: Path, store: Store | None) -> ExistingWorktree:
    workflow = store.latest_in_worktree(name, kind="sdlc") if store is not None else None
    return ExistingWorktree(
        spec=str(spec.resolve()),
        worktree=name,
        path=str(path),
        workflow_id=workflow.id if workflow else None,
        workflow_state=workflow.state if workflow else None,
    )
