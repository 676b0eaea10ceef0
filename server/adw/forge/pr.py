"""`adw pr`: a finished workflow's branch pushed, a draft pull request created or updated (the same one on every
run), its body summing up the phases, and the outcome commented on the issue the workflow came from."""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import BaseModel

from adw.errors import AdwError
from adw.forge.issues import IssueSpec, issue_of_spec
from adw.forge.providers import Comment, Provider, PullRequest
from adw.forge.push import PushResult, push_branch
from adw.git.runner import git
from adw.workflow.models import Finding, TaskState, Workflow

# A hidden marker that makes a rerun find its own issue comment again.
_COMMENT_MARK = "<!-- adw:issue-comment {branch} -->"
_FINDINGS_SHOWN = 15


class PrOutcome(BaseModel):
    workflow: str
    branch: str
    base: str
    push: PushResult
    pull_request: PullRequest
    issue: int | None = None
    comment: Comment | None = None
    message: str


def branch_of(workflow: Workflow) -> tuple[str, str]:
    """The workflow's branch and the branch it started from (its pull request's target)."""
    if not workflow.state.done:
        raise AdwError(
            f"workflow {workflow.id} is still {workflow.state.value}",
            f"wait for it to finish (`adw status {workflow.id} --watch`), then open its pull request",
        )
    outputs = next((task.outputs for task in workflow.tasks if task.id == "worktree"), {})
    branch, base = outputs.get("branch"), outputs.get("base")
    if not branch:
        raise AdwError(
            f"workflow {workflow.id} made no branch (its worktree step did not succeed)",
            f"resume it first (`adw resume {workflow.id}`)",
            "resume it first",
            workflow.next_steps(),
        )
    return str(branch), str(base or "")


async def open_pull_request(
    root: Path, workflow: Workflow, provider: Provider, *, base: str | None = None
) -> PrOutcome:
    """Push, then create or update the draft, then comment on the issue. Every step is safe to repeat."""
    branch, started_from = branch_of(workflow)
    target = (base or started_from).removeprefix("refs/heads/")
    if not target or target == "HEAD":
        raise AdwError(
            f"workflow {workflow.id} did not start from a branch, so the pull request has no target",
            "name the branch to merge into: `adw pr ID --base main`",
        )
    if workflow.base_commit and not await _ahead(root, workflow.base_commit, branch):
        raise AdwError(
            f"{branch} has no commit beyond its base: there is nothing to propose",
            f"see why in `adw status {workflow.id}`, then resume or rerun the workflow",
            "see why in its task logs, then resume or rerun the workflow",
            workflow.next_steps(),
        )
    issue = issue_of_spec(workflow.spec)
    title = _title(workflow, issue)
    body = await pull_request_body(root, workflow, branch, issue, provider)
    pushed = await push_branch(root, provider.forge.remote, branch)
    pr = await provider.find_pull_request(branch)
    pr = await (
        provider.update_pull_request(pr, title, body)
        if pr
        else provider.create_pull_request(branch, target, title, body)
    )
    comment = None
    if issue is not None:
        comment = await _comment(provider, issue.issue.number, branch, _issue_comment(workflow, pr, branch))
    verb = "opened draft" if pr.created else "updated"
    return PrOutcome(
        workflow=workflow.id,
        branch=branch,
        base=target,
        push=pushed,
        pull_request=pr,
        issue=issue.issue.number if issue else None,
        comment=comment,
        message=f"{verb} {pr.url} ({branch} → {target}, push: {pushed.mode})",
    )


async def _ahead(root: Path, base_commit: str, branch: str) -> bool:
    found = await git("rev-list", "--count", f"{base_commit}..refs/heads/{branch}", cwd=root, ok_codes=(0, 128))
    return found.returncode == 0 and found.stdout.strip() not in ("", "0")


async def _comment(provider: Provider, number: int, branch: str, body: str) -> Comment:
    """ADW's one comment per branch on the issue: edited on a rerun, not repeated."""
    mark = _COMMENT_MARK.format(branch=branch)
    mine = next((c for c in await provider.comments(number) if mark in c.body), None)
    text = f"{body}\n\n{mark}"
    return await (provider.edit_comment(number, mine, text) if mine else provider.add_comment(number, text))


def _title(workflow: Workflow, issue: IssueSpec | None) -> str:
    if issue is not None:
        return issue.issue.title
    if workflow.spec:
        try:
            for line in Path(workflow.spec).read_text(encoding="utf-8").splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
        except (OSError, UnicodeDecodeError):
            pass
    return workflow.name


def _elapsed(workflow: Workflow) -> str:
    if workflow.started_at is None:
        return "not run"
    seconds = (workflow.finished_at or time.time()) - workflow.started_at
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _cost(workflow: Workflow) -> str:
    cost = workflow.usage.cost_usd
    return f"${cost:.4f}" if cost is not None else "not reported by the agents"


def _judged(workflow: Workflow) -> list[tuple[str, str, str, int, int, int]]:
    """Per test/review task: state, summary, and new / pre-existing / fixed findings against the base."""
    rows = []
    for task in workflow.tasks:
        if task.phase not in ("test", "review"):
            continue
        baseline = task.outputs.get("baseline") or {}
        pre, fixed = len(baseline.get("pre_existing", [])), len(baseline.get("fixed", []))
        rows.append((task.id, task.agent, task.state.value, len(task.findings), pre, fixed))
    return rows


def _finding_line(task_id: str, finding: Finding) -> str:
    where = f"{finding.path}:{finding.line}" if finding.line else finding.path
    first = (finding.message.strip().splitlines() or [""])[0][:200]
    return f"- `{where}` {first} ({task_id})"


async def pull_request_body(
    root: Path, workflow: Workflow, branch: str, issue: IssueSpec | None, provider: Provider
) -> str:
    lines = [
        f"Draft opened by ADW from workflow `{workflow.id}` (**{workflow.state.value}**"
        + (f": {workflow.reason}" if workflow.reason else "")
        + f"), in {_elapsed(workflow)}; cost {_cost(workflow)}.",
        "",
    ]
    if issue is not None:
        lines += [provider.closes(issue.issue.number), ""]
    if workflow.base_commit:
        stat = await git("diff", "--stat=100", "--summary", workflow.base_commit, f"refs/heads/{branch}", cwd=root)
        lines += ["### What changed", "", "```", stat.stdout.rstrip() or "(no change)", "```", ""]
    judged = _judged(workflow)
    if judged:
        base = (workflow.base_commit or "")[:12]
        lines += [
            f"### Tests and review, against the base commit {base}",
            "",
            "| task | agent | state | new | already failing on the base | fixed |",
            "|---|---|---|---|---|---|",
        ]
        lines += [f"| {t} | {a} | {s} | {n} | {p} | {f} |" for t, a, s, n, p, f in judged]
        new = [(task.id, f) for task in workflow.tasks if task.phase in ("test", "review") for f in task.findings]
        if new:
            lines += ["", "New failures and findings:", ""]
            lines += [_finding_line(task_id, f) for task_id, f in new[:_FINDINGS_SHOWN]]
            if len(new) > _FINDINGS_SHOWN:
                lines.append(f"- … {len(new) - _FINDINGS_SHOWN} more: `adw status {workflow.id} --json`")
        lines.append("")
    lines += ["### Phases", "", "| phase | agent | state | time | cost | summary |", "|---|---|---|---|---|---|"]
    for task in workflow.tasks:
        elapsed = f"{task.elapsed:.1f}s" if task.elapsed is not None else ""
        cost = f"${task.usage.cost_usd:.4f}" if task.usage.cost_usd is not None else ""
        summary = (task.summary or task.reason).replace("|", "\\|").replace("\n", " ")[:160]
        lines.append(f"| {task.phase} | {task.agent} | {task.state.value} | {elapsed} | {cost} | {summary} |")
    return "\n".join(lines)


def _issue_comment(workflow: Workflow, pr: PullRequest, branch: str) -> str:
    judged = _judged(workflow)
    new = sum(row[3] for row in judged)
    verdict = "succeeded" if workflow.state is TaskState.SUCCEEDED else workflow.state.value
    checks = "; ".join(f"{task}: {new_count} new" for task, _, _, new_count, _, _ in judged)
    return (
        f"ADW worked on this issue on branch `{branch}`: the workflow {verdict} in {_elapsed(workflow)} "
        f"(cost {_cost(workflow)}). Draft: {pr.url}"
        + (f"\n\nAgainst the base commit: {checks} ({new} new in all)." if judged else "")
    )
