"""Issue #10's proof: the SDLC on a realistic project with no ADW configuration (its own virtualenv with a
dependency ADW lacks, editable-installed from the main worktree; ruff `fix = true` with a pre-existing finding;
a pre-existing failing test) commits only what the spec asked for, with honest test and review results."""

from __future__ import annotations

from pathlib import Path

from adw.sdlc.engine import open_engine
from adw.sdlc.pipeline import sdlc_workflows
from adw.workflow.models import TaskState
from tests.conftest import run_git
from tests.realistic import FAILING_TEST, LINT_FINDING, PROJECT_FILES, RealisticProject

# A module that exists only in the workflow's worktree, and its test, which needs the project's own `taxrates`.
SPEC = """# Receipts

Add `receipt`, which prints the total of a basket with VAT.

```python path=src/shop/receipt.py
from shop.pricing import total


def receipt(prices: list[float]) -> str:
    return f"Total: {total(prices):.2f}"
```

```python path=tests/test_receipt.py
from taxrates import VAT

from shop.receipt import receipt


def test_receipt_shows_the_total_with_vat() -> None:
    assert VAT == 0.2
    assert receipt([10.0, 5.0]) == "Total: 18.00"
```
"""


async def test_the_sdlc_commits_only_the_spec_and_reports_only_what_the_change_did(
    realistic_project: RealisticProject,
) -> None:
    root = realistic_project.root
    spec = realistic_project.write("specs/receipt.md", SPEC)
    run_git(root, "add", "specs/receipt.md")
    run_git(root, "commit", "-q", "-m", "spec: receipts")
    engine = await open_engine(root)
    [wf] = await engine.run_all(await sdlc_workflows(root, [spec], engine.config))
    reasons = [(t.id, t.state.value, t.reason) for t in wf.tasks if t.reason]
    assert wf.state is TaskState.SUCCEEDED, reasons
    worktree = Path(wf.cwd)

    # The tests ran in the project's virtualenv, on the worktree's code: the new test imports the new module,
    # which exists only in the worktree, and `taxrates`, which only the project's venv has.
    test = wf.task("test")
    assert test.summary.startswith(f"2 passed, 1 failed (venv: the main worktree's virtualenv {realistic_project.venv}")
    assert test.outputs["environment"]["source_roots"] == ["src"]
    assert test.findings == [] and test.outputs["baseline"]["new"] == 0
    [old_failure] = test.outputs["baseline"]["pre_existing"]
    assert (old_failure["path"], old_failure["message"].split(":")[0]) == tuple(FAILING_TEST.split("::"))

    # The review did not fix the project's code (`fix = true`) and knows its finding from before the change.
    review = wf.task("review")
    assert review.findings == [] and review.outputs["baseline"]["new"] == 0
    [old_lint] = review.outputs["baseline"]["pre_existing"]
    assert (old_lint["path"], old_lint["line"], old_lint["code"]) == LINT_FINDING
    legacy = LINT_FINDING[0]
    assert (worktree / legacy).read_text() == PROJECT_FILES[legacy]

    # The commit holds exactly the spec's files and the change summary; nothing else changed in the worktree.
    committed = run_git(worktree, "diff-tree", "--no-commit-id", "--name-only", "-r", "HEAD").split()
    assert sorted(committed) == ["docs/changes/receipt.md", "src/shop/receipt.py", "tests/test_receipt.py"]
    assert run_git(worktree, "status", "--porcelain") == ""
    assert run_git(root, "status", "--porcelain") == ""
