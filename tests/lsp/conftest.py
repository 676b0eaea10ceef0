"""pytest-lsp fixtures: the real server over stdio, with VS Code's capabilities or a minimal client."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.conftest import GIT_ENV

SERVER = [sys.executable, "-m", "adw", "lsp", "--stdio"]


def make_workspace(root: Path) -> Path:
    """A repository with a spec, so lenses, SDLC and checkpoints have something to act on."""
    root.mkdir(parents=True)
    files = {
        "README.md": "# ws\n",
        "src/calc/__init__.py": "",
        "src/calc/ops.py": "def add(a, b):\n    return a + b\n",
        "specs/mul.md": (
            "# Multiply numbers\n\nAdd `mul`.\n\n```python path=src/calc/mul.py\n"
            "def mul(a: int, b: int) -> int:\n    return a * b\n```\n"
        ),
        ".gitignore": "scout_outputs/\n",
    }
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(content, encoding="utf-8")
    env = {**os.environ, **GIT_ENV}
    for argv in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "init"]):
        subprocess.run(["git", *argv], cwd=root, check=True, env=env, capture_output=True)
    return root


class Recorder:
    def __init__(self) -> None:
        self.refreshes = 0
        self.changed: list[Any] = []


async def _start(
    lsp_client: LanguageClient, root: Path, capabilities: types.ClientCapabilities, recorder: Recorder
) -> None:

    @lsp_client.feature(types.WORKSPACE_CODE_LENS_REFRESH)
    def _refresh(params: Any) -> None:
        recorder.refreshes += 1

    @lsp_client.feature("adw/changed")
    def _changed(params: Any) -> None:
        recorder.changed.append(params)

    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=capabilities,
            root_uri=root.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name="ws")],
        )
    )


def _env() -> dict[str, str]:
    return {**os.environ, **GIT_ENV}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return make_workspace(tmp_path / "ws ü")


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER, server_env=_env()))
async def vscode(lsp_client: LanguageClient, workspace: Path, recorder: Recorder) -> AsyncIterator[None]:
    """A client with VS Code's capabilities (progress, showDocument, lens refresh)."""
    await _start(lsp_client, workspace, client_capabilities("visual-studio-code"), recorder)
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER, server_env=_env()))
async def minimal(lsp_client: LanguageClient, workspace: Path, recorder: Recorder) -> AsyncIterator[None]:
    """A client without work-done progress, showDocument or lens refresh."""
    capabilities = types.ClientCapabilities(
        text_document=types.TextDocumentClientCapabilities(code_lens=types.CodeLensClientCapabilities()),
    )
    await _start(lsp_client, workspace, capabilities, recorder)
    yield
    await lsp_client.shutdown_session()
