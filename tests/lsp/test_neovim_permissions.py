"""An ACP agent's permission questions in Neovim: its stock `window/showMessageRequest` handler lists the
question and the three answers, and the person's pick answers the agent (nvim_permissions.lua)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from adw.sdlc.demo import create_demo_repo
from tests.lsp.conftest import server_env
from tests.lsp.test_lsp_permissions import ACP_BUILD
from tests.lsp.test_neovim import nvim_or_skip

SCRIPT = Path(__file__).with_name("nvim_permissions.lua")


@pytest.mark.slow
def test_neovim_shows_the_question_and_its_pick_answers_the_agent(tmp_path: Path) -> None:
    nvim = nvim_or_skip("system")
    root = tmp_path / "demo"
    asyncio.run(create_demo_repo(root))
    (root / ".adw.toml").write_text(ACP_BUILD, encoding="utf-8")
    result_file = tmp_path / "result.json"
    state = tmp_path / "nvim-state"
    env = {
        **server_env(), "ADW_PY": sys.executable, "ADW_ROOT": str(root), "ADW_RESULT": str(result_file),
        "XDG_CACHE_HOME": str(state / "cache"), "XDG_STATE_HOME": str(state / "state"),
        "XDG_DATA_HOME": str(state / "data"), "XDG_CONFIG_HOME": str(state / "config"),
    }
    argv = [nvim, "--headless", "-n", "-i", "NONE", "-u", str(SCRIPT), str(root / "specs/multiply.md")]
    try:
        done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"nvim hung; partial output: {exc.stdout!r} {exc.stderr!r}") from None
    assert result_file.is_file(), f"nvim wrote no result (exit {done.returncode}): {done.stderr[-2000:]}"
    result = json.loads(result_file.read_text())
    assert result["ok"], f"{result.get('error')}\nsteps: {result['steps']}\nstderr: {done.stderr[-2000:]}"

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
