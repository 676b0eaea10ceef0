"""Follow-ups from the editor: `adw.server.followUp` sends a message (with the place it is about) to the agent of
a task that ran, continuing its session; a code action on the lines a workflow changed offers the same in any LSP
editor, with the instruction written in an `ADW:` comment on those lines or the diagnostics there."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from lsprotocol import types

from adw.agents.preflight import preflight_workflows
from adw.errors import AdwError
from adw.git.runner import git
from adw.lsp import params
from adw.lsp.commands import all_workflows
from adw.lsp.params import ArgumentError
from adw.lsp.server import COMMAND_PREFIX, AdwServer, path_of
from adw.workflow.models import FollowUp, Location, Workflow

# `# ADW: use a dict here`, `// adw: …`, `<!-- ADW: … -->`, `-- ADW: …`: a review comment any editor can write.
_INSTRUCTION = re.compile(r"(?:#|//|--|;|/\*|<!--)\s*adw:\s*(?P<text>.+?)\s*(?:\*/|-->)?\s*$", re.IGNORECASE)
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(?P<start>\d+)(?:,(?P<count>\d+))? @@", re.MULTILINE)


def register(server: AdwServer) -> None:
    server.adw_command(params.FollowUp, follow_up)

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.RefactorRewrite]),
    )
    async def code_action(ls: AdwServer, args: types.CodeActionParams) -> list[types.CodeAction]:
        try:
            return await _actions(ls, args)
        except AdwError as exc:  # a code action is offered or not: a problem finding one is logged, not shown
            ls.log(f"ADW: no follow-up action for {args.text_document.uri}: {exc.message}")
            return []


async def follow_up(ls: AdwServer, args: params.FollowUp) -> object:
    engine = await ls.engine_of(args.workflow)
    workflow = engine.get(args.workflow)
    location = _location(workflow, args.location) if args.location else None
    ready = engine.prepare_follow_up(workflow.id, args.task, FollowUp(message=args.message, location=location))
    task = next(task for task in ready.tasks if task.follow_up is not None)
    await preflight_workflows([ready])  # a CLI gone or logged out is an error now, not after the agent's retries
    ls.spawn(engine.run(ready))
    ls.changed("workflows")
    stale = [other.id for other in ready.tasks if other.stale]
    return {"workflow": ready.id, "task": task.id, "attempt": len(task.attempts) + 1, "stale": stale}


def _location(workflow: Workflow, where: params.FollowUpLocation) -> Location:
    """The location relative to the workflow's worktree, which is where the agent works."""
    worktree = Path(workflow.cwd).resolve()
    path = path_of(where.file, worktree).resolve()
    if not path.is_relative_to(worktree):
        raise ArgumentError(
            f"{where.file} is not in the worktree of workflow {workflow.id} ({worktree})",
            "pick a file of that worktree: the agent works there",
        )
    if where.end_line < where.start_line:
        raise ArgumentError(
            f"the location's lines run backwards ({where.start_line} to {where.end_line})",
            "give startLine ≤ endLine",
        )
    return Location(
        file=path.relative_to(worktree).as_posix(),
        start_line=where.start_line,
        end_line=where.end_line,
        selected_code=where.selected_code,
    )


async def _actions(ls: AdwServer, args: types.CodeActionParams) -> list[types.CodeAction]:
    start, end = args.range.start.line + 1, args.range.end.line + 1
    if args.range.end.character == 0 and end > start:
        end -= 1  # a selection of whole lines ends at the start of the next one
    # Editors ask at every move of the cursor: the cheap test first (an instruction here), the store and git after.
    lines = ls.workspace.get_text_document(args.text_document.uri).source.splitlines()[start - 1 : end]
    message = _instruction(lines) or "; ".join(d.message for d in args.context.diagnostics)
    if not message:
        return []
    path = path_of(args.text_document.uri, ls.root).resolve()
    workflow = await _workflow_of(ls, path)
    if workflow is None:
        return []
    worktree = Path(workflow.cwd).resolve()
    changed = await changed_lines(worktree, path.relative_to(worktree).as_posix(), workflow.base_commit or "HEAD")
    if not any(start <= line <= end for line in changed):
        return []
    task = next(task for task in reversed(workflow.tasks) if task.session is not None)
    where = params.FollowUpLocation(
        file=path.relative_to(worktree).as_posix(), start_line=start, end_line=end, selected_code="\n".join(lines)
    )
    arguments = {
        "workflow": workflow.id,
        "task": task.id,
        "message": message,
        "location": where.model_dump(by_alias=True),
    }
    return [
        types.CodeAction(
            title=f"ADW: Ask the agent ({task.id}) to change this: {message[:60]}",
            kind=types.CodeActionKind.RefactorRewrite,
            diagnostics=list(args.context.diagnostics) or None,
            command=types.Command(
                title="Ask the agent to change this", command=COMMAND_PREFIX + "followUp", arguments=[arguments]
            ),
        )
    ]


async def _workflow_of(ls: AdwServer, path: Path) -> Workflow | None:
    """The newest workflow whose worktree holds `path` and one of whose tasks has an agent session."""
    try:
        folder = await ls.folder_of(path)
    except AdwError:  # a file of no repository of the workspace: nothing to offer, nothing to say
        return None
    for workflow in await all_workflows(await ls.engine(folder)):
        if path.is_relative_to(Path(workflow.cwd).resolve()) and any(t.session for t in workflow.tasks):
            return workflow
    return None


def _instruction(lines: list[str]) -> str:
    found = [match["text"] for line in lines if (match := _INSTRUCTION.search(line))]
    return "; ".join(found)


async def changed_lines(worktree: Path, relative: str, base: str) -> set[int]:
    """The lines of `relative` (1-based) that differ from `base` in the worktree, as it is on disk now; every
    line of a file `base` does not have."""
    tracked = await git("ls-tree", "--name-only", base, "--", relative, cwd=worktree)
    if not tracked.stdout.strip():
        return set(range(1, await asyncio.to_thread(_line_count, worktree / relative) + 1))
    diff = await git("diff", "--no-color", "--no-ext-diff", "-U0", base, "--", relative, cwd=worktree)
    lines: set[int] = set()
    for hunk in _HUNK.finditer(diff.stdout):
        first, count = int(hunk["start"]), int(hunk["count"] or 1)
        # A pure deletion (count 0) changed the place between two lines: the line after it counts.
        lines.update(range(first, first + count) if count else {first + 1})
    return lines


def _line_count(path: Path) -> int:
    return len(path.read_text(encoding="utf-8", errors="replace").splitlines()) if path.is_file() else 0
