"""`adw.server.timeline` against the real server: the run of two specs drawn live and when done, from one
workflow's id, the Timeline lens on a running spec for a client offering `adw.showTimeline`, and an unknown id
refused in the editor's words."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import pytest_lsp
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.lsp.conftest import SERVER, Recorder, code_lenses, eventually, fails, run, server_env, start, wait_workflow

SPEC = "# Greet\n\n```python path=src/calc/greet.py\ndef greet(name: str) -> str:\n    return f'hi {name}'\n```\n"


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER, server_env=server_env()))
async def extension(lsp_client: LanguageClient, workspace: Path, recorder: Recorder) -> AsyncIterator[None]:
    """VS Code with the extension's options: codicons, and its own command drawing the timeline."""
    options = {"codicons": True, "clientCommands": ["adw.showTimeline"]}
    await start(lsp_client, workspace, client_capabilities("visual-studio-code"), recorder, options)
    yield
    await lsp_client.shutdown_session()


def bars(drawn: dict[str, Any]) -> list[dict[str, Any]]:
    return [bar for lane in drawn["timeline"]["lanes"] for bar in lane["bars"]]


@pytest.mark.slow
async def test_the_timeline_of_two_specs_with_one_agent_slot(extension: LanguageClient, workspace: Path) -> None:
    client = extension
    (workspace / "specs/greet.md").write_text(SPEC, encoding="utf-8")
    started = await run(client, "startSdlc", ["specs/mul.md", "specs/greet.md"], {"maxAgents": 1})
    first, second = (wf["id"] for wf in started["workflows"])

    async def live() -> dict[str, Any] | None:
        drawn: dict[str, Any] = await run(client, "timeline", second)
        return drawn if any(bar["state"] == "running" for bar in bars(drawn)) else None

    running = await eventually(live, 60, "a running bar")
    assert running["timeline"]["live"] is True
    lenses = [lens.command for lens in await code_lenses(client, workspace / "specs/mul.md") if lens.command]
    timeline_lens = [command for command in lenses if command.title == "$(graph) Timeline"]
    assert [(c.command, list(c.arguments or [])) for c in timeline_lens] == [("adw.showTimeline", [first])]
    for wf_id in (first, second):
        finished = await wait_workflow(client, wf_id)
        assert finished["state"] == "succeeded", finished["reason"]

    drawn = await run(client, "timeline", first)
    model = drawn["timeline"]
    assert model["live"] is False and model["run_id"].startswith("run-")
    assert [lane["workflow_id"] for lane in model["lanes"]] == [first, second]
    states = {bar["state"] for bar in bars(drawn)}
    assert states == {"queued", "succeeded"}  # one slot for two workflows: agent phases waited for it
    assert model["slot_wait"] > 0 and model["critical_path"]
    svg = ElementTree.fromstring(drawn["svg"])
    drawn_bars = [el for el in svg.iter() if el.get("class") == "adw-bar"]
    assert len(drawn_bars) == len(bars(drawn))
    assert {el.get("data-workflow") for el in drawn_bars} == {first, second}


async def test_an_unknown_run_is_refused_in_editor_words(minimal: LanguageClient) -> None:
    error = await fails(minimal, "timeline", "run-ghost")
    assert "no workflow 'run-ghost'" in str(error) and "Workflows view" in str(error)
    assert "`adw" not in str(error)
    assert "needs `id`" in str(await fails(minimal, "timeline"))
