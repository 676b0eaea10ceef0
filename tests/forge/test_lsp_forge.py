"""The editor's side against the real language server: `adw.server.createPullRequest` on a finished workflow
(the same draft again on a second call), and `adw/pullRequests` giving each branch's pull request and CI state,
polled politely (cached for a minute, conditional GETs when refreshed), with no forge answered quietly."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_lsp
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.conftest import run_git
from tests.forge.fakeforge import Fake, serve
from tests.lsp.conftest import (
    SERVER,
    Recorder,
    fails,
    make_workspace,
    run,
    server_env,
    start,
    wait_workflow,
    write_config,
)
from tests.lsp.test_lsp_links_views import request

SERVER_ENV = {**server_env(), "GH_TOKEN": "lsp-token"}


@pytest.fixture
def fake() -> Iterator[Fake]:
    with serve("github", "octo/ws") as server:
        yield server


@pytest.fixture
def workspace(tmp_path: Path, fake: Fake) -> Path:
    root = make_workspace(tmp_path / "ws")
    bare = tmp_path / "origin.git"
    run_git(tmp_path, "init", "-q", "--bare", str(bare))
    run_git(root, "remote", "add", "origin", "https://github.com/octo/ws.git")
    run_git(root, "remote", "set-url", "--push", "origin", str(bare))
    write_config(root, f'[forge]\nhost = "github.com"\nkind = "github"\napi_url = "{fake.base_url}"\n')
    return root


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER, server_env=SERVER_ENV))
async def client(lsp_client: LanguageClient, workspace: Path) -> AsyncIterator[None]:
    await start(lsp_client, workspace, client_capabilities("visual-studio-code"), Recorder())
    yield
    await lsp_client.shutdown_session()


@pytest.mark.slow
async def test_create_pull_request_and_the_worktrees_review_state(
    client: LanguageClient, workspace: Path, fake: Fake
) -> None:
    status = await request(client, "adw/pullRequests")
    assert status["available"] and status["forge"]["kind"] == "github"
    assert [b["pull_request"] for b in status["branches"]] == [None]  # main, no pull request

    [started] = (await run(client, "startSdlc", ["specs/mul.md"]))["workflows"]
    workflow = await wait_workflow(client, started["id"])
    assert workflow["state"] == "succeeded"
    opened = await run(client, "createPullRequest", workflow["id"])
    assert opened["pull_request"]["created"] and opened["push"]["mode"] == "new"
    assert fake.pulls[0]["head"] == "adw/mul" and fake.pulls[0]["draft"]
    again = await run(client, "createPullRequest", {"workflow": workflow["id"]})
    assert not again["pull_request"]["created"] and len(fake.pulls) == 1

    status = await request(client, "adw/pullRequests", {"refresh": True})
    mul = next(b for b in status["branches"] if b["branch"] == "adw/mul")
    assert mul["pull_request"]["number"] == 1 and mul["checks"]["state"] == "none"

    fake.statuses[fake.pulls[0]["sha"]] = ["success", "failure"]
    asked = len(fake.requests)
    cached = await request(client, "adw/pullRequests")  # less than a minute later: the forge is not asked
    assert len(fake.requests) == asked and cached == status
    fresh = await request(client, "adw/pullRequests", {"refresh": True})
    mul = next(b for b in fresh["branches"] if b["branch"] == "adw/mul")
    assert mul["checks"]["state"] == "failure" and (mul["checks"]["passed"], mul["checks"]["failed"]) == (1, 1)
    assert all("if-none-match" in r.headers for r in fake.requests[asked:] if r.path.endswith("/pulls"))


async def test_create_pull_request_errors_are_answered(client: LanguageClient, workspace: Path) -> None:
    error = await fails(client, "createPullRequest", "nope")
    assert "no workflow 'nope'" in str(error)
    error = await fails(client, "createPullRequest")
    assert "workflow" in str(error)


async def test_no_forge_is_a_quiet_answer(client: LanguageClient, workspace: Path) -> None:
    run_git(workspace, "remote", "remove", "origin")
    status = await request(client, "adw/pullRequests")
    assert not status["available"] and "no remote" in status["reason"]
