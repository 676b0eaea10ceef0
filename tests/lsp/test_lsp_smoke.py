from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import LanguageClient


async def run(client: LanguageClient, command: str, *arguments: Any) -> Any:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=f"adw.server.{command}", arguments=list(arguments))
    )


async def test_checkpoint_undo_lenses(vscode: LanguageClient, workspace: Path, recorder: Any) -> None:
    client, root = vscode, workspace
    ops = root / "src/calc/ops.py"
    made = await run(client, "checkpoint", None, "first")
    assert made["created"] is True
    ops.write_text("def add(a, b):\n    return a - b\n")
    lenses = await client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=ops.as_uri()))
    )
    titles = [lens.command.title for lens in lenses if lens.command]
    assert any(t.startswith("$(history) Undo to checkpoint 1") for t in titles), titles
    undo = next(lens for lens in lenses if lens.command and lens.command.title.startswith("$(history) Undo to"))
    await run(client, undo.command.command.removeprefix("adw.server."), *(undo.command.arguments or []))
    assert "a + b" in ops.read_text()
    assert recorder.changed


async def test_start_sdlc_runs_to_the_end(vscode: LanguageClient) -> None:
    client = vscode
    started = await run(client, "startSdlc", ["specs/mul.md"])
    workflow_id = started["workflows"][0]["id"]
    for _ in range(300):
        status = await run(client, "status", workflow_id)
        if status["state"] not in ("pending", "running"):
            break
        await asyncio.sleep(0.1)
    assert status["state"] == "succeeded", status
    assert client.progress_reports, "each task should have had a progress"


async def test_bad_input_is_an_error_and_the_server_lives_on(minimal: LanguageClient) -> None:
    client = minimal
    try:
        await run(client, "createWorktree", "-bad")
    except Exception as exc:  # the JSON-RPC error reaches the client
        assert "invalid worktree name" in str(exc)
    else:
        raise AssertionError("expected an error")
    assert client.messages == []  # the error answer is the one report
    listed = await run(client, "listWorktrees")
    assert listed[0]["is_main"] is True
