"""`codex`: OpenAI Codex CLI, `codex exec --json --sandbox workspace-write -`, the prompt on stdin.

Stream (JSONL, `exec_events.rs` in openai/codex): thread.started, turn.started, item.started/item.completed
(agent_message, command_execution, file_change, mcp_tool_call, error, …), turn.completed with token usage (no
USD), turn.failed, error. Offline it never exits: it repeats `Reconnecting… waiting for network`, which we count
as no activity and then as a network failure. A file change whose status is `failed` is not a changed file, and
a declined command or failed MCP call is a finding; a run without `turn.completed` did not finish its work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adw.agents.claude import prompt_for
from adw.agents.headless import CliAgent, first_line, parse_json_line
from adw.agents.process import ProcessOutcome, Stream
from adw.config import AgentsConfig
from adw.workflow.models import AgentResult, Task, TaskState, Usage, Workflow

_OFFLINE = "waiting for network"


class CodexAgent(CliAgent):
    install_hint = "install the Codex CLI (`npm install -g @openai/codex`) or pick another agent"

    def __init__(self, workflow: Workflow, settings: AgentsConfig) -> None:
        super().__init__(workflow, settings)
        self.error = ""
        self.offline = False
        self.last_message = ""
        self.files: set[str] = set()
        self.input_tokens = 0
        self.output_tokens = 0
        self.completed = False

    def argv(self, task: Task, worktree: Path) -> list[str]:
        # `--full-auto` was removed in 0.147; workspace-write is its replacement. `-`: the prompt is on stdin.
        # `exec resume` has no --sandbox of its own: exec's options go before the subcommand.
        model = self.phase_config(task).model
        argv = ["codex", "exec", "--json", "--sandbox", "workspace-write", *(["--model", model] if model else [])]
        if thread := self.resumed_session(task):
            argv += ["resume", thread]
        return [*argv, "-"]

    def stdin(self, task: Task, worktree: Path) -> bytes:
        prompt = prompt_for(task, self.phase_config(task).prompt, self.placeholders(task, worktree))
        return prompt.encode("utf-8")

    def on_line(self, line: str, stream: Stream) -> None:
        self.remember(line, stream)
        event = parse_json_line(line) if stream == "stdout" else None
        if event is None:
            self.events.output(line, stream, activity=stream == "stdout")
            if stream == "stderr" and line.startswith("Error: "):  # a stack backtrace follows: this says why
                self.error = line.removeprefix("Error: ")
            return
        kind = event.get("type")
        if kind == "error":
            self._error(str(event.get("message", "")))
        elif kind == "turn.failed":
            self.error = str((event.get("error") or {}).get("message", "turn failed"))
        elif kind == "turn.completed":
            self.completed = True
            usage = event.get("usage") or {}
            self.input_tokens += int(usage.get("input_tokens") or 0)
            self.output_tokens += int(usage.get("output_tokens") or 0)
            self.events.cost(Usage(input_tokens=self.input_tokens, output_tokens=self.output_tokens))
        elif kind in ("item.started", "item.completed"):
            self._item(kind, event.get("item") or {})
        elif kind in ("thread.started", "turn.started"):
            if kind == "thread.started" and event.get("thread_id"):
                self.session_id = str(event["thread_id"])
            self.events.progress(kind)

    def _error(self, message: str) -> None:
        # Reconnect chatter is not progress: it must not hold off the inactivity timeout.
        self.events.progress(message, activity=False)
        if _OFFLINE in message:
            self.offline = True
            self.stop.cancel(f"codex is offline: {message}", TaskState.FAILED)
        elif not message.startswith("Reconnecting"):
            self.error = message

    def _item(self, kind: str, item: dict[str, Any]) -> None:
        item_type = item.get("type")
        if item_type == "command_execution" and kind == "item.started":
            self.events.tool("Bash", str(item.get("command", "")))
        elif item_type == "command_execution" and kind == "item.completed" and item.get("status") == "declined":
            self.flag(".", f"command declined, not run: {item.get('command', '')}")
        elif item_type == "file_change" and kind == "item.completed":
            paths = [self.relative(str(change.get("path", ""))) for change in item.get("changes") or []]
            failed = item.get("status") == "failed"
            for path in paths:
                self.events.tool("Edit", path)
                if failed:
                    self.flag(path, f"file change failed, not applied: {path}")
                else:
                    self.files.add(path)
        elif item_type == "mcp_tool_call" and kind == "item.completed" and item.get("status") == "failed":
            error = str((item.get("error") or {}).get("message", "no message"))
            self.flag(".", f"MCP tool {item.get('server', '')}/{item.get('tool', '')} failed: {error}")
        elif item_type == "agent_message" and kind == "item.completed":
            self.last_message = str(item.get("text", ""))
            for text_line in self.last_message.splitlines():
                self.events.output(text_line)
        elif item_type == "error":
            self.events.progress(str(item.get("message", "")), activity=False)

    def result(self, task: Task, worktree: Path, outcome: ProcessOutcome) -> AgentResult:
        usage = self.events.usage
        files = sorted(self.files)
        found: dict[str, Any] = {"usage": usage, "files_changed": files, "findings": self.findings}
        if self.offline:
            return AgentResult.failed(
                "codex cannot reach its API (waiting for network): check the connection or `codex login`",
                retryable=True,
                **found,
            )
        if self.error:
            return AgentResult.failed(f"codex failed: {self.error}", **found)
        if outcome.returncode != 0:
            return self.exit_failure(outcome)
        if not self.completed:
            return AgentResult.failed(
                f"codex exited without completing its turn{': ' + self.tail() if self.tail() else ''}", **found
            )
        summary = first_line(self.last_message)
        if self.findings:
            summary += f" ({len(self.findings)} change(s) or command(s) not done, see findings)"
        return AgentResult(status="succeeded", summary=summary, **found)
