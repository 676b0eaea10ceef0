"""What every built-in agent starts from: its workflow, its settings, its phase, and `{placeholder}` prompts."""

from __future__ import annotations

import re
from pathlib import Path

from adw.config import AgentsConfig, PhaseConfig
from adw.workflow.models import FollowUp, Task, Workflow


class AgentBase:
    """State every agent gets at construction: the workflow it works for and the agents' settings."""

    def __init__(self, workflow: Workflow, settings: AgentsConfig) -> None:
        self.workflow = workflow
        self.settings = settings

    def phase_config(self, task: Task) -> PhaseConfig:
        if task.config is None:
            raise ValueError(f"task {task.id} has no phase configuration")
        return task.config

    def resumed_session(self, task: Task) -> str | None:
        """The agent session a follow-up continues (None for a phase's own run)."""
        return task.session.id if task.follow_up is not None and task.session is not None else None

    def env(self, task: Task) -> dict[str, str]:
        """Variables for the agent's process on top of ours: the worktree's ports, then the phase's own."""
        return {**self.workflow.env, **(task.config.env if task.config else {})}

    def placeholders(self, task: Task, worktree: Path) -> dict[str, str]:
        spec = Path(self.workflow.spec) if self.workflow.spec else None
        scouted = next((t.outputs for t in self.workflow.tasks if t.id == "scout"), {})  # the SDLC's scout step
        return {
            "spec": str(spec or ""),
            "spec_text": spec.read_text(encoding="utf-8") if spec and spec.is_file() else "",
            "worktree": str(worktree),
            "task": task.id,
            "phase": task.phase,
            "model": task.config.model if task.config else "",
            "scout_report": str(scouted.get("report", "")),
            "relevant_files": "\n".join(str(path) for path in scouted.get("files", [])),
        }


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def render(template: str, values: dict[str, str]) -> str:
    """Fill `{name}` placeholders; other braces (JSON in a prompt, say) stay as they are."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def follow_up_text(follow_up: FollowUp) -> str:
    """What the agent reads of a follow-up: the message, then the place it is about with the code there."""
    where = follow_up.location
    if where is None:
        return follow_up.message
    lines = f"line {where.start_line}" if where.start_line == where.end_line else (
        f"lines {where.start_line}-{where.end_line}"
    )
    text = f"{follow_up.message}\n\nThis is about {where.file}, {lines}"
    if where.selected_code:
        fence = "````" if "```" in where.selected_code else "```"
        text += f":\n{fence}\n{where.selected_code.rstrip()}\n{fence}"
    return text + "\n"
