"""Multi-root workspaces: one server serves every workspace folder's repository, from initialize's
workspaceFolders and as folders are added or removed (workspace/didChangeWorkspaceFolders). Commands take the
repository from their worktree, file or spec argument, or from `repository`; views list every repository's
worktrees and workflows. Predicted conflicts, pull requests, the configuration check and SDLC from an issue answer
for every folder's repository, not only the first's."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.conftest import run_git
from tests.forge.fakeforge import Fake, serve
from tests.lsp.conftest import (
    SERVER,
    code_lenses,
    command_phase,
    commit_all,
    eventually,
    fails,
    make_workspace,
    run,
    titles,
    uri,
    wait_workflow,
    write_config,
)
from tests.lsp.conftest import server_env as _server_env
from tests.lsp.test_lsp_links_views import plain, request

SLEEP = "import time; time.sleep(60)"
CONFIGURATIONS: list[dict[str, Any]] = []  # the adw/configuration notifications of the running test's server


def _folder(root: Path) -> types.WorkspaceFolder:
    return types.WorkspaceFolder(uri=root.as_uri(), name=root.name)


# A forge login for the repository whose remote is the fake forge's
@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER, server_env={**_server_env(), "GH_TOKEN": "t"}))
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

    @lsp_client.feature("adw/configuration")
    def _configuration(params: Any) -> None:
        CONFIGURATIONS.append(plain(params))

    CONFIGURATIONS.clear()
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


async def _with_two(client: LanguageClient, tmp_path: Path) -> Path:
    two = tmp_path / "two"
    _folders_changed(client, [two], [])
    await eventually(lambda: _has(client, str(two)), 10, "the added folder's repository")
    return two


def _conflicts_on(client: LanguageClient, path: Path) -> list[str]:
    return [d.message for d in client.diagnostics.get(uri(path), []) if d.code == "worktree-conflict"]


async def test_predicted_conflicts_and_the_merge_dialog_follow_every_folder(
    client: LanguageClient, tmp_path: Path
) -> None:
    one, two = tmp_path / "one", await _with_two(client, tmp_path)
    ops = "src/calc/ops.py"
    # Worktrees `a` in both repositories: `repository` says which one a command means.
    await run(client, "createWorktree", {"name": "a", "repository": str(one)})
    a, b = [Path((await run(client, "createWorktree", {"name": name, "repository": str(two)}))["worktree"]["path"])
            for name in ("a", "b")]
    assert a.parent.name == "two.worktrees"
    (a / ops).write_text("def add(a, b):\n    return b + a\n")
    commit_all(a, "a: swap")  # outside the server: its watch on the second repository's refs sees it
    (b / ops).write_text("def add(a, b):\n    return a + b + 0\n")
    commit_all(b, "b: add zero")

    await eventually(lambda: _conflicts_on(client, a / ops), 20, "the second repository's conflict diagnostics")
    assert "worktree b (adw/b)" in _conflicts_on(client, a / ops)[0]
    rows = {(Path(info["repository"]).name, info["name"]): info for info in await request(client, "adw/worktrees")}
    assert [c["worktree"] for c in rows[("two", "a")]["conflicts"]] == ["b"]
    assert rows[("one", "a")]["conflicts"] == []
    # The merge dialog's preview of two's `a` warns about two's `b`; one's `a` has nothing to warn about.
    preview = await run(client, "mergePreview", {"name": "a", "repository": str(two)})
    assert preview["clean"] and [c["worktree"] for c in preview["activeConflicts"]] == ["b"]
    assert (await run(client, "mergePreview", {"name": "a", "repository": str(one)}))["activeConflicts"] == []
    # Removing two's `b` (named by its repository) clears the prediction; one's worktrees stay.
    await run(client, "removeWorktree", {"name": "b", "force": True, "repository": str(two)})
    await eventually(lambda: not _conflicts_on(client, a / ops), 20, "the conflict to clear")
    assert {info["name"] for info in await run(client, "listWorktrees")
            if Path(str(info["repository"])) == one} == {"@main", "a"}


@pytest.fixture
def fake() -> Iterator[Fake]:
    with serve("github", "octo/two") as server:
        yield server


MUL_ISSUE = "Multiply.\n\n```python path=src/calc/mul.py\ndef mul(a, b):\n    return a * b\n```\n"


async def test_pull_requests_and_sdlc_from_an_issue_in_the_second_folder(
    client: LanguageClient, tmp_path: Path, fake: Fake
) -> None:
    one, two = tmp_path / "one", await _with_two(client, tmp_path)
    run_git(two, "remote", "add", "origin", "https://github.com/octo/two.git")
    forge = f'[forge]\nhost = "github.com"\nkind = "github"\napi_url = "{fake.base_url}"\n'
    write_config(two, forge + command_phase("plan", "-c", SLEEP))

    # The Worktrees view asks each repository for its branches' pull requests: two has a forge, one has none.
    status = await request(client, "adw/pullRequests", {"repository": str(two)})
    assert status["available"] and status["forge"]["project"] == "octo/two"
    assert [b["branch"] for b in status["branches"]] == ["main"]
    first = await request(client, "adw/pullRequests")  # the default: the first folder's repository
    assert not first["available"] and "no remote" in first["reason"]

    # An issue of two's forge runs in two.
    fake.add_issue(7, "Multiply numbers", MUL_ISSUE, [], [])
    [workflow] = (await run(client, "sdlcFromIssue", {"issue": "7", "repository": str(two)}))["workflows"]
    assert Path(workflow["spec"]).is_relative_to(two / ".git/adw/issues")
    status = await run(client, "status", workflow["id"])
    assert Path(status["repo"]).resolve() == two.resolve()
    await run(client, "cancel", workflow["id"])
    assert (await wait_workflow(client, workflow["id"], 30))["state"] == "cancelled"
    assert not (one / ".git/adw/issues").exists()
    outside = await fails(client, "sdlcFromIssue", {"issue": "7", "repository": str(tmp_path / "other")})
    assert "is not in a repository of the workspace's folders" in str(outside)


async def test_the_configuration_of_every_folder_is_checked(client: LanguageClient, tmp_path: Path) -> None:
    two = await _with_two(client, tmp_path)
    (two / ".adw.toml").write_text("[agents]\nnope = 1\n")
    refused = await fails(client, "listCheckpoints", str(two))  # any command on its repository, until fixed
    assert f"invalid ADW configuration in {two / '.adw.toml'}: agents.nope: unknown key" in str(refused)
    status = await fails(client, "status")  # it reads every repository's workflows
    assert str(two / ".adw.toml") in str(status)
    assert await run(client, "listCheckpoints") == []  # the first folder's repository is served meanwhile
    shown = [m.message for m in client.messages if "invalid ADW configuration" in m.message]
    assert len(shown) == 1 and str(two / ".adw.toml") in shown[0]
    assert str(two / ".adw.toml") in CONFIGURATIONS[-1]["error"]  # the status bar's
    write_config(two, "")
    assert await run(client, "listCheckpoints", str(two)) == []
    assert CONFIGURATIONS[-1] == {"error": None, "hint": None}
