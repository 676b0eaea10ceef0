"""Crash recovery and the command line across processes: SIGKILL mid-workflow, restart, resume; `adw cancel`
from another process; the JSON of status and logs; `adw demo`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from adw.cli import main
from adw.sdlc.engine import open_engine
from adw.workflow.models import TaskState
from adw.workflow.store import Store
from tests.conftest import MakeRepo

TESTS = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    paths = [str(TESTS), str(TESTS.parent / "server"), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def _marked(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.info["status"] != psutil.STATUS_ZOMBIE and marker in " ".join(proc.info["cmdline"] or []):
            found.append(proc)
    return found


def _agents_waiting_for(go: Path) -> list[psutil.Process]:
    """The fake agents of one test (tests/fakes/orchestrator.py): their code names its `go` file; other
    checkouts' suites may be running the same agents at the same time."""
    return _marked(f"pathlib.Path({str(go)!r})")


def _wait_for(predicate: Callable[[], bool], limit: float = 15.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


async def _until(predicate: Callable[[], bool], limit: float = 15.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.05)


async def test_sigkill_mid_workflow_then_restart_resumes_without_rerunning_or_orphans(
    repo: Path, tmp_path: Path
) -> None:
    runs, go = tmp_path / "runs.txt", tmp_path / "go"
    orchestrator = await asyncio.create_subprocess_exec(
        sys.executable,
        str(TESTS / "fakes" / "orchestrator.py"),
        str(repo),
        str(runs),
        str(go),
        stdout=subprocess.PIPE,
        env=_env(),
    )
    assert orchestrator.stdout is not None
    workflow_id = (await orchestrator.stdout.readline()).decode().strip()
    store = Store.for_common_dir(repo / ".git")
    await _until(lambda: runs.exists() and runs.read_text().splitlines() == ["first", "second"])
    await _until(lambda: store.load(workflow_id).task("second").state is TaskState.RUNNING)  # type: ignore[union-attr]
    [agent] = _agents_waiting_for(go)
    orchestrator.send_signal(signal.SIGKILL)
    await orchestrator.wait()
    assert agent.is_running()  # the crash left it behind: it lives in its own process group

    engine = await open_engine(repo)
    assert not _agents_waiting_for(go)  # the restart found it from the stored record and stopped it
    crashed = engine.get(workflow_id)
    assert [t.state for t in crashed.tasks] == [TaskState.SUCCEEDED, TaskState.INTERRUPTED, TaskState.PENDING]
    assert crashed.state is TaskState.INTERRUPTED

    go.touch()
    resumed = await engine.resume(workflow_id)
    assert resumed.state is TaskState.SUCCEEDED
    assert runs.read_text().splitlines() == ["first", "second", "second", "third"]  # first was not re-run
    assert len(resumed.task("second").attempts) == 2
    assert not _agents_waiting_for(go)
    engine.close()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


Orchestrate = Callable[..., "subprocess.Popen[str]"]


@pytest.fixture
def orchestrate(tmp_path: Path) -> Iterator[Orchestrate]:
    """Starts a fake orchestrator (tests/fakes/SCRIPT ARGS…); in the end kills it and any process of this
    test still running (their command lines name its folder), whether the test passed or not."""
    started: list[subprocess.Popen[str]] = []

    def start(script: str, *args: Path) -> subprocess.Popen[str]:
        argv = [sys.executable, str(TESTS / "fakes" / script), *map(str, args)]
        started.append(subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=_env()))
        return started[-1]

    yield start
    for orchestrator in started:
        orchestrator.kill()
        orchestrator.wait()
    for leftover in _marked(str(tmp_path)):
        with contextlib.suppress(psutil.Error):
            leftover.kill()


def test_after_a_crash_any_command_stops_every_process_the_agents_started(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], orchestrate: Orchestrate
) -> None:
    """Both agents started a grandchild in a new session; after ADW is killed one agent exits on its own,
    leaving its grandchild behind, the other runs on. The next command finds all three by what was stored."""
    orchestrator = orchestrate("tree_orchestrator.py", repo, tmp_path)
    assert orchestrator.stdout is not None
    workflow_id = orchestrator.stdout.readline().strip()
    pid_files = [tmp_path / "exits.pids", tmp_path / "lingers.pids"]
    _wait_for(lambda: all(path.exists() for path in pid_files))
    (exited_leader, orphan), (leader, grandchild) = ([int(pid) for pid in p.read_text().split()] for p in pid_files)
    orchestrator.kill()
    orchestrator.wait()
    (tmp_path / "go").touch()
    _wait_for(lambda: not _alive(exited_leader))
    assert all(_alive(pid) for pid in (orphan, leader, grandchild))  # the crash left them behind

    assert main(["-C", str(repo), "status", workflow_id, "--json"]) == 0
    assert not any(_alive(pid) for pid in (orphan, leader, grandchild))
    states = {task["id"]: task["state"] for task in json.loads(capsys.readouterr().out)["tasks"]}
    assert states == {"exits": "interrupted", "lingers": "interrupted"}


def test_a_killed_owner_not_yet_reaped_counts_as_gone_for_cancel_and_resume(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], orchestrate: Orchestrate
) -> None:
    runs, go = tmp_path / "runs.txt", tmp_path / "go"
    orchestrator = orchestrate("orchestrator.py", repo, runs, go)
    assert orchestrator.stdout is not None
    workflow_id = orchestrator.stdout.readline().strip()
    store = Store.for_common_dir(repo / ".git")
    _wait_for(lambda: runs.exists() and runs.read_text().splitlines() == ["first", "second"])
    _wait_for(lambda: store.load(workflow_id).task("second").state is TaskState.RUNNING)  # type: ignore[union-attr]
    orchestrator.kill()  # and not reaped yet: a zombie, as under a parent that has not waited for it
    _wait_for(lambda: psutil.Process(orchestrator.pid).status() == psutil.STATUS_ZOMBIE)

    # As for any crashed run: its agents were stopped and it is marked interrupted, not "running" forever.
    assert main(["-C", str(repo), "cancel", workflow_id]) == 2
    assert f"workflow {workflow_id} already ended: interrupted" in capsys.readouterr().err
    go.touch()
    assert main(["-C", str(repo), "resume", workflow_id, "--json"]) == 0
    [resumed] = json.loads(capsys.readouterr().out)["workflows"]
    assert resumed["state"] == "succeeded"
    assert not _agents_waiting_for(go)
    store.close()


SLOW_BUILD = """
[tool.adw.agents]
stop_grace = 0.3

[tool.adw.phases.build]
agent = "command"
command = ["{python}", "-c", "import time  # adw-cancel-test\\nwhile True: time.sleep(0.05)"]
"""


def test_adw_cancel_from_another_process_stops_the_running_agent(make_repo: MakeRepo, tmp_path: Path) -> None:
    project = make_repo(
        {
            "pyproject.toml": SLOW_BUILD.replace("{python}", sys.executable),
            "specs/slow.md": "# Slow\n```text path=a.txt\na\n```\n",
        }
    )
    runner = subprocess.Popen(
        [sys.executable, "-m", "adw", "-C", str(project), "sdlc", "specs/slow.md", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    store = Store.for_common_dir(project / ".git")
    _wait_for(lambda: bool(_marked("adw-cancel-test")))
    [workflow] = store.recent()
    assert main(["-C", str(project), "cancel", workflow.id, "--task", "build"]) == 0
    out, _ = runner.communicate(timeout=30)
    assert runner.returncode == 1
    [result] = json.loads(out)["workflows"]
    states = {task["id"]: task["state"] for task in result["tasks"]}
    assert states["build"] == "cancelled" and states["commit"] == "skipped" and states["plan"] == "succeeded"
    assert not _marked("adw-cancel-test")


def test_status_and_logs_json_list_tasks_findings_and_events(
    make_repo: MakeRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = "# Lint\n\n```python path=src/lint.py\nimport os\n```\n"
    test_command = '[agents]\ntest_command = ["python", "-m", "pytest", "-q"]\n'  # no venv: ADW's interpreter
    project = make_repo({"specs/lint.md": spec, ".gitignore": "__pycache__/\n", ".adw.toml": test_command})
    assert main(["-C", str(project), "sdlc", "specs/lint.md", "--json"]) == 0
    workflow_id = json.loads(capsys.readouterr().out)["workflows"][0]["id"]

    assert main(["-C", str(project), "status", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["workflows"]
    assert [wf["id"] for wf in listed] == [workflow_id]
    assert main(["-C", str(project), "status", workflow_id[:6], "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    review = next(task for task in status["tasks"] if task["id"] == "review")
    assert review["findings"] == [
        {
            "path": "src/lint.py",
            "line": 1,
            "column": 8,
            "severity": "warning",
            "message": "`os` imported but unused",
            "source": "ruff",
            "code": "F401",
            "key": None,  # only test failures have one: their test id
        }
    ]
    assert [task["id"] for task in status["tasks"]] == [
        "worktree",
        "scout",
        "plan",
        "build",
        "test",
        "review",
        "document",
        "commit",
        "merge-preview",
    ]
    assert main(["-C", str(project), "logs", workflow_id, "--task", "review", "--json"]) == 0
    events = json.loads(capsys.readouterr().out)["events"]
    assert events[0]["type"] == "task_started" and events[-1]["type"] == "task_finished"
    assert any(event["type"] == "finding" for event in events)

    assert main(["-C", str(project), "cancel", workflow_id]) == 2
    assert "already ended: succeeded" in capsys.readouterr().err


def test_adw_demo_runs_three_specs_in_parallel(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", str(tmp_path / "calc"), "--json"]) == 0
    workflows = json.loads(capsys.readouterr().out)["workflows"]
    assert sorted(wf["name"] for wf in workflows) == ["add", "greet", "multiply"]
    assert all(wf["state"] == "succeeded" for wf in workflows)
    starts = [wf["started_at"] for wf in workflows]
    ends = [wf["finished_at"] for wf in workflows]
    assert max(starts) < min(ends)  # all three were running at once
    for wf in workflows:
        merge = next(task for task in wf["tasks"] if task["id"] == "merge-preview")
        assert merge["outputs"]["clean"] is True
    # The run's timeline: the three workflows started together, each task's one attempt succeeded, ran in parallel.
    assert main(["-C", str(tmp_path / "calc"), "timeline", workflows[0]["id"], "--json"]) == 0
    drawn = json.loads(capsys.readouterr().out)
    assert sorted(lane["name"] for lane in drawn["lanes"]) == ["add", "greet", "multiply"]
    bars = [bar for lane in drawn["lanes"] for bar in lane["bars"]]
    assert {bar["state"] for bar in bars} <= {"succeeded", "queued"}
    assert sum(bar["state"] == "succeeded" for bar in bars) == sum(len(wf["tasks"]) for wf in workflows)
    assert drawn["speedup"] > 1 and drawn["critical_path"][-1].endswith("/merge-preview")
