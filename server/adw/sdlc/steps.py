"""Steps of the SDLC pipeline that are quick local work rather than agents: create the worktree, scout it for
the plan, make the one aggregated commit, preview the merge. They implement the agent interface so that the
engine persists, resumes and reports them like any task, but they take no agent slot."""

from __future__ import annotations

from pathlib import Path

from adw.agents.base import AgentBase
from adw.errors import AdwError
from adw.git.runner import git
from adw.git.worktrees import SetupResult, Worktrees
from adw.scouts import save_report, scout
from adw.workflow.agent import AgentFactory, CancelToken
from adw.workflow.events import TaskEvents
from adw.workflow.models import AgentResult, Finding, Severity, Task, TaskState

# Used only when git has no identity at all (a fresh CI machine), so that the commit can be made.
FALLBACK_IDENTITY = ("-c", "user.name=ADW", "-c", "user.email=adw@localhost")


class CreateWorktreeStep(AgentBase):
    """Creates the workflow's worktree and points the workflow at it (cwd, base commit, port variables)."""

    async def run(self, task: Task, worktree: Path, events: TaskEvents, cancel: CancelToken) -> AgentResult:
        name = self.workflow.worktree or self.workflow.name
        try:
            worktrees = await Worktrees.open(self.workflow.repo)
            # A resumed run adopts the worktree it made before a crash instead of failing on "already exists".
            created = await worktrees.create(name, created_for=self.workflow.id)
        except AdwError as exc:
            return AgentResult.failed(str(exc))
        info = created.worktree
        if created.setup and created.setup.returncode != 0:
            return await self._setup_failed(worktrees, name, created.setup)
        self.workflow.cwd = str(info.path)
        self.workflow.env = {**self.workflow.env, **created.env}
        self.workflow.base_commit = info.head
        events.progress(created.message)
        return AgentResult(
            status="succeeded",
            summary=created.message,
            outputs={
                "path": str(info.path),
                "branch": info.branch,
                "base": info.base,
                "base_commit": info.head,
            },
        )


    async def _setup_failed(self, worktrees: Worktrees, name: str, setup: SetupResult) -> AgentResult:
        """The worktree is taken back, so that a resume creates it again and runs the setup once more (a kept
        worktree would be adopted as it is, set up or not)."""
        output = "\n".join(setup.output.strip().splitlines()[-5:])
        message = f"the worktree setup command `{' '.join(setup.command)}` exited with {setup.returncode}"
        message += f": {output}" if output else ""
        try:
            await worktrees.remove(name, force=True)
        except AdwError as exc:
            message += f"; the worktree could not be removed: {exc.message}"
        else:
            message += "; nothing was built or tested, and the worktree was removed"
        return AgentResult.failed(str(AdwError(message, "fix [tool.adw.worktree] setup, then resume the workflow")))


class ScoutStep(AgentBase):
    """Runs the seven scouts on the new worktree for the spec's task and leaves their report in
    `scout_outputs/relevant_files.json`, where the plan phase reads it (`{scout_report}` and
    `{relevant_files}` in agent prompts). A scout failure is a warning: the plan goes on without the report."""

    async def run(self, task: Task, worktree: Path, events: TaskEvents, cancel: CancelToken) -> AgentResult:
        spec = Path(self.workflow.spec) if self.workflow.spec else None
        try:
            wanted = (task_of_spec(spec.read_text(encoding="utf-8")) if spec else "") or self.workflow.name
            report = await scout(wanted, worktree, follow_up=False)  # one query per worktree
            saved = await save_report(report, worktree)
        except (AdwError, OSError, ValueError) as exc:
            message = f"no scout report, the plan goes on without it: {exc}"
            finding = Finding(path=str(spec or worktree), severity=Severity.WARNING, source="scouts", message=message)
            events.finding(finding)
            return AgentResult(status="succeeded", summary="no scout report", findings=[finding])
        for location in report.locations[:5]:
            events.progress(f"{location.path}:{location.line} {location.reason}")
        others = report.tests + report.docs + report.config
        shown = ", ".join(report.files[:3]) or (f"no source file; see {', '.join(others[:3])}" if others else "nothing")
        return AgentResult(
            status="succeeded",
            summary=f"{report.count} file(s) to read first: {shown}",
            outputs={"report": str(saved), "files": report.files, "tests": report.tests, "task": wanted},
        )


def task_of_spec(markdown: str) -> str:
    """What the scouts look for: the spec's first heading and the first paragraph of prose after it."""
    heading = ""
    paragraph: list[str] = []
    fenced = False
    for line in markdown.splitlines():
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            fenced = not fenced
            if paragraph:
                break
            continue
        if fenced:
            continue
        if stripped.startswith("#"):
            if paragraph:
                break
            heading = heading or stripped.lstrip("#").strip()
        elif stripped:
            paragraph.append(stripped)
        elif paragraph:
            break
    return " ".join([heading, *paragraph]).strip()[:_SCOUT_TASK_CHARS]


_SCOUT_TASK_CHARS = 500  # a task, not a document: longer text only dilutes the terms


class CommitStep(AgentBase):
    """`git add -A` and one commit whose message sums up every phase."""

    async def run(self, task: Task, worktree: Path, events: TaskEvents, cancel: CancelToken) -> AgentResult:
        try:
            await git("add", "-A", cwd=worktree)  # the scouts' report is in info/exclude (`save_report`)
            listed = await git("diff", "--cached", "--name-status", "--no-renames", "-z", cwd=worktree)
            fields = [field for field in listed.stdout.split("\0") if field]
            staged = list(zip(fields[1::2], fields[0::2], strict=True))  # (path, status letter)
            if staged:
                identity = () if await has_identity(worktree) else FALLBACK_IDENTITY
                await git(*identity, "commit", "-q", "-F", "-", cwd=worktree, input=self.message(staged))
            else:
                # Resumed after a kill that came once the commit was made: report that commit again.
                last = await git("log", "-1", "--format=%B", cwd=worktree, ok_codes=(0, 128))
                if f"ADW-Workflow: {self.workflow.id}" not in last.stdout.splitlines():
                    return AgentResult(status="succeeded", summary="nothing to commit")
            head = (await git("rev-parse", "HEAD", cwd=worktree)).stdout.strip()
            changed = await git("diff-tree", "--no-commit-id", "--name-only", "-z", "-r", "HEAD", cwd=worktree)
            files = [path for path in changed.stdout.split("\0") if path]
        except AdwError as exc:
            return AgentResult.failed(f"commit failed: {exc.message}")
        events.progress(f"committed {head[:12]}")
        return AgentResult(
            status="succeeded",
            summary=f"committed {head[:12]} ({len(files)} file(s))",
            files_changed=files,
            outputs={"commit": head},
        )

    def message(self, staged: list[tuple[str, str]]) -> str:
        """The title, each phase's summary, cost, then every committed file with its status (A, M, D, T)."""
        workflow = self.workflow
        title = f"adw: {Path(workflow.spec).stem if workflow.spec else workflow.name}"
        lines = [title, ""]
        if workflow.spec:
            lines.append(f"Spec: {Path(workflow.spec).name}")
        for task in workflow.tasks:
            if task.kind == "agent" and task.state is TaskState.SUCCEEDED:
                lines.append(f"- {task.phase} ({task.agent}): {task.summary or 'done'}")
        usage = workflow.usage
        if usage.cost_usd is not None:
            lines.append(f"Cost: ${usage.cost_usd:.4f}")
        if usage.input_tokens is not None or usage.output_tokens is not None:
            lines.append(f"Tokens: {usage.input_tokens or 0} in, {usage.output_tokens or 0} out")
        lines += ["", f"Committed {len(staged)} file(s):", *(f"{status} {path}" for path, status in staged)]
        lines += ["", f"ADW-Workflow: {workflow.id}"]
        return "\n".join(lines) + "\n"


class MergePreviewStep(AgentBase):
    """Would the branch merge cleanly into its base? Conflicts become warnings, not a failure: the work is
    committed and the user decides how to merge."""

    async def run(self, task: Task, worktree: Path, events: TaskEvents, cancel: CancelToken) -> AgentResult:
        name = self.workflow.worktree or self.workflow.name
        try:
            preview = await (await Worktrees.open(self.workflow.repo)).merge_preview(name)
        except AdwError as exc:
            return AgentResult.failed(f"merge preview failed: {exc}")
        findings = [
            Finding(
                path=path,
                severity=Severity.WARNING,
                source="merge-preview",
                message=f"conflicts when {preview.source} is merged into {preview.target}",
            )
            for path in preview.conflicts
        ]
        for finding in findings:
            events.finding(finding)
        if preview.clean:
            summary = f"{preview.source} merges cleanly into {preview.target}"
        else:
            summary = f"{preview.source} conflicts with {preview.target} in {', '.join(preview.conflicts)}"
        summary += f": {len(preview.files)} file(s), +{preview.insertions} -{preview.deletions}"
        return AgentResult(
            status="succeeded", summary=summary, findings=findings, outputs=preview.model_dump(mode="json")
        )


async def has_identity(cwd: Path) -> bool:
    for variable in ("GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT"):
        if (await git("var", variable, cwd=cwd, ok_codes=(0, 128))).returncode != 0:
            return False
    return True


STEP_AGENTS: dict[str, AgentFactory] = {
    "worktree": CreateWorktreeStep,
    "scout": ScoutStep,
    "commit": CommitStep,
    "merge-preview": MergePreviewStep,
}
