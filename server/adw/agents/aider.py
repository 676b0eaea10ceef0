"""`aider`: `aider --message PROMPT --yes-always --no-auto-commits …`; text output only.

Cost comes from lines like `Tokens: 3.0k sent, 42 received. Cost: $0.0063 message, $0.0063 session.`; edits
from `Applied edit to PATH`. Auto-commits are off so that the workflow makes the one aggregated commit.
"""

from __future__ import annotations

import re
from pathlib import Path

from adw.agents.claude import prompt_for
from adw.agents.cli import CliAgent
from adw.agents.process import ProcessOutcome, Stream
from adw.config import AgentsConfig
from adw.workflow.models import AgentResult, Task, Usage, Workflow

_TOKENS = re.compile(
    r"Tokens: (?P<sent>[\d.,]+)(?P<sk>[kKmM]?) sent.*?(?P<received>[\d.,]+)(?P<rk>[kKmM]?) received\."
    r"(?: Cost: \$(?P<message>[\d.]+) message, \$(?P<session>[\d.]+) session\.)?"
)
_APPLIED = re.compile(r"^Applied edit to (?P<path>.+?)\s*$")
_SCALE = {"": 1, "k": 1_000, "m": 1_000_000}


def parse_tokens(number: str, suffix: str) -> int:
    return round(float(number.replace(",", "")) * _SCALE[suffix.lower()])


class AiderAgent(CliAgent):
    install_hint = "install aider (`pip install aider-chat`) or pick another agent"

    def __init__(self, workflow: Workflow, settings: AgentsConfig) -> None:
        super().__init__(workflow, settings)
        self.files: set[str] = set()
        self.tokens = Usage()

    def argv(self, task: Task, worktree: Path) -> list[str]:
        prompt = prompt_for(task, self.phase_config(task).prompt, self.placeholders(task, worktree))
        return [
            "aider",
            "--message",
            prompt,
            "--yes-always",
            "--no-auto-commits",
            "--no-pretty",
            "--no-stream",
            "--no-check-update",
            "--no-show-release-notes",
            "--analytics-disable",
        ]

    def on_line(self, line: str, stream: Stream) -> None:
        super().on_line(line, stream)
        if tokens := _TOKENS.search(line):
            # Tokens are per message and add up; the session cost is already a running total.
            self.tokens = self.tokens + Usage(
                input_tokens=parse_tokens(tokens.group("sent"), tokens.group("sk")),
                output_tokens=parse_tokens(tokens.group("received"), tokens.group("rk")),
            )
            session = tokens.group("session")
            cost = float(session) if session else self.events.usage.cost_usd
            self.events.cost(self.tokens.model_copy(update={"cost_usd": cost}))
        elif applied := _APPLIED.match(line):
            self.files.add(applied.group("path"))
            self.events.tool("Edit", applied.group("path"))

    def result(self, task: Task, worktree: Path, outcome: ProcessOutcome) -> AgentResult:
        if outcome.returncode != 0:
            failure = self.exit_failure(outcome)
            return failure.model_copy(update={"usage": self.events.usage})
        files = sorted(self.files)
        summary = f"aider edited {len(files)} file(s)" if files else "aider made no edits"
        return AgentResult(status="succeeded", summary=summary, usage=self.events.usage, files_changed=files)
