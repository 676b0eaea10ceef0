"""Best of N (`adw sdlc SPEC --best-of N`, `adw compare`, `adw pick`): three candidates of one spec built by the
built-in agent (the spec's files), a command agent that breaks an existing test and the fake Claude Code (a small
`src/hello.py`); ranked with the reasons, one picked and merged, the others archived and restorable."""

from __future__ import annotations

import itertools
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from adw.cli import main
from tests.conftest import MakeRepo, run_git
from tests.fakes import install_fakes
from tests.faults import FaultyGit
from tests.sdlc.test_workflow_sdlc import MUL, PYPROJECT

ADD = "def add(a, b):\n    return a + b\n"
BREAK_ADD = "import pathlib; pathlib.Path('src/calc/ops.py').write_text('def add(a, b):\\n    return a - b\\n')"
# The build phase as configured (the built-in agent), with the command a `command` candidate runs.
CONFIG = PYPROJECT + f"""
[tool.adw.phases.build]
agent = "spec-apply"
command = {json.dumps([sys.executable, "-c", BREAK_ADD])}
"""


@pytest.fixture
def project(make_repo: MakeRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = install_fakes(tmp_path / "bin", "claude")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    monkeypatch.setenv("FAKE_CLAUDE", "success")  # writes a two-line src/hello.py, reports a cost
    return make_repo(
        {
            "pyproject.toml": CONFIG,
            ".gitignore": "__pycache__/\n",
            "src/calc/__init__.py": "",
            "src/calc/ops.py": ADD,
            "tests/test_ops.py": "from calc.ops import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n",
            "specs/mul.md": MUL,
        }
    )


def adw(project: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code = main(["-C", str(project), *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_three_candidates_ranked_picked_and_the_others_archived(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, ran = adw(project, capsys, "sdlc", "specs/mul.md", "--best-of", "3", "--agents", "spec-apply,command,claude")
    assert code == 0  # one candidate succeeded: the others' failures are what the comparison is about
    workflows = ran["workflows"]
    assert [wf["worktree"] for wf in workflows] == ["mul-1", "mul-2", "mul-3"]
    assert [wf["best_of"]["number"] for wf in workflows] == [1, 2, 3]
    assert [next(t["agent"] for t in wf["tasks"] if t["id"] == "build") for wf in workflows] == [
        "spec-apply", "command", "claude"]
    assert [next(t["agent"] for t in wf["tasks"] if t["id"] == "plan") for wf in workflows] == ["spec-apply"] * 3
    group = workflows[0]["best_of"]["group"]
    assert {wf["best_of"]["group"] for wf in workflows} == {group}
    assert [wf["state"] for wf in workflows] == ["succeeded", "failed", "succeeded"]

    # Ranked: regressions first (the broken test goes last), then findings (none), then size (the smaller first).
    code, compared = adw(project, capsys, "compare", workflows[2]["id"])  # any candidate's id names the run
    assert code == 0 and compared["group"] == group
    rows = compared["candidates"]
    assert [(row["rank"], row["number"]) for row in rows] == [(1, 3), (2, 1), (3, 2)]
    small, spec, broken = rows
    # hello.py (2 lines) and the document phase's note; the spec's module, its test and the note
    assert (small["new_test_failures"], small["new_findings"], small["files"]) == (0, 0, 2)
    assert small["cost_usd"] == pytest.approx(0.0123) and small["deletions"] == 0
    assert small["reasons"] == ["no new test failures", "no new review findings",
                                f"+{small['insertions']} -0 in 2 file(s)", "best of the candidates"]
    assert (spec["new_test_failures"], spec["new_findings"], spec["files"]) == (0, 0, 3)
    assert spec["insertions"] > small["insertions"]
    assert spec["reasons"][-1] == f"below #3: more changed lines ({spec['insertions']} vs {small['insertions']})"
    assert broken["new_test_failures"] == 1 and "1 new test failure" in broken["reasons"]
    assert broken["reasons"][-1] == "below #1: more new test failures (1 vs 0)"
    assert all(row["seconds"] is not None and row["seconds"] > 0 for row in rows)
    # What a diff viewer needs: each changed file with its counts, between the base commit and the files as they are.
    assert "src/hello.py" in [change["path"] for change in small["changes"]]
    ops = next(change for change in broken["changes"] if change["path"] == "src/calc/ops.py")
    assert (ops["status"], ops["insertions"], ops["deletions"]) == ("M", 1, 1)
    assert {row["base_commit"] for row in rows} == {run_git(project, "rev-parse", "main").strip()}
    assert {row["repo"] for row in rows} == {str(project)}
    assert run_git(project, "show", f"{broken['tip']}:src/calc/ops.py") == "def add(a, b):\n    return a - b\n"
    assert [Path(row["path"]).name for row in rows] == ["mul-3", "mul-1", "mul-2"]

    # The text output shows the same ranking and the reasons.
    assert main(["-C", str(project), "compare", group]) == 0
    text = capsys.readouterr().out
    assert "1. candidate 3  mul-3  claude  succeeded  $0.01" in text and "below #1: more new test failures" in text

    # A candidate that did not commit cannot be picked; nothing changes.
    main_before = run_git(project, "rev-parse", "main").strip()
    code, refused = adw(project, capsys, "pick", group, "2")
    assert code == 2 and "did not finish" in refused["message"]
    assert run_git(project, "rev-parse", "main").strip() == main_before

    code, picked = adw(project, capsys, "pick", group, "1")
    assert code == 0 and picked["picked"] == 1 and picked["merge"]["merged"] is True
    assert (project / "src/calc/mul.py").read_text() == "def mul(a, b):\n    return a * b\n"
    assert run_git(project, "log", "-1", "--format=%s").startswith("Merge branch 'adw/mul-1' into main")
    archived = {a["worktree"]: a["archive_ref"] for a in picked["archived"]}
    assert set(archived) == {"mul-2", "mul-3"} and all(ref.startswith("refs/adw/archive/") for ref in archived.values())
    names = run_git(project, "worktree", "list")
    assert "mul-1" in names and "mul-2" not in names and "mul-3" not in names

    # Picked again (say after an interruption): nothing more to merge or archive, and it says so.
    code, again = adw(project, capsys, "pick", group, "1")
    assert code == 0 and again["merge"] is None and "already merged" in again["message"]
    assert all(a["archive_ref"] is None for a in again["archived"])

    # The comparison still reads the archived candidates; the one with the regression comes back intact.
    code, later = adw(project, capsys, "compare", group)
    assert [row["number"] for row in later["candidates"]] == [3, 1, 2]
    assert [row["files"] for row in later["candidates"]] == [row["files"] for row in rows]
    gone = later["candidates"][2]  # archived: its diff comes from the archive, its worktree is no more
    assert gone["path"] is None and gone["changes"] == broken["changes"]
    assert run_git(project, "show", f"{gone['tip']}:src/calc/ops.py") == "def add(a, b):\n    return a - b\n"
    code, restored = adw(project, capsys, "worktree", "restore", "mul-2")
    assert code == 0
    assert (Path(restored["worktree"]["path"]) / "src/calc/ops.py").read_text() == "def add(a, b):\n    return a - b\n"


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["--best-of", "1"], "--best-of 1: expected a number from 2 to 10"),
        (["--best-of", "2", "--agents", "claude,nope"], "--agents: unknown agent nope"),
        (["--best-of", "2", "--agents", "claude,codex,aider"], "--agents: expected 1 to 2 comma-separated names"),
        (["--agents", "claude"], "--agents and --models choose the candidates of --best-of N"),
        (["--best-of", "2", "--again"], "--best-of runs one spec, as new candidates"),
    ],
)
def test_bad_best_of_flags_are_refused_before_anything_starts(
    project: Path, capsys: pytest.CaptureFixture[str], argv: list[str], error: str
) -> None:
    code, refused = adw(project, capsys, "sdlc", "specs/mul.md", *argv)
    assert code == 2 and refused["message"].startswith(error), refused
    assert "mul" not in run_git(project, "worktree", "list")
    assert not (project / ".git" / "adw" / "state.db").exists() or run_git(project, "branch", "--list", "adw/*") == ""


def test_compare_and_pick_of_an_unknown_run_say_what_to_pass(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["compare", "nothing"], ["pick", "nothing", "1"]):
        code, refused = adw(project, capsys, *argv)
        assert code == 2 and refused["message"] == "no best-of run 'nothing'"
        assert "adw sdlc --best-of" in refused["hint"]


def _work_kept(project: Path, name: str, rel: str, text: str) -> bool:
    """The candidate's file is in its worktree, or in one of its archives."""
    folder = project.parent / f"{project.name}.worktrees" / name
    if (folder / rel).is_file() and (folder / rel).read_text() == text:
        return True
    refs = run_git(project, "for-each-ref", "--format=%(refname)", f"refs/adw/archive/{name}/").split()
    return any(run_git(project, "show", f"{ref}:{rel}") == text for ref in refs)


@pytest.mark.faults
def test_a_pick_killed_at_any_point_loses_nothing_and_runs_again_to_the_end(
    project: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, ran = adw(project, capsys, "sdlc", "specs/mul.md", "--best-of", "3", "--agents", "spec-apply,command,claude")
    group = ran["workflows"][0]["best_of"]["group"]
    before = run_git(project, "rev-parse", "main").strip()
    work = {"mul-2": ("src/calc/ops.py", "def add(a, b):\n    return a - b\n"),
            "mul-3": ("src/hello.py", "def hello():\n    return 'hi'\n")}
    faulty = FaultyGit(tmp_path / "faults")

    def reset() -> None:  # main as before the pick, the two archived candidates back in their worktrees
        run_git(project, "reset", "-q", "--hard", before)
        for name in work:
            if not (project.parent / f"{project.name}.worktrees" / name).exists():
                assert main(["-C", str(project), "worktree", "restore", name]) == 0
        capsys.readouterr()

    calls = len(faulty.run(project, "pick", group, "1", "--json").calls)
    reset()
    kills = 0
    for kill_at in itertools.count(1, max(1, calls // 5)):  # ~5 points across the pick, till one finishes
        run = faulty.run(project, "pick", group, "1", "--json", kill_at=kill_at)
        if not run.killed:
            assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
            break
        kills += 1
        assert all(_work_kept(project, name, *kept) for name, kept in work.items()), f"kill at {kill_at}"
        code, picked = adw(project, capsys, "pick", group, "1")  # run again: it finishes the job
        assert code == 0, f"kill at {kill_at}: {picked}"
        assert (project / "src/calc/mul.py").is_file() and "mul-2" not in run_git(project, "worktree", "list")
        assert all(_work_kept(project, name, *kept) for name, kept in work.items()), f"kill at {kill_at}"
        assert run_git(project, "fsck", "--strict", "--no-dangling", "--no-progress") == ""
        reset()
    assert kills >= 4
