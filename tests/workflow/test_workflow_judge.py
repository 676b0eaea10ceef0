"""Phases change only what they may, and test and review judge the change against its base commit."""

from __future__ import annotations

import asyncio
import io
import json
import sys
from pathlib import Path

import pytest

from adw.cli import main
from adw.errors import AdwError
from adw.git.checkpoints import Checkpoints
from adw.git.worktrees import MergePreview, Worktrees
from adw.sdlc.engine import open_engine
from adw.sdlc.pipeline import sdlc_workflows
from adw.workflow.judge import base_run
from adw.workflow.models import AgentResult, Finding, TaskState, Workflow
from adw.workflow.scope import DEFAULT_WRITES, in_scope
from tests.conftest import MakeRepo, run_git
from tests.realistic import COUPONS, FAILING_TEST, LINT_FINDING, RealisticProject

# A project as found in the wild: ruff configured to fix on every check, a lint finding already on main and a
# test that already fails there.
PYPROJECT = """[tool.pytest.ini_options]
pythonpath = ["src"]

[tool.ruff]
fix = true

[tool.ruff.lint]
select = ["F"]

[tool.adw.agents]
stop_grace = 0.3
test_command = ["python", "-m", "pytest", "-q"]
"""
LEGACY = "import os\n\n\ndef legacy():\n    return 1\n"  # F401: `os` unused, and `fix = true` would drop it
OLD_TEST = "def test_old_bug():\n    assert 1 + 1 == 3\n"


def spec(name: str, body: str, test: str) -> str:
    return (
        f"# {name}\n\n```python path=src/calc/{name}.py\n{body}```\n\n```python path=tests/test_{name}.py\n{test}```\n"
    )


ADD = spec(
    "add", "def add(a, b):\n    return a + b\n",
    "from calc.add import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
)
MUL = spec(
    "mul", "def mul(a, b):\n    return a * b\n",
    "from calc.mul import mul\n\n\ndef test_mul():\n    assert mul(2, 3) == 6\n"
)
BROKEN = spec(
    "broken",
    "import sys\n\n\ndef sub(a, b):\n    return a + b\n",
    "from calc.broken import sub\n\n\ndef test_sub():\n    assert sub(3, 1) == 2\n",
)


def make_project(make_repo: MakeRepo, extra_config: str = "") -> Path:
    return make_repo(
        {
            "README.md": "# calc\n",
            "pyproject.toml": PYPROJECT + extra_config,
            "src/calc/__init__.py": "",
            "src/calc/legacy.py": LEGACY,
            "tests/test_old.py": OLD_TEST,
            ".gitignore": "__pycache__/\n",
            "specs/add.md": ADD,
            "specs/mul.md": MUL,
            "specs/broken.md": BROKEN,
        }
    )


async def run_specs(project: Path, *names: str) -> list[Workflow]:
    engine = await open_engine(project)
    try:
        specs = [project / f"specs/{n}.md" for n in names]
        return await engine.run_all(await sdlc_workflows(project, specs, engine.config, store=engine.store))
    finally:
        engine.close()


def committed(worktree: Path) -> list[str]:
    return sorted(run_git(worktree, "show", "--name-only", "--format=", "HEAD").split())


def states(wf: Workflow) -> list[tuple[str, str, str]]:
    return [(t.id, t.state.value, t.reason) for t in wf.tasks]


# ---------------------------------------------------------------- write scopes


def test_write_scope_globs_follow_gitignore() -> None:
    docs = DEFAULT_WRITES["document"]
    assert all(in_scope(p, docs) for p in ["docs/changes/add.md", "README.md", "pkg/notes.md", "CHANGELOG"])
    assert not any(in_scope(p, docs) for p in ["src/calc/add.py", "documents/x.py", "pyproject.toml"])
    assert in_scope("src/a/b.py", ("src/**",)) and not in_scope("src/a/b.py", ("src/*",))
    assert in_scope("src/b.py", ("src/*.py",)) and not in_scope("lib/src/b.py", ("src/*.py",))
    assert not any(in_scope(p, DEFAULT_WRITES["review"]) for p in ["a.py", "docs/x.md"])


async def test_a_spec_on_a_project_with_pre_existing_problems(make_repo: MakeRepo) -> None:
    project = make_project(make_repo)
    [wf] = await run_specs(project, "add")
    worktree = Path(wf.cwd)
    # The review never applies the project's `fix = true`, and leaves no cache behind.
    assert (worktree / "src/calc/legacy.py").read_text() == LEGACY
    assert not (worktree / ".ruff_cache").exists() and not (worktree / ".pytest_cache").exists()
    # The failing test and the lint finding that were there before are listed apart and block nothing.
    assert wf.state is TaskState.SUCCEEDED, states(wf)
    test, review = wf.task("test"), wf.task("review")
    assert test.findings == [] and review.findings == []
    assert [f["message"].split(":")[0] for f in test.outputs["baseline"]["pre_existing"]] == ["test_old_bug"]
    assert [(f["path"], f["code"]) for f in review.outputs["baseline"]["pre_existing"]] == [
        ("src/calc/legacy.py", "F401")
    ]
    assert "0 new" in test.summary and "1 pre-existing" in test.summary
    assert "0 new" in review.summary and "1 pre-existing" in review.summary
    # The commit holds exactly the spec's files and the docs, and its message lists them.
    assert committed(worktree) == ["docs/changes/add.md", "src/calc/add.py", "tests/test_add.py"]
    message = run_git(worktree, "log", "-1", "--format=%B")
    listed = sorted(line.split(maxsplit=1)[1] for line in message.splitlines() if line.startswith(("A ", "M ", "D ")))
    assert listed == committed(worktree) and "Committed 3 file(s):" in message


WRITER = (
    "import pathlib; pathlib.Path('src/calc/legacy.py').write_text('tampered\\n'); "
    "pathlib.Path('stray.txt').write_text('x')"
)


@pytest.mark.parametrize("phase", ["review", "test"])
async def test_a_write_outside_the_phase_scope_is_restored_reported_and_kept_in_a_checkpoint(
    make_repo: MakeRepo, phase: str
) -> None:
    command = json.dumps(["python", "-c", WRITER])
    project = make_project(make_repo, f'\n[tool.adw.phases.{phase}]\nagent = "command"\ncommand = {command}\n')
    [wf] = await run_specs(project, "add")
    assert wf.state is TaskState.SUCCEEDED, states(wf)
    worktree = Path(wf.cwd)
    assert (worktree / "src/calc/legacy.py").read_text() == LEGACY and not (worktree / "stray.txt").exists()
    assert committed(worktree) == ["docs/changes/add.md", "src/calc/add.py", "tests/test_add.py"]
    # The phase that saw the write first reports it; git cannot tell which of the phases running with it wrote.
    [task] = [t for t in wf.tasks if "write_scope" in t.outputs]
    assert phase in [task.id, *task.outputs["write_scope"]["ran_with"]]
    [finding] = [f for t in wf.tasks for f in t.findings if f.source == "write-scope"]
    assert "src/calc/legacy.py" in finding.message and "stray.txt" in finding.message
    # Nothing is lost: the discarded writes are in the checkpoint taken after the phase.
    discarded = task.outputs["write_scope"]["discarded_in"]
    checkpoint = await (await Checkpoints.open(worktree)).get(discarded)
    assert run_git(worktree, "show", f"{checkpoint.commit}:src/calc/legacy.py") == "tampered\n"
    assert run_git(worktree, "show", f"{checkpoint.commit}:stray.txt") == "x"
    assert sorted(task.outputs["write_scope"]["restored"]) == ["src/calc/legacy.py", "stray.txt"]


# ---------------------------------------------------------------- merge preview


def test_the_merge_preview_lists_the_files_and_a_diffstat(
    make_repo: MakeRepo, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(make_repo)
    [wf] = asyncio.run(run_specs(project, "add"))

    async def preview_of(name: str) -> MergePreview:
        return await (await Worktrees.open(project)).merge_preview(name)

    preview = asyncio.run(preview_of("add"))
    by_path = {f.path: f for f in preview.files}
    assert sorted(by_path) == ["docs/changes/add.md", "src/calc/add.py", "tests/test_add.py"]
    assert by_path["src/calc/add.py"].status == "A" and by_path["src/calc/add.py"].insertions == 2
    assert preview.insertions == sum(f.insertions for f in preview.files) and preview.deletions == 0
    assert "3 files changed" in preview.diffstat
    assert wf.task("merge-preview").outputs["files"] == [f.model_dump(mode="json") for f in preview.files]
    capsys.readouterr()
    assert main(["-C", str(project), "worktree", "merge", "add", "--preview", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [f["path"] for f in shown["files"]] == sorted(by_path) and shown["diffstat"] == preview.diffstat
    assert main(["-C", str(project), "worktree", "merge", "add", "--preview"]) == 0
    text = capsys.readouterr().out
    assert "src/calc/add.py" in text and "3 files changed" in text
    # On a terminal the merge shows the same before asking; only a yes merges.
    main_head = run_git(project, "rev-parse", "main")
    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    assert main(["-C", str(project), "worktree", "merge", "add"]) == 1
    text = capsys.readouterr().out
    assert "src/calc/add.py" in text and "[y/N]" in text and "not merged" in text
    assert run_git(project, "rev-parse", "main") == main_head
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    assert main(["-C", str(project), "worktree", "merge", "add"]) == 0
    assert (project / "src/calc/add.py").is_file()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


# ---------------------------------------------------------------- judging against the base


async def test_a_new_failure_and_a_new_finding_are_reported_as_new(make_repo: MakeRepo) -> None:
    project = make_project(make_repo)
    [wf] = await run_specs(project, "broken")
    assert wf.task("test").state is TaskState.FAILED and wf.task("commit").state is TaskState.SKIPPED
    [failure] = wf.task("test").findings
    assert failure.path == "tests/test_broken.py" and failure.message.startswith("test_sub")
    [finding] = wf.task("review").findings
    assert (finding.path, finding.code) == ("src/calc/broken.py", "F401")
    assert "1 new" in wf.task("review").summary


async def test_block_on_any_blocks_on_a_pre_existing_failure(make_repo: MakeRepo) -> None:
    project = make_project(make_repo, '\n[tool.adw.phases.test]\nagent = "pytest"\nblock_on = "any"\n')
    [wf] = await run_specs(project, "add")
    assert wf.task("test").state is TaskState.FAILED and wf.task("commit").state is TaskState.SKIPPED


async def test_a_fixed_failure_is_good_news(make_repo: MakeRepo) -> None:
    project = make_project(make_repo)
    fix = "# fix\n\n```python path=tests/test_old.py\ndef test_old_bug():\n    assert 1 + 1 == 2\n```\n"
    (project / "specs/fix.md").write_text(fix)
    run_git(project, "add", "-A")
    run_git(project, "commit", "-q", "-m", "fix spec")
    [wf] = await run_specs(project, "fix")
    assert wf.state is TaskState.SUCCEEDED, states(wf)
    assert "fixed 1" in wf.task("test").summary
    assert [f["message"].split(":")[0] for f in wf.task("test").outputs["baseline"]["fixed"]] == ["test_old_bug"]


async def test_the_base_run_is_made_once_per_base_and_command(make_repo: MakeRepo) -> None:
    project = make_project(make_repo)
    first = await run_specs(project, "add", "mul")
    assert all(wf.state is TaskState.SUCCEEDED for wf in first), [states(wf) for wf in first]
    for phase in ("test", "review"):
        cached = sorted(wf.task(phase).outputs["baseline"]["cached"] for wf in first)
        assert cached == [False, True], phase  # the two workflows ran at once: one ran the base, one waited
    [again] = await run_specs(project, "broken")
    assert again.task("test").outputs["baseline"]["cached"] is True
    # The base was checked out apart and removed: the user's worktrees are the main one and the three specs'.
    listed = run_git(project, "worktree", "list", "--porcelain").splitlines()
    assert len([line for line in listed if line.startswith("worktree ")]) == 4


async def test_a_base_run_that_could_not_run_is_neither_kept_nor_compared_with(make_repo: MakeRepo) -> None:
    """A crash says nothing of the base (seen: the checkout sent to a cluster node, where it is not): kept, it
    would make every finding of every later run on that base look new. A check that ran and failed is kept."""
    project = make_repo({"README.md": "# p\n"})
    adw_dir, base = project / ".git/adw", run_git(project, "rev-parse", "HEAD").strip()
    ran: list[Path] = []

    async def crashed(checkout: Path) -> AgentResult:
        ran.append(checkout)
        return AgentResult.failed("agent pytest crashed: GitError: not a git repository")

    async def found(checkout: Path) -> AgentResult:
        ran.append(checkout)
        old = Finding(message="old", path="t.py", line=1, source="pytest")
        return AgentResult.failed("1 test failed", findings=[old])

    with pytest.raises(AdwError) as caught:
        await base_run(adw_dir, project, base, ["pytest", None], crashed)
    assert caught.value.message == "pytest did not run on it: agent pytest crashed: GitError: not a git repository"
    kept, cached = await base_run(adw_dir, project, base, ["pytest", None], found)
    assert cached is False and kept is not None and [f.message for f in kept.findings] == ["old"]
    assert len(ran) == 2
    # One kept before this was so is run again.
    [kept_file] = (adw_dir / "baseline").glob("*.json")
    kept_file.write_text('{"status": "failed", "summary": "", "findings": []}')
    kept, cached = await base_run(adw_dir, project, base, ["pytest", None], found)
    assert cached is False and len(ran) == 3
    assert (await base_run(adw_dir, project, base, ["pytest", None], found))[1] is True

    async def exited(checkout: Path) -> AgentResult:  # a check judged by its exit code: it ran, and failed
        ran.append(checkout)
        return AgentResult.failed("python exited with status 1", summary="failed (test_command is set)")

    for cached_before in (False, True):
        exited_run, cached = await base_run(adw_dir, project, base, ["command", None], exited)
        assert cached is cached_before and exited_run is not None and exited_run.status == "failed"
    assert len(ran) == 4


# ---------------------------------------------------------------- end to end, as a new user would


async def test_the_sdlc_on_a_realistic_project_commits_the_spec_and_judges_only_the_change(
    realistic_project: RealisticProject,
) -> None:
    """Its own .venv, ruff's `fix = true`, a pre-existing lint finding and failing test, no ADW configuration."""
    root = realistic_project.root
    realistic_project.write("specs/coupons.md", COUPONS)
    legacy = (root / LINT_FINDING[0]).read_text()
    [wf] = await run_specs(root, "coupons")
    worktree = Path(wf.cwd)
    assert wf.state is TaskState.SUCCEEDED, states(wf)
    assert (worktree / LINT_FINDING[0]).read_text() == legacy
    assert committed(worktree) == ["docs/changes/coupons.md", "src/shop/coupons.py", "tests/test_coupons.py"]
    test, review = wf.task("test"), wf.task("review")
    # The new test ran, against the worktree's code (the main worktree has no shop.coupons).
    assert test.summary.startswith("2 passed, 1 failed") and "0 new, 1 pre-existing" in test.summary
    module, name = FAILING_TEST.split("::")
    assert [f["key"] for f in test.outputs["baseline"]["pre_existing"]] == [
        f"{module.removesuffix('.py').replace('/', '.')}::{name}"
    ]
    assert "0 new, 1 pre-existing" in review.summary
    assert [(f["path"], f["line"], f["code"]) for f in review.outputs["baseline"]["pre_existing"]] == [LINT_FINDING]
    assert test.findings == [] and review.findings == []
