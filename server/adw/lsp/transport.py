"""The stdio transport, hardened: every message a client sends gets an answer and the server keeps serving.

pygls 2.1's reader (`pygls.io_.run_async`) trusts its input: a huge Content-Length is allocated at once
(MemoryError kills the server), a header block without Content-Length makes it skip input until one comes,
and a body that is not a JSON-RPC object is logged and dropped, so the client waits forever for an answer.
This loop replaces it for `start_io` and `start_tcp`; it frames, decodes and checks each message, answers what it cannot
handle with the JSON-RPC error the spec names (id null when the id is unknown), and hands the rest to pygls.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO, Protocol, cast

from pygls.exceptions import JsonRpcException
from pygls.protocol import JsonRPCProtocol
from pygls.protocol.json_rpc import RPCMessage

log = logging.getLogger(__name__)

MAX_MESSAGE = 64 * 1024**2  # far above any real LSP message; a larger length is refused, not allocated
MAX_HEADER_LINE = 8 * 1024
MAX_DEPTH = 100  # JSON nesting; LSP messages nest a dozen levels

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
# A header that ends in a Content-Length (case-insensitive, as HTTP headers are). Searched, not matched, so
# that after a bad message the next header is found even when it follows that message's body on one line.
_CONTENT_LENGTH = re.compile(rb"content-length:[ \t]*(\d+)[ \t]*\r?\n\Z", re.IGNORECASE)
_KEEP = 64  # bytes of an overlong line kept, so a header split across two reads is still found


class BadMessage(Exception):
    """A message that cannot be handed to pygls; answered with `code` (to `msg_id` when it is known)."""

    def __init__(self, code: int, message: str, msg_id: int | str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.msg_id = msg_id


class Reader(Protocol):
    async def readline(self) -> bytes:
        """A line with its newline, at most MAX_HEADER_LINE bytes of one without (b"" at the end of input)."""

    async def read(self, size: int) -> bytes:
        """`size` bytes, fewer only at the end of input."""


class StdinReader:
    """Bounded reads of stdin in a worker thread (blocking reads must not hold the event loop)."""

    def __init__(self, stdin: BinaryIO, executor: ThreadPoolExecutor) -> None:
        self._stdin = stdin
        self._executor = executor

    async def readline(self) -> bytes:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._stdin.readline, MAX_HEADER_LINE)

    async def read(self, size: int) -> bytes:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._stdin.read, size)


class StreamReader:
    """The same bounded reads of a socket (`adw lsp --tcp`)."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self._stream = stream

    async def readline(self) -> bytes:
        try:
            return await self._stream.readuntil(b"\n")
        except asyncio.IncompleteReadError as end:
            return end.partial
        except asyncio.LimitOverrunError as long:  # no newline within the stream's buffer limit: a chunk of junk
            return await self._stream.readexactly(min(long.consumed, MAX_HEADER_LINE) or 1)

    async def read(self, size: int) -> bytes:
        try:
            return await self._stream.readexactly(size)
        except asyncio.IncompleteReadError as end:
            return end.partial


async def read_frame(reader: Reader) -> bytes | None:
    """The next message body; None at the end of input. Raises BadMessage for a header block without a usable
    Content-Length (the reader is then positioned to find the next header)."""
    length: int | None = None
    headers = False
    tail = b""
    while True:
        line = await reader.readline()
        if not line:
            return None
        if not line.endswith(b"\n"):  # longer than a header can be: junk, of which only the end may matter
            tail = (tail + line)[-_KEEP:]
            continue
        found = _CONTENT_LENGTH.search(tail + line)
        tail = b""
        if found:
            length, headers = int(found.group(1)), True
        elif line.strip():
            headers = True  # another header (Content-Type) or junk
        elif length is not None:
            break
        elif headers:
            raise BadMessage(PARSE_ERROR, "a message header without Content-Length")
    if length > MAX_MESSAGE:
        raise BadMessage(INVALID_REQUEST, f"a message of {length} bytes is over the limit of {MAX_MESSAGE} bytes")
    body = await reader.read(length)
    return body if len(body) == length else None


def decode(body: bytes) -> dict[str, object]:
    """A JSON-RPC message object, or BadMessage saying why not (with the id, once it is known)."""
    try:
        message = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise BadMessage(PARSE_ERROR, f"the message is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    except RecursionError:
        raise BadMessage(PARSE_ERROR, "the message nests too deeply to parse") from None
    except ValueError as exc:
        raise BadMessage(PARSE_ERROR, f"the message is not valid JSON: {exc}") from None
    if isinstance(message, list):
        raise BadMessage(INVALID_REQUEST, "batch messages are not supported by the Language Server Protocol")
    if not isinstance(message, dict):
        raise BadMessage(INVALID_REQUEST, "a message must be a JSON object")
    msg_id = decode_id(message)
    if message.get("jsonrpc") != "2.0":
        raise BadMessage(INVALID_REQUEST, 'a message must have "jsonrpc": "2.0"', msg_id)
    if "method" in message and not isinstance(message["method"], str):
        raise BadMessage(INVALID_REQUEST, '"method" must be a string', msg_id)
    if _depth(message) > MAX_DEPTH:
        raise BadMessage(INVALID_REQUEST, f"the message nests deeper than {MAX_DEPTH} levels", msg_id)
    return message


def decode_id(message: dict[str, object]) -> int | str | None:
    msg_id = message.get("id")
    return msg_id if isinstance(msg_id, int | str) and not isinstance(msg_id, bool) else None


def _depth(value: object) -> int:
    """Nesting depth, without recursion (a deep message must not exhaust the stack here either)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            break
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, level + 1) for child in children)
    return deepest


def _structured(protocol: JsonRPCProtocol, value: object) -> object:
    """What `json.loads(object_hook=protocol.structure_message)` gives, bottom-up as json does, once the
    message is known to be sound (so a failure can be answered with the message's id)."""
    if isinstance(value, dict):
        return protocol.structure_message({key: _structured(protocol, item) for key, item in value.items()})
    if isinstance(value, list):
        return [_structured(protocol, item) for item in value]
    return value


def handle(protocol: JsonRPCProtocol, body: bytes) -> None:
    message = decode(body)
    try:
        structured = _structured(protocol, message)
    except JsonRpcException as exc:  # params of the wrong shape for the method (pygls says InvalidParams)
        if "method" not in message or "id" not in message:
            log.warning("dropped a notification or response that does not fit its method: %s", exc)
            return
        text = f"{message['method']}: the params do not fit the method (see the LSP specification)"
        raise BadMessage(exc.code, text, decode_id(message)) from None
    protocol.handle_message(cast(RPCMessage, structured))


async def serve(
    stop: threading.Event, reader: Reader, protocol: JsonRPCProtocol, answer: Callable[[BadMessage], None]
) -> None:
    """Read and dispatch messages until the input ends or the server stops."""
    while not stop.is_set():
        try:
            body = await read_frame(reader)
            if body is None:
                return
            handle(protocol, body)
        except BadMessage as bad:
            log.warning("refused a message: %s", bad)
            answer(bad)
        except Exception:  # a bug in a handler's dispatch: log it and keep serving the others
            log.exception("unable to handle a message")


def answer_with(protocol: JsonRPCProtocol) -> Callable[[BadMessage], None]:
    def answer(bad: BadMessage) -> None:
        # A request whose id could not be read is answered with id null, as JSON-RPC 2.0 says.
        error = {"code": bad.code, "message": f"ADW language server: {bad}"}
        protocol._send_data({"jsonrpc": "2.0", "id": bad.msg_id, "error": error})

    return answer
