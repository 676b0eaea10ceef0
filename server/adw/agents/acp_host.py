"""What ADW serves an ACP agent as its client: text files confined to the worktree, terminals under ADW's
process control, and answers to permission requests by the phase's policy.

Files: a path must name something inside the worktree (absolute, as ACP asks, or relative to it); `..`, a
path elsewhere, a symbolic link on the way (`adw.fsutil` opens every component without following links) and
anything under `.git` are refused with a JSON-RPC error the agent sees, and nothing is read or written.

Terminals: argv lists (never a shell line built by ADW) run in the worktree, each in a session of its own that
carries the task's marker, so the task's process tree (and a crashed run's clean-up) finds them; killing one
stops its process group.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

import psutil
from acp import RequestError
from acp.schema import (
    AllowedOutcome,
    DeniedOutcome,
    EnvVariable,
    PermissionOption,
    RequestPermissionResponse,
    TerminalExitStatus,
    TerminalOutputResponse,
    ToolKind,
)

from adw.config import PermissionPolicy
from adw.errors import PathOutsideError
from adw.fsutil import read_inside, write_inside
from adw.process import TASK_VARIABLE, AgentTree, stop_tree
from adw.workflow.events import PermissionChoice, TaskEvents

# What "allow-edits" lets an agent do without asking anyone: look at and change files inside the worktree.
EDIT_KINDS: frozenset[ToolKind] = frozenset({"read", "edit", "search", "think"})
DEFAULT_OUTPUT_LIMIT = 1024 * 1024  # bytes of a terminal's output kept when the agent sets no limit
_READ_CHUNK = 64 * 1024


class Workspace:
    """The worktree as the agent's file system."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # The agent may name paths from the folder as given or as resolved (a /tmp that is a link, say).
        self._prefixes = tuple(dict.fromkeys((PurePosixPath(root), PurePosixPath(root.resolve()))))
        self.written: set[str] = set()

    def relpath(self, path: str) -> str:
        """The worktree-relative form of `path`; a RequestError (invalid params) for anything ADW refuses."""
        candidate = PurePosixPath(path)
        relative: PurePosixPath | None = candidate
        if candidate.is_absolute():
            relative = next((candidate.relative_to(p) for p in self._prefixes if candidate.is_relative_to(p)), None)
        if relative is None or not relative.parts or ".." in relative.parts:
            raise _refused(path, "it is not inside the worktree")
        if relative.parts[0] == ".git":
            raise _refused(path, "ADW does not let agents read or write the repository's .git")
        return relative.as_posix()

    def inside(self, path: str) -> bool:
        try:
            self.relpath(path)
        except RequestError:
            return False
        return True

    async def read(self, path: str, line: int | None, limit: int | None) -> str:
        relative = self.relpath(path)
        try:
            data = await asyncio.to_thread(read_inside, self.root, relative)
        except PathOutsideError as exc:
            raise _refused(path, exc.message) from None
        except IsADirectoryError:
            raise _refused(path, "it is a folder") from None
        if data is None:
            raise RequestError.resource_not_found(path)
        text = data.decode("utf-8", "replace")
        if line is None and limit is None:
            return text
        lines = text.splitlines(keepends=True)
        start = max((line or 1) - 1, 0)
        return "".join(lines[start : None if limit is None else start + limit])

    async def write(self, path: str, content: str) -> str:
        relative = self.relpath(path)
        try:
            await asyncio.to_thread(write_inside, self.root, relative, content)
        except PathOutsideError as exc:
            raise _refused(path, exc.message) from None
        self.written.add(relative)
        return relative


def _refused(path: str, why: str) -> RequestError:
    return RequestError.invalid_params({"path": path, "reason": f"refused: {why}"})


@dataclass
class _Terminal:
    argv: list[str]
    proc: asyncio.subprocess.Process
    limit: int
    output: bytearray = field(default_factory=bytearray)
    truncated: bool = False
    reader: asyncio.Task[None] | None = None

    def keep(self, chunk: bytes) -> None:
        """Append, keeping only the last `limit` bytes, cut at a character boundary (as ACP asks)."""
        self.output += chunk
        if len(self.output) > self.limit:
            cut = len(self.output) - self.limit
            while cut < len(self.output) and self.output[cut] & 0xC0 == 0x80:  # a UTF-8 continuation byte
                cut += 1
            del self.output[:cut]
            self.truncated = True

    def exit_status(self) -> TerminalExitStatus | None:
        code = self.proc.returncode
        if code is None or (self.reader is not None and not self.reader.done()):
            return None
        if code < 0:
            return TerminalExitStatus(exit_code=None, signal=signal.Signals(-code).name)
        return TerminalExitStatus(exit_code=code, signal=None)


class Terminals:
    """The `terminal/*` methods: commands the agent runs through ADW."""

    def __init__(
        self, workspace: Workspace, env: Mapping[str, str], marker: str, events: TaskEvents, grace: float
    ) -> None:
        self._workspace = workspace
        self._env = env
        self._marker = marker
        self._events = events
        self._grace = grace
        self._terminals: dict[str, _Terminal] = {}
        self._ids = itertools.count(1)

    async def create(
        self,
        command: str,
        args: Sequence[str],
        env: Sequence[EnvVariable],
        cwd: str | None,
        output_byte_limit: int | None,
    ) -> str:
        folder = self._folder(cwd)
        argv = [command, *args]
        variables = {**os.environ, **self._env, **{var.name: var.value for var in env}, TASK_VARIABLE: self._marker}
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=folder,
                env=variables,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise RequestError.invalid_params(
                {"command": command, "reason": f"cannot run it: {exc.strerror}"}
            ) from None
        terminal_id = f"term-{next(self._ids)}"
        terminal = _Terminal(argv, proc, output_byte_limit or DEFAULT_OUTPUT_LIMIT)
        terminal.reader = asyncio.create_task(self._read(terminal_id, terminal))
        self._terminals[terminal_id] = terminal
        self._events.tool("terminal", " ".join(argv))
        return terminal_id

    def _folder(self, cwd: str | None) -> Path:
        """The worktree, or a folder inside it once links are resolved."""
        root = self._workspace.root.resolve()
        if cwd is None:
            return root
        folder = (root / cwd).resolve()
        if not folder.is_relative_to(root) or not folder.is_dir():
            raise _refused(cwd, "a terminal's folder must be a folder inside the worktree")
        return folder

    async def _read(self, terminal_id: str, terminal: _Terminal) -> None:
        stream = terminal.proc.stdout
        assert stream is not None
        pending = b""
        while chunk := await stream.read(_READ_CHUNK):
            terminal.keep(chunk)
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:  # the transcript, and activity for the inactivity timeout while tests run
                self._events.output(f"[{terminal_id}] {line.decode('utf-8', 'replace').rstrip()}")
        if pending:
            self._events.output(f"[{terminal_id}] {pending.decode('utf-8', 'replace').rstrip()}")
        await terminal.proc.wait()

    def _get(self, terminal_id: str) -> _Terminal:
        terminal = self._terminals.get(terminal_id)
        if terminal is None:
            raise RequestError.invalid_params({"terminalId": terminal_id, "reason": "no such terminal"})
        return terminal

    def output(self, terminal_id: str) -> TerminalOutputResponse:
        terminal = self._get(terminal_id)
        return TerminalOutputResponse(
            output=terminal.output.decode("utf-8", "replace"),
            truncated=terminal.truncated,
            exit_status=terminal.exit_status(),
        )

    async def wait(self, terminal_id: str) -> TerminalExitStatus:
        terminal = self._get(terminal_id)
        assert terminal.reader is not None
        await asyncio.shield(terminal.reader)
        status = terminal.exit_status()
        assert status is not None
        self._events.progress(f"{terminal_id} ({terminal.argv[0]}) exited: {status.signal or status.exit_code}")
        return status

    async def kill(self, terminal_id: str) -> None:
        await self._stop(self._get(terminal_id))

    async def release(self, terminal_id: str) -> None:
        terminal = self._terminals.pop(terminal_id, None)
        if terminal is not None:
            await self._stop(terminal)

    async def close(self) -> None:
        """Stop every terminal left (the turn ended, or was cancelled)."""
        terminals = list(self._terminals.values())
        self._terminals.clear()
        await asyncio.gather(*(self._stop(terminal) for terminal in terminals))

    async def _stop(self, terminal: _Terminal) -> None:
        """Stop the terminal's tree: its leader, its descendants and its session."""
        proc = terminal.proc
        if proc.returncode is None:
            with contextlib.suppress(psutil.Error):
                created = psutil.Process(proc.pid).create_time()
                # The task's marker is shared with the agent, which must go on: an empty one matches nothing.
                tree = AgentTree(proc.pid, created, "")
                await stop_tree(tree, self._grace, (signal.SIGTERM, signal.SIGKILL))
            with contextlib.suppress(ProcessLookupError):
                await proc.wait()
        if terminal.reader is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._grace):
                    await asyncio.shield(terminal.reader)
            terminal.reader.cancel()


Answer = Literal["allowed", "denied"]


@dataclass(frozen=True, slots=True)
class Decision:
    tool: str
    kind: str
    verdict: Answer
    why: str
    option: str


class Permissions:
    """Answers `session/request_permission` by the phase's policy; every decision is a task event."""

    def __init__(
        self,
        policy: PermissionPolicy,
        timeout: float,
        workspace: Workspace,
        events: TaskEvents,
        on_denied: Callable[[Decision, list[str]], None],
    ) -> None:
        self.policy = policy
        self.timeout = timeout
        self._workspace = workspace
        self._events = events
        self._on_denied = on_denied
        self._cancelled = asyncio.Event()
        self._always: dict[str, str] = {}  # tool kinds someone allowed for the rest of the task, and who
        self.decisions: list[Decision] = []

    def cancel_all(self) -> None:
        """The turn is being cancelled: every pending question is answered `cancelled`, as ACP asks."""
        self._cancelled.set()

    async def decide(
        self, tool: str, kind: ToolKind | None, paths: list[str], options: list[PermissionOption]
    ) -> RequestPermissionResponse:
        if self._cancelled.is_set():
            return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))
        kind_name = kind or "other"
        verdict, why = self._by_policy(kind, paths)
        # "Always" covers the worktree only: a tool reaching outside it is asked about every time.
        if verdict is None and kind_name in self._always and all(map(self._workspace.inside, paths)):
            verdict, why = "allowed", f"{kind_name} tools allowed for this task by {self._always[kind_name]}"
        if verdict is None:
            self._events.progress(f"permission asked: {tool} (waiting up to {self.timeout:g} s for an answer)")
            answer = await self._ask(tool, kind_name, paths)
            if self._cancelled.is_set():
                return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))
            verdict, why = self._answered(kind_name, answer)
        wanted = ("allow_once", "allow_always") if verdict == "allowed" else ("reject_once", "reject_always")
        option = next((o for kind_ in wanted for o in options if o.kind == kind_), None)
        decision = Decision(tool, kind_name, verdict, why, option.name if option else "none offered")
        self.decisions.append(decision)
        self._events.progress(f"permission {verdict}: {tool} ({why})")
        if verdict == "denied":
            self._on_denied(decision, paths)
        if option is None:
            return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))
        return RequestPermissionResponse(outcome=AllowedOutcome(outcome="selected", option_id=option.option_id))

    async def _ask(self, tool: str, kind: str, paths: list[str]) -> tuple[PermissionChoice, str] | None:
        """The answer of whoever watches the task (the editor, the CLI on a terminal): the choice and who made
        it; None when nobody answered in time or the turn ended first."""
        asking = asyncio.create_task(self._events.ask_permission(tool, kind, paths, self.timeout))
        ended = asyncio.create_task(self._cancelled.wait())
        try:
            await asyncio.wait({asking, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (asking, ended):
                waiter.cancel()
            await asyncio.gather(asking, ended, return_exceptions=True)
        return asking.result() if asking.done() and not asking.cancelled() else None

    def _answered(self, kind: str, answer: tuple[PermissionChoice, str] | None) -> tuple[Answer, str]:
        if answer is None:
            return "denied", f"nobody answered within {self.timeout:g} s"
        choice, by = answer
        if choice == "deny":
            return "denied", f"denied by {by}"
        if choice == "allow_always":
            self._always[kind] = by
            return "allowed", f"allowed for this task by {by}"
        return "allowed", f"allowed once by {by}"

    def _by_policy(self, kind: ToolKind | None, paths: list[str]) -> tuple[Answer | None, str]:
        if self.policy == "allow-all":
            return "allowed", "permissions = allow-all"
        if self.policy == "deny":
            return "denied", "permissions = deny"
        if self.policy == "ask":
            return None, ""
        outside = [path for path in paths if not self._workspace.inside(path)]
        if kind in EDIT_KINDS and not outside:
            return "allowed", f"permissions = allow-edits allows {kind}"
        if outside:
            return "denied", f"permissions = allow-edits: {outside[0]} is outside the worktree"
        return "denied", f"permissions = allow-edits does not allow {kind or 'other'} tools"
