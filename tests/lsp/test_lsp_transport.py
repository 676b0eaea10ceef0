"""LSP fuzz test over raw stdio and TCP: oversize lengths, missing headers, bad JSON, invalid UTF-8, batch arrays, deep
nesting, wrong parameter types and NULs in paths each get the JSON-RPC error they call for (never a crash, a
silence or a raw exception text), and after each one the server still answers a valid request."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import GIT_ENV
from tests.lsp.conftest import SERVER

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602
ANSWERED = 0  # a result, not an error


def frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def message(payload: object) -> bytes:
    return frame(json.dumps(payload).encode())


def request_message(msg_id: int, method: str, params: object) -> bytes:
    return message({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})


def command(msg_id: int, name: str, *arguments: object) -> bytes:
    params = {"command": f"adw.server.{name}", "arguments": arguments}
    return request_message(msg_id, "workspace/executeCommand", params)


# (what is sent, code of the answer (None: no answer, ANSWERED: a result), the id it answers, text of its message)
CASES: list[tuple[str, bytes, int | None, int | None, str]] = [
    ("oversize length", b"Content-Length: 99999999999\r\n\r\n", INVALID_REQUEST, None, "over the limit"),
    ("no Content-Length", b"Content-Type: application/json\r\n\r\n{\"jsonrpc\": \"2.0\", \"id\": 1}",
     PARSE_ERROR, None, "without Content-Length"),
    ("junk longer than a header", b"x" * 100_000, None, None, ""),
    ("malformed JSON", frame(b"{\"jsonrpc\": \"2.0\", \"id\": 2,"), PARSE_ERROR, None, "not valid JSON"),
    ("invalid UTF-8", frame(b"{\"jsonrpc\": \"2.0\", \"id\": 3, \"method\": \"\xff\xfe\"}"), PARSE_ERROR, None,
     "not valid UTF-8"),
    ("batch array", message([{"jsonrpc": "2.0", "id": 4, "method": "shutdown"}]), INVALID_REQUEST, None, "batch"),
    ("a bare number", frame(b"42"), INVALID_REQUEST, None, "JSON object"),
    ("no jsonrpc version", message({"id": 5, "method": "shutdown"}), INVALID_REQUEST, 5, "jsonrpc"),
    ("nesting too deep to parse", frame(b"[" * 100_000 + b"]" * 100_000), PARSE_ERROR, None, "nests too deeply"),
    ("deep nesting", request_message(6, "adw/workflows", json.loads("[" * 150 + "]" * 150)), INVALID_REQUEST, 6,
     "nests deeper than 100 levels"),
    ("array params of executeCommand", request_message(7, "workspace/executeCommand", [1, 2]), INVALID_PARAMS, 7,
     "params do not fit"),
    ("unknown method", request_message(8, "adw/nothing", None), METHOD_NOT_FOUND, 8, "adw/nothing"),
    ("wrong argument type", command(9, "merge", 42), INVALID_PARAMS, 9, "`name` should be a valid string"),
    ("wrong named argument", command(10, "undo", {"to": [1]}), INVALID_PARAMS, 10, "`to` should be"),
    ("too many arguments", command(11, "redo", "a", "b"), INVALID_PARAMS, 11, "takes at most 1"),
    ("NUL in a worktree", command(12, "checkpoint", "a\0b"), INVALID_PARAMS, 12, "NUL"),
    ("NUL in a file", command(13, "undo", None, "src/a\0b.py"), INVALID_PARAMS, 13, "NUL"),
    ("NUL in request params", request_message(14, "adw/checkpoints", {"file": "\0"}), INVALID_PARAMS, 14, "NUL"),
    ("object params of adw/checkpoints wrongly typed", request_message(15, "adw/checkpoints", {"worktree": 3}),
     INVALID_PARAMS, 15, "`worktree` should be a valid string"),
    ("array params of adw/checkpoints", request_message(16, "adw/checkpoints", [1]), INVALID_PARAMS, 16, "an object"),
    ("NUL in a document URI", request_message(17, "textDocument/codeLens", {"textDocument": {"uri": "file:///ws/a%00b.md"}}),
     ANSWERED, 17, ""),
]


class RawClient:
    def __init__(
        self, process: asyncio.subprocess.Process, stdout: asyncio.StreamReader, stdin: asyncio.StreamWriter
    ) -> None:
        self.process, self.stdout, self.stdin = process, stdout, stdin

    async def send(self, data: bytes) -> None:
        self.stdin.write(data)
        await self.stdin.drain()

    async def receive(self) -> dict[str, Any]:
        length = None
        while (line := await self.stdout.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        assert length is not None, "the server closed its output"
        return dict(json.loads(await self.stdout.readexactly(length)))

    async def answers_until(self, *msg_ids: int) -> list[dict[str, Any]]:
        """Every answer (not notifications) until those to all of `msg_ids` came (in any order: requests are
        handled concurrently, so a slow one may be answered after a later fast one)."""
        answers: list[dict[str, Any]] = []
        waiting = set(msg_ids)
        while waiting:
            received = await asyncio.wait_for(self.receive(), 300)  # a hang guard, generous for a loaded machine
            if "method" not in received:
                answers.append(received)
                waiting.discard(received.get("id"))
        return answers


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _connect(process: asyncio.subprocess.Process, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """The server's socket, once it listens (polled: it starts in well under a second)."""
    for _ in range(600):
        assert process.returncode is None, "the server exited before listening"
        try:
            return await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
    raise AssertionError(f"the server never listened on port {port}")


@pytest.fixture(params=["stdio", "tcp"])
async def raw(request: pytest.FixtureRequest, workspace: Path) -> Any:
    port = _free_port()
    argv = SERVER if request.param == "stdio" else [*SERVER[:-1], "--tcp", f"127.0.0.1:{port}"]
    process = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        cwd=workspace, env={**os.environ, **GIT_ENV},
    )
    assert process.stdin is not None and process.stdout is not None
    streams = (process.stdout, process.stdin) if request.param == "stdio" else await _connect(process, port)
    client = RawClient(process, *streams)
    await client.send(request_message(0, "initialize", {"capabilities": {}, "rootUri": workspace.as_uri()}))
    await client.answers_until(0)
    await client.send(message({"jsonrpc": "2.0", "method": "initialized", "params": {}}))
    yield client
    process.kill()
    await process.wait()


async def test_every_bad_message_is_answered_and_the_server_serves_on(raw: RawClient) -> None:
    for number, (what, data, code, msg_id, text) in enumerate(CASES, start=1000):
        await raw.send(data)
        await raw.send(command(number, "listWorktrees"))
        answers = await raw.answers_until(number, *([msg_id] if code is not None and msg_id is not None else []))
        [valid] = [answer for answer in answers if answer.get("id") == number]
        errors = [answer for answer in answers if answer is not valid]
        assert "result" in valid and valid["result"][0]["is_main"] is True, (what, valid)
        if code is None:
            assert errors == [], (what, errors)
            continue
        assert len(errors) == 1, (what, answers)
        [error] = errors
        if code == ANSWERED:
            assert error["id"] == msg_id and "result" in error, (what, error)
            continue
        assert error["id"] == msg_id and error["error"]["code"] == code, (what, error)
        assert text in error["error"]["message"], (what, error)
        assert "Traceback" not in error["error"]["message"], what
    assert raw.process.returncode is None


async def test_a_notification_that_does_not_fit_is_not_answered(raw: RawClient) -> None:
    await raw.send(message({"jsonrpc": "2.0", "method": "textDocument/didSave", "params": [1]}))
    await raw.send(command(1, "listWorktrees"))
    [answer] = await raw.answers_until(1)
    assert "result" in answer

