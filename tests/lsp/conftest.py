"""pytest-lsp fixtures: the real server over stdio, with VS Code's capabilities or a minimal client."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.uris import from_fs_path
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
    write_config(root, "")
    return root


# The workspace has no virtualenv of its own, so (as in `adw demo`) its tests run with the interpreter running ADW.
_TEST_COMMAND = '[agents]\ntest_command = ["python", "-m", "pytest", "-q"]\n\n'


# A client without work-done progress, showDocument or lens refresh.
MINIMAL = types.ClientCapabilities(
    text_document=types.TextDocumentClientCapabilities(code_lens=types.CodeLensClientCapabilities()),
)


class Recorder:
    def __init__(self) -> None:
        self.refreshes = 0
        self.changed: list[Any] = []
        self.configuration: list[Any] = []
        self.registrations: list[types.Registration] = []


async def start(
    lsp_client: LanguageClient, root: Path, capabilities: types.ClientCapabilities, recorder: Recorder,
    options: dict[str, object] | None = None,
) -> None:

    @lsp_client.feature(types.WORKSPACE_CODE_LENS_REFRESH)
    def _refresh(params: Any) -> None:
        recorder.refreshes += 1

    @lsp_client.feature("adw/changed")
    def _changed(params: Any) -> None:
        recorder.changed.append(params)

    @lsp_client.feature("adw/configuration")
    def _configuration(params: Any) -> None:
        recorder.configuration.append(params)

    @lsp_client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def _register(params: types.RegistrationParams) -> None:
        recorder.registrations.extend(params.registrations)

    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=capabilities,
            root_uri=root.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name="ws")],
            initialization_options=options,
        )
    )


def server_env() -> dict[str, str]:
    # Read once at import, before the autouse fixtures run: so say here too that no pool fillers start.
    return {**os.environ, **GIT_ENV, "ADW_POOL": "0"}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return make_workspace(tmp_path / "ws ü")


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER, server_env=server_env()))
async def vscode(lsp_client: LanguageClient, workspace: Path, recorder: Recorder) -> AsyncIterator[None]:
    """A client with VS Code's capabilities (progress, showDocument, lens refresh) and options (codicons)."""
    await start(lsp_client, workspace, client_capabilities("visual-studio-code"), recorder, {"codicons": True})
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER, server_env=server_env()))
async def minimal(lsp_client: LanguageClient, workspace: Path, recorder: Recorder) -> AsyncIterator[None]:
    """A client without work-done progress, showDocument or lens refresh."""
    await start(lsp_client, workspace, MINIMAL, recorder)
    yield
    await lsp_client.shutdown_session()


# ---------------------------------------------------------------- helpers shared by the e2e tests


async def run(client: LanguageClient, command: str, *arguments: Any) -> Any:
    """`adw.server.<command>` through workspace/executeCommand; returns its JSON result."""
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=f"adw.server.{command}", arguments=list(arguments))
    )


async def fails(client: LanguageClient, command: str, *arguments: Any) -> JsonRpcException:
    """Run a command that must fail; returns the JSON-RPC error the client got."""
    try:
        await run(client, command, *arguments)
    except JsonRpcException as exc:
        return exc
    raise AssertionError(f"adw.server.{command}{list(arguments)!r} should have failed")


async def eventually(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll `check` (sync or async) until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.05)


async def wait_workflow(client: LanguageClient, workflow_id: str, timeout: float = 90.0) -> dict[str, Any]:
    """Poll adw.server.status until the workflow reaches an end state."""

    async def done() -> dict[str, Any] | None:
        status: dict[str, Any] = await run(client, "status", workflow_id)
        return status if status["state"] not in ("pending", "running") else None

    result: dict[str, Any] = await eventually(done, timeout, f"workflow {workflow_id} to finish")
    return result


def task_of(workflow: dict[str, Any], task_id: str) -> dict[str, Any]:
    return next(task for task in workflow["tasks"] if task["id"] == task_id)


async def code_lenses(client: LanguageClient, path: Path) -> list[types.CodeLens]:
    result = await client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri(path)))
    )
    return list(result or [])


def titles(lenses: list[types.CodeLens]) -> list[str]:
    return [lens.command.title for lens in lenses if lens.command]


def lens(lenses: list[types.CodeLens], prefix: str) -> types.Command:
    found = [lens.command for lens in lenses if lens.command and lens.command.title.startswith(prefix)]
    assert found, f"no lens starting with {prefix!r} in {titles(lenses)}"
    return found[0]


async def run_lens(client: LanguageClient, command: types.Command) -> Any:
    """What an editor does when the user clicks a lens."""
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=command.command, arguments=command.arguments)
    )


def uri(path: Path) -> str:
    """The URI the server uses for a path (percent-encoded the way pygls does it)."""
    return from_fs_path(str(path)) or path.as_uri()


def open_document(client: LanguageClient, path: Path, language: str = "markdown") -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri(path), language_id=language, version=1, text=path.read_text(encoding="utf-8")
            )
        )
    )


def write_config(root: Path, text: str) -> None:
    """`.adw.toml` of the workspace (untracked); the server reloads it before its next command. It always keeps
    the workspace's test command."""
    (root / ".adw.toml").write_text(_TEST_COMMAND + text, encoding="utf-8")


def toml_argv(*argv: str) -> str:
    return "[" + ", ".join(json.dumps(part) for part in argv) + "]"


def commit_all(root: Path, message: str) -> None:
    env = {**os.environ, **GIT_ENV}
    subprocess.run(["git", "add", "-A"], cwd=root, check=True, env=env, capture_output=True)
    subprocess.run(["git", "commit", "-q", "-m", message], cwd=root, check=True, env=env, capture_output=True)


def command_phase(phase: str, *argv: str) -> str:
    """A `.adw.toml` section running `phase` with the `command` agent on this interpreter."""
    return f'[phases.{phase}]\nagent = "command"\ncommand = {toml_argv(sys.executable, *argv)}\nretries = 0\n'
