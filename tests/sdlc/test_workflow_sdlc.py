"""The SDLC pipeline end to end with the built-in agents, on real git worktrees and checkpoints."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from adw.config import AdwConfig
from adw.errors import AdwError
from adw.git.worktrees import Worktrees
from adw.sdlc.engine import open_engine
from adw.sdlc.pipeline import ExistingWorktree, WorktreeExistsError, sdlc_workflows, worktree_name
from adw.workflow.models import Severity, TaskState
from tests.conftest import MakeRepo, run_git

PYPROJECT = """[tool.pytest.ini_options]
pythonpath = ["src"]

[tool.adw.agents]
stop_grace = 0.3
test_command = ["python", "-m", "pytest", "-q"]
"""


def spec(name: str, body: str, test: str) -> str:
    return (
        f"# {name}\n\n```python path=src/calc/{name}.py\n{body}```\n\n```python path=tests/test_{name}.py\n{test}```\n"
    )


ADD = spec(
    "add",
    "def add(a, b):\n    return a + b\n",
    "from calc.add import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n",
)
MUL = spec(
    "mul",
    "def mul(a, b):\n    return a * b\n",
    "from calc.mul import mul\n\n\ndef test_mul():\n    assert mul(2, 3) == 6\n",
)
BROKEN = spec(
    "broken",
    "def sub(a, b):\n    return a + b\n",
    "from calc.broken import sub\n\n\ndef test_sub():\n    assert sub(3, 1) == 2\n",
)


@pytest.fixture
def project(make_repo: MakeRepo) -> Path:
    return make_repo(
        {
            "README.md": "# calc\n",
            "pyproject.toml": PYPROJECT,
            "src/calc/__init__.py": "",
            ".gitignore": "__pycache__/\n",
            "specs/add.md": ADD,
            "specs/mul.md": MUL,
            "specs/broken.md": BROKEN,
        }
    )


async def test_two_specs_run_in_parallel_to_one_commit_each(project: Path) -> None:
    engine = await open_engine(project)
    workflows = await sdlc_workflows(project, [project / "specs/add.md", project / "specs/mul.md"], engine.config)
    results = await engine.run_all(workflows)
    for wf in results:
        assert wf.state is TaskState.SUCCEEDED, [(t.id, t.state.value, t.reason) for t in wf.tasks if t.reason]
        worktree = Path(wf.cwd)
        assert worktree.name == wf.name and worktree != project
        log = run_git(worktree, "log", "--format=%s%n%b", "-1")
        assert log.startswith(f"adw: {wf.name}\n")
        for phase in (
            "plan (spec-apply)",
            "build (spec-apply)",
            "test (pytest): 1 passed",
            "review (ruff)",
            "document",
        ):
            assert f"- {phase}" in log
        files = run_git(worktree, "show", "--name-only", "--format=", "HEAD").split()
        assert sorted(files) == sorted(
            [f"src/calc/{wf.name}.py", f"tests/test_{wf.name}.py", f"docs/changes/{wf.name}.md"]
        )
        assert run_git(worktree, "status", "--porcelain") == ""  # the scouts' report is excluded, not committed
        assert wf.task("scout").outputs["task"] == wf.name  # the spec's heading; it has no prose
        assert (worktree / "scout_outputs/relevant_files.json").is_file()
        preview = wf.task("merge-preview")
        assert preview.outputs["clean"] is True
        assert preview.summary == f"adw/{wf.name} merges cleanly into main: 3 file(s), +25 -0"
        checkpoints = wf.task("build").outputs["checkpoints"]
        assert checkpoints["after"] > checkpoints["before"]
    spans = {wf.name: (wf.started_at, wf.finished_at) for wf in results}
    assert spans["add"][0] < spans["mul"][1] and spans["mul"][0] < spans["add"][1]  # they overlapped
    stored = engine.store.recent() if engine.store else []
    assert {wf.id for wf in stored} == {wf.id for wf in results}


async def test_a_failing_test_phase_skips_the_commit_and_reports_the_finding(project: Path) -> None:
    engine = await open_engine(project)
    [wf] = await engine.run_all(await sdlc_workflows(project, [project / "specs/broken.md"], engine.config))
    assert wf.state is TaskState.FAILED
    assert wf.task("test").state is TaskState.FAILED
    assert wf.task("review").state is TaskState.SUCCEEDED and wf.task("document").state is TaskState.SUCCEEDED
    assert wf.task("commit").state is TaskState.SKIPPED and wf.task("commit").reason == "dependency test failed"
    [finding] = wf.task("test").findings
    assert (finding.path, finding.line, finding.severity) == ("tests/test_broken.py", 5, Severity.ERROR)
    assert run_git(Path(wf.cwd), "rev-parse", "HEAD") == run_git(project, "rev-parse", "HEAD")


async def test_the_commit_works_without_any_git_identity(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(key)
    # Like a fresh CI machine: git may not guess a name and address from the host.
    for key, value in {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "user.useConfigOnly",
        "GIT_CONFIG_VALUE_0": "true",
    }.items():
        monkeypatch.setenv(key, value)
    engine = await open_engine(project)
    [wf] = await engine.run_all(await sdlc_workflows(project, [project / "specs/add.md"], engine.config))
    assert wf.state is TaskState.SUCCEEDED, wf.reason
    author = run_git(Path(wf.cwd), "log", "-1", "--format=%an <%ae>").strip()
    assert author == "ADW <adw@localhost>"


async def test_specs_are_checked_before_anything_starts(project: Path, tmp_path: Path) -> None:
    with pytest.raises(AdwError, match="no such spec"):
        await sdlc_workflows(project, [project / "specs/nope.md"], AdwConfig())
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "add.md").write_text(ADD)
    with pytest.raises(AdwError, match="share the worktree name add"):
        await sdlc_workflows(project, [project / "specs/add.md", other / "add.md"], AdwConfig())
    (other / "My Add.md").write_text(ADD)
    (other / "my-add.md").write_text(ADD)
    with pytest.raises(AdwError, match="share the worktree name my-add"):
        await sdlc_workflows(project, [other / "My Add.md", other / "my-add.md"], AdwConfig())


async def test_spec_names_with_spaces_or_capitals_are_slugified_for_the_worktree_and_branch(project: Path) -> None:
    (project / "specs/My Add Spec.md").write_text(ADD)
    engine = await open_engine(project)
    [wf] = await engine.run_all(await sdlc_workflows(project, [project / "specs/My Add Spec.md"], engine.config))
    assert wf.state is TaskState.SUCCEEDED, [(t.id, t.reason) for t in wf.tasks if t.reason]
    assert (wf.name, wf.worktree, Path(wf.cwd).name) == ("my-add-spec", "my-add-spec", "my-add-spec")
    assert wf.task("worktree").outputs["branch"] == "adw/my-add-spec"
    assert run_git(Path(wf.cwd), "log", "-1", "--format=%s").strip() == "adw: My Add Spec"


@pytest.mark.parametrize(
    ("stem", "slug"),
    [("My Spec", "my-spec"), ("add_numbers", "add_numbers"), ("Fix: the ~bug~ (v1.2)", "fix-the-bug-v1.2"),
     ("Café crème", "cafe-creme"), ("..hidden", "hidden"), ("release.lock", "release")],
)
def test_worktree_names_of_specs(stem: str, slug: str) -> None:
    assert worktree_name(Path(f"specs/{stem}.md")) == slug


async def test_a_spec_without_a_usable_name_is_refused(project: Path) -> None:
    (project / "specs/+++.md").write_text(ADD)
    with pytest.raises(AdwError, match="no worktree name"):
        await sdlc_workflows(project, [project / "specs/+++.md"], AdwConfig())


async def test_a_spec_whose_worktree_exists_is_refused_before_anything_starts(project: Path) -> None:
    engine = await open_engine(project)
    [first] = await engine.run_all(await sdlc_workflows(project, [project / "specs/broken.md"], engine.config))
    assert first.state is TaskState.FAILED
    specs = [project / "specs/add.md", project / "specs/broken.md"]
    with pytest.raises(WorktreeExistsError) as refused:
        await sdlc_workflows(project, specs, engine.config, store=engine.store)
    [existing] = refused.value.existing
    assert existing.spec == str((project / "specs/broken.md").resolve())
    assert (existing.worktree, existing.path) == ("broken", first.cwd)
    assert (existing.workflow_id, existing.workflow_state) == (first.id, TaskState.FAILED)
    assert "broken" in refused.value.message and first.id in refused.value.message
    assert engine.store is not None and [wf.id for wf in engine.store.recent()] == [first.id]  # nothing started


def _exists(*states: TaskState | None) -> WorktreeExistsError:
    return WorktreeExistsError([
        ExistingWorktree(spec=f"/r/specs/s{i}.md", worktree=f"s{i}", path=f"/r.worktrees/s{i}",
                         workflow_id=None if state is None else f"wf{i}", workflow_state=state)
        for i, state in enumerate(states)
    ])


@pytest.mark.parametrize(
    ("states", "hint"),
    [
        ((TaskState.SUCCEEDED,), "its workflow succeeded: open or merge the worktree, run the spec again in a new "
                                 "worktree, or remove the worktree first"),
        ((TaskState.FAILED,), "resume its workflow, run the spec again in a new worktree, or remove the worktree "
                              "first"),
        ((TaskState.INTERRUPTED,), "resume its workflow, run the spec again in a new worktree, or remove the "
                                   "worktree first"),
        ((TaskState.RUNNING,), "its workflow is still running: wait for it or cancel it, run the spec again in a "
                               "new worktree, or remove the worktree first"),
        ((None,), "no ADW workflow ran there: run the spec again in a new worktree, or remove the worktree first"),
        ((TaskState.SUCCEEDED, TaskState.FAILED), "open or merge the worktrees whose workflow succeeded, resume the "
         "workflows that stopped, run the specs again in new worktrees, or remove the worktrees first"),
    ],
)
def test_the_refusal_says_what_fits_the_workflows_real_state(states: tuple[TaskState | None, ...], hint: str) -> None:
    """A succeeded workflow is not offered a resume (there is nothing left to run): its worktree is there to be
    opened or merged."""
    assert _exists(*states).hint == hint


async def test_a_worktree_made_by_hand_is_refused_without_a_workflow_to_resume(project: Path) -> None:
    worktrees = await Worktrees.open(project)
    await worktrees.create("add")
    deleted = (await worktrees.create("mul")).worktree.path
    shutil.rmtree(deleted)  # its folder is gone, but git still has it registered
    with pytest.raises(WorktreeExistsError) as refused:
        await sdlc_workflows(project, [project / "specs/add.md", project / "specs/mul.md"], AdwConfig())
    found = [(e.worktree, e.workflow_id, e.workflow_state) for e in refused.value.existing]
    assert found == [("add", None, None), ("mul", None, None)]


async def test_again_runs_in_a_new_suffixed_worktree(project: Path) -> None:
    worktrees = await Worktrees.open(project)
    await worktrees.create("add")
    run_git(project, "branch", "adw/add-2")  # a branch left by an earlier run: its name is taken too
    (project / "specs/add-3.md").write_text(MUL)  # and so is the name of another spec of the same run
    engine = await open_engine(project)
    specs = [project / "specs/add.md", project / "specs/add-3.md", project / "specs/mul.md"]
    workflows = await sdlc_workflows(project, specs, engine.config, existing="again", store=engine.store)
    assert [(wf.name, wf.worktree) for wf in workflows] == [("add-4", "add-4"), ("add-3", "add-3"), ("mul", "mul")]
    [wf] = await engine.run_all(workflows[:1])
    assert wf.state is TaskState.SUCCEEDED, [(t.id, t.reason) for t in wf.tasks if t.reason]
    assert Path(wf.cwd).name == "add-4" and wf.task("worktree").outputs["branch"] == "adw/add-4"


async def test_the_plan_phase_receives_the_scouts_report(make_repo: MakeRepo) -> None:
    plan_agent = "import pathlib, sys; pathlib.Path(sys.argv[1]).write_text(sys.argv[2] + '|' + sys.argv[3])"
    project = make_repo(
        {
            "pyproject.toml": PYPROJECT.replace(
                "[tool.adw.agents]",
                "[tool.adw.phases.plan]\nagent = \"command\"\n"
                f"command = [\"python\", \"-c\", \"{plan_agent}\", \"{{worktree}}/../seen.txt\", "
                "\"{relevant_files}\", \"{scout_report}\"]\n\n[tool.adw.agents]",
            ),
            "src/calc/__init__.py": "",
            "src/calc/ops.py": "def subtract(a, b):\n    \"\"\"a minus b.\"\"\"\n    return b - a\n",
            "src/calc/format.py": "def show(value):\n    return str(value)\n",
            "specs/sign.md": "# Fix the sign of subtract\n\nsubtract(a, b) returns b - a instead of a - b.\n",
        }
    )
    engine = await open_engine(project)
    [wf] = await engine.run_all(await sdlc_workflows(project, [project / "specs/sign.md"], engine.config))
    assert wf.task("scout").state is TaskState.SUCCEEDED and wf.task("plan").state is TaskState.SUCCEEDED
    assert wf.task("scout").outputs["task"] == "Fix the sign of subtract subtract(a, b) returns b - a instead of a - b."
    relevant, report = (Path(wf.cwd).parent / "seen.txt").read_text().split("|")
    assert relevant.splitlines()[0] == "src/calc/ops.py"
    assert Path(report) == Path(wf.cwd) / "scout_outputs/relevant_files.json" and Path(report).is_file()


async def test_resume_runs_what_did_not_succeed_with_the_current_configuration(project: Path) -> None:
    engine = await open_engine(project)
    [first] = await engine.run_all(await sdlc_workflows(project, [project / "specs/broken.md"], engine.config))
    assert first.task("test").state is TaskState.FAILED and first.task("test").agent == "pytest"
    engine.close()
    judge = "print('judged by the new test command')"
    (project / "pyproject.toml").write_text(
        PYPROJECT + f'\n[tool.adw.phases.test]\nagent = "command"\ncommand = ["{sys.executable}", "-c", "{judge}"]\n'
    )
    engine = await open_engine(project)
    again = engine.prepare_resume(first.id)
    assert [t.id for t in again.tasks if t.state is TaskState.PENDING] == ["test", "commit", "merge-preview"]
    assert again.task("test").agent == "command" and again.task("test").config == engine.config.phases["test"]
    assert again.task("build").attempts == first.task("build").attempts  # succeeded tasks are kept as they were
    resumed = await engine.run(again)
    assert resumed.state is TaskState.SUCCEEDED, [(t.id, t.reason) for t in resumed.tasks if t.reason]
    assert len(resumed.task("test").attempts) == 2 and len(resumed.task("build").attempts) == 1
    with pytest.raises(AdwError, match=f"workflow {first.id} already succeeded"):
        engine.prepare_resume(first.id)
    engine.close()
