"""`acp`: any agent that speaks the Agent Client Protocol on stdio (`claude-code-acp`, `codex-acp`,
`gemini --experimental-acp`, …), with ADW as its client.

One attempt is one conversation: `initialize`, `session/new` in the worktree, one `session/prompt` with the
phase's prompt, `session/cancel` when ADW cancels (then the process tree is stopped like any agent's). The
framing is the `agent-client-protocol` package's. `session/update`s become task events: message and thought
text as output lines, tool calls as tool events (edits that completed are the files changed, failed ones
findings), plan entries as progress. The turn's stop reason, or the error the agent answered with, decides
the result. What the agent may touch is `acp_host`'s business: files in the worktree, terminals, permissions.
The session id is the task's `session`: a follow-up starts the agent again and continues that session with
`session/resume` when the agent offers it, else `session/load` (whose replay of the conversation is not
reported again), then sends the follow-up as the next `session/prompt`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from acp import PROTOCOL_VERSION, RequestError, connect_to_agent, text_block
from acp.client.connection import ClientSideConnection
from acp.interfaces import Agent as AcpAgentSide
from acp.schema import (
    AgentMessageChunk,
    AgentPlanUpdate,
    AgentThoughtChunk,
    ClientCapabilities,
    CreateElicitationResponse,
    CreateTerminalResponse,
    ElicitationMode,
    EnvVariable,
    FileSystemCapabilities,
    Implementation,
    InitializeResponse,
    KillTerminalResponse,
    PermissionOption,
    PromptResponse,
    ReadTextFileResponse,
    ReleaseTerminalResponse,
    RequestPermissionResponse,
    TerminalOutputResponse,
    TextContentBlock,
    ToolCallProgress,
    ToolCallStart,
    ToolCallUpdate,
    ToolKind,
    UsageUpdate,
    WaitForTerminalExitResponse,
    WriteTextFileResponse,
)

import adw
from adw.agents.acp_host import Decision, Permissions, Terminals, Workspace
from adw.agents.base import AgentBase, render
from adw.agents.claude import prompt_for
from adw.agents.headless import first_line
from adw.agents.process import ProcessLimits, agent_process
from adw.process import task_marker
from adw.workflow.agent import CancelToken
from adw.workflow.events import TaskEvents
from adw.workflow.models import AgentResult, AgentSession, Finding, Severity, Task

_TAIL = 20
_EXIT_DRAIN = 0.5  # after the agent's process exited, how long its last messages may take to be handled
_FILE_KINDS: frozenset[ToolKind] = frozenset({"edit", "delete", "move"})
_AUTH_REQUIRED = -32000
_STOPS = {
    "max_tokens": "the agent ran out of tokens for this turn: shorten the spec or the phase's prompt, "
    "or raise the agent's token limit",
    "max_turn_requests": "the agent reached its limit of model requests for one turn: split the spec into "
    "smaller ones, or raise the agent's limit",
    "refusal": "the agent refused the prompt: reword the spec or the phase's prompt",
}


@dataclass
class _ToolCall:
    title: str
    kind: ToolKind | None
    paths: list[str] = field(default_factory=list)
    status: str = "pending"


class _Text:
    """Streamed text chunks cut into lines: each complete line is reported once. Another kind of update ends
    a message; the lines of the last one are kept (the turn's summary)."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self._emit = emit
        self._partial = ""
        self._ended = False
        self.last_message: list[str] = []

    def add(self, text: str) -> None:
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self._line(line)

    def flush(self) -> None:
        if self._partial:
            self._line(self._partial)
            self._partial = ""
        self._ended = True

    def _line(self, line: str) -> None:
        if self._ended:
            self.last_message, self._ended = [], False
        self.last_message.append(line)
        self._emit(line.rstrip("\r"))


class AcpClient:
    """The client side of one conversation: what the agent's notifications and requests reach."""

    def __init__(self, agent: AcpAgent, task: Task, worktree: Path, events: TaskEvents) -> None:
        config = agent.phase_config(task)
        self.events = events
        self.command = Path(config.command[0]).name if config.command else "acp"
        self.workspace = Workspace(worktree)
        marker = task_marker(events.workflow_id, events.task_id)
        self.terminals = Terminals(self.workspace, agent.env(task), marker, events, agent.settings.stop_grace)
        self.permissions = Permissions(
            config.permissions, config.permission_timeout, self.workspace, events, self._denied
        )
        self.session_id = ""
        self.replaying = False  # while `session/load` replays a conversation that is already in the events
        self.init: InitializeResponse | None = None
        self.tools: dict[str, _ToolCall] = {}
        self.files: set[str] = set()
        self.findings: list[Finding] = []
        self.messages = _Text(self.events.output)
        self.thoughts = _Text(self._thought)
        self.stderr_tail: deque[str] = deque(maxlen=_TAIL)

    @property
    def program(self) -> str:
        """How messages name the agent: as it introduced itself, else by its command."""
        info = self.init.agent_info if self.init else None
        return info.name if info else self.command

    # -- session/update ---------------------------------------------------------------------------------------

    def _thought(self, line: str) -> None:
        if line.strip():
            self.events.progress(f"thinking: {line}")

    async def session_update(self, session_id: str, update: Any, **kwargs: Any) -> None:
        if self.replaying:
            return
        if not isinstance(update, AgentMessageChunk):
            self.messages.flush()
        if not isinstance(update, AgentThoughtChunk):
            self.thoughts.flush()
        if isinstance(update, AgentMessageChunk):
            if isinstance(update.content, TextContentBlock):
                self.messages.add(update.content.text)
        elif isinstance(update, AgentThoughtChunk):
            if isinstance(update.content, TextContentBlock):
                self.thoughts.add(update.content.text)
        elif isinstance(update, ToolCallStart):
            call = _ToolCall(update.title, update.kind, [loc.path for loc in update.locations or []])
            self.tools[update.tool_call_id] = call
            self.events.tool(update.title or update.kind or "tool", self._detail(call))
            self._status(update.tool_call_id, call, update.status)
        elif isinstance(update, ToolCallProgress):
            self._tool_progress(update)
        elif isinstance(update, AgentPlanUpdate):
            done = sum(entry.status == "completed" for entry in update.entries)
            current = next((e.content for e in update.entries if e.status == "in_progress"), "")
            self.events.progress(f"plan {done}/{len(update.entries)} done" + (f": {current}" if current else ""))
        elif isinstance(update, UsageUpdate) and update.cost is not None:
            self.events.cost(self.events.usage.model_copy(update={"cost_usd": update.cost.amount}))

    def _tool_progress(self, update: ToolCallUpdate) -> None:
        call = self.tools.setdefault(update.tool_call_id, _ToolCall(update.title or "tool", update.kind))
        if update.title:
            call.title = update.title
        if update.kind:
            call.kind = update.kind
        if update.locations is not None:
            call.paths = [loc.path for loc in update.locations]
        self._status(update.tool_call_id, call, update.status)

    def _status(self, tool_call_id: str, call: _ToolCall, status: str | None) -> None:
        if status is None or status == call.status:
            return
        call.status = status
        if status == "completed" and call.kind in _FILE_KINDS:
            self.files.update(self._relative(path) for path in call.paths)
        elif status == "failed":
            path = self._relative(call.paths[0]) if call.paths else "."
            self.flag(path, f"{call.title} failed")

    def _detail(self, call: _ToolCall) -> str:
        return ", ".join(self._relative(path) for path in call.paths)

    def _relative(self, path: str) -> str:
        """How findings and changed files name a path: relative to the worktree when inside it."""
        try:
            return self.workspace.relpath(path)
        except RequestError:
            return path

    def flag(self, path: str, message: str, severity: Severity = Severity.WARNING) -> None:
        finding = Finding(path=path or ".", severity=severity, message=message, source=self.program)
        self.findings.append(finding)
        self.events.finding(finding)

    # -- permissions ------------------------------------------------------------------------------------------

    async def request_permission(
        self, session_id: str, tool_call: ToolCallUpdate, options: list[PermissionOption], **kwargs: Any
    ) -> RequestPermissionResponse:
        self._tool_progress(tool_call)
        call = self.tools[tool_call.tool_call_id]
        return await self.permissions.decide(call.title, call.kind, call.paths, options)

    def _denied(self, decision: Decision, paths: list[str]) -> None:
        path = self._relative(paths[0]) if paths else "."
        self.flag(path, f"permission denied: {decision.tool} ({decision.why})")

    # -- fs/* -------------------------------------------------------------------------------------------------

    async def read_text_file(
        self, session_id: str, path: str, line: int | None = None, limit: int | None = None, **kwargs: Any
    ) -> ReadTextFileResponse:
        return ReadTextFileResponse(content=await self.workspace.read(path, line, limit))

    async def write_text_file(self, session_id: str, path: str, content: str, **kwargs: Any) -> WriteTextFileResponse:
        self.files.add(await self.workspace.write(path, content))
        return WriteTextFileResponse()

    # -- terminal/* -------------------------------------------------------------------------------------------

    async def create_terminal(
        self,
        session_id: str,
        command: str,
        args: list[str] | None = None,
        env: list[EnvVariable] | None = None,
        cwd: str | None = None,
        output_byte_limit: int | None = None,
        **kwargs: Any,
    ) -> CreateTerminalResponse:
        terminal_id = await self.terminals.create(command, args or [], env or [], cwd, output_byte_limit)
        return CreateTerminalResponse(terminal_id=terminal_id)

    async def terminal_output(self, session_id: str, terminal_id: str, **kwargs: Any) -> TerminalOutputResponse:
        return self.terminals.output(terminal_id)

    async def wait_for_terminal_exit(
        self, session_id: str, terminal_id: str, **kwargs: Any
    ) -> WaitForTerminalExitResponse:
        status = await self.terminals.wait(terminal_id)
        return WaitForTerminalExitResponse(exit_code=status.exit_code, signal=status.signal)

    async def kill_terminal(self, session_id: str, terminal_id: str, **kwargs: Any) -> KillTerminalResponse:
        await self.terminals.kill(terminal_id)
        return KillTerminalResponse()

    async def release_terminal(self, session_id: str, terminal_id: str, **kwargs: Any) -> ReleaseTerminalResponse:
        await self.terminals.release(terminal_id)
        return ReleaseTerminalResponse()

    # -- what ADW does not offer (yet): answered as the protocol allows ---------------------------------------

    async def create_elicitation(self, message: str, mode: ElicitationMode, **kwargs: Any) -> CreateElicitationResponse:
        raise RequestError.method_not_found("elicitation/create")

    async def complete_elicitation(self, elicitation_id: str, **kwargs: Any) -> None:
        return None

    async def ext_method(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        raise RequestError.method_not_found(f"_{method}")

    async def ext_notification(self, method: str, params: dict[str, Any]) -> None:
        return None

    def on_connect(self, conn: AcpAgentSide) -> None:
        return None

    # -- the result -------------------------------------------------------------------------------------------

    def outputs(self) -> dict[str, Any]:
        info = self.init.agent_info if self.init else None
        return {
            "acp": {
                "session_id": self.session_id,
                "agent": f"{info.name} {info.version}" if info else self.command,
                "permissions": [asdict(decision) for decision in self.permissions.decisions],
            }
        }

    def result(self, turn: PromptResponse | BaseException | None, returncode: int | None) -> AgentResult:
        self.messages.flush()
        self.thoughts.flush()
        if isinstance(turn, PromptResponse) and turn.usage is not None:
            tokens = {"input_tokens": turn.usage.input_tokens, "output_tokens": turn.usage.output_tokens, "turns": 1}
            self.events.cost(self.events.usage.model_copy(update=tokens))
        files = sorted(self.files | self.workspace.written)
        found: dict[str, Any] = {
            "files_changed": files,
            "findings": self.findings,
            "usage": self.events.usage,
            "outputs": self.outputs(),
            "session": AgentSession(agent="acp", id=self.session_id) if self.session_id else None,
        }
        if isinstance(turn, PromptResponse):
            if turn.stop_reason == "end_turn":
                text = "\n".join(self.messages.last_message)
                summary = first_line(text) or f"{self.program} finished its turn"
                if self.findings:
                    summary += f" ({len(self.findings)} tool problem(s), see findings)"
                return AgentResult(status="succeeded", summary=summary, **found)
            reason = _STOPS.get(turn.stop_reason, f"the turn ended with stop reason {turn.stop_reason!r}")
            return AgentResult.failed(f"{self.program}: {reason}", **found)
        return AgentResult.failed(self._diagnose(turn, returncode), **found)

    def _diagnose(self, error: BaseException | None, returncode: int | None) -> str:
        stderr = "\n".join(self.stderr_tail)
        tail = "\n".join(line for line in self.stderr_tail if line.strip())
        detail = f": {first_line(tail[-2000:].splitlines()[-1])}" if tail else ""
        if isinstance(error, CannotContinueError):
            return str(error)
        if "root/sudo" in stderr or "cannot be used with root" in stderr:
            return (
                f"{self.program} refuses to run as root (its --dangerously-skip-permissions mode is not allowed "
                "for root): run ADW as a normal user"
            )
        if isinstance(error, RequestError):
            if error.code == _AUTH_REQUIRED or "auth" in str(error).lower():
                return f"{self.program} is not logged in ({error}): {self._login_hint()}"
            data = f" {error.data}" if error.data else ""
            return f"{self.program} answered with error {error.code}: {error}{data}"
        if error is None or isinstance(error, ConnectionError):
            status = f" with status {returncode}" if returncode is not None else ""
            return f"{self.program} exited{status} before it finished the turn{detail}"
        return f"{self.program}: {type(error).__name__}: {error}"

    def _login_hint(self) -> str:
        """What the agent says logging in takes (its auth methods), or a generic hint."""
        methods = self.init.auth_methods if self.init else []
        ways = [
            f"{method.name}" + (f" ({method.description})" if method.description else "") for method in methods or []
        ]
        if ways:
            return "log in the agent's own way, then run the phase again: " + "; or ".join(ways)
        return "log in with the agent's own CLI, or set its API key in the phase's env, then run the phase again"


class AcpAgent(AgentBase):
    install_hint = "install the ACP agent, or fix phases.<phase>.command (see docs/AGENTS.md)"

    async def run(self, task: Task, worktree: Path, events: TaskEvents, cancel: CancelToken) -> AgentResult:
        config = self.phase_config(task)
        if not config.command:
            return AgentResult.failed(
                f"phases.{task.phase}.command is empty: the `acp` agent needs the agent's argv, "
                'e.g. ["claude-code-acp"] or ["gemini", "--experimental-acp"]'
            )
        values = self.placeholders(task, worktree)
        argv = [render(part, values) for part in config.command]
        prompt = prompt_for(task, config.prompt, values)
        client = AcpClient(self, task, worktree, events)
        limits = ProcessLimits(
            grace=self.settings.stop_grace,
            sample_interval=self.settings.sample_interval,
            memory_limit=config.memory_limit,
        )
        turn: PromptResponse | BaseException | None = None
        try:
            async with agent_process(
                argv, cwd=worktree, env=self.env(task), events=events, cancel=cancel, limits=limits
            ) as running:
                proc = running.process
                assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
                stderr = asyncio.create_task(_read_stderr(proc.stderr, client))
                conn = connect_to_agent(client, proc.stdin, proc.stdout)
                try:
                    resume = self.resumed_session(task)
                    turn = await self._converse(conn, client, worktree, prompt, resume, cancel, proc)
                finally:
                    await client.terminals.close()
                    await conn.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.stop_grace):
                    await stderr
        except FileNotFoundError:
            return AgentResult.failed(f"`{argv[0]}` is not installed or not on PATH: {self.install_hint}")
        except PermissionError as exc:
            return AgentResult.failed(f"cannot run `{argv[0]}`: {exc.strerror}")
        return client.result(turn, proc.returncode)

    async def _converse(
        self,
        conn: ClientSideConnection,
        client: AcpClient,
        worktree: Path,
        prompt: str,
        resume: str | None,
        cancel: CancelToken,
        proc: asyncio.subprocess.Process,
    ) -> PromptResponse | BaseException | None:
        """The conversation until the turn ends, the agent exits or ADW cancels: the turn's answer, or the
        error that ended it. `resume`: the session a follow-up continues."""

        async def talk() -> PromptResponse:
            capabilities = ClientCapabilities(
                fs=FileSystemCapabilities(read_text_file=True, write_text_file=True), terminal=True
            )
            client.init = await conn.initialize(
                protocol_version=PROTOCOL_VERSION,
                client_capabilities=capabilities,
                client_info=Implementation(name="adw", title="ADW", version=adw.__version__),
            )
            info = client.init.agent_info
            name = f"{info.name} {info.version}" if info else client.program
            client.events.progress(f"{name} speaks ACP {client.init.protocol_version}")
            if resume is None:
                client.session_id = (await conn.new_session(cwd=str(worktree), mcp_servers=[])).session_id
                client.events.progress(f"ACP session {client.session_id}")
            else:
                await _continue(conn, client, worktree, resume)
            return await conn.prompt(session_id=client.session_id, prompt=[text_block(prompt)])

        turn = asyncio.create_task(talk())
        stop = asyncio.create_task(cancel.wait())
        exited = asyncio.create_task(proc.wait())
        try:
            await asyncio.wait({turn, stop, exited}, return_when=asyncio.FIRST_COMPLETED)
            if not turn.done() and stop.done():
                # Ask the agent to end its turn (it answers the prompt with `cancelled`); past the grace
                # period its process tree is stopped anyway.
                client.permissions.cancel_all()
                if client.session_id:
                    with contextlib.suppress(Exception):
                        await conn.cancel(session_id=client.session_id)
                await asyncio.wait({turn, exited}, timeout=self.settings.stop_grace)
            elif not turn.done():  # the agent exited: its last messages may still be on their way
                await asyncio.wait({turn}, timeout=_EXIT_DRAIN)
        finally:
            for job in (stop, exited):
                job.cancel()
            if not turn.done():
                turn.cancel()
            outcome = await asyncio.gather(turn, return_exceptions=True)
        result = outcome[0]
        if isinstance(result, asyncio.CancelledError):
            return None
        return result


class CannotContinueError(Exception):
    """The agent offers no way to continue an earlier session."""


async def _continue(conn: ClientSideConnection, client: AcpClient, worktree: Path, session_id: str) -> None:
    """Reopen the session a follow-up continues: `session/resume` if the agent offers it (no replay), else
    `session/load`, whose replay of the conversation is not reported again."""
    assert client.init is not None
    capabilities = client.init.agent_capabilities
    sessions = capabilities.session_capabilities if capabilities else None
    if sessions is not None and sessions.resume is not None:
        await conn.resume_session(session_id=session_id, cwd=str(worktree), mcp_servers=[])
        how = "resumed"
    elif capabilities is not None and capabilities.load_session:
        client.replaying = True
        try:
            await conn.load_session(session_id=session_id, cwd=str(worktree), mcp_servers=[])
        finally:
            client.replaying = False
        how = "loaded"
    else:
        raise CannotContinueError(
            f"{client.program} cannot continue session {session_id}: it offers neither session/resume nor "
            "session/load, so it cannot take follow-ups; run the phase again with `adw resume` instead"
        )
    client.session_id = session_id
    client.events.progress(f"ACP session {session_id} {how}")


async def _read_stderr(stream: asyncio.StreamReader, client: AcpClient) -> None:
    """The agent's log: shown as stderr lines, the last ones kept to explain a failure."""
    while line := await stream.readline():
        text = line.decode("utf-8", "replace").rstrip()
        client.stderr_tail.append(text)
        client.events.output(text, "stderr")
