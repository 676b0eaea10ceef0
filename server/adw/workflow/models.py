"""The data of a workflow: a dependency graph of tasks, each with its attempts, findings and cost.

These models are what the store persists, what `adw status --json` prints and what the language server reads;
they hold no behaviour beyond small derived values.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field, computed_field

from adw.config import PhaseConfig
from adw.errors import Action, ResumeAction, ShowLogAction


class TaskState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"
    SKIPPED = "skipped"

    @property
    def done(self) -> bool:
        return self not in (TaskState.PENDING, TaskState.RUNNING)


# A workflow has the same states as its tasks (skipped aside); one enum keeps the two comparable.
WorkflowState = TaskState


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Finding(BaseModel):
    """Something an agent reports at a place in the code: a failing test, a lint message, a review comment."""

    path: str
    line: int | None = None
    column: int | None = None
    severity: Severity = Severity.WARNING
    message: str
    source: str
    code: str | None = None
    # What makes two findings on two versions of the code the same problem (a failing test's id); when None,
    # its source, path, code and message.
    key: str | None = None


class Usage(BaseModel):
    """Cost and tokens when the agent reports them; None means unknown, not zero."""

    cost_usd: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    turns: int | None = None

    def __add__(self, other: Usage) -> Usage:
        def plus(a: float | None, b: float | None) -> Any:
            return None if a is None and b is None else (a or 0) + (b or 0)

        return Usage(
            cost_usd=plus(self.cost_usd, other.cost_usd),
            input_tokens=plus(self.input_tokens, other.input_tokens),
            output_tokens=plus(self.output_tokens, other.output_tokens),
            turns=plus(self.turns, other.turns),
        )


class Location(BaseModel):
    """Where a follow-up points in the worktree: a file, a range of its lines (1-based, inclusive) and the code
    selected there, as a review comment or a code action gives them."""

    file: str
    start_line: int = Field(ge=1)
    end_line: int = Field(ge=1)
    selected_code: str = ""


class FollowUp(BaseModel):
    """A message sent to the agent of a task that already ran, continuing its session (`adw say`)."""

    message: str
    location: Location | None = None


class AgentSession(BaseModel):
    """The conversation an LLM agent's run left behind, which a follow-up continues: Claude's `session_id`,
    Codex's thread id, the ACP session id, or the folder holding aider's chat history."""

    agent: str
    id: str


class Attempt(BaseModel):
    number: int
    follow_up: FollowUp | None = None
    state: TaskState = TaskState.RUNNING
    # Set when it was ready to start (its dependencies done, or its retry's backoff over) but every agent slot
    # was taken: from then until `started_at` it waited for one. None: it started at once.
    queued_at: float | None = None
    started_at: float = Field(default_factory=time.time)
    finished_at: float | None = None
    reason: str = ""
    retryable: bool = False
    usage: Usage = Usage()
    node: str | None = None  # where it ran when not in ADW's own process: a cluster node, "HOST (NODE-ID)"


class Task(BaseModel):
    """One node of the graph. `agent` names the adapter; a `step` is quick git work needing no agent slot."""

    id: str
    phase: str
    agent: str
    kind: Literal["agent", "step"] = "agent"
    deps: list[str] = Field(default_factory=list)
    config: PhaseConfig | None = None
    checkpoint: bool = False
    state: TaskState = TaskState.PENDING
    reason: str = ""
    summary: str = ""
    findings: list[Finding] = Field(default_factory=list)
    files_changed: list[str] = Field(default_factory=list)
    attempts: list[Attempt] = Field(default_factory=list)
    outputs: dict[str, Any] = Field(default_factory=dict)
    session: AgentSession | None = None
    # The follow-up the next attempt sends instead of the phase's prompt; cleared when that attempt ends.
    follow_up: FollowUp | None = None
    # Ran before a follow-up changed what it depends on: `adw resume` runs it again.
    stale: bool = False
    started_at: float | None = None
    finished_at: float | None = None
    # Set while the next attempt waits for an agent slot (kept when it was cancelled while waiting).
    queued_at: float | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def usage(self) -> Usage:
        total = Usage()
        for attempt in self.attempts:
            total = total + attempt.usage
        return total

    @property
    def elapsed(self) -> float | None:
        if self.started_at is None:
            return None
        return (self.finished_at or time.time()) - self.started_at


BEST_OF_PHASE = "build"  # the phase that writes the change: the one each candidate runs with its own agent


class BestOf(BaseModel):
    """A workflow that is candidate `number` of a best-of-N run of one spec (`adw sdlc --best-of N`): its build
    phase runs `agent` and `model` (None: as configured), the other phases as configured, so all are judged alike."""

    group: str
    number: int
    agent: str | None = None
    model: str | None = None

    def build_config(self, config: PhaseConfig) -> PhaseConfig:
        update: dict[str, str] = {}
        if self.agent is not None:
            update["agent"] = self.agent
        if self.model is not None:
            update["model"] = self.model
        return config.model_copy(update=update)


class Workflow(BaseModel):
    """A graph of tasks run in one directory (`cwd`, usually a worktree) of the repository at `repo`."""

    id: str
    name: str
    kind: str = "custom"
    repo: str
    cwd: str
    spec: str | None = None
    worktree: str | None = None
    base_commit: str | None = None
    best_of: BestOf | None = None
    # The run it belongs to: the workflows started together (`Engine.run_all`, `join_run`); None in records
    # made before ADW kept it.
    run_id: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    state: WorkflowState = WorkflowState.PENDING
    reason: str = ""
    created_at: float = Field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    tasks: list[Task] = Field(default_factory=list)

    def task(self, task_id: str) -> Task:
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise KeyError(task_id)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def usage(self) -> Usage:
        total = Usage()
        for task in self.tasks:
            total = total + task.usage
        return total

    def next_steps(self) -> list[Action]:
        """What an editor offers on this workflow's failure: the log of the task that failed, and Resume when
        something is left to run (it failed, was cancelled or interrupted)."""
        steps: list[Action] = []
        failed = next((task for task in self.tasks if task.state is TaskState.FAILED), None)
        if failed is not None:
            steps.append(ShowLogAction(title="Show Log", workflow=self.id, task=failed.id))
        if self.state in (TaskState.FAILED, TaskState.CANCELLED, TaskState.INTERRUPTED):
            steps.append(ResumeAction(title="Resume", workflow=self.id))
        return steps

    @property
    def current_phase(self) -> str:
        running = [task.phase for task in self.tasks if task.state is TaskState.RUNNING]
        if running:
            return "‖".join(running)
        done = [task.phase for task in self.tasks if task.state.done]
        return done[-1] if done else ""


class AgentResult(BaseModel):
    """What an agent hands back for one attempt."""

    status: Literal["succeeded", "failed"]
    summary: str = ""
    reason: str = ""
    retryable: bool = False
    findings: list[Finding] = Field(default_factory=list)
    files_changed: list[str] = Field(default_factory=list)
    usage: Usage = Usage()
    outputs: dict[str, Any] = Field(default_factory=dict)
    session: AgentSession | None = None

    @classmethod
    def failed(cls, reason: str, *, retryable: bool = False, **fields: Any) -> AgentResult:
        return cls(status="failed", reason=reason, retryable=retryable, **fields)
