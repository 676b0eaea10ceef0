"""Scout links (Locations in the result, showDocument to the best one, a Markdown report whose results are
document links) and the custom protocol behind the extension's views (adw/worktrees, adw/workflows,
adw/checkpoints requests; the adw/changed notification)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.uris import to_fs_path
from pytest_lsp import LanguageClient

from tests.lsp.conftest import (
    Recorder,
    command_phase,
    eventually,
    open_document,
    run,
    task_of,
    uri,
    wait_workflow,
    write_config,
)


def plain(value: Any) -> Any:
    """Custom request results arrive as namedtuples: back to JSON-like dicts and lists."""
    if hasattr(value, "_asdict"):
        return {key: plain(item) for key, item in value._asdict().items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


async def request(client: LanguageClient, method: str, params: dict[str, Any] | None = None) -> Any:
    return plain(await client.protocol.send_request_async(method, params or {}))


async def test_scout_links_and_show_document(vscode: LanguageClient, workspace: Path) -> None:
    client, root = vscode, workspace
    result = await run(client, "scout", "add two numbers in calc ops")
    locations = result["lspLocations"]
    assert locations and result["shown"] is True
    assert locations[0]["uri"] == uri(root / result["locations"][0]["path"])
    assert any(loc["uri"] == uri(root / "src/calc/ops.py") for loc in locations)
    for location, found in zip(locations, result["locations"], strict=True):
        start, end = location["range"]["start"], location["range"]["end"]
        assert start["line"] == end["line"] == max(found["line"] - 1, 0)
        text = (Path(to_fs_path(location["uri"]) or "").read_text().splitlines() or [""])[start["line"]]
        spanned = text[start["character"] : end["character"]]
        assert re.fullmatch(r"[\w$]+", spanned) or not re.search(r"\w", text), "a location spans a word if any"

    # showDocument to the best location, once.
    [shown] = client.shown_documents
    assert shown.uri == locations[0]["uri"] and shown.selection is not None
    assert shown.selection.start.line == locations[0]["range"]["start"]["line"]

    # The Markdown report: every result is a document link to its file and line.
    report = Path(to_fs_path(result["reportUri"]) or "")
    assert report == root / "scout_outputs/scout-report.md" and report.is_file()
    assert json.loads((root / "scout_outputs/relevant_files.json").read_text())["files"] == result["files"]
    open_document(client, report)
    links = await client.text_document_document_link_async(
        types.DocumentLinkParams(text_document=types.TextDocumentIdentifier(uri=result["reportUri"]))
    )
    targets = [link.target for link in links or []]
    expected = [f"{uri(root / found['path'])}#L{found['line']}" for found in result["locations"]]
    assert targets == expected
    text = report.read_text().splitlines()
    for link, found in zip(links or [], result["locations"], strict=True):
        line = text[link.range.start.line]
        assert line[link.range.start.character : link.range.end.character] == f"{found['path']}:{found['line']}"


async def test_scout_locations_name_the_symbol_and_honour_top(vscode: LanguageClient, workspace: Path) -> None:
    client, root = vscode, workspace
    (root / "src/calc/ops.py").write_text(
        'class Ops:\n    """Arithmetic."""\n\n    async def add(self, a, b):\n        return a + b\n'
    )
    result = await run(client, "scout", "Ops add numbers", None, 1)
    [location] = result["lspLocations"]
    assert len(result["locations"]) == 1 and location["uri"] == uri(root / result["locations"][0]["path"])
    line = (root / result["locations"][0]["path"]).read_text().splitlines()[location["range"]["start"]["line"]]
    name = line[location["range"]["start"]["character"] : location["range"]["end"]["character"]]
    assert (line.lstrip().split()[0], name) in (("class", "Ops"), ("async", "add")), line


async def test_scout_in_a_worktree_without_show_document(minimal: LanguageClient, workspace: Path) -> None:
    client = minimal
    path = Path((await run(client, "createWorktree", "feat"))["worktree"]["path"])
    result = await run(client, "scout", "add two numbers in calc ops", "feat")
    assert result["shown"] is False and client.shown_documents == []
    assert result["lspLocations"] and all(loc["uri"].startswith(uri(path) + "/") for loc in result["lspLocations"])
    assert result["reportUri"] == uri(path / "scout_outputs/scout-report.md")


async def test_view_requests_and_changed_notification(
    vscode: LanguageClient, workspace: Path, recorder: Recorder
) -> None:
    client, root = vscode, workspace
    write_config(root, command_phase("plan", "-c", "import time; time.sleep(60)"))
    [main] = await request(client, "adw/worktrees")
    assert main["is_main"] is True and main["agentsRunning"] == 0 and main["path"] == str(root)

    [workflow] = (await run(client, "startSdlc", ["specs/mul.md"]))["workflows"]

    async def busy() -> dict[str, Any] | None:
        infos = await request(client, "adw/worktrees")
        return next((info for info in infos if info["name"] == "mul" and info["agentsRunning"] == 1), None)

    mul = await eventually(busy, 30, "adw/worktrees to show the running agent")
    assert mul["branch"] == "adw/mul"
    listed = await request(client, "adw/workflows")
    assert [wf["id"] for wf in listed] == [workflow["id"]]
    assert task_of(listed[0], "plan")["state"] == "running"
    await run(client, "cancel", workflow["id"])
    await wait_workflow(client, workflow["id"], 30)
    assert (await request(client, "adw/workflows"))[0]["state"] == "cancelled"

    # Checkpoints of a linked worktree, by name, with a file relative to that worktree (or as a URI).
    wt = Path(mul["path"])
    ops = wt / "src/calc/ops.py"
    ops.write_text("def add(a, b):\n    return 42\n")
    await run(client, "checkpoint", "mul", "forty-two")
    everything = await request(client, "adw/checkpoints", {"worktree": "mul"})
    assert everything["worktree"] == str(wt)
    assert [c["message"] for c in everything["checkpoints"]][-1] == "forty-two"
    for file in ("src/calc/ops.py", ops.as_uri()):
        only = await request(client, "adw/checkpoints", {"worktree": "mul", "file": file})
        assert [c["message"] for c in only["checkpoints"]] == ["forty-two"]
        assert [c["message"] for c in await run(client, "listCheckpoints", "mul", file)] == ["forty-two"]
    assert (await request(client, "adw/checkpoints"))["checkpoints"] == []  # the workspace folder has none
    await run(client, "undo", "mul", "src/calc/ops.py")
    assert ops.read_text() == "def add(a, b):\n    return a + b\n"

    kinds = {dict(note._asdict())["what"] for note in recorder.changed}
    assert kinds == {"workflows", "checkpoints"}
