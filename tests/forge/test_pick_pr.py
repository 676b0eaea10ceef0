"""`adw pick ID N --pr`: the chosen candidate of a best-of run gets its draft pull request on the local fake
GitHub (pushed to a bare `origin`) instead of a local merge; the others are archived. Without a login nothing
changes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from adw.cli import main
from tests.conftest import MakeRepo, run_git
from tests.forge.fakeforge import Fake, project_pyproject, serve
from tests.sdlc.test_workflow_sdlc import MUL


@pytest.fixture
def fake() -> Iterator[Fake]:
    with serve("github", "octo/calc") as server:
        yield server


@pytest.fixture
def project(make_repo: MakeRepo, fake: Fake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pyproject = project_pyproject(fake)
    root = make_repo({"pyproject.toml": pyproject, ".gitignore": "__pycache__/\n", "src/calc/__init__.py": "",
                      "specs/mul.md": MUL})
    bare = tmp_path / "origin.git"
    run_git(tmp_path, "init", "-q", "--bare", str(bare))
    run_git(root, "remote", "add", "origin", "git@github.com:octo/calc.git")
    run_git(root, "remote", "set-url", "--push", "origin", str(bare))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no gh of the machine's own
    return root


def adw(project: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object]]:
    code = main(["-C", str(project), *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_pick_opens_the_pull_request_of_the_chosen_candidate_and_archives_the_others(
    project: Path, fake: Fake, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, ran = adw(project, capsys, "sdlc", "specs/mul.md", "--best-of", "2")
    assert code == 0
    group = str(ran["workflows"][0]["best_of"]["group"])  # type: ignore[index]
    main_before = run_git(project, "rev-parse", "main")

    # No login: refused before anything is pushed, merged or archived.
    code, refused = adw(project, capsys, "pick", group, "2", "--pr")
    assert code == 2 and "not logged in" in str(refused["message"])
    assert "mul-1" in run_git(project, "worktree", "list") and fake.pulls == []

    monkeypatch.setenv("GH_TOKEN", "test-token")
    code, picked = adw(project, capsys, "pick", group, "2", "--pr")
    assert code == 0 and picked["picked"] == 2 and picked["merge"] is None
    assert [pr["head"] for pr in fake.pulls] == ["adw/mul-2"] and fake.pulls[0]["draft"] is True
    assert run_git(tmp_path / "origin.git", "rev-parse", "adw/mul-2") == run_git(project, "rev-parse", "adw/mul-2")
    assert run_git(project, "rev-parse", "main") == main_before  # not merged here: the pull request is the merge
    assert "mul-1" not in run_git(project, "worktree", "list")
    assert [a["worktree"] for a in picked["archived"]] == ["mul-1"]  # type: ignore[union-attr]
