"""An ACP agent's permission questions reach the editor as `window/showMessageRequest` and its buttons answer
them: Always for This Task covers later edits inside the worktree, Deny and a closed request deny."""

from __future__ import annotations

import sys
from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.fakes import FAKES
from tests.lsp.conftest import run, task_of, toml_argv, wait_workflow, write_config

ACP_BUILD = (
    '[phases.build]\nagent = "acp"\nprompt = "permission again"\npermissions = "ask"\npermission_timeout = 60\n'
    f"command = {toml_argv(sys.executable, str(FAKES / 'acp_agent.py'))}\nretries = 0\n"
)


async def test_permission_questions_are_answered_from_the_editor(vscode: LanguageClient, workspace: Path) -> None:
    client = vscode
    asked: list[types.ShowMessageRequestParams] = []
    buttons = {"Edit a.txt": "Always for This Task", "Run rm -rf /": "Deny"}

    @client.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)
    def _answer(params: types.ShowMessageRequestParams) -> types.MessageActionItem | None:
        asked.append(params)
        title = next((button for tool, button in buttons.items() if f"asks to {tool}" in params.message), None)
        return types.MessageActionItem(title=title) if title else None  # None: the user closed it

    write_config(workspace, ACP_BUILD)
    [workflow] = (await run(client, "startSdlc", ["specs/mul.md"]))["workflows"]
    finished = await wait_workflow(client, workflow["id"], 120)

    build = task_of(finished, "build")
    assert build["state"] == "succeeded", build["reason"]
    messages = [params.message for params in asked]
    # b.txt is not asked about (edits were allowed for the task); /etc/passwd is, being outside the worktree.
    assert len(messages) == 3, messages
    assert messages[0].startswith(f"ADW {workflow['name']} · build: the agent asks to Edit a.txt (")
    assert "Denied in 60 s without an answer." in messages[0]
    assert [action.title for action in asked[0].actions or []] == ["Allow Once", "Always for This Task", "Deny"]
    assert asked[0].type == types.MessageType.Warning
    assert [d["why"] for d in build["outputs"]["acp"]["permissions"]] == [
        "allowed for this task by the editor",
        "denied by the editor",
        "denied by the editor",
        "edit tools allowed for this task by the editor",
    ]
