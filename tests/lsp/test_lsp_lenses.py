"""Code lenses: start/scout on spec files with a live status lens while the spec's workflow runs (on the spec's
heading), the checkpoint lenses at the top of files in worktrees and "Undo this file" on the file's first changed
line. Running a lens acts on the files on disk; lenses are
refreshed through workspace/codeLens/refresh only for clients that support it."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from tests.conftest import GIT_ENV
from tests.lsp.conftest import (
    Recorder,
    code_lenses,
    command_phase,
    eventually,
    fails,
    lens,
    run,
    run_lens,
    titles,
    uri,
    wait_workflow,
    write_config,
)

SLEEP = "import time; time.sleep(60)"
SPEC_LENSES = ["$(play) Start Parallel SDLC", "$(search) Scout"]
UNDO_TO_1 = "$(history) Undo to checkpoint 1 (just now)"


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
    assert titles(lenses) == ["$(play) Start Parallel SDLC", "$(search) Scout"]
    assert all(item.range.start.line == 0 for item in lenses)  # the heading's line
    start, scout = lens(lenses, "$(play)"), lens(lenses, "$(search)")
    assert (start.command, args(start)) == ("adw.server.startSdlc", [[str(spec)], {"existing": "ask"}])
    assert (scout.command, args(scout)) == ("adw.server.scout", ["Multiply numbers"])
    assert await code_lenses(client, root / "README.md") == []  # not a spec, no checkpoints

    scouted = await run_lens(client, scout)
    assert scouted["task"] == "Multiply numbers" and scouted["lspLocations"]

    before = recorder.refreshes
    [workflow] = (await run_lens(client, start))["workflows"]

    async def status_lens() -> types.Command | None:
        found = [c for c in (item.command for item in await code_lenses(client, spec)) if c and "$(sync~" in c.title]
        return found[0] if found and found[0].title.startswith("$(sync~spin) plan") else None

    status = await eventually(status_lens, 30, "the live status lens")
    assert re.fullmatch(r"\$\(sync~spin\) plan · command · \dm\d\ds", status.title), status.title
    assert (status.command, args(status)) == ("adw.server.status", [workflow["id"]])
    assert (await run_lens(client, status))["state"] == "running"
    assert recorder.refreshes > before  # workflow and task changes refreshed the lenses

    await run(client, "cancel", workflow["id"])  # the whole workflow
    assert (await wait_workflow(client, workflow["id"], 30))["state"] == "cancelled"
    assert titles(await code_lenses(client, spec)) == ["$(play) Start Parallel SDLC", "$(search) Scout"]

    # The spec glob comes from the configuration.
    write_config(root, '[lsp]\nspec_glob = "docs/**/*.md"\n')
    (root / "docs/deep").mkdir(parents=True)
    (root / "docs/deep/idea.md").write_text("# Idea\n")
    assert titles(await code_lenses(client, root / "docs/deep/idea.md")) == SPEC_LENSES
    assert "$(play) Start Parallel SDLC" not in titles(await code_lenses(client, spec))


async def test_checkpoint_lenses_act_on_disk(vscode: LanguageClient, workspace: Path, recorder: Recorder) -> None:
    client, root = vscode, workspace
    ops, readme = root / "src/calc/ops.py", root / "README.md"
    v1, v2 = ops.read_text(), "def add(a, b):\n    return b + a\n"
    assert await code_lenses(client, ops) == []  # no checkpoints yet

    await run(client, "checkpoint", None, "first")
    ops.write_text(v2)
    lenses = await code_lenses(client, ops)
    assert titles(lenses)[:2] == ["$(history) Undo to checkpoint 1 (just now)", "$(add) Checkpoint"]
    refreshes = recorder.refreshes
    await run_lens(client, lens(lenses, "$(add) Checkpoint"))  # checkpoint 2 holds v2
    await eventually(lambda: recorder.refreshes > refreshes, 10, "a lens refresh after the checkpoint")

    lenses = await code_lenses(client, ops)
    # At checkpoint 2 already: an undo goes to 1; ops.py changed in checkpoint 2, README.md did not.
    assert titles(lenses) == [UNDO_TO_1, "$(add) Checkpoint", "$(discard) Undo this file"]
    assert args(lens(lenses, "$(discard) Undo this file")) == [str(root), str(ops)]
    assert titles(await code_lenses(client, readme)) == [UNDO_TO_1, "$(add) Checkpoint"]

    await run_lens(client, lens(lenses, "$(discard) Undo this file"))
    assert ops.read_text() == v1
    # A plain undo now brings the file back from checkpoint 2, and the lens says so.
    lenses = await code_lenses(client, ops)
    undo = lens(lenses, "$(history) Undo to")
    assert undo.title == "$(history) Undo to checkpoint 2 (just now)" and args(undo) == [str(root), None, 2]
    await run_lens(client, undo)
    assert ops.read_text() == v2

    lenses = await code_lenses(client, ops)
    assert "$(redo) Redo" in titles(lenses)
    await run_lens(client, lens(lenses, "$(redo) Redo"))
    assert ops.read_text() == v1

    # An edit saved in the editor leaves the checkpoint: the undo lens targets the newest checkpoint again.
    ops.write_text("def add(a, b):\n    return 0\n")
    client.text_document_did_save(types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri(ops))))
    newest = (await run(client, "listCheckpoints"))[-1]
    lenses = await eventually(
        lambda: _with_title(client, ops, f"$(history) Undo to checkpoint {newest['number']} "), 10, "the undo lens"
    )
    await run_lens(client, lens(lenses, "$(history) Undo to"))
    assert ops.read_text() == v1


async def test_lenses_sit_on_the_lines_they_are_about(vscode: LanguageClient, workspace: Path) -> None:
    """One lens kind per line where it can be, so `codelens.run` on a line runs the lens it shows."""
    client, root = vscode, workspace
    spec = root / "specs/later.md"
    spec.write_text("<!-- owner: ops -->\n\n## Later heading\n\nText.\n")
    lenses = await code_lenses(client, spec)
    assert titles(lenses) == SPEC_LENSES
    assert [item.range.start.line for item in lenses] == [2, 2]
    assert args(lens(lenses, "$(search)")) == ["Later heading"]

    ops = root / "src/calc/ops.py"
    ops.write_text("".join(f"line {n}\n" for n in range(10)))
    await run(client, "checkpoint", None, "ten lines")
    ops.write_text("".join(f"line {n}\n" if n != 6 else "changed\n" for n in range(10)))
    await run(client, "checkpoint", None, "line 6 changed")
    lenses = await code_lenses(client, ops)
    lines = {title: item.range.start.line for title, item in zip(titles(lenses), lenses, strict=True)}
    # At the newest checkpoint already: the file undo restores checkpoint 1's version, which differs at line 6.
    assert lines == {"$(history) Undo to checkpoint 1 (just now)": 0, "$(add) Checkpoint": 0,
                     "$(discard) Undo this file": 6}
    # Unsaved text counts: an edit above moves the lens to it.
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
        uri=uri(ops), language_id="python", version=1, text=ops.read_text())))
    _did_change(client, ops, ops.read_text().replace("line 3\n", "line three\n"))
    lenses = await code_lenses(client, ops)
    assert lenses[-1].range.start.line == 3 and titles(lenses)[-1] == "$(discard) Undo this file"
    # A file new in the newest checkpoint: undoing it deletes the file, so the lens sits on its first line.
    (root / "new.py").write_text("a = 1\nb = 2\n")
    await run(client, "checkpoint", None, "new file")
    new = await code_lenses(client, root / "new.py")
    assert [item.range.start.line for item in new if item.command and "Undo this file" in item.command.title] == [0]


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
    undo = lens(lenses, "Undo to checkpoint 1")
    assert args(undo) == [str(path), None, 1]
    assert await code_lenses(client, root / "src/calc/ops.py") == []  # the main worktree has no checkpoints
    await run_lens(client, undo)
    assert ops.read_text() == "def add(a, b):\n    return a + b\n"
    assert recorder.refreshes == 0 and recorder.changed  # no refresh requests, but adw/changed


def _did_change(client: LanguageClient, path: Path, text: str, version: int = 2) -> None:
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri(path), version=version),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
    ))


async def test_redo_lens_only_while_redo_would_work(vscode: LanguageClient, workspace: Path) -> None:
    """Redo refuses once the files left the restored checkpoint, so the lens goes at the first edit."""
    client, ops = vscode, workspace / "src/calc/ops.py"
    await run(client, "checkpoint", None, "first")
    ops.write_text("def add(a, b):\n    return b + a\n")
    await run(client, "undo")
    assert "$(redo) Redo" in titles(await code_lenses(client, ops))
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
        uri=uri(ops), language_id="python", version=1, text="def add(a, b):\n    return b + a\n")))
    # The editor reloads the file the undo rewrote: a change to the disk's text, after which redo still works.
    _did_change(client, ops, ops.read_text())
    assert "$(redo) Redo" in titles(await code_lenses(client, ops))
    _did_change(client, ops, "def add(a, b):\n    return 1\n", 3)
    lenses = await eventually(
        lambda: _without_title(client, ops, "$(redo) Redo"), 10, "the redo lens to go after an edit"
    )
    assert titles(lenses)[0] == "$(history) Undo to checkpoint 1 (just now)"
    # A new undo makes redo valid again.
    await run(client, "redo")
    await run(client, "undo")
    assert "$(redo) Redo" in titles(await code_lenses(client, ops))


async def _without_title(client: LanguageClient, path: Path, title: str) -> list[types.CodeLens] | None:
    lenses = await code_lenses(client, path)
    return None if title in titles(lenses) else lenses


def _commit_all(root: Path, message: str) -> None:
    env = {**os.environ, **GIT_ENV}
    for argv in (["add", "-A"], ["commit", "-q", "-m", message]):
        subprocess.run(["git", *argv], cwd=root, check=True, env=env, capture_output=True)


async def test_undo_lens_names_the_commit_it_would_undo(vscode: LanguageClient, workspace: Path) -> None:
    client, root = vscode, workspace
    await run(client, "checkpoint", None, "before the run")
    (root / "healthz.py").write_text("OK = True\n")
    await asyncio.to_thread(_commit_all, root, "adw: healthz")  # what an agent's run ends with
    await run(client, "checkpoint", None, "after the run")
    undo = lens(await code_lenses(client, root / "healthz.py"), "$(history) Undo to")
    assert undo.title == "$(history) Undo to checkpoint 1 (just now) — before commit 'adw: healthz'"
    # Before the commit the same lens only restores files: its title says nothing more.
    await run_lens(client, undo)
    assert not (root / "healthz.py").exists()
    undo = lens(await code_lenses(client, root / "README.md"), "$(history) Undo to")
    assert "commit" not in undo.title


async def test_a_no_op_undo_says_so(minimal: LanguageClient, workspace: Path) -> None:
    """A fresh server does not know the files equal the newest checkpoint: undoing to it changes nothing and
    says that, instead of "restored checkpoint 1"."""
    client, ops = minimal, workspace / "src/calc/ops.py"
    await run(client, "checkpoint", None, "first")
    undo = lens(await code_lenses(client, ops), "Undo to checkpoint 1")
    before = ops.read_text()
    result = await run_lens(client, undo)
    assert result["message"] == "the files already equal checkpoint 1; nothing to undo"
    assert ops.read_text() == before


async def test_a_failed_lens_command_is_one_error_in_editor_words(vscode: LanguageClient, workspace: Path) -> None:
    client, ops = vscode, workspace / "src/calc/ops.py"
    await run(client, "checkpoint", None, "first")
    ops.write_text("def add(a, b):\n    return b + a\n")
    await run(client, "undo")
    redo = lens(await code_lenses(client, ops), "$(redo) Redo")
    ops.write_text("def add(a, b):\n    return 2\n")  # changed behind the editor's back
    shown = len(client.messages)
    with pytest.raises(JsonRpcException) as refused:
        await run_lens(client, redo)
    error = str(refused.value)
    assert client.messages[shown:] == []
    assert "redo would overwrite them" in error and "ADW: Checkpoint" in error
    assert "`adw" not in error and "--" not in error.replace(" — ", "")
    assert "`adw" not in str(await fails(client, "redo", str(workspace)))
