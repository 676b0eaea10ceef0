"""`spec-apply`: the built-in plan/build agent that needs no LLM.

Every fenced code block of the spec whose info string carries `path=<relative path>` (```python
path=src/calc/add.py) is that file's full content. In the plan phase it checks the blocks and says what it
would write; in any other phase it writes them. A path that leaves the worktree (absolute, `..`, through a
symlink, or into .git) is refused, and then nothing at all is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from adw.agents.base import AgentBase, CancelToken
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


def resolve_inside(worktree: Path, relative: str) -> Path:
    """The absolute target of `relative`, or ValueError saying why it is refused."""
    candidate = Path(relative)
    if candidate.is_absolute():
        raise ValueError(f"{relative}: absolute paths are refused; give a path relative to the worktree")
    root = worktree.resolve()
    full = (root / candidate).resolve()
    if full == root or not full.is_relative_to(root):
        raise ValueError(f"{relative}: leaves the worktree {root}")
    if ".git" in full.relative_to(root).parts:
        raise ValueError(f"{relative}: writing inside .git is refused")
    return full


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
        targets: dict[str, tuple[Path, FileBlock]] = {}
        problems: list[Finding] = []
        for block in blocks:
            try:
                target = resolve_inside(worktree, block.path)
            except ValueError as exc:
                problems.append(self._problem(spec, block, str(exc)))
                continue
            relative = target.relative_to(worktree.resolve()).as_posix()
            if relative in targets:
                first = targets[relative][1].line
                problems.append(self._problem(spec, block, f"{relative} is also given at line {first}"))
            targets[relative] = (target, block)
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
        return self._write(targets, events, cancel)

    def _write(
        self, targets: dict[str, tuple[Path, FileBlock]], events: TaskEvents, cancel: CancelToken
    ) -> AgentResult:
        changed: list[str] = []
        created = 0
        for relative, (target, block) in targets.items():
            if cancel.requested:
                break
            existed = target.exists()
            if existed and target.read_text(encoding="utf-8", errors="replace") == block.content:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.content, encoding="utf-8")
            created += not existed
            changed.append(relative)
            events.tool("Write", relative)
        unchanged = len(targets) - len(changed)
        counts = f"{created} new, {len(changed) - created} changed, {unchanged} unchanged"
        summary = f"wrote {len(changed)} file(s) ({counts})"
        return AgentResult(status="succeeded", summary=summary, files_changed=changed)

    def _problem(self, spec: Path, block: FileBlock, message: str) -> Finding:
        return Finding(
            path=str(spec), line=block.line, severity=Severity.ERROR, message=message, source=_SOURCE
        )
