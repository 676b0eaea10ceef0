"""An issue as a spec: its title, body, labels and comments written as one Markdown spec (so file blocks work
as in any spec), a worktree name from its number and title, and phase prompts chosen by its labels.

The spec and the issue it came from are kept in `<git common dir>/adw/issues/<name>.md` and `.json`: never
committed, shared by every worktree, and found again by `adw pr` to link the pull request to the issue.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ValidationError

from adw.config import PHASES, AdwConfig, PhaseConfig, PhaseName, phase_configs
from adw.errors import AdwError
from adw.forge.providers import Issue, Provider
from adw.forge.remotes import Forge
from adw.fsutil import write_all_inside
from adw.git.repo import Repo
from adw.sdlc.pipeline import Existing, sdlc_workflows, worktree_name
from adw.workflow.models import Workflow
from adw.workflow.store import Store

IssueKind = Literal["bug", "feature", "chore"]
_TITLE_WORDS = 48  # characters of the title in the worktree name: `123-fix-the-crash-on-empty-input`
# Label words (after a `type::`, `kind/` or `type:` prefix) that say what kind of work an issue is.
_KINDS: dict[str, IssueKind] = {
    "bug": "bug",
    "defect": "bug",
    "regression": "bug",
    "crash": "bug",
    "fix": "bug",
    "feature": "feature",
    "enhancement": "feature",
    "feature request": "feature",
    "proposal": "feature",
    "chore": "chore",
    "maintenance": "chore",
    "refactor": "chore",
    "refactoring": "chore",
    "task": "chore",
    "tech debt": "chore",
    "dependencies": "chore",
    "ci": "chore",
    "docs": "chore",
    "documentation": "chore",
}

# Built-in plan and build prompts per kind, for LLM agents whose phase has no prompt of its own.
KIND_PROMPTS: dict[IssueKind, dict[PhaseName, str]] = {
    "bug": {
        "plan": "The issue below reports a bug. Find its cause in {worktree} and write a plan to PLAN.md: first a "
        "test that reproduces the bug and fails, then the smallest fix. Do not change other files. Files the "
        "scouts rank first:\n{relevant_files}\n\nIssue ({spec}):\n{spec_text}",
        "build": "Fix the bug reported below in {worktree}, following PLAN.md if present: first add a test that "
        "fails because of the bug, then make the smallest change that makes it pass without breaking other "
        "tests.\n\nIssue ({spec}):\n{spec_text}",
    },
    "feature": {
        "plan": "The issue below asks for a feature. Write an implementation plan to PLAN.md in {worktree}: the "
        "behaviour, the files to change, and the tests that will prove it. Do not change other files. Files the "
        "scouts rank first:\n{relevant_files}\n\nIssue ({spec}):\n{spec_text}",
        "build": "Implement the feature the issue below asks for in {worktree}, following PLAN.md if present, "
        "with tests for the new behaviour and its documentation.\n\nIssue ({spec}):\n{spec_text}",
    },
    "chore": {
        "plan": "The issue below is maintenance work that must not change behaviour. Write a plan to PLAN.md in "
        "{worktree}. Do not change other files. Files the scouts rank first:\n{relevant_files}\n\n"
        "Issue ({spec}):\n{spec_text}",
        "build": "Do the maintenance work the issue below describes in {worktree}, following PLAN.md if present, "
        "without changing behaviour: the existing tests must pass unchanged.\n\nIssue ({spec}):\n{spec_text}",
    },
}
_LLM_AGENTS = ("claude", "codex", "aider", "acp", "command")


class IssueSpec(BaseModel):
    """What `adw sdlc --issue` keeps beside the spec it wrote."""

    issue: Issue
    kind: IssueKind | None
    forge: Forge
    spec: str


def issue_number(text: str, forge: Forge) -> int:
    """`123`, `#123`, or the issue's URL on this repository's forge."""
    plain = text.strip().removeprefix("#")
    if plain.isdigit() and int(plain) > 0:
        return int(plain)
    found = re.fullmatch(r"https?://[^/]+/(?P<project>.+?)/(?:-/)?issues/(?P<number>\d+)/?(?:[?#].*)?", text.strip())
    if found and found["project"].lower() == forge.project.lower():
        return int(found["number"])
    raise AdwError(
        f"not an issue of {forge.project}: {text!r}",
        f"pass its number (`--issue 123`) or its URL ({forge.issue_url(123)})",
        f"give its number (123) or its URL ({forge.issue_url(123)})",
    )


def issue_kind(labels: list[str]) -> IssueKind | None:
    for label in labels:
        word = re.split(r"::|:|/", label.lower())[-1].strip().replace("-", " ").replace("_", " ")
        if word in _KINDS:
            return _KINDS[word]
    return None


def issue_name(issue: Issue) -> str:
    return worktree_name(Path(f"{issue.number}-{issue.title[:_TITLE_WORDS]}.md")) or str(issue.number)


def issue_markdown(issue: Issue) -> str:
    """The spec: a heading and the body first (the scouts read the first heading and paragraph)."""
    parts = [f"# {issue.title.strip()} (#{issue.number})\n", issue.body.strip() + "\n" if issue.body.strip() else ""]
    if issue.labels:
        parts.append(f"Labels: {', '.join(issue.labels)}\n")
    for comment in issue.comments:
        parts.append(f"## Comment by {comment.author or 'someone'}\n\n{comment.body.strip()}\n")
    parts.append(f"Source: {issue.url}\n")
    return "\n".join(part for part in parts if part)


def issue_config(config: AdwConfig, kind: IssueKind | None) -> AdwConfig:
    """The configuration with the kind's prompts: `[tool.adw.forge.prompts.<kind>]` first, then the phase's
    own prompt, then the built-in prompt of the kind (LLM agents only; built-in agents take no prompt)."""
    if kind is None:
        return config
    configured = config.forge.prompts.get(kind, {})
    current = phase_configs(config)
    phases: dict[PhaseName, PhaseConfig] = {}
    for name in PHASES:
        phase = current[name]
        prompt = configured.get(name) or phase.prompt
        if not prompt and phase.agent in _LLM_AGENTS:
            prompt = KIND_PROMPTS[kind].get(name, "")
        phases[name] = phase.model_copy(update={"prompt": prompt})
    return config.model_copy(update={"phases": phases})


def issues_dir(common_dir: Path) -> Path:
    return common_dir / "adw" / "issues"


def save_issue_spec(common_dir: Path, issue: Issue, forge: Forge, name: str) -> Path:
    """Write the spec and its record, all or nothing; returns the spec's path."""
    folder = issues_dir(common_dir)
    folder.mkdir(parents=True, exist_ok=True)
    record = IssueSpec(issue=issue, kind=issue_kind(issue.labels), forge=forge, spec=str(folder / f"{name}.md"))
    write_all_inside(folder, {f"{name}.md": issue_markdown(issue), f"{name}.json": record.model_dump_json(indent=2)})
    return folder / f"{name}.md"


def issue_of_spec(spec: str | None) -> IssueSpec | None:
    """The issue a workflow's spec was written from, when `adw sdlc --issue` wrote it."""
    if not spec:
        return None
    path = Path(spec)
    if path.parent.name != "issues" or path.parent.parent.name != "adw":
        return None
    try:
        return IssueSpec.model_validate_json(path.with_suffix(".json").read_bytes())
    except (OSError, ValidationError):
        return None


async def issue_spec(repo: Repo, provider: Provider, reference: str, config: AdwConfig) -> tuple[Path, AdwConfig]:
    """The issue read and its spec written; returns the spec and the configuration with the kind's prompts."""
    issue = await provider.issue(issue_number(reference, provider.forge))
    spec = save_issue_spec(repo.common_dir, issue, provider.forge, issue_name(issue))
    return spec, issue_config(config, issue_kind(issue.labels))


async def issue_workflows(
    repo: Repo,
    provider: Provider,
    reference: str,
    config: AdwConfig,
    *,
    existing: Existing = "refuse",
    store: Store | None = None,
) -> tuple[Path, list[Workflow]]:
    """`adw sdlc --issue N`: the issue read, its spec written, and its SDLC workflow with the kind's prompts
    (as `sdlc_workflows`, so an existing worktree is refused or suffixed the same way). Returns the spec too."""
    spec, prompted = await issue_spec(repo, provider, reference, config)
    return spec, await sdlc_workflows(repo.root, [spec], prompted, existing=existing, store=store)
