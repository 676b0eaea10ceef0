"""`summary`: the built-in document agent. Writes `docs/changes/<worktree>.md` describing the diff against the
workflow's base commit: files added, changed and deleted, and for Python files the functions and classes
added, changed or removed (compared by their AST, so formatting and moves alone do not count)."""

from __future__ import annotations

import ast
from pathlib import Path

from adw.agents.base import AgentBase
from adw.errors import GitError, PathOutsideError
from adw.fsutil import write_inside
from adw.git.runner import git
from adw.workflow.agent import CancelToken
from adw.workflow.events import TaskEvents
from adw.workflow.models import AgentResult, Task

_STATUS = {"A": "added", "M": "changed", "D": "deleted", "T": "changed"}


def definitions(source: str) -> dict[str, str]:
    """Qualified name → AST dump of each function and class (methods as Class.method). Unparsable: empty."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    found: dict[str, str] = {}

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{node.name}"
                kind = "class" if isinstance(node, ast.ClassDef) else "function"
                found[f"{kind} {name}"] = ast.dump(node)
                if isinstance(node, ast.ClassDef):
                    visit(node.body, f"{name}.")

    visit(tree.body, "")
    return found


def compare(old: str, new: str) -> list[str]:
    before, after = definitions(old), definitions(new)
    lines = [f"added {name}" for name in after if name not in before]
    lines += [f"changed {name}" for name in after if name in before and before[name] != after[name]]
    lines += [f"removed {name}" for name in before if name not in after]
    return lines


class SummaryAgent(AgentBase):
    async def run(self, task: Task, worktree: Path, events: TaskEvents, cancel: CancelToken) -> AgentResult:
        name = self.workflow.worktree or worktree.name
        output = f"docs/changes/{name}.md"
        base = self.workflow.base_commit or "HEAD"
        try:
            changes = await self._changes(worktree, base, exclude=output)
            sections = []
            total = 0
            for path, status in changes:
                if cancel.requested:
                    break
                details = await self._python_details(worktree, base, path, status)
                total += len(details)
                sections.append((path, status, details))
        except GitError as exc:
            return AgentResult.failed(f"cannot read the diff: {exc.message}")
        if not changes:  # a document saying "no change" would be the commit's only file
            return AgentResult(status="succeeded", summary="no file changed; nothing to document")
        try:
            write_inside(worktree, output, self._render(name, base, sections))
        except PathOutsideError as exc:
            return AgentResult.failed(f"did not write {output}: {exc.message}")
        except OSError as exc:
            return AgentResult.failed(f"could not write {output}: {exc.strerror}")
        events.tool("Write", output)
        summary = (
            f"{len(sections)} file(s) changed, {total} definition(s) added/changed/removed; wrote {output}"
        )
        return AgentResult(status="succeeded", summary=summary, files_changed=[output])

    async def _changes(self, worktree: Path, base: str, exclude: str) -> list[tuple[str, str]]:
        """Tracked files that differ from `base` (committed or not), plus new untracked files."""
        diff = await git("diff", "--name-status", "--no-renames", "-z", base, cwd=worktree)
        fields = diff.stdout.split("\0")
        changes = {fields[i + 1]: _STATUS.get(fields[i][:1], "changed") for i in range(0, len(fields) - 1, 2)}
        untracked = await git("ls-files", "--others", "--exclude-standard", "-z", cwd=worktree)
        changes.update({path: "added" for path in untracked.stdout.split("\0") if path})
        changes.pop(exclude, None)
        return sorted(changes.items())

    async def _python_details(self, worktree: Path, base: str, path: str, status: str) -> list[str]:
        if not path.endswith(".py"):
            return []
        old = ""
        if status != "added":
            shown = await git("show", f"{base}:{path}", cwd=worktree, ok_codes=(0, 128))
            old = shown.stdout if shown.returncode == 0 else ""
        new_file = worktree / path
        new = new_file.read_text(encoding="utf-8", errors="replace") if new_file.is_file() else ""
        return compare(old, new)

    def _render(self, name: str, base: str, sections: list[tuple[str, str, list[str]]]) -> str:
        out = [f"# Changes: {name}", ""]
        if self.workflow.spec:
            out += [f"Spec: `{Path(self.workflow.spec).name}`", ""]
        out += [f"Compared with `{base[:12]}`.", ""]
        out += ["| file | change |", "| --- | --- |"]
        out += [f"| `{path}` | {status} |" for path, status, _ in sections]
        for path, _, details in sections:
            if details:
                out += ["", f"## `{path}`", "", *(f"- {detail}" for detail in details)]
        return "\n".join([*out, ""])
