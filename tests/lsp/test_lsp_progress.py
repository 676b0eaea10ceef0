"""Work-done progress: one fresh token per running task with begin/report/end carrying the agent's events, a
client-side cancel that stops that task only (and its process), log lines for a client without progress, and
one aggregated progress for a client that asks for it (the extension)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from adw.lsp.progress import agents_text
from tests.lsp.conftest import (
    SERVER,
    Recorder,
    command_phase,
    eventually,
    run,
    server_env,
    start,
    task_of,
    wait_workflow,
    write_config,
)

SLOW = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(60)"
CHATTY = (
    "import time\n"
    "for i in range(1, 6):\n"
    "    print(f'checking part {i} [{i * 20:3d}%]', flush=True)\n"
    "    time.sleep(0.3)\n"
)

# pytest-lsp checks that the server only sends window/workDoneProgress/create to clients that support it.
pytestmark = pytest.mark.filterwarnings("error::pytest_lsp.LspSpecificationWarning")


def _begin(reports: list[Any]) -> types.WorkDoneProgressBegin:
    assert reports and isinstance(reports[0], types.WorkDoneProgressBegin), reports
    return reports[0]


def _token_of(client: LanguageClient, title_part: str) -> str | None:
    for token, reports in client.progress_reports.items():
        if reports and isinstance(reports[0], types.WorkDoneProgressBegin) and title_part in reports[0].title:
            return str(token)
    return None


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def test_cancelling_one_progress_cancels_that_task_only(
    vscode: LanguageClient, workspace: Path, tmp_path: Path
) -> None:
    client, root = vscode, workspace
    pid_file = tmp_path / "test.pid"
    write_config(root, command_phase("test", "-c", SLOW, str(pid_file)) + command_phase("review", "-c", CHATTY))
    [workflow] = (await run(client, "startSdlc", ["specs/mul.md"]))["workflows"]

    token = await eventually(lambda: _token_of(client, ": test (command)"), 60, "the test phase's progress")
    await eventually(lambda: pid_file.is_file() and pid_file.read_text(), 30, "the slow agent to start")
    pid = int(pid_file.read_text())
    assert _alive(pid)
    assert task_of(await run(client, "status", workflow["id"]), "test")["state"] == "running"

    cancelled_at = time.monotonic()
    client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
    finished = await wait_workflow(client, workflow["id"], 60)
    states = {task["id"]: task["state"] for task in finished["tasks"]}
    assert states == {
        "worktree": "succeeded", "scout": "succeeded", "plan": "succeeded", "build": "succeeded",
        "test": "cancelled", "review": "succeeded", "document": "succeeded",
        "commit": "skipped", "merge-preview": "skipped",
    }, states
    assert finished["state"] == "cancelled"
    assert "cancelled from the editor" in task_of(finished, "test")["reason"]
    await eventually(lambda: not _alive(pid), 10, "the cancelled agent's process to be gone")
    assert time.monotonic() - cancelled_at < 20  # the 60 s sleep was stopped, not waited for

    # One fresh token per task run, each begin … end; the cancelled one says so.
    await eventually(
        lambda: all(isinstance(r[-1], types.WorkDoneProgressEnd) for r in client.progress_reports.values()),
        10, "every progress to end",
    )
    by_title = {_begin(reports).title: reports for reports in client.progress_reports.values()}
    phases = sorted(title.split(": ", 1)[1] for title in by_title)
    assert phases == sorted(
        ["worktree (worktree)", "scout (scout)", "plan (spec-apply)", "build (spec-apply)", "test (command)",
         "review (command)", "document (summary)"]
    ), phases
    assert all(_begin(reports).cancellable for reports in by_title.values())
    test_end = client.progress_reports[token][-1]
    assert isinstance(test_end, types.WorkDoneProgressEnd) and (test_end.message or "").startswith("cancelled")

    review = next(reports for title, reports in by_title.items() if title.endswith("review (command)"))
    assert review[-1].message == "succeeded"
    messages = [r.message for r in review if isinstance(r, types.WorkDoneProgressReport)]
    assert any("checkpoint" in (m or "") for m in messages), messages  # engine events reach the progress too
    percentages = [r.percentage for r in review if isinstance(r, types.WorkDoneProgressReport) and r.percentage]
    assert percentages and percentages == sorted(percentages) and set(percentages) <= {20, 40, 60, 80, 100}
    assert any("checking part" in (m or "") for m in messages), messages  # the agent's live output


async def test_client_without_progress_gets_log_lines(minimal: LanguageClient, workspace: Path) -> None:
    client, root = minimal, workspace
    quick = "print('all good')"
    write_config(root, "".join(command_phase(phase, "-c", quick) for phase in ("test", "review", "document")))
    [workflow] = (await run(client, "startSdlc", ["specs/mul.md"]))["workflows"]
    finished = await wait_workflow(client, workflow["id"])
    assert finished["state"] == "succeeded", finished["reason"]
    assert client.progress_reports == {}  # no window/workDoneProgress/create was sent
    await eventually(
        lambda: any("/merge-preview: succeeded" in m.message for m in client.log_messages), 10, "the last log line"
    )
    lines = [m.message for m in client.log_messages]
    assert "ADW mul: plan (spec-apply): started" in lines
    assert f"ADW {workflow['id']}/plan: succeeded" in lines
    assert any(line.startswith(f"ADW {workflow['id']}/plan: checkpoint") for line in lines), lines


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER, server_env=server_env()))
async def aggregating(lsp_client: LanguageClient, workspace: Path) -> AsyncIterator[None]:
    """VS Code's capabilities and the extension's options: codicons and one aggregated progress."""
    options = {"codicons": True, "progress": "aggregate"}
    await start(lsp_client, workspace, client_capabilities("visual-studio-code"), Recorder(), options)
    yield
    await lsp_client.shutdown_session()


def test_agents_text() -> None:
    assert agents_text(4, 2) == "4/6 agents, 2 waiting"
    assert agents_text(1, 0) == "1/1 agents"


async def test_an_aggregating_client_gets_one_progress_counting_running_and_waiting_agents(
    aggregating: LanguageClient, workspace: Path
) -> None:
    """With one agent slot, test, review and document are ready together: one runs, two wait. One progress
    says so; cancelling it cancels the running workflow."""
    client, root = aggregating, workspace
    slow = "import time; time.sleep(60)"
    write_config(root, "".join(command_phase(phase, "-c", slow) for phase in ("test", "review", "document")))
    [workflow] = (await run(client, "startSdlc", ["specs/mul.md"], {"maxAgents": 1}))["workflows"]

    def messages() -> list[str]:
        return [r.message or "" for reports in client.progress_reports.values() for r in reports
                if isinstance(r, types.WorkDoneProgressReport)]

    await eventually(lambda: "1/3 agents, 2 waiting" in messages(), 60, "one running and two waiting agents")
    # No progress per task: only the aggregated one (begun again should every agent be idle for a moment).
    assert {_begin(reports).title for reports in client.progress_reports.values()} == {"ADW"}
    token = next(token for token, reports in client.progress_reports.items()
                 if any(getattr(r, "message", None) == "1/3 agents, 2 waiting" for r in reports))
    assert _begin(client.progress_reports[token]).cancellable

    client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
    finished = await wait_workflow(client, workflow["id"], 60)
    assert finished["state"] == "cancelled"
    assert {task_of(finished, phase)["state"] for phase in ("test", "review", "document")} == {"cancelled"}
    await eventually(lambda: isinstance(client.progress_reports[token][-1], types.WorkDoneProgressEnd), 10,
                     "the progress to end")
