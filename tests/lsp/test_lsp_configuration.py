"""Configuration reload: the server picks up `.adw.toml` changes (watched files for VS Code, a stat before each
command for plain clients); an invalid configuration is shown at once naming the key path and file, sent as
`adw/configuration` for the extension's status bar, and answered as InvalidParams, never InternalError."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pytest_lsp import LanguageClient

from tests.lsp.conftest import (
    Recorder,
    code_lenses,
    command_phase,
    eventually,
    fails,
    run,
    titles,
    wait_workflow,
    write_config,
)

INVALID = "[lsp]\nspec_glob = 42\n"
KEY = "lsp.spec_glob"


def _errors(client: LanguageClient) -> list[str]:
    return [m.message for m in client.messages if m.type == types.MessageType.Error]


@pytest.fixture
def invalid_at_start(workspace: Path) -> Path:
    write_config(workspace, INVALID)
    return workspace


@pytest.mark.usefixtures("invalid_at_start")
async def test_an_invalid_configuration_is_shown_when_the_editor_starts(
    minimal: LanguageClient, workspace: Path, recorder: Recorder
) -> None:
    client = minimal
    shown = await eventually(lambda: _errors(client), 30, "the configuration error")
    assert KEY in shown[0] and str(workspace / ".adw.toml") in shown[0]
    await _configuration_error(recorder)
    for command, arguments in [("status", []), ("listWorktrees", []), ("checkpoint", [])]:
        error = await fails(client, command, *arguments)
        assert error.code == JsonRpcInvalidParams.CODE and KEY in str(error), (command, error)
    # Lenses carry on with the default spec glob instead of failing.
    assert "Start Parallel SDLC" in titles(await code_lenses(client, workspace / "specs/mul.md"))

    write_config(workspace, "")  # fixed: the next command reloads it, no notification needed
    assert (await run(client, "listWorktrees"))[0]["is_main"] is True
    assert recorder.configuration[-1].error is None


async def _configuration_error(recorder: Recorder) -> None:
    """Waits for the `adw/configuration` notification that reports the invalid key."""
    await eventually(lambda: recorder.configuration and KEY in (recorder.configuration[-1].error or ""), 10,
                     "adw/configuration with the error")


async def test_watched_configuration_files_reload_at_once(
    vscode: LanguageClient, workspace: Path, recorder: Recorder
) -> None:
    client = vscode
    await eventually(lambda: recorder.registrations, 10, "the watched-files registration")
    [registration] = recorder.registrations
    assert registration.method == types.WORKSPACE_DID_CHANGE_WATCHED_FILES
    write_config(workspace, INVALID)
    client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(changes=[
        types.FileEvent(uri=(workspace / ".adw.toml").as_uri(), type=types.FileChangeType.Changed)
    ]))
    shown = await eventually(lambda: _errors(client), 30, "the configuration error")
    assert KEY in shown[-1]
    await _configuration_error(recorder)  # a notification of its own: it may arrive after the toast


async def test_a_changed_configuration_reaches_the_running_engine(
    minimal: LanguageClient, workspace: Path, tmp_path: Path
) -> None:
    client = minimal
    await run(client, "status")  # opens the engine with the configuration of now (none)
    marker = tmp_path / "planned"
    write_config(workspace, command_phase("plan", "-c", "import sys; open(sys.argv[1], 'w')", str(marker)))
    [workflow] = (await run(client, "startSdlc", ["specs/mul.md"]))["workflows"]
    finished = await wait_workflow(client, workflow["id"])
    assert finished["state"] == "succeeded", finished["reason"]
    assert marker.is_file(), "the plan phase ran with the configuration of before"
    assert sys.executable in str([t["config"] for t in finished["tasks"] if t["id"] == "plan"])
