"""The editor's side against the real language server: `adw.server.createPullRequest` on a finished workflow
(the same draft again on a second call), `adw/pullRequests` giving each branch's pull request and CI state,
polled politely (cached for a minute, conditional GETs when refreshed), with no forge answered quietly;
`adw.server.sdlcFromIssue` from an issue number to a draft pull request, and `adw.server.pick` with `pr`; without
a login, one editor-worded error that changes nothing."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.conftest import GIT_ENV, run_git
from tests.forge.fakeforge import Fake, serve
from tests.lsp.conftest import (
    SERVER,
    Recorder,
    eventually,
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


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER, server_env=server_env()))
async def anonymous(lsp_client: LanguageClient, workspace: Path) -> AsyncIterator[None]:
    """The same workspace, with no forge login in the server's environment (and no gh on this machine)."""
    await start(lsp_client, workspace, client_capabilities("visual-studio-code"), Recorder())
    yield
    await lsp_client.shutdown_session()


MUL_ISSUE = "Multiply two numbers.\n\n```python path=src/calc/mul.py\ndef mul(a, b):\n    return a * b\n```\n"


@pytest.mark.slow
async def test_sdlc_from_an_issue_number_to_a_draft_pull_request(
    client: LanguageClient, workspace: Path, fake: Fake, tmp_path: Path
) -> None:
    fake.add_issue(7, "Multiply numbers", MUL_ISSUE, ["enhancement"], [("ana", "Please keep it small.")])
    wrong = await fails(client, "sdlcFromIssue", "https://github.com/someone/else/issues/7")
    assert "not an issue of octo/ws" in str(wrong) and "`--issue" not in str(wrong) and fake.requests == []

    started = await run(client, "sdlcFromIssue", {"issue": "#7", "pr": True})
    [workflow] = started["workflows"]
    assert workflow["name"] == "7-multiply-numbers" and workflow["spec"].endswith("adw/issues/7-multiply-numbers.md")
    async def branch_listed() -> list[object]:  # once the workflow's first task made its worktree (and branch)
        polled = await request(client, "adw/pullRequests")
        return [b["pull_request"] for b in polled["branches"] if b["branch"] == "adw/7-multiply-numbers"]

    # the view's poll while it runs: no pull request yet
    assert await eventually(branch_listed, 30, "the workflow's branch in the view's poll") == [None]
    done = await wait_workflow(client, workflow["id"])
    assert done["state"] == "succeeded"
    opened = await eventually(lambda: [m for m in client.messages if "pull request" in m.message], 30, "the PR message")
    assert opened[0].type == types.MessageType.Info
    url = f"{fake.base_url}/octo/ws/pull/1"
    assert opened[0].message == f"ADW: opened draft pull request [#1]({url}) for 7-multiply-numbers."
    [pr] = fake.pulls
    assert pr["head"] == "adw/7-multiply-numbers" and pr["draft"] and "Closes #7" in pr["body"]
    assert run_git(tmp_path / "origin.git", "rev-parse", "adw/7-multiply-numbers") == run_git(
        workspace, "rev-parse", "adw/7-multiply-numbers")
    assert any(url in comment["body"] for comment in fake.comments[7])
    # The view's next poll shows it at once (not after the minute its branch's last answer is kept).
    polled = await request(client, "adw/pullRequests")
    assert [b["pull_request"]["url"] for b in polled["branches"] if b["branch"] == "adw/7-multiply-numbers"] == [url]

    # The same issue again: its worktree exists, so the editor is asked what to do (as for a spec).
    again = await fails(client, "sdlcFromIssue", "7")
    assert again.data["error"] == "WorktreeExistsError"
    assert again.data["existing"][0]["worktree"] == "7-multiply-numbers"


async def test_sdlc_from_an_issue_without_a_login_is_one_error_in_editor_words(
    anonymous: LanguageClient, workspace: Path, fake: Fake
) -> None:
    client = anonymous
    fake.add_issue(7, "Multiply numbers", MUL_ISSUE, [], [])
    worktrees = run_git(workspace, "worktree", "list")
    for command, arguments in (("sdlcFromIssue", ["7", True]), ("pick", ["no-run", 1, "merge", True])):
        error = await fails(client, command, *arguments)
        text = str(error)
        if command == "pick":  # no such run: refused before the forge is asked
            assert "no best-of run 'no-run'" in text
            continue
        assert text.startswith("ADW: not logged in to github.com (github): tried gh, GH_TOKEN, GITHUB_TOKEN — ") or (
            "not logged in to github.com (github): tried gh (not installed), GH_TOKEN, GITHUB_TOKEN — " in text), text
        assert "run gh auth login in a terminal, or start VS Code with GH_TOKEN or GITHUB_TOKEN set" in text
        assert "`adw" not in text and " --" not in text
    assert client.messages == []  # the error answer is the one report
    assert fake.requests == [] and run_git(workspace, "worktree", "list") == worktrees
    assert not (workspace / ".git/adw/issues").exists()


@pytest.mark.slow
async def test_pick_from_the_editor_opens_the_chosen_candidates_pull_request(
    client: LanguageClient, anonymous: LanguageClient, workspace: Path, fake: Fake
) -> None:
    made = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "adw", "sdlc", "specs/mul.md", "--best-of", "2", "--json"],
        cwd=workspace, env={**os.environ, **GIT_ENV}, capture_output=True, text=True,
    )
    assert made.returncode == 0, made.stderr
    [first] = [wf for wf in await run(client, "status") if wf["worktree"] == "mul-1"]
    group = first["best_of"]["group"]

    refused = await fails(anonymous, "pick", {"id": group, "number": 2, "pr": True})
    assert "not logged in" in str(refused) and fake.pulls == []
    assert "mul-1" in run_git(workspace, "worktree", "list")

    picked = await run(client, "pick", {"id": group, "number": 2, "pr": True})
    assert picked["merge"] is None and picked["pull_request"]["pull_request"]["created"] is True
    assert [pr["head"] for pr in fake.pulls] == ["adw/mul-2"]
    assert [a["worktree"] for a in picked["archived"]] == ["mul-1"]
    assert "mul-1" not in run_git(workspace, "worktree", "list")


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
