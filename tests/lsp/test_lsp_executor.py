"""`executor = "ray"` in an editor whose ADW has no Ray: one message in the editor's words, and ADW goes on
with the executor it had."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from adw.workflow.executor import RAY_INSTALL
from tests.fakes import FAKES
from tests.lsp.conftest import MINIMAL, SERVER, Recorder, eventually, fails, run, server_env, start

RAY_MISSING = "the ray executor needs Ray, which is not installed"


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=SERVER, server_env={**server_env(), "PYTHONPATH": str(FAKES / "no_ray")})
)
async def without_ray(lsp_client: LanguageClient, workspace: Path, recorder: Recorder) -> AsyncIterator[None]:
    """A minimal client of a server whose Python cannot import Ray."""
    await start(lsp_client, workspace, MINIMAL, recorder)
    yield
    await lsp_client.shutdown_session()


def ask_for_ray(workspace: Path) -> None:
    (workspace / ".adw.toml").write_text('executor = "ray"\n', encoding="utf-8")


async def test_asking_for_ray_without_it_is_one_message_and_the_engine_keeps_running(
    without_ray: LanguageClient, workspace: Path
) -> None:
    client = without_ray
    await run(client, "status")  # the engine opens with the local executor
    ask_for_ray(workspace)
    assert isinstance(await run(client, "status"), list | dict)  # the command is answered all the same
    [shown] = await eventually(
        lambda: [m.message for m in client.messages if m.type == types.MessageType.Error], 30, "the error"
    )
    assert RAY_MISSING in shown and RAY_INSTALL in shown and "--executor" not in shown
    assert "Traceback" not in shown


async def test_a_server_started_with_ray_configured_answers_with_the_install_command(
    without_ray: LanguageClient, workspace: Path
) -> None:
    ask_for_ray(workspace)
    error = await fails(without_ray, "startSdlc", ["specs/mul.md"])
    assert RAY_MISSING in str(error) and RAY_INSTALL in str(error)


async def test_start_sdlc_takes_the_executor_the_editor_chose_over_the_configuration(
    without_ray: LanguageClient, workspace: Path
) -> None:
    # The configuration says local; the editor's adw.executor says ray (which this server's Python lacks).
    error = await fails(without_ray, "startSdlc", ["specs/mul.md"], {"executor": "ray", "address": "h:6379"})
    assert RAY_MISSING in str(error) and RAY_INSTALL in str(error)
    assert not (workspace.parent / f"{workspace.name}.worktrees" / "mul").exists()  # nothing started
    bad = await fails(without_ray, "startSdlc", ["specs/mul.md"], {"executor": "dask"})
    assert "executor" in str(bad) and "Traceback" not in str(bad)
