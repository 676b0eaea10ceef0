"""Diagnostics with source "adw": failed tests and review findings at file:line from a real SDLC run, replaced by
the next run's findings, cleared when fixed and when the worktree is removed; predicted merge conflicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.conftest import run_git
from tests.lsp.conftest import commit_all, eventually, run, task_of, uri, wait_workflow

SPEC = """# Broken multiply

```python path=src/calc/mul.py
import os


def mul(a, b):
    return a * b
```

```python path=tests/test_mul.py
def test_mul():
    product = 2 * 3
    assert product == 7
```
"""


def _diagnostics(client: LanguageClient, path: Path) -> list[types.Diagnostic]:
    return list(client.diagnostics.get(uri(path), []))


def _lines(client: LanguageClient, path: Path) -> list[int]:
    return [d.range.start.line for d in _diagnostics(client, path)]


async def _finish(client: LanguageClient, workflow_id: str) -> dict[str, Any]:
    return await wait_workflow(client, workflow_id)


async def test_findings_are_published_replaced_and_cleared(vscode: LanguageClient, workspace: Path) -> None:
    client, root = vscode, workspace
    (root / "specs/broken.md").write_text(SPEC)
    [workflow] = (await run(client, "startSdlc", [str(root / "specs/broken.md")]))["workflows"]
    first = await _finish(client, workflow["id"])
    assert first["state"] == "failed" and task_of(first, "test")["state"] == "failed", first["reason"]
    worktree = Path(first["cwd"])
    test_file, code_file = worktree / "tests/test_mul.py", worktree / "src/calc/mul.py"

    # The failed test at the line that failed (0-based 2 = `assert product == 7`), as an error.
    await eventually(lambda: _diagnostics(client, test_file), 10, "the failed test's diagnostic")
    [failure] = _diagnostics(client, test_file)
    assert failure.source == "adw" and failure.severity == types.DiagnosticSeverity.Error
    assert failure.range.start.line == 2 and "test_mul" in failure.message and failure.code == "pytest"
    # The review's ruff finding at its line and column, as a warning with the rule as its code.
    [unused] = _diagnostics(client, code_file)
    assert unused.source == "adw" and unused.severity == types.DiagnosticSeverity.Warning
    assert (unused.code, unused.range.start.line, unused.range.start.character) == ("F401", 0, 7)
    assert "os" in unused.message

    # The next run's findings replace the last ones: the test now fails one line lower.
    test_file.write_text("def test_mul():\n    product = 2 * 3\n    assert product == 6\n    assert product < 0\n")
    await run(client, "resume", workflow["id"])
    await eventually(lambda: _lines(client, test_file) == [3], 60, "the failure to move to line 3")
    second = await _finish(client, workflow["id"])
    assert second["state"] == "failed" and _lines(client, test_file) == [3]

    # Fixed: the test phase reports nothing, so its diagnostics are cleared; the review's stay.
    test_file.write_text("def test_mul():\n    assert 2 * 3 == 6\n")
    await run(client, "resume", workflow["id"])
    third = await _finish(client, workflow["id"])
    assert third["state"] == "succeeded", third["reason"]
    assert uri(test_file) in client.diagnostics and _diagnostics(client, test_file) == []
    assert [d.code for d in _diagnostics(client, code_file)] == ["F401"]

    # Removing the worktree clears everything under it.
    await run(client, "removeWorktree", "broken", False, True)
    await eventually(lambda: _diagnostics(client, code_file) == [], 10, "diagnostics to clear on remove")
    assert all(not diags for key, diags in client.diagnostics.items() if key.startswith(uri(worktree) + "/"))


async def test_predicted_merge_conflicts(minimal: LanguageClient, workspace: Path) -> None:
    client, root = minimal, workspace
    path = Path((await run(client, "createWorktree", "feat"))["worktree"]["path"])
    (path / "README.md").write_text("# feature\n")
    commit_all(path, "feature readme")
    (root / "README.md").write_text("# main\n")
    commit_all(root, "main readme")

    preview = await run(client, "mergePreview", "feat")
    assert preview["clean"] is False and preview["conflicts"] == ["README.md"]
    readme = path / "README.md"
    await eventually(lambda: _diagnostics(client, readme), 10, "the conflict diagnostic")
    [conflict] = _diagnostics(client, readme)
    assert conflict.source == "adw" and conflict.code == "merge-conflict"
    assert conflict.severity == types.DiagnosticSeverity.Warning and "main" in conflict.message
    refused = await run(client, "merge", "feat")
    assert refused["merged"] is False and _diagnostics(client, readme)

    # Resolved (main takes the feature's text): the next preview clears it.
    run_git(root, "checkout", "adw/feat", "--", "README.md")
    commit_all(root, "take the feature's readme")
    assert (await run(client, "mergePreview", "feat"))["clean"] is True
    await eventually(lambda: _diagnostics(client, readme) == [], 10, "the conflict to clear")

    # A new conflict, then removing the worktree clears it.
    (root / "README.md").write_text("# main again\n")
    commit_all(root, "main again")
    (path / "README.md").write_text("# feature again\n")
    commit_all(path, "feature again")
    await run(client, "mergePreview", "feat")
    await eventually(lambda: _diagnostics(client, readme), 10, "the new conflict")
    await run(client, "removeWorktree", "feat", True)
    await eventually(lambda: _diagnostics(client, readme) == [], 10, "diagnostics to clear on remove")
