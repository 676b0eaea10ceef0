"""The editor's way to the cluster: the language server runs a spec's SDLC on the cluster the editor's settings
(adw.executor, adw.rayAddress) name, as startSdlc's options, with the results, events and cancel of a local
run. (The CLI's way: tests/cluster/test_ray_executor.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_lsp
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.cluster.conftest import Cluster
from tests.cluster.test_ray_executor import _gone
from tests.conftest import run_git
from tests.lsp.conftest import (
    MINIMAL,
    SERVER,
    Recorder,
    command_phase,
    eventually,
    make_workspace,
    run,
    server_env,
    start,
    task_of,
    wait_workflow,
    write_config,
)

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return make_workspace(tmp_path / "ws")


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER, server_env=server_env()))
async def editor(lsp_client: LanguageClient, workspace: Path) -> AsyncIterator[None]:
    await start(lsp_client, workspace, MINIMAL, Recorder())
    yield
    await lsp_client.shutdown_session()


def _on(cluster: Cluster) -> dict[str, str]:
    """startSdlc's options as the extension sends them from adw.executor and adw.rayAddress."""
    return {"executor": "ray", "address": cluster.address}


async def test_the_editor_runs_a_specs_sdlc_on_the_cluster_its_settings_name(
    editor: LanguageClient, workspace: Path, ray_cluster: Cluster
) -> None:
    client = editor
    [workflow] = (await run(client, "startSdlc", ["specs/mul.md"], _on(ray_cluster)))["workflows"]
    finished = await wait_workflow(client, workflow["id"], 240)
    assert finished["state"] == "succeeded", finished["reason"]
    worktree = Path(finished["cwd"])
    assert (worktree / "src/calc/mul.py").read_text() == "def mul(a: int, b: int) -> int:\n    return a * b\n"
    assert run_git(worktree, "log", "-1", "--format=%s").strip() == "adw: mul"
    assert run_git(worktree, "status", "--porcelain").strip() == ""
    # Each agent phase ran on a node of the cluster, which the Workflows view shows.
    build = task_of(finished, "build")
    assert build["state"] == "succeeded" and "(" in (build["attempts"][-1]["node"] or "")


async def test_a_cancel_from_the_editor_stops_the_agent_on_its_node(
    editor: LanguageClient, workspace: Path, ray_cluster: Cluster, tmp_path: Path
) -> None:
    client = editor
    pid_file = tmp_path / "plan.pid"
    sleep = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(600)"
    write_config(workspace, command_phase("plan", "-c", sleep, str(pid_file)))
    [workflow] = (await run(client, "startSdlc", ["specs/mul.md"], _on(ray_cluster)))["workflows"]
    await eventually(lambda: pid_file.is_file() and pid_file.read_text(), 120, "the plan agent to run on a node")
    pid = int(pid_file.read_text())

    assert await run(client, "cancel", workflow["id"], "plan") == {
        "workflow": workflow["id"], "task": "plan", "cancelled": True,
    }
    cancelled = await wait_workflow(client, workflow["id"], 60)
    assert cancelled["state"] == "cancelled"
    assert task_of(cancelled, "plan")["state"] == "cancelled"
    assert await _gone(pid)
