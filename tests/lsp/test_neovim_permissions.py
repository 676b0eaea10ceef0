"""An ACP agent's permission questions in Neovim: its stock `window/showMessageRequest` handler lists the
question and the three answers, and the person's pick answers the agent (nvim_permissions.lua)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from adw.sdlc.demo import create_demo_repo
from tests.lsp.conftest import server_env
from tests.lsp.test_lsp_permissions import ACP_BUILD
from tests.lsp.test_neovim import nvim_or_skip, run_scenario

pytestmark = pytest.mark.real  # .ci/run installs the program and runs these in a step of their own

SCRIPT = Path(__file__).with_name("nvim_permissions.lua")


@pytest.mark.slow
def test_neovim_shows_the_question_and_its_pick_answers_the_agent(tmp_path: Path) -> None:
    nvim = nvim_or_skip("system")
    root = tmp_path / "demo"
    asyncio.run(create_demo_repo(root))
    (root / ".adw.toml").write_text(ACP_BUILD, encoding="utf-8")
    result = run_scenario(nvim, SCRIPT, root, tmp_path, server_env(), timeout=180)

    # Three questions shown (b.txt was covered by "always"), each with the question and the three answers.
    assert len(result["shown"]) == 3, result["shown"]
    first = result["shown"][0]
    assert first[0].startswith("ADW multiply · build: the agent asks to Edit a.txt ("), first
    assert [line.strip() for line in first[2:]] == ["1. Allow Once", "2. Always for This Task", "3. Deny"], first
    assert result["build_state"] == "succeeded"
    assert result["decisions"] == [
        "allowed for this task by the editor", "denied by the editor", "denied by the editor",
        "edit tools allowed for this task by the editor",
    ]
