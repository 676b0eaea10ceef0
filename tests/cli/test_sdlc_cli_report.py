"""What `adw sdlc` prints at the end, as a new user on a real project reads it."""

from __future__ import annotations

import pytest

from adw.cli import main
from tests.conftest import run_git
from tests.realistic import COUPONS, FAILING_TEST, LINT_FINDING, RealisticProject


def test_the_outcome_lists_the_pre_existing_failure_and_finding_as_information_one_line_each(
    realistic_project: RealisticProject, capsys: pytest.CaptureFixture[str]
) -> None:
    root = realistic_project.root
    realistic_project.write("specs/coupons.md", COUPONS)
    assert main(["-C", str(root), "sdlc", "specs/coupons.md"]) == 0
    header, *details, blank, timeline = capsys.readouterr().out.split("coupons [")[-1].splitlines()
    assert blank == "" and timeline.startswith("who ran when: `adw timeline run-")
    assert header.endswith("]: succeeded")
    lint_path, lint_line, _ = LINT_FINDING
    failing_file, failing_name = FAILING_TEST.split("::")
    pre_existing = [line for line in details if line.startswith("  pre-existing")]
    assert len(pre_existing) == 2, details
    assert any(f"{lint_path}:{lint_line}" in line and line.endswith("[review]") for line in pre_existing)
    assert any(f"{failing_file}:" in line and failing_name in line and line.endswith("[test]") for line in pre_existing)
    # Nothing new to report, and each item holds one line: no tail of a multi-line pytest message.
    assert all(line.startswith(("  worktree", "  commit", "  merge", "  pre-existing")) for line in details), details


def test_a_spec_the_repository_already_satisfies_commits_nothing_and_says_so(
    realistic_project: RealisticProject, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not even a changes document that says "No files changed": the branch stays at its base."""
    root = realistic_project.root
    readme = (root / "README.md").read_text()
    realistic_project.write("specs/readme.md", f"# Same README\n\n```markdown path=README.md\n{readme}```\n")
    assert main(["-C", str(root), "sdlc", "specs/readme.md"]) == 0
    out = capsys.readouterr().out
    assert "wrote 0 file(s) (0 new, 0 changed, 1 unchanged)" in out
    assert "document      succeeded: no file changed; nothing to document" in out
    assert "commit        succeeded: nothing to commit" in out
    assert run_git(root, "rev-parse", "adw/readme") == run_git(root, "rev-parse", "main")
    assert not (root.parent / "shop.worktrees/readme/docs/changes/readme.md").exists()
