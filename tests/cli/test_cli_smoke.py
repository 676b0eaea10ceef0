"""The installed `adw` console script, run as a user runs it (a subprocess), on a throwaway repository: `worktree
create|list|remove`, `checkpoint`, `undo`, `redo` and `resume`, each checked by what it did on disk."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from adw.workflow.store import Store
from tests.cli.test_cli_rerun import BROKEN, PASSING_TEST_PHASE
from tests.conftest import MakeRepo, run_git
from tests.sdlc.test_workflow_sdlc import PYPROJECT

# The console script `pip install -e .` put beside the interpreter running the tests.
ADW = Path(sys.executable).with_name("adw")


def adw(repo: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    assert ADW.is_file(), f"{ADW} is missing: run `pip install -e '.[dev]'` in this virtualenv"
    done = subprocess.run([str(ADW), "-C", str(repo), *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == code, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    return done


def test_worktree_create_list_and_remove(repo: Path) -> None:
    created = json.loads(adw(repo, "worktree", "create", "feature", "--json").stdout)["worktree"]
    path = Path(created["path"])
    assert (path / "src/app.py").is_file()
    assert run_git(path, "branch", "--show-current").strip() == "adw/feature"

    listed = json.loads(adw(repo, "worktree", "list", "--json").stdout)
    assert [(w["name"], w["path"]) for w in listed] == [("@main", str(repo)), ("feature", str(path))]

    (path / "notes.md").write_text("unsaved work\n", encoding="utf-8")
    refused = adw(repo, "worktree", "remove", "feature", code=2)
    assert refused.stderr.startswith("adw: ") and "--archive" in refused.stderr
    assert (path / "notes.md").is_file()  # refusing changed nothing

    adw(repo, "worktree", "remove", "feature", "--archive")
    assert not path.exists()
    assert run_git(repo, "branch", "--list", "adw/feature").strip() == ""
    [archive] = run_git(repo, "for-each-ref", "--format=%(refname)", "refs/adw/archive/").split()
    assert archive.startswith("refs/adw/archive/feature/")
    assert run_git(repo, "show", f"{archive}:notes.md") == "unsaved work\n"
    assert [w["name"] for w in json.loads(adw(repo, "worktree", "list", "--json").stdout)] == ["@main"]


def test_checkpoint_undo_and_redo(repo: Path) -> None:
    app = repo / "src/app.py"
    app.write_text("def main():\n    return 2\n", encoding="utf-8")
    made = json.loads(adw(repo, "checkpoint", "-m", "returns two", "--json").stdout)
    assert made["created"] and made["checkpoint"]["number"] == 1
    app.write_text("def main():\n    return 3\n", encoding="utf-8")

    adw(repo, "undo")
    assert app.read_text(encoding="utf-8") == "def main():\n    return 2\n"
    adw(repo, "redo")
    assert app.read_text(encoding="utf-8") == "def main():\n    return 3\n"
    assert run_git(repo, "log", "--format=%s").splitlines() == ["initial"]  # the branch itself never moved


def test_resume_runs_what_failed_again(make_repo: MakeRepo) -> None:
    files = {"pyproject.toml": PYPROJECT, "src/calc/__init__.py": "", "specs/broken.md": BROKEN}
    project = make_repo({**files, ".gitignore": "__pycache__/\n"})
    adw(project, "sdlc", "specs/broken.md", code=1)
    store = Store.for_common_dir(project / ".git")
    try:
        [failed] = store.recent()
    finally:
        store.close()
    assert failed.state.value == "failed"

    with (project / "pyproject.toml").open("a", encoding="utf-8") as config:
        config.write(PASSING_TEST_PHASE)
    out = adw(project, "resume", failed.id).stdout
    assert f"resuming broken [{failed.id}]" in out
    store = Store.for_common_dir(project / ".git")
    try:
        assert [(wf.id, wf.state.value) for wf in store.recent()] == [(failed.id, "succeeded")]
    finally:
        store.close()
    worktree = project.parent / f"{project.name}.worktrees" / "broken"
    committed = run_git(worktree, "show", "--name-only", "--format=", "HEAD").split()
    assert "src/calc/sub.py" in committed

