"""The SDLC pipeline: for each spec, worktree → scout → plan → build → (test ‖ review ‖ document) → commit →
merge preview, as one workflow; several specs run as several workflows at once.

Agent phases are checkpointed before and after, so any phase can be undone with `adw undo`.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from adw.config import AdwConfig, PhaseConfig, _default_phases
from adw.errors import AdwError
from adw.workflow.engine import new_workflow_id
from adw.workflow.models import Task, Workflow

PHASES = ("plan", "build", "test", "review", "document")
_DEPS = {
    "plan": ["scout"],
    "build": ["plan"],
    "test": ["build"],
    "review": ["build"],
    "document": ["build"],
}


def phase_configs(config: AdwConfig) -> dict[str, PhaseConfig]:
    """Configured phases over the defaults: configuring one phase keeps the built-in agents for the rest."""
    return {**_default_phases(), **config.phases}


def sdlc_workflow(repo_root: Path, spec: Path, config: AdwConfig) -> Workflow:
    name = spec.stem
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


def sdlc_workflows(repo_root: Path, specs: list[Path], config: AdwConfig) -> list[Workflow]:
    """One workflow per spec; refuses before anything starts when a spec is missing or two share a name."""
    missing = [str(spec) for spec in specs if not spec.is_file()]
    if missing:
        raise AdwError(
            f"no such spec: {', '.join(missing)}", "pass Markdown files, e.g. `adw sdlc specs/a.md`"
        )
    twins = [stem for stem, count in Counter(spec.stem for spec in specs).items() if count > 1]
    if twins:
        raise AdwError(
            f"specs share the name {', '.join(twins)}: each spec gets a worktree named after its file stem",
            "rename one of them",
        )
    return [sdlc_workflow(repo_root, spec, config) for spec in specs]
