"""Base of every agent that runs a program: spawn it in the worktree, parse its lines, judge its end."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections import deque
from pathlib import Path
from typing import Any

from adw.agents.base import AgentBase
from adw.agents.process import ProcessLimits, ProcessOutcome, Stream, run_process
from adw.workflow.agent import CancelToken
from adw.workflow.events import TaskEvents
from adw.workflow.models import AgentResult, AgentSession, Finding, Severity, Task

_TAIL = 20


class CliAgent(AgentBase, ABC):
    """One instance runs one attempt: the parse state lives on the instance."""

    install_hint = "install it or choose another agent for this phase in [tool.adw.phases]"

    events: TaskEvents
    stop: CancelToken
    # The conversation the run started or continued, as the CLI names it; a follow-up resumes it.
    session_id = ""

    @abstractmethod
    def argv(self, task: Task, worktree: Path) -> list[str]: ...

    @abstractmethod
    def result(self, task: Task, worktree: Path, outcome: ProcessOutcome) -> AgentResult: ...

    def process_env(self, task: Task, worktree: Path) -> dict[str, str]:
        return self.env(task)

    def stdin(self, task: Task, worktree: Path) -> bytes | None:
        """What to write to the process's stdin: adapters pass the prompt there (no size limit, and a prompt
        starting with `-` is not taken for an option)."""
        return None

    def on_line(self, line: str, stream: Stream) -> None:
        """Default: every line is output. Adapters of structured streams override this."""
        self.remember(line, stream)
        self.events.output(line, stream)

    def remember(self, line: str, stream: Stream) -> None:
        """Keep the last lines of each stream for an error message."""
        (self.stderr_tail if stream == "stderr" else self.stdout_tail).append(line)

    def tail(self) -> str:
        lines = [line for line in (*self.stderr_tail, *self.stdout_tail) if line.strip()]
        return "\n".join(lines[-5:])

    async def run(self, task: Task, worktree: Path, events: TaskEvents, cancel: CancelToken) -> AgentResult:
        self.events = events
        self.stop = CancelToken()  # the adapter's own: to stop its process on a fatal message
        self.stdout_tail: deque[str] = deque(maxlen=_TAIL)
        self.stderr_tail: deque[str] = deque(maxlen=_TAIL)
        self.findings: list[Finding] = []
        argv = self.argv(task, worktree)
        self.program = Path(argv[0]).name
        limits = ProcessLimits(
            grace=self.settings.stop_grace,
            sample_interval=self.settings.sample_interval,
            memory_limit=task.config.memory_limit if task.config else None,
        )
        try:
            outcome = await run_process(
                argv,
                cwd=worktree,
                env=self.process_env(task, worktree),
                events=events,
                cancel=cancel,
                on_line=self.on_line,
                limits=limits,
                stop=self.stop,
                stdin=self.stdin(task, worktree),
            )
        except FileNotFoundError:
            return AgentResult.failed(f"`{argv[0]}` is not installed or not on PATH: {self.install_hint}")
        except PermissionError as exc:
            return AgentResult.failed(f"cannot run `{argv[0]}`: {exc.strerror}")
        result = self.result(task, worktree, outcome)
        if self.session_id and result.session is None:
            result.session = AgentSession(agent=task.agent, id=self.session_id)
        return result

    def relative(self, path: str) -> str:
        """A path the tool printed, relative to the worktree when it is inside it (as findings and commits
        name files); anything else as printed."""
        candidate = Path(path)
        worktree = Path(self.workflow.cwd).resolve()
        if candidate.is_absolute() and candidate.resolve().is_relative_to(worktree):
            return candidate.resolve().relative_to(worktree).as_posix()
        return path

    def flag(self, path: str, message: str, severity: Severity = Severity.WARNING) -> None:
        """Report something that went wrong inside the agent's run (a denied or failed tool call): shown at once
        and handed back with the result, so that a run that "succeeded" does not hide it."""
        finding = Finding(path=path or ".", severity=severity, message=message, source=self.program)
        self.findings.append(finding)
        self.events.finding(finding)

    def exit_failure(self, outcome: ProcessOutcome, retryable: bool = False) -> AgentResult:
        detail = self.tail()
        reason = f"{self.program} exited with status {outcome.returncode}" + (f": {detail}" if detail else "")
        return AgentResult.failed(reason, retryable=retryable, findings=self.findings)


def parse_json_line(line: str) -> dict[str, Any] | None:
    """The object on a JSON-lines stream line, or None for anything else (a warning a CLI printed, say)."""
    if not line.startswith("{"):
        return None
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def first_line(text: str, limit: int = 300) -> str:
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"
