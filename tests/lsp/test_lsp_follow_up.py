"""`adw.server.followUp` and the code action that offers it on the lines a workflow changed, against the real
server over stdio, on a workflow whose build task ran the fake claude."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

from adw.config import PhaseConfig
from adw.git.runner import git
from adw.sdlc.engine import agent_factories
from adw.workflow.engine import Engine
from adw.workflow.models import Task, TaskState, Workflow
from adw.workflow.store import Store
from tests.agents.test_agents_follow_up import own
from tests.fakes import FAST, command_task, install_fakes, python
from tests.lsp.conftest import eventually, fails, open_document, run, task_of, uri, wait_workflow
from tests.lsp.test_lsp_multiroot import _folders_changed, _has, client

__all__ = ["client"]  # the multi-root fixture


async def ran_build(tmp_path: Path, workspace: Path) -> Workflow:
    """A finished workflow in the workspace: build (the fake claude, which wrote src/hello.py), then lint."""
    bin_dir = install_fakes(tmp_path / "bin", "claude")
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    env = {
        "PATH": str(bin_dir),
        "ANTHROPIC_API_KEY": "test",
        "FAKE_SESSIONS": str(sessions),
        "FAKE_RECORD": str(tmp_path / "argv.json"),
    }
    config = PhaseConfig.model_validate({"agent": "claude", "env": env, "retries": 0, "prompt": "first"})
    build = Task(id="build", phase="build", agent="claude", config=config)
    head = (await git("rev-parse", "HEAD", cwd=workspace)).stdout.strip()
    tasks = [build, command_task("lint", python("print('ok')"), deps=["build"])]
    engine = Engine(Store.for_common_dir(workspace / ".git"), FAST, agents=agent_factories())
    try:
        done = await engine.run(own(workspace, tasks, base_commit=head))
    finally:
        engine.close()
    assert done.state is TaskState.SUCCEEDED, done.reason
    return done


def span(first: int, last: int, end: int) -> types.Range:
    return types.Range(start=types.Position(line=first, character=0), end=types.Position(line=last, character=end))


async def actions(
    client: LanguageClient, path: Path, first: int, last: int, *diagnostics: str
) -> list[types.CodeAction]:
    found = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri(path)),
            range=span(first, last, 4),
            context=types.CodeActionContext(
                diagnostics=[types.Diagnostic(range=span(first, first, 1), message=text) for text in diagnostics]
            ),
        )
    )
    return [_code_action(item) for item in found or []]


def _code_action(item: types.Command | types.CodeAction) -> types.CodeAction:
    """lsprotocol's client side reads any answer with a `command` key as a Command, so a CodeAction carrying one
    arrives with its title and its command object printed into `command`: read that back (the wire is right)."""
    if isinstance(item, types.CodeAction):
        return item
    command = ast.literal_eval(item.command)
    return types.CodeAction(title=item.title, command=types.Command(**command))


async def test_code_action_on_changed_lines_sends_the_adw_comment_as_a_follow_up(
    vscode: LanguageClient, workspace: Path, tmp_path: Path
) -> None:
    client = vscode
    wf = await ran_build(tmp_path, workspace)
    hello = workspace / "src" / "hello.py"
    hello.write_text(hello.read_text() + "# ADW: rename hello to greet\n", encoding="utf-8")
    open_document(client, hello, "python")

    # Lines the workflow did not change get no action; nor do changed lines without an instruction.
    assert await actions(client, workspace / "README.md", 0, 0, "a diagnostic") == []
    assert await actions(client, hello, 0, 0) == []
    [offered] = await actions(client, hello, 1, 2)
    assert offered.title == "ADW: Ask the agent (build) to change this: rename hello to greet"
    assert offered.command is not None and offered.command.command == "adw.server.followUp"
    [arguments] = offered.command.arguments or []
    assert arguments == {
        "workflow": wf.id,
        "task": "build",
        "message": "rename hello to greet",
        "location": {
            "file": "src/hello.py",
            "startLine": 2,
            "endLine": 3,
            "selectedCode": "    return 'hi'\n# ADW: rename hello to greet",
        },
    }
    # A diagnostic on a changed line is an instruction too.
    [fix] = await actions(client, hello, 0, 0, "hello is not typed")
    assert fix.title.endswith("to change this: hello is not typed")

    # What the editor does when the action is picked.
    started = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=offered.command.command, arguments=offered.command.arguments)
    )
    assert started == {"workflow": wf.id, "task": "build", "attempt": 2, "stale": ["lint"]}
    finished = await wait_workflow(client, wf.id)
    build = task_of(finished, "build")
    assert build["state"] == "succeeded" and build["session"]["agent"] == "claude"
    assert task_of(finished, "lint")["stale"] is True
    prompt = json.loads((tmp_path / "argv.json").read_text())["prompt"]
    assert prompt == (
        "rename hello to greet\n\nThis is about src/hello.py, lines 2-3:\n```\n    return 'hi'\n"
        "# ADW: rename hello to greet\n```\n"
    )
    assert (workspace / "src" / "followup.txt").read_text() == "after 1 prompt(s): rename hello to greet\n"


async def test_follow_up_refusals_are_one_clear_error_each(
    minimal: LanguageClient, workspace: Path, tmp_path: Path
) -> None:
    client = minimal
    wf = await ran_build(tmp_path, workspace)
    error = await fails(client, "followUp", wf.id, "do better", "lint")
    assert str(error).startswith("task lint (agent command) has no agent session to continue")
    outside = {"file": "/etc/passwd", "startLine": 1, "endLine": 1}
    error = await fails(client, "followUp", {"workflow": wf.id, "message": "x", "location": outside})
    assert f"/etc/passwd is not in the worktree of workflow {wf.id}" in str(error)
    backwards = {"file": "README.md", "startLine": 3, "endLine": 1}
    error = await fails(client, "followUp", wf.id, "x", None, backwards)
    assert "the location's lines run backwards (3 to 1)" in str(error)
    error = await fails(client, "followUp", wf.id, "x", None, {"file": "README.md", "startLine": 0, "endLine": 1})
    assert "`location.startLine`" in str(error)
    assert (await run(client, "status", wf.id))["tasks"][0]["attempts"][-1]["number"] == 1  # nothing ran


async def test_follow_up_and_its_code_action_reach_the_repository_of_a_second_folder(
    client: LanguageClient, tmp_path: Path
) -> None:
    two = tmp_path / "two"
    _folders_changed(client, [two], [])
    await eventually(lambda: _has(client, str(two)), 10, "the added folder's repository")
    wf = await ran_build(tmp_path, two)
    hello = two / "src" / "hello.py"
    hello.write_text(hello.read_text() + "# ADW: rename hello to greet\n", encoding="utf-8")
    open_document(client, hello, "python")
    [offered] = await actions(client, hello, 2, 2)
    assert offered.command is not None and offered.command.arguments == [{
        "workflow": wf.id, "task": "build", "message": "rename hello to greet",
        "location": {"file": "src/hello.py", "startLine": 3, "endLine": 3,
                     "selectedCode": "# ADW: rename hello to greet"},
    }]
    started = await run(client, "followUp", *[offered.command.arguments[0][key] for key in ("workflow", "message")])
    assert started["workflow"] == wf.id and started["attempt"] == 2
    assert task_of(await wait_workflow(client, wf.id), "build")["state"] == "succeeded"
    assert (two / "src" / "followup.txt").read_text() == "after 1 prompt(s): rename hello to greet\n"
