"""`adw status` in words for people: plain aligned tables of the workflows, or of one workflow's tasks, and
`--watch` into a pipe writing only the final table once nothing runs."""

from __future__ import annotations

from pathlib import Path

from adw.workflow.models import Task, TaskState, Workflow
from adw.workflow.store import Store
from tests.cli.test_cli_smoke import adw


def _stored(repo: Path) -> Workflow:
    workflow = Workflow(
        id="wf-status1",
        name="add-sub",
        repo=str(repo),
        cwd=str(repo),
        state=TaskState.FAILED,
        started_at=100.0,
        finished_at=112.5,
        tasks=[
            Task(id="build", phase="build", agent="claude", state=TaskState.SUCCEEDED, summary="added sub"),
            Task(id="test", phase="test", agent="pytest", deps=["build"], state=TaskState.FAILED, reason="1 failed"),
        ],
    )
    store = Store.for_common_dir(repo / ".git")
    try:
        store.save(workflow)
    finally:
        store.close()
    return workflow


def test_status_lists_the_workflows_in_aligned_columns(repo: Path) -> None:
    _stored(repo)
    title, header, row = adw(repo, "status").stdout.splitlines()
    assert title == "workflows"
    assert header.split() == ["workflow", "id", "phase", "agent", "state", "elapsed", "cost"]
    assert row.split()[:2] == ["add-sub", "wf-status1"] and "failed" in row.split() and "12.5s" in row
    assert row.index("wf-status1") == header.index("id")  # the columns line up


def test_status_of_one_workflow_and_its_final_watch_frame_list_its_tasks(repo: Path) -> None:
    _stored(repo)
    shown = adw(repo, "status", "wf-status1").stdout.splitlines()
    assert shown[0] == "add-sub [wf-status1] — failed"
    assert shown[1].split() == ["task", "agent", "state", "attempts", "elapsed", "cost", "findings", "summary"]
    assert shown[2].split()[:3] == ["build", "claude", "succeeded"] and shown[2].endswith("added sub")
    assert shown[3].split()[:3] == ["test", "pytest", "failed"] and shown[3].endswith("1 failed")
    assert shown[3].index("failed") == shown[1].index("state")

    # Not a terminal, and the workflow has ended: one frame, no escape codes, and the watch returns.
    assert adw(repo, "status", "wf-sta", "--watch").stdout.splitlines() == shown
