"""`claude`: Claude Code in print mode, `claude -p --output-format stream-json --verbose …`, the prompt on stdin.

Stream (NDJSON): system/init, system/api_retry, assistant (text and tool_use blocks), user (tool results),
then one `result` with total_cost_usd, usage, num_turns, terminal_reason and permission_denials. Success is
`is_error: false` and exit 0: a failed login still reports subtype "success" with is_error true. Tool calls that
were denied or failed, and a run that ended for another reason than `completed`, become findings, and only
edits that succeeded count as changed files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adw.agents.base import follow_up_text, render
from adw.agents.headless import CliAgent, first_line, parse_json_line
from adw.agents.process import ProcessOutcome, Stream
from adw.config import AgentsConfig
from adw.workflow.models import AgentResult, Task, Usage, Workflow

DEFAULT_PROMPTS = {
    "plan": "Read the spec below and write an implementation plan to PLAN.md in {worktree}. "
    "Do not change other files. Files the scouts rank first for this spec, to read before planning "
    "(details in {scout_report}):\n{relevant_files}\n\nSpec ({spec}):\n{spec_text}",
    "build": "Implement the spec below in {worktree}, following PLAN.md if present.\n\n"
    "Spec ({spec}):\n{spec_text}",
    "test": "Run the tests of {worktree} and fix what fails. Report the result.",
    "review": "Review the uncommitted changes in {worktree} against the spec below; "
    "fix real problems only.\n\n{spec_text}",
    "document": "Document the changes made in {worktree} for the spec below.\n\n{spec_text}",
}
_EDIT_TOOLS = {"Edit", "Write", "NotebookEdit"}
# They would move the session out of the worktree ADW gave it.
DISALLOWED_TOOLS = ("EnterWorktree", "ExitWorktree")
_NETWORK_SIGNS = ("unable to connect", "connection", "timed out", "overloaded", "server_error", "econnreset")
_COMPLETED = "completed"


def prompt_for(task: Task, template: str, values: dict[str, str]) -> str:
    """The follow-up the attempt sends, else the phase's configured prompt, or a default per phase."""
    if task.follow_up is not None:
        return follow_up_text(task.follow_up)
    return render(template or DEFAULT_PROMPTS.get(task.phase, "{spec_text}"), values)


def tool_detail(tool_input: dict[str, Any]) -> str:
    """The one argument that says what a tool call is about: `Edit src/x.py`, `Bash pytest -q`."""
    for key in ("file_path", "notebook_path", "path", "command", "pattern", "url", "description"):
        value = tool_input.get(key)
        if isinstance(value, str) and value:
            return value.splitlines()[0][:200]
    return ""


class ClaudeAgent(CliAgent):
    install_hint = "install Claude Code (`npm install -g @anthropic-ai/claude-code`) or pick another agent"

    def __init__(self, workflow: Workflow, settings: AgentsConfig) -> None:
        super().__init__(workflow, settings)
        self.final: dict[str, Any] | None = None
        self.auth_error = ""
        self.files: set[str] = set()
        self.pending: dict[str, tuple[str, str]] = {}  # tool_use id → (tool, detail) until its result comes
        self.failed_tools: dict[str, tuple[str, str, str]] = {}  # tool_use id → (tool, detail, error)

    def argv(self, task: Task, worktree: Path) -> list[str]:
        config = self.phase_config(task)
        # `-p` without a prompt argument reads it from stdin.
        argv = ["claude", "-p", "--output-format", "stream-json", "--verbose"]  # stream-json needs --verbose
        argv += ["--permission-mode", self.settings.claude_permission_mode]
        # `=` keeps these variadic options from taking a following argument as one more tool.
        if self.settings.claude_allowed_tools:
            argv.append(f"--allowedTools={','.join(self.settings.claude_allowed_tools)}")
        argv.append(f"--disallowedTools={','.join(DISALLOWED_TOOLS)}")
        if config.model:
            argv += ["--model", config.model]
        if session := self.resumed_session(task):
            argv.append(f"--resume={session}")  # `=`: its value is optional, a bare id could be taken as a prompt
        return argv

    def stdin(self, task: Task, worktree: Path) -> bytes:
        prompt = prompt_for(task, self.phase_config(task).prompt, self.placeholders(task, worktree))
        return prompt.encode("utf-8")

    def process_env(self, task: Task, worktree: Path) -> dict[str, str]:
        # Its default of 10 API retries takes ~3 minutes to give up offline; ours retry the whole attempt.
        return {"CLAUDE_CODE_MAX_RETRIES": str(self.settings.claude_max_retries), **self.env(task)}

    def on_line(self, line: str, stream: Stream) -> None:
        self.remember(line, stream)
        message = parse_json_line(line) if stream == "stdout" else None
        if message is None:
            self.events.output(line, stream)
            return
        kind, subtype = message.get("type"), message.get("subtype")
        if isinstance(message.get("session_id"), str):
            self.session_id = message["session_id"]
        if kind == "system" and subtype == "init":
            self.events.progress(
                f"claude {message.get('claude_code_version', '')} started, model {message.get('model')}"
            )
        elif kind == "system" and subtype == "api_retry":
            self.events.progress(
                f"API retry {message.get('attempt')}/{message.get('max_retries')}: {message.get('error', '')}"
            )
        elif kind == "assistant":
            self._assistant(message)
        elif kind == "user":
            self._tool_results(message)
        elif kind == "result":
            self.final = message
            usage = message.get("usage") or {}
            self.events.cost(
                Usage(
                    cost_usd=message.get("total_cost_usd"),
                    input_tokens=_tokens_in(usage),
                    output_tokens=usage.get("output_tokens"),
                    turns=message.get("num_turns"),
                )
            )

    def _assistant(self, message: dict[str, Any]) -> None:
        if message.get("error"):
            self.auth_error = str(message["error"])
        body = message.get("message") or {}
        for block in body.get("content") or []:
            if block.get("type") == "text" and block.get("text"):
                for text_line in str(block["text"]).splitlines():
                    self.events.output(text_line)
            elif block.get("type") == "tool_use":
                name, tool_input = str(block.get("name", "tool")), block.get("input") or {}
                detail = tool_detail(tool_input)
                if name in _EDIT_TOOLS:
                    detail = self.relative(detail)
                self.events.tool(name, detail)
                self.pending[str(block.get("id", ""))] = (name, detail)

    def _tool_results(self, message: dict[str, Any]) -> None:
        """An edit counts once its result says it worked; a failed call is kept for `_judge_run`."""
        for block in (message.get("message") or {}).get("content") or []:
            if not isinstance(block, dict) or block.get("type") != "tool_result":
                continue
            tool_use_id = str(block.get("tool_use_id", ""))
            name, detail = self.pending.pop(tool_use_id, ("tool", ""))
            if block.get("is_error"):
                self.failed_tools[tool_use_id] = (name, detail, _text_of(block.get("content")))
            elif name in _EDIT_TOOLS and detail:
                self.files.add(detail)

    def _judge_run(self, final: dict[str, Any]) -> None:
        """What the result says beyond success: denied and failed tool calls (one finding each, a denial's
        failed result included) and an unusual end become findings."""
        for denial in final.get("permission_denials") or []:
            if not isinstance(denial, dict):
                continue
            self.failed_tools.pop(str(denial.get("tool_use_id", "")), None)
            tool, tool_input = str(denial.get("tool_name", "tool")), denial.get("tool_input")
            detail = tool_detail(tool_input) if isinstance(tool_input, dict) else ""
            detail = self.relative(detail) if tool in _EDIT_TOOLS else detail
            self.flag(
                detail if tool in _EDIT_TOOLS else ".",
                f"permission denied: {tool} {detail}".rstrip()
                + " (allow it in agents.claude_allowed_tools or agents.claude_permission_mode)",
            )
        for name, detail, text in self.failed_tools.values():
            self.flag(detail if name in _EDIT_TOOLS else ".", f"{name} {detail}".rstrip() + f" failed: {text}")
        terminal = final.get("terminal_reason")
        if terminal and terminal != _COMPLETED and not final.get("is_error"):
            self.flag(".", f"claude ended with terminal_reason {terminal!r}, not 'completed'")

    def result(self, task: Task, worktree: Path, outcome: ProcessOutcome) -> AgentResult:
        final = self.final
        if final is None:
            return self.exit_failure(outcome)
        self._judge_run(final)
        usage = self.events.usage
        text = str(final.get("result") or "")
        files = sorted(self.files)
        found: dict[str, Any] = {"usage": usage, "files_changed": files, "findings": self.findings}
        if not final.get("is_error") and outcome.returncode == 0:
            summary = first_line(text)
            if self.findings:
                summary += f" ({len(self.findings)} tool problem(s), see findings)"
            return AgentResult(status="succeeded", summary=summary, **found)
        reason, retryable = self._diagnose(final, text)
        return AgentResult.failed(reason, retryable=retryable, **found)

    def _diagnose(self, final: dict[str, Any], text: str) -> tuple[str, bool]:
        lowered = f"{text} {self.auth_error}".lower()
        status = final.get("api_error_status")
        terminal = final.get("terminal_reason")
        if "not logged in" in lowered or "authentication" in lowered or "invalid api key" in lowered:
            return (
                f"Claude Code is not logged in ({text.strip()}): "
                "run `claude auth login` (or /login inside claude), or set ANTHROPIC_API_KEY",
                False,
            )
        if status == 429 or "rate limit" in lowered:
            return f"rate limited: {text.strip()}", True
        network = any(sign in lowered for sign in _NETWORK_SIGNS) or (isinstance(status, int) and status >= 500)
        if network or terminal == "api_error":
            return f"network or API failure: {text.strip()} (check the connection and the API status)", True
        subtype = final.get("subtype", "")
        ended = f", terminal_reason {terminal}" if terminal and terminal != _COMPLETED else ""
        return f"claude failed ({subtype}{ended}): {text.strip() or 'no message'}", False


def _text_of(content: Any) -> str:
    """The first line of a tool result's content: a string or a list of text blocks."""
    if isinstance(content, list):
        content = " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return first_line(str(content or "no message"), 200)


def _tokens_in(usage: dict[str, Any]) -> int | None:
    keys = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    values = [usage[key] for key in keys if isinstance(usage.get(key), int)]
    return sum(values) if values else None
