"""`command`: any program, from an argv template with {prompt}, {spec}, {spec_text}, {worktree}, {task},
{phase}.

Exit status 0 is success; 75 (EX_TEMPFAIL, "try again later") marks a failure worth retrying.
"""

from __future__ import annotations

from pathlib import Path

from adw.agents.base import render
from adw.agents.headless import CliAgent
from adw.agents.process import ProcessOutcome
from adw.workflow.models import AgentResult, Task

EX_TEMPFAIL = 75


class CommandAgent(CliAgent):
    def argv(self, task: Task, worktree: Path) -> list[str]:
        config = self.phase_config(task)
        if not config.command:
            raise ValueError(
                f"phases.{task.phase}.command is empty: the `command` agent needs an argv template"
            )
        values = self.placeholders(task, worktree)
        values["prompt"] = render(config.prompt, values)
        return [render(part, values) for part in config.command]

    def result(self, task: Task, worktree: Path, outcome: ProcessOutcome) -> AgentResult:
        if outcome.returncode == 0:
            last = next((line for line in reversed(self.stdout_tail) if line.strip()), "")
            return AgentResult(status="succeeded", summary=last or f"{self.program} finished")
        return self.exit_failure(outcome, retryable=outcome.returncode == EX_TEMPFAIL)
