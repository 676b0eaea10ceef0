"""Code lenses: start/scout on spec files with a live status lens while the spec's workflow runs, and the
checkpoint lenses at the top of files in worktrees. Running a lens acts on the files on disk; lenses are
refreshed through workspace/codeLens/refresh only for clients that support it."""

from __future__ import annotations

import json
import re
from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.lsp.conftest import (
    Recorder,
    code_lenses,
    command_phase,
    eventually,
    lens,
    run,
    run_lens,
    titles,
    uri,
    wait_workflow,
    write_config,
)

SLEEP = "import time; time.sleep(60)"


def args(command: types.Command) -> object:
    """A lens command's arguments as the JSON the client received (the converter hands back tuples)."""
    return json.loads(json.dumps(command.arguments))


async def test_spec_lenses_start_scout_and_live_status(
    vscode: LanguageClient, workspace: Path, recorder: Recorder
) -> None:
    client, root = vscode, workspace
    spec = root / "specs/mul.md"
    write_config(root, command_phase("plan", "-c", SLEEP))
    lenses = await code_lenses(client, spec)
    assert titles(lenses) == ["▶ Start Parallel SDLC", "⌕ Scout"]
    assert all(item.range.start.line == 0 for item in lenses)
    start, scout = lens(lenses, "▶"), lens(lenses, "⌕")
    assert (start.command, args(start)) == ("adw.server.startSdlc", [[str(spec)], {"existing": "ask"}])
    assert (scout.command, args(scout)) == ("adw.server.scout", ["Multiply numbers"])
    assert await code_lenses(client, root / "README.md") == []  # not a spec, no checkpoints

    scouted = await run_lens(client, scout)
    assert scouted["task"] == "Multiply numbers" and scouted["lspLocations"]

    before = recorder.refreshes
    [workflow] = (await run_lens(client, start))["workflows"]

    async def status_lens() -> types.Command | None:
        found = [c for c in map(lambda item: item.command, await code_lenses(client, spec)) if c and "●" in c.title]
        return found[0] if found and found[0].title.startswith("● plan") else None

    status = await eventually(status_lens, 30, "the live status lens")
    assert re.fullmatch(r"● plan · command · \dm\d\ds", status.title), status.title
    assert (status.command, args(status)) == ("adw.server.status", [workflow["id"]])
    assert (await run_lens(client, status))["state"] == "running"
    assert recorder.refreshes > before  # workflow and task changes refreshed the lenses

    await run(client, "cancel", workflow["id"])  # the whole workflow
    assert (await wait_workflow(client, workflow["id"], 30))["state"] == "cancelled"
    assert titles(await code_lenses(client, spec)) == ["▶ Start Parallel SDLC", "⌕ Scout"]

    # The spec glob comes from the configuration.
    write_config(root, '[lsp]\nspec_glob = "docs/**/*.md"\n')
    (root / "docs/deep").mkdir(parents=True)
    (root / "docs/deep/idea.md").write_text("# Idea\n")
    assert titles(await code_lenses(client, root / "docs/deep/idea.md")) == ["▶ Start Parallel SDLC", "⌕ Scout"]
    assert "▶ Start Parallel SDLC" not in titles(await code_lenses(client, spec))


async def test_checkpoint_lenses_act_on_disk(vscode: LanguageClient, workspace: Path, recorder: Recorder) -> None:
    client, root = vscode, workspace
    ops, readme = root / "src/calc/ops.py", root / "README.md"
    v1, v2 = ops.read_text(), "def add(a, b):\n    return b + a\n"
    assert await code_lenses(client, ops) == []  # no checkpoints yet

    await run(client, "checkpoint", None, "first")
    ops.write_text(v2)
    lenses = await code_lenses(client, ops)
    assert titles(lenses)[:2] == ["⟲ Undo to checkpoint 1 (just now)", "＋ Checkpoint"]
    refreshes = recorder.refreshes
    await run_lens(client, lens(lenses, "＋ Checkpoint"))  # checkpoint 2 holds v2
    await eventually(lambda: recorder.refreshes > refreshes, 10, "a lens refresh after the checkpoint")

    lenses = await code_lenses(client, ops)
    # At checkpoint 2 already: an undo goes to 1; ops.py changed in checkpoint 2, README.md did not.
    assert titles(lenses) == ["⟲ Undo to checkpoint 1 (just now)", "＋ Checkpoint", "⟲ Undo this file"]
    assert args(lens(lenses, "⟲ Undo this file")) == [str(root), str(ops)]
    assert titles(await code_lenses(client, readme)) == ["⟲ Undo to checkpoint 1 (just now)", "＋ Checkpoint"]

    await run_lens(client, lens(lenses, "⟲ Undo this file"))
    assert ops.read_text() == v1
    # A plain undo now brings the file back from checkpoint 2, and the lens says so.
    lenses = await code_lenses(client, ops)
    undo = lens(lenses, "⟲ Undo to")
    assert undo.title == "⟲ Undo to checkpoint 2 (just now)" and args(undo) == [str(root), None, 2]
    await run_lens(client, undo)
    assert ops.read_text() == v2

    lenses = await code_lenses(client, ops)
    assert "⟳ Redo" in titles(lenses)
    await run_lens(client, lens(lenses, "⟳ Redo"))
    assert ops.read_text() == v1

    # An edit saved in the editor leaves the checkpoint: the undo lens targets the newest checkpoint again.
    ops.write_text("def add(a, b):\n    return 0\n")
    client.text_document_did_save(types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri(ops))))
    newest = (await run(client, "listCheckpoints"))[-1]
    lenses = await eventually(
        lambda: _with_title(client, ops, f"⟲ Undo to checkpoint {newest['number']} "), 10, "the undo lens to follow"
    )
    await run_lens(client, lens(lenses, "⟲ Undo to"))
    assert ops.read_text() == v1


async def _with_title(client: LanguageClient, path: Path, prefix: str) -> list[types.CodeLens] | None:
    lenses = await code_lenses(client, path)
    return lenses if any(title.startswith(prefix) for title in titles(lenses)) else None


async def test_lenses_in_a_linked_worktree_without_refresh(
    minimal: LanguageClient, workspace: Path, recorder: Recorder
) -> None:
    client, root = minimal, workspace
    path = Path((await run(client, "createWorktree", "feat"))["worktree"]["path"])
    ops = path / "src/calc/ops.py"
    assert await code_lenses(client, ops) == []
    await run(client, "checkpoint", "feat", "in feat")
    ops.write_text("def add(a, b):\n    return -1\n")
    lenses = await code_lenses(client, ops)
    undo = lens(lenses, "⟲ Undo to checkpoint 1")
    assert args(undo) == [str(path), None, 1]
    assert await code_lenses(client, root / "src/calc/ops.py") == []  # the main worktree has no checkpoints
    await run_lens(client, undo)
    assert ops.read_text() == "def add(a, b):\n    return a + b\n"
    assert recorder.refreshes == 0 and recorder.changed  # no refresh requests, but adw/changed
