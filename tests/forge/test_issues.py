"""An issue as a spec: its reference (number, #number, URL of this project only), its kind from labels, its
worktree name, and the Markdown the agents and the spec-apply agent read (file blocks of comments included)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adw.agents.spec_apply import file_blocks
from adw.config import AdwConfig, ForgeConfig, PhaseConfig
from adw.errors import AdwError
from adw.forge.issues import (
    KIND_PROMPTS,
    issue_config,
    issue_kind,
    issue_markdown,
    issue_name,
    issue_number,
    issue_of_spec,
    save_issue_spec,
)
from adw.forge.providers import Comment, Issue
from adw.forge.remotes import forge_of

GITHUB = forge_of("git@github.com:octo/widget.git", ForgeConfig())
GITLAB = forge_of("git@gitlab.com:group/sub/app.git", ForgeConfig())


@pytest.mark.parametrize(
    ("text", "forge", "number"),
    [
        ("123", GITHUB, 123),
        ("#7", GITHUB, 7),
        ("https://github.com/octo/widget/issues/42", GITHUB, 42),
        ("https://github.com/Octo/Widget/issues/42/", GITHUB, 42),
        ("https://github.com/octo/widget/issues/42#issuecomment-1", GITHUB, 42),
        ("https://gitlab.com/group/sub/app/-/issues/9", GITLAB, 9),
    ],
)
def test_issue_references(text: str, forge: object, number: int) -> None:
    assert issue_number(text, forge) == number  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text", ["0", "abc", "https://github.com/other/repo/issues/1", "-3", "https://github.com/octo/widget/pull/4"]
)
def test_other_references_are_refused_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(AdwError) as caught:
        issue_number(text, GITHUB)
    assert "--issue 123" in caught.value.hint and "https://github.com/octo/widget/issues/123" in caught.value.hint


@pytest.mark.parametrize(
    ("labels", "kind"),
    [
        (["bug"], "bug"),
        (["type::bug"], "bug"),
        (["kind/feature"], "feature"),
        (["Type: Enhancement"], "feature"),
        (["good first issue", "tech-debt"], "chore"),
        (["proposal"], "feature"),
        (["task"], "chore"),
        (["question"], None),
        ([], None),
    ],
)
def test_labels_give_the_kind(labels: list[str], kind: str | None) -> None:
    assert issue_kind(labels) == kind


def test_name_from_number_and_title() -> None:
    issue = Issue(
        number=123,
        title="Fix: crash on ÉMPTY input (again!) in the parser's very long error path name",
        body="",
        url="u",
    )
    assert issue_name(issue) == "123-fix-crash-on-empty-input-again-in-the-parser"  # 48 characters of title
    assert issue_name(Issue(number=5, title="???", body="", url="u")) == "5"


def test_markdown_keeps_body_labels_comments_and_their_file_blocks(tmp_path: Path) -> None:
    issue = Issue(
        number=3,
        title="Add sub",
        body="Please.\n\n```python path=src/sub.py\ndef sub(a, b):\n    return a - b\n```",
        labels=["feature"],
        comments=[Comment(id="1", author="ana", body="```python path=tests/test_sub.py\nassert True\n```")],
        url="https://github.com/octo/widget/issues/3",
    )
    text = issue_markdown(issue)
    assert text.startswith("# Add sub (#3)\n\nPlease.")
    assert "Labels: feature" in text and "## Comment by ana" in text and text.rstrip().endswith(issue.url)
    assert [block.path for block in file_blocks(text)] == ["src/sub.py", "tests/test_sub.py"]
    spec = save_issue_spec(tmp_path / ".git", issue, GITHUB, "3-add-sub")
    assert spec == tmp_path / ".git" / "adw" / "issues" / "3-add-sub.md"
    found = issue_of_spec(str(spec))
    assert found is not None and found.issue == issue and found.kind == "feature" and found.forge == GITHUB
    assert issue_of_spec(str(tmp_path / "specs" / "a.md")) is None and issue_of_spec(None) is None


def test_an_acp_phase_gets_the_issue_kinds_prompt() -> None:
    """An ACP agent is an LLM agent: it takes the kind's prompt like claude, codex and aider."""
    config = AdwConfig(phases={"build": PhaseConfig(agent="acp", command=["gemini", "--experimental-acp"])})
    assert issue_config(config, "bug").phases["build"].prompt == KIND_PROMPTS["bug"]["build"]
