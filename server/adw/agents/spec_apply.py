"""`spec-apply`: the built-in plan/build agent that needs no LLM.

Every fenced code block of the spec whose info string carries `path=<relative path>` (```python
path=src/calc/add.py) is that file's full content. In the plan phase it checks the blocks and says what it
would write; in any other phase it writes them. The whole set is validated in both phases: a path that leaves
the worktree (absolute, `..`, through a symlink, or into .git), a duplicate, or one block's file being another
block's folder is refused, and then nothing at all is written. Files are written all or nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from adw.agents.base import AgentBase
from adw.errors import PathOutsideError
from adw.fsutil import check_inside, iter_parents, read_inside, write_all_inside
from adw.workflow.agent import CancelToken
from adw.workflow.events import TaskEvents
from adw.workflow.models import AgentResult, Finding, Severity, Task

_FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_PATH = re.compile(r"(?:^|\s)path=(?:\"(?P<quoted>[^\"]+)\"|(?P<plain>\S+))")
_SOURCE = "spec-apply"


@dataclass(frozen=True, slots=True)
class FileBlock:
    path: str
    content: str
    line: int  # of the opening fence, 1-based


def file_blocks(markdown: str) -> list[FileBlock]:
    """The `path=` blocks of a Markdown text, in order (CommonMark fences: ``` or ~~~, closed by a longer or
    equal run of the same character)."""
    lines = markdown.splitlines(keepends=True)
    blocks: list[FileBlock] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index].rstrip("\r\n"))
        if not opening or (opening["fence"][0] == "`" and "`" in opening["info"]):
            index += 1
            continue
        fence = opening["fence"]
        end = index + 1
        while end < len(lines):
            closing = lines[end].strip()
            if closing.startswith(fence) and set(closing) == {fence[0]}:
                break
            end += 1
        if path := _PATH.search(opening["info"]):
            blocks.append(
                FileBlock(path["quoted"] or path["plain"], "".join(lines[index + 1 : end]), index + 1)
            )
        index = end + 1
    return blocks


def relative_target(relative: str) -> str:
    """`relative` as a normalised path inside the worktree, or ValueError saying why it is refused. Purely
    lexical: links on disk are checked when the set is validated (`check_inside`) and again when written."""
    candidate = PurePosixPath(relative)
    if candidate.is_absolute():
        raise ValueError(f"{relative}: absolute paths are refused; give a path relative to the worktree")
    parts = [part for part in candidate.parts if part != "."]
    if not parts or ".." in parts:
        raise ValueError(f"{relative}: leaves the worktree")
    if ".git" in parts:
        raise ValueError(f"{relative}: writing inside .git is refused")
    return PurePosixPath(*parts).as_posix()


class SpecApplyAgent(AgentBase):
    async def run(self, task: Task, worktree: Path, events: TaskEvents, cancel: CancelToken) -> AgentResult:
        return self.apply(task, worktree, events, cancel)  # a few small local files: not worth a thread

    def apply(self, task: Task, worktree: Path, events: TaskEvents, cancel: CancelToken) -> AgentResult:
        if not self.workflow.spec:
            return AgentResult.failed("spec-apply needs a spec: run it through `adw sdlc SPEC`")
        spec = Path(self.workflow.spec)
        try:
            blocks = file_blocks(spec.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            return AgentResult.failed(f"cannot read the spec {spec}: {exc}")
        if not blocks:
            return AgentResult.failed(
                f"{spec} has no file blocks: add fenced code blocks such as ```python path=src/app.py "
                "or configure an LLM agent for this phase"
            )
        targets, problems = self._validate(spec, worktree, blocks)
        if problems:
            for finding in problems:
                events.finding(finding)
            return AgentResult.failed(
                f"refused {len(problems)} file block(s), wrote nothing: "
                + "; ".join(f.message for f in problems),
                findings=problems,
            )
        if task.phase == "plan":
            for relative in targets:
                events.progress(f"will write {relative}")
            return AgentResult(
                status="succeeded",
                summary=f"will write {len(targets)} file(s): {', '.join(targets)}",
                outputs={"files": list(targets)},
            )
        if cancel.requested:
            return AgentResult.failed("cancelled before writing; nothing was written")
        return self._write(worktree, targets, events)

    def _validate(
        self, spec: Path, worktree: Path, blocks: list[FileBlock]
    ) -> tuple[dict[str, FileBlock], list[Finding]]:
        """The whole set is checked before anything is written, in the plan phase as in the build: each path,
        duplicates, one block's file being another's folder, and links or files in the way on disk."""
        targets: dict[str, FileBlock] = {}
        problems: list[Finding] = []
        for block in blocks:
            try:
                relative = relative_target(block.path)
                check_inside(worktree, relative)
            except ValueError as exc:
                problems.append(self._problem(spec, block, str(exc)))
                continue
            except PathOutsideError as exc:
                problems.append(self._problem(spec, block, exc.message))
                continue
            if relative in targets:
                first = targets[relative].line
                problems.append(self._problem(spec, block, f"{relative} is also given at line {first}"))
            targets[relative] = block
        for relative, block in targets.items():
            for folder in iter_parents(relative):
                if folder in targets:
                    line = targets[folder].line
                    message = f"{relative} needs {folder} to be a folder, but line {line} writes it as a file"
                    problems.append(self._problem(spec, block, message))
        return targets, problems

    def _write(self, worktree: Path, targets: dict[str, FileBlock], events: TaskEvents) -> AgentResult:
        changed: dict[str, str] = {}
        created = 0
        try:
            for relative, block in targets.items():
                existing = read_inside(worktree, relative)
                if existing is not None and existing.decode("utf-8", "replace") == block.content:
                    continue
                created += existing is None
                changed[relative] = block.content
            write_all_inside(worktree, changed)  # all or nothing
        except PathOutsideError as exc:
            return AgentResult.failed(f"wrote nothing: {exc.message}")
        except OSError as exc:
            return AgentResult.failed(f"wrote nothing: {exc.strerror}: {exc.filename or worktree}")
        for relative in changed:
            events.tool("Write", relative)
        unchanged = len(targets) - len(changed)
        counts = f"{created} new, {len(changed) - created} changed, {unchanged} unchanged"
        summary = f"wrote {len(changed)} file(s) ({counts})"
        return AgentResult(status="succeeded", summary=summary, files_changed=list(changed))

    def _problem(self, spec: Path, block: FileBlock, message: str) -> Finding:
        return Finding(
            path=str(spec), line=block.line, severity=Severity.ERROR, message=message, source=_SOURCE
        )
