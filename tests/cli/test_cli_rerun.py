"""`adw sdlc` on a spec whose worktree exists (refused with the choices, `--again`, `--resume`), `adw resume` with
the current configuration, and bad `--max-agents` values: the command line's words and exit codes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from adw.cli import main
from adw.workflow.store import Store
from tests.conftest import MakeRepo, run_git
from tests.sdlc.test_workflow_sdlc import PYPROJECT

ADD = "# Add\n\n```python path=src/calc/add.py\ndef add(a, b):\n    return a + b\n```\n"
BROKEN = (
    "# Broken\n\n```python path=src/calc/sub.py\ndef sub(a, b):\n    return a + b\n```\n\n"
    "```python path=tests/test_sub.py\nfrom calc.sub import sub\n\n\ndef test_sub():\n    assert sub(3, 1) == 2\n```\n"
)
# The test phase as reconfigured after a failed run: it passes, so a resumed workflow can finish.
PASSING_TEST_PHASE = f"""
[tool.adw.phases.test]
agent = "command"
command = ["{sys.executable}", "-c", "print('judged by the new test command')"]
"""


@pytest.fixture
def project(make_repo: MakeRepo) -> Path:
    return make_repo(
        {
            "pyproject.toml": PYPROJECT,
            ".gitignore": "__pycache__/\n",
            "src/calc/__init__.py": "",
            "specs/Add Numbers.md": ADD,
            "specs/broken.md": BROKEN,
        }
    )


def _stored(project: Path) -> list[tuple[str, str, str]]:
    store = Store.for_common_dir(project / ".git")
    try:
        return [(wf.id, wf.worktree or "", wf.state.value) for wf in reversed(store.recent())]
    finally:
        store.close()


def test_a_spec_whose_worktree_exists_is_refused_with_the_choices_then_run_again(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-C", str(project), "sdlc", "specs/Add Numbers.md"]) == 0
    [(first, worktree, state)] = _stored(project)
    assert (worktree, state) == ("add-numbers", "succeeded")
    assert run_git(project, "branch", "--list", "--format=%(refname:short)", "adw/*").split() == ["adw/add-numbers"]
    capsys.readouterr()

    assert main(["-C", str(project), "sdlc", "specs/Add Numbers.md"]) == 2
    err = capsys.readouterr().err
    path = project.parent / f"{project.name}.worktrees" / "add-numbers"
    assert f"adw: specs/Add Numbers.md already has a worktree: {path} (workflow {first}, succeeded)" in err
    assert "`adw sdlc --again 'specs/Add Numbers.md'` runs it in a new worktree" in err
    assert "`adw worktree remove add-numbers`" in err
    assert "--resume" not in err  # a succeeded workflow has nothing left to resume
    assert "Traceback" not in err
    assert [wf for wf, _, _ in _stored(project)] == [first]  # nothing started

    assert main(["-C", str(project), "sdlc", "--again", "specs/Add Numbers.md"]) == 0
    assert f"worktree  {path}-2" in capsys.readouterr().out
    stored = [(worktree, state) for _, worktree, state in _stored(project)]
    assert stored == [("add-numbers", "succeeded"), ("add-numbers-2", "succeeded")]
    assert run_git(path.parent / "add-numbers-2", "branch", "--show-current").strip() == "adw/add-numbers-2"


def test_resume_flag_continues_the_existing_workflow_and_starts_the_other_specs(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-C", str(project), "sdlc", "specs/broken.md"]) == 1
    [(failed, _, _)] = _stored(project)
    capsys.readouterr()

    assert main(["-C", str(project), "sdlc", "specs/broken.md", "specs/Add Numbers.md"]) == 2
    err = capsys.readouterr().err
    assert "adw: specs/broken.md already has a worktree: " in err and f"(workflow {failed}, failed)" in err
    assert "`adw sdlc --resume specs/broken.md 'specs/Add Numbers.md'` continues its workflow" in err
    assert len(_stored(project)) == 1  # the other spec did not start either

    with (project / "pyproject.toml").open("a") as config:
        config.write(PASSING_TEST_PHASE)
    assert main(["-C", str(project), "sdlc", "--resume", "specs/broken.md", "specs/Add Numbers.md"]) == 0
    out = capsys.readouterr().out
    assert (
        f"resuming broken [{failed}]: 3 task(s) with the current configuration: test, commit, merge-preview" in out
    )
    resumed, fresh = _stored(project)
    assert resumed == (failed, "broken", "succeeded") and fresh[1:] == ("add-numbers", "succeeded")


def test_resume_flag_without_a_workflow_to_resume_is_refused(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-C", str(project), "worktree", "create", "broken"]) == 0
    capsys.readouterr()
    assert main(["-C", str(project), "sdlc", "--resume", "specs/broken.md"]) == 2
    err = capsys.readouterr().err
    assert "adw: specs/broken.md already has a worktree: " in err and "no ADW workflow ran there to resume" in err
    assert "`adw sdlc --again specs/broken.md`" in err
    assert _stored(project) == []


def test_adw_resume_runs_what_is_left_with_the_current_configuration_and_says_so(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-C", str(project), "sdlc", "specs/broken.md"]) == 1
    [(failed, _, _)] = _stored(project)
    capsys.readouterr()
    with (project / "pyproject.toml").open("a") as config:
        config.write(PASSING_TEST_PHASE)

    assert main(["-C", str(project), "resume", failed]) == 0
    out = capsys.readouterr().out
    assert f"resuming broken [{failed}]: 3 task(s) with the current configuration: test, commit, merge-preview" in out
    assert "test          started command" in out  # the agent the configuration names now, not pytest

    assert main(["-C", str(project), "resume", failed]) == 2
    err = capsys.readouterr().err
    assert f"adw: workflow {failed} already succeeded: nothing to resume" in err
    assert "`adw sdlc --again " in err and "broken.md` runs its spec again in a new worktree" in err


@pytest.mark.parametrize("value", ["-5", "0", "9", "many"])
def test_max_agents_out_of_range_is_refused_before_anything_starts(
    project: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["-C", str(project), "sdlc", "--max-agents", value, "specs/broken.md"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --max-agents: expected a whole number from 1 to 8, got {value!r}" in err
    assert not (project / ".git" / "adw" / "state.db").exists()


def test_resume_and_again_together_are_refused(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["-C", str(project), "sdlc", "--resume", "--again", "specs/broken.md"])
    assert "not allowed with argument" in capsys.readouterr().err
