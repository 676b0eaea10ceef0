"""The command line: `adw forge [--json]`, `adw sdlc --issue N --pr` from an issue (with file blocks) to a draft
pull request on the local fake GitHub with a bare `origin`, `adw pr ID` again (the same draft), and the errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from adw.cli import main
from adw.config import load_config
from adw.forge.client import connect
from adw.forge.issues import issue_workflows
from adw.git.repo import Repo
from tests.conftest import MakeRepo, run_git
from tests.forge.fakeforge import API_PATHS, Fake, project_pyproject, serve

ISSUE_BODY = """Subtraction is missing.

```python path=src/calc/sub.py
def sub(a, b):
    return a - b
```
"""
COMMENT = """And a test, please:

```python path=tests/test_sub.py
from calc.sub import sub


def test_sub():
    assert sub(3, 1) == 2
```
"""


@pytest.fixture
def fake() -> Iterator[Fake]:
    with serve("github", "octo/calc") as server:
        server.add_issue(7, "Add sub() to calc", ISSUE_BODY, ["enhancement"], [("ana", COMMENT)])
        yield server


@pytest.fixture
def project(make_repo: MakeRepo, fake: Fake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pyproject = project_pyproject(fake)
    root = make_repo(
        {
            "pyproject.toml": pyproject,
            ".gitignore": "__pycache__/\n",
            "src/calc/__init__.py": "",
            "tests/test_ok.py": "def test_ok():\n    assert True\n",
        }
    )
    bare = tmp_path / "origin.git"
    run_git(tmp_path, "init", "-q", "--bare", str(bare))
    run_git(root, "remote", "add", "origin", "git@github.com:octo/calc.git")
    run_git(root, "remote", "set-url", "--push", "origin", str(bare))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no gh of the machine's own
    monkeypatch.setenv("GH_TOKEN", "test-token")
    return root


def test_forge_says_what_it_detected_and_how_it_authenticates(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["-C", str(project), "forge"]) == 0
    out = capsys.readouterr().out
    assert "github at https://github.com (from [tool.adw.forge])" in out
    assert "octo/calc (remote origin: git@github.com:octo/calc.git)" in out and "auth      GH_TOKEN" in out
    assert "test-token" not in out
    monkeypatch.delenv("GH_TOKEN")
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    assert main(["-C", str(project), "forge", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["forge"]["kind"] == "github" and data["auth"]["method"] is None
    assert "gh auth login --hostname github.com" in data["auth"]["login"]


@pytest.mark.slow
def test_from_an_issue_to_a_draft_pull_request_and_again(
    project: Path, fake: Fake, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-C", str(project), "sdlc", "--issue", "#7", "--pr", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    (workflow,) = result["workflows"]
    assert workflow["state"] == "succeeded" and workflow["worktree"] == "7-add-sub-to-calc"
    # the body's block and the comment's block were both written, as from any spec
    worktree = Path(workflow["cwd"])
    assert (worktree / "src/calc/sub.py").is_file() and (worktree / "tests/test_sub.py").is_file()
    spec = Path(workflow["spec"])
    assert spec.parent.name == "issues" and "## Comment by ana" in spec.read_text(encoding="utf-8")
    (opened,) = result["pull_requests"]
    assert opened["pull_request"]["created"] and opened["push"]["mode"] == "new" and opened["issue"] == 7
    pr = fake.pulls[0]
    assert pr["head"] == "adw/7-add-sub-to-calc" and pr["base"] == "main" and pr["draft"]
    assert "Closes #7" in pr["body"] and "src/calc/sub.py" in pr["body"]
    assert "| test | pytest | succeeded | 0 | 0 | 0 |" in pr["body"]
    assert "/pull/1" in fake.comments[7][-1]["body"]
    bare = run_git(project, "remote", "get-url", "--push", "origin").strip()
    assert (
        run_git(project, "--git-dir", bare, "rev-parse", "adw/7-add-sub-to-calc").strip()
        == run_git(project, "rev-parse", "adw/7-add-sub-to-calc").strip()
    )

    assert main(["-C", str(project), "pr", workflow["id"][:6]]) == 0
    out = capsys.readouterr().out
    assert "updated" in out and "push: up-to-date" in out
    assert len(fake.pulls) == 1 and len(fake.comments[7]) == 2  # ana's, and ADW's one comment, edited


async def test_the_issue_kind_chooses_the_prompts_of_llm_phases(project: Path, fake: Fake) -> None:
    with (project / "pyproject.toml").open("a", encoding="utf-8") as file:
        file.write('\n[tool.adw.phases.build]\nagent = "claude"\n\n[tool.adw.forge.prompts.bug]\nplan = "P {spec}"\n')
    fake.add_issue(8, "Crash on empty input", "It crashes.", ["type: bug"], [])
    repo = await Repo.discover(project)
    config = load_config(project)
    provider = await connect(project, config.forge)
    try:
        spec, (workflow,) = await issue_workflows(repo, provider, "https://github.com/octo/calc/issues/8", config)
    finally:
        await provider.aclose()
    assert spec.read_text(encoding="utf-8").startswith("# Crash on empty input (#8)\n\nIt crashes.")
    assert json.loads(spec.with_suffix(".json").read_text(encoding="utf-8"))["kind"] == "bug"
    prompts = {task.id: task.config.prompt for task in workflow.tasks if task.config is not None}
    assert prompts["build"].startswith("Fix the bug reported below")  # the kind's built-in prompt (claude)
    assert prompts["plan"] == "P {spec}"  # [tool.adw.forge.prompts.bug] first, whatever the agent
    assert prompts["test"] == ""  # the built-in pytest agent takes no prompt
    assert workflow.worktree == "8-crash-on-empty-input"


def test_sdlc_needs_specs_or_an_issue_and_pr_needs_a_login(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["-C", str(project), "sdlc"]) == 2
    assert "give either SPEC files or --issue" in capsys.readouterr().err
    assert main(["-C", str(project), "sdlc", "--issue", "https://github.com/someone/else/issues/1"]) == 2
    assert "not an issue of octo/calc" in capsys.readouterr().err
    assert main(["-C", str(project), "sdlc", "--issue", "99"]) == 2
    assert "no issue #99" in capsys.readouterr().err
    monkeypatch.delenv("GH_TOKEN")
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    (project / "specs").mkdir()
    (project / "specs" / "a.md").write_text("# A\n", encoding="utf-8")
    assert main(["-C", str(project), "sdlc", "specs/a.md", "--pr"]) == 2
    err = capsys.readouterr().err
    assert "not logged in to github.com" in err and "gh auth login --hostname github.com" in err
    assert not (project.parent / "repo.worktrees" / "a").exists()  # refused before anything ran


OTHER_FORGES = {  # kind: (remote, project, host, token variable)
    "gitlab": ("git@gitlab.com:group/sub/calc.git", "group/sub/calc", "gitlab.com", "GITLAB_TOKEN"),
    "bitbucket": ("git@bitbucket.org:ws/calc.git", "ws/calc", "bitbucket.org", "BITBUCKET_TOKEN"),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(OTHER_FORGES))
def test_from_an_issue_to_a_draft_on_gitlab_and_bitbucket(
    kind: str, make_repo: MakeRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same command line on the other forges: their issue read, their draft (GitLab's `Draft:` title,
    Bitbucket's `draft` flag) opened from the pushed branch, the issue linked and commented."""
    remote, project_name, host, variable = OTHER_FORGES[kind]
    with serve(kind, project_name) as fake:
        fake.add_issue(7, "Add sub() to calc", ISSUE_BODY, ["enhancement"], [("ana", COMMENT)])
        pyproject = project_pyproject(fake).replace(
            'host = "github.com"\nkind = "github"', f'host = "{host}"\nkind = "{kind}"'
        ).replace(f'api_url = "{fake.base_url}"', f'api_url = "{API_PATHS[kind](fake.base_url)}"')
        root = make_repo({"pyproject.toml": pyproject, ".gitignore": "__pycache__/\n", "src/calc/__init__.py": "",
                          "tests/test_ok.py": "def test_ok():\n    assert True\n"})
        bare = tmp_path / "origin.git"
        run_git(tmp_path, "init", "-q", "--bare", str(bare))
        run_git(root, "remote", "add", "origin", remote)
        run_git(root, "remote", "set-url", "--push", "origin", str(bare))
        monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no glab of the machine's own
        monkeypatch.setenv(variable, "test-token")

        assert main(["-C", str(root), "sdlc", "--issue", "7", "--pr", "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        (workflow,) = result["workflows"]
        assert workflow["state"] == "succeeded" and workflow["worktree"] == "7-add-sub-to-calc"
        (opened,) = result["pull_requests"]
        assert opened["pull_request"]["created"] and opened["pull_request"]["draft"] and opened["issue"] == 7
        [pr] = fake.pulls
        assert pr["head"] == "adw/7-add-sub-to-calc" and pr["base"] == "main"
        assert ("Closes #7" if kind == "gitlab" else "Fixes #7") in pr["body"] and "src/calc/sub.py" in pr["body"]
        assert run_git(root, "--git-dir", str(bare), "rev-parse", "adw/7-add-sub-to-calc") == run_git(
            root, "rev-parse", "adw/7-add-sub-to-calc")
        assert opened["pull_request"]["url"] in fake.comments[7][-1]["body"]
