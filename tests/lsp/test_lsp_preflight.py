"""startSdlc checks the configured agents first: a missing CLI is a RequestFailed error and an editor message
that says what to install, and no workflow starts."""

from __future__ import annotations

from pathlib import Path

from pytest_lsp import LanguageClient

from tests.lsp.conftest import fails, run, toml_argv, write_config

REQUEST_FAILED = -32803


async def test_start_sdlc_refuses_an_agent_that_is_not_installed(
    vscode: LanguageClient, workspace: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "no-agents"
    empty.mkdir()
    write_config(workspace, f'[phases.build]\nagent = "codex"\nenv = {{ PATH = {toml_argv(str(empty))[1:-1]} }}\n')
    refused = await fails(vscode, "startSdlc", ["specs/mul.md"])
    assert refused.code == REQUEST_FAILED
    assert "phases.build (codex): `codex` is not installed or not on PATH" in str(refused)
    assert "npm install -g @openai/codex" in str(refused)  # how to fix it, in the one error the editor shows
    assert vscode.messages == []  # and no second toast
    assert await run(vscode, "status") == []


async def test_remove_and_rerun_checks_the_agents_before_removing_anything(
    minimal: LanguageClient, workspace: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "no-agents"
    empty.mkdir()
    path = Path((await run(minimal, "createWorktree", "mul"))["worktree"]["path"])
    write_config(workspace, f'[phases.build]\nagent = "codex"\nenv = {{ PATH = {toml_argv(str(empty))[1:-1]} }}\n')
    refused = await fails(minimal, "startSdlc", ["specs/mul.md"], {"existing": "replace"})
    assert refused.code == REQUEST_FAILED and "`codex` is not installed" in str(refused)
    assert path.is_dir() and "mul" in [w["name"] for w in await run(minimal, "listWorktrees")]
