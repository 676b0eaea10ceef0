"""Multi-root workspaces: one server serves every workspace folder's repository, from initialize's
workspaceFolders and as folders are added or removed (workspace/didChangeWorkspaceFolders). Commands take the
repository from their worktree, file or spec argument; views list every repository's worktrees and workflows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.lsp.conftest import (
    SERVER,
    code_lenses,
    command_phase,
    eventually,
    fails,
    make_workspace,
    run,
    titles,
    wait_workflow,
    write_config,
)
from tests.lsp.conftest import server_env as _server_env

SLEEP = "import time; time.sleep(60)"


def _folder(root: Path) -> types.WorkspaceFolder:
    return types.WorkspaceFolder(uri=root.as_uri(), name=root.name)


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER, server_env=_server_env()))
async def client(lsp_client: LanguageClient, tmp_path: Path) -> AsyncIterator[None]:
    """A VS Code-like client whose workspace opens with the folder `one` only; `two` and `other` are repositories
    beside it."""
    @lsp_client.feature("adw/changed")
    def _changed(params: Any) -> None:  # views refresh on it; the tests read the views themselves
        pass

    @lsp_client.feature(types.WORKSPACE_CODE_LENS_REFRESH)
    def _refresh(params: Any) -> None:
        pass

    @lsp_client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def _register(params: Any) -> None:
        pass

    for name in ("one", "two", "other"):
        make_workspace(tmp_path / name)
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"), root_uri=(tmp_path / "one").as_uri(),
        workspace_folders=[_folder(tmp_path / "one")], initialization_options={"codicons": True},
    ))
    yield
    await lsp_client.shutdown_session()


def _folders_changed(client: LanguageClient, added: list[Path], removed: list[Path]) -> None:
    event = types.WorkspaceFoldersChangeEvent(added=[_folder(p) for p in added], removed=[_folder(p) for p in removed])
    client.workspace_did_change_workspace_folders(types.DidChangeWorkspaceFoldersParams(event=event))


async def _repositories(client: LanguageClient) -> set[str]:
    return {info["repository"] for info in await run(client, "listWorktrees")}


async def test_a_folder_added_at_runtime_is_served_until_it_is_removed(client: LanguageClient, tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    assert await _repositories(client) == {str(one)}
    refused = await fails(client, "checkpoint", str(two), "too early")
    assert "is not a worktree of the workspace's repository" in str(refused)

    _folders_changed(client, [two], [])
    await eventually(lambda: _has(client, str(two)), 10, "the added folder's repository")
    # Commands take the repository from their worktree argument; the default stays the first folder.
    made = await run(client, "checkpoint", str(two), "in two")
    assert made["created"] and made["checkpoint"]["number"] == 1
    assert [c["message"] for c in await run(client, "listCheckpoints", str(two))] == ["in two"]
    assert await run(client, "listCheckpoints") == []  # the first folder has none
    # Lenses of both repositories: checkpoint lenses in two's files, spec lenses on two's specs.
    (two / "src/calc/ops.py").write_text("def add(a, b):\n    return 0\n")
    assert titles(await code_lenses(client, two / "src/calc/ops.py"))[0] == "$(history) Undo to checkpoint 1 (just now)"
    assert await code_lenses(client, one / "src/calc/ops.py") == []
    assert "$(play) Start Parallel SDLC" in titles(await code_lenses(client, two / "specs/mul.md"))
    await run(client, "undo", str(two))
    assert (two / "src/calc/ops.py").read_text() == "def add(a, b):\n    return a + b\n"
    views = await client.protocol.send_request_async("adw/worktrees", None)
    assert {info["repository"] for info in views} == {str(one), str(two)}

    _folders_changed(client, [], [two])
    await eventually(lambda: _has(client, str(two), False), 10, "the removed folder's repository to go")
    assert await code_lenses(client, two / "specs/mul.md") == []
    refused = await fails(client, "checkpoint", str(two), "too late")
    assert "is not a worktree of the workspace's repository" in str(refused)


async def _has(client: LanguageClient, repository: str, present: bool = True) -> bool:
    return (repository in await _repositories(client)) == present


async def test_workflows_run_in_the_repository_of_their_spec(client: LanguageClient, tmp_path: Path) -> None:
    one, two, other = tmp_path / "one", tmp_path / "two", tmp_path / "other"
    _folders_changed(client, [two], [])
    await eventually(lambda: _has(client, str(two)), 10, "the added folder's repository")
    write_config(two, command_phase("plan", "-c", SLEEP))
    [workflow] = (await run(client, "startSdlc", [str(two / "specs/mul.md")]))["workflows"]
    status = await run(client, "status", workflow["id"])
    assert Path(status["repo"]).resolve() == two.resolve()
    cwd = Path(status["cwd"]).resolve()
    assert cwd == two.resolve() or cwd.parent.name == "two.worktrees", cwd
    listed = await client.protocol.send_request_async("adw/workflows", None)
    assert workflow["id"] in {wf["id"] for wf in listed}
    await run(client, "cancel", workflow["id"])
    assert (await wait_workflow(client, workflow["id"], 30))["state"] == "cancelled"

    mixed = await fails(client, "startSdlc", [str(one / "specs/mul.md"), str(two / "specs/mul.md")])
    assert "the specs belong to different repositories" in str(mixed)
    outside = await fails(client, "startSdlc", [str(other / "specs/mul.md")])
    assert "is not in a repository of the workspace's folders" in str(outside)
    refused = await fails(client, "listCheckpoints", str(other))
    assert "is not a worktree of the workspace's repository" in str(refused)
